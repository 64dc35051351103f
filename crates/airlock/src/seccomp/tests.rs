//! The profiles compile, round-trip through the plan and keep their refusals.
use super::super::*;
use super::*;

#[test]
fn default_profile_compiles_and_leaves_out_the_escapes() {
    assert_eq!(filters(&Seccomp::Default).unwrap().len(), 2);
    for bad in [
        "keyctl",
        "bpf",
        "mount",
        "ptrace",
        "open_by_handle_at",
        "unshare",
        "setns",
        "kexec_load",
        "userfaultfd",
        "perf_event_open",
        "io_uring_setup",
    ] {
        assert!(!ALLOWED.contains(&bad), "{bad}");
    }
    for good in [
        "read",
        "write",
        "openat",
        "execve",
        "wait4",
        "futex",
        "epoll_wait",
    ] {
        assert!(ALLOWED.contains(&good), "{good}");
    }
}

#[test]
fn oci_profile_errors_name_the_rule() {
    let p: OciSeccomp = serde_json::from_str(
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["no_such_call"], "action": "SCMP_ACT_ERRNO"}]}"#,
    )
    .unwrap();
    let e = filters(&Seccomp::custom(p)).unwrap_err();
    assert_eq!(e.field, "seccomp.oci.syscalls[0].names");
    let p: OciSeccomp = serde_json::from_str(r#"{"defaultAction": "SCMP_ACT_DANCE"}"#).unwrap();
    assert_eq!(
        filters(&Seccomp::custom(p)).unwrap_err().field,
        "seccomp.oci.defaultAction"
    );
}

#[test]
fn programs_round_trip_through_the_plan() {
    let progs = compile(&Seccomp::Default).unwrap();
    assert_eq!(progs.len(), 2);
    assert!(progs.iter().all(|p| p.len() > 2));
    let json = serde_json::to_string(&progs).unwrap();
    let back: Vec<Program> = serde_json::from_str(&json).unwrap();
    assert_eq!(back, progs);
    assert!(compile(&Seccomp::None).unwrap().is_empty());
    assert!(serde_json::from_str::<Program>("\"abc\"").is_err());
}

#[test]
fn the_precompiled_default_is_byte_for_byte_a_fresh_compile() {
    let fresh = compile_now(&Seccomp::Default).unwrap();
    match &precompiled::PRECOMPILED {
        Some(p) => {
            let built: Vec<&[u8]> = p.programs.to_vec();
            let now: Vec<&[u8]> = fresh.iter().map(|p| p.0.as_slice()).collect();
            assert_eq!(built, now);
            assert_eq!(precompiled::usable(), Some(fresh.clone()));
        }
        None if precompiled::WHY_NOT.starts_with("a cross build") => {
            eprintln!("not precompiled: {}", precompiled::WHY_NOT)
        }
        None => panic!("not precompiled: {}", precompiled::WHY_NOT),
    }
    // Whichever way it came, the plan gets what compiling gives.
    assert_eq!(compile(&Seccomp::Default).unwrap(), fresh);
}

#[test]
fn hex_round_trip_and_refusals() {
    let p = Program((0..=255).chain(0..8).collect());
    let json = serde_json::to_string(&p).unwrap();
    assert!(json.starts_with("\"000102"), "{json}");
    assert_eq!(serde_json::from_str::<Program>(&json).unwrap(), p);
    for bad in ["\"0011223344556g77\"", "\"0011223344556é\""] {
        assert!(serde_json::from_str::<Program>(bad).is_err(), "{bad}");
    }
}

#[test]
fn custom_profiles_get_the_refusals_for_each_of_their_architectures() {
    let p: OciSeccomp = serde_json::from_str(
        r#"{"defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [{"names": ["read", "ioctl", "exit_group"], "action": "SCMP_ACT_ALLOW"}]}"#,
    )
    .unwrap();
    let refusals = compile_now(&Seccomp::Default).unwrap().pop().unwrap();
    let progs = compile_now(&Seccomp::custom(p.clone())).unwrap();
    assert_eq!(progs.len(), 2);
    assert_eq!(progs[1], refusals);
    let bare = Seccomp::Custom {
        oci: p.clone(),
        argument_filters: false,
    };
    assert_eq!(compile_now(&bare).unwrap().len(), 1);
    // Spelled without the field, a custom profile keeps them.
    let spec: Seccomp = serde_json::from_str(
        r#"{"profile": "custom", "oci": {"defaultAction": "SCMP_ACT_ERRNO"}}"#,
    )
    .unwrap();
    assert_eq!(
        spec,
        Seccomp::custom(serde_json::from_str(r#"{"defaultAction": "SCMP_ACT_ERRNO"}"#).unwrap())
    );
    // With i386 added, the refusals compare the i386 ioctl number (54)
    // too: added after their rules, the architecture got them.
    let jeq = |prog: &Program, k: u32| {
        prog.instructions()
            .iter()
            .any(|i| i.code == (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16 && i.k == k)
    };
    assert!(!jeq(&refusals, 54));
    let mut x86 = p;
    x86.architectures = vec!["SCMP_ARCH_X86_64".into(), "SCMP_ARCH_X86".into()];
    let progs = compile_now(&Seccomp::custom(x86)).unwrap();
    assert!(jeq(&progs[1], 54), "the i386 ioctl is not in the refusals");
    assert!(
        jeq(&progs[1], 16),
        "the x86_64 ioctl is not in the refusals"
    );
}

#[test]
fn oci_profile_compiles() {
    let p: OciSeccomp = serde_json::from_str(
        r#"{"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
            "syscalls": [{"names": ["read", "write", "exit_group", "no_such_call"], "action": "SCMP_ACT_ALLOW"},
                         {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                          "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]}]}"#,
    )
    .unwrap();
    filters(&Seccomp::custom(p)).unwrap();
}
