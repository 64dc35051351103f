//! Where the host's cgroup hierarchies are mounted and where the caller
//! sits in each, parsed from mountinfo and /proc/self/cgroup (so that a
//! layout, and the plan made from it, can be tested from two strings).

use crate::report::describe;
use std::collections::BTreeMap;
use std::io;
use std::path::PathBuf;

/// One mounted hierarchy and the caller's place in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    pub mount: PathBuf,
    /// The caller's cgroup, from the hierarchy's root (as
    /// /proc/self/cgroup writes it).
    pub own: String,
    /// The cgroup the mount shows at `mount` ("/" unless a subtree was
    /// bound there, as a container's cgroupfs is).
    pub root: String,
}

impl Hierarchy {
    /// `own` where the mount shows it.
    pub fn own_dir(&self) -> PathBuf {
        let own = beneath(&self.own, &self.root).unwrap_or(&self.own);
        self.mount.join(own.trim_start_matches('/'))
    }
}

/// `path` (a cgroup path from the hierarchy's root) relative to `root`,
/// when it lies beneath it.
fn beneath<'a>(path: &'a str, root: &str) -> Option<&'a str> {
    let rest = path.strip_prefix(root.trim_end_matches('/'))?;
    (rest.is_empty() || rest.starts_with('/')).then_some(rest)
}

/// What this host has.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Layout {
    pub v2: Option<Hierarchy>,
    /// v1 hierarchies by controller name (`memory`, `pids`, ...).
    pub v1: BTreeMap<String, Hierarchy>,
    /// The controllers the caller's v2 cgroup can enable for its
    /// children (its `cgroup.controllers`).
    pub v2_controllers: Vec<String>,
}

/// Parse /proc/self/mountinfo and /proc/self/cgroup into a layout.
pub fn parse_layout(mountinfo: &str, proc_cgroup: &str) -> Layout {
    let mut own_v2 = None;
    let mut own_v1: BTreeMap<String, String> = BTreeMap::new();
    for line in proc_cgroup.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(ctrls), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        // Inside a cgroup namespace, a process whose cgroup lies outside
        // the namespace's root reads it as `/../x`: joined onto the
        // mount, that names a directory outside the cgroup file system.
        // No such hierarchy is ours to make cgroups in.
        if !path.starts_with('/') || path.split('/').any(|c| c == ".." || c == ".") {
            continue;
        }
        if ctrls.is_empty() {
            own_v2 = Some(path.to_string());
        } else {
            for c in ctrls.split(',') {
                own_v1.insert(c.to_string(), path.to_string());
            }
        }
    }
    let mut layout = Layout::default();
    for e in crate::mountinfo::entries(mountinfo) {
        let mount = crate::mountinfo::unescape(e.mount_point);
        let root = crate::mountinfo::unescape(e.root);
        // Only a mount that shows the caller's cgroup: a bound subtree
        // elsewhere in the hierarchy would put it at a path that is not.
        let hierarchy = |own: &String| {
            beneath(own, &root).map(|_| Hierarchy {
                mount: PathBuf::from(&*mount),
                own: own.clone(),
                root: root.to_string(),
            })
        };
        match e.fstype {
            "cgroup2" => {
                if let Some(h) = own_v2.as_ref().and_then(hierarchy) {
                    layout.v2 = Some(h);
                }
            }
            "cgroup" => {
                for opt in e.super_options.split(',') {
                    if let Some(h) = own_v1.get(opt).and_then(hierarchy) {
                        layout.v1.insert(opt.to_string(), h);
                    }
                }
            }
            _ => {}
        }
    }
    layout
}

impl Layout {
    /// Does the host have `controller` (v2's name) for the caller's
    /// cgroups, as a v1 hierarchy or among its v2 controllers? (Which of
    /// the two serves it is `plan::resolve`'s choice.)
    pub fn has_controller(&self, controller: &str) -> bool {
        self.v1.contains_key(v1_name(controller))
            || self.v2_controllers.iter().any(|c| c == controller)
    }

    /// The caller's cgroups, from /proc/self.
    pub fn detect() -> io::Result<Layout> {
        let mut layout = parse_layout(
            &crate::mountinfo::read()?,
            &crate::sys::read_proc("/proc/self/cgroup")?,
        );
        layout.v2_controllers = layout
            .v2
            .as_ref()
            .and_then(|h| std::fs::read_to_string(h.own_dir().join("cgroup.controllers")).ok())
            .map(|s| s.split_whitespace().map(String::from).collect())
            .unwrap_or_default();
        Ok(layout)
    }

    /// The same hierarchies with `parent`, a cgroup path from each
    /// hierarchy's root as `/proc/self/cgroup` writes them, in place of
    /// the caller's cgroup: where sandboxes' cgroups are made instead
    /// (`airlock run --cgroup-parent`, airlockd's `cgroup_parent`). On a
    /// pure v2 host a caller whose cgroup holds processes (a login
    /// session's scope) cannot give its children a controller; a parent
    /// that holds none can. It must exist in the v2 hierarchy, whose
    /// controllers it gives; the v1 ones are checked as their cgroups
    /// are made.
    pub fn under(&self, parent: &str) -> Result<Layout, String> {
        let mut layout = self.at(&cgroup_parent(parent)?);
        if let Some(h) = &layout.v2 {
            let dir = h.own_dir();
            let controllers =
                std::fs::read_to_string(dir.join("cgroup.controllers")).map_err(|e| {
                    match e.kind() {
                        io::ErrorKind::NotFound => format!("{} does not exist", dir.display()),
                        _ => format!("cannot read {}: {}", dir.display(), describe(&e)),
                    }
                })?;
            layout.v2_controllers = controllers.split_whitespace().map(String::from).collect();
        }
        Ok(layout)
    }

    /// The same hierarchies with `own` (a path [`cgroup_parent`] gave) in
    /// place of the caller's cgroup, the v2 controllers left as they were.
    pub fn at(&self, own: &str) -> Layout {
        let mut layout = self.clone();
        for h in layout.v2.iter_mut().chain(layout.v1.values_mut()) {
            h.own = own.to_string();
        }
        layout
    }
}

/// Make `dir`, a cgroup parent (airlockd's `cgroup_parent`), with the
/// levels above it that are missing. On cgroup v2 (`v2`) each level made,
/// and the one it was made under, gives its children every controller it
/// has (`cgroup.subtree_control`): a cgroup sees only what its parent
/// gives, and systemd gives nothing below a delegated unit's own cgroup
/// (`Delegate=yes` with `DelegateSubgroup=`), so `dir` would otherwise
/// have none. A controller a level cannot give (a domain controller where
/// it holds processes) is left out: a sandbox that needs it then fails,
/// naming it. A `dir` that exists is taken as it is.
pub fn make_parent(dir: &std::path::Path, v2: bool) -> io::Result<()> {
    // The levels from the top, each made by us only if our mkdir made it
    // (one another made meanwhile, systemd or a second daemon, is theirs).
    let levels: Vec<&std::path::Path> = dir.ancestors().collect();
    let mut above: Option<&std::path::Path> = None;
    let mut made = Vec::new();
    for level in levels.into_iter().rev() {
        match std::fs::create_dir(level) {
            Ok(()) => made.push(level),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && made.is_empty() => {
                above = Some(level);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
    if !v2 || made.is_empty() {
        return Ok(());
    }
    // From the level the first was made under, down to dir's parent; on
    // a cgroup file system only.
    let cgroup =
        |p: &std::path::Path| rustix::fs::statfs(p).is_ok_and(|fs| super::is_cgroup_fs(&fs));
    for level in above.into_iter().chain(made.iter().copied()) {
        if level != dir && cgroup(level) {
            give_controllers(level);
        }
    }
    Ok(())
}

/// `+C` in `level`'s subtree control for each controller C it has, one at
/// a time, so that one it cannot give does not keep the others back.
fn give_controllers(level: &std::path::Path) {
    let read = |f: &str| std::fs::read_to_string(level.join(f)).unwrap_or_default();
    let given = read("cgroup.subtree_control");
    for c in read("cgroup.controllers").split_whitespace() {
        if !given.split_whitespace().any(|g| g == c) {
            let _ = std::fs::write(level.join("cgroup.subtree_control"), format!("+{c}"));
        }
    }
}

/// `parent` as a cgroup path from a hierarchy's root, as
/// [`Layout::under`] takes it: a leading `/` is implied and a trailing one
/// dropped (`airlock.slice` is `/airlock.slice`); `.`, `..` and empty
/// components are refused.
pub fn cgroup_parent(parent: &str) -> Result<String, String> {
    let body = parent
        .strip_prefix('/')
        .unwrap_or(parent)
        .trim_end_matches('/');
    let normal = !parent.is_empty()
        && !body.contains('\0')
        && (body.is_empty() || body.split('/').all(|c| !matches!(c, "" | "." | "..")));
    match normal {
        true => Ok(format!("/{body}")),
        false => Err(format!(
            "{parent:?} is not a cgroup path: components from the hierarchy's root, none . or .. (e.g. /airlock.slice; / is the root itself)"
        )),
    }
}

/// The v1 name of a v2 controller.
pub(crate) fn v1_name(controller: &str) -> &str {
    if controller == "io" {
        "blkio"
    } else {
        controller
    }
}
