//! A sandbox's cgroup counters, now: memory, CPU time, pids, block I/O
//! and OOM kills, read from whichever hierarchy holds each controller
//! (v2's files, or v1's where the host mounts the controller there). A
//! counter with no cgroup to read it from is zero.

use crate::state::CgroupPaths;
use serde::{Deserialize, Serialize};
use std::path::Path;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Bytes charged to the sandbox now, its limit (0: none) and peak.
    pub memory_bytes: u64,
    pub memory_limit: u64,
    pub memory_peak: u64,
    /// CPU time used, in microseconds.
    pub cpu_usec: u64,
    pub pids: u64,
    /// 0: no limit.
    pub pids_limit: u64,
    pub io_read_bytes: u64,
    pub io_write_bytes: u64,
    pub oom_kills: u64,
}

fn read(dir: &Path, file: &str) -> Option<String> {
    std::fs::read_to_string(dir.join(file)).ok()
}

/// A file holding one number; "max" and v1's "unlimited" (near 2^63) are 0.
fn number(dir: &Path, file: &str) -> u64 {
    read(dir, file)
        .and_then(|s| s.trim().parse::<u64>().ok())
        .filter(|n| *n < 1 << 62)
        .unwrap_or(0)
}

/// The value of `key` in a flat keyed file (`key value` per line).
fn keyed(dir: &Path, file: &str, key: &str) -> u64 {
    read(dir, file)
        .and_then(|s| {
            s.lines().find_map(|l| {
                let (k, v) = l.split_once(' ')?;
                (k == key).then(|| v.trim().parse().ok()).flatten()
            })
        })
        .unwrap_or(0)
}

/// The threads in the sandbox's cgroup, from any hierarchy it is in.
fn task_count(paths: &CgroupPaths) -> u64 {
    let listed = paths
        .v1
        .values()
        .map(|d| d.join("tasks"))
        .chain(paths.v2.iter().map(|d| d.join("cgroup.threads")))
        .find_map(|f| std::fs::read_to_string(f).ok());
    listed.map_or(0, |t| t.lines().count() as u64)
}

/// Read every counter of the cgroups at `paths`.
pub fn read_stats(paths: &CgroupPaths) -> Stats {
    let v1 = |c: &str| paths.v1.get(c).cloned();
    let mut s = Stats::default();
    match (v1("memory"), &paths.v2) {
        (Some(d), _) => {
            s.memory_bytes = number(&d, "memory.usage_in_bytes");
            s.memory_limit = number(&d, "memory.limit_in_bytes");
            s.memory_peak = number(&d, "memory.max_usage_in_bytes");
        }
        (None, Some(d)) => {
            s.memory_bytes = number(d, "memory.current");
            s.memory_limit = number(d, "memory.max");
            s.memory_peak = number(d, "memory.peak");
        }
        _ => {}
    }
    s.oom_kills = oom_kills(paths);
    // v1 mounts cpuacct with cpu on most distributions; either name holds it.
    match (v1("cpuacct").or_else(|| v1("cpu")), &paths.v2) {
        (Some(d), _) if read(&d, "cpuacct.usage").is_some() => {
            s.cpu_usec = number(&d, "cpuacct.usage") / 1000;
        }
        (_, Some(d)) => s.cpu_usec = keyed(d, "cpu.stat", "usage_usec"),
        _ => {}
    }
    match v1("pids").or_else(|| paths.v2.clone()) {
        Some(d) if read(&d, "pids.current").is_some() => {
            s.pids = number(&d, "pids.current");
            s.pids_limit = number(&d, "pids.max");
        }
        // No pids controller here (a sandbox whose pids limit is an
        // rlimit, or a v2 cgroup without the controller enabled): count
        // its tasks, as pids.current would.
        _ => {
            s.pids = task_count(paths);
        }
    }
    match (v1("blkio"), &paths.v2) {
        (Some(d), _) => {
            let (r, w) = blkio_v1(read(&d, "blkio.throttle.io_service_bytes").as_deref());
            (s.io_read_bytes, s.io_write_bytes) = (r, w);
        }
        (None, Some(d)) => {
            let (r, w) = io_v2(read(d, "io.stat").as_deref());
            (s.io_read_bytes, s.io_write_bytes) = (r, w);
        }
        _ => {}
    }
    s
}

/// Processes the kernel OOM-killed in these cgroups: one file, for a
/// watch that looks often.
pub fn oom_kills(paths: &CgroupPaths) -> u64 {
    match (paths.v1.get("memory"), &paths.v2) {
        (Some(d), _) => keyed(d, "memory.oom_control", "oom_kill"),
        (None, Some(d)) => keyed(d, "memory.events", "oom_kill"),
        _ => 0,
    }
}

/// v2 `io.stat`: `MAJ:MIN rbytes=N wbytes=N ...` per device, summed.
fn io_v2(text: Option<&str>) -> (u64, u64) {
    let mut sum = (0, 0);
    for field in text.unwrap_or("").split_whitespace() {
        let Some((k, v)) = field.split_once('=') else {
            continue;
        };
        let v: u64 = v.parse().unwrap_or(0);
        match k {
            "rbytes" => sum.0 += v,
            "wbytes" => sum.1 += v,
            _ => {}
        }
    }
    sum
}

/// v1 `blkio.throttle.io_service_bytes`: `MAJ:MIN Read N` per device,
/// summed (the file's own `Total` line has no device).
fn blkio_v1(text: Option<&str>) -> (u64, u64) {
    let mut sum = (0, 0);
    for line in text.unwrap_or("").lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if let [_, op, n] = f[..] {
            let n: u64 = n.parse().unwrap_or(0);
            match op {
                "Read" => sum.0 += n,
                "Write" => sum.1 += n,
                _ => {}
            }
        }
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_files_are_summed_per_device() {
        let v2 = "8:0 rbytes=100 wbytes=20 rios=1 wios=1\n8:16 rbytes=5 wbytes=1 rios=1\n";
        assert_eq!(io_v2(Some(v2)), (105, 21));
        let v1 = "8:0 Read 100\n8:0 Write 20\n8:0 Sync 3\n8:16 Read 5\nTotal 125\n";
        assert_eq!(blkio_v1(Some(v1)), (105, 20));
        assert_eq!(io_v2(None), (0, 0));
    }

    #[test]
    fn v2_counters_and_unlimited_values() {
        let dir = std::env::temp_dir().join(format!("airlock-stats-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for (f, v) in [
            ("memory.current", "4096\n"),
            ("memory.max", "max\n"),
            ("memory.peak", "8192\n"),
            ("memory.events", "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n"),
            ("cpu.stat", "usage_usec 1500\nuser_usec 1000\n"),
            ("pids.current", "3\n"),
            ("pids.max", "64\n"),
        ] {
            std::fs::write(dir.join(f), v).unwrap();
        }
        let s = read_stats(&CgroupPaths {
            v2: Some(dir.clone()),
            v1: Default::default(),
            made: Vec::new(),
        });
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(
            s,
            Stats {
                memory_bytes: 4096,
                memory_limit: 0,
                memory_peak: 8192,
                cpu_usec: 1500,
                pids: 3,
                pids_limit: 64,
                oom_kills: 1,
                ..Stats::default()
            }
        );
    }
}
