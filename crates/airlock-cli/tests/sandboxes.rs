//! Sandboxes with their own life: `run -d`, `create`/`start`, `ps`,
//! `exec`, `logs`, `stop`, `kill`, `wait`, `rm`, from the CLI and the
//! library, and what is left behind (nothing).

mod common;
use common::*;
use std::path::Path;

/// `airlock --state-root ROOT ARGS...`
fn al(root: &Path, args: &[&str]) -> Run {
    let mut a = vec!["--state-root", root.to_str().unwrap()];
    a.extend_from_slice(args);
    output(airlock(&a))
}

fn al_user(root: &Path, args: &[&str]) -> Run {
    let mut a = vec!["--state-root", root.to_str().unwrap()];
    a.extend_from_slice(args);
    output(airlock_as_user(&a))
}

/// The host pid of a sandbox's supervisor, as `inspect` gives it.
fn supervisor_pid(root: &Path, name: &str) -> i32 {
    inspect(root, name)["supervisor_pid"].as_i64().unwrap() as i32
}

/// The cgroup directories a sandbox's state (from [`inspect`]) names:
/// each v1 hierarchy's and the v2 one.
fn cgroup_dirs(st: &serde_json::Value) -> Vec<String> {
    let mut dirs: Vec<String> = st["cgroup"]["v1"]
        .as_object()
        .into_iter()
        .flat_map(|m| m.values().map(|v| v.as_str().unwrap().to_string()))
        .collect();
    dirs.extend(st["cgroup"]["v2"].as_str().map(String::from));
    dirs
}

fn inspect(root: &Path, name: &str) -> serde_json::Value {
    let r = al(root, &["inspect", name]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    serde_json::from_str(&r.stdout).unwrap()
}

/// A state root whose sandboxes go with it: a test that fails midway
/// leaves none of its detached sandboxes running (they would outlive the
/// state root they are recorded in).
struct StateRoot(tempfile::TempDir);

impl StateRoot {
    fn new() -> StateRoot {
        StateRoot(tempdir())
    }

    fn path(&self) -> &Path {
        self.0.path()
    }
}

impl Drop for StateRoot {
    fn drop(&mut self) {
        let listed = al(self.path(), &["ps", "--format", "json"]).stdout;
        let all: Vec<serde_json::Value> = serde_json::from_str(&listed).unwrap_or_default();
        for sb in all {
            if let Some(id) = sb["id"].as_str() {
                al(self.path(), &["rm", "-f", id]);
            }
        }
    }
}

/// Kills the process of a pidfd when dropped (a pidfd, so that a pid
/// reused since is never signalled).
struct KillOnDrop(std::os::fd::OwnedFd);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = rustix::process::pidfd_send_signal(&self.0, rustix::process::Signal::KILL);
    }
}

/// `run -d --name NAME -- sleep 1000`; its directory.
fn sleeper(root: &Path, name: &str) -> std::path::PathBuf {
    let r = al(root, &["run", "-d", "--name", name, "--", "sleep", "1000"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    root.join(r.stdout.trim())
}

/// Has sandbox `name` logged `text` within `secs`?
fn logged(root: &Path, name: &str, text: &str, secs: u64) -> bool {
    wait_until(secs, || al(root, &["logs", name]).stdout.contains(text))
}

/// One line on stderr, exit 125.
fn refused_one_line(r: &Run, needle: &str) {
    assert_eq!(r.code, 125, "stdout {} stderr {}", r.stdout, r.stderr);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    assert!(
        r.stderr.contains(needle),
        "{:?} not in {}",
        needle,
        r.stderr
    );
}

#[test]
fn detached_sandbox_lifecycle() {
    require_root!();
    let root = StateRoot::new();
    let root = root.path();
    let r = al(
        root,
        &[
            "run",
            "-d",
            "--name",
            "web",
            "--",
            "sh",
            "-c",
            "trap '' TERM; echo to-stdout; echo to-stderr >&2; while true; do sleep 0.1; done",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let id = r.stdout.trim().to_string();
    assert_eq!(id.len(), 64, "run -d prints the id: {}", r.stdout);

    let ps = al(root, &["ps"]);
    assert!(
        ps.stdout.contains("web") && ps.stdout.contains("running"),
        "{}",
        ps.stdout
    );
    assert!(ps.stdout.contains(&id[..12]), "{}", ps.stdout);
    let js: serde_json::Value =
        serde_json::from_str(&al(root, &["ps", "--format", "json"]).stdout).unwrap();
    assert_eq!(js[0]["status"], "running");

    assert!(logged(root, "web", "to-stdout", 5));
    let logs = al(root, &["logs", "web"]);
    assert!(logs.stderr.contains("to-stderr"), "{}", logs.stderr);

    // exec sees the sandbox's processes, hostname and mounts, by id prefix too.
    let e = al(
        root,
        &[
            "exec", &id[..8], "--", "sh", "-c",
            "hostname; cat /proc/1/cmdline | tr '\\0' ' '; echo; ls /proc | grep -c '^[0-9]'; test -e /home && echo HOME-VISIBLE; cat /proc/uptime",
        ],
    );
    assert_eq!(e.code, 0, "{}", e.stderr);
    let lines: Vec<&str> = e.stdout.lines().collect();
    assert_eq!(lines[0], "airlock", "{}", e.stdout);
    assert!(
        lines[1].contains("airlock-runner"),
        "PID 1 is the sandbox's init: {}",
        e.stdout
    );
    let procs: usize = lines[2].parse().unwrap();
    assert!(
        (3..20).contains(&procs),
        "only the sandbox's processes: {}",
        e.stdout
    );
    assert!(!e.stdout.contains("HOME-VISIBLE"), "{}", e.stdout);
    let uptime: f64 = lines[3].split_whitespace().next().unwrap().parse().unwrap();
    assert!(uptime < 60.0, "the sandbox's clocks: {}", e.stdout);

    // The same walls as the workload: EPERM from the same syscalls, no
    // capabilities, no_new_privs, its seccomp filter.
    let e = al(
        root,
        &[
            "exec", "web", "--", "python3", "-c",
            "import ctypes,os\nl=ctypes.CDLL(None,use_errno=True)\nr=l.unshare(0x10000000)\nprint(r, ctypes.get_errno())\ns=open('/proc/self/status').read()\nprint([x for x in s.splitlines() if x.startswith(('CapEff','NoNewPrivs','Seccomp:'))])",
        ],
    );
    assert_eq!(e.code, 0, "{}", e.stderr);
    assert!(
        e.stdout.starts_with("-1 1\n"),
        "unshare gets EPERM: {}",
        e.stdout
    );
    assert!(
        e.stdout.contains("CapEff:\\t0000000000000000"),
        "{}",
        e.stdout
    );
    assert!(e.stdout.contains("NoNewPrivs:\\t1"), "{}", e.stdout);
    assert!(e.stdout.contains("Seccomp:\\t2"), "{}", e.stdout);
    // The recorded plan, which a later build's exec may read, holds the
    // filter's programs themselves: no names of this build's built-in ones.
    let plan: serde_json::Value =
        serde_json::from_slice(&std::fs::read(root.join(&id).join("plan.json")).unwrap()).unwrap();
    let programs = plan["walls"]["seccomp"].as_array().unwrap();
    assert!(!programs.is_empty(), "{}", plan["walls"]);
    for p in programs {
        let hex = p.as_str().unwrap();
        assert!(
            hex.len() > 100 && hex.bytes().all(|b| b.is_ascii_hexdigit()),
            "{hex:.80}"
        );
    }
    // Its status comes back; -e, -w and -u apply.
    let e = al(
        root,
        &[
            "exec",
            "-e",
            "X=42",
            "-w",
            "/tmp",
            "-u",
            "1000:1000",
            "web",
            "--",
            "sh",
            "-c",
            "echo $X $(pwd) $(id -u):$(id -g); exit 3",
        ],
    );
    assert_eq!(e.code, 3, "{}", e.stderr);
    assert_eq!(e.stdout.trim(), "42 /tmp 1000:1000");

    // stop: SIGTERM is ignored, so after the grace period everything is killed.
    let t = std::time::Instant::now();
    let s = al(root, &["stop", "-t", "1", "web"]);
    assert_eq!(s.code, 0, "{}", s.stderr);
    let took = t.elapsed().as_secs_f64();
    assert!(took >= 0.9, "the grace period was honoured: {took}");
    let st = inspect(root, "web");
    assert_eq!(st["status"], "stopped");
    assert_eq!(st["exit"]["code"], 137, "{st}");
    // A stopped sandbox names no host pids: they may be another
    // process's by now (the daemon and the runtime say 0).
    let listed = al(root, &["ps", "-a", "--format", "json"]).stdout;
    let listed: serde_json::Value = serde_json::from_str(&listed).unwrap();
    for st in [&st, &listed[0]] {
        assert!(
            st.get("pid").is_none() && st.get("supervisor_pid").is_none(),
            "{st}"
        );
    }
    let w = al(root, &["wait", "web"]);
    assert_eq!((w.code, w.stdout.trim()), (137, "137"));
    assert!(
        al(root, &["ps"]).stdout.lines().count() == 1,
        "ps without -a hides it"
    );
    assert!(al(root, &["ps", "-a"]).stdout.contains("exited (137)"));

    let r = al(root, &["rm", "web"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        sandbox_dirs(root).is_empty(),
        "rm removed the state directory"
    );
}

#[test]
fn kill_wait_and_signals() {
    require_root!();
    let root = StateRoot::new();
    let root = root.path();
    let r = al(
        root,
        &[
            "run",
            "-d",
            "--name",
            "k",
            "--",
            "sh",
            "-c",
            "trap 'exit 42' USR1; trap 'echo got-ALRM' ALRM; trap 'echo got-40' 40; echo trapped; while true; do sleep 0.1; done",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    // Signalled only once the shell has its trap.
    assert!(logged(root, "k", "trapped", 10));
    // Our init passes ALRM and a real-time signal on (it dropped them),
    // that one by number and by podman's name for it.
    for (sig, got) in [("ALRM", "ALRM"), ("40", "40"), ("SIGRTMIN+6", "40")] {
        let k = al(root, &["kill", "k", sig]);
        assert_eq!(k.code, 0, "{}", k.stderr);
        let got = format!("got-{got}");
        let seen = al(root, &["logs", "k"]).stdout.matches(&got).count();
        let seen_more = || al(root, &["logs", "k"]).stdout.matches(&got).count() > seen;
        assert!(
            wait_until(10, seen_more),
            "{sig} was not passed on: {}",
            al(root, &["logs", "k"]).stdout
        );
    }
    // One it keeps to itself is refused, not dropped without a word.
    let k = al(root, &["kill", "k", "SEGV"]);
    assert_ne!(k.code, 0);
    assert!(k.stderr.contains("does not pass signal 11"), "{}", k.stderr);
    let k = al(root, &["kill", "k", "USR1"]);
    assert_eq!(k.code, 0, "{}", k.stderr);
    let w = al(root, &["wait", "k"]);
    assert_eq!(
        w.code, 42,
        "USR1 was forwarded to the workload: {}",
        w.stderr
    );

    let r = al(root, &["run", "-d", "--name", "k2", "--", "sleep", "100"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // A second word that names a sandbox is no signal: `kill k2 k` (as
    // docker's `kill NAME...`) killed nothing and blamed a signal "k".
    let k = al(root, &["kill", "k2", "k"]);
    assert_eq!(k.code, 125, "{}", k.stderr);
    assert!(k.stderr.contains("\"k\" names a sandbox"), "{}", k.stderr);
    // A signal that only begins a sandbox's id is the signal (k2's id
    // begins with some hex digit, which is a signal's number too).
    let id = inspect(root, "k2")["id"].as_str().unwrap().to_string();
    let first = &id[..1];
    if airlock::state::parse_signal(first).is_some_and(|s| s != 9 && s != 19) {
        let k = al(root, &["kill", "k", first]);
        assert!(!k.stderr.contains("names a sandbox"), "{}", k.stderr);
    }
    let k = al(root, &["kill", "k2"]);
    assert_eq!(k.code, 0, "{}", k.stderr);
    assert_eq!(al(root, &["wait", "k2"]).code, 137);
    assert_eq!(al(root, &["rm", "k", "k2"]).code, 0);
}

#[test]
fn create_holds_the_workload_until_start() {
    require_root!();
    let root = StateRoot::new();
    let root = root.path();
    let r = al(
        root,
        &[
            "create",
            "--name",
            "c",
            "--",
            "sh",
            "-c",
            "echo started; exit 7",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert_eq!(inspect(root, "c")["status"], "created");
    assert_eq!(
        al(root, &["logs", "c"]).stdout,
        "",
        "nothing ran before start"
    );
    refused_one_line(
        &al(root, &["exec", "c", "--", "true"]),
        "only a running sandbox",
    );
    // A signal a held init ignores (runc's, Go's: USR1) leaves it
    // created; delivered, it ended the held workload unrecorded.
    assert_eq!(al(root, &["kill", "-s", "USR1", "c"]).code, 0);
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert_eq!(inspect(root, "c")["status"], "created");
    let s = al(root, &["start", "c"]);
    assert_eq!(s.code, 0, "{}", s.stderr);
    assert_eq!(al(root, &["wait", "c"]).code, 7);
    assert_eq!(al(root, &["logs", "c"]).stdout, "started\n");
    refused_one_line(&al(root, &["start", "c"]), "only a created sandbox");
    assert_eq!(al(root, &["rm", "c"]).code, 0);
    // One never started goes without -f, as docker's and runc's (it was
    // refused as if it ran), its held process with it.
    let r = al(root, &["create", "--name", "held", "--", "sleep", "100"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let pid = inspect(root, "held")["pid"].as_i64().unwrap() as i32;
    let r = al(root, &["rm", "held"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(sandbox_dirs(root).is_empty(), "{:?}", sandbox_dirs(root));
    assert!(wait_until(5, || !alive(pid)), "the held process lives on");
}

#[test]
fn verbs_refuse_with_one_line_and_change_nothing() {
    require_root!();
    let root = StateRoot::new();
    let root = root.path();
    assert_eq!(
        al(root, &["run", "-d", "--name", "a", "--", "sleep", "100"]).code,
        0
    );
    assert_eq!(al(root, &["run", "--name", "b", "--", "true"]).code, 0);
    let before = sandbox_dirs(root);

    refused_one_line(
        &al(root, &["run", "-d", "--name", "a", "--", "true"]),
        "already in use",
    );
    refused_one_line(
        &al(root, &["exec", "b", "--", "true"]),
        "only a running sandbox",
    );
    refused_one_line(
        &al(root, &["exec", "nope", "--", "true"]),
        "no sandbox named",
    );
    refused_one_line(&al(root, &["stop", "nope"]), "no sandbox named");
    refused_one_line(&al(root, &["rm", "a"]), "stop it first");
    refused_one_line(
        &al(root, &["run", "-d", "--name", "bad/name", "--", "true"]),
        "invalid name",
    );
    refused_one_line(&al(root, &["kill", "a", "NOSUCHSIG"]), "unknown signal");

    let mut after = sandbox_dirs(root);
    after.sort();
    let mut before = before;
    before.sort();
    assert_eq!(before, after, "no state directory was added or removed");
    assert_eq!(
        inspect(root, "a")["status"],
        "running",
        "rm without -f left it running"
    );
    assert_eq!(al(root, &["rm", "-f", "a", "b"]).code, 0);
    assert!(sandbox_dirs(root).is_empty());
}

/// A workload that is PID 1 itself and clears its parent-death signal,
/// with a cgroup (a pids limit): SIGKILL of the supervisor must still take
/// every process with it and remove the cgroups.
#[test]
fn supervisor_sigkill_takes_the_whole_sandbox() {
    require_root!();
    let root = StateRoot::new();
    let root = root.path();
    let r = al(
        root,
        &[
            "run", "-d", "--name", "orphan", "--as-pid1", "--pids", "64", "--", "python3", "-c",
            "import ctypes,os,time\nctypes.CDLL(None).prctl(1, 0)\nif os.fork() == 0:\n    os.setsid()\ntime.sleep(100)",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    std::thread::sleep(std::time::Duration::from_millis(500));
    let st = inspect(root, "orphan");
    let (sup, pid1) = (
        st["supervisor_pid"].as_i64().unwrap() as i32,
        st["pid"].as_i64().unwrap() as i32,
    );
    let cgroups: Vec<String> = st["cgroup"]["v1"]
        .as_object()
        .map(|m| {
            m.values()
                .map(|v| v.as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default();
    assert!(!cgroups.is_empty(), "{st}");
    let sandbox = descendants(sup);
    assert!(sandbox.len() >= 2 && alive(pid1), "{sandbox:?}");
    // SAFETY: kill takes no pointers; sup is the supervisor this test started.
    unsafe { libc::kill(sup, libc::SIGKILL) };
    assert!(
        wait_until(10, || sandbox.iter().all(|p| !alive(*p))),
        "processes of the sandbox outlived its supervisor: {:?}",
        sandbox.iter().filter(|p| alive(**p)).collect::<Vec<_>>()
    );
    assert!(
        wait_until(10, || cgroups.iter().all(|c| !Path::new(c).exists())),
        "{cgroups:?}"
    );
    assert!(wait_until(5, || al(root, &["ps", "-a"])
        .stdout
        .contains("supervisor was killed")));
    assert_eq!(inspect(root, "orphan")["status"], "stopped");
    assert_eq!(al(root, &["rm", "orphan"]).code, 0);

    // Our own init, no cgroup: no guard, PID 1's parent-death signal ends
    // the PID namespace, and the released lock shows it stopped.
    let r = al(
        root,
        &[
            "run",
            "-d",
            "--name",
            "plain",
            "--",
            "sh",
            "-c",
            "sleep 100 & sleep 100",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let sup = supervisor_pid(root, "plain");
    assert!(
        wait_until(10, || descendants(sup).len() >= 3),
        "{:?}",
        descendants(sup)
    );
    let sandbox = descendants(sup);
    // SAFETY: kill takes no pointers; sup is the supervisor this test started.
    unsafe { libc::kill(sup, libc::SIGKILL) };
    assert!(
        wait_until(10, || sandbox.iter().all(|p| !alive(*p))),
        "{sandbox:?}"
    );
    let st = inspect(root, "plain");
    assert_eq!(st["status"], "stopped", "{st}");
    assert!(
        st["reason"].as_str().unwrap().contains("supervisor"),
        "{st}"
    );
    assert_eq!(al(root, &["rm", "plain"]).code, 0);

    // The supervisor and its guard killed together (their process group):
    // nothing recorded the end or removed the cgroups, and `rm` does.
    let r = al(
        root,
        &[
            "run", "-d", "--name", "both", "--memory", "64M", "--", "sleep", "100",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let st = inspect(root, "both");
    let sup = st["supervisor_pid"].as_i64().unwrap() as i32;
    let cgroups = cgroup_dirs(&st);
    assert!(!cgroups.is_empty(), "{st}");
    // The guard is the supervisor's child in our PID namespace (PID 1 is
    // in the sandbox's), in a session of its own: a kill of the
    // supervisor's process group would leave it to clean up.
    use std::os::unix::fs::MetadataExt;
    let ours = std::fs::metadata("/proc/self/ns/pid").unwrap().ino();
    let guard = descendants(sup)
        .into_iter()
        .filter(|p| *p != sup)
        .find(|p| {
            let ns = std::fs::metadata(format!("/proc/{p}/ns/pid")).map(|m| m.ino());
            let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, r)| r.split_whitespace().nth(1));
            ns.ok() == Some(ours) && ppid == Some(&sup.to_string())
        })
        .expect("the guard");
    for p in [guard, sup] {
        // SAFETY: kill takes no pointers; the supervisor this test started
        // and its guard, both alive (their pids not yet reused).
        unsafe { libc::kill(p, libc::SIGKILL) };
    }
    assert!(wait_until(10, || !alive(sup) && !alive(guard)));
    assert!(
        cgroups.iter().all(|c| Path::new(c).exists()),
        "nothing removed them yet"
    );
    assert!(wait_until(5, || inspect(root, "both")["status"] == "stopped"));
    assert_eq!(al(root, &["rm", "both"]).code, 0);
    let left: Vec<&String> = cgroups.iter().filter(|c| Path::new(c).exists()).collect();
    assert!(left.is_empty(), "rm left the cgroups {left:?}");
}

/// A sandbox recorded stopped whose cgroups its supervisor left (it gave
/// their removal up after a second: a process stuck in the kernel; here
/// made again by hand and so recorded): `rm` removes them, where it left
/// them for good. One whose cgroups went leaves the same paths alone:
/// they may be another sandbox's since (a reused `linux.cgroupsPath`).
#[test]
fn rm_takes_the_cgroups_a_stopped_sandbox_left() {
    require_root!();
    let root = StateRoot::new();
    let root = root.path();
    for (name, left) in [("left", true), ("reused", false)] {
        let r = al(
            root,
            &["run", "-d", "--name", name, "--memory", "64M", "--", "true"],
        );
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert_eq!(al(root, &["wait", name]).code, 0);
        let st = inspect(root, name);
        assert_eq!(st["status"], "stopped", "{st}");
        assert!(st.get("cgroups_left").is_none(), "{st}");
        let cgroups = cgroup_dirs(&st);
        assert!(!cgroups.is_empty(), "{st}");
        for c in &cgroups {
            assert!(!Path::new(c).exists(), "{c} was not removed at the end");
            std::fs::create_dir(c).unwrap();
        }
        if left {
            let file = root.join(st["id"].as_str().unwrap()).join("state.json");
            let mut st: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
            st["cgroups_left"] = true.into();
            std::fs::write(&file, st.to_string()).unwrap();
        }
        assert_eq!(al(root, &["rm", name]).code, 0);
        let there: Vec<&String> = cgroups.iter().filter(|c| Path::new(c).exists()).collect();
        match left {
            true => assert!(there.is_empty(), "rm left the cgroups {there:?}"),
            false => {
                assert_eq!(there.len(), cgroups.len(), "rm took another's cgroups");
                for c in &cgroups {
                    std::fs::remove_dir(c).unwrap();
                }
            }
        }
    }
}

#[test]
fn rootless_lifecycle() {
    require_root!();
    let shared = shared_dir();
    let root = shared.path().join("state");
    let r = al_user(
        &root,
        &[
            "run",
            "-d",
            "--name",
            "u",
            "--",
            "sh",
            "-c",
            "echo up; sleep 100",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let meta = std::fs::metadata(&root).unwrap();
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    assert_eq!(
        (meta.uid(), meta.permissions().mode() & 0o777),
        (USER, 0o700)
    );
    let e = al_user(
        &root,
        &[
            "exec",
            "u",
            "--",
            "sh",
            "-c",
            "id -u; hostname; unshare -U true 2>/dev/null || echo EPERM",
        ],
    );
    assert_eq!(e.code, 0, "{}", e.stderr);
    assert_eq!(e.stdout, format!("{USER}\nairlock\nEPERM\n"));
    assert!(wait_until(5, || al_user(&root, &["logs", "u"]).stdout == "up\n"));
    // Another user (root here, through a state root it does not own) is
    // refused the user's state root.
    let r = al(&root, &["ps"]);
    assert_eq!(r.code, 125, "{}", r.stdout);
    assert!(r.stderr.contains("owned by uid"), "{}", r.stderr);
    assert_eq!(al_user(&root, &["rm", "-f", "u"]).code, 0);
    assert!(sandbox_dirs(&root).is_empty());
}

/// The runner that execs into a sandbox is not dumpable from its start,
/// so that the workload, of the same host uid for a rootless caller,
/// cannot ptrace it or write its memory before the new process's walls
/// are up (runc CVE-2016-9962's class). The kernel shows it: a
/// non-dumpable process's /proc files belong to root, not to its uid.
#[test]
fn the_exec_runner_is_not_dumpable() {
    require_root!();
    let shared = shared_dir();
    let root = shared.path().join("state");
    let r = al_user(&root, &["run", "-d", "--name", "d", "--", "sleep", "100"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let mut exec = airlock_as_user(&[
        "--state-root",
        root.to_str().unwrap(),
        "exec",
        "d",
        "--",
        "sleep",
        "30",
    ])
    .stdout(std::process::Stdio::null())
    .spawn()
    .unwrap();
    let parent_of = |pid: i32| -> Option<i32> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        stat.rsplit_once(')')?
            .1
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    };
    // The exec'd sleep, and the runner waiting for it: its parent.
    let mut runner = None;
    for _ in 0..200 {
        runner = std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
            .filter(|p| {
                std::fs::read(format!("/proc/{p}/cmdline")).is_ok_and(|c| c == b"sleep\x0030\x00")
            })
            .find_map(|p| {
                let r = parent_of(p)?;
                let exe = std::fs::read_link(format!("/proc/{r}/exe")).ok()?;
                exe.to_string_lossy()
                    .contains("airlock-runner")
                    .then_some(r)
            });
        if runner.is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    let runner = runner.expect("the exec runner and its sleep");
    let status = std::fs::read_to_string(format!("/proc/{runner}/status")).unwrap();
    assert!(
        status.contains(&format!("\nUid:\t{USER}\t")),
        "the runner runs as the user: {status}"
    );
    let owner = std::os::unix::fs::MetadataExt::uid(
        &std::fs::metadata(format!("/proc/{runner}/environ")).unwrap(),
    );
    let _ = exec.kill();
    let _ = exec.wait();
    assert_eq!(al_user(&root, &["rm", "-f", "d"]).code, 0);
    assert_eq!(owner, 0, "the exec runner {runner} is dumpable");
}

#[test]
fn exec_as_another_user_is_judged_like_the_workload() {
    require_root!();
    let root = StateRoot::new();
    let root = root.path();
    // The host's user namespace shared (acknowledged), as uid 1000.
    let r = al(
        root,
        &[
            "run",
            "-d",
            "--name",
            "shared",
            "--share-user",
            "--uid",
            "1000",
            "--allow-unsafe",
            "shared-user",
            "--",
            "sleep",
            "1000",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = al(root, &["exec", "shared", "--", "id", "-u"]);
    assert_eq!((r.code, r.stdout.as_str()), (0, "1000\n"), "{}", r.stderr);
    // As uid 0 it would be the host's real root: refused, nothing ran.
    let r = al(root, &["exec", "-u", "0", "shared", "--", "id", "-u"]);
    assert_eq!(r.code, 125, "{} {}", r.stdout, r.stderr);
    assert!(r.stdout.is_empty(), "{}", r.stdout);
    assert!(r.stderr.contains("host-root-user"), "{}", r.stderr);
    // Another unprivileged id is judged the same way and allowed.
    let r = al(root, &["exec", "-u", "1001", "shared", "--", "id", "-u"]);
    assert_eq!((r.code, r.stdout.as_str()), (0, "1001\n"), "{}", r.stderr);
    // 4294967295 is (uid_t)-1, which setresuid takes as "unchanged": the
    // process kept the runner's ids, the host's root, past the guardrail
    // (crun's CVE-2026-30892). Refused as a uid and as a gid, naming the
    // flag.
    for user in ["4294967295", "1000:4294967295"] {
        let r = al(root, &["exec", "-u", user, "shared", "--", "id"]);
        assert_eq!(r.code, 125, "{user}: {} {}", r.stdout, r.stderr);
        assert!(r.stdout.is_empty(), "{user}: {}", r.stdout);
        assert!(
            r.stderr
                .contains(&format!("--user \"{user}\": 4294967295 is (uid_t)-1")),
            "{user}: {}",
            r.stderr
        );
    }
    assert_eq!(al(root, &["rm", "-f", "shared"]).code, 0);
    // And as the workload's own ids.
    for flag in ["--uid", "--gid"] {
        let r = al(
            root,
            &[
                "run",
                "--share-user",
                "--allow-unsafe",
                "shared-user",
                flag,
                "4294967295",
                "--",
                "id",
            ],
        );
        assert_eq!(r.code, 125, "{flag}: {} {}", r.stdout, r.stderr);
        assert!(r.stdout.is_empty(), "{flag}: {}", r.stdout);
        assert!(
            r.stderr.contains("4294967295 is (uid_t)-1"),
            "{flag}: {}",
            r.stderr
        );
    }
}

/// exec trusts what answers on a sandbox's control socket no further than
/// to hand out the sandbox's own namespaces: a stand-in there (what a
/// workload given the state directory could be) that hands out the
/// caller's mount namespace, or leaves a kind out, is refused, and
/// nothing runs.
#[test]
fn exec_refuses_namespaces_that_are_not_the_sandboxs() {
    require_root!();
    use airlock::namespace::Namespace;
    use airlock::state::control;
    use std::os::fd::OwnedFd;
    let root = StateRoot::new();
    let root = root.path();
    let dir = sleeper(root, "v");
    // With its socket taken by the stand-in, `rm -f` (the state root's
    // guard) cannot reach the supervisor: it is killed by its pidfd should
    // the test fail midway.
    let supervisor = supervisor_pid(root, "v");
    let guard = KillOnDrop(
        rustix::process::pidfd_open(
            rustix::process::Pid::from_raw(supervisor).unwrap(),
            rustix::process::PidfdFlags::empty(),
        )
        .unwrap(),
    );
    let ns = |kind: &str| -> OwnedFd {
        std::fs::File::open(format!("/proc/self/ns/{kind}"))
            .unwrap()
            .into()
    };
    // A namespace of the test's own making, not the sandbox's.
    let other = |flag: &str, kind: &str| -> OwnedFd {
        let mut c = std::process::Command::new("unshare")
            .args([flag, "sh", "-c", "read x"])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let path = format!("/proc/{}/ns/{kind}", c.id());
        let ours = std::fs::metadata(format!("/proc/self/ns/{kind}")).unwrap();
        let fd = loop {
            let f = std::fs::File::open(&path).unwrap();
            if std::os::unix::fs::MetadataExt::ino(&f.metadata().unwrap())
                != std::os::unix::fs::MetadataExt::ino(&ours)
            {
                break f;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        };
        drop(c.stdin.take());
        c.wait().unwrap();
        fd.into()
    };
    let answers: Vec<(Vec<(Namespace, OwnedFd)>, &str)> = vec![
        (
            // Every kind, each the caller's own: first its user
            // namespace, where the sandbox's uid 0 is the host's root.
            Namespace::ALL
                .iter()
                .map(|k| (*k, ns(k.proc_name())))
                .collect(),
            "the user namespace handed out is the caller's own",
        ),
        (
            // Another user namespace, and the caller's mount namespace.
            Namespace::ALL
                .iter()
                .map(|k| match k {
                    Namespace::User => (*k, other("-U", "user")),
                    _ => (*k, ns(k.proc_name())),
                })
                .collect(),
            "the mount namespace handed out is the caller's own",
        ),
        (
            // The caller's user namespace beside another mount namespace:
            // the sandbox's uid 0 would be the host's root there.
            Namespace::ALL
                .iter()
                .map(|k| match k {
                    Namespace::Mnt => (*k, other("-m", "mnt")),
                    _ => (*k, ns(k.proc_name())),
                })
                .collect(),
            "the user namespace handed out is the caller's own",
        ),
        (vec![(Namespace::Uts, ns("uts"))], "did not hand out its"),
    ];
    std::fs::remove_file(dir.join(control::SOCKET)).unwrap();
    let stand_in = control::listen(&dir).unwrap();
    for (answer, refusal) in answers {
        let answering = std::thread::spawn({
            let stand_in = stand_in.try_clone().unwrap();
            move || {
                let incoming = control::accept(&stand_in).unwrap().unwrap();
                assert_eq!(incoming.request, control::Request::Namespaces);
                incoming.reply_namespaces(&answer);
            }
        });
        let r = al(root, &["exec", "v", "--", "sh", "-c", "echo ran"]);
        // An exec that failed before it asked leaves the stand-in in
        // accept: a failure, not a hang of the whole test binary.
        assert!(
            wait_until(10, || answering.is_finished()),
            "the exec never asked the supervisor: {} {}",
            r.stdout,
            r.stderr
        );
        answering.join().unwrap();
        assert_eq!(r.code, 125, "{} {}", r.stdout, r.stderr);
        assert!(r.stdout.is_empty(), "{}", r.stdout);
        assert!(r.stderr.contains(refusal), "{}", r.stderr);
    }
    drop(stand_in);
    // The real supervisor is gone from its socket: end it by its pidfd.
    rustix::process::pidfd_send_signal(&guard.0, rustix::process::Signal::KILL).unwrap();
    for _ in 0..200 {
        if inspect(root, "v")["status"] == "stopped" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    assert_eq!(al(root, &["rm", "-f", "v"]).code, 0);

    // Nor are the cgroups the state names trusted to be cgroups.
    let r = al(
        root,
        &[
            "run", "-d", "--name", "c", "--memory", "64M", "--", "sleep", "1000",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let state = root.join(r.stdout.trim()).join("state.json");
    let decoy = root.join("decoy");
    std::fs::create_dir(&decoy).unwrap();
    std::fs::write(decoy.join("cgroup.procs"), "").unwrap();
    let mut st: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    st["cgroup"]["v2"] = serde_json::json!(decoy);
    std::fs::write(&state, serde_json::to_vec(&st).unwrap()).unwrap();
    let r = al(root, &["exec", "c", "--", "sh", "-c", "echo ran"]);
    assert_eq!(r.code, 125, "{} {}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("not a cgroup file system"),
        "{}",
        r.stderr
    );
    assert_eq!(
        std::fs::read_to_string(decoy.join("cgroup.procs")).unwrap(),
        ""
    );
    assert_eq!(al(root, &["rm", "-f", "c"]).code, 0);
}

/// `stats` reads a sandbox's cgroups; one without (no limit given) says
/// nothing was measured instead of showing zeros.
#[test]
fn stats_of_a_sandbox_with_and_without_cgroups() {
    require_root!();
    let root = StateRoot::new();
    let root = root.path();
    for (name, flags) in [("plain", vec![]), ("limited", vec!["--pids", "50"])] {
        let mut args = vec!["run", "-d", "--name", name];
        args.extend(flags);
        args.extend(["--", "sh", "-c", "sleep 1000 & wait"]);
        assert_eq!(al(root, &args).code, 0);
    }
    let r = al(root, &["stats", "plain"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.starts_with("no cgroup, so nothing is measured"),
        "{}",
        r.stdout
    );
    let v: serde_json::Value =
        serde_json::from_str(&al(root, &["stats", "--format", "json", "limited"]).stdout).unwrap();
    assert_eq!(v["cgroup"], true, "{v}");
    assert_eq!(v["pids_limit"], 50, "{v}");
    assert!(v["pids"].as_u64().unwrap() >= 2, "{v}");
    for name in ["plain", "limited"] {
        assert_eq!(al(root, &["rm", "-f", name]).code, 0);
    }
}

/// A sandbox's processes without cgroups (no limit given), as airlockd's
/// Inspect lists them: PID 1 and everything below it (it listed none).
#[test]
fn the_processes_of_a_sandbox_without_cgroups() {
    require_root!();
    let root = StateRoot::new();
    let root = root.path();
    let r = al(
        root,
        &[
            "run",
            "-d",
            "--name",
            "bare",
            "--",
            "sh",
            "-c",
            "sleep 100 & sleep 100",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let states = airlock::state::StateRoot::open(root).unwrap();
    let mut seen = Vec::new();
    for _ in 0..100 {
        let (_, st) = states.find("bare").unwrap();
        assert!(st.cgroup.is_none(), "{st:?}");
        seen = st.processes();
        if st.pid.is_some_and(|p| seen.contains(&p)) && seen.len() >= 4 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    // PID 1 (our init), sh, and its two sleeps.
    assert!(seen.len() >= 4, "{seen:?}");
    assert_eq!(al(root, &["rm", "-f", "bare"]).code, 0);
    assert!(states.list().is_empty());
}

/// `rm -f` of a sandbox whose supervisor does not answer (stopped with
/// SIGSTOP) kills the supervisor itself after a bounded wait, as runc's
/// `delete --force` kills init: the workload dies with it, the guard
/// removes the cgroups, and the sandbox is gone.
#[test]
fn rm_f_kills_a_supervisor_that_does_not_answer() {
    require_root!();
    let root = StateRoot::new();
    let root = root.path();
    let r = al(
        root,
        &[
            "run", "-d", "--memory", "64M", "--name", "frozen", "--", "sleep", "100",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let st = inspect(root, "frozen");
    let (sup, pid1) = (supervisor_pid(root, "frozen"), st["pid"].as_i64().unwrap());
    let cgroups = cgroup_dirs(&st);
    assert!(!cgroups.is_empty(), "{st}");
    // SAFETY: kill takes no pointers; sup is the supervisor this test started.
    unsafe { libc::kill(sup, libc::SIGSTOP) };
    let started = std::time::Instant::now();
    let r = al(root, &["rm", "-f", "frozen"]);
    let took = started.elapsed();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(took < std::time::Duration::from_secs(60), "{took:?}");
    assert_ne!(al(root, &["inspect", "frozen"]).code, 0, "still listed");
    let gone = |p: i64| !Path::new(&format!("/proc/{p}")).exists();
    assert!(
        wait_until(10, || gone(pid1) && gone(sup as i64)),
        "the workload ({pid1}) or its supervisor ({sup}) lives on"
    );
    for dir in &cgroups {
        assert!(!Path::new(dir).exists(), "{dir} left");
    }

    // A rootless caller's too: its supervisor is not dumpable, so the
    // caller cannot see its fds, and knows it by its start time.
    let shared = shared_dir();
    let root = shared.path().join("state");
    let r = al_user(&root, &["run", "-d", "--name", "u", "--", "sleep", "100"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let st: serde_json::Value =
        serde_json::from_str(&al_user(&root, &["inspect", "u"]).stdout).unwrap();
    let (sup, pid1) = (
        st["supervisor_pid"].as_i64().unwrap() as i32,
        st["pid"].as_i64().unwrap(),
    );
    // SAFETY: as above.
    unsafe { libc::kill(sup, libc::SIGSTOP) };
    let r = al_user(&root, &["rm", "-f", "u"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        wait_until(10, || gone(pid1) && gone(sup as i64)),
        "the rootless workload ({pid1}) or its supervisor ({sup}) lives on"
    );
}

/// A `run -d --rm` sandbox whose supervisor does not take the stop's
/// kill (stopped), and is killed itself, still goes as it ends: its guard
/// removes it (keeping its end for whoever waited on it already).
#[test]
fn a_removed_on_exit_sandbox_goes_when_its_supervisor_is_killed() {
    require_root!();
    let root = StateRoot::new();
    let root = root.path();
    let r = al(
        root,
        &[
            "run", "-d", "--rm", "--memory", "64M", "--name", "brief", "--", "sleep", "100",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let sup = supervisor_pid(root, "brief");
    // SAFETY: kill takes no pointers; sup is the supervisor this test started.
    unsafe { libc::kill(sup, libc::SIGSTOP) };
    let r = al(root, &["stop", "-t", "1", "brief"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        wait_until(10, || !al(root, &["ps", "-a"]).stdout.contains("brief")),
        "{}",
        al(root, &["ps", "-a"]).stdout
    );
    assert_ne!(al(root, &["inspect", "brief"]).code, 0);
}

#[test]
fn ps_keeps_its_columns_in_line() {
    require_root!();
    let root = StateRoot::new();
    let root = root.path();
    let long = "a-name-longer-than-sixteen-characters";
    assert_eq!(
        al(root, &["run", "-d", "--name", long, "--", "sleep", "100"]).code,
        0
    );
    assert_eq!(al(root, &["run", "--name", "short", "--", "true"]).code, 0);
    let ps = al(root, &["ps", "-a"]).stdout;
    let mut lines = ps.lines();
    let header = lines.next().unwrap();
    for row in lines.clone() {
        let bytes = row.as_bytes();
        // Left-aligned cells start where their heading does, after a gap.
        for column in ["NAME", "STATUS", "CREATED", "COMMAND"] {
            let at = header.find(column).unwrap();
            assert!(
                bytes[at - 2..at] == *b"  " && bytes[at] != b' ',
                "{column} out of line:\n{ps}"
            );
        }
        // The pid is right-aligned: it ends where its heading does.
        let end = header.find("PID").unwrap() + 3;
        assert!(
            bytes[end - 1] != b' ' && bytes[end..end + 2] == *b"  ",
            "PID out of line:\n{ps}"
        );
    }
    let at = header.find("COMMAND").unwrap();
    let commands: Vec<_> = lines.map(|l| &l[at..]).collect();
    assert!(commands.contains(&"sleep 100"), "{ps}");
    assert!(commands.contains(&"true"), "{ps}");
    assert_eq!(al(root, &["rm", "-f", long, "short"]).code, 0);
}

/// An exec's environment and ids are checked as the workload's are, and
/// named: a variable without a name, a uid the sandbox does not map.
#[test]
fn exec_checks_its_environment_and_ids() {
    let root = StateRoot::new();
    let r = al(
        root.path(),
        &["run", "-d", "--name", "x", "--", "sleep", "100"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = al(root.path(), &["exec", "-e", "=x", "x", "--", "true"]);
    assert_eq!(r.code, 125, "{}", r.stderr);
    assert!(
        r.stderr.contains("a variable name must be non-empty"),
        "{}",
        r.stderr
    );
    // A root caller's sandbox maps 65536 ids, a rootless one its own.
    let r = al(root.path(), &["exec", "-u", "4000000", "x", "--", "true"]);
    assert_eq!(r.code, 125, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("uid: 4000000 is not mapped in the sandbox's user namespace"),
        "{}",
        r.stderr
    );
    let r = al(root.path(), &["exec", "x", "--", "true"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
}

/// `ps` shows a command's control characters escaped: the arguments are
/// their owner's to choose, and through a daemon root's table lists every
/// user's, where an escape sequence erased and forged rows.
#[test]
fn ps_escapes_control_characters() {
    let root = StateRoot::new();
    let forged = "x\x1b[2K\x1b[1Afake row\x07";
    let r = al(
        root.path(),
        &["create", "--name", "esc", "--", "true", forged],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = al(root.path(), &["ps", "-a"]);
    let _ = al(root.path(), &["rm", "-f", "esc"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        !r.stdout.contains('\x1b') && !r.stdout.contains('\x07'),
        "{:?}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("true x\\u{1b}[2K\\u{1b}[1Afake row\\u{7}"),
        "{}",
        r.stdout
    );
}

/// A process exec'd into a sandbox gets the workload's umask (the `run`
/// caller's, when the spec gives none), not its own caller's: a caller
/// with umask 0 used to have its exec'd process make world-writable files
/// in the sandbox's binds.
#[test]
fn exec_takes_the_workloads_umask() {
    let root = StateRoot::new();
    let with_umask = |mask: &str, args: &[&str]| {
        let mut c = std::process::Command::new("sh");
        c.args(["-c", &format!("umask {mask}; exec \"$0\" \"$@\"")])
            .arg(airlock_bin())
            .args(["--state-root", root.path().to_str().unwrap()])
            .args(args)
            .stdin(std::process::Stdio::null());
        output(c)
    };
    let status = ["grep", "Umask", "/proc/self/status"];
    let r = with_umask("027", &["run", "-d", "--name", "m", "--", "sleep", "100"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let mut exec = vec!["exec", "m", "--"];
    exec.extend(status);
    let r = with_umask("0", &exec);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.stdout.split_whitespace().nth(1),
        Some("0027"),
        "{}",
        r.stdout
    );
    assert_eq!(al(root.path(), &["rm", "-f", "m"]).code, 0);
}

/// An exec joins every namespace of the sandbox, those it shares with
/// whoever made it too: a --share-net sandbox made in a network
/// namespace of its caller's is entered into that one from the host's,
/// where the exec'd process used to stay in its caller's.
#[test]
fn exec_joins_the_namespaces_the_sandbox_shares() {
    require_root!();
    let root = StateRoot::new();
    let root = root.path();
    let made = std::process::Command::new("unshare")
        .args(["--net", "--"])
        .arg(airlock_bin())
        .args(["--state-root", root.to_str().unwrap()])
        .args([
            "run",
            "-d",
            "--name",
            "offline",
            "--share-net",
            "--",
            "sleep",
            "1000",
        ])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let pid = inspect(root, "offline")["pid"].as_i64().unwrap();
    let sandbox = std::fs::read_link(format!("/proc/{pid}/ns/net")).unwrap();
    let host = std::fs::read_link("/proc/self/ns/net").unwrap();
    assert_ne!(sandbox, host);
    let r = al(
        root,
        &["exec", "offline", "--", "readlink", "/proc/self/ns/net"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout.trim(), sandbox.to_str().unwrap());
    assert_eq!(al(root, &["rm", "-f", "offline"]).code, 0);
}

/// `stop` and `rm -f` of a sandbox that removes itself when it ends
/// (`-d --rm`) succeed and say so: its state going with it is the end
/// asked for, not an error reading it.
#[test]
fn stopping_a_sandbox_that_removes_itself() {
    require_root!();
    let root = StateRoot::new();
    let root = root.path();
    for verb in [vec!["stop", "x"], vec!["rm", "-f", "x"]] {
        let r = al(
            root,
            &["run", "-d", "--rm", "--name", "x", "--", "sleep", "100"],
        );
        assert_eq!(r.code, 0, "{}", r.stderr);
        let dir = root.join(r.stdout.trim());
        let r = al(root, &verb);
        assert_eq!(r.code, 0, "{verb:?}: {}", r.stderr);
        assert!(wait_until(10, || !dir.exists()), "{verb:?} left it");
    }
}

/// An exec into a paused sandbox (its cgroup frozen) is refused: its
/// runner would freeze as it joined, and the exec wait for good.
#[test]
fn exec_into_a_paused_sandbox_is_refused() {
    require_root!();
    let root = StateRoot::new();
    let root = root.path();
    let r = al(
        root,
        &[
            "run", "-d", "--name", "p", "--memory", "64M", "--", "sleep", "100",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let Some(v2) = inspect(root, "p")["cgroup"]["v2"]
        .as_str()
        .map(String::from)
    else {
        eprintln!(
            "skipped exec_into_a_paused_sandbox_is_refused: no cgroup v2 hierarchy to freeze in"
        );
        assert_eq!(al(root, &["rm", "-f", "p"]).code, 0);
        return;
    };
    let freeze = std::path::Path::new(&v2).join("cgroup.freeze");
    std::fs::write(&freeze, "1").unwrap();
    let mut a = vec!["--state-root", root.to_str().unwrap()];
    a.extend_from_slice(&["exec", "p", "--", "true"]);
    let mut exec = airlock(&a)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let ended = wait_until(10, || exec.try_wait().unwrap().is_some());
    if !ended {
        let _ = exec.kill();
    }
    std::fs::write(&freeze, "0").unwrap();
    let out = exec.wait_with_output().unwrap();
    assert!(ended, "the exec waited in the frozen cgroup");
    assert_eq!(out.status.code(), Some(125));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("paused"), "{stderr}");
    assert_eq!(al(root, &["exec", "p", "--", "true"]).code, 0);
}

/// A sandbox's `alive` file deleted from under its supervisor (as
/// systemd-tmpfiles ages out what sits untouched in /tmp) leaves it
/// running: listed so, not removable without -f, and its cgroups and
/// workload untouched by an `rm` that would have taken it for stopped.
/// As root and as the test user.
#[test]
fn a_deleted_alive_file_leaves_the_sandbox_running() {
    require_root!();
    for user in [false, true] {
        let root = StateRoot::new();
        let root = root.path();
        let al = |args: &[&str]| match user {
            true => al_user(root, args),
            false => al(root, args),
        };
        if user {
            chown(root, USER, USER);
        }
        let r = al(&["run", "-d", "--name", "t", "--", "sleep", "1000"]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        let id = r.stdout.trim().to_string();
        std::fs::remove_file(root.join(&id).join("alive")).unwrap();
        let ps = al(&["ps"]);
        assert!(ps.stdout.contains("running"), "user {user}: {}", ps.stdout);
        let r = al(&["rm", "t"]);
        assert_eq!(r.code, 125, "user {user}: {}", r.stderr);
        assert!(root.join(&id).exists());
        let e = al(&["exec", "t", "--", "true"]);
        assert_eq!(e.code, 0, "user {user}: still there: {}", e.stderr);
        let r = al(&["rm", "-f", "t"]);
        assert_eq!(r.code, 0, "user {user}: {}", r.stderr);
        assert!(!root.join(&id).exists());
    }
}

/// Callers that connect to a sandbox's control socket and send nothing
/// (sixteen at once, the listener's whole queue) do not hold up the
/// supervisor: an exec is answered. It waited a second on each of them in
/// turn, and the exec gave up after ten ("did not answer"; a kill then
/// still got through, late, by other means).
#[test]
fn idle_callers_do_not_hold_up_the_supervisor() {
    require_root!();
    let root = StateRoot::new();
    let root = root.path();
    let dir = sleeper(root, "t");
    let idle = r#"
import os, socket, sys, time
d = os.open(sys.argv[1], os.O_RDONLY)
held = []
for _ in range(16):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.connect("/proc/self/fd/%d/control.sock" % d)
    held.append(s)
print("connected", flush=True)
time.sleep(60)
"#;
    let mut callers = std::process::Command::new("python3")
        .args(["-c", idle])
        .arg(&dir)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(callers.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line.trim(), "connected");
    let e = al(root, &["exec", "t", "--", "echo", "in"]);
    let k = al(root, &["kill", "t"]);
    let _ = callers.kill();
    let _ = callers.wait();
    assert_eq!((e.code, e.stdout.as_str()), (0, "in\n"), "{}", e.stderr);
    assert_eq!(k.code, 0, "{}", k.stderr);
    // A request it does not know (a newer client's) is answered so, not
    // dropped: the client would take a dropped one for done.
    let other = sleeper(root, "u");
    let ask = r#"
import json, os, socket, sys
d = os.open(sys.argv[1], os.O_RDONLY)
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.connect("/proc/self/fd/%d/control.sock" % d)
s.send(b'{"op": "nope"}')
print(json.loads(s.recv(4096))["error"])
"#;
    let o = std::process::Command::new("python3")
        .args(["-c", ask])
        .arg(other)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&o.stdout);
    assert!(
        said.starts_with("not a request this supervisor knows"),
        "{said} {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let w = al(root, &["wait", "t"]);
    assert_eq!(w.stdout.trim(), "137", "{}", w.stderr);
}

/// A sandbox killed on request is reported killed by a signal, not out of
/// memory, though one of its processes was OOM-killed before.
#[test]
fn a_kill_is_not_taken_for_an_earlier_oom_kill() {
    require_root!();
    let root = StateRoot::new();
    let root = root.path();
    let r = al(
        root,
        &[
            "run",
            "-d",
            "--name",
            "o",
            "--memory",
            "32M",
            "--",
            "sh",
            "-c",
            "python3 -c 'x = bytearray(256 << 20)'; echo oomed; sleep 100",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(logged(root, "o", "oomed", 20));
    assert_eq!(al(root, &["kill", "o"]).code, 0);
    assert_eq!(al(root, &["wait", "o"]).stdout.trim(), "137");
    let exit = &inspect(root, "o")["exit"];
    assert_eq!(exit["ended"], "signaled", "{exit}");
    assert!(exit["oom_kills"].as_u64().unwrap() >= 1, "{exit}");
}

/// Keyrings are not namespaced: a sandbox that kept the caller's session
/// keyring would possess its keys. Each sandbox, and each exec into one,
/// gets an empty one of its own (as runc's containers do), as root and
/// rootless; the probe needs keyctl, so the filter is off (acknowledged).
#[test]
fn the_callers_session_keyring_stays_outside() {
    require_root!();
    let dir = tempdir();
    let probe = dir.path().join("probe.py");
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/keyring/probe.py"),
        &probe,
    )
    .unwrap();
    chown(dir.path(), USER, USER);
    let probe = probe.to_str().unwrap();
    let open = [
        "--seccomp-profile",
        "none",
        "--allow-unsafe",
        "seccomp-disabled",
    ];
    let bind = ["--ro-bind", probe, "/probe.py"];
    let inner = ["python3", "/probe.py", "inner"];
    let through = |user: bool, args: &[&str]| {
        let mut c = match user {
            true => std::process::Command::new("setpriv"),
            false => std::process::Command::new("/usr/bin/python3"),
        };
        if user {
            c.args([
                &format!("--reuid={USER}"),
                &format!("--regid={USER}"),
                "--clear-groups",
                "/usr/bin/python3",
            ]);
        }
        c.args([probe, "outer"]).arg(airlock_bin()).args(args);
        output(c)
    };
    let clean = |r: &Run, what: &str| {
        assert_eq!(r.code, 0, "{what}: {}", r.stderr);
        assert!(
            r.stdout.starts_with("session: keyring;"),
            "{what}: {}",
            r.stdout
        );
        assert!(
            !r.stdout.contains("airlock-test-ses"),
            "{what}: {}",
            r.stdout
        );
        assert!(
            r.stdout.contains("probe: Required key not available"),
            "{what}: {}",
            r.stdout
        );
    };
    for user in callers() {
        let mut args = vec!["run"];
        args.extend_from_slice(&open);
        args.extend_from_slice(&bind);
        args.push("--");
        args.extend_from_slice(&inner);
        clean(&through(user, &args), &format!("run, as user: {user}"));
    }
    // Control: the probe, run directly, reads the key it was given; and
    // so does a sandbox asked to keep the caller's keyring.
    let mut c = std::process::Command::new("/usr/bin/python3");
    c.args([probe, "outer", "/usr/bin/python3", probe, "inner"]);
    let kept = std::fs::write(
        dir.path().join("keep.toml"),
        "[process]\nkeep_session_keyring = true\n",
    );
    kept.unwrap();
    let keep = dir.path().join("keep.toml");
    // A spec file gets no default view: the flags add what python needs.
    let mut args = vec!["run", "--spec", keep.to_str().unwrap()];
    for dir in ["/usr", "/bin", "/lib", "/lib64", "/etc"] {
        args.extend_from_slice(&["--ro-bind-try", dir, dir]);
    }
    args.extend_from_slice(&open);
    args.extend_from_slice(&bind);
    args.push("--");
    args.extend_from_slice(&inner);
    for r in [output(c), through(false, &args)] {
        assert!(
            r.stdout.contains("airlock-test-ses") && r.stdout.contains("probe: s3cret"),
            "{}{}",
            r.stdout,
            r.stderr
        );
    }

    let root = StateRoot::new();
    let state = root.path().to_str().unwrap();
    let mut args = vec!["--state-root", state, "run", "-d", "--name", "k"];
    args.extend_from_slice(&open);
    args.extend_from_slice(&bind);
    args.extend_from_slice(&["--", "sleep", "1000"]);
    let r = output(airlock(&args));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let mut args = vec!["--state-root", state, "exec", "k", "--"];
    args.extend_from_slice(&inner);
    clean(&through(false, &args), "exec");
}

/// A filter around the caller that answers ENOSYS for keyctl (as a
/// runtime's profile may) is not a kernel without keys: the sandbox would
/// possess the caller's keyring, so the start fails and says how to keep
/// it knowingly. Root only: the probe's filter goes in without
/// no_new_privs, which a rootless caller's setuid newuidmap needs.
#[test]
fn keyctl_refused_with_enosys_fails_the_start() {
    require_root!();
    let dir = tempdir();
    let probe = dir.path().join("probe.py");
    let source = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/keyring/probe.py");
    std::fs::copy(source, &probe).unwrap();
    let probe = probe.to_str().unwrap();
    let mut c = std::process::Command::new("/usr/bin/python3");
    c.args([probe, "outer-enosys"]).arg(airlock_bin());
    c.args(["run", "--", "/bin/true"]);
    let r = output(c);
    assert_eq!(r.code, 125, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("a session keyring of the sandbox's own")
            && r.stderr.contains("ENOSYS though this kernel has keys")
            && r.stderr.contains("keep_session_keyring"),
        "{}",
        r.stderr
    );
    // Asked for by name, the caller's keyring is kept and the start goes on.
    let keep = dir.path().join("keep.toml");
    std::fs::write(&keep, "[process]\nkeep_session_keyring = true\n").unwrap();
    let mut c = std::process::Command::new("/usr/bin/python3");
    c.args([probe, "outer-enosys"]).arg(airlock_bin());
    c.args(["run", "--spec", keep.to_str().unwrap()]);
    c.args(["--ro-bind", "/bin", "/bin", "--ro-bind", "/lib", "/lib"]);
    c.args([
        "--ro-bind-try",
        "/lib64",
        "/lib64",
        "--ro-bind",
        "/usr",
        "/usr",
    ]);
    c.args(["--", "/bin/true"]);
    let r = output(c);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
}

/// `exec` judges the sandbox's plan with the host facts probed at its
/// start: a device bind's source that is a directory by then (it was a
/// plain file, and is one in the sandbox) does not refuse an exec.
#[test]
fn exec_is_judged_with_the_facts_of_the_start() {
    require_root!();
    let dir = tempdir();
    let file = dir.path().join("plain");
    std::fs::write(&file, "x").unwrap();
    let f = file.display().to_string();
    let root = StateRoot::new();
    let args = [
        "run",
        "-d",
        "--name",
        "dv",
        "--dev-bind",
        &f,
        "/x",
        "--",
        "sleep",
        "100",
    ];
    let r = al(root.path(), &args);
    assert_eq!(r.code, 0, "{}", r.stderr);
    std::fs::remove_file(&file).unwrap();
    std::fs::create_dir(&file).unwrap();
    // Its own ids are judged (as the workload's would be) only when
    // given.
    let r = al(root.path(), &["exec", "-u", "0", "dv", "--", "cat", "/x"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "x");
}

/// A stdout closed while `rm` goes through its list does not stop the
/// list: every sandbox named is removed, and the verb ends as SIGPIPE
/// would have it (141). It used to stop at the first name it could not
/// print, the others left in place.
#[test]
fn a_closed_stdout_does_not_cut_a_list_short() {
    require_root!();
    let root = StateRoot::new();
    let root = root.path();
    for n in ["l1", "l2", "l3"] {
        let r = al(root, &["create", "--name", n, "--", "true"]);
        assert_eq!(r.code, 0, "{}", r.stderr);
    }
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let mut c = airlock(&[
        "--state-root",
        root.to_str().unwrap(),
        "rm",
        "-f",
        "l1",
        "l2",
        "l3",
    ]);
    let o = c
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(141),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let left = al(root, &["ps", "-a"]);
    assert_eq!(left.stdout.lines().count(), 1, "{}", left.stdout);
}

/// A stop that comes as the workload ends by itself finds nothing to
/// stop: the workload's own status is kept, with no reason. It used to
/// read "it was stopped" on an `exit 3` (and would hide an OOM kill).
#[test]
fn a_stop_that_meets_the_end_keeps_the_workloads_status() {
    require_root!();
    let root = StateRoot::new();
    let root = root.path();
    let r = al(
        root,
        &[
            "run",
            "-d",
            "--name",
            "e",
            "--",
            "sh",
            "-c",
            // Long enough for the look below to find it running.
            "sleep 1; exit 3",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let supervisor = supervisor_pid(root, "e");
    // SAFETY: kill takes plain integers; the supervisor is this test's
    // sandbox's, alive (inspect said so) and held stopped meanwhile.
    unsafe {
        assert_eq!(libc::kill(supervisor, libc::SIGSTOP), 0);
    }
    // The workload ends while its supervisor is stopped; then the stop
    // signal and the end are seen in one step.
    std::thread::sleep(std::time::Duration::from_secs(2));
    // SAFETY: as above; 36 is airlock's stop signal.
    unsafe {
        libc::kill(supervisor, 36);
        libc::kill(supervisor, libc::SIGCONT);
    }
    let w = al(root, &["wait", "e"]);
    assert_eq!((w.code, w.stdout.as_str()), (3, "3\n"), "{}", w.stderr);
    assert!(
        inspect(root, "e")["reason"].is_null(),
        "{}",
        inspect(root, "e")
    );
    assert_eq!(al(root, &["rm", "e"]).code, 0);
}

/// `exec -n` gives the process /dev/null for stdin: a `while read` loop
/// around it keeps its input, where without it the exec'd `cat` takes
/// the rest (it is handed the caller's stdin).
#[test]
fn exec_without_stdin_leaves_the_callers_input() {
    require_root!();
    let root = StateRoot::new();
    let r = al(
        root.path(),
        &["run", "-d", "--name", "n", "--", "sleep", "1000"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let looped = |flags: &str| {
        let script = format!(
            r#"printf '1\n2\n' | while read x; do "$AIRLOCK" --state-root "$ROOT" exec {flags} n -- cat; echo "got $x"; done"#
        );
        let o = std::process::Command::new("bash")
            .args(["-c", &script])
            .env("AIRLOCK", airlock_bin())
            .env("ROOT", root.path())
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    assert_eq!(looped("-n"), "got 1\ngot 2\n");
    assert_eq!(looped(""), "2\ngot 1\n");
    // docker's -i is taken (it was an unknown flag): stdin is passed.
    assert_eq!(looped("-i"), "2\ngot 1\n");
    let r = al(root.path(), &["exec", "-n", "-i", "n", "--", "true"]);
    assert_eq!(r.code, 125, "{}", r.stderr);
    // With a terminal of its own, stdin is the terminal's.
    let r = al(root.path(), &["exec", "-n", "-t", "n", "--", "true"]);
    assert_eq!(r.code, 125, "{}", r.stderr);
    assert!(
        r.stderr.contains("--no-stdin") && r.stderr.contains("--tty"),
        "{}",
        r.stderr
    );
}

/// A created sandbox's timeout counts from its start, not from its
/// creation: held past its timeout, it still runs once started, and the
/// timeout then ends it.
#[test]
fn a_created_sandboxs_timeout_counts_from_its_start() {
    require_root!();
    let root = StateRoot::new();
    let root = root.path();
    let r = al(
        root,
        &[
            "create",
            "--timeout",
            "1",
            "--name",
            "t",
            "--",
            "sleep",
            "100",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert_eq!(inspect(root, "t")["status"], "created");
    let r = al(root, &["start", "t"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let st = inspect(root, "t");
    assert_eq!(st["status"], "running", "{st}");
    let w = al(root, &["wait", "t"]);
    assert_eq!(w.code, 137, "{}", w.stderr);
    let st = inspect(root, "t");
    assert!(
        st["reason"].as_str().unwrap_or("").contains("timeout"),
        "{st}"
    );
    assert_eq!(al(root, &["rm", "t"]).code, 0);
}
