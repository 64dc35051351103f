//! `airlock-runtime`: runc's command line over airlock's sandboxes, so
//! podman, containerd and the CRI drive airlock as they drive runc. Only
//! argument handling lives here; the bundle conversion is in `config`, the
//! verbs in `commands`, both over the airlock library.

mod cgroups;
mod commands;
mod config;
mod console;
mod exec;
mod hooks;
mod log;
mod personality;

use clap::{Parser, Subcommand};

use liboci_cli::{CommonCmd, GlobalOpts, StandardCmd};

/// Run OCI bundles in airlock sandboxes (runc's command line).
/// `--rootless` as runc takes it (Go's ParseBool, or auto in any case, or
/// empty for auto), as true, false or auto.
fn rootless_value(s: &str) -> Result<String, String> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok("true".into()),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok("false".into()),
        s if s.is_empty() || s.eq_ignore_ascii_case("auto") => Ok("auto".into()),
        _ => Err("true, false or auto (as runc: 1, t, TRUE, 0, f, FALSE, ...)".into()),
    }
}

#[derive(Parser, Debug)]
#[command(name = "airlock-runtime", version, about, long_about = None)]
struct Cli {
    #[command(flatten)]
    global: GlobalOpts,
    /// Accepted for runc compatibility; airlock picks rootless mode from
    /// the caller's ids (`true` as root is refused).
    #[arg(long, value_name = "true|false|auto", value_parser = rootless_value)]
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
    /// Write the man pages (airlock-runtime.1 and one per verb) into DIR,
    /// as man/ holds them.
    #[command(hide = true)]
    Man { dir: std::path::PathBuf },
    /// Refused by name, whatever follows (liboci-cli spells the verb
    /// `checkpointt`): podman asks `checkpoint --help` whether a runtime
    /// can checkpoint, and takes a failure for no.
    #[command(hide = true, disable_help_flag = true)]
    Checkpoint {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

/// The command line, with the words liboci-cli's (youki's) types carry
/// made airlock's: one line per verb, the verbs airlock refuses hidden,
/// and no youki in the options.
fn command() -> clap::Command {
    use clap::CommandFactory;
    let about = [
        (
            "create",
            "Create a container from a bundle; its process waits for `start`",
        ),
        ("start", "Start a created container's process"),
        (
            "state",
            "Print a container's state (the runtime spec's JSON)",
        ),
        (
            "kill",
            "Send a signal to a container's process (--all: to every process in it)",
        ),
        (
            "delete",
            "Delete a stopped container (--force: kill it first)",
        ),
        ("exec", "Run another process in a running container"),
        (
            "features",
            "Print what this runtime supports (the runtime spec's features JSON)",
        ),
        ("list", "List the containers in the state root"),
        ("pause", "Freeze every process of a container"),
        ("ps", "List the processes of a container"),
        ("resume", "Thaw a paused container"),
        ("run", "Create a container and start it"),
        ("update", "Change a running container's resource limits"),
        (
            "spec",
            "Write a config.json template that airlock runs (--rootless: for a rootless runtime)",
        ),
    ];
    let mut cmd = Cli::command();
    for (name, text) in about {
        cmd = cmd.mut_subcommand(name, |c| c.about(text).long_about(None));
    }
    for unsupported in ["checkpointt", "events"] {
        cmd = cmd.mut_subcommand(unsupported, |c| c.hide(true));
    }
    cmd.mut_arg("log", |a| a.help("Write the runtime's log to this file (default: stderr)"))
        .mut_arg("debug", |a| {
            a.help("Log debug messages too, and copy findings and notes to stderr")
        })
        .mut_arg("root", |a| {
            a.help("Where container state is kept (default /run/airlock-runtime; $XDG_RUNTIME_DIR/airlock-runtime rootless)")
        })
        .mut_arg("systemd_cgroup", |a| {
            a.help("Take linux.cgroupsPath as systemd's slice:prefix:name (refused where systemd runs the host)")
        })
        .mut_arg("log_format", |a| {
            // As runc, another value is refused, not taken as text.
            a.help("The log's format: text or json")
                .value_parser(["text", "json"])
        })
        .mut_subcommand("kill", |c| {
            // runc's default signal.
            c.mut_arg("signal", |a| {
                a.required(false)
                    .default_value("SIGTERM")
                    .help("The signal (KILL, TERM, 9, SIGUSR1, ...)")
            })
        })
        .mut_subcommand("exec", |c| {
            console_socket(c).mut_arg("cap", |a| {
                a.help("Add a capability to the process (its bounding, permitted, effective, inheritable and ambient sets)")
            })
        })
        .mut_subcommand("create", |c| no_pivot(console_socket(c)))
        .mut_subcommand("run", |c| no_pivot(console_socket(c)))
}

/// `--no-new-keyring`, as runc's: the container and its execs keep the
/// caller's session keyring.
fn no_new_keyring(c: clap::Command) -> clap::Command {
    c.mut_arg("no_new_keyring", |a| {
        a.help("Keep the caller's session keyring, whose keys the container then possesses, instead of a new one for the container and each exec (for a host whose seccomp profile refuses keyctl)")
    })
}

/// The help of `--console-socket`, which liboci-cli's words get wrong.
fn console_socket(c: clap::Command) -> clap::Command {
    c.mut_arg("console_socket", |a| {
        a.help("A unix socket that receives the terminal's master side (for process.terminal)")
    })
}

/// `--no-pivot`, which airlock refuses.
fn no_pivot(c: clap::Command) -> clap::Command {
    no_new_keyring(c).mut_arg("no_pivot", |a| {
        a.help("Refused: airlock always pivots into the container's root (a rootfs on ramfs is not supported)")
    })
}

fn main() {
    use clap::FromArgMatches;
    // Hooks and the runner are waited for.
    airlock::signals::default_child_signal();
    let cli = Cli::from_arg_matches(&command().get_matches()).unwrap_or_else(|e| e.exit());
    if let Command::Man { dir } = &cli.command {
        // Without the hidden verbs, and without the commit, so that the
        // shipped pages change only with the definitions.
        let cmd = command().mut_subcommand("man", |c| c.hide(true));
        if let Err(e) = clap_mangen::generate_to(cmd, dir) {
            eprintln!("airlock-runtime: man {}: {e}", dir.display());
            std::process::exit(1);
        }
        return;
    }
    let log = log::Log::open(&cli.global);
    let ctx = commands::Ctx::new(&cli.global, cli.allow_unsafe.clone(), log.clone());
    if let Some(r) = cli.rootless.as_deref() {
        if r == "true" && is_root() {
            log.fail(
                "--rootless=true as root: airlock decides rootless mode from the caller's ids",
            );
        }
    }
    // runc's exec exits 255 when it could not run the process, so that a
    // caller tells that from the process's own status 1.
    let failed = match &cli.command {
        Command::Common(c) if matches!(**c, CommonCmd::Exec(_)) => 255,
        _ => 1,
    };
    let result = match cli.command {
        Command::Standard(c) => commands::standard(&ctx, c),
        Command::Common(c) => commands::common(&ctx, *c),
        Command::Man { .. } => unreachable!("handled above"),
        Command::Checkpoint { .. } => Err("`checkpoint` is not supported".into()),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => log.fail_with(&config::scheduling::in_oci_words(&e), failed),
    }
}

/// Root, as the library launches it: not uid 0 of a user namespace of
/// one id (`unshare -r`), which launches as a rootless caller.
pub(crate) fn is_root() -> bool {
    airlock::plan::Caller::here(
        rustix::process::geteuid().as_raw(),
        rustix::process::getegid().as_raw(),
    )
    .is_root()
}
