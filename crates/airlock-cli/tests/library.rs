//! The library API: build a spec in Rust, spawn, wait; and the spec's
//! round trip through `--print-spec`.

mod common;
use airlock::{Error, FailureKind, Sandbox, SandboxSpec, SpawnOptions};
use common::*;

fn opts() -> SpawnOptions {
    SpawnOptions {
        runner: Some(airlock_bin().to_path_buf()),
        ..Default::default()
    }
}

#[test]
fn spawn_and_wait() {
    require_root!();
    let dir = shared_dir();
    let spec = SandboxSpec::builder()
        .args(["sh", "-c", "hostname > /out/h; exit 4"])
        .default_view()
        .hostname("lib-box")
        .bind(dir.path().display().to_string(), "/out")
        .build();
    let sandbox = Sandbox::spawn_with(&spec, &opts()).unwrap();
    assert!(sandbox.pid() > 0);
    assert_eq!(sandbox.wait().unwrap().code, 4);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("h")).unwrap(),
        "lib-box\n"
    );
}

#[test]
fn typed_errors() {
    require_root!();
    let spec = SandboxSpec::builder()
        .args(["definitely-not-here"])
        .default_view()
        .build();
    match Sandbox::spawn_with(&spec, &opts()) {
        Err(Error::Setup(e)) => {
            assert_eq!(e.kind, FailureKind::NotFound);
            assert!(e.step.contains("exec"), "{e}");
        }
        other => panic!("expected a setup error, got {other:?}"),
    }
    let spec = SandboxSpec::builder()
        .args(["true"])
        .ro_bind("/nonexistent-src", "/x")
        .build();
    match Sandbox::spawn_with(&spec, &opts()) {
        Err(Error::Setup(e)) => assert_eq!(
            e.to_string(),
            "mount /x: source /nonexistent-src does not exist"
        ),
        other => panic!("expected a setup error, got {other:?}"),
    }
    let spec = SandboxSpec::builder().args(Vec::<String>::new()).build();
    assert!(matches!(
        Sandbox::spawn_with(&spec, &opts()),
        Err(Error::Spec(_))
    ));
}

#[test]
fn verbose_trace_names_the_steps() {
    require_root!();
    let spec = SandboxSpec::builder().args(["true"]).default_view().build();
    let sandbox = Sandbox::spawn_with(
        &spec,
        &SpawnOptions {
            verbose: true,
            ..opts()
        },
    )
    .unwrap();
    let trace = sandbox.trace().join("\n");
    for step in [
        "clone3",
        "write id maps",
        "pivot_root",
        "mount /proc",
        "exec true",
    ] {
        assert!(trace.contains(step), "missing {step:?} in:\n{trace}");
    }
    assert_eq!(sandbox.wait().unwrap().code, 0);
}

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
