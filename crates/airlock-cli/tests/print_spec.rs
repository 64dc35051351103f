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
