//! Resource control: cgroup limits seen from inside, the exit report, the
//! timeout, whole-sandbox kill, and cleanup.

mod common;
use common::*;

fn report(flags: &[&str], script: &str) -> (Run, serde_json::Value) {
    let dir = tempdir();
    let path = dir.path().join("report.json");
    let p = path.display().to_string();
    let mut f = vec!["--report", p.as_str()];
    f.extend_from_slice(flags);
    let r = sh(&f, script);
    let v = serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|_| "null".into()))
        .unwrap();
    (r, v)
}

#[test]
fn memory_limit_oom_kills_and_reports() {
    require_root!();
    let (r, v) = report(
        &["--memory", "32M"],
        "python3 -c 'x = bytearray(256 << 20); print(\"survived\")'",
    );
    assert_eq!(r.code, 137, "{}", r.stderr);
    assert!(!r.stdout.contains("survived"));
    assert_eq!(v["ended"], "oom-killed", "{v}");
    assert!(v["oom_kills"].as_u64().unwrap() >= 1);
    assert_eq!(v["peak_memory_scope"], "cgroup");
    assert!(v["peak_memory_bytes"].as_u64().unwrap() <= 33 << 20, "{v}");
    // Control: the same program fits without the limit.
    let (r, v) = report(
        &[],
        "python3 -c 'x = bytearray(256 << 20); print(\"survived\")'",
    );
    assert_eq!(r.stdout.trim(), "survived", "{}", r.stderr);
    assert_eq!(v["ended"], "exited");
}

/// An exit status above 128+64 is an exit, not a signal past the last.
#[test]
fn a_high_exit_status_is_an_exit() {
    let (r, v) = report(&[], "exit 255");
    assert_eq!(r.code, 255, "{}", r.stderr);
    assert_eq!(
        (v["ended"].as_str(), v["signal"].as_i64()),
        (Some("exited"), None),
        "{v}"
    );
    let (r, v) = report(&[], "kill -TERM $$");
    assert_eq!(r.code, 143, "{}", r.stderr);
    assert_eq!(
        (v["ended"].as_str(), v["signal"].as_i64()),
        (Some("signaled"), Some(15)),
        "{v}"
    );
}

#[test]
fn pids_limit() {
    require_root!();
    let (r, v) = report(
        &["--pids", "8"],
        "for i in $(seq 20); do sleep 2 & done; wait",
    );
    assert!(
        r.stderr.contains("Cannot fork") && r.stderr.contains("pids limit"),
        "{}",
        r.stderr
    );
    assert_eq!(v["pids_limit_hit"], true, "{v}");
    let (_, v) = report(
        &["--pids", "64"],
        "for i in $(seq 20); do sleep 0.1 & done; wait",
    );
    assert_eq!(v["pids_limit_hit"], false, "{v}");
}

#[test]
fn cpu_quota_limits_cpu_time() {
    require_root!();
    // One busy second of wall time: about 0.1 s of CPU under --cpus 0.1,
    // and however much the machine gives an unlimited sandbox, which even
    // on a loaded CI machine is well above that.
    let busy = "python3 -c 'import time\nt=time.time()\nwhile time.time()-t<1: pass'";
    let (_, limited) = report(&["--cpus", "0.1"], busy);
    let l = limited["cpu_seconds"].as_f64().unwrap();
    assert!(l < 0.3, "limited sandbox used {l}s of CPU in 1s");
    // The control: the same loop unlimited gets more. A machine busy
    // enough to starve it once gets two more tries.
    let free = || report(&[], busy).1["cpu_seconds"].as_f64().unwrap();
    let f = (0..3).map(|_| free()).find(|f| *f > 2.0 * l);
    assert!(
        f.is_some(),
        "unlimited sandbox never used over {}s",
        2.0 * l
    );
}

/// --cpuset-cpus pins the workload (seen from inside); a CPU the caller's
/// cgroup does not have is an error (the runner's, as the sandbox starts)
/// before anything runs, naming the flag as the user typed it, attended
/// and detached.
#[test]
fn cpuset_pins_the_workload() {
    require_root!();
    let r = sh(
        &["--cpuset-cpus", "0"],
        "grep Cpus_allowed_list /proc/self/status",
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.stdout.split_whitespace().last(),
        Some("0"),
        "{}",
        r.stdout
    );
    let r = sh(&["--cpuset-cpus", "4095"], "echo should-not-run");
    assert_eq!(r.code, 125, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("--cpuset-cpus: \"4095\" is not within the caller's cgroup's"),
        "{}",
        r.stderr
    );
    assert!(!r.stdout.contains("should-not-run"));
    let state = tempdir();
    let r = output(airlock(&[
        "--state-root",
        state.path().to_str().unwrap(),
        "run",
        "-d",
        "--cpuset-cpus",
        "4095",
        "--",
        "true",
    ]));
    assert_eq!(r.code, 125, "{}", r.stderr);
    assert!(
        r.stderr.contains("--cpuset-cpus: \"4095\" is not within"),
        "{}",
        r.stderr
    );
}

#[test]
fn timeout_kills_the_whole_sandbox_even_double_forked() {
    require_root!();
    let marker = format!("airlock-timeout-{}", std::process::id());
    // Shared PID namespace: killing PID 1 would not reach a daemonized
    // grandchild; the cgroup kill must.
    // (dash has no `exec -a`: the marker is in the grandchild shell's own
    // command line, which waits for its sleep.)
    let script = format!("setsid sh -c 'sleep 300; : {marker}' & sleep 300");
    let (r, v) = report(
        &[
            "--share-pid",
            "--allow-unsafe",
            "shared-pid",
            "--memory",
            "256M",
            // Long enough that setup (which the timeout covers too) never
            // takes it all, even on a loaded machine.
            "--timeout",
            "2s",
        ],
        &script,
    );
    assert_eq!(r.code, 137, "{}", r.stderr);
    assert_eq!(v["ended"], "timed-out");
    assert!(r.stderr.contains("timeout"), "{}", r.stderr);
    assert!(
        wait_until(5, || processes_with(&marker).is_empty()),
        "double-forked process survived"
    );
    let wall = v["wall_seconds"].as_f64().unwrap();
    assert!(wall >= 2.0, "{v}");
    // Not a speed bound: a sandbox that waited for its grandchild's
    // 300-second sleep instead of killing it would take that long.
    assert!(wall < 200.0, "the sandbox outlived its timeout: {v}");
}

#[test]
fn a_process_left_in_the_hosts_pid_namespace_is_killed_when_the_sandbox_ends() {
    require_root!();
    let marker = format!("airlock-leftover-{}", std::process::id());
    // Without a PID namespace of its own, PID 1's exit does not end a
    // daemonized grandchild: removing the cgroups must kill it first.
    // The grandchild says it runs in a file the script waits for, so that
    // one that never started cannot pass for a killed one. (Its command
    // line would not tell: until it execs, it is the script's, which holds
    // the marker too, and a read during the exec comes back empty.)
    let script = format!(
        "setsid sh -c 'echo started > /tmp/started; sleep 300; : {marker}' </dev/null >/dev/null 2>&1 & \
         i=0; while [ $i -lt 100 ] && ! [ -s /tmp/started ]; do sleep 0.1; i=$((i+1)); done; \
         cat /tmp/started"
    );
    let r = sh(&["--share-pid", "--allow-unsafe", "shared-pid"], &script);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout.trim(), "started", "the grandchild did not start");
    assert!(
        wait_until(5, || processes_with(&marker).is_empty()),
        "the daemonized process outlived its sandbox"
    );
}

#[test]
fn cgroups_are_removed_and_hold_the_sandbox_while_it_runs() {
    require_root!();
    use std::io::BufRead;
    let mut child = airlock(&[
        "run",
        "--memory",
        "64M",
        "--pids",
        "32",
        "--",
        "sh",
        "-c",
        "echo ready; read x; exit 0",
    ])
    .stdin(std::process::Stdio::piped())
    .stdout(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let inside = descendants(child.id() as i32);
    let names = cgroup_names_of(&inside);
    let dirs: Vec<String> = leftover_cgroups()
        .into_iter()
        .filter(|d| names.iter().any(|n| d.ends_with(&format!("/{n}"))))
        .collect();
    assert!(
        dirs.len() >= 2,
        "no sandbox cgroups while running: {dirs:?}"
    );
    for d in &dirs {
        let procs = std::fs::read_to_string(format!("{d}/cgroup.procs")).unwrap();
        let pids: Vec<i32> = procs.lines().filter_map(|l| l.parse().ok()).collect();
        assert!(
            !pids.is_empty() && pids.iter().all(|p| inside.contains(p)),
            "{d}: {pids:?} vs {inside:?}"
        );
    }
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success());
    let mine: Vec<String> = leftover_cgroups()
        .into_iter()
        .filter(|d| dirs.contains(d))
        .collect();
    assert!(mine.is_empty(), "left behind: {mine:?}");
}

#[test]
fn a_limit_the_host_cannot_apply_is_an_error() {
    require_root!();
    let layout = airlock::cgroup::Layout::detect().unwrap();
    let blkio_weight = layout
        .v1
        .get("blkio")
        .map(|h| {
            h.mount
                .join(h.own.trim_start_matches('/'))
                .join("blkio.weight")
                .exists()
        })
        .unwrap_or(false);
    if blkio_weight {
        eprintln!("SKIPPED: this host's blkio controller has a weight; nothing to refuse");
        return;
    }
    let before = leftover_cgroups();
    let r = sh(&["--io-weight", "100"], "echo should-not-run");
    assert_eq!(r.code, 125);
    assert!(
        r.stderr.contains("--io-weight: the blkio controller"),
        "{}",
        r.stderr
    );
    assert!(r.stdout.is_empty());
    assert_no_cgroup_left(&before);
}

/// `--cgroup-parent` makes the sandbox's cgroups under the cgroup it
/// names instead of the caller's (on v2 a cgroup with processes can give
/// its children no controller), in every hierarchy the sandbox has one
/// in. A parent that is missing or not a cgroup path is refused naming
/// the flag, and leaves nothing.
#[test]
fn cgroup_parent_places_the_sandboxs_cgroups() {
    require_root!();
    let Some((parent, dirs)) = test_cgroup_parent("cgparent") else {
        return;
    };
    let layout = airlock::cgroup::Layout::detect().unwrap();
    let flags = [
        "--cgroup-parent",
        parent.as_str(),
        "--pids",
        "16",
        "--share-cgroup",
    ];
    let before = leftover_cgroups();
    let missing = sh(&flags, "echo should-not-run");
    assert_eq!(missing.code, 125, "{}", missing.stderr);
    assert!(
        missing.stderr.contains("--cgroup-parent") || missing.stderr.contains("--pids"),
        "{}",
        missing.stderr
    );
    assert!(
        missing.stderr.contains("does not exist"),
        "{}",
        missing.stderr
    );
    assert!(missing.stdout.is_empty());
    let climbing = sh(&["--cgroup-parent", "/a/../b"], "echo should-not-run");
    assert_eq!(climbing.code, 125);
    assert!(
        climbing
            .stderr
            .contains("--cgroup-parent: \"/a/../b\" is not a cgroup path"),
        "{}",
        climbing.stderr
    );
    assert_no_cgroup_left(&before);

    for d in &dirs {
        std::fs::create_dir(d).unwrap();
    }
    let r = sh(&flags, "cat /proc/self/cgroup");
    let children: Vec<String> = dirs
        .iter()
        .flat_map(|d| std::fs::read_dir(d).unwrap().flatten())
        .filter(|e| e.file_type().unwrap().is_dir())
        .map(|e| e.path().display().to_string())
        .collect();
    for d in &dirs {
        let _ = std::fs::remove_dir(d);
    }
    assert_eq!(r.code, 0, "{}", r.stderr);
    let within = format!("{parent}/airlock-");
    let placed = |kind: &str| {
        r.stdout
            .lines()
            .find(|l| l.split(':').nth(1) == Some(kind))
            .is_some_and(|l| l.split(':').nth(2).unwrap().starts_with(&within))
    };
    if layout.v1.contains_key("pids") {
        assert!(placed("pids"), "{}", r.stdout);
    }
    if layout.v2.is_some() {
        assert!(placed(""), "{}", r.stdout);
    }
    assert!(children.is_empty(), "left behind: {children:?}");
    assert!(dirs.iter().all(|d| !d.exists()), "{dirs:?}");
}

/// A `--cgroup-parent` of the test's own (`tag` names it), and its
/// directories in the hierarchies a sandbox with `--pids` uses (not made
/// yet). Beneath the caller's pids cgroup (this project's machines account
/// for their processes by their cgroup: nothing is made outside it), or,
/// on a pure v2 host, at the root, whose subtree_control gives controllers
/// where a login session's scope cannot.
fn test_cgroup_parent(tag: &str) -> Option<(String, Vec<std::path::PathBuf>)> {
    let layout = airlock::cgroup::Layout::detect().unwrap();
    let base = layout.v1.get("pids").map_or("/", |h| h.own.as_str());
    if layout.v1.contains_key("pids") && layout.v2.as_ref().is_some_and(|h| h.own != base) {
        eprintln!("SKIPPED: the caller's pids and v2 cgroups differ; no parent beneath both");
        return None;
    }
    let parent = format!(
        "{}/{tag}-test-{}",
        base.trim_end_matches('/'),
        std::process::id()
    );
    let dirs = layout
        .v1
        .get("pids")
        .into_iter()
        .chain(layout.v2.iter())
        .map(|h| h.mount.join(parent.trim_start_matches('/')))
        .collect();
    Some((parent, dirs))
}

/// A supervisor killed after it made the cgroups, before PID 1 exists,
/// leaves none: the guard is forked before them and told of them at once
/// (it used to be forked after the clone, and they stayed for good).
/// strace holds the supervisor in its call for a session keyring, which
/// comes between the two, while the test kills it.
#[test]
fn a_supervisor_killed_before_pid1_leaves_no_cgroup() {
    require_root!();
    if !has_strace() {
        return;
    }
    let Some((parent, dirs)) = test_cgroup_parent("guard") else {
        return;
    };
    for d in &dirs {
        std::fs::create_dir(d).unwrap();
    }
    let made = || -> Vec<std::path::PathBuf> {
        dirs.iter()
            .flat_map(|d| std::fs::read_dir(d).into_iter().flatten().flatten())
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.path())
            .collect()
    };
    let mut strace = std::process::Command::new("strace")
        .args(["-f", "-qq", "-o", "/dev/null", "-e", "trace=keyctl"])
        .args(["-e", "inject=keyctl:delay_enter=3s"])
        .arg(airlock_bin())
        .args([
            "run",
            "--cgroup-parent",
            &parent,
            "--pids",
            "16",
            "--",
            "true",
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // The supervisor: the runner whose parent (the CLI) is not a runner
    // (the guard is one).
    let runner = runner_bin().display().to_string();
    let ppid = |p: i32| -> Option<i32> {
        let status = std::fs::read_to_string(format!("/proc/{p}/status")).ok()?;
        let line = status.lines().find_map(|l| l.strip_prefix("PPid:"))?;
        line.trim().parse().ok()
    };
    let mut supervisor = None;
    let held = wait_until(20, || {
        let runners: Vec<i32> = descendants(strace.id() as i32)
            .into_iter()
            .filter(|p| {
                std::fs::read(format!("/proc/{p}/cmdline"))
                    .is_ok_and(|c| c.starts_with(runner.as_bytes()))
            })
            .collect();
        supervisor = runners
            .iter()
            .copied()
            .find(|p| ppid(*p).is_some_and(|pp| !runners.contains(&pp)));
        supervisor.is_some() && made().len() == dirs.len()
    });
    if let Some(pid) = supervisor.filter(|_| held) {
        // SAFETY: kill takes a pid and a signal; the supervisor is this
        // test's, and held by strace until the kill.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    let gone = held && wait_until(10, || made().is_empty());
    let left = made();
    let _ = strace.kill();
    let _ = strace.wait();
    for d in left.iter().chain(&dirs) {
        let _ = std::fs::remove_dir(d);
    }
    assert!(held, "the supervisor never made its cgroups under strace");
    assert!(gone, "cgroups left: {left:?}");
}

/// The sandbox's cgroup namespace is rooted at its own cgroups in every
/// hierarchy, v1 ones included (which take PID 1 only after its clone):
/// the workload, and what `exec` starts, see `/` and nothing above.
#[test]
fn the_cgroup_namespace_is_rooted_at_the_sandboxs_cgroups() {
    require_root!();
    let r = sh(
        &["--memory", "64M", "--pids", "32"],
        "cat /proc/self/cgroup",
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.lines().count() > 0);
    for line in r.stdout.lines() {
        assert!(line.ends_with(":/"), "{}", r.stdout);
    }
    let name = format!("cgns-{}", std::process::id());
    let started = output(airlock(&[
        "run", "-d", "--name", &name, "--memory", "64M", "--", "sleep", "100",
    ]));
    assert_eq!(started.code, 0, "{}", started.stderr);
    let r = output(airlock(&["exec", &name, "--", "cat", "/proc/self/cgroup"]));
    let _ = output(airlock(&["rm", "-f", &name]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    for line in r.stdout.lines() {
        assert!(line.ends_with(":/"), "exec: {}", r.stdout);
    }
}

/// The default CPU weight is the default share on a v1 host too (runc's
/// old linear map made weight 100 into 2597 shares), and on v2 it is
/// written as given.
#[test]
fn the_default_cpu_weight_is_the_default_share() {
    require_root!();
    let weights = running_cgroup_files(&["--cpu-weight", "100"], &["cpu.shares", "cpu.weight"]);
    assert!(!weights.is_empty(), "no cpu cgroup found");
    for (file, value) in weights {
        let want = if file.ends_with("cpu.shares") {
            "1024"
        } else {
            "100"
        };
        assert_eq!(value.trim(), want, "{file}");
    }
}

#[test]
fn rootless_limits_without_delegation_are_refused() {
    require_root!();
    let r = sh_as_user(&["--memory", "64M"], "echo should-not-run");
    if r.code == 0 {
        eprintln!("SKIPPED: the test user has a delegated cgroup here");
        return;
    }
    assert_eq!(r.code, 125);
    assert!(
        r.stderr
            .contains("error: --memory: cannot create the cgroup"),
        "{}",
        r.stderr
    );
    assert!(r.stdout.is_empty());
}

#[test]
fn bad_resource_values() {
    // Named by the flag that set it (they named spec fields before).
    for (flags, field) in [
        (vec!["--cpus", "0"], "--cpus: "),
        (vec!["--pids", "0"], "--pids: "),
        // Past the kernel's bounds: refused before anything is made.
        (vec!["--pids", "4194305"], "--pids: "),
        (vec!["--cpus", "2000000"], "--cpus: "),
        (vec!["--memory", "1K"], "--memory: "),
        (vec!["--cpu-weight", "0"], "--cpu-weight: "),
        (vec!["--cpuset-cpus", "3-1"], "--cpuset-cpus: "),
        (vec!["--cpuset-mems", "x"], "--cpuset-mems: "),
    ] {
        let r = sh(&flags, "true");
        assert_eq!(r.code, 125, "{flags:?}");
        assert!(r.stderr.contains(field), "{flags:?}: {}", r.stderr);
    }
    let r = sh(&["--timeout", "soon"], "true");
    assert_eq!(r.code, 125, "clap rejects it: {}", r.stderr);
}

#[test]
fn killing_airlock_removes_the_cgroups_too() {
    require_root!();
    let (mut child, _out) = spawn_ready(&["--memory", "64M"], "echo ready; sleep 1000");
    let inside = descendants(child.id() as i32);
    let names = cgroup_names_of(&inside);
    let mine = |all: Vec<String>| -> Vec<String> {
        all.into_iter()
            .filter(|d| names.iter().any(|n| d.ends_with(&format!("/{n}"))))
            .collect()
    };
    assert!(!mine(leftover_cgroups()).is_empty());
    // SAFETY: kill on our own child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    child.wait().unwrap();
    assert!(
        wait_until(5, || inside.iter().all(|p| !alive(*p))),
        "processes survived"
    );
    assert!(
        wait_until(5, || mine(leftover_cgroups()).is_empty()),
        "cgroups left: {:?}",
        mine(leftover_cgroups())
    );
}

/// The guard outlives a SIGKILL of the supervisor's whole process group
/// (`kill -9 -PGID`, job control): a workload that is PID 1 itself and
/// cleared its parent-death signal is killed and the cgroups removed.
#[test]
fn killing_the_supervisors_process_group_kills_the_workload() {
    require_root!();
    use std::io::BufRead;
    use std::os::unix::process::CommandExt;
    let script = "import ctypes, time\n\
                  ctypes.CDLL(None).prctl(1, 0)\n\
                  print('ready', flush=True)\n\
                  time.sleep(1000)";
    let mut child = airlock(&[
        "run",
        "--memory",
        "64M",
        "--as-pid1",
        "--",
        "/usr/bin/python3",
        "-c",
        script,
    ])
    .process_group(0)
    .stdout(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready");
    let pid = child.id() as i32;
    let inside = descendants(pid);
    let names = cgroup_names_of(&inside);
    // SAFETY: kill on the process group our own child leads (its own,
    // made by process_group(0) above).
    unsafe { libc::kill(-pid, libc::SIGKILL) };
    child.wait().unwrap();
    let gone = wait_until(5, || inside.iter().all(|p| !alive(*p)));
    let survivors: Vec<i32> = inside.iter().copied().filter(|p| alive(*p)).collect();
    for p in &survivors {
        // SAFETY: kill on a process of the sandbox this test started.
        unsafe { libc::kill(*p, libc::SIGKILL) };
    }
    assert!(
        gone,
        "still alive after the group was killed: {survivors:?}"
    );
    let mine = || -> Vec<String> {
        leftover_cgroups()
            .into_iter()
            .filter(|d| names.iter().any(|n| d.ends_with(&format!("/{n}"))))
            .collect()
    };
    assert!(
        wait_until(5, || mine().is_empty()),
        "cgroups left: {:?}",
        mine()
    );
}

#[test]
fn a_timeout_during_setup_says_so() {
    require_root!();
    // A deadline that passes before PID 1 can have set anything up. The
    // supervisor kills as soon as it runs again after releasing PID 1; on a
    // loaded machine it may be preempted for as long as setup takes, and
    // then the workload was started before the kill (137, "reached its
    // timeout"): that lost race is retried, anything else fails.
    let mut r = sh(&["--timeout", "0.0001"], "echo ran");
    for _ in 0..10 {
        if r.code != 137 || !r.stderr.contains("reached its 0.0001s timeout") {
            break;
        }
        r = sh(&["--timeout", "0.0001"], "echo ran");
    }
    assert_eq!(r.code, 125, "{} {}", r.stdout, r.stderr);
    assert!(r.stdout.is_empty(), "{}", r.stdout);
    assert!(
        r.stderr
            .contains("the timeout expired before the workload started"),
        "{}",
        r.stderr
    );
}

/// The pids.max of the running sandbox's pids cgroup, read on the host.
fn running_pids_max(flags: &[&str]) -> String {
    let max = running_cgroup_files(flags, &["pids.max"]);
    assert_eq!(max.len(), 1, "one pids cgroup: {max:?}");
    max[0].1.trim().to_string()
}

/// Start a sandbox with `flags`, and while it runs read `files` in each
/// of its cgroups (those there): (path, content).
fn running_cgroup_files(flags: &[&str], files: &[&str]) -> Vec<(String, String)> {
    use std::io::BufRead;
    let mut args = vec!["run"];
    args.extend_from_slice(flags);
    args.extend_from_slice(&["--", "sh", "-c", "echo ready; read x; exit 0"]);
    let mut child = airlock(&args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let names = cgroup_names_of(&descendants(child.id() as i32));
    let found: Vec<(String, String)> = leftover_cgroups()
        .into_iter()
        .filter(|d| names.iter().any(|n| d.ends_with(&format!("/{n}"))))
        .flat_map(|d| files.iter().map(move |f| format!("{d}/{f}")))
        .filter_map(|f| Some((f.clone(), std::fs::read_to_string(f).ok()?)))
        .collect();
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success());
    found
}

#[test]
fn every_sandbox_has_a_pids_limit() {
    require_root!();
    // No --pids: the documented default as RLIMIT_NPROC in the sandbox's
    // own user namespace, where the kernel counts the sandbox's processes,
    // as root and rootless; --pids is the cgroup's pids.max.
    assert_eq!(running_pids_max(&["--pids", "40"]), "40");
    // A workload that may take any of its uids (CAP_SETUID) would have
    // an RLIMIT_NPROC count for each: the cgroup counts them all.
    assert_eq!(
        running_pids_max(&["--cap-add", "CAP_SETUID"]),
        airlock::spec::DEFAULT_PIDS.to_string()
    );
    let probe = "grep 'Max processes' /proc/self/limits";
    let n = airlock::spec::DEFAULT_PIDS.to_string();
    for r in [sh(&[], probe), sh_as_user(&[], probe)] {
        let words: Vec<&str> = r.stdout.split_whitespace().collect();
        assert_eq!(words[2..4], [n.as_str(), n.as_str()], "{}", r.stderr);
    }
    // The spec's own nproc rlimit wins.
    let r = sh_as_user(&["--rlimit", "nproc=30:40"], probe);
    assert!(
        r.stdout.contains(" 30 ") && r.stdout.contains(" 40 "),
        "{}",
        r.stdout
    );
    // And it holds, as root and rootless: with a small one, forking
    // stops there.
    let forks = "for i in $(seq 20); do sleep 1 & done 2>&1; wait";
    let small = ["--rlimit", "nproc=10"];
    for r in [sh(&small, forks), sh_as_user(&small, forks)] {
        assert!(
            r.stdout.contains("fork") || r.stderr.contains("fork"),
            "{} {}",
            r.stdout,
            r.stderr
        );
    }
}

/// A sandbox's per-user kernel counts are charged to the uid it runs as
/// on the host, not to host root's: one that takes every inotify
/// instance it may leaves host root its own. (Its user namespace was
/// created as host root, which the kernel charged at every level up, so
/// while it ran the host's root services could not watch a file.)
#[test]
fn a_sandbox_cannot_spend_host_roots_inotify_instances() {
    require_root!();
    use std::io::BufRead;
    let host_root_can = || {
        let r = std::process::Command::new("python3")
            .args([
                "-c",
                "import ctypes; print(ctypes.CDLL(None).inotify_init())",
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&r.stdout)
            .trim()
            .parse::<i32>()
            .unwrap()
            >= 0
    };
    assert!(
        host_root_can(),
        "host root has no inotify instance to spare"
    );
    // Takes all it can, says how many, and holds them.
    let take_all = "import ctypes, time\nl = ctypes.CDLL(None)\nn = 0\n\
                    while l.inotify_init() >= 0: n += 1\n\
                    print(n, flush=True)\ntime.sleep(60)";
    let mut child = airlock(&["run", "--", "python3", "-c", take_all])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut taken = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut taken)
        .unwrap();
    let spared = host_root_can();
    let _ = child.kill();
    let _ = child.wait();
    assert!(taken.trim().parse::<u32>().unwrap() > 0, "{taken:?}");
    assert!(spared, "the sandbox took host root's inotify instances");
}

/// Whether the host has a hugetlb controller, v1 or v2.
fn has_hugetlb() -> bool {
    let layout = airlock::cgroup::Layout::detect().unwrap();
    layout.v1.contains_key("hugetlb") || layout.v2_controllers.iter().any(|c| c == "hugetlb")
}

/// The default profile's spec with `resources.hugetlb` = `limits`, in a
/// file of `dir` (no flag sets huge page limits: podman and docker have
/// none either).
fn hugetlb_spec(dir: &std::path::Path, limits: serde_json::Value) -> String {
    let printed = output(airlock(&["run", "--print-spec", "--", "true"]));
    let mut spec: serde_json::Value = serde_json::from_str(&printed.stdout).unwrap();
    spec["resources"]["hugetlb"] = limits;
    let path = dir.join("hugetlb.json");
    std::fs::write(&path, spec.to_string()).unwrap();
    path.display().to_string()
}

/// `resources.hugetlb` is written, for the page size asked, in the
/// hugetlb controller's files of the sandbox's cgroup (on this host a v2
/// controller, enabled for it), usage and reservations both.
#[test]
fn huge_page_limits_are_written_by_page_size() {
    require_root!();
    if !has_hugetlb() {
        eprintln!("SKIPPED: this host has no hugetlb controller");
        return;
    }
    let dir = tempdir();
    let spec = hugetlb_spec(dir.path(), serde_json::json!({"2MB": "4M"}));
    let before = leftover_cgroups();
    let files = running_cgroup_files(
        &["--spec", &spec],
        &["hugetlb.2MB.max", "hugetlb.2MB.rsvd.max", "hugetlb.1GB.max"],
    );
    let values: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, v)| (p.rsplit('/').next().unwrap(), v.trim()))
        .collect();
    assert_eq!(
        values[..2],
        [
            ("hugetlb.2MB.max", "4194304"),
            ("hugetlb.2MB.rsvd.max", "4194304"),
        ]
    );
    // 1GB pages were not asked for: no limit (the kernel shows its
    // largest whole number of pages).
    assert_eq!(values[2].0, "hugetlb.1GB.max");
    assert!(
        values[2].1 == "max" || values[2].1.parse::<u64>().unwrap() > 1 << 60,
        "{values:?}"
    );
    assert_no_cgroup_left(&before);
}

/// A page size the host has no huge pages of (x86 has none of 64KB) is an
/// error naming the field and the page size, and leaves no cgroup.
#[test]
fn a_huge_page_size_the_host_lacks_is_an_error() {
    require_root!();
    if std::path::Path::new("/sys/kernel/mm/hugepages/hugepages-64kB").exists() {
        eprintln!("SKIPPED: this host has 64KB huge pages; nothing to refuse");
        return;
    }
    let dir = tempdir();
    let spec = hugetlb_spec(dir.path(), serde_json::json!({"64KB": "0"}));
    let before = leftover_cgroups();
    let r = sh(&["--spec", &spec], "echo should-not-run");
    assert_eq!(r.code, 125, "{}", r.stderr);
    assert!(
        r.stderr.contains(
            "resources.hugetlb.64KB: the hugetlb controller on this host has no hugetlb.64KB.max"
        ),
        "{}",
        r.stderr
    );
    assert!(r.stdout.is_empty());
    assert_no_cgroup_left(&before);
}

/// Huge pages the host sets aside for the test (one 2 MB page), given
/// back when dropped.
struct HugePages(String);

impl HugePages {
    const KNOB: &str = "/proc/sys/vm/nr_hugepages";

    fn set_aside() -> Option<HugePages> {
        let was = std::fs::read_to_string(Self::KNOB).ok()?;
        let pages = HugePages(was.trim().to_string());
        std::fs::write(Self::KNOB, "1").ok()?;
        let now: u64 = std::fs::read_to_string(Self::KNOB)
            .ok()?
            .trim()
            .parse()
            .ok()?;
        (now >= 1).then_some(pages)
    }
}

impl Drop for HugePages {
    fn drop(&mut self) {
        let _ = std::fs::write(Self::KNOB, &self.0);
    }
}

/// The limit holds from inside: with a 2 MB page free on the host, a
/// sandbox limited to none cannot map it (the reservation is refused at
/// mmap), where one limited to a page can.
#[test]
fn a_huge_page_limit_holds_inside() {
    require_root!();
    if !has_hugetlb() {
        eprintln!("SKIPPED: this host has no hugetlb controller");
        return;
    }
    let Some(_pages) = HugePages::set_aside() else {
        eprintln!("SKIPPED: the host could not set aside a 2 MB huge page");
        return;
    };
    // MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, then a write to fault it in.
    let map = "import ctypes, os\n\
        libc = ctypes.CDLL(None, use_errno=True)\n\
        libc.mmap.restype = ctypes.c_void_p\n\
        libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]\n\
        p = libc.mmap(None, 2 << 20, 3, 0x02 | 0x20 | 0x40000, -1, 0)\n\
        if p in (None, ctypes.c_void_p(-1).value):\n    print(os.strerror(ctypes.get_errno()))\nelse:\n    ctypes.memset(p, 1, 4096)\n    print('mapped')\n";
    let dir = tempdir();
    for (limit, expect) in [("2M", "mapped"), ("0", "Cannot allocate memory")] {
        let spec = hugetlb_spec(dir.path(), serde_json::json!({ "2MB": limit }));
        let r = output(airlock(&[
            "run",
            "--spec",
            &spec,
            "--",
            "/usr/bin/python3",
            "-c",
            map,
        ]));
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert_eq!(r.stdout.trim(), expect, "limit {limit}: {}", r.stderr);
    }
}
