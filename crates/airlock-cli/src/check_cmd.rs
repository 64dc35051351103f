//! `airlock check`: judge a spec with the guardrails, like a linter.

use airlock::check::{self, RULES};
use clap::{Args, ValueEnum};
use std::process::ExitCode;

/// Judge a spec against the guardrails without running it.
///
/// Exit status: 0 when the spec would run (warnings allowed), 1 when it
/// would be refused, 2 when it cannot be read, parsed or validated, or
/// planned for this caller on this machine (or the command line is
/// wrong). It judges against this machine, as a local `airlock run`
/// would, with or without `--host`.
#[derive(Args)]
pub struct CheckArgs {
    /// The spec file (JSON or TOML), or `-` for stdin.
    #[arg(required_unless_present = "list")]
    spec: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
    /// Print every rule: code, severity, what it catches.
    #[arg(long)]
    list: bool,
    /// The layer store `run --store` would use, judged as it would be
    /// (default as for `run`).
    #[arg(long, value_name = "DIR")]
    store: Option<String>,
    /// The cgroup `run --cgroup-parent` would make the sandbox's cgroups
    /// under, planned as it would be.
    #[arg(long, value_name = "PATH")]
    cgroup_parent: Option<String>,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Human,
    Json,
}

fn list(format: Format) -> ExitCode {
    match format {
        Format::Json => {
            let rules: Vec<_> = RULES
                .iter()
                .map(|r| serde_json::json!({"code": r.code, "severity": r.severity, "catches": r.catches}))
                .collect();
            println!(
                "{}",
                serde_json::to_string_pretty(&rules).expect("rules serialize")
            );
        }
        Format::Human => {
            let width = RULES.iter().map(|r| r.code.len()).max().unwrap_or(0);
            for r in RULES {
                let sev = match r.severity {
                    check::Severity::Deny => "deny",
                    check::Severity::Warn => "warn",
                };
                println!("{:<width$}  {sev}  {}", r.code, r.catches);
            }
        }
    }
    ExitCode::SUCCESS
}

fn unreadable(format: Format, msg: String) -> ExitCode {
    match format {
        Format::Json => println!("{}", serde_json::json!({"error": msg})),
        Format::Human => eprintln!("airlock: error: {}", crate::run::shown(&msg.to_string())),
    }
    ExitCode::from(2)
}

/// `ctx` is the one `run` would get: the global `--state-root` and this
/// command's `--store` change what the guardrails protect, and its
/// `--cgroup-parent` where the plan puts the cgroups. (An `--image` is
/// not taken: resolving one unpacks its layers into the store, and a
/// check changes nothing; `run --print-spec --image` gives the spec.)
pub fn main(args: CheckArgs, mut ctx: airlock::Context) -> ExitCode {
    if args.list {
        return list(args.format);
    }
    let path = args.spec.expect("clap requires a spec without --list");
    let spec = match crate::spec_file::read(&path) {
        Ok(s) => s,
        Err(e) => return unreadable(args.format, e),
    };
    if let Some(store) = &args.store {
        ctx.store = std::path::absolute(store).unwrap_or_else(|_| store.into());
    }
    if let Some(parent) = &args.cgroup_parent {
        match ctx.cgroup.under(parent) {
            Ok(layout) => ctx.cgroup = layout,
            Err(e) => return unreadable(args.format, format!("--cgroup-parent: {e}")),
        }
    }
    // The same validation, plan and judgement `run` makes before it
    // creates anything: the plan refuses what only the host can say (an
    // idmap with nothing to map, a limit this host's cgroups cannot
    // apply, a root caller's map without an inside 0).
    let (findings, refused) = match airlock::launch::prepare(&spec, &ctx) {
        Ok(prepared) => (prepared.findings, false),
        Err(airlock::Error::Refused(findings)) => (findings, true),
        Err(e) => return unreadable(args.format, format!("{path}: {e}")),
    };
    match args.format {
        Format::Json => {
            let out = serde_json::json!({"refused": refused, "findings": findings.iter().map(|f| serde_json::json!({
                "code": f.code, "severity": f.severity, "subject": f.subject, "message": f.message,
                "acknowledged": f.acknowledged, "refuses": f.refuses(), "help": f.help(),
            })).collect::<Vec<_>>()});
            println!(
                "{}",
                serde_json::to_string_pretty(&out).expect("findings serialize")
            );
        }
        Format::Human => {
            print!("{}", check::render(&findings));
            let denied = findings.iter().filter(|f| f.refuses()).count();
            if refused {
                println!("{path}: refused ({denied} error(s)): airlock would not run this spec");
            } else {
                println!("{path}: ok ({} warning(s))", findings.len());
            }
        }
    }
    ExitCode::from(if refused { 1 } else { 0 })
}
