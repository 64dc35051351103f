//! The CLI against a daemon (`--host unix:///PATH` or `AIRLOCK_HOST`), as
//! `podman --remote` is: the same verbs and flags, carried out by
//! `airlockd` through the client library instead of on this machine's
//! state root.

use crate::lifecycle_cmd::{ExecArgs, KillArgs, LogsArgs, NameArgs, PsArgs, RmArgs, StopArgs};
use crate::out;
use crate::run::{build_spec_labeled, Labels, RunArgs, EXIT_REFUSED};
use airlock_client::{proto, Client, ClientError};
use clap::{ArgMatches, Args};
use std::io::Write;
use std::process::ExitCode;

/// `airlock events`: the daemon's lifecycle events as they happen.
#[derive(Args)]
pub struct EventsArgs {
    /// Also the kept events since then: seconds since the epoch, or an
    /// age such as 30s, 10m, 2h.
    #[arg(long, value_name = "WHEN")]
    since: Option<String>,
    /// Only this sandbox's events.
    #[arg(long, value_name = "NAME")]
    sandbox: Option<String>,
    /// Stop after the kept events instead of waiting for new ones
    /// (without --since: every event the daemon keeps).
    #[arg(long)]
    no_follow: bool,
    /// `text` (default) or `json` (one object per line).
    #[arg(long, value_parser = ["text", "json"], default_value = "text")]
    format: String,
}

/// `airlock stats`: a sandbox's cgroup counters, now.
#[derive(Args)]
pub struct StatsArgs {
    /// `text` (default) or `json`.
    #[arg(long, value_parser = ["text", "json"], default_value = "text")]
    pub(crate) format: String,
    #[arg(value_name = "NAME")]
    pub(crate) name: String,
}

/// What the remote verbs are handed.
pub enum Verb<'a> {
    Run(Box<RunArgs>, &'a ArgMatches, bool),
    Start(NameArgs),
    Exec(ExecArgs),
    Attach(crate::attach_cmd::AttachArgs),
    Ps(PsArgs),
    Inspect(NameArgs),
    Logs(LogsArgs),
    Stop(StopArgs),
    Kill(KillArgs),
    Wait(NameArgs),
    Rm(RmArgs),
    Events(EventsArgs),
    Stats(StatsArgs),
}

fn fail(e: ClientError) -> ExitCode {
    fail_labeled(e, &Labels::default())
}

/// [`fail`] for a run: errors and findings name the flags the user typed
/// (`--bind /etc /etc`), not the spec's mount indices.
fn fail_labeled(e: ClientError, labels: &Labels) -> ExitCode {
    let text = labels.rewrite(&e.to_string(), &[]);
    eprintln!("airlock: error: {}", crate::run::shown(&text));
    if let ClientError::Status {
        details: Some(d), ..
    } = &e
    {
        for f in &d.findings {
            print_finding(f, labels);
        }
        match d.kind.as_str() {
            "program-not-found" => return ExitCode::from(127),
            "program-not-executable" => return ExitCode::from(126),
            _ => {}
        }
    }
    ExitCode::from(EXIT_REFUSED)
}

fn print_finding(f: &proto::Finding, labels: &Labels) {
    let refuses = f.severity == proto::Severity::Deny as i32 && !f.acknowledged;
    let level = if refuses { "error" } else { "warning" };
    let ack = if f.acknowledged {
        " (acknowledged)"
    } else {
        ""
    };
    let subject = labels.rewrite(&f.subject, &[]);
    eprintln!("{level}[{}]: {subject}: {}{ack}", f.code, f.message);
    eprintln!("  = help: {}", f.help);
}

/// Carry out `verb` on the daemon at `host`.
pub fn main(host: &str, verb: Verb) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("airlock: error: start the client's runtime: {e}");
            return ExitCode::from(EXIT_REFUSED);
        }
    };
    rt.block_on(async {
        let mut c = match Client::connect(host).await {
            Ok(c) => c,
            Err(e) => return fail(e),
        };
        let r = match verb {
            Verb::Run(a, m, hold) => run(&mut c, *a, m, hold).await,
            Verb::Start(a) => c.start(&a.name).await.map(|i| say(&i.name)),
            Verb::Exec(a) => return exec(&mut c, a).await,
            Verb::Attach(a) => return attach(&mut c, &a.name).await,
            Verb::Ps(a) => ps(&mut c, a).await,
            Verb::Inspect(a) => c.inspect(&a.name).await.map(|i| {
                out::line(serde_json::to_string_pretty(&info_json(&i)).expect("json"));
                ExitCode::SUCCESS
            }),
            Verb::Logs(a) => logs(&mut c, a).await,
            // Each name, as locally: one that fails does not keep the
            // others from going.
            Verb::Stop(a) => {
                let (mut code, mut listed) = (ExitCode::SUCCESS, out::Listed::default());
                // The daemon names the request's field; the caller typed -t.
                let labels = Labels {
                    fields: vec![("grace_seconds", "--time")],
                    ..Default::default()
                };
                for n in &a.names {
                    match c
                        .stop(n, a.time.map(|t| t.min(u32::MAX.into()) as u32))
                        .await
                    {
                        Ok(_) => listed.line(n),
                        Err(e) => code = fail_labeled(e, &labels),
                    }
                }
                Ok(listed.code(code))
            }
            Verb::Kill(a) => {
                let sig = a.signal.or(a.signal_flag).unwrap_or_else(|| "KILL".into());
                c.signal(&a.name, &sig).await.map(|_| say(&a.name))
            }
            Verb::Wait(a) => c.wait(&a.name).await.map(|i| match i.exit {
                Some(e) if unreported(&i.name, &e) => ExitCode::from(EXIT_REFUSED),
                Some(e) => {
                    out::line(e.code);
                    ExitCode::from(e.code.clamp(0, 255) as u8)
                }
                // Never a made-up 0: it did not exit with one (its setup
                // failed, or it was stopped before it started).
                None => {
                    eprintln!(
                        "airlock: error: sandbox {} stopped without an exit status",
                        i.name
                    );
                    ExitCode::from(EXIT_REFUSED)
                }
            }),
            Verb::Rm(a) => {
                let (mut code, mut listed) = (ExitCode::SUCCESS, out::Listed::default());
                for n in &a.names {
                    match c.delete(n, a.force).await {
                        Ok(_) => listed.line(n),
                        Err(e) => code = fail(e),
                    }
                }
                Ok(listed.code(code))
            }
            Verb::Events(a) => events(&mut c, a).await,
            Verb::Stats(a) => c.stats(&a.name).await.map(|s| {
                print_stats(&a.format, &stats_json(&s));
                ExitCode::SUCCESS
            }),
        };
        r.unwrap_or_else(fail)
    })
}

fn say(s: &str) -> ExitCode {
    out::line(s);
    ExitCode::SUCCESS
}

async fn run(
    c: &mut Client,
    a: RunArgs,
    m: &ArgMatches,
    hold: bool,
) -> Result<ExitCode, ClientError> {
    if !a.detach && !hold {
        eprintln!(
            "airlock: error: with --host, run needs -d (the daemon keeps the sandbox; `airlock attach` or `airlock logs -f` follow it)"
        );
        return Ok(ExitCode::from(EXIT_REFUSED));
    }
    // What only a local run can do is refused, not dropped: a flag that
    // silently did nothing (or, for --print-spec, created a sandbox) would
    // mislead the caller.
    const THIS_PROCESS: &str = "it concerns this process, not the daemon's sandbox";
    let local_only = [
        (
            a.print_spec,
            "--print-spec",
            "the daemon resolves the spec; run without --host to print it",
        ),
        (
            a.report.is_some(),
            "--report",
            "the daemon keeps the exit; `airlock wait` and `airlock inspect` give it",
        ),
        (
            a.store.is_some(),
            "--store",
            "the daemon uses the store of its configuration",
        ),
        (
            a.cgroup_parent.is_some(),
            "--cgroup-parent",
            "the daemon makes cgroups under its configuration's cgroup_parent",
        ),
        (
            a.verbose,
            "--verbose",
            "the setup trace is the runner's, beside the daemon",
        ),
        // bubblewrap's fds are this process's, which the daemon's runner
        // never holds; --die-with-parent names a parent the daemon is not.
        (a.bwrap.info_fd.is_some(), "--info-fd", THIS_PROCESS),
        (
            a.bwrap.json_status_fd.is_some(),
            "--json-status-fd",
            THIS_PROCESS,
        ),
        (a.bwrap.sync_fd.is_some(), "--sync-fd", THIS_PROCESS),
        (a.bwrap.block_fd.is_some(), "--block-fd", THIS_PROCESS),
        (a.bwrap.die_with_parent, "--die-with-parent", THIS_PROCESS),
    ];
    if let Some((_, flag, why)) = local_only.iter().find(|(given, ..)| *given) {
        eprintln!("airlock: error: {flag} is not available with --host: {why}");
        return Ok(ExitCode::from(EXIT_REFUSED));
    }
    let (mut spec, labels) = match build_spec_labeled(&a, m) {
        // An image's mounts go before the flags' ones where the daemon
        // applies it, by a count only the daemon knows: its findings then
        // keep the spec's indices.
        Ok((s, labels)) if a.image.is_none() => (s, labels),
        Ok((s, _)) => (s, Labels::default()),
        Err(e) => {
            eprintln!("airlock: error: {e}");
            return Ok(ExitCode::from(EXIT_REFUSED));
        }
    };
    // The workload inherits this process's environment, as it does
    // locally: the daemon has none of the caller's to give, so it is sent.
    // Not with an image, whose workload gets the image's, as locally.
    // Made as locally (`plan::environment`): its PWD names the working
    // directory in the sandbox, not this process's.
    let p = &mut spec.process;
    if p.inherit_env && a.image.is_none() {
        let ours: Vec<(String, String)> = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect();
        p.env = airlock::plan::environment(p, &ours).into_iter().collect();
        p.inherit_env = false;
    }
    let made = c
        .create(proto::CreateRequest {
            name: a.name.clone().unwrap_or_default(),
            spec: spec.to_json_pretty(),
            format: proto::SpecFormat::Json as i32,
            image: a.image.as_deref().map(image_path).unwrap_or_default(),
            start: !hold,
            stdin: a.interactive,
            tty: a.tty,
            remove_on_exit: a.rm,
            ..Default::default()
        })
        .await;
    let made = match made {
        Ok(made) => made,
        Err(e) => return Ok(fail_labeled(e, &labels)),
    };
    if !a.quiet {
        for note in &made.notes {
            eprintln!("airlock: image: {note}");
        }
    }
    // A finding that refuses comes back as an error status instead.
    for f in made.findings.iter().filter(|_| !a.quiet) {
        print_finding(f, &labels);
    }
    match made.sandbox {
        Some(sb) if !sb.id.is_empty() => Ok(say(&sb.id)),
        _ => {
            eprintln!("airlock: error: the daemon answered without the sandbox it made");
            Ok(ExitCode::from(EXIT_REFUSED))
        }
    }
}

fn state_name(s: i32) -> &'static str {
    match proto::State::try_from(s) {
        Ok(proto::State::Creating) => "creating",
        Ok(proto::State::Created) => "created",
        Ok(proto::State::Running) => "running",
        Ok(proto::State::Stopped) => "stopped",
        _ => "unknown",
    }
}

fn exit_json(e: &proto::ExitStatus) -> serde_json::Value {
    serde_json::json!({
        "code": e.code,
        "signal": e.signal,
        "oom_killed": e.oom_killed,
        "timed_out": e.timed_out,
        "reason": e.reason,
        "report": serde_json::from_str::<serde_json::Value>(&e.report_json).unwrap_or_default(),
    })
}

fn info_json(i: &proto::SandboxInfo) -> serde_json::Value {
    serde_json::json!({
        "id": i.id,
        "name": i.name,
        "status": state_name(i.state),
        "labels": i.labels,
        "pid": i.pid,
        "supervisor_pid": i.supervisor_pid,
        "owner": i.owner,
        "created": i.created,
        "started": i.started,
        "finished": i.finished,
        "pids": i.pids,
        "tty": i.tty,
        "stdin": i.stdin,
        "exit": i.exit.as_ref().map(exit_json),
        "spec": serde_json::from_str::<serde_json::Value>(&i.spec_json).ok(),
    })
}

async fn ps(c: &mut Client, a: PsArgs) -> Result<ExitCode, ClientError> {
    let mut req = proto::ListRequest::default();
    if !a.all {
        req.states = vec![
            proto::State::Creating as i32,
            proto::State::Created as i32,
            proto::State::Running as i32,
        ];
    }
    let list = c.list(req).await?;
    if a.format == "json" {
        let all: Vec<_> = list.iter().map(info_json).collect();
        out::line(serde_json::to_string_pretty(&all).expect("json"));
        return Ok(ExitCode::SUCCESS);
    }
    let rows = list
        .into_iter()
        .map(|i| {
            let status = match &i.exit {
                Some(e) if !e.reason.is_empty() && e.report_json.is_empty() => {
                    format!("stopped ({})", e.reason)
                }
                Some(e) => format!("exited ({})", e.code),
                None => state_name(i.state).to_string(),
            };
            let pid = if i.pid > 0 {
                i.pid.to_string()
            } else {
                "-".into()
            };
            [
                short_id(&i.id),
                i.name,
                status,
                pid,
                crate::lifecycle_cmd::ago(i.created),
                i.args.join(" "),
            ]
        })
        .collect();
    crate::lifecycle_cmd::print_ps_table(rows);
    Ok(ExitCode::SUCCESS)
}

async fn logs(c: &mut Client, a: LogsArgs) -> Result<ExitCode, ClientError> {
    let req = proto::LogsRequest {
        sandbox: a.name.clone(),
        tail: a.tail.map(|t| t.min(u32::MAX as usize) as u32),
        follow: a.follow,
    };
    let mut s = c.raw().logs(req).await?.into_inner();
    let stdout = Stdout::start();
    while let Some(chunk) = s.message().await? {
        if chunk.stream == proto::Stream::Stderr as i32 {
            let _ = std::io::stderr().write_all(&chunk.data);
        } else if !stdout.write(chunk.data).await {
            return Ok(ExitCode::from(out::EXIT_PIPE));
        }
    }
    Ok(stdout.finish(ExitCode::SUCCESS))
}

/// `--image`, as the daemon is to find it: a relative path to an image
/// (where local parsing takes it for one) is ours, as a bind's source
/// is, made absolute here; the daemon would look in its own working
/// directory, and might find another image there. A name in the store
/// goes as it is.
fn image_path(image: &str) -> String {
    match airlock::image::parse_ref(image).0 {
        p if p.is_relative() && p.exists() => crate::run::absolute_source(image),
        _ => image.to_string(),
    }
}

/// An age (`30s`, `10m`, `2h`, `1d`) or seconds since the epoch.
fn since(s: &str) -> Option<f64> {
    let unit = |u: char| match u {
        's' => Some(1.0),
        'm' => Some(60.0),
        'h' => Some(3600.0),
        'd' => Some(86400.0),
        _ => None,
    };
    let last = s.chars().last()?;
    match unit(last) {
        Some(mult) => {
            let n: f64 = s[..s.len() - 1].parse().ok()?;
            Some(airlock::state::now() - n * mult)
        }
        None => s.parse().ok(),
    }
}

fn kind_name(k: i32) -> &'static str {
    match proto::EventKind::try_from(k) {
        Ok(proto::EventKind::Created) => "created",
        Ok(proto::EventKind::Started) => "started",
        Ok(proto::EventKind::Exited) => "exited",
        Ok(proto::EventKind::Oom) => "oom",
        Ok(proto::EventKind::Deleted) => "deleted",
        _ => "unknown",
    }
}

async fn events(c: &mut Client, a: EventsArgs) -> Result<ExitCode, ClientError> {
    let since = match a.since.as_deref().map(|s| (s, since(s))) {
        // 0 (or before it) is every event kept, which 0 itself does not
        // ask of the daemon (see below).
        Some((_, Some(t))) => t.max(f64::MIN_POSITIVE),
        Some((s, None)) => {
            eprintln!("airlock: error: --since {s:?}: expected an age such as 10m, or seconds since the epoch");
            return Ok(ExitCode::from(EXIT_REFUSED));
        }
        // The daemon replays nothing for 0: all it keeps, for a list that
        // would otherwise always be empty.
        None if a.no_follow => f64::MIN_POSITIVE,
        None => 0.0,
    };
    let req = proto::EventsRequest {
        since,
        sandbox: a.sandbox.unwrap_or_default(),
        no_follow: a.no_follow,
    };
    let mut s = c.raw().events(req).await?.into_inner();
    let stdout = Stdout::start();
    while let Some(e) = s.message().await? {
        let kind = kind_name(e.kind);
        let line = if a.format == "json" {
            let v = serde_json::json!({
                "time": e.time, "kind": kind, "id": e.id, "name": e.name,
                "exit": e.exit.as_ref().map(exit_json),
            });
            format!("{v}\n")
        } else {
            let code = e
                .exit
                .map(|x| format!(" (exit {})", x.code))
                .unwrap_or_default();
            format!(
                "{:.3}  {kind:<8} {}  {}{code}\n",
                e.time,
                short_id(&e.id),
                airlock::report::plain(&e.name)
            )
        };
        if !stdout.write(line.into_bytes()).await {
            return Ok(ExitCode::from(out::EXIT_PIPE));
        }
    }
    Ok(stdout.finish(ExitCode::SUCCESS))
}

fn stats_json(s: &proto::StatsResponse) -> serde_json::Value {
    serde_json::json!({
        "memory_bytes": s.memory_bytes, "memory_limit": s.memory_limit,
        "memory_peak": s.memory_peak, "cpu_usec": s.cpu_usec,
        "pids": s.pids, "pids_limit": s.pids_limit,
        "io_read_bytes": s.io_read_bytes, "io_write_bytes": s.io_write_bytes,
        "oom_kills": s.oom_kills, "cgroup": s.cgroup,
    })
}

/// Print stats (from the daemon, or read locally) as text or JSON. A
/// sandbox without cgroups has nothing measured: the text says so
/// instead of showing zeros.
pub fn print_stats(format: &str, v: &serde_json::Value) {
    if format == "json" {
        out::line(serde_json::to_string_pretty(v).expect("json"));
        return;
    }
    if v["cgroup"] == false {
        out::line(
            "no cgroup, so nothing is measured (start it with a limit: --memory, --pids, --cpus)",
        );
        return;
    }
    if let Some(map) = v.as_object() {
        for (k, val) in map {
            out::line(format_args!("{k:<16} {val}"));
        }
    }
}

/// Our stdin as messages, then `close` at its end. With `detach`, what is
/// typed goes through the detach keys (Ctrl-P Ctrl-Q), whose sequence
/// ends the input and is told on `detach` instead of being sent.
fn stdin_messages<T: Send + 'static>(
    data: fn(Vec<u8>) -> T,
    close: Option<T>,
    detach: Option<tokio::sync::oneshot::Sender<()>>,
) -> tokio::sync::mpsc::Receiver<T> {
    let (tx, rx) = tokio::sync::mpsc::channel(8);
    std::thread::spawn(move || {
        let mut keys = detach
            .is_some()
            .then(crate::attach_cmd::DetachKeys::default);
        let mut buf = vec![0u8; 32 << 10];
        let mut stdin = std::io::stdin().lock();
        loop {
            match std::io::Read::read(&mut stdin, &mut buf) {
                Ok(0) | Err(_) => {
                    // A Ctrl-P held back that no key followed is the user's.
                    let held = keys.as_ref().map_or(&[][..], |k| k.held());
                    if !held.is_empty() && tx.blocking_send(data(held.to_vec())).is_err() {
                        return;
                    }
                    break;
                }
                Ok(n) => {
                    let mut pass = Vec::with_capacity(n);
                    let detached = match keys.as_mut() {
                        Some(k) => k.feed(&buf[..n], &mut pass),
                        None => {
                            pass.extend_from_slice(&buf[..n]);
                            false
                        }
                    };
                    if !pass.is_empty() && tx.blocking_send(data(pass)).is_err() {
                        return;
                    }
                    if detached {
                        if let Some(d) = detach {
                            let _ = d.send(());
                        }
                        return;
                    }
                }
            }
        }
        if let Some(c) = close {
            let _ = tx.blocking_send(c);
        }
    });
    rx
}

fn our_size() -> Option<proto::Resize> {
    airlock::terminal::size().map(|(rows, cols)| proto::Resize {
        rows: rows.into(),
        cols: cols.into(),
    })
}

/// Whether `e` is the daemon's 137 for a sandbox that ended without a
/// report (its supervisor was killed), which is not the workload's, as
/// `ps` shows it: then the reason alone is told, as locally (the caller
/// exits 125).
fn unreported(name: &str, e: &proto::ExitStatus) -> bool {
    let unreported = e.report_json.is_empty() && !e.reason.is_empty();
    if unreported {
        eprintln!("airlock: error: sandbox {name} stopped ({})", e.reason);
    }
    unreported
}

/// Print output messages until the exit; the exit code: the process's,
/// [`out::EXIT_PIPE`] once our stdout is closed (the stream is dropped, and
/// the daemon stops the process), or an error when the stream ended
/// without one (never a made-up 0).
async fn print_output(
    name: &str,
    mut s: tonic::Streaming<proto::ExecOutput>,
) -> Result<i32, ClientError> {
    use proto::exec_output::Output;
    let mut code = None;
    let stdout = Stdout::start();
    while let Some(m) = s.message().await? {
        let read = match m.output {
            Some(Output::Stdout(b)) => stdout.write(b).await,
            Some(Output::Stderr(b)) => {
                let _ = std::io::stderr().write_all(&b);
                true
            }
            Some(Output::Exit(e)) if unreported(name, &e) => {
                code = Some(EXIT_REFUSED.into());
                true
            }
            Some(Output::Exit(e)) => {
                code = Some(e.code);
                true
            }
            None => true,
        };
        if !read {
            return Ok(out::EXIT_PIPE.into());
        }
    }
    let code = code.ok_or(ClientError::NoExitStatus)?;
    Ok(stdout.finish(code))
}

/// Our stdout for a stream's output, written by a thread of its own: a
/// blocking write from the runtime's one thread, to a reader that stalls
/// (`| less`), would keep the connection from reading the daemon's
/// frames, its ping replies among them, and the client's keep-alive
/// would end a healthy call.
///
/// Dropped without [`Stdout::finish`] (a stream that ended in an error,
/// as an attach to a `--rm` sandbox ends once it is removed), it still
/// writes what was queued before: local verbs print each piece as it
/// comes, before any error is told.
struct Stdout {
    tx: Option<tokio::sync::mpsc::Sender<Vec<u8>>>,
    /// Ends true when our stdout closed under it.
    writer: Option<std::thread::JoinHandle<bool>>,
}

impl Stdout {
    fn start() -> Stdout {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(8);
        let writer = std::thread::spawn(move || {
            while let Some(b) = rx.blocking_recv() {
                if !out::bytes(&b) {
                    return true;
                }
            }
            false
        });
        Stdout {
            tx: Some(tx),
            writer: Some(writer),
        }
    }

    /// Queue `b`; false once no one reads our stdout any more.
    async fn write(&self, b: Vec<u8>) -> bool {
        match &self.tx {
            Some(tx) => tx.send(b).await.is_ok(),
            None => false,
        }
    }

    /// Whether our stdout closed, once all that was queued is written.
    fn written(&mut self) -> bool {
        drop(self.tx.take());
        matches!(self.writer.take().map(|w| w.join()), Some(Ok(true)))
    }

    /// `code` once all that was queued is written, or [`out::EXIT_PIPE`]
    /// if our stdout closed meanwhile.
    fn finish<C: From<u8>>(mut self, code: C) -> C {
        match self.written() {
            true => out::EXIT_PIPE.into(),
            false => code,
        }
    }
}

impl Drop for Stdout {
    fn drop(&mut self) {
        self.written();
    }
}

/// An id's first twelve characters, as `ps` shows it (by characters: the
/// daemon's answer is not ours to trust to be ASCII).
fn short_id(id: &str) -> String {
    id.chars().take(12).collect()
}

/// Our terminal's window changes, listened for from now: taken before our
/// size is first read, so that a change in between is not missed.
fn window_changes() -> Option<tokio::signal::unix::Signal> {
    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change()).ok()
}

/// Window changes of our terminal, as resize messages.
fn resizes<T: Send + 'static>(
    winch: Option<tokio::signal::unix::Signal>,
    wrap: fn(proto::Resize) -> T,
    tx: tokio::sync::mpsc::Sender<T>,
) {
    let Some(mut winch) = winch else {
        return;
    };
    tokio::spawn(async move {
        while winch.recv().await.is_some() {
            if let Some(size) = our_size() {
                if tx.send(wrap(size)).await.is_err() {
                    return;
                }
            }
        }
    });
}

fn exec_in(i: proto::exec_input::Input) -> proto::ExecInput {
    proto::ExecInput { input: Some(i) }
}

fn attach_in(i: proto::attach_input::Input) -> proto::AttachInput {
    proto::AttachInput { input: Some(i) }
}

async fn exec(c: &mut Client, a: ExecArgs) -> ExitCode {
    use proto::exec_input::Input;
    if a.verbose {
        eprintln!("airlock: error: --verbose is not available with --host: the setup trace is the runner's, beside the daemon");
        return ExitCode::from(EXIT_REFUSED);
    }
    let (uid, gid) = match a.user.as_deref().map(crate::lifecycle_cmd::parse_user) {
        None => (None, None),
        Some(Some((u, g))) => (Some(u), g),
        Some(None) => {
            eprintln!("airlock: error: --user: expected UID[:GID], numbers");
            return ExitCode::from(EXIT_REFUSED);
        }
    };
    let mut env = std::collections::HashMap::new();
    for kv in &a.env {
        let Some((k, v)) = kv.split_once('=') else {
            eprintln!("airlock: error: --env {kv:?}: expected KEY=VALUE");
            return ExitCode::from(EXIT_REFUSED);
        };
        env.insert(k.to_string(), v.to_string());
    }
    let winch = a.tty.then(window_changes).flatten();
    let start = proto::ExecStart {
        sandbox: a.name.clone(),
        args: a.command.clone(),
        env,
        cwd: a.workdir.clone().unwrap_or_default(),
        uid,
        gid,
        tty: a.tty,
        size: if a.tty { our_size() } else { None },
    };
    let (tx, rx) = tokio::sync::mpsc::channel(8);
    let _ = tx.send(exec_in(Input::Start(start))).await;
    let input = match a.no_stdin {
        // Nothing of ours is read: the process's stdin ends at once.
        true => {
            let _ = tx.send(exec_in(Input::CloseStdin(true))).await;
            tokio::sync::mpsc::channel(1).1
        }
        false => stdin_messages(
            |b| exec_in(Input::Stdin(b)),
            Some(exec_in(Input::CloseStdin(true))),
            None,
        ),
    };
    if a.tty {
        resizes(winch, |r| exec_in(Input::Resize(r)), tx.clone());
    } else {
        pass_signals_on(tx.clone());
    }
    let call = c
        .raw()
        .exec(tokio_stream::wrappers::ReceiverStream::new(rx));
    converse(&a.name, input, tx, a.tty, call, None).await
}

/// Our stdin to the stream (through `tx`), the stream's output to our
/// stdout and stderr, our terminal raw meanwhile with `tty`; the exit
/// status the stream ends with, or 0 once `detached` says the detach keys
/// were typed.
async fn converse<I: Send + 'static>(
    name: &str,
    mut input: tokio::sync::mpsc::Receiver<I>,
    tx: tokio::sync::mpsc::Sender<I>,
    tty: bool,
    call: impl std::future::Future<
        Output = Result<tonic::Response<tonic::Streaming<proto::ExecOutput>>, tonic::Status>,
    >,
    detached: Option<tokio::sync::oneshot::Receiver<()>>,
) -> ExitCode {
    tokio::spawn(async move {
        while let Some(m) = input.recv().await {
            if tx.send(m).await.is_err() {
                return;
            }
        }
    });
    let raw = tty.then(airlock::terminal::RawMode::enter).flatten();
    let detached = async move {
        // A sender dropped without a word (stdin ended) is no detach.
        let said = match detached {
            Some(d) => d.await.is_ok(),
            None => false,
        };
        if !said {
            std::future::pending::<()>().await;
        }
    };
    // With our terminal raw, a TERM, HUP, QUIT or INT sent to us ends the
    // call here, so the terminal is restored first (their default action
    // would leave it raw); we then end by that signal, as a local attach
    // does. Without, their default actions stay.
    let catch = raw.is_some();
    let signalled = async move {
        match catch {
            true => ending_signal().await,
            false => std::future::pending().await,
        }
    };
    let r = tokio::select! {
        r = async {
            match call.await {
                Ok(s) => tokio::select! {
                    r = print_output(name, s.into_inner()) => r,
                    () = detached => Ok(0),
                },
                Err(e) => Err(e.into()),
            }
        } => r,
        sig = signalled => {
            drop(raw);
            return crate::attach_cmd::end_by(sig);
        }
    };
    drop(raw);
    match r {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Err(e) => fail(e),
    }
}

/// The signals we are sent, passed on to the exec'd process as a local
/// `airlock exec` passes them on (its trap runs, and its own status comes
/// back), instead of ending us, and with us the call, whose end the
/// daemon takes for the client gone and stops the process. (With a
/// terminal, a signal ends the call instead, once the terminal is given
/// back: see `converse`.)
fn pass_signals_on(tx: tokio::sync::mpsc::Sender<proto::ExecInput>) {
    use proto::exec_input::Input;
    use tokio::signal::unix::{signal, SignalKind};
    for sig in airlock::signals::forwarded().filter(|s| *s != libc::SIGWINCH) {
        let Ok(mut caught) = signal(SignalKind::from_raw(sig)) else {
            continue;
        };
        let tx = tx.clone();
        let ending = crate::attach_cmd::ENDING.contains(&sig);
        tokio::spawn(async move {
            while caught.recv().await.is_some() {
                let sent = tx.send(exec_in(Input::Signal(sig)));
                if !ending {
                    if sent.await.is_err() {
                        return;
                    }
                    continue;
                }
                match tokio::time::timeout(SIGNAL_QUEUED, sent).await {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => return,
                    // An ending signal (INT, TERM, HUP, QUIT) queued behind
                    // input the process does not read (the daemon feeds it
                    // in order, and the stream holds the rest) would wait
                    // as long: Ctrl-C did nothing. The call ends instead,
                    // which the daemon takes for the client gone and stops
                    // the process, as the signal's default action would.
                    Err(_) => {
                        eprintln!(
                            "airlock: exec: signal {sig} could not be passed on within {} s, behind input the process has not taken; ending the exec",
                            SIGNAL_QUEUED.as_secs()
                        );
                        std::process::exit(128 + sig);
                    }
                }
            }
        });
    }
}

/// How long an ending signal may wait behind the exec's input before the
/// exec is ended instead (see `pass_signals_on`).
const SIGNAL_QUEUED: std::time::Duration = std::time::Duration::from_secs(1);

/// The first of TERM, HUP, QUIT and INT delivered to us, by number; never,
/// when none can be caught. One our caller ignores stays ignored.
async fn ending_signal() -> i32 {
    use tokio::signal::unix::{signal, SignalKind};
    let (tx, mut rx) = tokio::sync::mpsc::channel(1);
    for sig in crate::attach_cmd::ENDING {
        if crate::attach_cmd::ignored(sig) {
            continue;
        }
        let Ok(mut caught) = signal(SignalKind::from_raw(sig)) else {
            continue;
        };
        let tx = tx.clone();
        tokio::spawn(async move {
            if caught.recv().await.is_some() {
                let _ = tx.send(sig).await;
            }
        });
    }
    drop(tx);
    match rx.recv().await {
        Some(sig) => sig,
        None => std::future::pending().await,
    }
}

async fn attach(c: &mut Client, name: &str) -> ExitCode {
    use proto::attach_input::Input;
    let info = match c.inspect(name).await {
        Ok(i) => i,
        Err(e) => return fail(e),
    };
    let (tx, rx) = tokio::sync::mpsc::channel(8);
    let _ = tx
        .send(attach_in(Input::Attach(proto::SandboxRef {
            sandbox: name.into(),
        })))
        .await;
    if info.tty {
        let winch = window_changes();
        if let Some(size) = our_size() {
            let _ = tx.send(attach_in(Input::Resize(size))).await;
        }
        resizes(winch, |r| attach_in(Input::Resize(r)), tx.clone());
    }
    // With a terminal, Ctrl-P Ctrl-Q detaches, as it does locally.
    let (detach, detached) = match info.tty {
        true => {
            let (d, r) = tokio::sync::oneshot::channel();
            (Some(d), Some(r))
        }
        false => (None, None),
    };
    let input = stdin_messages(|b| attach_in(Input::Stdin(b)), None, detach);
    let call = c
        .raw()
        .attach(tokio_stream::wrappers::ReceiverStream::new(rx));
    converse(name, input, tx, info.tty, call, detached).await
}
