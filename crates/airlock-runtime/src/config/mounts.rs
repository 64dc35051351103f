//! The bundle's `mounts`, in airlock's terms, with their options judged
//! one by one.
//!
//! On binds and tmpfs every option is honoured or refused: `ro`/`rw`,
//! `nodev`/`dev`, `noexec`/`exec`, `bind` (the source's own filesystem)
//! or `rbind` (the mounts below it too), tmpfs `size=` and `mode=`.
//! `nosuid` is what airlock does anyway; `suid` is refused. Propagation:
//! every mount of the container is private (nothing propagates between it
//! and the host), so `private`/`rprivate` are honoured and `shared`,
//! `slave` and `unbindable` (and their `r` forms) are refused. The
//! access-time options (`relatime`, `noatime`, `strictatime`, ...) change
//! no one's access and are accepted as the filesystem's default. podman's
//! `tmpcopyup` (which it adds to every `--tmpfs`) fills the tmpfs with a
//! copy of what the destination held. Any other option is an error naming
//! `mounts[i].options`.
//!
//! Filesystems airlock makes itself (proc, sysfs, mqueue, cgroup) are
//! always nosuid, nodev and noexec (sysfs and cgroup read-only, even when
//! `rw` is asked): their options may say so, and any other is refused. The /dev tmpfs and its
//! devpts are airlock's own; a /dev/shm the bundle asks for replaces
//! airlock's, with its size and mode (a tmpfs without `mode=` takes the
//! mode of the directory it covers in the rootfs, as runc's does, else
//! the kernel's default 1777).

use super::{err, Bundle};
use airlock::spec::{FileMode, Mount, SandboxSpec, Size, SpecError};
use std::path::Path;

/// What the options of a bind or a tmpfs ask for.
#[derive(Default)]
struct Options {
    readonly: bool,
    devices: bool,
    noexec: bool,
    recursive: bool,
    size: Option<Size>,
    mode: Option<FileMode>,
    copy_up: bool,
}

const ATIME: &[&str] = &[
    "atime",
    "noatime",
    "relatime",
    "norelatime",
    "strictatime",
    "nostrictatime",
    "diratime",
    "nodiratime",
    "lazytime",
    "nolazytime",
];

/// The options of mount `field` (a bind when `bind`, else a tmpfs).
fn options(field: &str, opts: &[&str], bind: bool) -> Result<Options, SpecError> {
    let field = format!("{field}.options");
    let mut o = Options::default();
    for opt in opts {
        match *opt {
            "ro" => o.readonly = true,
            "rw" => o.readonly = false,
            "nosuid" => {}
            "suid" => {
                return Err(err(
                    field,
                    "suid is not supported: airlock mounts everything nosuid",
                ))
            }
            "nodev" => o.devices = false,
            "dev" => o.devices = true,
            "noexec" => o.noexec = true,
            "exec" => o.noexec = false,
            "bind" if bind => o.recursive = false,
            "rbind" if bind => o.recursive = true,
            "private" | "rprivate" => {}
            "shared" | "rshared" | "slave" | "rslave" | "unbindable" | "runbindable" => {
                return Err(err(
                    field,
                    format!(
                        "{opt} propagation is not supported: every mount of an airlock container is private, so nothing propagates between it and the host"
                    ),
                ))
            }
            a if ATIME.contains(&a) => {}
            "tmpcopyup" if !bind => o.copy_up = true,
            _ if !bind && opt.starts_with("size=") => {
                let v = &opt["size=".len()..];
                // 0 is the kernel's "no limit", as runc passes it; airlock
                // refuses a size of 0 that means it.
                let size = airlock::spec::parse_size(v).map_err(|e| err(&field, e))?;
                o.size = (size.0 != 0).then_some(size);
            }
            _ if !bind && opt.starts_with("mode=") => {
                let v = &opt["mode=".len()..];
                let m = u32::from_str_radix(v, 8)
                    .ok()
                    .filter(|m| *m <= 0o7777)
                    .ok_or_else(|| err(&field, format!("mode={v} is not an octal mode")))?;
                o.mode = Some(FileMode(m));
            }
            _ => {
                let what = if bind { "a bind" } else { "a tmpfs" };
                return Err(err(
                    field,
                    format!("{opt:?} is not an option airlock supports on {what}"),
                ));
            }
        }
    }
    Ok(o)
}

/// Where the bundle's mounts land in airlock's terms.
pub(super) fn mounts(bundle: &Bundle, s: &mut SandboxSpec) -> Result<(), SpecError> {
    let has_dev = bundle
        .config
        .mounts()
        .iter()
        .flatten()
        .any(|m| normal(m.destination()) == "/dev");
    let mut stand_ins = Vec::new();
    for (i, m) in bundle.config.mounts().iter().flatten().enumerate() {
        let field = format!("mounts[{i}]");
        // A mount's own id maps (an idmapped bind the bundle asks for):
        // airlock decides which binds are idmapped (the rootfs and the
        // client's per-container files, see the module doc).
        for key in ["uidMappings", "gidMappings"] {
            let raw = bundle.raw.pointer(&format!("/mounts/{i}/{key}"));
            if raw
                .and_then(|v| v.as_array())
                .is_some_and(|a| !a.is_empty())
            {
                return Err(err(
                    format!("{field}.{key}"),
                    "a mount's own id maps are not supported: airlock idmaps the root filesystem and the client's per-container files itself",
                ));
            }
        }
        let dest = normal(m.destination());
        let opts: Vec<&str> = m.options().iter().flatten().map(String::as_str).collect();
        let typ = m.typ().as_deref().unwrap_or("");
        let is_bind = typ == "bind" || opts.iter().any(|o| *o == "bind" || *o == "rbind");
        if is_bind {
            let Some(src) = m.source() else {
                return Err(err(format!("{field}.source"), "a bind needs a source"));
            };
            let src = if src.is_absolute() {
                src.clone()
            } else {
                bundle.dir.join(src)
            };
            let o = options(&field, &opts, true)?;
            s.filesystem.mounts.push(Mount::Bind {
                source: src.display().to_string(),
                destination: dest,
                readonly: o.readonly,
                devices: o.devices,
                noexec: o.noexec,
                recursive: o.recursive,
            });
            continue;
        }
        // airlock's /dev makes its own devpts; its shm is replaced by the
        // bundle's when that asks for one (its size, mode and noexec).
        let covered_by_dev = has_dev && dest == "/dev/pts";
        if covered_by_dev {
            devpts_options(&field, typ, &opts)?;
        } else if typ != "tmpfs" && typ != "bind" {
            kernel_fs_options(&field, typ, &opts)?;
        }
        match typ {
            _ if covered_by_dev => {}
            "proc" => s.filesystem.mounts.push(Mount::Proc { destination: dest }),
            "tmpfs" if dest == "/dev" => {
                dev_options(&field, &opts)?;
                s.filesystem.mounts.push(Mount::Dev { destination: dest })
            }
            "tmpfs" => {
                let o = options(&field, &opts, false)?;
                if o.devices {
                    return Err(err(
                        format!("{field}.options"),
                        "dev is not supported on a tmpfs: airlock mounts it nodev",
                    ));
                }
                // As runc: without mode=, the mode of the directory it
                // covers in the rootfs, else the kernel's default 1777;
                // without its setuid and setgid bits, which a tmpfs may
                // not have (a setgid /var/local is Debian's).
                let covered = covered_mode(&bundle.rootfs(), &dest);
                s.filesystem.mounts.push(Mount::Tmpfs {
                    destination: dest,
                    size: o.size,
                    mode: o.mode.or(Some(FileMode(covered.unwrap_or(0o1777)))),
                    readonly: o.readonly,
                    noexec: o.noexec,
                    copy_up: o.copy_up,
                })
            }
            // An mqueue shows the IPC namespace it is mounted in, which a
            // shared one's owner, not the container's, may mount.
            "mqueue" if !s.namespaces.ipc => stand_ins.push(stand_in(s, dest)),
            "mqueue" => s
                .filesystem
                .mounts
                .push(Mount::Mqueue { destination: dest }),
            // sysfs shows the network namespace it is mounted in, and one
            // not of the container's own (joined, or the host's for a
            // hostNetwork pod) is not its user namespace's to mount: an
            // empty read-only directory stands there instead.
            "sysfs" if !s.namespaces.net => stand_ins.push(stand_in(s, dest)),
            "sysfs" => s.filesystem.mounts.push(Mount::Sysfs { destination: dest }),
            // The container's own cgroups, read-only, as runc mounts them
            // (nothing above them: the host's tree is not its to see).
            "cgroup" | "cgroup2" => s
                .filesystem
                .mounts
                .push(Mount::Cgroup { destination: dest }),
            other => {
                return Err(err(
                    format!("{field}.type"),
                    format!("mounts of type {other:?} are not supported"),
                ))
            }
        }
    }
    // Read-only once everything is mounted: the mount points of what the
    // bundle mounts below them (/sys/fs/cgroup) are made in them first.
    for destination in stand_ins {
        s.filesystem
            .mounts
            .push(Mount::RemountReadOnly { destination });
    }
    Ok(())
}

/// The options of a proc, sysfs, mqueue or cgroup mount, which airlock
/// makes nosuid, nodev and noexec (sysfs and cgroup read-only, proc and
/// mqueue writable): those it does anyway are accepted, and `rw` (a
/// sysfs or cgroup is read-only all the same); any other is refused by
/// name rather than dropped (`hidepid=` would have the container see
/// fewer processes than it does).
fn kernel_fs_options(field: &str, typ: &str, opts: &[&str]) -> Result<(), SpecError> {
    let readonly = matches!(typ, "sysfs" | "cgroup" | "cgroup2");
    for opt in opts {
        let fine = match *opt {
            "nosuid" | "nodev" | "noexec" | "private" | "rprivate" => true,
            "ro" => readonly,
            // A writable sysfs or cgroup mount (podman's systemd mode,
            // --privileged) is mounted read-only, as it always was here:
            // less than asked, never more.
            "rw" => true,
            a => ATIME.contains(&a),
        };
        if !fine {
            return Err(err(
                format!("{field}.options"),
                format!("{opt:?} is not supported on a {typ} mount: airlock mounts it nosuid, nodev, noexec and {}", if readonly { "read-only" } else { "writable" }),
            ));
        }
    }
    Ok(())
}

/// A bundle's /dev tmpfs becomes airlock's /dev: mode 0755, nosuid and
/// noexec, holding only the nodes airlock binds there (which open
/// whatever `dev` says). What it asks beyond that is refused by name,
/// as on any tmpfs, not dropped; its size is the kernel's to bound.
fn dev_options(field: &str, opts: &[&str]) -> Result<(), SpecError> {
    let o = options(field, opts, false)?;
    let refused = opts
        .iter()
        .find(|o| matches!(**o, "exec" | "tmpcopyup"))
        .map(|opt| format!("{opt} is not supported on /dev: airlock's /dev is noexec and holds only the nodes it makes"))
        .or_else(|| {
            o.mode
                .filter(|m| m.0 != 0o755)
                .map(|m| format!("mode={:o} is not supported on /dev: airlock's /dev is 0755", m.0))
        });
    match refused {
        Some(why) => Err(err(format!("{field}.options"), why)),
        None => Ok(()),
    }
}

/// A destination as a path's components give it: `/dev/`, `//dev` and
/// `/dev/.` are `/dev`, which every comparison below takes them for (as
/// the runner resolves them).
pub(super) fn normal(dest: &Path) -> String {
    dest.components()
        .collect::<std::path::PathBuf>()
        .display()
        .to_string()
}

/// The bundle's /dev/pts where airlock's /dev makes its own devpts
/// (`newinstance`, `ptmxmode=0666`, `mode=0620`, nosuid, noexec): a
/// devpts whose options that instance keeps. A mode that would close the
/// terminals more than airlock's does, another filesystem there, or an
/// option airlock does not know, is refused rather than dropped. `gid=`
/// is taken as met: a terminal's group is then its opener's.
fn devpts_options(field: &str, typ: &str, opts: &[&str]) -> Result<(), SpecError> {
    if typ != "devpts" {
        return Err(err(
            format!("{field}.type"),
            format!(
                "/dev/pts is the devpts of airlock's /dev; a {typ:?} mount there is not supported"
            ),
        ));
    }
    let within = |v: &str, given: u32| {
        u32::from_str_radix(v, 8).is_ok_and(|asked| asked <= 0o7777 && given & !asked == 0)
    };
    for opt in opts {
        let fine = match opt.split_once('=') {
            // podman's rootless list when gid 5 is not mapped carries
            // rprivate; what kernel_fs_options takes on any kernel mount
            // (propagation, nodev, atime) is taken here too.
            None => {
                matches!(
                    *opt,
                    "newinstance" | "nosuid" | "noexec" | "nodev" | "rw" | "private" | "rprivate"
                ) || ATIME.contains(opt)
            }
            Some(("ptmxmode", v)) => within(v, 0o666),
            Some(("mode", v)) => within(v, 0o620),
            Some(("gid", v)) => v.parse::<u32>().is_ok(),
            Some(_) => false,
        };
        if !fine {
            return Err(err(
                format!("{field}.options"),
                format!("{opt:?} is not supported on /dev/pts: airlock's devpts is newinstance, ptmxmode=0666, mode=0620, nosuid, noexec"),
            ));
        }
    }
    Ok(())
}

/// The mode of the directory `dest` reaches in `rootfs`, links followed
/// as the container sees them (an image's absolute link stays in its
/// rootfs, as the runner resolves the mount point), without the setuid
/// and setgid bits; none where no directory is.
fn covered_mode(rootfs: &Path, dest: &str) -> Option<u32> {
    use rustix::fs::{Mode, OFlags, ResolveFlags};
    let root = rustix::fs::open(
        rootfs,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    let reached = rustix::fs::openat2(
        &root,
        dest.trim_start_matches('/'),
        OFlags::PATH | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    )
    .ok()?;
    let st = rustix::fs::fstat(&reached).ok()?;
    let is_dir = rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Directory;
    is_dir.then_some(st.st_mode & 0o1777)
}

/// An empty directory, where a filesystem the container may not see was
/// asked for, mounted in `s`; its destination, which is made read-only
/// after the other mounts (its mode alone does not stop a root with
/// CAP_DAC_OVERRIDE, which containerd's and podman's defaults keep).
fn stand_in(s: &mut SandboxSpec, destination: String) -> String {
    s.filesystem.mounts.push(Mount::Tmpfs {
        destination: destination.clone(),
        size: Some(Size(4096)),
        mode: Some(FileMode(0o555)),
        readonly: false,
        noexec: true,
        copy_up: false,
    });
    destination
}
