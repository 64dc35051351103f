//! Structural validation: the spec is well formed on its own, before any
//! guardrail judges whether it is wise. Pure; no syscalls.

use super::devices::{MAX_MAJOR, MAX_MINOR};
use super::{Clocks, IdMap, Mount, Process, SandboxSpec};
use std::fmt;

mod filesystem;
mod resources;

pub use filesystem::MAX_LAYERS;
use filesystem::{mount, root};
pub(crate) use resources::{parse_cpu_list, resources};
use std::str::FromStr;

/// A spec field that is malformed: which one and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    pub field: String,
    pub reason: String,
}

impl SpecError {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        SpecError {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}

impl std::error::Error for SpecError {}

/// The rlimit names the spec accepts, with their `RLIMIT_*` numbers (the
/// casts are no-ops on glibc, where the constants are already u32, but
/// not on musl).
#[allow(clippy::unnecessary_cast)]
pub const RLIMITS: &[(&str, u32)] = &[
    ("as", libc::RLIMIT_AS as u32),
    ("core", libc::RLIMIT_CORE as u32),
    ("cpu", libc::RLIMIT_CPU as u32),
    ("data", libc::RLIMIT_DATA as u32),
    ("fsize", libc::RLIMIT_FSIZE as u32),
    ("locks", libc::RLIMIT_LOCKS as u32),
    ("memlock", libc::RLIMIT_MEMLOCK as u32),
    ("msgqueue", libc::RLIMIT_MSGQUEUE as u32),
    ("nice", libc::RLIMIT_NICE as u32),
    ("nofile", libc::RLIMIT_NOFILE as u32),
    ("nproc", libc::RLIMIT_NPROC as u32),
    ("rss", libc::RLIMIT_RSS as u32),
    ("rtprio", libc::RLIMIT_RTPRIO as u32),
    ("rttime", libc::RLIMIT_RTTIME as u32),
    ("sigpending", libc::RLIMIT_SIGPENDING as u32),
    ("stack", libc::RLIMIT_STACK as u32),
];

/// Parse a capability name as people write it (`net_bind_service`,
/// `CAP_NET_BIND_SERVICE`) into the canonical `CAP_*` form.
pub fn parse_capability(name: &str) -> Result<caps::Capability, String> {
    let upper = name.trim().to_ascii_uppercase();
    let full = if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    };
    caps::Capability::from_str(&full)
        .map_err(|_| format!("unknown capability {name:?} (see capabilities(7) for the names)"))
}

pub(super) fn absolute(field: &str, path: &str) -> Result<(), SpecError> {
    if path.is_empty() {
        return Err(SpecError::new(field, "must not be empty"));
    }
    if path.contains('\0') {
        return Err(SpecError::new(field, "must not contain a NUL byte"));
    }
    if !path.starts_with('/') {
        return Err(SpecError::new(
            field,
            format!("{path:?} is relative; it must be an absolute path"),
        ));
    }
    Ok(())
}

/// A destination inside the sandbox: absolute, no `..` or `.`, not `/`
/// itself (which `/.` would be, unseen by the rules that compare paths).
pub(super) fn destination(field: &str, path: &str) -> Result<(), SpecError> {
    absolute(field, path)?;
    if let Some(c) = path.split('/').find(|c| *c == ".." || *c == ".") {
        return Err(SpecError::new(
            field,
            format!("{path:?} contains `{c}`; give the path inside the sandbox directly"),
        ));
    }
    if path.trim_end_matches('/').is_empty() {
        return Err(SpecError::new(
            field,
            "cannot be `/`; use filesystem.root to choose the sandbox's root",
        ));
    }
    Ok(())
}

fn id_maps(field: &str, maps: &[IdMap]) -> Result<(), SpecError> {
    for (i, m) in maps.iter().enumerate() {
        let f = format!("{field}[{i}]");
        if m.count == 0 {
            return Err(SpecError::new(f, "count must be at least 1"));
        }
        if m.inside.checked_add(m.count).is_none() || m.outside.checked_add(m.count).is_none() {
            return Err(SpecError::new(f, "the range runs past the largest id"));
        }
        for (j, o) in maps.iter().enumerate().take(i) {
            let overlap = |a: u32, b: u32| a < b + o.count && b < a + m.count;
            if overlap(m.inside, o.inside) {
                return Err(SpecError::new(
                    f,
                    format!("inside range overlaps {field}[{j}]"),
                ));
            }
            if overlap(m.outside, o.outside) {
                return Err(SpecError::new(
                    f,
                    format!("outside range overlaps {field}[{j}]"),
                ));
            }
        }
    }
    if maps.len() > 340 {
        return Err(SpecError::new(
            field,
            "the kernel accepts at most 340 ranges",
        ));
    }
    Ok(())
}

/// Check that the spec is well formed, its seccomp profile included.
/// Returns the first problem found.
pub fn validate(spec: &SandboxSpec) -> Result<(), SpecError> {
    validate_fields(spec)?;
    crate::seccomp::validate(&spec.seccomp)
}

/// Everything [`validate`] checks but compiling the seccomp profile, which
/// the plan does once (and keeps). Section by section, in the order the
/// spec lists them.
pub(crate) fn validate_fields(spec: &SandboxSpec) -> Result<(), SpecError> {
    process(&spec.process)?;
    namespaces(spec)?;
    if let crate::seccomp::Seccomp::Custom { oci, .. } = &spec.seccomp {
        crate::seccomp::lets_the_workload_start(oci)?;
    }
    if spec.seccomp_log
        && spec.seccomp == crate::seccomp::Seccomp::None
        && spec.seccomp_filters.is_empty()
    {
        return Err(SpecError::new(
            "seccomp_log",
            "there is no filter whose refusals could be logged (seccomp is none)",
        ));
    }
    if !spec.seccomp_filters.is_empty() && !spec.process.no_new_privs {
        return Err(SpecError::new(
            "seccomp_filters",
            "installed as the last step before the exec, after the workload's identity, which needs process.no_new_privs = true",
        ));
    }
    for (i, text) in spec.seccomp_filters.iter().enumerate() {
        crate::seccomp::Program::from_hex(text)
            .map_err(|why| SpecError::new(format!("seccomp_filters[{i}]"), why))?;
    }
    clocks(&spec.time)?;
    // (Zero is the default, and as offsets the host's own clocks.)
    let set = [
        ("time.boottime", spec.time.boottime),
        ("time.monotonic", spec.time.monotonic),
        ("time.boottime_nanos", spec.time.boottime_nanos.into()),
        ("time.monotonic_nanos", spec.time.monotonic_nanos.into()),
    ];
    if let Some((field, _)) = set.iter().find(|(_, v)| *v != 0) {
        if !spec.namespaces.time {
            return Err(SpecError::new(
                *field,
                "needs a time namespace of the sandbox's own (namespaces.time): the host's clocks cannot be set",
            ));
        }
    }
    landlock(&spec.landlock)?;
    for (i, c) in spec.capabilities.iter().enumerate() {
        parse_capability(c).map_err(|r| SpecError::new(format!("capabilities[{i}]"), r))?;
    }
    for (i, c) in spec.ambient_capabilities.iter().flatten().enumerate() {
        let field = format!("ambient_capabilities[{i}]");
        let cap = parse_capability(c).map_err(|r| SpecError::new(&field, r))?;
        // The kernel raises an ambient capability only if it is permitted.
        if !spec
            .capabilities
            .iter()
            .any(|k| parse_capability(k).is_ok_and(|k| k == cap))
        {
            return Err(SpecError::new(
                field,
                format!("{cap} is not in capabilities: only a kept capability can be ambient"),
            ));
        }
    }
    root(&spec.filesystem.root)?;
    for (i, d) in spec.filesystem.devices.iter().enumerate() {
        let f = format!("filesystem.devices[{i}]");
        absolute(&format!("{f}.path"), &d.path)?;
        // "/dev/" and "/dev/." name /dev itself, not a node below it.
        let below = d.path.strip_prefix("/dev/").unwrap_or("");
        if below.split('/').all(str::is_empty)
            || d.path.ends_with('/')
            || d.path.split('/').any(|c| c == ".." || c == ".")
        {
            return Err(SpecError::new(
                format!("{f}.path"),
                format!("{} is not a path below /dev", d.path),
            ));
        }
        // The kernel's dev_t holds a 12-bit major and a 20-bit minor:
        // mknod drops the bits above, so 4109:64 would make 13:64 (an
        // input device) while every check and acknowledgement named 4109.
        if d.major > MAX_MAJOR {
            return Err(SpecError::new(
                format!("{f}.major"),
                format!(
                    "{} is above the kernel's largest major, {MAX_MAJOR}",
                    d.major
                ),
            ));
        }
        if d.minor > MAX_MINOR {
            return Err(SpecError::new(
                format!("{f}.minor"),
                format!(
                    "{} is above the kernel's largest minor, {MAX_MINOR}",
                    d.minor
                ),
            ));
        }
        if d.mode.is_some_and(|m| m.0 & !0o777 != 0) {
            return Err(SpecError::new(
                format!("{f}.mode"),
                "only permission bits (0777) are allowed",
            ));
        }
        if let Some(uid) = d.uid {
            id(&format!("{f}.uid"), uid)?;
        }
        if let Some(gid) = d.gid {
            id(&format!("{f}.gid"), gid)?;
        }
    }
    let mut cgroup_mounts = 0;
    for (i, m) in spec.filesystem.mounts.iter().enumerate() {
        let f = format!("filesystem.mounts[{i}]");
        mount(&f, m)?;
        if matches!(m, Mount::Cgroup { .. }) {
            cgroup_mounts += 1;
            if cgroup_mounts > 1 {
                // Its directories are cloned once, for one mount.
                return Err(SpecError::new(f, "only one cgroup mount is allowed"));
            }
        }
        if matches!(m, Mount::Sysfs { .. }) && !spec.namespaces.net {
            // sysfs shows the network namespace it is mounted in: the
            // host's, unless the sandbox has its own.
            return Err(SpecError::new(
                f,
                "sysfs needs a network namespace of the sandbox's own (namespaces.net)",
            ));
        }
    }
    resources(&spec.resources)?;
    if let Some(t) = spec.timeout {
        if !(t.is_finite() && t > 0.0 && t <= 10.0 * 365.0 * 86400.0) {
            return Err(SpecError::new(
                "timeout",
                format!("{t} is not a positive number of seconds up to ten years (315360000)"),
            ));
        }
    }
    sysctls(spec)?;
    for (i, path) in spec.filesystem.masked_paths.iter().enumerate() {
        destination(&format!("filesystem.masked_paths[{i}]"), path)?;
    }
    for (i, path) in spec.filesystem.readonly_paths.iter().enumerate() {
        destination(&format!("filesystem.readonly_paths[{i}]"), path)?;
    }
    for (i, path) in spec.filesystem.lock_files.iter().enumerate() {
        destination(&format!("filesystem.lock_files[{i}]"), path)?;
    }
    if spec.init == crate::spec::InitMode::Workload && !spec.filesystem.lock_files.is_empty() {
        return Err(SpecError::new(
            "filesystem.lock_files",
            "airlock's init holds the locks for the sandbox's life; with init = \"workload\" (the workload as PID 1) there is none",
        ));
    }
    Ok(())
}

/// Only the kernel parameters of a namespace the sandbox has of its own:
/// any other sysctl would change the host.
fn sysctls(spec: &SandboxSpec) -> Result<(), SpecError> {
    for (k, v) in &spec.sysctls {
        let field = format!("sysctls.{k}");
        let ns = &spec.namespaces;
        let ipc = k.starts_with("kernel.shm")
            || k.starts_with("kernel.msg")
            || k == "kernel.sem"
            || k.starts_with("fs.mqueue.");
        let own = if k.starts_with("net.") {
            ns.net || ns.join.contains_key("net")
        } else if ipc {
            ns.ipc
        } else {
            return Err(SpecError::new(
                field,
                "not a sysctl of a namespace the sandbox can have (net.*, kernel.shm*, kernel.msg*, kernel.sem, fs.mqueue.*)",
            ));
        };
        if !own {
            let why = match ipc && ns.join.contains_key("ipc") {
                true => "the sandbox joins that namespace by path (namespaces.join.ipc): its parameters are its owner's to set",
                false => "the sandbox shares that namespace with the host, so this would change the host",
            };
            return Err(SpecError::new(field, why));
        }
        let bad = |c: char| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if k.contains("..") || k.contains(bad) || v.contains(['\n', '\0']) {
            return Err(SpecError::new(
                field,
                "not a sysctl name and a one-line value without NUL",
            ));
        }
    }
    Ok(())
}

/// A user or group id the process may be given: not 4294967295, which is
/// `(uid_t)-1`, what setresuid and setresgid take as "leave this one as
/// it is", so the process would keep the runner's ids (root's); crun's
/// CVE-2026-30892 ran an exec as root through a parse to it.
pub fn id(field: &str, id: u32) -> Result<(), SpecError> {
    match id {
        u32::MAX => Err(SpecError::new(
            field,
            "4294967295 is (uid_t)-1, which the kernel takes as \"leave the id unchanged\", not an id",
        )),
        _ => Ok(()),
    }
}

/// `process`: the program, its environment, directory, umask, rlimits
/// and scheduling.
fn process(p: &Process) -> Result<(), SpecError> {
    if p.args.is_empty() {
        return Err(SpecError::new("process.args", "no program given"));
    }
    if p.args[0].is_empty() {
        return Err(SpecError::new(
            "process.args[0]",
            "the program name is empty",
        ));
    }
    for (i, a) in p.args.iter().enumerate() {
        if a.contains('\0') {
            return Err(SpecError::new(
                format!("process.args[{i}]"),
                "contains a NUL byte",
            ));
        }
    }
    if p.argv0.as_ref().is_some_and(|a| a.contains('\0')) {
        return Err(SpecError::new("process.argv0", "contains a NUL byte"));
    }
    if let Some(uid) = p.uid {
        id("process.uid", uid)?;
    }
    if let Some(gid) = p.gid {
        id("process.gid", gid)?;
    }
    for (i, g) in p.groups.iter().enumerate() {
        id(&format!("process.groups[{i}]"), *g)?;
    }
    for (k, v) in &p.env {
        env_var(&format!("process.env.{k}"), k, v)?;
    }
    // A name no variable can have would remove nothing, without a word.
    for (i, k) in p.unset_env.iter().enumerate() {
        env_var(&format!("process.unset_env[{i}]"), k, "")?;
    }
    if let Some(dir) = &p.cwd {
        cwd("process.cwd", dir)?;
    }
    if let Some(mask) = p.umask {
        umask("process.umask", mask)?;
    }
    crate::spec::scheduling::validate("process.scheduling", &p.scheduling)?;
    // personality(2) takes 32 bits, and 0xffffffff only asks.
    if let Some(persona) = p.personality {
        if persona >= 0xffff_ffff {
            return Err(SpecError::new(
                "process.personality",
                format!("{persona:#x} is not a personality (below 0xffffffff, which only queries)"),
            ));
        }
    }
    for (i, r) in p.rlimits.iter().enumerate() {
        let f = format!("process.rlimits[{i}]");
        if !RLIMITS.iter().any(|(n, _)| *n == r.resource) {
            let names: Vec<&str> = RLIMITS.iter().map(|(n, _)| *n).collect();
            return Err(SpecError::new(
                format!("{f}.resource"),
                format!(
                    "unknown resource {:?} (known: {})",
                    r.resource,
                    names.join(", ")
                ),
            ));
        }
        if r.soft > r.hard {
            return Err(SpecError::new(f, "soft limit is above the hard limit"));
        }
        // Set in order, the second could not raise the first's hard limit.
        if let Some(j) = p.rlimits[..i].iter().position(|x| x.resource == r.resource) {
            return Err(SpecError::new(
                format!("{f}.resource"),
                format!("{} is already limited by process.rlimits[{j}]", r.resource),
            ));
        }
    }
    Ok(())
}

/// `namespaces`, `hostname` and `identity`: what the new namespaces need.
fn namespaces(spec: &SandboxSpec) -> Result<(), SpecError> {
    if !spec.namespaces.mount {
        return Err(SpecError::new(
            "namespaces.mount",
            "airlock builds the sandbox's root in its own mount namespace; it cannot be shared",
        ));
    }
    if spec.hostname.is_empty()
        || spec.hostname.len() > 64
        || !spec
            .hostname
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
    {
        return Err(SpecError::new(
            "hostname",
            format!(
                "{:?} is not a host name (1 to 64 letters, digits, `-`, `.` or `_`)",
                spec.hostname
            ),
        ));
    }
    // The default name is the one a sandbox without its own namespace
    // does not set either; any other would go unset.
    if !spec.namespaces.uts && spec.hostname != SandboxSpec::default().hostname {
        let why = if spec.namespaces.join.contains_key("uts") {
            // A pod's: the name its owner set is the pod's.
            "cannot be set in a joined UTS namespace (namespaces.join.uts), which keeps the name its owner gave it"
        } else {
            "needs a UTS namespace of the sandbox's own (namespaces.uts): the host's name cannot be set"
        };
        return Err(SpecError::new(
            "hostname",
            format!("{:?} {why}", spec.hostname),
        ));
    }
    if let Some(d) = &spec.domainname {
        if !spec.namespaces.uts {
            return Err(SpecError::new(
                "domainname",
                "needs a UTS namespace of the sandbox's own (namespaces.uts)",
            ));
        }
        if d.is_empty() || d.len() > 64 || !d.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(SpecError::new(
                "domainname",
                format!("{d:?} is not a domain name (1 to 64 printable characters)"),
            ));
        }
    }
    for (k, path) in &spec.namespaces.join {
        let field = format!("namespaces.join.{k}");
        let Some(kind) = crate::namespace::Namespace::joinable(k) else {
            return Err(SpecError::new(
                field,
                "only the network, IPC, UTS and PID namespaces can be joined by path",
            ));
        };
        if kind.made_by(&spec.namespaces) {
            return Err(SpecError::new(
                field,
                format!("the sandbox cannot both make a {k} namespace and join one (set namespaces.{k} = false)"),
            ));
        }
        absolute(&field, path)?;
    }
    if !spec.namespaces.nested_user {
        let field = "namespaces.nested_user";
        if !spec.namespaces.user {
            return Err(SpecError::new(
                field,
                "needs a user namespace of the sandbox's own (namespaces.user): the limit would be the host's",
            ));
        }
        if spec.namespaces.join.contains_key("pid") {
            return Err(SpecError::new(
                field,
                "cannot be set with namespaces.join.pid: the sandbox may then run in the user namespace of the PID namespace's owner, which others share",
            ));
        }
        if spec
            .capabilities
            .iter()
            .any(|c| parse_capability(c).is_ok_and(|c| c == caps::Capability::CAP_SYS_RESOURCE))
        {
            return Err(SpecError::new(
                field,
                "CAP_SYS_RESOURCE in capabilities would let the workload raise the limit again",
            ));
        }
    }
    if spec.namespaces.user {
        id_maps("identity.uid_map", &spec.identity.uid_map)?;
        id_maps("identity.gid_map", &spec.identity.gid_map)?;
    } else if !spec.identity.uid_map.is_empty() || !spec.identity.gid_map.is_empty() {
        return Err(SpecError::new(
            "identity",
            "id maps need a user namespace (namespaces.user is false)",
        ));
    }
    Ok(())
}

/// The largest offset of a time namespace's clock, in seconds: half of
/// what a 64-bit count of nanoseconds holds (the kernel's ERANGE).
pub(crate) const MAX_CLOCK_OFFSET: i64 = i64::MAX / 1_000_000_000 / 2;

fn clocks(time: &Clocks) -> Result<(), SpecError> {
    // Offsets (OCI's) may be negative and need no order: the kernel
    // refuses only a clock they would put below zero, which it knows when
    // they are written.
    for (field, v) in [
        ("time.monotonic", time.monotonic),
        ("time.boottime", time.boottime),
    ] {
        if !time.offsets && v < 0 {
            return Err(SpecError::new(field, "a clock cannot start below zero"));
        }
    }
    for (field, v) in [
        ("time.boottime", time.boottime),
        ("time.monotonic", time.monotonic),
    ] {
        if v.checked_abs().is_none_or(|v| v > MAX_CLOCK_OFFSET) {
            return Err(SpecError::new(
                field,
                format!("{v} is beyond the {MAX_CLOCK_OFFSET} seconds a time namespace's clock may be set apart from the host's"),
            ));
        }
    }
    for (field, v) in [
        ("time.boottime_nanos", time.boottime_nanos),
        ("time.monotonic_nanos", time.monotonic_nanos),
    ] {
        if v >= 1_000_000_000 {
            return Err(SpecError::new(
                field,
                format!("{v} is not below 1000000000 (a second's nanoseconds)"),
            ));
        }
    }
    let at = |secs: i64, nanos: u32| (secs as i128) * 1_000_000_000 + nanos as i128;
    if !time.offsets
        && at(time.monotonic, time.monotonic_nanos) > at(time.boottime, time.boottime_nanos)
    {
        return Err(SpecError::new(
            "time.monotonic",
            "cannot be ahead of time.boottime (boottime counts suspend, monotonic does not)",
        ));
    }
    Ok(())
}

/// Port rules are Landlock's: with Landlock off they would go unapplied.
fn landlock(l: &crate::spec::Landlock) -> Result<(), SpecError> {
    if l.mode != crate::spec::LandlockMode::Off {
        return Ok(());
    }
    for (field, rule) in [
        ("landlock.tcp_bind", &l.tcp_bind),
        ("landlock.tcp_connect", &l.tcp_connect),
    ] {
        if rule.is_some() {
            return Err(SpecError::new(
                field,
                "port rules are Landlock's, and landlock.mode is off",
            ));
        }
    }
    Ok(())
}

/// One environment variable, called `field`.
pub fn env_var(field: &str, k: &str, v: &str) -> Result<(), SpecError> {
    if k.is_empty() || k.contains('=') || k.contains('\0') || v.contains('\0') {
        return Err(SpecError::new(
            field,
            "a variable name must be non-empty without `=` or NUL, and its value without NUL",
        ));
    }
    Ok(())
}

/// A umask: permission bits only.
pub(crate) fn umask(field: &str, mask: u32) -> Result<(), SpecError> {
    if mask > 0o777 {
        return Err(SpecError::new(
            field,
            "a umask has only permission bits (at most 0o777)",
        ));
    }
    Ok(())
}

/// A working directory: absolute, and not under /proc however it is
/// spelled (`//proc`, `/tmp/../proc`): runc CVE-2024-21626, where a cwd
/// through /proc/self/fd/N reached the host.
pub fn cwd(field: &str, path: &str) -> Result<(), SpecError> {
    absolute(field, path)?;
    use crate::check::paths::{normalize, within};
    if within(&normalize(path), "/proc") {
        return Err(SpecError::new(
            field,
            "must not be under /proc (a cwd through /proc/self/fd can reach outside the sandbox)",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
