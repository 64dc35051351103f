//! Host paths as the kernel will see them, and how two paths relate.

use std::path::{Component, Path, PathBuf};

/// Make `path` absolute and resolve `.` and `..` lexically (`/usr/..` is
/// `/`). Symlinks are not followed here; see [`canonical`].
pub fn normalize(path: &str) -> String {
    let mut parts: Vec<String> = Vec::new();
    for c in Path::new(path).components() {
        match c {
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            Component::ParentDir => {
                parts.pop();
            }
            Component::Normal(p) => parts.push(p.to_string_lossy().into_owned()),
        }
    }
    format!("/{}", parts.join("/"))
}

/// The path the kernel will reach: symlinks followed and `..` resolved on
/// the host, as realpath(3) does, in that order (`link/..` is the parent
/// of the link's target, not the link's own directory). A path that does
/// not exist (yet) is judged by the canonical form of its longest
/// existing prefix, the rest taken as written.
pub fn canonical(path: &str) -> String {
    let abs = Path::new("/").join(path);
    if let Ok(c) = std::fs::canonicalize(&abs) {
        return c.to_string_lossy().into_owned();
    }
    let mut cur = PathBuf::from("/");
    let mut missing: Vec<String> = Vec::new();
    for c in abs.components() {
        match c {
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            Component::ParentDir => {
                if missing.pop().is_none() {
                    cur.pop();
                }
            }
            Component::Normal(name) if missing.is_empty() => {
                match std::fs::canonicalize(cur.join(name)) {
                    Ok(real) => cur = real,
                    Err(_) => missing.push(name.to_string_lossy().into_owned()),
                }
            }
            Component::Normal(name) => missing.push(name.to_string_lossy().into_owned()),
        }
    }
    normalize(&cur.join(missing.join("/")).to_string_lossy())
}

/// Directories the rules name, which another mount of the same object
/// must not hide: a bind mount of `/` at /srv/alias is the host's `/`.
const LANDMARKS: &[&str] = &[
    "/", "/etc", "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/boot", "/root",
    "/var", "/var/lib", "/var/tmp", "/proc", "/sys", "/dev", "/dev/shm", "/run", "/home", "/tmp",
];

/// The identities (device and inode) of the `LANDMARKS` and of `extra`
/// on this host, read once for every path judged against them.
pub struct Landmarks(Vec<(u64, u64, String)>);

impl Landmarks {
    pub fn probe(extra: Option<&str>) -> Landmarks {
        Landmarks::of(LANDMARKS.iter().copied().chain(extra))
    }

    /// A landmark that is a symlink names the directory it leads to
    /// (ostree's /root → /var/roothome, /home → /var/home): the rules are
    /// written for the name, and a bind source is judged where it leads.
    /// Merged /usr's links (/bin → usr/bin) are left to their targets,
    /// which the same rules name already.
    fn of<'a>(landmarks: impl Iterator<Item = &'a str>) -> Landmarks {
        use std::os::unix::fs::MetadataExt;
        Landmarks(
            landmarks
                .filter_map(|l| {
                    let link = std::fs::symlink_metadata(l).ok()?;
                    let m = if link.is_symlink() {
                        // Merged /usr's links, told by the link itself (every
                        // start judges these): no need to resolve them.
                        let target = std::fs::read_link(l).ok()?;
                        if target.starts_with("usr") || target.starts_with("/usr") {
                            return None;
                        }
                        let to = std::fs::canonicalize(l).ok()?;
                        if to.starts_with("/usr") {
                            return None;
                        }
                        std::fs::metadata(to).ok()?
                    } else {
                        link
                    };
                    m.is_dir().then(|| (m.dev(), m.ino(), l.to_string()))
                })
                .collect(),
        )
    }

    /// `path` (canonical) by the name of the object it reaches: when it,
    /// or a directory above it, is the same directory as a landmark by
    /// another name, that name takes its place.
    pub fn name(&self, path: &str) -> String {
        use std::os::unix::fs::MetadataExt;
        let mut at = Path::new(path);
        let mut rest: Vec<&std::ffi::OsStr> = Vec::new();
        loop {
            if let Ok(m) = std::fs::metadata(at) {
                if let Some((_, _, mark)) = self
                    .0
                    .iter()
                    .find(|(dev, ino, _)| (*dev, *ino) == (m.dev(), m.ino()))
                {
                    if Path::new(mark) == at {
                        return path.to_string();
                    }
                    let mut named = PathBuf::from(mark);
                    named.extend(rest.iter().rev());
                    return named.to_string_lossy().into_owned();
                }
            }
            match (at.parent(), at.file_name()) {
                (Some(parent), Some(name)) => {
                    rest.push(name);
                    at = parent;
                }
                _ => return path.to_string(),
            }
        }
    }
}

/// Is `a` the same path as `b` or inside it?
pub fn within(a: &str, b: &str) -> bool {
    let dir = b.trim_end_matches('/');
    b == "/" || a == b || (a.starts_with(dir) && a.as_bytes().get(dir.len()) == Some(&b'/'))
}

/// Does a bind of `source` expose `target`? It does when `target` is the
/// source itself, inside it, or the source is one of its ancestors.
pub fn exposes(source: &str, target: &str) -> bool {
    within(target, source)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn within_is_by_whole_components() {
        assert!(within("/a/b", "/a"));
        assert!(within("/a/b", "/a/"));
        assert!(within("/a", "/a"));
        assert!(within("/anything", "/"));
        assert!(!within("/ab", "/a"));
        assert!(!within("/a", "/a/b"));
        assert!(
            !within("/a", "/a/"),
            "compared as written: a trailing slash on b is not taken off a"
        );
    }

    #[test]
    fn a_parent_after_a_link_is_the_targets_parent() {
        let dir = std::env::temp_dir().join(format!("airlock-canonical-{}", std::process::id()));
        let target = dir.join("target/sub");
        std::fs::create_dir_all(&target).unwrap();
        std::os::unix::fs::symlink(&target, dir.join("link")).unwrap();
        let d = std::fs::canonicalize(&dir).unwrap();
        let d = d.to_str().unwrap();
        // `..` after the link: the target's parent, as the kernel goes.
        assert_eq!(canonical(&format!("{d}/link/..")), format!("{d}/target"));
        // And past a part that does not exist yet, as written.
        assert_eq!(
            canonical(&format!("{d}/link/new/../x")),
            format!("{d}/target/sub/x")
        );
        assert_eq!(
            canonical(&format!("{d}/missing/../link")),
            format!("{d}/target/sub")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn normalizes() {
        assert_eq!(normalize("/usr/.."), "/");
        assert_eq!(normalize("/home/me/share/../.."), "/home");
        assert_eq!(normalize("/../../etc"), "/etc");
        assert_eq!(normalize("/a/./b/"), "/a/b");
    }

    #[test]
    fn relations() {
        assert!(within("/etc/passwd", "/etc"));
        assert!(!within("/etcetera", "/etc"));
        assert!(within("/x", "/"));
        assert!(exposes("/", "/etc"));
        assert!(exposes("/etc", "/etc/ssh"));
        assert!(!exposes("/home", "/etc"));
    }

    #[test]
    fn another_mount_of_a_landmark_goes_by_its_name() {
        // A plain directory is itself; so is a landmark.
        let d = tempfile::tempdir().unwrap();
        let p = d.path().to_string_lossy().into_owned();
        let marks = Landmarks::probe(None);
        assert_eq!(marks.name(&p), p);
        assert_eq!(marks.name("/etc/ssh"), "/etc/ssh");
        // An extra landmark found by another name (here: itself, named
        // through the extra list, then a directory inside it).
        std::fs::create_dir(d.path().join("inner")).unwrap();
        let inner = format!("{p}/inner");
        assert_eq!(
            Landmarks::probe(Some(&inner)).name(&format!("{inner}/x")),
            format!("{inner}/x")
        );
    }

    #[test]
    fn a_landmark_that_is_a_symlink_names_where_it_leads() {
        // ostree's /root is a link to /var/roothome: a bind of the latter
        // is judged as /root.
        let d = tempfile::tempdir().unwrap();
        let real = d.path().join("var-roothome");
        std::fs::create_dir_all(real.join(".ssh")).unwrap();
        let link = d.path().join("root");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let (real, link) = (real.to_str().unwrap(), link.to_str().unwrap());
        let marks = Landmarks::of([link].into_iter());
        assert_eq!(marks.name(&format!("{real}/.ssh")), format!("{link}/.ssh"));
        assert_eq!(marks.name(real), link);
        // Merged /usr's links keep their targets' names.
        assert_eq!(Landmarks::probe(None).name("/usr/bin"), "/usr/bin");
    }

    #[test]
    fn canonical_follows_symlinks() {
        let d = std::env::temp_dir().join(format!("airlock-canon-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let link = d.join("to-root");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink("/", &link).unwrap();
        assert_eq!(canonical(&link.to_string_lossy()), "/");
        assert_eq!(canonical(&format!("{}/etc", link.display())), "/etc");
        assert_eq!(
            canonical(&format!("{}/no/such", link.display())),
            "/no/such"
        );
        std::fs::remove_dir_all(&d).unwrap();
    }
}
