//! Which cgroup files to write for the spec's limits, on v2 and on v1.
//! Pure, so the controller-file logic is unit-tested for both layouts
//! whatever the test host has.

use crate::spec::Resources;

/// One write: controller, file, value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    pub controller: &'static str,
    pub file: &'static str,
    pub value: String,
}

fn w(controller: &'static str, file: &'static str, value: impl ToString) -> Write {
    Write {
        controller,
        file,
        value: value.to_string(),
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
}
