//! The OCI verbs over airlock's state root. A container is a sandbox with
//! state whose name is the container id; its supervisor outlives the
//! runtime call that made it (`create` holds the workload before exec,
//! `start` releases it) and the workload keeps the stdio the client gave
//! the runtime. `oci.json` beside the sandbox's state records the bundle
//! and annotations for `state`.

use crate::config::{self, Bundle};
use crate::hooks::{self, Hooks};
use crate::log::Log;
use airlock::state::control::Request;
use airlock::state::{SandboxDir, State, StateRoot, Status};
use airlock::{Context, LifecycleOptions, Sandbox, SpawnOptions};
use liboci_cli::{CommonCmd, GlobalOpts, StandardCmd};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub(crate) type Result<T> = std::result::Result<T, String>;

/// What every verb needs: where containers live, and the call's flags.
pub struct Ctx {
    root: PathBuf,
    pub(crate) allow_unsafe: Vec<String>,
    log: Log,
    /// `--systemd-cgroup`: `linux.cgroupsPath` is `slice:prefix:name`.
    systemd_cgroup: bool,
}

impl Ctx {
    pub fn new(g: &GlobalOpts, allow_unsafe: Vec<String>, log: Log) -> Ctx {
        // Absolute: the guardrails keep binds off the state root, and a
        // container's processes work elsewhere.
        let root = g.root.clone().unwrap_or_else(default_root);
        let root = std::path::absolute(&root).unwrap_or(root);
        Ctx {
            root,
            allow_unsafe,
            log,
            systemd_cgroup: g.systemd_cgroup,
        }
    }

    pub(crate) fn state_root(&self) -> Result<StateRoot> {
        // Clients name a root below directories that may not exist yet
        // (containerd: /run/containerd/runc/NAMESPACE); runc makes them.
        if let Some(parent) = self.root.parent() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o711)
                .create(parent)
                .map_err(|e| format!("--root {}: {e}", self.root.display()))?;
        }
        StateRoot::open(&self.root).map_err(|e| {
            // The library's advice names the airlock CLI's flag.
            e.to_string()
                .replace("--state-root or AIRLOCK_STATE_ROOT", "--root")
        })
    }

    /// The state root if it is there: a verb that only looks (list,
    /// state, ps, exec, ...) leaves no root behind where none was, as
    /// `--root /run/typo` did.
    pub(crate) fn existing_root(&self) -> Result<Option<StateRoot>> {
        match std::fs::symlink_metadata(&self.root) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            _ => self.state_root().map(Some),
        }
    }

    pub(crate) fn find(&self, id: &str) -> Result<(SandboxDir, State)> {
        self.find_if_there(id)?
            .ok_or_else(|| format!("container {id:?} does not exist"))
    }

    /// The container `id`, or None where there is none; an error where
    /// one is there whose state cannot be read (it may well be running).
    pub(crate) fn find_if_there(&self, id: &str) -> Result<Option<(SandboxDir, State)>> {
        let Some(root) = self.existing_root()? else {
            return Ok(None);
        };
        match root.find(id) {
            // The runtime names containers exactly; a prefix is the
            // CLI's convenience, not the OCI interface's.
            Ok((sb, st)) if st.name == id => return Ok(Some((sb, st))),
            Ok(_) => return Ok(None),
            Err(_) => {}
        }
        match root.indexed(id).map(|sb| sb.state()) {
            Some(Err(e)) => Err(format!("container {id:?}: {e}")),
            _ => Ok(None),
        }
    }
}

/// `/run/airlock-runtime` as root, `$XDG_RUNTIME_DIR/airlock-runtime`
/// otherwise (runc's `/run/runc` convention).
fn default_root() -> PathBuf {
    let ctx = Context::current();
    let base = ctx.state_root;
    base.with_file_name(format!(
        "{}-runtime",
        base.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("airlock")
    ))
}

/// The runtime's own record beside a container's state.
#[derive(Debug, Serialize, Deserialize)]
struct OciRecord {
    bundle: PathBuf,
    /// The container's root filesystem on the host, as `state` gives it.
    #[serde(default)]
    rootfs: PathBuf,
    annotations: BTreeMap<String, String>,
    #[serde(default)]
    hooks: Hooks,
    /// The process's capabilities (kept, ambient) as they are with
    /// no_new_privs, for `exec --no-new-privs` into a container made
    /// without it (see config::capabilities).
    #[serde(default)]
    nnp_capabilities: Option<(Vec<String>, Vec<String>)>,
    /// The bundle's `process.execCPUAffinity`, for execs without a
    /// process file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    exec_cpu_affinity: Option<config::scheduling::ExecCpuAffinity>,
    /// The bundle's `process.oomScoreAdj`, an exec's too as under runc
    /// (whose setns processes take the container's): an exec otherwise
    /// had its caller's, a shim's -998 say, and the kernel killed the
    /// container's workload before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    oom_score_adj: Option<i32>,
    /// The `create` that made it (pid, start time): while that process
    /// lives, a container still being created is its to clean up, the
    /// poststop hooks included; once it is gone (killed at a shim's
    /// deadline), the delete that removes the container runs them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    creator: Option<(i32, u64)>,
}

impl OciRecord {
    /// Does the `create` that made the container still run?
    fn creator_lives(&self) -> bool {
        self.creator
            .is_some_and(|(pid, started)| airlock::start_time(pid) == Some(started))
    }
}

/// [`OciRecord::oom_score_adj`] of the container `sb`.
pub(crate) fn container_oom_score_adj(sb: &SandboxDir) -> Option<i32> {
    record(sb)?.oom_score_adj
}

/// [`OciRecord::exec_cpu_affinity`] of the container `sb`.
pub(crate) fn exec_cpu_affinity(sb: &SandboxDir) -> Option<config::scheduling::ExecCpuAffinity> {
    record(sb)?.exec_cpu_affinity
}

/// [`OciRecord::nnp_capabilities`] of the container `sb`.
pub(crate) fn nnp_capabilities(sb: &SandboxDir) -> Option<(Vec<String>, Vec<String>)> {
    record(sb)?.nnp_capabilities
}

fn record(sb: &SandboxDir) -> Option<OciRecord> {
    std::fs::read(sb.dir.join("oci.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
}

/// A console dimension as the kernel's winsize holds it (u16).
pub(crate) fn clamp16(n: u64) -> u16 {
    n.min(u16::MAX as u64) as u16
}

const NO_PIVOT: &str = "--no-pivot: airlock always pivots into the container's root (a rootfs on ramfs is not supported)";

pub fn standard(ctx: &Ctx, cmd: StandardCmd) -> Result<i32> {
    match cmd {
        StandardCmd::Create(c) => {
            if c.no_pivot {
                return Err(NO_PIVOT.into());
            }
            create(
                ctx,
                &c.container_id,
                &c.bundle,
                Terminal::new(c.console_socket, false),
                c.pid_file.as_deref(),
                preserve_fds(c.preserve_fds)?,
                c.no_new_keyring,
            )?;
            Ok(0)
        }
        StandardCmd::Start(s) => start(ctx, &s.container_id).map(|_| 0),
        StandardCmd::State(s) => {
            airlock::signals::default_pipe_signal();
            let (sb, st) = ctx.find(&s.container_id)?;
            println!(
                "{}",
                serde_json::to_string_pretty(&oci_state(&sb, &st)).expect("serializes")
            );
            Ok(0)
        }
        StandardCmd::Kill(k) => kill(ctx, &k.container_id, &k.signal, k.all).map(|_| 0),
        StandardCmd::Delete(d) => delete(ctx, &d.container_id, d.force).map(|_| 0),
    }
}

pub fn common(ctx: &Ctx, cmd: CommonCmd) -> Result<i32> {
    match cmd {
        CommonCmd::Run(r) => {
            if r.no_pivot {
                return Err(NO_PIVOT.into());
            }
            // A foreground run passes the signals it gets on to the
            // container, as runc's does: a service manager's SIGTERM
            // reaches the workload instead of ending the runtime and
            // leaving the container behind. Held from here (and by the
            // runner's child until it resets them for the workload), so
            // one that comes during the start waits for it.
            if !r.detach {
                airlock::signals::block();
            }
            // A terminal in the foreground without a socket: ours to relay,
            // as runc's `run` relays it.
            let console = create(
                ctx,
                &r.container_id,
                &r.bundle,
                Terminal::new(r.console_socket, !r.detach),
                r.pid_file.as_deref(),
                preserve_fds(r.preserve_fds)?,
                r.no_new_keyring,
            )?;
            let relay = console.map(|c| c.relay(None));
            // A container `run` could not start is not left behind for a
            // caller that knows only of `run`: taken away, poststop hooks
            // and all, as runc's run destroys it.
            if let Err(e) = start(ctx, &r.container_id) {
                if let Err(d) = delete(ctx, &r.container_id, true) {
                    ctx.log.warn(&d);
                }
                return Err(e);
            }
            if r.detach {
                return Ok(0);
            }
            let (sb, _) = ctx.find(&r.container_id)?;
            let to = sb.clone();
            std::thread::spawn(move || loop {
                let signal = airlock::signals::next_forwarded();
                // One that meets the container ending has nobody to reach.
                let _ = to.request(&Request::Signal { signal });
            });
            sb.wait_ended(None);
            if let Some(relay) = relay {
                relay.finish();
            }
            if !sb.dir.exists() {
                // `delete --force` from another caller took it, state and
                // all: there is no exit to report (it said "remove ...: No
                // such file or directory").
                return Err(format!(
                    "container {} was deleted by another caller while it ran",
                    r.container_id
                ));
            }
            let st = sb.state().map_err(|e| e.to_string())?;
            let code = st.exit.as_ref().map_or(255, |e| e.code);
            if !r.keep {
                remove(ctx, &sb, &st)?;
            }
            Ok(code)
        }
        CommonCmd::List(l) => {
            airlock::signals::default_pipe_signal();
            list(ctx, &l.format, l.quiet).map(|_| 0)
        }
        CommonCmd::Ps(p) => {
            airlock::signals::default_pipe_signal();
            // runc runs ps(1) with them and filters its table: refused, not
            // dropped.
            if !p.ps_options.is_empty() {
                return Err(format!(
                    "ps: options for ps(1) ({}) are not supported: only the container's pids are listed",
                    p.ps_options.join(" ")
                ));
            }
            if !matches!(p.format.as_str(), "table" | "json") {
                return Err(format!("ps: --format {:?}: table or json", p.format));
            }
            ps(ctx, &p.container_id, &p.format).map(|_| 0)
        }
        CommonCmd::Pause(p) => freeze(ctx, &p.container_id, true).map(|_| 0),
        CommonCmd::Resume(p) => freeze(ctx, &p.container_id, false).map(|_| 0),
        CommonCmd::Exec(e) => crate::exec::exec(ctx, e),
        CommonCmd::Features(_) => {
            airlock::signals::default_pipe_signal();
            println!(
                "{}",
                serde_json::to_string_pretty(&features()).expect("serializes")
            );
            Ok(0)
        }
        CommonCmd::Spec(s) => {
            spec_template(&s.bundle.unwrap_or_else(|| ".".into()), s.rootless)?;
            Ok(0)
        }
        CommonCmd::Update(u) => crate::cgroups::update(ctx, &u).map(|_| 0),
        CommonCmd::Events(_) => Err("`events` is not supported".into()),
        CommonCmd::Checkpointt(_) => Err("`checkpoint` is not supported".into()),
    }
}

/// Where a container's terminal goes: the client's console socket, or,
/// for a foreground `run` given none, one the runtime relays itself.
struct Terminal {
    socket: Option<PathBuf>,
    relay_without_socket: bool,
}

impl Terminal {
    fn new(socket: Option<PathBuf>, relay_without_socket: bool) -> Terminal {
        Terminal {
            socket,
            relay_without_socket,
        }
    }
}

fn create(
    ctx: &Ctx,
    id: &str,
    bundle_dir: &Path,
    terminal: Terminal,
    pid_file: Option<&Path>,
    preserve_fds: u32,
    keep_keyring: bool,
) -> Result<Option<crate::console::Console>> {
    let bundle = Bundle::load(bundle_dir)?;
    if ctx.systemd_cgroup {
        crate::cgroups::check_systemd_host()?;
    }
    let cgroup_path = crate::cgroups::path(&bundle.config, ctx.systemd_cgroup)?;
    let hooks = Hooks::of(&bundle.config)?;
    // Its parents too, before the library opens it.
    ctx.state_root()?;
    let opts = config::Options {
        allow_unsafe: ctx.allow_unsafe.clone(),
        root_caller: crate::is_root(),
        id: id.to_string(),
    };
    let (mut spec, notes) = config::to_spec(&bundle, &opts).map_err(|e| e.to_string())?;
    spec.process.keep_session_keyring = keep_keyring;
    // runc relays sd_notify from the container to NOTIFY_SOCKET; airlock
    // does not, and a unit waiting for READY=1 would wait for good.
    if std::env::var_os("NOTIFY_SOCKET").is_some() {
        return Err("NOTIFY_SOCKET is set: airlock-runtime does not relay sd_notify from a container (podman: --sdnotify=conmon; or unset it)".into());
    }
    let listen = listen_fds()?;
    if listen > 0 {
        spec.process
            .env
            .insert("LISTEN_FDS".into(), listen.to_string());
        spec.process.env.insert("LISTEN_PID".into(), "1".into());
    }
    let preserve_fds = listen + preserve_fds;
    for n in &notes {
        ctx.log.warn(n);
    }
    let console =
        match spec.process.terminal && terminal.socket.is_none() && terminal.relay_without_socket {
            true => Some(crate::console::Console::new(ctx.state_root()?.path())?),
            false => None,
        };
    let console_socket =
        (terminal.socket).or_else(|| console.as_ref().map(|c| c.path().to_path_buf()));
    if spec.process.terminal && console_socket.is_none() {
        return Err("process.terminal is true but no --console-socket was given (only a foreground `run` relays a terminal itself)".into());
    }
    if !spec.process.terminal && console_socket.is_some() {
        // runc refuses it too: the socket would wait for a terminal that
        // never comes.
        return Err(
            "--console-socket was given but process.terminal is false: there is no terminal to send"
                .into(),
        );
    }
    let mut actx = Context::current();
    actx.state_root.clone_from(&ctx.root);
    // runc imposes no pids limit the bundle does not ask for.
    actx.default_pids = None;
    // Nor keeps setuid programs out of a rootfs or volume (Context says
    // why).
    actx.filter_set_id_on_host_writes = false;
    if crate::is_root() {
        // runc's containers always have cgroups, which `update` changes.
        actx.cgroup_path = cgroup_path;
        actx.cgroup_prepare = crate::cgroups::PREPARE.map(String::from).to_vec();
    } else if let Some(p) = cgroup_path {
        // A rootless runtime's cgroups exist only for the limits a bundle
        // asks, where its cgroup is delegated, as before.
        ctx.log.warn(&format!(
            "linux.cgroupsPath {p}: a rootless runtime nests the container's cgroups (airlock-<id>) under its own, not at that path"
        ));
    }
    // Errors and findings name config.json's fields, and leave out the
    // acknowledgement the runtime gave itself for the bundle's own files.
    let fields = config::ConfigFields::new(&spec, &bundle, own_acks(ctx));
    let mut prepared = airlock::launch::prepare(&spec, &actx).map_err(|e| match e {
        airlock::Error::Refused(f) => airlock::check::render(&fields.findings(&f))
            .trim_end()
            .replace('\n', "; "),
        e => fields.rewrite(&e.to_string()),
    })?;
    for f in &fields.findings(&prepared.findings) {
        ctx.log
            .warn(&format!("[{}] {}: {}", f.code, f.subject, f.message));
    }
    // The state the hooks get (the runner sets the pid and status of
    // those it runs).
    let hook_state = |status: &str| {
        serde_json::json!({
            "ociVersion": OCI_VERSION,
            "id": id,
            "status": status,
            "pid": 0,
            "bundle": bundle.dir.display().to_string(),
            "annotations": bundle.annotations(),
        })
    };
    prepared.plan.hooks = hooks.inside(&hook_state("creating"), &prepared.plan.process.env);
    // The runtime's record of the container, there from the start: what
    // `state` shows of its bundle, and the poststop hooks a cleanup runs
    // once prestart and createRuntime may have run.
    let record = OciRecord {
        bundle: bundle.dir.clone(),
        rootfs: bundle.rootfs(),
        annotations: bundle.annotations(),
        hooks: hooks.clone(),
        nnp_capabilities: bundle
            .config
            .process()
            .as_ref()
            .and_then(|p| p.capabilities().as_ref())
            .map(|c| config::capabilities(c, true)),
        exec_cpu_affinity: bundle.exec_cpu_affinity.clone(),
        oom_score_adj: bundle
            .config
            .process()
            .as_ref()
            .and_then(|p| p.oom_score_adj()),
        creator: airlock::start_time(std::process::id() as i32)
            .map(|t| (std::process::id() as i32, t)),
    };
    let spawn = SpawnOptions {
        lifecycle: Some(LifecycleOptions {
            name: Some(id.to_string()),
            files: vec![(
                "oci.json".into(),
                serde_json::to_vec(&record).expect("serializes"),
            )],
            detach: true,
            hold: true,
            keep_stdio: true,
            console_socket,
            console_size: bundle
                .config
                .process()
                .as_ref()
                .and_then(|p| p.console_size())
                .map(|b| (clamp16(b.height()), clamp16(b.width()))),
            // The client that asks for the pid reaps it, as runc's do;
            // without one (a foreground `run`) the supervisor does.
            leave_pid1_to_reaper: pid_file.is_some(),
            // `create` exits once the container is created, and the
            // supervisor goes to the client's subreaper, as runc's init
            // does; a foreground `run` outlives it, and its zombie goes
            // when `run` exits. Either way, a fork spared.
            supervisor_stays_child: true,
            ..LifecycleOptions::default()
        }),
        context: Some(actx.clone()),
        preserve_fds,
        ..SpawnOptions::default()
    };
    // The OOM score is ours before the sandbox starts, so its supervisor
    // and PID 1 inherit it: written from here to the held PID 1 instead,
    // a rootless runtime was refused (PID 1 is not dumpable, so its
    // /proc files are not the caller's).
    if let Some(v) = record.oom_score_adj {
        oom_score_adj(v)?;
    }
    let started = Sandbox::start_prepared(prepared.plan, &actx, &spawn);
    let sandbox = match started {
        Ok(s) => s,
        // Refused before its runner ran (a name in use, a root that
        // cannot be opened): no hook of this bundle's ran, and the id may
        // be another container's.
        Err(e) if !matches!(e, airlock::Error::Setup(_)) => {
            return Err(fields.rewrite(&e.to_string()));
        }
        Err(e) => {
            // Nothing of it is left; its poststop hooks undo what a
            // prestart or createRuntime hook did (a network), as runc's
            // destroy runs them. Unless its supervisor could not be ended:
            // then its state stays, and `delete --force` runs them (from
            // its record) once it is gone, not twice, nor beside it.
            if matches!(ctx.find_if_there(id), Ok(None)) {
                let stopped = hook_state("stopped");
                hooks::run_warning("poststop", &hooks.poststop, &stopped, |e| {
                    ctx.log.hook_failed(e)
                });
            }
            // The runner's setup errors name spec fields too (a limit the
            // host cannot apply): config.json's names for them.
            return Err(fields.rewrite(&e.to_string()));
        }
    };
    let sb = sandbox.state().expect("a sandbox with state").clone();
    // The container exists from here: whatever fails now fails the create
    // and leaves nothing (no container, no process).
    let finish = || -> Result<()> {
        if let Some(p) = pid_file {
            // The container process, as runc gives: clients such as
            // conmon and containerd's shims are the subreaper the
            // runtime's processes leave behind, and reap it for its exit
            // status (the supervisor leaves it to them), and read its
            // namespaces and cgroups (`podman top`, stats).
            write_pid_file(p, sandbox.init_pid())?;
        }
        Ok(())
    };
    if let Err(e) = finish() {
        if let Err(why) = sb.kill_all() {
            // Its state stays for `delete --force`, beside a supervisor
            // that is still there.
            return Err(format!(
                "{e}; and container {id} did not stop: {why}: `delete --force {id}`"
            ));
        }
        // Its poststop hooks too, as runc's destroy runs them: what a
        // createRuntime hook set up (a network) is theirs to take down.
        match sb.state() {
            Ok(st) => {
                let _ = remove(ctx, &sb, &st);
            }
            Err(_) => {
                let _ = sb.remove();
            }
        }
        return Err(e);
    }
    ctx.log
        .debug(&format!("created {id} (pid {})", sandbox.init_pid()));
    Ok(console)
}

/// systemd's socket activation, as runc passes it on: when `LISTEN_PID`
/// is this process, its `LISTEN_FDS` fds (3 on) go to the container at the
/// same numbers, before those of `--preserve-fds`, and the workload is
/// told with `LISTEN_FDS` and `LISTEN_PID=1`. Otherwise none.
fn listen_fds() -> Result<u32> {
    let ours = std::env::var("LISTEN_PID").ok() == Some(std::process::id().to_string());
    let Some(n) = std::env::var("LISTEN_FDS").ok().filter(|_| ours) else {
        return Ok(0);
    };
    let n: u32 = n
        .parse()
        .ok()
        .filter(|n| *n <= 1024)
        .ok_or_else(|| format!("LISTEN_FDS={n:?}: not a count of fds"))?;
    open_from_3(n, &format!("LISTEN_FDS={n}"))?;
    Ok(n)
}

/// Are fds 3 to 3+`n`-1 all open? An error names `what` asked for them.
fn open_from_3(n: u32, what: &str) -> Result<()> {
    airlock::preserved_fds_open(n).map_err(|why| format!("{what}: {why}"))
}

/// `--preserve-fds N`: the runtime's fds 3 to 3+N-1 go to the container
/// at the same numbers; each must be open (the library refuses a
/// directory among them).
pub(crate) fn preserve_fds(n: i32) -> Result<u32> {
    let n = u32::try_from(n).map_err(|_| format!("--preserve-fds {n}: not a count"))?;
    open_from_3(n, &format!("--preserve-fds {n}"))?;
    Ok(n)
}

/// `process.oomScoreAdj`, made the runtime's own score, which the
/// processes it starts inherit (runc and crun have the container's init
/// write its own). Lowering a score below the lowest one the process has
/// had takes CAP_SYS_RESOURCE, which a host may not give root
/// (containerd's `restrict_oom_score_adj` keeps its requests within what
/// it may set).
pub(crate) fn oom_score_adj(value: i32) -> Result<()> {
    let path = "/proc/self/oom_score_adj";
    std::fs::write(path, value.to_string()).map_err(|e| {
        let why = if e.kind() == std::io::ErrorKind::PermissionDenied {
            " (lowering the score needs CAP_SYS_RESOURCE)"
        } else {
            ""
        };
        format!("process.oomScoreAdj: writing {value} to {path}: {e}{why}")
    })
}

/// Written to a temporary name and renamed, so a reader never sees half.
/// The pid file, whole or not at all: written to a new file of our own
/// beside it (never through a link planted there) and renamed over the
/// path, as runc's is; the temporary file goes on failure.
pub(crate) fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    let tmp = path.with_file_name(format!(
        ".{}.{}.airlock-tmp",
        name.unwrap_or_default(),
        std::process::id()
    ));
    // One a crashed runtime of the same pid left (unlink takes a link
    // itself, not what it names).
    let _ = std::fs::remove_file(&tmp);
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .mode(0o644)
        .open(&tmp)
        .and_then(|mut f| f.write_all(pid.to_string().as_bytes()))
        .and_then(|()| std::fs::rename(&tmp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written.map_err(|e| format!("--pid-file {}: {e}", path.display()))
}

fn start(ctx: &Ctx, id: &str) -> Result<()> {
    let (sb, _) = ctx.find(id)?;
    // Judged and released under the container's lock, which a delete
    // holds from its look to the removal: a plain delete of a created
    // container must not kill one this start has just released.
    let (lock, st) = locked(&sb, id)?;
    if st.status != Status::Created {
        return Err(format!(
            "cannot start container {id}: it is {}, not created",
            oci_status(st.status)
        ));
    }
    // Its process would start frozen: runc's words.
    if paused(&st) {
        return Err(format!(
            "cannot start container {id}: it is paused (resume it first)"
        ));
    }
    sb.request(&Request::Start)
        .map_err(|e| format!("cannot start container {id}: {e}"))?;
    drop(lock);
    // As runc's start: return once the user process has been exec'd (a
    // client may exec into it at once), or has ended; after the
    // startContainer hooks. No bound of our own, as runc sets none: an
    // exec that loads its program slowly (a lazily pulled image, a
    // throttled node) is not a failed start, and a supervisor that dies
    // shows as stopped. The caller's deadline is the one that counts.
    let mut pause = airlock::state::Backoff::new(Duration::from_millis(5));
    loop {
        match sb.state() {
            Ok(s) if matches!(s.status, Status::Created | Status::Creating) => pause.pause(),
            // What start released failed before its exec (the program
            // vanished since create, a startContainer hook failed): the
            // container is stopped with that exit, and start says why.
            Ok(s) if s.status == Status::Stopped && s.started.is_none() => {
                let why = s
                    .reason
                    .unwrap_or_else(|| "it ended before its exec".into());
                return Err(format!("cannot start container {id}: {why}"));
            }
            Ok(s) => {
                // poststart: a failure is a warning, as the spec says.
                let post = record(&sb).map(|r| r.hooks.poststart).unwrap_or_default();
                let started = oci_state(&sb, &s);
                hooks::run_warning("poststart", &post, &started, |e| ctx.log.hook_failed(e));
                return Ok(());
            }
            Err(e) => return Err(format!("cannot start container {id}: {e}")),
        }
    }
}

/// The container's lock, and its state as read under it; a container
/// another caller removed meanwhile does not exist.
fn locked(sb: &SandboxDir, id: &str) -> Result<(std::fs::File, State)> {
    let gone = || format!("container {id:?} does not exist");
    let lock = sb.lock();
    if !sb.dir.exists() {
        return Err(gone());
    }
    let lock = lock.map_err(|e| e.to_string())?;
    match sb.state() {
        Ok(st) => Ok((lock, st)),
        Err(_) if !sb.dir.exists() => Err(gone()),
        Err(e) => Err(format!("container {id:?}: {e}")),
    }
}

/// Remove a stopped container's state, then run its poststop hooks
/// (whose failures are warnings): the spec runs them "after the container
/// is deleted", as runc's destroy does, so a hook asking the runtime
/// finds it gone.
fn remove(ctx: &Ctx, sb: &SandboxDir, st: &State) -> Result<()> {
    // One remover at a time: two deletes at once (a shim's and a
    // `delete --force`) ran the poststop hooks twice, side by side. The
    // second finds it gone once it has the lock, and runs none.
    let _one = match sb.lock() {
        Ok(lock) if sb.dir.exists() => lock,
        Ok(_) => return Ok(()),
        Err(_) if !sb.dir.exists() => return Ok(()),
        Err(e) => return Err(e.to_string()),
    };
    remove_holding(ctx, sb, st)
}

/// [`remove`] by a caller that holds the container's lock.
fn remove_holding(ctx: &Ctx, sb: &SandboxDir, st: &State) -> Result<()> {
    // One being created has its create's cleanup run them (a delete
    // --force stopped it), while that create lives.
    let post = record(sb)
        .filter(|r| st.status != Status::Creating || !r.creator_lives())
        .map(|r| r.hooks.poststop)
        .unwrap_or_default();
    let mut state = oci_state(sb, st);
    state["status"] = "stopped".into();
    state["pid"] = 0.into();
    // A container whose supervisor and guard died together (a unit's
    // last SIGKILL) left its cgroups, and in a pod's PID namespace its
    // processes too.
    sb.reclaim_cgroups(st);
    let removed = match sb.remove() {
        // Another caller's delete (a `run` in the foreground and a
        // `delete --force` meet here) removed it first: it is gone.
        Err(_) if !sb.dir.exists() => Ok(()),
        r => r.map_err(|e| e.to_string()),
    };
    // Still under the lock: a second delete waiting on it finds the
    // container gone and runs none. Run whatever the removal said, as
    // runc's destroy does.
    hooks::run_warning("poststop", &post, &state, |e| ctx.log.hook_failed(e));
    removed
}

/// The acknowledgements the runtime gives itself for a bundle's own
/// files (see `config::OWN_IDMAP_ACKS`) that the caller did not give too:
/// left out of what findings a bundle or an exec is told.
pub(crate) fn own_acks(ctx: &Ctx) -> Vec<String> {
    config::OWN_IDMAP_ACKS
        .iter()
        .copied()
        .filter(|a| !ctx.allow_unsafe.iter().any(|c| c.as_str() == *a))
        .map(String::from)
        .collect()
}

fn kill(ctx: &Ctx, id: &str, signal: &str, all: bool) -> Result<()> {
    let (sb, st) = ctx.find(id)?;
    let sig = parse_signal(signal)?;
    if st.status == Status::Stopped && all {
        // runc signals whatever is left in the cgroup, and a stopped
        // container's is gone: nothing to do is success.
        return Ok(());
    }
    if st.status == Status::Stopped {
        // runc's words: the shims (go-runc's checkKillError) take
        // "container not running" as "already finished", which is what
        // containerd's CRI meets when it kills an exited container before
        // deleting it; other words fail the exit's handling.
        return Err(format!("cannot kill container {id}: container not running"));
    }
    if st.status == Status::Creating {
        // OCI: only a created or running container takes a signal. (A
        // delete --force stops one being created.)
        return Err(format!("cannot kill container {id}: it is being created"));
    }
    if all && sig != libc::SIGKILL {
        // runc's --all: every process of the container, found in its
        // cgroup. (SIGKILL goes through the supervisor, which freezes the
        // cgroup first so that nothing forks away.) A rootless container
        // without a cgroup of its own has only its PID 1 to signal.
        // Frozen while they are read and signalled (unless it is paused
        // already): a frozen process neither exits, so its pid cannot be
        // another's by the time it is signalled, nor forks away.
        // A freeze that fails (a process stuck in the kernel) does not
        // keep the signals from going out: runc's signals anyway too.
        // Under the freezer's lock, and judged paused once it is held: a
        // pause between the look and the thaw would be undone, and
        // `state` say running to a caller told it was paused.
        let _freezing = match sb.freeze_lock() {
            Ok(l) => l,
            // Deleted meanwhile: what the shims take for "already
            // finished", as for a stopped one above.
            Err(airlock::state::StateError::Removed(_)) => {
                return Err(format!("cannot kill container {id}: container not running"))
            }
            Err(e) => return Err(e.to_string()),
        };
        let file = freezer(&st).filter(|_| !paused(&st)).filter(|f| {
            airlock::cgroup::set_frozen(f, true)
                .inspect_err(|e| {
                    ctx.log
                        .warn(&format!("{}: {e}; signalling unfrozen", f.display()))
                })
                .is_ok()
        });
        let procs = st.cgroup.as_ref().map(|c| c.procs()).unwrap_or_default();
        // A created container's held process is its supervisor's to
        // signal (below), not ours: outside a PID namespace of its own
        // (one joined, as a pod's) no init protection stands, and its
        // handlers are back to the defaults, so a USR1 ended it.
        let held = (st.status == Status::Created).then_some(st.pid).flatten();
        // 0 stands for a task outside our PID namespace, and kill(0)
        // would signal our own process group.
        for pid in procs.iter().copied().filter(|p| *p > 0 && Some(*p) != held) {
            // SAFETY: kill(2) takes plain integers and touches no memory
            // of ours; a process that exited meanwhile (ESRCH) needs no
            // signal.
            unsafe { libc::kill(pid, sig) };
        }
        if let Some(f) = &file {
            // Gone with a container the signal ended is thawed enough.
            if let Err(e) = airlock::cgroup::set_frozen(f, false) {
                if f.exists() {
                    ctx.log.warn(&format!("{}: {e}", f.display()));
                }
            }
        }
        // A created container's held process was left to its supervisor,
        // which decides (a signal that ends runc's held init ends it).
        if !procs.is_empty() && st.status != Status::Created {
            return Ok(());
        }
    }
    let req = if all && sig == libc::SIGKILL {
        Request::Kill
    } else {
        Request::Signal { signal: sig }
    };
    sb.request(&req).map_err(|e| {
        // Ended meanwhile (its supervisor closes the control socket
        // before it records the stop): runc's words, which the shims take
        // as "already finished", rather than the socket's.
        let ended = !sb.dir.exists() || sb.state().is_ok_and(|s| s.status == Status::Stopped);
        match ended {
            true => format!("cannot kill container {id}: container not running"),
            false => format!("cannot kill container {id}: {e}"),
        }
    })
}

fn parse_signal(s: &str) -> Result<i32> {
    airlock::state::parse_signal(s).ok_or_else(|| format!("unknown signal {s:?}"))
}

fn delete(ctx: &Ctx, id: &str, force: bool) -> Result<()> {
    // A root that cannot be read is an error, --force or not: the
    // container may well be there.
    ctx.existing_root()?;
    let sb = match ctx.find_if_there(id)? {
        Some((sb, _)) => sb,
        // runc: deleting what is not there with --force is not an error.
        None if force => return Ok(()),
        None => return Err(format!("container {id:?} does not exist")),
    };
    // Judged, killed and removed under the container's lock: a start
    // cannot release a created container between this look and the
    // kill, and a second delete waits, then finds it gone.
    let (_lock, st) = match locked(&sb, id) {
        Err(_) if force && !sb.dir.exists() => return Ok(()),
        other => other?,
    };
    // A created one goes without --force, as in runc; not a paused one.
    let plainly = st.status == Status::Stopped || (st.status == Status::Created && !paused(&st));
    if !plainly && !force {
        return Err(format!(
            "cannot delete container {id}: it is {}; stop it first or use --force",
            oci_status_of(&st)
        ));
    }
    if st.status != Status::Stopped {
        // A frozen process takes no signal, SIGKILL included, until it
        // is thawed (the v1 freezer): thawed first, as runc does.
        // Under the freezer's lock, and looked at again once it is held:
        // a kill --all that froze it for a moment has thawed it by then,
        // and "not paused" must not fail the delete.
        let freezing = sb.freeze_lock().map_err(|e| e.to_string())?;
        if let Some(file) = freezer(&st).filter(|_| paused(&st)) {
            airlock::cgroup::set_frozen(&file, false)
                .map_err(|e| format!("{}: {e}", file.display()))?;
        }
        drop(freezing);
        // A supervisor that does not answer is killed itself (see
        // kill_all), as runc's delete --force kills init.
        sb.kill_all()
            .map_err(|e| format!("cannot delete container {id}: {e}"))?;
    }
    remove_holding(ctx, &sb, &st)
}

fn list(ctx: &Ctx, format: &str, quiet: bool) -> Result<()> {
    if !matches!(format, "table" | "json") {
        return Err(format!("list: --format {format:?}: table or json"));
    }
    let listed = ctx.existing_root()?.map(|root| root.list());
    let states: Vec<serde_json::Value> = listed
        .into_iter()
        .flatten()
        .map(|(sb, st)| oci_state(&sb, &st))
        .collect();
    if quiet {
        for s in &states {
            println!("{}", s["id"].as_str().unwrap_or(""));
        }
    } else if format == "json" {
        println!("{}", serde_json::to_string(&states).expect("serializes"));
    } else {
        println!(
            "{:<64}  {:<8}  {:<8}  {:<40}  CREATED",
            "ID", "PID", "STATUS", "BUNDLE"
        );
        for s in &states {
            println!(
                "{:<64}  {:<8}  {:<8}  {:<40}  {}",
                s["id"].as_str().unwrap_or(""),
                s["pid"].to_string(),
                s["status"].as_str().unwrap_or(""),
                s["bundle"].as_str().unwrap_or(""),
                s["created"].as_str().unwrap_or("")
            );
        }
    }
    Ok(())
}

fn ps(ctx: &Ctx, id: &str, format: &str) -> Result<()> {
    let (_, st) = ctx.find(id)?;
    let mut pids: Vec<i32> = Vec::new();
    if let Some(cg) = &st.cgroup {
        // The cgroups the workload made beneath too (systemd inside does,
        // and leaves the top one empty on v2), as runc's GetAllPids.
        pids = cg.procs();
    } else if let Some(pid) = st.pid.filter(|_| st.status != Status::Stopped) {
        pids.push(pid);
    }
    pids.sort_unstable();
    pids.dedup();
    if format == "json" {
        println!("{}", serde_json::to_string(&pids).expect("serializes"));
    } else {
        println!("PID");
        for p in pids {
            println!("{p}");
        }
    }
    Ok(())
}

/// The freezer file of a container's cgroups.
fn freezer(st: &State) -> Option<PathBuf> {
    let cg = st.cgroup.as_ref()?;
    airlock::cgroup::freezer_file(cg.v2.as_deref(), cg.v1.get("freezer").map(PathBuf::as_path))
}

/// Is a running or created container paused (its cgroup frozen, or
/// freezing)? runc pauses a created one too.
pub(crate) fn paused(st: &State) -> bool {
    matches!(st.status, Status::Running | Status::Created)
        && freezer(st).is_some_and(|f| airlock::cgroup::freeze_asked(&f))
}

/// A container's status as the runtime spec words it: `paused` is a
/// running container whose cgroup is frozen.
fn oci_status_of(st: &State) -> &'static str {
    if paused(st) {
        "paused"
    } else {
        oci_status(st.status)
    }
}

fn freeze(ctx: &Ctx, id: &str, frozen: bool) -> Result<()> {
    let (sb, st) = ctx.find(id)?;
    let _freezing = sb.freeze_lock().map_err(|e| e.to_string())?;
    if !matches!(st.status, Status::Running | Status::Created) {
        return Err(format!(
            "container {id} is {}, not running or created",
            oci_status(st.status)
        ));
    }
    if st.cgroup.is_none() {
        return Err(format!(
            "container {id} has no cgroup to freeze (give it a resource limit)"
        ));
    }
    let file = freezer(&st).ok_or_else(|| format!("container {id}'s cgroups have no freezer"))?;
    // As runc: pausing what is paused, or resuming what is not, is an
    // error a caller can see (it would otherwise think it changed).
    match (frozen, paused(&st)) {
        (true, true) => return Err(format!("container {id} is already paused")),
        (false, false) => return Err(format!("container {id} is not paused")),
        _ => {}
    }
    airlock::cgroup::set_frozen(&file, frozen).map_err(|e| format!("{}: {e}", file.display()))
}

/// `spec`: a starting config.json in the bundle directory (oci-spec's
/// default, which is runc's), never over an existing one.
fn spec_template(bundle: &Path, rootless: bool) -> Result<()> {
    let path = bundle.join("config.json");
    if path.exists() {
        return Err(format!("{}: already exists", path.display()));
    }
    let spec = if rootless {
        // SAFETY: getuid and getgid have no arguments and cannot fail.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        oci_spec::runtime::Spec::rootless(uid, gid)
    } else {
        oci_spec::runtime::Spec::default()
    };
    let mut v = serde_json::to_value(&spec).expect("serializes");
    v["hostname"] = "airlock".into();
    if rootless {
        // runc's rootless template binds the host's /sys and shares the
        // host's network, which the guardrails refuse (kernel-surface-bind)
        // and warn of: a network namespace of its own lets the container
        // mount a sysfs of its own, as the root template does.
        if let Some(ns) = v["linux"]["namespaces"].as_array_mut() {
            ns.push(serde_json::json!({"type": "network"}));
        }
        if let Some(mounts) = v["mounts"].as_array_mut() {
            mounts.retain(|m| m["destination"] != "/sys/fs/cgroup");
            for m in mounts.iter_mut().filter(|m| m["destination"] == "/sys") {
                *m = serde_json::json!({
                    "destination": "/sys", "type": "sysfs", "source": "sysfs",
                    "options": ["nosuid", "noexec", "nodev", "ro"],
                });
            }
        }
    }
    let text = serde_json::to_string_pretty(&v).expect("serializes");
    std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))
}

fn oci_status(s: Status) -> &'static str {
    match s {
        Status::Creating => "creating",
        Status::Created => "created",
        Status::Running => "running",
        Status::Stopped => "stopped",
    }
}

/// The runtime spec's version of the state JSON airlock writes.
const OCI_VERSION: &str = "1.0.2";

/// The state JSON of the runtime spec.
fn oci_state(sb: &SandboxDir, st: &State) -> serde_json::Value {
    let record = record(sb);
    let running = matches!(st.status, Status::Created | Status::Running);
    serde_json::json!({
        "ociVersion": OCI_VERSION,
        "id": st.name,
        "status": oci_status_of(st),
        "pid": if running { st.pid.unwrap_or(0) } else { 0 },
        "bundle": record.as_ref().map(|r| r.bundle.display().to_string()).unwrap_or_default(),
        // Beyond the spec's state, as runc gives them (go-runc reads both).
        "rootfs": record.as_ref().map(|r| r.rootfs.display().to_string()).unwrap_or_default(),
        "created": crate::log::rfc3339(st.created),
        "owner": "",
        "annotations": record.map(|r| r.annotations).unwrap_or_default(),
    })
}

fn features() -> serde_json::Value {
    serde_json::json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": "1.1.0",
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": ["bind", "rbind", "ro", "rw", "nosuid", "nodev", "dev", "noexec", "exec", "private", "rprivate", "atime", "noatime", "relatime", "norelatime", "strictatime", "nostrictatime", "diratime", "nodiratime", "lazytime", "nolazytime", "tmpcopyup", "size", "mode"],
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "user", "uts", "time"],
            "cgroup": {"v1": true, "v2": true, "systemd": false, "systemdUser": false},
            "seccomp": {
                "enabled": true,
                "actions": ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP", "SCMP_ACT_TRACE", "SCMP_ACT_LOG"],
                "operators": ["SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_MASKED_EQ"],
                "knownFlags": ["SECCOMP_FILTER_FLAG_LOG"],
                "supportedFlags": ["SECCOMP_FILTER_FLAG_LOG"],
            },
            "apparmor": {"enabled": false},
            "selinux": {"enabled": false},
        },
        "annotations": {
            "run.airlock.allow-unsafe": "guardrail codes to acknowledge, comma-separated",
            "run.airlock.landlock": "off, auto or required",
            "run.airlock.seccomp": "default, none or bundle",
        },
        // runtime-spec 1.2's list for engines that pass annotations from
        // images or pods: each of airlock's may take a protection away
        // (seccomp none, Landlock off, a guardrail acknowledged), so an
        // engine must not take them from where a workload's author sets
        // them (CRI-O filters by this list).
        "potentiallyUnsafeConfigAnnotations": [crate::config::ANNOTATION_PREFIX],
    })
}
