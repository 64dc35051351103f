//! Messages from the runner to its caller over the inherited SOCK_SEQPACKET
//! socket: one JSON document per packet, so a message is never split or
//! merged. Inside, PID 1 and the workload report to the supervisor over a
//! socket of its own; the supervisor learns that exec happened when the
//! workload's copy closes, tells the caller `Started`, and at the end
//! sends the `Exited` report.
//!
//! A one-shot `airlock run` has no caller beside the runner: the CLI
//! execs the runner in its own place ([`crate::Sandbox::exec_supervisor`]),
//! and the runner shows a person what the CLI would have ([`Attended`]).

use serde::{Deserialize, Serialize};
use std::cell::{Cell, RefCell};
use std::fmt;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};

/// The fd number of the report socket in the runner (given on its command
/// line; the caller passes its own fd numbers rather than dup2 onto fixed
/// ones, which could clobber fds std's spawn uses).
static REPORT_FD: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(-1);

pub fn set_report_fd(fd: i32) {
    REPORT_FD.store(fd, std::sync::atomic::Ordering::Relaxed);
}

pub fn report_fd() -> i32 {
    REPORT_FD.load(std::sync::atomic::Ordering::Relaxed)
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Report {
    /// A setup step is about to run (only when the plan asks for a trace).
    Progress { step: String },
    /// Setup stopped here; nothing of the sandbox is left.
    Failed(SetupError),
    /// PID 1's namespaces, attached as fds (SCM_RIGHTS) in this order:
    /// the supervisor keeps them for `exec`.
    Namespaces {
        names: Vec<crate::namespace::Namespace>,
    },
    /// The master of the workload's pseudo-terminal, attached as an fd:
    /// the supervisor proxies it.
    Terminal,
    /// PID 1 has made the namespaces and mounts and waits for the
    /// supervisor to run the plan's runtime hooks (`InsideHooks::runtime`)
    /// and answer; never passed on to the caller.
    RuntimeHooks,
    /// Setup is done and the workload waits for `start` before its exec
    /// (a created sandbox).
    Held,
    /// Setup is done and the workload is about to exec (sent always, so
    /// a setup that dies silently is not mistaken for a started workload).
    Exec,
    /// The workload was exec'd; `pid` is PID 1's pid on the host;
    /// `freezer` the cgroup file that freezes the sandbox, when it has one
    /// (`cgroup.freeze` on v2, `freezer.state` on v1).
    Started {
        pid: i32,
        #[serde(default)]
        freezer: Option<std::path::PathBuf>,
    },
    /// The sandbox ended.
    Exited(ExitReport),
}

/// The largest report sent. Every receiver reads a packet into 64 KiB,
/// and SOCK_SEQPACKET cuts a longer one short (it arrived as a "garbled
/// report", or not at all); this leaves room to spare.
pub const MAX_REPORT: usize = 60 << 10;

impl Report {
    /// The report as sent: its JSON, at most [`MAX_REPORT`] bytes. A
    /// longer one (an error naming a 100 KB argument) has its texts cut,
    /// with a marker saying so, rather than the packet.
    pub fn encode(&self) -> Vec<u8> {
        let bytes = serde_json::to_vec(self).expect("reports serialize");
        if bytes.len() <= MAX_REPORT {
            return bytes;
        }
        // JSON escapes can make a text up to six times longer than its
        // bytes: halve until it fits.
        let mut keep = MAX_REPORT / 2;
        loop {
            let mut r = self.clone();
            match &mut r {
                Report::Progress { step } => cut(step, keep),
                Report::Failed(e) => {
                    cut(&mut e.step, keep / 4);
                    cut(&mut e.reason, keep);
                }
                _ => {}
            }
            let bytes = serde_json::to_vec(&r).expect("reports serialize");
            if bytes.len() <= MAX_REPORT || keep == 0 {
                return bytes;
            }
            keep /= 2;
        }
    }
}

/// Cut `s` to about `keep` bytes (on a character boundary), saying so.
fn cut(s: &mut String, keep: usize) {
    if s.len() <= keep {
        return;
    }
    let mut end = keep;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    let more = s.len() - end;
    s.truncate(end);
    s.push_str(&format!(
        " [... {more} more bytes cut: a report is at most {} KiB]",
        MAX_REPORT >> 10
    ));
}

/// How a sandbox ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExitReport {
    /// The status a shell would show: the workload's exit code, or 128+N
    /// when it died of signal N.
    pub code: i32,
    pub ended: Ended,
    /// The signal that ended it, if one did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    /// Processes the kernel OOM-killed in the sandbox's memory cgroup.
    pub oom_kills: u64,
    /// A fork failed because the pids limit was reached.
    pub pids_limit_hit: bool,
    /// Peak memory in bytes.
    pub peak_memory_bytes: u64,
    /// `cgroup` (the whole sandbox) or `largest-process` (without a memory
    /// cgroup, the largest single process's peak RSS).
    pub peak_memory_scope: String,
    /// User plus system CPU time of every process of the sandbox.
    pub cpu_seconds: f64,
    pub wall_seconds: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Ended {
    Exited,
    Signaled,
    OomKilled,
    TimedOut,
}

impl ExitReport {
    /// What a person is told about how the sandbox ended beyond its exit
    /// status; `timeout` is the spec's, in seconds.
    pub fn notes(&self, timeout: Option<f64>) -> Vec<String> {
        let mut notes = Vec::new();
        match self.ended {
            Ended::TimedOut => notes.push(format!(
                "the sandbox reached its {}s timeout and was killed",
                timeout.unwrap_or_default()
            )),
            Ended::OomKilled => {
                notes.push("the workload was killed for exceeding its memory limit".into())
            }
            Ended::Exited | Ended::Signaled => {}
        }
        if self.pids_limit_hit {
            notes.push("the sandbox hit its pids limit (a fork failed)".into());
        }
        notes
    }

    /// Write the report as `--report` does: pretty JSON and a newline.
    pub fn write_json(&self, path: &Path) -> io::Result<()> {
        let text = serde_json::to_string_pretty(self).expect("reports serialize");
        std::fs::write(path, text + "\n")
    }

    /// A report from the exit status alone (when the supervisor could not
    /// send one).
    pub fn from_code(code: i32) -> Self {
        let signal = (code > 128 && code < 128 + 65).then_some(code - 128);
        ExitReport {
            code,
            ended: if signal.is_some() {
                Ended::Signaled
            } else {
                Ended::Exited
            },
            signal,
            oom_kills: 0,
            pids_limit_hit: false,
            peak_memory_bytes: 0,
            peak_memory_scope: "unknown".into(),
            cpu_seconds: 0.0,
            wall_seconds: 0.0,
        }
    }
}

/// Why a setup step failed, in words a person can act on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetupError {
    /// The step, such as `mount /data` or `exec`.
    pub step: String,
    /// The reason, such as `source /srv/data does not exist`.
    pub reason: String,
    pub errno: Option<i32>,
    pub kind: FailureKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FailureKind {
    /// A sandbox setup step failed.
    Setup,
    /// The program was not found in the sandbox (shell status 127).
    NotFound,
    /// The program exists but cannot be executed (shell status 126).
    NotExecutable,
}

impl FailureKind {
    /// The shell's status for it: 127 not found, 126 not executable, 125
    /// anything else of airlock's own.
    pub fn exit_code(self) -> i32 {
        match self {
            FailureKind::NotFound => 127,
            FailureKind::NotExecutable => 126,
            FailureKind::Setup => 125,
        }
    }
}

impl fmt::Display for SetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.step, self.reason)
    }
}

impl std::error::Error for SetupError {}

impl SetupError {
    pub fn new(step: impl Into<String>, reason: impl Into<String>) -> Self {
        SetupError {
            step: step.into(),
            reason: reason.into(),
            errno: None,
            kind: FailureKind::Setup,
        }
    }

    pub fn io(step: impl Into<String>, err: &io::Error) -> Self {
        SetupError {
            step: step.into(),
            reason: describe(err),
            errno: errno(err),
            kind: FailureKind::Setup,
        }
    }
}

/// The errno of `err`, or of the first error it wraps that has one.
fn errno(err: &io::Error) -> Option<i32> {
    let mut next: Option<&(dyn std::error::Error + 'static)> = err.get_ref().map(|e| e as _);
    let mut found = err.raw_os_error();
    while let (None, Some(e)) = (found, next) {
        found = e.downcast_ref::<io::Error>().and_then(|e| e.raw_os_error());
        next = e.source();
    }
    found
}

/// `text` with each control character written as an escape (`\u{1b}`):
/// for what others wrote (an image's names, a sandbox's) on its way to a
/// terminal.
pub fn plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c.is_control() {
            true => out.extend(c.escape_default()),
            false => out.push(c),
        }
    }
    out
}

/// The kernel's words for an error, without Rust's "(os error N)" suffix.
pub fn describe(err: &io::Error) -> String {
    let s = err.to_string();
    match s.rfind(" (os error ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// Attach a step name to an io::Result.
pub trait StepExt<T> {
    fn step(self, step: impl FnOnce() -> String) -> Result<T, SetupError>;
}

impl<T> StepExt<T> for io::Result<T> {
    fn step(self, step: impl FnOnce() -> String) -> Result<T, SetupError> {
        self.map_err(|e| SetupError::io(step(), &e))
    }
}

impl<T> StepExt<T> for rustix::io::Result<T> {
    fn step(self, step: impl FnOnce() -> String) -> Result<T, SetupError> {
        self.map_err(|e| SetupError::io(step(), &io::Error::from(e)))
    }
}

/// Where the runner's reports go.
#[derive(Clone, Copy)]
enum Sink<'a> {
    /// The caller's end of the report socket.
    Caller(BorrowedFd<'a>),
    /// No caller: the runner took its place.
    Person(&'a Attended),
}

/// The runner's end of the report socket, or of an attended runner, the
/// person at the terminal.
#[derive(Clone, Copy)]
pub struct Reporter<'a> {
    sink: Sink<'a>,
    verbose: bool,
}

impl<'a> Reporter<'a> {
    pub fn new(fd: BorrowedFd<'a>, verbose: bool) -> Self {
        Reporter {
            sink: Sink::Caller(fd),
            verbose,
        }
    }

    /// Reports for a person: the runner took its caller's place.
    pub fn attended(to: &'a Attended, verbose: bool) -> Self {
        Reporter {
            sink: Sink::Person(to),
            verbose,
        }
    }

    pub fn with_verbose(self, verbose: bool) -> Self {
        Reporter { verbose, ..self }
    }

    /// An attended runner's [`Attended::enter_raw`]; nothing otherwise.
    pub fn enter_raw(&self) {
        if let Sink::Person(a) = self.sink {
            a.enter_raw();
        }
    }

    /// The caller's socket; `None` when the runner took the caller's place.
    pub fn caller(&self) -> Option<BorrowedFd<'a>> {
        match self.sink {
            Sink::Caller(fd) => Some(fd),
            Sink::Person(_) => None,
        }
    }

    pub fn progress(&self, step: impl FnOnce() -> String) {
        if self.verbose {
            self.send(&Report::Progress { step: step() });
        }
    }

    pub fn failed(&self, err: &SetupError) {
        self.send(&Report::Failed(err.clone()));
    }

    /// Send a report with fds attached (SCM_RIGHTS). Unlike [`send`],
    /// failure is an error: the fds are what the receiver needs.
    ///
    /// [`send`]: Reporter::send
    pub fn send_with_fds(&self, r: &Report, fds: &[BorrowedFd]) -> io::Result<()> {
        let Some(fd) = self.caller() else {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "fds go to a process, not to a person",
            ));
        };
        crate::sys::send_with_fds(fd, &r.encode(), fds)
    }

    pub fn send(&self, r: &Report) {
        match self.sink {
            Sink::Caller(_) => self.relay(&r.encode()),
            Sink::Person(to) => to.show(r),
        }
    }

    /// Pass on a report as it came (one packet from PID 1 or the workload).
    pub fn relay(&self, packet: &[u8]) {
        match self.sink {
            // A caller that has gone away cannot be told anything; the
            // runner then dies with it (parent-death signal), so the error
            // is ignored.
            Sink::Caller(fd) => {
                let _ = rustix::net::send(fd.as_fd(), packet, rustix::net::SendFlags::NOSIGNAL);
            }
            Sink::Person(to) => {
                if let Ok(r) = serde_json::from_slice(packet) {
                    to.show(&r);
                }
            }
        }
    }

    /// The runner's exit status: the supervisor's `code`, unless a person
    /// was told of a failure, whose status wins (as the caller's would).
    pub fn exit_code(&self, code: i32) -> i32 {
        match self.sink {
            Sink::Caller(_) => code,
            Sink::Person(to) => to.finish(code),
        }
    }
}

/// What an attended runner tells the person at the terminal, as `airlock
/// run` would have: the trace (`-v`), the first failure, how the sandbox
/// ended, and the exit report file (`--report`); and while the workload's
/// terminal is proxied (`-t`), the person's terminal in raw mode. The
/// runner is single-threaded, hence the cells.
pub struct Attended {
    report_file: Option<PathBuf>,
    /// The spec's timeout, for the message when it is reached.
    timeout: Cell<Option<f64>>,
    terminal: Cell<bool>,
    raw: RefCell<Option<crate::terminal::RawMode>>,
    /// Without `-t`: the caller's terminal modes, given back at the end.
    kept: RefCell<Option<crate::terminal::RawMode>>,
    /// The exit status once something decided it (a failure).
    code: Cell<Option<i32>>,
    /// The caller's names for spec fields (`Plan::field_names`).
    field_names: RefCell<Vec<(String, String)>>,
}

impl Attended {
    pub fn new(report_file: Option<PathBuf>) -> Self {
        Attended {
            report_file,
            timeout: Cell::new(None),
            terminal: Cell::new(false),
            raw: RefCell::new(None),
            kept: RefCell::new(None),
            code: Cell::new(None),
            field_names: RefCell::new(Vec::new()),
        }
    }

    /// What the plan says about the messages and the terminal.
    pub fn plan(&self, timeout: Option<f64>, terminal: bool, field_names: &[(String, String)]) {
        self.timeout.set(timeout);
        self.terminal.set(terminal);
        *self.field_names.borrow_mut() = field_names.to_vec();
    }

    /// With a terminal for the workload, make the caller's raw, before the
    /// workload can write anything: its first lines must not go through
    /// the caller's line discipline. Not sooner than needed: while the
    /// start waits (on `--block-fd`), Ctrl-C must still be a signal.
    /// Without one, the workload holds the caller's terminal: its modes
    /// are noted, to be given back at the end whatever the workload did.
    pub fn enter_raw(&self) {
        if self.terminal.get() && self.raw.borrow().is_none() {
            *self.raw.borrow_mut() = crate::terminal::RawMode::enter();
        } else if !self.terminal.get() && self.kept.borrow().is_none() {
            *self.kept.borrow_mut() = crate::terminal::RawMode::keep();
        }
    }

    fn show(&self, r: &Report) {
        match r {
            // In raw mode a line needs its carriage return.
            Report::Progress { step } if self.raw.borrow().is_some() => {
                eprint!("airlock: {step}\r\n")
            }
            Report::Progress { step } => say(format_args!("{step}")),
            // The first failure is the one that stopped setup.
            Report::Failed(e) if self.code.get().is_none() => {
                self.raw.take();
                let text = rename_fields(&e.to_string(), &self.field_names.borrow());
                say(format_args!("error: {text}"));
                self.code.set(Some(e.kind.exit_code()));
            }
            Report::Exited(report) => {
                self.raw.take();
                for note in report.notes(self.timeout.get()) {
                    say(format_args!("{note}"));
                }
                if let Some(path) = &self.report_file {
                    if let Err(e) = report.write_json(path) {
                        say(format_args!("error: --report {}: {e}", path.display()));
                        self.code.set(Some(125));
                    }
                }
            }
            _ => {}
        }
    }

    fn finish(&self, code: i32) -> i32 {
        self.raw.take();
        self.kept.take();
        self.code.get().unwrap_or(code)
    }
}

/// `text` with each spec field of `names` replaced by the caller's name
/// for it, where it is the whole field (the longest that matches, so that
/// `resources.memory_reservation` is not taken for `resources.memory`).
/// One pass: a name put in is never renamed again, so one pair may map
/// `filesystem.mounts[5]` to `filesystem.mounts[1]` (an image's mounts
/// came first) while another names the image's own `filesystem.mounts[1]`.
pub fn rename_fields(text: &str, names: &[(String, String)]) -> String {
    let whole = |after: &str| !after.starts_with(|c: char| c.is_alphanumeric() || c == '_');
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        let found = names
            .iter()
            .filter(|(f, _)| !f.is_empty() && rest.starts_with(f.as_str()))
            .filter(|(f, _)| whole(&rest[f.len()..]))
            .max_by_key(|(f, _)| f.len());
        match found {
            Some((field, name)) => {
                out.push_str(name);
                rest = &rest[field.len()..];
            }
            None => {
                out.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
    }
    out
}

/// `text` with each `from` that `whole` accepts (given what follows it)
/// made `to`; an empty `from` is found nowhere.
pub fn replace_where(text: &str, from: &str, to: &str, whole: impl Fn(&str) -> bool) -> String {
    if from.is_empty() {
        return text.to_string();
    }
    let mut done = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(from) {
        let after = &rest[at + from.len()..];
        done.push_str(&rest[..at]);
        done.push_str(if whole(after) { to } else { from });
        rest = after;
    }
    done.push_str(rest);
    done
}

/// One line on stderr. A closed stderr must not panic the supervisor
/// (Rust's eprintln would): the sandbox would go down with it.
fn say(line: fmt::Arguments) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "airlock: {line}");
}

#[cfg(test)]
mod size_tests {
    use super::*;

    #[test]
    fn a_report_too_long_for_a_packet_is_cut_with_a_marker() {
        // Plain text, and text that JSON escapes six times over.
        for reason in [
            "a".repeat(200_000),
            "\u{1}".repeat(100_000),
            "é".repeat(70_000),
        ] {
            let r = Report::Failed(SetupError::new("exec", reason.clone()));
            let bytes = r.encode();
            assert!(bytes.len() <= MAX_REPORT, "{}", bytes.len());
            let Ok(Report::Failed(e)) = serde_json::from_slice::<Report>(&bytes) else {
                panic!("does not parse back");
            };
            let (kept, marker) = e.reason.split_once(" [... ").unwrap();
            assert!(reason.starts_with(kept) && !kept.is_empty());
            assert!(marker.contains("more bytes cut"), "{marker}");
            assert_eq!(e.step, "exec");
        }
        // A report that fits is sent as it is.
        let r = Report::Failed(SetupError::new("exec", "x".repeat(1000)));
        assert_eq!(r.encode(), serde_json::to_vec(&r).unwrap());
    }
}
