use crate::check::Finding;
use crate::runner::report::SetupError;
use crate::spec::SpecError;
use std::fmt;

/// Everything that can stop a sandbox from starting.
#[derive(Debug, thiserror::Error)]
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
    /// No `airlock` binary to serve as the runner.
    #[error("cannot find the airlock runner: set AIRLOCK_RUNNER or put `airlock` on PATH")]
    RunnerNotFound,
    #[error("{what}: {source}")]
    Io {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
}

struct Codes<'a>(&'a [Finding]);

impl fmt::Display for Codes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let codes: Vec<&str> = self.0.iter().map(|x| x.code).collect();
        f.write_str(&codes.join(", "))
    }
}
