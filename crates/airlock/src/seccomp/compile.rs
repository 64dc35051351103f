//! Compiling profiles with libseccomp: the default profile (`default.rs`,
//! precompiled by the build script where it can be) and custom OCI
//! profiles, each rule's errors named by its field. Only the caller that
//! makes a plan compiles; see the module doc of `seccomp`.

use super::default::{self, syscall};
use super::{OciArg, OciSeccomp, Program, Seccomp, SeccompError};
use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};

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

/// `field` names the action (`...action`, `...defaultAction`); its errno
/// is the `errnoRet` (`defaultErrnoRet`) beside it.
fn action(field: &str, name: &str, errno: Option<u32>) -> Result<ScmpAction> {
    Ok(match name {
        "SCMP_ACT_ALLOW" => ScmpAction::Allow,
        "SCMP_ACT_LOG" => ScmpAction::Log,
        "SCMP_ACT_ERRNO" => match errno.unwrap_or(libc::EPERM as u32) {
            // The kernel returns -errno: 0 makes the refused call look
            // done (a capset or prctl refused so would leave capabilities
            // a workload believes dropped), and it keeps 16 bits only.
            e @ 1..=4095 => ScmpAction::Errno(e as i32),
            e => {
                return Err(err(
                    errno_field(field),
                    format!("{e} is not an errno: SCMP_ACT_ERRNO returns one from 1 to 4095 (0 would make the refused call look successful)"),
                ));
            }
        },
        "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => ScmpAction::KillThread,
        "SCMP_ACT_KILL_PROCESS" => ScmpAction::KillProcess,
        "SCMP_ACT_TRAP" => ScmpAction::Trap,
        // The tracer is told the message; without a tracer the call
        // fails with ENOSYS. EPERM is runc's default message.
        "SCMP_ACT_TRACE" => match u16::try_from(errno.unwrap_or(libc::EPERM as u32)) {
            Ok(msg) => ScmpAction::Trace(msg),
            Err(_) => {
                return Err(err(
                    errno_field(field),
                    format!("{} is not a tracer's message: SCMP_ACT_TRACE passes 16 bits", errno.unwrap_or_default()),
                ));
            }
        },
        other => {
            return Err(err(
                field,
                format!("unsupported action {other:?} (SCMP_ACT_ALLOW, _ERRNO, _KILL, _KILL_PROCESS, _TRAP, _TRACE, _LOG)"),
            ))
        }
    })
}

/// The `errnoRet` (`defaultErrnoRet`) beside the action `field` names.
fn errno_field(field: &str) -> String {
    match field.strip_suffix("defaultAction") {
        Some(base) => format!("{base}defaultErrnoRet"),
        None => format!("{}errnoRet", field.trim_end_matches("action")),
    }
}

fn compare(field: &str, a: &OciArg) -> Result<ScmpArgCompare> {
    if a.index > 5 {
        return Err(err(
            format!("{field}.index"),
            "syscalls have six arguments (0 to 5)",
        ));
    }
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
    Ok(ScmpArgCompare::new(a.index, op, a.value))
}

fn arch(field: &str, name: &str) -> Result<ScmpArch> {
    name.parse::<ScmpArch>()
        .map_err(|_| err(field, format!("unknown architecture {name:?}")))
}

/// The architectures a profile lists besides the native one.
fn extra_arches(p: &OciSeccomp) -> Result<Vec<ScmpArch>> {
    let mut out = Vec::new();
    for (i, a) in p.architectures.iter().enumerate() {
        let a = arch(&format!("seccomp.oci.architectures[{i}]"), a)?;
        if a != ScmpArch::native() {
            out.push(a);
        }
    }
    Ok(out)
}

/// What every profile allows, whatever it says (see [`custom_filters`]).
const EXITS: [&str; 2] = ["exit", "exit_group"];

/// Keys a profile may carry that airlock cannot honour: refused, unless
/// empty, rather than left out of the filter.
fn unsupported_keys(p: &OciSeccomp) -> Result<()> {
    let given = |v: &Option<serde_json::Value>| {
        v.as_ref().is_some_and(|v| match v {
            serde_json::Value::Null => false,
            serde_json::Value::Object(o) => !o.is_empty(),
            serde_json::Value::Array(a) => !a.is_empty(),
            _ => true,
        })
    };
    for (key, value) in [
        ("listenerPath", &p.listener_path),
        ("listenerMetadata", &p.listener_metadata),
    ] {
        if value.as_deref().is_some_and(|v| !v.is_empty()) {
            return Err(err(
                format!("seccomp.oci.{key}"),
                "seccomp user notification is not supported: the filter's actions are all airlock applies",
            ));
        }
    }
    if given(&p.arch_map) {
        return Err(err(
            "seccomp.oci.archMap",
            "Docker's profile form is not supported: give `architectures` (the OCI form, as podman and containerd pass a profile)",
        ));
    }
    for (i, rule) in p.syscalls.iter().enumerate() {
        for (key, value) in [("includes", &rule.includes), ("excludes", &rule.excludes)] {
            if given(value) {
                return Err(err(
                    format!("seccomp.oci.syscalls[{i}].{key}"),
                    "Docker's conditional rules are not supported (the rule would apply whatever its conditions): give a profile resolved for the sandbox, in the OCI form",
                ));
            }
        }
    }
    Ok(())
}

fn custom_filters(p: &OciSeccomp, argument_filters: bool) -> Result<Vec<ScmpFilterContext>> {
    let base = "seccomp.oci";
    let default = action(
        &format!("{base}.defaultAction"),
        &p.default_action,
        p.default_errno_ret,
    )?;
    let mut ctx = default::context(default).map_err(lib(base))?;
    let permissive_default = matches!(default, ScmpAction::Allow | ScmpAction::Log);
    if !permissive_default {
        // Before the other architectures: a number libseccomp cannot
        // name on one of them would fail the rule on every one.
        newer_than_the_profile(&mut ctx, p);
    }
    let arches = extra_arches(p)?;
    for a in &arches {
        ctx.add_arch(*a)
            .map_err(lib(&format!("{base}.architectures")))?;
    }
    // clone3 answers ENOSYS (its flags are behind a pointer; C libraries
    // fall back to clone, which is filtered) in this filter too, unless the
    // profile says otherwise: the refusals' ENOSYS loses to a default
    // that kills or traps (the strictest answer of all filters wins), and
    // glibc's pthread_create and posix_spawn try clone3 first. For every
    // architecture of the profile; where one lacks it, the default stays.
    let names = |call: &str| p.syscalls.iter().any(|r| r.names.iter().any(|n| n == call));
    if !permissive_default && !names("clone3") {
        if let Some(clone3) = syscall("clone3") {
            let _ = ctx.add_rule(ScmpAction::Errno(libc::ENOSYS), clone3);
        }
    }
    // The refusals come second (the kernel runs every filter and the
    // strictest answer wins), for the same architectures as the profile:
    // otherwise a syscall of another architecture that the profile allows
    // would meet the refusals' bad-arch action.
    let refuse = if argument_filters {
        Some(default::refuse(&arches).map_err(lib("seccomp.oci.architectures"))?)
    } else {
        None
    };
    if !p.flags.is_empty() {
        // Not applied means not silently ignored.
        return Err(err(
            format!("{base}.flags"),
            format!("seccomp flags {:?} are not supported", p.flags),
        ));
    }
    unsupported_keys(p)?;
    for (i, rule) in p.syscalls.iter().enumerate() {
        for name in rule.names.iter().filter(|n| EXITS.contains(&n.as_str())) {
            if rule.action != "SCMP_ACT_ALLOW" || !rule.args.is_empty() {
                return Err(err(
                    format!("{base}.syscalls[{i}].names"),
                    format!("{name} must be allowed: a process that cannot exit retries it for good, out of reach of a stop"),
                ));
            }
        }
    }
    if default != ScmpAction::Allow {
        // libc retries a failed exit forever: a profile that forgot one
        // left a spinning process that not even SIGTERM ended (one
        // recorded from a single-threaded run names exit_group only, and
        // every thread that ends calls exit). Each one it does not name.
        for name in EXITS.iter().filter(|n| !names(n)) {
            let s = syscall(name).expect("exit and exit_group are known");
            ctx.add_rule(ScmpAction::Allow, s).map_err(lib(base))?;
        }
    }
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
        // libseccomp refuses (EINVAL) a rule that compares one argument
        // twice. runc makes it one rule per comparison instead, which
        // turns "at least 0 and at most 8" into "anything": refused here,
        // naming both.
        for (j, a) in rule.args.iter().enumerate() {
            if let Some(k) = rule.args[..j].iter().position(|b| b.index == a.index) {
                return Err(err(
                    format!("{field}.args[{j}]"),
                    format!("compares argument {} again (args[{k}] does): one rule cannot hold two comparisons of one argument; write one rule for each range", a.index),
                ));
            }
        }
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
    Ok(std::iter::once(ctx).chain(refuse).collect())
}

/// Syscalls newer than every one a refusing profile names answer ENOSYS,
/// as a kernel without them would (and as runc's filters do): C libraries
/// fall back to the older call on ENOSYS only (glibc's lchmod tries
/// fchmodat2 first; with EPERM `chmod -h` and `tar` failed). For the
/// native architecture, on its table, to the end the default profile's
/// own ENOSYS range goes; the profile's other architectures keep its
/// default there, a refusal too. A rule that cannot be added (one that
/// repeats an ENOSYS default) is left out: the call is refused either
/// way.
fn newer_than_the_profile(ctx: &mut ScmpFilterContext, p: &OciSeccomp) {
    let named: Vec<i32> = p
        .syscalls
        .iter()
        .flat_map(|r| &r.names)
        .filter_map(|n| syscall(n))
        .map(|s| s.as_raw_syscall())
        .chain(
            EXITS
                .iter()
                .filter_map(|n| syscall(n))
                .map(|s| s.as_raw_syscall()),
        )
        .filter(|nr| *nr >= 0)
        .collect();
    let newest = named.iter().copied().max().unwrap_or(0);
    for nr in (newest + 1)..=*default::NEWER_THAN_THE_LIST.end() {
        let call = ScmpSyscall::from_raw_syscall(nr);
        let _ = ctx.add_rule(ScmpAction::Errno(libc::ENOSYS), call);
    }
}

/// Compile a profile into the filters to load, in order.
pub fn filters(profile: &Seccomp) -> Result<Vec<ScmpFilterContext>> {
    match profile {
        Seccomp::None => Ok(Vec::new()),
        Seccomp::Default => default::filters().map_err(lib("seccomp")),
        Seccomp::Custom {
            oci,
            argument_filters,
        } => custom_filters(oci, *argument_filters),
    }
}

/// Compile a profile into the programs to install, in order (none for
/// `Seccomp::None`). Errors name the rule. The default profile comes
/// precompiled when it can, other profiles from memory when this process
/// has compiled them before (see the module doc).
pub fn compile(profile: &Seccomp) -> std::result::Result<Vec<Program>, crate::spec::SpecError> {
    match profile {
        Seccomp::None => return Ok(Vec::new()),
        Seccomp::Default => {
            if let Some(programs) = precompiled::usable() {
                return Ok(programs);
            }
        }
        Seccomp::Custom { .. } => {}
    }
    cache::get_or_insert(profile, cache::Part::Profile, || compile_now(profile))
}

/// The program that keeps setuid and setgid modes out of binds written as
/// a root caller (see `default::set_id_refusals`), for the architectures
/// `profile` allows; `None` without a filter at all (a guardrail finding
/// of its own, `caller-bind-unfiltered`).
pub fn set_id_program(
    profile: &Seccomp,
) -> std::result::Result<Option<Program>, crate::spec::SpecError> {
    let to_spec = |e: SeccompError| crate::spec::SpecError::new(e.field, e.reason);
    let arches: Vec<ScmpArch> = match profile {
        Seccomp::None => return Ok(None),
        Seccomp::Default => Vec::new(),
        Seccomp::Custom { oci, .. } => extra_arches(oci).map_err(to_spec)?,
    };
    if arches.is_empty() {
        if let Some(p) = precompiled::set_id() {
            return Ok(Some(p));
        }
    }
    let compiled = cache::get_or_insert(profile, cache::Part::SetId, || {
        let f = default::set_id_refusals(&arches).map_err(|e| {
            crate::spec::SpecError::new("seccomp", format!("the set-id refusals: {e}"))
        })?;
        let program = export(&f).map_err(|e| {
            crate::spec::SpecError::new("seccomp", format!("export the compiled filter: {e}"))
        })?;
        Ok(vec![program])
    })?;
    Ok(compiled.into_iter().next())
}

/// The program that keeps multipath TCP from getting past Landlock's TCP
/// port rules (see `default::mptcp_refusals`), for a spec that has them,
/// whatever its seccomp profile (the rules were asked for; a filter
/// turned off must not leave them open).
pub fn mptcp_program() -> std::result::Result<Program, crate::spec::SpecError> {
    // The same for every spec: compiled once per process (a daemon plans
    // many).
    static COMPILED: std::sync::OnceLock<Program> = std::sync::OnceLock::new();
    if let Some(p) = COMPILED.get() {
        return Ok(p.clone());
    }
    let f = default::mptcp_refusals().map_err(|e| {
        crate::spec::SpecError::new(
            "landlock",
            format!("the refusal of protocols past the port rules: {e}"),
        )
    })?;
    let program = export(&f).map_err(|e| {
        crate::spec::SpecError::new("landlock", format!("export the compiled filter: {e}"))
    })?;
    Ok(COMPILED.get_or_init(|| program).clone())
}

/// Compile with libseccomp, here and now.
fn compile_now(profile: &Seccomp) -> std::result::Result<Vec<Program>, crate::spec::SpecError> {
    let to_spec = |e: SeccompError| crate::spec::SpecError::new(e.field, e.reason);
    let mut out = Vec::new();
    for f in filters(profile).map_err(to_spec)? {
        out.push(export(&f).map_err(|e| {
            crate::spec::SpecError::new("seccomp", format!("export the compiled filter: {e}"))
        })?);
    }
    Ok(out)
}

/// The default profile's programs as the build script compiled them, if
/// compiling now would give the same: the same libseccomp (its syscall
/// table and code generator) for the same architecture.
mod precompiled {
    use super::super::builtin::{self, Precompiled, PRECOMPILED};
    use super::Program;

    pub fn usable() -> Option<Vec<Program>> {
        current()?;
        builtin::programs()
    }

    /// The set-id refusals, on the same terms as [`usable`].
    pub fn set_id() -> Option<Program> {
        current()?;
        builtin::set_id()
    }

    fn current() -> Option<&'static Precompiled> {
        let p = PRECOMPILED.as_ref()?;
        let v = libseccomp::ScmpVersion::current().ok()?;
        if (v.major, v.minor, v.micro) != p.libseccomp
            || format!("{:?}", libseccomp::ScmpArch::native()) != p.arch
        {
            return None;
        }
        Some(p)
    }
}

/// Profiles this process has compiled, by content.
mod cache {
    use super::{Program, Seccomp};
    use std::sync::Mutex;

    /// Which programs of a profile an entry holds.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Part {
        /// The profile's own filters.
        Profile,
        /// The set-id refusals for the profile's architectures.
        SetId,
    }

    /// A daemon sees a handful of distinct profiles; past that, the
    /// oldest goes.
    const ENTRIES: usize = 8;

    type Entry = ((Seccomp, Part), Vec<Program>);

    static COMPILED: Mutex<Vec<Entry>> = Mutex::new(Vec::new());

    /// Errors are not kept: they are cheap to find again and name the rule.
    pub fn get_or_insert<E>(
        profile: &Seccomp,
        part: Part,
        compile: impl FnOnce() -> Result<Vec<Program>, E>,
    ) -> Result<Vec<Program>, E> {
        let lock = || COMPILED.lock().unwrap_or_else(|e| e.into_inner());
        let hit = |e: &Entry| e.0 .0 == *profile && e.0 .1 == part;
        if let Some((_, p)) = lock().iter().find(|e| hit(e)) {
            return Ok(p.clone());
        }
        // Compiled without the lock held: other threads' profiles need not wait.
        let programs = compile()?;
        let mut entries = lock();
        if !entries.iter().any(hit) {
            if entries.len() == ENTRIES {
                entries.remove(0);
            }
            entries.push(((profile.clone(), part), programs.clone()));
        }
        Ok(programs)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn a_profile_is_compiled_once_and_its_errors_every_time() {
            let oci = serde_json::from_str(
                r#"{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
                    "syscalls": [{"names": ["read", "exit_group"], "action": "SCMP_ACT_ALLOW"}]}"#,
            )
            .unwrap();
            let profile = Seccomp::custom(oci);
            let mut compiled = 0;
            for _ in 0..3 {
                let p = get_or_insert(&profile, Part::Profile, || {
                    compiled += 1;
                    super::super::compile_now(&profile)
                })
                .unwrap();
                assert_eq!(p, super::super::compile_now(&profile).unwrap());
            }
            assert_eq!(compiled, 1);
            let mut failed = 0;
            for _ in 0..2 {
                let r: Result<Vec<Program>, ()> =
                    get_or_insert(&Seccomp::None, Part::Profile, || {
                        failed += 1;
                        Err(())
                    });
                assert!(r.is_err());
            }
            assert_eq!(failed, 2);
        }
    }
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
    Ok(Program(bytes.into()))
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
