//! Images without a daemon: resolve an OCI image layout, a docker-archive
//! or an OCI archive, verify and unpack its layers into the store once,
//! and turn it into a sandbox root (an overlay of the layers under a
//! writable tmpfs layer) plus the image config's defaults.

pub mod oci;
pub mod store;
pub mod unpack;

pub use oci::{Image, Selector};
pub use store::Store;

use crate::spec::{Mount, Root, SandboxSpec};
use std::fmt;
use std::path::{Path, PathBuf};

/// An image that cannot be used, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageError {
    pub message: String,
}

impl ImageError {
    pub fn new(message: impl Into<String>) -> Self {
        ImageError {
            message: message.into(),
        }
    }

    pub fn io(path: &Path, e: std::io::Error) -> Self {
        ImageError::new(format!(
            "{}: {}",
            path.display(),
            crate::report::describe(&e)
        ))
    }
}

impl fmt::Display for ImageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ImageError {}

/// Split `PATH`, `PATH:TAG` or `PATH@sha256:...` (a PATH that exists as
/// given wins over a tag reading).
pub fn parse_ref(s: &str) -> (PathBuf, Selector) {
    if let Some((path, digest)) = s.split_once('@') {
        return (path.into(), Selector::Digest(digest.to_string()));
    }
    if Path::new(s).exists() {
        return (s.into(), Selector::Only);
    }
    match s.rsplit_once(':') {
        Some((path, tag)) if !tag.contains('/') && !tag.is_empty() => {
            (path.into(), Selector::Tag(tag.to_string()))
        }
        _ => (s.into(), Selector::Only),
    }
}

/// What `prepare` did: the image, its unpacked layers, and what was
/// neutralised while unpacking.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub image: Image,
    pub layer_dirs: Vec<PathBuf>,
    pub unpacked_now: usize,
    pub notes: Vec<String>,
}

/// Resolve the image at `reference`, make sure its layers are in `store`,
/// and record it there.
pub fn pull(reference: &str, store: &Store, id_base: Option<u32>) -> Result<Prepared, ImageError> {
    let (path, sel) = parse_ref(reference);
    let meta = std::fs::metadata(&path).map_err(|e| ImageError::io(&path, e))?;
    // An archive is unpacked (as plain files, through the same confined
    // unpacker) into the store's tmp/ and read from there.
    let mut scratch = None;
    let dir = if meta.is_dir() {
        path.clone()
    } else {
        let nonce = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let d = store
            .root
            .join("tmp")
            .join(format!("archive-{}-{nonce}", std::process::id()));
        std::fs::create_dir_all(&d).map_err(|e| ImageError::io(&d, e))?;
        scratch = Some(Scratch(d.clone()));
        let f = std::fs::File::open(&path).map_err(|e| ImageError::io(&path, e))?;
        unpack::unpack(f, &d, unpack::Options::default())
            .map_err(|e| ImageError::new(format!("{}: {e}", path.display())))?;
        d
    };
    let image = oci::resolve(&dir, &sel)?;
    let mut layer_dirs = Vec::new();
    let mut unpacked_now = 0;
    let mut notes = Vec::new();
    for l in &image.layers {
        let (d, fresh) = store.layer(l, id_base)?;
        unpacked_now += fresh as usize;
        notes.extend(
            store
                .layer_notes(&l.diff_id)
                .into_iter()
                .map(|n| format!("layer {}: {n}", &l.diff_id[7..19])),
        );
        layer_dirs.push(d);
    }
    store.record(&image, &path.display().to_string())?;
    drop(scratch);
    Ok(Prepared {
        image,
        layer_dirs,
        unpacked_now,
        notes,
    })
}

struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        store::remove_tree(&self.0);
    }
}

/// Look a user or group name up in the image's /etc/passwd or /etc/group
/// (the topmost layer that has the file), resolving inside each layer.
fn lookup(layers_top_first: &[PathBuf], file: &str, name: &str) -> Option<(u32, Option<u32>)> {
    for dir in layers_top_first {
        let Ok(root) = rustix::fs::open(
            dir,
            rustix::fs::OFlags::PATH | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        ) else {
            continue;
        };
        let Ok(fd) = crate::fs::open_in(&root, file, rustix::fs::OFlags::RDONLY) else {
            continue;
        };
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut std::fs::File::from(fd), &mut text);
        for line in text.lines() {
            let f: Vec<&str> = line.split(':').collect();
            if f.len() >= 4 && f[0] == name {
                return Some((f[2].parse().ok()?, f[3].parse().ok()));
            }
        }
        return None;
    }
    None
}

/// Turn the image into the sandbox's root and defaults: the layers as an
/// overlay (topmost first) with a tmpfs upper layer, a fresh /proc and
/// /dev, and Entrypoint+Cmd, Env, WorkingDir and User from its config.
/// `command` replaces Cmd (as `podman run IMAGE ARGS...` does).
pub fn apply(spec: &mut SandboxSpec, p: &Prepared, command: &[String]) -> Result<(), ImageError> {
    let mut lower: Vec<String> = p
        .layer_dirs
        .iter()
        .map(|d| d.display().to_string())
        .collect();
    lower.reverse();
    let size = match &spec.filesystem.root {
        Root::Overlay { size, .. } => *size,
        _ => None,
    };
    spec.filesystem.root = Root::Overlay {
        lower,
        upper: None,
        size,
    };
    spec.filesystem.mounts.insert(
        0,
        Mount::Proc {
            destination: "/proc".into(),
        },
    );
    spec.filesystem.mounts.insert(
        1,
        Mount::Dev {
            destination: "/dev".into(),
        },
    );
    let c = p.image.config.config.clone().unwrap_or_default();
    let entry = c.entrypoint.unwrap_or_default();
    let rest = if command.is_empty() {
        c.cmd.unwrap_or_default()
    } else {
        command.to_vec()
    };
    spec.process.args = entry.into_iter().chain(rest).collect();
    if spec.process.args.is_empty() {
        return Err(ImageError::new(
            "the image has no Entrypoint or Cmd, and no command was given",
        ));
    }
    spec.process.inherit_env = false;
    for kv in c.env.unwrap_or_default() {
        if let Some((k, v)) = kv.split_once('=') {
            spec.process
                .env
                .entry(k.to_string())
                .or_insert_with(|| v.to_string());
        }
    }
    if let Some(wd) = c.working_dir.filter(|w| !w.is_empty()) {
        spec.process.cwd = wd;
    }
    // An image without User runs as its root, rootless too (as podman does).
    spec.process.uid = Some(0);
    spec.process.gid = Some(0);
    if let Some(user) = c.user.filter(|u| !u.is_empty()) {
        let mut top_first = p.layer_dirs.clone();
        top_first.reverse();
        let (u, g) = user
            .split_once(':')
            .map_or((user.as_str(), None), |(u, g)| (u, Some(g)));
        let (uid, passwd_gid) = match u.parse::<u32>() {
            Ok(n) => (n, None),
            Err(_) => lookup(&top_first, "/etc/passwd", u).ok_or_else(|| {
                ImageError::new(format!("the image's User {u:?} is not in its /etc/passwd"))
            })?,
        };
        let gid = match g {
            Some(g) => match g.parse::<u32>() {
                Ok(n) => n,
                Err(_) => lookup(&top_first, "/etc/group", g)
                    .map(|(n, _)| n)
                    .ok_or_else(|| {
                        ImageError::new(format!("the image's group {g:?} is not in its /etc/group"))
                    })?,
            },
            None => passwd_gid.unwrap_or(uid),
        };
        spec.process.uid = Some(uid);
        spec.process.gid = Some(gid);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refs() {
        assert_eq!(
            parse_ref("/no/such/img:v1"),
            ("/no/such/img".into(), Selector::Tag("v1".into()))
        );
        assert_eq!(
            parse_ref("/no/such/img@sha256:ab"),
            ("/no/such/img".into(), Selector::Digest("sha256:ab".into()))
        );
        assert_eq!(
            parse_ref("/no/such/img"),
            ("/no/such/img".into(), Selector::Only)
        );
    }
}
