//! A process's `scheduler`, `ioPriority` and `execCPUAffinity` as
//! airlock's [`Scheduling`].
//!
//! oci-spec spells `execCPUAffinity` and its `initial` and `final` its own
//! way (`execCpuAffinity`, `cpu_affinity_initial`), so a bundle's would be
//! dropped; it is read from the raw JSON here, and removed before the
//! typed parse.

use airlock::spec::{IoClass, SchedPolicy, Scheduling, SpecError};
use oci_spec::runtime::{IOPriorityClass, LinuxSchedulerPolicy, Process};

/// `execCPUAffinity`, as the runtime spec writes it.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ExecCpuAffinity {
    /// Where the runtime's own process runs before it joins the cgroup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial: Option<String>,
    /// Where the exec'd process runs.
    #[serde(default, rename = "final", skip_serializing_if = "Option::is_none")]
    pub last: Option<String>,
}

impl ExecCpuAffinity {
    /// The CPUs of the exec'd process. With only `initial` given, the
    /// process must not stay there (runc resets it to the container's
    /// cpuset): every CPU, which the kernel narrows to the cpuset.
    pub fn last_or_all(&self) -> Option<String> {
        match (&self.initial, &self.last) {
            (_, Some(l)) => Some(l.clone()),
            (Some(_), None) => Some(format!("0-{}", airlock::spec::scheduling::MAX_CPU)),
            (None, None) => None,
        }
    }
}

/// Take `execCPUAffinity` out of a raw process object, checked (`at`
/// names it in errors).
pub fn take_exec_cpu_affinity(
    process: &mut serde_json::Value,
    at: &str,
) -> Result<Option<ExecCpuAffinity>, String> {
    let Some(v) = process
        .as_object_mut()
        .and_then(|p| p.remove("execCPUAffinity"))
    else {
        return Ok(None);
    };
    if v.is_null() {
        return Ok(None);
    }
    let a: ExecCpuAffinity =
        serde_json::from_value(v).map_err(|e| format!("{at}execCPUAffinity: {e}"))?;
    for (name, list) in [("initial", &a.initial), ("final", &a.last)] {
        let s = Scheduling {
            cpu_affinity: list.clone(),
            ..Default::default()
        };
        airlock::spec::scheduling::validate("", &s)
            .map_err(|e| format!("{at}execCPUAffinity.{name}: {}", e.reason))?;
    }
    Ok(Some(a))
}

/// The process's scheduler and I/O priority (`at` is `process.` in a
/// bundle, empty in an exec's process file).
pub fn scheduling(p: &Process, at: &str) -> Result<Scheduling, SpecError> {
    let field = |name: &str| format!("{at}{name}");
    let mut s = Scheduling::default();
    if let Some(sc) = p.scheduler() {
        let policy = match sc.policy() {
            LinuxSchedulerPolicy::SchedOther => SchedPolicy::Other,
            LinuxSchedulerPolicy::SchedBatch => SchedPolicy::Batch,
            LinuxSchedulerPolicy::SchedIdle => SchedPolicy::Idle,
            LinuxSchedulerPolicy::SchedFifo => SchedPolicy::Fifo,
            LinuxSchedulerPolicy::SchedRr => SchedPolicy::Rr,
            LinuxSchedulerPolicy::SchedIso => {
                return Err(SpecError::new(
                    field("scheduler.policy"),
                    "SCHED_ISO is not a policy of Linux",
                ))
            }
            LinuxSchedulerPolicy::SchedDeadline => {
                return Err(SpecError::new(
                    field("scheduler.policy"),
                    "SCHED_DEADLINE is not supported: a deadline task cannot fork, and airlock's init starts the process with a fork",
                ))
            }
        };
        s.policy = Some(policy);
        s.nice = *sc.nice();
        s.priority = match sc.priority() {
            None => None,
            Some(n) => Some(u32::try_from(*n).map_err(|_| {
                SpecError::new(field("scheduler.priority"), format!("{n} is below 0"))
            })?),
        };
        if sc.flags().as_ref().is_some_and(|f| !f.is_empty()) {
            return Err(SpecError::new(
                field("scheduler.flags"),
                "scheduler flags are not supported (SCHED_RESET_ON_FORK would undo the policy at the fork that starts the process)",
            ));
        }
        for (name, v) in [
            ("runtime", sc.runtime()),
            ("deadline", sc.deadline()),
            ("period", sc.period()),
        ] {
            if v.is_some() {
                return Err(SpecError::new(
                    field(&format!("scheduler.{name}")),
                    "only SCHED_DEADLINE, which is not supported, takes it",
                ));
            }
        }
    }
    if let Some(io) = p.io_priority() {
        let class = match io.class() {
            IOPriorityClass::IoprioClassRt => IoClass::Realtime,
            IOPriorityClass::IoprioClassBe => IoClass::BestEffort,
            IOPriorityClass::IoprioClassIdle => IoClass::Idle,
        };
        s.io_class = Some(class);
        // The idle class has no levels; its `priority` (always present,
        // 0 by default) says nothing.
        if class != IoClass::Idle {
            s.io_level = Some(u32::try_from(io.priority()).map_err(|_| {
                SpecError::new(
                    field("ioPriority.priority"),
                    format!("{} is not a level (0 to 7)", io.priority()),
                )
            })?);
        }
    }
    // Checked in airlock's words, said in the bundle's.
    airlock::spec::scheduling::validate("process.scheduling", &s).map_err(|e| {
        let oci = OCI_NAMES
            .iter()
            .find(|(ours, _)| e.field == *ours)
            .map_or("", |(_, oci)| oci);
        SpecError::new(field(oci), e.reason)
    })?;
    Ok(s)
}

/// Each of airlock's fields and the OCI field (under `process.`) that
/// sets it.
const OCI_NAMES: &[(&str, &str)] = &[
    ("process.scheduling.nice", "scheduler.nice"),
    ("process.scheduling.policy", "scheduler.policy"),
    ("process.scheduling.priority", "scheduler.priority"),
    ("process.scheduling.io_class", "ioPriority.class"),
    ("process.scheduling.io_level", "ioPriority.priority"),
    ("process.scheduling.cpu_affinity", "execCPUAffinity.final"),
];

/// `text` (an error, a guardrail's refusal) with airlock's scheduling
/// fields named as a bundle names them.
pub fn in_oci_words(text: &str) -> String {
    let names: Vec<(String, String)> = OCI_NAMES
        .iter()
        .map(|(ours, oci)| (ours.to_string(), format!("process.{oci}")))
        .collect();
    airlock::report::rename_fields(text, &names)
}
