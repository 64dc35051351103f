//! How `airlock-runtime` is linked: statically against glibc where the build
//! could (crates/airlock-build). A container is several
//! execs of it, and a dynamic link adds the
//! loader's work to every one. CI requires the static link.

use std::path::Path;

#[test]
fn the_binary_is_linked_the_way_its_build_meant() {
    let binary = Path::new(env!("CARGO_BIN_EXE_airlock-runtime"));
    let loader = airlock_build::dynamic_loader(binary).unwrap();
    if env!("AIRLOCK_BUILT_STATIC") == "1" {
        assert_eq!(loader, None, "built to be static, but it names a loader");
    } else if cfg!(target_env = "gnu") {
        // A build that fell back to a dynamic link says so by its loader;
        // a static binary here would mean the flag lies.
        assert!(
            loader.is_some(),
            "linked dynamically, but it names no loader"
        );
    }
}
