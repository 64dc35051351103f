//! The default seccomp profile, in the spirit of Docker's: an allow-list.
//! Anything not listed (including syscalls newer than this list) returns
//! EPERM; the known escape and attack-surface calls are left out on
//! purpose; a few calls are allowed only with safe arguments. The lists
//! themselves are in `lists.rs`.
//!
//! This file stands alone (libseccomp, libc and `lists.rs` only): the
//! crate's build script includes it too, to compile the profile once at
//! build time (see the module doc of `seccomp`).

use super::lists::{
    ALLOWED, CREATING, MODE_SETTERS, NAMESPACE_FLAGS, PERSONALITIES, SET_ID_BITS,
    SOCKETPAIR_FAMILIES, SOCKET_FAMILIES, TERMINAL_INJECTION,
};
use libseccomp::error::SeccompError;
use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};

/// A syscall of the native architecture by name; `None` when libseccomp
/// does not know it.
pub fn syscall(name: &str) -> Option<ScmpSyscall> {
    ScmpSyscall::from_name(name).ok()
}

/// A filter context whose programs are binary trees on the syscall number
/// (libseccomp's optimization level 2) rather than the default chain of
/// comparisons. The program means the same; what changes is its cost when
/// installed: the kernel fills its action cache by running the filter for
/// every syscall number of every architecture (`seccomp_cache_prepare`),
/// with interrupts off, and down a chain of 300 comparisons that took
/// 0.43 ms for the default allow-list against 0.10 ms as a tree — paid by
/// every start and every exec into a sandbox. The calls the cache cannot
/// serve (those compared by argument) are found in a few jumps too.
pub fn context(default: ScmpAction) -> Result<ScmpFilterContext, SeccompError> {
    let mut f = ScmpFilterContext::new(default)?;
    f.set_ctl_optimize(2)?;
    Ok(f)
}

/// The default profile as two filters. The kernel runs every filter and
/// the most restrictive answer wins, which lets the second one refuse what
/// the first allows: ioctl requests compared on their low 32 bits only (the
/// kernel ignores the rest, CVE-2019-10063), and clone3 with ENOSYS.
pub fn filters() -> Result<Vec<ScmpFilterContext>, SeccompError> {
    let mut allow = context(ScmpAction::Errno(libc::EPERM))?;
    for name in ALLOWED.iter().chain(["ioctl", "clone3"].iter()) {
        if let Some(s) = syscall(name) {
            allow.add_rule(ScmpAction::Allow, s)?;
        }
    }
    if let Some(clone) = syscall("clone") {
        let cmp = ScmpArgCompare::new(0, ScmpCompareOp::MaskedEqual(NAMESPACE_FLAGS), 0);
        allow.add_rule_conditional(ScmpAction::Allow, clone, &[cmp])?;
    }
    for (name, families) in [
        ("socket", SOCKET_FAMILIES),
        ("socketpair", SOCKETPAIR_FAMILIES),
    ] {
        if let Some(call) = syscall(name) {
            for family in families {
                let cmp = ScmpArgCompare::new(0, ScmpCompareOp::Equal, *family as u64);
                allow.add_rule_conditional(ScmpAction::Allow, call, &[cmp])?;
            }
        }
    }
    if let Some(p) = syscall("personality") {
        for value in PERSONALITIES {
            let cmp = ScmpArgCompare::new(0, ScmpCompareOp::Equal, *value);
            allow.add_rule_conditional(ScmpAction::Allow, p, &[cmp])?;
        }
    }
    Ok(vec![allow, refuse(&[])?])
}

/// A filter that allows what it has no rule for, on the native
/// architecture and `arches`: the base of the refusals. Architectures
/// before rules: libseccomp gives an architecture added later none of the
/// rules already there.
fn allowing_on(arches: &[ScmpArch]) -> Result<ScmpFilterContext, SeccompError> {
    let mut f = context(ScmpAction::Allow)?;
    for a in arches {
        if *a != ScmpArch::native() {
            f.add_arch(*a)?;
        }
    }
    Ok(f)
}

/// The second filter: refusals by argument, on top of whatever the first
/// allows, for the native architecture and `arches`. Custom profiles get
/// it too (see `custom_filters` in the module), so every rule added here
/// applies to them as well.
pub fn refuse(arches: &[ScmpArch]) -> Result<ScmpFilterContext, SeccompError> {
    let mut refuse = allowing_on(arches)?;
    if let Some(ioctl) = syscall("ioctl") {
        for req in TERMINAL_INJECTION {
            let cmp = ScmpArgCompare::new(1, ScmpCompareOp::MaskedEqual(0xffff_ffff), *req);
            refuse.add_rule_conditional(ScmpAction::Errno(libc::EPERM), ioctl, &[cmp])?;
        }
    }
    if let Some(clone3) = syscall("clone3") {
        refuse.add_rule(ScmpAction::Errno(libc::ENOSYS), clone3)?;
    }
    Ok(refuse)
}

/// A third filter, for sandboxes whose writable binds are written as a
/// root caller (`spec::BindOwner::Caller`): what the workload makes there
/// is host root's, so no call may give a file a setuid or setgid mode
/// (`SET_ID_BITS`). Only there: elsewhere such a file is the sandbox's own
/// ids' and nosuid, and refusing it everywhere would break installing
/// packages in a container.
pub fn set_id_refusals(arches: &[ScmpArch]) -> Result<ScmpFilterContext, SeccompError> {
    let mut refuse = allowing_on(arches)?;
    for (name, mode, flags) in MODE_SETTERS {
        let Some(call) = syscall(name) else { continue };
        for bit in SET_ID_BITS {
            let set = ScmpArgCompare::new(*mode, ScmpCompareOp::MaskedEqual(*bit), *bit);
            match flags {
                None => {
                    refuse.add_rule_conditional(ScmpAction::Errno(libc::EPERM), call, &[set])?;
                }
                Some(f) => {
                    for c in CREATING {
                        let creating = ScmpArgCompare::new(*f, ScmpCompareOp::MaskedEqual(*c), *c);
                        refuse.add_rule_conditional(
                            ScmpAction::Errno(libc::EPERM),
                            call,
                            &[creating, set],
                        )?;
                    }
                }
            }
        }
    }
    // Its mode is behind a pointer, out of a filter's reach: ENOSYS, so
    // that callers fall back to openat, whose mode is checked above.
    if let Some(openat2) = syscall("openat2") {
        refuse.add_rule(ScmpAction::Errno(libc::ENOSYS), openat2)?;
    }
    Ok(refuse)
}
