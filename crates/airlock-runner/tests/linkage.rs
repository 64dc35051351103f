//! The functions a sandbox's start runs in the runner are linked first,
//! together (crates/airlock-build/src/hot_text.rs), in the glibc runner
//! and in the static one beside it that airlock prefers.

#[test]
fn the_hot_functions_are_linked_together_as_built() {
    let runner = std::path::Path::new(env!("CARGO_BIN_EXE_airlock-runner"));
    let built = env!("AIRLOCK_BUILT_HOT_TEXT");
    // std's start, and the runner's own main path.
    let functions = ["lang_start_internal", "7airlock6runner3run17h"];
    airlock_build::assert_hot_text_as_built(runner, built, &functions);
    // The nested build of the static runner reads the same script, and is
    // told this build's choice.
    let statik = runner.with_file_name("airlock-runner-static");
    if statik.exists() {
        airlock_build::assert_hot_text_as_built(&statik, built, &functions);
    }
}
