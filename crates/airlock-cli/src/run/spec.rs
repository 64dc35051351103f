//! `airlock run`'s flags turned into the spec they describe, one spec
//! section at a time. Pure apart from reading the files the flags name
//! (`--spec`, `--seccomp-profile`) and the host's `/` for the default
//! view; an `--image` is left to the library's launch path.

use super::mounts::{self, absolute_source, Labels};
use super::RunArgs;
use airlock::seccomp::Seccomp;
use airlock::spec::{self, Mount, Root, SandboxSpec};
use clap::ArgMatches;

/// Turn the flags into the spec they describe: the `--spec` file (or the
/// defaults), with the flags over it.
pub fn build_spec(a: &RunArgs, m: &ArgMatches) -> Result<SandboxSpec, String> {
    build_spec_labeled(a, m).map(|(s, _)| s)
}

/// [`build_spec`], with what the user typed for each mount the flags made,
/// so that errors can name the flag instead of a spec index.
pub fn build_spec_labeled(a: &RunArgs, m: &ArgMatches) -> Result<(SandboxSpec, Labels), String> {
    if let Some(e) = a.bwrap.refused.error() {
        return Err(e);
    }
    let mut s = match &a.spec {
        Some(path) => crate::spec_file::read(path)?,
        None => {
            let mut s = SandboxSpec::default();
            s.process.inherit_env = true;
            s
        }
    };
    let mut labels = filesystem(&mut s, a, m)?;
    for (flag, fd) in bpf_fds(a, m) {
        let field = format!("seccomp_filters[{}]", s.seccomp_filters.len());
        let bytes = read_program(fd).map_err(|e| format!("{flag} {fd}: {e}"))?;
        if bytes.is_empty() || bytes.len() % 8 != 0 || bytes.len() > 4096 * 8 {
            return Err(format!(
                "{flag} {fd}: a compiled BPF program is 1 to 4096 instructions of 8 bytes, not {} bytes",
                bytes.len()
            ));
        }
        labels.entries.push((field, format!("{flag} {fd}")));
        s.seccomp_filters
            .push(airlock::seccomp::Program::from_bytes(bytes).to_hex());
    }
    if !a.bwrap.lock_file.is_empty() {
        let field = "filesystem.lock_files".to_string();
        labels.entries.push((field, "--lock-file".into()));
    }
    for path in &a.bwrap.lock_file {
        let field = format!("filesystem.lock_files[{}]", s.filesystem.lock_files.len());
        labels.entries.push((field, format!("--lock-file {path}")));
        s.filesystem.lock_files.push(path.clone());
    }
    process(&mut s, a, m);
    // By the field with its colon, as an error names it: the bare words
    // are in other messages ("the timeout expired").
    for (given, field, flag) in [
        (a.hostname.is_some(), "hostname:", "--hostname:"),
        (a.timeout.is_some(), "timeout:", "--timeout:"),
    ] {
        if given {
            labels.entries.push((field.into(), flag.into()));
        }
    }
    for kv in a.setenv.chunks(2) {
        let shown = if kv[0].is_empty() { "''" } else { &kv[0] };
        labels.entries.push((
            format!("process.env.{}", kv[0]),
            format!("--setenv {shown}"),
        ));
    }
    namespaces(&mut s, a, m)?;
    // Validation lets the default name pass without a UTS namespace (a
    // spec cannot tell it from one given) and refuses any other; the
    // default typed is asked for too, and the host's namespace would not
    // show it. bubblewrap refuses --hostname without --unshare-uts.
    let default_name = SandboxSpec::default().hostname;
    if a.hostname.as_ref() == Some(&default_name) && !s.namespaces.uts {
        return Err(format!(
            "--hostname: {default_name:?} needs a UTS namespace of the sandbox's own, not the host's or a joined one (--share-uts, --join uts)"
        ));
    }
    resources(&mut s, a);
    // Each --rlimit by its flag, the parts of its entry too (the last
    // given of a resource is the one in the spec).
    for (i, r) in s.process.rlimits.iter().enumerate() {
        if !a.rlimit.iter().any(|x| x.resource == r.resource) {
            continue;
        }
        let label = format!("--rlimit {}", rlimit_text(r));
        let field = format!("process.rlimits[{i}]");
        for part in ["", ".resource", ".soft", ".hard"] {
            labels
                .entries
                .push((format!("{field}{part}"), label.clone()));
        }
    }
    if a.chdir.is_some() {
        labels
            .entries
            .push(("process.cwd".into(), "--chdir".into()));
    }
    if a.spec.is_none() {
        labels
            .entries
            .push(("process.args".into(), "the command (after --)".into()));
    }
    // Errors about a limit (or another field a flag sets) name the flag
    // that set it, or (without a spec file, where every such field is a
    // flag's) the flag that would.
    let flags_only = a.spec.is_none();
    let joins = |kind: &str| a.join.iter().any(|(k, _)| k == kind);
    for (given, field, flag) in [
        (a.memory.is_some(), "resources.memory", "--memory"),
        (a.swap.is_some(), "resources.swap", "--swap"),
        (
            a.memory_reservation.is_some(),
            "resources.memory_reservation",
            "--memory-reservation",
        ),
        (a.pids.is_some(), "resources.pids", "--pids"),
        (a.cpus.is_some(), "resources.cpus", "--cpus"),
        (
            a.cpu_weight.is_some(),
            "resources.cpu_weight",
            "--cpu-weight",
        ),
        (a.io_weight.is_some(), "resources.io_weight", "--io-weight"),
        (
            a.cpuset_cpus.is_some(),
            "resources.cpuset_cpus",
            "--cpuset-cpus",
        ),
        (
            a.cpuset_mems.is_some(),
            "resources.cpuset_mems",
            "--cpuset-mems",
        ),
        (
            a.disable_userns,
            "namespaces.nested_user",
            "--disable-userns",
        ),
        (
            a.assert_userns_disabled,
            "namespaces.assert_userns_disabled",
            "--assert-userns-disabled",
        ),
        (a.seccomp_log, "seccomp_log", "--seccomp-log"),
        (
            a.overlay_size.is_some(),
            "filesystem.root.size",
            "--overlay-size",
        ),
        (!a.tcp_bind.is_empty(), "landlock.tcp_bind", "--tcp-bind"),
        (
            !a.tcp_connect.is_empty(),
            "landlock.tcp_connect",
            "--tcp-connect",
        ),
        (a.nice.is_some(), "process.scheduling.nice", "--nice"),
        (a.sched.is_some(), "process.scheduling.policy", "--sched"),
        (a.sched.is_some(), "process.scheduling.priority", "--sched"),
        (
            a.io_priority.is_some(),
            "process.scheduling.io_class",
            "--io-priority",
        ),
        (
            a.io_priority.is_some(),
            "process.scheduling.io_level",
            "--io-priority",
        ),
        (
            a.cpu_affinity.is_some(),
            "process.scheduling.cpu_affinity",
            "--cpu-affinity",
        ),
        (joins("net"), "namespaces.join.net", "--join net"),
        (joins("ipc"), "namespaces.join.ipc", "--join ipc"),
        (joins("uts"), "namespaces.join.uts", "--join uts"),
        (joins("pid"), "namespaces.join.pid", "--join pid"),
    ] {
        if given || flags_only {
            labels.fields.push((field, flag));
        }
    }
    // Only when given: an image's User sets the ids too, and a kind
    // joined by path is not shared by a flag.
    for (given, field, flag) in [
        (a.rootfs.is_some(), "filesystem.root.path", "--rootfs"),
        (
            a.overlay_dir.is_some(),
            "filesystem.root.upper",
            "--overlay-dir",
        ),
        (a.uid.is_some(), "process.uid", "--uid"),
        (a.gid.is_some(), "process.gid", "--gid"),
        (a.share_net, "namespaces.net", "--share-net"),
        (a.share_pid, "namespaces.pid", "--share-pid"),
        (a.share_ipc, "namespaces.ipc", "--share-ipc"),
        (a.share_uts, "namespaces.uts", "--share-uts"),
        (a.share_cgroup, "namespaces.cgroup", "--share-cgroup"),
        (a.share_time, "namespaces.time", "--share-time"),
        (a.share_user, "namespaces.user", "--share-user"),
    ] {
        if given {
            labels.fields.push((field, flag));
        }
    }
    walls(&mut s, a, m)?;
    for code in &a.allow_unsafe {
        if !s.allow_unsafe.contains(code) {
            let field = format!("allow_unsafe[{}]", s.allow_unsafe.len());
            labels
                .entries
                .push((field, format!("--allow-unsafe {code}")));
            s.allow_unsafe.push(code.clone());
        }
    }
    Ok((s, labels))
}

/// An rlimit as --rlimit takes it: RESOURCE=SOFT[:HARD].
fn rlimit_text(r: &airlock::spec::Rlimit) -> String {
    let n = |v: u64| match v {
        u64::MAX => "unlimited".to_string(),
        v => v.to_string(),
    };
    match r.soft == r.hard {
        true => format!("{}={}", r.resource, n(r.soft)),
        false => format!("{}={}:{}", r.resource, n(r.soft), n(r.hard)),
    }
}

/// The root (`--rootfs`, a bind onto `/`, the default view, or an image's
/// writable layer) and the mount flags, in the order given.
fn filesystem(s: &mut SandboxSpec, a: &RunArgs, m: &ArgMatches) -> Result<Labels, String> {
    let mut labels = Labels::default();
    if a.overlay && a.rootfs.is_none() {
        return Err("--overlay: a writable layer over --rootfs, which is not given".into());
    }
    // A size for a layer that is not there would go unapplied.
    if a.overlay_size.is_some() && a.overlay_dir.is_some() {
        return Err(
            "--overlay-size: sizes the tmpfs that holds the writes; with --overlay-dir they go to that directory"
                .into(),
        );
    }
    if a.overlay_size.is_some() && !a.overlay && a.image.is_none() {
        return Err(
            "--overlay-size: sizes the writable layer of --overlay or --image; neither is given"
                .into(),
        );
    }
    let flags = mounts::ordered(m);
    let remounts_root = flags
        .iter()
        .any(|(id, v)| *id == "remount_ro" && mounts::is_root(&v[0]));
    if remounts_root && a.image.is_some() {
        return Err(
            "--remount-ro /: an image's root is a writable layer over its layers, which cannot be made read-only"
                .into(),
        );
    }
    let bind_root = mounts::root_bind(&flags)?;
    // Both given is refused just below.
    let root_from_bind = bind_root.is_some();
    if let Some(dir) = &a.rootfs {
        if let Some((_, flag)) = &bind_root {
            return Err(format!("{flag}: the root is given twice (--rootfs {dir})"));
        }
        labels.root = Some(format!("--rootfs {dir}"));
        let overlay = a.overlay || a.overlay_dir.is_some();
        if overlay && a.rootfs_readonly {
            let flag = if a.overlay {
                "--overlay"
            } else {
                "--overlay-dir"
            };
            return Err(format!(
                "--rootfs-readonly: {flag} puts a writable layer over the --rootfs, which would not be read-only (without {flag}, the --rootfs itself is)"
            ));
        }
        s.filesystem.root = if overlay {
            Root::Overlay {
                lower: vec![absolute_source(dir)],
                upper: a.overlay_dir.as_deref().map(absolute_source),
                size: a.overlay_size.map(spec::Size),
            }
        } else {
            Root::Path {
                path: absolute_source(dir),
                readonly: a.rootfs_readonly,
                // An image-like tree, as runc treats a bundle's rootfs.
                make_mountpoints: a.rootfs_readonly,
            }
        };
    } else if let Some((root, flag)) = bind_root {
        if a.image.is_some() {
            return Err(format!("{flag}: the root is given twice (--image)"));
        }
        labels.root = Some(flag);
        s.filesystem.root = root;
    } else if a.image.is_some() {
        // The image's layers go under the root's tmpfs, which this sizes.
        if let (Root::Tmpfs { size, .. }, Some(limit)) = (&mut s.filesystem.root, a.overlay_size) {
            *size = Some(spec::Size(limit));
        }
    }
    let first = s.filesystem.mounts.len();
    labels.file_mounts = first;
    mounts::apply(s, &flags, &mut labels, root_from_bind)?;
    // The flags that put a mount at a path (`--dir /dev` or
    // `--remount-ro /tmp` keep what is there).
    let mounted: Vec<&str> = s.filesystem.mounts[first..]
        .iter()
        .filter(|g| g.mounts())
        .map(|g| g.destination().trim_end_matches('/'))
        .collect();
    let defaults: Vec<Mount> = if a.spec.is_some() || a.no_default_view || root_from_bind {
        Vec::new()
    } else if a.rootfs.is_some() {
        // As an image gets: a root directory is a system's files, not a
        // running system's; what a program expects to find there is fresh.
        spec::fresh_view()
            .into_iter()
            .filter(|d| !mounted.contains(&d.destination()))
            .collect()
    } else if a.image.is_some() || mounted.contains(&"/usr") {
        // A command line that mounts its own /usr builds its own view, as
        // a bubblewrap one does: it starts empty, as bubblewrap does.
        Vec::new()
    } else {
        spec::default_view()
    };
    // Before the flags' mounts, which may go inside them.
    for (i, _) in labels.mounts.iter_mut() {
        if *i >= first {
            *i += defaults.len();
        }
    }
    for (i, ..) in labels.lowers.iter_mut() {
        if *i >= first {
            *i += defaults.len();
        }
    }
    for (i, ..) in labels.parts.iter_mut() {
        if *i >= first {
            *i += defaults.len();
        }
    }
    // Named for what they are: the user wrote no index for them.
    for (j, d) in defaults.iter().enumerate() {
        let label = format!("the default view's {} {}", d.kind(), d.destination());
        labels.mounts.push((first + j, label));
    }
    s.filesystem.mounts.splice(first..first, defaults);
    if let Some(owner) = &a.bind_owner {
        s.filesystem.bind_owner = match owner.as_str() {
            "as-is" => spec::BindOwner::AsIs,
            _ => spec::BindOwner::Caller,
        };
    }
    Ok(labels)
}

/// A compiled program from `fd`, read from where it stands to its end (a
/// pipe: until its writers close it), as bubblewrap reads it; at most one
/// byte past the largest program, so an endless source is refused, not
/// read into memory. The fd is closed: the workload never gets it.
fn read_program(fd: i32) -> Result<Vec<u8>, String> {
    super::bwrap::read_handed_fd(fd, 4096 * 8 + 1, false)
}

/// bubblewrap's `--seccomp FD` and `--add-seccomp-fd FD`, in the order
/// given (filters install in it).
fn bpf_fds(a: &RunArgs, m: &ArgMatches) -> Vec<(&'static str, i32)> {
    let mut given: Vec<(usize, &'static str, i32)> = Vec::new();
    for (id, flag, fds) in [
        ("seccomp_fd", "--seccomp", &a.bwrap.seccomp_fd),
        (
            "add_seccomp_fd",
            "--add-seccomp-fd",
            &a.bwrap.add_seccomp_fd,
        ),
    ] {
        let at = m.indices_of(id).into_iter().flatten();
        given.extend(at.zip(fds.iter()).map(|(i, fd)| (i, flag, *fd)));
    }
    given.sort_by_key(|(i, ..)| *i);
    given.into_iter().map(|(_, flag, fd)| (flag, fd)).collect()
}

/// The program, its environment, directory, ids, session and terminal.
/// With an image, PROGRAM ARGS replace its Cmd and these flags override
/// its defaults (the library applies it over this spec).
fn process(s: &mut SandboxSpec, a: &RunArgs, m: &ArgMatches) {
    let p = &mut s.process;
    if !a.command.is_empty() {
        p.args = a.command.clone();
    }
    if let Some(argv0) = &a.bwrap.argv0 {
        p.argv0 = Some(argv0.clone());
    }
    // In the order given, as bubblewrap applies them: a --setenv before
    // --clearenv is cleared, one after an --unsetenv of its name is set.
    enum Env<'a> {
        Clear,
        Set(&'a str, &'a str),
        Unset(&'a str),
    }
    let mut steps: Vec<(usize, Env)> = Vec::new();
    if let Some(i) = last_index(m, "clearenv") {
        steps.push((i, Env::Clear));
    }
    // Two values each: the index of the first.
    for (kv, i) in a
        .setenv
        .chunks(2)
        .zip(indices(m, "setenv").into_iter().step_by(2))
    {
        steps.push((i, Env::Set(&kv[0], &kv[1])));
    }
    for (k, i) in a.unsetenv.iter().zip(indices(m, "unsetenv")) {
        steps.push((i, Env::Unset(k)));
    }
    steps.sort_by_key(|(i, _)| *i);
    for (_, step) in steps {
        match step {
            Env::Clear => {
                p.inherit_env = false;
                // bubblewrap sets PWD after clearing, as it always does.
                p.set_pwd = true;
                p.env.clear();
            }
            Env::Set(k, v) => {
                p.env.insert(k.to_string(), v.to_string());
                p.unset_env.retain(|u| u != k);
            }
            Env::Unset(k) => {
                p.env.remove(k);
                if !p.unset_env.iter().any(|u| u == k) {
                    p.unset_env.push(k.to_string());
                }
            }
        }
    }
    if let Some(d) = &a.chdir {
        p.cwd = Some(d.clone());
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
    // The last word between --keep-session and --new-session.
    match (last_index(m, "keep_session"), last_index(m, "new_session")) {
        (Some(k), n) if n.is_none_or(|n| n < k) => s.new_session = false,
        (_, Some(_)) => s.new_session = true,
        _ => {}
    }
    let sched = &mut s.process.scheduling;
    if a.nice.is_some() {
        sched.nice = a.nice;
    }
    if let Some((policy, prio)) = a.sched {
        sched.policy = Some(policy);
        sched.priority = prio;
    }
    if let Some((class, level)) = a.io_priority {
        sched.io_class = Some(class);
        sched.io_level = level;
    }
    if a.cpu_affinity.is_some() {
        sched.cpu_affinity.clone_from(&a.cpu_affinity);
    }
}

/// Where each value of the argument `id` stood on the command line (a
/// flag's default has an index too, which is not counted).
fn indices(m: &ArgMatches, id: &str) -> Vec<usize> {
    if m.value_source(id) != Some(clap::parser::ValueSource::CommandLine) {
        return Vec::new();
    }
    m.indices_of(id).into_iter().flatten().collect()
}

/// Where the last occurrence of the argument `id` stood, if given.
fn last_index(m: &ArgMatches, id: &str) -> Option<usize> {
    indices(m, id).into_iter().max()
}

/// The `--share-*` flags: a shared namespace is not a new one. `--join`:
/// nor is a joined one (the spec's rules judge the kind and the path).
/// An `--unshare-*` flag (or `--unshare-all`) after a `--share-*` one, or
/// beside a spec file that shares the kind, makes it the sandbox's own
/// again: the last word counts, as in bubblewrap.
fn namespaces(s: &mut SandboxSpec, a: &RunArgs, m: &ArgMatches) -> Result<(), String> {
    let mut kinds = std::collections::BTreeSet::new();
    for (kind, path) in &a.join {
        if !kinds.insert(kind) {
            return Err(format!(
                "--join {kind}={path}: the {kind} namespace is joined twice"
            ));
        }
        s.namespaces.join.insert(kind.clone(), path.clone());
    }
    if a.disable_userns {
        s.namespaces.nested_user = false;
    }
    if a.assert_userns_disabled {
        s.namespaces.assert_userns_disabled = true;
    }
    // The spec file's joins and ours. A kind joined by --join is not the
    // sandbox's own; a spec file that joins a kind it also makes is left
    // as written, for the spec's check to refuse (as `airlock check`
    // does), not quietly mended.
    let joined: Vec<String> = s.namespaces.join.keys().cloned().collect();
    let joins = |kind: &str| joined.iter().any(|k| k == kind);
    let flag_joins = |kind: &str| a.join.iter().any(|(k, _)| k == kind);
    let all = last_index(m, "unshare_all");
    let ns = &mut s.namespaces;
    for (own, kind, unshare) in [
        (&mut ns.net, "net", Some("unshare_net")),
        (&mut ns.pid, "pid", Some("unshare_pid")),
        (&mut ns.ipc, "ipc", Some("unshare_ipc")),
        (&mut ns.uts, "uts", Some("unshare_uts")),
        (&mut ns.cgroup, "cgroup", Some("unshare_cgroup")),
        (&mut ns.time, "time", None),
        (&mut ns.user, "user", Some("unshare_user")),
    ] {
        let shared = last_index(m, &format!("share_{kind}"));
        let named = unshare.and_then(|u| last_index(m, u));
        if joins(kind) {
            let given = match (shared, named) {
                (Some(_), _) => "--share",
                (_, Some(_)) => "--unshare",
                _ => {
                    if flag_joins(kind) {
                        *own = false;
                    }
                    continue;
                }
            };
            return Err(format!(
                "{given}-{kind}: the {kind} namespace is joined by path (--join or the spec file's namespaces.join)"
            ));
        }
        let unshared = named.max(all.filter(|_| unshare.is_some()));
        match (shared, unshared) {
            (Some(sh), u) if u.is_none_or(|u| u < sh) => *own = false,
            (_, Some(_)) => *own = true,
            _ => {}
        }
    }
    Ok(())
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
    if let Some(m) = a.memory_reservation {
        r.memory_reservation = Some(spec::Size(m));
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
    if a.cpuset_cpus.is_some() {
        r.cpuset_cpus.clone_from(&a.cpuset_cpus);
    }
    if a.cpuset_mems.is_some() {
        r.cpuset_mems.clone_from(&a.cpuset_mems);
    }
    if a.timeout.is_some() {
        s.timeout = a.timeout;
    }
    // Each replaces the spec file's (or an earlier flag's) limit of its
    // resource, as other flags override the file.
    for r in &a.rlimit {
        match s
            .process
            .rlimits
            .iter()
            .position(|x| x.resource == r.resource)
        {
            Some(i) => s.process.rlimits[i] = r.clone(),
            None => s.process.rlimits.push(r.clone()),
        }
    }
}

/// What the workload runs behind: Landlock, the syscall filter, the
/// capabilities it keeps.
fn walls(s: &mut SandboxSpec, a: &RunArgs, m: &ArgMatches) -> Result<(), String> {
    if let Some(m) = &a.landlock {
        s.landlock.mode = match m.as_str() {
            "required" => spec::LandlockMode::Required,
            "off" => spec::LandlockMode::Off,
            _ => spec::LandlockMode::Auto,
        };
    }
    // The flags' list replaces a spec file's, as other flags override
    // it: each restricts, and adding to the file's would widen it.
    if !a.tcp_bind.is_empty() {
        s.landlock.tcp_bind = Some(a.tcp_bind.clone());
    }
    if !a.tcp_connect.is_empty() {
        s.landlock.tcp_connect = Some(a.tcp_connect.clone());
    }
    if let Some(p) = &a.seccomp_profile {
        s.seccomp = seccomp_profile(p)?;
    }
    if a.seccomp_log {
        s.seccomp_log = true;
    }
    // In the order given, as bubblewrap applies them (`--cap-drop ALL
    // --cap-add CAP` keeps CAP). bwrap's --cap-drop: airlock keeps no
    // capability unless asked, so it only takes back what --cap-add (or
    // the spec) kept.
    let indexed = |id: &str, values: &'_ [String]| -> Vec<(usize, bool, String)> {
        let add = id == "cap_add";
        values
            .iter()
            .zip(indices(m, id))
            .map(|(c, i)| (i, add, c.clone()))
            .collect()
    };
    let mut steps = indexed("cap_add", &a.cap_add);
    steps.extend(indexed("cap_drop", &a.bwrap.cap_drop));
    steps.sort_by_key(|(i, _, _)| *i);
    for (_, add, c) in steps {
        match (add, c.eq_ignore_ascii_case("ALL")) {
            (true, true) => return Err(
                "--cap-add ALL: name each capability to keep (each is judged by the guardrails)"
                    .into(),
            ),
            (false, true) => s.capabilities.clear(),
            (true, false) => {
                // Canonical spelling in the spec, an unknown name by its flag.
                let name = spec::parse_capability(&c)
                    .map(|cap| cap.to_string())
                    .map_err(|e| format!("--cap-add {c}: {e}"))?;
                if !s.capabilities.contains(&name) {
                    s.capabilities.push(name);
                }
            }
            (false, false) => {
                let name =
                    spec::parse_capability(&c).map_err(|e| format!("--cap-drop {c}: {e}"))?;
                s.capabilities
                    .retain(|kept| spec::parse_capability(kept) != Ok(name));
            }
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
            // Named by the field, as the same profile inside a spec is.
            let mut de = serde_json::Deserializer::from_str(&text);
            let oci = serde_path_to_error::deserialize(&mut de).map_err(|e| {
                let at = e.path().to_string();
                match at.as_str() {
                    "" | "." => format!("--seccomp-profile {file}: {}", e.inner()),
                    _ => format!("--seccomp-profile {file}: field `{at}`: {}", e.inner()),
                }
            })?;
            Seccomp::custom(oci)
        }
    })
}
