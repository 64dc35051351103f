//! How `airlock` is linked: statically against glibc where the build
//! could (crates/airlock-build). Each `airlock run` is one exec of it,
//! and a dynamic link adds the loader's work to every one. CI requires
//! the static link.

#[test]
fn the_binary_is_linked_the_way_its_build_meant() {
    let binary = std::path::Path::new(env!("CARGO_BIN_EXE_airlock"));
    airlock_build::assert_linked_as_built(binary, env!("AIRLOCK_BUILT_STATIC"));
}

/// The functions `airlock run` runs are linked first, together
/// (crates/airlock-build/src/hot_text.rs).
#[test]
fn the_hot_functions_are_linked_together_as_built() {
    let binary = std::path::Path::new(env!("CARGO_BIN_EXE_airlock"));
    airlock_build::assert_hot_text_as_built(
        binary,
        env!("AIRLOCK_BUILT_HOT_TEXT"),
        // std's start, and the binary's own main path.
        &["lang_start_internal", "11airlock_cli3run4main"],
    );
}
