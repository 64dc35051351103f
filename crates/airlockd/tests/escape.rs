//! The escape battery (airlock-cli's tests/escape) through airlockd: a
//! sandbox the daemon makes for a client, from the flags the CLI sends
//! with `--host`, holds as the CLI's own do, for root and for a member of
//! the daemon's group.

mod common;
use common::cli::*;
use common::*;

#[path = "../../airlock-cli/tests/escape/battery.rs"]
mod battery;

/// The unprivileged caller, a member of the daemon's group.
const USER: u32 = 1000;

/// The binaries a probe might try to overwrite: the daemon and the
/// runners it starts sandboxes with.
fn binaries() -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let daemon = std::path::PathBuf::from(env!("CARGO_BIN_EXE_airlockd"));
    let runners = [
        airlock::runner::RUNNER_BIN,
        airlock::runner::RUNNER_STATIC_BIN,
    ]
    .map(|r| daemon.with_file_name(r));
    std::iter::once(daemon)
        .chain(runners)
        .filter(|p| p.is_file())
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect()
}

/// `airlock run` of the battery through the daemon, as `uid` (None: as
/// root), with `extra` flags.
fn battery_through(d: &Daemon, uid: Option<u32>, extra: &[&str]) {
    let b = battery::bait_for(uid.unwrap_or(0));
    let before = binaries();
    let name = format!("escape-{}", uid.unwrap_or(0));
    // The daemon keeps a sandbox: started detached, waited for, its
    // output read from its logs.
    let mut args = ["run", "-d", "--name", &name].map(String::from).to_vec();
    args.extend(b.binds());
    for (k, v) in b.env(uid.is_none()) {
        args.extend(["--setenv".to_string(), k, v]);
    }
    args.extend(extra.iter().map(|a| a.to_string()));
    args.extend(["--", "python3", "/probes.py"].map(String::from));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let started = airlock(d, uid, &args);
    assert_eq!(started.code, 0, "{}", started.stderr);
    let waited = airlock(d, uid, &["wait", &name]);
    let logs = airlock(d, uid, &["logs", &name]);
    assert_eq!(logs.code, 0, "{}", logs.stderr);
    let code = waited.stdout.trim().parse().unwrap_or(-1);
    battery::judge(
        code,
        &logs.stdout,
        &format!("{}{}", waited.stderr, logs.stderr),
    );
    assert_eq!(airlock(d, uid, &["rm", &name]).code, 0);
    for (path, bytes) in before {
        assert!(
            std::fs::read(&path).unwrap() == bytes,
            "{} changed",
            path.display()
        );
    }
}

#[test]
fn the_escape_battery_through_the_daemon() {
    if !root_or_skip("the_escape_battery_through_the_daemon") {
        return;
    }
    let d = Daemon::start(&format!("group = \"{USER}\""));
    battery_through(&d, None, &["--memory", "256M", "--pids", "64"]);
    battery_through(&d, Some(USER), &["--memory", "256M", "--pids", "64"]);
}
