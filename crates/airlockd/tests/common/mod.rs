//! A real airlockd for the tests: started on a socket and state root of
//! its own, driven through the client library, and cleaned up after
//! (every sandbox it left is killed and removed).
#![allow(dead_code)]

pub mod cli;

use airlock_client::{proto, Client};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `uid` (as its gid too) on this thread only, and a runtime to drive a
/// client from it: the kernel keeps credentials per thread (the raw
/// calls, not libc's, which change every thread's), and SO_PEERCRED
/// takes the connecting thread's. Call on a thread of the test's own.
pub fn runtime_as(uid: u32) -> tokio::runtime::Runtime {
    for call in [libc::SYS_setresgid, libc::SYS_setresuid] {
        let id = libc::c_long::from(uid);
        // SAFETY: set*id take integers only.
        assert_eq!(unsafe { libc::syscall(call, id, id, id) }, 0);
    }
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Tests that start sandboxes as root say why they do nothing otherwise.
pub fn root_or_skip(test: &str) -> bool {
    if rustix::process::geteuid().is_root() {
        return true;
    }
    eprintln!("skipped {test}: airlockd runs as root (run the suite as root to include it)");
    false
}

pub struct Daemon {
    pub child: Child,
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
}

impl Daemon {
    /// airlockd with `extra` appended to a config that puts its socket
    /// and state root in a temporary directory.
    pub fn start(extra: &str) -> Daemon {
        let dir = tempfile::Builder::new()
            .prefix("airlockd-test")
            .tempdir()
            .unwrap();
        // Reachable by the unprivileged client of the tests.
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        let config = dir.path().join("airlockd.toml");
        let group = if extra.contains("group =") {
            ""
        } else {
            "group = \"\"\n"
        };
        // A test may give a state root of its own.
        let state = match extra.contains("state_root =") {
            true => String::new(),
            false => format!("state_root = {:?}\n", dir.path().join("state")),
        };
        let text = format!(
            "listen = {:?}\n{state}store = {:?}\n{group}max_memory = \"256M\"\n{extra}\n",
            dir.path().join("airlockd.sock"),
            dir.path().join("store"),
        );
        std::fs::write(&config, text).unwrap();
        let child = spawn(&config, dir.path());
        let mut d = Daemon { child, dir, config };
        d.wait_ready();
        d
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("airlockd.sock")
    }

    pub fn state_root(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    pub fn host(&self) -> String {
        format!("unix://{}", self.socket().display())
    }

    fn wait_ready(&mut self) {
        let end = Instant::now() + Duration::from_secs(20);
        while std::os::unix::net::UnixStream::connect(self.socket()).is_err() {
            let exited = self.child.try_wait().unwrap().is_some();
            assert!(
                Instant::now() < end && !exited,
                "airlockd did not listen: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub async fn client(&self) -> Client {
        Client::connect(&self.host()).await.unwrap()
    }

    /// SIGKILL the daemon (its sandboxes live on) and start a new one on
    /// the same configuration.
    pub fn kill_and_restart(&mut self) {
        self.kill();
        self.restart();
    }

    /// SIGKILL the daemon: its socket stays, with no one listening.
    pub fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Start a daemon again on the same configuration, after [`Self::kill`].
    pub fn restart(&mut self) {
        self.child = spawn(&self.config, self.dir.path());
        self.wait_ready();
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("airlockd.log")).unwrap_or_default()
    }

    /// The sandbox directories left in the state root.
    pub fn sandbox_dirs(&self) -> Vec<String> {
        std::fs::read_dir(self.state_root())
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n != ".lock" && n != ".names" && n != ".ended")
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The names the state root's index holds (`.names`).
    pub fn indexed_names(&self) -> Vec<String> {
        std::fs::read_dir(self.state_root().join(".names"))
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn spawn(config: &Path, dir: &Path) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("airlockd.log"))
        .unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_airlockd"));
    cmd.arg("--config")
        .arg(config)
        .env("AIRLOCKD_LOG", "debug")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log);
    // As a service starts, with the usual soft limit on open files below
    // the hard one, which the daemon raises for itself alone.
    // SAFETY: setrlimit is async-signal-safe and touches only the child.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
            let hard = rustix::process::getrlimit(rustix::process::Resource::Nofile).maximum;
            let soft = Some(hard.map_or(DAEMON_NOFILE, |h| h.min(DAEMON_NOFILE)));
            rustix::process::setrlimit(
                rustix::process::Resource::Nofile,
                rustix::process::Rlimit {
                    current: soft,
                    maximum: hard,
                },
            )?;
            Ok(())
        });
    }
    cmd.spawn().unwrap()
}

/// The soft limit on open files the tests' daemons start with.
pub const DAEMON_NOFILE: u64 = 1000;

impl Drop for Daemon {
    fn drop(&mut self) {
        // Its sandboxes first, then a stop that lets the daemon remove the
        // process budget cgroups they nested in, now empty.
        if let Ok(root) = airlock::state::StateRoot::open(self.state_root()) {
            for (sb, _) in root.list() {
                let _ = sb.delete(true);
            }
        }
        let pid = rustix::process::Pid::from_raw(self.child.id() as i32);
        if let Some(pid) = pid {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        let end = Instant::now() + Duration::from_secs(10);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

/// Create and start `argv` with the default spec.
pub async fn run(c: &mut Client, name: &str, argv: &[&str]) -> proto::SandboxInfo {
    c.create(proto::CreateRequest {
        name: name.into(),
        args: args(argv),
        start: true,
        ..Default::default()
    })
    .await
    .unwrap()
    .sandbox
    .unwrap()
}

pub fn state(i: &proto::SandboxInfo) -> proto::State {
    proto::State::try_from(i.state).unwrap()
}

/// A process's state letter and parent pid, from /proc.
pub fn state_and_parent(pid: i32) -> Option<(char, i32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The state and the parent follow the command's closing parenthesis.
    let mut rest = stat.rsplit_once(") ")?.1.split(' ');
    let state = rest.next()?.chars().next()?;
    Some((state, rest.next()?.parse().ok()?))
}

/// Is a process with this pid alive? A zombie is not: a detached
/// supervisor is reaped by whatever init the machine has, in its own time.
pub fn alive(pid: i32) -> bool {
    pid > 0 && state_and_parent(pid).is_some_and(|(state, _)| state != 'Z')
}

/// The zombies among a process's children: exited, never reaped.
pub fn zombie_children(parent: u32) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&p| state_and_parent(p) == Some(('Z', parent as i32)))
        .collect()
}

/// How many of process `pid`'s threads are named `name`.
pub fn threads_named(pid: u32, name: &str) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .flatten()
        .filter(|t| std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim() == name))
        .count()
}
