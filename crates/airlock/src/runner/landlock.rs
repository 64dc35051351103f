//! Landlock: a second wall behind the mount tree. The plan holds the rules
//! (see [`crate::plan::LandlockRules`]): the workload may read and execute
//! everywhere in its root, and write only beneath the places that are
//! writable by design. If a mount is ever wrong, Landlock still refuses
//! the write. A writable path that is a file (a bind of one file) gets the
//! rights a file can have; the directory-only rights would be refused.
//!
//! The ABI is read from the kernel; rules that are not `required` are
//! skipped (saying so in the trace) on a kernel without Landlock. With the
//! host's network namespace shared, the ruleset also scopes abstract unix
//! sockets (ABI 6): the host's listeners there (a session bus, an X
//! server, containerd-shim's, CVE-2020-15257) are out of reach.

use super::report::{Reporter, SetupError};
use crate::plan::LandlockRules;
use landlock::{
    Access, AccessFs, AccessNet, CompatLevel, Compatible, NetPort, PathBeneath, Ruleset,
    RulesetAttr, RulesetCreated, RulesetCreatedAttr, RulesetStatus, Scope, ABI,
};

/// The kernel's Landlock ABI version (0 when it has none, or the look
/// failed: for what this machine can do, not to decide a sandbox's walls).
pub fn kernel_abi() -> i32 {
    kernel_abi_checked().unwrap_or(0)
}

/// The kernel's Landlock ABI version: 0 when it has none (ENOSYS: not
/// built in; EOPNOTSUPP: off at boot), an error when the look itself was
/// refused (a seccomp filter or an LSM around us answering EPERM): that
/// is no proof the kernel lacks it, and `auto` must not drop the wall.
pub fn kernel_abi_checked() -> std::io::Result<i32> {
    const LANDLOCK_CREATE_RULESET_VERSION: u32 = 1;
    // SAFETY: with a NULL attr, size 0 and the VERSION flag the syscall
    // only returns a number.
    let v = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    abi_from(v, std::io::Error::last_os_error())
}

/// [`kernel_abi_checked`]'s answer from the syscall's return and errno.
fn abi_from(ret: i64, error: std::io::Error) -> std::io::Result<i32> {
    match error.raw_os_error() {
        _ if ret >= 0 => Ok(ret as i32),
        Some(libc::ENOSYS | libc::EOPNOTSUPP) => Ok(0),
        _ => Err(error),
    }
}

fn err(e: impl std::fmt::Display) -> SetupError {
    SetupError::new("landlock", e.to_string())
}

/// The ruleset, built while we still have our setup's ids: its paths are
/// opened now, which the workload's uid might not be allowed to do (a
/// writable bind under a 0700 /root, with `--uid 1000`). Nothing is
/// enforced until [`restrict`]. `None`: no Landlock (none asked, or
/// none in the kernel and not required).
pub fn prepare(
    rules: Option<&LandlockRules>,
    report: Reporter,
) -> Result<Option<RulesetCreated>, SetupError> {
    let Some(l) = rules else {
        return Ok(None);
    };
    let version = kernel_abi_checked()
        .map_err(|e| err(format!("cannot tell whether the kernel has Landlock: {e}")))?;
    if version <= 0 {
        if l.required {
            return Err(err(
                "the kernel has no Landlock, and the spec requires it (landlock.mode = \"required\", or TCP port rules)",
            ));
        }
        report.progress(|| {
            "landlock: the kernel has none; skipped (landlock.mode = \"auto\")".into()
        });
        return Ok(None);
    }
    // The file-system rights airlock has weighed: those of ABI 8 and
    // before. ABI 9's (connecting to a pathname unix socket, which the
    // landlock crate counts as a write) would refuse, beneath every
    // read-only path, a connect that a read-only mount allows: a spec
    // that works on one kernel would not on the next.
    let fs_abi = ABI::from(version.min(8));
    let net = l.tcp_bind.is_some() || l.tcp_connect.is_some();
    if net && version < 4 {
        return Err(err(format!(
            "landlock.tcp_bind/tcp_connect need Landlock ABI 4; this kernel has {version}"
        )));
    }
    report.progress(|| format!("landlock ABI {version}: read-only except {:?}", l.writable));
    let mut ruleset = Ruleset::default()
        .set_compatibility(CompatLevel::HardRequirement)
        .handle_access(AccessFs::from_all(fs_abi))
        .map_err(err)?;
    // Only what the spec restricts is handled: a list of connect ports
    // leaves binding alone, and the other way round.
    if l.tcp_bind.is_some() {
        ruleset = ruleset.handle_access(AccessNet::BindTcp).map_err(err)?;
    }
    if l.tcp_connect.is_some() {
        ruleset = ruleset.handle_access(AccessNet::ConnectTcp).map_err(err)?;
    }
    let scopes = [
        (
            l.scope_abstract_unix,
            Scope::AbstractUnixSocket,
            "network",
            "abstract unix sockets",
        ),
        (
            l.scope_signals,
            Scope::Signal,
            "PID",
            "processes from signals",
        ),
    ];
    for (wanted, scope, namespace, what) in scopes {
        if !wanted {
            continue;
        }
        if version >= 6 {
            report.progress(|| format!("landlock: the host's {what} are out of reach"));
            ruleset = ruleset.scope(scope).map_err(err)?;
        } else if l.scopes_required {
            // Landlock was required, and this part of it cannot be had.
            return Err(err(format!(
                "the host's {namespace} namespace is shared, and the kernel's Landlock (ABI {version}) cannot keep its {what} out of reach (ABI 6 can)"
            )));
        } else {
            report.progress(|| format!("landlock: ABI {version} cannot scope {what} (6 can)"));
        }
    }
    let mut created = ruleset.create().map_err(err)?.no_new_privs(false);
    // Each path inside our root, through no /proc magic link: in a running
    // sandbox (`exec`) the tree is the workload's to change, and a link to
    // /proc/PID/root/... would reach another process's tree.
    let root = rustix::fs::open(
        "/",
        rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .map_err(|e| SetupError::io("landlock /", &e.into()))?;
    let opened = |path: &str| {
        crate::fs::path_in(&root, path).map_err(|e| SetupError::io(format!("landlock {path}"), &e))
    };
    created = created
        .add_rule(PathBeneath::new(opened("/")?, AccessFs::from_read(fs_abi)))
        .map_err(err)?;
    for p in &l.writable {
        let fd = opened(p)?;
        let is_dir = rustix::fs::fstat(&fd)
            .map(|st| {
                rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Directory
            })
            .map_err(|e| SetupError::io(format!("landlock {p}"), &e.into()))?;
        let access = if is_dir {
            AccessFs::from_all(fs_abi)
        } else {
            AccessFs::from_file(fs_abi)
        };
        created = created
            .add_rule(PathBeneath::new(fd, access))
            .map_err(err)?;
    }
    for port in l.tcp_bind.iter().flatten() {
        created = created
            .add_rule(NetPort::new(*port, AccessNet::BindTcp))
            .map_err(err)?;
    }
    for port in l.tcp_connect.iter().flatten() {
        created = created
            .add_rule(NetPort::new(*port, AccessNet::ConnectTcp))
            .map_err(err)?;
    }
    Ok(Some(created))
}

/// Enforce what [`prepare`] built, on this thread and all it execs.
pub fn restrict(created: Option<RulesetCreated>) -> Result<(), SetupError> {
    let Some(created) = created else {
        return Ok(());
    };
    let status = created.restrict_self().map_err(err)?;
    if status.ruleset != RulesetStatus::FullyEnforced {
        return Err(err(format!(
            "the ruleset was not fully enforced ({:?})",
            status.ruleset
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::abi_from;
    use std::io::Error;

    /// Only a kernel without Landlock (or with it off) reads as ABI 0: a
    /// refused look (EPERM from a filter around us) is an error, which
    /// `auto` must not take for "none" and skip the wall.
    #[test]
    fn only_a_kernel_without_landlock_is_abi_0() {
        assert_eq!(abi_from(7, Error::from_raw_os_error(0)).unwrap(), 7);
        for none in [libc::ENOSYS, libc::EOPNOTSUPP] {
            assert_eq!(abi_from(-1, Error::from_raw_os_error(none)).unwrap(), 0);
        }
        for refused in [libc::EPERM, libc::EACCES, libc::EINVAL] {
            assert!(abi_from(-1, Error::from_raw_os_error(refused)).is_err());
        }
    }
}
