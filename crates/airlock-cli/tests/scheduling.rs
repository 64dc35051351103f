//! The workload's scheduling (`--nice`, `--sched`, `--io-priority`,
//! `--cpu-affinity`; spec `process.scheduling`), read from inside by a
//! process the workload started: what it lowers needs no privilege, what
//! raises it above the host's own work takes a root caller and the
//! `raised-priority` acknowledgement.

mod common;
use common::*;

/// nice, policy, real-time priority, CPUs, I/O class and level of the
/// process that runs it.
const PROBE: &str = "import os, ctypes, platform\n\
l = ctypes.CDLL(None, use_errno=True)\n\
io = l.syscall({\"x86_64\": 252, \"aarch64\": 31}[platform.machine()], 1, 0)\n\
print(os.getpriority(os.PRIO_PROCESS, 0), os.sched_getscheduler(0), os.sched_getparam(0).sched_priority, \",\".join(map(str, sorted(os.sched_getaffinity(0)))), io >> 13, io & 7)";

/// The probe's line on the host, where this test runs: what a sandbox
/// that sets nothing keeps.
fn on_host() -> String {
    let o = std::process::Command::new("python3")
        .args(["-c", PROBE])
        .output()
        .unwrap();
    String::from_utf8(o.stdout).unwrap()
}

/// The highest CPU this test may run on: one a sandbox can be confined to
/// that is not all of them (on a host with more than one).
fn last_cpu() -> String {
    let host = on_host();
    let cpus = host.split_whitespace().nth(3).unwrap();
    cpus.rsplit(',').next().unwrap().to_string()
}

/// A nice value above this test's own (which a run under `nice` raises),
/// so that any caller may set it, and other than its own, so that a
/// sandbox that kept it would show.
fn lower_nice() -> String {
    let host = on_host();
    let own: i32 = host.split_whitespace().next().unwrap().parse().unwrap();
    assert!(
        own < 19,
        "run this test at a nice value below 19, not {own}"
    );
    (own + 3).min(19).to_string()
}

/// Whether a real-time policy can be had in this test's cpu cgroup: where
/// the v1 cpu controller has real-time groups, one without a real-time
/// runtime (as a container's or a service's may be) refuses it.
fn realtime_allowed() -> bool {
    let cgroups = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let Some(path) = cgroups.lines().find_map(|l| {
        let (ctl, path) = l.split_once(':')?.1.split_once(':')?;
        ctl.split(',').any(|c| c == "cpu").then(|| path.to_string())
    }) else {
        return true;
    };
    let file = format!("/sys/fs/cgroup/cpu{path}/cpu.rt_runtime_us");
    std::fs::read_to_string(file).map_or(true, |v| v.trim() != "0")
}

/// The probe run by the workload's shell, as `run` with `flags`.
fn probe(flags: &[&str], as_user: bool) -> Run {
    let script = format!("python3 -c '{PROBE}'");
    if as_user {
        sh_as_user(flags, &script)
    } else {
        sh(flags, &script)
    }
}

#[test]
fn the_workload_and_what_it_starts_keep_the_scheduling_asked() {
    let cpu = last_cpu();
    let nice = lower_nice();
    let lowered = [
        "--nice",
        &nice,
        "--sched",
        "batch",
        "--io-priority",
        "idle",
        "--cpu-affinity",
        &cpu,
    ];
    // SCHED_BATCH is 3; the idle I/O class 3, with no level.
    let want = format!("{nice} 3 0 {cpu} 3 0\n");
    // As root, as root and as the test user; otherwise as ourselves, a
    // rootless caller already.
    let callers: &[bool] = if is_root() { &[false, true] } else { &[false] };
    for &as_user in callers {
        let r = probe(&lowered, as_user);
        assert_eq!(r.code, 0, "as user {as_user}: {}", r.stderr);
        assert_eq!(r.stdout, want, "as user {as_user}");
        // Control: a sandbox that asks nothing keeps its caller's.
        let r = probe(&[], as_user);
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert_eq!(r.stdout, on_host(), "as user {as_user}");
    }
    // Best effort with a level; another policy.
    let r = probe(
        &["--io-priority", "best-effort:6", "--sched", "idle"],
        false,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let f: Vec<&str> = r.stdout.split_whitespace().collect();
    assert_eq!((f[1], f[4], f[5]), ("5", "2", "6"), "{}", r.stdout);
}

#[test]
fn raising_priority_takes_a_root_caller_and_the_acknowledgement() {
    // Refused by the guardrail, naming each flag that raises it.
    let raised = [
        "--nice",
        "-5",
        "--sched",
        "fifo:10",
        "--io-priority",
        "realtime:2",
    ];
    let r = probe(&raised, false);
    assert_eq!(r.code, 125, "{}", r.stderr);
    for flag in ["--nice", "--sched", "--io-priority"] {
        assert!(
            r.stderr
                .contains(&format!("error[raised-priority]: {flag}")),
            "{flag}: {}",
            r.stderr
        );
    }
    assert!(r.stdout.is_empty());
    let mut acked = raised.to_vec();
    acked.extend(["--allow-unsafe", "raised-priority"]);
    if !is_root() {
        eprintln!("SKIPPED (the root half): this test needs root to raise a priority");
    } else {
        // SCHED_FIFO is 1; the real-time I/O class 1.
        let r = probe(&acked, false);
        if !realtime_allowed() {
            // Refused by the kernel, and said so.
            eprintln!(
                "SKIPPED (the real-time half): this test's cpu cgroup has no real-time runtime"
            );
            assert_eq!(r.code, 125, "{}", r.stderr);
            assert!(r.stderr.contains("cpu.rt_runtime_us"), "{}", r.stderr);
        } else {
            assert_eq!(r.code, 0, "{}", r.stderr);
            let f: Vec<&str> = r.stdout.split_whitespace().collect();
            assert_eq!(
                (f[0], f[1], f[2], f[4], f[5]),
                ("-5", "1", "10", "1", "2"),
                "{}",
                r.stdout
            );
        }
    }
    // A rootless caller (the test user, or ourselves when not root) has no
    // CAP_SYS_NICE on the host, acknowledged or not: the start fails,
    // naming the flag, and nothing runs.
    {
        for (flags, flag) in [
            (["--nice", "-5"], "--nice"),
            (["--sched", "rr:3"], "--sched"),
        ] {
            let mut args = flags.to_vec();
            args.extend(["--allow-unsafe", "raised-priority"]);
            let r = probe(&args, is_root());
            assert_eq!(r.code, 125, "{}", r.stderr);
            assert!(
                r.stderr.contains(flag) && r.stderr.contains("CAP_SYS_NICE"),
                "{}",
                r.stderr
            );
            assert!(r.stdout.is_empty(), "{}", r.stdout);
        }
    }
}

#[test]
fn exec_keeps_the_sandboxs_scheduling() {
    let root = tempdir();
    let state = root.path().to_str().unwrap();
    let cpu = last_cpu();
    let nice = lower_nice();
    let name = format!("sched-{}", std::process::id());
    let r = output(airlock(&[
        "--state-root",
        state,
        "run",
        "-d",
        "--name",
        &name,
        "--nice",
        &nice,
        "--cpu-affinity",
        &cpu,
        "--",
        "sleep",
        "100",
    ]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let e = output(airlock(&[
        "--state-root",
        state,
        "exec",
        &name,
        "--",
        "python3",
        "-c",
        PROBE,
    ]));
    output(airlock(&["--state-root", state, "rm", "-f", &name]));
    assert_eq!(e.code, 0, "{}", e.stderr);
    let f: Vec<&str> = e.stdout.split_whitespace().collect();
    assert_eq!((f[0], f[3]), (nice.as_str(), cpu.as_str()), "{}", e.stdout);
}
