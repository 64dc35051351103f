//! What a process exec'd into a running sandbox is: the workload's
//! process with what the caller changes ([`ExecOptions`]), judged by the
//! guardrails as the workload would be.

use crate::plan::{Plan, ProcessPlan};
use crate::Error;
use std::path::PathBuf;

/// A process to run in a running sandbox ([`Sandbox::exec`]). Unset
/// fields take the workload's.
#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    pub args: Vec<String>,
    /// Set on top of the workload's environment.
    pub env: Vec<(String, String)>,
    pub cwd: Option<String>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// A new pseudo-terminal for the process, proxied to the caller's
    /// stdin and stdout (put the caller's terminal in raw mode with
    /// [`crate::terminal::RawMode`]).
    pub tty: bool,
    /// With `tty`: send the terminal's master over this unix socket
    /// instead of proxying it (OCI's `exec --console-socket`).
    pub console_socket: Option<PathBuf>,
    /// With `tty`: the terminal's size (rows, columns), set before the
    /// process runs (a size sent once the master arrives races with it).
    pub tty_size: Option<(u16, u16)>,
    /// Supplementary groups (with `uid`, else none).
    pub groups: Option<Vec<u32>>,
    /// Capabilities the process keeps (names, as in the spec); judged by
    /// the guardrails like the workload's.
    pub capabilities: Option<Vec<String>>,
    /// Those of its capabilities the process keeps over exec when it is
    /// not root ([`crate::SandboxSpec::ambient_capabilities`]); unset: the
    /// workload's, as far as the process keeps them.
    pub ambient_capabilities: Option<Vec<String>>,
    pub rlimits: Option<Vec<crate::spec::Rlimit>>,
    pub no_new_privs: Option<bool>,
    /// The process's umask; unset: the workload's.
    pub umask: Option<u32>,
    /// The process's nice value, policy, I/O priority and CPU affinity
    /// (OCI's `exec --process` scheduler, ioPriority and execCPUAffinity);
    /// unset: the workload's. Judged by the guardrails as the workload's.
    pub scheduling: Option<crate::spec::Scheduling>,
    /// The process's CPUs, over `scheduling`'s (OCI's
    /// `execCPUAffinity.final`, which a bundle gives every exec).
    pub cpu_affinity: Option<String>,
    /// A created sandbox (set up, its workload held until start) may be
    /// exec'd into too, as runc allows; otherwise only a running one, as
    /// podman allows.
    pub allow_created: bool,
    /// Exec into a paused sandbox (its cgroup frozen): the process then
    /// waits there, frozen, until it is resumed (runc's
    /// `--ignore-paused`). Unset, a paused sandbox is refused.
    pub allow_paused: bool,
    /// Guardrail codes acknowledged for this process, beyond the
    /// sandbox's own.
    pub allow_unsafe: Vec<String>,
    /// `env` is the process's whole environment (OCI's `exec --process`),
    /// not set on top of the workload's.
    pub replace_env: bool,
    /// The caller's fds 3 to 3+N-1 reach the process at the same numbers,
    /// as [`crate::SpawnOptions::preserve_fds`].
    pub preserve_fds: u32,
    /// The process's exit is for the caller's subreaper to reap, as an
    /// OCI runtime's clients reap the exec'd process whose pid they were
    /// given ([`crate::LifecycleOptions::leave_pid1_to_reaper`] for PID 1).
    pub leave_to_reaper: bool,
    /// The process (and its process group, as a stop kills it) is killed
    /// when the caller's process ends, as a sandbox dies with its caller
    /// ([`crate::SandboxSpec::die_with_parent`]): an `airlock exec`
    /// killed by SIGKILL must not leave a command running on, unwatched,
    /// nor its runner proxying a terminal no one reads. It is the
    /// runner's parent-death signal, which fires when the *thread* that
    /// spawned it ends: set it only where that thread waits for the exec
    /// (a command-line tool's), not from a pool's thread. Off for an exec
    /// that outlives its caller (OCI's `exec --detach`).
    pub die_with_caller: bool,
}

/// The process `e` asks for in the sandbox of `plan`.
pub(crate) fn process(plan: &Plan, e: &ExecOptions) -> Result<ProcessPlan, Error> {
    let mut process = ProcessPlan {
        args: e.args.clone(),
        // The sandbox's own workload's, not an exec's.
        argv0: None,
        cwd: e.cwd.clone().unwrap_or_else(|| plan.process.cwd.clone()),
        terminal: e.tty,
        preserve_fds: e.preserve_fds,
        ..plan.process.clone()
    };
    if e.args.is_empty() {
        return Err(crate::spec::SpecError::new("args", "no program to exec").into());
    }
    // The runner would pass such an argument on empty, not refuse it.
    if let Some(i) = e.args.iter().position(|a| a.contains('\0')) {
        return Err(
            crate::spec::SpecError::new(format!("args[{i}]"), "contains a NUL byte").into(),
        );
    }
    if let Some(cwd) = &e.cwd {
        crate::spec::validate::cwd("cwd", cwd)?;
    }
    if e.replace_env {
        process.env.clear();
    }
    for (k, v) in &e.env {
        crate::spec::validate::env_var(&format!("env.{k}"), k, v)?;
        process.env.retain(|(x, _)| x != k);
        process.env.push((k.clone(), v.clone()));
    }
    if let Some(uid) = e.uid {
        process.uid = uid;
        process.gid = e.gid.unwrap_or(uid);
        process.groups.clear();
    } else if let Some(gid) = e.gid {
        process.gid = gid;
    }
    if let Some(g) = &e.groups {
        // Not dropped without a word where they cannot be set.
        if !process.setgroups && !g.is_empty() {
            return Err(crate::spec::SpecError::new(
                "groups",
                "a rootless sandbox cannot set supplementary groups unless its gid map holds ids beyond the caller's own: setgroups is denied in its user namespace",
            )
            .into());
        }
        process.groups.clone_from(g);
    }
    crate::spec::validate::id("uid", process.uid)?;
    crate::spec::validate::id("gid", process.gid)?;
    for (i, g) in process.groups.iter().enumerate() {
        crate::spec::validate::id(&format!("groups[{i}]"), *g)?;
    }
    // (A joined user namespace's maps are its owner's, recorded or not.)
    if plan.user_ns() && !plan.userns_of_pid && !plan.uid_map.is_empty() && !plan.gid_map.is_empty()
    {
        mapped(plan, &process)?;
    }
    let caps = capabilities(plan, e);
    let privileges =
        caps.is_some() || e.no_new_privs.is_some() || e.scheduling.is_some() || e.rlimits.is_some();
    if e.uid.is_some() || e.gid.is_some() || e.groups.is_some() || privileges {
        judge(plan, &process, caps.as_ref(), e)?;
    }
    if let Some(spec) = &caps {
        process.capabilities = crate::plan::capability_numbers(spec);
        process.ambient = crate::plan::ambient_capabilities(spec);
    }
    if let Some(nnp) = e.no_new_privs {
        process.no_new_privs = nnp;
    }
    if let Some(s) = &e.scheduling {
        process.scheduling = (!s.is_unset()).then(|| s.clone());
    }
    if let Some(cpus) = &e.cpu_affinity {
        let mut s = process.scheduling.take().unwrap_or_default();
        s.cpu_affinity = Some(cpus.clone());
        crate::spec::scheduling::validate("process.scheduling", &s)?;
        process.scheduling = Some(s);
    }
    if let Some(mask) = e.umask {
        crate::spec::validate::umask("umask", mask)?;
        process.umask = Some(mask);
    }
    if let Some(r) = &e.rlimits {
        let mut spec = plan.spec.clone();
        spec.process.rlimits.clone_from(r);
        crate::spec::validate::validate_fields(&spec)?;
        // Those the exec names take the sandbox's place; the rest stay,
        // the default pids limit (an nproc rlimit) among them.
        let asked = crate::plan::rlimit_numbers(&spec.process);
        process
            .rlimits
            .retain(|(n, _, _)| !asked.iter().any(|(a, _, _)| a == n));
        process.rlimits.extend(asked);
    }
    Ok(process)
}

/// An exec's ids must be the sandbox's: ids its user namespace does not
/// map fail only at setresuid, named after the wrong call.
fn mapped(plan: &Plan, p: &ProcessPlan) -> Result<(), Error> {
    use crate::plan::ids::Unmapped;
    let unmapped = |field: &str, id: u32, map: &str| {
        crate::spec::SpecError::new(
            field,
            format!("{id} is not mapped in the sandbox's user namespace (its {map})"),
        )
    };
    let found = crate::plan::ids::unmapped(&plan.uid_map, &plan.gid_map, p.uid, p.gid, &p.groups);
    match found {
        None => Ok(()),
        Some(Unmapped::Uid(u)) => Err(unmapped("uid", u, "uid_map").into()),
        Some(Unmapped::Gid(g)) => Err(unmapped("gid", g, "gid_map").into()),
        Some(Unmapped::Group(_, g)) => Err(unmapped("groups", g, "gid_map").into()),
    }
}

/// The sandbox's spec with the exec's capabilities, if it changes them:
/// the workload's ambient ones that the exec still keeps, unless it names
/// its own.
fn capabilities(plan: &Plan, e: &ExecOptions) -> Option<crate::SandboxSpec> {
    if e.capabilities.is_none() && e.ambient_capabilities.is_none() {
        return None;
    }
    let mut spec = plan.spec.clone();
    if let Some(c) = &e.capabilities {
        spec.capabilities.clone_from(c);
        let kept = crate::plan::capability_numbers(&spec);
        if let Some(a) = &mut spec.ambient_capabilities {
            a.retain(|n| crate::spec::parse_capability(n).is_ok_and(|n| kept.contains(&n.index())));
        }
    }
    if let Some(a) = &e.ambient_capabilities {
        spec.ambient_capabilities = Some(a.clone());
    }
    Some(spec)
}

/// An exec's identity and privileges are judged as if the workload had
/// them, against the host facts and acknowledgements the sandbox was
/// created with (and the exec's own): in a sandbox sharing the host's
/// user namespace, `exec -u 0` is the host's root, and a capability the
/// workload was not given is refused as it would have been for it.
fn judge(
    plan: &Plan,
    p: &ProcessPlan,
    caps: Option<&crate::SandboxSpec>,
    e: &ExecOptions,
) -> Result<(), Error> {
    let mut spec = caps.unwrap_or(&plan.spec).clone();
    spec.process.uid = Some(p.uid);
    spec.process.gid = Some(p.gid);
    spec.process.groups.clone_from(&p.groups);
    if let Some(n) = e.no_new_privs {
        spec.process.no_new_privs = n;
    }
    if let Some(s) = &e.scheduling {
        spec.process.scheduling = s.clone();
    }
    // An rlimit the process could raise itself ahead of the host's work
    // with (rtprio, nice) is judged as the workload's would be.
    if let Some(r) = &e.rlimits {
        spec.process.rlimits.clone_from(r);
    }
    spec.allow_unsafe.extend(e.allow_unsafe.iter().cloned());
    crate::spec::validate::validate_fields(&spec)?;
    let findings = crate::check::check(&spec, &plan.host);
    if crate::check::refused(&findings) {
        return Err(Error::Refused(findings));
    }
    Ok(())
}
