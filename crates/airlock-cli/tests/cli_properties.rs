//! The CLI's argument handling never panics: arbitrary mount arguments end
//! in a spec or a refusal (125, usage errors included), never a crash.

mod common;
use common::*;
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn mount_arguments_never_panic(
        flag in prop::sample::select(vec!["--bind", "--ro-bind", "--dev-bind", "--symlink", "--tmpfs", "--dir", "--proc", "--cap-add", "--allow-unsafe", "--uid", "--hostname"]),
        a in "[ -~]{0,20}",
        b in "[ -~]{0,20}",
    ) {
        let two = matches!(flag, "--bind" | "--ro-bind" | "--dev-bind" | "--symlink");
        let mut args = vec!["run", "--print-spec", flag, a.as_str()];
        if two {
            args.push(b.as_str());
        }
        args.extend_from_slice(&["--", "true"]);
        let r = output(airlock(&args));
        prop_assert!([0, 125].contains(&r.code), "exit {} for {:?}: {}", r.code, args, r.stderr);
        prop_assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    }
}
