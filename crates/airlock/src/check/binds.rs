//! The rules about what of the host the sandbox's filesystem reaches: each
//! bind, and a root made of host directories, judged on the path the
//! kernel will really reach (see [`super::Host::resolve`]).

use super::host::{is_engine_file, is_object_name, Whole, KERNEL_FS, RUNTIME_OBJECTS};
use super::paths::{exposes, within};
use super::{Findings, Host, RUNTIME_SOCKETS, RUNTIME_STATE};
use crate::spec::{Mount, Root, SandboxSpec};

/// Directories whose writable exposure rewrites the host: what it runs,
/// and what root's services take orders from (cron's and at's spools,
/// systemd's and udev's runtime units and rules; the package managers'
/// databases, whose maintainer scripts the next install runs as root;
/// polkit's local authority; what the shutdown, module loading, sysctl
/// and binfmt steps read from /run; root's ssh keys; cloud-init's
/// scripts, which run as root at boot; the EFI system partition). Root's
/// other dotfiles are judged apart (see [`dot_entry`]).
const SYSTEM_DIRS: &[&str] = &[
    "/etc",
    "/usr",
    "/bin",
    "/sbin",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/boot",
    // Programs the host and its users run: add-on packages, system-wide
    // Flatpak apps and snaps.
    "/opt",
    "/var/lib/flatpak",
    "/var/lib/snapd",
    "/var/spool",
    "/var/lib/dpkg",
    "/var/lib/rpm",
    "/var/lib/polkit-1",
    "/var/lib/sudo",
    "/root/.ssh",
    "/var/lib/cloud",
    "/efi",
    "/run/systemd",
    "/run/udev",
    "/run/tmpfiles.d",
    "/run/initramfs",
    "/run/modprobe.d",
    "/run/sysctl.d",
    "/run/binfmt.d",
    "/run/environment.d",
    "/run/extensions",
    "/run/sudo",
];
/// Directories that are dangerous to expose writably as a whole (their
/// contents are ordinary data dirs).
const SYSTEM_DATA_DIRS: &[&str] = &["/root", "/var/lib"];
/// Directories every host user or service shares: a writable bind of one
/// lets the workload plant files, sockets and links where others (and
/// root) will use them, or read and replace what they leave there.
const SHARED_DIRS: &[&str] = &["/tmp", "/var/tmp", "/dev/shm", "/run", "/home"];
/// Device nodes a device bind may expose.
const HARMLESS_DEVICES: &[&str] = &[
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/random",
    "/dev/urandom",
    "/dev/tty",
    // What `filesystem.devices` gives without an acknowledgement: FUSE,
    // and TUN (each usable only with the sandbox's own capabilities).
    "/dev/fuse",
    "/dev/net/tun",
];

/// Judge every bind and the root. Returns whether the sandbox reaches
/// any host path (a capability that overrides permissions matters then).
pub(super) fn judge_filesystem(f: &mut Findings, spec: &SandboxSpec, host: &Host) -> bool {
    judge_filesystem_of(f, spec, host, None)
}

/// [`judge_filesystem`], of the binds and root layers whose source is
/// `only` when it is given (the runner's recheck of one opened source).
pub(super) fn judge_filesystem_of(
    f: &mut Findings,
    spec: &SandboxSpec,
    host: &Host,
    only: Option<&str>,
) -> bool {
    let mut has_host_bind = false;
    for (i, m) in spec.filesystem.mounts.iter().enumerate() {
        if let Mount::Bind {
            source,
            readonly,
            devices,
            ..
        } = m
        {
            has_host_bind = true;
            if only.is_some_and(|o| o != source.as_str()) {
                continue;
            }
            let bind = Bind {
                subject: &format!("filesystem.mounts[{i}]"),
                real: &host.resolve(source),
                readonly: *readonly,
                devices: *devices,
                through: None,
            };
            bind.judge(f, host);
        }
        // An overlay's layers are read-only binds of host directories
        // (what is written goes to its tmpfs or its upper_dir, never to
        // them); its upper_dir and work_dir are writable ones.
        if let Mount::Overlay {
            lower,
            upper_dir,
            work_dir,
            ..
        } = m
        {
            has_host_bind = true;
            let layers = lower
                .iter()
                .enumerate()
                .map(|(j, l)| (format!("lower[{j}]"), l, true));
            let dirs = [("upper_dir", upper_dir), ("work_dir", work_dir)]
                .into_iter()
                .filter_map(|(name, d)| Some((name.to_string(), d.as_ref()?, false)));
            for (part, path, readonly) in layers.chain(dirs) {
                if only.is_some_and(|o| o != path.as_str()) {
                    continue;
                }
                let subject = format!("filesystem.mounts[{i}].{part}");
                Bind::new(&subject, &host.resolve(path), readonly).judge(f, host);
            }
        }
    }
    judge_root(f, &spec.filesystem.root, host, only) || has_host_bind
}

/// A root of host directories is a bind of each of them; the host's own
/// `/` as the root hides nothing at all. Returns whether the root is made
/// of host directories.
fn judge_root(f: &mut Findings, root: &Root, host: &Host, only: Option<&str>) -> bool {
    let skip = |p: &str| only.is_some_and(|o| o != p);
    match root {
        Root::Overlay { lower, upper, .. } => {
            for (i, l) in lower.iter().enumerate() {
                if skip(l) {
                    continue;
                }
                let subject = format!("filesystem.root.lower[{i}]");
                let real = host.resolve(l);
                if real == "/" {
                    f.add(
                        "host-rootfs",
                        subject,
                        "the host's / is a layer of the sandbox's root: nothing of the host is hidden",
                    );
                } else {
                    Bind::new(&subject, &real, true).judge(f, host);
                }
            }
            if let Some(u) = upper.as_deref().filter(|u| !skip(u)) {
                Bind::new("filesystem.root.upper", &host.resolve(u), false).judge(f, host);
            }
            true
        }
        Root::Path { path, .. } if skip(path) => true,
        Root::Path {
            path,
            readonly,
            make_mountpoints,
        } => {
            // A read-only root a root caller's supervisor first makes the
            // mount points in (--rootfs-readonly, --remount-ro /) is
            // written on the host, as root: judged as a writable one.
            let readonly = &(*readonly && !(*make_mountpoints && host.root_caller));
            let real = host.resolve(path);
            if real == "/" {
                f.add(
                    "host-rootfs",
                    "filesystem.root",
                    format!(
                        "the sandbox's root is the host's / ({}): nothing of the host is hidden",
                        if *readonly { "read-only" } else { "writable" }
                    ),
                );
            } else {
                Bind::new("filesystem.root", &real, *readonly).judge(f, host);
            }
            true
        }
        Root::Tmpfs { .. } => false,
    }
}

/// One bind (or root layer) whose source leads to `real` on the host.
struct Bind<'a> {
    /// The spec field it comes from.
    subject: &'a str,
    real: &'a str,
    readonly: bool,
    /// Device nodes stay usable (`--dev-bind`).
    devices: bool,
    /// Where it is reached, when `real` is the host path of a directory
    /// bound there (a mount it carries, or one it lies in).
    through: Option<&'a str>,
}

impl<'a> Bind<'a> {
    fn new(subject: &'a str, real: &'a str, readonly: bool) -> Self {
        Bind {
            subject,
            real,
            readonly,
            devices: false,
            through: None,
        }
    }

    /// How the findings name it: `writable bind of /srv`.
    fn what(&self) -> String {
        let access = if self.readonly {
            "read-only"
        } else {
            "writable"
        };
        match self.through {
            Some(at) => format!("{access} bind of {} (mounted at {at})", self.real),
            None => format!("{access} bind of {}", self.real),
        }
    }

    fn judge(&self, f: &mut Findings, host: &Host) {
        self.judge_direct(f, host);
        judge_nested(f, self, host);
    }

    /// The rules on the path itself, not on the mounts it carries.
    fn judge_direct(&self, f: &mut Findings, host: &Host) {
        if !self.readonly {
            self.judge_writable(f, host);
        }
        self.judge_state_roots(f, host);
        self.judge_kernel(f, host);
        self.judge_runtime(f, host);
    }

    /// What a writable bind lets the workload rewrite: the whole host,
    /// what the host runs or trusts, the caller's home.
    fn judge_writable(&self, f: &mut Findings, host: &Host) {
        let (what, real) = (self.what(), self.real);
        if real == "/" {
            f.add(
                "host-root-writable",
                self.subject,
                format!("{what} hands the workload the whole host filesystem to rewrite"),
            );
        } else if let Some(dir) = SYSTEM_DIRS
            .iter()
            .find(|d| exposes(real, d) || within(real, d))
            .or_else(|| SYSTEM_DATA_DIRS.iter().find(|d| exposes(real, d)))
        {
            f.add(
                "host-system-writable",
                self.subject,
                format!("{what} exposes the host's {dir} writable: the workload could change what the host runs or trusts"),
            );
        } else if let Some(entry) = dot_entry("/root", real) {
            f.add(
                "host-system-writable",
                self.subject,
                format!("{what} exposes root's {entry} writable: root's shell and programs run what its dotfiles say (start-up files, ~/.config, ~/.local/bin)"),
            );
        }
        if let Some(dir) = SHARED_DIRS.iter().find(|d| real != "/" && exposes(real, d)) {
            f.add(
                "host-shared-writable",
                self.subject,
                format!("{what} exposes the host's {dir}, which every user and service shares: the workload could plant files, sockets or links that others (root included) then use"),
            );
        }
        // The caller's store, and root's (airlockd's by default), whoever
        // the caller is: a store, a layer in it, or a directory above it;
        // the workload could plant or change the layers every later
        // sandbox runs (and a root caller's layers run as its root).
        if let Some(store) = host
            .image_stores()
            .into_iter()
            .find(|store| exposes(real, store) || within(real, store))
        {
            f.add(
                "image-store-writable",
                self.subject,
                format!("{what} reaches the image store {store}: the workload could change the layers later sandboxes run"),
            );
        }
        if let Some(home) = &host.home {
            if real != "/" && exposes(real, home) {
                f.add(
                    "home-writable",
                    self.subject,
                    format!("{what} lets the workload change files in your home ({home}), such as shell start-up files"),
                );
            } else if let Some(entry) = dot_entry(home, real).filter(|_| home != "/root") {
                f.add(
                    "home-writable",
                    self.subject,
                    format!("{what} lets the workload change your {entry}: your shell and programs run what your dotfiles say (start-up files, ~/.config, ~/.local/bin)"),
                );
            }
        }
    }

    /// Sandbox state, even read-only: every sandbox's environment is
    /// there to read and its control socket to connect to (attach to its
    /// input), and, written, it is what `exec` trusts to put a process
    /// into a sandbox (its walls, its namespaces, its cgroups).
    fn judge_state_roots(&self, f: &mut Findings, host: &Host) {
        let (what, real) = (self.what(), self.real);
        if let Some(root) = host
            .state_roots
            .iter()
            .find(|r| exposes(real, r) || within(real, r))
        {
            f.add(
                "state-root-bind",
                self.subject,
                format!("{what} reaches the sandbox state root {root}: the workload could read every sandbox's environment, attach to their input and, where it can write, change what `exec` puts into a sandbox"),
            );
        }
    }

    /// Reading the whole host, and the kernel's and devices' control
    /// surfaces, which even a read-only bind hands over.
    fn judge_kernel(&self, f: &mut Findings, host: &Host) {
        let (what, real) = (self.what(), self.real);
        if real == "/" && self.readonly {
            f.add(
                "host-root-readonly",
                self.subject,
                format!("{what}: the workload can read every file of the host its ids may read"),
            );
        }
        for surface in ["/proc", "/sys"] {
            if exposes(real, surface) || within(real, surface) {
                f.add(
                    "kernel-surface-bind",
                    self.subject,
                    format!("{what} exposes the host's {surface}: host processes, kernel tunables and cgroups, even read-only"),
                );
            }
        }
        if self.devices
            && !HARMLESS_DEVICES.contains(&real)
            && (within(real, "/dev") || exposes(real, "/dev"))
        {
            f.add(
                "host-dev-bind",
                self.subject,
                format!("device bind of {real} gives the workload the host's devices (disks, memory, consoles)"),
            );
        } else if self.devices && !within(real, "/dev") {
            // A node made with mknod anywhere (a chroot's /dev, debootstrap's)
            // opens the same device as /dev's.
            if let Some(why) = host.device_nodes.get(real) {
                f.add(
                    "host-dev-bind",
                    self.subject,
                    format!("device bind of {real}: {why}"),
                );
            }
        }
    }

    /// Container runtime sockets and state, each root on the host.
    fn judge_runtime(&self, f: &mut Findings, host: &Host) {
        let (what, real) = (self.what(), self.real);
        for socket in &host.sockets {
            if exposes(real, socket) {
                f.add(
                    "runtime-socket-bind",
                    self.subject,
                    format!("{what} exposes {socket}; a socket stays connectable through a read-only mount, and this one is root on the host"),
                );
            }
        }
        // The first socket not already named as a runtime's above.
        let other = host.sockets_at.get(real).into_iter().flatten();
        if let Some(socket) = other.into_iter().find(|s| !host.sockets.contains(*s)) {
            f.add(
                "socket-bind",
                self.subject,
                format!("{what} exposes the unix socket {socket}; whoever listens there acts for the workload (an ssh agent signs, an X server takes keystrokes, a manager starts processes), and a read-only mount does not stop connect"),
            );
        }
        for state in RUNTIME_SOCKETS.iter().chain(RUNTIME_STATE) {
            // As named, where it leads when that is elsewhere (a
            // /var/lib/docker linked to another disk), and where another
            // mount shows it (one bind-mounted from /data/docker): a bind
            // source is judged where it leads.
            let led = host.state.get(*state).map(String::as_str);
            let also = host.state_elsewhere.get(*state).into_iter().flatten();
            let also: Vec<&str> = also.map(String::as_str).collect();
            let inside = [*state]
                .into_iter()
                .chain(led)
                .chain(also.iter().copied())
                .any(|at| within(real, at) && !one_runtime_object(real, at, state));
            if inside || led.into_iter().chain(also).any(|at| exposes(real, at)) {
                f.add(
                    "runtime-socket-bind",
                    self.subject,
                    format!("{what} reaches into {state}, container runtime or orchestrator state"),
                );
            }
        }
    }
}

/// The entry of `home` whose name starts with a dot (`~/.bashrc`,
/// `~/.config`) that `real` is or is inside, if any: what a shell and
/// the programs its user runs read their start-up and configuration
/// from.
fn dot_entry(home: &str, real: &str) -> Option<String> {
    let home = home.trim_end_matches('/');
    if home.is_empty() || !within(real, home) || real.len() == home.len() {
        return None;
    }
    let first = real[home.len() + 1..].split('/').next()?;
    first.starts_with('.').then(|| format!("{home}/{first}"))
}

/// Is `real`, inside the runtime state directory `state` (found at `at`),
/// one container's, layer's, volume's or pod's own directory or inside
/// one (see [`RUNTIME_OBJECTS`])?
fn one_runtime_object(real: &str, at: &str, state: &str) -> bool {
    let Some(rest) = real.strip_prefix(at) else {
        return false;
    };
    let parts: Vec<&str> = rest.split('/').filter(|c| !c.is_empty()).collect();
    RUNTIME_OBJECTS.iter().any(|(dir, depth, whole)| {
        let Some(sub) = dir.strip_prefix(state) else {
            return false;
        };
        let pattern: Vec<&str> = sub.split('/').filter(|c| !c.is_empty()).collect();
        let object = pattern.len() + depth;
        let least = object + usize::from(*whole == Whole::No);
        let matches = parts.len() >= least && pattern.iter().zip(&parts).all(|(p, c)| glob(p, c));
        matches
            && is_object_name(parts[object - 1])
            && !parts[object..].iter().any(|c| is_engine_file(c))
    })
}

/// A pattern's component: `*`, `*-suffix`, or the name itself.
fn glob(pattern: &str, name: &str) -> bool {
    match pattern.strip_prefix('*') {
        Some("") => true,
        Some(suffix) => name.len() > suffix.len() && name.ends_with(suffix),
        None => pattern == name,
    }
}

/// Judge the mounts a recursive bind of `real` brings along.
fn judge_nested(f: &mut Findings, bind: &Bind<'_>, host: &Host) {
    let (subject, real, devices) = (bind.subject, bind.real, bind.devices);
    for n in host.nested.get(real).into_iter().flatten() {
        // A bind of a host directory shown here (a chroot's /etc bound
        // from the host's, or the source itself another mount of
        // /etc/ssh) is that directory: judged by its own path too, with
        // the access the bind gives it. (Its own nested mounts are in
        // this list already.)
        if let Some(shows) = n.shows.as_deref().filter(|s| *s != real) {
            let alias = Bind {
                real: shows,
                through: Some(&n.mountpoint),
                ..*bind
            };
            alias.judge_direct(f, host);
        }
        // A chroot's /dev (sbuild's, pbuilder's) is the host's devtmpfs
        // bound there: through a device bind, the host's devices.
        if devices && matches!(n.fstype.as_str(), "devtmpfs" | "devpts") {
            f.add(
                "host-dev-bind",
                subject,
                format!(
                    "the device bind of {real} carries the host's {} at {}: its device nodes (disks, memory, consoles) work there",
                    n.fstype, n.mountpoint
                ),
            );
        }
        let above = !within(&n.mountpoint, real);
        if above && ["/proc", "/sys"].iter().any(|s| within(real, s)) {
            // judge_kernel's finding says it by the path.
        } else if above && KERNEL_FS.contains(&n.fstype.as_str()) {
            f.add(
                "kernel-surface-bind",
                subject,
                format!(
                    "{real} is on the {} mount at {} (a kernel control surface), even read-only",
                    n.fstype, n.mountpoint
                ),
            );
        } else if KERNEL_FS.contains(&n.fstype.as_str()) {
            f.add(
                "kernel-surface-bind",
                subject,
                format!(
                    "the bind of {real} carries the {} mount at {} (a kernel control surface)",
                    n.fstype, n.mountpoint
                ),
            );
        }
        if n.socket {
            f.add(
                "runtime-socket-bind",
                subject,
                format!("the bind of {real} carries a socket mounted at {}; sockets stay connectable through read-only mounts", n.mountpoint),
            );
        }
    }
}

#[cfg(test)]
#[path = "binds_tests.rs"]
mod tests;
