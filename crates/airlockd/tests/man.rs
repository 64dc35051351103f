//! The shipped man page is the one the definitions give.

use std::path::Path;

#[test]
fn the_shipped_man_page_is_current() {
    let dir = tempfile::tempdir().unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_airlockd"))
        .arg("--man")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let made = std::fs::read_to_string(dir.path().join("airlockd.8")).unwrap();
    assert!(made.contains(".TH airlockd 8"), "{made}");
    let kept =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../man/airlockd.8"))
            .unwrap_or_default();
    assert!(
        made == kept,
        "man/airlockd.8 is stale: regenerate with `airlockd --man man/`"
    );
}
