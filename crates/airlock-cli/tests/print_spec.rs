//! The spec's round trip through `--print-spec`, as JSON and as TOML (the
//! library's own tests are in crates/airlock/tests).

mod common;
use common::*;

#[test]
fn print_spec_round_trips() {
    require_root!();
    let r = output(airlock(&[
        "run",
        "--print-spec",
        "--hostname",
        "rt",
        "--tmpfs",
        "/scratch",
        "--setenv",
        "A",
        "b",
        "--",
        "sh",
        "-c",
        "hostname; echo $A; test -d /scratch && echo scratch",
    ]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let spec = airlock::spec::from_json(&r.stdout).expect("print-spec output parses");
    assert_eq!(spec.hostname, "rt");
    let dir = tempdir();
    let path = dir.path().join("spec.json");
    std::fs::write(&path, &r.stdout).unwrap();
    let run = output(airlock(&["run", "--spec", &path.display().to_string()]));
    assert_eq!(run.stdout, "rt\nb\nscratch\n", "{}", run.stderr);
    // TOML works the same.
    let toml_text = "hostname = \"from-toml\"\n[process]\nargs = [\"hostname\"]\n\
                     [[filesystem.mounts]]\ntype = \"bind\"\nsource = \"/usr\"\ndestination = \"/usr\"\n\
                     [[filesystem.mounts]]\ntype = \"symlink\"\ntarget = \"usr/bin\"\ndestination = \"/bin\"\n\
                     [[filesystem.mounts]]\ntype = \"symlink\"\ntarget = \"usr/lib\"\ndestination = \"/lib\"\n\
                     [[filesystem.mounts]]\ntype = \"symlink\"\ntarget = \"usr/lib64\"\ndestination = \"/lib64\"\n";
    let tpath = dir.path().join("spec.toml");
    std::fs::write(&tpath, toml_text).unwrap();
    let run = output(airlock(&["run", "--spec", &tpath.display().to_string()]));
    assert_eq!(run.stdout.trim(), "from-toml", "{}", run.stderr);
}

/// `--print-spec | head` is a normal thing to type: a reader that stops
/// early is no panic and no error.
#[test]
fn print_spec_into_a_closed_pipe_is_quiet() {
    use std::io::Read;
    let mut child = airlock(&["run", "--print-spec", "--", "true"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Close the reading end at once, before airlock writes.
    drop(child.stdout.take());
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = child.wait().unwrap();
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(status.code(), Some(0), "{stderr}");
}

/// What a spec cannot carry is said, not dropped without a word: flags
/// that place the sandbox (`--cgroup-parent`, `--store`) or make it live
/// a certain way (`-d`, `--name`, `--die-with-parent`) must be given
/// again with `--spec`. A spec file's port list is replaced by the flags'
/// (each restricts: added to, it widened).
#[test]
fn print_spec_says_what_it_leaves_out_and_flags_override_the_file() {
    let r = output(airlock(&[
        "run",
        "--print-spec",
        "--cgroup-parent",
        "/",
        "--store",
        "/tmp",
        "--die-with-parent",
        "--",
        "true",
    ]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains(
            "note: --store, --cgroup-parent, --die-with-parent are not part of a spec: give them again with --spec"
        ),
        "{}",
        r.stderr
    );
    let r = output(airlock(&["run", "--print-spec", "--", "true"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!r.stderr.contains("note:"), "{}", r.stderr);
    let r = output(airlock(&[
        "--state-root",
        "/tmp/elsewhere",
        "run",
        "--print-spec",
        "--",
        "true",
    ]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("note: --state-root is not part of a spec"),
        "{}",
        r.stderr
    );

    let dir = tempdir();
    let file = dir.path().join("ports.json");
    std::fs::write(
        &file,
        r#"{"process": {"args": ["true"]}, "landlock": {"tcp_bind": [80], "tcp_connect": [53]}}"#,
    )
    .unwrap();
    let r = output(airlock(&[
        "run",
        "--print-spec",
        "--spec",
        &file.display().to_string(),
        "--tcp-bind",
        "443",
    ]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let spec = airlock::spec::from_json(&r.stdout).unwrap();
    assert_eq!(spec.landlock.tcp_bind, Some(vec![443]));
    assert_eq!(spec.landlock.tcp_connect, Some(vec![53]));
}

/// A spec file that joins a namespace by path and also makes one of that
/// kind is refused as `airlock check` refuses it, not quietly mended by
/// `run` into the join.
#[test]
fn a_spec_that_joins_and_makes_a_namespace_is_refused_as_check_refuses_it() {
    let dir = tempdir();
    let file = dir.path().join("join.json");
    std::fs::write(
        &file,
        r#"{"process": {"args": ["true"]}, "namespaces": {"net": true, "join": {"net": "/proc/self/ns/net"}}}"#,
    )
    .unwrap();
    let path = file.display().to_string();
    // check plans where run would, --cgroup-parent included.
    let r = output(airlock(&[
        "check",
        "--cgroup-parent",
        "/no/such/parent",
        &path,
    ]));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("--cgroup-parent: "), "{}", r.stderr);
    let check = output(airlock(&["check", &path]));
    let run = output(airlock(&["run", "--spec", &path]));
    assert_eq!(check.code, 2, "{}", check.stderr);
    assert_eq!(run.code, 125, "{}", run.stderr);
    for r in [&check, &run] {
        assert!(
            r.stderr.contains("namespaces.join.net") || r.stderr.contains("namespaces.net"),
            "{}",
            r.stderr
        );
    }
}
