//! Joining a PID namespace by path (a pod's shared process namespace).
//!
//! A sandbox's /proc must be a procfs of its PID namespace, and mounting
//! one takes CAP_SYS_ADMIN over the user namespace that owns that PID
//! namespace. A sandbox in a user namespace of its own has none over
//! another's, so a PID namespace owned by another sandbox's user namespace
//! is joined through that user namespace: PID 1 is cloned into the PID
//! namespace with no new namespace, joins its owner, and makes the others
//! there. That is safe only when the owner's id maps are the ones the
//! sandbox would have had anyway (every root caller's sandbox gets the
//! same unprivileged range): then nothing about who the workload is
//! changes, only whose namespaces it can act on, which sharing the
//! processes already gives. A PID namespace owned by the caller's own user
//! namespace (the host's) is refused for a sandbox with a user namespace:
//! its /proc could not be mounted, and the host's /proc shows the host.

use super::report::{SetupError, StepExt};
use crate::namespace::Namespace;
use crate::plan::Plan;
use crate::spec::IdMap;
use rustix::fs::{Mode, OFlags};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};

/// The PID namespace joined for the clone, and how to leave it after.
pub struct PidJoin {
    /// The supervisor's own PID namespace, for its later children.
    restore: OwnedFd,
    /// The owner to join in PID 1, when the sandbox has a user namespace.
    pub userns: Option<OwnedFd>,
}

const NS_GET_USERNS: libc::c_ulong = 0xb701;
/// `NS_GET_NSTYPE` (linux/nsfs.h): the `CLONE_NEW*` kind of a namespace fd.
const NS_GET_NSTYPE: libc::c_ulong = 0xb703;

fn open(path: &str) -> std::io::Result<OwnedFd> {
    Ok(rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NONBLOCK | OFlags::NOCTTY,
        Mode::empty(),
    )?)
}

/// Before the clone: children are born in the PID namespace at the plan's
/// `pid` join path, once its owner is judged.
pub fn enter_for_clone(plan: &Plan) -> Result<Option<PidJoin>, SetupError> {
    let Some((_, path)) = plan.join.iter().find(|(n, _)| *n == Namespace::Pid) else {
        return Ok(None);
    };
    let step = || format!("join the pid namespace {path}");
    let ns = open(path).step(step)?;
    // Typed first, as every other join is: another kind of namespace (or
    // no namespace at all) failed only later, at its owner's maps.
    // SAFETY: NS_GET_NSTYPE takes no argument and returns a number.
    if unsafe { libc::ioctl(ns.as_raw_fd(), NS_GET_NSTYPE as _) } != libc::CLONE_NEWPID {
        return Err(SetupError::new(
            step(),
            format!("{path} is not a pid namespace"),
        ));
    }
    // Judged by the path, opened now: a bind mount over it since may
    // have made it the host's.
    if !plan.host.joins_own_pid {
        super::supervisor::still_not_hosts(&ns, Namespace::Pid, path)?;
    }
    // SAFETY: NS_GET_USERNS takes no argument and returns a new fd (or -1).
    let owner = unsafe { libc::ioctl(ns.as_raw_fd(), NS_GET_USERNS as _) };
    if owner < 0 {
        let e = std::io::Error::last_os_error();
        return Err(SetupError::new(
            step(),
            format!(
                "{path} is not a namespace whose owner can be read ({})",
                super::report::describe(&e)
            ),
        ));
    }
    // SAFETY: the ioctl returned a new fd that nothing else owns.
    let owner = unsafe { OwnedFd::from_raw_fd(owner) };
    let own = open("/proc/self/ns/user").step(step)?;
    let id = |fd: &OwnedFd| rustix::fs::fstat(fd).map(|s| (s.st_dev, s.st_ino));
    let same = id(&owner).step(step)? == id(&own).step(step)?;
    let userns = match (plan.user_ns(), same) {
        (true, true) => {
            return Err(SetupError::new(
                step(),
                format!(
                    "{path} belongs to the caller's own user namespace: a sandbox in a user namespace of its own cannot mount that namespace's /proc (it has no privilege over its owner), and the caller's /proc would show the caller's processes; join a PID namespace another airlock sandbox made"
                ),
            ))
        }
        (true, false) => {
            same_maps(plan, &owner, path)?;
            Some(owner)
        }
        // The caller's root is privileged over every user namespace.
        (false, _) => None,
    };
    let restore = open("/proc/self/ns/pid").step(step)?;
    match rustix::thread::move_into_link_name_space(
        ns.as_fd(),
        Some(rustix::thread::LinkNameSpaceType::ProcessID),
    ) {
        Ok(()) => {}
        Err(rustix::io::Errno::INVAL) => {
            return Err(SetupError::new(
                step(),
                format!("{path} is not a pid namespace"),
            ))
        }
        Err(e) => return Err(SetupError::io(step(), &e.into())),
    }
    Ok(Some(PidJoin { restore, userns }))
}

impl PidJoin {
    /// After the clone: the supervisor's later children (the hooks it runs) are
    /// born in its own PID namespace again.
    pub fn leave(&self) -> Result<(), SetupError> {
        rustix::thread::move_into_link_name_space(
            self.restore.as_fd(),
            Some(rustix::thread::LinkNameSpaceType::ProcessID),
        )
        .step(|| "return to the supervisor's pid namespace".into())
    }
}

/// The owner's id maps must be the sandbox's: joining it must not change
/// which host ids the workload is.
fn same_maps(plan: &Plan, owner: &OwnedFd, path: &str) -> Result<(), SetupError> {
    let step = || format!("join the pid namespace {path}");
    let (uid, gid) = read_maps(owner).step(step)?;
    let sorted = |m: &[IdMap]| {
        let mut v: Vec<(u32, u32, u32)> =
            m.iter().map(|m| (m.inside, m.outside, m.count)).collect();
        v.sort_unstable();
        v
    };
    if sorted(&uid) == sorted(&plan.uid_map) && sorted(&gid) == sorted(&plan.gid_map) {
        return Ok(());
    }
    let show = |m: &[IdMap]| {
        m.iter()
            .map(|m| format!("{} {} {}", m.inside, m.outside, m.count))
            .collect::<Vec<_>>()
            .join(", ")
    };
    Err(SetupError::new(
        step(),
        format!(
            "it belongs to a user namespace with other id maps (uid {}; gid {}) than this sandbox's (uid {}; gid {}): its /proc can be mounted only from that user namespace, and joining it would make the workload other host ids",
            show(&uid),
            show(&gid),
            show(&plan.uid_map),
            show(&plan.gid_map)
        ),
    ))
}

/// The id maps of a user namespace, read by a child that joins it (a
/// process in it reads its maps relative to the parent namespace).
fn read_maps(userns: &OwnedFd) -> std::io::Result<(Vec<IdMap>, Vec<IdMap>)> {
    let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
    // SAFETY: the runner is single-threaded; the child only makes
    // syscalls and exits with _exit.
    let pid = unsafe { crate::sys::fork() };
    if pid < 0 {
        return Err(std::io::Error::last_os_error());
    }
    if pid == 0 {
        crate::sys::exit_on_panic();
        // Non-dumpable once in it (see `enter::run`): this copy holds
        // the supervisor's fds and the host's root.
        let ok = rustix::thread::move_into_link_name_space(
            userns.as_fd(),
            Some(rustix::thread::LinkNameSpaceType::User),
        )
        .is_ok()
            && super::child::not_dumpable().is_ok();
        if ok {
            for f in ["/proc/self/uid_map", "/proc/self/gid_map"] {
                let text = std::fs::read(f).unwrap_or_default();
                let _ = rustix::io::write(&w, &text);
                let _ = rustix::io::write(&w, b"-\n");
            }
        }
        // SAFETY: _exit ends the child without running the parent's
        // destructors.
        unsafe { libc::_exit(if ok { 0 } else { 1 }) }
    }
    drop(w);
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match rustix::io::read(&r, &mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let mut status = 0;
    // SAFETY: pid is our child; status is a valid pointer.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        return Err(std::io::Error::other(
            "could not enter its owner to read the id maps",
        ));
    }
    let text = String::from_utf8_lossy(&out);
    let mut parts = text.split("-\n");
    let parse = |s: Option<&str>| -> Vec<IdMap> {
        s.unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let n: Vec<u32> = l
                    .split_whitespace()
                    .filter_map(|x| x.parse().ok())
                    .collect();
                (n.len() == 3).then(|| IdMap {
                    inside: n[0],
                    outside: n[1],
                    count: n[2],
                })
            })
            .collect()
    };
    let uid = parse(parts.next());
    let gid = parse(parts.next());
    Ok((uid, gid))
}

/// In PID 1, after "go": join the owner of the joined PID namespace and
/// make the sandbox's other namespaces there, owned by it (the time
/// namespace comes later, as always).
pub fn join_owner(plan: &Plan, userns: &OwnedFd) -> Result<(), SetupError> {
    rustix::thread::move_into_link_name_space(
        userns.as_fd(),
        Some(rustix::thread::LinkNameSpaceType::User),
    )
    .step(|| "join the user namespace of the joined pid namespace".into())?;
    // Made dumpable by the join where fs.suid_dumpable is 1 (its owner
    // is not our euid): reset before the unshare below, which may take
    // milliseconds while that owner could attach.
    super::child::not_dumpable()?;
    let others: Vec<Namespace> = plan
        .namespaces
        .iter()
        .copied()
        .filter(|n| *n != Namespace::User)
        .collect();
    let flags = crate::namespace::clone_flags(&others);
    // SAFETY: unshare takes flags only.
    if unsafe { libc::unshare(flags as libc::c_int) } != 0 {
        return Err(SetupError::io(
            "make the sandbox's namespaces in that user namespace",
            &std::io::Error::last_os_error(),
        ));
    }
    Ok(())
}
