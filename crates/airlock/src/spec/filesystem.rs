//! The filesystem part of a spec: the sandbox's root, its mounts in
//! order, the paths masked or made read-only after them, and the default
//! least-privilege view of the host.

use super::{Device, FileMode, SandboxSpec, Size};
use serde::{Deserialize, Serialize};

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
    /// Files in the sandbox that its init opens and holds a read lock on
    /// (`fcntl`) while the sandbox runs, so that a process outside can
    /// tell it still runs by failing to take a write lock on the same
    /// file (bubblewrap's `--lock-file`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub lock_files: Vec<String>,
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

    /// Whether the root is a writable host directory written as the
    /// caller, as a writable bind is (when
    /// [`SandboxSpec::binds_written_as_caller`]): `--bind DIR /`.
    pub fn caller_root(&self) -> bool {
        matches!(
            self.root,
            Root::Path {
                readonly: false,
                ..
            }
        ) && !self.idmap.iter().any(|d| d == "/")
    }

    /// The first place written as the caller: a writable directory root
    /// (`/`), else the first such bind's destination.
    pub fn first_caller_write(&self) -> Option<&str> {
        if self.caller_root() {
            return Some("/");
        }
        self.mounts.iter().find_map(|m| self.caller_bind(m))
    }

    /// What an `idmap` entry names: the host path and whether it is
    /// writable, of the directory root (for `/`) and of every bind onto
    /// that destination, all of which are idmapped; empty when it names
    /// nothing.
    pub fn idmapped(&self, d: &str) -> Vec<(&str, bool)> {
        let root = match (&self.root, d) {
            (Root::Path { path, readonly, .. }, "/") => Some((path.as_str(), !readonly)),
            _ => None,
        };
        let binds = self.mounts.iter().filter_map(|m| match m {
            Mount::Bind {
                source,
                destination,
                readonly,
                ..
            } if destination == d => Some((source.as_str(), !readonly)),
            _ => None,
        });
        root.into_iter().chain(binds).collect()
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
            lock_files: Vec::new(),
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
        /// With `readonly`: make the mount points the directory lacks in
        /// it (host root makes them, for a root caller) before it is made
        /// read-only, as runc does with a bundle's rootfs. Without it, a
        /// read-only directory is never written: a missing mount point
        /// is an error, as it is for bubblewrap's `--ro-bind DIR /`.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        make_mountpoints: bool,
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
    /// A fresh tmpfs (nosuid, nodev); `readonly` once made and filled,
    /// `noexec` forbids executing its files. It starts empty, unless
    /// `copy_up` (podman's `tmpcopyup`) fills it with a copy of what the
    /// destination held before it: directories, files, symlinks and FIFOs
    /// with their modes, owners and times, a symlink copied as a link and
    /// never followed.
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
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        copy_up: bool,
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
    /// The sandbox's own cgroups, read-only (OCI's `cgroup` mount), so the
    /// workload can read its limits and usage: its cgroup v2 directory at
    /// `destination` when that is its only one, or with v1 cgroups a
    /// read-only tmpfs holding each at `destination/<controller>` (its v2
    /// one at `destination/unified`). Nothing above the sandbox's own
    /// cgroups is shown; a sandbox without cgroups gets an empty
    /// read-only directory. At most one per spec.
    Cgroup {
        destination: String,
    },
    Dir {
        destination: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mode: Option<FileMode>,
        /// Give `mode` to a directory already there too (bubblewrap's
        /// `--chmod`); without it only one made here gets it.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        chmod: bool,
    },
    /// A file with `content` at `destination`: written there, or with
    /// `bind`, a file of its own bound over it (made if missing), as
    /// bubblewrap's `--bind-data`: whatever is at `destination` is not
    /// written, so a read-only /etc can get its own passwd and a host
    /// file under a writable bind stays as it is.
    File {
        destination: String,
        content: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mode: Option<FileMode>,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        bind: bool,
        /// Give `mode` to a file already there too (bubblewrap's
        /// `--chmod`); without it only one made here gets it.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        chmod: bool,
    },
    Symlink {
        target: String,
        destination: String,
    },
    /// The mount at `destination`, made by an earlier entry (or the
    /// image), made read-only at this point in the order; the mounts below
    /// it keep what they are (bubblewrap's `--remount-ro`). A path that is
    /// not a mount point fails the start.
    #[serde(rename = "remount-ro")]
    RemountReadOnly {
        destination: String,
    },
    /// An overlay of read-only host directories (`lower`, topmost first)
    /// at `destination` (bubblewrap's `--overlay-src` with `--tmp-overlay`
    /// or `--ro-overlay`): with `writable`, under a tmpfs upper layer of at
    /// most `size` that vanishes with the sandbox, so writes never reach
    /// the host; without, read-only (two layers at least, as overlayfs
    /// wants without an upper layer). With `upper_dir` and `work_dir`
    /// (overlayfs's own upperdir and workdir, two directories of the host
    /// on one filesystem; bubblewrap's `--overlay RWSRC WORKDIR DEST`),
    /// writable with the writes kept in `upper_dir`: each is made if
    /// missing, and must be a directory of the sandbox's root as the host
    /// sees it (or of the caller) that no other user may write.
    Overlay {
        destination: String,
        lower: Vec<String>,
        #[serde(default)]
        writable: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        size: Option<Size>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        upper_dir: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        work_dir: Option<String>,
    },
}

impl Mount {
    /// Does it put a mount at its destination (rather than make a
    /// directory, file or link there, or remount what is there)?
    pub fn mounts(&self) -> bool {
        match self {
            Mount::Dir { .. } | Mount::Symlink { .. } | Mount::RemountReadOnly { .. } => false,
            Mount::File { bind, .. } => *bind,
            _ => true,
        }
    }

    pub fn destination(&self) -> &str {
        match self {
            Mount::Bind { destination, .. }
            | Mount::Tmpfs { destination, .. }
            | Mount::Proc { destination }
            | Mount::Dev { destination }
            | Mount::Mqueue { destination }
            | Mount::Sysfs { destination }
            | Mount::Cgroup { destination }
            | Mount::Dir { destination, .. }
            | Mount::File { destination, .. }
            | Mount::Symlink { destination, .. }
            | Mount::RemountReadOnly { destination }
            | Mount::Overlay { destination, .. } => destination,
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
            Mount::Cgroup { .. } => "cgroup",
            Mount::Dir { .. } => "dir",
            Mount::File { .. } => "file",
            Mount::Symlink { .. } => "symlink",
            Mount::RemountReadOnly { .. } => "remount-ro",
            Mount::Overlay { .. } => "overlay",
        }
    }
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
    mounts.extend(fresh_view());
    mounts
}

/// The part of the default view that is made fresh, not taken from the
/// host: /proc, a minimal /dev and a private /tmp. A root directory
/// brings its own system files and gets only these.
pub fn fresh_view() -> Vec<Mount> {
    vec![
        Mount::Proc {
            destination: "/proc".into(),
        },
        Mount::Dev {
            destination: "/dev".into(),
        },
        Mount::Tmpfs {
            destination: "/tmp".into(),
            size: None,
            mode: Some(FileMode(0o1777)),
            readonly: false,
            noexec: false,
            copy_up: false,
        },
    ]
}
