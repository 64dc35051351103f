//! The filesystem's fields: the root, each mount, an overlay's persistent
//! layer, a tmpfs's size.

use super::{absolute, destination, SpecError};
use crate::spec::{Mount, Root};

/// A tmpfs's size: the kernel takes `size=0` for no limit at all.
pub(super) fn tmpfs_size(field: &str, size: Option<crate::spec::Size>) -> Result<(), SpecError> {
    if size == Some(crate::spec::Size(0)) {
        return Err(SpecError::new(
            field,
            "0 bytes: the kernel takes a tmpfs of size 0 for one without a limit; give at least 1 byte, or no size",
        ));
    }
    Ok(())
}

/// The most layers a sandbox's overlay root stacks (overlayfs's own limit
/// is not much higher, and every layer is a path in one mount option).
pub const MAX_LAYERS: usize = 128;

pub(super) fn root(root: &Root) -> Result<(), SpecError> {
    match root {
        Root::Path {
            readonly: false,
            make_mountpoints: true,
            ..
        } => Err(SpecError::new(
            "filesystem.root.make_mountpoints",
            "only a read-only root needs it: a writable root gets its mount points made in it anyway",
        )),
        Root::Path { path, .. } => absolute("filesystem.root.path", path),
        Root::Overlay { lower, upper, size } => {
            if lower.is_empty() {
                return Err(SpecError::new(
                    "filesystem.root.lower",
                    "an overlay needs at least one lower layer",
                ));
            }
            if lower.len() > MAX_LAYERS {
                return Err(SpecError::new(
                    "filesystem.root.lower",
                    format!("at most {MAX_LAYERS} layers"),
                ));
            }
            for (i, l) in lower.iter().enumerate() {
                absolute(&format!("filesystem.root.lower[{i}]"), l)?;
            }
            separate_layers("filesystem.root", lower, &[("upper", upper.as_deref())])?;
            tmpfs_size("filesystem.root.size", *size)?;
            match (upper, size) {
                // The writes go to the host's directory: no tmpfs to size,
                // and a limit asked for must not go unapplied.
                (Some(_), Some(_)) => Err(SpecError::new(
                    "filesystem.root.size",
                    "sizes the tmpfs that holds an overlay's writes; with `upper` they go to that directory instead",
                )),
                (Some(u), None) => absolute("filesystem.root.upper", u),
                (None, _) => Ok(()),
            }
        }
        Root::Tmpfs { size, .. } => tmpfs_size("filesystem.root.size", *size),
    }
}

/// One entry of `filesystem.mounts`, called `f`.
pub(super) fn mount(f: &str, m: &Mount) -> Result<(), SpecError> {
    destination(&format!("{f}.destination"), m.destination())?;
    if let Mount::Tmpfs { size, .. } = m {
        tmpfs_size(&format!("{f}.size"), *size)?;
    }
    match m {
        Mount::Bind { source, .. } => absolute(&format!("{f}.source"), source),
        Mount::Overlay {
            lower,
            writable,
            size,
            upper_dir,
            work_dir,
            ..
        } => {
            persistent_layer(f, *writable, *size, upper_dir, work_dir)?;
            let least = if *writable { 1 } else { 2 };
            if lower.len() < least || lower.len() > MAX_LAYERS {
                return Err(SpecError::new(
                    f.to_string(),
                    format!(
                        "an overlay of {} layers: {least} to {MAX_LAYERS} are taken{}",
                        lower.len(),
                        if *writable {
                            ""
                        } else {
                            " without a writable layer (overlayfs wants two; one is a read-only bind)"
                        }
                    ),
                ));
            }
            for (j, l) in lower.iter().enumerate() {
                absolute(&format!("{f}.lower[{j}]"), l)?;
            }
            let writes = [("upper_dir", upper_dir.as_deref()), ("work_dir", work_dir.as_deref())];
            separate_layers(f, lower, &writes)?;
            match size {
                Some(_) if !writable => Err(SpecError::new(
                    format!("{f}.size"),
                    "sizes the writable layer, which a read-only overlay does not have",
                )),
                _ => tmpfs_size(&format!("{f}.size"), *size),
            }
        }
        Mount::Symlink { target, .. } if target.is_empty() || target.contains('\0') => Err(
            SpecError::new(format!("{f}.target"), "must be non-empty without NUL"),
        ),
        // A mode taken from a file's st_mode keeps its type bits, which a
        // plan written for the runner could not carry.
        Mount::Dir { mode: Some(m), .. }
        | Mount::Tmpfs { mode: Some(m), .. }
        | Mount::File { mode: Some(m), .. }
            if m.0 > 0o7777 =>
        {
            Err(SpecError::new(
                format!("{f}.mode"),
                format!(
                    "{:o} is larger than 7777: a mode holds permission bits only, not a file's type",
                    m.0
                ),
            ))
        }
        Mount::Dir { mode: Some(m), .. }
        | Mount::Tmpfs { mode: Some(m), .. }
        | Mount::File { mode: Some(m), .. }
            if m.0 & 0o6000 != 0 =>
        {
            Err(SpecError::new(
                format!("{f}.mode"),
                "setuid and setgid bits are not allowed",
            ))
        }
        // Written there, its content would go to the kernel (a sysctl,
        // /proc/sysrq-trigger), by PID 1, which without a user namespace
        // of its own is the host's root.
        Mount::File {
            destination,
            bind: false,
            ..
        } if in_kernel_fs(destination) => Err(SpecError::new(
            format!("{f}.destination"),
            "a file written under /proc or /sys goes to the kernel (a sysctl, /proc/sysrq-trigger), not into the sandbox: bind one over it instead (bind = true, --bind-data)",
        )),
        // A file's mode defaults to 0644; a directory has none to give.
        Mount::Dir {
            mode: None,
            chmod: true,
            ..
        } => Err(SpecError::new(
            format!("{f}.chmod"),
            "gives mode to a directory already there, and no mode is set",
        )),
        _ => Ok(()),
    }
}

/// Whether `path` (absolute) lies under /proc or /sys, however its
/// slashes are written.
fn in_kernel_fs(path: &str) -> bool {
    matches!(
        path.split('/').find(|c| !c.is_empty()),
        Some("proc" | "sys")
    )
}

/// An overlay's layers, and the directories that take its writes, are
/// separate directories: one given twice is refused by name (overlayfs
/// said only "Too many levels of symbolic links"). By the paths as
/// written, components compared. One inside another is left to the
/// kernel, which takes it when the two are on different mounts (an
/// overlay dir on a tmpfs /tmp over a root of `/`).
fn separate_layers(
    f: &str,
    lower: &[String],
    writes: &[(&str, Option<&str>)],
) -> Result<(), SpecError> {
    use std::path::Path;
    let named: Vec<(String, &str)> = lower
        .iter()
        .enumerate()
        .map(|(i, l)| (format!("lower[{i}]"), l.as_str()))
        .chain(
            writes
                .iter()
                .filter_map(|(k, d)| d.map(|d| (k.to_string(), d))),
        )
        .collect();
    for (j, (later, b)) in named.iter().enumerate() {
        if let Some((earlier, a)) = named[..j]
            .iter()
            .find(|(_, a)| Path::new(a) == Path::new(b))
        {
            return Err(SpecError::new(
                format!("{f}.{later}"),
                format!(
                    "{b} is also {earlier} ({a}); an overlay's layers must be separate directories"
                ),
            ));
        }
    }
    Ok(())
}

/// An overlay mount's `upper_dir` and `work_dir`: both or neither, on a
/// writable overlay, each absolute, neither inside the other (overlayfs
/// refuses that with a bare EINVAL or ELOOP).
fn persistent_layer(
    f: &str,
    writable: bool,
    size: Option<crate::spec::Size>,
    upper: &Option<String>,
    work: &Option<String>,
) -> Result<(), SpecError> {
    let (upper, work) = match (upper, work) {
        (None, None) => return Ok(()),
        (Some(u), Some(w)) => (u, w),
        (Some(_), None) => {
            return Err(SpecError::new(
                format!("{f}.work_dir"),
                "is needed with upper_dir: overlayfs takes both, on one filesystem",
            ))
        }
        (None, Some(_)) => {
            return Err(SpecError::new(
                format!("{f}.upper_dir"),
                "is needed with work_dir: overlayfs takes both, on one filesystem",
            ))
        }
    };
    if !writable {
        return Err(SpecError::new(
            format!("{f}.writable"),
            "an overlay with upper_dir is writable: set writable = true",
        ));
    }
    if size.is_some() {
        return Err(SpecError::new(
            format!("{f}.size"),
            "sizes a tmpfs that holds the writes; with upper_dir they go to that directory",
        ));
    }
    absolute(&format!("{f}.upper_dir"), upper)?;
    absolute(&format!("{f}.work_dir"), work)?;
    let inside = |a: &str, b: &str| {
        let a = std::path::Path::new(a);
        a.starts_with(b) || std::path::Path::new(b).starts_with(a)
    };
    if inside(upper, work) {
        return Err(SpecError::new(
            format!("{f}.work_dir"),
            format!("{work} and upper_dir {upper} are one inside the other; overlayfs needs two separate directories"),
        ));
    }
    Ok(())
}
