//! A foreground `run` or `exec -t` given no `--console-socket` relays the
//! container's terminal itself, as runc's do (`runc spec` asks for a
//! terminal; `runc run` then works at a shell): driven on a
//! pseudo-terminal as a person would, by the CLI's tests/terminal/drive.py
//! (a first window of 33x101, 40x120 after READY, then "hello" typed).

#[macro_use]
mod common;
use common::*;
use serde_json::json;
use std::process::Command;

const DRIVER: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../airlock-cli/tests/terminal/drive.py"
);

/// What the terminal showed, and the exit status, of `args` to the
/// runtime under the driver.
fn driven(env: &Env, args: &[&str]) -> String {
    let root = env.root();
    let o = Command::new("python3")
        .arg(DRIVER)
        .arg(env!("CARGO_BIN_EXE_airlock-runtime"))
        .arg("--root")
        .arg(&root)
        .args(args)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

const SCRIPT: &str = "tty; stty size; echo READY; read l; stty size; echo got=$l; exit 3";

fn relayed(out: &str) {
    for seen in ["/dev/pts/0", "33 101", "READY", "40 120", "got=hello"] {
        assert!(out.contains(seen), "{seen:?} not shown: {out}");
    }
    assert!(out.ends_with("status 3\n"), "{out}");
}

/// Nothing of the relay stays in the state root.
fn no_console_left(env: &Env) {
    let left: Vec<String> = std::fs::read_dir(env.root())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".console"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn a_foreground_run_relays_the_containers_terminal() {
    require_root!();
    let env = Env::new();
    let b = env.bundle("t", &["sh", "-c", SCRIPT], |c| {
        c["process"]["terminal"] = json!(true);
    });
    // One a runtime killed during its run left (pid 4194304: past
    // PID_MAX_LIMIT, nobody's) is taken away by the next.
    std::fs::create_dir_all(env.root().join(".console-4194304-0")).unwrap();
    relayed(&driven(
        &env,
        &["run", "--bundle", b.to_str().unwrap(), "t"],
    ));
    no_console_left(&env);
    // Detached, there is nobody to relay it: refused, as runc refuses it.
    let o = env.rt(&["run", "-d", "--bundle", b.to_str().unwrap(), "t2"]);
    assert!(!o.status.success());
    assert!(
        text(&o).1.contains("no --console-socket was given"),
        "{:?}",
        text(&o)
    );
}

#[test]
fn a_foreground_exec_tty_relays_its_terminal() {
    require_root!();
    let env = Env::new();
    let b = env.bundle("x", &["sleep", "1000"], |_| {});
    let o = env.rt(&["run", "-d", "--bundle", b.to_str().unwrap(), "x"]);
    assert!(o.status.success(), "{:?}", text(&o));
    relayed(&driven(&env, &["exec", "-t", "x", "sh", "-c", SCRIPT]));
    no_console_left(&env);
    // A process that ends at once: its runner sent the terminal before
    // the relay's thread first looked, which then took the end for "no
    // terminal came" and showed nothing.
    for i in 0..10 {
        let said = format!("said-{i}");
        let out = driven(&env, &["exec", "-t", "x", "echo", &said]);
        assert!(out.contains(&said), "run {i}: {out}");
    }
    let o = env.rt(&["exec", "-t", "-d", "x", "true"]);
    assert!(!o.status.success());
    assert!(
        text(&o).1.contains("needs --console-socket"),
        "{:?}",
        text(&o)
    );
    assert!(env.rt(&["delete", "--force", "x"]).status.success());
}
