//! `airlockd`: airlock's daemon. Sandbox lifecycle as a gRPC service
//! (`proto/airlock/v1/airlock.proto`) on a unix socket, for many clients
//! at once. Each sandbox has its own supervisor, so sandboxes outlive the
//! daemon; a new daemon re-adopts them from the state root.

mod budget;
mod config;
mod daemon;
mod events;
mod meta;
mod peer;
mod quota;
mod reap;
mod service;
mod status;
mod stdio;

use clap::Parser;
use std::path::PathBuf;
use std::sync::Arc;
use tokio_stream::StreamExt;

/// airlock's daemon: create, start, exec into, attach to, stop and delete
/// sandboxes through a gRPC API on a unix socket.
///
/// Only root and members of the configured group may connect; the peer's
/// credentials (SO_PEERCRED) decide, and a sandbox is launched for the
/// caller's ids, never as the daemon. Sandboxes keep running when the
/// daemon stops; a restarted daemon re-adopts them.
#[derive(Parser)]
#[command(name = "airlockd", version, max_term_width = 100)]
#[command(
    after_help = "Examples:\n  airlockd\n  airlockd --listen /tmp/a.sock --state-root /tmp/a-state --group ''\n  AIRLOCK_HOST=unix:///tmp/a.sock airlock run -d -- sleep 100"
)]
struct Args {
    /// The configuration file (TOML; every key is documented in
    /// dist/airlockd.toml). Default: /etc/airlock/airlockd.toml if it exists.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The socket to listen on (overrides `listen`; default
    /// /run/airlockd.sock).
    #[arg(long, value_name = "PATH")]
    listen: Option<PathBuf>,
    /// Where sandboxes keep their state (overrides `state_root`; default
    /// /run/airlockd).
    #[arg(long, value_name = "DIR")]
    state_root: Option<PathBuf>,
    /// The group that may connect besides root; '' for root only
    /// (overrides `group`; default airlock, which must exist:
    /// `groupadd --system airlock`).
    #[arg(long, value_name = "NAME")]
    group: Option<String>,
    /// Log as JSON lines instead of text.
    #[arg(long)]
    log_json: bool,
    /// Write the man page (airlockd.8) into DIR and exit, as man/ holds it.
    #[arg(long, value_name = "DIR", hide = true)]
    man: Option<PathBuf>,
}

const DEFAULT_CONFIG: &str = "/etc/airlock/airlockd.toml";

/// The largest message a client may send (the daemon's answers are
/// not bound by it).
const MAX_MESSAGE: usize = 2 << 20;

/// The soft limit on open files raised to the hard one: every connection,
/// stream and sandbox followed is a descriptor of the daemon's, and the
/// usual soft limit (1024) would end in `accept` failing for everyone
/// while the kernel allows many more (as systemd advises for a service
/// that needs them, and Go's runtime does for every program). Returns the
/// limit the daemon had, which its sandboxes get instead (see
/// `Daemon::nofile`): a soft limit in the hundreds of thousands slows or
/// breaks programs that size a table by it or close every fd up to it.
fn raise_nofile() -> Option<airlock::spec::Rlimit> {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.maximum.is_none() || limit.current == limit.maximum {
        return None;
    }
    let raised = Rlimit {
        current: limit.maximum,
        maximum: limit.maximum,
    };
    if let Err(e) = setrlimit(Resource::Nofile, raised) {
        tracing::warn!("raise RLIMIT_NOFILE to its hard limit: {e}");
        return None;
    }
    Some(airlock::spec::Rlimit {
        resource: "nofile".into(),
        soft: limit.current.unwrap_or(u64::MAX),
        hard: limit.maximum.unwrap_or(u64::MAX),
    })
}

fn load(args: &Args) -> anyhow::Result<config::Config> {
    let mut c = match &args.config {
        Some(p) => config::Config::load(p)?,
        None if std::path::Path::new(DEFAULT_CONFIG).exists() => {
            config::Config::load(DEFAULT_CONFIG.as_ref())?
        }
        None => config::Config::default(),
    };
    if let Some(l) = &args.listen {
        c.listen = l.clone();
    }
    if let Some(s) = &args.state_root {
        c.state_root = s.clone();
    }
    if let Some(g) = &args.group {
        c.group = g.clone();
    }
    Ok(c)
}

/// The cgroups sandboxes are made under: the daemon's own, or
/// `cgroup_parent` in every hierarchy (made where it is missing). A
/// parent that is not a cgroup path stops the daemon; one that cannot be
/// made or read is logged, and a sandbox with limits then fails naming
/// the cgroup (a daemon on a read-only cgroup tree still runs the rest).
fn layout(c: &config::Config) -> anyhow::Result<airlock::cgroup::Layout> {
    let l = airlock::cgroup::Layout::detect().unwrap_or_default();
    // TOML has no null: an empty value is the default, as unset.
    let Some(parent) = c.cgroup_parent.as_ref().filter(|p| !p.is_empty()) else {
        return Ok(l);
    };
    let parent = airlock::cgroup::cgroup_parent(parent)
        .map_err(|e| anyhow::anyhow!("cgroup_parent: {e}"))?;
    let at = l.at(&parent);
    let hierarchies = at.v2.iter().map(|h| (h, true));
    for (h, v2) in hierarchies.chain(at.v1.values().map(|h| (h, false))) {
        // Where each mount shows it (a bound subtree's mount is not the
        // hierarchy's root).
        let dir = h.own_dir();
        if let Err(e) = airlock::cgroup::make_parent(&dir, v2) {
            tracing::warn!("cgroup_parent {}: {e}", dir.display());
        }
    }
    match l.under(&parent) {
        Ok(under) => Ok(under),
        Err(e) => {
            tracing::warn!("cgroup_parent: {e}");
            // The daemon's own controllers stay what the plan judges by
            // (so its default pids limit is still planned); a sandbox that
            // needs a cgroup then fails at its mkdir, naming the parent.
            Ok(l.at(&parent))
        }
    }
}

/// glibc gives every thread that allocates an arena of its own, up to
/// eight per CPU, and the blocking pool's threads take turns at the
/// calls: free memory scattered over many arenas kept the RSS growing
/// over 10,000 sandboxes (15.3 to 18.7 MiB after the first and the last
/// thousand, benches/daemon.py). With one arena per CPU it went from 14.0
/// to 15.6 MiB, and the sandboxes per second did not drop.
#[cfg(target_env = "gnu")]
fn one_malloc_arena_per_cpu() {
    let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
    // SAFETY: mallopt only sets a tunable of the allocator; no other
    // thread exists yet.
    unsafe { libc::mallopt(libc::M_ARENA_MAX, cpus.min(64) as libc::c_int) };
}

fn main() -> std::process::ExitCode {
    #[cfg(target_env = "gnu")]
    one_malloc_arena_per_cpu();
    let args = Args::parse();
    if let Some(dir) = &args.man {
        return man(dir);
    }
    let filter = tracing_subscriber::EnvFilter::try_from_env("AIRLOCKD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let fmt = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let json = args.log_json;
    if json {
        fmt.json().init();
    } else {
        fmt.init();
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(256)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    match rt.block_on(serve(args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // Once, on stderr, where the log goes too: as a JSON record
            // for a reader of JSON lines, else as a plain line.
            if json {
                tracing::error!("{e:#}");
            } else {
                eprintln!("airlockd: {e:#}");
            }
            std::process::ExitCode::from(1)
        }
    }
}

/// The man page, section 8 (a system daemon's), without the commit in
/// its version so that the shipped page changes only with the definitions.
fn man(dir: &std::path::Path) -> std::process::ExitCode {
    use clap::CommandFactory;
    let page = dir.join("airlockd.8");
    let cmd = Args::command().version(env!("CARGO_PKG_VERSION"));
    let r = std::fs::File::create(&page)
        .and_then(|mut f| clap_mangen::Man::new(cmd).section("8").render(&mut f));
    match r {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("airlockd: --man {}: {e}", page.display());
            std::process::ExitCode::from(1)
        }
    }
}

async fn serve(args: Args) -> anyhow::Result<()> {
    let c = load(&args)?;
    let nofile = raise_nofile();
    let group = match c.group.as_str() {
        "" => None,
        name => {
            let gid = peer::group_id(name).ok_or_else(|| {
                anyhow::anyhow!(
                    "group {name:?} does not exist (create it, or set group = \"\" for root only)"
                )
            })?;
            Some((name.to_string(), gid))
        }
    };
    let layout = layout(&c)?;
    // A budget the daemon could not keep would refuse every create of its
    // callers besides root: said once, at the start, instead.
    if c.max_pids_per_caller > 0 {
        budget::usable(&layout).map_err(|why| {
            anyhow::anyhow!(
                "max_pids_per_caller: {why} (or set max_pids_per_caller = 0 to run without a per-caller process budget)"
            )
        })?;
    }
    let root = airlock::state::StateRoot::open(&c.state_root)?;
    // Root's alone, whatever mode it was made with (systemd's
    // RuntimeDirectoryMode gives the socket's directory and this one the
    // same 0711): clients reach their sandboxes through the API, and what
    // the daemon binds there (an exec's console socket) is for root.
    std::fs::set_permissions(
        root.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .map_err(|e| anyhow::anyhow!("state_root {}: {e}", root.path().display()))?;
    let listener = peer::bind(&c.listen, c.socket_mode, group.as_ref().map(|g| g.1))?;
    let listen = c.listen.clone();
    let d = Arc::new(daemon::Daemon::new(c, root, layout, group, nofile));
    let adopted = {
        let d = d.clone();
        tokio::task::spawn_blocking(move || events::adopt(&d)).await?
    };
    tracing::info!(
        socket = %listen.display(),
        state_root = %d.root.path().display(),
        adopted,
        "airlockd listening"
    );
    tokio::spawn(events::watch(d.clone()));
    let ended = d.clone();
    let (open, max) = (quota::Quota::default(), d.config.max_connections_per_caller);
    let incoming = tokio_stream::wrappers::UnixListenerStream::new(listener)
        // A failed accept (EMFILE: every descriptor taken) is tried again
        // after a pause: tonic skips it and polls at once, and the
        // listener, still readable, would fail again, spinning a core
        // until a descriptor frees.
        .then(|s| async move {
            if let Err(e) = &s {
                tracing::warn!("accept a connection: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            s
        })
        .filter_map(move |s| match s {
            Ok(s) => peer::PeerStream::admit(s, &open, max).map(Ok),
            Err(e) => Some(Err(e)),
        });
    // A Create's spec may be 1 MiB (MAX_SPEC) and its labels 16 KiB;
    // nothing else a client sends is near. tonic's default, 4 MiB, let every
    // message of an Exec's or Attach's input be that large.
    let svc =
        airlock_client::proto::sandboxes_server::SandboxesServer::new(service::Service(d.clone()))
            .max_decoding_message_size(MAX_MESSAGE);
    // Who may call is decided from the request's head, before its body
    // (up to MAX_MESSAGE) is read and decoded: a user outside the group,
    // where the socket's mode lets one connect, costs the daemon nothing
    // more than the refusal.
    // The request holds a place from here until its handler has taken it
    // apart (the place rides in its extensions).
    let gate = d;
    let svc = tonic::service::interceptor::InterceptedService::new(
        svc,
        move |mut req: tonic::Request<()>| {
            let peer = gate.peer(&req)?;
            if let Some(reading) = daemon::reading_slot(&gate, &peer)? {
                req.extensions_mut().insert(reading);
            }
            Ok(req)
        },
    );
    let shutdown = async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("a SIGTERM handler");
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        tracing::info!("stopping; the sandboxes keep running");
    };
    // Streams that follow (events, logs -f, attach, wait) would hold a
    // graceful shutdown open forever: they get a moment, then the daemon
    // goes (its sandboxes stay).
    let stopping = std::sync::Arc::new(tokio::sync::Notify::new());
    let notify = stopping.clone();
    // Bounded: one connection's streams are each a task, a pidfd or a
    // pipe of ours (hyper's own default, which tonic's unset would lift).
    let server = tonic::transport::Server::builder()
        .max_concurrent_streams(Some(200))
        .add_service(svc)
        .serve_with_incoming_shutdown(incoming, async move {
            shutdown.await;
            notify.notify_one();
        });
    tokio::select! {
        r = server => r?,
        _ = async {
            stopping.notified().await;
            tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        } => {}
    }
    let _ = std::fs::remove_file(&listen);
    // The budgets of the callers it served or knows, where empty now.
    let mut uids = ended.budgets.lock().expect("budgets lock").clone();
    uids.extend(
        ended
            .known
            .lock()
            .expect("known lock")
            .values()
            .map(|s| s.owner),
    );
    budget::remove_empty(&ended.layout, uids.into_iter().filter(|u| *u != 0));
    Ok(())
}
