//! Which cgroups a sandbox gets and which files to write in them, on v2
//! and on v1, resolved in the caller from the host's [`Layout`] and
//! carried out by the supervisor. Pure, so the controller-file logic is
//! unit-tested for both layouts whatever the test host has.

use super::{v1_name, Layout};
use crate::report::SetupError;
use crate::spec::Resources;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// One write: controller, file, value, and the spec field it carries out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    pub controller: &'static str,
    pub file: &'static str,
    pub value: String,
    /// `resources.memory`, `resources.pids`, ...: what an error names.
    pub field: &'static str,
}

fn w(controller: &'static str, file: &'static str, value: impl ToString) -> Write {
    let field = match file {
        "memory.max" | "memory.limit_in_bytes" => "resources.memory",
        "memory.swap.max" | "memory.memsw.limit_in_bytes" => "resources.swap",
        "pids.max" => "resources.pids",
        "cpu.max" | "cpu.cfs_period_us" | "cpu.cfs_quota_us" => "resources.cpus",
        "cpu.weight" | "cpu.shares" => "resources.cpu_weight",
        _ => "resources.io_weight",
    };
    Write {
        controller,
        file,
        value: value.to_string(),
        field,
    }
}

/// CFS period used for `cpus` (100 ms, the kernel's default).
pub const CPU_PERIOD_US: u64 = 100_000;

/// The writes for the v2 interface (`memory.max`, `cpu.max`, ...).
pub fn v2(r: &Resources) -> Vec<Write> {
    let mut out = Vec::new();
    if let Some(m) = r.memory {
        out.push(w("memory", "memory.max", m.0));
        // Without a swap limit the memory limit would be no limit at all
        // on a host with swap (snekbox learned this): swap is 0 unless asked.
        out.push(w("memory", "memory.swap.max", r.swap.map_or(0, |s| s.0)));
    } else if let Some(s) = r.swap {
        out.push(w("memory", "memory.swap.max", s.0));
    }
    if let Some(p) = r.pids {
        out.push(w("pids", "pids.max", p));
    }
    if let Some(c) = r.cpus {
        let quota = (c * CPU_PERIOD_US as f64).round().max(1000.0) as u64;
        out.push(w("cpu", "cpu.max", format!("{quota} {CPU_PERIOD_US}")));
    }
    if let Some(weight) = r.cpu_weight {
        out.push(w("cpu", "cpu.weight", weight));
    }
    if let Some(weight) = r.io_weight {
        out.push(w("io", "io.weight", format!("default {weight}")));
    }
    out
}

/// The writes for the v1 controllers (`memory.limit_in_bytes`, ...).
pub fn v1(r: &Resources) -> Vec<Write> {
    let mut out = Vec::new();
    if let Some(m) = r.memory {
        out.push(w("memory", "memory.limit_in_bytes", m.0));
        // v1 limits memory+swap together: the total is memory plus the
        // swap allowance (none unless asked).
        let total = m.0.saturating_add(r.swap.map_or(0, |s| s.0));
        out.push(w("memory", "memory.memsw.limit_in_bytes", total));
    }
    if let Some(p) = r.pids {
        out.push(w("pids", "pids.max", p));
    }
    if let Some(c) = r.cpus {
        let quota = (c * CPU_PERIOD_US as f64).round().max(1000.0) as u64;
        out.push(w("cpu", "cpu.cfs_period_us", CPU_PERIOD_US));
        out.push(w("cpu", "cpu.cfs_quota_us", quota));
    }
    if let Some(weight) = r.cpu_weight {
        // cgroup v2's weight (1..10000, default 100) onto v1 shares
        // (2..262144, default 1024), the conversion runc and crun use.
        let shares = 2 + ((weight as u64 - 1) * 262_142) / 9_999;
        out.push(w("cpu", "cpu.shares", shares));
    }
    if let Some(weight) = r.io_weight {
        // blkio.weight takes 10..1000.
        let v = (weight as u64 / 10).clamp(10, 1000);
        out.push(w("blkio", "blkio.weight", v));
    }
    out
}

/// The controllers a set of writes needs.
pub fn controllers(writes: &[Write]) -> Vec<&'static str> {
    let mut c: Vec<&'static str> = writes.iter().map(|w| w.controller).collect();
    c.sort_unstable();
    c.dedup();
    c
}

/// A sandbox's cgroups, resolved: what to enable, create and write, in
/// that order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupPlan {
    /// v2 cgroups and the controllers to enable for their children (in
    /// their `cgroup.subtree_control`), top down: the caller's own, then
    /// each directory of `nested` on v2.
    pub enable: Vec<(PathBuf, Vec<String>)>,
    /// The directories between the caller's cgroups and the sandbox's,
    /// parents first, when its path has more than one component: made if
    /// missing (and only those removed again).
    #[serde(default)]
    pub nested: Vec<PathBuf>,
    /// The v2 cgroup, made wherever the host has a v2 hierarchy: it gives
    /// membership at clone time (CLONE_INTO_CGROUP), freeze and kill.
    pub v2: Option<PathBuf>,
    /// v1 cgroups by controller.
    pub v1: BTreeMap<String, PathBuf>,
    /// The limits, written after every cgroup exists.
    pub writes: Vec<FileWrite>,
    /// Where memory accounting is read for the exit report (true: v2).
    pub memory: Option<(PathBuf, bool)>,
    /// Where the pids counter is read (true: v2).
    pub pids: Option<(PathBuf, bool)>,
}

/// One limit to write into a cgroup that the plan creates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileWrite {
    pub dir: PathBuf,
    pub file: String,
    pub value: String,
    /// For the error when the host cannot apply it.
    pub controller: String,
}

/// A cgroup path relative to the caller's cgroups: components that are
/// neither empty, `.` nor `..`, so it cannot leave the caller's subtree.
pub fn check_path(path: &str) -> Result<(), String> {
    if path.is_empty() || path.starts_with('/') {
        return Err(format!("{path:?} must be a relative path"));
    }
    if path
        .split('/')
        .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return Err(format!(
            "{path:?} has an empty, \".\" or \"..\" component: the sandbox's cgroups stay beneath the caller's"
        ));
    }
    Ok(())
}

/// The directories strictly between `base` and `base/path`, parents first.
fn between(base: &std::path::Path, path: &str) -> Vec<PathBuf> {
    let parts: Vec<&str> = path.split('/').collect();
    (1..parts.len())
        .map(|n| base.join(parts[..n].join("/")))
        .collect()
}

/// The sandbox's cgroups at `path` (one component, `airlock-<id>`, or
/// several, as an OCI bundle's `linux.cgroupsPath` gives) under the
/// caller's own cgroups of `layout`: one per v1 controller the limits
/// need (v1 wins where a controller is mounted there, as on a hybrid
/// host), a v2 cgroup where the host has v2, and a v1 freezer when there
/// is no v2 to kill through. The controllers in `prepare` get their
/// cgroups too, limited or not, where the host has them, so limits can
/// be set later ([`crate::state::SandboxDir::update_resources`]). A
/// controller a limit needs that the host has nowhere is an error naming
/// it.
pub fn resolve(
    res: &Resources,
    layout: &Layout,
    path: &str,
    prepare: &[&str],
) -> Result<CgroupPlan, SetupError> {
    check_path(path).map_err(|e| SetupError::new("cgroup path", e))?;
    let v2_writes = v2(res);
    let mut on_v2: Vec<&str> = Vec::new();
    let mut on_v1: Vec<&str> = Vec::new();
    let needed = controllers(&v2_writes);
    for c in needed.iter().chain(prepare.iter()).copied() {
        if on_v1.contains(&v1_name(c)) || on_v2.contains(&c) {
            continue;
        }
        if layout.v1.contains_key(v1_name(c)) {
            on_v1.push(v1_name(c));
        } else if layout.v2_controllers.iter().any(|a| a == c) {
            on_v2.push(c);
        } else if needed.contains(&c) {
            let where_ = match &layout.v2 {
                Some(h) => format!(
                    "{} lists only [{}]",
                    h.own_dir().join("cgroup.controllers").display(),
                    layout.v2_controllers.join(" ")
                ),
                None => "no cgroup v2 hierarchy is mounted".into(),
            };
            return Err(SetupError::new(
                format!("resources ({c})"),
                format!("the {c} controller is not available: no cgroup v1 hierarchy has it and {where_}"),
            ));
        }
    }
    let mut plan = CgroupPlan::default();
    if let Some(h) = &layout.v2 {
        let nested = between(&h.own_dir(), path);
        if !on_v2.is_empty() {
            let enable: Vec<String> = on_v2.iter().map(|c| c.to_string()).collect();
            plan.enable.push((h.own_dir(), enable.clone()));
            // Each level below passes the controllers on.
            for d in &nested {
                plan.enable.push((d.clone(), enable.clone()));
            }
        }
        plan.nested.extend(nested);
        plan.v2 = Some(h.own_dir().join(path));
    }
    let mut v1_dir = |c: &str, h: &super::Hierarchy| {
        for d in between(&h.own_dir(), path) {
            if !plan.nested.contains(&d) {
                plan.nested.push(d);
            }
        }
        plan.v1.insert(c.to_string(), h.own_dir().join(path));
    };
    for c in &on_v1 {
        v1_dir(c, &layout.v1[*c]);
    }
    if plan.v2.is_none() {
        // Without cgroup.kill, a frozen freezer cgroup is how every
        // process is caught at once.
        if let Some(h) = layout.v1.get("freezer") {
            v1_dir("freezer", h);
        }
    }
    let planned = |dir: &PathBuf, w: Write| FileWrite {
        dir: dir.clone(),
        file: w.file.into(),
        value: w.value,
        controller: w.controller.into(),
    };
    for w in v1(res) {
        if let Some(dir) = plan.v1.get(w.controller) {
            plan.writes.push(planned(dir, w));
        }
    }
    for w in v2_writes {
        if on_v2.contains(&w.controller) {
            let dir = plan.v2.clone().expect("a controller on v2 means v2 exists");
            plan.writes.push(planned(&dir, w));
        }
    }
    let counter = |c: &str| match on_v2.contains(&c) {
        true => plan.v2.clone().map(|d| (d, true)),
        false => plan.v1.get(c).cloned().map(|d| (d, false)),
    };
    plan.memory = counter("memory");
    plan.pids = counter("pids");
    Ok(plan)
}

/// The writes that set `res` on a sandbox's existing cgroups `paths`
/// (where each controller serves it: its v1 cgroup, else the v2 cgroup
/// when `v2_enabled`, the v2 cgroup's `cgroup.controllers`, has it). A
/// limit whose controller the sandbox has no cgroup for is an error
/// naming its field: it was created without that controller, or the
/// host has none.
pub fn update_writes(
    res: &Resources,
    paths: &crate::state::CgroupPaths,
    v2_enabled: &[String],
) -> Result<Vec<(PathBuf, Write)>, SetupError> {
    let mut out = Vec::new();
    let v1_writes = v1(res);
    for w in v2(res) {
        if let Some(dir) = paths.v1.get(v1_name(w.controller)) {
            // The v1 files of the same field, once.
            for x in v1_writes
                .iter()
                .filter(|x| x.field == w.field && x.controller == v1_name(w.controller))
            {
                if !out.iter().any(|(_, o): &(PathBuf, Write)| o.file == x.file) {
                    out.push((dir.clone(), x.clone()));
                }
            }
        } else if let Some(dir) = paths
            .v2
            .as_ref()
            .filter(|_| v2_enabled.iter().any(|c| c == w.controller))
        {
            out.push((dir.clone(), w));
        } else {
            return Err(SetupError::new(
                w.field,
                format!(
                    "the sandbox has no {} cgroup to set this limit in (the host has no {} controller for it)",
                    w.controller, w.controller
                ),
            ));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Size;

    fn res() -> Resources {
        Resources {
            memory: Some(Size(256 << 20)),
            swap: None,
            pids: Some(64),
            cpus: Some(0.5),
            cpu_weight: Some(100),
            io_weight: None,
        }
    }

    #[test]
    fn v2_files() {
        let w = v2(&res());
        let get = |f: &str| w.iter().find(|x| x.file == f).map(|x| x.value.clone());
        assert_eq!(get("memory.max").unwrap(), (256u64 << 20).to_string());
        assert_eq!(get("memory.swap.max").unwrap(), "0");
        assert_eq!(get("pids.max").unwrap(), "64");
        assert_eq!(get("cpu.max").unwrap(), "50000 100000");
        assert_eq!(get("cpu.weight").unwrap(), "100");
        assert_eq!(controllers(&w), ["cpu", "memory", "pids"]);
    }

    #[test]
    fn v1_files() {
        let mut r = res();
        r.swap = Some(Size(1 << 20));
        r.io_weight = Some(500);
        let w = v1(&r);
        let get = |f: &str| w.iter().find(|x| x.file == f).map(|x| x.value.clone());
        assert_eq!(
            get("memory.limit_in_bytes").unwrap(),
            (256u64 << 20).to_string()
        );
        assert_eq!(
            get("memory.memsw.limit_in_bytes").unwrap(),
            ((256u64 << 20) + (1 << 20)).to_string()
        );
        assert_eq!(get("cpu.cfs_quota_us").unwrap(), "50000");
        assert_eq!(get("cpu.shares").unwrap(), "2597");
        assert_eq!(get("blkio.weight").unwrap(), "50");
        assert_eq!(controllers(&w), ["blkio", "cpu", "memory", "pids"]);
    }

    #[test]
    fn weights_map_to_the_ends_of_v1_ranges() {
        let mut r = Resources {
            cpu_weight: Some(1),
            ..Default::default()
        };
        assert_eq!(v1(&r)[0].value, "2");
        r.cpu_weight = Some(10000);
        assert_eq!(v1(&r)[0].value, "262144");
    }

    #[test]
    fn nothing_asked_nothing_written() {
        assert!(v2(&Resources::default()).is_empty());
        assert!(v1(&Resources::default()).is_empty());
    }

    fn layout(mountinfo: &str, cgroup: &str, v2_controllers: &[&str]) -> Layout {
        let mut l = super::super::parse_layout(mountinfo, cgroup);
        l.v2_controllers = v2_controllers.iter().map(|c| c.to_string()).collect();
        l
    }

    #[test]
    fn pure_v2_host_gets_one_cgroup_with_every_limit() {
        let l = layout(
            "30 25 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n",
            "0::/user.slice/session-1.scope\n",
            &["cpu", "io", "memory", "pids"],
        );
        let p = resolve(&res(), &l, "airlock-x", &[]).unwrap();
        let dir = PathBuf::from("/sys/fs/cgroup/user.slice/session-1.scope/airlock-x");
        assert_eq!(p.v2.as_ref(), Some(&dir));
        assert!(p.v1.is_empty());
        let (parent, enable) = p.enable[0].clone();
        assert_eq!(p.enable.len(), 1);
        assert_eq!(parent, dir.parent().unwrap());
        assert_eq!(enable, ["cpu", "memory", "pids"]);
        assert!(p.writes.iter().all(|w| w.dir == dir));
        let files: Vec<&str> = p.writes.iter().map(|w| w.file.as_str()).collect();
        assert_eq!(
            files,
            [
                "memory.max",
                "memory.swap.max",
                "pids.max",
                "cpu.max",
                "cpu.weight"
            ]
        );
        assert_eq!(p.memory, Some((dir.clone(), true)));
        assert_eq!(p.pids, Some((dir, true)));
    }

    #[test]
    fn a_v2_host_without_limits_still_gets_a_cgroup_to_kill_through() {
        let l = layout(
            "30 25 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
            "0::/a\n",
            &[],
        );
        let p = resolve(&Resources::default(), &l, "airlock-x", &[]).unwrap();
        assert_eq!(p.v2, Some(PathBuf::from("/sys/fs/cgroup/a/airlock-x")));
        assert!(p.enable.is_empty() && p.writes.is_empty());
    }

    #[test]
    fn hybrid_host_puts_limits_on_v1_and_membership_on_v2() {
        let l = layout(
            "35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
             39 31 0:36 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n\
             41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n",
            "8:pids:/\n4:memory:/m\n0::/u\n",
            &["hugetlb"],
        );
        let r = Resources {
            memory: Some(Size(1 << 20)),
            pids: Some(8),
            ..Default::default()
        };
        let p = resolve(&r, &l, "airlock-x", &[]).unwrap();
        assert!(p.enable.is_empty(), "nothing to enable on v2");
        assert_eq!(
            p.v2,
            Some(PathBuf::from("/sys/fs/cgroup/unified/u/airlock-x"))
        );
        assert_eq!(
            p.v1["memory"],
            PathBuf::from("/sys/fs/cgroup/memory/m/airlock-x")
        );
        assert!(!p.v1.contains_key("freezer"), "v2 kills; no freezer needed");
        assert_eq!(p.memory.as_ref().map(|m| m.1), Some(false));
        assert!(p
            .writes
            .iter()
            .any(|w| w.file == "memory.memsw.limit_in_bytes" && w.dir == p.v1["memory"]));
    }

    #[test]
    fn a_v1_only_host_gets_a_freezer() {
        let l = layout(
            "35 31 0:32 / /sys/fs/cgroup/freezer rw - cgroup cgroup rw,freezer\n",
            "7:freezer:/f\n",
            &[],
        );
        let p = resolve(&Resources::default(), &l, "airlock-x", &[]).unwrap();
        assert_eq!(
            p.v1["freezer"],
            PathBuf::from("/sys/fs/cgroup/freezer/f/airlock-x")
        );
    }

    #[test]
    fn a_controller_the_host_lacks_is_named() {
        let l = layout(
            "30 25 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
            "0::/a\n",
            &["memory"],
        );
        let r = Resources {
            io_weight: Some(100),
            ..Default::default()
        };
        let e = resolve(&r, &l, "airlock-x", &[]).unwrap_err();
        assert_eq!(e.step, "resources (io)");
        assert!(e.reason.contains("lists only [memory]"), "{}", e.reason);
    }

    #[test]
    fn a_nested_path_makes_and_enables_each_level_on_pure_v2() {
        let l = layout(
            "30 25 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
            "0::/a\n",
            &["memory", "pids"],
        );
        let r = Resources {
            pids: Some(8),
            ..Default::default()
        };
        let p = resolve(&r, &l, "machine.slice/m-x.slice/c.scope", &["memory"]).unwrap();
        let base = PathBuf::from("/sys/fs/cgroup/a");
        assert_eq!(
            p.nested,
            [
                base.join("machine.slice"),
                base.join("machine.slice/m-x.slice")
            ]
        );
        let enabled: Vec<&PathBuf> = p.enable.iter().map(|(d, _)| d).collect();
        assert_eq!(enabled, [&base, &p.nested[0], &p.nested[1]]);
        // A prepared controller is enabled without a limit written.
        assert!(p.enable.iter().all(|(_, c)| c == &["pids", "memory"]));
        assert_eq!(p.v2, Some(base.join("machine.slice/m-x.slice/c.scope")));
        assert_eq!(p.writes.len(), 1);
    }

    #[test]
    fn prepared_controllers_get_v1_cgroups_and_missing_ones_are_skipped() {
        let l = layout(
            "35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
             41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n",
            "4:memory:/m\n0::/u\n",
            &["hugetlb"],
        );
        let p = resolve(&Resources::default(), &l, "x/y", &["memory", "pids"]).unwrap();
        assert_eq!(p.v1["memory"], PathBuf::from("/sys/fs/cgroup/memory/m/x/y"));
        assert!(!p.v1.contains_key("pids"));
        assert_eq!(
            p.nested,
            [
                PathBuf::from("/sys/fs/cgroup/unified/u/x"),
                PathBuf::from("/sys/fs/cgroup/memory/m/x")
            ]
        );
    }

    #[test]
    fn paths_that_leave_the_callers_cgroup_are_refused() {
        let l = Layout::default();
        for bad in ["", "/abs", "a/../b", "..", "a//b", "./a"] {
            let e = resolve(&Resources::default(), &l, bad, &[]).unwrap_err();
            assert_eq!(e.step, "cgroup path", "{bad}");
        }
    }

    #[test]
    fn update_on_pure_v2_writes_the_v2_files() {
        let paths = crate::state::CgroupPaths {
            v2: Some("/sys/fs/cgroup/a/c".into()),
            v1: BTreeMap::new(),
        };
        let r = Resources {
            memory: Some(Size(64 << 20)),
            pids: Some(5),
            ..Default::default()
        };
        let enabled = ["memory".to_string(), "pids".to_string()];
        let w = update_writes(&r, &paths, &enabled).unwrap();
        let files: Vec<(&str, &str)> = w
            .iter()
            .map(|(d, w)| {
                assert_eq!(d, paths.v2.as_ref().unwrap());
                (w.file, w.value.as_str())
            })
            .collect();
        assert_eq!(
            files,
            [
                ("memory.max", "67108864"),
                ("memory.swap.max", "0"),
                ("pids.max", "5")
            ]
        );
        // A controller not enabled in the sandbox's cgroup is named.
        let e = update_writes(&r, &paths, &enabled[1..]).unwrap_err();
        assert_eq!(e.step, "resources.memory");
    }

    #[test]
    fn update_on_hybrid_writes_v1_files_once() {
        let mut v1 = BTreeMap::new();
        v1.insert("memory".to_string(), PathBuf::from("/m/c"));
        v1.insert("blkio".to_string(), PathBuf::from("/b/c"));
        let paths = crate::state::CgroupPaths {
            v2: Some("/u/c".into()),
            v1,
        };
        let r = Resources {
            memory: Some(Size(1 << 20)),
            io_weight: Some(5000),
            ..Default::default()
        };
        let w = update_writes(&r, &paths, &[]).unwrap();
        let files: Vec<(&str, &str)> = w
            .iter()
            .map(|(d, w)| (d.to_str().unwrap(), w.file))
            .collect();
        assert_eq!(
            files,
            [
                ("/m/c", "memory.limit_in_bytes"),
                ("/m/c", "memory.memsw.limit_in_bytes"),
                ("/b/c", "blkio.weight")
            ]
        );
        let pids = Resources {
            pids: Some(1),
            ..Default::default()
        };
        assert_eq!(
            update_writes(&pids, &paths, &[]).unwrap_err().step,
            "resources.pids"
        );
    }
}
