//! The `resources` fields: the cgroup limits and the CPU and memory-node
//! lists as the kernel writes them.

use super::SpecError;
use crate::spec::Resources;

/// The highest `pids.max` (the kernel's PID_MAX_LIMIT on 64-bit hosts).
const PID_MAX_LIMIT: u64 = 4 * 1024 * 1024;

/// The most CPUs `resources.cpus` may name.
const MAX_CPUS: f64 = 1_000_000.0;

pub(crate) fn resources(r: &Resources) -> Result<(), SpecError> {
    if r.memory.is_some_and(|m| m.0 < 1 << 20) {
        return Err(SpecError::new("resources.memory", "must be at least 1M"));
    }
    // As docker's --memory-swap: cgroup v1 has one limit for memory and
    // swap together, and a swap allowance alone would be no limit there.
    // None at all (0) is v2's memory.swap.max alone, as kubelet sets it
    // on every container (refused where memory is a v1 controller).
    if r.swap.is_some_and(|s| s.0 > 0) && r.memory.is_none() {
        return Err(SpecError::new(
            "resources.swap",
            "needs resources.memory: the swap allowance is on top of a memory limit (only 0, no swap, goes without one)",
        ));
    }
    if let (Some(low), Some(max)) = (r.memory_reservation, r.memory) {
        if low.0 > max.0 {
            return Err(SpecError::new(
                "resources.memory_reservation",
                format!("{} is above the memory limit {}", low.0, max.0),
            ));
        }
    }
    if r.pids == Some(0) {
        return Err(SpecError::new("resources.pids", "must be at least 1"));
    }
    // The kernel's own bounds, checked here so that an `update` fails
    // before it writes anything rather than halfway: pids.max takes up to
    // PID_MAX_LIMIT, and a CPU count far past any machine's would be a
    // quota past what cpu.max parses without overflow on older kernels.
    if let Some(p) = r.pids.filter(|p| *p > PID_MAX_LIMIT) {
        return Err(SpecError::new(
            "resources.pids",
            format!("{p} is above the kernel's highest limit, {PID_MAX_LIMIT}"),
        ));
    }
    if let Some(p) = r.cpu_period {
        if r.cpus.is_none() {
            return Err(SpecError::new(
                "resources.cpu_period",
                "a period without a quota limits nothing: give resources.cpus too",
            ));
        }
        if !(1000..=1_000_000).contains(&p) {
            return Err(SpecError::new(
                "resources.cpu_period",
                format!("{p} is not a period the kernel takes (1000 to 1000000 microseconds)"),
            ));
        }
    }
    if let Some(c) = r.cpus {
        // The kernel's least quota is 1 ms a period.
        let period = r.cpu_period.unwrap_or(crate::cgroup::plan::CPU_PERIOD_US) as f64;
        let least = 1000.0 / period;
        if !(c.is_finite() && c >= least - 1e-9 && c <= MAX_CPUS) {
            return Err(SpecError::new(
                "resources.cpus",
                format!("{c} is not a CPU count ({least} to {MAX_CPUS}: a quota of 1 ms a period at least)"),
            ));
        }
    }
    for (field, w) in [
        ("resources.cpu_weight", r.cpu_weight),
        ("resources.io_weight", r.io_weight),
    ] {
        if w.is_some_and(|w| !(1..=10000).contains(&w)) {
            return Err(SpecError::new(field, "must be between 1 and 10000"));
        }
    }
    for (field, list) in [
        ("resources.cpuset_cpus", &r.cpuset_cpus),
        ("resources.cpuset_mems", &r.cpuset_mems),
    ] {
        if let Some(list) = list {
            cpu_list(field, list)?;
        }
    }
    for size in r.hugetlb.keys() {
        if !is_page_size(size) {
            return Err(SpecError::new(
                format!("resources.hugetlb.{size}"),
                "not a huge page size as the kernel names them (a number and KB, MB or GB: \"2MB\", \"1GB\")",
            ));
        }
    }
    Ok(())
}

/// `2MB`, `1GB`, `64KB`: how the hugetlb controller names a page size in
/// its files. Checked here because it becomes part of a file name.
fn is_page_size(size: &str) -> bool {
    let digits = size.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &size[digits.len()..];
    (1..=5).contains(&digits.len())
        && digits.bytes().all(|c| c.is_ascii_digit())
        && !digits.starts_with('0')
        && matches!(unit, "KB" | "MB" | "GB")
}

fn cpu_list(field: &str, list: &str) -> Result<(), SpecError> {
    parse_cpu_list(list).map(|_| ()).map_err(|why| {
        SpecError::new(
            field,
            format!("{list:?} is not a list such as \"0-3,6\": {why}"),
        )
    })
}

/// A list as the kernel writes CPUs and memory nodes: numbers (of at
/// most five digits) and ascending ranges, comma-separated (`0-3,6`).
pub(crate) fn parse_cpu_list(list: &str) -> Result<Vec<(u32, u32)>, String> {
    if list.is_empty() {
        return Err("it is empty".into());
    }
    let number = |s: &str| {
        (!s.is_empty() && s.len() <= 5 && s.bytes().all(|c| c.is_ascii_digit()))
            .then(|| s.parse::<u32>().ok())
            .flatten()
    };
    list.split(',')
        .map(|part| {
            let (a, b) = part.split_once('-').unwrap_or((part, part));
            match (number(a), number(b)) {
                (Some(x), Some(y)) if x <= y => Ok((x, y)),
                (Some(_), Some(_)) => Err(format!("the range {part:?} runs backwards")),
                _ => Err(format!("{part:?} is not a number or a range")),
            }
        })
        .collect()
}
