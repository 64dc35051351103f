//! The library API against real sandboxes: build a spec in Rust, spawn,
//! wait, kill, freeze, give sandboxes state and exec into them. The runner
//! is found the way the README documents (`airlock-runner` beside the
//! program or one directory up: cargo's target/<profile>).

mod common;
use airlock::{Error, FailureKind, Sandbox, SandboxSpec, SpawnOptions};
use common::*;
use std::path::PathBuf;

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
    let sandbox = Sandbox::spawn_with(&spec, &SpawnOptions::default()).unwrap();
    assert!(sandbox.pid() > 0);
    assert_eq!(sandbox.wait().unwrap().code, 4);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("h")).unwrap(),
        "lib-box\n"
    );
}

/// A count of preserved fds past those the caller has open is refused
/// before a runner starts: near u32::MAX it wrapped, and the runner
/// closed the workload's stderr instead. (The runtime's `--preserve-fds`
/// tests show the fds reaching the workload; here other test threads
/// open and close fds in the range.)
#[test]
fn preserved_fds_must_be_open() {
    require_root!();
    let spec = SandboxSpec::builder().args(["true"]).default_view().build();
    // No fd reaches 3 + 100000 under the hard limit of open files.
    for bad in [100_000, u32::MAX] {
        let opts = SpawnOptions {
            preserve_fds: bad,
            ..Default::default()
        };
        let shown = Sandbox::spawn_with(&spec, &opts).unwrap_err().to_string();
        assert!(
            shown.starts_with("preserve_fds: fd ") && shown.ends_with(" is not open"),
            "{bad}: {shown}"
        );
    }
}

#[test]
fn typed_errors() {
    require_root!();
    let spec = SandboxSpec::builder()
        .args(["definitely-not-here"])
        .default_view()
        .build();
    match Sandbox::spawn_with(&spec, &SpawnOptions::default()) {
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
    match Sandbox::spawn_with(&spec, &SpawnOptions::default()) {
        Err(Error::Setup(e)) => assert_eq!(
            e.to_string(),
            "mount /x (filesystem.mounts[0]): source /nonexistent-src does not exist"
        ),
        other => panic!("expected a setup error, got {other:?}"),
    }
    // A mount point procfs will not let be made: said so, errno kept.
    let spec = SandboxSpec::builder()
        .args(["true"])
        .mount(airlock::spec::Mount::Proc {
            destination: "/proc".into(),
        })
        .mount(airlock::spec::Mount::Tmpfs {
            destination: "/proc/y".into(),
            size: None,
            mode: None,
            readonly: false,
            noexec: false,
            copy_up: false,
        })
        .build();
    match Sandbox::spawn_with(&spec, &SpawnOptions::default()) {
        Err(Error::Setup(e)) => {
            assert_eq!(e.step, "mount /proc/y (filesystem.mounts[1])", "{e}");
            assert!(e.reason.starts_with("cannot make the mount point"), "{e}");
            assert_eq!(e.errno, Some(libc::ENOENT), "{e}");
        }
        other => panic!("expected a setup error, got {other:?}"),
    }
    let spec = SandboxSpec::builder().args(Vec::<String>::new()).build();
    assert!(matches!(
        Sandbox::spawn_with(&spec, &SpawnOptions::default()),
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
            ..Default::default()
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
fn library_kill_ends_the_sandbox() {
    require_root!();
    let spec = airlock::SandboxSpec::builder()
        .args(["sh", "-c", "sleep 1000 & sleep 1000"])
        .default_view()
        .build();
    let mut spec = spec;
    spec.resources.pids = Some(16);
    let opts = airlock::SpawnOptions {
        ..Default::default()
    };
    let sandbox = airlock::Sandbox::spawn_with(&spec, &opts).unwrap();
    let dirs = sandbox.cgroups().to_vec();
    assert!(
        !dirs.is_empty() && dirs.iter().all(|d| d.is_dir()),
        "{dirs:?}"
    );
    // A signal the supervisor does not pass on would act on it instead
    // (SIGTSTP stops it, SIGSEGV kills it without cleaning up): refused.
    for sig in [libc::SIGTSTP, libc::SIGSEGV, 34] {
        let e = sandbox.signal(sig).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput, "{sig}: {e}");
    }
    sandbox.kill().unwrap();
    let report = sandbox.wait().unwrap();
    assert_eq!(report.code, 137, "{report:?}");
    assert_eq!(report.ended, airlock::Ended::Signaled);
    assert!(dirs.iter().all(|d| !d.exists()), "left behind: {dirs:?}");
}

/// Does the kernel say `pid`'s cgroup is frozen: `cgroup.events` in the
/// v2 hierarchy (the unified one of a hybrid host, which airlock freezes
/// through when there is one), or else v1's `freezer.state`?
fn cgroup_frozen(pid: i32) -> bool {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let v2_mount = mountinfo.lines().find_map(|l| {
        let (pre, post) = l.split_once(" - ")?;
        post.starts_with("cgroup2 ")
            .then(|| pre.split(' ').nth(4).unwrap().to_string())
    });
    let cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let own = |controllers: &str| {
        cgroups.lines().find_map(|l| {
            let mut f = l.splitn(3, ':');
            let (_, c, path) = (f.next()?, f.next()?, f.next()?);
            (c == controllers).then(|| path.to_string())
        })
    };
    match v2_mount {
        Some(m) => std::fs::read_to_string(format!("{m}{}/cgroup.events", own("").unwrap()))
            .unwrap()
            .lines()
            .any(|l| l == "frozen 1"),
        None => {
            std::fs::read_to_string(format!(
                "/sys/fs/cgroup/freezer{}/freezer.state",
                own("freezer").unwrap()
            ))
            .unwrap()
            .trim()
                == "FROZEN"
        }
    }
}

#[test]
fn freeze_and_thaw_through_the_cgroup() {
    require_root!();
    let dir = shared_dir();
    let counter = dir.path().join("count");
    let mut spec = airlock::SandboxSpec::builder()
        .args([
            "sh",
            "-c",
            "i=0; while :; do i=$((i+1)); echo $i > /out/count; sleep 0.02; done",
        ])
        .default_view()
        .bind(dir.path().display().to_string(), "/out")
        .build();
    spec.resources.pids = Some(16);
    let opts = airlock::SpawnOptions {
        ..Default::default()
    };
    let sandbox = airlock::Sandbox::spawn_with(&spec, &opts).unwrap();
    let read = || {
        std::fs::read_to_string(&counter)
            .unwrap_or_default()
            .trim()
            .parse::<u64>()
            .unwrap_or(0)
    };
    assert!(wait_until(5, || read() > 3), "the counter never ran");
    sandbox.freeze(true).unwrap();
    // Returned once the kernel says every process is frozen, not merely
    // asked to be.
    assert!(
        cgroup_frozen(sandbox.init_pid()),
        "freeze returned before the cgroup was frozen"
    );
    let frozen_at = read();
    std::thread::sleep(std::time::Duration::from_millis(400));
    assert_eq!(read(), frozen_at, "the counter moved while frozen");
    sandbox.freeze(false).unwrap();
    assert!(
        wait_until(5, || read() > frozen_at),
        "the counter did not resume"
    );
    sandbox.kill().unwrap();
    assert_eq!(sandbox.wait().unwrap().code, 137);
    // Without a cgroup there is nothing to freeze, and it says so (the
    // default pids limit is an rlimit, which needs none; the context's
    // default is left out here all the same).
    let plain = airlock::SandboxSpec::builder()
        .args(["sleep", "5"])
        .default_view()
        .build();
    let mut ctx = airlock::Context::current();
    ctx.default_pids = None;
    let no_cgroup = airlock::SpawnOptions {
        context: Some(ctx),
        ..Default::default()
    };
    let s = airlock::Sandbox::spawn_with(&plain, &no_cgroup).unwrap();
    assert_eq!(
        s.freeze(true).unwrap_err().kind(),
        std::io::ErrorKind::Unsupported
    );
    s.kill().unwrap();
    s.wait().unwrap();
}

/// 50 detached sandboxes created, exec'd into and removed through the
/// library leave nothing: no process, cgroup, mount, state directory, or
/// open fd in the caller.
#[test]
fn fifty_sandboxes_leave_nothing() {
    require_root!();
    use airlock::{ExecOptions, LifecycleOptions, Sandbox, SandboxSpec, SpawnOptions};
    let _mounts = mount_lock();
    let root = tempdir();
    let mut ctx = airlock::Context::current();
    ctx.state_root = root.path().to_path_buf();
    let fds = || std::fs::read_dir("/proc/self/fd").unwrap().count();
    let mounts_before = host_mounts();
    let fds_before = fds();
    let spawn = |detach: bool| SpawnOptions {
        context: Some(ctx.clone()),
        lifecycle: detach.then(|| LifecycleOptions {
            detach: true,
            ..Default::default()
        }),
        ..Default::default()
    };
    let spec = SandboxSpec::builder()
        .args(["sleep", "100"])
        .default_view()
        .pids(32)
        .build();
    let mut dirs = Vec::new();
    for i in 0..50 {
        let s = Sandbox::spawn_with(&spec, &spawn(true)).unwrap();
        let sb = s.state().unwrap().clone();
        let e = ExecOptions {
            args: vec!["sh".into(), "-c".into(), format!("exit {}", i % 7)],
            ..Default::default()
        };
        let code = Sandbox::exec(&sb, &e, &spawn(false))
            .unwrap()
            .wait()
            .unwrap()
            .code;
        assert_eq!(code, i % 7);
        dirs.push(sb);
    }
    let states: Vec<_> = dirs.iter().map(|d| d.state().unwrap()).collect();
    let sups: Vec<i32> = states.iter().map(|s| s.supervisor_pid.unwrap()).collect();
    let cgroups: Vec<PathBuf> = states
        .iter()
        .flat_map(|s| {
            let c = s.cgroup.clone().unwrap();
            c.v2.into_iter().chain(c.v1.into_values())
        })
        .collect();
    assert!(cgroups.len() >= 50, "{cgroups:?}");
    for sb in &dirs {
        sb.request(&airlock::state::control::Request::Kill).unwrap();
        assert!(sb.wait_ended(Some(std::time::Duration::from_secs(10))));
        assert_eq!(sb.state().unwrap().status, airlock::state::Status::Stopped);
        sb.remove().unwrap();
    }
    assert!(
        wait_until(5, || sups.iter().all(|p| !alive(*p))),
        "a supervisor is left"
    );
    assert!(
        sandbox_dirs(root.path()).is_empty(),
        "a state directory is left"
    );
    let left: Vec<_> = cgroups.iter().filter(|c| c.exists()).collect();
    assert!(left.is_empty(), "cgroups are left: {left:?}");
    assert_eq!(host_mounts(), mounts_before, "a mount is left");
    // Other tests run in this process at the same time, so the count is
    // compared with slack: a leak per sandbox would be 50 or more.
    let open: Vec<String> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .map(|p| p.display().to_string())
        .collect();
    assert!(
        open.len() < fds_before + 10,
        "fds are left open in the caller: {open:?}"
    );
    let root_str = root.path().display().to_string();
    assert!(!open.iter().any(|p| p.starts_with(&root_str)), "{open:?}");
}

/// Options for a detached sandbox in the state root `root` (whose
/// supervisor stays our child or not), and a spec that sleeps.
fn detached_sleep(
    root: &std::path::Path,
) -> (impl Fn(bool) -> airlock::SpawnOptions, airlock::SandboxSpec) {
    let mut ctx = airlock::Context::current();
    ctx.state_root = root.to_path_buf();
    let spawn = move |stays: bool| airlock::SpawnOptions {
        context: Some(ctx.clone()),
        lifecycle: Some(airlock::LifecycleOptions {
            detach: true,
            supervisor_stays_child: stays,
            ..Default::default()
        }),
        ..Default::default()
    };
    let spec = airlock::SandboxSpec::builder()
        .args(["sleep", "100"])
        .default_view()
        .build();
    (spawn, spec)
}

/// A detached sleep started in `root` whose supervisor forked away, its
/// state directory, and the options it was started with.
fn forked_away_sleep(
    root: &std::path::Path,
) -> (
    airlock::Sandbox,
    airlock::state::SandboxDir,
    impl Fn(bool) -> airlock::SpawnOptions,
) {
    let (spawn, spec) = detached_sleep(root);
    let s = airlock::Sandbox::spawn_with(&spec, &spawn(false)).unwrap();
    let sb = s.state().unwrap().clone();
    (s, sb, spawn)
}

/// A detached sandbox whose supervisor forked away is signalled through
/// its state, not through the runner's pid, which was reaped and may be
/// anyone's by now; its pid is the supervisor's.
#[test]
fn a_sandbox_whose_supervisor_forked_away_is_signalled_through_its_state() {
    require_root!();
    let root = tempdir();
    let (spawn, spec) = detached_sleep(root.path());
    let s = airlock::Sandbox::spawn_with(&spec, &spawn(false)).unwrap();
    let sb = s.state().unwrap().clone();
    assert_eq!(
        Some(s.pid() as i32),
        sb.state().unwrap().supervisor_pid,
        "the supervisor's pid, not the reaped runner's"
    );
    assert!(s.stopper().is_err());
    s.kill().unwrap();
    assert!(sb.wait_ended(Some(std::time::Duration::from_secs(10))));
    assert_eq!(sb.state().unwrap().status, airlock::state::Status::Stopped);
}

/// `wait` on a sandbox whose supervisor forked away waits for the
/// sandbox, not for the process that forked it (whose 0 says nothing),
/// and gives the workload's exit from its state; one killed before it
/// recorded an end is an error, never a success.
#[test]
fn waiting_for_a_sandbox_whose_supervisor_forked_away() {
    require_root!();
    // Not while another test counts this process's fds.
    let _fds = mount_lock();
    let root = tempdir();
    let (spawn, _) = detached_sleep(root.path());
    let spec = airlock::SandboxSpec::builder()
        .args(["sh", "-c", "sleep 0.2; exit 3"])
        .default_view()
        .build();
    let s = airlock::Sandbox::spawn_with(&spec, &spawn(false)).unwrap();
    assert_eq!(s.wait().unwrap().code, 3);

    let (s, sb, _) = forked_away_sleep(root.path());
    let sup = sb.state().unwrap().supervisor_pid.unwrap();
    // Its guard records the end when the supervisor dies: the sandbox
    // was killed, or no exit at all.
    // SAFETY: kill takes plain integers; the supervisor is this test's.
    unsafe { libc::kill(sup, libc::SIGKILL) };
    match s.wait() {
        Ok(r) => assert_ne!(r.code, 0, "{r:?}"),
        Err(e) => assert!(e.to_string().contains("without"), "{e}"),
    }
    let _ = sb.delete(true);
}

/// An exec's argument with a NUL byte is refused by name: the runner
/// would have passed it on empty (`sh -c ""` for `sh -c "rm x\0"`).
#[test]
fn an_exec_argument_with_a_nul_is_refused() {
    require_root!();
    // Not while another test counts this process's fds.
    let _fds = mount_lock();
    let root = tempdir();
    let (_s, sb, spawn) = forked_away_sleep(root.path());
    let e = airlock::ExecOptions {
        args: vec!["sh".into(), "-c".into(), "echo x\0".into()],
        ..Default::default()
    };
    let Err(err) = airlock::Sandbox::exec(&sb, &e, &spawn(false)) else {
        panic!("an argument with a NUL was taken");
    };
    assert!(err.to_string().contains("args[2]"), "{err}");
    let _ = sb.delete(true);
}

/// Calls to a supervisor that answers nothing (stopped) end in an error
/// after a while, even past the listener's queue: there, the connect
/// itself used to wait for good.
#[test]
fn calls_to_a_stopped_supervisor_end() {
    require_root!();
    // Not while another test counts this process's fds.
    let _fds = mount_lock();
    let root = tempdir();
    let (_s, sb, _) = forked_away_sleep(root.path());
    let sup = sb.state().unwrap().supervisor_pid.unwrap();
    // SAFETY: kill takes plain integers; the supervisor is this test's.
    unsafe { libc::kill(sup, libc::SIGSTOP) };
    let calls: Vec<_> = (0..24)
        .map(|_| {
            let sb = sb.clone();
            std::thread::spawn(move || sb.signal(libc::SIGCONT).is_err())
        })
        .collect();
    let end = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while calls.iter().any(|c| !c.is_finished()) && std::time::Instant::now() < end {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let stuck = calls.iter().filter(|c| !c.is_finished()).count();
    // SAFETY: as above.
    unsafe { libc::kill(sup, libc::SIGCONT) };
    assert_eq!(stuck, 0, "calls still waiting after a minute");
    for c in calls {
        assert!(c.join().unwrap(), "a stopped supervisor answered");
    }
    let _ = sb.delete(true);
}

/// A detached supervisor forks away from its caller unless the caller
/// says it reaps it: then it stays our child, `into_supervisor` hands it
/// over and `reap` collects it once it has ended. A sandbox whose
/// supervisor forked away has none of ours to reap.
#[test]
fn a_supervisor_that_stays_our_child_is_ours_to_reap() {
    require_root!();
    use airlock::Sandbox;
    let root = tempdir();
    let (spawn, spec) = detached_sleep(root.path());
    let parent_of = |pid: i32| -> i32 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let rest = stat.rsplit_once(") ").unwrap().1;
        rest.split(' ').nth(1).unwrap().parse().unwrap()
    };
    let me = std::process::id() as i32;

    let forked = Sandbox::spawn_with(&spec, &spawn(false)).unwrap();
    let away = forked.state().unwrap().clone();
    let sup = away.state().unwrap().supervisor_pid.unwrap();
    assert_ne!(parent_of(sup), me, "a supervisor that forked away");
    assert!(forked.into_supervisor().is_err());

    let s = Sandbox::spawn_with(&spec, &spawn(true)).unwrap();
    let sb = s.state().unwrap().clone();
    let sup = s.into_supervisor().unwrap();
    assert_eq!(sb.state().unwrap().supervisor_pid, Some(sup.pid()));
    assert_eq!(parent_of(sup.pid()), me, "the supervisor is our child");
    assert!(sup.pidfd().is_some());
    assert!(sup.reap().unwrap().is_none(), "reaped while it runs");
    for d in [&away, &sb] {
        d.request(&airlock::state::control::Request::Kill).unwrap();
        assert!(d.wait_ended(Some(std::time::Duration::from_secs(10))));
    }
    let mut status = None;
    assert!(wait_until(5, || {
        status = sup.reap().unwrap();
        status.is_some()
    }));
    // The supervisor exits with its sandbox's status: killed, 128 + 9.
    assert_eq!(status.unwrap().code(), Some(137), "{status:?}");
    assert!(
        std::fs::metadata(format!("/proc/{}", sup.pid())).is_err(),
        "the supervisor is gone once reaped"
    );
    for d in [&away, &sb] {
        d.remove().unwrap();
    }
}

#[test]
fn the_runner_mounts_what_was_checked() {
    require_root!();
    // Check a harmless folder, then swap it for a symlink to /etc before
    // the runner opens it: the runner judges what it opened and refuses.
    let dir = tempdir();
    let share = dir.path().join("share");
    std::fs::create_dir(&share).unwrap();
    let spec = airlock::SandboxSpec::builder()
        .args(["sh", "-c", "touch /share/airlock-toctou"])
        .default_view()
        .bind(share.display().to_string(), "/share")
        .build();
    let ctx = airlock::Context::current();
    let mut plan = airlock::plan::plan(&spec, &ctx).unwrap();
    plan.host = airlock::check::Host::probe(&spec, &ctx).unwrap();
    assert!(airlock::check::check(&spec, &plan.host).is_empty());
    std::fs::remove_dir(&share).unwrap();
    std::os::unix::fs::symlink("/etc", &share).unwrap();
    let opts = airlock::SpawnOptions {
        ..Default::default()
    };
    match airlock::Sandbox::spawn_plan_unchecked(&plan, &opts) {
        Err(airlock::Error::Setup(e)) => {
            let index = airlock::spec::default_view().len();
            assert_eq!(e.step, format!("mount /share (filesystem.mounts[{index}])"));
            assert!(
                e.reason.contains("now leads to /etc") && e.reason.contains("host-system-writable"),
                "{e}"
            );
        }
        other => panic!("the swapped source was mounted: {other:?}"),
    }
    assert!(!std::path::Path::new("/etc/airlock-toctou").exists());

    // Swapped for a place no rule refuses by itself (another user's
    // files, a path an idmap was judged for): refused all the same, as
    // not what was judged.
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    std::fs::remove_file(&share).unwrap();
    std::fs::create_dir(&share).unwrap();
    plan.host = airlock::check::Host::probe(&spec, &ctx).unwrap();
    std::fs::remove_dir(&share).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &share).unwrap();
    match airlock::Sandbox::spawn_plan_unchecked(&plan, &opts) {
        Err(airlock::Error::Setup(e)) => assert!(
            e.reason.contains(&format!(
                "now leads to {}, not to {} where the guardrails judged it",
                elsewhere.display(),
                share.display()
            )),
            "{e}"
        ),
        other => panic!("the swapped source was mounted: {other:?}"),
    }
    assert!(!elsewhere.join("airlock-toctou").exists());
}

/// A caller's own files (a service's record of who owns the sandbox) are
/// in the sandbox's directory before its supervisor starts; a name that
/// is not a plain file name of the caller's own is refused, leaving no
/// sandbox.
#[test]
fn a_callers_files_are_there_from_the_start() {
    require_root!();
    use airlock::{LifecycleOptions, Sandbox, SandboxSpec, SpawnOptions};
    let root = tempdir();
    let mut ctx = airlock::Context::current();
    ctx.state_root = root.path().to_path_buf();
    let spawn = |files: Vec<(String, Vec<u8>)>| SpawnOptions {
        context: Some(ctx.clone()),
        lifecycle: Some(LifecycleOptions {
            detach: true,
            hold: true,
            files,
            ..Default::default()
        }),
        ..Default::default()
    };
    let spec = SandboxSpec::builder().args(["true"]).default_view().build();
    let s =
        Sandbox::spawn_with(&spec, &spawn(vec![("owner.json".into(), b"{}".to_vec())])).unwrap();
    let sb = s.state().unwrap().clone();
    assert_eq!(std::fs::read(sb.dir.join("owner.json")).unwrap(), b"{}");
    sb.stop(std::time::Duration::from_secs(1)).unwrap();
    drop(s);
    sb.remove().unwrap();
    for bad in [
        "state.json",
        "../x",
        ".hidden",
        "stdout.log",
        "stdout.log.1",
        "",
    ] {
        let e = Sandbox::spawn_with(&spec, &spawn(vec![(bad.into(), b"x".to_vec())])).unwrap_err();
        assert!(
            e.to_string()
                .contains("is not a file name of the caller's own"),
            "{bad}: {e}"
        );
    }
    assert_eq!(
        std::fs::read_dir(root.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
            .count(),
        0
    );
}

/// A network or PID namespace joined by path is judged when the spec is
/// prepared and opened when the sandbox starts: a path made the host's
/// namespace in between (a bind mount over it) is refused, not joined
/// unjudged (the host's PID namespace: its processes, and the
/// capabilities over them of a sandbox that shares the host's user
/// namespace).
#[test]
fn a_joined_namespace_that_became_the_hosts_is_refused() {
    require_root!();
    for kind in ["net", "pid"] {
        let dir = tempfile::tempdir().unwrap();
        let nsfile = dir.path().join(kind);
        std::fs::write(&nsfile, "").unwrap();
        let made = std::process::Command::new("unshare")
            .arg(format!("--{kind}={}", nsfile.display()))
            .args(["--fork", "true"])
            .status()
            .unwrap();
        assert!(made.success());
        struct Unmount(PathBuf, usize);
        impl Drop for Unmount {
            fn drop(&mut self) {
                for _ in 0..self.1 {
                    let _ = std::process::Command::new("umount").arg(&self.0).status();
                }
            }
        }
        let mut mounted = Unmount(nsfile.clone(), 1);
        let mut spec = SandboxSpec::builder().args(["true"]).default_view().build();
        spec.namespaces
            .join
            .insert(kind.into(), nsfile.display().to_string());
        if kind == "net" {
            spec.namespaces.net = false;
        } else {
            // The host's PID namespace is owned by its user namespace,
            // which only a sandbox that shares it may join.
            spec.namespaces.pid = false;
            spec.namespaces.user = false;
            spec.process.uid = Some(65534);
            spec.process.gid = Some(65534);
            spec.allow_unsafe = vec!["shared-user".into()];
        }
        let ctx = airlock::Context::current();
        let prepared = airlock::launch::prepare(&spec, &ctx).unwrap();
        assert!(!prepared.plan.host.joins_own_net && !prepared.plan.host.joins_own_pid);
        // Now the host's.
        let bound = std::process::Command::new("mount")
            .arg("--bind")
            .arg(format!("/proc/self/ns/{kind}"))
            .arg(&nsfile)
            .status()
            .unwrap();
        assert!(bound.success());
        mounted.1 = 2;
        match Sandbox::start_prepared(prepared.plan, &ctx, &SpawnOptions::default()) {
            Err(Error::Setup(e)) => assert!(
                e.to_string()
                    .contains(&format!("is now the host's {kind} namespace")),
                "{e}"
            ),
            Err(e) => panic!("expected a setup error, got {e}"),
            Ok(sb) => {
                let _ = sb.kill();
                let _ = sb.wait();
                panic!("the sandbox started in the host's {kind} namespace");
            }
        }
    }
}

/// A supervisor killed before it reported the end says nothing of the
/// workload: `wait` is an error, not the supervisor's 137 given as the
/// workload's status (a library caller took it for a workload killed).
#[test]
fn a_killed_supervisor_is_no_exit_status() {
    require_root!();
    let spec = SandboxSpec::builder()
        .args(["sleep", "30"])
        .default_view()
        .build();
    let sb = Sandbox::spawn_with(&spec, &SpawnOptions::default()).unwrap();
    // SAFETY: kill takes plain integers; the runner is our unreaped child.
    assert_eq!(unsafe { libc::kill(sb.pid() as i32, libc::SIGKILL) }, 0);
    match sb.wait() {
        Err(e) => assert!(e.to_string().contains("killed by signal 9"), "{e}"),
        Ok(r) => panic!("the supervisor's death given as the workload's: {r:?}"),
    }
}
