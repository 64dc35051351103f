//! A sandbox whose supervisor and guard are both killed while it starts
//! leaves no cgroup behind. Alone in its test binary: it counts every
//! sandbox cgroup under ours, which no other test may be making meanwhile
//! (cargo runs test binaries one after another).

mod common;
use common::*;
use std::time::Duration;

#[test]
fn killing_the_supervisor_and_its_guard_while_starting_leaves_no_cgroup() {
    require_root!();
    let root = tempdir();
    let state_root = root.path().to_str().unwrap().to_string();
    let before = leftover_cgroups();
    for i in 0..24u64 {
        let mut cli = airlock(&[
            "--state-root",
            &state_root,
            "run",
            "-d",
            "--memory",
            "100M",
            "--",
            "sleep",
            "30",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
        // The supervisor is the CLI's child; its guard, once there, the
        // supervisor's. Killed together at a different point of the start
        // each round, 0 to 23 ms in.
        let cli_pid = cli.id() as i32;
        let supervisor = (0..500).find_map(|_| {
            let kid = children(cli_pid).into_iter().next();
            if kid.is_none() {
                std::thread::sleep(Duration::from_micros(200));
            }
            kid
        });
        std::thread::sleep(Duration::from_millis(i));
        if let Some(s) = supervisor {
            let mut victims = children(s);
            victims.push(s);
            for v in victims {
                let ours = std::fs::read_to_string(format!("/proc/{v}/comm"))
                    .is_ok_and(|c| c.starts_with("airlock"));
                if ours {
                    // SAFETY: kill on a process this test's airlock started.
                    unsafe { libc::kill(v, libc::SIGKILL) };
                }
            }
        }
        cli.wait().unwrap();
    }
    // What did start is recorded, and rm takes its cgroups with it.
    let listed = output(airlock(&["--state-root", &state_root, "ps", "-a"]));
    for line in listed.stdout.lines().skip(1) {
        let id = line.split_whitespace().next().unwrap();
        output(airlock(&["--state-root", &state_root, "rm", "-f", id]));
    }
    let left = |now: Vec<String>| -> Vec<String> {
        now.into_iter().filter(|d| !before.contains(d)).collect()
    };
    assert!(
        wait_until(5, || left(leftover_cgroups()).is_empty()),
        "left behind: {:?}",
        left(leftover_cgroups())
    );
}

/// The children of `pid`.
fn children(pid: i32) -> Vec<i32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}
