//! The sandbox description: plain serde data, read from JSON or TOML, or
//! built in Rust with [`SandboxSpec::builder`].
//!
//! Everything here is pure data. Defaults are the least-privilege choice:
//! every namespace new, no capabilities, no_new_privs on, a new session,
//! the sandbox's clocks starting near zero.

mod builder;
mod devices;
mod parse;
pub mod size;
pub mod validate;

pub use builder::SpecBuilder;
pub use devices::{Device, DeviceKind, HARMLESS_DEVICES};
pub use parse::{from_json, from_str_auto, from_toml, ParseError};
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
    /// cgroup limits (none unless asked).
    pub resources: Resources,
    /// Wall-clock limit in seconds: the whole sandbox is killed after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<f64>,
    /// Landlock rules derived from the mounts, plus optional TCP port rules.
    pub landlock: Landlock,
    /// The syscall filter (the default allow-list unless said otherwise).
    pub seccomp: crate::seccomp::Seccomp,
    /// Guardrail codes the caller acknowledges (see `airlock check --list`).
    pub allow_unsafe: Vec<String>,
    /// Kernel parameters of the sandbox's own namespaces (`net.*` with a
    /// network namespace, `kernel.shm*`, `kernel.msg*`, `kernel.sem` and
    /// `fs.mqueue.*` with an IPC namespace), written before the mounts.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
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
            resources: Resources::default(),
            timeout: None,
            landlock: Landlock::default(),
            seccomp: Default::default(),
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
    /// Maximum number of processes and threads ([`DEFAULT_PIDS`] when
    /// unset, unless the launch context says otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pids: Option<u64>,
    /// CPU quota as a number of CPUs (0.5 = half of one CPU).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpus: Option<f64>,
    /// Relative CPU weight, 1..10000 (100 is the default share).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_weight: Option<u32>,
    /// Relative I/O weight, 1..10000, where the io/blkio controller has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub io_weight: Option<u32>,
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
    /// Start from the caller's environment (then apply `env` and `unset_env`).
    /// Off by default: the workload sees only `env`.
    pub inherit_env: bool,
    pub env: BTreeMap<String, String>,
    pub unset_env: Vec<String>,
    /// Working directory inside the sandbox.
    pub cwd: String,
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
}

impl Default for Process {
    fn default() -> Self {
        Process {
            args: Vec::new(),
            inherit_env: false,
            env: BTreeMap::new(),
            unset_env: Vec::new(),
            cwd: "/".into(),
            uid: None,
            gid: None,
            groups: Vec::new(),
            rlimits: Vec::new(),
            no_new_privs: true,
            terminal: false,
            personality: None,
        }
    }
}

/// One resource limit (`setrlimit`), applied to the workload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rlimit {
    /// `nofile`, `nproc`, `core`, `cpu`, `data`, `fsize`, `memlock`, `stack`, `as`, ...
    pub resource: String,
    pub soft: u64,
    pub hard: u64,
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
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub join: BTreeMap<String, String>,
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

/// The sandbox's root and what is mounted in it, in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Filesystem {
    pub root: Root,
    pub mounts: Vec<Mount>,
    /// Paths hidden after the mounts are made (OCI maskedPaths): a file gets
    /// `/dev/null` over it, a directory an empty read-only tmpfs.
    pub masked_paths: Vec<String>,
    /// Paths made read-only after the mounts (OCI readonlyPaths).
    pub readonly_paths: Vec<String>,
    /// Destinations (`/` for a directory root, or a bind's destination)
    /// shown with their host ownership through the sandbox's user
    /// namespace (an idmapped mount): the host's root-owned files are
    /// sandbox root's there, and what sandbox root writes is the host
    /// root's. Needs a root caller and a user namespace.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub idmap: Vec<String>,
    /// Whose files a root caller's writable binds show and write.
    #[serde(skip_serializing_if = "BindOwner::is_caller")]
    pub bind_owner: BindOwner,
    /// Device nodes made in the sandbox after the mounts (OCI's
    /// `linux.devices`). A root caller gets a node of the sandbox's own,
    /// with the mode and owner asked (made by host root on a private
    /// tmpfs and bound in: mknod is not allowed in a user namespace); a
    /// rootless caller gets the host's node of that number at `path`,
    /// bound as it is.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<Device>,
}

/// How a root caller's writable binds meet the sandbox's user namespace.
///
/// Sandbox root is an unprivileged host id, so without help it could not
/// write the caller's own root-owned directory it was given. With `caller`
/// each writable bind is an idmapped mount that maps only the caller's uid
/// and gid onto the workload's: the caller's files are the workload's, what
/// the workload creates is the caller's on the host, and every other host
/// id stays unmapped (nobody, not writable). Rootless callers need none of
/// this: their own id already is the workload's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BindOwner {
    #[default]
    Caller,
    /// Ids pass unchanged, as runc does: the host's permission bits judge
    /// the sandbox's (unprivileged) ids.
    AsIs,
}

impl BindOwner {
    pub fn is_caller(&self) -> bool {
        *self == BindOwner::Caller
    }
}

impl SandboxSpec {
    /// Are a root caller's writable binds written as the caller (see
    /// [`BindOwner`])? Only root may idmap a mount, and only in a user
    /// namespace of the sandbox's own is the workload another host id.
    pub fn binds_written_as_caller(&self, root_caller: bool) -> bool {
        root_caller && self.namespaces.user && self.filesystem.bind_owner == BindOwner::Caller
    }
}

impl Filesystem {
    /// The destination of `m` if it is a bind written as the caller (when
    /// [`SandboxSpec::binds_written_as_caller`]): writable, and not one
    /// shown with host ownership (`idmap`).
    pub fn caller_bind<'a>(&self, m: &'a Mount) -> Option<&'a str> {
        match m {
            Mount::Bind {
                destination,
                readonly: false,
                ..
            } if !self.idmap.contains(destination) => Some(destination),
            _ => None,
        }
    }

    /// What an `idmap` entry names: `Some(writable)` for a directory root
    /// (`/`) or a bind's destination, `None` for anything else.
    pub fn idmap_target(&self, d: &str) -> Option<bool> {
        if let (Root::Path { readonly, .. }, "/") = (&self.root, d) {
            return Some(!readonly);
        }
        self.mounts.iter().find_map(|m| match m {
            Mount::Bind {
                destination,
                readonly,
                ..
            } if destination == d => Some(!readonly),
            _ => None,
        })
    }
}

/// OCI's default masked paths (runtime-spec, config-linux.md).
pub const DEFAULT_MASKED_PATHS: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// OCI's default read-only paths.
pub const DEFAULT_READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

impl Default for Filesystem {
    fn default() -> Self {
        Filesystem {
            root: Root::default(),
            mounts: Vec::new(),
            masked_paths: DEFAULT_MASKED_PATHS.iter().map(|s| s.to_string()).collect(),
            readonly_paths: DEFAULT_READONLY_PATHS
                .iter()
                .map(|s| s.to_string())
                .collect(),
            idmap: Vec::new(),
            bind_owner: BindOwner::Caller,
            devices: Vec::new(),
        }
    }
}

/// The sandbox's `/`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Root {
    /// A fresh tmpfs assembled from the mounts; made read-only once assembled
    /// unless `readonly` is false.
    Tmpfs {
        #[serde(default = "yes")]
        readonly: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        size: Option<Size>,
    },
    /// A directory of the host (an unpacked image, a debootstrap tree).
    Path {
        path: String,
        #[serde(default)]
        readonly: bool,
    },
    /// Read-only host directories (topmost first) under a writable layer:
    /// a tmpfs of at most `size` that vanishes with the sandbox, or the
    /// persistent directory `upper` (its `upper/` and `work/` are used).
    Overlay {
        lower: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        upper: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        size: Option<Size>,
    },
}

fn yes() -> bool {
    true
}

fn is_yes(b: &bool) -> bool {
    *b
}

impl Default for Root {
    fn default() -> Self {
        Root::Tmpfs {
            readonly: true,
            size: None,
        }
    }
}

/// One entry of the mount plan, applied in order inside the new root.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Mount {
    /// A host path bound into the sandbox; read-only unless `readonly` is false.
    /// `devices` keeps device nodes usable (bubblewrap's `--dev-bind`);
    /// `noexec` forbids executing its files; `recursive` (the default)
    /// takes the mounts below the source along, as `rbind` does, while a
    /// plain `bind` shows the source's own filesystem only.
    Bind {
        source: String,
        destination: String,
        #[serde(default = "yes")]
        readonly: bool,
        #[serde(default)]
        devices: bool,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        noexec: bool,
        #[serde(default = "yes", skip_serializing_if = "is_yes")]
        recursive: bool,
    },
    /// A fresh tmpfs (nosuid, nodev); `readonly` once made (empty unless
    /// something is mounted on it), `noexec` forbids executing its files.
    Tmpfs {
        destination: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        size: Option<Size>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mode: Option<FileMode>,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        readonly: bool,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        noexec: bool,
    },
    /// A fresh procfs of the sandbox's PID namespace.
    Proc {
        destination: String,
    },
    /// A minimal /dev: null zero full random urandom tty, a private devpts,
    /// shm, and the fd/stdin/stdout/stderr links.
    Dev {
        destination: String,
    },
    Mqueue {
        destination: String,
    },
    /// A read-only sysfs of the sandbox's network namespace (it needs one
    /// of its own).
    Sysfs {
        destination: String,
    },
    Dir {
        destination: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mode: Option<FileMode>,
    },
    File {
        destination: String,
        content: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mode: Option<FileMode>,
    },
    Symlink {
        target: String,
        destination: String,
    },
}

impl Mount {
    pub fn destination(&self) -> &str {
        match self {
            Mount::Bind { destination, .. }
            | Mount::Tmpfs { destination, .. }
            | Mount::Proc { destination }
            | Mount::Dev { destination }
            | Mount::Mqueue { destination }
            | Mount::Sysfs { destination }
            | Mount::Dir { destination, .. }
            | Mount::File { destination, .. }
            | Mount::Symlink { destination, .. } => destination,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Mount::Bind { .. } => "bind",
            Mount::Tmpfs { .. } => "tmpfs",
            Mount::Proc { .. } => "proc",
            Mount::Dev { .. } => "dev",
            Mount::Mqueue { .. } => "mqueue",
            Mount::Sysfs { .. } => "sysfs",
            Mount::Dir { .. } => "dir",
            Mount::File { .. } => "file",
            Mount::Symlink { .. } => "symlink",
        }
    }
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
    /// The two values are offsets from the host's clocks (OCI's
    /// `linux.timeOffsets`) rather than what the sandbox's clocks read
    /// when it starts.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub offsets: bool,
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

/// The host's system directories that the default view binds read-only.
pub const SYSTEM_DIRS: &[&str] = &[
    "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc",
];

/// The least-privilege default view, as mounts: the host's system
/// directories read-only (a merged-/usr symlink such as `/bin -> usr/bin`
/// becomes the same symlink), a fresh /proc, a minimal /dev and a private
/// /tmp. Nothing else of the host: no /home, /root, /var, /run or cwd.
///
/// Reads the host's `/` to see which system directories exist and which are
/// symlinks; that is the only I/O in this module.
pub fn default_view() -> Vec<Mount> {
    let mut mounts = Vec::new();
    for dir in SYSTEM_DIRS {
        match std::fs::symlink_metadata(dir) {
            Ok(m) if m.file_type().is_symlink() => {
                if let Ok(target) = std::fs::read_link(dir) {
                    mounts.push(Mount::Symlink {
                        target: target.to_string_lossy().into_owned(),
                        destination: dir.to_string(),
                    });
                }
            }
            Ok(m) if m.is_dir() => mounts.push(Mount::Bind {
                source: dir.to_string(),
                destination: dir.to_string(),
                readonly: true,
                devices: false,
                noexec: false,
                recursive: true,
            }),
            _ => {}
        }
    }
    mounts.push(Mount::Proc {
        destination: "/proc".into(),
    });
    mounts.push(Mount::Dev {
        destination: "/dev".into(),
    });
    mounts.push(Mount::Tmpfs {
        destination: "/tmp".into(),
        size: None,
        mode: Some(FileMode(0o1777)),
        readonly: false,
        noexec: false,
    });
    mounts
}
