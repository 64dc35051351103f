//! What a podman or bubblewrap user expects of the command line: 125 for
//! every error of airlock's own (usage errors included) and the
//! workload's status otherwise; mount errors that name the flag; one line
//! per acknowledged warning and none with -q; completions, a man page and
//! a --version that says the commit and the kernel's features; the image
//! store's ls and rm.

mod common;
use common::images::{busybox_layer, oci_layout};
use common::*;
use serde_json::json;
use std::path::Path;

#[test]
fn usage_errors_exit_125_and_help_version_exit_0() {
    for args in [
        vec!["run", "--timeout", "soon", "--", "true"],
        vec!["run", "--no-such-flag"],
        vec!["no-such-verb"],
        vec!["image", "rm"],
        vec![],
    ] {
        let r = output(airlock(&args));
        assert_eq!(r.code, 125, "{args:?}: {}", r.stderr);
    }
    for args in [vec!["--help"], vec!["run", "--help"], vec!["-V"]] {
        let r = output(airlock(&args));
        assert_eq!(r.code, 0, "{args:?}: {}", r.stderr);
    }
    // The workload's own status passes through; 127 is for "not found".
    assert_eq!(sh(&[], "exit 3").code, 3);
    assert_eq!(
        output(airlock(&["run", "--", "/no/such/program"])).code,
        127
    );
}

#[test]
fn version_says_the_commit_and_the_kernel_features() {
    let r = output(airlock(&["--version"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    let first = r.stdout.lines().next().unwrap_or_default();
    assert!(
        first.starts_with(&format!("airlock {} (commit ", env!("CARGO_PKG_VERSION"))),
        "{}",
        r.stdout
    );
    if let Some(c) = commit {
        assert!(first.contains(&c), "built from {c}: {}", r.stdout);
    }
    let abi = std::fs::metadata("/sys/kernel/security/landlock").is_ok();
    let landlock = r
        .stdout
        .lines()
        .find(|l| l.starts_with("landlock: "))
        .expect("landlock line");
    if abi {
        assert!(landlock.starts_with("landlock: ABI "), "{landlock}");
    }
    let cgroup = r
        .stdout
        .lines()
        .find(|l| l.starts_with("cgroup: "))
        .expect("cgroup line");
    let v2 = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .contains(" - cgroup2 ");
    assert!(
        if v2 {
            cgroup.ends_with("v2") || cgroup.ends_with("hybrid")
        } else {
            cgroup.ends_with("v1")
        },
        "{cgroup}"
    );
    assert!(
        r.stdout.contains("\nidmapped mounts: yes") || r.stdout.contains("\nidmapped mounts: no"),
        "{}",
        r.stdout
    );
}

#[test]
fn completions_and_man_page_come_from_the_definitions() {
    for (shell, marker) in [
        ("bash", "_airlock"),
        ("zsh", "#compdef airlock"),
        ("fish", "complete -c airlock"),
    ] {
        let r = output(airlock(&["completions", shell]));
        assert_eq!(r.code, 0, "{shell}: {}", r.stderr);
        assert!(
            r.stdout.contains(marker),
            "{shell}: {}",
            &r.stdout[..r.stdout.len().min(300)]
        );
        assert!(
            r.stdout.contains("ro-bind"),
            "{shell} completes run's flags"
        );
    }
    let r = output(airlock(&["man"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.starts_with(".ie") || r.stdout.contains(".TH airlock"),
        "{}",
        &r.stdout[..200]
    );
    // The pages in the repository are the ones the definitions give.
    let dir = tempdir();
    let r = output(airlock(&["man", dir.path().to_str().unwrap()]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../man");
    // Every page (only three were compared, and a changed help text left
    // man/airlock-check.1 stale).
    let pages: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(pages.len() > 15, "{pages:?}");
    for page in &pages {
        let made = std::fs::read_to_string(dir.path().join(page)).expect(page);
        let kept = std::fs::read_to_string(shipped.join(page)).unwrap_or_default();
        assert!(
            made == kept,
            "man/{page} is stale: regenerate with `airlock man man/`"
        );
    }
}

/// A reader that stops early (`| head`) ends a printing verb quietly, as
/// it ends `ls`: no panic, no backtrace.
#[test]
fn a_closed_output_pipe_ends_a_printing_verb_quietly() {
    for args in [
        &["check", "--list"][..],
        &["completions", "bash"],
        &["ps", "-a"],
    ] {
        let mut child = airlock(args)
            .env("RUST_BACKTRACE", "1")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // The reading end goes before anything is written.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        use std::os::unix::process::ExitStatusExt;
        assert!(
            out.status.success() || out.status.signal() == Some(libc::SIGPIPE),
            "{args:?}: {:?}",
            out.status
        );
    }
}

#[test]
fn mount_errors_name_the_flag_and_spec_errors_the_field() {
    let r = output(airlock(&["run", "--tmpfs", "scratch", "--", "true"]));
    assert_eq!(r.code, 125);
    assert!(
        r.stderr
            .contains("--tmpfs scratch: \"scratch\" is relative"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("mounts["), "{}", r.stderr);
    // A finding about a flag names the flag too.
    let r = output(airlock(&["run", "--bind", "/etc", "/etc2", "--", "true"]));
    assert_eq!(r.code, 125);
    assert!(r.stderr.contains("]: --bind /etc /etc2: "), "{}", r.stderr);
    // A spec file's mount is named by its field.
    let dir = tempdir();
    let spec = dir.path().join("s.json");
    std::fs::write(
        &spec,
        r#"{"process": {"args": ["true"]}, "filesystem": {"mounts": [{"type": "tmpfs", "destination": "scratch"}]}}"#,
    )
    .unwrap();
    let r = output(airlock(&["run", "--spec", spec.to_str().unwrap()]));
    assert_eq!(r.code, 125);
    assert!(r.stderr.contains("filesystem.mounts[0]"), "{}", r.stderr);
    // Other flags' errors name the flag as it was given too.
    for (args, says) in [
        (
            &["--rlimit", "nofle=1", "--", "true"][..],
            "--rlimit nofle=1: unknown resource",
        ),
        (
            &["--rlimit", "nofile=10:5", "--", "true"],
            "--rlimit nofile=10:5: soft limit",
        ),
        (&["--chdir", "/nonexistent", "--", "true"], "--chdir: "),
        (&["--"], "the command (after --): no program given"),
    ] {
        let mut a = vec!["run"];
        a.extend_from_slice(args);
        let r = output(airlock(&a));
        assert_eq!(r.code, 125, "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains(says), "{args:?}: {}", r.stderr);
        assert!(!r.stderr.contains("process."), "{args:?}: {}", r.stderr);
    }
}

#[test]
fn sharing_the_host_ipc_namespace_is_warned_about_and_is_the_hosts() {
    let ours = std::fs::read_link("/proc/self/ns/ipc").unwrap();
    let r = sh(&["--share-ipc"], "readlink /proc/self/ns/ipc");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("warning[shared-ipc]"), "{}", r.stderr);
    assert_eq!(
        r.stdout.trim(),
        ours.to_str().unwrap(),
        "the host's namespace"
    );
    // Not shared: a namespace of its own, and nothing to warn about.
    let r = sh(&[], "readlink /proc/self/ns/ipc");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!r.stderr.contains("shared-ipc"), "{}", r.stderr);
    assert_ne!(r.stdout.trim(), ours.to_str().unwrap());
}

#[test]
fn an_acknowledged_warning_is_one_line_and_quiet_silences_it() {
    let r = sh(&["--share-net"], "true");
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lines: Vec<&str> = r.stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{}", r.stderr);
    assert!(
        lines[0].starts_with("airlock: warning[shared-network]"),
        "{}",
        r.stderr
    );
    let r = sh(&["--share-net", "-q"], "true");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stderr, "", "-q silences warnings");
    // Acknowledged: still one line, saying so; -q silences it too. (A
    // refusal a rootless caller can acknowledge and still start: a
    // shared PID namespace needs a cgroup to end it by, which a rootless
    // caller's host rarely delegates.)
    let unfiltered = ["--seccomp-profile", "none"];
    let acked = [&unfiltered[..], &["--allow-unsafe", "seccomp-disabled"]].concat();
    let r = sh(&acked, "true");
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{}", r.stderr);
    assert!(
        lines[0].contains("seccomp-disabled") && lines[0].ends_with("(acknowledged)"),
        "{}",
        r.stderr
    );
    let r = sh(&[&acked[..], &["--quiet"]].concat(), "true");
    assert_eq!((r.code, r.stderr.as_str()), (0, ""));
    // A refusal is never silenced.
    let r = sh(&[&unfiltered[..], &["-q"]].concat(), "true");
    assert_eq!(r.code, 125);
    assert!(r.stderr.contains("error[seccomp-disabled]"), "{}", r.stderr);
}

#[test]
fn image_ls_rm_and_progress() {
    let dir = tempdir();
    let store = dir.path().join("store").display().to_string();
    let img = dir.path().join("img");
    oci_layout(
        &img,
        &[(
            "ergo:1",
            vec![busybox_layer()],
            json!({"Cmd": ["/bin/true"]}),
        )],
    );
    // Relative, to see that ls reports it absolute.
    let r = output({
        let mut c = airlock(&["run", "-v", "--store", &store, "--image", "img"]);
        c.current_dir(dir.path());
        c
    });
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("airlock: image: verifying and unpacking layer 1/1 sha256:"),
        "{}",
        r.stderr
    );
    // Unpacked once: the second start has nothing to announce.
    let r = output(airlock(&[
        "run",
        "-v",
        "--store",
        &store,
        "--image",
        img.to_str().unwrap(),
    ]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!r.stderr.contains("unpacking layer"), "{}", r.stderr);

    let r = output(airlock(&[
        "image", "--store", &store, "ls", "--format", "json",
    ]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("ls --format json is JSON");
    assert_eq!(v[0]["name"], "ergo:1");
    assert_eq!(v[0]["source"], img.display().to_string());
    assert!(v[0]["size_bytes"].as_u64().unwrap() > 0, "{}", r.stdout);
    assert!(v[0]["store"].as_str().unwrap().starts_with('/'));
    let r = output(airlock(&["image", "--store", &store, "ls"]));
    assert!(
        r.stdout.contains(" kB ") || r.stdout.contains(" MB "),
        "human sizes: {}",
        r.stdout
    );

    let r = output(airlock(&["image", "--store", &store, "rm"]));
    assert_eq!(r.code, 125, "{}", r.stderr);
    let r = output(airlock(&["image", "--store", &store, "rm", "no-such"]));
    assert_eq!(r.code, 125, "{}", r.stderr);
    let r = output(airlock(&["image", "--store", &store, "rm", "ergo:1"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
}
