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
