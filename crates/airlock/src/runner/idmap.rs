//! Writing the user namespace's id maps from outside, as the kernel
//! requires: by the parent (or a setuid helper), before the child uses them.

use super::report::{describe, SetupError, StepExt};
use crate::plan::mounts::CallerMaps;
use crate::plan::Plan;
use crate::spec::IdMap;
use crate::sys;
use rustix::fs::{Mode, OFlags};
use std::io::Write;
use std::os::fd::OwnedFd;

fn lines(maps: &[IdMap]) -> String {
    maps.iter()
        .map(|m| format!("{} {} {}\n", m.inside, m.outside, m.count))
        .collect()
}

/// Write `content` to /proc/PID/`file`; errors name `field`, the spec
/// field (or step) the content came from.
fn write_proc(pid: i32, file: &str, content: &str, field: &str) -> Result<(), SetupError> {
    let path = format!("/proc/{pid}/{file}");
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .and_then(|mut f| f.write_all(content.as_bytes()))
        .map_err(|e| {
            let mut reason = format!(
                "writing {:?} to {path}: {}",
                content.trim_end(),
                describe(&e)
            );
            if e.raw_os_error() == Some(libc::EPERM) && !rustix::process::geteuid().is_root() {
                reason.push_str(
                    " (the host may forbid unprivileged user namespaces, e.g. AppArmor's \
                     restrict_unprivileged_userns, or the range is not the caller's to map)",
                );
            }
            SetupError {
                errno: e.raw_os_error(),
                ..SetupError::new(field, reason)
            }
        })
}

fn newidmap(tool: &str, pid: i32, maps: &[IdMap]) -> Result<(), SetupError> {
    let mut cmd = std::process::Command::new(tool);
    // Nothing of ours but stdio goes with the setuid helper (the alive
    // lock and the report socket are not close-on-exec here): marked so
    // in the child, which keeps the error pipe std reports a failed exec
    // through (close-on-exec already).
    // SAFETY: close_range is async-signal-safe and changes only the
    // forked child's descriptor flags.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, || sys::cloexec_from(3));
    }
    cmd.arg(pid.to_string());
    for m in maps {
        cmd.args([
            m.inside.to_string(),
            m.outside.to_string(),
            m.count.to_string(),
        ]);
    }
    let field = if tool == "newuidmap" {
        "identity.uid_map"
    } else {
        "identity.gid_map"
    };
    let out = cmd.output().map_err(|e| {
        let reason = match e.kind() {
            std::io::ErrorKind::NotFound => format!(
                "{tool} is needed to map several ranges rootless, and is not on PATH (Debian's uidmap package)"
            ),
            _ => format!("running {tool}: {}", describe(&e)),
        };
        SetupError::new(field, reason)
    })?;
    if !out.status.success() {
        let mut reason = format!(
            "{tool} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        if no_new_privs() {
            reason.push_str(&format!(
                " (airlock runs with no_new_privs set, by whoever started it: systemd's NoNewPrivileges=, a container's no-new-privileges, `setpriv --no-new-privs`; under it the setuid {tool} gains nothing)"
            ));
        }
        return Err(SetupError::new(field, reason));
    }
    Ok(())
}

/// Is no_new_privs set on this process, by whoever started it?
fn no_new_privs() -> bool {
    // SAFETY: PR_GET_NO_NEW_PRIVS takes no pointers and only reads a flag.
    unsafe { libc::prctl(libc::PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1 }
}

/// Write uid_map, setgroups and gid_map for the child `pid`.
pub fn write_maps(plan: &Plan, pid: i32) -> Result<(), SetupError> {
    if plan.use_newidmap {
        // Ourselves, before newgidmap: shadow before 4.6 does not write
        // it (CVE-2018-7169), and the workload could then drop the
        // caller's groups to get past a deny-by-group permission.
        if !plan.process.setgroups {
            write_proc(pid, "setgroups", "deny", "identity.gid_map")?;
        }
        newidmap("newuidmap", pid, &plan.uid_map)?;
        newidmap("newgidmap", pid, &plan.gid_map)?;
        return Ok(());
    }
    if !plan.process.setgroups {
        write_proc(pid, "setgroups", "deny", "identity.gid_map")?;
    }
    write_proc(pid, "uid_map", &lines(&plan.uid_map), "identity.uid_map")?;
    write_proc(pid, "gid_map", &lines(&plan.gid_map), "identity.gid_map")?;
    Ok(())
}

/// A user namespace with exactly `maps`, to idmap mounts through, held by
/// its fd alone.
///
/// A namespace's maps can only be written while a process is in it, so a
/// child is cloned into a new one and waits on a pipe; its maps are
/// written from here (root over the host's ids needs no helper), the
/// namespace opened, and the child let go. The child only reads and exits:
/// nothing it does can need a lock the fork did not copy.
pub fn userns_with(maps: &CallerMaps) -> Result<OwnedFd, SetupError> {
    let step = || "idmap: a user namespace for the caller's binds".to_string();
    let (hold, held) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).step(step)?;
    let (pid, pidfd) = match sys::clone3(libc::CLONE_NEWUSER as u64, None).step(step)? {
        sys::Forked::Child => {
            drop(held);
            let mut b = [0u8; 1];
            let _ = rustix::io::read(&hold, &mut b);
            // SAFETY: _exit takes no pointers and never returns; the child
            // must not run the parent's destructors or atexit handlers.
            unsafe { libc::_exit(0) }
        }
        sys::Forked::Parent { pid, pidfd } => (pid, pidfd),
    };
    drop(hold);
    const FOR_BINDS: &str = "idmap: the user namespace that maps the caller's binds";
    let opened = write_proc(pid, "uid_map", &lines(&[maps.uid]), FOR_BINDS)
        .and_then(|()| write_proc(pid, "gid_map", &lines(&[maps.gid]), FOR_BINDS))
        .and_then(|()| {
            let path = format!("/proc/{pid}/ns/user");
            rustix::fs::open(
                path.as_str(),
                OFlags::RDONLY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .step(step)
        });
    // Let go of the child whatever happened, and reap it: the namespace
    // lives on through its fd.
    drop(held);
    let _ = rustix::process::pidfd_send_signal(&pidfd, rustix::process::Signal::KILL);
    let _ = sys::reap(pid);
    opened
}
