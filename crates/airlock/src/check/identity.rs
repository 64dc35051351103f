//! The identity rules: who the workload is on the host.
//!
//! With the host's user namespace shared, the workload's uid, gid, groups
//! and capabilities are the host's own, so it is judged by what it may be:
//! the shared namespace itself, any capability it keeps, and a privileged
//! uid, gid or supplementary group. With a user namespace of its own, an id
//! map is judged by the host ids it reaches: id 0, or a privileged host id
//! (see [`super::hostids`] for what "privileged" means).

use super::{Findings, Host};
use crate::spec::{IdMap, SandboxSpec};

pub(super) fn judge(f: &mut Findings, spec: &SandboxSpec, host: &Host, caps: &[String]) {
    let uid = spec.process.uid.unwrap_or(0);
    // The planner's rule: a uid given alone brings its own group.
    let gid = spec.process.gid.unwrap_or(uid);
    if !spec.namespaces.user {
        if uid == 0 {
            f.add(
                "host-root-user",
                "namespaces.user",
                "uid 0 without a user namespace is the host's real root: every capability kept and every file owned by root is the host's",
            );
        }
        if caps.iter().any(|c| c == "CAP_SETUID" || c == "CAP_SETGID") {
            f.add(
                "host-root-user",
                "capabilities",
                "CAP_SETUID/CAP_SETGID without a user namespace let the workload become the host's root",
            );
        }
        if uid == 0 || caps.iter().any(|c| c == "CAP_SETUID") {
            host_proc_writable(f, spec);
        }
        shared(f, spec, host, caps, uid, gid);
    } else if let Some(outside) = host.namespaced_root_outside {
        // uid 0 of a namespace of one id (`unshare -r`) maps that id, its
        // own, whatever the spec says: judged by what it is outside, and
        // so are its gids (`unshare --map-groups` may give it gid 0).
        let gid_0 = host.namespaced_root_gids.iter().any(|&(g, _)| g == 0);
        if outside == 0 || gid_0 {
            f.add(
                "host-root-mapped",
                "identity",
                "airlock runs as uid 0 of a user namespace of one id whose uid or gid is its parent's root (`unshare -r` by root): the sandbox's root is that root, and a file the workload makes setuid or setgid in a writable bind is a setuid-root or setgid-root binary on the host",
            );
            host_proc_writable(f, spec);
        }
    } else {
        let maps_root = |maps: &[IdMap]| maps.iter().any(|m| m.outside == 0);
        if maps_root(&spec.identity.uid_map) || maps_root(&spec.identity.gid_map) {
            f.add(
                "host-root-mapped",
                "identity",
                "the host's id 0 is mapped into the sandbox: a file the workload makes setuid in a writable bind is a setuid-root binary on the host",
            );
        }
        // /proc/sys asks for the host's uid 0, which a map gives as well.
        let is_host_root = spec
            .identity
            .uid_map
            .iter()
            .any(|m| m.outside == 0 && uid >= m.inside && uid - m.inside < m.count);
        let can_become =
            maps_root(&spec.identity.uid_map) && caps.iter().any(|c| c == "CAP_SETUID");
        if is_host_root || can_become {
            host_proc_writable(f, spec);
        }
        mapped(f, "identity.uid_map", &spec.identity.uid_map, false, host);
        mapped(f, "identity.gid_map", &spec.identity.gid_map, true, host);
    }
}

/// The host's uid 0 (or one who can become it; a map onto it as well)
/// with a procfs whose kernel
/// settings are neither masked nor read-only: /proc/sys checks only that
/// the writer is uid 0, no capability, so `kernel.core_pattern` runs a
/// program of the workload's choosing as the host's root at its next
/// crash. OCI's defaults make both read-only; a bundle that lists no
/// readonlyPaths has none (runc's too), and acknowledging
/// `host-root-user` is not acknowledging this.
fn host_proc_writable(f: &mut Findings, spec: &SandboxSpec) {
    use super::paths::{normalize, within};
    use crate::spec::Mount;
    let fs = &spec.filesystem;
    let procs = fs.mounts.iter().filter_map(|m| match m {
        Mount::Proc { destination } => Some(normalize(destination)),
        _ => None,
    });
    let protected: Vec<String> = fs
        .masked_paths
        .iter()
        .chain(&fs.readonly_paths)
        .map(|p| normalize(p))
        .collect();
    // A path under /proc/ is masked in every procfs (the plan's rule);
    // one under another mount's destination in that one.
    let covered = |dest: &str, leaf: &str| {
        protected.iter().any(|p| {
            (p.starts_with("/proc/") && within(&format!("/proc/{leaf}"), p))
                || within(&format!("{dest}/{leaf}"), p)
        })
    };
    for dest in procs {
        if let Some(leaf) = ["sys", "sysrq-trigger"]
            .into_iter()
            .find(|leaf| !covered(&dest, leaf))
        {
            f.add(
                "host-proc-writable",
                "filesystem.readonly_paths",
                format!("{dest}/{leaf} is neither masked nor read-only for the host's root: it writes the host's kernel settings (kernel.core_pattern runs a program of its choosing as host root), or crashes the host through sysrq"),
            );
            return;
        }
    }
}

/// The host's user namespace is shared: the ids are the host's.
fn shared(f: &mut Findings, spec: &SandboxSpec, host: &Host, caps: &[String], uid: u32, gid: u32) {
    f.add(
        "shared-user",
        "namespaces.user",
        format!(
            "the host's user namespace is shared: the workload is the host's uid {uid} and gid {gid}, what it writes to a bind belongs to them on the host, and a setuid or setgid bit it sets works for every host user"
        ),
    );
    if !caps.is_empty() {
        f.add(
            "cap-host-user",
            "capabilities",
            format!(
                "{} in the host's user namespace are capabilities over the host itself: CAP_CHOWN with CAP_FOWNER plants a setuid-root file in a writable bind, CAP_SETFCAP a file capability, CAP_MKNOD a device node the host can open",
                caps.join(", ")
            ),
        );
    }
    let ids = &host.ids;
    // uid 0 is host-root-user's.
    if let Some(why) = (uid != 0).then(|| ids.privileged_uid(uid)).flatten() {
        f.add(
            "host-privileged-id",
            "process.uid",
            format!("the workload runs as the host's own account: {why}"),
        );
    }
    let groups = std::iter::once(("process.gid".to_string(), gid)).chain(
        spec.process
            .groups
            .iter()
            .enumerate()
            .map(|(i, g)| (format!("process.groups[{i}]"), *g)),
    );
    for (subject, g) in groups {
        if let Some(why) = ids.privileged_gid(g) {
            f.add(
                "host-privileged-id",
                subject,
                format!("the workload holds the host's own group: {why}; it can use what that group gates and plant setgid files in a writable bind"),
            );
        }
    }
}

/// An explicit id map onto privileged host ids.
fn mapped(f: &mut Findings, field: &str, maps: &[IdMap], gids: bool, host: &Host) {
    let kind = if gids { "gid" } else { "uid" };
    for (i, m) in maps.iter().enumerate() {
        if let Some((id, why)) = host.ids.privileged_in(gids, m.outside, m.count) {
            f.add(
                "host-privileged-mapped",
                format!("{field}[{i}]"),
                format!(
                    "maps host {kind} {id} into the sandbox: {why}; the workload holds it on every host file it sees, and what it creates in a writable bind carries it on the host"
                ),
            );
        }
    }
}
