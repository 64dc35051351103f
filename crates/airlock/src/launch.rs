//! The one launch path every surface shares: spec + [`Context`] →
//! validate → guardrails → host probe → plan, each exactly once. `airlock
//! run`, the library's [`crate::Sandbox::spawn`] and the lifecycle verbs
//! all come through here; the runner then executes the plan and decides
//! nothing.

use crate::check::{self, Finding, Host};
use crate::plan::{self, Plan};
use crate::spec::SandboxSpec;
use crate::{Context, Error};

/// A spec that passed, resolved into the plan the runner carries out.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub plan: Plan,
    /// Every finding, the acknowledged and the warnings included, for the
    /// front end to show.
    pub findings: Vec<Finding>,
}

/// Validate `spec`, judge it with the guardrails against the host as
/// `ctx` sees it, and plan it. A refusal carries every finding
/// ([`Error::Refused`]); nothing has been created either way.
pub fn prepare(spec: &SandboxSpec, ctx: &Context) -> Result<Prepared, Error> {
    // Validation first: the guardrails judge only specs that make sense.
    let mut plan = plan::plan(spec, ctx)?;
    check::validate_codes(spec)?;
    let host = Host::probe(spec, ctx);
    let findings = check::check(spec, &host);
    if check::refused(&findings) {
        return Err(Error::Refused(findings));
    }
    plan.host = host;
    Ok(Prepared { plan, findings })
}
