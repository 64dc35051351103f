//! An image's root and config, made into a spec. The image gives the
//! defaults; what the spec says itself wins, as flags do over an image in
//! `podman run`.

use super::{ImageError, Pulled};
use crate::spec::{Mount, Root, SandboxSpec, Size};
use std::path::PathBuf;

/// Make the image the sandbox's root and defaults:
/// - the root: the layers as an overlay (topmost first) under a writable
///   tmpfs of `filesystem.root`'s size, with a fresh /proc and /dev first
///   among the mounts; the spec's root must be the default tmpfs;
/// - the program: Entrypoint followed by `process.args`, or by Cmd when
///   the spec gives no args (as `podman run IMAGE ARGS...`);
/// - the environment: the image's Env under the spec's `env`, never the
///   caller's;
/// - WorkingDir, unless `process.cwd` is set (to `/` too);
/// - User (looked up in the image's /etc/passwd and /etc/group), unless
///   the spec sets `process.uid` and `process.gid`; an image without User
///   runs as its root, rootless too (as podman does).
pub fn apply(spec: &mut SandboxSpec, p: &Pulled) -> Result<(), ImageError> {
    let size = upper_size(spec)?;
    // Topmost first, each layer once: overlayfs refuses a directory twice
    // among its lower layers (ELOOP), and an image may list one layer
    // twice. The lower copy adds nothing the upper one does not give.
    let mut lower: Vec<String> = Vec::new();
    for d in p.layer_dirs.iter().rev() {
        let d = d.display().to_string();
        if !lower.contains(&d) {
            lower.push(d);
        }
    }
    spec.filesystem.root = Root::Overlay {
        lower,
        upper: None,
        size,
    };
    spec.filesystem.mounts.splice(
        0..0,
        [
            Mount::Proc {
                destination: "/proc".into(),
            },
            Mount::Dev {
                destination: "/dev".into(),
            },
        ],
    );
    let c = p.image.config.config().clone().unwrap_or_default();
    image_values(&c, spec)?;
    let entry = c.entrypoint().clone().unwrap_or_default();
    let rest = if spec.process.args.is_empty() {
        c.cmd().clone().unwrap_or_default()
    } else {
        std::mem::take(&mut spec.process.args)
    };
    spec.process.args = entry.into_iter().chain(rest).collect();
    if spec.process.args.is_empty() {
        return Err(ImageError::Invalid(
            "the image has no Entrypoint or Cmd, and no command was given".into(),
        ));
    }
    spec.process.inherit_env = false;
    for kv in c.env().clone().unwrap_or_default() {
        if let Some((k, v)) = kv.split_once('=') {
            spec.process
                .env
                .entry(k.to_string())
                .or_insert_with(|| v.to_string());
        }
    }
    if spec.process.cwd.is_none() {
        if let Some(wd) = c.working_dir().clone().filter(|w| !w.is_empty()) {
            spec.process.cwd = Some(wd);
        }
    }
    match (spec.process.uid, spec.process.gid) {
        (Some(_), Some(_)) => {}
        // A uid given over the image's User is that account's, as
        // `podman run --user N` takes it.
        (Some(uid), None) => {
            let top_first: Vec<PathBuf> = p.layer_dirs.iter().rev().cloned().collect();
            spec.process.gid = Some(account_gid(&top_first, uid));
        }
        (None, _) => {
            let (uid, gid) = match c.user().clone().filter(|u| !u.is_empty()) {
                Some(user) => user_ids(&user, &p.layer_dirs)?,
                None => (0, 0),
            };
            spec.process.uid = Some(uid);
            spec.process.gid.get_or_insert(gid);
        }
    }
    Ok(())
}

/// The group of the image's account for `uid`, 0 without one, as docker
/// and podman give it.
fn account_gid(layers_top_first: &[PathBuf], uid: u32) -> u32 {
    let uid = uid.to_string();
    lookup(layers_top_first, "/etc/passwd", |f| f[2] == uid)
        .and_then(|(_, g)| g)
        .unwrap_or(0)
}

/// What the image's config gives checked as the image's, so that an error
/// names the image's field (`Env[0]`), not the spec field it would fill:
/// no NUL in a command, variable or directory, no variable without a
/// name, an absolute working directory. Only what the sandbox takes is
/// judged.
fn image_values(c: &oci_spec::image::Config, spec: &SandboxSpec) -> Result<(), ImageError> {
    let bad =
        |field: String, why: &str| Err(ImageError::Invalid(format!("the image's {field}: {why}")));
    // Only what the sandbox takes: a command given replaces Cmd, and a
    // working directory given replaces WorkingDir (as docker judges them).
    let no_cmd = None;
    let cmd = match spec.process.args.is_empty() {
        true => c.cmd(),
        false => &no_cmd,
    };
    let lists = [
        ("Entrypoint", c.entrypoint()),
        ("Cmd", cmd),
        ("Env", c.env()),
    ];
    for (name, list) in lists {
        for (i, v) in list.iter().flatten().enumerate() {
            if v.contains('\0') {
                return bad(format!("{name}[{i}]"), "contains a NUL byte");
            }
            // (One without `=` is left out, as it always was.)
            if name == "Env" && v.starts_with('=') {
                return bad(format!("Env[{i}]"), "names no variable (it starts with =)");
            }
        }
    }
    let taken = spec.process.cwd.is_none();
    if let Some(wd) = c
        .working_dir()
        .as_deref()
        .filter(|w| taken && !w.is_empty())
    {
        if wd.contains('\0') || !wd.starts_with('/') {
            return bad(
                "WorkingDir".into(),
                "must be an absolute path without a NUL byte",
            );
        }
    }
    Ok(())
}

/// The size of the writable layer over an image: the spec's root must be
/// a tmpfs (the default), whose size it takes, since the image brings the
/// rest of the root.
pub(crate) fn upper_size(spec: &SandboxSpec) -> Result<Option<Size>, ImageError> {
    match &spec.filesystem.root {
        Root::Tmpfs { size, .. } => Ok(*size),
        Root::Path { .. } | Root::Overlay { .. } => Err(ImageError::Invalid(
            "filesystem.root: an image brings the sandbox's root; leave it a tmpfs (its size limits the image's writable layer)".into(),
        )),
    }
}

/// The ids of the image's `User` (`NAME`, `UID`, `NAME:GROUP`, `UID:GID`),
/// names looked up in the image's own files.
fn user_ids(user: &str, layers: &[PathBuf]) -> Result<(u32, u32), ImageError> {
    let top_first: Vec<PathBuf> = layers.iter().rev().cloned().collect();
    let (u, g) = user
        .split_once(':')
        .map_or((user, None), |(u, g)| (u, Some(g)));
    let (uid, passwd_gid) = match u.parse::<u32>() {
        Ok(n) => (n, Some(account_gid(&top_first, n))),
        Err(_) => lookup(&top_first, "/etc/passwd", |f| f[0] == u).ok_or_else(|| {
            ImageError::Invalid(format!("the image's User {u:?} is not in its /etc/passwd"))
        })?,
    };
    let gid = match g {
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => lookup(&top_first, "/etc/group", |f| f[0] == g)
                .map(|(n, _)| n)
                .ok_or_else(|| {
                    ImageError::Invalid(format!("the image's group {g:?} is not in its /etc/group"))
                })?,
        },
        None => passwd_gid.unwrap_or(uid),
    };
    Ok((uid, gid))
}

/// Look the line whose fields `matches` up in the image's /etc/passwd or
/// /etc/group (the topmost layer that has the file), resolving inside
/// each layer: its id and, in passwd, its group.
fn lookup(
    layers_top_first: &[PathBuf],
    file: &str,
    matches: impl Fn(&[&str]) -> bool,
) -> Option<(u32, Option<u32>)> {
    for dir in layers_top_first {
        let Ok(root) = rustix::fs::open(
            dir,
            rustix::fs::OFlags::PATH | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        ) else {
            continue;
        };
        // Non-blocking, and only a regular file, read up to a bound.
        let Ok(fd) = crate::fs::open_in(
            &root,
            file,
            rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::NONBLOCK,
        ) else {
            // Not here. A layer that deleted it (or a directory on its
            // way, or made one opaque) hides what the layers below have.
            if hides(dir, file) {
                return None;
            }
            continue;
        };
        let text = crate::fs::read_regular(fd, 1 << 20)?;
        for line in text.lines() {
            let f: Vec<&str> = line.split(':').collect();
            if f.len() >= 4 && matches(&f) {
                return Some((f[2].parse().ok()?, f[3].parse().ok()));
            }
        }
        return None;
    }
    None
}

/// Does the layer at `dir` hide `file` (plain components) from the
/// layers below it, as overlayfs will: a whiteout at the file or at a
/// directory on its way (a 0:0 device, or a file marked
/// `user.overlay.whiteout` in a rootless store), or a directory on its
/// way marked opaque, or a symbolic link on its way (which overlayfs
/// shows in place of what the layers below have there)? Each component
/// is looked at without following a symlink.
fn hides(dir: &std::path::Path, file: &str) -> bool {
    use rustix::fs::FileType;
    let marked = |p: &std::path::Path, name: &str| {
        let mut v = [0u8; 1];
        rustix::fs::lgetxattr(p, name, &mut v).is_ok_and(|n| n == 1 && v[0] == b'y')
    };
    let parts: Vec<&str> = file.split('/').filter(|c| !c.is_empty()).collect();
    let mut at = dir.to_path_buf();
    for (i, part) in parts.iter().enumerate() {
        at.push(part);
        let Ok(st) = rustix::fs::lstat(&at) else {
            return false;
        };
        let last = i + 1 == parts.len();
        match FileType::from_raw_mode(st.st_mode) {
            FileType::CharacterDevice if st.st_rdev == 0 => return true,
            FileType::RegularFile => return marked(&at, "user.overlay.whiteout"),
            FileType::Directory if !last => {
                if marked(&at, "trusted.overlay.opaque") || marked(&at, "user.overlay.opaque") {
                    return true;
                }
            }
            FileType::Symlink => return true,
            _ => return false,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::oci::{Image, ImageConfig, RunConfig};
    use crate::ErrorKind;

    fn pulled(run: RunConfig) -> Pulled {
        let mut config = ImageConfig::default();
        config.set_config(Some(run));
        Pulled {
            image: Image {
                id: String::new(),
                name: String::new(),
                config,
                layers: Vec::new(),
            },
            layer_dirs: vec!["/store/bottom".into(), "/store/top".into()],
            unpacked_now: 0,
            notes: Vec::new(),
        }
    }

    fn run_config() -> RunConfig {
        let mut c = RunConfig::default();
        c.set_entrypoint(Some(vec!["/bin/sh".into(), "-c".into()]))
            .set_cmd(Some(vec!["echo default".into()]))
            .set_env(Some(vec!["PATH=/bin".into(), "GREETING=hello".into()]))
            .set_working_dir(Some("/work".into()))
            .set_user(Some("5:6".into()));
        c
    }

    fn with_user(user: Option<&str>) -> RunConfig {
        let mut c = run_config();
        c.set_user(user.map(String::from));
        c
    }

    #[test]
    fn the_image_gives_the_defaults() {
        let mut s = SandboxSpec::default();
        s.process.inherit_env = true;
        apply(&mut s, &pulled(run_config())).unwrap();
        assert_eq!(s.process.args, ["/bin/sh", "-c", "echo default"]);
        assert_eq!(s.process.env["GREETING"], "hello");
        assert!(!s.process.inherit_env, "never the caller's environment");
        assert_eq!(s.process.cwd.as_deref(), Some("/work"));
        assert_eq!((s.process.uid, s.process.gid), (Some(5), Some(6)));
        assert_eq!(
            s.filesystem.root,
            Root::Overlay {
                lower: vec!["/store/top".into(), "/store/bottom".into()],
                upper: None,
                size: None,
            }
        );
        assert_eq!(s.filesystem.mounts[0].kind(), "proc");
        assert_eq!(s.filesystem.mounts[1].kind(), "dev");
    }

    #[test]
    fn what_the_spec_says_wins() {
        let mut s = SandboxSpec::default();
        s.process.args = vec!["echo mine".into()];
        s.process.env.insert("GREETING".into(), "bye".into());
        s.process.cwd = Some("/tmp".into());
        s.process.uid = Some(0);
        s.filesystem.root = Root::Tmpfs {
            readonly: true,
            size: Some(Size(1 << 20)),
        };
        apply(&mut s, &pulled(run_config())).unwrap();
        assert_eq!(s.process.args, ["/bin/sh", "-c", "echo mine"]);
        assert_eq!(s.process.env["GREETING"], "bye");
        assert_eq!(s.process.env["PATH"], "/bin");
        assert_eq!(s.process.cwd.as_deref(), Some("/tmp"));
        // A uid given replaces the image's User whole, as `podman run
        // --user 0` does: its group is that account's (none here: 0).
        assert_eq!((s.process.uid, s.process.gid), (Some(0), Some(0)));
        assert!(matches!(
            s.filesystem.root,
            Root::Overlay {
                size: Some(Size(0x100000)),
                ..
            }
        ));
    }

    #[test]
    fn an_image_without_user_runs_as_its_root() {
        let mut s = SandboxSpec::default();
        apply(&mut s, &pulled(with_user(None))).unwrap();
        assert_eq!((s.process.uid, s.process.gid), (Some(0), Some(0)));
    }

    #[test]
    fn refused_specs_and_images() {
        let mut s = SandboxSpec::default();
        s.filesystem.root = Root::Path {
            path: "/srv/root".into(),
            readonly: true,
            make_mountpoints: false,
        };
        let e = apply(&mut s, &pulled(run_config())).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(e.to_string().starts_with("filesystem.root: "), "{e}");
        let mut s = SandboxSpec::default();
        let e = apply(&mut s, &pulled(RunConfig::default())).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the image has no Entrypoint or Cmd, and no command was given"
        );
        let mut s = SandboxSpec::default();
        let e = apply(&mut s, &pulled(with_user(Some("app")))).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the image's User \"app\" is not in its /etc/passwd"
        );
        // The image's own values are named as the image's fields.
        let bad = |edit: fn(&mut RunConfig)| {
            let mut c = run_config();
            edit(&mut c);
            apply(&mut SandboxSpec::default(), &pulled(c))
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            bad(|c| {
                c.set_env(Some(vec!["A=1".into(), "=x".into()]));
            }),
            "the image's Env[1]: names no variable (it starts with =)"
        );
        assert_eq!(
            bad(|c| {
                c.set_cmd(Some(vec!["a\0b".into()]));
            }),
            "the image's Cmd[0]: contains a NUL byte"
        );
        assert_eq!(
            bad(|c| {
                c.set_working_dir(Some("work".into()));
            }),
            "the image's WorkingDir: must be an absolute path without a NUL byte"
        );
        // What the sandbox does not take is not judged: a command given
        // replaces Cmd, a working directory given WorkingDir.
        let mut c = run_config();
        c.set_cmd(Some(vec!["a\0b".into()]))
            .set_working_dir(Some("work".into()));
        let mut s = SandboxSpec::default();
        s.process.args = vec!["mine".into()];
        s.process.cwd = Some("/srv".into());
        apply(&mut s, &pulled(c)).unwrap();
        assert_eq!(s.process.args, ["/bin/sh", "-c", "mine"]);
        assert_eq!(s.process.cwd.as_deref(), Some("/srv"));
    }
}
