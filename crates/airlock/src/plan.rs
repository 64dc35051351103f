//! From a valid spec and a few facts about the caller to the exact plan the
//! runner carries out: the namespaces and clone flags, id maps, the
//! workload's ids, capabilities, environment and numeric rlimits, the
//! Landlock rules and the compiled seccomp programs. The caller's facts are
//! passed in; the only work beyond pure computation is compiling the
//! seccomp profile, done here once per start.

use crate::namespace::{self, Namespace};
use crate::seccomp::Program;
use crate::spec::{self, IdMap, LandlockMode, Mount, Root, SandboxSpec, SpecError};
use serde::{Deserialize, Serialize};

/// Where a root caller's sandbox lands on the host when no map is given:
/// 65536 ids starting here, far from login users (1000+) and the usual
/// /etc/subuid allocations (100000+), so sandbox root owns nothing of the
/// host's and no user's files.
pub const ROOT_CALLER_BASE: u32 = 0x7000_0000;
pub const ROOT_CALLER_COUNT: u32 = 65536;

/// The ids a sandbox is launched as (see [`crate::Context`] for the rest
/// of what is known about the caller).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Caller {
    pub uid: u32,
    pub gid: u32,
}

impl Caller {
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
    /// Maps beyond the caller's own id need the setuid newuidmap/newgidmap.
    pub use_newidmap: bool,
    /// The namespaces the sandbox makes new, in join order.
    pub namespaces: Vec<Namespace>,
    /// The flags PID 1 is cloned with (all of `namespaces` but time).
    pub clone_flags: u64,
    /// The workload, resolved: ids, capabilities, environment, limits.
    pub process: ProcessPlan,
    /// Landlock and seccomp, shared by the workload and every exec.
    pub walls: Walls,
    /// Send a progress message for every setup step.
    pub verbose: bool,
    /// The host facts the guardrails judged the spec on; the runner judges
    /// each bind source again against them once it has opened it.
    pub host: crate::check::Host,
    /// A sandbox with state: its directory, and how it lives.
    #[serde(default)]
    pub lifecycle: Option<Lifecycle>,
}

/// What the runner is asked to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "job", rename_all = "kebab-case")]
pub enum Job {
    /// Set up a sandbox and run its workload.
    Start(Box<Plan>),
    /// Run a further process inside a running sandbox.
    Exec(Box<ExecPlan>),
}

/// A process to run inside a running sandbox: it joins every namespace of
/// the sandbox's PID 1 (fds its supervisor hands out), its cgroups, and gets the same
/// seccomp filter, Landlock ruleset and capability bounds as the workload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecPlan {
    /// The sandbox's directory: its supervisor hands out PID 1's
    /// namespaces on the control socket there.
    pub dir: std::path::PathBuf,
    /// The sandbox's walls, from its recorded plan: the same filter and
    /// ruleset as its workload.
    pub walls: Walls,
    /// Start a new session (the sandbox's `new_session`).
    pub new_session: bool,
    #[serde(default)]
    pub cgroup: Option<crate::state::CgroupPaths>,
    pub process: ProcessPlan,
    pub verbose: bool,
}

/// How a sandbox with state lives (see [`crate::state`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lifecycle {
    /// The sandbox's directory in the state root.
    pub dir: std::path::PathBuf,
    /// The supervisor outlives its caller: it writes the workload's
    /// stdout and stderr to size-bounded logs in `dir`.
    pub detached: bool,
    /// Hold the workload before exec until a `start` request (create).
    pub hold: bool,
    /// Bytes of each log file before it is rotated (one old file is kept).
    pub log_limit: u64,
    /// Remove the sandbox's directory when it ends.
    pub remove_on_exit: bool,
}

/// What every process of a sandbox runs behind, installed last before
/// exec.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Walls {
    /// Compiled seccomp programs, installed in order (none: no filter).
    pub seccomp: Vec<Program>,
    /// None when Landlock is off.
    pub landlock: Option<LandlockRules>,
}

/// The Landlock ruleset: read and execute everywhere, write beneath
/// `writable`, TCP ports when the spec lists them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LandlockRules {
    /// A kernel without Landlock (or without the TCP rules) is an error,
    /// not a skip: the spec said `required`, or listed ports explicitly.
    pub required: bool,
    /// Sandbox paths the workload may write beneath (a file gets only the
    /// rights a file can have).
    pub writable: Vec<String>,
    pub tcp_bind: Option<Vec<u16>>,
    pub tcp_connect: Option<Vec<u16>>,
}

/// The sandbox paths the workload may write beneath: writable binds,
/// tmpfs, /dev, /proc, mqueue mounts, and `/` when the root is writable.
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

fn landlock_rules(spec: &SandboxSpec) -> Option<LandlockRules> {
    let l = &spec.landlock;
    if l.mode == LandlockMode::Off {
        return None;
    }
    Some(LandlockRules {
        required: l.mode == LandlockMode::Required
            || l.tcp_bind.is_some()
            || l.tcp_connect.is_some(),
        writable: writable_paths(spec),
        tcp_bind: l.tcp_bind.clone(),
        tcp_connect: l.tcp_connect.clone(),
    })
}

/// One process of a sandbox, resolved: the workload, or a process exec'd
/// into a running sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessPlan {
    pub args: Vec<String>,
    /// The final environment (nothing is read from the runner's own).
    pub env: Vec<(String, String)>,
    pub cwd: String,
    /// Ids inside the sandbox.
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    /// Whether setgroups may be called (false when a rootless caller had to
    /// write "deny" to /proc/PID/setgroups).
    pub setgroups: bool,
    /// Capability numbers the process keeps.
    pub capabilities: Vec<u8>,
    /// (resource number, soft, hard), in spec order.
    pub rlimits: Vec<(i32, u64, u64)>,
    pub no_new_privs: bool,
    /// A new pseudo-terminal as stdio and controlling terminal.
    #[serde(default)]
    pub terminal: bool,
}

fn mapped(maps: &[IdMap], id: u32) -> bool {
    maps.iter()
        .any(|m| id >= m.inside && id - m.inside < m.count)
}

/// The workload's environment: the caller's (if inherited), then `env`,
/// then `unset_env`.
pub fn environment(p: &spec::Process, caller_env: &[(String, String)]) -> Vec<(String, String)> {
    let mut env: std::collections::BTreeMap<String, String> = if p.inherit_env {
        caller_env.iter().cloned().collect()
    } else {
        Default::default()
    };
    for (k, v) in &p.env {
        env.insert(k.clone(), v.clone());
    }
    for k in &p.unset_env {
        env.remove(k);
    }
    env.into_iter().collect()
}

/// Resource numbers of the rlimits; validate() has refused unknown names.
fn rlimits(p: &spec::Process) -> Vec<(i32, u64, u64)> {
    p.rlimits
        .iter()
        .filter_map(|r| {
            let (_, n) = spec::validate::RLIMITS
                .iter()
                .find(|(n, _)| *n == r.resource)?;
            Some((*n as i32, r.soft, r.hard))
        })
        .collect()
}

/// Resolve a valid spec into a plan for this caller.
pub fn plan(spec: &SandboxSpec, ctx: &crate::Context) -> Result<Plan, SpecError> {
    spec::validate::validate_fields(spec)?;
    let seccomp = crate::seccomp::compile(&spec.seccomp)?;
    let caller = ctx.caller;
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
    let namespaces = Namespace::new_in(&spec.namespaces);
    Ok(Plan {
        spec: spec.clone(),
        caller,
        uid_map,
        gid_map,
        use_newidmap,
        clone_flags: namespace::clone_flags(&namespaces),
        namespaces,
        walls: Walls {
            seccomp,
            landlock: landlock_rules(spec),
        },
        process: ProcessPlan {
            args: p.args.clone(),
            env: environment(p, &ctx.env),
            cwd: p.cwd.clone(),
            uid,
            gid,
            groups: p.groups.clone(),
            setgroups,
            capabilities,
            rlimits: rlimits(p),
            no_new_privs: p.no_new_privs,
            terminal: p.terminal,
        },
        verbose: false,
        host: Default::default(),
        lifecycle: None,
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
        let p = plan(&spec(), &crate::Context::for_ids(0, 0)).unwrap();
        assert_eq!(p.process.uid, 0);
        assert_eq!(p.uid_map[0].outside, ROOT_CALLER_BASE);
        assert!(p.process.setgroups);
        assert!(!p.use_newidmap);
    }

    #[test]
    fn rootless_maps_own_id() {
        let p = plan(&spec(), &crate::Context::for_ids(1000, 1000)).unwrap();
        assert_eq!(p.process.uid, 1000);
        assert_eq!(
            p.uid_map,
            vec![IdMap {
                inside: 1000,
                outside: 1000,
                count: 1
            }]
        );
        assert!(!p.process.setgroups);
        assert!(!p.use_newidmap);
    }

    #[test]
    fn rootless_as_root_inside() {
        let mut s = spec();
        s.process.uid = Some(0);
        s.process.gid = Some(0);
        let p = plan(&s, &crate::Context::for_ids(1000, 1000)).unwrap();
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
        let p = plan(&s, &crate::Context::for_ids(1000, 1000)).unwrap();
        assert!(p.use_newidmap);
    }

    #[test]
    fn a_uid_alone_gets_its_own_gid() {
        let mut s = spec();
        s.process.uid = Some(1000);
        let p = plan(&s, &crate::Context::for_ids(0, 0)).unwrap();
        assert_eq!((p.process.uid, p.process.gid), (1000, 1000));
        s.namespaces.user = false;
        let p = plan(&s, &crate::Context::for_ids(0, 0)).unwrap();
        assert_eq!((p.process.uid, p.process.gid), (1000, 1000));
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
        let e = plan(&s, &crate::Context::for_ids(0, 0)).unwrap_err();
        assert_eq!(e.field, "process.uid");
    }

    #[test]
    fn the_plan_carries_the_walls() {
        let p = plan(&spec(), &crate::Context::for_ids(0, 0)).unwrap();
        assert_eq!(p.walls.seccomp.len(), 2, "the default profile compiled");
        assert_eq!(p.namespaces.len(), 8);
        let l = p.walls.landlock.unwrap();
        assert!(!l.required);
        let mut s = spec();
        s.landlock.tcp_connect = Some(vec![443]);
        s.seccomp = crate::seccomp::Seccomp::None;
        let p = plan(&s, &crate::Context::for_ids(0, 0)).unwrap();
        assert!(p.walls.seccomp.is_empty());
        assert!(
            p.walls.landlock.unwrap().required,
            "a port rule the user asked for is never skipped"
        );
        s.landlock.mode = LandlockMode::Off;
        assert!(plan(&s, &crate::Context::for_ids(0, 0))
            .unwrap()
            .walls
            .landlock
            .is_none());
    }

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

    #[test]
    fn capabilities_resolve_to_numbers() {
        let mut s = spec();
        s.capabilities = vec!["net_bind_service".into(), "CAP_NET_BIND_SERVICE".into()];
        let p = plan(&s, &crate::Context::for_ids(0, 0)).unwrap();
        assert_eq!(p.process.capabilities, vec![10]);
    }
}
