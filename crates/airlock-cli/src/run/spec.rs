//! `airlock run`'s flags turned into the spec they describe, one spec
//! section at a time. Pure apart from reading the files the flags name
//! (`--spec`, `--seccomp-profile`) and the host's `/` for the default
//! view; an `--image` is left to the library's launch path.

use super::RunArgs;
use airlock::seccomp::Seccomp;
use airlock::spec::{self, FileMode, Mount, Root, SandboxSpec};
use clap::ArgMatches;

/// Turn the flags into the spec they describe: the `--spec` file (or the
/// defaults), with the flags over it.
pub fn build_spec(a: &RunArgs, m: &ArgMatches) -> Result<SandboxSpec, String> {
    let mut s = match &a.spec {
        Some(path) => crate::spec_file::read(path)?,
        None => {
            let mut s = SandboxSpec::default();
            s.process.inherit_env = true;
            s
        }
    };
    filesystem(&mut s, a, m);
    process(&mut s, a);
    namespaces(&mut s, a);
    resources(&mut s, a);
    walls(&mut s, a)?;
    for code in &a.allow_unsafe {
        if !s.allow_unsafe.contains(code) {
            s.allow_unsafe.push(code.clone());
        }
    }
    Ok(s)
}

/// The root (`--rootfs`, the default view, or an image's writable layer)
/// and the mount flags, in the order given.
fn filesystem(s: &mut SandboxSpec, a: &RunArgs, m: &ArgMatches) {
    if let Some(dir) = &a.rootfs {
        s.filesystem.root = if a.overlay || a.overlay_dir.is_some() {
            Root::Overlay {
                lower: vec![absolute_source(dir)],
                upper: a.overlay_dir.as_deref().map(absolute_source),
                size: a.overlay_size.map(spec::Size),
            }
        } else {
            Root::Path {
                path: absolute_source(dir),
                readonly: a.rootfs_readonly,
            }
        };
    } else if a.image.is_some() {
        // The image's layers go under the root's tmpfs, which this sizes.
        if let (Root::Tmpfs { size, .. }, Some(limit)) = (&mut s.filesystem.root, a.overlay_size) {
            *size = Some(spec::Size(limit));
        }
    } else if a.spec.is_none() && !a.no_default_view {
        s.filesystem.mounts.extend(spec::default_view());
    }
    for (_, kind, values) in ordered_mounts(m) {
        s.filesystem.mounts.push(to_mount(kind, &values));
    }
}

/// Mount flags with the position they were given at, so they apply in order.
fn ordered_mounts(m: &ArgMatches) -> Vec<(usize, &'static str, Vec<String>)> {
    let mut out = Vec::new();
    for id in [
        "bind", "ro_bind", "dev_bind", "tmpfs", "proc", "dev", "mqueue", "dir", "symlink",
    ] {
        let (Some(occ), Some(idx)) = (m.get_occurrences::<String>(id), m.indices_of(id)) else {
            continue;
        };
        let idx: Vec<usize> = idx.collect();
        let mut i = 0;
        for values in occ {
            let values: Vec<String> = values.cloned().collect();
            out.push((idx[i], id, values.clone()));
            i += values.len();
        }
    }
    out.sort_by_key(|(i, _, _)| *i);
    out
}

/// Make a host path absolute against the current directory (as bwrap
/// does); the guardrails later judge the canonical path.
fn absolute_source(src: &str) -> String {
    if src.starts_with('/') {
        return src.to_string();
    }
    match std::env::current_dir() {
        Ok(cwd) => cwd.join(src).to_string_lossy().into_owned(),
        Err(_) => src.to_string(),
    }
}

fn to_mount(kind: &str, v: &[String]) -> Mount {
    let bind = |readonly, devices| Mount::Bind {
        source: absolute_source(&v[0]),
        destination: v[1].clone(),
        readonly,
        devices,
    };
    match kind {
        "bind" => bind(false, false),
        "ro_bind" => bind(true, false),
        "dev_bind" => bind(false, true),
        "tmpfs" => Mount::Tmpfs {
            destination: v[0].clone(),
            size: None,
            mode: Some(FileMode(0o755)),
        },
        "proc" => Mount::Proc {
            destination: v[0].clone(),
        },
        "dev" => Mount::Dev {
            destination: v[0].clone(),
        },
        "mqueue" => Mount::Mqueue {
            destination: v[0].clone(),
        },
        "dir" => Mount::Dir {
            destination: v[0].clone(),
            mode: None,
        },
        "symlink" => Mount::Symlink {
            target: v[0].clone(),
            destination: v[1].clone(),
        },
        _ => unreachable!("ordered_mounts only yields mount flags"),
    }
}

/// The program, its environment, directory, ids, session and terminal.
/// With an image, PROGRAM ARGS replace its Cmd and these flags override
/// its defaults (the library applies it over this spec).
fn process(s: &mut SandboxSpec, a: &RunArgs) {
    let p = &mut s.process;
    if !a.command.is_empty() {
        p.args = a.command.clone();
    }
    if a.clearenv {
        p.inherit_env = false;
        p.env.clear();
    }
    for kv in a.setenv.chunks(2) {
        p.env.insert(kv[0].clone(), kv[1].clone());
    }
    for k in &a.unsetenv {
        p.env.remove(k);
        if !p.unset_env.contains(k) {
            p.unset_env.push(k.clone());
        }
    }
    if let Some(d) = &a.chdir {
        p.cwd = d.clone();
    }
    if a.uid.is_some() {
        p.uid = a.uid;
    }
    if a.gid.is_some() {
        p.gid = a.gid;
    }
    if a.tty {
        p.terminal = true;
    }
    if let Some(h) = &a.hostname {
        s.hostname = h.clone();
    }
    if a.as_pid1 {
        s.init = spec::InitMode::Workload;
    }
    if a.keep_session {
        s.new_session = false;
    }
}

/// The `--share-*` flags: a shared namespace is not a new one.
fn namespaces(s: &mut SandboxSpec, a: &RunArgs) {
    let ns = &mut s.namespaces;
    for (share, flag) in [
        (&mut ns.net, a.share_net),
        (&mut ns.pid, a.share_pid),
        (&mut ns.ipc, a.share_ipc),
        (&mut ns.uts, a.share_uts),
        (&mut ns.cgroup, a.share_cgroup),
        (&mut ns.time, a.share_time),
        (&mut ns.user, a.share_user),
    ] {
        if flag {
            *share = false;
        }
    }
}

/// cgroup limits, the timeout and rlimits.
fn resources(s: &mut SandboxSpec, a: &RunArgs) {
    let r = &mut s.resources;
    if let Some(m) = a.memory {
        r.memory = Some(spec::Size(m));
    }
    if let Some(m) = a.swap {
        r.swap = Some(spec::Size(m));
    }
    if a.pids.is_some() {
        r.pids = a.pids;
    }
    if a.cpus.is_some() {
        r.cpus = a.cpus;
    }
    if a.cpu_weight.is_some() {
        r.cpu_weight = a.cpu_weight;
    }
    if a.io_weight.is_some() {
        r.io_weight = a.io_weight;
    }
    if a.timeout.is_some() {
        s.timeout = a.timeout;
    }
    s.process.rlimits.extend(a.rlimit.iter().cloned());
}

/// What the workload runs behind: Landlock, the syscall filter, the
/// capabilities it keeps.
fn walls(s: &mut SandboxSpec, a: &RunArgs) -> Result<(), String> {
    if let Some(m) = &a.landlock {
        s.landlock.mode = match m.as_str() {
            "required" => spec::LandlockMode::Required,
            "off" => spec::LandlockMode::Off,
            _ => spec::LandlockMode::Auto,
        };
    }
    if !a.tcp_bind.is_empty() {
        s.landlock
            .tcp_bind
            .get_or_insert_with(Vec::new)
            .extend(&a.tcp_bind);
    }
    if !a.tcp_connect.is_empty() {
        s.landlock
            .tcp_connect
            .get_or_insert_with(Vec::new)
            .extend(&a.tcp_connect);
    }
    if let Some(p) = &a.seccomp_profile {
        s.seccomp = seccomp_profile(p)?;
    }
    for c in &a.cap_add {
        // Canonical spelling in the spec; unknown names are reported by
        // validation with the field they are in.
        let name = spec::parse_capability(c)
            .map(|cap| cap.to_string())
            .unwrap_or_else(|_| c.clone());
        if !s.capabilities.contains(&name) {
            s.capabilities.push(name);
        }
    }
    Ok(())
}

/// `--seccomp-profile default|none|FILE` (an OCI seccomp JSON file).
fn seccomp_profile(p: &str) -> Result<Seccomp, String> {
    Ok(match p {
        "default" => Seccomp::Default,
        "none" => Seccomp::None,
        file => {
            let text = std::fs::read_to_string(file)
                .map_err(|e| format!("--seccomp-profile {file}: {e}"))?;
            let oci = serde_json::from_str(&text)
                .map_err(|e| format!("--seccomp-profile {file}: {e}"))?;
            Seccomp::custom(oci)
        }
    })
}
