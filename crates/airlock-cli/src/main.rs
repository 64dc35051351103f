//! The `airlock` command: argument handling over the airlock library.

use airlock_cli::lifecycle_cmd as life;
use airlock_cli::{attach_cmd, check_cmd, image_cmd, run};
use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// A programmable Linux sandbox with guardrails.
///
/// airlock runs a program in its own set of kernel namespaces with a
/// least-privilege default view of the host, and refuses configurations
/// that would hand the program the host unless you acknowledge them by name.
#[derive(Parser)]
#[command(name = "airlock", version, max_term_width = 100)]
struct Cli {
    /// Where sandboxes with state live (default /run/airlock as root,
    /// $XDG_RUNTIME_DIR/airlock otherwise; or $AIRLOCK_STATE_ROOT).
    #[arg(long, global = true, value_name = "DIR")]
    state_root: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Run(Box<run::RunArgs>),
    /// Set a sandbox up with its workload held before exec; `airlock start` releases it.
    Create(Box<run::RunArgs>),
    /// Release a created sandbox's workload.
    Start(life::NameArgs),
    Exec(life::ExecArgs),
    Attach(attach_cmd::AttachArgs),
    /// List sandboxes with state.
    Ps(life::PsArgs),
    /// Print a sandbox's state as JSON.
    Inspect(life::NameArgs),
    Logs(life::LogsArgs),
    /// Stop sandboxes: SIGTERM, a grace period, then kill every process.
    Stop(life::StopArgs),
    /// Send a signal to a sandbox (SIGKILL, the default, kills all of it).
    Kill(life::KillArgs),
    /// Wait for a sandbox to end; exits with its status.
    Wait(life::NameArgs),
    /// Remove stopped sandboxes (-f: running ones too).
    Rm(life::RmArgs),
    Check(check_cmd::CheckArgs),
    Image(image_cmd::ImageArgs),
}

fn main() -> ExitCode {
    let matches = <Cli as clap::CommandFactory>::command().get_matches();
    let cli = match <Cli as clap::FromArgMatches>::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    let mut ctx = airlock::Context::current();
    if let Some(dir) = cli.state_root {
        ctx.state_root = dir;
    }
    match cli.command {
        Command::Run(args) => {
            let sub = matches.subcommand_matches("run").expect("run was parsed");
            run::main(*args, sub, ctx, false)
        }
        Command::Create(args) => {
            let sub = matches
                .subcommand_matches("create")
                .expect("create was parsed");
            run::main(*args, sub, ctx, true)
        }
        Command::Start(a) => life::start(a, ctx),
        Command::Exec(a) => life::exec(a, ctx),
        Command::Attach(a) => attach_cmd::attach(a, ctx),
        Command::Ps(a) => life::ps(a, ctx),
        Command::Inspect(a) => life::inspect(a, ctx),
        Command::Logs(a) => life::logs(a, ctx),
        Command::Stop(a) => life::stop(a, ctx),
        Command::Kill(a) => life::kill(a, ctx),
        Command::Wait(a) => life::wait(a, ctx),
        Command::Rm(a) => life::rm(a, ctx),
        Command::Check(args) => check_cmd::main(args),
        Command::Image(args) => image_cmd::main(args, &ctx),
    }
}
