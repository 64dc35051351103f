#![no_main]
//! `airlock run`'s arguments (mount flags, sizes, durations, rlimits,
//! capability names) on arbitrary NUL-separated argument lists.
//!
//! A line with a flag that reads a file or a handed-over file descriptor
//! (`--spec`, `--seccomp-profile FILE`, `--file`, `--bind-data`,
//! `--ro-bind-data`, `--seccomp`, `--add-seccomp-fd`) is skipped: in the
//! fuzzer those would read /dev/zero, the terminal, or libFuzzer's own
//! descriptors, and an input's outcome would depend on the last one's.
//! `main`'s rewriting of the line (`--args FD`) is not fuzzed either.
use clap::parser::ValueSource;
use libfuzzer_sys::fuzz_target;

const READS: &[&str] = &[
    "spec",
    "file",
    "bind_data",
    "ro_bind_data",
    "seccomp_fd",
    "add_seccomp_fd",
];

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let args = std::iter::once("run").chain(text.split('\0'));
    let cmd = <airlock_cli::run::RunArgs as clap::Args>::augment_args(clap::Command::new("run"));
    let Ok(m) = cmd.try_get_matches_from(args) else { return };
    let given = |id: &str| m.value_source(id) == Some(ValueSource::CommandLine);
    if READS.iter().any(|id| given(id)) {
        return;
    }
    if m
        .get_one::<String>("seccomp_profile")
        .is_some_and(|p| p != "default" && p != "none")
    {
        return;
    }
    if let Ok(a) = <airlock_cli::run::RunArgs as clap::FromArgMatches>::from_arg_matches(&m) {
        if let Ok(spec) = airlock_cli::run::build_spec(&a, &m) {
            let _ = airlock::spec::validate(&spec);
        }
    }
});
