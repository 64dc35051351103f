//! The lifecycle verbs, named as podman users expect: `ps`, `inspect`,
//! `logs`, `start`, `stop`, `kill`, `wait`, `rm` and `exec` (and `attach`,
//! in [`crate::attach_cmd`]). Each is
//! argument handling over the library's state root ([`airlock::state`])
//! and [`Sandbox::exec`]. A sandbox is named by its name or a prefix of
//! its id.

use crate::out;
use crate::run::{fail, refuse};
use airlock::state::{LogChunk, LogStream};
use airlock::state::{SandboxDir, State, StateRoot, Status};
use airlock::{Context, Error, ExecOptions, Sandbox, SpawnOptions};
use clap::Args;
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Args)]
pub struct PsArgs {
    /// Show stopped sandboxes too.
    #[arg(short, long)]
    pub(crate) all: bool,
    /// `table` (default) or `json` (one array of states).
    #[arg(long, value_parser = ["table", "json"], default_value = "table")]
    pub(crate) format: String,
}

#[derive(Args)]
pub struct NameArgs {
    /// The sandbox's name or a prefix of its id.
    #[arg(value_name = "NAME")]
    pub(crate) name: String,
}

/// Print a detached sandbox's output.
///
/// What it wrote to stdout goes to stdout, to stderr to stderr (with a
/// terminal, all of it is on stdout). The logs keep the last 1 to 2 MiB
/// of each stream; `--follow`, outrun by more than that between two of its
/// reads, counts the log files it missed on stderr.
#[derive(Args)]
#[command(after_help = "Examples:\n  airlock logs web\n  airlock logs -f --tail 20 web")]
pub struct LogsArgs {
    /// Keep printing new output until the sandbox ends.
    #[arg(short, long)]
    pub(crate) follow: bool,
    /// Only the last N lines of each stream (stdout, stderr) first.
    #[arg(long, value_name = "N")]
    pub(crate) tail: Option<usize>,
    /// The sandbox's name or a prefix of its id.
    #[arg(value_name = "NAME")]
    pub(crate) name: String,
}

#[derive(Args)]
pub struct StopArgs {
    /// Seconds to wait after SIGTERM before the whole sandbox is killed
    /// [default: 10; with --host, the daemon's stop_grace].
    #[arg(short = 't', long = "time", value_name = "SECONDS")]
    pub(crate) time: Option<u64>,
    #[arg(value_name = "NAME", required = true)]
    pub(crate) names: Vec<String>,
}

#[derive(Args)]
pub struct KillArgs {
    #[arg(value_name = "NAME")]
    pub(crate) name: String,
    /// The signal (name, number, or RTMIN+N / RTMAX-N numbered as podman
    /// does: RTMIN is 34); SIGKILL, the default, kills every
    /// process of the sandbox. airlock's init passes every other one on to
    /// the workload but those it keeps (faults, SIGCHLD, job control's, 32
    /// to 34, 36), which are refused.
    #[arg(value_name = "SIGNAL")]
    pub(crate) signal: Option<String>,
    /// The signal, podman's spelling.
    #[arg(
        short,
        long = "signal",
        value_name = "SIGNAL",
        conflicts_with = "signal"
    )]
    pub(crate) signal_flag: Option<String>,
}

#[derive(Args)]
pub struct RmArgs {
    /// Kill a running sandbox first.
    #[arg(short, long)]
    pub(crate) force: bool,
    #[arg(value_name = "NAME", required = true)]
    pub(crate) names: Vec<String>,
}

/// Run a further program inside a running sandbox: it joins every
/// namespace and cgroup of the sandbox, and runs under the same seccomp
/// filter, Landlock rules and capability bounds as the workload.
#[derive(Args)]
#[command(
    after_help = "Example:\n  airlock run -d --name web -- python3 -m http.server\n  airlock exec web -- ps -ef"
)]
pub struct ExecArgs {
    /// Run as UID[:GID] inside the sandbox (default: the workload's).
    #[arg(short, long, value_name = "UID[:GID]")]
    pub(crate) user: Option<String>,
    /// Set an environment variable (on top of the workload's).
    #[arg(short, long, value_name = "KEY=VALUE", action = clap::ArgAction::Append)]
    pub(crate) env: Vec<String>,
    /// Working directory inside the sandbox (default: the workload's).
    #[arg(short, long, value_name = "DIR")]
    pub(crate) workdir: Option<String>,
    /// Give the process a new pseudo-terminal, proxied to yours.
    #[arg(short, long)]
    pub(crate) tty: bool,
    /// Give the process /dev/null as its stdin, not yours (as `ssh -n`):
    /// for a loop that reads its own input (`while read`), which an exec
    /// through --host would otherwise read ahead. An exec started as a
    /// background job (`&`) from a terminal gets /dev/null too (and keeps
    /// it after `fg`): reading the terminal would stop it.
    #[arg(short = 'n', long, conflicts_with = "tty")]
    pub(crate) no_stdin: bool,
    /// Taken for docker's `exec -i` (`-it`): your stdin is the process's
    /// already, unless -n.
    #[arg(short = 'i', long, conflicts_with = "no_stdin")]
    pub(crate) interactive: bool,
    /// Print a trace of the setup steps on stderr.
    #[arg(short, long)]
    pub(crate) verbose: bool,
    #[arg(value_name = "NAME")]
    pub(crate) name: String,
    /// The program and its arguments.
    #[arg(
        value_name = "PROGRAM",
        trailing_var_arg = true,
        allow_hyphen_values = true,
        required = true
    )]
    pub(crate) command: Vec<String>,
}

fn open(ctx: &Context) -> Result<StateRoot, Error> {
    Ok(StateRoot::open(&ctx.state_root)?)
}

pub(crate) fn find(ctx: &Context, name: &str) -> Result<(SandboxDir, State), Error> {
    Ok(open(ctx)?.find(name)?)
}

pub(crate) fn status_text(st: &State) -> String {
    match (st.status, &st.exit, &st.reason) {
        (Status::Stopped, _, Some(r)) if st.exit.is_none() => format!("stopped ({r})"),
        (Status::Stopped, Some(e), _) => format!("exited ({})", e.code),
        (s, _, _) => s.to_string(),
    }
}

pub(crate) fn ago(t: f64) -> String {
    let s = (airlock::state::now() - t).max(0.0) as u64;
    match s {
        0..=59 => format!("{s}s ago"),
        60..=3599 => format!("{}m ago", s / 60),
        3600..=86399 => format!("{}h ago", s / 3600),
        _ => format!("{}d ago", s / 86400),
    }
}

pub fn ps(a: PsArgs, ctx: Context) -> ExitCode {
    let root = match open(&ctx) {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    let list: Vec<State> = root
        .list()
        .into_iter()
        .map(|(_, st)| st)
        .filter(|st| a.all || st.status != Status::Stopped)
        .collect();
    if a.format == "json" {
        let list: Vec<State> = list.iter().map(as_shown).collect();
        out::line(shown(serde_json::to_value(&list)));
        return ExitCode::SUCCESS;
    }
    let rows = list
        .iter()
        .map(|st| {
            let pid = match (st.status, st.pid) {
                (Status::Running | Status::Created, Some(p)) => p.to_string(),
                _ => "-".into(),
            };
            let command = st
                .spec
                .args()
                .map(|a| a.join(" "))
                .unwrap_or_else(|e| e.to_string());
            [
                st.id[..12].to_string(),
                st.name.clone(),
                status_text(st),
                pid,
                ago(st.created),
                command,
            ]
        })
        .collect();
    print_ps_table(rows);
    ExitCode::SUCCESS
}

/// `ps`'s table, local or through a daemon: each column as wide as its
/// widest cell (a long name or a stopped sandbox's reason would push the
/// rest out of line), the last one (the command) as it is.
pub(crate) fn print_ps_table(rows: Vec<[String; 6]>) {
    const HEAD: [&str; 6] = ["ID", "NAME", "STATUS", "PID", "CREATED", "COMMAND"];
    // A command's arguments are its owner's to choose, and root's table
    // (through a daemon) shows every user's: control characters are
    // shown escaped, as ps(1) does, never sent to the terminal, where
    // they could erase and forge rows.
    let rows: Vec<[String; 6]> = rows
        .into_iter()
        .map(|row| row.map(|cell| airlock::report::plain(&cell)))
        .collect();
    let mut width = HEAD.map(str::len);
    for row in &rows {
        for (w, cell) in width.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let print = |cells: [&str; 6]| {
        let mut line = String::new();
        for (i, cell) in cells.iter().enumerate() {
            let w = width[i];
            match i {
                5 => line.push_str(cell),
                3 => line.push_str(&format!("{cell:>w$}  ")),
                _ => line.push_str(&format!("{cell:<w$}  ")),
            }
        }
        out::line(line.trim_end());
    };
    print(HEAD);
    for row in &rows {
        print(row.each_ref().map(String::as_str));
    }
}

/// States as indented JSON, their recorded specs too (a recorded spec
/// is written as it was kept, on one line, unless parsed first).
fn shown(states: serde_json::Result<serde_json::Value>) -> String {
    serde_json::to_string_pretty(&states.expect("states serialize")).expect("values serialize")
}

/// A state as `inspect` and `ps` show it: a stopped sandbox's host pids
/// are left out, as the daemon and the runtime give 0 for them. They
/// may name another process by now, and a `kill $(... .pid)` must not
/// reach it. (The state file keeps them: the supervisor's is waited for
/// after the stop is recorded.)
fn as_shown(st: &State) -> State {
    let mut st = st.clone();
    if st.status == Status::Stopped {
        st.pid = None;
        st.supervisor_pid = None;
    }
    st
}

pub fn inspect(a: NameArgs, ctx: Context) -> ExitCode {
    match find(&ctx, &a.name) {
        Ok((_, st)) => {
            out::line(shown(serde_json::to_value(as_shown(&st))));
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

/// Write log chunks to our stdout and stderr, as they came. Only stdout's
/// failure is returned: a stderr closed or full loses that stream alone.
/// Log files rotated away before we read them (a burst faster than our
/// polls) are counted on stderr where their output is missing.
pub(crate) fn print_chunks(chunks: Vec<LogChunk>) -> std::io::Result<()> {
    for c in chunks {
        if c.lost_files > 0 {
            eprintln!(
                "airlock: warning: {} {} log file(s) were rotated away before they were read: \
                 their output is lost",
                c.lost_files,
                c.stream.name()
            );
        }
        match c.stream {
            LogStream::Stdout => {
                let mut out = std::io::stdout().lock();
                out.write_all(&c.data)?;
                out.flush()?;
            }
            LogStream::Stderr => {
                let _ = std::io::stderr().lock().write_all(&c.data);
            }
        }
    }
    Ok(())
}

pub fn logs(a: LogsArgs, ctx: Context) -> ExitCode {
    let (sb, st) = match find(&ctx, &a.name) {
        Ok(x) => x,
        Err(e) => return fail(e),
    };
    if !st.detached {
        return refuse(format!(
            "sandbox {} was not detached: its output went to the terminal that ran it",
            st.name
        ));
    }
    let mut reader = sb.log_reader(a.tail);
    loop {
        let ended = !a.follow || !sb.alive();
        if let Err(e) = print_chunks(reader.read_new()) {
            // A closed pipe ends us by SIGPIPE (`logs -f | head`), unless
            // our caller blocked it: then as if it had.
            return out::write_failed("logs: write to stdout", e);
        }
        if ended {
            return ExitCode::SUCCESS;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn start(a: NameArgs, ctx: Context) -> ExitCode {
    match find(&ctx, &a.name).and_then(|(sb, st)| Ok(sb.start().map(|()| st.name)?)) {
        Ok(name) => {
            out::line(name);
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

pub fn stop(a: StopArgs, ctx: Context) -> ExitCode {
    let (mut code, mut listed) = (ExitCode::SUCCESS, out::Listed::default());
    for name in &a.names {
        let r = find(&ctx, name)
            .and_then(|(sb, _)| Ok(sb.stop(Duration::from_secs(a.time.unwrap_or(10)))?));
        match r {
            Ok(_) => listed.line(name),
            Err(e) => code = fail(e),
        }
    }
    listed.code(code)
}

pub fn kill(a: KillArgs, ctx: Context) -> ExitCode {
    // runc's order, NAME [SIGNAL], where docker and podman take NAME...:
    // `kill web db` failed on an unknown signal "db". A second word that
    // is no signal but names a sandbox, or that is the very name of one
    // (`kill web 15` beside a sandbox named 15), is refused; one that is
    // a signal and only begins some sandbox's id (ids are hex: `9`, `15`)
    // is the signal, as runc takes it.
    if let Some(text) = &a.signal {
        let named = match airlock::state::parse_signal(text) {
            Some(_) => open(&ctx).is_ok_and(|root| root.indexed(text).is_some()),
            None => find(&ctx, text).is_ok(),
        };
        if named {
            return refuse(format!(
                "{text:?} names a sandbox: airlock kill takes one NAME, then the signal (give it with -s SIGNAL)"
            ));
        }
    }
    let sig_text = a.signal.or(a.signal_flag).unwrap_or_else(|| "KILL".into());
    let Some(sig) = airlock::state::parse_signal(&sig_text) else {
        return refuse(format!("unknown signal {sig_text:?}"));
    };
    match find(&ctx, &a.name).and_then(|(sb, _)| Ok(sb.signal(sig)?)) {
        Ok(()) => {
            out::line(a.name);
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

pub fn wait(a: NameArgs, ctx: Context) -> ExitCode {
    let (sb, before) = match find(&ctx, &a.name) {
        Ok(x) => x,
        Err(e) => return fail(e),
    };
    sb.wait_ended(None);
    match sb.state_or_end() {
        Ok(st) => match st.exit {
            Some(e) => {
                out::line(e.code);
                ExitCode::from(e.code.clamp(0, 255) as u8)
            }
            None => refuse(format!("sandbox {} {}", st.name, status_text(&st))),
        },
        // `rm -f` took it away as it ended, as attach says (`run -d --rm`
        // keeps its end for a while).
        Err(_) if !sb.dir.exists() => refuse(format!(
            "sandbox {} ended and was removed: its exit status is gone",
            before.name
        )),
        Err(e) => fail(e.into()),
    }
}

pub fn rm(a: RmArgs, ctx: Context) -> ExitCode {
    let (mut code, mut listed) = (ExitCode::SUCCESS, out::Listed::default());
    for name in &a.names {
        match find(&ctx, name).and_then(|(sb, _)| Ok(sb.delete(a.force)?)) {
            Ok(_) => listed.line(name),
            Err(e) => code = fail(e),
        }
    }
    listed.code(code)
}

pub(crate) fn parse_user(u: &str) -> Option<(u32, Option<u32>)> {
    match u.split_once(':') {
        Some((a, b)) => Some((a.parse().ok()?, Some(b.parse().ok()?))),
        None => Some((u.parse().ok()?, None)),
    }
}

pub fn exec(a: ExecArgs, ctx: Context) -> ExitCode {
    let (sb, _) = match find(&ctx, &a.name) {
        Ok(x) => x,
        Err(e) => return fail(e),
    };
    let mut opts = ExecOptions {
        args: a.command.clone(),
        cwd: a.workdir.clone(),
        tty: a.tty,
        // This thread waits for it (the copying threads start after).
        die_with_caller: true,
        ..Default::default()
    };
    // Each flag judged here by the library's rules, so that its error
    // names the flag (the library's would name its own field).
    let judged = |flag: &str, r: Result<(), airlock::spec::SpecError>| {
        r.map_err(|e| refuse(format!("{flag}: {}", e.reason)))
    };
    if let Some(w) = &a.workdir {
        if let Err(code) = judged(
            &format!("--workdir {w:?}"),
            airlock::spec::validate::cwd("", w),
        ) {
            return code;
        }
    }
    if let Some(u) = &a.user {
        let Some((uid, gid)) = parse_user(u) else {
            return refuse(format!("--user {u:?}: expected UID[:GID], numbers"));
        };
        for id in std::iter::once(uid).chain(gid) {
            if let Err(code) = judged(
                &format!("--user {u:?}"),
                airlock::spec::validate::id("", id),
            ) {
                return code;
            }
        }
        opts.uid = Some(uid);
        opts.gid = gid;
    }
    for kv in &a.env {
        let Some((k, v)) = kv.split_once('=') else {
            return refuse(format!("--env {kv:?}: expected KEY=VALUE"));
        };
        if let Err(code) = judged(
            &format!("--env {kv:?}"),
            airlock::spec::validate::env_var("", k, v),
        ) {
            return code;
        }
        opts.env.push((k.into(), v.into()));
    }
    let relay = match a.tty {
        true => None,
        false => match TerminalRelay::new(a.no_stdin) {
            Ok(r) => r,
            Err(e) => return refuse(format!("exec: pipes for the terminal: {e}")),
        },
    };
    let spawn = SpawnOptions {
        runner: None,
        verbose: a.verbose,
        progress: Some(|step| eprintln!("airlock: {step}")),
        context: Some(ctx),
        lifecycle: None,
        stdio: relay.as_ref().map(|r| r.child.clone()),
        preserve_fds: 0,
    };
    // Raw before the exec'd process can write anything: its first lines
    // must not go through the caller's line discipline too (a second
    // carriage return before each newline).
    let raw = a.tty.then(airlock::terminal::RawMode::enter);
    Sandbox::hold_signals();
    let process = match Sandbox::exec(&sb, &opts, &spawn) {
        Ok(p) => p,
        Err(e) => {
            drop(raw);
            return fail(e);
        }
    };
    drop(spawn);
    let copying = relay.map(TerminalRelay::start);
    process.forward_signals(true);
    let r = process.wait();
    drop(raw);
    if let Some(c) = copying {
        c.finish();
    }
    match r {
        Ok(r) => ExitCode::from(r.code.clamp(0, 255) as u8),
        Err(e) => fail(e),
    }
}

/// Pipes in place of the caller's terminal for an exec without `-t`.
///
/// The exec'd process runs as the workload's uid; once its own exec has
/// made it traceable again, a workload outside Landlock's walls (off, or
/// a kernel without it) could open `/proc/PID/fd/0` and keep the caller's
/// terminal after the exec ended: read what is typed into the caller's
/// shell, write into it. Given pipes, it holds nothing of the terminal;
/// this process copies between them and the terminal until the exec
/// ends, as podman's conmon does.
struct TerminalRelay {
    /// The exec's stdin, stdout and stderr: a pipe end where ours is a
    /// terminal, a copy of ours otherwise.
    child: std::sync::Arc<[std::os::fd::OwnedFd; 3]>,
    /// Our ends of the pipes: what we copy to stdin, and what we copy
    /// from to stdout and stderr.
    ours: [Option<std::os::fd::OwnedFd>; 3],
}

/// The copies a [`TerminalRelay`] runs.
struct Copying {
    output: Vec<std::thread::JoinHandle<()>>,
}

impl TerminalRelay {
    /// None when none of our stdio is a terminal.
    /// `no_stdin`: the exec's stdin is /dev/null.
    fn new(no_stdin: bool) -> std::io::Result<Option<TerminalRelay>> {
        use std::os::fd::BorrowedFd;
        // SAFETY: fds 0-2 are open for the whole life of this process.
        let stdio = |n| unsafe { BorrowedFd::borrow_raw(n) };
        // A background job (`airlock exec ... &`) that read the terminal
        // would be stopped by the kernel (SIGTTIN), and its output with
        // it: its process gets no input, as with -n.
        let background =
            rustix::termios::tcgetpgrp(stdio(0)).is_ok_and(|fg| fg != rustix::process::getpgrp());
        let no_stdin = no_stdin || background;
        if !no_stdin && !(0..3).any(|n| rustix::termios::isatty(stdio(n))) {
            return Ok(None);
        }
        let mut child = Vec::new();
        let mut ours = [None, None, None];
        for n in 0..3 {
            let fd = stdio(n);
            if n == 0 && no_stdin {
                child.push(std::fs::File::open("/dev/null")?.into());
                continue;
            }
            if !rustix::termios::isatty(fd) {
                child.push(fd.try_clone_to_owned()?);
                continue;
            }
            let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
            let (theirs, mine) = if n == 0 { (r, w) } else { (w, r) };
            child.push(theirs);
            ours[n as usize] = Some(mine);
        }
        let child: [std::os::fd::OwnedFd; 3] = child.try_into().expect("three");
        Ok(Some(TerminalRelay {
            child: std::sync::Arc::new(child),
            ours,
        }))
    }

    /// Copy until the pipes end (the exec's end of stdin needs no wait).
    fn start(self) -> Copying {
        let [input, out, err] = self.ours;
        drop(self.child);
        if let Some(w) = input {
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::fs::File::from(w));
            });
        }
        let mut output = Vec::new();
        for (r, n) in [(out, 1), (err, 2)] {
            let Some(r) = r else { continue };
            output.push(std::thread::spawn(move || {
                // Written as it comes, not through std's stdout, which
                // holds a line back until its newline: a prompt
                // (`name? `) or a progress line (`\r`) did not show.
                // SAFETY: fds 1 and 2 are open for the whole life of this
                // process; the copy is our own.
                let to = unsafe { std::os::fd::BorrowedFd::borrow_raw(n) }.try_clone_to_owned();
                if let Ok(to) = to {
                    let _ =
                        std::io::copy(&mut std::fs::File::from(r), &mut std::fs::File::from(to));
                }
            }));
        }
        Copying { output }
    }
}

impl Copying {
    /// After the exec ended: what it wrote is passed on; a child it left
    /// holding the pipe open does not hold us for more than a moment.
    fn finish(self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        for t in self.output {
            while !t.is_finished() && std::time::Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        }
    }
}

/// `airlock stats` on this machine: the sandbox's cgroup counters.
pub fn stats(a: crate::remote::StatsArgs, ctx: Context) -> ExitCode {
    let (_, st) = match find(&ctx, &a.name) {
        Ok(x) => x,
        Err(e) => return fail(e),
    };
    let mut v = serde_json::to_value(st.stats()).expect("stats serialize");
    v["cgroup"] = st.cgroup.is_some().into();
    crate::remote::print_stats(&a.format, &v);
    ExitCode::SUCCESS
}
