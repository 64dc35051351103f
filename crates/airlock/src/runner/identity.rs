//! The workload's identity and privileges, applied in the order that keeps
//! each step possible and none reversible (Styrolite learned this order the
//! hard way: groups, then gid, then uid, with the capability sets last):
//!
//! 1. drop from the bounding set every capability not kept, while we still
//!    hold CAP_SETPCAP; with an empty bounding set even a uid-0 workload
//!    gets no capability from execve ([`drop_bounding_set`], called
//!    before Landlock and any seccomp filter: a spec's own filter, which
//!    without no_new_privs is installed before the rest of this, could
//!    answer EINVAL for the drops, which reads as "no such capability");
//! 2. supplementary groups, gid, uid (keeping the permitted set across the
//!    uid change only if capabilities are kept);
//! 3. effective and permitted set to exactly the kept ones, inheritable
//!    and ambient to those the plan makes ambient (all kept ones unless it
//!    says), which are what a non-root workload keeps over exec;
//! 4. no_new_privs.
//!
//! The rlimits ([`set_rlimits`]) come later (`child::lock_down`): after
//! the ids, and with no_new_privs between Landlock and the syscall filter,
//! after the last of our own setup that needs a file descriptor, so that
//! a low `nofile` is the workload's limit and not a failure of
//! Landlock's.

use super::report::{SetupError, StepExt};
use crate::plan::ProcessPlan;
use caps::{CapSet, CapsHashSet};

fn set_of(numbers: &[u8]) -> CapsHashSet {
    caps::all()
        .into_iter()
        .filter(|c| numbers.contains(&c.index()))
        .collect()
}

/// Step 1 (see the module's doc).
pub fn drop_bounding_set(plan: &ProcessPlan) -> Result<(), SetupError> {
    shrink_bounding_set(&set_of(&plan.capabilities))
}

/// Steps 2 to 4, after [`drop_bounding_set`].
pub fn apply(plan: &ProcessPlan) -> Result<(), SetupError> {
    let keep = set_of(&plan.capabilities);
    let ambient = plan.ambient.as_deref().map_or_else(|| keep.clone(), set_of);
    if !keep.is_empty() {
        rustix::thread::set_keep_capabilities(true).step(caps_step)?;
    }
    set_ids(plan)?;
    // At once: a uid change makes the process dumpable again where
    // fs.suid_dumpable is 1, and what follows still holds our fds.
    super::child::not_dumpable()?;
    set_capability_sets(&keep, &ambient)?;
    if !keep.is_empty() {
        rustix::thread::set_keep_capabilities(false).step(caps_step)?;
    }
    if plan.no_new_privs {
        rustix::thread::set_no_new_privs(true).step(|| "no_new_privs".into())?;
    }
    Ok(())
}

fn caps_step() -> String {
    "capabilities".into()
}

/// Step 1: every capability not kept leaves the bounding set: every
/// number the kernel may know, not only those the caps crate names (a
/// kernel newer than it has more, which exec would hand back to a uid 0
/// workload).
fn shrink_bounding_set(keep: &CapsHashSet) -> Result<(), SetupError> {
    let kept: Vec<u8> = keep.iter().map(|c| c.index()).collect();
    for index in (0..64u8).filter(|i| !kept.contains(i)) {
        let one = rustix::thread::CapabilitySet::from_bits_retain(1 << index);
        match rustix::thread::remove_capability_from_bounding_set(one) {
            // Only a capability this kernel does not know is not there to
            // drop.
            Ok(()) | Err(rustix::io::Errno::INVAL) => {}
            Err(e) => {
                let name = caps::all()
                    .into_iter()
                    .find(|c| c.index() == index)
                    .map_or(format!("capability {index}"), |c| c.to_string());
                return Err(SetupError::new(
                    caps_step(),
                    format!(
                        "drop {name} from the bounding set: {}",
                        super::report::describe(&e.into())
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Step 2: groups, then gid, then uid.
fn set_ids(plan: &ProcessPlan) -> Result<(), SetupError> {
    if plan.setgroups {
        let groups: Vec<rustix::process::Gid> = plan
            .groups
            .iter()
            .map(|g| rustix::process::Gid::from_raw(*g))
            .collect();
        rustix::thread::set_thread_groups(&groups).step(|| "process.groups: setgroups".into())?;
    }
    let gid = rustix::process::Gid::from_raw(plan.gid);
    let uid = rustix::process::Uid::from_raw(plan.uid);
    rustix::thread::set_thread_res_gid(gid, gid, gid)
        .step(|| format!("process.gid: setresgid {}", plan.gid))?;
    rustix::thread::set_thread_res_uid(uid, uid, uid)
        .step(|| format!("process.uid: setresuid {}", plan.uid))?;
    // Read back: an id the kernel takes as "unchanged" ((uid_t)-1, which
    // the plan's validation refuses) would leave ours, root's, in place.
    let (mut r, mut e, mut s) = (0, 0, 0);
    let (mut gr, mut ge, mut gs) = (0, 0, 0);
    // SAFETY: getresuid and getresgid write three ids each through valid
    // pointers to locals.
    let read = unsafe {
        libc::getresuid(&mut r, &mut e, &mut s) == 0
            && libc::getresgid(&mut gr, &mut ge, &mut gs) == 0
    };
    if !read || [r, e, s] != [plan.uid; 3] || [gr, ge, gs] != [plan.gid; 3] {
        return Err(SetupError::new(
            "process.uid",
            format!(
                "the ids are not what was asked: uids {r} {e} {s}, gids {gr} {ge} {gs}, for {} and {}",
                plan.uid, plan.gid
            ),
        ));
    }
    Ok(())
}

/// Step 3: effective and permitted exactly `keep`, inheritable and ambient
/// exactly `ambient` (a part of `keep`: the kernel raises an ambient
/// capability only if it is permitted and inheritable).
fn set_capability_sets(keep: &CapsHashSet, ambient: &CapsHashSet) -> Result<(), SetupError> {
    let set = |which: CapSet| {
        caps::set(None, which, keep)
            .map_err(|e| SetupError::new(caps_step(), format!("set the {which:?} set: {e}")))
    };
    set(CapSet::Effective)?;
    set(CapSet::Permitted)?;
    caps::set(None, CapSet::Inheritable, ambient)
        .map_err(|e| SetupError::new(caps_step(), format!("set the Inheritable set: {e}")))?;
    caps::clear(None, CapSet::Ambient).map_err(|e| SetupError::new(caps_step(), e.to_string()))?;
    for cap in ambient {
        caps::raise(None, CapSet::Ambient, *cap).map_err(|e| {
            SetupError::new(caps_step(), format!("raise {cap} in the ambient set: {e}"))
        })?;
    }
    Ok(())
}

/// The rlimits, numeric already.
pub(super) fn set_rlimits(plan: &ProcessPlan) -> Result<(), SetupError> {
    for (i, &(resource, soft, hard)) in plan.rlimits.iter().enumerate() {
        let lim = rustix::process::Rlimit {
            current: (soft != u64::MAX).then_some(soft),
            maximum: (hard != u64::MAX).then_some(hard),
        };
        // The numbers come from the spec's names (validated), so the
        // conversion cannot fail for a plan this library made.
        let res = rlimit_resource(resource)
            .ok_or_else(|| SetupError::new(format!("process.rlimits[{i}]"), "unknown resource"))?;
        if let Err(e) = rustix::process::setrlimit(res, lim) {
            let name = crate::spec::validate::RLIMITS
                .iter()
                .find(|(_, v)| *v as i32 == resource)
                .map_or("?", |(n, _)| n);
            let reason = if e == rustix::io::Errno::PERM {
                let inherited = rustix::process::getrlimit(res)
                    .maximum
                    .map_or("unlimited".to_string(), |m| m.to_string());
                format!("cannot raise {name} above the hard limit this process inherited ({inherited}; raising it takes CAP_SYS_RESOURCE)")
            } else {
                super::report::describe(&e.into())
            };
            return Err(SetupError::new(
                format!("process.rlimits[{i}] ({name})"),
                reason,
            ));
        }
    }
    Ok(())
}

/// Drop the capabilities of the calling process (our init, once the
/// workload is started: it only reaps and forwards signals).
/// It keeps CAP_KILL (in its own user namespace only): a workload running
/// as another uid could not be sent the signals init forwards without it.
/// Init never execs, and no_new_privs makes sure no exec of it could gain
/// anything (a setuid file, file capabilities): that is what the bounding
/// set would guard, so it is left as it is rather than dropped one
/// capability at a time (41 credential changes).
/// Fails closed: an init that could not drop them ends, and the sandbox
/// with it, rather than keep them beside the workload.
pub fn drop_all_but_kill() {
    let kill = caps::Capability::CAP_KILL;
    // CAP_KILL where init has it (a root caller's without a user
    // namespace may lack it): no capability can be raised here.
    let had = caps::has_cap(None, CapSet::Permitted, kill).unwrap_or(false);
    let only_kill: CapsHashSet = had.then_some(kill).into_iter().collect();
    let dropped = rustix::thread::set_no_new_privs(true).is_ok()
        && caps::clear(None, CapSet::Ambient).is_ok()
        && caps::set(None, CapSet::Effective, &only_kill).is_ok()
        && caps::set(None, CapSet::Permitted, &only_kill).is_ok()
        && caps::set(None, CapSet::Inheritable, &CapsHashSet::new()).is_ok();
    if !dropped {
        std::process::exit(125);
    }
}

fn rlimit_resource(n: i32) -> Option<rustix::process::Resource> {
    use rustix::process::Resource as R;
    [
        R::Cpu,
        R::Fsize,
        R::Data,
        R::Stack,
        R::Core,
        R::Rss,
        R::Nproc,
        R::Nofile,
        R::Memlock,
        R::As,
        R::Locks,
        R::Sigpending,
        R::Msgqueue,
        R::Nice,
        R::Rtprio,
        R::Rttime,
    ]
    .into_iter()
    .find(|r| *r as i32 == n)
}
