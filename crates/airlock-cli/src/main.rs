//! The `airlock` command: argument handling over the airlock library.

use airlock_cli::lifecycle_cmd as life;
use airlock_cli::remote::{self, Verb};
use airlock_cli::{attach_cmd, check_cmd, image_cmd, run, version};
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
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

/// The options every verb takes.
#[derive(clap::Args)]
struct Global {
    /// Where sandboxes with state live (default /run/airlock as root,
    /// $XDG_RUNTIME_DIR/airlock or else /tmp/airlock-UID otherwise; or
    /// $AIRLOCK_STATE_ROOT).
    #[arg(long, global = true, value_name = "DIR")]
    state_root: Option<std::path::PathBuf>,
    /// Work through the airlockd at this socket (unix:///PATH) instead
    /// of on this machine's state root: run -d, create, start, exec,
    /// attach, ps, inspect, logs, stop, kill, wait, rm, events, stats.
    #[arg(long, global = true, value_name = "URL", env = "AIRLOCK_HOST")]
    host: Option<String>,
}

/// `airlock run` alone: the same options and the same verb, without the
/// others. clap builds every verb's arguments before it parses one (the
/// run and create verbs' many flags twice): about 40 page faults and
/// 0.9 MiB of peak memory of every one-shot run's start; see [`parse`].
#[derive(Parser)]
#[command(name = "airlock", max_term_width = 100, disable_help_subcommand = true)]
struct RunLine {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: RunVerb,
}

#[derive(Subcommand)]
enum RunVerb {
    Run(Box<run::RunArgs>),
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
    /// Remove stopped and created sandboxes (-f: running ones too).
    Rm(life::RmArgs),
    /// A daemon's lifecycle events as they happen (needs --host).
    Events(remote::EventsArgs),
    /// A sandbox's memory, CPU, pids and I/O counters, now.
    Stats(remote::StatsArgs),
    Check(check_cmd::CheckArgs),
    Image(image_cmd::ImageArgs),
    /// Print a shell completion script: `airlock completions bash > /etc/bash_completion.d/airlock`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) built from these definitions, or write
    /// one per verb into DIR.
    #[command(hide = true)]
    Man {
        dir: Option<std::path::PathBuf>,
    },
}

fn main() -> ExitCode {
    // The runner, and what `exec` and `run -d` start, are waited for.
    airlock::signals::default_child_signal();
    let mut argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let mut expansions = 0;
    let (cli, matches) = loop {
        let matches = match parse(&argv) {
            Ok(m) => m,
            Err(e) => return usage_error(e, &argv),
        };
        if let Some(rewritten) = run::bwrap::overlay_after_layers(&argv, &matches) {
            argv = rewritten;
            continue;
        }
        // bwrap's `--args FD`: its arguments go where it stood, and the
        // whole line is parsed again (they may hold another --args).
        match args_fd_count(&matches) {
            0 => match <Cli as clap::FromArgMatches>::from_arg_matches(&matches) {
                Ok(c) => break (c, matches),
                Err(e) => return usage_error(e, &argv),
            },
            _ if expansions == 16 => return run::refuse("--args: nested more than 16 deep"),
            n => match run::bwrap::expand_args(&argv, n) {
                Ok(expanded) => {
                    argv = expanded;
                    expansions += 1;
                }
                Err(e) => return run::refuse(e),
            },
        }
    };
    // Not through a daemon: a write to its closed socket would be a
    // SIGPIPE too, and end the client before it can say why.
    let remote = cli.global.host.as_deref().is_some_and(|h| !h.is_empty());
    let local_print = matches!(
        cli.command,
        Command::Ps(_) | Command::Inspect(_) | Command::Logs(_) | Command::Stats(_)
    );
    let own_print = matches!(
        cli.command,
        Command::Completions { .. } | Command::Man { .. } | Command::Check(_)
    );
    if own_print || (local_print && !remote) {
        airlock::signals::default_pipe_signal();
    }
    // Completions and the man page describe this binary: no daemon, no state.
    match cli.command {
        Command::Completions { shell } => {
            let mut cmd = command(false);
            clap_complete::generate(shell, &mut cmd, "airlock", &mut std::io::stdout());
            return ExitCode::SUCCESS;
        }
        Command::Man { dir } => return man(dir),
        _ => {}
    }
    // A linter of this machine's view: what a local run would refuse.
    if let Command::Check(args) = cli.command {
        return check_cmd::main(args, local_context(cli.global.state_root));
    }
    if let Some(host) = cli.global.host.as_deref().filter(|h| !h.is_empty()) {
        if cli.global.state_root.is_some() {
            return run::refuse(
                "--state-root is not available with --host: the daemon keeps its sandboxes in its configuration's state_root",
            );
        }
        return remote_main(host, cli.command, &matches);
    }
    let ctx = local_context(cli.global.state_root);
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
        Command::Image(args) => image_cmd::main(args, &ctx),
        Command::Check(_) | Command::Completions { .. } | Command::Man { .. } => {
            unreachable!("handled above")
        }
    }
}

/// This machine's context for the local verbs, its state root the
/// global `--state-root` when given.
fn local_context(state_root: Option<std::path::PathBuf>) -> airlock::Context {
    let mut ctx = airlock::Context::current();
    if let Some(dir) = state_root {
        ctx.state_root = std::path::absolute(&dir).unwrap_or(dir);
    }
    ctx
}

/// Parse the command line. `airlock run ...` is tried against [`RunLine`]
/// first, and kept only when that parses cleanly: the matches are the
/// same (the same ids, the same `run` verb), so what follows cannot tell.
/// Anything else, help and every error included, is parsed again by the
/// whole command line, so it reads exactly as it always has.
fn parse(argv: &[std::ffi::OsString]) -> Result<clap::ArgMatches, clap::Error> {
    if argv.get(1).is_some_and(|verb| verb == "run") {
        if let Ok(m) = <RunLine as clap::CommandFactory>::command().try_get_matches_from(argv) {
            return Ok(m);
        }
    }
    command(false).try_get_matches_from(argv)
}

/// The command line, with `--version` saying the commit and, when it is
/// asked for, the kernel features found now.
fn command(probe: bool) -> clap::Command {
    let cmd = <Cli as clap::CommandFactory>::command();
    const SHORT: &str = concat!(
        env!("CARGO_PKG_VERSION"),
        " (commit ",
        env!("AIRLOCK_GIT_COMMIT"),
        ")"
    );
    if !probe {
        return cmd.version(SHORT).long_version(SHORT);
    }
    // clap keeps &'static text; this process prints it and exits.
    let long: &'static str =
        Box::leak(format!("{SHORT}\n{}", version::features()).into_boxed_str());
    cmd.version(SHORT).long_version(long)
}

/// A usage error exits 125 like every error of airlock's own (as podman
/// does; `check`'s 2, as for a spec it cannot read), so that 126, 127 and the rest stay the workload's; help and
/// version are not errors. `--version` also says what this kernel offers:
/// probed only once clap has found that airlock's own version was asked
/// for (not a workload's `--version`), by parsing `argv` again with it.
fn usage_error(e: clap::Error, argv: &[std::ffi::OsString]) -> ExitCode {
    use clap::error::ErrorKind;
    let e = match e.kind() {
        ErrorKind::DisplayVersion => command(true).try_get_matches_from(argv).err().unwrap_or(e),
        _ => e,
    };
    // bubblewrap's --overlay RWSRC WORKDIR DEST goes by its own name,
    // not by the one the command line was rewritten to.
    let text = e.render().to_string();
    if text.contains("--bwrap-overlay") {
        eprint!("{}", text.replace("--bwrap-overlay", "--overlay"));
    } else {
        let _ = e.print();
    }
    let check = verb(argv).is_some_and(|v| v == "check");
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => ExitCode::SUCCESS,
        // `airlock check` is a linter: 1 says refused, 2 that it could
        // not judge (no spec given among them), as its help says; with
        // `--format json` its reader gets JSON for that too, as for a
        // spec it cannot read.
        _ if check => {
            if asks_json(argv) {
                // clap's lines up to its usage: one names what is
                // missing on the line after "not provided:".
                let said: Vec<&str> = text
                    .lines()
                    .take_while(|l| !l.starts_with("Usage:"))
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .collect();
                let msg = said.join(" ");
                let msg = msg.strip_prefix("error: ").unwrap_or(&msg);
                println!("{}", serde_json::json!({ "error": msg }));
            }
            ExitCode::from(2)
        }
        _ => ExitCode::from(run::EXIT_REFUSED),
    }
}

/// Does a command line clap could not parse ask for `--format json`?
fn asks_json(argv: &[std::ffi::OsString]) -> bool {
    let words: Vec<_> = argv.iter().filter_map(|w| w.to_str()).collect();
    words.contains(&"--format=json") || words.windows(2).any(|w| w == ["--format", "json"])
}

/// The verb of a command line clap could not parse: its first word that
/// is neither an option nor the value of a global one (`airlock
/// --state-root DIR check`).
fn verb(argv: &[std::ffi::OsString]) -> Option<&std::ffi::OsStr> {
    let mut words = argv.iter().skip(1);
    while let Some(w) = words.next() {
        match w.to_str() {
            Some("--state-root" | "--host") => {
                words.next();
            }
            Some(s) if s.starts_with('-') => {}
            _ => return Some(w),
        }
    }
    None
}

/// How many `--args FD` run or create was given.
fn args_fd_count(m: &clap::ArgMatches) -> usize {
    m.subcommand()
        .filter(|(n, _)| *n == "run" || *n == "create")
        .and_then(|(_, sub)| sub.get_many::<i32>("args"))
        .map_or(0, |v| v.count())
}

/// `airlock man [DIR]`: the man page on stdout, or, with DIR, a page for
/// airlock and each of its verbs written there (as `man/` holds them).
/// Without the commit, so that the shipped pages change only with the
/// definitions.
fn man(dir: Option<std::path::PathBuf>) -> ExitCode {
    let cmd = command(false)
        .version(env!("CARGO_PKG_VERSION"))
        .long_version(env!("CARGO_PKG_VERSION"));
    let r = match &dir {
        None => clap_mangen::Man::new(cmd).render(&mut std::io::stdout()),
        Some(d) => clap_mangen::generate_to(cmd, d),
    };
    match (r, dir) {
        (Ok(()), _) => ExitCode::SUCCESS,
        (Err(e), Some(d)) => run::refuse(format!("man {}: {e}", d.display())),
        (Err(e), None) => run::refuse(format!("man: {e}")),
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
        Command::Check(_) | Command::Completions { .. } | Command::Man { .. } => {
            unreachable!("handled in main")
        }
        Command::Image(_) => {
            return run::refuse(
                "airlock image works on this machine's store; with --host the daemon pulls an image when a sandbox is created (run -d --image)",
            )
        }
    };
    remote::main(host, verb)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn ids(cmd: &clap::Command) -> Vec<String> {
        let mut v: Vec<String> = cmd
            .get_arguments()
            .map(|a| a.get_id().to_string())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn the_run_line_is_the_whole_lines_run_verb() {
        RunLine::command().debug_assert();
        let (mut full, mut fast) = (command(false), RunLine::command());
        full.build();
        fast.build();
        let full_run = full.find_subcommand("run").expect("run");
        let fast_run = fast.find_subcommand("run").expect("run");
        assert_eq!(ids(full_run), ids(fast_run));
        assert_eq!(fast.get_subcommands().count(), 1);
        for argv in [
            &["airlock", "run", "--", "true"][..],
            &[
                "airlock",
                "run",
                "--bind",
                "/a",
                "/b",
                "--state-root",
                "/s",
                "-d",
                "--",
                "sh",
                "-c",
                "x",
            ],
        ] {
            let m = RunLine::command()
                .try_get_matches_from(argv)
                .expect("the run line parses it");
            let cli =
                <Cli as clap::FromArgMatches>::from_arg_matches(&m).expect("into the whole line's");
            assert!(matches!(cli.command, Command::Run(_)));
            let whole = command(false).try_get_matches_from(argv).unwrap();
            let sub = |m: &clap::ArgMatches| {
                let s = m.subcommand_matches("run").unwrap();
                let mut v: Vec<String> = s.ids().map(|i| i.to_string()).collect();
                v.sort();
                v
            };
            assert_eq!(sub(&m), sub(&whole), "{argv:?}");
        }
        // What the run line cannot parse goes to the whole line.
        assert_eq!(
            parse(&["airlock".into(), "run".into(), "--no-such-flag".into()])
                .unwrap_err()
                .kind(),
            clap::error::ErrorKind::UnknownArgument
        );
        assert!(parse(&["airlock".into(), "ps".into()]).is_ok());
    }
}
