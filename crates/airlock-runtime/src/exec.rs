//! `exec`: a further process in a running container, from the command
//! line's flags or an OCI process object (`--process`), with what it asks
//! for honoured or refused naming the field: its args, env (its whole
//! environment), cwd, user and groups, terminal, capabilities (judged by
//! the guardrails as the container's are), rlimits, noNewPrivileges and
//! OOM score.

use crate::commands::{oom_score_adj, write_pid_file, Ctx, Result};
use crate::config;
use airlock::{ExecOptions, Sandbox, SpawnOptions};
use std::path::Path;

pub fn exec(ctx: &Ctx, e: liboci_cli::Exec) -> Result<i32> {
    let (sb, st) = ctx.find(&e.container_id)?;
    // As runc: the process would join a frozen cgroup and wait there.
    if !e.ignore_paused && crate::commands::paused(&st) {
        return Err("cannot exec in a paused container (use --ignore-paused to override)".into());
    }
    // What runc's flags ask that airlock cannot do is refused, not dropped.
    for (given, why) in [
        (
            e.apparmor.is_some(),
            "--apparmor: AppArmor profiles are not supported by airlock",
        ),
        (
            e.process_label.is_some(),
            "--process-label: SELinux labels are not supported by airlock",
        ),
        (
            e.cgroup.is_some(),
            "--cgroup: an exec joins the container's own cgroups, not a sub-cgroup",
        ),
    ] {
        if given {
            return Err(why.into());
        }
    }
    let mut opts = ExecOptions {
        args: e.command.clone(),
        env: e.env.clone(),
        cwd: e.cwd.as_ref().map(|c| c.display().to_string()),
        uid: e.user.map(|u| u.0),
        gid: e.user.and_then(|u| u.1),
        tty: e.tty,
        console_socket: e.console_socket.clone(),
        allow_unsafe: ctx.allow_unsafe.clone(),
        preserve_fds: crate::commands::preserve_fds(e.preserve_fds)?,
        // The client waits for the pid it is given, as runc's: the
        // process itself, whose zombie reaches it when the runner exits.
        // Until the client reaps it, that zombie (in the container's PID
        // namespace) holds up the end of the container's PID 1, as under
        // runc; conmon and containerd's shims reap at once.
        leave_to_reaper: e.pid_file.is_some(),
        // As runc: a created container's namespaces are there to join.
        allow_created: true,
        // Checked above, as runc words it.
        allow_paused: e.ignore_paused,
        ..ExecOptions::default()
    };
    if let Some(path) = &e.process {
        // The file is the process: a flag that would set what it sets
        // again is refused, not silently lost to it (runc ignores them).
        for (given, flag) in [
            (!e.env.is_empty(), "--env"),
            (e.cwd.is_some(), "--cwd"),
            (e.user.is_some(), "--user"),
            (!e.command.is_empty(), "a command"),
        ] {
            if given {
                return Err(format!(
                    "exec --process {}: {flag} cannot be given with --process, whose process sets it",
                    path.display()
                ));
            }
        }
        let scored = process_file(path, &mut opts, e.no_new_privs)
            .map_err(|why| format!("exec --process {}: {why}", path.display()))?;
        // Said by both, it must be the file's too: a terminal asked for
        // and silently not given would leave the process without one.
        if e.tty && !opts.tty {
            return Err(format!(
                "exec --process {}: --tty asks for a terminal, and the process's `terminal` is false",
                path.display()
            ));
        }
        if !scored {
            container_oom_score(&sb)?;
        }
    } else {
        container_oom_score(&sb)?;
        // The container's process, as runc builds an exec from it:
        // `--user UID[:GID]` changes only those, its groups stay.
        if let Some((_, gid)) = e.user {
            let plan = sb.plan().map_err(|e| e.to_string())?;
            opts.gid = Some(gid.unwrap_or(plan.process.gid));
            opts.groups = Some(plan.process.groups);
        }
        if let Some(a) = crate::commands::exec_cpu_affinity(&sb) {
            exec_cpu_affinity(&a, &mut opts).map_err(|why| format!("process.{why}"))?;
        }
    }
    // On top of what --process says, as runc's flags are. The
    // capabilities follow: with no_new_privs only the effective ones (a
    // container made without it keeps its bounding set effective).
    if e.no_new_privs {
        opts.no_new_privs = Some(true);
        if opts.capabilities.is_none() {
            if let Some((kept, ambient)) = crate::commands::nnp_capabilities(&sb) {
                opts.capabilities = Some(kept);
                opts.ambient_capabilities = Some(ambient);
            }
        }
    }
    if !e.additional_gids.is_empty() {
        // As runc: added to the groups the process has, the container
        // process's when neither --user nor --process gave others.
        let groups = match opts.groups.take() {
            Some(g) => g,
            None if opts.uid.is_none() => sb.plan().map_err(|e| e.to_string())?.process.groups,
            None => Vec::new(),
        };
        let groups = opts.groups.insert(groups);
        groups.extend(&e.additional_gids);
        groups.sort_unstable();
        groups.dedup();
    }
    if !e.cap.is_empty() {
        // runc's --cap: on top of what the process has, ambient too.
        let (mut caps, mut ambient) = match opts.capabilities.take() {
            Some(c) => (c, opts.ambient_capabilities.take().unwrap_or_default()),
            None => {
                let spec = sb.plan().map_err(|e| e.to_string())?.spec;
                (
                    spec.capabilities,
                    spec.ambient_capabilities.unwrap_or_default(),
                )
            }
        };
        for list in [&mut caps, &mut ambient] {
            list.extend(e.cap.iter().cloned());
            list.sort();
            list.dedup();
        }
        opts.capabilities = Some(caps);
        opts.ambient_capabilities = Some(ambient);
    }
    // A process without no_new_privs is taken as the container's is (see
    // `config::platform_defaults`): where its root is not the host's.
    if opts.no_new_privs == Some(false) {
        let spec = sb.plan().map_err(|e| e.to_string())?.spec;
        if config::root_unprivileged(&spec) {
            opts.allow_unsafe.push("no-new-privs-disabled".into());
        }
    }
    // As runc's checkTerminal: a socket nothing would be sent to.
    if opts.console_socket.is_some() && !opts.tty {
        return Err(
            "--console-socket was given without a terminal (--tty or process.terminal): there is no terminal to send"
                .into(),
        );
    }
    // A terminal without a socket: a foreground exec relays it, as
    // runc's does; a detached one has nobody to relay it.
    let console = match opts.tty && opts.console_socket.is_none() {
        true if e.detach => {
            return Err(
                "exec --tty (or process.terminal) with --detach needs --console-socket".into(),
            )
        }
        true => {
            let c = crate::console::Console::new(ctx.state_root()?.path())?;
            opts.console_socket = Some(c.path().to_path_buf());
            Some(c)
        }
        false => None,
    };
    let spawn = SpawnOptions::default();
    let fields = config::ConfigFields::for_process(crate::commands::own_acks(ctx));
    // A foreground exec passes the signals it gets on to the process, as
    // runc's does (and `run` here): a SIGTERM must not end the runtime and
    // leave the process running. Held from before the start, so that one
    // that comes meanwhile waits for it.
    if !e.detach {
        Sandbox::hold_signals();
    }
    let process = Sandbox::exec(&sb, &opts, &spawn).map_err(|e| match e {
        airlock::Error::Refused(f) => airlock::check::render(&fields.findings(&f))
            .trim_end()
            .replace('\n', "; "),
        e => fields.rewrite(&e.to_string()),
    })?;
    if let Some(p) = &e.pid_file {
        // As runc: a process whose pid could not be told is not left
        // running, unwatched.
        if let Err(why) = write_pid_file(p, process.init_pid()) {
            let _ = process.kill();
            let _ = process.wait();
            return Err(why);
        }
    }
    if e.detach {
        return Ok(0);
    }
    let relay = console.map(|c| c.relay(opts.tty_size));
    process.forward_signals(true);
    let report = process.wait().map_err(|e| e.to_string())?;
    if let Some(relay) = relay {
        relay.finish();
    }
    Ok(report.code)
}

/// `exec --process FILE`: an OCI process object.
/// The container's OOM score made ours, for the process an exec starts to
/// inherit (it had its caller's).
fn container_oom_score(sb: &airlock::state::SandboxDir) -> Result<()> {
    match crate::commands::container_oom_score_adj(sb) {
        Some(v) => oom_score_adj(v),
        None => Ok(()),
    }
}

/// Apply the process file at `path` to `opts`; whether it set the OOM
/// score.
fn process_file(path: &Path, opts: &mut ExecOptions, no_new_privs: bool) -> Result<bool> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let mut value: serde_json::Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    let affinity = crate::config::scheduling::take_exec_cpu_affinity(&mut value, "")?;
    let p: oci_spec::runtime::Process = crate::config::typed_json(value.clone())?;
    // What oci-spec does not know it drops: refused, as in config.json.
    let parsed = serde_json::to_value(&p).expect("a parsed process serializes");
    if let Some(field) = crate::config::dropped(&value, &parsed, "") {
        return Err(format!("{field}: not supported by airlock-runtime"));
    }
    // The file's word, as runc takes the whole process from it: --tty
    // does not add a terminal it does not ask for.
    opts.tty = p.terminal().unwrap_or(false);
    opts.tty_size = p.console_size().as_ref().map(|b| {
        (
            crate::commands::clamp16(b.height()),
            crate::commands::clamp16(b.width()),
        )
    });
    opts.args = p.args().clone().unwrap_or_default();
    if opts.args.is_empty() {
        return Err("args: no program to run".into());
    }
    if p.command_line().is_some() {
        return Err("commandLine: Windows only".into());
    }
    opts.cwd = Some(p.cwd().display().to_string());
    let u = p.user();
    opts.uid = Some(u.uid());
    opts.gid = Some(u.gid());
    opts.groups = Some(u.additional_gids().clone().unwrap_or_default());
    // Checked by the library, as `umask`.
    opts.umask = u.umask();
    if u.username().as_deref().is_some_and(|n| !n.is_empty()) {
        return Err("user.username: Windows only; give uid and gid".into());
    }
    // Its whole environment, as runc gives it.
    opts.replace_env = true;
    opts.env.clear();
    for (i, kv) in p.env().iter().flatten().enumerate() {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| format!("env[{i}]: not KEY=VALUE"))?;
        opts.env.push((k.to_string(), v.to_string()));
    }
    if let Some(c) = p.capabilities() {
        config::effective_within_permitted(c, "capabilities").map_err(|e| e.to_string())?;
    }
    // None: no capabilities at all, as runc gives.
    let (kept, ambient) = p
        .capabilities()
        .as_ref()
        .map(|c| config::capabilities(c, no_new_privs || p.no_new_privileges().unwrap_or(false)))
        .unwrap_or_default();
    opts.capabilities = Some(kept);
    opts.ambient_capabilities = Some(ambient);
    opts.rlimits = Some(config::rlimits(&p).map_err(|e| e.to_string())?);
    opts.no_new_privs = Some(p.no_new_privileges().unwrap_or(false));
    if p.apparmor_profile()
        .as_deref()
        .is_some_and(|a| !a.is_empty())
    {
        return Err("apparmorProfile: AppArmor profiles are not supported by airlock".into());
    }
    if p.selinux_label().as_deref().is_some_and(|l| !l.is_empty()) {
        return Err("selinuxLabel: SELinux labels are not supported by airlock".into());
    }
    // The whole process, as runc takes it: without a scheduler of its
    // own it keeps the runtime's, not the container's.
    let scheduling = crate::config::scheduling::scheduling(&p, "").map_err(|e| e.to_string())?;
    opts.scheduling = Some(scheduling);
    if let Some(a) = affinity {
        exec_cpu_affinity(&a, opts)?;
    }
    if let Some(v) = p.oom_score_adj() {
        // The runner and the process it starts inherit ours.
        oom_score_adj(v).map_err(|e| e.replace("process.", ""))?;
    }
    Ok(p.oom_score_adj().is_some())
}

/// `execCPUAffinity`: `initial` for this process (and the runner it
/// starts) until the runner has joined the container's cgroups, then the
/// process's own.
fn exec_cpu_affinity(
    a: &crate::config::scheduling::ExecCpuAffinity,
    opts: &mut ExecOptions,
) -> Result<()> {
    opts.cpu_affinity = a.last_or_all();
    let Some(list) = &a.initial else {
        return Ok(());
    };
    let cpus = airlock::spec::scheduling::affinity_cpus(list);
    airlock::set_cpu_affinity(0, &cpus).map_err(|e| format!("execCPUAffinity.initial: {list}: {e}"))
}
