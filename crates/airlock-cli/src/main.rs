//! The `airlock` command: argument handling over the airlock library.

use airlock_cli::{check_cmd, image_cmd, run};
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
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Run(Box<run::RunArgs>),
    Check(check_cmd::CheckArgs),
    Image(image_cmd::ImageArgs),
}

fn main() -> ExitCode {
    let mut args = std::env::args_os();
    if args
        .nth(1)
        .is_some_and(|a| a == airlock::runner::RUNNER_ARG)
    {
        let mut num = || {
            args.next()
                .and_then(|p| p.to_str().and_then(|s| s.parse().ok()))
                .unwrap_or(-1)
        };
        let (parent, plan_fd, report_fd) = (num(), num(), num());
        airlock::runner::main(parent, plan_fd, report_fd);
    }
    let matches = <Cli as clap::CommandFactory>::command().get_matches();
    let cli = match <Cli as clap::FromArgMatches>::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    match cli.command {
        Command::Run(args) => {
            let sub = matches.subcommand_matches("run").expect("run was parsed");
            run::main(*args, sub)
        }
        Command::Check(args) => check_cmd::main(args),
        Command::Image(args) => image_cmd::main(args),
    }
}
