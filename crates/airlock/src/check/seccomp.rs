//! A custom seccomp profile is judged by what it lets through, not by its
//! being there: one that allows what the default profile leaves out as
//! escape surface (`DENIED`) is as open as no filter for that call.

use super::Findings;
use crate::seccomp::{
    OciArg, OciSeccomp, OciSyscall, Seccomp, DENIED, INET_PROTOCOLS, NAMESPACE_FLAGS,
    NETLINK_PROTOCOLS, PERSONALITIES, SOCKET_FAMILIES,
};

/// Calls the appended argument filters answer for whatever the profile
/// says: terminal-injection ioctls are refused, clone3 returns ENOSYS.
const COVERED_BY_REFUSALS: &[&str] = &["ioctl", "clone3"];

/// The 32-bit ABIs' socket multiplexer: its arguments are in memory, where
/// no filter can read them, so allowed for an architecture that has it
/// (`SOCKETCALL_ARCHES`) it lets every socket family through whatever
/// `socket`'s rules say (AF_VSOCK answered a review's `int 0x80`).
const MULTIPLEXERS: &[&str] = &["socketcall"];

/// The architectures whose socket calls go through `socketcall`, where
/// libseccomp makes an allowed `socket` an allowed `socketcall(SYS_SOCKET)`
/// (x32 and ARM have calls of their own, with readable arguments).
const SOCKETCALL_ARCHES: &[&str] = &[
    "SCMP_ARCH_X86",
    "SCMP_ARCH_S390",
    "SCMP_ARCH_S390X",
    "SCMP_ARCH_PPC",
    "SCMP_ARCH_PPC64",
    "SCMP_ARCH_PPC64LE",
    "SCMP_ARCH_MIPS",
    "SCMP_ARCH_MIPSEL",
    "SCMP_ARCH_M68K",
    "SCMP_ARCH_SH",
    "SCMP_ARCH_SHEB",
];

pub(super) fn judge(f: &mut Findings, spec: &crate::spec::SandboxSpec) {
    let Seccomp::Custom {
        oci,
        argument_filters,
    } = &spec.seccomp
    else {
        return;
    };
    if !argument_filters {
        f.add(
            "seccomp-argument-filters-off",
            "seccomp.argument_filters",
            "the custom profile runs without airlock's refusals by argument: TIOCSTI/TIOCLINUX push keystrokes into a terminal, and the other refusals of the default profile's second filter are gone",
        );
    }
    let open = let_through(oci, *argument_filters);
    if permissive(&oci.default_action) {
        f.add(
            "seccomp-permissive",
            "seccomp.oci.defaultAction",
            format!(
                "defaultAction {} lets every syscall the profile does not name through, those of future kernels included{}",
                oci.default_action,
                listed(&open)
            ),
        );
    } else if !open.is_empty() {
        f.add(
            "seccomp-permissive",
            "seccomp.oci.syscalls",
            format!(
                "the profile allows what the default profile leaves out as escape surface: {}",
                open.join(", ")
            ),
        );
    }
}

fn listed(open: &[&str]) -> String {
    if open.is_empty() {
        String::new()
    } else {
        format!(" ({} among them)", open.join(", "))
    }
}

/// Actions under which the call runs (TRACE too: a tracer can let it).
fn permissive(action: &str) -> bool {
    matches!(action, "SCMP_ACT_ALLOW" | "SCMP_ACT_LOG" | "SCMP_ACT_TRACE")
}

/// The calls of `DENIED` that the profile lets through, in whole or with
/// arguments the default profile refuses.
fn let_through(p: &OciSeccomp, argument_filters: bool) -> Vec<&'static str> {
    let multiplexed = p
        .architectures
        .iter()
        .any(|a| SOCKETCALL_ARCHES.contains(&a.as_str()));
    DENIED
        .iter()
        .chain(MULTIPLEXERS.iter().filter(|_| multiplexed))
        .copied()
        .filter(|name| !(argument_filters && COVERED_BY_REFUSALS.contains(name)))
        .filter(|name| {
            let rules: Vec<&OciSyscall> = p
                .syscalls
                .iter()
                .filter(|r| r.names.iter().any(|n| n == name))
                .collect();
            if rules.is_empty() {
                return permissive(&p.default_action);
            }
            // On an architecture that multiplexes the socket calls,
            // libseccomp turns an allowed `socket` into an allowed
            // `socketcall(SYS_SOCKET)`, whose family it cannot read: no
            // condition on the family holds there.
            let socketcall = *name == "socket" && multiplexed;
            rules
                .iter()
                .any(|r| permissive(&r.action) && (socketcall || !narrowed(name, &r.args)))
        })
        .collect()
}

/// Do these conditions keep the call to what the default profile allows
/// of it? Only the calls the default profile allows with arguments can
/// be narrowed; the rest are escape surface whatever their arguments.
fn narrowed(name: &str, args: &[OciArg]) -> bool {
    let arg0 = |op: &'static str| args.iter().filter(move |a| a.index == 0 && a.op == op);
    match name {
        // No namespace flag may be set: a masked compare over all of them
        // that wants none.
        "clone" => arg0("SCMP_CMP_MASKED_EQ").any(|a| {
            a.value & NAMESPACE_FLAGS == NAMESPACE_FLAGS && a.value_two & NAMESPACE_FLAGS == 0
        }),
        // A family of the default's; for IPv4, IPv6 and netlink a
        // protocol of its too (or, for IP, SOCK_RAW), as the default
        // allows them: any other makes the kernel load its module.
        "socket" => arg0("SCMP_CMP_EQ").any(|a| {
            let eq2 = |list: &[i32]| {
                args.iter().any(|b| {
                    b.index == 2
                        && b.op == "SCMP_CMP_EQ"
                        && list.iter().any(|p| *p as u64 == b.value)
                })
            };
            let raw = args.iter().any(|b| {
                b.index == 1
                    && b.op == "SCMP_CMP_MASKED_EQ"
                    && b.value & 0xf == 0xf
                    && b.value_two == libc::SOCK_RAW as u64
            });
            match a.value as i32 {
                libc::AF_INET | libc::AF_INET6 => eq2(INET_PROTOCOLS) || raw,
                libc::AF_NETLINK => eq2(NETLINK_PROTOCOLS),
                f => SOCKET_FAMILIES.contains(&f),
            }
        }),
        "personality" => arg0("SCMP_CMP_EQ").any(|a| PERSONALITIES.contains(&a.value)),
        _ => false,
    }
}

/// Does this profile let through every call it does not name
/// (defaultAction ALLOW, LOG, TRACE)? As good as no filter at all, which
/// the OCI runtime does not acknowledge for a bundle either.
pub fn default_is_permissive(profile: &Seccomp) -> bool {
    matches!(profile, Seccomp::Custom { oci, .. } if permissive(&oci.default_action))
}

/// Would `judge` find this profile permissive? (The OCI runtime
/// acknowledges the orchestrator's profile only when it is.)
pub fn is_permissive(profile: &Seccomp) -> bool {
    match profile {
        Seccomp::Custom {
            oci,
            argument_filters,
        } => permissive(&oci.default_action) || !let_through(oci, *argument_filters).is_empty(),
        _ => false,
    }
}

/// The escape-surface calls (of `DENIED`) this profile lets through, by
/// name: what `seccomp-permissive` lists. (The OCI runtime acknowledges
/// an orchestrator's profile only for calls it knows they need.)
pub fn let_through_names(profile: &Seccomp) -> Vec<&'static str> {
    match profile {
        Seccomp::Custom {
            oci,
            argument_filters,
        } => let_through(oci, *argument_filters),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use crate::check::{check, Host};
    use crate::seccomp::Seccomp;
    use crate::spec::SandboxSpec;

    fn findings(profile: &str, argument_filters: bool) -> Vec<(String, String)> {
        let mut s = SandboxSpec::builder().args(["true"]).build();
        s.seccomp = Seccomp::Custom {
            oci: serde_json::from_str(profile).unwrap(),
            argument_filters,
        };
        check(&s, &Host::default())
            .into_iter()
            .filter(|f| f.code.starts_with("seccomp"))
            .map(|f| (f.code.to_string(), f.message))
            .collect()
    }

    /// The default's own allow-list, as a custom profile.
    fn allow_list(extra: &str) -> String {
        let names = serde_json::to_string(crate::seccomp::ALLOWED).unwrap();
        format!(
            r#"{{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{{"names": {names}, "action": "SCMP_ACT_ALLOW"}}{extra}]}}"#
        )
    }

    #[test]
    fn socketcall_for_a_foreign_architecture_is_a_finding() {
        let socketcall = r#", {"names": ["socketcall"], "action": "SCMP_ACT_ALLOW"}"#;
        // Native only: the 32-bit ABI is refused whole, its multiplexer too.
        assert!(findings(&allow_list(socketcall), true).is_empty());
        let with_x86 = allow_list(socketcall).replacen(
            r#"{"defaultAction""#,
            r#"{"architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"], "defaultAction""#,
            1,
        );
        let f = findings(&with_x86, true);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].0, "seccomp-permissive");
        assert!(f[0].1.contains("socketcall"), "{f:?}");
        // Without socketcall allowed, the same architectures are fine.
        let plain = allow_list("").replacen(
            r#"{"defaultAction""#,
            r#"{"architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"], "defaultAction""#,
            1,
        );
        assert!(findings(&plain, true).is_empty());
        // Nor does a `socket` narrowed to the default's families hold
        // there: libseccomp allows x86's socketcall(SYS_SOCKET) for it,
        // whose family no filter reads (AF_VSOCK opened through int 0x80).
        let inet = r#", {"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 2, "op": "SCMP_CMP_EQ"}, {"index": 2, "value": 6, "op": "SCMP_CMP_EQ"}]}"#;
        let archs = |list: &str| {
            allow_list(inet).replacen(
                r#"{"defaultAction""#,
                &format!(r#"{{"architectures": [{list}], "defaultAction""#),
                1,
            )
        };
        let f = findings(&archs(r#""SCMP_ARCH_X86_64", "SCMP_ARCH_X86""#), true);
        assert_eq!(f.len(), 1, "{f:?}");
        assert!(f[0].1.contains("socket"), "{f:?}");
        let x32 = archs(r#""SCMP_ARCH_X86_64", "SCMP_ARCH_X32""#);
        assert!(findings(&x32, true).is_empty());
    }

    #[test]
    fn a_permissive_default_action_is_a_finding() {
        for action in ["SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_TRACE"] {
            let f = findings(&format!(r#"{{"defaultAction": "{action}"}}"#), true);
            assert_eq!(f.len(), 1, "{action}: {f:?}");
            assert_eq!(f[0].0, "seccomp-permissive");
            assert!(f[0].1.contains(action) && f[0].1.contains("mount"), "{f:?}");
        }
        // Denying the escapes by name does not make an ALLOW default safe:
        // what the profile does not name (future syscalls) gets through.
        let names = serde_json::to_string(crate::seccomp::DENIED).unwrap();
        let p = format!(
            r#"{{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{{"names": {names}, "action": "SCMP_ACT_ERRNO"}}]}}"#
        );
        let f = findings(&p, true);
        assert_eq!(f.len(), 1, "{f:?}");
        assert!(!f[0].1.contains("among them"), "{f:?}");
    }

    #[test]
    fn allowing_an_escape_call_is_a_finding_and_its_neighbours_too() {
        assert!(findings(&allow_list(""), true).is_empty());
        for (rule, named) in [
            (
                r#"{"names": ["mount"], "action": "SCMP_ACT_ALLOW"}"#,
                "mount",
            ),
            (
                r#"{"names": ["unshare", "setns"], "action": "SCMP_ACT_LOG"}"#,
                "setns, unshare",
            ),
            // An argument condition does not narrow a call that is
            // escape surface whatever its arguments.
            (
                r#"{"names": ["keyctl"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]}"#,
                "keyctl",
            ),
            // clone without the namespace flags masked off.
            (
                r#"{"names": ["clone"], "action": "SCMP_ACT_ALLOW"}"#,
                "clone",
            ),
            (
                r#"{"names": ["clone"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 268435456, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]}"#,
                "clone",
            ),
            // socket of any family (AF_ALG, AF_VSOCK, ...), personality
            // values that weaken the address space.
            (
                r#"{"names": ["socket"], "action": "SCMP_ACT_ALLOW"}"#,
                "socket",
            ),
            (
                r#"{"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 38, "op": "SCMP_CMP_EQ"}]}"#,
                "socket",
            ),
            // IPv4 and netlink of any protocol: SCTP, the crypto API's
            // netlink (each a module the kernel loads).
            (
                r#"{"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 2, "op": "SCMP_CMP_EQ"}]}"#,
                "socket",
            ),
            (
                r#"{"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 2, "op": "SCMP_CMP_EQ"}, {"index": 2, "value": 132, "op": "SCMP_CMP_EQ"}]}"#,
                "socket",
            ),
            (
                r#"{"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 16, "op": "SCMP_CMP_EQ"}]}"#,
                "socket",
            ),
            (
                r#"{"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 4194304, "op": "SCMP_CMP_EQ"}]}"#,
                "personality",
            ),
        ] {
            let f = findings(&allow_list(&format!(", {rule}")), true);
            assert_eq!(f.len(), 1, "{rule}: {f:?}");
            assert_eq!(f[0].0, "seccomp-permissive");
            assert!(f[0].1.ends_with(named), "{rule}: {f:?}");
        }
        // The near misses: the default's own argument rules.
        let ns = crate::seccomp::NAMESPACE_FLAGS;
        for rule in [
            format!(
                r#"{{"names": ["clone"], "action": "SCMP_ACT_ALLOW", "args": [{{"index": 0, "value": {ns}, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}}]}}"#
            ),
            r#"{"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]}"#.into(),
            r#"{"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 10, "op": "SCMP_CMP_EQ"}, {"index": 2, "value": 6, "op": "SCMP_CMP_EQ"}]}"#.into(),
            r#"{"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 2, "op": "SCMP_CMP_EQ"}, {"index": 1, "value": 15, "valueTwo": 3, "op": "SCMP_CMP_MASKED_EQ"}]}"#.into(),
            r#"{"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 16, "op": "SCMP_CMP_EQ"}, {"index": 2, "value": 0, "op": "SCMP_CMP_EQ"}]}"#.into(),
            r#"{"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]}"#.into(),
            // ioctl and clone3 are answered by the refusals appended.
            r#"{"names": ["ioctl", "clone3"], "action": "SCMP_ACT_ALLOW"}"#.into(),
            r#"{"names": ["mount"], "action": "SCMP_ACT_ERRNO"}"#.into(),
        ] {
            assert!(findings(&allow_list(&format!(", {rule}")), true).is_empty(), "{rule}");
        }
    }

    #[test]
    fn dropping_the_argument_filters_is_a_finding_of_its_own() {
        let f = findings(&allow_list(""), false);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].0, "seccomp-argument-filters-off");
        // Without them, an unrestricted ioctl is escape surface again.
        let f = findings(
            &allow_list(r#", {"names": ["ioctl"], "action": "SCMP_ACT_ALLOW"}"#),
            false,
        );
        let codes: Vec<&str> = f.iter().map(|x| x.0.as_str()).collect();
        assert_eq!(
            codes,
            ["seccomp-argument-filters-off", "seccomp-permissive"]
        );
        assert!(f[1].1.ends_with("ioctl"), "{f:?}");
    }
}
