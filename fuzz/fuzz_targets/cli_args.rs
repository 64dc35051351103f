#![no_main]
//! `airlock run`'s arguments (mount flags, sizes, durations, rlimits,
//! capability names) on arbitrary NUL-separated argument lists.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let args = std::iter::once("run").chain(text.split('\0'));
    let cmd = <airlock_cli::run::RunArgs as clap::Args>::augment_args(clap::Command::new("run"));
    if let Ok(m) = cmd.try_get_matches_from(args) {
        if let Ok(a) = <airlock_cli::run::RunArgs as clap::FromArgMatches>::from_arg_matches(&m) {
            if let Ok(spec) = airlock_cli::run::build_spec(&a, &m) {
                let _ = airlock::spec::validate(&spec);
            }
        }
    }
});
