//! The sandbox's filesystem, resolved: its root and the ordered steps that
//! build the tree on it. The runner walks the steps in order and decides
//! nothing; the order is the one the kernel needs (every mount before the
//! masks and read-only remounts that cover it, /dev sealed only once
//! nothing more needs a mountpoint in it, the root made read-only last).

use crate::spec::{Filesystem, IdMap, Mount, Root, SandboxSpec, Size};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FsPlan {
    pub root: Root,
    pub steps: Vec<MountStep>,
    /// A directory root shown with host ownership (idmapped).
    #[serde(default)]
    pub idmap_root: bool,
    /// A writable directory root written as the caller, as the binds
    /// idmapped with `Idmap::Caller` are.
    #[serde(default)]
    pub root_for_caller: bool,
    /// The maps of the binds idmapped for the caller (`Idmap::Caller`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller_maps: Option<CallerMaps>,
    /// How many of the first steps are the spec's `filesystem.mounts`,
    /// one each, and how many after them its `filesystem.devices`: an
    /// error names the field (`step_name`), which a CLI renames to the
    /// flag the user typed.
    #[serde(default)]
    pub spec_mounts: usize,
    #[serde(default)]
    pub spec_devices: usize,
    /// Held locked by our init once the sandbox is set up.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lock_files: Vec<String>,
}

impl FsPlan {
    /// Step `i`'s name in errors: what it does, and the spec field it
    /// came from (`mount /x (filesystem.mounts[3])`).
    pub fn step_name(&self, i: usize) -> String {
        let what = self.steps[i].describe();
        match self.field(i) {
            Some(field) => format!("{what} ({field})"),
            None => what,
        }
    }

    /// Does PID 1 open overlay layers (the root's or a mount's), which it
    /// judges again as it opens them?
    pub fn has_overlays(&self) -> bool {
        matches!(self.root, Root::Overlay { .. })
            || self
                .steps
                .iter()
                .any(|s| matches!(s, MountStep::Overlay { .. }))
    }

    /// Does the workload write to a host directory through an overlay
    /// (the root's `upper`, a mount's `upper_dir`), where what it makes
    /// stays after the sandbox?
    pub fn has_persistent_upper(&self) -> bool {
        matches!(self.root, Root::Overlay { upper: Some(_), .. })
            || self.steps.iter().any(|s| {
                matches!(
                    s,
                    MountStep::Overlay {
                        upper_dir: Some(_),
                        ..
                    }
                )
            })
    }

    /// Whether the workload writes host files with the sandbox's own ids
    /// (not idmapped for the caller): a persistent overlay upper, a
    /// writable bind or a writable directory root kept as the host has it.
    pub fn writes_to_host(&self) -> bool {
        let root = matches!(
            self.root,
            Root::Path {
                readonly: false,
                ..
            }
        ) && !self.root_for_caller;
        root || self.has_persistent_upper()
            || self.steps.iter().any(|s| {
                matches!(
                    s,
                    MountStep::Bind {
                        readonly: false,
                        idmap: Idmap::None,
                        ..
                    }
                )
            })
    }

    /// The spec field step `i` came from, when it came from one.
    pub fn field(&self, i: usize) -> Option<String> {
        if i < self.spec_mounts {
            Some(format!("filesystem.mounts[{i}]"))
        } else if i - self.spec_mounts < self.spec_devices {
            Some(format!("filesystem.devices[{}]", i - self.spec_mounts))
        } else {
            None
        }
    }
}

/// The id maps of a bind that shows the caller's files as the workload's:
/// one uid and one gid, each from the caller's host id (on disk) to the
/// host id the workload runs as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallerMaps {
    pub uid: IdMap,
    pub gid: IdMap,
}

/// How a bind's ids meet the sandbox's user namespace.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Idmap {
    /// As they are on disk.
    #[default]
    None,
    /// Through the sandbox's own user namespace: every host id is shown
    /// as the sandbox id it maps from (`filesystem.idmap`).
    Host,
    /// Through `FsPlan::caller_maps`: the caller's files are the
    /// workload's, nothing else is mapped.
    Caller,
}

/// One step of building the mount tree, in the sandbox's paths. Tagged
/// externally, for the reason `Job` says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MountStep {
    /// A host path, opened and judged again by the runner before setup.
    Bind {
        source: String,
        destination: String,
        readonly: bool,
        /// Device nodes stay usable (no MOUNT_ATTR_NODEV).
        devices: bool,
        #[serde(default)]
        idmap: Idmap,
        /// MOUNT_ATTR_NOEXEC.
        #[serde(default)]
        noexec: bool,
        /// The mounts below the source come along (`rbind`).
        #[serde(default = "yes")]
        recursive: bool,
    },
    Tmpfs {
        destination: String,
        size: Option<Size>,
        mode: u32,
        #[serde(default)]
        readonly: bool,
        #[serde(default)]
        noexec: bool,
        /// Filled with a copy of what the destination held (tmpcopyup).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        copy_up: bool,
    },
    /// A fresh procfs of the sandbox's PID namespace.
    Proc {
        destination: String,
    },
    /// The host's /proc, bound: in the host's PID namespace a new procfs
    /// needs privilege over that namespace, which a user namespace does
    /// not give, and sharing the PID namespace means seeing its /proc.
    HostProc {
        destination: String,
    },
    /// A minimal /dev (see `runner::dev`).
    Dev {
        destination: String,
    },
    /// A device node: a root caller's is made on the host side (on a
    /// private tmpfs, mode and owner as asked, the owner's ids those
    /// inside), a rootless caller's is the host's node at `destination`;
    /// either is bound in.
    Device {
        destination: String,
        kind: crate::spec::DeviceKind,
        major: u32,
        minor: u32,
        mode: u32,
        uid: u32,
        gid: u32,
    },
    Mqueue {
        destination: String,
    },
    /// Read-only, of the sandbox's own network namespace.
    Sysfs {
        destination: String,
    },
    /// The sandbox's own cgroup directories, cloned read-only by whoever
    /// clones the bind sources (`runner::sources`).
    Cgroup {
        destination: String,
    },
    Dir {
        destination: String,
        mode: Option<u32>,
        /// `mode` for one already there too (`--chmod`).
        chmod: bool,
    },
    File {
        destination: String,
        content: String,
        mode: u32,
        /// Bound over `destination` from a file of its own, not written
        /// there.
        bind: bool,
        /// `mode` for one already there too (`--chmod`).
        chmod: bool,
    },
    Symlink {
        destination: String,
        target: String,
    },
    /// The mount at `destination` made read-only, not the ones below it;
    /// it must be a mount point.
    RemountReadOnly {
        destination: String,
    },
    /// An overlay of host directories (their fds opened and judged again
    /// before the staging pivot), writable on a tmpfs or in `upper_dir`
    /// (with `work_dir`), or read-only.
    Overlay {
        destination: String,
        lower: Vec<String>,
        writable: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        size: Option<Size>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        upper_dir: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        work_dir: Option<String>,
    },
    /// An OCI masked path: an empty read-only tmpfs over a directory, the
    /// null device over a file; nothing when it does not exist.
    Mask {
        path: String,
    },
    /// An OCI read-only path (nothing when it does not exist).
    ReadOnly {
        path: String,
    },
    /// A /dev tmpfs made read-only; its device binds, pts and shm are
    /// mounts of their own and keep their modes.
    SealDev {
        destination: String,
    },
    /// The root mount made read-only (not recursively: binds keep what
    /// they asked for).
    ReadOnlyRoot,
}

fn yes() -> bool {
    true
}

impl MountStep {
    /// One of the protections, which come after every other step (see
    /// `resolve`): the runner applies them after the hooks.
    pub fn protects(&self) -> bool {
        matches!(
            self,
            MountStep::Mask { .. }
                | MountStep::ReadOnly { .. }
                | MountStep::SealDev { .. }
                | MountStep::ReadOnlyRoot
        )
    }

    /// Where a step that mounts something mounts it.
    pub fn mountpoint(&self) -> Option<&str> {
        match self {
            MountStep::Bind { destination, .. }
            | MountStep::Tmpfs { destination, .. }
            | MountStep::Proc { destination }
            | MountStep::HostProc { destination }
            | MountStep::Dev { destination }
            | MountStep::Device { destination, .. }
            | MountStep::Mqueue { destination }
            | MountStep::Sysfs { destination }
            | MountStep::Cgroup { destination }
            | MountStep::Overlay { destination, .. } => Some(destination),
            _ => None,
        }
    }

    /// The step's name in progress messages and errors.
    pub fn describe(&self) -> String {
        if let Some(d) = self.mountpoint() {
            return format!("mount {d}");
        }
        match self {
            MountStep::Dir { destination, .. } => format!("dir {destination}"),
            MountStep::File { destination, .. } => format!("file {destination}"),
            MountStep::Symlink { destination, .. } => format!("symlink {destination}"),
            MountStep::RemountReadOnly { destination } => {
                format!("remount {destination} read-only")
            }
            MountStep::Mask { path } => format!("mask {path}"),
            MountStep::ReadOnly { path } => format!("read-only {path}"),
            MountStep::SealDev { destination } => format!("make {destination} read-only"),
            MountStep::ReadOnlyRoot => "make / read-only".into(),
            _ => unreachable!("mounts are named above"),
        }
    }
}

/// The filesystem of a valid spec, for a sandbox with (`own_pid`) or
/// without a PID namespace of its own. `caller_maps`: the maps of a root
/// caller's writable binds, when they need one (see `caller_maps`).
pub fn resolve(spec: &SandboxSpec, own_pid: bool, caller_maps: Option<CallerMaps>) -> FsPlan {
    let fs = &spec.filesystem;
    let mut steps: Vec<MountStep> = fs
        .mounts
        .iter()
        .map(|m| step(m, own_pid, fs, caller_maps.is_some()))
        .collect();
    // After the mounts: their /dev is where the nodes go.
    steps.extend(fs.devices.iter().map(|d| MountStep::Device {
        destination: d.path.clone(),
        kind: d.kind,
        major: d.major,
        minor: d.minor,
        mode: d.mode.map_or(0o666, |m| m.0),
        uid: d.uid.unwrap_or(0),
        gid: d.gid.unwrap_or(0),
    }));
    // The OCI paths name /proc and /sys; every other procfs and sysfs in
    // the sandbox hides and protects the same files.
    let others = |kind: &str, home: &str| -> Vec<&str> {
        fs.mounts
            .iter()
            .filter_map(|m| match m {
                Mount::Proc { destination } | Mount::Sysfs { destination }
                    if m.kind() == kind && destination.trim_end_matches('/') != home =>
                {
                    Some(destination.as_str())
                }
                _ => None,
            })
            .collect()
    };
    let (procs, sysfs) = (others("proc", "/proc"), others("sysfs", "/sys"));
    let everywhere = |paths: &[String]| -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for p in paths {
            // As the kernel reads it: `//proc/kcore` is /proc's kcore too,
            // and written so, or the runner would not find it beneath the
            // proc mount's own handle and would look it up by path again.
            let p = p
                .split('/')
                .filter(|c| !c.is_empty())
                .collect::<Vec<_>>()
                .join("/");
            let p = format!("/{p}");
            if !out.contains(&p) {
                out.push(p.clone());
            }
            for (prefix, mounts) in [("/proc/", &procs), ("/sys/", &sysfs)] {
                if let Some(rest) = p.strip_prefix(prefix) {
                    out.extend(
                        mounts
                            .iter()
                            .map(|d| format!("{}/{rest}", d.trim_end_matches('/'))),
                    );
                }
            }
        }
        out
    };
    steps.extend(
        everywhere(&fs.masked_paths)
            .into_iter()
            .map(|path| MountStep::Mask { path }),
    );
    steps.extend(
        everywhere(&fs.readonly_paths)
            .into_iter()
            .map(|path| MountStep::ReadOnly { path }),
    );
    // After every mount: an mqueue or a bind may have needed a mountpoint
    // in a /dev.
    steps.extend(fs.mounts.iter().filter_map(|m| match m {
        Mount::Dev { destination } => Some(MountStep::SealDev {
            destination: destination.clone(),
        }),
        _ => None,
    }));
    let readonly_root = match &fs.root {
        Root::Tmpfs { readonly, .. } | Root::Path { readonly, .. } => *readonly,
        Root::Overlay { .. } => false,
    };
    if readonly_root {
        steps.push(MountStep::ReadOnlyRoot);
    }
    let root_for_caller = caller_maps.is_some() && fs.caller_root();
    let for_caller = root_for_caller
        || steps.iter().any(|s| {
            matches!(
                s,
                MountStep::Bind {
                    idmap: Idmap::Caller,
                    ..
                }
            )
        });
    FsPlan {
        root: fs.root.clone(),
        steps,
        idmap_root: fs.idmap.iter().any(|d| d == "/"),
        root_for_caller,
        caller_maps: caller_maps.filter(|_| for_caller),
        spec_mounts: fs.mounts.len(),
        spec_devices: fs.devices.len(),
        lock_files: fs.lock_files.clone(),
    }
}

/// The maps that show a root caller's files as the workload's in its
/// writable binds: needed when the caller asked for it (the default), is
/// root (only root may idmap a mount), and the workload is another host
/// id (in a user namespace of its own whose maps do not make the workload
/// the caller).
pub fn caller_maps(
    spec: &SandboxSpec,
    caller: super::Caller,
    ids: &super::ids::Ids,
) -> Option<CallerMaps> {
    if !spec.binds_written_as_caller(caller.is_root()) {
        return None;
    }
    let uid = crate::spec::host_id(&ids.uid_map, ids.uid)?;
    let gid = crate::spec::host_id(&ids.gid_map, ids.gid)?;
    if (uid, gid) == (caller.uid, caller.gid) {
        return None;
    }
    let one = |inside, outside| IdMap {
        inside,
        outside,
        count: 1,
    };
    Some(CallerMaps {
        uid: one(caller.uid, uid),
        gid: one(caller.gid, gid),
    })
}

fn step(m: &Mount, own_pid: bool, fs: &Filesystem, for_caller: bool) -> MountStep {
    let destination = m.destination().to_string();
    match m {
        Mount::Bind {
            source,
            readonly,
            devices,
            noexec,
            recursive,
            ..
        } => MountStep::Bind {
            source: source.clone(),
            idmap: if fs.idmap.contains(&destination) {
                Idmap::Host
            } else if for_caller && fs.caller_bind(m).is_some() {
                Idmap::Caller
            } else {
                Idmap::None
            },
            destination,
            readonly: *readonly,
            devices: *devices,
            noexec: *noexec,
            recursive: *recursive,
        },
        Mount::Tmpfs {
            size,
            mode,
            readonly,
            noexec,
            copy_up,
            ..
        } => MountStep::Tmpfs {
            destination,
            size: *size,
            mode: mode.map_or(0o755, |m| m.0),
            readonly: *readonly,
            noexec: *noexec,
            copy_up: *copy_up,
        },
        Mount::Proc { .. } if own_pid => MountStep::Proc { destination },
        Mount::Proc { .. } => MountStep::HostProc { destination },
        Mount::Dev { .. } => MountStep::Dev { destination },
        Mount::Mqueue { .. } => MountStep::Mqueue { destination },
        Mount::Sysfs { .. } => MountStep::Sysfs { destination },
        Mount::Cgroup { .. } => MountStep::Cgroup { destination },
        Mount::Dir { mode, chmod, .. } => MountStep::Dir {
            destination,
            mode: mode.map(|m| m.0),
            chmod: *chmod,
        },
        Mount::File {
            content,
            mode,
            bind,
            chmod,
            ..
        } => MountStep::File {
            destination,
            content: content.clone(),
            mode: mode.map_or(0o644, |m| m.0),
            bind: *bind,
            chmod: *chmod,
        },
        Mount::Symlink { target, .. } => MountStep::Symlink {
            destination,
            target: target.clone(),
        },
        Mount::RemountReadOnly { .. } => MountStep::RemountReadOnly { destination },
        Mount::Overlay {
            lower,
            writable,
            size,
            upper_dir,
            work_dir,
            ..
        } => MountStep::Overlay {
            destination,
            lower: lower.clone(),
            writable: *writable,
            size: *size,
            upper_dir: upper_dir.clone(),
            work_dir: work_dir.clone(),
        },
    }
}

/// The sandbox paths the workload may write beneath: writable binds,
/// tmpfs, /dev, /proc, mqueue mounts, device nodes, and `/` when the root
/// is writable.
///
/// Landlock only grants: a path's rights cover everything beneath it,
/// across mount points, so a read-only mount below a writable one (a
/// read-only bind in a writable root or tmpfs) is held by its mount flag
/// alone. Splitting the rights around it would leave a file made beside
/// it unwritable.
pub fn writable_paths(spec: &SandboxSpec) -> Vec<String> {
    // Each with whether a remount of it takes its rule away.
    let mut out: Vec<(String, bool)> = Vec::new();
    let writable_root = match spec.filesystem.root {
        Root::Path { readonly, .. } | Root::Tmpfs { readonly, .. } => !readonly,
        Root::Overlay { .. } => true,
    };
    if writable_root {
        out.push(("/".to_string(), true));
    }
    for m in &spec.filesystem.mounts {
        match m {
            // /dev holds mounts of its own (/dev/shm, /dev/pts) and
            // device nodes, which no rule of theirs covers and which stay
            // writable when /dev is remounted: its rule stays.
            Mount::Dev { destination }
            | Mount::Proc { destination }
            | Mount::Mqueue { destination } => out.push((destination.clone(), false)),
            Mount::Bind {
                readonly: false,
                destination,
                ..
            }
            | Mount::Tmpfs {
                destination,
                readonly: false,
                ..
            }
            | Mount::Overlay {
                destination,
                writable: true,
                ..
            }
            // A file of its own (--bind-data; --ro-bind-data's is a
            // read-only path too, which the mount itself enforces).
            | Mount::File {
                destination,
                bind: true,
                ..
            } => out.push((destination.clone(), true)),
            // A remount makes that one mount read-only (those beneath it
            // keep their own flags, and their own rules), so its rule
            // goes: `--tmpfs X --remount-ro X` is read-only to both walls.
            Mount::RemountReadOnly { destination } => {
                out.retain(|(p, removable)| !removable || p != destination)
            }
            _ => {}
        }
    }
    let mut out: Vec<String> = out.into_iter().map(|(p, _)| p).collect();
    // Each node is bound on its own after the mounts, writable: one that
    // no writable mount holds (a spec whose /dev is a directory of a
    // read-only root) would otherwise be read-only to Landlock, and its
    // ioctls refused.
    out.extend(spec.filesystem.devices.iter().map(|d| d.path.clone()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fuse() -> crate::spec::Device {
        crate::spec::Device {
            path: "/dev/fuse".into(),
            kind: crate::spec::DeviceKind::Char,
            major: 10,
            minor: 229,
            mode: None,
            uid: None,
            gid: None,
        }
    }

    #[test]
    fn steps_keep_the_spec_order_then_protect() {
        let spec = crate::SandboxSpec::builder()
            .args(["true"])
            .default_view()
            .ro_bind("/srv/ro", "/ro")
            .build();
        let fs = resolve(&spec, true, None);
        let names: Vec<String> = fs.steps.iter().map(MountStep::describe).collect();
        let at = |s: &str| {
            names
                .iter()
                .position(|n| n == s)
                .unwrap_or_else(|| panic!("{s} in {names:?}"))
        };
        assert!(at("mount /proc") < at("mount /ro"));
        assert!(at("mount /ro") < at("mask /proc/kcore"));
        assert!(at("mask /proc/kcore") < at("make /dev read-only"));
        assert_eq!(names.last().unwrap(), "make / read-only");
        // The runner applies the protections after the hooks: they are
        // all last.
        let first = fs.steps.iter().position(MountStep::protects).unwrap();
        assert!(
            fs.steps[first..].iter().all(MountStep::protects),
            "{names:?}"
        );
        let proc = at("mount /proc");
        assert!(matches!(fs.steps[proc], MountStep::Proc { .. }));
        assert!(matches!(
            resolve(&spec, false, None).steps[proc],
            MountStep::HostProc { .. }
        ));
    }

    #[test]
    fn every_proc_mount_is_masked_like_proc() {
        let mut spec = crate::SandboxSpec::builder()
            .args(["true"])
            .default_view()
            .build();
        spec.filesystem.mounts.push(Mount::Proc {
            destination: "/p".into(),
        });
        let names: Vec<String> = resolve(&spec, true, None)
            .steps
            .iter()
            .map(MountStep::describe)
            .collect();
        for want in ["mask /proc/kcore", "mask /p/kcore", "read-only /p/sys"] {
            assert!(names.iter().any(|n| n == want), "{want} in {names:?}");
        }
    }

    #[test]
    fn device_nodes_come_after_the_mounts_and_before_dev_is_sealed() {
        let mut spec = crate::SandboxSpec::builder()
            .args(["true"])
            .default_view()
            .build();
        spec.filesystem.devices.push(fuse());
        let fs = resolve(&spec, true, None);
        let names: Vec<String> = fs.steps.iter().map(MountStep::describe).collect();
        let at = |s: &str| names.iter().position(|n| n == s).unwrap();
        assert!(at("mount /tmp") < at("mount /dev/fuse"));
        assert!(at("mount /dev/fuse") < at("make /dev read-only"));
        assert!(matches!(
            fs.steps[at("mount /dev/fuse")],
            MountStep::Device {
                mode: 0o666,
                uid: 0,
                gid: 0,
                ..
            }
        ));
    }

    #[test]
    fn a_writable_root_is_not_made_read_only() {
        let spec = crate::SandboxSpec::builder()
            .args(["true"])
            .rootfs("/srv/root", false)
            .build();
        assert!(!resolve(&spec, true, None)
            .steps
            .contains(&MountStep::ReadOnlyRoot));
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
    fn a_remounted_path_is_not_writable_and_a_device_is() {
        let mut spec = crate::SandboxSpec::builder()
            .args(["true"])
            .default_view()
            .tmpfs("/scratch", None)
            .build();
        spec.filesystem.mounts.push(Mount::RemountReadOnly {
            destination: "/scratch".into(),
        });
        spec.filesystem.mounts.push(Mount::RemountReadOnly {
            destination: "/".into(),
        });
        // /dev's own mounts and nodes have no rules of theirs: it keeps
        // its rule through a remount.
        spec.filesystem.mounts.push(Mount::RemountReadOnly {
            destination: "/dev".into(),
        });
        spec.filesystem.devices.push(fuse());
        assert_eq!(
            writable_paths(&spec),
            ["/proc", "/dev", "/tmp", "/dev/fuse"]
        );
    }
}
