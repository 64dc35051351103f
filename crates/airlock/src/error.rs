use crate::check::Finding;
use crate::image::ImageError;
use crate::report::{FailureKind, SetupError};
use crate::spec::SpecError;
use crate::state::StateError;
use std::fmt;

/// Everything that can stop a sandbox from starting, or a lifecycle verb
/// from acting.
///
/// Debug prints the message too (see below): `fn main() -> Result<..>`
/// shows an error with Debug, and a user reading `RunnerNotFound` learns
/// nothing of how to fix it.
#[derive(thiserror::Error)]
pub enum Error {
    /// The spec is malformed: which field, and why.
    #[error("invalid spec: {0}")]
    Spec(#[from] SpecError),
    /// The guardrails refused the spec.
    #[error("refused by the guardrails: {}", Codes(.0))]
    Refused(Vec<Finding>),
    /// A setup step failed in the runner (or the program could not be run).
    #[error("{0}")]
    Setup(SetupError),
    /// A sandbox in the state root: not found, in the wrong state, a name
    /// taken, the root unusable.
    #[error("{0}")]
    State(#[from] StateError),
    /// The image cannot be used: not found, malformed, or refused as
    /// unsafe (see [`ImageError::kind`]).
    #[error("{0}")]
    Image(#[from] ImageError),
    /// No binary to serve as the runner.
    #[error("cannot find `airlock-runner`: build it (`cargo build --workspace`) and keep it beside your program, install it in /usr/libexec/airlock or on PATH (`cargo install --path crates/airlock-runner`), or set AIRLOCK_RUNNER to it")]
    RunnerNotFound,
    #[error("{what}: {source}")]
    Io {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let variant = match self {
            Error::Spec(_) => "Spec",
            Error::Refused(_) => "Refused",
            Error::Setup(_) => "Setup",
            Error::State(_) => "State",
            Error::Image(_) => "Image",
            Error::RunnerNotFound => "RunnerNotFound",
            Error::Io { .. } => "Io",
        };
        write!(f, "{variant}: {self}")?;
        if let Error::Refused(findings) = self {
            for finding in findings.iter().filter(|x| x.refuses()) {
                write!(
                    f,
                    "\n  {}: {}: {}",
                    finding.code, finding.subject, finding.message
                )?;
            }
        }
        Ok(())
    }
}

/// What kind of failure an [`Error`] is, so a front end can map it (to an
/// exit status, a gRPC code) without reading its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request is wrong: a malformed spec, an unknown field value, an
    /// image airlock cannot read.
    InvalidInput,
    /// Refused as unsafe: by the guardrails, or an image that does not
    /// verify or reaches outside itself.
    Refused,
    /// What the request names does not exist: a sandbox, an image.
    NotFound,
    /// It conflicts with what exists: a name in use, a sandbox in the
    /// wrong state for the verb.
    Conflict,
    /// The host cannot do it (a setup step failed, a limit it cannot apply).
    Host,
    /// The program was not found in the sandbox.
    ProgramNotFound,
    /// The program exists but cannot be executed.
    ProgramNotExecutable,
    /// airlock's own machinery failed (no runner, an I/O error).
    Internal,
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Spec(_) => ErrorKind::InvalidInput,
            Error::Refused(_) => ErrorKind::Refused,
            Error::Setup(e) => match e.kind {
                FailureKind::NotFound => ErrorKind::ProgramNotFound,
                FailureKind::NotExecutable => ErrorKind::ProgramNotExecutable,
                FailureKind::Setup => ErrorKind::Host,
            },
            Error::Image(e) => e.kind(),
            Error::State(StateError::NotFound(_) | StateError::Removed(_)) => ErrorKind::NotFound,
            Error::State(StateError::BadName(_)) => ErrorKind::InvalidInput,
            Error::State(
                StateError::NameInUse(_)
                | StateError::WrongStatus { .. }
                | StateError::Refused { .. }
                | StateError::NotAttachable(_)
                | StateError::Ambiguous(_),
            ) => ErrorKind::Conflict,
            Error::State(_) | Error::RunnerNotFound | Error::Io { .. } => ErrorKind::Internal,
        }
    }

    /// The shell status a command line gives this error: 127 and 126 for
    /// a program that is missing or not executable, 125 for the rest.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Setup(e) => e.kind.exit_code() as u8,
            _ => 125,
        }
    }
}

/// The findings that refused, each with the field it is about: the list
/// also holds warnings and acknowledged findings, which refused nothing.
struct Codes<'a>(&'a [Finding]);

impl fmt::Display for Codes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let refusing: Vec<String> = self
            .0
            .iter()
            .filter(|x| x.refuses())
            .map(|x| match x.subject.as_str() {
                "" => x.code.to_string(),
                subject => format!("{} ({subject})", x.code),
            })
            .collect();
        f.write_str(&refusing.join(", "))
    }
}

#[cfg(test)]
mod debug_tests {
    use super::*;

    /// `fn main() -> Result<(), Box<dyn std::error::Error>>` prints Debug:
    /// it must say how to fix the problem, not only its name.
    #[test]
    fn debug_carries_the_message() {
        let shown = format!("{:?}", Error::RunnerNotFound);
        assert!(
            shown.starts_with("RunnerNotFound: cannot find `airlock-runner`"),
            "{shown}"
        );
        assert!(shown.contains("AIRLOCK_RUNNER"), "{shown}");
        let finding = |code, severity, acknowledged| Finding {
            code,
            severity,
            subject: format!("filesystem.mounts[{}]", code.len()),
            message: "why".into(),
            acknowledged,
        };
        let refused = Error::Refused(vec![
            finding("shared-network", crate::check::Severity::Deny, true),
            finding("no-seccomp", crate::check::Severity::Warn, false),
            finding("host-system-writable", crate::check::Severity::Deny, false),
        ]);
        assert_eq!(
            refused.to_string(),
            "refused by the guardrails: host-system-writable (filesystem.mounts[20])"
        );
        let spec = Error::Spec(SpecError::new("process.args", "must not be empty"));
        let shown = format!("{spec:?}");
        assert!(
            shown.contains("process.args") && shown.contains("must not be empty"),
            "{shown}"
        );
    }
}
