//! `airlock-runtime`: runc's command line over airlock's sandboxes, so
//! podman, containerd and the CRI drive airlock as they drive runc. Only
//! argument handling lives here; the bundle conversion is in `config`, the
//! verbs in `commands`, both over the airlock library.

mod cgroups;
mod commands;
mod config;
mod exec;
mod hooks;
mod log;
mod personality;

use clap::{Parser, Subcommand};
use liboci_cli::{CommonCmd, GlobalOpts, StandardCmd};

/// Run OCI bundles in airlock sandboxes (runc's command line).
#[derive(Parser, Debug)]
#[command(name = "airlock-runtime", version, about, long_about = None)]
struct Cli {
    #[command(flatten)]
    global: GlobalOpts,
    /// Accepted for runc compatibility; airlock picks rootless mode from
    /// the caller's ids (`true` as root is refused).
    #[arg(long, value_name = "true|false|auto")]
    rootless: Option<String>,
    /// Acknowledge a guardrail code for every container this call makes
    /// (see `airlock check --list`); repeatable.
    #[arg(long = "allow-unsafe", value_name = "CODE")]
    allow_unsafe: Vec<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    #[command(flatten)]
    Standard(StandardCmd),
    #[command(flatten)]
    Common(Box<CommonCmd>),
}

fn main() {
    let cli = Cli::parse();
    let log = log::Log::open(&cli.global);
    let ctx = commands::Ctx::new(&cli.global, cli.allow_unsafe.clone(), log.clone());
    if let Some(r) = cli.rootless.as_deref() {
        if r == "true" && is_root() {
            log.fail(
                "--rootless=true as root: airlock decides rootless mode from the caller's ids",
            );
        }
    }
    let result = match cli.command {
        Command::Standard(c) => commands::standard(&ctx, c),
        Command::Common(c) => commands::common(&ctx, *c),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => log.fail(&e),
    }
}

pub(crate) fn is_root() -> bool {
    // SAFETY: geteuid has no arguments and cannot fail.
    unsafe { libc::geteuid() == 0 }
}
