//! seccomp: the default allow-list profile and custom profiles in the OCI
//! seccomp JSON format, compiled with libseccomp (which handles the
//! architecture checks, the x32 ABI and argument comparisons correctly).
//!
//! A profile is compiled in the caller, when the plan is made: a bad
//! profile is an error naming the rule before anything starts, and the
//! plan carries the compiled BPF programs (or names the build's own copy
//! of the default ones, `builtin`). The runner (and every process exec'd
//! into the sandbox later) only installs them with seccomp(2), so neither
//! compiles anything nor needs libseccomp at run time.
//!
//! Compiling is done once where it can be, because it was the largest
//! single cost of a start (about 5 million instructions for the default
//! profile, more than half of the CLI's work):
//!
//! - The default profile never changes, so the build script compiles it
//!   (`build.rs` runs `default.rs`, this module's own code, with the
//!   libseccomp the crate links) and the programs are part of the binary,
//!   the runner's too: a plan names them instead of carrying them
//!   (`builtin`).
//!   They are used only while the facts they depend on hold at run time:
//!   the libseccomp version and the native architecture they were compiled
//!   with (the airlock version is the binary's own). Otherwise, and in a
//!   cross build, the profile is compiled as before. A test checks that
//!   they are byte for byte what compiling gives.
//! - Other profiles are kept in memory by content (the whole profile is
//!   the key, compared for equality rather than by a hash), for a library
//!   caller or a daemon that starts many sandboxes with the same profile.
//! - Nothing is cached on disk: a program read back from a file is the
//!   filter itself, so whoever can write that file (or swap it between
//!   the ownership check and the read) removes the workload's seccomp
//!   wall. The build-time programs are as fast and are as trusted as the
//!   binary that carries them.

mod builtin;
#[cfg(feature = "libseccomp")]
mod compile;
#[cfg(feature = "libseccomp")]
mod default;
mod lists;
#[cfg(feature = "libseccomp")]
pub use compile::{compile, filters, mptcp_program, set_id_program};
pub use lists::{
    ALLOWED, DENIED, INET_PROTOCOLS, NAMESPACE_FLAGS, NETLINK_PROTOCOLS, PERSONALITIES,
    SOCKETPAIR_FAMILIES, SOCKET_FAMILIES,
};
#[cfg(not(feature = "libseccomp"))]
pub use without_libseccomp::{compile, mptcp_program, set_id_program};

use serde::{Deserialize, Serialize};
use std::borrow::Cow;

/// Which syscall filter the workload runs under.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "profile", rename_all = "kebab-case", try_from = "SeccompFields")]
// One per spec and plan, never in bulk: not boxed for the size of a
// custom profile's fields.
#[allow(clippy::large_enum_variant)]
pub enum Seccomp {
    /// airlock's default allow-list (see `default.rs`).
    #[default]
    Default,
    /// No filter at all (a guardrail finding: `seccomp-disabled`).
    None,
    /// A profile in the OCI runtime-spec format. The default profile's
    /// second filter (refusals by argument: terminal-injection ioctls and
    /// the like, see `default::refuse`) is installed after it unless
    /// `argument_filters` is false, which is a guardrail finding
    /// (`seccomp-argument-filters-off`): a profile written for another
    /// runtime does not know what airlock refuses.
    Custom {
        oci: OciSeccomp,
        #[serde(skip_serializing_if = "is_true")]
        argument_filters: bool,
    },
}

/// What a `seccomp` object may hold, read before it becomes a [`Seccomp`]:
/// serde's internally tagged enums ignore `deny_unknown_fields` for unit
/// variants, so `{"profile": "default", "oci": {...}}` was accepted and its
/// profile silently not applied.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SeccompFields {
    profile: ProfileName,
    #[serde(default)]
    oci: Option<OciSeccomp>,
    #[serde(default)]
    argument_filters: Option<bool>,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "kebab-case")]
enum ProfileName {
    Default,
    None,
    Custom,
}

impl TryFrom<SeccompFields> for Seccomp {
    type Error = String;

    fn try_from(f: SeccompFields) -> std::result::Result<Seccomp, String> {
        let named = match f.profile {
            ProfileName::Default => Seccomp::Default,
            ProfileName::None => Seccomp::None,
            ProfileName::Custom => {
                return match f.oci {
                    Some(oci) => Ok(Seccomp::Custom {
                        oci,
                        argument_filters: f.argument_filters.unwrap_or(true),
                    }),
                    None => Err("profile \"custom\" needs `oci`, the profile itself".into()),
                }
            }
        };
        let given = match (&f.oci, &f.argument_filters) {
            (Some(_), _) => "oci",
            (None, Some(_)) => "argument_filters",
            (None, None) => return Ok(named),
        };
        let profile = match named {
            Seccomp::None => "none",
            _ => "default",
        };
        Err(format!(
            "`{given}` is read only with profile \"custom\", not with \"{profile}\""
        ))
    }
}

impl Seccomp {
    /// A custom profile, with airlock's argument filters kept.
    pub fn custom(oci: OciSeccomp) -> Seccomp {
        Seccomp::Custom {
            oci,
            argument_filters: true,
        }
    }
}

fn is_true(b: &bool) -> bool {
    *b
}

/// `linux.seccomp` of the OCI runtime spec. An unknown key is an error
/// (a mistyped `syscals` would drop every rule); Docker's profile keys
/// are read so that the compiler can refuse those it cannot honour.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
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
    /// OCI's user notification: refused unless empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listener_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listener_metadata: Option<String>,
    /// Docker's form of `architectures`: refused unless empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arch_map: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OciSyscall {
    pub names: Vec<String>,
    pub action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errno_ret: Option<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<OciArg>,
    /// Docker's: a note, not applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// Docker's conditions on the rule (capabilities, architectures,
    /// kernel): refused unless empty, since the rule would otherwise
    /// apply unconditionally.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub includes: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub excludes: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
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

/// Check that a profile compiles (in a build without libseccomp, that it
/// is `none`).
pub fn validate(profile: &Seccomp) -> std::result::Result<(), crate::spec::SpecError> {
    compile(profile).map(drop)
}

/// The filter is installed before the workload's own `execve`, as runc
/// installs it: a profile that refuses `execve` would fail every start
/// with a bare "Permission denied" from the exec (nsjail#131 meets the
/// same surprise). Refused by name instead, with the rule that refuses it.
pub(crate) fn lets_the_workload_start(
    oci: &OciSeccomp,
) -> std::result::Result<(), crate::spec::SpecError> {
    // TRACE runs the call only under a tracer; without one it fails.
    let runs = |action: &str| matches!(action, "SCMP_ACT_ALLOW" | "SCMP_ACT_LOG");
    let rules: Vec<(usize, &OciSyscall)> = oci
        .syscalls
        .iter()
        .enumerate()
        .filter(|(_, r)| r.names.iter().any(|n| n == "execve"))
        .collect();
    let starts = match rules.first() {
        Some(_) => rules.iter().any(|(_, r)| runs(&r.action)),
        None => runs(&oci.default_action),
    };
    if starts {
        return Ok(());
    }
    let (field, action) = match rules.first() {
        Some((i, r)) => (format!("seccomp.oci.syscalls[{i}]"), r.action.as_str()),
        None => (
            "seccomp.oci.defaultAction".to_string(),
            oci.default_action.as_str(),
        ),
    };
    Err(crate::spec::SpecError::new(
        field,
        format!(
            "execve gets {action}, but the workload's own start is an execve made under the filter: allow execve (read-only, noexec mounts narrow what it can run; a workload that may write code can still run it through memfd_create and execveat unless those are refused too)"
        ),
    ))
}

/// A compiled classic-BPF filter program, as the kernel takes it: 8-byte
/// `sock_filter` instructions in native byte order. Serialized as hex, or,
/// for one of the build's precompiled default programs, by its name (see
/// `builtin`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program(Cow<'static, [u8]>);

impl Program {
    /// Instructions in the program.
    pub fn len(&self) -> usize {
        self.0.len() / 8
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The `sock_filter` instructions, native byte order.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The same program as bytes of its own, which serialize as hex even
    /// when this is one of the build's precompiled programs: for records
    /// that other builds may read.
    pub fn to_owned_bytes(&self) -> Program {
        Program(Cow::Owned(self.0.to_vec()))
    }

    /// A program as the plan has it: a built-in program's name, or hex.
    fn from_text(text: &str) -> std::result::Result<Program, String> {
        if let Some(resolved) = builtin::resolve(text) {
            return resolved.map(|bytes| Program(Cow::Borrowed(bytes)));
        }
        Self::parse_hex(text)
    }

    /// A caller's program (`seccomp_filters`), as hex: 1 to 4096 whole
    /// instructions (the kernel's BPF_MAXINSNS). The kernel judges the
    /// rest when it is installed.
    pub fn from_hex(text: &str) -> std::result::Result<Program, String> {
        let p = Self::parse_hex(text)?;
        if p.is_empty() || p.len() > 4096 {
            return Err(format!(
                "a BPF program has 1 to 4096 instructions, not {}",
                p.len()
            ));
        }
        Ok(p)
    }

    /// The program whose native-order bytes these are.
    pub fn from_bytes(bytes: Vec<u8>) -> Program {
        Program(Cow::Owned(bytes))
    }

    fn parse_hex(text: &str) -> std::result::Result<Program, String> {
        if !text.len().is_multiple_of(16) {
            return Err("a BPF program is hex of 8-byte instructions".into());
        }
        let nibble = |c: u8| (c as char).to_digit(16).map(|n| n as u8);
        text.as_bytes()
            .chunks_exact(2)
            .map(|pair| Some(nibble(pair[0])? << 4 | nibble(pair[1])?))
            .collect::<Option<Vec<u8>>>()
            .map(|bytes| Program(bytes.into()))
            .ok_or_else(|| "a BPF program is hex digits only".into())
    }

    /// As hex, the way `seccomp_filters` holds it.
    pub fn to_hex(&self) -> String {
        let mut hex = String::with_capacity(self.0.len() * 2);
        for b in self.0.iter() {
            hex.push(HEX[usize::from(b >> 4)] as char);
            hex.push(HEX[usize::from(b & 0xf)] as char);
        }
        hex
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

const HEX: &[u8; 16] = b"0123456789abcdef";

// By hand rather than with format!: a custom profile's programs are
// several KiB, and a formatter call per byte cost a fifth of the CLI's
// instructions.
impl Serialize for Program {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        if let Cow::Borrowed(bytes) = self.0 {
            if let Some(name) = builtin::name_of(bytes) {
                return s.serialize_str(&name);
            }
        }
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for Program {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        // A visitor rather than `String`: the plan's text is borrowed, not
        // copied, when it has no escapes (hex and names have none).
        struct Text;
        impl serde::de::Visitor<'_> for Text {
            type Value = Program;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a BPF program in hex, or a built-in program's name")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Program, E> {
                Program::from_text(text).map_err(E::custom)
            }
        }
        d.deserialize_str(Text)
    }
}

/// Install the programs into the calling thread, in order. The caller has
/// set no_new_privs or holds CAP_SYS_ADMIN (the kernel requires one).
/// `log`: the kernel logs every call they refuse (SECCOMP_FILTER_FLAG_LOG).
/// An error says which program the kernel refused.
pub fn install(
    programs: &[Program],
    log: bool,
) -> std::result::Result<(), (usize, std::io::Error)> {
    const SECCOMP_FILTER_FLAG_LOG: libc::c_ulong = 2;
    let flags = if log { SECCOMP_FILTER_FLAG_LOG } else { 0 };
    for (i, p) in programs.iter().enumerate() {
        let mut insns = p.instructions();
        let len = u16::try_from(insns.len()).map_err(|_| {
            (
                i,
                std::io::Error::other("a BPF program of over 65535 instructions"),
            )
        })?;
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
                flags,
                &prog as *const libc::sock_fprog,
            )
        };
        if r != 0 {
            return Err((i, std::io::Error::last_os_error()));
        }
    }
    Ok(())
}

/// A build without libseccomp (the static runner's: it only installs
/// programs a plan carries or names) compiles no profile: asked to, it
/// refuses, so a caller built this way cannot start a sandbox without its
/// filter.
#[cfg(not(feature = "libseccomp"))]
mod without_libseccomp {
    use super::{Program, Seccomp};
    use crate::spec::SpecError;

    fn refused() -> SpecError {
        SpecError::new(
            "seccomp",
            "this build of airlock has no libseccomp to compile the profile with",
        )
    }

    pub fn compile(profile: &Seccomp) -> Result<Vec<Program>, SpecError> {
        match profile {
            Seccomp::None => Ok(Vec::new()),
            _ => Err(refused()),
        }
    }

    pub fn set_id_program(profile: &Seccomp) -> Result<Option<Program>, SpecError> {
        match profile {
            Seccomp::None => Ok(None),
            _ => Err(refused()),
        }
    }

    pub fn mptcp_program() -> Result<Program, SpecError> {
        Err(SpecError::new(
            "landlock",
            "TCP port rules need a seccomp filter refusing multipath TCP, and this build of airlock has no libseccomp to compile it with",
        ))
    }
}
