//! `airlock run`'s flags, and the parsers of their values.

use airlock::spec;
use clap::Args;

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
    after_help = "Examples:\n  airlock run -- sh -c 'id; hostname; ls /'\n  airlock run --bind ./out /out -- make -C /src\n  airlock run --print-spec -- true > spec.json && airlock run --spec spec.json\n  airlock run -d -t --name box -- bash && airlock attach box"
)]
pub struct RunArgs {
    /// Run a spec file (JSON or TOML); flags given with it override it.
    #[arg(long, value_name = "FILE", help_heading = "Spec")]
    pub(crate) spec: Option<String>,
    /// Print the full resolved spec as JSON and exit without running.
    #[arg(long, help_heading = "Spec", overrides_with = "print_spec")]
    pub(crate) print_spec: bool,
    /// Print a trace of the setup steps on stderr.
    #[arg(short, long, help_heading = "Spec", overrides_with = "verbose")]
    pub(crate) verbose: bool,

    /// Run in the background: print the sandbox's id and return at once;
    /// its output goes to `airlock logs`. With -i or -t, `airlock attach`
    /// writes to its input.
    #[arg(short, long, help_heading = "Lifecycle", overrides_with = "detach")]
    pub detach: bool,
    /// Keep the program's stdin open: with -d, a pipe that `airlock
    /// attach` writes to (else /dev/null). Without -d the program has
    /// your stdin anyway.
    #[arg(
        short,
        long,
        help_heading = "Lifecycle",
        overrides_with = "interactive"
    )]
    pub interactive: bool,
    /// Name the sandbox (it then has state: `airlock ps`, `exec`, `stop` find it).
    #[arg(long, value_name = "NAME", help_heading = "Lifecycle")]
    pub name: Option<String>,
    /// Remove the sandbox's state when it ends (with -d, its exit status
    /// is kept five minutes for a `wait` or `attach` under way).
    #[arg(long, help_heading = "Lifecycle", overrides_with = "rm")]
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
    pub(crate) image: Option<String>,
    /// The layer store (default /var/lib/airlock as root,
    /// $XDG_DATA_HOME/airlock or ~/.local/share/airlock otherwise; or
    /// $AIRLOCK_STORE).
    #[arg(long, value_name = "DIR", help_heading = "Filesystem")]
    pub(crate) store: Option<String>,
    /// Use DIR as the sandbox's root instead of a fresh tmpfs; it gets a
    /// fresh /proc, /dev and /tmp, as an image does (not with
    /// --no-default-view).
    #[arg(long, value_name = "DIR", help_heading = "Filesystem")]
    pub(crate) rootfs: Option<String>,
    /// Make the --rootfs read-only, once the mount points it lacks are
    /// made in it (as runc does; a --ro-bind DIR / gets none made).
    #[arg(
        long,
        requires = "rootfs",
        help_heading = "Filesystem",
        overrides_with = "rootfs_readonly"
    )]
    pub(crate) rootfs_readonly: bool,
    /// Put a writable layer over the --rootfs on a tmpfs that vanishes with the sandbox.
    // Without clap's `requires` (checked in `spec::filesystem`):
    // bubblewrap's `--overlay RWSRC WORKDIR DEST` parses as this flag and
    // a program until `bwrap::overlay_after_layers` renames it.
    #[arg(long, help_heading = "Filesystem", overrides_with = "overlay")]
    pub(crate) overlay: bool,
    /// Put a persistent writable layer over the --rootfs, kept in DIR.
    #[arg(
        long,
        value_name = "DIR",
        requires = "rootfs",
        conflicts_with = "overlay",
        help_heading = "Filesystem"
    )]
    pub(crate) overlay_dir: Option<String>,
    /// Size limit of the writable tmpfs layer over --rootfs (with --overlay) or --image.
    #[arg(long, value_name = "SIZE", value_parser = size_arg, help_heading = "Filesystem")]
    pub(crate) overlay_size: Option<u64>,
    /// Start from an empty root: no default view of the host (nor the
    /// fresh /proc, /dev and /tmp of a --rootfs). A command line that
    /// mounts its own /usr starts empty anyway, as bubblewrap's do.
    #[arg(long, help_heading = "Filesystem", overrides_with = "no_default_view")]
    pub(crate) no_default_view: bool,
    /// Bind SRC to DST, writable.
    #[arg(long, num_args = 2, value_names = ["SRC", "DST"], action = clap::ArgAction::Append, help_heading = "Filesystem")]
    pub(crate) bind: Vec<String>,
    /// Bind SRC to DST, read-only.
    #[arg(long, num_args = 2, value_names = ["SRC", "DST"], action = clap::ArgAction::Append, help_heading = "Filesystem")]
    pub(crate) ro_bind: Vec<String>,
    /// Bind SRC to DST, writable, with device nodes usable.
    #[arg(long, num_args = 2, value_names = ["SRC", "DST"], action = clap::ArgAction::Append, help_heading = "Filesystem")]
    pub(crate) dev_bind: Vec<String>,
    /// Whose files a root caller's writable binds show and write: `caller`
    /// (yours, shown as the sandbox's root through an idmapped mount; the
    /// default) or `as-is` (the host's ids, which the sandbox's
    /// unprivileged root usually may not write).
    #[arg(long, value_name = "OWNER", value_parser = ["caller", "as-is"], help_heading = "Filesystem")]
    pub(crate) bind_owner: Option<String>,
    /// Mount a fresh tmpfs on DST.
    #[arg(long, value_name = "DST", action = clap::ArgAction::Append, help_heading = "Filesystem")]
    pub(crate) tmpfs: Vec<String>,
    /// Mount a fresh procfs on DST.
    #[arg(long, value_name = "DST", action = clap::ArgAction::Append, help_heading = "Filesystem")]
    pub(crate) proc: Vec<String>,
    /// Mount a minimal /dev on DST.
    #[arg(long, value_name = "DST", action = clap::ArgAction::Append, help_heading = "Filesystem")]
    pub(crate) dev: Vec<String>,
    /// Mount a POSIX message queue filesystem on DST.
    #[arg(long, value_name = "DST", action = clap::ArgAction::Append, help_heading = "Filesystem")]
    pub(crate) mqueue: Vec<String>,
    /// Create the directory DST.
    #[arg(long, value_name = "DST", action = clap::ArgAction::Append, help_heading = "Filesystem")]
    pub(crate) dir: Vec<String>,
    /// Create the symlink DST pointing to TARGET.
    #[arg(long, num_args = 2, value_names = ["TARGET", "DST"], action = clap::ArgAction::Append, help_heading = "Filesystem")]
    pub(crate) symlink: Vec<String>,

    /// Set an environment variable (VALUE is taken as it is, `-1` or `--x` too).
    #[arg(long, num_args = 2, value_names = ["KEY", "VALUE"], allow_hyphen_values = true, action = clap::ArgAction::Append, help_heading = "Process")]
    pub(crate) setenv: Vec<String>,
    /// Remove an environment variable.
    #[arg(long, value_name = "KEY", action = clap::ArgAction::Append, help_heading = "Process")]
    pub(crate) unsetenv: Vec<String>,
    /// Start from an empty environment instead of the caller's (but PWD, the
    /// working directory, as bubblewrap keeps it).
    #[arg(long, help_heading = "Process", overrides_with = "clearenv")]
    pub(crate) clearenv: bool,
    /// Working directory inside the sandbox (default /).
    #[arg(long, value_name = "DIR", help_heading = "Process")]
    pub(crate) chdir: Option<String>,
    /// User id inside the sandbox (default: 0 for a root caller, your own
    /// uid otherwise).
    #[arg(long, value_name = "N", help_heading = "Process")]
    pub(crate) uid: Option<u32>,
    /// Group id inside the sandbox (default: as --uid, your own gid; with
    /// --image and --uid, that account's group in the image, 0 without
    /// one).
    #[arg(long, value_name = "N", help_heading = "Process")]
    pub(crate) gid: Option<u32>,
    /// Run the program as PID 1 instead of airlock's init.
    #[arg(
        long,
        visible_alias = "as-pid-1",
        help_heading = "Process",
        overrides_with = "as_pid1"
    )]
    pub(crate) as_pid1: bool,
    /// Keep the caller's session (and terminal); allows TIOCSTI injection.
    #[arg(long, help_heading = "Process", overrides_with = "keep_session")]
    pub(crate) keep_session: bool,
    /// Give the program a new pseudo-terminal (job control, window size),
    /// proxied to yours; it never holds your terminal itself. With -d, its
    /// output goes to `airlock logs` and `airlock attach` connects to it.
    #[arg(short = 't', long, help_heading = "Process", overrides_with = "tty")]
    pub(crate) tty: bool,
    /// Syscall filter: `default` (the default), `none`, or an OCI seccomp
    /// JSON file.
    #[arg(long, value_name = "default|none|FILE", help_heading = "Process")]
    pub(crate) seccomp_profile: Option<String>,
    /// Have the kernel log every syscall the filter refuses (audit type
    /// 1326 in `dmesg`, naming the syscall's number): what a profile lacks.
    #[arg(long, help_heading = "Process", overrides_with = "seccomp_log")]
    pub(crate) seccomp_log: bool,
    /// Landlock: `auto` (the default: where the kernel has it),
    /// `required`, or `off`.
    #[arg(long, value_name = "MODE", value_parser = ["auto", "required", "off"], help_heading = "Process")]
    pub(crate) landlock: Option<String>,
    /// Allow binding this TCP port (repeatable); any use restricts binding to the listed ports (replacing a spec file's list).
    #[arg(long, value_name = "PORT", action = clap::ArgAction::Append, help_heading = "Process")]
    pub(crate) tcp_bind: Vec<u16>,
    /// Allow connecting to this TCP port (repeatable); any use restricts connecting to the listed ports (replacing a spec file's list).
    #[arg(long, value_name = "PORT", action = clap::ArgAction::Append, help_heading = "Process")]
    pub(crate) tcp_connect: Vec<u16>,
    /// Keep this capability (repeatable), e.g. CAP_NET_BIND_SERVICE.
    #[arg(long, value_name = "CAP", action = clap::ArgAction::Append, help_heading = "Process")]
    pub(crate) cap_add: Vec<String>,
    /// Nice value, -20 (first) to 19 (last), as nice(1) sets it. Below 0
    /// takes a root caller and --allow-unsafe raised-priority.
    #[arg(
        long,
        value_name = "N",
        allow_negative_numbers = true,
        help_heading = "Process"
    )]
    pub(crate) nice: Option<i32>,
    /// Scheduling policy, as chrt(1) names it: other, batch, idle, or the
    /// real-time fifo:PRIO and rr:PRIO (1..99; a root caller and
    /// --allow-unsafe raised-priority).
    #[arg(long, value_name = "POLICY[:PRIO]", value_parser = sched_arg, help_heading = "Process")]
    pub(crate) sched: Option<(spec::SchedPolicy, Option<u32>)>,
    /// I/O priority, as ionice(1) names it: idle, best-effort[:LEVEL] or
    /// realtime[:LEVEL] (0 first .. 7; realtime takes a root caller and
    /// --allow-unsafe raised-priority).
    #[arg(long, value_name = "CLASS[:LEVEL]", value_parser = io_priority_arg, help_heading = "Process")]
    pub(crate) io_priority: Option<(spec::IoClass, Option<u32>)>,
    /// The CPUs the workload's threads may run on, e.g. 0-1,3, as
    /// `taskset -c` sets it (within --cpuset-cpus, which confines them).
    #[arg(long, value_name = "LIST", help_heading = "Process")]
    pub(crate) cpu_affinity: Option<String>,

    /// Memory limit, e.g. 256M (swap is 0 unless --swap is given).
    #[arg(long, value_name = "SIZE", value_parser = size_arg, help_heading = "Resources")]
    pub(crate) memory: Option<u64>,
    /// Swap allowed on top of --memory.
    #[arg(long, value_name = "SIZE", value_parser = size_arg, help_heading = "Resources")]
    pub(crate) swap: Option<u64>,
    /// Memory kept for the workload when the host runs short (cgroup v2
    /// memory.low, v1's soft limit), at most --memory.
    #[arg(long, value_name = "SIZE", value_parser = size_arg, help_heading = "Resources")]
    pub(crate) memory_reservation: Option<u64>,
    /// Maximum number of processes and threads (a cgroup's pids.max).
    /// Without it: 2048, as RLIMIT_NPROC in the sandbox's own user
    /// namespace.
    #[arg(long, value_name = "N", help_heading = "Resources")]
    pub(crate) pids: Option<u64>,
    /// CPU quota as a number of CPUs, e.g. 0.5.
    #[arg(long, value_name = "N", help_heading = "Resources")]
    pub(crate) cpus: Option<f64>,
    /// Relative CPU weight, 1..10000 (default share 100).
    #[arg(long, value_name = "W", help_heading = "Resources")]
    pub(crate) cpu_weight: Option<u32>,
    /// Relative I/O weight, 1..10000 (where the io/blkio controller has one).
    #[arg(long, value_name = "W", help_heading = "Resources")]
    pub(crate) io_weight: Option<u32>,
    /// The CPUs the workload may run on, e.g. 0-3,6 (cgroup cpuset.cpus).
    #[arg(long, value_name = "LIST", help_heading = "Resources")]
    pub(crate) cpuset_cpus: Option<String>,
    /// The memory nodes it may allocate from, e.g. 0 (cpuset.mems).
    #[arg(long, value_name = "LIST", help_heading = "Resources")]
    pub(crate) cpuset_mems: Option<String>,
    /// Make the sandbox's cgroups under this cgroup, a path from each
    /// hierarchy's root such as /airlock.slice, instead of under the
    /// caller's own: on cgroup v2 a cgroup that holds processes (a login
    /// session's scope) cannot give its children a controller. It must
    /// exist.
    #[arg(long, value_name = "PATH", help_heading = "Resources")]
    pub(crate) cgroup_parent: Option<String>,
    /// Set an rlimit: RESOURCE=SOFT[:HARD], e.g. nofile=1024 or
    /// nproc=64:128; without HARD, the hard limit is SOFT too.
    #[arg(long, value_name = "RES=SOFT[:HARD]", value_parser = rlimit_arg, action = clap::ArgAction::Append, help_heading = "Resources")]
    pub(crate) rlimit: Vec<spec::Rlimit>,
    /// Kill the whole sandbox after this long: 30, 30s, 500ms, 5m, 1h (a
    /// bare number is seconds).
    #[arg(long, value_name = "DURATION", value_parser = duration_arg, help_heading = "Resources")]
    pub(crate) timeout: Option<f64>,
    /// Write the exit report (how it ended, peak memory, CPU time) as JSON
    /// when the sandbox ends (its directory must exist; not with -d).
    #[arg(long, value_name = "FILE", help_heading = "Resources")]
    pub(crate) report: Option<String>,

    /// Hostname inside the sandbox (default airlock).
    #[arg(long, value_name = "NAME", help_heading = "Namespaces")]
    pub(crate) hostname: Option<String>,
    /// Share the host's network namespace.
    #[arg(long, help_heading = "Namespaces", overrides_with = "share_net")]
    pub(crate) share_net: bool,
    /// Share the host's PID namespace.
    #[arg(long, help_heading = "Namespaces", overrides_with = "share_pid")]
    pub(crate) share_pid: bool,
    /// Share the host's IPC namespace.
    #[arg(long, help_heading = "Namespaces", overrides_with = "share_ipc")]
    pub(crate) share_ipc: bool,
    /// Share the host's UTS namespace (hostname).
    #[arg(long, help_heading = "Namespaces", overrides_with = "share_uts")]
    pub(crate) share_uts: bool,
    /// Share the host's cgroup namespace.
    #[arg(long, help_heading = "Namespaces", overrides_with = "share_cgroup")]
    pub(crate) share_cgroup: bool,
    /// Share the host's time namespace (clocks).
    #[arg(long, help_heading = "Namespaces", overrides_with = "share_time")]
    pub(crate) share_time: bool,
    /// Share the host's user namespace (root only: the program runs with host ids).
    #[arg(long, help_heading = "Namespaces", overrides_with = "share_user")]
    pub(crate) share_user: bool,
    /// Forbid user namespaces below the sandbox's, whatever the seccomp
    /// profile allows (user.max_user_namespaces = 0 inside it).
    #[arg(long, help_heading = "Namespaces", overrides_with = "disable_userns")]
    pub(crate) disable_userns: bool,
    /// Check, just before the program's exec, that it cannot make a user
    /// namespace (by unshare, clone or clone3), and do not run it if it
    /// can.
    #[arg(
        long,
        help_heading = "Namespaces",
        overrides_with = "assert_userns_disabled"
    )]
    pub(crate) assert_userns_disabled: bool,
    /// Join an existing namespace by path instead of making one, as a
    /// platform that prepares networking hands it over: net, ipc, uts or
    /// pid (`--join net=/run/netns/web`, `--join pid=/proc/PID/ns/pid`).
    #[arg(long, value_name = "KIND=PATH", value_parser = join_arg, action = clap::ArgAction::Append, help_heading = "Namespaces")]
    pub(crate) join: Vec<(String, String)>,

    /// Acknowledge a guardrail finding by its code (see `airlock check --list`).
    #[arg(long, value_name = "CODE", action = clap::ArgAction::Append, help_heading = "Guardrails")]
    pub(crate) allow_unsafe: Vec<String>,

    /// Silence warnings (findings that do not refuse, image notes).
    #[arg(short, long, help_heading = "Guardrails", overrides_with = "quiet")]
    pub quiet: bool,

    #[command(flatten)]
    pub bwrap: super::bwrap::BwrapArgs,

    /// The program and its arguments. An option-like word before it is an
    /// airlock option (a typo is an error, not the program); after `--`
    /// or after the program, words are the program's.
    #[arg(value_name = "PROGRAM", trailing_var_arg = true)]
    pub(crate) command: Vec<String>,
}

fn join_arg(s: &str) -> Result<(String, String), String> {
    let (kind, path) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?}: expected KIND=PATH (net, ipc, uts or pid)"))?;
    if airlock::namespace::Namespace::joinable(kind).is_none() {
        return Err(format!(
            "{kind:?}: only the net, ipc, uts and pid namespaces can be joined by path"
        ));
    }
    Ok((kind.to_string(), path.to_string()))
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

fn sched_arg(s: &str) -> Result<(spec::SchedPolicy, Option<u32>), String> {
    named_with_number(
        s,
        spec::SchedPolicy::parse,
        "a policy (other, batch, idle, fifo, rr)",
        "a priority (1 to 99)",
    )
}

fn io_priority_arg(s: &str) -> Result<(spec::IoClass, Option<u32>), String> {
    named_with_number(
        s,
        spec::IoClass::parse,
        "a class (idle, best-effort, realtime)",
        "a level (0 to 7)",
    )
}

/// `NAME[:N]`, as chrt and ionice take a policy or class and its number.
fn named_with_number<T>(
    s: &str,
    parse: fn(&str) -> Option<T>,
    name_is: &str,
    number_is: &str,
) -> Result<(T, Option<u32>), String> {
    let (name, number) = match s.split_once(':') {
        Some((n, x)) => (n, Some(x)),
        None => (s, None),
    };
    let named = parse(name).ok_or_else(|| format!("{name:?}: not {name_is}"))?;
    let number = number
        .map(|x| x.parse().map_err(|_| format!("{x:?} is not {number_is}")))
        .transpose()?;
    Ok((named, number))
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
