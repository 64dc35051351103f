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
    // An errno of 0 would make a refused call look done; past 4095 the
    // kernel keeps 16 bits of it (65536 is 0 too).
    for errno in [0, 4096, 65536] {
        let p: OciSeccomp = serde_json::from_str(&format!(
            r#"{{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{{"names": ["capset"], "action": "SCMP_ACT_ERRNO", "errnoRet": {errno}}}]}}"#
        ))
        .unwrap();
        let e = filters(&Seccomp::custom(p)).unwrap_err();
        assert_eq!(e.field, "seccomp.oci.syscalls[0].errnoRet", "{errno}");
        assert!(e.reason.contains("from 1 to 4095"), "{}", e.reason);
        let p: OciSeccomp = serde_json::from_str(&format!(
            r#"{{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": {errno}}}"#
        ))
        .unwrap();
        let e = filters(&Seccomp::custom(p)).unwrap_err();
        assert_eq!(e.field, "seccomp.oci.defaultErrnoRet", "{errno}");
    }
    // An argument past the sixth, whatever the comparison.
    for op in ["SCMP_CMP_EQ", "SCMP_CMP_MASKED_EQ"] {
        let p: OciSeccomp = serde_json::from_str(&format!(
            r#"{{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{{"names": ["capset"], "action": "SCMP_ACT_ERRNO", "args": [{{"index": 6, "value": 1, "op": "{op}"}}]}}]}}"#
        ))
        .unwrap();
        let e = filters(&Seccomp::custom(p)).unwrap_err();
        assert_eq!(e.field, "seccomp.oci.syscalls[0].args[0].index", "{op}");
    }
    // One argument compared twice in one rule (a range): named, not
    // libseccomp's bare "Invalid argument".
    let p: OciSeccomp = serde_json::from_str(
        r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_GE"}, {"index": 0, "value": 8, "op": "SCMP_CMP_LE"}]}]}"#,
    )
    .unwrap();
    let e = filters(&Seccomp::custom(p)).unwrap_err();
    assert_eq!(e.field, "seccomp.oci.syscalls[0].args[1]");
    assert!(e.reason.contains("args[0] does"), "{}", e.reason);
    // A tracer's message is 16 bits: 65536 is refused, not made 0.
    let p: OciSeccomp = serde_json::from_str(
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["capset"], "action": "SCMP_ACT_TRACE", "errnoRet": 65536}]}"#,
    )
    .unwrap();
    let e = filters(&Seccomp::custom(p)).unwrap_err();
    assert_eq!(e.field, "seccomp.oci.syscalls[0].errnoRet");
}

/// A mistyped key is an error, not a profile without its rules; Docker's
/// keys are read, and those airlock cannot honour refused by name unless
/// empty.
#[test]
fn oci_profile_keys_are_known_or_refused() {
    let e = serde_json::from_str::<OciSeccomp>(
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscals": [{"names": ["bpf"], "action": "SCMP_ACT_ERRNO"}]}"#,
    )
    .unwrap_err();
    assert!(e.to_string().contains("syscals"), "{e}");
    let rule = |extra: &str| -> OciSeccomp {
        serde_json::from_str(&format!(
            r#"{{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{{"names": ["mount"], "action": "SCMP_ACT_ALLOW"{extra}}}]}}"#
        ))
        .unwrap()
    };
    for extra in ["", r#", "comment": "why", "includes": {}, "excludes": {}"#] {
        filters(&Seccomp::custom(rule(extra))).unwrap();
    }
    for (extra, field) in [
        (
            r#", "includes": {"caps": ["CAP_SYS_ADMIN"]}"#,
            "seccomp.oci.syscalls[0].includes",
        ),
        (
            r#", "excludes": {"arches": ["s390x"]}"#,
            "seccomp.oci.syscalls[0].excludes",
        ),
    ] {
        let e = filters(&Seccomp::custom(rule(extra))).unwrap_err();
        assert_eq!(e.field, field, "{extra}");
    }
    let p: OciSeccomp = serde_json::from_str(
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "archMap": [{"architecture": "SCMP_ARCH_X86_64"}]}"#,
    )
    .unwrap();
    assert_eq!(
        filters(&Seccomp::custom(p)).unwrap_err().field,
        "seccomp.oci.archMap"
    );
    let p: OciSeccomp =
        serde_json::from_str(r#"{"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/x"}"#)
            .unwrap();
    assert_eq!(
        filters(&Seccomp::custom(p)).unwrap_err().field,
        "seccomp.oci.listenerPath"
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
    match &builtin::PRECOMPILED {
        Some(p) => {
            let built: Vec<&[u8]> = p.programs.to_vec();
            let now: Vec<&[u8]> = fresh.iter().map(|p| &*p.0).collect();
            assert_eq!(built, now);
            assert_eq!(precompiled::usable(), Some(fresh.clone()));
            let set_id = export(&default::set_id_refusals(&[]).unwrap()).unwrap();
            assert_eq!(p.set_id, &*set_id.0, "the set-id refusals");
        }
        None if builtin::WHY_NOT.starts_with("a cross build") => {
            eprintln!("not precompiled: {}", builtin::WHY_NOT)
        }
        None => panic!("not precompiled: {}", builtin::WHY_NOT),
    }
    // Whichever way it came, the plan gets what compiling gives.
    assert_eq!(compile(&Seccomp::Default).unwrap(), fresh);
}

#[test]
fn a_plan_names_the_precompiled_programs_and_gets_them_back() {
    if builtin::PRECOMPILED.is_none() {
        eprintln!("not precompiled: {}", builtin::WHY_NOT);
        return;
    }
    let mut progs = compile(&Seccomp::Default).unwrap();
    progs.extend(set_id_program(&Seccomp::Default).unwrap());
    let json = serde_json::to_string(&progs).unwrap();
    // Names, not the programs' several KiB of hex.
    assert!(json.len() < 40 * progs.len(), "{json}");
    for (i, p) in progs.iter().enumerate() {
        let name = serde_json::to_string(p).unwrap();
        assert!(name.starts_with(&format!("\"builtin:{i}:")), "{name}");
    }
    let back: Vec<Program> = serde_json::from_str(&json).unwrap();
    assert_eq!(back, progs);
    assert_eq!(
        back,
        compile_now(&Seccomp::Default)
            .unwrap()
            .into_iter()
            .chain(set_id_program(&Seccomp::Default).unwrap())
            .collect::<Vec<_>>()
    );
    // A copy of the same bytes is not the build's own: it goes as hex.
    let copy = Program(progs[0].0.to_vec().into());
    assert!(!serde_json::to_string(&copy).unwrap().contains("builtin"));
    assert_eq!(
        serde_json::from_str::<Program>(&serde_json::to_string(&copy).unwrap()).unwrap(),
        progs[0]
    );
    // Only the very program is honoured.
    let first = serde_json::to_string(&progs[0]).unwrap();
    let hash = first.trim_matches('"').rsplit(':').next().unwrap();
    let flipped = format!("{:016x}", u64::from_str_radix(hash, 16).unwrap() ^ 1);
    let refusals = [
        (first.replace(hash, &flipped), "differs from this binary's"),
        (
            format!("\"builtin:{}:{hash}\"", progs.len() + 5),
            "this binary has",
        ),
        (
            "\"builtin:zero:1\"".to_string(),
            "is not a built-in program's name",
        ),
        (
            "\"builtin:0\"".to_string(),
            "is not a built-in program's name",
        ),
    ];
    for (bad, why) in refusals {
        let e = serde_json::from_str::<Program>(&bad)
            .unwrap_err()
            .to_string();
        assert!(e.contains(why), "{bad}: {e}");
    }
}

#[test]
fn hex_round_trip_and_refusals() {
    let p = Program((0..=255).chain(0..8).collect::<Vec<u8>>().into());
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

/// How many instructions the kernel runs to find `nr`'s verdict, when it
/// fills its action cache at install (`seccomp_is_const_allow`): the walk
/// stops at a return, or at a load of anything but the number and the
/// architecture (an argument comparison, which the cache leaves alone).
fn steps_to_verdict(prog: &Program, arch: u32, nr: u32) -> usize {
    use libc::*;
    let insns = prog.instructions();
    let (mut pc, mut a, mut steps) = (0usize, 0u32, 0);
    while let Some(i) = insns.get(pc) {
        steps += 1;
        let code = u32::from(i.code);
        pc += 1;
        match code {
            c if c == BPF_LD | BPF_W | BPF_ABS => match i.k {
                0 => a = nr,
                4 => a = arch,
                _ => break,
            },
            c if c == BPF_ALU | BPF_AND | BPF_K => a &= i.k,
            c if c == BPF_JMP | BPF_JA => pc += i.k as usize,
            c if c & 0x07 == BPF_JMP && c & 0x08 == BPF_K => {
                let taken = match c & 0xf0 {
                    BPF_JEQ => a == i.k,
                    BPF_JGT => a > i.k,
                    BPF_JGE => a >= i.k,
                    BPF_JSET => a & i.k != 0,
                    _ => break,
                };
                pc += usize::from(if taken { i.jt } else { i.jf });
            }
            _ => break,
        }
    }
    steps
}

#[test]
fn every_syscall_finds_its_verdict_in_a_few_jumps() {
    // Installing a filter costs the kernel one walk per syscall number and
    // architecture, with interrupts off: a chain of 300 comparisons made
    // that 0.4 ms of every start. As a tree, a verdict is a few jumps away.
    let progs = compile_now(&Seccomp::Default).unwrap();
    let code = |c: u32| c as u16;
    let arch = progs[0]
        .instructions()
        .windows(2)
        .find(|w| w[0].code == code(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) && w[0].k == 4)
        .map(|w| w[1].k)
        .expect("the program checks the architecture");
    for prog in &progs {
        let worst = (0..512).map(|nr| steps_to_verdict(prog, arch, nr)).max();
        assert!(
            worst.unwrap() <= 40,
            "a syscall takes {worst:?} instructions of {} to reach its verdict",
            prog.len()
        );
    }
    let read = steps_to_verdict(&progs[0], arch, libc::SYS_read as u32);
    assert!(read > 1, "the walk did not reach the syscall comparisons");
}

#[test]
fn a_seccomp_object_holds_only_what_its_profile_reads() {
    let read = |text: &str| serde_json::from_str::<Seccomp>(text);
    assert_eq!(read(r#"{"profile": "default"}"#).unwrap(), Seccomp::Default);
    assert_eq!(read(r#"{"profile": "none"}"#).unwrap(), Seccomp::None);
    // An OCI profile given with the default one was silently not applied.
    let e = read(r#"{"profile": "default", "oci": {"defaultAction": "SCMP_ACT_ERRNO"}}"#)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("`oci` is read only with profile \"custom\""),
        "{e}"
    );
    let e = read(r#"{"profile": "none", "argument_filters": false}"#)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("`argument_filters`") && e.contains("\"none\""),
        "{e}"
    );
    let e = read(r#"{"profile": "default", "bogus": 1}"#)
        .unwrap_err()
        .to_string();
    assert!(e.contains("unknown field `bogus`"), "{e}");
    let e = read(r#"{"profile": "custom"}"#).unwrap_err().to_string();
    assert!(e.contains("needs `oci`"), "{e}");
    // What is written reads back the same.
    for s in [
        Seccomp::Default,
        Seccomp::None,
        Seccomp::Custom {
            oci: serde_json::from_str(r#"{"defaultAction": "SCMP_ACT_ERRNO"}"#).unwrap(),
            argument_filters: false,
        },
    ] {
        let text = serde_json::to_string(&s).unwrap();
        assert_eq!(read(&text).unwrap(), s, "{text}");
        let toml_text = toml::to_string(&std::collections::BTreeMap::from([("s", &s)])).unwrap();
        let back: std::collections::BTreeMap<String, Seccomp> = toml::from_str(&toml_text).unwrap();
        assert_eq!(back["s"], s, "{toml_text}");
    }
}

/// The verdict (`SECCOMP_RET_*` with its data) `prog` gives a call of
/// `nr` with `args` on `arch`: the classic BPF a seccomp filter is,
/// interpreted as the kernel runs it, for verdicts this host's kernel
/// cannot show (it answers a protocol it lacks with the same errno).
fn verdict(prog: &Program, arch: u32, nr: u32, args: [u64; 6]) -> u32 {
    use libc::*;
    let insns = prog.instructions();
    let word = |k: u32| -> u32 {
        match k {
            0 => nr,
            4 => arch,
            k if (16..64).contains(&k) => {
                let a = args[(k as usize - 16) / 8];
                match (k - 16) % 8 {
                    0 => a as u32,
                    _ => (a >> 32) as u32,
                }
            }
            k => panic!("load of seccomp_data offset {k}"),
        }
    };
    let (mut pc, mut a, mut x, mut mem) = (0usize, 0u32, 0u32, [0u32; 16]);
    loop {
        let i = insns[pc];
        pc += 1;
        let code = u32::from(i.code);
        match code {
            c if c == BPF_LD | BPF_W | BPF_ABS => a = word(i.k),
            c if c == BPF_LD | BPF_MEM => a = mem[i.k as usize],
            c if c == BPF_LDX | BPF_MEM => x = mem[i.k as usize],
            c if c == BPF_ST => mem[i.k as usize] = a,
            c if c == BPF_STX => mem[i.k as usize] = x,
            c if c == BPF_MISC | BPF_TAX => x = a,
            c if c == BPF_MISC | BPF_TXA => a = x,
            c if c == BPF_ALU | BPF_AND | BPF_K => a &= i.k,
            c if c == BPF_RET | BPF_K => return i.k,
            c if c == BPF_RET | BPF_A => return a,
            c if c == BPF_JMP | BPF_JA => pc += i.k as usize,
            c if c & 0x07 == BPF_JMP => {
                let operand = if c & 0x08 == BPF_X { x } else { i.k };
                let taken = match c & 0xf0 {
                    BPF_JEQ => a == operand,
                    BPF_JGT => a > operand,
                    BPF_JGE => a >= operand,
                    BPF_JSET => a & operand != 0,
                    op => panic!("jump op {op:#x}"),
                };
                pc += usize::from(if taken { i.jt } else { i.jf });
            }
            c => panic!("instruction {c:#x}"),
        }
    }
}

/// The verdict of `progs` together: the kernel takes the most severe of
/// its filters' answers, the lowest action compared as a signed number
/// (KILL_PROCESS is negative).
fn combined(progs: &[Program], arch: u32, nr: u32, args: [u64; 6]) -> u32 {
    progs
        .iter()
        .map(|p| verdict(p, arch, nr, args))
        .min_by_key(|v| (v & 0xffff_0000) as i32)
        .unwrap()
}

/// With TCP port rules, the stream protocols Landlock's TCP rights do not
/// cover are refused at socket(): multipath TCP, SMC and SCTP over IPv4
/// and IPv6, and the SMC family; TCP itself and other families pass.
#[cfg(target_arch = "x86_64")]
#[test]
fn port_rules_refuse_the_protocols_landlock_does_not_see() {
    const ARCH: u32 = 0xc000_003e; // AUDIT_ARCH_X86_64
    const ERRNO: u32 = 0x0005_0000; // SECCOMP_RET_ERRNO
    const ALLOW: u32 = 0x7fff_0000;
    let prog = mptcp_program().unwrap();
    let socket = libc::SYS_socket as u32;
    let call = |family: i32, protocol: u64| {
        verdict(&prog, ARCH, socket, [family as u64, 1, protocol, 0, 0, 0])
    };
    let refused = ERRNO | libc::EPROTONOSUPPORT as u32;
    for family in [libc::AF_INET, libc::AF_INET6] {
        for protocol in [262, 256, libc::IPPROTO_SCTP as u64] {
            assert_eq!(call(family, protocol), refused, "{family} {protocol}");
            // The kernel reads an int: high bits change nothing.
            assert_eq!(call(family, protocol | 1 << 32), refused);
        }
        assert_eq!(call(family, 0), ALLOW);
        assert_eq!(call(family, libc::IPPROTO_TCP as u64), ALLOW);
    }
    // SOCK_SEQPACKET is SCTP's alone, whatever the protocol and flags.
    let seqpacket = |family: i32, flags: i32| {
        let kind = (libc::SOCK_SEQPACKET | flags) as u64;
        verdict(&prog, ARCH, socket, [family as u64, kind, 0, 0, 0, 0])
    };
    for family in [libc::AF_INET, libc::AF_INET6] {
        assert_eq!(seqpacket(family, 0), refused);
        assert_eq!(
            seqpacket(family, libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC),
            refused
        );
    }
    assert_eq!(seqpacket(libc::AF_UNIX, 0), ALLOW);
    assert_eq!(call(43, 0), ERRNO | libc::EAFNOSUPPORT as u32);
    assert_eq!(call(libc::AF_UNIX, 0), ALLOW);
    assert_eq!(verdict(&prog, ARCH, libc::SYS_getpid as u32, [0; 6]), ALLOW);
}

/// A custom profile that lists other architectures (as every Docker,
/// podman and containerd one does): the native architecture's wide-int
/// refusals and its ENOSYS for newer calls are the native one's alone.
/// On x86 libseccomp makes a socket rule one of socketcall, whose first
/// argument is the call's number: a refusal of wide arguments there
/// refused every 32-bit socket; and a number it cannot name on x86 made
/// it drop the ENOSYS rule on every architecture.
#[cfg(target_arch = "x86_64")]
#[test]
fn a_profile_of_several_architectures_keeps_its_32_bit_sockets() {
    const X86_64: u32 = 0xc000_003e; // AUDIT_ARCH_X86_64
    const I386: u32 = 0x4000_0003; // AUDIT_ARCH_I386
    const ERRNO: u32 = 0x0005_0000;
    const ALLOW: u32 = 0x7fff_0000;
    let p: OciSeccomp = serde_json::from_str(
        r#"{"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "syscalls": [{"names": ["read", "write", "exit_group", "socket", "socketcall"], "action": "SCMP_ACT_ALLOW"}]}"#,
    )
    .unwrap();
    let progs = compile(&Seccomp::custom(p)).unwrap();
    let all = |arch: u32, nr: u32, args: [u64; 6]| -> Vec<u32> {
        progs
            .iter()
            .map(|prog| verdict(prog, arch, nr, args))
            .collect()
    };
    // i386: socketcall(SYS_SOCKET, ...) and socket (359) go through.
    assert_eq!(all(I386, 102, [1, 0xffd0_0000, 0, 0, 0, 0]), [ALLOW, ALLOW]);
    assert_eq!(all(I386, 359, [2, 1, 0, 0, 0, 0]), [ALLOW, ALLOW]);
    // x86_64: a family with its upper half set is refused.
    let socket = libc::SYS_socket as u32;
    assert_eq!(all(X86_64, socket, [2, 1, 0, 0, 0, 0]), [ALLOW, ALLOW]);
    let wide = all(X86_64, socket, [1 << 32 | 40, 1, 0, 0, 0, 0]);
    assert!(wide.contains(&(ERRNO | libc::EINVAL as u32)), "{wide:x?}");
    // Newer than every call it names: ENOSYS on x86_64, the default on
    // i386.
    assert_eq!(all(X86_64, 470, [0; 6])[0], ERRNO | libc::ENOSYS as u32);
    assert_eq!(all(I386, 470, [0; 6])[0], ERRNO | libc::EPERM as u32);
}

/// The default profile lets IPv4, IPv6 and netlink sockets be made only
/// with the protocols built into every kernel (any protocol as SOCK_RAW),
/// so that no socket() loads a protocol's module; the filter installed
/// (built at compile time) and the one compiled now agree.
#[cfg(target_arch = "x86_64")]
#[test]
fn the_default_profile_allows_only_builtin_socket_protocols() {
    const ARCH: u32 = 0xc000_003e; // AUDIT_ARCH_X86_64
    const ALLOW: u32 = 0x7fff_0000;
    const EPERM: u32 = 0x0005_0000 | libc::EPERM as u32;
    let socket = libc::SYS_socket as u32;
    for progs in [
        compile(&Seccomp::Default).unwrap(),
        compile_now(&Seccomp::Default).unwrap(),
    ] {
        let call = |family: i32, kind: i32, protocol: u64| {
            let args = [family as u64, kind as u64, protocol, 0, 0, 0];
            progs
                .iter()
                .map(|p| verdict(p, ARCH, socket, args))
                .min_by_key(|v| *v == ALLOW)
                .unwrap()
        };
        let stream = libc::SOCK_STREAM | libc::SOCK_CLOEXEC;
        for family in [libc::AF_INET, libc::AF_INET6] {
            for protocol in [0, 6, 17, 1, 58, 136, 262] {
                assert_eq!(call(family, stream, protocol), ALLOW, "{family} {protocol}");
            }
            // SCTP, L2TP/IP, SMC, DCCP: each a module.
            for protocol in [132, 115, 256, 33] {
                assert_eq!(call(family, stream, protocol), EPERM, "{family} {protocol}");
                assert_eq!(call(family, libc::SOCK_DGRAM, protocol), EPERM);
                // As raw sockets every protocol is the kernel's own.
                assert_eq!(
                    call(family, libc::SOCK_RAW | libc::SOCK_NONBLOCK, protocol),
                    ALLOW
                );
            }
            // High bits are not a way around the list.
            assert_eq!(call(family, stream, 6 | 1 << 32), EPERM);
        }
        for protocol in [0, 4, 9, 12, 15] {
            assert_eq!(
                call(libc::AF_NETLINK, libc::SOCK_RAW, protocol),
                ALLOW,
                "{protocol}"
            );
        }
        // The crypto API's and RDMA's netlink, ones no kernel has, and
        // generic netlink (its controller loads modules by family name).
        for protocol in [21, 20, 8, 22, 31, 16] {
            assert_eq!(
                call(libc::AF_NETLINK, libc::SOCK_RAW, protocol),
                EPERM,
                "{protocol}"
            );
        }
        assert_eq!(call(libc::AF_UNIX, stream, 0), ALLOW);
        assert_eq!(call(libc::AF_PACKET, libc::SOCK_RAW, 0x300), ALLOW);
        // Families left out answer as a kernel without them: EAFNOSUPPORT.
        const NO_FAMILY: u32 = 0x0005_0000 | libc::EAFNOSUPPORT as u32;
        for family in [
            libc::AF_VSOCK,
            libc::AF_ALG,
            libc::AF_KEY,
            libc::AF_BLUETOOTH,
            0,
            45,
            46,
            1000,
        ] {
            assert_eq!(call(family, stream, 0), NO_FAMILY, "{family}");
        }
        // A wide one is the second filter's EINVAL, which wins the tie.
        let wide = [
            (1u64 << 32) | libc::AF_UNIX as u64,
            stream as u64,
            0,
            0,
            0,
            0,
        ];
        let answers: Vec<u32> = progs
            .iter()
            .map(|p| verdict(p, ARCH, socket, wide))
            .collect();
        assert!(
            answers.contains(&(0x0005_0000 | libc::EINVAL as u32)),
            "{answers:?}"
        );
    }
}

/// A 64-bit process can still make 32-bit calls (`int 0x80` takes the
/// i386 table, a call number with bit 30 the x32 one), where every number
/// names another call and the native rules do not hold (Docker's and
/// runc's profiles once let `int 0x80` through). The default programs are
/// native only: any other architecture's call is killed, and an x32 one
/// is not allowed.
#[test]
fn calls_of_another_abi_are_not_let_through() {
    const X86_64: u32 = 0xc000_003e; // AUDIT_ARCH_X86_64
    const I386: u32 = 0x4000_0003; // AUDIT_ARCH_I386
    const ALLOW: u32 = 0x7fff_0000;
    const KILL_PROCESS: u32 = 0x8000_0000;
    const KILL_THREAD: u32 = 0;
    for progs in [
        compile(&Seccomp::Default).unwrap(),
        compile_now(&Seccomp::Default).unwrap(),
    ] {
        let combined = |arch, nr| combined(&progs, arch, nr, [0; 6]);
        // What refuses: kill, trap or an errno; never a log, a trace or
        // a notification that lets the call go on.
        let refuses = |v: u32| {
            matches!(
                v & 0xffff_0000,
                KILL_PROCESS | KILL_THREAD | 0x0003_0000 | 0x0005_0000
            )
        };
        // i386: read, write, getpid, execve, ptrace, clone, socketcall.
        // The whole process: a thread killed alone left the others hung.
        for nr in [3, 4, 20, 11, 26, 120, 102] {
            let v = combined(I386, nr) & 0xffff_0000;
            assert_eq!(v, KILL_PROCESS, "i386 {nr}: {v:#x}");
        }
        // 335: uretprobe, by its number where libseccomp cannot name it.
        for nr in [libc::SYS_read, libc::SYS_getppid, libc::SYS_execve, 335] {
            assert_eq!(combined(X86_64, nr as u32), ALLOW, "native {nr}");
            let x32 = combined(X86_64, nr as u32 | 0x4000_0000);
            assert!(refuses(x32), "x32 {nr}: {x32:#x}");
        }
    }
}

/// Under a custom profile whose default kills, clone3 still answers
/// ENOSYS (glibc's pthread_create and posix_spawn try it first, and fall
/// back to clone on ENOSYS only), as the profile does not name it; and a
/// profile naming exit_group only still lets every thread `exit`.
#[cfg(target_arch = "x86_64")]
#[test]
fn a_killing_default_leaves_clone3_enosys_and_exit_allowed() {
    const X86_64: u32 = 0xc000_003e; // AUDIT_ARCH_X86_64
    const ALLOW: u32 = 0x7fff_0000;
    const ENOSYS: u32 = 0x0005_0000 | libc::ENOSYS as u32;
    for default in ["SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL", "SCMP_ACT_TRAP"] {
        // futex_waitv (449) is named: newer than clone3 (435), so the
        // range of calls newer than the profile's does not hold clone3.
        let p: OciSeccomp = serde_json::from_str(&format!(
            r#"{{"defaultAction": "{default}",
                "syscalls": [{{"names": ["read", "exit_group", "futex_waitv"], "action": "SCMP_ACT_ALLOW"}}]}}"#
        ))
        .unwrap();
        let progs = compile_now(&Seccomp::custom(p)).unwrap();
        let combined = |nr: i64| combined(&progs, X86_64, nr as u32, [0; 6]);
        assert_eq!(combined(libc::SYS_clone3), ENOSYS, "{default}: clone3");
        assert_eq!(combined(libc::SYS_exit), ALLOW, "{default}: exit");
        assert_eq!(combined(libc::SYS_exit_group), ALLOW, "{default}");
        assert_eq!(combined(libc::SYS_read), ALLOW, "{default}");
        let other = combined(libc::SYS_getppid) & 0xffff_0000;
        assert!(
            other != ALLOW && other != 0x0005_0000,
            "{default}: {other:#x}"
        );
    }
}

/// A profile that lists x32 (docker's, podman's and containerd's do) and
/// allows socket but for a family compared with `!=`: an x32 call with
/// the family's upper 32 bits set must not pass, as the kernel drops
/// them (the native call is refused by the wide-argument rule).
#[cfg(target_arch = "x86_64")]
#[test]
fn an_x32_socket_with_a_wide_family_is_refused() {
    const X86_64: u32 = 0xc000_003e; // AUDIT_ARCH_X86_64
    const ALLOW: u32 = 0x7fff_0000;
    let p: OciSeccomp = serde_json::from_str(
        r#"{"defaultAction": "SCMP_ACT_ERRNO",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "syscalls": [{"names": ["exit_group"], "action": "SCMP_ACT_ALLOW"},
                         {"names": ["socket"], "action": "SCMP_ACT_ALLOW",
                          "args": [{"index": 0, "value": 40, "op": "SCMP_CMP_NE"}]}]}"#,
    )
    .unwrap();
    let progs = compile_now(&Seccomp::custom(p)).unwrap();
    let combined = |nr: u32, family: u64| combined(&progs, X86_64, nr, [family, 1, 0, 0, 0, 0]);
    let socket = libc::SYS_socket as u32;
    let x32 = socket | 0x4000_0000;
    assert_eq!(combined(socket, 2) & 0xffff_0000, ALLOW, "native AF_INET");
    assert_eq!(combined(x32, 2) & 0xffff_0000, ALLOW, "x32 AF_INET");
    for nr in [socket, x32] {
        for family in [40, 0x1_0000_0028] {
            let v = combined(nr, family);
            assert_ne!(v & 0xffff_0000, ALLOW, "{nr:#x} family {family:#x}");
        }
    }
}

/// The set-id filter refuses by name: a call the linked libseccomp did
/// not know would be left out of it without a word (fchmodat2 needs
/// 2.5.5 or a backport), so every one of them must resolve.
#[test]
fn every_mode_setter_is_known_to_libseccomp() {
    for (name, _, _) in crate::seccomp::lists::MODE_SETTERS {
        assert!(
            crate::seccomp::default::syscall(name).is_some(),
            "libseccomp does not know {name}"
        );
    }
}
