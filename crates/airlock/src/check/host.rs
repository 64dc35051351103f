//! The facts about the host the rules judge a spec against, gathered
//! once before [`super::check`] (which does no I/O): where each bind
//! source really leads, the mounts below it, the caller's home, which
//! runtime sockets and state directories exist.

use super::hostids::HostIds;
use super::paths::{canonical, normalize, within};
pub use super::snapshot::Snapshot;
use crate::spec::{Mount, Root, SandboxSpec};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Facts about the host that the rules need, gathered once by [`Host::probe`]
/// so that [`super::check`] itself does no I/O.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Host {
    /// The caller's home directory (canonical), if known.
    pub home: Option<String>,
    /// Host path as written in the spec → the path the kernel will reach.
    pub canonical: BTreeMap<String, String>,
    /// Runtime sockets that exist on this host (canonical paths).
    pub sockets: Vec<String>,
    /// Runtime and orchestrator state directories that exist on this host:
    /// each as [`RUNTIME_STATE`] names it → where it leads (a relocated
    /// /var/lib/docker is a symlink to another disk).
    #[serde(default, deserialize_with = "state_of_any_build")]
    pub state: BTreeMap<String, String>,
    /// Runtime state directories that another mount of their filesystem
    /// shows under a second name (fstab's `/data/docker /var/lib/docker
    /// none bind`): each as [`RUNTIME_STATE`] names it → that name, by
    /// which a bind source reaches it all the same.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub state_elsewhere: BTreeMap<String, Vec<String>>,
    /// Mounts below each bind source (canonical path → mounts under it):
    /// a recursive bind brings them along.
    #[serde(default)]
    pub nested: BTreeMap<String, Vec<NestedMount>>,
    /// Unix sockets a bind source is, or holds at its top (canonical path
    /// → the sockets): whoever listens there acts for the workload.
    #[serde(default)]
    pub sockets_at: BTreeMap<String, Vec<String>>,
    /// Device bind sources outside /dev that may hand over host devices
    /// (canonical path → why; see [`device_nodes_elsewhere`]), probed
    /// once: `exec` judges the plan again with these facts, not with what
    /// is at the path by then.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub device_nodes: BTreeMap<String, String>,
    /// Which host ids are privileged (probed only when the spec shares the
    /// user namespace or writes its own id maps).
    #[serde(default)]
    pub ids: HostIds,
    /// The network namespace the spec joins by path is the caller's own
    /// (the host's, for a caller on the host) or init's.
    #[serde(default)]
    pub joins_own_net: bool,
    /// The IPC namespace the spec joins by path is the caller's own or
    /// init's.
    #[serde(default)]
    pub joins_own_ipc: bool,
    /// The PID namespace the spec joins by path is the caller's own (the
    /// host's, for a caller on the host) or init's.
    #[serde(default)]
    pub joins_own_pid: bool,
    /// The caller is root: its writable binds are shown as its own through
    /// an idmapped mount (`spec::BindOwner::Caller`).
    #[serde(default)]
    pub root_caller: bool,
    /// The caller is uid 0 of a user namespace of one id (`unshare -r`):
    /// that id in the namespace's parent, which a sandbox of its maps.
    #[serde(default)]
    pub namespaced_root_outside: Option<u32>,
    /// Its gid map's ranges, each (first id in the parent, count).
    #[serde(default)]
    pub namespaced_root_gids: Vec<(u32, u32)>,
    /// The caller's image store (canonical): its layers are what later
    /// sandboxes run.
    #[serde(default)]
    pub store: Option<String>,
    /// Sandbox state roots (canonical): the caller's, root's and
    /// airlockd's defaults. What is in them is what `exec`, `attach` and
    /// `rm` act on.
    #[serde(default)]
    pub state_roots: Vec<String>,
}

/// [`Host::state`] as this build writes it, or as a list of the
/// directories that existed (each where its name says), as builds before
/// it wrote the plan of a sandbox that may still be running: `exec` reads
/// that plan.
fn state_of_any_build<'de, D>(d: D) -> Result<BTreeMap<String, String>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        Map(BTreeMap<String, String>),
        List(Vec<String>),
    }
    Ok(match Either::deserialize(d)? {
        Either::Map(m) => m,
        Either::List(l) => l.into_iter().map(|s| (s.clone(), s)).collect(),
    })
}

/// A mount found below a bind source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NestedMount {
    pub mountpoint: String,
    pub fstype: String,
    /// The mountpoint is a socket (a bind-mounted runtime socket).
    pub socket: bool,
    /// Where the mount binds a directory that its filesystem's own mount
    /// shows elsewhere (a chroot's /etc, bound from the host's): that
    /// path, by which the rules judge it. For the mount a bind source
    /// lies in (above it), the source's own path that way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shows: Option<String>,
}

/// The path by which the filesystem's own mount shows what `entry` shows
/// at `rest` below its mount point, when `entry` binds a directory of a
/// filesystem mounted elsewhere too (`/tmp/x`, a bind of /etc/ssh, is
/// /etc/ssh): the other mount of that device whose root holds it, the
/// one with the shortest root, not itself below `entry`. `None` for a
/// mount of its filesystem's root, or one the table shows nowhere else.
fn shown_elsewhere(
    all: &[crate::mountinfo::Entry<'_>],
    entry: &crate::mountinfo::Entry<'_>,
    rest: &str,
) -> Option<String> {
    let names = names_elsewhere(all, entry, rest);
    names
        .into_iter()
        .min_by_key(|(root, _)| *root)
        .map(|(_, name)| name)
}

/// Every path by which another mount of its filesystem (not itself below
/// `entry`) shows what `entry` shows at `rest`, each with the length of
/// that mount's root (see [`shown_elsewhere`]).
fn names_elsewhere(
    all: &[crate::mountinfo::Entry<'_>],
    entry: &crate::mountinfo::Entry<'_>,
    rest: &str,
) -> Vec<(usize, String)> {
    use crate::mountinfo::unescape;
    let root = unescape(entry.root);
    if root == "/" {
        return Vec::new();
    }
    let at = unescape(entry.mount_point);
    let in_fs = format!(
        "{}/{}",
        root.trim_end_matches('/'),
        rest.trim_start_matches('/')
    );
    let in_fs = in_fs.trim_end_matches('/');
    all.iter()
        .filter(|e| e.dev == entry.dev && !within(&unescape(e.mount_point), &at))
        .map(|e| (unescape(e.mount_point), unescape(e.root)))
        .filter(|(_, r)| within(in_fs, r))
        .map(|(mp, other_root)| {
            let below = in_fs[other_root.trim_end_matches('/').len()..].trim_start_matches('/');
            let name = format!("{}/{below}", mp.trim_end_matches('/'));
            let name = match name.trim_end_matches('/') {
                "" => "/".to_string(),
                n => n.to_string(),
            };
            (other_root.len(), name)
        })
        .collect()
}

/// The mount on top at `path`: the deepest at or above it, the last in
/// the table of those at one point (a later mount there hides the
/// earlier).
pub fn mount_on<'a, 't>(
    all: &'a [crate::mountinfo::Entry<'t>],
    path: &str,
) -> Option<&'a crate::mountinfo::Entry<'t>> {
    let mut on: Option<(usize, &crate::mountinfo::Entry<'t>)> = None;
    for e in all {
        let mp = crate::mountinfo::unescape(e.mount_point);
        if within(path, &mp) && on.is_none_or(|(len, _)| mp.len() >= len) {
            on = Some((mp.len(), e));
        }
    }
    on.map(|(_, e)| e)
}

/// The other names of `path` (canonical) when the mount it lies on (see
/// [`mount_on`]) binds a directory that its filesystem's own mounts show
/// elsewhere (see [`names_elsewhere`]): `/data/docker` for
/// `/var/lib/docker`, mounted from there by fstab, and
/// `/mnt/backup/docker` where the same disk is mounted there too.
pub fn shown_by_other_mounts(all: &[crate::mountinfo::Entry<'_>], path: &str) -> Vec<String> {
    let Some(e) = mount_on(all, path) else {
        return Vec::new();
    };
    let mp = crate::mountinfo::unescape(e.mount_point);
    let rest = path.strip_prefix(mp.trim_end_matches('/')).unwrap_or("");
    let mut names: Vec<String> = names_elsewhere(all, e, rest)
        .into_iter()
        .map(|(_, n)| n)
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Do both paths lead to the same object (device and inode)? A path that
/// cannot be read is not the same: the runner's open of it fails later.
/// Is the namespace at `path` the caller's own of `kind`, or the host's
/// (init's, which a root caller in a namespace of its own, a service's,
/// can still name)?
fn host_namespace(path: &str, kind: &str) -> bool {
    same_file(path, &format!("/proc/self/ns/{kind}"))
        || same_file(path, &format!("/proc/1/ns/{kind}"))
}

fn same_file(a: &str, b: &str) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}

/// The mount table, read once for every path that is judged against it
/// (and again only once it changed, see [`crate::mountinfo`]).
pub fn mount_table() -> String {
    crate::mountinfo::read().unwrap_or_default()
}

/// The mounts at or below `path`, from a [`mount_table`].
pub fn nested_mounts(table: &str, path: &str) -> Vec<NestedMount> {
    let mut out = Vec::new();
    // The mounts the path itself lies on: a kernel control surface
    // mounted elsewhere than /proc and /sys (a chroot's proc, a second
    // procfs instance) is one all the same. Every one above the path
    // counts: which of them is on top the table does not say (a mount
    // moved below another keeps its place in it, a later one above hides
    // a deeper one), and counting all can only refuse more.
    let mut on: Vec<(String, &str)> = Vec::new();
    let all: Vec<_> = crate::mountinfo::entries(table).collect();
    // The deepest mount above the path (the last of them: a later mount
    // at the same point is on top).
    let mut lies_in: Option<(usize, &crate::mountinfo::Entry<'_>)> = None;
    for e in &all {
        let mp = crate::mountinfo::unescape(e.mount_point);
        if mp != path && within(path, &mp) {
            if KERNEL_FS.contains(&e.fstype) {
                on.push((mp.to_string(), e.fstype));
            }
            if lies_in.is_none_or(|(len, _)| mp.len() >= len) {
                lies_in = Some((mp.len(), e));
            }
            continue;
        }
        // The source itself counts when it is a mountpoint (a socket or a
        // procfs mounted exactly there).
        if !within(&mp, path) {
            continue;
        }
        let socket = std::fs::symlink_metadata(&*mp)
            .map(|m| std::os::unix::fs::FileTypeExt::is_socket(&m.file_type()))
            .unwrap_or(false);
        out.push(NestedMount {
            shows: shown_elsewhere(&all, e, ""),
            mountpoint: mp.into_owned(),
            fstype: e.fstype.to_string(),
            socket,
        });
    }
    for (mountpoint, fstype) in on {
        out.push(NestedMount {
            mountpoint,
            fstype: fstype.to_string(),
            socket: false,
            shows: None,
        });
    }
    if let Some((_, e)) = lies_in {
        let mp = crate::mountinfo::unescape(e.mount_point);
        let rest = path.strip_prefix(mp.trim_end_matches('/')).unwrap_or("");
        if let Some(shows) = shown_elsewhere(&all, e, rest) {
            out.push(NestedMount {
                mountpoint: mp.into_owned(),
                fstype: e.fstype.to_string(),
                socket: false,
                shows: Some(shows),
            });
        }
    }
    out
}

/// Filesystems that are kernel control surfaces wherever they are mounted.
pub const KERNEL_FS: &[&str] = &[
    "proc",
    "sysfs",
    "cgroup",
    "cgroup2",
    "securityfs",
    "debugfs",
    "tracefs",
    "bpf",
    "configfs",
    "efivarfs",
    "fusectl",
    "pstore",
];

/// Container runtime and system sockets: connectable even through a
/// read-only mount, and each one is root on the host.
pub const RUNTIME_SOCKETS: &[&str] = &[
    "/run/docker.sock",
    "/var/run/docker.sock",
    "/run/containerd/containerd.sock",
    "/run/crio/crio.sock",
    "/run/podman/podman.sock",
    "/run/dbus/system_bus_socket",
    "/run/systemd/private",
];

/// The directories inside runtime state whose entries, this many levels
/// down, are each one container's, image layer's, volume's or pod's own:
/// what an engine hands its runtime as a container's root and binds
/// (podman's `storage/overlay/LAYER/merged` and
/// `overlay-containers/ID/userdata`, docker's `rootfs/SNAPSHOTTER/ID`,
/// containerd's `io.containerd.runtime.v2.task/NS/ID/rootfs`, kubelet's
/// `pods/UID/volumes/...`). A `*` component stands for any one (a
/// storage driver's or snapshotter's name). A bind there reaches that one
/// object, not the runtime's state. Anything else in the state is
/// refused: the content store, the image and layer databases, secrets,
/// the kubelet's keys, and each overlay driver's `l` directory, whose
/// links later containers' lower layers are mounted through (see
/// [`is_object_name`]).
pub const RUNTIME_OBJECTS: &[(&str, usize, Whole)] = &[
    (
        "/run/containerd/io.containerd.runtime.v2.task",
        2,
        Whole::No,
    ),
    (
        "/run/k3s/containerd/io.containerd.runtime.v2.task",
        2,
        Whole::No,
    ),
    (
        "/run/containerd/io.containerd.grpc.v1.cri/sandboxes",
        1,
        Whole::No,
    ),
    (
        "/run/containerd/io.containerd.grpc.v1.cri/containers",
        1,
        Whole::No,
    ),
    (
        "/var/lib/containerd/io.containerd.grpc.v1.cri/sandboxes",
        1,
        Whole::No,
    ),
    (
        "/var/lib/containerd/io.containerd.grpc.v1.cri/containers",
        1,
        Whole::No,
    ),
    ("/var/lib/containerd/*/snapshots", 1, Whole::Yes),
    (
        "/var/lib/rancher/k3s/agent/containerd/io.containerd.grpc.v1.cri/sandboxes",
        1,
        Whole::No,
    ),
    (
        "/var/lib/rancher/k3s/agent/containerd/io.containerd.grpc.v1.cri/containers",
        1,
        Whole::No,
    ),
    (
        "/var/lib/rancher/k3s/agent/containerd/*/snapshots",
        1,
        Whole::Yes,
    ),
    // podman's drivers' layers and containers' own directories (its run
    // root's too: each container's userdata, whose files it binds).
    ("/var/lib/containers/storage/overlay", 1, Whole::Yes),
    ("/var/lib/containers/storage/vfs/dir", 1, Whole::Yes),
    (
        "/var/lib/containers/storage/btrfs/subvolumes",
        1,
        Whole::Yes,
    ),
    ("/var/lib/containers/storage/zfs/graph", 1, Whole::Yes),
    ("/var/lib/containers/storage/*-containers", 1, Whole::No),
    ("/run/containers/storage/*-containers", 1, Whole::No),
    ("/var/lib/containers/storage/volumes", 1, Whole::Yes),
    ("/var/lib/docker/overlay2", 1, Whole::Yes),
    ("/var/lib/docker/rootfs/*", 1, Whole::Yes),
    ("/var/lib/docker/vfs/dir", 1, Whole::Yes),
    ("/var/lib/docker/btrfs/subvolumes", 1, Whole::Yes),
    ("/var/lib/docker/zfs/graph", 1, Whole::Yes),
    ("/var/lib/docker/containers", 1, Whole::No),
    ("/var/lib/docker/volumes", 1, Whole::Yes),
    ("/var/lib/kubelet/pods", 1, Whole::No),
];

/// Whether an object's own directory may be bound whole, or only what is
/// inside it: a container's metadata directory holds the engine's files
/// about it beside what it hands the runtime (docker's `hostconfig.json`
/// beside `hostname`, containerd's task `config.json` beside `rootfs`),
/// which the engine trusts when it starts the container again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Whole {
    Yes,
    No,
}

/// An engine's own file inside an object's directory (its configuration,
/// pid files, the shim's address, podman's control fifos): never handed
/// to a runtime to bind.
pub fn is_engine_file(name: &str) -> bool {
    const ENDINGS: &[&str] = &[".json", ".pid", ".lock", ".db"];
    ENDINGS.iter().any(|e| name.ends_with(e))
        || matches!(
            name,
            "address" | "ctl" | "attach" | "winsz" | "shim-binary-path"
        )
}

/// Is `name`, an entry of one of [`RUNTIME_OBJECTS`]' directories, an
/// object's own (an id, a number, a volume's name)? The same directories
/// hold the engine's files about all of them (`containers.json`,
/// `containers.lock`, `metadata.db`, `backingFsBlockDev`) and the overlay
/// drivers' `l` directory of links to every layer: none of those is one
/// object's.
pub fn is_object_name(name: &str) -> bool {
    const ENGINE_FILES: &[&str] = &[".json", ".lock", ".db"];
    !name.is_empty()
        && name != "l"
        && name != "backingFsBlockDev"
        && !ENGINE_FILES.iter().any(|ext| name.ends_with(ext))
}

/// Runtime and orchestrator state that a bind must not reach into
/// (except one object's own directory, see [`RUNTIME_OBJECTS`]).
pub const RUNTIME_STATE: &[&str] = &[
    "/run/containerd",
    "/run/crio",
    "/run/podman",
    "/run/docker",
    // podman's and CRI-O's run root, libpod's, and the OCI runtimes' own
    // state (a state.json's hooks run as root at delete).
    "/run/containers/storage",
    "/run/libpod",
    "/run/runc",
    "/run/crun",
    "/run/youki",
    "/var/lib/docker",
    "/var/lib/containerd",
    "/var/lib/kubelet",
    "/var/lib/containers",
    "/etc/kubernetes",
    // The cluster's store (every secret), and k3s's.
    "/var/lib/etcd",
    "/var/lib/rancher",
    "/run/k3s",
];

impl Host {
    /// The image stores whose layers later sandboxes run: the caller's,
    /// and root's (airlockd's by default), whoever the caller is.
    pub fn image_stores(&self) -> Vec<String> {
        let root = crate::image::store::default_root(0, None, None);
        let root = root.to_string_lossy().into_owned();
        self.store.iter().cloned().chain([root]).collect()
    }

    /// Gather the facts for `spec` from this host: where each bind source
    /// and rootfs really leads, the caller's home, which sockets exist.
    /// A root process probing for another caller (airlockd) resolves and
    /// looks into the paths the caller named with the caller's
    /// file-system ids (see [`super::as_caller`]), and fails if it cannot
    /// take them; the host's own facts (privileged ids, runtime state)
    /// are gathered with its own.
    pub fn probe(spec: &SandboxSpec, ctx: &crate::Context) -> std::io::Result<Host> {
        let home = ctx
            .home
            .as_deref()
            .filter(|h| h.starts_with('/') && *h != "/")
            .map(canonical);
        let seen = Snapshot::take(home.as_deref());
        // Judged with the caller's ids where they are not ours (a service
        // acting for a client).
        let euid = rustix::process::geteuid();
        let as_caller = match ctx.caller.uid != euid.as_raw() && euid.is_root() {
            true => Some(super::as_caller::CallerIds::take(
                ctx.caller.uid,
                ctx.caller.gid,
            )?),
            false => None,
        };
        let mut resolved = BTreeMap::new();
        let mut nested = BTreeMap::new();
        let mut sockets_at = BTreeMap::new();
        for p in host_paths(spec) {
            let (named, below, socks) = seen.look_at(&canonical(p));
            if !below.is_empty() {
                nested.insert(named.clone(), below);
            }
            if !socks.is_empty() {
                sockets_at.insert(named.clone(), socks);
            }
            resolved.insert(p.to_string(), named);
        }
        let device_nodes = dev_bind_sources(spec)
            .filter_map(|p| {
                let named = resolved.get(p)?;
                let why = device_nodes_elsewhere(named)?;
                Some((named.clone(), why))
            })
            .collect();
        drop(as_caller);
        let ids = if !spec.namespaces.user
            || !spec.identity.uid_map.is_empty()
            || !spec.identity.gid_map.is_empty()
        {
            HostIds::probe(ctx.caller.uid, ctx.caller.gid)
        } else {
            HostIds::default()
        };
        // What the rules protect is named as bind sources are (see
        // `Landmarks::name`): ostree's /home is /var/home, and a store
        // under another user's home there is judged by its /home name.
        let name = |p: &str| seen.marks.name(p);
        let state: BTreeMap<String, String> = RUNTIME_STATE
            .iter()
            .filter(|s| std::path::Path::new(s).exists())
            .map(|s| (s.to_string(), canonical(s)))
            .collect();
        let mounts: Vec<_> = crate::mountinfo::entries(&seen.table).collect();
        let state_elsewhere = state
            .iter()
            .map(|(s, led)| {
                let names = shown_by_other_mounts(&mounts, led);
                (s.clone(), names.iter().map(|n| name(n)).collect::<Vec<_>>())
            })
            .filter(|(_, names)| !names.is_empty())
            .collect();
        let state = state.into_iter().map(|(s, led)| (s, name(&led))).collect();
        Ok(Host {
            home,
            canonical: resolved,
            sockets: existing(runtime_sockets(ctx.caller.uid))
                .iter()
                .map(|s| name(s))
                .collect(),
            state,
            state_elsewhere,
            nested,
            sockets_at,
            device_nodes,
            ids,
            joins_own_net: spec
                .namespaces
                .join
                .get("net")
                .is_some_and(|p| host_namespace(p, "net")),
            joins_own_ipc: spec
                .namespaces
                .join
                .get("ipc")
                .is_some_and(|p| host_namespace(p, "ipc")),
            joins_own_pid: spec
                .namespaces
                .join
                .get("pid")
                .is_some_and(|p| host_namespace(p, "pid")),
            root_caller: ctx.caller.is_root(),
            namespaced_root_outside: ctx
                .caller
                .namespaced_root
                .then(crate::sys::one_id_outside)
                .flatten(),
            namespaced_root_gids: match ctx.caller.namespaced_root {
                true => crate::sys::gids_outside(),
                false => Vec::new(),
            },
            store: absolute(&ctx.store).map(|s| name(&canonical(&s))),
            state_roots: state_roots(ctx).iter().map(|r| name(r)).collect(),
        })
    }

    /// Where `path` leads on the host (lexically normalized if not probed).
    pub fn resolve(&self, path: &str) -> String {
        self.canonical
            .get(path)
            .cloned()
            .unwrap_or_else(|| normalize(path))
    }
}

/// `path` as an absolute path (a relative one is taken from the working
/// directory, as every use of it is), or `None` where it cannot be.
fn absolute(path: &std::path::Path) -> Option<String> {
    let abs = std::path::absolute(path).ok()?;
    abs.to_str().map(str::to_string)
}

/// The state roots a bind must not reach: the caller's (whether it
/// exists yet or not: the sandbox being judged makes it), the caller's
/// defaults where they exist (a job without `XDG_RUNTIME_DIR`, cron's,
/// keeps its sandboxes in /tmp; one that has none there yet leaves a
/// bind of /tmp alone), root's, airlock-runtime's and airlockd's.
fn state_roots(ctx: &crate::Context) -> Vec<String> {
    let xdg = ctx
        .env
        .iter()
        .find(|(k, _)| k == "XDG_RUNTIME_DIR")
        .map(|(_, v)| v.clone());
    let uid = ctx.caller.uid;
    let defaults = [
        crate::context::default_state_root(uid, xdg),
        crate::context::default_state_root(uid, None),
    ];
    let mut roots: Vec<String> = [
        ctx.state_root.clone(),
        crate::context::default_state_root(0, None),
        RUNTIME_STATE_ROOT.into(),
        DAEMON_STATE_ROOT.into(),
    ]
    .into_iter()
    .chain(defaults.into_iter().filter(|d| is_state_root_of(d, uid)))
    .filter_map(|r| absolute(&r))
    .map(|r| canonical(&r))
    .collect();
    roots.sort();
    roots.dedup();
    roots
}

/// Is `dir` a state root `uid` could have made: a directory (not a
/// link) of its own that others cannot write, as `StateRoot::open`
/// requires? Anything else at a default's path in /tmp is another
/// user's doing, which must not decide what this caller may bind.
fn is_state_root_of(dir: &std::path::Path, uid: u32) -> bool {
    use std::os::unix::fs::MetadataExt;
    dir.symlink_metadata()
        .is_ok_and(|m| m.is_dir() && m.uid() == uid && m.mode() & 0o022 == 0)
}

/// airlockd's default state root (its `state_root` setting).
pub const DAEMON_STATE_ROOT: &str = "/run/airlockd";

/// airlock-runtime's default state root as root (its `--root`).
pub const RUNTIME_STATE_ROOT: &str = "/run/airlock-runtime";

/// Why a device bind of `real`, outside /dev, may hand over host
/// devices: a directory may hold device nodes (only a scan would say
/// which), and a device node other than null, zero, full, random,
/// urandom or tty is one. `None` for a plain file or a harmless node.
pub(super) fn device_nodes_elsewhere(real: &str) -> Option<String> {
    use rustix::fs::FileType;
    let st = rustix::fs::stat(real).ok()?;
    let dev = (rustix::fs::major(st.st_rdev), rustix::fs::minor(st.st_rdev));
    match FileType::from_raw_mode(st.st_mode) {
        FileType::Directory => Some("a directory may hold device nodes (made with mknod, as a chroot's /dev), which work as /dev's do".into()),
        // The standard nodes are character devices: block 1:3 is a RAM disk.
        FileType::CharacterDevice if crate::spec::STANDARD_DEVICES.contains(&dev) => None,
        FileType::CharacterDevice | FileType::BlockDevice => {
            Some(format!("a device node ({}:{}) opens the host's device as /dev's would", dev.0, dev.1))
        }
        _ => None,
    }
}

/// The sources of device binds (`--dev-bind`).
pub(super) fn dev_bind_sources(spec: &SandboxSpec) -> impl Iterator<Item = &str> {
    spec.filesystem.mounts.iter().filter_map(|m| match m {
        Mount::Bind {
            source,
            devices: true,
            ..
        } => Some(source.as_str()),
        _ => None,
    })
}

/// The host paths a spec reaches: bind sources and a root of host
/// directories.
fn host_paths(spec: &SandboxSpec) -> impl Iterator<Item = &str> {
    let binds = spec.filesystem.mounts.iter().flat_map(|m| match m {
        Mount::Bind { source, .. } => vec![source.as_str()],
        Mount::Overlay {
            lower,
            upper_dir,
            work_dir,
            ..
        } => lower
            .iter()
            .chain(upper_dir)
            .chain(work_dir)
            .map(String::as_str)
            .collect(),
        _ => Vec::new(),
    });
    let root: Vec<&str> = match &spec.filesystem.root {
        Root::Path { path, .. } => vec![path],
        Root::Overlay { lower, upper, .. } => {
            lower.iter().chain(upper).map(String::as_str).collect()
        }
        Root::Tmpfs { .. } => Vec::new(),
    };
    binds.chain(root)
}

/// The runtime sockets a caller with `uid` could be handed: the system's,
/// and the user's own managers (a session bus or systemd --user socket
/// starts host processes for whoever connects, as systemd-run --user does).
fn runtime_sockets(uid: u32) -> impl Iterator<Item = String> {
    let own = [
        "docker.sock",
        "podman/podman.sock",
        "bus",
        "systemd/private",
    ]
    .into_iter()
    .map(move |s| format!("/run/user/{uid}/{s}"));
    RUNTIME_SOCKETS.iter().map(|s| s.to_string()).chain(own)
}

/// Those of `paths` that exist on this host, canonical.
fn existing(paths: impl Iterator<Item = String>) -> Vec<String> {
    paths
        .filter(|s| std::path::Path::new(s).exists())
        .map(|s| canonical(&s))
        .collect()
}

#[cfg(test)]
mod tests {
    /// A plan written before the state became a map (a running
    /// sandbox's) still reads.
    #[test]
    fn an_older_plans_state_list_reads() {
        let with = |state: serde_json::Value| -> super::Host {
            let mut v = serde_json::to_value(super::Host::default()).unwrap();
            v["state"] = state;
            serde_json::from_value(v).unwrap()
        };
        let h = with(serde_json::json!(["/var/lib/docker"]));
        assert_eq!(h.state["/var/lib/docker"], "/var/lib/docker");
        let h = with(serde_json::json!({"/var/lib/docker": "/data/docker"}));
        assert_eq!(h.state["/var/lib/docker"], "/data/docker");
    }

    /// A mount that binds a directory its filesystem's own mount shows
    /// elsewhere is named by that path: carried below a bind source (a
    /// chroot's /etc), or holding the source (another mount of
    /// /etc/ssh); a mount of a filesystem's root, or of one mounted
    /// nowhere else, is not.
    #[test]
    fn a_bound_directory_is_named_where_its_filesystem_shows_it() {
        let table = "\
            1 0 8:1 / / rw - ext4 /dev/sda1 rw\n\
            2 1 0:5 / /tmp rw - tmpfs tmpfs rw\n\
            3 2 8:1 /etc /tmp/chroot/etc rw - ext4 /dev/sda1 rw\n\
            4 2 8:1 /etc/ssh /tmp/alias rw - ext4 /dev/sda1 rw\n\
            5 2 0:5 /x /tmp/chroot/x rw - tmpfs tmpfs rw\n\
            6 2 0:9 /data /tmp/chroot/data rw - ext4 /dev/sdb1 rw\n\
            7 1 0:5 /y /srv/z rw - tmpfs tmpfs rw\n";
        let shown = |path: &str| -> Vec<(String, Option<String>)> {
            super::nested_mounts(table, path)
                .into_iter()
                .map(|n| (n.mountpoint, n.shows))
                .collect()
        };
        let s = |p: &str| Some(p.to_string());
        assert_eq!(
            shown("/tmp/chroot"),
            [
                ("/tmp/chroot/etc".into(), s("/etc")),
                ("/tmp/chroot/x".into(), s("/tmp/x")),
                ("/tmp/chroot/data".into(), None),
            ]
        );
        assert_eq!(shown("/tmp/alias"), [("/tmp/alias".into(), s("/etc/ssh"))]);
        assert_eq!(
            shown("/tmp/alias/sshd_config.d"),
            [("/tmp/alias".into(), s("/etc/ssh/sshd_config.d"))]
        );
        // Not named by a mount below itself.
        assert_eq!(shown("/srv/z"), [("/srv/z".into(), s("/tmp/y"))]);
        assert_eq!(shown("/home"), []);
    }

    /// A path is named where another mount of its filesystem shows the
    /// directory its own mount binds: itself a mount point, or below one;
    /// the mount on top counts, and a path on a filesystem's root mount
    /// has no other name.
    #[test]
    fn a_path_on_a_bound_directory_has_another_name() {
        let table = "\
            1 0 8:1 / / rw - ext4 /dev/sda1 rw\n\
            2 1 8:1 /data/docker /var/lib/docker rw - ext4 /dev/sda1 rw\n\
            3 1 8:1 /data/varlib /var/lib rw - ext4 /dev/sda1 rw\n\
            4 3 8:1 /srv/k /var/lib/kubelet rw - ext4 /dev/sda1 rw\n\
            5 1 0:5 / /run rw - tmpfs tmpfs rw\n\
            6 1 8:2 /docker /var/lib/containers rw - ext4 /dev/sdb1 rw\n\
            7 1 8:2 / /data2 rw - ext4 /dev/sdb1 rw\n\
            8 1 8:2 / /mnt/backup rw - ext4 /dev/sdb1 rw\n";
        let all: Vec<_> = crate::mountinfo::entries(table).collect();
        let other = |p: &str| super::shown_by_other_mounts(&all, p);
        let s = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        assert_eq!(other("/var/lib/docker"), s(&["/data/docker"]));
        assert_eq!(other("/var/lib/docker/x"), s(&["/data/docker/x"]));
        assert_eq!(other("/var/lib/etcd"), s(&["/data/varlib/etcd"]));
        assert_eq!(other("/var/lib/kubelet"), s(&["/srv/k"]));
        // Every other mount of the disk that shows it, not one.
        assert_eq!(
            other("/var/lib/containers"),
            s(&["/data2/docker", "/mnt/backup/docker"])
        );
        assert!(other("/etc/kubernetes").is_empty());
        assert!(other("/run/containerd").is_empty());
    }
}
