//! The sandbox description: plain serde data, read from JSON or TOML, or
//! built in Rust with [`SandboxSpec::builder`].
//!
//! Everything here is pure data. Defaults are the least-privilege choice:
//! every namespace new, no capabilities, no_new_privs on, a new session,
//! the sandbox's clocks starting near zero.

mod builder;
mod devices;
mod filesystem;
mod parse;
pub mod scheduling;
pub mod size;
pub mod validate;

pub use builder::SpecBuilder;
pub use devices::{harmless_device, Device, DeviceKind, STANDARD_DEVICES};
pub use filesystem::{
    default_view, fresh_view, BindOwner, Filesystem, Mount, Root, DEFAULT_MASKED_PATHS,
    DEFAULT_READONLY_PATHS, SYSTEM_DIRS,
};
pub use parse::{from_json, from_str_auto, from_toml, ParseError};
pub use scheduling::{IoClass, SchedPolicy, Scheduling};
pub use size::{parse_mode, parse_size, FileMode, Size};
pub use validate::{parse_capability, validate, SpecError};

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The whole description of one sandbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SandboxSpec {
    pub process: Process,
    pub namespaces: Namespaces,
    pub identity: Identity,
    pub filesystem: Filesystem,
    /// Hostname inside the UTS namespace.
    pub hostname: String,
    /// NIS domain name inside the UTS namespace (the kernel's `(none)`
    /// when unset).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domainname: Option<String>,
    pub time: Clocks,
    /// Kill the sandbox when the process that started it dies.
    pub die_with_parent: bool,
    /// Run the workload in a new session, away from the caller's terminal
    /// (so TIOCSTI cannot push keystrokes into the caller's shell).
    pub new_session: bool,
    pub init: InitMode,
    /// Capabilities kept for the workload (`CAP_NET_BIND_SERVICE`, ...).
    /// Empty by default: the workload has no capabilities at all.
    pub capabilities: Vec<String>,
    /// Those of `capabilities` a workload that is not root inside keeps
    /// over its exec (its ambient and inheritable sets). Unset: all of
    /// them, as bubblewrap's `--cap-add` gives. The OCI runtime sets the
    /// bundle's ambient set, so that a container's non-root user has none
    /// unless the bundle says so, as runc gives.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ambient_capabilities: Option<Vec<String>>,
    /// cgroup limits (none unless asked).
    pub resources: Resources,
    /// Wall-clock limit in seconds: the whole sandbox is killed after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<f64>,
    /// Landlock rules derived from the mounts, plus optional TCP port rules.
    pub landlock: Landlock,
    /// The syscall filter (the default allow-list unless said otherwise).
    pub seccomp: crate::seccomp::Seccomp,
    /// Have the kernel log every call the filter refuses (the filter is
    /// installed with SECCOMP_FILTER_FLAG_LOG): an audit record of type
    /// 1326 naming the process and the syscall's number, in the kernel log
    /// (`dmesg`) or auditd's. For finding what a profile leaves out.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub seccomp_log: bool,
    /// Compiled classic-BPF programs (`sock_filter` arrays in native byte
    /// order, as hex), installed after airlock's own filter, as
    /// bubblewrap's `--add-seccomp-fd` reads them. Filters stack and the
    /// strictest answer wins, so these can only refuse more.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub seccomp_filters: Vec<String>,
    /// Guardrail codes the caller acknowledges (see `airlock check --list`).
    pub allow_unsafe: Vec<String>,
    /// Kernel parameters of the sandbox's own namespaces (`net.*` with a
    /// network namespace, `kernel.shm*`, `kernel.msg*`, `kernel.sem` and
    /// `fs.mqueue.*` with an IPC namespace), written before the mounts.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "parse::unique_keys"
    )]
    pub sysctls: BTreeMap<String, String>,
}

impl Default for SandboxSpec {
    fn default() -> Self {
        SandboxSpec {
            process: Process::default(),
            namespaces: Namespaces::default(),
            identity: Identity::default(),
            filesystem: Filesystem::default(),
            hostname: "airlock".into(),
            domainname: None,
            time: Clocks::default(),
            die_with_parent: true,
            new_session: true,
            init: InitMode::Airlock,
            capabilities: Vec::new(),
            ambient_capabilities: None,
            resources: Resources::default(),
            timeout: None,
            landlock: Landlock::default(),
            seccomp: Default::default(),
            seccomp_log: false,
            seccomp_filters: Vec::new(),
            allow_unsafe: Vec::new(),
            sysctls: BTreeMap::new(),
        }
    }
}

impl SandboxSpec {
    pub fn builder() -> SpecBuilder {
        SpecBuilder::new()
    }

    /// The spec as pretty JSON (what `airlock run --print-spec` prints).
    pub fn to_json_pretty(&self) -> String {
        serde_json::to_string_pretty(self).expect("a spec always serializes")
    }
}

/// The pids limit of a sandbox whose spec sets none (podman's default):
/// a fork bomb inside stops there rather than at the host's
/// RLIMIT_NPROC. A root caller gets it as the cgroup's `pids.max`; a
/// rootless one, whose cgroups are rarely delegated, as RLIMIT_NPROC
/// inside the sandbox's user namespace (counted per sandbox there). See
/// [`crate::Context::default_pids`].
pub const DEFAULT_PIDS: u64 = 2048;

/// Resource limits, applied through cgroups (v2, or v1 controllers on
/// hybrid and legacy hosts), nested under the caller's own cgroup.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Resources {
    /// Memory limit (the workload is OOM-killed above it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<Size>,
    /// Swap the workload may use on top of `memory` (none by default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub swap: Option<Size>,
    /// Memory kept for the workload when the host is short of it
    /// (podman's `--memory-reservation`): v2's `memory.low`, below which
    /// it is reclaimed only when nothing else can be; v1's soft limit,
    /// down to which it is reclaimed first. At most `memory`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_reservation: Option<Size>,
    /// When the kernel's OOM killer kills in the sandbox, kill all of it
    /// together (v2's `memory.oom.group`, which kubelet sets on every
    /// container on cgroup v2), so no half of a workload is left running.
    /// cgroup v2 only: refused where memory is a v1 controller, which has
    /// no group kill.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_oom_group: Option<bool>,
    /// Maximum number of processes and threads ([`DEFAULT_PIDS`] when
    /// unset, unless the launch context says otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pids: Option<u64>,
    /// CPU quota as a number of CPUs (0.5 = half of one CPU).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpus: Option<f64>,
    /// The period `cpus` is a share of, in microseconds (1000 to 1000000;
    /// the kernel's 100000 when unset): a longer one lets a burst run
    /// longer before the quota holds it back (an OCI bundle's
    /// `linux.resources.cpu.period`). Only with `cpus`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_period: Option<u64>,
    /// Relative CPU weight, 1..10000 (100 is the default share).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_weight: Option<u32>,
    /// Relative I/O weight, 1..10000, where the io/blkio controller has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub io_weight: Option<u32>,
    /// The CPUs the workload may run on, as the kernel lists them
    /// (`0-3,6`): the cpuset controller's `cpuset.cpus`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpuset_cpus: Option<String>,
    /// The memory nodes it may allocate from (`cpuset.mems`), the same way.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpuset_mems: Option<String>,
    /// Huge pages the workload may use, by page size as the kernel names
    /// it (`2MB`, `1GB`): the hugetlb controller's `hugetlb.2MB.max` (v1
    /// `hugetlb.2MB.limit_in_bytes`), in bytes, rounded down to whole
    /// pages by the kernel. An OCI bundle's `linux.resources.hugepageLimits`.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "parse::unique_keys"
    )]
    pub hugetlb: BTreeMap<String, Size>,
}

impl Resources {
    pub fn any(&self) -> bool {
        *self != Resources::default()
    }
}

/// Landlock: a second wall behind the mounts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Landlock {
    pub mode: LandlockMode,
    /// TCP ports the workload may bind; `None` leaves binding unrestricted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcp_bind: Option<Vec<u16>>,
    /// TCP ports the workload may connect to; `None` leaves it unrestricted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcp_connect: Option<Vec<u16>>,
    /// With the host's PID namespace shared, the workload may still signal
    /// processes outside its Landlock domain (runc's behaviour, which the
    /// OCI runtime keeps for a container without a PID namespace of its
    /// own); otherwise Landlock scopes its signals (ABI 6).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub host_signals: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LandlockMode {
    /// Apply it where the kernel has Landlock; skip it (in the trace) where
    /// it has none.
    #[default]
    Auto,
    /// Refuse to start on a kernel without Landlock.
    Required,
    Off,
}

/// The workload process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Process {
    /// Program and arguments; the program is looked up in the sandbox's PATH.
    pub args: Vec<String>,
    /// What the program gets as its `argv[0]` instead of `args[0]`
    /// (bubblewrap's `--argv0`): a multi-call binary picks its applet by
    /// it, a login shell starts with `-`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub argv0: Option<String>,
    /// Start from the caller's environment (then apply `env` and `unset_env`).
    /// Off by default: the workload sees only `env`.
    pub inherit_env: bool,
    /// `PWD` names the process's working directory even where the
    /// environment is not inherited (`inherit_env` sets it anyway), as
    /// bubblewrap sets it after `--clearenv`; `env` and `unset_env` apply
    /// after it.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub set_pwd: bool,
    #[serde(default, deserialize_with = "parse::unique_keys")]
    pub env: BTreeMap<String, String>,
    pub unset_env: Vec<String>,
    /// Working directory inside the sandbox; unset, an image's
    /// WorkingDir, or `/`. Set, even to `/`, it wins over the image's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// User and group inside; `None` picks automatically (0 for a root
    /// caller, the caller's own ids for a rootless one).
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// Supplementary groups inside (ignored when rootless, where the kernel
    /// forbids setgroups).
    pub groups: Vec<u32>,
    pub rlimits: Vec<Rlimit>,
    pub no_new_privs: bool,
    /// Give the workload a new pseudo-terminal, proxied to the caller's
    /// stdin and stdout (`-t`; OCI's `process.terminal`).
    pub terminal: bool,
    /// The execution domain and flags, as personality(2) takes them (OCI's
    /// `linux.personality`), set before exec; `None` keeps the caller's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub personality: Option<u64>,
    /// The file mode creation mask, as umask(2) takes it (OCI's
    /// `process.user.umask`), set before exec; `None` keeps the caller's.
    /// An octal string in a spec file (see [`size::umask`]).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "size::umask")]
    pub umask: Option<u32>,
    /// When the environment has no HOME, set it to the user's home in the
    /// sandbox's /etc/passwd, or `/` (runc's rule; airlock-runtime asks
    /// for it). Off: the environment is exactly `env`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub home_from_passwd: bool,
    /// Nice value, scheduling policy, I/O priority and CPU affinity (see
    /// [`Scheduling`]); unset: the caller's.
    #[serde(skip_serializing_if = "Scheduling::is_unset")]
    pub scheduling: Scheduling,
    /// Keep the caller's session keyring (runc's `--no-new-keyring`)
    /// instead of a new one for the sandbox and each exec: the workload
    /// then possesses the caller's keys. For a host whose seccomp profile
    /// refuses keyctl (Docker's default), where a new one cannot be made.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub keep_session_keyring: bool,
}

impl Default for Process {
    fn default() -> Self {
        Process {
            args: Vec::new(),
            argv0: None,
            inherit_env: false,
            set_pwd: false,
            env: BTreeMap::new(),
            unset_env: Vec::new(),
            cwd: None,
            uid: None,
            gid: None,
            groups: Vec::new(),
            rlimits: Vec::new(),
            no_new_privs: true,
            terminal: false,
            personality: None,
            umask: None,
            home_from_passwd: false,
            scheduling: Scheduling::default(),
            keep_session_keyring: false,
        }
    }
}

/// One resource limit (`setrlimit`), applied to the workload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rlimit {
    /// `nofile`, `nproc`, `core`, `cpu`, `data`, `fsize`, `memlock`, `stack`, `as`, ...
    pub resource: String,
    /// `u64::MAX` is no limit (RLIM_INFINITY), written `"unlimited"`.
    #[serde(with = "limit_value")]
    pub soft: u64,
    #[serde(with = "limit_value")]
    pub hard: u64,
}

/// A limit's value: a number, or `"unlimited"` (`"infinity"` too, as
/// prlimit and systemd write it) for RLIM_INFINITY, 2^64 - 1, which
/// TOML's signed integers cannot hold. Written back the same way, so a
/// printed spec reads again in either format.
mod limit_value {
    use serde::de::{self, Visitor};
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
        if *v == u64::MAX {
            s.serialize_str("unlimited")
        } else {
            s.serialize_u64(*v)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        d.deserialize_any(Value)
    }

    struct Value;

    impl Visitor<'_> for Value {
        type Value = u64;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a number of 0 or more, or \"unlimited\"")
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
            Ok(v)
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
            u64::try_from(v).map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &self))
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<u64, E> {
            match v {
                "unlimited" | "infinity" => Ok(u64::MAX),
                _ => Err(E::invalid_value(de::Unexpected::Str(v), &self)),
            }
        }
    }
}

/// Which namespaces are new (`true`, the default) or shared with the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Namespaces {
    pub mount: bool,
    pub pid: bool,
    pub uts: bool,
    pub ipc: bool,
    pub net: bool,
    pub user: bool,
    pub cgroup: bool,
    pub time: bool,
    /// Namespaces joined by path instead of made (`net`, `ipc`, `uts` and
    /// `pid`: `{"net": "/run/netns/x"}`, with `net = false`), as a platform
    /// that prepares networking or a pod's shared IPC, hostname and
    /// processes hands them over. A PID namespace owned by a user namespace
    /// other than the caller's is joined through that user namespace
    /// (the sandbox's own, which must have the sandbox's id maps): only
    /// there can the sandbox mount its /proc.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "parse::unique_keys"
    )]
    pub join: BTreeMap<String, String>,
    /// Whether the workload may make user namespaces of its own, as far as
    /// its seccomp filter lets it (airlock's default filter refuses
    /// `unshare` and `clone` with namespace flags anyway). `false`: PID 1
    /// sets `user.max_user_namespaces` to 0 in the sandbox's user
    /// namespace, which the kernel enforces for everything below it
    /// whatever the filter allows (bubblewrap's `--disable-userns`).
    pub nested_user: bool,
    /// Check, just before the workload's exec, that it cannot make a user
    /// namespace (by `unshare`, `clone` or `clone3`), and refuse to run it
    /// if it can (bubblewrap's `--assert-userns-disabled`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub assert_userns_disabled: bool,
}

impl Default for Namespaces {
    fn default() -> Self {
        Namespaces {
            mount: true,
            pid: true,
            uts: true,
            ipc: true,
            net: true,
            user: true,
            cgroup: true,
            time: true,
            join: BTreeMap::new(),
            nested_user: true,
            assert_userns_disabled: false,
        }
    }
}

/// User-namespace id maps. Empty means automatic: a root caller maps the
/// sandbox onto an unprivileged host range, a rootless caller maps its own
/// uid and gid.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Identity {
    pub uid_map: Vec<IdMap>,
    pub gid_map: Vec<IdMap>,
}

/// One line of `/proc/PID/uid_map`: `count` ids from `inside` map to `outside`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdMap {
    pub inside: u32,
    pub outside: u32,
    pub count: u32,
}

/// The host id that `id` inside maps to through `maps`, if any range
/// holds it.
pub fn host_id(maps: &[IdMap], id: u32) -> Option<u32> {
    maps.iter()
        .find(|m| id >= m.inside && id - m.inside < m.count)
        .map(|m| m.outside + (id - m.inside))
}

/// The id inside that host id `id` maps to through `maps`, if any.
pub fn inside_id(maps: &[IdMap], id: u32) -> Option<u32> {
    maps.iter()
        .find(|m| id >= m.outside && id - m.outside < m.count)
        .map(|m| m.inside + (id - m.outside))
}

/// What the sandbox's clocks read when it starts (time namespace). The
/// defaults make `uptime` start near zero.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Clocks {
    /// CLOCK_BOOTTIME at start, in seconds.
    pub boottime: i64,
    /// CLOCK_MONOTONIC at start, in seconds.
    pub monotonic: i64,
    /// Nanoseconds past `boottime` (below 1e9).
    #[serde(skip_serializing_if = "is_zero")]
    pub boottime_nanos: u32,
    /// Nanoseconds past `monotonic` (below 1e9).
    #[serde(skip_serializing_if = "is_zero")]
    pub monotonic_nanos: u32,
    /// The two values are offsets from the host's clocks (OCI's
    /// `linux.timeOffsets`) rather than what the sandbox's clocks read
    /// when it starts.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub offsets: bool,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Who is PID 1 in the sandbox.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InitMode {
    /// airlock's tiny init: reaps orphans, forwards signals, exits with the
    /// workload's status.
    #[default]
    Airlock,
    /// The workload itself is PID 1 (it must reap and handle signals).
    Workload,
}
