//! OCI hooks, in OCI's order. `prestart` and `createRuntime` are handed to
//! the runner in the plan: its supervisor runs them in the runtime's own
//! namespaces once the container's namespaces and mounts are made and
//! before `createContainer` and pivot_root (the container's PID 1 waits;
//! the state they get says `creating`, as runc's). `createContainer` runs
//! there too, by the container's PID 1 (its path and the paths it uses
//! are the host's; its working directory is the container's root), and
//! `startContainer` during `start`, in the container as its process,
//! before the exec. When one of these fails the create (or start) fails,
//! and the container is removed after its `poststop` hooks, as runc
//! destroys it. The runtime itself runs `poststart` after `start` and
//! `poststop` on `delete`. Each gets the container's state JSON on stdin
//! and its process group is killed after its `timeout`; a failure fails
//! the verb, naming the hook.

use oci_spec::runtime::Hook;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The hooks the runtime runs, kept beside the container's state.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Hooks {
    /// The deprecated `prestart`, run before `createRuntime` (runc's order).
    #[serde(default)]
    pub prestart: Vec<Hook>,
    /// `createRuntime`.
    pub created: Vec<Hook>,
    pub poststart: Vec<Hook>,
    pub poststop: Vec<Hook>,
    /// Run inside by the runner (the plan carries them; kept here for how
    /// long `start` waits).
    #[serde(skip)]
    pub create_container: Vec<Hook>,
    #[serde(default)]
    pub start_container: Vec<Hook>,
}

impl Hooks {
    /// The hooks of a bundle; an error names a kind airlock cannot run.
    pub fn of(config: &oci_spec::runtime::Spec) -> Result<Hooks, String> {
        let Some(h) = config.hooks() else {
            return Ok(Hooks::default());
        };
        let list = |x: &Option<Vec<Hook>>| x.clone().unwrap_or_default();
        #[allow(deprecated)]
        let hooks = Hooks {
            prestart: list(h.prestart()),
            created: list(h.create_runtime()),
            poststart: list(h.poststart()),
            poststop: list(h.poststop()),
            create_container: list(h.create_container()),
            start_container: list(h.start_container()),
        };
        for (kind, list) in [
            ("prestart", &hooks.prestart),
            ("createRuntime", &hooks.created),
            ("createContainer", &hooks.create_container),
            ("startContainer", &hooks.start_container),
            ("poststart", &hooks.poststart),
            ("poststop", &hooks.poststop),
        ] {
            for (i, hook) in list.iter().enumerate() {
                check(&format!("hooks.{kind}[{i}]"), hook)?;
            }
        }
        Ok(hooks)
    }

    /// The hooks the runner runs, `state` on their stdin (the runner sets
    /// its pid and status). Those inside the container that give no `env`
    /// get the container process's, `workload_env` (as runc's init runs
    /// them, with its own environment already the container's); those on
    /// the host, this runtime's.
    pub fn inside(
        &self,
        state: &serde_json::Value,
        workload_env: &[(String, String)],
    ) -> airlock::plan::InsideHooks {
        let workload_env: Vec<String> = workload_env
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let convert = |kind: &str, hooks: &[Hook]| -> Vec<airlock::plan::Hook> {
            let inside = matches!(kind, "createContainer" | "startContainer");
            hooks
                .iter()
                .enumerate()
                .map(|(i, h)| airlock::plan::Hook {
                    name: format!("hooks.{kind}[{i}]"),
                    path: h.path().display().to_string(),
                    args: h.args().clone().unwrap_or_default(),
                    env: match (h.env(), inside) {
                        (None, true) => workload_env.clone(),
                        _ => environment(h),
                    },
                    // Within u32 (see `check`).
                    timeout: h.timeout().map(|t| t as u32),
                })
                .collect()
        };
        airlock::plan::InsideHooks {
            runtime: convert("prestart", &self.prestart)
                .into_iter()
                .chain(convert("createRuntime", &self.created))
                .collect(),
            create: convert("createContainer", &self.create_container),
            start: convert("startContainer", &self.start_container),
            state: state.to_string(),
        }
    }
}

/// A hook's whole environment: its own `env`, or, for a host-side hook
/// that gives none, this runtime's, as runc and crun pass theirs (a hook
/// that looks up a tool by PATH, or reads XDG_RUNTIME_DIR, works under
/// either). An empty `env` is an empty environment. Left out: entries
/// that are not UTF-8 (the plan carries text), and PWD and OLDPWD, which
/// name our directories, not the hook's.
fn environment(h: &Hook) -> Vec<String> {
    match h.env() {
        Some(env) => env.clone(),
        None => std::env::vars_os()
            .filter(|(k, _)| k != "PWD" && k != "OLDPWD")
            .filter_map(|(k, v)| Some(format!("{}={}", k.to_str()?, v.to_str()?)))
            .collect(),
    }
}

/// A hook as OCI has it: an absolute path (found without a PATH, as
/// runc's are), `KEY=VALUE` entries, and a
/// timeout, if any, "greater than zero" (taken as none, a 0 or a value
/// past what the runner counts would let the hook hang for good).
fn check(field: &str, h: &Hook) -> Result<(), String> {
    if !h.path().is_absolute() {
        return Err(format!(
            "{field}.path: {} is not an absolute path",
            h.path().display()
        ));
    }
    if let Some(t) = h
        .timeout()
        .filter(|t| !(1..=i64::from(u32::MAX)).contains(t))
    {
        return Err(format!(
            "{field}.timeout: {t} is not a number of seconds from 1 to {}",
            u32::MAX
        ));
    }
    if let Some((j, kv)) = h
        .env()
        .iter()
        .flatten()
        .enumerate()
        .find(|(_, kv)| !kv.contains('='))
    {
        return Err(format!("{field}.env[{j}]: {kv:?} is not KEY=VALUE"));
    }
    Ok(())
}

/// Run every one of `hooks` with `state` on stdin, whatever the others
/// did, and say each failure through `warn`: poststart and poststop hooks,
/// whose failures the runtime spec makes warnings, with the remaining
/// hooks still run (a later poststop hook's teardown among them).
pub fn run_warning(kind: &str, hooks: &[Hook], state: &serde_json::Value, warn: impl Fn(&str)) {
    for (i, h) in hooks.iter().enumerate() {
        if let Err(e) = run_one(h, state) {
            warn(&format!("hooks.{kind}[{i}] {}: {e}", h.path().display()));
        }
    }
}

fn run_one(h: &Hook, state: &serde_json::Value) -> Result<(), String> {
    // From before the spawn: nothing the hook does (not reading its
    // stdin) may hold us past it.
    let deadline = h
        .timeout()
        .and_then(|t| Instant::now().checked_add(Duration::from_secs(t as u64)));
    let args = h.args().clone().unwrap_or_default();
    let mut cmd = Command::new(h.path());
    if let Some((argv0, rest)) = args.split_first() {
        cmd.arg0(argv0).args(rest);
    }
    // No `env`: ours, as it stands (see `environment`).
    if let Some(env) = h.env() {
        cmd.env_clear();
        for kv in env {
            if let Some((k, v)) = kv.split_once('=') {
                cmd.env(k, v);
            }
        }
    }
    // A group of its own, killed whole at the timeout (a script's
    // children too); and gone with us, should we be killed meanwhile.
    cmd.process_group(0);
    // SAFETY: runs in the forked child before its exec and only makes
    // the prctl and close_range syscalls, with plain numbers.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // None of ours goes with it: `--preserve-fds` are open here
            // for the container (a poststart of `run`, a poststop of a
            // failed create), not for the hook or what it leaves running.
            // Marked close-on-exec rather than closed: std's own pipe,
            // which says whether the exec failed, is among them.
            if libc::syscall(
                libc::SYS_close_range,
                3u32,
                u32::MAX,
                libc::CLOSE_RANGE_CLOEXEC,
            ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    // Its stdout and stderr into one memory file, read once it has ended:
    // a failure's warning ends with what it said, as the hooks run inside
    // do, and as runc's error carries a hook's output; a hook that
    // succeeds says nothing of ours. A file, not a pipe: nothing to drain
    // while it runs (a hook that writes without pause is still timed out),
    // and a helper it leaves running with them dies of no SIGPIPE once
    // we have gone (a hook's children must not keep its stdio, which would
    // hold runc's hook run for good). The file is kept small: all but its
    // tail is let go of while the hook runs, and once the hook has ended
    // it may grow no more (what a helper writes then fails, rather than
    // filling memory for as long as the helper runs).
    let said_fd = rustix::fs::memfd_create(
        "airlock-hook-output",
        rustix::fs::MemfdFlags::CLOEXEC | rustix::fs::MemfdFlags::ALLOW_SEALING,
    )
    .map_err(|e| format!("a file for its output: {e}"))?;
    let said_out = said_fd
        .try_clone()
        .map_err(|e| format!("a file for its output: {e}"))?;
    let said_err = said_fd
        .try_clone()
        .map_err(|e| format!("a file for its output: {e}"))?;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::from(said_out))
        .stderr(Stdio::from(said_err))
        .spawn()
        .map_err(|e| e.to_string())?;
    drop(cmd);
    let said = || airlock::runner::hooks::said(&tail(&said_fd));
    if let Some(mut stdin) = child.stdin.take() {
        // Beside the wait: the state (with every annotation) may be more
        // than a pipe holds. A hook that does not read its stdin is not
        // an error; once it has ended the write fails and the thread ends.
        let bytes = state.to_string().into_bytes();
        std::thread::spawn(move || {
            let _ = stdin.write_all(&bytes);
        });
    }
    let mut pause = airlock::state::Backoff::new(Duration::from_millis(5));
    let ended = loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            break if status.success() {
                Ok(())
            } else {
                Err(format!("exited with {status}{}", said()))
            };
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            // SAFETY: kill takes plain numbers; the group is the hook's own.
            unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
            let _ = child.kill();
            let _ = child.wait();
            break Err(format!(
                "did not finish within its timeout of {}s{}",
                h.timeout().unwrap_or(0),
                said()
            ));
        }
        keep_the_tail(&said_fd);
        pause.pause();
    };
    keep_the_tail(&said_fd);
    let _ = rustix::fs::fcntl_add_seals(&said_fd, rustix::fs::SealFlags::GROW);
    ended
}

/// How much of a hook's output file is kept in memory at most, beyond
/// the tail that is read.
const OUTPUT_KEPT: u64 = 1 << 20;

/// Let go of all but the last pages of a hook's output file once it
/// holds more than [`OUTPUT_KEPT`]: a hole takes no memory, and the size,
/// the writers' offsets and the tail stay as they were.
fn keep_the_tail(f: &std::os::fd::OwnedFd) {
    let len = rustix::fs::fstat(f).map_or(0, |st| st.st_size.max(0) as u64);
    if len <= OUTPUT_KEPT {
        return;
    }
    let upto = (len - 8192) & !4095;
    let _ = rustix::fs::fallocate(
        f,
        rustix::fs::FallocateFlags::PUNCH_HOLE | rustix::fs::FallocateFlags::KEEP_SIZE,
        0,
        upto,
    );
}

/// The last 4 KiB a hook wrote to its output file (the end is what
/// explains a failure).
fn tail(f: &std::os::fd::OwnedFd) -> Vec<u8> {
    let len = rustix::fs::fstat(f).map_or(0, |st| st.st_size.max(0) as u64);
    let from = len.saturating_sub(4096);
    let mut buf = vec![0u8; (len - from) as usize];
    let n = rustix::io::pread(f, &mut buf, from).unwrap_or(0);
    buf.truncate(n);
    buf
}
