//! `airlock check`: placeholder until the guardrails land.

use clap::Args;
use std::process::ExitCode;

/// Judge a spec against the guardrails without running it.
#[derive(Args)]
pub struct CheckArgs {
    /// The spec file (JSON or TOML), or `-` for stdin.
    spec: Option<String>,
}

pub fn main(_args: CheckArgs) -> ExitCode {
    ExitCode::SUCCESS
}
