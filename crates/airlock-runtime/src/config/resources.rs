//! `linux.resources` as airlock's limits.

use super::err;
use airlock::spec::{SandboxSpec, Size, SpecError};

/// v1 CPU shares as airlock's v2 weight, in proportion (1024 is the
/// default weight 100), as systemd and, since 2025, runc and crun keep the
/// default: back on a v1 host they are the shares the bundle gave.
pub use airlock::cgroup::plan::shares_to_weight;

/// `shares` if v1's `cpu.shares` takes it as it is: the kernel clamps a
/// value outside 2..=262144 without a word (runc reads the file back and
/// refuses), and the weight made of it would be another's.
pub fn shares_in_range(shares: u64) -> Result<u64, String> {
    match shares {
        2..=262_144 => Ok(shares),
        _ => Err(format!(
            "{shares} is not between 2 and 262144, the kernel's range for cpu.shares"
        )),
    }
}

/// `linux.resources` as airlock's limits (for `update --resources`).
pub fn resources_of(
    r: &oci_spec::runtime::LinuxResources,
) -> Result<airlock::spec::Resources, SpecError> {
    let mut s = SandboxSpec::default();
    resources(r, &mut s)?;
    Ok(s.resources)
}

pub(super) fn resources(
    r: &oci_spec::runtime::LinuxResources,
    s: &mut SandboxSpec,
) -> Result<(), SpecError> {
    // -1 is "no limit" and 0 "not set", as runc takes them; below -1 is
    // no value at all (runc refuses it), not another way to say none.
    let below = [
        (
            "linux.resources.memory.limit",
            r.memory().and_then(|m| m.limit()),
        ),
        (
            "linux.resources.memory.swap",
            r.memory().and_then(|m| m.swap()),
        ),
        (
            "linux.resources.memory.reservation",
            r.memory().and_then(|m| m.reservation()),
        ),
        ("linux.resources.pids.limit", r.pids().map(|p| p.limit())),
        (
            "linux.resources.cpu.quota",
            r.cpu().as_ref().and_then(|c| c.quota()),
        ),
    ];
    if let Some((field, v)) = below
        .iter()
        .find_map(|(f, v)| v.filter(|v| *v < -1).map(|v| (f, v)))
    {
        return Err(err(
            *field,
            format!("{v} is no value: give bytes (a count), or -1 for no limit"),
        ));
    }
    if let Some(m) = r.memory() {
        // As runc: a swap limit needs a memory limit to be added to.
        if m.swap().is_some_and(|w| w > 0) && m.limit().is_none_or(|l| l <= 0) {
            return Err(err(
                "linux.resources.memory.swap",
                "needs linux.resources.memory.limit (swap counts memory and swap together)",
            ));
        }
        if let Some(limit) = m.limit().filter(|l| *l > 0) {
            s.resources.memory = Some(Size(limit as u64));
            match m.swap() {
                // OCI's swap is memory+swap, as on cgroup v1.
                Some(swap) if swap >= limit => {
                    s.resources.swap = Some(Size((swap - limit) as u64));
                }
                // runc takes -1 as unlimited swap: refused, not taken as
                // none (as `update --memory-swap -1` is).
                Some(-1) => {
                    return Err(err(
                        "linux.resources.memory.swap",
                        "-1 (unlimited swap) is not supported: give memory and swap together as a number, at least the memory limit",
                    ))
                }
                Some(swap) if swap > 0 => {
                    return Err(err(
                        "linux.resources.memory.swap",
                        format!("{swap} is below linux.resources.memory.limit {limit} (it counts memory and swap together)"),
                    ))
                }
                // 0 or absent: no swap beyond the limit.
                _ => {}
            }
        }
        if let Some(low) = m.reservation().filter(|r| *r > 0) {
            s.resources.memory_reservation = Some(Size(low as u64));
        }
        if m.kernel().is_some() || m.swappiness().is_some() {
            return Err(err(
                "linux.resources.memory",
                "only limit, swap and reservation are supported",
            ));
        }
        // Always on since Linux 5.x, and only ever a v1 file.
        if m.use_hierarchy() == Some(false) {
            return Err(err(
                "linux.resources.memory.useHierarchy",
                "false is not supported: the kernel's memory accounting is always hierarchical",
            ));
        }
        if m.kernel_tcp().is_some() {
            return Err(err("linux.resources.memory.kernelTCP", "not supported"));
        }
        if m.disable_oom_killer() == Some(true) {
            return Err(err(
                "linux.resources.memory.disableOOMKiller",
                "not supported: the kernel's OOM killer stays on for a memory limit",
            ));
        }
    }
    if let Some(p) = r.pids() {
        if p.limit() > 0 {
            s.resources.pids = Some(p.limit() as u64);
        }
    }
    if let Some(c) = r.cpu() {
        if let Some(q) = c.quota().filter(|q| *q > 0) {
            // Without a period, the kernel's default one, as runc takes it
            // (a quota alone was dropped).
            let p = c.period().filter(|p| *p > 0).unwrap_or(CFS_PERIOD_US);
            s.resources.cpus = Some(q as f64 / p as f64);
            // Kept as given: the same share over another period bursts
            // differently.
            s.resources.cpu_period = Some(p);
        }
        if let Some(shares) = c.shares().filter(|x| *x > 0) {
            s.resources.cpu_weight = Some(shares_to_weight(
                shares_in_range(shares).map_err(|why| err("linux.resources.cpu.shares", why))?,
            ));
        }
        s.resources.cpuset_cpus = c.cpus().clone().filter(|x| !x.is_empty());
        s.resources.cpuset_mems = c.mems().clone().filter(|x| !x.is_empty());
        if c.realtime_runtime().is_some() || c.realtime_period().is_some_and(|p| p > 0) {
            return Err(err(
                "linux.resources.cpu",
                "realtime limits are not supported",
            ));
        }
        if c.idle().is_some_and(|i| i != 0) {
            return Err(err("linux.resources.cpu.idle", "not supported"));
        }
        if c.burst().is_some_and(|b| b > 0) {
            return Err(err("linux.resources.cpu.burst", "not supported"));
        }
    }
    // As kubelet sends them through CRI-O, one a page size the node has
    // (0 where the pod asked for none); a page size given twice is not
    // two limits.
    for (i, h) in r.hugepage_limits().iter().flatten().enumerate() {
        let field = format!("linux.resources.hugepageLimits[{i}]");
        if h.limit() < 0 {
            return Err(err(
                format!("{field}.limit"),
                format!("{} is not a number of bytes", h.limit()),
            ));
        }
        let limit = Size(h.limit() as u64);
        if s.resources
            .hugetlb
            .insert(h.page_size().clone(), limit)
            .is_some()
        {
            return Err(err(
                format!("{field}.pageSize"),
                format!("{:?} is limited twice", h.page_size()),
            ));
        }
    }
    // Nothing the bundle asks for is dropped without a word: what airlock
    // cannot apply is refused by name (a reviewer had --device-read-bps,
    // a unified pids.max and the rest accepted and not applied).
    if let Some(b) = r.block_io() {
        let lists = [
            (
                "weightDevice",
                b.weight_device().as_ref().map_or(0, Vec::len),
            ),
            (
                "throttleReadBpsDevice",
                b.throttle_read_bps_device().as_ref().map_or(0, Vec::len),
            ),
            (
                "throttleWriteBpsDevice",
                b.throttle_write_bps_device().as_ref().map_or(0, Vec::len),
            ),
            (
                "throttleReadIOPSDevice",
                b.throttle_read_iops_device().as_ref().map_or(0, Vec::len),
            ),
            (
                "throttleWriteIOPSDevice",
                b.throttle_write_iops_device().as_ref().map_or(0, Vec::len),
            ),
        ];
        if let Some((name, _)) = lists.iter().find(|(_, n)| *n > 0) {
            return Err(err(
                format!("linux.resources.blockIO.{name}"),
                "per-device limits are not supported (only weight)",
            ));
        }
        if b.leaf_weight().is_some() {
            return Err(err("linux.resources.blockIO.leafWeight", "not supported"));
        }
    }
    if let Some(n) = r.network() {
        if n.class_id().is_some() || n.priorities().as_ref().is_some_and(|p| !p.is_empty()) {
            return Err(err(
                "linux.resources.network",
                "net_cls and net_prio are not supported",
            ));
        }
    }
    if r.rdma().as_ref().is_some_and(|m| !m.is_empty()) {
        return Err(err("linux.resources.rdma", "not supported"));
    }
    unified(r, s)?;
    // 0 is unset, as runc takes it.
    if let Some(w) = r
        .block_io()
        .as_ref()
        .and_then(|b| b.weight())
        .filter(|w| *w != 0)
    {
        if !(10..=1000).contains(&w) {
            return Err(err(
                "linux.resources.blockIO.weight",
                format!("{w} is outside blkio's 10 to 1000"),
            ));
        }
        // blkio weight (10..1000, default 500) as airlock's io weight
        // (1..10000, default 100).
        s.resources.io_weight = Some(airlock::cgroup::plan::blkio_to_io_weight(w as u64));
    }
    // linux.resources.devices is the device cgroup: informational, see
    // `devices`.
    Ok(())
}

/// `linux.resources.unified`: the v2 files kubelet sets there, as their
/// typed fields; any other file is refused by name rather than written
/// raw, so the guardrails and the plan see every limit.
fn unified(r: &oci_spec::runtime::LinuxResources, s: &mut SandboxSpec) -> Result<(), SpecError> {
    // In name order, so the error names the same file every time.
    let files: std::collections::BTreeMap<_, _> = r.unified().iter().flatten().collect();
    for (key, value) in files {
        let field = || format!("linux.resources.unified.{key}");
        match key.as_str() {
            // kubelet's NoSwap on v2 (its default from 1.30): "0" on
            // every container, with a memory limit or not. The same file
            // as resources.swap, the allowance on top of memory.max.
            "memory.swap.max" => {
                let Ok(bytes) = value.trim().parse::<u64>() else {
                    return Err(err(
                        field(),
                        format!("{value:?}: give bytes; unlimited swap (max) is not supported"),
                    ));
                };
                if bytes > 0 && s.resources.memory.is_none() {
                    return Err(err(
                        field(),
                        "swap beyond 0 needs linux.resources.memory.limit: airlock's swap allowance is on top of a memory limit",
                    ));
                }
                // Over linux.resources.memory.swap, as runc writes the
                // unified files last: containerd sets that to the limit
                // (no swap) for every container with one, and kubelet's
                // LimitedSwap gives the allowance here.
                s.resources.swap = Some(Size(bytes));
            }
            // Set on every container by kubelet 1.28 and later on v2.
            "memory.oom.group" => {
                s.resources.memory_oom_group = Some(match value.trim() {
                    "1" => true,
                    "0" => false,
                    _ => return Err(err(field(), format!("{value:?} is neither 0 nor 1"))),
                })
            }
            _ => {
                return Err(err(
                    field(),
                    "raw cgroup v2 files are not supported (only memory.oom.group and memory.swap.max, which kubelet sets): give the limit in its own field",
                ))
            }
        }
    }
    Ok(())
}

/// The CFS period the kernel gives a cgroup, in microseconds.
const CFS_PERIOD_US: u64 = 100_000;
