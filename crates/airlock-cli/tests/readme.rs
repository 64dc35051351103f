//! The README's examples, run as the README shows them, so that the README
//! cannot drift from the program. The commands are read from README.md
//! itself; what they print is compared where the README shows it.
//!
//! Covered elsewhere, and skipped here: the image examples (a `podman
//! save` archive: tests/images.rs), the daemon's (airlockd's tests), the
//! OCI runtime's (airlock-runtime's podman and containerd tests), and the
//! two that need a terminal (`exec -t`: tests/terminal.rs; `attach`:
//! tests/attach.rs).

mod common;
use common::*;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn readme() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap()
}

/// The fenced blocks of the README with the given info string.
fn blocks(kind: &str) -> Vec<String> {
    let text = readme();
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        match (&mut current, line.strip_prefix("```")) {
            (None, Some(info)) if info == kind => current = Some(String::new()),
            (Some(b), Some(_)) => {
                out.push(std::mem::take(b));
                current = None;
            }
            (Some(b), None) => {
                b.push_str(line);
                b.push('\n');
            }
            _ => {}
        }
    }
    out
}

/// A console block's commands (without their `# comment`) and the lines
/// the README shows after each.
fn commands(block: &str) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for line in block.lines() {
        if let Some(cmd) = line.strip_prefix("$ ") {
            let cmd = cmd.split("  #").next().unwrap().trim_end();
            out.push((cmd.to_string(), Vec::new()));
        } else if let Some((_, shown)) = out.last_mut() {
            shown.push(line.to_string());
        }
    }
    out
}

/// The console block whose first command starts with `first`.
fn block_starting(first: &str) -> Vec<(String, Vec<String>)> {
    blocks("console")
        .iter()
        .map(|b| commands(b))
        .find(|c| c.first().is_some_and(|(cmd, _)| cmd.starts_with(first)))
        .unwrap_or_else(|| panic!("README has no console block starting with `{first}`"))
}

/// `sh -c COMMAND` with our `airlock` first on PATH, in `dir`.
fn shell(command: &str, dir: &std::path::Path, state: &std::path::Path) -> Command {
    let bin = airlock_bin().parent().unwrap();
    let mut c = Command::new("sh");
    c.args(["-c", command])
        .current_dir(dir)
        .env(
            "PATH",
            format!(
                "{}:{}",
                bin.display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .env("AIRLOCK_STATE_ROOT", state)
        .stdin(Stdio::null());
    c
}

#[test]
fn the_first_command_runs_the_default_sandbox() {
    let block = &blocks("sh")[0];
    let shown = block.trim();
    let (build, run) = shown.split_once(" && ").expect("build && run");
    assert_eq!(build, "cargo build --release");
    let args = run
        .strip_prefix("target/release/airlock run -- sh -c '")
        .and_then(|a| a.strip_suffix('\''))
        .expect("the run of the first command");
    for as_user in [false, true] {
        if as_user && !is_root() {
            continue;
        }
        let argv = ["run", "--", "sh", "-c", args];
        let r = output(if as_user {
            airlock_as_user(&argv)
        } else {
            airlock(&argv)
        });
        assert_eq!(r.code, 0, "{}", r.stderr);
        let lines: Vec<&str> = r.stdout.lines().collect();
        let uid = if as_user && is_root() {
            format!("uid={USER}")
        } else if is_root() {
            "uid=0(root)".into()
        } else {
            "uid=".into()
        };
        assert!(lines[0].starts_with(&uid), "{}", r.stdout);
        assert_eq!(lines[1], "airlock");
        let uptime: f64 = lines[2].split(' ').next().unwrap().parse().unwrap();
        assert!(uptime < 60.0, "uptime {uptime}");
        let listing: Vec<&str> = lines[3..].to_vec();
        for d in ["bin", "dev", "etc", "proc", "tmp", "usr"] {
            assert!(listing.contains(&d), "{d} missing from {listing:?}");
        }
    }
}

#[test]
fn the_cli_errors_are_shown_as_they_are() {
    let state = tempdir();
    let dir = tempdir();
    for (cmd, shown) in block_starting("airlock run --ro-bind /srv/missing") {
        let out = shell(&cmd, dir.path(), state.path()).output().unwrap();
        assert_eq!(out.status.code(), Some(125), "{cmd}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.trim_end(), shown.join("\n"), "{cmd}");
    }
}

#[test]
fn the_exit_report_example() {
    require_root!();
    let state = tempdir();
    let dir = tempdir();
    let block = block_starting("airlock run --memory 32M");
    let (cmd, shown) = &block[0];
    let out = shell(cmd, dir.path(), state.path()).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim_end(), shown[0], "{cmd}");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("r.json")).unwrap()).unwrap();
    assert_eq!(report["ended"], "oom-killed", "{report}");
    assert_eq!(report["code"], 137);
}

#[test]
fn the_guardrail_example() {
    let state = tempdir();
    let dir = tempdir();
    let block = block_starting("airlock run --bind /etc /etc");
    let (cmd, shown) = &block[0];
    let out = shell(cmd, dir.path(), state.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(125), "{cmd}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim_end(), shown.join("\n"), "{cmd}");
    // `airlock check --list` prints the table.
    let list = block
        .iter()
        .find(|(c, _)| c.starts_with("airlock check --list"))
        .expect("check --list");
    let out = shell(&list.0, dir.path(), state.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
}

/// The README's guardrail table says what `airlock check --list` says:
/// every code, its severity and what it catches (the README may set
/// paths in code type).
#[test]
fn the_guardrail_table_is_the_rule_table() {
    let readme = readme();
    for r in airlock::check::RULES {
        let row_start = format!("| `{}` | ", r.code);
        let row = readme
            .lines()
            .find(|l| l.starts_with(&row_start))
            .unwrap_or_else(|| panic!("no README row for {}", r.code));
        let severity = match r.severity {
            airlock::check::Severity::Deny => "deny",
            airlock::check::Severity::Warn => "warn",
        };
        let want = format!("{row_start}{severity} | {} |", r.catches);
        assert_eq!(row.replace('`', ""), want.replace('`', ""), "{}", r.code);
    }
}

/// The lifecycle block, top to bottom, with the status each command has.
#[test]
fn the_lifecycle_examples_run_in_order() {
    let state = tempdir();
    let dir = tempdir();
    let block = block_starting("airlock run -d --name web");
    let expected = |cmd: &str| -> Option<i32> {
        match cmd {
            // A terminal of its own: tests/terminal.rs and tests/attach.rs.
            c if c.starts_with("airlock exec -t") || c.starts_with("airlock attach") => None,
            c if c.starts_with("airlock wait web") => Some(128 + libc::SIGUSR1),
            _ => Some(0),
        }
    };
    let mut ran = 0;
    for (cmd, shown) in &block {
        let Some(code) = expected(cmd) else { continue };
        if cmd.starts_with("airlock logs -f") {
            // Follows until the workload ends: still following, not failed.
            let mut child = shell(cmd, dir.path(), state.path())
                .stdout(Stdio::null())
                .spawn()
                .unwrap();
            std::thread::sleep(Duration::from_millis(500));
            assert!(child.try_wait().unwrap().is_none(), "{cmd} ended early");
            child.kill().unwrap();
            child.wait().unwrap();
            ran += 1;
            continue;
        }
        let started = Instant::now();
        let out = shell(cmd, dir.path(), state.path()).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(code),
            "{cmd} after {:?}: {stdout}\n{stderr}",
            started.elapsed()
        );
        if cmd.starts_with("airlock ps") {
            // The columns the README shows, and web running.
            let header = shown[0].split_whitespace().collect::<Vec<_>>();
            let got = stdout
                .lines()
                .next()
                .unwrap()
                .split_whitespace()
                .collect::<Vec<_>>();
            assert_eq!(got, header);
            assert!(
                stdout.contains(" web ") && stdout.contains("running"),
                "{stdout}"
            );
        }
        if cmd.starts_with("airlock exec web") {
            assert!(stdout.starts_with("airlock\n"), "{stdout}");
        }
        ran += 1;
    }
    assert_eq!(
        ran,
        block.len() - 2,
        "every command but the two with a terminal ran"
    );
    let _ = shell("airlock rm -f job box", dir.path(), state.path()).output();
}

#[test]
fn the_spec_example_runs() {
    require_root!();
    let toml = blocks("toml")
        .into_iter()
        .find(|b| b.starts_with("hostname = \"builder\""))
        .expect("the spec example");
    let dir = tempdir();
    let file = dir.path().join("build.toml");
    std::fs::write(&file, &toml).unwrap();
    let f = file.display().to_string();
    let r = output(airlock(&["run", "--spec", &f]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "built on builder as 0\n", "{}", r.stderr);
    // As a normal user, without the [resources] this host does not
    // delegate (as the README says).
    let rootless: String = toml
        .split("\n\n")
        .filter(|section| !section.starts_with("[resources]"))
        .collect::<Vec<_>>()
        .join("\n\n");
    let file = dir.path().join("rootless.toml");
    std::fs::write(&file, rootless).unwrap();
    let f = file.display().to_string();
    let r = output(airlock_as_user(&["run", "--spec", &f]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, format!("built on builder as {USER}\n"));
}

#[test]
fn the_library_example_is_the_readme_and_runs() {
    let example =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/library.rs"))
            .unwrap();
    let body = example
        .split_once("// README begin\n")
        .and_then(|(_, rest)| rest.split_once("    // README end"))
        .map(|(body, _)| body)
        .expect("README markers in examples/library.rs");
    let body: String = body
        .lines()
        .map(|l| l.strip_prefix("    ").unwrap_or(l))
        .map(|l| format!("{l}\n"))
        .collect();
    let shown = blocks("rust")
        .into_iter()
        .find(|b| b.starts_with("use airlock::{Sandbox, SandboxSpec};"))
        .expect("the library example");
    assert!(
        shown.ends_with(&body),
        "README's library example differs from examples/library.rs:\n{shown}\n---\n{body}"
    );
    require_root!();
    // Built by `cargo test` beside the test binaries.
    let bin = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples/library");
    if !bin.exists() {
        eprintln!(
            "SKIPPED: {} was not built (cargo test builds examples)",
            bin.display()
        );
        return;
    }
    let out_dir = shared_dir();
    let out = out_dir.path().join("out");
    let r = output({
        let mut c = Command::new(&bin);
        c.arg(&out).env("AIRLOCK_RUNNER", runner_bin());
        c
    });
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "hi from airlock: Exited\n", "{}", r.stderr);
}

/// docs/spec.md names every field a resolved spec has (walked from
/// `--print-spec` of a command line that sets many of them).
#[test]
fn the_spec_reference_names_every_field() {
    fn walk(v: &serde_json::Value, path: &str, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, x) in m {
                    let p = match path {
                        "" => k.clone(),
                        _ => format!("{path}.{k}"),
                    };
                    walk(x, &p, out);
                    out.push(p);
                }
            }
            serde_json::Value::Array(a) => {
                for x in a {
                    walk(x, &format!("{path}[]"), out);
                }
            }
            _ => {}
        }
    }
    let r = output(airlock(&[
        "run",
        "--print-spec",
        "--size",
        "1M",
        "--tmpfs",
        "/t",
        "--memory",
        "64M",
        "--pids",
        "10",
        "--dev",
        "/dev",
        "--proc",
        "/proc",
        "--cap-add",
        "CAP_NET_RAW",
        "--rlimit",
        "nofile=10",
        "--argv0",
        "t",
        "--",
        "true",
    ]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let spec: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let mut fields = Vec::new();
    walk(&spec, "", &mut fields);
    assert!(fields.len() > 40, "{fields:?}");
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/spec.md"))
        .unwrap();
    let missing: Vec<_> = fields
        .iter()
        .filter(|f| !doc.contains(&format!("`{f}`")))
        .collect();
    assert!(missing.is_empty(), "docs/spec.md misses {missing:?}");
}
