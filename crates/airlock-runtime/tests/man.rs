//! The shipped man pages are the ones the definitions give, one per verb
//! airlock-runtime supports and none for the hidden ones.

use std::path::Path;

#[test]
fn the_shipped_man_pages_are_current() {
    let dir = tempfile::tempdir().unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_airlock-runtime"))
        .arg("man")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../man");
    let mut pages: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    pages.sort();
    for hidden in ["airlock-runtime-man.1", "airlock-runtime-events.1"] {
        assert!(!pages.iter().any(|p| p == hidden), "{hidden} made");
    }
    assert!(
        pages.iter().any(|p| p == "airlock-runtime-create.1"),
        "{pages:?}"
    );
    for page in &pages {
        let made = std::fs::read_to_string(dir.path().join(page)).unwrap();
        let kept = std::fs::read_to_string(shipped.join(page)).unwrap_or_default();
        assert!(
            made == kept,
            "man/{page} is stale: regenerate with `airlock-runtime man man/`"
        );
    }
}
