//! The default seccomp profile, in the spirit of Docker's: an allow-list.
//! Anything not listed returns EPERM, but for syscalls newer than the
//! list, which return ENOSYS as a kernel without them would (see
//! [`NEWER_THAN_THE_LIST`]); the known escape and attack-surface calls are
//! left out on purpose; a few calls are allowed only with safe arguments.
//! The lists themselves are in `lists.rs`.
//!
//! This file stands alone (libseccomp, libc and `lists.rs` only): the
//! crate's build script includes it too, to compile the profile once at
//! build time (see the module doc of `seccomp`).

use super::lists::{
    ALLOWED, CREATING, INET_PROTOCOLS, MODE_SETTERS, NAMESPACE_FLAGS, NETLINK_PROTOCOLS,
    PERSONALITIES, SET_ID_BITS, SOCKETPAIR_FAMILIES, SOCKET_FAMILIES, TERMINAL_INJECTION,
};
use libseccomp::error::SeccompError;
use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};

/// A syscall of the native architecture by name; `None` when libseccomp
/// does not know it.
pub fn syscall(name: &str) -> Option<ScmpSyscall> {
    ScmpSyscall::from_name(name).ok()
}

/// A filter context whose programs are binary trees on the syscall number
/// (libseccomp's optimization level 2) rather than the default chain of
/// comparisons. The program means the same; what changes is its cost when
/// installed: the kernel fills its action cache by running the filter for
/// every syscall number of every architecture (`seccomp_cache_prepare`),
/// with interrupts off, and down a chain of 300 comparisons that took
/// 0.43 ms for the default allow-list against 0.10 ms as a tree — paid by
/// every start and every exec into a sandbox. The calls the cache cannot
/// serve (those compared by argument) are found in a few jumps too.
pub fn context(default: ScmpAction) -> Result<ScmpFilterContext, SeccompError> {
    let mut f = ScmpFilterContext::new(default)?;
    f.set_ctl_optimize(2)?;
    // A call of an architecture the filter does not cover (int 0x80 from
    // a 64-bit process) ends the whole process, not only the thread that
    // made it (libseccomp's default), which left the others hung.
    // libseccomp asks the kernel whether it has that action first: a
    // caller whose own filter refuses seccomp() keeps the thread's kill,
    // a refusal too, rather than compiling nothing.
    let _ = f.set_act_badarch(ScmpAction::KillProcess);
    Ok(f)
}

/// The default profile as two filters. The kernel runs every filter and
/// the most restrictive answer wins, which lets the second one refuse what
/// the first allows: ioctl requests compared on their low 32 bits only (the
/// kernel ignores the rest, CVE-2019-10063), and clone3 with ENOSYS.
pub fn filters() -> Result<Vec<ScmpFilterContext>, SeccompError> {
    let mut allow = context(ScmpAction::Errno(libc::EPERM))?;
    let mut allowed = Vec::new();
    for name in ALLOWED.iter().chain(["ioctl", "clone3"].iter()) {
        if let Some(s) = syscall(name) {
            allow.add_rule(ScmpAction::Allow, s)?;
            allowed.push(s.as_raw_syscall());
        }
    }
    // uretprobe by its number where this libseccomp cannot name it (2.5
    // cannot): the native architecture's, the only one these filters
    // cover. (In a slot below the others: not in the range below.)
    #[cfg(target_arch = "x86_64")]
    if syscall("uretprobe").is_none() {
        allow.add_rule(ScmpAction::Allow, ScmpSyscall::from_raw_syscall(335))?;
    }
    for nr in NEWER_THAN_THE_LIST.filter(|nr| !allowed.contains(nr)) {
        allow.add_rule(
            ScmpAction::Errno(libc::ENOSYS),
            ScmpSyscall::from_raw_syscall(nr),
        )?;
    }
    if let Some(clone) = syscall("clone") {
        let cmp = ScmpArgCompare::new(0, ScmpCompareOp::MaskedEqual(NAMESPACE_FLAGS), 0);
        allow.add_rule_conditional(ScmpAction::Allow, clone, &[cmp])?;
    }
    if let Some(socket) = syscall("socket") {
        socket_rules(&mut allow, socket)?;
    }
    if let Some(pair) = syscall("socketpair") {
        for family in SOCKETPAIR_FAMILIES {
            let cmp = ScmpArgCompare::new(0, ScmpCompareOp::Equal, *family as u64);
            allow.add_rule_conditional(ScmpAction::Allow, pair, &[cmp])?;
        }
    }
    if let Some(p) = syscall("personality") {
        for value in PERSONALITIES {
            let cmp = ScmpArgCompare::new(0, ScmpCompareOp::Equal, *value);
            allow.add_rule_conditional(ScmpAction::Allow, p, &[cmp])?;
        }
    }
    Ok(vec![allow, refuse(&[])?])
}

/// socket(2) for the families of [`SOCKET_FAMILIES`]; IPv4's, IPv6's and
/// netlink's only with the protocols of their lists (or, for IP, as
/// SOCK_RAW), so no call loads a protocol's module.
fn socket_rules(allow: &mut ScmpFilterContext, socket: ScmpSyscall) -> Result<(), SeccompError> {
    let eq = |arg: u32, value: i32| ScmpArgCompare::new(arg, ScmpCompareOp::Equal, value as u64);
    for family in SOCKET_FAMILIES.iter().copied() {
        let protocols = match family {
            libc::AF_INET | libc::AF_INET6 => INET_PROTOCOLS,
            libc::AF_NETLINK => NETLINK_PROTOCOLS,
            _ => {
                allow.add_rule_conditional(ScmpAction::Allow, socket, &[eq(0, family)])?;
                continue;
            }
        };
        for protocol in protocols {
            allow.add_rule_conditional(
                ScmpAction::Allow,
                socket,
                &[eq(0, family), eq(2, *protocol)],
            )?;
        }
        if family != libc::AF_NETLINK {
            // The type's low 4 bits; the rest are SOCK_NONBLOCK and
            // SOCK_CLOEXEC.
            let raw =
                ScmpArgCompare::new(1, ScmpCompareOp::MaskedEqual(0xf), libc::SOCK_RAW as u64);
            allow.add_rule_conditional(ScmpAction::Allow, socket, &[eq(0, family), raw])?;
        }
    }
    // Any other family answers EAFNOSUPPORT, as a kernel without it would:
    // callers probing for one (systemd for AF_VSOCK and AF_ALG, a
    // Bluetooth or CAN library) take that for "not here" and go on, where
    // EPERM read as a failure. (Its code is never reached either way.)
    let unsupported = ScmpAction::Errno(libc::EAFNOSUPPORT);
    for family in (0..AF_MAX).filter(|f| !SOCKET_FAMILIES.contains(f)) {
        allow.add_rule_conditional(unsupported, socket, &[eq(0, family)])?;
    }
    let past = ScmpArgCompare::new(0, ScmpCompareOp::GreaterEqual, AF_MAX as u64);
    allow.add_rule_conditional(unsupported, socket, &[past])?;
    Ok(())
}

/// One past the largest socket family the kernel knows (linux/socket.h's
/// AF_MAX in 6.x, after AF_MCTP): a family at or above it is no family at
/// all.
const AF_MAX: i32 = 46;

/// The syscall numbers after the last one the lists were written against
/// (Linux 6.1's, `set_mempolicy_home_node`, 450: the same on x86_64 and on
/// the generic table of arm64 and riscv64), to the end of the native
/// table (512 on x86_64 starts the x32 ones, which the architecture check
/// kills). They return ENOSYS, as a kernel without them would: C
/// libraries try a new call first and fall back to the old one on ENOSYS
/// only (glibc 2.39's lchmod and fchmodat with AT_SYMLINK_NOFOLLOW try
/// fchmodat2, 452; with EPERM `tar` and `chmod -h` failed), and a call
/// not yet weighed is then refused all the same, as runc does.
pub const NEWER_THAN_THE_LIST: std::ops::RangeInclusive<i32> = 451..=511;

/// With Landlock's TCP port rules (`landlock.tcp_bind`, `tcp_connect`):
/// the stream protocols Landlock's TCP rights do not cover refused at
/// socket(), for IPv4 and IPv6: multipath TCP and SMC, which bind and
/// connect their inner TCP socket inside the kernel (past Landlock's
/// hooks) and fall back to plain TCP with a peer that speaks neither
/// (landlock-lsm/linux#54, Landlock's erratum 1), and SCTP, which reaches
/// any SCTP port (by its number, or as SOCK_SEQPACKET's only protocol);
/// and the SMC family itself, and a TCP socket turned SMC by TCP_ULP;
/// TCP Fast Open's connecting sends; and io_uring. The port rules would otherwise hold nothing. EPROTONOSUPPORT and EAFNOSUPPORT are what a
/// kernel without them says, on which Go and others fall back to TCP.
/// (Compiled when a spec asks for port rules, never by the build script,
/// which includes this file too.)
#[allow(dead_code)]
pub fn mptcp_refusals() -> Result<ScmpFilterContext, SeccompError> {
    let mut refuse = allowing_on(&[], |_| Ok(()))?;
    let low32 = |arg: u32, value: u64| {
        ScmpArgCompare::new(arg, ScmpCompareOp::MaskedEqual(0xffff_ffff), value)
    };
    if let Some(socket) = syscall("socket") {
        for family in [libc::AF_INET, libc::AF_INET6] {
            for protocol in [IPPROTO_MPTCP, IPPROTO_SMC, libc::IPPROTO_SCTP as u64] {
                refuse.add_rule_conditional(
                    ScmpAction::Errno(libc::EPROTONOSUPPORT),
                    socket,
                    &[low32(0, family as u64), low32(2, protocol)],
                )?;
            }
            // Protocol 0 takes the first protocol of the type, and SCTP is
            // the only one of SOCK_SEQPACKET (the type's low 4 bits; the
            // rest are SOCK_NONBLOCK and SOCK_CLOEXEC).
            let seqpacket = ScmpArgCompare::new(
                1,
                ScmpCompareOp::MaskedEqual(0xf),
                libc::SOCK_SEQPACKET as u64,
            );
            refuse.add_rule_conditional(
                ScmpAction::Errno(libc::EPROTONOSUPPORT),
                socket,
                &[low32(0, family as u64), seqpacket],
            )?;
        }
        refuse.add_rule_conditional(
            ScmpAction::Errno(libc::EAFNOSUPPORT),
            socket,
            &[low32(0, AF_SMC)],
        )?;
    }
    // A TCP socket made SMC afterwards, by its upper-layer protocol
    // (setsockopt TCP_ULP "smc", Linux 5.17 on), is no TCP socket to
    // Landlock's hooks and connects inside the kernel as SMC does. The
    // name is behind a pointer: every TCP_ULP is refused (kTLS's too),
    // with EOPNOTSUPP, on which kTLS users fall back to TLS in user space.
    if let Some(setsockopt) = syscall("setsockopt") {
        refuse.add_rule_conditional(
            ScmpAction::Errno(libc::EOPNOTSUPP),
            setsockopt,
            &[
                low32(1, libc::IPPROTO_TCP as u64),
                low32(2, libc::TCP_ULP as u64),
            ],
        )?;
    }
    // TCP Fast Open connects inside sendto/sendmsg (MSG_FASTOPEN on an
    // unconnected socket), where kernels before Landlock's fix ran no
    // connect hook (landlock-lsm/linux#41). EOPNOTSUPP: what a kernel
    // without client fast open says, on which callers fall back to
    // connect(), which Landlock checks.
    let fastopen = libc::MSG_FASTOPEN as u64;
    for (name, flags) in [("sendto", 3), ("sendmsg", 2), ("sendmmsg", 3)] {
        if let Some(call) = syscall(name) {
            let set = ScmpArgCompare::new(flags, ScmpCompareOp::MaskedEqual(fastopen), fastopen);
            refuse.add_rule_conditional(ScmpAction::Errno(libc::EOPNOTSUPP), call, &[set])?;
        }
    }
    // io_uring makes sockets and sends (IORING_OP_SOCKET, IORING_OP_SEND)
    // without these calls. The default profile refuses it; a custom one
    // may allow it, and the port rules must hold all the same.
    if let Some(setup) = syscall("io_uring_setup") {
        refuse.add_rule(ScmpAction::Errno(libc::ENOSYS), setup)?;
    }
    Ok(refuse)
}

/// `IPPROTO_MPTCP` and `IPPROTO_SMC` (linux/in.h), and `AF_SMC`
/// (linux/socket.h); not in every libc crate's list.
#[allow(dead_code)]
const IPPROTO_MPTCP: u64 = 262;
#[allow(dead_code)]
const IPPROTO_SMC: u64 = 256;
#[allow(dead_code)]
const AF_SMC: u64 = 43;

/// A filter that allows what it has no rule for, on the native
/// architecture and `arches`: the base of the refusals. Architectures
/// before rules: libseccomp gives an architecture added later none of the
/// rules already there. So `native_only` adds the rules that are the
/// native architecture's alone, before the others come.
fn allowing_on(
    arches: &[ScmpArch],
    native_only: impl FnOnce(&mut ScmpFilterContext) -> Result<(), SeccompError>,
) -> Result<ScmpFilterContext, SeccompError> {
    let mut f = context(ScmpAction::Allow)?;
    native_only(&mut f)?;
    for a in arches {
        if *a != ScmpArch::native() {
            f.add_arch(*a)?;
        }
    }
    Ok(f)
}

/// The second filter: refusals by argument, on top of whatever the first
/// allows, for the native architecture and `arches`. Custom profiles get
/// it too (see `custom_filters` in the module), so every rule added here
/// applies to them as well.
pub fn refuse(arches: &[ScmpArch]) -> Result<ScmpFilterContext, SeccompError> {
    let mut refuse = allowing_on(arches, wide_int_refusals)?;
    if let Some(ioctl) = syscall("ioctl") {
        for req in TERMINAL_INJECTION {
            let cmp = ScmpArgCompare::new(1, ScmpCompareOp::MaskedEqual(0xffff_ffff), *req);
            refuse.add_rule_conditional(ScmpAction::Errno(libc::EPERM), ioctl, &[cmp])?;
        }
    }
    if let Some(clone3) = syscall("clone3") {
        refuse.add_rule(ScmpAction::Errno(libc::ENOSYS), clone3)?;
    }
    Ok(refuse)
}

/// The kernel reads these arguments as 32-bit ints, while a filter
/// compares all 64 bits: a custom profile's "family != AF_VSOCK" (Docker's)
/// let socket(0x1_0000_0028, ...) through, and the kernel made an AF_VSOCK
/// socket. No caller sets the upper half (EINVAL, as for any value out of
/// range). On a 64-bit architecture only, and for it alone: on 32-bit x86
/// (and s390) libseccomp makes a socket rule one of socketcall, whose
/// first argument is the call's number, and this would refuse them all.
fn wide_int_refusals(f: &mut ScmpFilterContext) -> Result<(), SeccompError> {
    if cfg!(not(target_pointer_width = "64")) || cfg!(target_arch = "s390x") {
        return Ok(());
    }
    for (name, ints) in [("socket", 3), ("socketpair", 3), ("personality", 1)] {
        if let Some(call) = syscall(name) {
            for arg in 0..ints {
                let wide = ScmpArgCompare::new(arg, ScmpCompareOp::Greater, 0xffff_ffff);
                f.add_rule_conditional(ScmpAction::Errno(libc::EINVAL), call, &[wide])?;
            }
        }
    }
    Ok(())
}

/// A third filter, for sandboxes whose writable binds are written as a
/// root caller (`spec::BindOwner::Caller`): what the workload makes there
/// is host root's, so no call may give a file a setuid or setgid mode
/// (`SET_ID_BITS`). Only there: elsewhere such a file is the sandbox's own
/// ids' and nosuid, and refusing it everywhere would break installing
/// packages in a container.
pub fn set_id_refusals(arches: &[ScmpArch]) -> Result<ScmpFilterContext, SeccompError> {
    let mut refuse = allowing_on(arches, |_| Ok(()))?;
    // Every call by name, or no filter: one this libseccomp does not know
    // (fchmodat2 before 2.5.5) would otherwise go through unrefused under a
    // profile that allows it.
    for (name, mode, flags) in MODE_SETTERS {
        let call = ScmpSyscall::from_name(name)?;
        for bit in SET_ID_BITS {
            let set = ScmpArgCompare::new(*mode, ScmpCompareOp::MaskedEqual(*bit), *bit);
            match flags {
                None => {
                    refuse.add_rule_conditional(ScmpAction::Errno(libc::EPERM), call, &[set])?;
                }
                Some(f) => {
                    for c in CREATING {
                        let creating = ScmpArgCompare::new(*f, ScmpCompareOp::MaskedEqual(*c), *c);
                        refuse.add_rule_conditional(
                            ScmpAction::Errno(libc::EPERM),
                            call,
                            &[creating, set],
                        )?;
                    }
                }
            }
        }
    }
    // Its mode is behind a pointer, out of a filter's reach: ENOSYS, so
    // that callers fall back to openat, whose mode is checked above.
    // io_uring's too (IORING_OP_OPENAT, ... carry theirs in the ring): the
    // default profile refuses it, but a custom one may allow it.
    for name in ["io_uring_setup", "openat2"] {
        refuse.add_rule(
            ScmpAction::Errno(libc::ENOSYS),
            ScmpSyscall::from_name(name)?,
        )?;
    }
    Ok(refuse)
}
