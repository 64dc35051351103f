//! `airlock run`: bubblewrap-style flags turned into a spec ([`spec`]),
//! then the library's one launch path, start and wait. Mount flags apply
//! in the order given, as in bwrap.

mod args;
pub mod bwrap;
mod mounts;
mod spec;

pub use args::{duration_arg, RunArgs};
pub use mounts::{absolute_source, Labels};
pub use spec::{build_spec, build_spec_labeled};

use airlock::check::Finding;
use airlock::launch::{self, Prepared};
use airlock::spec::{Mount, SandboxSpec};
use airlock::{Context, Error, LifecycleOptions, Sandbox, SpawnOptions};
use clap::ArgMatches;
use std::process::ExitCode;

/// Exit status when airlock itself refuses or fails.
pub const EXIT_REFUSED: u8 = 125;

pub fn refuse(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("airlock: error: {}", shown(&msg.to_string()));
    ExitCode::from(EXIT_REFUSED)
}

/// What the supervisor does with a bubblewrap fd.
#[derive(Clone, Copy, PartialEq)]
enum FdUse {
    Write,
    Read,
    Hold,
}

/// A bubblewrap fd the supervisor can use: one of the caller's own above
/// stdio, open for what `how` needs, in a run this process attends.
fn status_fd(fd: i32, hold: bool, how: FdUse) -> Result<(), String> {
    if hold {
        return Err("used by the run that starts the sandbox; `airlock create` does not".into());
    }
    if fd < 3 {
        return Err("must be 3 or above (0 to 2 are the workload's stdio)".into());
    }
    // SAFETY: F_GETFD reads the flags of an fd we may not own, changing
    // nothing.
    let fd_flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    if fd_flags != -1 && fd_flags & libc::FD_CLOEXEC != 0 {
        // One of this process's own (they are all close-on-exec).
        return Err("not a file descriptor handed to airlock".into());
    }
    // SAFETY: F_GETFL reads the flags of an fd we may not own, changing
    // nothing.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags == -1 {
        return Err("not an open file descriptor".into());
    }
    match (how, flags & libc::O_ACCMODE) {
        (FdUse::Write, libc::O_RDONLY) => Err("open for reading only".into()),
        (FdUse::Read, libc::O_WRONLY) => Err("open for writing only".into()),
        _ => Ok(()),
    }
}

/// One line for an error of the library, with the exit status it gives.
pub fn fail(e: Error) -> ExitCode {
    eprintln!("airlock: error: {}", shown(&e.to_string()));
    ExitCode::from(e.exit_code())
}

/// An error's text as the terminal shows it: it may quote an image's
/// (a config's architecture, a layer's names), and their control
/// characters are escaped (`\u{1b}`), line by line, so that no escape
/// sequence of theirs reaches the terminal.
pub(crate) fn shown(text: &str) -> String {
    let lines: Vec<String> = text.split('\n').map(airlock::report::plain).collect();
    lines.join("\n")
}

/// `airlock run` (and `airlock create`, which holds the workload until
/// `airlock start`).
pub fn main(a: RunArgs, m: &ArgMatches, mut ctx: Context, hold: bool) -> ExitCode {
    // Before anything that takes time (an image to unpack): a parent that
    // dies meanwhile must not go unnoticed by --die-with-parent.
    let parent = rustix::process::getppid();
    if let Some(store) = &a.store {
        // Absolute, as the guardrails compare it with absolute binds.
        ctx.store = std::path::absolute(store).unwrap_or_else(|_| store.into());
    }
    if let Some(parent) = &a.cgroup_parent {
        match ctx.cgroup.under(parent) {
            Ok(layout) => ctx.cgroup = layout,
            Err(e) => return refuse(format!("--cgroup-parent: {e}")),
        }
    }
    let (spec, labels) = match build_spec_labeled(&a, m) {
        Ok(s) => s,
        Err(e) => return refuse(e),
    };
    // A large layer takes seconds to verify and unpack: say so where
    // someone is watching (a terminal) or asked (-v).
    if a.verbose || (!a.quiet && std::io::IsTerminal::is_terminal(&std::io::stderr())) {
        airlock::image::set_progress(|m| eprintln!("airlock: image: {m}"));
    }
    let out = Output {
        quiet: a.quiet,
        labels,
    };
    if a.print_spec {
        let mut left_out = not_in_a_spec(&a);
        // The global flag (the environment's AIRLOCK_STATE_ROOT goes with
        // the next run by itself): the state roots the guardrails keep
        // out of binds.
        if ctx.state_root != airlock::Context::current().state_root {
            left_out.push("--state-root");
        }
        if !left_out.is_empty() && !a.quiet {
            eprintln!(
                "airlock: note: {} {} not part of a spec: give {} again with --spec",
                left_out.join(", "),
                if left_out.len() == 1 { "is" } else { "are" },
                if left_out.len() == 1 { "it" } else { "them" },
            );
        }
        return print_spec(spec, a.image.as_deref(), &ctx, &out);
    }
    if let Some(path) = &a.report {
        // Only a run that waits for the end writes it; it was silently
        // never written with -d or by create.
        if a.detach || hold {
            return refuse(format!(
                "--report {path}: written by a run that waits for the sandbox's end; with {} use `airlock wait` or `airlock inspect`",
                if hold { "create" } else { "-d" }
            ));
        }
        if let Err(e) = check_report(std::path::Path::new(path)) {
            return refuse(format!("--report {path}: {e}"));
        }
    }
    let mut prepared = match prepare(&spec, a.image.as_deref(), &ctx, &out) {
        Ok(p) => p,
        Err(code) => return code,
    };
    // The runner that takes this process's place reports setup errors
    // itself: with the flags' names, as this process would.
    let offset = prepared.plan.spec.filesystem.mounts.len() - spec.filesystem.mounts.len();
    let runner_names = out
        .labels
        .runner_names(&prepared.plan.spec.filesystem.mounts[..offset]);
    prepared.plan.field_names = runner_names.clone();
    let given = [
        ("--info-fd", a.bwrap.info_fd, FdUse::Write),
        ("--json-status-fd", a.bwrap.json_status_fd, FdUse::Write),
        ("--sync-fd", a.bwrap.sync_fd, FdUse::Hold),
        ("--block-fd", a.bwrap.block_fd, FdUse::Read),
    ];
    for (i, (flag, fd, how)) in given.iter().enumerate() {
        let Some(fd) = fd else { continue };
        if let Some((other, _, _)) = given[..i].iter().find(|(_, f, _)| *f == Some(*fd)) {
            return refuse(format!(
                "{other} and {flag}: two file descriptors, not one ({fd} for both)"
            ));
        }
        if let Err(e) = status_fd(*fd, hold, *how) {
            return refuse(format!("{flag} {fd}: {e}"));
        }
    }
    prepared.plan.status_fds = airlock::plan::StatusFds {
        info: a.bwrap.info_fd,
        json_status: a.bwrap.json_status_fd,
        sync: a.bwrap.sync_fd,
        block: a.bwrap.block_fd,
    };
    if a.bwrap.die_with_parent && hold {
        return refuse(
            "--die-with-parent: `airlock create` leaves the sandbox to be started and managed; nothing of it stays with this process to die with its parent",
        );
    }
    if a.bwrap.die_with_parent {
        if let Err(e) = die_with_parent(parent) {
            return refuse(format!("--die-with-parent: {e}"));
        }
    }
    let detach = a.detach || hold;
    let lifecycle = (detach || a.name.is_some() || a.rm).then(|| LifecycleOptions {
        name: a.name.clone(),
        detach,
        stdin: a.interactive,
        hold,
        remove_on_exit: a.rm,
        // Detached, this process exits at once and leaves the supervisor
        // to its own reaper: the fork that would leave us buys nothing.
        supervisor_stays_child: detach,
        ..LifecycleOptions::default()
    });
    let opts = SpawnOptions {
        runner: None,
        verbose: a.verbose,
        progress: Some(|step| eprintln!("airlock: {step}")),
        context: None,
        lifecycle,
        stdio: None,
        preserve_fds: 0,
    };
    if opts.lifecycle.is_none() {
        // Nothing for this process to do beside the sandbox but wait: it
        // becomes the supervisor, and the supervisor does what attend()
        // would (signals, terminal, messages, report, exit status).
        let report = a.report.as_deref().map(std::path::Path::new);
        return fail(Sandbox::exec_supervisor(prepared.plan, &opts, report));
    }
    // Raw before the workload can write anything, when this process stays
    // with its terminal: its first lines must not go through the caller's
    // line discipline too. Without -t the workload holds the caller's
    // terminal itself: its modes are kept, to be put back when it ends.
    let raw = match (detach, spec.process.terminal) {
        (true, _) => None,
        (false, true) => airlock::terminal::RawMode::enter(),
        (false, false) => airlock::terminal::RawMode::keep(),
    };
    // Signals that arrive while the sandbox starts wait, then are forwarded.
    Sandbox::hold_signals();
    let sandbox = match Sandbox::start_prepared(prepared.plan, &ctx, &opts) {
        Ok(s) => s,
        // The runner's errors name a mount and a limit by their spec
        // fields: the flags' names for them, as attended.
        Err(e) => {
            drop(raw);
            let text = airlock::report::rename_fields(&e.to_string(), &runner_names);
            eprintln!("airlock: error: {}", shown(&text));
            return ExitCode::from(e.exit_code());
        }
    };
    if detach {
        if let Some(sb) = sandbox.state() {
            println!("{}", sb.id);
        }
        return ExitCode::SUCCESS;
    }
    attend(sandbox, &spec, raw, a.report.as_deref())
}

/// The report is written when the sandbox has ended: a path that cannot
/// be written is refused before anything runs, or the workload's work
/// would be done and how it ended lost. A file made to find out is
/// removed again; an existing one is opened without truncating it (and
/// without blocking, should it be a FIFO with no reader yet).
fn check_report(path: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut open = std::fs::OpenOptions::new();
    open.write(true);
    match open.clone().create_new(true).open(path) {
        Ok(_) => std::fs::remove_file(path),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => open
            .custom_flags(libc::O_NONBLOCK)
            .open(path)
            .map(drop)
            .or_else(|e| match e.raw_os_error() {
                Some(libc::ENXIO) => Ok(()), // a FIFO: its reader comes later
                _ => Err(e),
            }),
        Err(e) => Err(e),
    }
}

/// How this run reports: quietly or not, and what the user typed for
/// each mount (errors and findings name the flag, not a spec index).
pub struct Output {
    pub quiet: bool,
    pub labels: Labels,
}

impl Output {
    /// Findings: one that refuses is an error with its help line; a
    /// warning, or a finding the user acknowledged, is one line, and
    /// none with -q.
    fn findings(&self, findings: &[Finding], image: &[Mount]) {
        for f in findings {
            let subject = self.labels.rewrite(&f.subject, image);
            if f.refuses() {
                eprintln!("error[{}]: {subject}: {}", f.code, f.message);
                eprintln!("  = help: {}", f.help());
            } else if !self.quiet {
                let ack = if f.acknowledged {
                    " (acknowledged)"
                } else {
                    ""
                };
                eprintln!(
                    "airlock: warning[{}]: {subject}: {}{ack}",
                    f.code, f.message
                );
            }
        }
    }

    fn notes(&self, notes: &[String]) {
        if !self.quiet {
            for note in notes {
                eprintln!("airlock: image: {note}");
            }
        }
    }

    /// A library error, with the flags named where it names a spec field.
    fn fail(&self, e: Error, image: &[Mount]) -> ExitCode {
        let text = self.labels.rewrite(&e.to_string(), image);
        eprintln!("airlock: error: {}", shown(&text));
        ExitCode::from(e.exit_code())
    }
}

/// The flags given that act on how a sandbox is launched or lives, not
/// on what it is: `--print-spec` cannot carry them, and a spec run
/// without them differs (a cgroup placed elsewhere, a store the
/// guardrails protect, a sandbox that does not die with its parent).
fn not_in_a_spec(a: &RunArgs) -> Vec<&'static str> {
    let b = &a.bwrap;
    [
        ("--store", a.store.is_some()),
        ("--cgroup-parent", a.cgroup_parent.is_some()),
        ("--die-with-parent", b.die_with_parent),
        ("-d", a.detach),
        ("--name", a.name.is_some()),
        ("--rm", a.rm),
        ("-i", a.interactive),
        ("--report", a.report.is_some()),
        ("--info-fd", b.info_fd.is_some()),
        ("--json-status-fd", b.json_status_fd.is_some()),
        ("--sync-fd", b.sync_fd.is_some()),
        ("--block-fd", b.block_fd.is_some()),
    ]
    .into_iter()
    .filter_map(|(flag, given)| given.then_some(flag))
    .collect()
}

/// `--print-spec`: the spec as it would run (with the image applied),
/// printed even when the guardrails would refuse it.
fn print_spec(spec: SandboxSpec, image: Option<&str>, ctx: &Context, out: &Output) -> ExitCode {
    let spec = match image {
        None => spec,
        Some(reference) => match launch::resolve_image(&spec, reference, ctx) {
            Ok(r) => {
                out.notes(&r.notes);
                r.spec
            }
            Err(e) => return out.fail(e, &[]),
        },
    };
    // A reader that stops early (`| head`) is not an error of ours.
    use std::io::Write;
    let _ = writeln!(std::io::stdout(), "{}", spec.to_json_pretty());
    ExitCode::SUCCESS
}

/// The one launch path (image, validate, guardrails, plan, each once);
/// the findings and image notes are printed here, and a refusal lists
/// the codes that refused.
fn prepare(
    spec: &SandboxSpec,
    image: Option<&str>,
    ctx: &Context,
    out: &Output,
) -> Result<Prepared, ExitCode> {
    // With an image, the library puts the image's mounts before the
    // flags' ones: the labels are shifted past them.
    let (resolved, notes) = match image {
        Some(reference) => match launch::resolve_image(spec, reference, ctx) {
            Ok(r) => (r.spec, r.notes),
            Err(e) => return Err(out.fail(e, &[])),
        },
        None => (spec.clone(), Vec::new()),
    };
    let offset = resolved.filesystem.mounts.len() - spec.filesystem.mounts.len();
    let image = &resolved.filesystem.mounts[..offset];
    out.notes(&notes);
    match launch::prepare(&resolved, ctx) {
        Ok(mut p) => {
            out.findings(&p.findings, image);
            p.notes = notes;
            Ok(p)
        }
        Err(Error::Refused(findings)) => {
            out.findings(&findings, image);
            // Each code once, though it may refuse several fields.
            let mut codes: Vec<&str> = Vec::new();
            for f in findings.iter().filter(|f| f.refuses()) {
                if !codes.contains(&f.code) {
                    codes.push(f.code);
                }
            }
            Err(refuse(format!(
                "refused by the guardrails ({}); nothing was started",
                codes.join(", ")
            )))
        }
        Err(e) => Err(out.fail(e, image)),
    }
}

/// bwrap's `--die-with-parent`: the supervisor (this process, after it
/// execs the runner, which keeps the setting) is killed when our parent
/// dies, and nothing of a sandbox outlives its supervisor.
/// `parent`: ours when we started.
fn die_with_parent(parent: Option<rustix::process::Pid>) -> std::io::Result<()> {
    rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))?;
    // The parent may have died before the setting took: then it never fires.
    if rustix::process::getppid() != parent {
        return Err(std::io::Error::other(
            "the parent process has already exited",
        ));
    }
    Ok(())
}

/// Stay with a started sandbox with state (`--name`, `--rm`): forward
/// signals, hold the terminal in raw mode (`raw`, entered before the start)
/// for a `-t` workload, wait, say how it ended, and exit with its status.
/// (Without state, the runner does all this in our place:
/// `Sandbox::exec_supervisor`.)
fn attend(
    sandbox: Sandbox,
    spec: &SandboxSpec,
    raw: Option<airlock::terminal::RawMode>,
    report: Option<&str>,
) -> ExitCode {
    sandbox.forward_signals(spec.new_session);
    let r = sandbox.wait();
    drop(raw);
    let r = match r {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    for note in r.notes(spec.timeout) {
        eprintln!("airlock: {note}");
    }
    if let Some(path) = report {
        if let Err(e) = r.write_json(std::path::Path::new(path)) {
            return refuse(format!("--report {path}: {e}"));
        }
    }
    ExitCode::from(r.code.clamp(0, 255) as u8)
}
