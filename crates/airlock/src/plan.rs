//! From a valid spec and a few facts about the caller to the exact plan the
//! runner carries out: id maps, the workload's ids, capabilities, and the
//! environment. Pure; the caller's facts are passed in.

use crate::spec::{self, IdMap, SandboxSpec, SpecError};
use serde::{Deserialize, Serialize};

/// Where a root caller's sandbox lands on the host when no map is given:
/// 65536 ids starting here, far from login users (1000+) and the usual
/// /etc/subuid allocations (100000+), so sandbox root owns nothing of the
/// host's and no user's files.
pub const ROOT_CALLER_BASE: u32 = 0x7000_0000;
pub const ROOT_CALLER_COUNT: u32 = 65536;

/// The facts about the caller that planning depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Caller {
    pub uid: u32,
    pub gid: u32,
}

impl Caller {
    pub fn current() -> Self {
        Caller {
            uid: rustix::process::geteuid().as_raw(),
            gid: rustix::process::getegid().as_raw(),
        }
    }

    pub fn is_root(&self) -> bool {
        self.uid == 0
    }
}

/// Everything the runner needs, resolved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub spec: SandboxSpec,
    pub caller: Caller,
    pub uid_map: Vec<IdMap>,
    pub gid_map: Vec<IdMap>,
    /// Whether the workload may call setgroups (false when a rootless caller
    /// has to write "deny" to /proc/PID/setgroups).
    pub setgroups: bool,
    /// Maps beyond the caller's own id need the setuid newuidmap/newgidmap.
    pub use_newidmap: bool,
    /// The workload's ids inside the sandbox.
    pub uid: u32,
    pub gid: u32,
    /// Capability numbers the workload keeps.
    pub capabilities: Vec<u8>,
    /// Send a progress message for every setup step.
    pub verbose: bool,
    /// The host facts the guardrails judged the spec on; the runner judges
    /// each bind source again against them once it has opened it.
    pub host: crate::check::Host,
}

fn mapped(maps: &[IdMap], id: u32) -> bool {
    maps.iter()
        .any(|m| id >= m.inside && id - m.inside < m.count)
}

/// Resolve a valid spec into a plan for this caller.
pub fn plan(spec: &SandboxSpec, caller: Caller) -> Result<Plan, SpecError> {
    spec::validate(spec)?;
    let p = &spec.process;
    let (uid, gid, uid_map, gid_map, setgroups, use_newidmap);
    if !spec.namespaces.user {
        if !caller.is_root() {
            return Err(SpecError::new(
                "namespaces.user",
                "only root can create namespaces without a user namespace",
            ));
        }
        uid = p.uid.unwrap_or(0);
        // A uid given alone brings its own group, not root's.
        gid = p.gid.unwrap_or(uid);
        uid_map = Vec::new();
        gid_map = Vec::new();
        setgroups = true;
        use_newidmap = false;
    } else if caller.is_root() {
        uid = p.uid.unwrap_or(0);
        // A uid given alone brings its own group, not root's.
        gid = p.gid.unwrap_or(uid);
        let auto = vec![IdMap {
            inside: 0,
            outside: ROOT_CALLER_BASE,
            count: ROOT_CALLER_COUNT,
        }];
        uid_map = if spec.identity.uid_map.is_empty() {
            auto.clone()
        } else {
            spec.identity.uid_map.clone()
        };
        gid_map = if spec.identity.gid_map.is_empty() {
            auto
        } else {
            spec.identity.gid_map.clone()
        };
        setgroups = true;
        use_newidmap = false;
    } else {
        uid = p.uid.unwrap_or(caller.uid);
        gid = p.gid.unwrap_or(caller.gid);
        let own = |inside, outside| {
            vec![IdMap {
                inside,
                outside,
                count: 1,
            }]
        };
        uid_map = if spec.identity.uid_map.is_empty() {
            own(uid, caller.uid)
        } else {
            spec.identity.uid_map.clone()
        };
        gid_map = if spec.identity.gid_map.is_empty() {
            own(gid, caller.gid)
        } else {
            spec.identity.gid_map.clone()
        };
        let only_own = |maps: &[IdMap], me: u32| {
            maps.len() == 1 && maps[0].count == 1 && maps[0].outside == me
        };
        use_newidmap = !(only_own(&uid_map, caller.uid) && only_own(&gid_map, caller.gid));
        // Without newgidmap the kernel lets an unprivileged writer map its
        // gid only after setgroups is denied for the namespace.
        setgroups = use_newidmap;
    }
    if spec.namespaces.user {
        if !mapped(&uid_map, uid) {
            return Err(SpecError::new(
                "process.uid",
                format!("uid {uid} is not in identity.uid_map"),
            ));
        }
        if !mapped(&gid_map, gid) {
            return Err(SpecError::new(
                "process.gid",
                format!("gid {gid} is not in identity.gid_map"),
            ));
        }
        for (i, g) in p.groups.iter().enumerate() {
            if !mapped(&gid_map, *g) {
                return Err(SpecError::new(
                    format!("process.groups[{i}]"),
                    format!("gid {g} is not in identity.gid_map"),
                ));
            }
        }
    }
    if !setgroups && !p.groups.is_empty() {
        return Err(SpecError::new(
            "process.groups",
            "a rootless sandbox without newgidmap cannot set supplementary groups",
        ));
    }
    let mut capabilities = Vec::new();
    for c in &spec.capabilities {
        // validate() has already rejected unknown names.
        if let Ok(cap) = spec::parse_capability(c) {
            capabilities.push(cap.index());
        }
    }
    capabilities.sort_unstable();
    capabilities.dedup();
    Ok(Plan {
        spec: spec.clone(),
        caller,
        uid_map,
        gid_map,
        setgroups,
        use_newidmap,
        uid,
        gid,
        capabilities,
        verbose: false,
        host: Default::default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> SandboxSpec {
        SandboxSpec::builder().args(["true"]).build()
    }

    #[test]
    fn root_caller_maps_to_unprivileged_range() {
        let p = plan(&spec(), Caller { uid: 0, gid: 0 }).unwrap();
        assert_eq!(p.uid, 0);
        assert_eq!(p.uid_map[0].outside, ROOT_CALLER_BASE);
        assert!(p.setgroups);
        assert!(!p.use_newidmap);
    }

    #[test]
    fn rootless_maps_own_id() {
        let p = plan(
            &spec(),
            Caller {
                uid: 1000,
                gid: 1000,
            },
        )
        .unwrap();
        assert_eq!(p.uid, 1000);
        assert_eq!(
            p.uid_map,
            vec![IdMap {
                inside: 1000,
                outside: 1000,
                count: 1
            }]
        );
        assert!(!p.setgroups);
        assert!(!p.use_newidmap);
    }

    #[test]
    fn rootless_as_root_inside() {
        let mut s = spec();
        s.process.uid = Some(0);
        s.process.gid = Some(0);
        let p = plan(
            &s,
            Caller {
                uid: 1000,
                gid: 1000,
            },
        )
        .unwrap();
        assert_eq!(
            p.uid_map,
            vec![IdMap {
                inside: 0,
                outside: 1000,
                count: 1
            }]
        );
    }

    #[test]
    fn rootless_ranges_need_newuidmap() {
        let mut s = spec();
        s.identity.uid_map = vec![
            IdMap {
                inside: 0,
                outside: 1000,
                count: 1,
            },
            IdMap {
                inside: 1,
                outside: 100000,
                count: 65536,
            },
        ];
        s.process.uid = Some(0);
        s.process.gid = Some(1000);
        let p = plan(
            &s,
            Caller {
                uid: 1000,
                gid: 1000,
            },
        )
        .unwrap();
        assert!(p.use_newidmap);
    }

    #[test]
    fn a_uid_alone_gets_its_own_gid() {
        let mut s = spec();
        s.process.uid = Some(1000);
        let p = plan(&s, Caller { uid: 0, gid: 0 }).unwrap();
        assert_eq!((p.uid, p.gid), (1000, 1000));
        s.namespaces.user = false;
        let p = plan(&s, Caller { uid: 0, gid: 0 }).unwrap();
        assert_eq!((p.uid, p.gid), (1000, 1000));
    }

    #[test]
    fn unmapped_uid_is_refused() {
        let mut s = spec();
        s.process.uid = Some(5);
        s.identity.uid_map = vec![IdMap {
            inside: 0,
            outside: 100000,
            count: 1,
        }];
        let e = plan(&s, Caller { uid: 0, gid: 0 }).unwrap_err();
        assert_eq!(e.field, "process.uid");
    }

    #[test]
    fn capabilities_resolve_to_numbers() {
        let mut s = spec();
        s.capabilities = vec!["net_bind_service".into(), "CAP_NET_BIND_SERVICE".into()];
        let p = plan(&s, Caller { uid: 0, gid: 0 }).unwrap();
        assert_eq!(p.capabilities, vec![10]);
    }
}
