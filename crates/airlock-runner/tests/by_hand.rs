//! The runner refuses to be run by hand (and this test makes `cargo test
//! --workspace` build the runner binary the other crates' tests start).

#[test]
fn refuses_to_run_by_hand() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_airlock-runner"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(125));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("started by airlock itself"), "{err}");
}
