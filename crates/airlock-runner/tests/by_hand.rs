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

/// `RUNNER --attended 3` with `text` as its plan on fd 3: its stderr.
fn attended_with_plan(text: &str) -> (Option<i32>, String) {
    let dir = tempfile_dir();
    let plan = dir.join("plan");
    std::fs::write(&plan, text).unwrap();
    let runner = env!("CARGO_BIN_EXE_airlock-runner");
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("exec {runner} --attended 3 3<{}", plan.display()))
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("airlock-by-hand-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn refuses_a_plan_from_another_build() {
    let (code, err) = attended_with_plan("0123456789abcdef\n{\"job\":\"start\"}");
    assert_eq!(code, Some(125));
    assert!(
        err.contains("built from other sources than its caller"),
        "{err}"
    );
    // Its own build's id gets past that check (to the plan, which this
    // one is not).
    let (code, err) = attended_with_plan(&format!("{}\n{{}}", airlock::plan::BUILD_ID));
    assert_eq!(code, Some(125));
    assert!(!err.contains("other sources"), "{err}");
    assert!(err.contains("read the plan"), "{err}");
}
