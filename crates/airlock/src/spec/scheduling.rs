//! How the kernel schedules the workload: its nice value, its scheduling
//! policy, its I/O priority and the CPUs it may run on — what nice(1),
//! chrt(1), ionice(1) and taskset(1) set, and OCI's `process.scheduler`,
//! `process.ioPriority` and `process.execCPUAffinity`.
//!
//! Pure data and its validation; the runner sets them (`runner::sched`)
//! from the host side, where a root caller's CAP_SYS_NICE can raise a
//! priority: inside the sandbox's own user namespace even its root cannot
//! (the kernel asks for the capability in the host's user namespace).

use super::SpecError;
use serde::{Deserialize, Serialize};

/// The workload's scheduling; unset fields keep the caller's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Scheduling {
    /// -20 (first) to 19 (last), as setpriority(2) takes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nice: Option<i32>,
    /// The policy, as sched_setscheduler(2) takes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<SchedPolicy>,
    /// The static priority: 1 to 99 for `fifo` and `rr`, which need one;
    /// 0 (or unset) for the others.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<u32>,
    /// The I/O scheduling class, as ioprio_set(2) takes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub io_class: Option<IoClass>,
    /// 0 (first) to 7 within `realtime` or `best-effort` (4 when unset);
    /// `idle` has none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub io_level: Option<u32>,
    /// The CPUs the workload's threads may run on, as the kernel lists
    /// them (`0-3,6`): sched_setaffinity(2), within the cgroup's cpuset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_affinity: Option<String>,
}

impl Scheduling {
    pub fn is_unset(&self) -> bool {
        *self == Scheduling::default()
    }

    /// Whether it puts the workload ahead of the host's own work (a
    /// negative nice, a real-time policy or I/O class): guardrail
    /// `raised-priority`. The fields that do, by name.
    pub fn raised(&self) -> Vec<&'static str> {
        let mut fields = Vec::new();
        if self.nice.is_some_and(|n| n < 0) {
            fields.push("nice");
        }
        if self.policy.is_some_and(SchedPolicy::is_realtime) {
            fields.push("policy");
        }
        if self.io_class == Some(IoClass::Realtime) {
            fields.push("io_class");
        }
        fields
    }
}

/// A scheduling policy (`SCHED_*`). SCHED_DEADLINE is not one of them: a
/// deadline task cannot fork, and airlock's init starts the workload
/// with a fork.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SchedPolicy {
    /// SCHED_OTHER, the default time-sharing policy.
    Other,
    /// SCHED_BATCH: CPU-bound work, preempted less and woken later.
    Batch,
    /// SCHED_IDLE: runs only when nothing else wants the CPU.
    Idle,
    /// SCHED_FIFO: real-time, first in first out.
    Fifo,
    /// SCHED_RR: real-time, round robin.
    Rr,
}

impl SchedPolicy {
    pub fn number(self) -> i32 {
        match self {
            SchedPolicy::Other => libc::SCHED_OTHER,
            SchedPolicy::Batch => libc::SCHED_BATCH,
            SchedPolicy::Idle => libc::SCHED_IDLE,
            SchedPolicy::Fifo => libc::SCHED_FIFO,
            SchedPolicy::Rr => libc::SCHED_RR,
        }
    }

    pub fn is_realtime(self) -> bool {
        matches!(self, SchedPolicy::Fifo | SchedPolicy::Rr)
    }

    /// By name: the spec's (`fifo`) or chrt's and OCI's (`SCHED_FIFO`).
    pub fn parse(name: &str) -> Option<SchedPolicy> {
        let name = name.to_ascii_lowercase();
        let name = name.strip_prefix("sched_").unwrap_or(&name);
        Some(match name {
            "other" | "normal" => SchedPolicy::Other,
            "batch" => SchedPolicy::Batch,
            "idle" => SchedPolicy::Idle,
            "fifo" => SchedPolicy::Fifo,
            "rr" => SchedPolicy::Rr,
            _ => return None,
        })
    }
}

/// An I/O scheduling class (`IOPRIO_CLASS_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IoClass {
    /// IOPRIO_CLASS_RT: served before anything else.
    Realtime,
    /// IOPRIO_CLASS_BE, the default.
    BestEffort,
    /// IOPRIO_CLASS_IDLE: served when the disk is otherwise idle.
    Idle,
}

impl IoClass {
    pub fn number(self) -> u32 {
        match self {
            IoClass::Realtime => 1,
            IoClass::BestEffort => 2,
            IoClass::Idle => 3,
        }
    }

    /// By name: the spec's (`best-effort`), ionice's (`best-effort`, `rt`,
    /// `be`, `2`) or OCI's (`IOPRIO_CLASS_BE`).
    pub fn parse(name: &str) -> Option<IoClass> {
        let name = name.to_ascii_lowercase();
        let name = name.strip_prefix("ioprio_class_").unwrap_or(&name);
        Some(match name {
            "realtime" | "rt" | "1" => IoClass::Realtime,
            "best-effort" | "besteffort" | "be" | "2" => IoClass::BestEffort,
            "idle" | "3" => IoClass::Idle,
            _ => return None,
        })
    }
}

/// The I/O priority value ioprio_set(2) takes: the class in the top bits,
/// the level below.
pub fn ioprio_value(class: IoClass, level: Option<u32>) -> u32 {
    const IOPRIO_CLASS_SHIFT: u32 = 13;
    let level = match class {
        IoClass::Idle => 0,
        _ => level.unwrap_or(4),
    };
    (class.number() << IOPRIO_CLASS_SHIFT) | level
}

/// The highest CPU number sched_setaffinity(2) takes here (glibc's and
/// the kernel's default `cpu_set_t` of 1024 CPUs).
pub const MAX_CPU: u32 = 1023;

/// The CPUs of a valid `cpu_affinity`, one by one.
pub fn affinity_cpus(list: &str) -> Vec<u32> {
    super::validate::parse_cpu_list(list)
        .unwrap_or_default()
        .into_iter()
        .flat_map(|(a, b)| a..=b)
        .collect()
}

/// Check `s`, naming each field under `prefix` (`process.scheduling`).
pub fn validate(prefix: &str, s: &Scheduling) -> Result<(), SpecError> {
    let field = |name: &str| format!("{prefix}.{name}");
    if let Some(n) = s.nice {
        if !(-20..=19).contains(&n) {
            return Err(SpecError::new(
                field("nice"),
                format!("{n} is not a nice value (-20 to 19)"),
            ));
        }
    }
    match (s.policy, s.priority) {
        (None, Some(_)) => {
            return Err(SpecError::new(
                field("priority"),
                "a priority needs a policy (fifo or rr)",
            ))
        }
        (Some(p), prio) if p.is_realtime() && !prio.is_some_and(|n| (1..=99).contains(&n)) => {
            return Err(SpecError::new(
                field("priority"),
                "a real-time policy (fifo, rr) needs a priority from 1 to 99",
            ));
        }
        (Some(p), _) if p.is_realtime() => {}
        (Some(_), Some(n)) if n != 0 => {
            return Err(SpecError::new(
                field("priority"),
                format!(
                "{n}: only the real-time policies (fifo, rr) take a priority; the others take 0"
            ),
            ))
        }
        _ => {}
    }
    match (s.io_class, s.io_level) {
        (None, Some(_)) => {
            return Err(SpecError::new(
                field("io_level"),
                "a level needs an io_class (realtime or best-effort)",
            ))
        }
        (Some(IoClass::Idle), Some(_)) => {
            return Err(SpecError::new(
                field("io_level"),
                "the idle class has no levels",
            ))
        }
        (_, Some(n)) if n > 7 => {
            return Err(SpecError::new(
                field("io_level"),
                format!("{n} is not a level (0 to 7)"),
            ))
        }
        _ => {}
    }
    if let Some(list) = &s.cpu_affinity {
        let ranges = super::validate::parse_cpu_list(list).map_err(|why| {
            SpecError::new(
                field("cpu_affinity"),
                format!("{list:?} is not a list such as \"0-3,6\": {why}"),
            )
        })?;
        if let Some(&(_, high)) = ranges.iter().find(|(_, b)| *b > MAX_CPU) {
            return Err(SpecError::new(
                field("cpu_affinity"),
                format!("CPU {high} is beyond the highest one sched_setaffinity takes ({MAX_CPU})"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(s: Scheduling) -> Result<(), String> {
        validate("process.scheduling", &s).map_err(|e| e.to_string())
    }

    #[test]
    fn each_field_is_checked_and_named() {
        assert!(check(Scheduling::default()).is_ok());
        let e = check(Scheduling {
            nice: Some(20),
            ..Default::default()
        })
        .unwrap_err();
        assert!(
            e.contains("process.scheduling.nice") && e.contains("-20 to 19"),
            "{e}"
        );
        let fifo = Some(SchedPolicy::Fifo);
        let e = check(Scheduling {
            policy: fifo,
            ..Default::default()
        })
        .unwrap_err();
        assert!(
            e.contains("process.scheduling.priority") && e.contains("1 to 99"),
            "{e}"
        );
        assert!(check(Scheduling {
            policy: fifo,
            priority: Some(99),
            ..Default::default()
        })
        .is_ok());
        let batch = Some(SchedPolicy::Batch);
        let e = check(Scheduling {
            policy: batch,
            priority: Some(3),
            ..Default::default()
        })
        .unwrap_err();
        assert!(e.contains("only the real-time policies"), "{e}");
        assert!(check(Scheduling {
            policy: batch,
            priority: Some(0),
            ..Default::default()
        })
        .is_ok());
        let e = check(Scheduling {
            priority: Some(3),
            ..Default::default()
        })
        .unwrap_err();
        assert!(e.contains("needs a policy"), "{e}");
        let idle = Some(IoClass::Idle);
        let e = check(Scheduling {
            io_class: idle,
            io_level: Some(1),
            ..Default::default()
        })
        .unwrap_err();
        assert!(e.contains("io_level") && e.contains("no levels"), "{e}");
        let be = Some(IoClass::BestEffort);
        let e = check(Scheduling {
            io_class: be,
            io_level: Some(8),
            ..Default::default()
        })
        .unwrap_err();
        assert!(e.contains("0 to 7"), "{e}");
        let e = check(Scheduling {
            io_level: Some(2),
            ..Default::default()
        })
        .unwrap_err();
        assert!(e.contains("needs an io_class"), "{e}");
        let e = check(Scheduling {
            cpu_affinity: Some("1-0".into()),
            ..Default::default()
        })
        .unwrap_err();
        assert!(
            e.contains("process.scheduling.cpu_affinity") && e.contains("backwards"),
            "{e}"
        );
        let e = check(Scheduling {
            cpu_affinity: Some("0,1024".into()),
            ..Default::default()
        })
        .unwrap_err();
        assert!(e.contains("1023"), "{e}");
        assert_eq!(affinity_cpus("0-2,5"), [0, 1, 2, 5]);
    }

    #[test]
    fn names_and_values() {
        assert_eq!(SchedPolicy::parse("SCHED_RR"), Some(SchedPolicy::Rr));
        assert_eq!(SchedPolicy::parse("batch"), Some(SchedPolicy::Batch));
        assert_eq!(SchedPolicy::parse("SCHED_DEADLINE"), None);
        assert_eq!(IoClass::parse("IOPRIO_CLASS_IDLE"), Some(IoClass::Idle));
        assert_eq!(IoClass::parse("be"), Some(IoClass::BestEffort));
        assert_eq!(ioprio_value(IoClass::BestEffort, None), (2 << 13) | 4);
        assert_eq!(ioprio_value(IoClass::Realtime, Some(0)), 1 << 13);
        assert_eq!(ioprio_value(IoClass::Idle, None), 3 << 13);
        let raised = Scheduling {
            nice: Some(-1),
            policy: Some(SchedPolicy::Rr),
            priority: Some(1),
            io_class: Some(IoClass::Realtime),
            ..Default::default()
        };
        assert_eq!(raised.raised(), ["nice", "policy", "io_class"]);
        let lowered = Scheduling {
            nice: Some(5),
            policy: Some(SchedPolicy::Idle),
            ..Default::default()
        };
        assert!(lowered.raised().is_empty());
    }
}
