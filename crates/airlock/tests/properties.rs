//! Property tests for every parser: no input panics, and what is printed
//! parses back to the same thing.

use airlock::check::{self, paths, Host};
use airlock::spec::{self, FileMode, IdMap, Mount, SandboxSpec, Size};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn size_parser_never_panics(s in ".{0,24}") {
        let _ = spec::parse_size(&s);
    }

    #[test]
    fn sizes_with_suffixes(n in 0u64..1_000_000, suffix in prop::sample::select(vec![("", 1u64), ("K", 1 << 10), ("M", 1 << 20), ("G", 1 << 30)])) {
        prop_assert_eq!(spec::parse_size(&format!("{n}{}", suffix.0)).unwrap().0, n * suffix.1);
    }

    #[test]
    fn mode_parser_never_panics_and_round_trips(s in ".{0,12}", m in 0u32..=0o7777) {
        let _ = spec::parse_mode(&s);
        prop_assert_eq!(spec::parse_mode(&format!("{m:o}")).unwrap().0, m);
    }

    #[test]
    fn capability_parser_never_panics(s in ".{0,30}") {
        let _ = spec::parse_capability(&s);
    }

    #[test]
    fn json_and_toml_never_panic(s in ".{0,200}") {
        let _ = spec::from_json(&s);
        let _ = spec::from_toml(&s);
        let _ = spec::from_str_auto(&s);
    }

    #[test]
    fn json_with_spec_shape_never_panics(field in prop::sample::select(vec!["process", "filesystem", "namespaces", "identity", "time", "hostname", "capabilities"]), value in prop::sample::select(vec!["null", "1", "-1", "\"x\"", "[]", "{}", "[{\"type\": \"bind\"}]", "{\"mounts\": [{\"type\": \"tmpfs\", \"destination\": \"/t\", \"size\": \"12Q\"}]}", "true"])) {
        let _ = spec::from_json(&format!("{{\"{field}\": {value}}}"));
    }

    #[test]
    fn normalize_is_absolute_and_idempotent(p in "[a-z./]{0,30}") {
        let n = paths::normalize(&p);
        prop_assert!(n.starts_with('/'));
        prop_assert!(!n.split('/').any(|c| c == ".." || c == "."));
        prop_assert_eq!(paths::normalize(&n), n.clone());
    }

    #[test]
    fn check_never_panics(src in "[a-z./]{0,20}", readonly: bool, devices: bool, caps in prop::collection::vec("[A-Za-z_]{0,16}", 0..3)) {
        let mut s = SandboxSpec::builder().args(["true"]).build();
        s.filesystem.mounts.push(Mount::Bind { source: format!("/{src}"), destination: "/x".into(), readonly, devices, noexec: false, recursive: true });
        s.capabilities = caps;
        let _ = check::check(&s, &Host::default());
    }

    #[test]
    fn spec_json_round_trips(spec in arb_spec()) {
        let text = spec.to_json_pretty();
        prop_assert_eq!(spec::from_json(&text).unwrap(), spec);
    }
}

fn arb_mount() -> impl Strategy<Value = Mount> {
    let path = "/[a-z]{1,8}(/[a-z]{1,8}){0,2}";
    prop_oneof![
        (path, path, any::<bool>(), any::<bool>()).prop_map(
            |(source, destination, readonly, devices)| Mount::Bind {
                source,
                destination,
                readonly,
                devices,
                noexec: false,
                recursive: true,
            }
        ),
        (
            path,
            prop::option::of(0u64..1 << 40),
            prop::option::of(0u32..=0o7777)
        )
            .prop_map(|(destination, size, mode)| Mount::Tmpfs {
                destination,
                size: size.map(Size),
                mode: mode.map(FileMode),
                readonly: false,
                noexec: false,
                copy_up: false,
            }),
        path.prop_map(|destination| Mount::Proc { destination }),
        path.prop_map(|destination| Mount::Dev { destination }),
        (path, ".{0,40}").prop_map(|(destination, content)| Mount::File {
            destination,
            content,
            mode: None,
            bind: false,
            chmod: false,
        }),
        (path, path).prop_map(|(target, destination)| Mount::Symlink {
            target,
            destination
        }),
        path.prop_map(|destination| Mount::RemountReadOnly { destination }),
        (
            path,
            prop::collection::vec(path, 1..3),
            any::<bool>(),
            prop::option::of((path, path))
        )
            .prop_map(|(destination, lower, writable, dirs)| Mount::Overlay {
                destination,
                lower,
                writable: writable || dirs.is_some(),
                size: None,
                upper_dir: dirs.as_ref().map(|d| d.0.clone()),
                work_dir: dirs.map(|d| d.1),
            }),
    ]
}

fn arb_spec() -> impl Strategy<Value = SandboxSpec> {
    (
        prop::collection::vec(".{0,10}", 1..4),
        prop::collection::vec(arb_mount(), 0..6),
        "[a-z]{1,10}",
        any::<[bool; 8]>(),
        prop::option::of(0u32..100_000),
        prop::collection::vec((0u32..1000, 0u32..1_000_000, 1u32..1000), 0..3),
    )
        .prop_map(|(args, mounts, hostname, ns, uid, maps)| {
            let mut s = SandboxSpec::builder().args(args).hostname(hostname).build();
            s.filesystem.mounts = mounts;
            let n = &mut s.namespaces;
            (
                n.mount, n.pid, n.uts, n.ipc, n.net, n.user, n.cgroup, n.time,
            ) = (ns[0], ns[1], ns[2], ns[3], ns[4], ns[5], ns[6], ns[7]);
            s.process.uid = uid;
            s.identity.uid_map = maps
                .into_iter()
                .map(|(inside, outside, count)| IdMap {
                    inside,
                    outside,
                    count,
                })
                .collect();
            s
        })
}
