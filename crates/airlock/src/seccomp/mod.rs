//! seccomp: the default allow-list profile and custom profiles in the OCI
//! seccomp JSON format, compiled with libseccomp (which handles the
//! architecture checks, the x32 ABI and argument comparisons correctly).
//!
//! A profile is compiled once, in the caller, when the plan is made: a bad
//! profile is an error naming the rule before anything starts, and the
//! plan carries the compiled BPF programs. The runner (and every process
//! exec'd into the sandbox later) only installs them with seccomp(2), so
//! neither compiles anything nor needs libseccomp at run time.

mod default;
pub use default::{ALLOWED, DENIED};

use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};
use serde::{Deserialize, Serialize};

/// Which syscall filter the workload runs under.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "profile", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Seccomp {
    /// airlock's default allow-list (see `default.rs`).
    #[default]
    Default,
    /// No filter at all (a guardrail finding: `seccomp-disabled`).
    None,
    /// A profile in the OCI runtime-spec format.
    Custom { oci: OciSeccomp },
}

/// `linux.seccomp` of the OCI runtime spec.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OciSeccomp {
    pub default_action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_errno_ret: Option<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub architectures: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<String>,
    #[serde(default)]
    pub syscalls: Vec<OciSyscall>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OciSyscall {
    pub names: Vec<String>,
    pub action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errno_ret: Option<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<OciArg>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OciArg {
    pub index: u32,
    pub value: u64,
    #[serde(default)]
    pub value_two: u64,
    pub op: String,
}

/// A profile that cannot be compiled: which part and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeccompError {
    pub field: String,
    pub reason: String,
}

type Result<T> = std::result::Result<T, SeccompError>;

fn err(field: impl Into<String>, reason: impl Into<String>) -> SeccompError {
    SeccompError {
        field: field.into(),
        reason: reason.into(),
    }
}

fn lib(field: &str) -> impl Fn(libseccomp::error::SeccompError) -> SeccompError + '_ {
    move |e| err(field, e.to_string())
}

const NAMESPACE_FLAGS: u64 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET
    | libc::CLONE_NEWCGROUP) as u64;

/// Socket families the default profile allows.
const SOCKET_FAMILIES: &[i32] = &[
    libc::AF_UNIX,
    libc::AF_INET,
    libc::AF_INET6,
    libc::AF_NETLINK,
    libc::AF_PACKET,
];

/// personality(2) values that do not weaken the address space (Docker's list).
const PERSONALITIES: &[u64] = &[0x0, 0x8, 0x20000, 0x20008, 0xffff_ffff];

/// ioctl requests that push input into a terminal (CVE-2017-5226 class).
const TERMINAL_INJECTION: &[u64] = &[libc::TIOCSTI, libc::TIOCLINUX];

fn syscall(name: &str) -> Option<ScmpSyscall> {
    ScmpSyscall::from_name(name).ok()
}

/// The default profile as two filters. The kernel runs every filter and
/// the most restrictive answer wins, which lets the second one refuse what
/// the first allows: ioctl requests compared on their low 32 bits only (the
/// kernel ignores the rest, CVE-2019-10063), and clone3 with ENOSYS.
fn default_filters() -> Result<Vec<ScmpFilterContext>> {
    let f = "seccomp";
    let mut allow = ScmpFilterContext::new(ScmpAction::Errno(libc::EPERM)).map_err(lib(f))?;
    for name in ALLOWED.iter().chain(["ioctl", "clone3"].iter()) {
        if let Some(s) = syscall(name) {
            allow.add_rule(ScmpAction::Allow, s).map_err(lib(f))?;
        }
    }
    if let Some(clone) = syscall("clone") {
        let cmp = ScmpArgCompare::new(0, ScmpCompareOp::MaskedEqual(NAMESPACE_FLAGS), 0);
        allow
            .add_rule_conditional(ScmpAction::Allow, clone, &[cmp])
            .map_err(lib(f))?;
    }
    if let Some(socket) = syscall("socket") {
        for family in SOCKET_FAMILIES {
            let cmp = ScmpArgCompare::new(0, ScmpCompareOp::Equal, *family as u64);
            allow
                .add_rule_conditional(ScmpAction::Allow, socket, &[cmp])
                .map_err(lib(f))?;
        }
    }
    if let Some(p) = syscall("personality") {
        for value in PERSONALITIES {
            let cmp = ScmpArgCompare::new(0, ScmpCompareOp::Equal, *value);
            allow
                .add_rule_conditional(ScmpAction::Allow, p, &[cmp])
                .map_err(lib(f))?;
        }
    }
    let mut refuse = ScmpFilterContext::new(ScmpAction::Allow).map_err(lib(f))?;
    if let Some(ioctl) = syscall("ioctl") {
        for req in TERMINAL_INJECTION {
            let cmp = ScmpArgCompare::new(1, ScmpCompareOp::MaskedEqual(0xffff_ffff), *req);
            refuse
                .add_rule_conditional(ScmpAction::Errno(libc::EPERM), ioctl, &[cmp])
                .map_err(lib(f))?;
        }
    }
    if let Some(clone3) = syscall("clone3") {
        refuse
            .add_rule(ScmpAction::Errno(libc::ENOSYS), clone3)
            .map_err(lib(f))?;
    }
    Ok(vec![allow, refuse])
}

fn action(field: &str, name: &str, errno: Option<u32>) -> Result<ScmpAction> {
    Ok(match name {
        "SCMP_ACT_ALLOW" => ScmpAction::Allow,
        "SCMP_ACT_LOG" => ScmpAction::Log,
        "SCMP_ACT_ERRNO" => ScmpAction::Errno(errno.unwrap_or(libc::EPERM as u32) as i32),
        "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => ScmpAction::KillThread,
        "SCMP_ACT_KILL_PROCESS" => ScmpAction::KillProcess,
        "SCMP_ACT_TRAP" => ScmpAction::Trap,
        "SCMP_ACT_TRACE" => ScmpAction::Trace(errno.unwrap_or(0) as u16),
        other => {
            return Err(err(
                field,
                format!("unsupported action {other:?} (SCMP_ACT_ALLOW, _ERRNO, _KILL, _KILL_PROCESS, _TRAP, _TRACE, _LOG)"),
            ))
        }
    })
}

fn compare(field: &str, a: &OciArg) -> Result<ScmpArgCompare> {
    let op = match a.op.as_str() {
        "SCMP_CMP_NE" => ScmpCompareOp::NotEqual,
        "SCMP_CMP_LT" => ScmpCompareOp::Less,
        "SCMP_CMP_LE" => ScmpCompareOp::LessOrEqual,
        "SCMP_CMP_EQ" => ScmpCompareOp::Equal,
        "SCMP_CMP_GE" => ScmpCompareOp::GreaterEqual,
        "SCMP_CMP_GT" => ScmpCompareOp::Greater,
        "SCMP_CMP_MASKED_EQ" => {
            return Ok(ScmpArgCompare::new(
                a.index,
                ScmpCompareOp::MaskedEqual(a.value),
                a.value_two,
            ))
        }
        other => {
            return Err(err(
                format!("{field}.op"),
                format!("unknown comparison {other:?}"),
            ))
        }
    };
    if a.index > 5 {
        return Err(err(
            format!("{field}.index"),
            "syscalls have six arguments (0 to 5)",
        ));
    }
    Ok(ScmpArgCompare::new(a.index, op, a.value))
}

fn arch(field: &str, name: &str) -> Result<ScmpArch> {
    name.parse::<ScmpArch>()
        .map_err(|_| err(field, format!("unknown architecture {name:?}")))
}

fn custom_filters(p: &OciSeccomp) -> Result<Vec<ScmpFilterContext>> {
    let base = "seccomp.oci";
    let default = action(
        &format!("{base}.defaultAction"),
        &p.default_action,
        p.default_errno_ret,
    )?;
    let mut ctx = ScmpFilterContext::new(default).map_err(lib(base))?;
    for (i, a) in p.architectures.iter().enumerate() {
        let field = format!("{base}.architectures[{i}]");
        let a = arch(&field, a)?;
        if a != ScmpArch::native() {
            ctx.add_arch(a).map_err(lib(&field))?;
        }
    }
    if !p.flags.is_empty() {
        // Not applied means not silently ignored.
        return Err(err(
            format!("{base}.flags"),
            format!("seccomp flags {:?} are not supported", p.flags),
        ));
    }
    let permissive_default = matches!(default, ScmpAction::Allow | ScmpAction::Log);
    for (i, rule) in p.syscalls.iter().enumerate() {
        let field = format!("{base}.syscalls[{i}]");
        let act = action(&format!("{field}.action"), &rule.action, rule.errno_ret)?;
        if act == default {
            continue; // libseccomp refuses rules that repeat the default
        }
        let conds = rule
            .args
            .iter()
            .enumerate()
            .map(|(j, a)| compare(&format!("{field}.args[{j}]"), a))
            .collect::<Result<Vec<_>>>()?;
        for name in &rule.names {
            let Some(s) = syscall(name) else {
                // An unknown name in a rule that only allows can be left
                // out: the syscall then gets the default, which is stricter.
                // Where the default is permissive, leaving it out would
                // weaken the profile, so that is an error.
                if permissive_default {
                    return Err(err(
                        format!("{field}.names"),
                        format!("unknown syscall {name:?}"),
                    ));
                }
                continue;
            };
            ctx.add_rule_conditional(act, s, &conds)
                .map_err(|e| err(format!("{field} ({name})"), e.to_string()))?;
        }
    }
    Ok(vec![ctx])
}

/// Compile a profile into the filters to load, in order.
pub fn filters(profile: &Seccomp) -> Result<Vec<ScmpFilterContext>> {
    match profile {
        Seccomp::None => Ok(Vec::new()),
        Seccomp::Default => default_filters(),
        Seccomp::Custom { oci } => custom_filters(oci),
    }
}

/// Check that a profile compiles.
pub fn validate(profile: &Seccomp) -> std::result::Result<(), crate::spec::SpecError> {
    compile(profile).map(drop)
}

/// A compiled classic-BPF filter program, as the kernel takes it: 8-byte
/// `sock_filter` instructions in native byte order. Serialized as hex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program(Vec<u8>);

impl Program {
    /// Instructions in the program.
    pub fn len(&self) -> usize {
        self.0.len() / 8
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn instructions(&self) -> Vec<libc::sock_filter> {
        self.0
            .chunks_exact(8)
            .map(|c| libc::sock_filter {
                code: u16::from_ne_bytes([c[0], c[1]]),
                jt: c[2],
                jf: c[3],
                k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
            })
            .collect()
    }
}

impl Serialize for Program {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let hex: String = self.0.iter().map(|b| format!("{b:02x}")).collect();
        s.serialize_str(&hex)
    }
}

impl<'de> Deserialize<'de> for Program {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let hex = String::deserialize(d)?;
        if hex.len() % 16 != 0 || !hex.is_ascii() {
            return Err(serde::de::Error::custom(
                "a BPF program is hex of 8-byte instructions",
            ));
        }
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16))
            .collect::<std::result::Result<Vec<u8>, _>>()
            .map(Program)
            .map_err(serde::de::Error::custom)
    }
}

/// Compile a profile into the programs to install, in order (none for
/// `Seccomp::None`). Errors name the rule.
pub fn compile(profile: &Seccomp) -> std::result::Result<Vec<Program>, crate::spec::SpecError> {
    let to_spec = |e: SeccompError| crate::spec::SpecError::new(e.field, e.reason);
    let mut out = Vec::new();
    for f in filters(profile).map_err(to_spec)? {
        out.push(export(&f).map_err(|e| {
            crate::spec::SpecError::new("seccomp", format!("export the compiled filter: {e}"))
        })?);
    }
    Ok(out)
}

/// libseccomp 2.5 (Debian 12's) exports only to an fd: a memfd keeps it
/// off the filesystem.
fn export(f: &ScmpFilterContext) -> std::io::Result<Program> {
    use std::io::{Read, Seek};
    let fd = rustix::fs::memfd_create("airlock-bpf", rustix::fs::MemfdFlags::CLOEXEC)?;
    f.export_bpf(&fd).map_err(std::io::Error::other)?;
    let mut file = std::fs::File::from(fd);
    file.rewind()?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    if bytes.is_empty() || bytes.len() % 8 != 0 {
        return Err(std::io::Error::other(format!(
            "libseccomp exported {} bytes, not whole instructions",
            bytes.len()
        )));
    }
    Ok(Program(bytes))
}

/// Install the programs into the calling thread, in order. The caller has
/// set no_new_privs or holds CAP_SYS_ADMIN (the kernel requires one).
pub fn install(programs: &[Program]) -> std::io::Result<()> {
    for p in programs {
        let mut insns = p.instructions();
        let len = u16::try_from(insns.len())
            .map_err(|_| std::io::Error::other("a BPF program of over 65535 instructions"))?;
        let prog = libc::sock_fprog {
            len,
            filter: insns.as_mut_ptr(),
        };
        // SAFETY: `prog` points at `len` initialized instructions that
        // live until the call returns; the kernel copies the program.
        let r = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                0,
                &prog as *const libc::sock_fprog,
            )
        };
        if r != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
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
        let e = filters(&Seccomp::Custom { oci: p }).unwrap_err();
        assert_eq!(e.field, "seccomp.oci.syscalls[0].names");
        let p: OciSeccomp = serde_json::from_str(r#"{"defaultAction": "SCMP_ACT_DANCE"}"#).unwrap();
        assert_eq!(
            filters(&Seccomp::Custom { oci: p }).unwrap_err().field,
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
    fn oci_profile_compiles() {
        let p: OciSeccomp = serde_json::from_str(
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
                "syscalls": [{"names": ["read", "write", "exit_group", "no_such_call"], "action": "SCMP_ACT_ALLOW"},
                             {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                              "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]}]}"#,
        )
        .unwrap();
        filters(&Seccomp::Custom { oci: p }).unwrap();
    }
}
