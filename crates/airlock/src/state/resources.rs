//! Changing a created or running sandbox's limits (the OCI runtime's
//! `update`): the same limit files as at creation ([`crate::cgroup::plan`]),
//! in the cgroups the sandbox already has, and the new limits recorded in
//! its state.

use super::{SandboxDir, State, Status};
use crate::cgroup::plan::{update_writes, Write};
use crate::report::{describe, SetupError};
use crate::spec::Resources;
use crate::Error;
use std::path::PathBuf;

impl SandboxDir {
    /// Set the limits that `new` gives (its `None` fields stay as they
    /// are) on the sandbox's cgroups, and record them in its state. Every
    /// file is checked before any is written, so a limit the host cannot
    /// apply is an error (naming its `resources.*` field) that changes
    /// nothing. Takes the sandbox's lock; returns the new state.
    pub fn update_resources(&self, new: &Resources) -> Result<State, Error> {
        let _lock = self.lock()?;
        let st = self.state()?;
        if !matches!(st.status, Status::Created | Status::Running) {
            return Err(super::StateError::WrongStatus {
                name: st.name,
                status: st.status,
                what: "only a created or running sandbox's limits can be changed".into(),
            }
            .into());
        }
        let mut spec = st.spec.get()?;
        let old = &spec.resources;
        let merged = Resources {
            memory: new.memory.or(old.memory),
            swap: new.swap.or(old.swap),
            memory_reservation: new.memory_reservation.or(old.memory_reservation),
            memory_oom_group: new.memory_oom_group.or(old.memory_oom_group),
            pids: new.pids.or(old.pids),
            cpus: new.cpus.or(old.cpus),
            cpu_period: new.cpu_period.or(old.cpu_period),
            cpu_weight: new.cpu_weight.or(old.cpu_weight),
            io_weight: new.io_weight.or(old.io_weight),
            cpuset_cpus: new.cpuset_cpus.clone().or(old.cpuset_cpus.clone()),
            cpuset_mems: new.cpuset_mems.clone().or(old.cpuset_mems.clone()),
            hugetlb: old
                .hugetlb
                .iter()
                .chain(&new.hugetlb)
                .map(|(k, v)| (k.clone(), *v))
                .collect(),
        };
        // A new limit under the reservation already set is the limit's
        // fault, not the reservation's: name the field the caller gave.
        if let (Some(max), None, Some(low)) =
            (new.memory, new.memory_reservation, old.memory_reservation)
        {
            if max.0 < low.0 {
                return Err(crate::spec::SpecError::new(
                    "resources.memory",
                    format!("{} is below the memory reservation {}", max.0, low.0),
                )
                .into());
            }
        }
        crate::spec::validate::resources(&merged)?;
        // Only a sandbox made with a cpuset is sure of a cpuset cgroup (v1)
        // or of the controller (v2, where another sandbox may have enabled
        // it in their parent): the same answer on every host.
        if old.cpuset_cpus.is_none() && old.cpuset_mems.is_none() {
            let given = [
                ("resources.cpuset_cpus", &new.cpuset_cpus),
                ("resources.cpuset_mems", &new.cpuset_mems),
            ];
            if let Some((field, _)) = given.iter().find(|(_, v)| v.is_some()) {
                return Err(crate::spec::SpecError::new(
                    *field,
                    "the sandbox was created without a cpuset: give it one when it is created",
                )
                .into());
            }
        }
        // Only what changes is written; memory and swap go together, as
        // v1 limits them together.
        let memory_changed = new.memory.is_some() || new.swap.is_some();
        // A quota and its period likewise: cpu.max holds both.
        let cpu_changed = new.cpus.is_some() || new.cpu_period.is_some();
        let changed = Resources {
            memory: merged.memory.filter(|_| memory_changed),
            swap: merged.swap.filter(|_| memory_changed),
            cpus: merged.cpus.filter(|_| cpu_changed),
            cpu_period: merged.cpu_period.filter(|_| cpu_changed),
            ..new.clone()
        };
        let Some(paths) = st.cgroup.clone() else {
            return Err(Error::Setup(SetupError::new(
                "resources",
                format!("sandbox {} has no cgroups to set limits in", st.name),
            )));
        };
        let enabled: Vec<String> = paths
            .v2
            .as_ref()
            .and_then(|d| std::fs::read_to_string(d.join("cgroup.controllers")).ok())
            .map(|s| s.split_whitespace().map(String::from).collect())
            .unwrap_or_default();
        let mut writes = update_writes(&changed, &paths, &enabled).map_err(Error::Setup)?;
        for (dir, w) in &mut writes {
            if let Some((file, value)) = crate::cgroup::bfq_instead(dir, &w.file, w.bfq.as_deref())
            {
                w.file = file.into();
                w.value = value;
            }
        }
        writes.retain(|(dir, w)| !crate::cgroup::left_out(&w.field, &w.file, &dir.join(&*w.file)));
        for (dir, w) in &writes {
            if w.controller == "cpuset" {
                crate::cgroup::cpuset_fits(dir, &w.file, &w.value)
                    .map_err(|why| Error::Setup(SetupError::new(w.field.clone(), why)))?;
            }
            if !dir.join(&*w.file).exists() {
                return Err(Error::Setup(SetupError::new(
                    w.field.clone(),
                    format!(
                        "{} has no {}: the host's {} controller cannot apply this limit",
                        dir.display(),
                        w.file,
                        w.controller
                    ),
                )));
            }
        }
        order_v1_memory(&mut writes);
        order_v1_cpu(&mut writes);
        // The kernel may still refuse a value (a memory limit below what
        // the workload uses, EBUSY): what was written before it is put
        // back, last first, so the limits stay the recorded ones.
        let mut written: Vec<(PathBuf, String)> = Vec::new();
        for (dir, w) in &writes {
            let path = dir.join(&*w.file);
            let before = std::fs::read_to_string(&path);
            if let Err(e) = std::fs::write(&path, &w.value) {
                let mut reason = format!(
                    "cannot write {:?} to {}: {}",
                    w.value,
                    path.display(),
                    describe(&e)
                );
                for (path, value) in written.iter().rev() {
                    if let Err(e) = put_back(path, value) {
                        reason.push_str(&format!(
                            "; and {} could not be put back to {value:?} ({}): the sandbox's limits are no longer those recorded",
                            path.display(),
                            describe(&e)
                        ));
                    }
                }
                return Err(Error::Setup(SetupError::new(w.field.clone(), reason)));
            }
            if let Ok(before) = before {
                // A weight file lists a default and per-device lines, of
                // which a write takes one: the default is what was set.
                let before = match before.lines().find(|l| l.starts_with("default ")) {
                    Some(default) => default.to_string(),
                    None => before.trim_end().to_string(),
                };
                written.push((path, before));
            }
        }
        spec.resources = merged;
        let recorded = crate::state::RecordedSpec::new(&spec);
        self.update(|s| s.spec = recorded)?;
        Ok(self.state()?)
    }
}

/// Write `value` back to a cgroup file. An empty one is written as a
/// newline: writing no bytes is no write at all to the kernel, and a v2
/// `cpuset.cpus` or `cpuset.mems` that was empty (the parent's) stayed
/// what the failed update had set.
fn put_back(path: &std::path::Path, value: &str) -> std::io::Result<()> {
    std::fs::write(path, if value.is_empty() { "\n" } else { value })
}

/// v1 keeps memory.limit_in_bytes at or below memory.memsw.limit_in_bytes
/// at every moment: raising the total goes first, lowering it last.
/// v1 checks a quota against its period at each write (a child's share
/// never above its parent's): a period that shrinks goes after the
/// quota, or the old quota over the new period could be refused.
fn order_v1_cpu(writes: &mut [(PathBuf, Write)]) {
    let pos = |f: &str| writes.iter().position(|(_, w)| w.file == f);
    let (Some(period), Some(quota)) = (pos("cpu.cfs_period_us"), pos("cpu.cfs_quota_us")) else {
        return;
    };
    let (dir, w) = &writes[period];
    let current: u64 = std::fs::read_to_string(dir.join(&*w.file))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    let new: u64 = w.value.parse().unwrap_or(0);
    if (new < current) == (period < quota) {
        writes.swap(period, quota);
    }
}

fn order_v1_memory(writes: &mut [(PathBuf, Write)]) {
    let pos = |f: &str| writes.iter().position(|(_, w)| w.file == f);
    let (Some(limit), Some(memsw)) = (
        pos("memory.limit_in_bytes"),
        pos("memory.memsw.limit_in_bytes"),
    ) else {
        return;
    };
    let (dir, w) = &writes[memsw];
    let current: u64 = std::fs::read_to_string(dir.join(&*w.file))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(u64::MAX);
    let new: u64 = w.value.parse().unwrap_or(0);
    if (new >= current) == (memsw > limit) {
        writes.swap(limit, memsw);
    }
}

#[cfg(test)]
mod tests {
    /// The kernel takes a cgroup file's value at write(2): an empty one
    /// must reach it as a write, which a zero-byte write is not.
    #[test]
    fn an_empty_value_is_put_back_as_a_write() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("cpuset.cpus");
        std::fs::write(&f, "0-1\n").unwrap();
        super::put_back(&f, "").unwrap();
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "\n");
        super::put_back(&f, "1").unwrap();
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "1");
    }
}
