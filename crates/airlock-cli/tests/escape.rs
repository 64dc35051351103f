//! The escape suite: small probes (tests/escape/probes.py) run inside
//! sandboxes and try what attackers try. Zero escapes, as sandbox root, as
//! an unprivileged uid inside, and rootless.

mod common;
use common::*;
use std::os::fd::AsRawFd;

#[path = "escape/battery.rs"]
mod battery;
use battery::*;

fn run_suite(as_user: bool, extra: &[&str]) -> String {
    run_suite_via(false, as_user, extra)
}

/// The battery, run as the workload, or (`through_exec`) by `airlock
/// exec` into a detached sandbox started with the same binds and flags:
/// an exec'd process joins the sandbox by its own path (enter.rs), which
/// must give it every protection the workload has.
fn run_suite_via(through_exec: bool, as_user: bool, extra: &[&str]) -> String {
    let b = bait_for(if as_user { USER } else { 0 });
    let launcher = std::fs::read(airlock_bin()).unwrap();
    let runner = std::fs::read(runner_bin()).unwrap();
    let binds = b.binds();
    let binds: Vec<&str> = binds.iter().map(String::as_str).collect();
    let env = b.env(!as_user);
    let run = |args: &[&str]| match as_user {
        true => output(airlock_as_user(args)),
        false => output(airlock(args)),
    };
    // A state root of the test's own (the test user's, for a rootless
    // run), and whatever is left in it removed by force when done, if an
    // assert fails too.
    let state = tempdir();
    if as_user {
        chown(state.path(), USER, USER);
    }
    let state_root = state.path().display().to_string();
    struct Remove<'a>(&'a dyn Fn());
    impl Drop for Remove<'_> {
        fn drop(&mut self) {
            (self.0)()
        }
    }
    let run = |args: &[&str]| {
        let mut all = vec!["--state-root", &state_root];
        all.extend_from_slice(args);
        run(&all)
    };
    let r = if through_exec {
        let name = format!("escape-exec-{}-{as_user}", std::process::id());
        let remove = || drop(run(&["rm", "-f", &name]));
        let _remove = Remove(&remove);
        let mut start = vec!["run", "-d", "--name", &name];
        start.extend_from_slice(&binds);
        start.extend_from_slice(extra);
        start.extend_from_slice(&["--", "sleep", "1000"]);
        let started = run(&start);
        assert_eq!(started.code, 0, "{}", started.stderr);
        let pairs: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let mut exec = vec!["exec"];
        for kv in &pairs {
            exec.extend_from_slice(&["-e", kv]);
        }
        exec.extend_from_slice(&[&name, "--", "python3", "/probes.py"]);
        run(&exec)
    } else {
        let mut args = vec!["run"];
        args.extend_from_slice(&binds);
        for (k, v) in &env {
            args.extend_from_slice(&["--setenv", k, v]);
        }
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--", "python3", "/probes.py"]);
        run(&args)
    };
    judge(r.code, &r.stdout, &r.stderr);
    assert_eq!(
        std::fs::read(airlock_bin()).unwrap(),
        launcher,
        "the launcher binary changed"
    );
    assert_eq!(
        std::fs::read(runner_bin()).unwrap(),
        runner,
        "the runner binary (PID 1's executable) changed"
    );
    r.stdout
}

#[test]
fn escape_suite_as_sandbox_root() {
    require_root!();
    run_suite(false, &["--memory", "256M", "--pids", "64"]);
}

/// The battery from a process `airlock exec` put into the sandbox, as
/// root and rootless.
#[test]
fn escape_suite_through_exec() {
    require_root!();
    run_suite_via(true, false, &["--memory", "256M", "--pids", "64"]);
    run_suite_via(
        true,
        true,
        &["--rlimit", "nproc=64", "--rlimit", "as=536870912"],
    );
}

#[test]
fn escape_suite_as_unprivileged_uid_inside() {
    require_root!();
    run_suite(
        false,
        &[
            "--uid", "1000", "--gid", "1000", "--memory", "256M", "--pids", "64",
        ],
    );
}

#[test]
fn escape_suite_rootless() {
    require_root!(); // to become the test user
                     // No delegated cgroup for the test user: rlimits bound forks and memory.
    run_suite(true, &["--rlimit", "nproc=64", "--rlimit", "as=536870912"]);
}

#[test]
fn escape_suite_under_a_custom_seccomp_profile() {
    require_root!();
    // The default's allow-list written as a custom profile, with ioctl
    // and clone3 allowed outright: airlock's refusals by argument, added
    // after any custom profile, keep TIOCSTI and the rest refused.
    let ns = airlock::seccomp::NAMESPACE_FLAGS;
    let mut names: Vec<&str> = airlock::seccomp::ALLOWED.to_vec();
    names.extend(["ioctl", "clone3"]);
    let socket = |args: serde_json::Value| serde_json::json!({"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": args});
    let arg = |index: u32, value: i32| serde_json::json!({"index": index, "value": value, "op": "SCMP_CMP_EQ"});
    let mut families: Vec<serde_json::Value> = [libc::AF_UNIX, libc::AF_PACKET]
        .iter()
        .map(|f| socket(serde_json::json!([arg(0, *f)])))
        .collect();
    use airlock::seccomp::{INET_PROTOCOLS, NETLINK_PROTOCOLS};
    for (family, protocols) in [
        (libc::AF_INET, INET_PROTOCOLS),
        (libc::AF_INET6, INET_PROTOCOLS),
        (libc::AF_NETLINK, NETLINK_PROTOCOLS),
    ] {
        families.extend(
            protocols
                .iter()
                .map(|p| socket(serde_json::json!([arg(0, family), arg(2, *p)]))),
        );
    }
    let mut rules = vec![
        serde_json::json!({"names": names, "action": "SCMP_ACT_ALLOW"}),
        serde_json::json!({"names": ["clone"], "action": "SCMP_ACT_ALLOW",
                           "args": [{"index": 0, "value": ns, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]}),
        serde_json::json!({"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                           "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]}),
        serde_json::json!({"names": ["socketpair"], "action": "SCMP_ACT_ALLOW",
                           "args": [{"index": 0, "value": libc::AF_UNIX, "op": "SCMP_CMP_EQ"}]}),
    ];
    rules.extend(families);
    let dir = tempdir();
    let profile = dir.path().join("profile.json");
    std::fs::write(
        &profile,
        serde_json::json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": rules}).to_string(),
    )
    .unwrap();
    let p = profile.display().to_string();
    run_suite(
        false,
        &["--seccomp-profile", &p, "--memory", "256M", "--pids", "64"],
    );
}

#[test]
fn the_probes_can_see_an_escape() {
    require_root!();
    // With the walls taken down on purpose, the same probes report escapes,
    // so a zero above means something.
    let b = bait();
    let r = output(airlock(&[
        "run",
        "--ro-bind",
        &b.probes,
        "/probes.py",
        "--ro-bind",
        &b.secret,
        &b.secret,
        "--bind",
        &b.out,
        "/out",
        "--setenv",
        "OUT",
        "/out",
        "--seccomp-profile",
        "none",
        "--allow-unsafe",
        "seccomp-disabled",
        "--allow-unsafe",
        "caller-bind-unfiltered",
        "--setenv",
        "CALLER_IS_ROOT",
        "1",
        "--setenv",
        "HOST_PID",
        "1",
        "--setenv",
        "SECRET",
        &b.secret,
        "--setenv",
        "TCP_PORT",
        "1",
        "--setenv",
        "ABSTRACT",
        "x",
        "--setenv",
        "LEAKED_FD",
        "-1",
        "--setenv",
        "SUID",
        "/usr/bin/id",
        "--",
        "python3",
        "/probes.py",
    ]));
    assert!(
        r.stdout.contains("probe read_host_secret: ESCAPED"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("probe plant_setid_in_bind: ESCAPED"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("probe fork_bomb: ESCAPED"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("probe tiocsti_injection: ESCAPED")
            || r.stdout.contains("probe personality: ESCAPED"),
        "{}",
        r.stdout
    );
    assert_eq!(r.code, 1);
}

/// Our init reads its own memory map once the workload runs (to give
/// setup's stack back): from the host's procfs, kept open before the
/// sandbox's mounts, never through the sandbox's /proc, which a sandbox
/// can make anything (runc's CVE-2025-52881 class). A fifo there used to
/// hang init for good, the workload never reaped; a fake `[stack]` line
/// would have had it zero its own heap.
#[test]
fn init_does_not_read_itself_through_the_sandboxs_proc() {
    let dir = tempdir();
    let fake = dir.path().join("proc");
    std::fs::create_dir_all(fake.join("self")).unwrap();
    mkfifo(&fake.join("self/maps"));
    let fake = fake.display().to_string();
    for as_user in callers() {
        let args = [
            "run",
            "--ro-bind",
            &fake,
            "/proc",
            "--",
            "sh",
            "-c",
            "exit 7",
        ];
        let mut child = match as_user {
            true => airlock_as_user(&args),
            false => airlock(&args),
        }
        .spawn()
        .unwrap();
        let mut status = None;
        for _ in 0..3000 {
            status = child.try_wait().unwrap();
            if status.is_some() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        if status.is_none() {
            // The supervisor: our child (airlock execs it in place).
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("as user {as_user}: the sandbox did not end within 30 s");
        }
        assert_eq!(status.unwrap().code(), Some(7), "as user {as_user}");
    }
}

/// `exec` joins every namespace of the sandbox whatever the sandbox's
/// tree holds. It used to judge "one we are in already" by
/// /proc/thread-self/ns once in the sandbox's mount namespace, where the
/// workload decides what that path is: pointed at the sandbox's own
/// namespaces, every later join was skipped and the exec'd process ran in
/// the caller's pid, net, uts, ipc, cgroup and time namespaces (rootless,
/// it could kill the caller's processes outside any sandbox).
#[test]
fn exec_joins_the_sandboxs_namespaces_whatever_its_proc_says() {
    let dir = tempdir();
    let fake = dir.path().join("proc");
    std::fs::create_dir_all(&fake).unwrap();
    // The workload's own thread (pid 2, after our init), whose ns files
    // a process joining the sandbox may read.
    std::os::unix::fs::symlink("/p/2/task/2", fake.join("thread-self")).unwrap();
    let fake = fake.display().to_string();
    for as_user in callers() {
        let al = |args: &[&str]| {
            output(match as_user {
                true => airlock_as_user(args),
                false => airlock(args),
            })
        };
        let name = format!("nsjoin-{}-{as_user}", std::process::id());
        let started = al(&[
            "run",
            "-d",
            "--name",
            &name,
            "--hostname",
            "inside",
            "--proc",
            "/p",
            "--ro-bind",
            &fake,
            "/proc",
            "--",
            "sleep",
            "100",
        ]);
        assert_eq!(started.code, 0, "as user {as_user}: {}", started.stderr);
        let r = al(&[
            "exec",
            &name,
            "--",
            "sh",
            "-c",
            "hostname; readlink /p/self >/dev/null && echo in-its-pid-namespace",
        ]);
        let _ = al(&["rm", "-f", &name]);
        assert_eq!(r.code, 0, "as user {as_user}: {}", r.stderr);
        assert_eq!(
            r.stdout, "inside\nin-its-pid-namespace\n",
            "as user {as_user}"
        );
    }
}

/// Our init keeps none of a root caller's supplementary groups (host
/// root's group among them), nor does the workload: init lives as long
/// as the sandbox.
#[test]
fn init_keeps_none_of_the_callers_groups() {
    require_root!();
    let mut c = std::process::Command::new("setpriv");
    c.args(["--groups", "0,4,27", "--"])
        .arg(airlock_bin())
        .args([
            "run",
            "--",
            "sh",
            "-c",
            "grep Groups /proc/1/status /proc/self/status",
        ]);
    let r = output(c);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout.lines().count(), 2, "{}", r.stdout);
    for line in r.stdout.lines() {
        let groups = line.split_once("Groups:").unwrap().1.trim();
        assert!(groups.is_empty(), "{}", r.stdout);
    }
}

/// fs.suid_dumpable set to 1 (a seteuid leaves the process dumpable),
/// as before once dropped; one test at a time holds it.
struct SuidDumpable {
    was: String,
    _held: std::sync::MutexGuard<'static, ()>,
}

impl SuidDumpable {
    const KNOB: &str = "/proc/sys/fs/suid_dumpable";

    fn one() -> Self {
        static HELD: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let held = HELD.lock().unwrap_or_else(|e| e.into_inner());
        let was = std::fs::read_to_string(Self::KNOB).unwrap();
        std::fs::write(Self::KNOB, "1").unwrap();
        SuidDumpable { was, _held: held }
    }
}

impl Drop for SuidDumpable {
    fn drop(&mut self) {
        let _ = std::fs::write(Self::KNOB, &self.was);
    }
}

/// A root caller's PID 1, waiting for "go" in a user namespace owned by
/// an id of its own, holds the host's root credentials (its real uid)
/// and fds of the supervisor's. Where fs.suid_dumpable is 1 the
/// supervisor's seteuid to that owner left it dumpable, and PID 1 judged
/// whether root cloned it by its own getuid(), which reads the overflow
/// uid there: the owner could ptrace it before it ran anything. Held at
/// --block-fd, past every step of the supervisor's, it is out of reach.
#[test]
fn pid1_before_go_is_out_of_the_namespace_owners_reach() {
    use std::io::Write;
    require_root!();
    let _knob = SuidDumpable::one();
    let (info_r, info_w) = cloexec_pipe();
    let (block_r, block_w) = cloexec_pipe();
    let (i, b) = (
        info_w.as_raw_fd().to_string(),
        block_r.as_raw_fd().to_string(),
    );
    let mut c = airlock(&["run", "--info-fd", &i, "--block-fd", &b, "--", "true"]);
    handed(&mut c, vec![info_w.as_raw_fd(), block_r.as_raw_fd()]);
    let mut child = c.spawn().expect("start airlock");
    drop((info_w, block_r));
    let pid1 = info_child_pid(info_r);
    let r = owner_reads_cwd(pid1);
    std::fs::File::from(block_w).write_all(b"x").unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(0));
    assert_refused(&r, "PID 1's cwd before go");
}

/// Where fs.suid_dumpable is 1, joining the user namespace of a root
/// caller's sandbox (owned by an id of its own, not root) made the exec's
/// runner dumpable again: that owner, having every capability over the
/// runner's credentials then, could read its /proc links or ptrace it
/// while it still held the host's root. It is not dumpable after the join.
#[test]
fn an_exec_runner_is_out_of_the_namespace_owners_reach() {
    require_root!();
    let _knob = SuidDumpable::one();
    let name = format!("dumpable-{}", std::process::id());
    let started = output(airlock(&[
        "run", "-d", "--name", &name, "--", "sleep", "100",
    ]));
    assert_eq!(started.code, 0, "{}", started.stderr);
    let marker = format!("{}", 1_000_000 + std::process::id());
    let mut exec = airlock(&["exec", &name, "--", "sleep", &marker]);
    exec.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut exec = exec.spawn().unwrap();
    // The exec'd sleep, and its parent, the runner.
    let wanted = format!("sleep\0{marker}\0");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let runner = loop {
        let found = std::fs::read_dir("/proc").unwrap().flatten().find_map(|e| {
            let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
            (cmdline == wanted.as_bytes()).then(|| e.path())
        });
        if let Some(p) = found {
            let status = std::fs::read_to_string(p.join("status")).unwrap();
            let ppid = status
                .lines()
                .find_map(|l| l.strip_prefix("PPid:"))
                .unwrap()
                .trim()
                .to_string();
            break ppid;
        }
        assert!(std::time::Instant::now() < deadline, "the exec never ran");
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let r = owner_reads_cwd(runner);
    let _ = exec.kill();
    let _ = exec.wait();
    // Not only after the last join: at once after the user namespace's,
    // before the next (the owner could attach in between, while the
    // runner is root in the host's mount namespace, and stay attached).
    let order = dumpable_reset_after_the_user_join(&name);
    let _ = output(airlock(&["rm", "-f", &name]));
    if let Some(Err(trace)) = order {
        panic!("the owner's euid not taken before setns(CLONE_NEWUSER), or no dumpable reset right after either:\n{trace}");
    }
    assert_refused(&r, "the exec runner's cwd");
}

/// The user namespace's owner (a root caller's) reading `pid`'s cwd link:
/// a link, not a file's mode, so only ptrace's access check stands.
fn owner_reads_cwd(pid: impl std::fmt::Display) -> std::process::Output {
    let owner = (airlock::plan::ROOT_CALLER_OWNER).to_string();
    std::process::Command::new("setpriv")
        .args(["--reuid", &owner, "--regid", &owner, "--clear-groups", "--"])
        .args(["readlink", "-v", &format!("/proc/{pid}/cwd")])
        .output()
        .unwrap()
}

/// [`owner_reads_cwd`] was refused by ptrace's check (`what` was read).
fn assert_refused(r: &std::process::Output, what: &str) {
    assert!(
        !r.status.success(),
        "the namespace's owner read {what}: {}",
        String::from_utf8_lossy(&r.stdout)
    );
    assert!(
        String::from_utf8_lossy(&r.stderr).contains("Permission denied"),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
}

/// The parent of `pid`, from /proc (None once it is gone).
fn parent_of(pid: i32) -> Option<i32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let zombie = status
        .lines()
        .any(|l| l.starts_with("State:") && l.contains('Z'));
    let ppid = status.lines().find_map(|l| l.strip_prefix("PPid:"))?;
    (!zombie).then(|| ppid.trim().parse().ok())?
}

/// An exec runner killed before its child armed the parent-death signal
/// left the command to run on, unwatched: the child's check of its parent
/// saw pid 0, which is what the runner (outside the sandbox's PID
/// namespace) always is to it. strace holds the child's first prctl (the
/// arming) for two seconds; the runner is killed meanwhile. The command
/// must never start.
#[test]
fn an_exec_whose_runner_dies_before_it_is_armed_never_runs() {
    require_root!();
    if !has_strace() {
        return;
    }
    let name = format!("orphan-{}", std::process::id());
    let started = output(airlock(&[
        "run", "-d", "--name", &name, "--", "sleep", "100",
    ]));
    assert_eq!(started.code, 0, "{}", started.stderr);
    let marker = format!("{}", 2_000_000 + std::process::id());
    let mut strace = std::process::Command::new("strace")
        .args(["-f", "-qq", "-o", "/dev/null", "-e", "trace=prctl"])
        .args(["-e", "inject=prctl:delay_enter=2s:when=1"])
        .arg(airlock_bin())
        .args(["exec", &name, "--", "sleep", &marker])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let wait = |what: &str| assert!(std::time::Instant::now() < deadline, "{what}");
    // The CLI (by its command line: strace forks probes of its own
    // first), its runner (named after it), and the runner's child.
    let cli_line = format!("{} exec {name} ", airlock_bin().display());
    let cli = loop {
        let found = descendants(strace.id() as i32).into_iter().find(|p| {
            std::fs::read(format!("/proc/{p}/cmdline")).is_ok_and(|c| {
                String::from_utf8_lossy(&c)
                    .replace('\0', " ")
                    .starts_with(&cli_line)
            })
        });
        if let Some(pid) = found {
            break pid;
        }
        wait("no CLI");
        std::thread::sleep(std::time::Duration::from_millis(2));
    };
    let runner_line = format!("{} {cli} ", runner_bin().display());
    let (runner, child) = loop {
        let runners = processes_with(&runner_line);
        let pair = runners.iter().find_map(|c| {
            let p = parent_of(*c)?;
            runners.contains(&p).then_some((p, *c))
        });
        if let Some(pair) = pair {
            break pair;
        }
        wait("the runner never forked");
        std::thread::sleep(std::time::Duration::from_millis(2));
    };
    // SAFETY: kill takes a pid and a signal; the runner is our test's.
    unsafe { libc::kill(runner, libc::SIGKILL) };
    // The command itself (the CLI's and strace's lines name it too).
    let command = || -> Vec<i32> {
        processes_with(&format!("sleep {marker}"))
            .into_iter()
            .filter(|p| {
                std::fs::read(format!("/proc/{p}/cmdline"))
                    .is_ok_and(|c| c == format!("sleep\0{marker}\0").as_bytes())
            })
            .collect()
    };
    let ran = loop {
        if !command().is_empty() {
            break true;
        }
        if parent_of(child).is_none() {
            break false;
        }
        wait("the child neither ran nor ended");
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    for pid in command() {
        // SAFETY: as above; the command this test started.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    let _ = strace.kill();
    let _ = strace.wait();
    let _ = output(airlock(&["rm", "-f", &name]));
    assert!(!ran, "the exec'd command ran after its runner was killed");
}

/// The exec runner's setns, prctl and setresuid calls, as strace sees
/// them: Ok when it takes the namespace owner's uid as its effective one
/// and resets dumpable before joining the user namespace, and resets it
/// again at once after; None (skipped, said) without strace.
fn dumpable_reset_after_the_user_join(name: &str) -> Option<Result<(), String>> {
    let (trace, lines) = traced(&["exec", name, "--", "true"], "setns,prctl,setresuid")?;
    let at = lines
        .iter()
        .position(|l| l.contains("setns(") && l.contains("CLONE_NEWUSER"))
        .unwrap_or_else(|| panic!("no user namespace joined:\n{trace}"));
    let pid = lines[at].split_whitespace().next().unwrap();
    let next = lines[at + 1..].iter().find(|l| l.starts_with(pid));
    let reset_after = next.is_some_and(|l| l.contains("PR_SET_DUMPABLE, SUID_DUMP_DISABLE"));
    match reset_after && undumpable_as_owner(&lines, at) {
        true => Some(Ok(())),
        false => Some(Err(trace)),
    }
}

/// `airlock ARGS` under `strace -f` for `calls`: the trace whole and by
/// line; None (skipped, said) without strace.
fn traced(args: &[&str], calls: &str) -> Option<(String, Vec<String>)> {
    if std::process::Command::new("strace")
        .arg("-V")
        .output()
        .is_err()
    {
        eprintln!("SKIPPED (the order of the dumpable resets): strace is not installed");
        return None;
    }
    let dir = tempdir();
    let log = dir.path().join("trace");
    let mut cmd = std::process::Command::new("strace");
    cmd.args(["-f", "-qq", "-e", &format!("trace={calls}"), "-o"])
        .arg(&log)
        .arg(airlock_bin())
        .args(args);
    let r = output(cmd);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let trace = std::fs::read_to_string(&log).unwrap();
    let lines = trace.lines().map(str::to_string).collect();
    Some((trace, lines))
}

/// Before line `at` (a user namespace made or joined), the same process
/// took the namespace owner's uid (a root caller's) as its effective one,
/// real and saved staying root's, and reset dumpable after that change:
/// the clone or join is then no gain of capabilities, and nothing of it
/// is born or left dumpable where fs.suid_dumpable is 1.
fn undumpable_as_owner(lines: &[String], at: usize) -> bool {
    let pid = lines[at].split_whitespace().next().unwrap();
    let owner = airlock::plan::ROOT_CALLER_OWNER;
    let before: Vec<&String> = lines[..at].iter().filter(|l| l.starts_with(pid)).collect();
    let took = before
        .iter()
        .rposition(|l| l.contains(&format!("setresuid(-1, {owner}, -1)")) && l.ends_with("= 0"));
    took.is_some_and(|t| {
        before[t + 1..]
            .iter()
            .any(|l| l.contains("PR_SET_DUMPABLE, SUID_DUMP_DISABLE"))
    })
}

/// A root caller's supervisor clones PID 1 into a user namespace of the
/// owner's uid, as that uid: the change of euid made it dumpable where
/// fs.suid_dumpable is 1, and PID 1 was born so, for the owner to attach
/// before its first step. The supervisor is undumpable again first.
#[test]
fn pid1_is_born_undumpable() {
    require_root!();
    let _knob = SuidDumpable::one();
    let Some((trace, lines)) = traced(&["run", "--", "true"], "setresuid,prctl,clone3") else {
        return;
    };
    let at = lines
        .iter()
        .position(|l| l.contains("clone3(") && l.contains("CLONE_NEWUSER"))
        .unwrap_or_else(|| panic!("no user namespace made:\n{trace}"));
    assert!(
        undumpable_as_owner(&lines, at),
        "PID 1 cloned dumpable:\n{trace}"
    );
}

/// A file mount is never written into /proc or /sys: PID 1 writes it
/// before the protections make /proc/sys read-only, and without a user
/// namespace of its own PID 1 is the host's root, so `--file 0
/// /proc/sys/kernel/core_pattern` set the host's core handler (and
/// `/proc/sysrq-trigger` crashed it), past every guardrail. Probed with
/// the sandbox's own hostname, which harms nothing if it gets through;
/// the same path through a link an earlier mount made is refused too.
#[test]
fn a_file_mount_is_not_written_into_proc() {
    require_root!();
    for (extra, dest) in [
        (vec![], "/proc/sys/kernel/hostname"),
        (vec!["--symlink", "/proc/sys/kernel", "/k"], "/k/hostname"),
    ] {
        let mut args = vec![
            "run",
            "--share-user",
            "--uid",
            "65534",
            "--allow-unsafe",
            "shared-user",
        ];
        args.extend(extra);
        args.extend(["--file", "0", dest, "--", "hostname"]);
        let mut child = airlock(&args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), b"written-in").unwrap();
        let r = child.wait_with_output().unwrap();
        let out = String::from_utf8_lossy(&r.stdout);
        let err = String::from_utf8_lossy(&r.stderr);
        assert!(!out.contains("written-in"), "{dest}: {out}");
        assert_eq!(r.status.code(), Some(125), "{dest}: {out} {err}");
        assert!(err.contains(dest), "{dest}: {err}");
    }
}
