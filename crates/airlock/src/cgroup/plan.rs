//! Which cgroups a sandbox gets and which files to write in them, on v2
//! and on v1, resolved in the caller from the host's [`Layout`] and
//! carried out by the supervisor. Pure, so the controller-file logic is
//! unit-tested for both layouts whatever the test host has.

use super::{v1_name, Layout};
use crate::report::SetupError;
use crate::spec::Resources;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// One write: controller, file, value, and the spec field it carries out.
/// File and field are owned only for the hugetlb files, named by page
/// size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    pub controller: &'static str,
    pub file: Cow<'static, str>,
    pub value: String,
    /// `resources.memory`, `resources.pids`, ...: what an error names.
    pub field: Cow<'static, str>,
    /// An I/O weight's value on BFQ's scale, for its file where the host
    /// has it ([`super::bfq_instead`]).
    pub bfq: Option<String>,
}

fn w(controller: &'static str, file: &'static str, value: impl ToString) -> Write {
    Write {
        controller,
        file: file.into(),
        value: value.to_string(),
        field: field_of(file).into(),
        bfq: None,
    }
}

/// `resources.hugetlb`: for each page size, `hugetlb.<size>.<suffix>`
/// (v2 `max`, v1 `limit_in_bytes`), which a fault past it meets with
/// SIGBUS, and the same limit on reservations, `hugetlb.<size>.rsvd.<suffix>`
/// (Linux 5.7), which makes the mmap itself fail, as runc writes both.
/// A kernel without the reservation files has the usage limit alone
/// ([`super::left_out`]).
fn hugetlb(r: &Resources, suffix: &str, out: &mut Vec<Write>) {
    for (size, limit) in &r.hugetlb {
        for file in [
            format!("hugetlb.{size}.{suffix}"),
            format!("hugetlb.{size}.rsvd.{suffix}"),
        ] {
            out.push(Write {
                controller: "hugetlb",
                file: file.into(),
                value: limit.0.to_string(),
                field: format!("resources.hugetlb.{size}").into(),
                bfq: None,
            });
        }
    }
}

/// The swap limit written for a memory limit alone (no swap, or a swap
/// of 0, which means the same: an OCI bundle's `swap` equal to its
/// `limit`) carries out `resources.memory`: an error names what the
/// caller asked for, and a kernel without swap accounting may leave it
/// out where the host has no swap ([`super::left_out`]).
fn asked_by(swap: Write, r: &Resources) -> Write {
    match r.swap {
        Some(s) if s.0 != 0 => swap,
        _ => Write {
            field: "resources.memory".into(),
            ..swap
        },
    }
}

/// The spec field a cgroup file carries out.
pub(crate) fn field_of(file: &str) -> &'static str {
    match file {
        "memory.max" | "memory.limit_in_bytes" => "resources.memory",
        "memory.swap.max" | "memory.memsw.limit_in_bytes" => "resources.swap",
        "memory.low" | "memory.soft_limit_in_bytes" => "resources.memory_reservation",
        "memory.oom.group" => "resources.memory_oom_group",
        "pids.max" => "resources.pids",
        "cpu.max" | "cpu.cfs_period_us" | "cpu.cfs_quota_us" => "resources.cpus",
        "cpu.weight" | "cpu.shares" => "resources.cpu_weight",
        "cpuset.cpus" => "resources.cpuset_cpus",
        "cpuset.mems" => "resources.cpuset_mems",
        f if f.starts_with("hugetlb.") => "resources.hugetlb",
        _ => "resources.io_weight",
    }
}

/// CFS period used for `cpus` (100 ms, the kernel's default).
pub const CPU_PERIOD_US: u64 = 100_000;

/// `cpus` as a CFS quota over `period` (the default when unset), both in
/// microseconds; the quota 1 ms at least, the kernel's least.
fn quota_and_period(cpus: f64, period: Option<u64>) -> (u64, u64) {
    let period = period.unwrap_or(CPU_PERIOD_US);
    ((cpus * period as f64).round().max(1000.0) as u64, period)
}

/// The writes for the v2 interface (`memory.max`, `cpu.max`, ...).
pub fn v2(r: &Resources) -> Vec<Write> {
    let mut out = Vec::new();
    if let Some(m) = r.memory {
        out.push(w("memory", "memory.max", m.0));
        // Without a swap limit the memory limit would be no limit at all
        // on a host with swap (snekbox learned this): swap is 0 unless asked.
        let swap = w("memory", "memory.swap.max", r.swap.map_or(0, |s| s.0));
        out.push(asked_by(swap, r));
    } else if let Some(s) = r.swap {
        out.push(w("memory", "memory.swap.max", s.0));
    }
    if let Some(low) = r.memory_reservation {
        out.push(w("memory", "memory.low", low.0));
    }
    if let Some(group) = r.memory_oom_group {
        out.push(w("memory", "memory.oom.group", u8::from(group)));
    }
    if let Some(p) = r.pids {
        out.push(w("pids", "pids.max", p));
    }
    if let Some(c) = r.cpus {
        let (quota, period) = quota_and_period(c, r.cpu_period);
        out.push(w("cpu", "cpu.max", format!("{quota} {period}")));
    }
    if let Some(weight) = r.cpu_weight {
        out.push(w("cpu", "cpu.weight", weight));
    }
    if let Some(weight) = r.io_weight {
        out.push(Write {
            bfq: Some(io_weight_to_bfq(weight).to_string()),
            ..w("io", "io.weight", format!("default {weight}"))
        });
    }
    cpuset(r, &mut out);
    hugetlb(r, "max", &mut out);
    out
}

/// `cpuset.cpus` and `cpuset.mems`, the same files on v2 and v1 (a new
/// v1 cpuset cgroup starts with both empty: `Cgroup::create` copies its
/// parent's first, so one left unset is inherited).
fn cpuset(r: &Resources, out: &mut Vec<Write>) {
    if let Some(cpus) = &r.cpuset_cpus {
        out.push(w("cpuset", "cpuset.cpus", cpus));
    }
    if let Some(mems) = &r.cpuset_mems {
        out.push(w("cpuset", "cpuset.mems", mems));
    }
}

/// The writes for the v1 controllers (`memory.limit_in_bytes`, ...).
pub fn v1(r: &Resources) -> Vec<Write> {
    let mut out = Vec::new();
    if let Some(m) = r.memory {
        out.push(w("memory", "memory.limit_in_bytes", m.0));
        // v1 limits memory+swap together: the total is memory plus the
        // swap allowance (none unless asked).
        let total = m.0.saturating_add(r.swap.map_or(0, |s| s.0));
        let memsw = w("memory", "memory.memsw.limit_in_bytes", total);
        out.push(asked_by(memsw, r));
    }
    if let Some(soft) = r.memory_reservation {
        out.push(w("memory", "memory.soft_limit_in_bytes", soft.0));
    }
    if let Some(p) = r.pids {
        out.push(w("pids", "pids.max", p));
    }
    if let Some(c) = r.cpus {
        let (quota, period) = quota_and_period(c, r.cpu_period);
        out.push(w("cpu", "cpu.cfs_period_us", period));
        out.push(w("cpu", "cpu.cfs_quota_us", quota));
    }
    if let Some(weight) = r.cpu_weight {
        out.push(w("cpu", "cpu.shares", weight_to_shares(weight)));
    }
    if let Some(weight) = r.io_weight {
        out.push(Write {
            bfq: Some(io_weight_to_bfq(weight).to_string()),
            ..w("blkio", "blkio.weight", io_weight_to_blkio(weight))
        });
    }
    cpuset(r, &mut out);
    hugetlb(r, "limit_in_bytes", &mut out);
    out
}

/// cgroup v2's CPU weight (1..10000, default 100) as v1 shares (2..262144,
/// default 1024), in proportion as the kernel and systemd take them: the
/// default weight is the default share. (The linear map of one range onto
/// the other that runc and crun used until 2025 put weight 100 at 2597
/// shares, two and a half times the default.)
pub fn weight_to_shares(weight: u32) -> u64 {
    match weight {
        // The least weight is the least share: what kubelet gives a
        // BestEffort container (2 shares, weight 1) stays the least.
        0 | 1 => 2,
        w => ((w as u64 * 1024 + 50) / 100).clamp(2, 262_144),
    }
}

/// v1 CPU shares as a v2 weight: [`weight_to_shares`] the other way.
pub fn shares_to_weight(shares: u64) -> u32 {
    ((shares.min(262_144) * 100 + 512) / 1024).clamp(1, 10_000) as u32
}

/// cgroup v2's I/O weight (1..10000, default 100) as v1's blkio.weight
/// (10..1000, default 500), in proportion as systemd takes them.
pub fn io_weight_to_blkio(weight: u32) -> u64 {
    (weight as u64 * 5).clamp(10, 1000)
}

/// cgroup v2's I/O weight as BFQ's (1..1000, default 100), as systemd
/// maps it: the same up to the default, the rest of the range in
/// proportion above it.
pub fn io_weight_to_bfq(weight: u32) -> u64 {
    let w = weight.clamp(1, 10_000) as u64;
    match w {
        0..=100 => w,
        _ => 100 + (w - 100) * 900 / 9_900,
    }
}

/// v1's blkio.weight as a v2 I/O weight: [`io_weight_to_blkio`] the other
/// way.
pub fn blkio_to_io_weight(blkio: u64) -> u32 {
    ((blkio.min(1000) + 2) / 5).clamp(1, 10_000) as u32
}

/// A limit v1's memory controller has no file for: an error naming it
/// where memory is on v1 (group OOM kill off is what v1 does anyway).
fn v2_only(r: &Resources, memory_on_v1: bool) -> Result<(), SetupError> {
    if memory_on_v1 && r.memory_oom_group == Some(true) {
        return Err(SetupError::new(
            "resources.memory_oom_group",
            "memory.oom.group is a cgroup v2 file, and the memory controller here is a v1 hierarchy, which has no group OOM kill",
        ));
    }
    if memory_on_v1 && r.swap.is_some() && r.memory.is_none() {
        return Err(SetupError::new(
            "resources.swap",
            "no swap without a memory limit is cgroup v2's memory.swap.max, and the memory controller here is a v1 hierarchy, which limits memory and swap only together: give resources.memory too",
        ));
    }
    Ok(())
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
    /// Controllers made ready without a limit (`prepare`): a host that
    /// will not enable or create them (a v2 parent that holds processes,
    /// a hierarchy not delegated) leaves them out instead of failing.
    #[serde(default)]
    pub optional: Vec<String>,
}

impl CgroupPlan {
    /// The spec fields whose writes `which` takes, for an error about the
    /// cgroups they need (the limits asked are what could not be given);
    /// `otherwise` when none (a cgroup made only to hold the sandbox).
    pub fn fields(&self, which: impl Fn(&FileWrite) -> bool, otherwise: &str) -> String {
        let mut fields: Vec<&str> = Vec::new();
        for w in self
            .writes
            .iter()
            .filter(|w| which(w) && !w.field.is_empty())
        {
            if !fields.contains(&w.field.as_str()) {
                fields.push(&w.field);
            }
        }
        match fields.is_empty() {
            true => otherwise.to_string(),
            false => fields.join(", "),
        }
    }
}

/// One limit to write into a cgroup that the plan creates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileWrite {
    pub dir: PathBuf,
    pub file: String,
    pub value: String,
    /// For the error when the host cannot apply it.
    pub controller: String,
    /// The spec field it carries out (`resources.memory`), which that
    /// error names.
    #[serde(default)]
    pub field: String,
    /// Its value on BFQ's scale (an I/O weight's; see [`Write::bfq`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bfq: Option<String>,
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
            let mut asking: Vec<&str> = v2_writes
                .iter()
                .filter(|w| w.controller == c)
                .map(|w| w.field.as_ref())
                .collect();
            asking.dedup();
            return Err(SetupError::new(
                asking.join(", "),
                format!("the {c} controller is not available: no cgroup v1 hierarchy has it and {where_}"),
            ));
        }
    }
    v2_only(res, on_v1.contains(&"memory"))?;
    let mut optional: Vec<String> = prepare
        .iter()
        .filter(|c| !needed.contains(c))
        .flat_map(|c| [c.to_string(), v1_name(c).to_string()])
        .collect();
    optional.dedup();
    let mut plan = CgroupPlan {
        optional,
        ..CgroupPlan::default()
    };
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
        file: w.file.into_owned(),
        value: w.value,
        controller: w.controller.into(),
        field: w.field.into_owned(),
        bfq: w.bfq,
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
    v2_only(res, paths.v1.contains_key("memory"))?;
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
#[path = "plan_tests.rs"]
mod tests;
