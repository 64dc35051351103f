//! Guardrails (placeholder until the rules land).

use crate::spec::SandboxSpec;
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Deny,
    Warn,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub code: &'static str,
    pub severity: Severity,
    pub message: String,
}

#[derive(Debug, Clone, Default)]
pub struct Host {}

impl Host {
    pub fn current() -> Self {
        Host {}
    }
}

pub fn check(_spec: &SandboxSpec, _host: &Host) -> Vec<Finding> {
    Vec::new()
}

pub fn enforce(spec: &SandboxSpec, host: &Host) -> Result<Vec<Finding>, crate::Error> {
    Ok(check(spec, host))
}
