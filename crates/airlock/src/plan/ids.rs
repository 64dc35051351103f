//! Who the workload is, resolved: its ids inside, the id maps from them to
//! the host, and whether setgroups and the setuid map helpers come in.

use super::Caller;
use crate::spec::{host_id, IdMap, SandboxSpec, SpecError};

/// Where a root caller's sandbox lands on the host when no map is given:
/// 65536 ids starting here, far from login users (1000+) and the usual
/// /etc/subuid allocations (100000+), so sandbox root owns nothing of the
/// host's and no user's files.
pub const ROOT_CALLER_BASE: u32 = 0x7000_0000;
pub const ROOT_CALLER_COUNT: u32 = 65536;

/// The host uid that makes (and so owns) the user namespaces of a root
/// caller's sandboxes that land in the range above: one no process of
/// theirs has. Owned by the range's first uid, the sandboxes' own root,
/// a setuid file one of them left in a host directory (a persistent
/// overlay upper, a writable root) would make any local user their owner,
/// with every capability in all of them, past their filters. Kernel
/// counts made per user (inotify instances, nested namespaces) are still
/// charged to one uid that is not the host's root.
pub const ROOT_CALLER_OWNER: u32 = ROOT_CALLER_BASE - 1;

pub struct Ids {
    pub uid: u32,
    pub gid: u32,
    pub uid_map: Vec<IdMap>,
    pub gid_map: Vec<IdMap>,
    /// Whether setgroups may be called (false when a rootless caller has
    /// to deny it to map its own gid).
    pub setgroups: bool,
    pub use_newidmap: bool,
}

/// The spec's map, or `default` when it gives none.
fn or_default(given: &[IdMap], default: Vec<IdMap>) -> Vec<IdMap> {
    if given.is_empty() {
        default
    } else {
        given.to_vec()
    }
}

pub fn resolve(spec: &SandboxSpec, caller: Caller) -> Result<Ids, SpecError> {
    let p = &spec.process;
    let ids = if !spec.namespaces.user {
        if !caller.is_root() {
            return Err(SpecError::new(
                "namespaces.user",
                "only root can create namespaces without a user namespace",
            ));
        }
        let uid = p.uid.unwrap_or(0);
        Ids {
            uid,
            // A uid given alone brings its own group, not root's.
            gid: p.gid.unwrap_or(uid),
            uid_map: Vec::new(),
            gid_map: Vec::new(),
            setgroups: true,
            use_newidmap: false,
        }
    } else if caller.is_root() {
        let uid = p.uid.unwrap_or(0);
        // PID 1 sets the sandbox up as its root: without one it would stay
        // the host's root, unmapped there, with root's groups.
        for (field, map) in [
            ("identity.uid_map", &spec.identity.uid_map),
            ("identity.gid_map", &spec.identity.gid_map),
        ] {
            if !map.is_empty() && !map.iter().any(|m| m.inside == 0) {
                return Err(SpecError::new(
                    field,
                    "maps no id 0: a root caller's sandbox needs its root mapped (its PID 1 sets it up as that root)",
                ));
            }
        }
        let auto = vec![IdMap {
            inside: 0,
            outside: ROOT_CALLER_BASE,
            count: ROOT_CALLER_COUNT,
        }];
        Ids {
            uid,
            gid: p.gid.unwrap_or(uid),
            uid_map: or_default(&spec.identity.uid_map, auto.clone()),
            gid_map: or_default(&spec.identity.gid_map, auto),
            setgroups: true,
            use_newidmap: false,
        }
    } else {
        let uid = p.uid.unwrap_or(caller.uid);
        let gid = p.gid.unwrap_or(caller.gid);
        let own = |inside, outside| {
            vec![IdMap {
                inside,
                outside,
                count: 1,
            }]
        };
        let uid_map = or_default(&spec.identity.uid_map, own(uid, caller.uid));
        let gid_map = or_default(&spec.identity.gid_map, own(gid, caller.gid));
        let only_own = |maps: &[IdMap], me: u32| {
            maps.len() == 1 && maps[0].count == 1 && maps[0].outside == me
        };
        let use_newidmap = !(only_own(&uid_map, caller.uid) && only_own(&gid_map, caller.gid));
        // The kernel lets an unprivileged writer map its own gid only
        // after setgroups is denied for the namespace, and newgidmap
        // denies it too unless the map holds ids of /etc/subgid's: the
        // gid map alone decides, however the uid map is written.
        let setgroups = !only_own(&gid_map, caller.gid);
        Ids {
            uid,
            gid,
            uid_map,
            gid_map,
            setgroups,
            use_newidmap,
        }
    };
    if spec.namespaces.user {
        check_mapped(spec, &ids)?;
    }
    if !ids.setgroups && !p.groups.is_empty() {
        return Err(SpecError::new(
            "process.groups",
            "a rootless sandbox cannot set supplementary groups unless its gid map holds ids beyond the caller's own (from /etc/subgid, through newgidmap): setgroups is denied in its user namespace",
        ));
    }
    Ok(ids)
}

/// The first id of a process (its uid, gid or one of its groups, by
/// index) that `uid_map` or `gid_map` does not map: what the kernel would
/// refuse only at setresuid or setgroups.
pub(crate) enum Unmapped {
    Uid(u32),
    Gid(u32),
    Group(usize, u32),
}

pub(crate) fn unmapped(
    uid_map: &[IdMap],
    gid_map: &[IdMap],
    uid: u32,
    gid: u32,
    groups: &[u32],
) -> Option<Unmapped> {
    let mapped = |maps: &[IdMap], id: u32| host_id(maps, id).is_some();
    if !mapped(uid_map, uid) {
        return Some(Unmapped::Uid(uid));
    }
    if !mapped(gid_map, gid) {
        return Some(Unmapped::Gid(gid));
    }
    groups
        .iter()
        .enumerate()
        .find(|(_, g)| !mapped(gid_map, **g))
        .map(|(i, g)| Unmapped::Group(i, *g))
}

/// Every id the workload takes must exist in its namespace.
fn check_mapped(spec: &SandboxSpec, ids: &Ids) -> Result<(), SpecError> {
    let found = unmapped(
        &ids.uid_map,
        &ids.gid_map,
        ids.uid,
        ids.gid,
        &spec.process.groups,
    );
    match found {
        None => Ok(()),
        Some(Unmapped::Uid(u)) => Err(SpecError::new(
            "process.uid",
            format!("uid {u} is not in identity.uid_map"),
        )),
        Some(Unmapped::Gid(g)) => Err(SpecError::new(
            "process.gid",
            format!("gid {g} is not in identity.gid_map"),
        )),
        Some(Unmapped::Group(i, g)) => Err(SpecError::new(
            format!("process.groups[{i}]"),
            format!("gid {g} is not in identity.gid_map"),
        )),
    }?;
    // A device's owner too, so that it is refused here, before anything is
    // made, not by the supervisor once the namespaces exist.
    for (i, d) in spec.filesystem.devices.iter().enumerate() {
        if let Some(u) = d.uid.filter(|u| host_id(&ids.uid_map, *u).is_none()) {
            return Err(SpecError::new(
                format!("filesystem.devices[{i}].uid"),
                format!("uid {u} is not in identity.uid_map"),
            ));
        }
        if let Some(g) = d.gid.filter(|g| host_id(&ids.gid_map, *g).is_none()) {
            return Err(SpecError::new(
                format!("filesystem.devices[{i}].gid"),
                format!("gid {g} is not in identity.gid_map"),
            ));
        }
    }
    Ok(())
}
