//! The `airlock` command: argument handling over the airlock library.

use airlock_cli::lifecycle_cmd as life;
use airlock_cli::remote::{self, Verb};
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
    /// Work through the airlockd at this socket (unix:///PATH) instead
    /// of on this machine's state root: run -d, create, start, exec,
    /// attach, ps, inspect, logs, stop, kill, wait, rm, events, stats.
    #[arg(long, global = true, value_name = "URL", env = "AIRLOCK_HOST")]
    host: Option<String>,
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
    /// A daemon's lifecycle events as they happen (needs --host).
    Events(remote::EventsArgs),
    /// A sandbox's memory, CPU, pids and I/O counters, now.
    Stats(remote::StatsArgs),
    Check(check_cmd::CheckArgs),
    Image(image_cmd::ImageArgs),
}

fn main() -> ExitCode {
    let matches = <Cli as clap::CommandFactory>::command().get_matches();
    let cli = match <Cli as clap::FromArgMatches>::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    if let Some(host) = cli.host.as_deref().filter(|h| !h.is_empty()) {
        return remote_main(host, cli.command, &matches);
    }
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
        Command::Events(_) => run::refuse(
            "airlock events reports a daemon's events: give --host unix:///PATH or set AIRLOCK_HOST",
        ),
        Command::Stats(a) => life::stats(a, ctx),
        Command::Check(args) => check_cmd::main(args),
        Command::Image(args) => image_cmd::main(args, &ctx),
    }
}

/// The same verbs, carried out by the daemon at `host`.
fn remote_main(host: &str, command: Command, matches: &clap::ArgMatches) -> ExitCode {
    let verb = match command {
        Command::Run(a) => Verb::Run(a, matches.subcommand_matches("run").expect("run"), false),
        Command::Create(a) => Verb::Run(
            a,
            matches.subcommand_matches("create").expect("create"),
            true,
        ),
        Command::Start(a) => Verb::Start(a),
        Command::Exec(a) => Verb::Exec(a),
        Command::Attach(a) => Verb::Attach(a),
        Command::Ps(a) => Verb::Ps(a),
        Command::Inspect(a) => Verb::Inspect(a),
        Command::Logs(a) => Verb::Logs(a),
        Command::Stop(a) => Verb::Stop(a),
        Command::Kill(a) => Verb::Kill(a),
        Command::Wait(a) => Verb::Wait(a),
        Command::Rm(a) => Verb::Rm(a),
        Command::Events(a) => Verb::Events(a),
        Command::Stats(a) => Verb::Stats(a),
        Command::Check(args) => return check_cmd::main(args),
        Command::Image(_) => {
            return run::refuse(
                "airlock image works on this machine's store; with --host the daemon pulls an image when a sandbox is created (run -d --image)",
            )
        }
    };
    remote::main(host, verb)
}
