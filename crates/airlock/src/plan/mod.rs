//! From a valid spec and a few facts about the caller to the exact plan the
//! runner carries out: the namespaces and clone flags, id maps, the mount
//! steps in order, the cgroups and their limits, the workload's ids,
//! capabilities, environment and numeric rlimits, the Landlock rules and
//! the compiled seccomp programs. The caller's facts are passed in; the
//! only work beyond computation is getting the seccomp programs (the
//! default profile's were compiled at build time, see [`crate::seccomp`])
//! and drawing the sandbox's random id.

mod hooks;
pub(crate) mod ids;
pub mod mounts;
mod pids;

pub use hooks::{Hook, InsideHooks};
pub use ids::{ROOT_CALLER_BASE, ROOT_CALLER_COUNT, ROOT_CALLER_OWNER};
pub use mounts::{writable_paths, FsPlan, MountStep};

use crate::cgroup::CgroupPlan;
use crate::namespace::{self, Namespace};
use crate::seccomp::Program;
use crate::spec::{self, Clocks, IdMap, InitMode, LandlockMode, SandboxSpec, SpecError};
use crate::Error;
use serde::{Deserialize, Serialize};

/// The ids a sandbox is launched as (see [`crate::Context`] for the rest
/// of what is known about the caller).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Caller {
    pub uid: u32,
    pub gid: u32,
    /// uid 0 of a user namespace that maps one id only (`unshare -r`): it
    /// can map only its own id into a sandbox, and its mounts are its
    /// namespace's, so it launches as a rootless caller does.
    #[serde(default)]
    pub namespaced_root: bool,
}

impl Caller {
    /// A caller with these ids, in the user namespace that holds the
    /// host's ids.
    pub fn new(uid: u32, gid: u32) -> Caller {
        Caller {
            uid,
            gid,
            namespaced_root: false,
        }
    }

    /// A caller with these ids in this process's user namespace: its uid
    /// 0 launches as root unless the namespace maps that one id only.
    pub fn here(uid: u32, gid: u32) -> Caller {
        Caller {
            uid,
            gid,
            namespaced_root: uid == 0 && crate::sys::maps_one_id(),
        }
    }

    /// Root of the host's ids, who launches as root (id ranges of its
    /// own choosing, trees cloned before any namespace exists).
    pub fn is_root(&self) -> bool {
        self.uid == 0 && !self.namespaced_root
    }
}

/// Everything the runner needs, resolved: it reads nothing else.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// The sandbox's id (64 hex digits): its cgroups are `airlock-<id>`,
    /// and a sandbox with state has its directory under it.
    pub id: String,
    /// The spec as given. The runner reads it for one thing only: to judge
    /// each bind source again, by the same rules, once it has opened it.
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
    /// Set in a new UTS namespace.
    pub hostname: Option<String>,
    #[serde(default)]
    pub domainname: Option<String>,
    /// Where the clocks of a new time namespace start.
    pub clocks: Option<Clocks>,
    /// Bring up `lo` in a new network namespace.
    pub loopback: bool,
    /// Namespaces joined by path (by the supervisor before the clone, and
    /// by every exec before it joins the user namespace).
    #[serde(default)]
    pub join: Vec<(Namespace, String)>,
    /// The sandbox's user namespace is the one that owns the joined PID
    /// namespace, not a new one: PID 1 is cloned with no new namespace,
    /// joins it, and makes the others there (see `runner::pidns`).
    #[serde(default)]
    pub userns_of_pid: bool,
    /// Namespaced kernel parameters, written by PID 1 in its namespaces.
    #[serde(default)]
    pub sysctls: Vec<(String, String)>,
    /// Those of a joined network namespace, written by the supervisor once
    /// it has joined it (PID 1's user namespace has no say there).
    #[serde(default)]
    pub join_sysctls: Vec<(String, String)>,
    /// Our init as PID 1, or the workload itself.
    pub init: InitMode,
    /// PID 1 and the workload each start a new session.
    pub new_session: bool,
    /// The spec field that asks the workload to check it cannot make a
    /// user namespace (`runner::nested_user`), when it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assert_userns_disabled: Option<String>,
    /// End the sandbox when its caller exits (never for a detached one).
    pub die_with_caller: bool,
    /// Kill the sandbox this long after its start.
    pub timeout_ms: Option<u64>,
    /// The root and the mount steps, in order.
    pub filesystem: FsPlan,
    /// The sandbox's cgroups; none when it needs none (no limits, and a
    /// PID namespace to kill through).
    pub cgroup: Option<CgroupPlan>,
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
    /// Programs run inside the sandbox at two points of its setup (OCI's
    /// createContainer and startContainer hooks).
    #[serde(default, skip_serializing_if = "InsideHooks::is_empty")]
    pub hooks: InsideHooks,
    /// The caller's fds that hear of the sandbox's start and end
    /// (bubblewrap's --info-fd and --json-status-fd): an attended run's.
    #[serde(default, skip_serializing_if = "StatusFds::is_empty")]
    pub status_fds: StatusFds,
    /// What the caller calls a spec field (`resources.cpuset_cpus` is the
    /// CLI's `--cpuset-cpus`): an attended runner, which reports to the
    /// person in its caller's place, names the fields so in its errors.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub field_names: Vec<(String, String)>,
}

/// Fds of the caller's, kept by the supervisor (never PID 1 or the
/// workload), to which it writes JSON as bubblewrap does: `info` gets one
/// object once PID 1 exists (its host pid, "child-pid", and its
/// namespaces' ids), `json_status` the same as a line, then
/// `{"exit-code": N}` when the sandbox has ended. `sync` is only held,
/// so that it closes when the supervisor exits, the sandbox gone; `block`
/// is read before PID 1 is let go (after `info`), so the caller can
/// prepare what the sandbox needs (its network, say) first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusFds {
    pub info: Option<i32>,
    pub json_status: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block: Option<i32>,
}

impl StatusFds {
    pub fn is_empty(&self) -> bool {
        self.fds().next().is_none()
    }

    pub fn fds(&self) -> impl Iterator<Item = i32> {
        self.info
            .into_iter()
            .chain(self.json_status)
            .chain(self.sync)
            .chain(self.block)
    }
}

impl Plan {
    /// Whether the sandbox has a user namespace of its own.
    pub fn user_ns(&self) -> bool {
        self.namespaces.contains(&Namespace::User)
    }

    /// A new cgroup namespace is rooted at the cgroups of whoever makes
    /// it, then and there. v2 puts PID 1 into its cgroup as it is cloned
    /// (CLONE_INTO_CGROUP); v1 cgroups take it only afterwards, so with
    /// any, PID 1 makes the namespace itself once the supervisor has put
    /// it there (before "go"), as runc unshares it last. Cloned with it,
    /// the namespace would be rooted at the caller's v1 cgroups, which the
    /// workload would see (and, mounting a v1 hierarchy, reach).
    pub fn cgroupns_after_v1(&self) -> bool {
        self.clone_flags & libc::CLONE_NEWCGROUP as u64 != 0
            && self.cgroup.as_ref().is_some_and(|c| !c.v1.is_empty())
    }

    /// The flags PID 1 is cloned with: [`Plan::clone_flags`] but a cgroup
    /// namespace it makes itself (see [`Plan::cgroupns_after_v1`]).
    pub fn flags_to_clone(&self) -> u64 {
        match self.cgroupns_after_v1() {
            true => self.clone_flags & !(libc::CLONE_NEWCGROUP as u64),
            false => self.clone_flags,
        }
    }
}

/// The build's id (see the crate's build.rs): a caller and a runner only
/// work together when theirs are the same.
pub const BUILD_ID: &str = env!("AIRLOCK_BUILD_ID");

/// What the runner is asked to do.
///
/// Tagged externally (`{"start": {...}}`), as `MountStep` is: an
/// internally tagged enum (`"job": "start"` among the fields) makes serde
/// read the whole plan into a buffer of its own first, to find the tag,
/// and then read the buffer; that was more than half of the runner's
/// instructions before its first system call of setup.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
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
    /// The kinds of namespace the sandbox joined by path: exec joins those
    /// (through the fds its supervisor hands out) before the others.
    #[serde(default)]
    pub join: Vec<(Namespace, String)>,
    /// The kinds of namespace the sandbox made: exec refuses to go on
    /// without any of them.
    #[serde(default)]
    pub namespaces: Vec<Namespace>,
    /// With a terminal: send its master here instead of proxying it.
    #[serde(default)]
    pub console_socket: Option<std::path::PathBuf>,
    /// With a terminal: its size (rows, columns) before the process runs.
    #[serde(default)]
    pub terminal_size: Option<(u16, u16)>,
    #[serde(default)]
    pub cgroup: Option<crate::state::CgroupPaths>,
    pub process: ProcessPlan,
    pub verbose: bool,
    /// The process's exit is read without reaping it; the runner's own
    /// exit hands the zombie to the caller's subreaper.
    #[serde(default)]
    pub leave_to_reaper: bool,
    /// Killed when the caller ends ([`crate::ExecOptions::die_with_caller`]).
    #[serde(default)]
    pub die_with_caller: bool,
    /// The sandbox's id maps, for the caller only (which runner file the
    /// sandbox could write: `Sandbox::start`).
    #[serde(skip)]
    pub id_maps: (Vec<IdMap>, Vec<IdMap>),
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
    /// Detached, the workload still gets the caller's stdio (no logs).
    #[serde(default)]
    pub keep_stdio: bool,
    /// Where the terminal's master goes, instead of being proxied.
    #[serde(default)]
    pub console_socket: Option<std::path::PathBuf>,
    /// The terminal's size (rows, columns) before it goes there.
    #[serde(default)]
    pub console_size: Option<(u16, u16)>,
    /// Detached with logs: the workload's stdin is a pipe the supervisor
    /// keeps open, for `attach` to write to (else /dev/null).
    #[serde(default)]
    pub stdin: bool,
    /// PID 1's exit is read without reaping it; the supervisor's own
    /// exit hands the zombie to the caller's subreaper.
    #[serde(default)]
    pub leave_pid1_to_reaper: bool,
    /// Detached, the supervisor stays its caller's child instead of
    /// forking away from it: the caller reaps it, which spares a fork
    /// and an exit per sandbox.
    #[serde(default)]
    pub stay_child: bool,
}

/// What every process of a sandbox runs behind, installed last before
/// exec.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Walls {
    /// Compiled seccomp programs, installed in order (none: no filter).
    pub seccomp: Vec<Program>,
    /// How many of the last programs are the spec's `seccomp_filters`,
    /// installed on their own just before the exec.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub seccomp_given: usize,
    /// Installed with SECCOMP_FILTER_FLAG_LOG (`spec.seccomp_log`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub seccomp_log: bool,
    /// None when Landlock is off.
    pub landlock: Option<LandlockRules>,
}

impl Walls {
    /// airlock's own programs, installed with the rest of the walls.
    pub fn own_seccomp(&self) -> &[Program] {
        let own = self.seccomp.len().saturating_sub(self.seccomp_given);
        &self.seccomp[..own]
    }

    /// The spec's `seccomp_filters`, installed last.
    pub fn given_seccomp(&self) -> &[Program] {
        &self.seccomp[self.own_seccomp().len()..]
    }
}

fn is_zero(n: &usize) -> bool {
    *n == 0
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
    /// The host's network namespace is shared: abstract unix sockets made
    /// outside the workload's Landlock domain (the host's, a session
    /// bus's, an X server's) cannot be connected to (Landlock ABI 6). In
    /// a network namespace of its own or a pod's, the namespace already
    /// keeps the host's out, and the scope would only part the workload
    /// from what `exec` starts beside it.
    #[serde(default)]
    pub scope_abstract_unix: bool,
    /// The host's PID namespace is shared: processes outside the
    /// workload's Landlock domain cannot be sent a signal (ABI 6). Every
    /// host process of the workload's host uid could be otherwise (a
    /// rootless caller's own session, other sandboxes of a root caller's
    /// range). In a PID namespace of its own or a pod's, the namespace
    /// keeps the host's out, and the scope would only part the workload
    /// from its init and from what `exec` starts beside it.
    #[serde(default)]
    pub scope_signals: bool,
    /// A kernel without the scopes (before ABI 6) fails the start only
    /// when `landlock.mode` is `required` itself, not when port rules
    /// made Landlock required: they need ABI 4 alone.
    #[serde(default)]
    pub scopes_required: bool,
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
        scope_abstract_unix: !spec.namespaces.net && !spec.namespaces.join.contains_key("net"),
        scope_signals: !spec.namespaces.pid
            && !spec.namespaces.join.contains_key("pid")
            && !l.host_signals,
        scopes_required: l.mode == LandlockMode::Required,
    })
}

/// One process of a sandbox, resolved: the workload, or a process exec'd
/// into a running sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessPlan {
    pub args: Vec<String>,
    /// The `argv[0]` the program gets, when not `args[0]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub argv0: Option<String>,
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
    /// Those a non-root process keeps over exec (ambient and inheritable);
    /// `None`: all of `capabilities`.
    #[serde(default)]
    pub ambient: Option<Vec<u8>>,
    /// (resource number, soft, hard), in spec order.
    pub rlimits: Vec<(i32, u64, u64)>,
    pub no_new_privs: bool,
    /// A new pseudo-terminal as stdio and controlling terminal.
    #[serde(default)]
    pub terminal: bool,
    /// personality(2), set before exec.
    #[serde(default)]
    pub personality: Option<u64>,
    /// umask(2), set before exec.
    #[serde(default)]
    pub umask: Option<u32>,
    /// Set HOME from the sandbox's /etc/passwd when `env` has none.
    #[serde(default)]
    pub home_from_passwd: bool,
    /// Nice value, policy, I/O priority and CPU affinity, set from the
    /// host side before the process starts (`runner::sched`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduling: Option<spec::Scheduling>,
    /// The caller's fds 3 to 3+N-1 reach the process at the same numbers
    /// (OCI's `--preserve-fds`); every other fd above 2 closes at exec.
    #[serde(default)]
    pub preserve_fds: u32,
    /// The caller's session keyring stays (`spec::Process::keep_session_keyring`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub keep_session_keyring: bool,
}

/// The workload's environment: the caller's (if inherited), then `env`,
/// then `unset_env`. An inherited environment's `PWD` names the process's
/// working directory in the sandbox, as bubblewrap sets it: the caller's
/// would name a directory the process is not in, one the sandbox may not
/// even have. So does one not inherited with `set_pwd` (`--clearenv`).
pub fn environment(p: &spec::Process, caller_env: &[(String, String)]) -> Vec<(String, String)> {
    let mut env: std::collections::BTreeMap<String, String> = if p.inherit_env {
        caller_env.iter().cloned().collect()
    } else {
        Default::default()
    };
    if p.inherit_env || p.set_pwd {
        env.insert("PWD".into(), p.cwd.as_deref().unwrap_or("/").into());
    }
    for (k, v) in &p.env {
        env.insert(k.clone(), v.clone());
    }
    for k in &p.unset_env {
        env.remove(k);
    }
    env.into_iter().collect()
}

/// Resource numbers of the rlimits of a valid spec.
pub fn rlimit_numbers(p: &spec::Process) -> Vec<(i32, u64, u64)> {
    rlimits(p)
}

/// Capability numbers of a valid spec.
pub fn capability_numbers(spec: &SandboxSpec) -> Vec<u8> {
    capabilities(spec)
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

/// RLIMIT_RTPRIO and RLIMIT_NICE at the kernel's defaults (0), each where
/// `rlimits` (a process plan's) sets none. Inherited from the caller
/// (pam_limits' `@audio - rtprio 95`, systemd's `LimitRTPRIO=`) they
/// would let the workload raise its own priority with no
/// `raised-priority` finding: the kernel lets a process without
/// CAP_SYS_NICE on the host go as far as they say. Lowered early in
/// setup, before any filter (a strict one may not allow prlimit64), and
/// not part of the plan's rlimits, which an exec's own replace one by
/// one.
pub fn priority_defaults(rlimits: &[(i32, u64, u64)]) -> Vec<(i32, u64, u64)> {
    [libc::RLIMIT_RTPRIO, libc::RLIMIT_NICE]
        .into_iter()
        .map(|r| r as i32)
        .filter(|r| !rlimits.iter().any(|l| l.0 == *r))
        .map(|r| (r, 0, 0))
        .collect()
}

/// Resolve a valid spec into a plan for this caller.
pub fn plan(spec: &SandboxSpec, ctx: &crate::Context) -> Result<Plan, Error> {
    spec::validate::validate_fields(spec)?;
    let mut seccomp = crate::seccomp::compile(&spec.seccomp)?;
    let caller = ctx.caller;
    let p = &spec.process;
    let ids = ids::resolve(spec, caller)?;
    let id = crate::state::new_id().map_err(|source| Error::Io {
        what: "read random bytes for the sandbox's id",
        source,
    })?;
    let ns = &spec.namespaces;
    let (resources, rlimits) = pids::default_pids(spec, ctx, rlimits(&spec.process));
    // Without a PID namespace of its own, killing PID 1 does not end the
    // sandbox: a cgroup is then what stop and timeout kill through.
    let cgroup = if resources.any()
        || !ns.pid
        || ctx.cgroup_path.is_some()
        || ctx.cgroup_nest.is_some()
        || !ctx.cgroup_prepare.is_empty()
    {
        let name = match (&ctx.cgroup_path, &ctx.cgroup_nest) {
            (Some(path), _) => path.clone(),
            (None, Some(nest)) => format!("{nest}/airlock-{id}"),
            (None, None) => format!("airlock-{id}"),
        };
        let prepare: Vec<&str> = ctx.cgroup_prepare.iter().map(String::as_str).collect();
        let cgroup = crate::cgroup::plan::resolve(&resources, &ctx.cgroup, &name, &prepare)
            .map_err(Error::Setup)?;
        // Without one that can end them all at once (v2's cgroup.kill, or
        // v1's freezer), a stop, the timeout or a failed start would kill
        // PID 1 alone, and the rest of the workload run on in the PID
        // namespace it shares.
        if !ns.pid && cgroup.v2.is_none() && !cgroup.v1.contains_key("freezer") {
            return Err(Error::Setup(crate::report::SetupError::new(
                "namespaces.pid",
                "without a PID namespace of its own, the sandbox's processes are ended through its cgroup (cgroup v2, or the v1 freezer), and this host shows airlock neither",
            )));
        }
        Some(cgroup)
    } else {
        None
    };
    check_idmap(spec, ctx)?;
    // A joined PID namespace gets a /proc of its own too, mounted by PID 1
    // from inside it.
    let own_proc = ns.pid || ns.join.contains_key("pid");
    let filesystem = mounts::resolve(spec, own_proc, mounts::caller_maps(spec, caller, &ids));
    // On the host (a persistent overlay upper, a writable bind or root
    // with the host's ids) a root caller's sandbox writes as the range
    // every such sandbox shares (ROOT_CALLER_BASE): a setuid file left
    // there would hand those ids to any local user who can reach it.
    let shared = ROOT_CALLER_BASE as u64..ROOT_CALLER_BASE as u64 + ROOT_CALLER_COUNT as u64;
    let shared_range = ids.uid_map.iter().any(|m| {
        let outside = m.outside as u64;
        outside < shared.end && shared.start < outside + m.count as u64
    });
    let host_writes = match ctx.filter_set_id_on_host_writes {
        true => filesystem.writes_to_host(),
        false => filesystem.has_persistent_upper(),
    };
    if filesystem.caller_maps.is_some() || (shared_range && host_writes) {
        // What the workload makes in those binds is the caller's on the
        // host: no setuid or setgid mode may come out of them.
        seccomp.extend(crate::seccomp::set_id_program(&spec.seccomp)?);
    }
    if spec.landlock.tcp_bind.is_some() || spec.landlock.tcp_connect.is_some() {
        seccomp.push(crate::seccomp::mptcp_program()?);
    }
    let namespaces = Namespace::new_in(ns);
    let userns_of_pid = ns.user && ns.join.contains_key("pid");
    Ok(Plan {
        id,
        spec: spec.clone(),
        caller,
        uid_map: ids.uid_map,
        gid_map: ids.gid_map,
        use_newidmap: ids.use_newidmap,
        clone_flags: if userns_of_pid {
            0
        } else {
            namespace::clone_flags(&namespaces)
        },
        userns_of_pid,
        namespaces,
        hostname: ns.uts.then(|| spec.hostname.clone()),
        domainname: spec.domainname.clone().filter(|_| ns.uts),
        clocks: ns.time.then(|| spec.time.clone()),
        loopback: ns.net,
        join: Namespace::JOINABLE
            .into_iter()
            .filter_map(|n| ns.join.get(n.proc_name()).map(|p| (n, p.clone())))
            .collect(),
        sysctls: sysctls(spec, false),
        join_sysctls: sysctls(spec, true),
        init: spec.init,
        new_session: spec.new_session,
        assert_userns_disabled: spec
            .namespaces
            .assert_userns_disabled
            .then(|| "namespaces.assert_userns_disabled".into()),
        die_with_caller: spec.die_with_parent,
        timeout_ms: spec.timeout.map(|t| (t * 1000.0).round() as u64),
        filesystem,
        cgroup,
        walls: Walls {
            seccomp_given: spec.seccomp_filters.len(),
            seccomp: {
                // After airlock's own: filters stack, the strictest wins.
                for text in &spec.seccomp_filters {
                    seccomp.push(
                        crate::seccomp::Program::from_hex(text)
                            .map_err(|why| crate::spec::SpecError::new("seccomp_filters", why))?,
                    );
                }
                seccomp
            },
            seccomp_log: spec.seccomp_log,
            landlock: landlock_rules(spec),
        },
        process: ProcessPlan {
            args: p.args.clone(),
            argv0: p.argv0.clone(),
            env: environment(p, &ctx.env),
            cwd: p.cwd.clone().unwrap_or_else(|| "/".into()),
            uid: ids.uid,
            gid: ids.gid,
            groups: p.groups.clone(),
            setgroups: ids.setgroups,
            capabilities: capabilities(spec),
            ambient: ambient_capabilities(spec),
            rlimits,
            no_new_privs: p.no_new_privs,
            terminal: p.terminal,
            personality: p.personality,
            umask: p.umask.or(ctx.umask),
            home_from_passwd: p.home_from_passwd,
            scheduling: (!p.scheduling.is_unset()).then(|| p.scheduling.clone()),
            preserve_fds: 0,
            keep_session_keyring: p.keep_session_keyring,
        },
        verbose: false,
        host: Default::default(),
        lifecycle: None,
        hooks: InsideHooks::default(),
        status_fds: StatusFds::default(),
        field_names: Vec::new(),
    })
}

/// Idmapped mounts: of a directory root or a bind, in a user namespace,
/// made by root (the kernel asks for CAP_SYS_ADMIN over the filesystem).
fn check_idmap(spec: &SandboxSpec, ctx: &crate::Context) -> Result<(), SpecError> {
    for (i, d) in spec.filesystem.idmap.iter().enumerate() {
        let field = format!("filesystem.idmap[{i}]");
        if spec.filesystem.idmapped(d).is_empty() {
            return Err(SpecError::new(
                field,
                format!("{d} is neither a directory root (\"/\") nor a bind's destination"),
            ));
        }
        if !spec.namespaces.user {
            return Err(SpecError::new(
                field,
                "an idmapped mount needs a user namespace",
            ));
        }
        if !ctx.caller.is_root() {
            return Err(SpecError::new(
                field,
                "only root can make idmapped mounts (the kernel asks for CAP_SYS_ADMIN over the filesystem)",
            ));
        }
    }
    Ok(())
}

/// The sysctls PID 1 writes (`joined` false) or the supervisor writes in
/// a joined network namespace (`joined` true).
/// `namespaces.nested_user = false` is one more for PID 1: no user
/// namespace below the sandbox's (user.* sysctls are the writer's user
/// namespace's, and validate() made sure it is the sandbox's own).
fn sysctls(spec: &SandboxSpec, joined: bool) -> Vec<(String, String)> {
    let net_joined = spec.namespaces.join.contains_key("net");
    let mut out: Vec<_> = spec
        .sysctls
        .iter()
        .filter(|(k, _)| (net_joined && k.starts_with("net.")) == joined)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if !joined && !spec.namespaces.nested_user {
        out.push(("user.max_user_namespaces".into(), "0".into()));
    }
    out
}

/// Capability numbers; validate() has already rejected unknown names.
fn capabilities(spec: &SandboxSpec) -> Vec<u8> {
    numbers(&spec.capabilities)
}

/// The ambient capabilities' numbers of a valid spec.
pub fn ambient_capabilities(spec: &SandboxSpec) -> Option<Vec<u8>> {
    spec.ambient_capabilities.as_deref().map(numbers)
}

fn numbers(names: &[String]) -> Vec<u8> {
    let mut out: Vec<u8> = names
        .iter()
        .filter_map(|c| spec::parse_capability(c).ok())
        .map(|c| c.index())
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

#[cfg(test)]
mod tests;
