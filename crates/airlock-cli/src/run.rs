//! `airlock run`: bubblewrap-style flags turned into a spec, then the
//! library's spawn. Mount flags apply in the order given, as in bwrap.

use airlock::spec::{self, FileMode, Mount, Root, SandboxSpec};
use airlock::{Context, Error, LifecycleOptions, Sandbox, SpawnOptions};
use clap::{ArgMatches, Args};
use std::process::ExitCode;

/// Exit status when airlock itself refuses or fails.
pub const EXIT_REFUSED: u8 = 125;

/// Run a program in a sandbox.
///
/// With no --rootfs, the sandbox sees the host's system directories
/// (/usr, /bin, /sbin, /lib*, /etc) read-only, a fresh /proc, a minimal /dev
/// and a private /tmp, and nothing else of the host: no /home, /root, /var,
/// /run, and not the current directory. Mount flags add to that view, in
/// the order given.
///
/// Exit status: the program's own; 128+N when it dies of signal N; 125 when
/// airlock refuses or fails; 126 when the program cannot be executed; 127
/// when it is not found.
#[derive(Args)]
#[command(
    after_help = "Examples:\n  airlock run -- sh -c 'id; hostname; ls /'\n  airlock run --bind ./out /out -- make -C /src\n  airlock run --print-spec -- true > spec.json && airlock run --spec spec.json"
)]
pub struct RunArgs {
    /// Run a spec file (JSON or TOML); flags given with it override it.
    #[arg(long, value_name = "FILE", help_heading = "Spec")]
    spec: Option<String>,
    /// Print the full resolved spec as JSON and exit without running.
    #[arg(long, help_heading = "Spec")]
    print_spec: bool,
    /// Print a trace of the setup steps on stderr.
    #[arg(short, long, help_heading = "Spec")]
    verbose: bool,

    /// Run in the background: print the sandbox's id and return at once;
    /// its output goes to `airlock logs`.
    #[arg(short, long, help_heading = "Lifecycle")]
    pub detach: bool,
    /// Name the sandbox (it then has state: `airlock ps`, `exec`, `stop` find it).
    #[arg(long, value_name = "NAME", help_heading = "Lifecycle")]
    pub name: Option<String>,
    /// Remove the sandbox's state when it ends.
    #[arg(long, help_heading = "Lifecycle")]
    pub rm: bool,

    /// Run an image: an OCI image layout dir, a docker-archive or OCI
    /// archive (`podman save`); `PATH:TAG` or `PATH@sha256:...` picks one.
    /// Its Entrypoint/Cmd, Env, WorkingDir and User are the defaults;
    /// PROGRAM ARGS replace Cmd.
    #[arg(
        long,
        value_name = "PATH[:TAG|@DIGEST]",
        conflicts_with = "rootfs",
        help_heading = "Filesystem"
    )]
    image: Option<String>,
    /// The layer store (default /var/lib/airlock as root, ~/.local/share/airlock otherwise).
    #[arg(long, value_name = "DIR", help_heading = "Filesystem")]
    store: Option<String>,
    /// Use DIR as the sandbox's root instead of a fresh tmpfs.
    #[arg(long, value_name = "DIR", help_heading = "Filesystem")]
    rootfs: Option<String>,
    /// Make the --rootfs read-only.
    #[arg(long, requires = "rootfs", help_heading = "Filesystem")]
    rootfs_readonly: bool,
    /// Put a writable layer over the --rootfs on a tmpfs that vanishes with the sandbox.
    #[arg(long, requires = "rootfs", help_heading = "Filesystem")]
    overlay: bool,
    /// Put a persistent writable layer over the --rootfs, kept in DIR.
    #[arg(
        long,
        value_name = "DIR",
        requires = "rootfs",
        conflicts_with = "overlay",
        help_heading = "Filesystem"
    )]
    overlay_dir: Option<String>,
    /// Size limit of the writable tmpfs layer over --rootfs (with --overlay) or --image.
    #[arg(long, value_name = "SIZE", value_parser = size_arg, help_heading = "Filesystem")]
    overlay_size: Option<u64>,
    /// Start from an empty root: no default view of the host.
    #[arg(long, help_heading = "Filesystem")]
    no_default_view: bool,
    /// Bind SRC to DST, writable.
    #[arg(long, num_args = 2, value_names = ["SRC", "DST"], action = clap::ArgAction::Append, help_heading = "Filesystem")]
    bind: Vec<String>,
    /// Bind SRC to DST, read-only.
    #[arg(long, num_args = 2, value_names = ["SRC", "DST"], action = clap::ArgAction::Append, help_heading = "Filesystem")]
    ro_bind: Vec<String>,
    /// Bind SRC to DST, writable, with device nodes usable.
    #[arg(long, num_args = 2, value_names = ["SRC", "DST"], action = clap::ArgAction::Append, help_heading = "Filesystem")]
    dev_bind: Vec<String>,
    /// Mount a fresh tmpfs on DST.
    #[arg(long, value_name = "DST", action = clap::ArgAction::Append, help_heading = "Filesystem")]
    tmpfs: Vec<String>,
    /// Mount a fresh procfs on DST.
    #[arg(long, value_name = "DST", action = clap::ArgAction::Append, help_heading = "Filesystem")]
    proc: Vec<String>,
    /// Mount a minimal /dev on DST.
    #[arg(long, value_name = "DST", action = clap::ArgAction::Append, help_heading = "Filesystem")]
    dev: Vec<String>,
    /// Mount a POSIX message queue filesystem on DST.
    #[arg(long, value_name = "DST", action = clap::ArgAction::Append, help_heading = "Filesystem")]
    mqueue: Vec<String>,
    /// Create the directory DST.
    #[arg(long, value_name = "DST", action = clap::ArgAction::Append, help_heading = "Filesystem")]
    dir: Vec<String>,
    /// Create the symlink DST pointing to TARGET.
    #[arg(long, num_args = 2, value_names = ["TARGET", "DST"], action = clap::ArgAction::Append, help_heading = "Filesystem")]
    symlink: Vec<String>,

    /// Set an environment variable.
    #[arg(long, num_args = 2, value_names = ["KEY", "VALUE"], action = clap::ArgAction::Append, help_heading = "Process")]
    setenv: Vec<String>,
    /// Remove an environment variable.
    #[arg(long, value_name = "KEY", action = clap::ArgAction::Append, help_heading = "Process")]
    unsetenv: Vec<String>,
    /// Start from an empty environment instead of the caller's.
    #[arg(long, help_heading = "Process")]
    clearenv: bool,
    /// Working directory inside the sandbox (default /).
    #[arg(long, value_name = "DIR", help_heading = "Process")]
    chdir: Option<String>,
    /// User id inside the sandbox.
    #[arg(long, value_name = "N", help_heading = "Process")]
    uid: Option<u32>,
    /// Group id inside the sandbox.
    #[arg(long, value_name = "N", help_heading = "Process")]
    gid: Option<u32>,
    /// Run the program as PID 1 instead of airlock's init.
    #[arg(long, help_heading = "Process")]
    as_pid1: bool,
    /// Keep the caller's session (and terminal); allows TIOCSTI injection.
    #[arg(long, help_heading = "Process")]
    keep_session: bool,
    /// Give the program a new pseudo-terminal (job control, window size),
    /// proxied to yours; it never holds your terminal itself.
    #[arg(short = 't', long, help_heading = "Process")]
    tty: bool,
    /// Syscall filter: `default`, `none`, or an OCI seccomp JSON file.
    #[arg(long, value_name = "default|none|FILE", help_heading = "Process")]
    seccomp_profile: Option<String>,
    /// Landlock: `auto` (where the kernel has it), `required`, or `off`.
    #[arg(long, value_name = "MODE", value_parser = ["auto", "required", "off"], help_heading = "Process")]
    landlock: Option<String>,
    /// Allow binding this TCP port (repeatable); any use restricts binding to the listed ports.
    #[arg(long, value_name = "PORT", action = clap::ArgAction::Append, help_heading = "Process")]
    tcp_bind: Vec<u16>,
    /// Allow connecting to this TCP port (repeatable); any use restricts connecting to the listed ports.
    #[arg(long, value_name = "PORT", action = clap::ArgAction::Append, help_heading = "Process")]
    tcp_connect: Vec<u16>,
    /// Keep this capability (repeatable), e.g. CAP_NET_BIND_SERVICE.
    #[arg(long, value_name = "CAP", action = clap::ArgAction::Append, help_heading = "Process")]
    cap_add: Vec<String>,

    /// Memory limit, e.g. 256M (swap is 0 unless --swap is given).
    #[arg(long, value_name = "SIZE", value_parser = size_arg, help_heading = "Resources")]
    memory: Option<u64>,
    /// Swap allowed on top of --memory.
    #[arg(long, value_name = "SIZE", value_parser = size_arg, help_heading = "Resources")]
    swap: Option<u64>,
    /// Maximum number of processes and threads.
    #[arg(long, value_name = "N", help_heading = "Resources")]
    pids: Option<u64>,
    /// CPU quota as a number of CPUs, e.g. 0.5.
    #[arg(long, value_name = "N", help_heading = "Resources")]
    cpus: Option<f64>,
    /// Relative CPU weight, 1..10000 (default share 100).
    #[arg(long, value_name = "W", help_heading = "Resources")]
    cpu_weight: Option<u32>,
    /// Relative I/O weight, 1..10000 (where the io/blkio controller has one).
    #[arg(long, value_name = "W", help_heading = "Resources")]
    io_weight: Option<u32>,
    /// Set an rlimit: RESOURCE=SOFT[:HARD], e.g. nofile=1024 or nproc=64:64.
    #[arg(long, value_name = "RES=SOFT[:HARD]", value_parser = rlimit_arg, action = clap::ArgAction::Append, help_heading = "Resources")]
    rlimit: Vec<spec::Rlimit>,
    /// Kill the whole sandbox after this long: 30, 30s, 500ms, 5m, 1h.
    #[arg(long, value_name = "DURATION", value_parser = duration_arg, help_heading = "Resources")]
    timeout: Option<f64>,
    /// Write the exit report (how it ended, peak memory, CPU time) as JSON.
    #[arg(long, value_name = "FILE", help_heading = "Resources")]
    report: Option<String>,

    /// Hostname inside the sandbox.
    #[arg(long, value_name = "NAME", help_heading = "Namespaces")]
    hostname: Option<String>,
    /// Share the host's network namespace.
    #[arg(long, help_heading = "Namespaces")]
    share_net: bool,
    /// Share the host's PID namespace.
    #[arg(long, help_heading = "Namespaces")]
    share_pid: bool,
    /// Share the host's IPC namespace.
    #[arg(long, help_heading = "Namespaces")]
    share_ipc: bool,
    /// Share the host's UTS namespace (hostname).
    #[arg(long, help_heading = "Namespaces")]
    share_uts: bool,
    /// Share the host's cgroup namespace.
    #[arg(long, help_heading = "Namespaces")]
    share_cgroup: bool,
    /// Share the host's time namespace (clocks).
    #[arg(long, help_heading = "Namespaces")]
    share_time: bool,
    /// Share the host's user namespace (root only: the program runs with host ids).
    #[arg(long, help_heading = "Namespaces")]
    share_user: bool,

    /// Acknowledge a guardrail finding by its code (see `airlock check --list`).
    #[arg(long, value_name = "CODE", action = clap::ArgAction::Append, help_heading = "Guardrails")]
    allow_unsafe: Vec<String>,

    /// The program and its arguments.
    #[arg(
        value_name = "PROGRAM",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    command: Vec<String>,
}

fn rlimit_arg(s: &str) -> Result<spec::Rlimit, String> {
    let (res, vals) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?}: expected RESOURCE=SOFT[:HARD]"))?;
    let num = |v: &str| -> Result<u64, String> {
        if v == "unlimited" || v == "infinity" {
            Ok(u64::MAX)
        } else {
            v.parse().map_err(|_| format!("{v:?} is not a number"))
        }
    };
    let (soft, hard) = match vals.split_once(':') {
        Some((a, b)) => (num(a)?, num(b)?),
        None => (num(vals)?, num(vals)?),
    };
    Ok(spec::Rlimit {
        resource: res.to_string(),
        soft,
        hard,
    })
}

/// A root caller's image layers are owned by the host ids the sandbox's
/// ids map to, so that a file of the image's root is the sandbox root's.
fn image_id_base(s: &SandboxSpec) -> Option<u32> {
    if !rustix_is_root() || !s.namespaces.user {
        return None;
    }
    match s.identity.uid_map.iter().find(|m| m.inside == 0) {
        Some(m) => Some(m.outside),
        None if s.identity.uid_map.is_empty() => Some(airlock::plan::ROOT_CALLER_BASE),
        None => None,
    }
}

fn rustix_is_root() -> bool {
    Context::current().caller.is_root()
}

fn size_arg(s: &str) -> Result<u64, String> {
    spec::parse_size(s).map(|x| x.0)
}

/// Seconds from `30`, `30s`, `500ms`, `5m`, `1h`.
pub fn duration_arg(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let (num, mult) = if let Some(n) = t.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = t.strip_suffix('h') {
        (n, 3600.0)
    } else {
        (t, 1.0)
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a duration (30, 30s, 500ms, 5m, 1h)"))?;
    if !(v.is_finite() && v > 0.0) {
        return Err(format!("{s:?} is not a positive duration"));
    }
    Ok(v * mult)
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

fn read_spec_file(path: &str) -> Result<SandboxSpec, String> {
    let text = if path == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
            .map_err(|e| format!("reading the spec from stdin: {e}"))?;
        s
    } else {
        std::fs::read_to_string(path).map_err(|e| format!("reading the spec {path}: {e}"))?
    };
    spec::from_str_auto(&text).map_err(|e| format!("{path}: {e}"))
}

/// Turn the flags into the spec they describe.
pub fn build_spec(a: &RunArgs, m: &ArgMatches) -> Result<SandboxSpec, String> {
    let mut s = match &a.spec {
        Some(path) => read_spec_file(path)?,
        None => {
            let mut s = SandboxSpec::default();
            s.process.inherit_env = true;
            s
        }
    };
    if let Some(reference) = &a.image {
        let store = airlock::image::Store::open(
            a.store
                .clone()
                .map(Into::into)
                .unwrap_or_else(airlock::image::Store::default_root),
        )
        .map_err(|e| format!("image store: {e}"))?;
        let prepared = airlock::image::pull(reference, &store, image_id_base(&s))
            .map_err(|e| format!("image {reference}: {e}"))?;
        for note in &prepared.notes {
            eprintln!("airlock: image: {note}");
        }
        if let Some(size) = a.overlay_size {
            s.filesystem.root = Root::Overlay {
                lower: Vec::new(),
                upper: None,
                size: Some(spec::Size(size)),
            };
        }
        airlock::image::apply(&mut s, &prepared, &a.command)
            .map_err(|e| format!("image {reference}: {e}"))?;
    }
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
    } else if a.spec.is_none() && a.image.is_none() && !a.no_default_view {
        s.filesystem.mounts.extend(spec::default_view());
    }
    for (_, kind, values) in ordered_mounts(m) {
        s.filesystem.mounts.push(to_mount(kind, &values));
    }
    if !a.command.is_empty() && a.image.is_none() {
        s.process.args = a.command.clone();
    }
    if a.clearenv {
        s.process.inherit_env = false;
        s.process.env.clear();
    }
    for kv in a.setenv.chunks(2) {
        s.process.env.insert(kv[0].clone(), kv[1].clone());
    }
    for k in &a.unsetenv {
        s.process.env.remove(k);
        if !s.process.unset_env.contains(k) {
            s.process.unset_env.push(k.clone());
        }
    }
    if let Some(d) = &a.chdir {
        s.process.cwd = d.clone();
    }
    if a.uid.is_some() {
        s.process.uid = a.uid;
    }
    if a.gid.is_some() {
        s.process.gid = a.gid;
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
    if a.tty {
        s.process.terminal = true;
    }
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
        s.seccomp = match p.as_str() {
            "default" => airlock::seccomp::Seccomp::Default,
            "none" => airlock::seccomp::Seccomp::None,
            file => {
                let text = std::fs::read_to_string(file)
                    .map_err(|e| format!("--seccomp-profile {file}: {e}"))?;
                let oci = serde_json::from_str(&text)
                    .map_err(|e| format!("--seccomp-profile {file}: {e}"))?;
                airlock::seccomp::Seccomp::Custom { oci }
            }
        };
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
    for code in &a.allow_unsafe {
        if !s.allow_unsafe.contains(code) {
            s.allow_unsafe.push(code.clone());
        }
    }
    Ok(s)
}

pub fn refuse(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("airlock: error: {msg}");
    ExitCode::from(EXIT_REFUSED)
}

/// One line for an error of the library, with the exit status it gives.
pub fn fail(e: Error) -> ExitCode {
    eprintln!("airlock: error: {e}");
    ExitCode::from(e.exit_code())
}

/// `airlock run` (and `airlock create`, which holds the workload until
/// `airlock start`).
pub fn main(a: RunArgs, m: &ArgMatches, ctx: Context, hold: bool) -> ExitCode {
    let spec = match build_spec(&a, m) {
        Ok(s) => s,
        Err(e) => return refuse(e),
    };
    if a.print_spec {
        println!("{}", spec.to_json_pretty());
        return ExitCode::SUCCESS;
    }
    // The one launch path: validate, guardrails, plan, each once; the
    // findings are printed here, then the plan is started as it is.
    let prepared = match airlock::launch::prepare(&spec, &ctx) {
        Ok(p) => p,
        Err(Error::Refused(findings)) => {
            eprint!("{}", airlock::check::render(&findings));
            let codes: Vec<&str> = findings
                .iter()
                .filter(|f| f.refuses())
                .map(|f| f.code)
                .collect();
            return refuse(format!(
                "refused by the guardrails ({}); nothing was started",
                codes.join(", ")
            ));
        }
        Err(e) => return fail(e),
    };
    eprint!("{}", airlock::check::render(&prepared.findings));
    let detach = a.detach || hold;
    let lifecycle = (detach || a.name.is_some() || a.rm).then(|| LifecycleOptions {
        name: a.name.clone(),
        detach,
        hold,
        remove_on_exit: a.rm,
        log_limit: None,
    });
    let opts = SpawnOptions {
        runner: None,
        verbose: a.verbose,
        progress: Some(|step| eprintln!("airlock: {step}")),
        context: None,
        lifecycle,
    };
    // Signals that arrive while the sandbox starts wait, then are forwarded.
    Sandbox::hold_signals();
    let sandbox = match Sandbox::start_prepared(prepared.plan, &ctx, &opts) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    if detach {
        if let Some(sb) = sandbox.state() {
            println!("{}", sb.id);
        }
        return ExitCode::SUCCESS;
    }
    sandbox.forward_signals(spec.new_session);
    let raw = spec
        .process
        .terminal
        .then(airlock::terminal::RawMode::enter);
    let r = sandbox.wait();
    drop(raw);
    let r = match r {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    match r.ended {
        airlock::Ended::TimedOut => eprintln!(
            "airlock: the sandbox reached its {}s timeout and was killed",
            spec.timeout.unwrap_or_default()
        ),
        airlock::Ended::OomKilled => {
            eprintln!("airlock: the workload was killed for exceeding its memory limit")
        }
        _ => {}
    }
    if r.pids_limit_hit {
        eprintln!("airlock: the sandbox hit its pids limit (a fork failed)");
    }
    if let Some(path) = &a.report {
        let text = serde_json::to_string_pretty(&r).expect("reports serialize");
        if let Err(e) = std::fs::write(path, text + "\n") {
            eprintln!("airlock: error: --report {path}: {e}");
            return ExitCode::from(EXIT_REFUSED);
        }
    }
    ExitCode::from(r.code.clamp(0, 255) as u8)
}
