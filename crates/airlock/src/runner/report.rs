//! Messages from the runner to its caller over the inherited SOCK_SEQPACKET
//! socket: one JSON document per packet, so a message is never split or
//! merged. The caller reads until end-of-file, which comes when the last
//! holder (the workload, at exec) closes its copy.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};

/// The fd number the report socket has in the runner.
pub const REPORT_FD: i32 = 4;
/// The fd number the sealed memfd holding the plan has in the runner.
pub const PLAN_FD: i32 = 3;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Report {
    /// A setup step is about to run (only when the plan asks for a trace).
    Progress { step: String },
    /// Setup stopped here; nothing of the sandbox is left.
    Failed(SetupError),
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
            errno: err.raw_os_error(),
            kind: FailureKind::Setup,
        }
    }
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

/// The runner's end of the report socket.
#[derive(Clone, Copy)]
pub struct Reporter<'a> {
    fd: BorrowedFd<'a>,
    verbose: bool,
}

impl<'a> Reporter<'a> {
    pub fn new(fd: BorrowedFd<'a>, verbose: bool) -> Self {
        Reporter { fd, verbose }
    }

    pub fn progress(&self, step: impl FnOnce() -> String) {
        if self.verbose {
            self.send(&Report::Progress { step: step() });
        }
    }

    pub fn failed(&self, err: &SetupError) {
        self.send(&Report::Failed(err.clone()));
    }

    fn send(&self, r: &Report) {
        let bytes = serde_json::to_vec(r).expect("reports serialize");
        // A caller that has gone away cannot be told anything; the runner
        // then dies with it (parent-death signal), so the error is ignored.
        let _ = rustix::net::send(self.fd.as_fd(), &bytes, rustix::net::SendFlags::NOSIGNAL);
    }
}
