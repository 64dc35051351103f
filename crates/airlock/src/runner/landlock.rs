//! Landlock: a second wall behind the mount tree. Derived from the mount
//! plan: the workload may read and execute everywhere in its root, and
//! write only beneath the places that are writable by design (writable
//! binds, tmpfs mounts, /dev, /proc, a writable rootfs). If a mount is
//! ever wrong, Landlock still refuses the write. Network rules (TCP bind
//! and connect ports) come from the spec.
//!
//! The ABI is read from the kernel; `mode = "auto"` applies what the
//! kernel has and skips Landlock (saying so in the trace) on a kernel
//! without it; `required` makes that an error.

use super::report::{Reporter, SetupError};
use crate::spec::{LandlockMode, Mount, Root, SandboxSpec};
use landlock::{
    Access, AccessFs, AccessNet, CompatLevel, Compatible, NetPort, PathBeneath, PathFd, Ruleset,
    RulesetAttr, RulesetCreatedAttr, RulesetStatus, ABI,
};

/// The kernel's Landlock ABI version (0 when it has none).
pub fn kernel_abi() -> i32 {
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
    if v < 0 {
        0
    } else {
        v as i32
    }
}

/// The sandbox paths the workload may write beneath.
pub fn writable_paths(spec: &SandboxSpec) -> Vec<String> {
    let mut out = Vec::new();
    let writable_root = match spec.filesystem.root {
        Root::Path { readonly, .. } | Root::Tmpfs { readonly, .. } => !readonly,
        Root::Overlay { .. } => true,
    };
    if writable_root {
        out.push("/".to_string());
    }
    for m in &spec.filesystem.mounts {
        match m {
            Mount::Bind {
                readonly: false,
                destination,
                ..
            }
            | Mount::Tmpfs { destination, .. }
            | Mount::Dev { destination }
            | Mount::Proc { destination }
            | Mount::Mqueue { destination } => out.push(destination.clone()),
            _ => {}
        }
    }
    out
}

fn err(e: impl std::fmt::Display) -> SetupError {
    SetupError::new("landlock", e.to_string())
}

pub fn apply(spec: &SandboxSpec, report: Reporter) -> Result<(), SetupError> {
    let l = &spec.landlock;
    if l.mode == LandlockMode::Off {
        return Ok(());
    }
    let version = kernel_abi();
    if version <= 0 {
        if l.mode == LandlockMode::Required {
            return Err(err(
                "the kernel has no Landlock (landlock.mode = \"required\")",
            ));
        }
        report.progress(|| {
            "landlock: the kernel has none; skipped (landlock.mode = \"auto\")".into()
        });
        return Ok(());
    }
    let abi = ABI::from(version);
    let net = l.tcp_bind.is_some() || l.tcp_connect.is_some();
    if net && version < 4 {
        return Err(err(format!(
            "landlock.tcp_bind/tcp_connect need Landlock ABI 4; this kernel has {version}"
        )));
    }
    report.progress(|| {
        format!(
            "landlock ABI {version}: read-only except {:?}",
            writable_paths(spec)
        )
    });
    let mut ruleset = Ruleset::default()
        .set_compatibility(CompatLevel::HardRequirement)
        .handle_access(AccessFs::from_all(abi))
        .map_err(err)?;
    // Only what the spec restricts is handled: a list of connect ports
    // leaves binding alone, and the other way round.
    if l.tcp_bind.is_some() {
        ruleset = ruleset.handle_access(AccessNet::BindTcp).map_err(err)?;
    }
    if l.tcp_connect.is_some() {
        ruleset = ruleset.handle_access(AccessNet::ConnectTcp).map_err(err)?;
    }
    let mut created = ruleset.create().map_err(err)?.no_new_privs(false);
    let beneath = |path: &str, access| -> Result<PathBeneath<PathFd>, SetupError> {
        let fd = PathFd::new(path)
            .map_err(|e| SetupError::new(format!("landlock {path}"), e.to_string()))?;
        Ok(PathBeneath::new(fd, access))
    };
    created = created
        .add_rule(beneath("/", AccessFs::from_read(abi))?)
        .map_err(err)?;
    for p in writable_paths(spec) {
        created = created
            .add_rule(beneath(&p, AccessFs::from_all(abi))?)
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
    use super::*;

    #[test]
    fn writable_paths_follow_the_mount_plan() {
        let spec = crate::SandboxSpec::builder()
            .args(["true"])
            .default_view()
            .ro_bind("/srv/ro", "/ro")
            .bind("/srv/rw", "/rw")
            .build();
        assert_eq!(writable_paths(&spec), ["/proc", "/dev", "/tmp", "/rw"]);
        let spec = crate::SandboxSpec::builder()
            .args(["true"])
            .rootfs("/srv/root", false)
            .build();
        assert_eq!(writable_paths(&spec), ["/"]);
    }
}
