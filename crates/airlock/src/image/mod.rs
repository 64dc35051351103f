//! Images without a daemon: resolve an OCI image layout, a docker-archive
//! or an OCI archive, verify and unpack its layers into the store once,
//! and turn it into a sandbox root (an overlay of the layers under a
//! writable tmpfs layer) plus the image config's defaults.
//!
//! [`crate::launch::prepare_image`] is the one place that does this for a
//! launch; the pieces are public for tools that manage the store.

mod apply;
mod error;
mod json_bound;
mod limits;
pub mod oci;
pub mod store;
mod tar_meta;
pub mod unpack;

pub use apply::apply;
pub(crate) use apply::upper_size;
pub use error::ImageError;
pub use oci::{Image, Selector};
pub use store::Store;

use crate::plan::{Caller, ROOT_CALLER_BASE};
use crate::spec::{self, SandboxSpec};
use std::path::{Path, PathBuf};

/// Split `PATH`, `PATH:TAG` or `PATH@sha256:HEX` (a PATH that exists
/// as given wins over the other readings, so a directory may have `@` or
/// `:` in its name; never over a whole pin, `@sha256:` and 64 hex digits:
/// whoever may write beside the image could otherwise make a path of
/// that name and have their image run, unverified, for the pinned one).
pub fn parse_ref(s: &str) -> (PathBuf, Selector) {
    if let Some((path, digest)) = s.rsplit_once('@') {
        let hex = digest.strip_prefix("sha256:").unwrap_or_default();
        if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return (path.into(), Selector::Digest(digest.to_string()));
        }
    }
    if Path::new(s).exists() {
        return (s.into(), Selector::Only);
    }
    match s.rsplit_once('@') {
        // After the last `@`: a pin (judged, and refused with its rules,
        // where the image is resolved) where it reads as one or the path
        // before it is there; otherwise the `@` is the path's (`./my@img`,
        // `./my@img:v1`).
        Some((path, digest))
            if !digest.contains('/')
                && (digest.starts_with("sha256:") || Path::new(path).exists()) =>
        {
            return (path.into(), Selector::Digest(digest.to_string()));
        }
        _ => {}
    }
    match s.rsplit_once(':') {
        Some((path, tag)) if !tag.contains('/') && !tag.is_empty() => {
            (path.into(), Selector::Tag(tag.to_string()))
        }
        _ => (s.into(), Selector::Only),
    }
}

/// What [`pull`] did: the image, its unpacked layers, and what was
/// neutralised while unpacking.
#[derive(Debug, Clone)]
pub struct Pulled {
    pub image: Image,
    /// The unpacked layers, bottom first.
    pub layer_dirs: Vec<PathBuf>,
    /// How many of them were unpacked by this pull.
    pub unpacked_now: usize,
    pub notes: Vec<String>,
}

/// The host id that owns an image's root's files in the store (a file of
/// id N is `base + N`'s): for a root caller, the id the sandbox's root
/// maps to, so a file of the image's root is the sandbox root's; 0,
/// without a user namespace, where the image's ids are the host's.
/// `None`: a rootless caller, who owns what it unpacks.
pub fn id_base(spec: &SandboxSpec, caller: Caller) -> Option<u32> {
    if !caller.is_root() {
        return None;
    }
    if !spec.namespaces.user {
        return Some(0);
    }
    let map = &spec.identity.uid_map;
    if map.is_empty() {
        // The plan's automatic map for a root caller.
        return Some(ROOT_CALLER_BASE);
    }
    spec::host_id(map, 0)
}

/// Layers are unpacked for one id base, groups shifted as users are: a
/// spec whose gid map sends the sandbox's gid 0 elsewhere than its uid
/// map sends uid 0 would see every file's group as nobody. Refused before
/// anything is unpacked, naming both.
pub fn check_id_bases(spec: &SandboxSpec, caller: Caller) -> Result<(), ImageError> {
    let Some(uid_base) = id_base(spec, caller).filter(|_| spec.namespaces.user) else {
        return Ok(());
    };
    let map = &spec.identity.gid_map;
    let gid_base = if map.is_empty() {
        Some(ROOT_CALLER_BASE)
    } else {
        spec::host_id(map, 0)
    };
    if uid_base > u32::MAX - 65535 {
        return Err(ImageError::Invalid(format!(
            "identity.uid_map: with an image, uid 0 must map to a host id with 65535 more above it (its layers' ids are {uid_base} + their own), not {uid_base}"
        )));
    }
    if gid_base != Some(uid_base) {
        let gid = gid_base.map_or("nothing".to_string(), |g| g.to_string());
        return Err(ImageError::Invalid(format!(
            "identity.gid_map: with an image, gid 0 must map to the host id uid 0 maps to ({uid_base}), not {gid}: its layers are unpacked for one base"
        )));
    }
    for (field, map) in [
        ("identity.uid_map", &spec.identity.uid_map),
        ("identity.gid_map", &spec.identity.gid_map),
    ] {
        shifts_by(field, map, uid_base)?;
    }
    Ok(())
}

/// A layer's file of id N (below 65536) is the host's `base + N`: so a
/// range that maps any such N, or maps onto any such host id, must map N
/// to `base + N`, or a file would be another id's inside (one user's
/// files another's) or nobody's to its own user. Ids left unmapped, and
/// ranges beyond both, are fine.
fn shifts_by(field: &str, map: &[spec::IdMap], base: u32) -> Result<(), ImageError> {
    let meets = |start: u32, range: std::ops::Range<u64>| {
        let ids = u64::from(start)..u64::from(start) + 65536;
        range.start < ids.end && ids.start < range.end
    };
    for m in map {
        let inside = u64::from(m.inside)..u64::from(m.inside) + u64::from(m.count);
        let outside = u64::from(m.outside)..u64::from(m.outside) + u64::from(m.count);
        let shifted = u64::from(m.outside) == u64::from(m.inside) + u64::from(base);
        if (meets(0, inside) || meets(base, outside)) && !shifted {
            return Err(ImageError::Invalid(format!(
                "{field}: with an image, ids below 65536 must map to {base} + the id, the host ids its layers give their files; the range {} -> {} ({}) does not",
                m.inside, m.outside, m.count
            )));
        }
    }
    Ok(())
}

/// Where the slow steps of a pull (reading an archive, verifying and
/// unpacking a layer) are announced before they start, for a front end
/// that shows progress; set once per process (the CLI, on a terminal or
/// with -v). Nothing is announced without it.
static PROGRESS: std::sync::OnceLock<fn(&str)> = std::sync::OnceLock::new();

/// Announce the slow steps of every pull of this process to `hook`.
pub fn set_progress(hook: fn(&str)) {
    let _ = PROGRESS.set(hook);
}

fn progress(msg: impl FnOnce() -> String) {
    if let Some(hook) = PROGRESS.get() {
        hook(&msg());
    }
}

/// A size for people: 1.2 GB, 120 MB, 12 kB (powers of 1000, as podman).
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1000.0 && unit + 1 < UNITS.len() {
        v /= 1000.0;
        unit += 1;
    }
    if unit == 0 || v >= 10.0 {
        format!("{v:.0} {}", UNITS[unit])
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

fn file_size(p: &Path) -> u64 {
    std::fs::metadata(p).map_or(0, |m| m.len())
}

/// Resolve the image at `reference`, make sure its layers are in `store`
/// (owned from `id_base` up, see [`id_base`]), and record it there.
pub fn pull(reference: &str, store: &Store, id_base: Option<u32>) -> Result<Pulled, ImageError> {
    if let Some(uid) = id_base {
        store.check_reachable_by(uid)?;
    }
    let (path, sel) = parse_ref(reference);
    // Until the image is recorded: a prune would take its fresh layers.
    let _pulling = store.lock(false)?;
    store.sweep_scratch();
    let (dir, scratch) = image_dir(&path, store)?;
    let image = oci::resolve(&dir, &sel)?;
    let mut pulled = Pulled {
        image,
        layer_dirs: Vec::new(),
        unpacked_now: 0,
        notes: Vec::new(),
    };
    // The layers of one image share one budget.
    let mut budget = unpack::Budget::new(store.limits);
    let count = pulled.image.layers.len();
    for (i, l) in pulled.image.layers.iter().enumerate() {
        let (d, fresh) = store.layer(l, id_base, &mut budget, || {
            progress(|| {
                format!(
                    "verifying and unpacking layer {}/{count} {} ({})",
                    i + 1,
                    &l.diff_id[..l.diff_id.len().min(19)],
                    human_size(file_size(&l.blob))
                )
            })
        })?;
        pulled.unpacked_now += fresh as usize;
        pulled.notes.extend(
            store
                .layer_notes(&d)
                .into_iter()
                .map(|n| format!("layer {}: {n}", &l.diff_id[7..19])),
        );
        pulled.layer_dirs.push(d);
    }
    // Absolute, so that `image ls` says where it came from whatever the
    // directory it is run in.
    let source = std::path::absolute(&path).unwrap_or_else(|_| path.clone());
    store.record(&pulled.image, &source.display().to_string())?;
    drop(scratch);
    Ok(pulled)
}

/// The image directory at `path`: the path itself, or, for an archive,
/// its contents unpacked (as plain files, through the same confined
/// unpacker) into the store's tmp/, removed when the scratch is dropped.
fn image_dir(path: &Path, store: &Store) -> Result<(PathBuf, Option<Scratch>), ImageError> {
    let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => {
            ImageError::NotFound(format!("{}: no such file or directory", path.display()))
        }
        _ => ImageError::io(path, e),
    })?;
    if meta.is_dir() {
        return Ok((path.to_path_buf(), None));
    }
    progress(|| {
        format!(
            "reading archive {} ({})",
            path.display(),
            human_size(meta.len())
        )
    });
    let mut f = std::fs::File::open(path).map_err(|e| ImageError::io(path, e))?;
    // `docker save | gzip` is common: said as such, not as a tar header
    // of binary bytes.
    let mut magic = [0u8; 4];
    let n = std::io::Read::read(&mut f, &mut magic).map_err(|e| ImageError::io(path, e))?;
    if store::compression_of(&magic[..n]).is_some() {
        return Err(ImageError::Invalid(format!(
            "{}: a compressed archive (gzip or zstd); decompress it first (gunzip, unzstd)",
            path.display()
        )));
    }
    std::io::Seek::rewind(&mut f).map_err(|e| ImageError::io(path, e))?;
    let scratch = Scratch(store.scratch("archive")?);
    let dir = scratch.0.path().to_path_buf();
    let mut budget = unpack::Budget::new(store.limits);
    unpack::unpack(f, &dir, unpack::Options::default(), &mut budget)
        .map_err(|e| e.context(path.display().to_string()))?;
    Ok((dir, Some(scratch)))
}

/// An archive's copy, removed (its lock still held) when dropped.
struct Scratch(store::Scratch);

impl Drop for Scratch {
    fn drop(&mut self) {
        crate::fs::remove_tree(self.0.path());
    }
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
        // `@` in a directory's name: a digest only where one follows, and
        // a path that is there is that path.
        assert_eq!(
            parse_ref("/no/such/a@b/img:v1"),
            ("/no/such/a@b/img".into(), Selector::Tag("v1".into()))
        );
        assert_eq!(
            parse_ref("/no/a@b/img@sha256:ab"),
            ("/no/a@b/img".into(), Selector::Digest("sha256:ab".into()))
        );
        assert_eq!(
            parse_ref("/no/such/my@img:v1"),
            ("/no/such/my@img".into(), Selector::Tag("v1".into()))
        );
        let dir = tempfile::tempdir().unwrap();
        let at = dir.path().join("x@sha256:ab");
        std::fs::create_dir(&at).unwrap();
        assert_eq!(parse_ref(at.to_str().unwrap()), (at, Selector::Only));
        // A whole pin is a pin, whatever is there by its name.
        let pin = format!("sha256:{}", "0a".repeat(32));
        let at = dir.path().join(format!("x@{pin}"));
        std::fs::create_dir(&at).unwrap();
        assert_eq!(
            parse_ref(at.to_str().unwrap()),
            (dir.path().join("x"), Selector::Digest(pin))
        );
    }

    #[test]
    fn layers_belong_to_the_sandbox_root_of_a_root_caller() {
        let root = Caller::new(0, 0);
        let mut s = SandboxSpec::default();
        assert_eq!(id_base(&s, root), Some(ROOT_CALLER_BASE));
        assert_eq!(id_base(&s, Caller::new(1000, 1000)), None);
        s.identity.uid_map = vec![spec::IdMap {
            inside: 0,
            outside: 200000,
            count: 65536,
        }];
        assert_eq!(id_base(&s, root), Some(200000));
        s.identity.uid_map[0].inside = 1;
        assert_eq!(id_base(&s, root), None, "the sandbox's root is not mapped");
        s.namespaces.user = false;
        assert_eq!(id_base(&s, root), Some(0));
    }

    #[test]
    fn an_image_needs_one_id_base_for_uids_and_gids() {
        let root = Caller::new(0, 0);
        let map = |outside| {
            vec![spec::IdMap {
                inside: 0,
                outside,
                count: 65536,
            }]
        };
        let mut s = SandboxSpec::default();
        check_id_bases(&s, root).unwrap();
        s.identity.uid_map = map(300000);
        s.identity.gid_map = map(300000);
        check_id_bases(&s, root).unwrap();
        s.identity.gid_map = map(400000);
        let e = check_id_bases(&s, root).unwrap_err().to_string();
        assert!(
            e.starts_with("identity.gid_map: ") && e.contains("(300000), not 400000"),
            "{e}"
        );
        // Files are shifted, not translated: a range that lands on the
        // shifted ids must be the same shift.
        let ranges = |second: u32| {
            vec![
                spec::IdMap {
                    inside: 0,
                    outside: 300000,
                    count: 1,
                },
                spec::IdMap {
                    inside: 1,
                    outside: second,
                    count: 65535,
                },
            ]
        };
        s.identity.uid_map = ranges(300001);
        s.identity.gid_map = ranges(300001);
        check_id_bases(&s, root).unwrap();
        s.identity.gid_map = map(300000);
        for second in [400001, 300005] {
            s.identity.uid_map = ranges(second);
            let e = check_id_bases(&s, root).unwrap_err().to_string();
            assert!(
                e.starts_with("identity.uid_map: ")
                    && e.contains(&format!("1 -> {second} (65535)")),
                "{e}"
            );
        }
        // Beyond the image's ids: no matter.
        s.identity.uid_map = map(300000);
        s.identity.uid_map.push(spec::IdMap {
            inside: 70000,
            outside: 500000,
            count: 10,
        });
        check_id_bases(&s, root).unwrap();
    }
}
