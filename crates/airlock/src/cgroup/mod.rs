//! cgroups for one sandbox: detected at run time (v2, v1, or the hybrid of
//! both), created nested under the caller's own cgroup in each hierarchy
//! (never elsewhere in the tree), and removed when the sandbox ends.
//!
//! A limit the host cannot apply (the controller is missing, or not
//! delegated) is an error before the workload starts, naming the
//! controller: nothing is silently skipped.

mod freezer;
mod layout;
pub mod plan;
mod stats;

pub use freezer::{freeze_asked, freezer_file, set_frozen, FREEZE_WITHIN};
pub use stats::{oom_kills, read_stats, Stats};

pub(crate) use layout::v1_name;
pub use layout::{cgroup_parent, make_parent, parse_layout, Hierarchy, Layout};
pub use plan::CgroupPlan;

use crate::report::{describe, SetupError};
use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

/// The sandbox's cgroups; removed (after killing what is left) on drop,
/// so a clone is only for a process that exits without dropping it (the
/// supervisor's guard).
#[derive(Debug, Default, Clone)]
pub struct Cgroup {
    /// The v2 cgroup, when the host has a v2 hierarchy.
    pub v2: Option<PathBuf>,
    /// v1 cgroups by controller.
    pub v1: BTreeMap<String, PathBuf>,
    /// Where memory accounting and the pids counter are read (true: v2).
    memory: Option<(PathBuf, bool)>,
    pids: Option<(PathBuf, bool)>,
    /// The directories above the sandbox's own that creating it made
    /// (parents first): removed after them, when empty.
    made: Vec<PathBuf>,
    /// A v1 freeze did not take (a task stuck in the kernel): `kill` no
    /// longer waits for one.
    freeze_failed: std::cell::Cell<bool>,
}

/// Write `value` to `dir`/`file`; an error names `step` (the spec field
/// it carries out, or the controller).
fn write_file(
    dir: &Path,
    file: &str,
    value: &str,
    controller: &str,
    step: &str,
) -> Result<(), SetupError> {
    if !dir.join(file).exists() {
        return Err(SetupError::new(
            step,
            format!("the {controller} controller on this host has no {file}, so this limit cannot be applied"),
        ));
    }
    std::fs::write(dir.join(file), value).map_err(|e| {
        SetupError::new(
            step,
            format!(
                "cannot write {value:?} to {}: {}",
                dir.join(file).display(),
                describe(&e)
            ),
        )
    })
}

/// The "no swap" written beside a memory limit alone, on a kernel
/// without swap accounting (no such file: Debian's and Ubuntu's v1
/// kernels without `swapaccount=1`), where the host has no swap in use:
/// then there is nothing for it to hold back, and the memory limit is a
/// limit as it is. With swap in use it is still written, and fails naming
/// the memory limit: without it the limit would not hold.
/// (`update` skips it the same way, or a limit a sandbox was made with
/// could never be changed there.)
pub(crate) fn unaccounted_swap_of_no_use(
    field: &str,
    file: &str,
    path: &Path,
    swap_in_use: fn() -> bool,
) -> bool {
    let implicit = field == "resources.memory"
        && matches!(file, "memory.swap.max" | "memory.memsw.limit_in_bytes");
    implicit && !path.exists() && !swap_in_use()
}

/// A write the kernel's missing file makes unnecessary: the implicit "no
/// swap" above, or a huge page reservation limit on a kernel older than
/// 5.7, where the usage limit beside it holds on its own.
pub(crate) fn left_out(field: &str, file: &str, path: &Path) -> bool {
    let reservation = file.starts_with("hugetlb.") && file.contains(".rsvd.");
    (reservation && !path.exists()) || unaccounted_swap_of_no_use(field, file, path, swap_in_use)
}

/// The file and value an I/O weight goes to where BFQ serves it, on
/// BFQ's scale (1..1000, default 100; `bfq` is the write's value there):
/// on v1 where `blkio.weight` is missing (BFQ is the only proportional
/// I/O scheduler since Linux 5.0 removed CFQ, whose file that is), on v2
/// wherever `io.bfq.weight` is (`io.weight` is iocost's, which most
/// hosts leave off). runc writes them there too.
pub(crate) fn bfq_instead(
    dir: &Path,
    file: &str,
    bfq: Option<&str>,
) -> Option<(&'static str, String)> {
    let bfq = bfq?;
    let there = match file {
        "blkio.weight" if !dir.join(file).exists() => "blkio.bfq.weight",
        "io.weight" => "io.bfq.weight",
        _ => return None,
    };
    dir.join(there).exists().then(|| (there, bfq.to_string()))
}

/// Whether the host has swap in use (`/proc/swaps` lists a device or
/// file). Unreadable: assumed so.
pub(crate) fn swap_in_use() -> bool {
    std::fs::read_to_string("/proc/swaps").map_or(true, |s| s.lines().nth(1).is_some())
}

/// A cpuset (`cpuset.cpus` or `cpuset.mems` = `value`) for the cgroup
/// `dir` must lie within what its parent may use: v1 refuses any other
/// (with EINVAL), v2 quietly takes the overlap, or the parent's whole set
/// when there is none, so the workload would run where it did not ask.
/// Checked before anything is written; a parent whose set cannot be read
/// leaves it to the kernel.
pub(crate) fn cpuset_fits(dir: &Path, file: &str, value: &str) -> Result<(), String> {
    let Some(parent) = dir.parent() else {
        return Ok(());
    };
    // v2's own file may be empty ("the parent's"): its effective one.
    let Some(theirs) = [format!("{file}.effective"), file.to_string()]
        .iter()
        .find_map(|f| std::fs::read_to_string(parent.join(f)).ok())
        .map(|s| s.trim().to_string())
    else {
        return Ok(());
    };
    let expand = |list: &str| -> Option<std::collections::BTreeSet<u32>> {
        let ranges = crate::spec::validate::parse_cpu_list(list).ok()?;
        Some(ranges.into_iter().flat_map(|(a, b)| a..=b).collect())
    };
    match (expand(value), expand(&theirs)) {
        (Some(ours), Some(allowed)) if !ours.is_subset(&allowed) => Err(format!(
            "{value:?} is not within the caller's cgroup's {theirs:?} ({})",
            parent.join(file).display()
        )),
        _ => Ok(()),
    }
}

/// A new v1 cpuset cgroup has no CPUs and no memory nodes, and takes no
/// process until it has both: it starts with its parent's, which the
/// plan's writes may narrow. Any other directory (v2, where empty means
/// "the parent's", or another controller's) is left as it is.
fn inherit_cpuset(dir: &Path) -> Result<(), SetupError> {
    if !dir.join("cgroup.clone_children").exists() {
        return Ok(());
    }
    let Some(parent) = dir.parent() else {
        return Ok(());
    };
    for file in ["cpuset.cpus", "cpuset.mems"] {
        let Ok(now) = std::fs::read_to_string(dir.join(file)) else {
            continue;
        };
        if now.trim().is_empty() {
            let theirs = std::fs::read_to_string(parent.join(file)).unwrap_or_default();
            write_file(dir, file, theirs.trim(), "cpuset", "resources (cpuset)")?;
        }
    }
    Ok(())
}

/// `step`: the spec fields the cgroup is for (see [`CgroupPlan::fields`]).
fn mkdir_error(dir: &Path, step: &str, e: &io::Error) -> SetupError {
    let mut reason = format!(
        "cannot create the cgroup {}: {}",
        dir.display(),
        describe(e)
    );
    if e.raw_os_error() == Some(libc::EACCES) || e.raw_os_error() == Some(libc::EPERM) {
        reason.push_str(" (the caller's cgroup is not delegated to it)");
    }
    if let Some(parent) = dir.parent().filter(|p| !p.exists()) {
        reason.push_str(&format!(
            " (the cgroup it is made under, {}, does not exist)",
            parent.display()
        ));
    }
    SetupError::new(step, reason)
}

/// Is this a cgroup file system (v1 or v2)?
pub(crate) fn is_cgroup_fs(fs: &rustix::fs::StatFs) -> bool {
    const CGROUP_SUPER_MAGIC: u64 = 0x27e0eb;
    const CGROUP2_SUPER_MAGIC: u64 = 0x6367_7270;
    // f_type's width and sign differ between architectures.
    [CGROUP_SUPER_MAGIC, CGROUP2_SUPER_MAGIC].contains(&(fs.f_type as u64))
}

/// Let the children of `dir` use `controllers` (its subtree_control); an
/// error names `step` (see [`CgroupPlan::fields`]).
fn enable_controllers(dir: &Path, controllers: &[String], step: &str) -> Result<(), SetupError> {
    let line: Vec<String> = controllers.iter().map(|c| format!("+{c}")).collect();
    std::fs::write(dir.join("cgroup.subtree_control"), line.join(" ")).map_err(|e| {
        let mut reason = format!(
            "cannot enable {} for child cgroups of {}: {}",
            controllers.join(" "),
            dir.display(),
            describe(&e)
        );
        if e.raw_os_error() == Some(libc::EBUSY) {
            // cgroup v2's "no internal processes" rule: on a pure v2 host
            // a caller in a cgroup with processes (a login session's
            // scope) cannot give its children domain controllers.
            reason.push_str(
                " (it holds processes, the caller's among them, and cgroup v2 gives a controller to the children of a cgroup only while it holds none: make the sandbox's cgroups under one that holds none: `airlock run --cgroup-parent /airlock.slice`, airlockd's cgroup_parent, `Layout::under` in the library)",
            );
        }
        SetupError::new(step, reason)
    })
}

impl Cgroup {
    /// The cgroups a sandbox's state records, to kill what is in them and
    /// remove them when its supervisor (and guard) died without doing so.
    /// Only directories of a cgroup file system are taken: the paths come
    /// from a file, and nothing else is ever written or removed.
    pub fn adopt(paths: &crate::state::CgroupPaths) -> Cgroup {
        let is_cgroup = |d: &PathBuf| rustix::fs::statfs(d).is_ok_and(|fs| is_cgroup_fs(&fs));
        let mut cg = Cgroup::default();
        cg.v2 = paths.v2.clone().filter(is_cgroup);
        cg.v1 = paths
            .v1
            .iter()
            .filter(|(_, d)| is_cgroup(d))
            .map(|(c, d)| (c.clone(), d.clone()))
            .collect();
        // Only directories above the sandbox's own, whatever state.json
        // says: nothing else is removed for it.
        let above_ours = |d: &PathBuf| {
            cg.v2
                .iter()
                .chain(cg.v1.values())
                .any(|leaf| leaf != d && leaf.starts_with(d))
        };
        cg.made = paths
            .made
            .iter()
            .filter(|d| above_ours(d) && is_cgroup(d))
            .cloned()
            .collect();
        cg
    }

    /// Carry out a [`CgroupPlan`]: enable the v2 controllers, create every
    /// cgroup, write the limits. What was created is removed again if a
    /// later step fails (the returned error drops it).
    pub fn create(plan: &CgroupPlan) -> Result<Cgroup, SetupError> {
        let mut cg = Cgroup::default();
        cg.memory.clone_from(&plan.memory);
        cg.pids.clone_from(&plan.pids);
        let enable = |dir: &Path| -> Result<(), SetupError> {
            let Some((_, all)) = plan.enable.iter().find(|(d, _)| d == dir) else {
                return Ok(());
            };
            let asking = |c: &str| all.iter().any(|a| a == c);
            let step = plan.fields(|w| asking(&w.controller), "resources");
            let e = match enable_controllers(dir, all, &step) {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            // Without the controllers nothing asked a limit of.
            let required: Vec<String> = all
                .iter()
                .filter(|c| !plan.optional.contains(c))
                .cloned()
                .collect();
            match required.len() {
                n if n == all.len() => Err(e),
                0 => Ok(()),
                _ => enable_controllers(dir, &required, &step),
            }
        };
        if let Some((own, _)) = plan.enable.first() {
            enable(own)?;
        }
        // Parents another sandbox may be making or removing at the same
        // time (containers of one pod under its cgroup): one made
        // meanwhile is theirs; one removed (empty) while we were at it
        // or before our own directory went in is made again, from the top
        // (a few times: each needs the other sandbox to end just then).
        // An error, and whether a level was gone (removed under us).
        let parents_once = |cg: &mut Cgroup| -> Result<(), (SetupError, bool)> {
            for dir in &plan.nested {
                match std::fs::create_dir(dir) {
                    Ok(()) => cg.made.push(dir.clone()),
                    Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
                    Err(e) => {
                        let gone = e.raw_os_error() == Some(libc::ENOENT);
                        let step = plan.fields(|_| true, "cgroup path");
                        return Err((mkdir_error(dir, &step, &e), gone));
                    }
                }
                inherit_cpuset(dir)
                    .and_then(|()| enable(dir))
                    .map_err(|e| (e, !dir.exists()))?;
            }
            Ok(())
        };
        let make_parents = |cg: &mut Cgroup| -> Result<(), SetupError> {
            for _ in 0..8 {
                match parents_once(cg) {
                    Err((_, true)) => continue,
                    done => return done.map_err(|(e, _)| e),
                }
            }
            parents_once(cg).map_err(|(e, _)| e)
        };
        make_parents(&mut cg)?;
        let own_mkdir = |cg: &mut Cgroup, dir: &Path| -> Result<io::Result<()>, SetupError> {
            let mut made = std::fs::create_dir(dir);
            for _ in 0..8 {
                match &made {
                    Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                        make_parents(cg)?;
                        made = std::fs::create_dir(dir);
                    }
                    _ => break,
                }
            }
            Ok(made)
        };
        if let Some(dir) = &plan.v2 {
            let step = plan.fields(|_| true, "resources (cgroup2)");
            own_mkdir(&mut cg, dir)?.map_err(|e| mkdir_error(dir, &step, &e))?;
            cg.v2 = Some(dir.clone());
        }
        for (c, dir) in &plan.v1 {
            // Controllers mounted together share one directory, made once.
            if cg.v1.values().any(|d| d == dir) {
                cg.v1.insert(c.clone(), dir.clone());
                continue;
            }
            let step = plan.fields(|w| &w.controller == c, &format!("resources ({c})"));
            match own_mkdir(&mut cg, dir)?.map_err(|e| mkdir_error(dir, &step, &e)) {
                Ok(()) => {}
                // A cgroup already there is another's, taken or not: never
                // passed over as "the host cannot", which would leave the
                // sandbox without the controller and `update` blaming the
                // host (a bundle's cgroupsPath named a host cgroup).
                Err(_) if dir.exists() => {
                    return Err(SetupError::new(
                        format!("resources ({c})"),
                        format!("the cgroup {} already exists", dir.display()),
                    ))
                }
                Err(_) if plan.optional.contains(c) => continue,
                Err(e) => return Err(e),
            }
            cg.v1.insert(c.clone(), dir.clone());
            inherit_cpuset(dir)?;
        }
        for w in plan.writes.iter().filter(|w| w.controller == "cpuset") {
            cpuset_fits(&w.dir, &w.file, &w.value)
                .map_err(|why| SetupError::new(plan::field_of(&w.file), why))?;
        }
        for w in &plan.writes {
            let bfq = bfq_instead(&w.dir, &w.file, w.bfq.as_deref());
            let (file, value) = bfq
                .as_ref()
                .map_or((w.file.as_str(), w.value.as_str()), |(f, v)| (f, v));
            if left_out(&w.field, file, &w.dir.join(file)) {
                continue;
            }
            let step = match w.field.is_empty() {
                true => format!("resources ({})", w.controller),
                false => w.field.clone(),
            };
            write_file(&w.dir, file, value, &w.controller, &step)?;
        }
        Ok(cg)
    }

    /// Put `pid` into every v1 cgroup (v2 membership comes from
    /// CLONE_INTO_CGROUP at clone time).
    pub fn add_v1(&self, pid: i32) -> Result<(), SetupError> {
        for (c, dir) in &self.v1 {
            write_file(
                dir,
                "cgroup.procs",
                &pid.to_string(),
                c,
                &format!("resources ({c})"),
            )?;
        }
        Ok(())
    }

    /// The file that freezes the sandbox ([`freezer_file`]).
    pub fn freezer_file(&self) -> Option<PathBuf> {
        freezer_file(
            self.v2.as_deref(),
            self.v1.get("freezer").map(PathBuf::as_path),
        )
    }

    /// The directories, for the state file (exec joins them).
    pub fn paths(&self) -> crate::state::CgroupPaths {
        crate::state::CgroupPaths {
            v2: self.v2.clone(),
            v1: self.v1.clone(),
            made: self.made.clone(),
        }
    }

    /// Every process still in the sandbox's cgroups.
    pub fn procs(&self) -> Vec<i32> {
        self.paths().procs()
    }

    /// Kill every process of the sandbox, double-forked ones included:
    /// cgroup.kill on v2. Else rounds of freeze, SIGKILL each, thaw,
    /// until none is left: a freeze takes effect later than it is asked
    /// (it is waited for), and without a freezer, or with one that does
    /// not take (a task stuck in the kernel), a child forked between the
    /// read and the signals is found by the next round.
    pub fn kill(&self) {
        if let Some(v2) = &self.v2 {
            if std::fs::write(v2.join("cgroup.kill"), "1").is_ok() {
                return;
            }
        }
        // No cgroup.kill (before Linux 5.14): the rounds, frozen through
        // v2's cgroup.freeze (5.2 on) where there is a v2 cgroup, as runc
        // does; v1's freezer is made only where there is none.
        let mut freezer = self.freezer_file().filter(|_| !self.freeze_failed.get());
        for _ in 0..KILL_ROUNDS {
            let frozen = freezer
                .as_ref()
                .is_some_and(|f| set_frozen(f, true).is_ok());
            if freezer.is_some() && !frozen {
                // Not waited for again, in this call or a later one.
                self.freeze_failed.set(true);
                freezer = None;
            }
            let procs = self.procs();
            for pid in procs
                .iter()
                .copied()
                .filter_map(rustix::process::Pid::from_raw)
            {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            }
            if frozen {
                // A killed task dies once thawed.
                let _ = set_frozen(freezer.as_ref().expect("frozen above"), false);
            }
            if procs.is_empty() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
    }

    fn counter(dir: &Option<(PathBuf, bool)>, file: &str, key: &str) -> u64 {
        dir.as_ref()
            .and_then(|(d, _)| std::fs::read_to_string(d.join(file)).ok())
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix(key).map(|v| v.trim().parse().unwrap_or(0)))
            })
            .unwrap_or(0)
    }

    /// The peak memory of the whole sandbox, if a memory cgroup exists.
    pub fn peak_memory(&self) -> Option<u64> {
        let (dir, v2) = self.memory.as_ref()?;
        let file = if *v2 {
            "memory.peak"
        } else {
            "memory.max_usage_in_bytes"
        };
        std::fs::read_to_string(dir.join(file))
            .ok()
            .and_then(|s| s.trim().parse().ok())
    }

    fn memory_v2(&self) -> bool {
        self.memory.as_ref().is_some_and(|m| m.1)
    }

    pub fn oom_kills(&self) -> u64 {
        if self.memory_v2() {
            Self::counter(&self.memory, "memory.events", "oom_kill ")
        } else {
            Self::counter(&self.memory, "memory.oom_control", "oom_kill ")
        }
    }

    pub fn pids_limit_hit(&self) -> bool {
        Self::counter(&self.pids, "pids.events", "max ") > 0
    }

    /// Kill what is left, wait for the cgroups to empty, remove them.
    /// Returns false when the sandbox's own cgroups were still there
    /// after a second of trying (see [`crate::state::State::cgroups_left`]).
    pub fn remove(&mut self) -> bool {
        let dirs: Vec<PathBuf> = self.v2.iter().chain(self.v1.values()).cloned().collect();
        if dirs.is_empty() && self.made.is_empty() {
            return true;
        }
        // The usual cgroup is empty by now (PID 1 reaped, the rest gone
        // with its PID namespace) and goes at the first rmdir; one that
        // still holds processes refuses it (EBUSY) until they are killed
        // and gone, for at most a second.
        let busy = |d: &PathBuf| {
            let ebusy = |r: std::io::Result<()>| matches!(r, Err(e) if e.raw_os_error() == Some(libc::EBUSY));
            // Or it holds cgroups the workload made (systemd inside does):
            // those first, deepest first.
            ebusy(std::fs::remove_dir(d)) && {
                remove_beneath(d);
                ebusy(std::fs::remove_dir(d))
            }
        };
        let mut left: Vec<PathBuf> = dirs.into_iter().filter(busy).collect();
        for round in 0..200 {
            if left.is_empty() {
                break;
            }
            // Killed again now and then: on v1 a process can slip past
            // one kill (see `kill`).
            if round % 20 == 0 && !self.procs().is_empty() {
                self.kill();
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
            left.retain(busy);
        }
        // Another sandbox beneath one of them keeps it (EBUSY).
        for d in self.made.drain(..).rev() {
            let _ = std::fs::remove_dir(&d);
        }
        self.v2 = None;
        self.v1.clear();
        left.is_empty()
    }
}

/// The rounds of [`Cgroup::kill`] on v1 before it gives up.
const KILL_ROUNDS: usize = 10;

impl Drop for Cgroup {
    fn drop(&mut self) {
        self.remove();
    }
}

/// Remove every cgroup beneath `dir`, deepest first, as far as they are
/// empty (cgroupfs holds directories and files only, no links to loop).
fn remove_beneath(dir: &std::path::Path) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            remove_beneath(&e.path());
            let _ = std::fs::remove_dir(e.path());
        }
    }
}

#[cfg(test)]
mod tests;
