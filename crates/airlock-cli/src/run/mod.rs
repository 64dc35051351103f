//! `airlock run`: bubblewrap-style flags turned into a spec ([`spec`]),
//! then the library's one launch path, start and wait. Mount flags apply
//! in the order given, as in bwrap.

mod args;
mod spec;

pub use args::{duration_arg, RunArgs};
pub use spec::build_spec;

use airlock::launch::{self, Prepared};
use airlock::spec::SandboxSpec;
use airlock::{Context, Error, LifecycleOptions, Sandbox, SpawnOptions};
use clap::ArgMatches;
use std::process::ExitCode;

/// Exit status when airlock itself refuses or fails.
pub const EXIT_REFUSED: u8 = 125;

pub fn refuse(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("airlock: error: {msg}");
    ExitCode::from(EXIT_REFUSED)
}

/// One line for an error of the library, with the exit status it gives.
pub fn fail(e: Error) -> ExitCode {
    eprintln!("airlock: error: {e}");
    ExitCode::from(e.exit_code())
}

/// `airlock run` (and `airlock create`, which holds the workload until
/// `airlock start`).
pub fn main(a: RunArgs, m: &ArgMatches, mut ctx: Context, hold: bool) -> ExitCode {
    if let Some(store) = &a.store {
        ctx.store = store.into();
    }
    let spec = match build_spec(&a, m) {
        Ok(s) => s,
        Err(e) => return refuse(e),
    };
    if a.print_spec {
        return print_spec(spec, a.image.as_deref(), &ctx);
    }
    let prepared = match prepare(&spec, a.image.as_deref(), &ctx) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let detach = a.detach || hold;
    let lifecycle = (detach || a.name.is_some() || a.rm).then(|| LifecycleOptions {
        name: a.name.clone(),
        detach,
        stdin: a.interactive,
        hold,
        remove_on_exit: a.rm,
        ..LifecycleOptions::default()
    });
    let opts = SpawnOptions {
        runner: None,
        verbose: a.verbose,
        progress: Some(|step| eprintln!("airlock: {step}")),
        context: None,
        lifecycle,
        stdio: None,
    };
    if opts.lifecycle.is_none() {
        // Nothing for this process to do beside the sandbox but wait: it
        // becomes the supervisor, and the supervisor does what attend()
        // would (signals, terminal, messages, report, exit status).
        let report = a.report.as_deref().map(std::path::Path::new);
        return fail(Sandbox::exec_supervisor(prepared.plan, &opts, report));
    }
    // Signals that arrive while the sandbox starts wait, then are forwarded.
    Sandbox::hold_signals();
    let sandbox = match Sandbox::start_prepared(prepared.plan, &ctx, &opts) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    if detach {
        if let Some(sb) = sandbox.state() {
            println!("{}", sb.id);
        }
        return ExitCode::SUCCESS;
    }
    attend(sandbox, &spec, a.report.as_deref())
}

/// `--print-spec`: the spec as it would run (with the image applied),
/// printed even when the guardrails would refuse it.
fn print_spec(spec: SandboxSpec, image: Option<&str>, ctx: &Context) -> ExitCode {
    let spec = match image {
        None => spec,
        Some(reference) => match launch::resolve_image(&spec, reference, ctx) {
            Ok(r) => {
                print_notes(&r.notes);
                r.spec
            }
            Err(e) => return fail(e),
        },
    };
    // A reader that stops early (`| head`) is not an error of ours.
    use std::io::Write;
    let _ = writeln!(std::io::stdout(), "{}", spec.to_json_pretty());
    ExitCode::SUCCESS
}

fn print_notes(notes: &[String]) {
    for note in notes {
        eprintln!("airlock: image: {note}");
    }
}

/// The one launch path (image, validate, guardrails, plan, each once);
/// the findings and image notes are printed here, and a refusal lists
/// the codes that refused.
fn prepare(spec: &SandboxSpec, image: Option<&str>, ctx: &Context) -> Result<Prepared, ExitCode> {
    let prepared = match image {
        Some(reference) => launch::prepare_image(spec, reference, ctx),
        None => launch::prepare(spec, ctx),
    };
    match prepared {
        Ok(p) => {
            print_notes(&p.notes);
            eprint!("{}", airlock::check::render(&p.findings));
            Ok(p)
        }
        Err(Error::Refused(findings)) => {
            eprint!("{}", airlock::check::render(&findings));
            let codes: Vec<&str> = findings
                .iter()
                .filter(|f| f.refuses())
                .map(|f| f.code)
                .collect();
            Err(refuse(format!(
                "refused by the guardrails ({}); nothing was started",
                codes.join(", ")
            )))
        }
        Err(e) => Err(fail(e)),
    }
}

/// Stay with a started sandbox with state (`--name`, `--rm`): forward
/// signals, hold the terminal in raw mode for a `-t` workload, wait, say
/// how it ended, and exit with its status. (Without state, the runner
/// does all this in our place: `Sandbox::exec_supervisor`.)
fn attend(sandbox: Sandbox, spec: &SandboxSpec, report: Option<&str>) -> ExitCode {
    sandbox.forward_signals(spec.new_session);
    let raw = spec
        .process
        .terminal
        .then(airlock::terminal::RawMode::enter);
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
