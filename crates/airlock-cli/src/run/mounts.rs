//! The mount flags, in the order given (as in bwrap: a later mount goes
//! over an earlier one), turned into spec mounts; each remembers the flag
//! it came from, so that an error names what the user typed
//! (`--tmpfs scratch`) rather than a spec index that counts the default
//! view's mounts the user never wrote.

use super::bwrap::{octal_mode, read_fd};
use airlock::report::{rename_fields, replace_where};
use airlock::spec::{self, FileMode, Mount, Root, SandboxSpec};
use clap::ArgMatches;

/// What the user typed for each spec mount (by index) and for the root.
#[derive(Debug, Default, Clone)]
pub struct Labels {
    pub mounts: Vec<(usize, String)>,
    pub root: Option<String>,
    /// Spec fields a flag set (`resources.swap` by `--swap`).
    pub fields: Vec<(&'static str, &'static str)>,
    /// Spec list entries a flag made (`filesystem.lock_files[0]` by
    /// `--lock-file /x`).
    pub entries: Vec<(String, String)>,
    /// An overlay mount's layers (mount index, layer index, the
    /// `--overlay-src` typed), shifted with `mounts`.
    pub lowers: Vec<(usize, usize, String)>,
    /// A mount's field a flag of its own gave (mount index, `size` or
    /// `mode`, the `--size` or `--perms` typed), shifted with `mounts`.
    pub parts: Vec<(usize, &'static str, String)>,
    /// How many mounts, first of all, a `--spec` file wrote: an error keeps
    /// the index the file gives them, past an image's mounts.
    pub file_mounts: usize,
}

impl Labels {
    /// `text` with each `filesystem.mounts[i]` (and `filesystem.root`)
    /// that a flag made replaced by the flag; `image` are the mounts an
    /// image put before the flags' ones.
    pub fn rewrite(&self, text: &str, image: &[Mount]) -> String {
        let mut out = rename_fields(text, &self.names(image, true));
        // The root itself, not one of its fields (`filesystem.root.upper`
        // came from --overlay-dir, not from the flag that set the root).
        if let Some(root) = &self.root {
            out = replace_where(&out, "filesystem.root", root, |after| {
                !after.starts_with('.')
            });
        }
        out
    }

    /// The spec fields flags set, and the flags.
    pub fn field_names(&self) -> Vec<(String, String)> {
        self.fields
            .iter()
            .map(|(field, flag)| (field.to_string(), flag.to_string()))
            .chain(self.entries.iter().cloned())
            .collect()
    }

    /// What the runner renames in its errors (`Plan::field_names`): the
    /// fields flags set, and each mount's name, past `image`'s mounts.
    pub fn runner_names(&self, image: &[Mount]) -> Vec<(String, String)> {
        self.names(image, false)
    }

    /// Each field and what to call it, for one pass of `rename_fields`
    /// (which never renames a name again, so a file's mount may be called
    /// by the index an image's mount has in the plan). `parts`: a flag's
    /// mount's source and destination go by the flag's name too (the
    /// runner's errors name only whole mounts).
    fn names(&self, image: &[Mount], parts: bool) -> Vec<(String, String)> {
        let offset = image.len();
        let mount = |i: usize| format!("filesystem.mounts[{i}]");
        let mut names = self.field_names();
        names.extend(
            self.lowers
                .iter()
                .map(|(i, j, label)| (format!("{}.lower[{j}]", mount(i + offset)), label.clone())),
        );
        names.extend(
            self.parts
                .iter()
                .map(|(i, part, label)| (format!("{}.{part}", mount(i + offset)), label.clone())),
        );
        for (i, label) in &self.mounts {
            let field = mount(i + offset);
            if parts {
                for part in ["destination", "source", "target", "upper_dir", "work_dir"] {
                    names.push((format!("{field}.{part}"), label.clone()));
                }
            }
            names.push((field, label.clone()));
        }
        for (j, m) in image.iter().enumerate() {
            let label = format!("the image's {} {}", m.kind(), m.destination());
            names.push((mount(j), label));
        }
        if offset > 0 {
            names.extend((0..self.file_mounts).map(|k| (mount(k + offset), mount(k))));
        }
        names
    }
}

/// The mount flags, by their clap ids, in the order they were given.
const MOUNT_FLAGS: &[&str] = &[
    "bind",
    "ro_bind",
    "dev_bind",
    "tmpfs",
    "proc",
    "dev",
    "mqueue",
    "dir",
    "symlink",
    "bind_try",
    "ro_bind_try",
    "dev_bind_try",
    "file",
    "bind_data",
    "ro_bind_data",
    "perms",
    "size",
    "chmod",
    "remount_ro",
    "overlay_src",
    "tmp_overlay",
    "ro_overlay",
    "bwrap_overlay",
];

pub fn ordered(m: &ArgMatches) -> Vec<(&'static str, Vec<String>)> {
    let mut out = Vec::new();
    for id in MOUNT_FLAGS {
        let (Some(occ), Some(idx)) = (m.get_occurrences::<String>(id), m.indices_of(id)) else {
            continue;
        };
        let idx: Vec<usize> = idx.collect();
        let mut i = 0;
        for values in occ {
            let values: Vec<String> = values.cloned().collect();
            out.push((idx[i], *id, values.clone()));
            i += values.len();
        }
    }
    out.sort_by_key(|(i, _, _)| *i);
    out.into_iter().map(|(_, id, v)| (id, v)).collect()
}

fn flag(id: &str) -> String {
    match id {
        // As typed: see `bwrap::overlay_after_layers`.
        "bwrap_overlay" => "--overlay".into(),
        _ => format!("--{}", id.replace('_', "-")),
    }
}

fn label(id: &str, v: &[String]) -> String {
    // An empty value (an unset shell variable) shows as the shell's ''.
    let shown: Vec<&str> = v
        .iter()
        .map(|x| if x.is_empty() { "''" } else { x.as_str() })
        .collect();
    format!("{} {}", flag(id), shown.join(" "))
}

/// Make a host path absolute against the current directory (as bwrap
/// does); the guardrails later judge the canonical path. An empty one (an
/// unset shell variable) stays empty for validation to refuse by name:
/// joined, it was the current directory, bound writable.
pub fn absolute_source(src: &str) -> String {
    if src.starts_with('/') || src.is_empty() {
        return src.to_string();
    }
    match std::env::current_dir() {
        Ok(cwd) => cwd.join(src).to_string_lossy().into_owned(),
        Err(_) => src.to_string(),
    }
}

/// `/` as a mount flag's destination: `/`, `//`, ... but never the empty
/// string, which validation refuses by name.
pub fn is_root(dest: &str) -> bool {
    dest.starts_with('/') && dest.trim_end_matches('/').is_empty()
}

/// A bind onto `/` (bwrap's `--ro-bind / /`, `--bind DIR /`): the given
/// directory is the sandbox's root, judged like `--rootfs`. Only as the
/// first mount flag, where bwrap users write it; later, it would hide
/// every mount before it.
pub fn root_bind(flags: &[(&'static str, Vec<String>)]) -> Result<Option<(Root, String)>, String> {
    for (n, (id, v)) in flags.iter().enumerate() {
        let is_bind = matches!(
            *id,
            "bind" | "ro_bind" | "dev_bind" | "bind_try" | "ro_bind_try" | "dev_bind_try"
        );
        if !is_bind || !is_root(&v[1]) {
            continue;
        }
        if id.starts_with("dev_") {
            // The root is nodev, however it is made: a device node is a
            // door to the host's kernel objects, and comes by name.
            return Err(format!(
                "{}: the sandbox's root is always nodev; use --bind or --ro-bind onto /, and --dev /dev or --dev-bind of each device",
                label(id, v)
            ));
        }
        if n != 0 {
            return Err(format!(
                "{}: a bind onto / makes the sandbox's root: give it before the other mount flags",
                label(id, v)
            ));
        }
        // bubblewrap's: a read-only bind is never written, mount
        // points included.
        let root = Root::Path {
            path: absolute_source(&v[0]),
            readonly: id.starts_with("ro_"),
            make_mountpoints: false,
        };
        return Ok(Some((root, label(id, v))));
    }
    Ok(None)
}

/// Append the mount flags' mounts to `s` (skipping a leading bind onto
/// `/`, which [`root_bind`] made the root), recording their labels.
pub fn apply(
    s: &mut SandboxSpec,
    flags: &[(&'static str, Vec<String>)],
    labels: &mut Labels,
    skip_root: bool,
) -> Result<(), String> {
    let mut perms: Option<(u32, String)> = None;
    let mut size: Option<(u64, String)> = None;
    // bubblewrap's --overlay-src, bottom layer first, right before the
    // --tmp-overlay or --ro-overlay they make.
    let mut layers: Vec<(String, String)> = Vec::new();
    for (n, &(id, ref v)) in flags.iter().enumerate() {
        let here = label(id, v);
        if n == 0 && skip_root {
            continue;
        }
        if id == "overlay_src" {
            layers.push((absolute_source(&v[0]), here));
            continue;
        }
        let overlay = matches!(id, "tmp_overlay" | "ro_overlay" | "bwrap_overlay");
        if let (Some((_, first)), false) = (layers.first(), overlay) {
            return Err(format!(
                "{first}: applies to the --tmp-overlay, --ro-overlay or --overlay right after it, not to {here}"
            ));
        }
        if overlay {
            if layers.is_empty() {
                return Err(format!("{here}: needs --overlay-src SRC before it"));
            }
            let pending = perms.take().map(|(_, p)| p);
            if let Some(p) = pending.or(size.take().map(|(_, p)| p)) {
                return Err(format!("{p}: does not apply to {here}"));
            }
            let index = s.filesystem.mounts.len();
            // Topmost first, as overlayfs and the spec list them.
            for (j, (_, typed)) in layers.iter().rev().enumerate() {
                labels.lowers.push((index, j, typed.clone()));
            }
            // bubblewrap's --overlay RWSRC WORKDIR DEST keeps the writes.
            let dirs =
                (id == "bwrap_overlay").then(|| (absolute_source(&v[0]), absolute_source(&v[1])));
            s.filesystem.mounts.push(Mount::Overlay {
                destination: v[v.len() - 1].clone(),
                lower: layers.drain(..).rev().map(|(l, _)| l).collect(),
                writable: id != "ro_overlay",
                size: None,
                upper_dir: dirs.as_ref().map(|d| d.0.clone()),
                work_dir: dirs.map(|d| d.1),
            });
            labels.mounts.push((index, here));
            continue;
        }
        match id {
            // bubblewrap's: one of each for the next flag, never two.
            "perms" | "size" => {
                let pending = match id {
                    "perms" => perms.as_ref().map(|(_, p)| p),
                    _ => size.as_ref().map(|(_, p)| p),
                };
                if let Some(p) = pending {
                    return Err(format!("{p}: given twice for the same flag ({here})"));
                }
                if id == "perms" {
                    perms = Some((octal_mode("--perms", &v[0])?, here));
                } else {
                    let bytes = spec::parse_size(&v[0]).map_err(|e| format!("{here}: {e}"))?;
                    size = Some((bytes.0, here));
                }
                continue;
            }
            "chmod" => {
                let pending = perms.as_ref().map(|(_, p)| p);
                if let Some(p) = pending.or(size.as_ref().map(|(_, p)| p)) {
                    return Err(format!(
                        "{p}: applies to the next flag that makes a file, not to {here}"
                    ));
                }
                let index = chmod(s, v, &here)?;
                // The mode is this flag's now: an error about it names it.
                labels
                    .parts
                    .retain(|(i, part, _)| (*i, *part) != (index, "mode"));
                labels.parts.push((index, "mode", here.clone()));
                continue;
            }
            _ => {}
        }
        let takes_perms = matches!(id, "tmpfs" | "dir" | "file" | "bind_data" | "ro_bind_data");
        let index = s.filesystem.mounts.len();
        let mode = match perms.take() {
            Some((p, typed)) if takes_perms => {
                labels.parts.push((index, "mode", typed));
                Some(FileMode(p))
            }
            Some((_, p)) => return Err(format!("{p}: applies to the next --tmpfs, --dir, --file, --bind-data or --ro-bind-data, not to {here}")),
            None => None,
        };
        let tmpfs_size = match size.take() {
            Some((b, typed)) if id == "tmpfs" => {
                labels.parts.push((index, "size", typed));
                Some(spec::Size(b))
            }
            Some((_, p)) => return Err(format!("{p}: applies to the next --tmpfs, not to {here}")),
            None => None,
        };
        if id == "remount_ro" && is_root(&v[0]) {
            remount_root(s, &here)?;
            continue;
        }
        let Some(mount) = to_mount(id, v, mode, tmpfs_size)? else {
            continue;
        };
        labels
            .mounts
            .push((s.filesystem.mounts.len(), here.clone()));
        s.filesystem.mounts.push(mount);
        if id == "ro_bind_data" {
            // Read-only at this point in the order, as bubblewrap makes
            // it: a later mount over the path keeps what it is.
            labels.mounts.push((s.filesystem.mounts.len(), here));
            s.filesystem.mounts.push(Mount::RemountReadOnly {
                destination: v[1].clone(),
            });
        }
    }
    if let Some(p) = perms.map(|(_, p)| p).or(size.map(|(_, p)| p)) {
        return Err(format!("{p}: no mount flag follows it to apply to"));
    }
    if let Some((_, first)) = layers.first() {
        return Err(format!(
            "{first}: no --tmp-overlay, --ro-overlay or --overlay follows it"
        ));
    }
    Ok(())
}

/// bwrap's `--remount-ro /`: the root is made read-only once assembled
/// (the mounts on it keep their own mode), as a spec's root says.
fn remount_root(s: &mut SandboxSpec, here: &str) -> Result<(), String> {
    match &mut s.filesystem.root {
        Root::Tmpfs { readonly, .. } => {
            *readonly = true;
            Ok(())
        }
        // bubblewrap's: writable while it is set up, read-only after, so
        // the mount points it lacks are made in it first.
        Root::Path {
            readonly,
            make_mountpoints,
            ..
        } => {
            if !*readonly {
                *readonly = true;
                *make_mountpoints = true;
            }
            Ok(())
        }
        Root::Overlay { .. } => Err(format!(
            "{here}: the root is a writable overlay (--overlay, --overlay-dir); for a read-only root use --rootfs DIR --rootfs-readonly"
        )),
    }
}

/// bwrap's `--chmod MODE PATH`: airlock sets the mode of what it creates,
/// so this sets the mode of the --dir, --tmpfs or --file that made PATH;
/// which one it was, by its index.
fn chmod(s: &mut SandboxSpec, v: &[String], here: &str) -> Result<usize, String> {
    let new = FileMode(octal_mode("--chmod", &v[0])?);
    let target = v[1].trim_end_matches('/');
    for (index, mount) in s.filesystem.mounts.iter_mut().enumerate().rev() {
        match mount {
            Mount::Dir {
                destination,
                mode,
                chmod,
            }
            | Mount::File {
                destination,
                mode,
                chmod,
                ..
            } if destination.trim_end_matches('/') == target => {
                // As bubblewrap's: what was there already too.
                *mode = Some(new);
                *chmod = true;
                return Ok(index);
            }
            Mount::Tmpfs {
                destination, mode, ..
            } if destination.trim_end_matches('/') == target => {
                *mode = Some(new);
                return Ok(index);
            }
            // These mount nothing: what they make above PATH hides nothing.
            Mount::RemountReadOnly { .. }
            | Mount::Dir { .. }
            | Mount::File { .. }
            | Mount::Symlink { .. } => {}
            // A later mount at PATH or above it covers what made PATH:
            // PATH is that mount's now, whose mode is not ours to set.
            m if covers(m.destination(), target) => break,
            _ => {}
        }
    }
    Err(format!(
        "{here}: airlock sets the mode only of what it creates (--dir, --tmpfs, --file) and no such flag made {} (or a later mount covers it); put --perms MODE before that flag",
        v[1]
    ))
}

/// Whether a mount at `dest` hides `path`: the same path or one above it.
fn covers(dest: &str, path: &str) -> bool {
    let dest = dest.trim_end_matches('/');
    path == dest
        || path
            .strip_prefix(dest)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// Whether a `-try` bind's source is missing, as bubblewrap's stat() sees
/// it (ENOENT; a dangling symbolic link too). Any other failure (EACCES,
/// ELOOP) keeps the bind, whose start then fails naming the flag, as
/// bubblewrap fails: a `--ro-bind-try` narrowing a writable bind must not
/// vanish without a word.
fn missing(path: &str) -> bool {
    std::fs::metadata(absolute_source(path))
        .is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound)
}

fn to_mount(
    id: &str,
    v: &[String],
    mode: Option<FileMode>,
    size: Option<spec::Size>,
) -> Result<Option<Mount>, String> {
    let bind = |readonly, devices| Mount::Bind {
        source: absolute_source(&v[0]),
        destination: v[1].clone(),
        readonly,
        devices,
        noexec: false,
        recursive: true,
    };
    // bwrap's --file writes into the tree; --bind-data and
    // --ro-bind-data bind a file of their own over the destination.
    let file = |flag: &str, default: u32, bind: bool| -> Result<Mount, String> {
        Ok(Mount::File {
            content: read_fd(flag, &v[0], &v[1])?,
            destination: v[1].clone(),
            mode: mode.or(Some(FileMode(default))),
            bind,
            chmod: false,
        })
    };
    Ok(Some(match id {
        "bind" => bind(false, false),
        "ro_bind" => bind(true, false),
        "dev_bind" => bind(false, true),
        // bwrap's -try forms: a source that does not exist is no mount.
        "bind_try" | "ro_bind_try" | "dev_bind_try" if missing(&v[0]) => return Ok(None),
        "bind_try" => bind(false, false),
        "ro_bind_try" => bind(true, false),
        "dev_bind_try" => bind(false, true),
        "tmpfs" => Mount::Tmpfs {
            destination: v[0].clone(),
            size,
            mode: mode.or(Some(FileMode(0o755))),
            readonly: false,
            noexec: false,
            copy_up: false,
        },
        "proc" => Mount::Proc {
            destination: v[0].clone(),
        },
        "dev" => Mount::Dev {
            destination: v[0].clone(),
        },
        "mqueue" => Mount::Mqueue {
            destination: v[0].clone(),
        },
        "dir" => Mount::Dir {
            destination: v[0].clone(),
            mode,
            chmod: false,
        },
        "remount_ro" => Mount::RemountReadOnly {
            destination: v[0].clone(),
        },
        "symlink" => Mount::Symlink {
            target: v[0].clone(),
            destination: v[1].clone(),
        },
        "file" => file("--file", 0o644, false)?,
        "bind_data" => file("--bind-data", 0o600, true)?,
        "ro_bind_data" => file("--ro-bind-data", 0o600, true)?,
        _ => unreachable!("ordered only yields mount flags"),
    }))
}

#[cfg(test)]
mod tests {
    use super::Labels;
    use airlock::spec::Mount;

    #[test]
    fn a_label_replaces_its_field_and_not_the_roots_fields() {
        let l = Labels {
            mounts: vec![(1, "--bind / /host".into())],
            root: Some("--rootfs /".into()),
            fields: vec![
                ("resources.memory", "--memory"),
                ("resources.swap", "--swap"),
            ],
            entries: vec![("filesystem.lock_files[0]".into(), "--lock-file /x".into())],
            lowers: vec![(3, 0, "--overlay-src /b".into())],
            parts: vec![(1, "size", "--size 0".into())],
            file_mounts: 1,
        };
        // A part a flag of its own gave is named by that flag; the
        // mount's other parts by the mount's.
        assert_eq!(
            l.rewrite(
                "filesystem.mounts[1].size: s; filesystem.mounts[1].destination: d",
                &[]
            ),
            "--size 0: s; --bind / /host: d"
        );
        assert_eq!(
            l.rewrite(
                "resources.swap: needs resources.memory; resources.memory_reservation",
                &[]
            ),
            "--swap: needs --memory; resources.memory_reservation"
        );
        assert_eq!(
            l.rewrite(
                "filesystem.root: a; filesystem.root.upper: b; filesystem.mounts[1].source: c; filesystem.mounts[11]: d; filesystem.mounts[0]: e",
                &[]
            ),
            "--rootfs /: a; filesystem.root.upper: b; --bind / /host: c; filesystem.mounts[11]: d; filesystem.mounts[0]: e"
        );
        // The runner's names past an image's two mounts: the file's mount
        // keeps the index the file gives it, which is also the image's
        // first mount's index in the plan; neither is taken for the other.
        let image = [
            Mount::Proc {
                destination: "/proc".into(),
            },
            Mount::Dev {
                destination: "/dev".into(),
            },
        ];
        let text = "mount /host (filesystem.mounts[3]): x; mount /y (filesystem.mounts[2]): y; \
                    lock /x (filesystem.lock_files[0]): z; filesystem.mounts[5].lower[0]: w; \
                    mount /proc (filesystem.mounts[0]): v; filesystem.mounts[1]: u";
        let want = "mount /host (--bind / /host): x; mount /y (filesystem.mounts[0]): y; \
                    lock /x (--lock-file /x): z; --overlay-src /b: w; \
                    mount /proc (the image's proc /proc): v; the image's dev /dev: u";
        assert_eq!(
            airlock::report::rename_fields(text, &l.runner_names(&image)),
            want
        );
        // Findings and library errors the same way, a part of a mount too.
        assert_eq!(
            l.rewrite(
                "filesystem.mounts[2].source: s; filesystem.mounts[3].source: t",
                &image
            ),
            "filesystem.mounts[0].source: s; --bind / /host: t"
        );
    }
}
