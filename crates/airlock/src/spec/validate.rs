//! Structural validation: the spec is well formed on its own, before any
//! guardrail judges whether it is wise. Pure; no syscalls.

use super::{Clocks, IdMap, Mount, Process, Resources, Root, SandboxSpec};
use std::fmt;
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

fn absolute(field: &str, path: &str) -> Result<(), SpecError> {
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
fn destination(field: &str, path: &str) -> Result<(), SpecError> {
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
    if !spec.namespaces.time && (spec.time.boottime != 0 || spec.time.monotonic != 0) {
        return Err(SpecError::new(
            "time",
            "needs a time namespace of the sandbox's own (namespaces.time): the host's clocks cannot be set",
        ));
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
        if !d.path.starts_with("/dev/") || d.path.split('/').any(|c| c == "..") {
            return Err(SpecError::new(
                format!("{f}.path"),
                format!("{} is not a path below /dev", d.path),
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
        if k.contains("..") || k.contains(bad) || v.contains('\n') {
            return Err(SpecError::new(
                field,
                "not a sysctl name and one-line value",
            ));
        }
    }
    Ok(())
}

/// `process`: the program, its environment, directory, umask, rlimits
/// and scheduling.
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
    if let Some(dir) = &p.cwd {
        cwd("process.cwd", dir)?;
    }
    if let Some(mask) = p.umask {
        umask("process.umask", mask)?;
    }
    super::scheduling::validate("process.scheduling", &p.scheduling)?;
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
const MAX_CLOCK_OFFSET: i64 = i64::MAX / 1_000_000_000 / 2;

fn clocks(time: &Clocks) -> Result<(), SpecError> {
    // Offsets (OCI's) may be negative and need no order: the kernel
    // refuses only a clock they would put below zero, which it knows when
    // they are written.
    if !time.offsets && (time.boottime < 0 || time.monotonic < 0) {
        return Err(SpecError::new("time", "clocks cannot start below zero"));
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
    if !time.offsets && time.monotonic > time.boottime {
        return Err(SpecError::new(
            "time.monotonic",
            "cannot be ahead of time.boottime (boottime counts suspend, monotonic does not)",
        ));
    }
    Ok(())
}

/// Port rules are Landlock's: with Landlock off they would go unapplied.
fn landlock(l: &super::Landlock) -> Result<(), SpecError> {
    if l.mode != super::LandlockMode::Off {
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

/// A tmpfs's size: the kernel takes `size=0` for no limit at all.
fn tmpfs_size(field: &str, size: Option<super::Size>) -> Result<(), SpecError> {
    if size == Some(super::Size(0)) {
        return Err(SpecError::new(
            field,
            "0 bytes: the kernel takes a tmpfs of size 0 for one without a limit; give at least 1 byte, or no size",
        ));
    }
    Ok(())
}

/// The most layers a sandbox's overlay root stacks (overlayfs's own limit
/// is not much higher, and every layer is a path in one mount option).
pub const MAX_LAYERS: usize = 128;

fn root(root: &Root) -> Result<(), SpecError> {
    match root {
        Root::Path {
            readonly: false,
            make_mountpoints: true,
            ..
        } => Err(SpecError::new(
            "filesystem.root.make_mountpoints",
            "only a read-only root needs it: a writable root gets its mount points made in it anyway",
        )),
        Root::Path { path, .. } => absolute("filesystem.root.path", path),
        Root::Overlay { lower, upper, size } => {
            if lower.is_empty() {
                return Err(SpecError::new(
                    "filesystem.root.lower",
                    "an overlay needs at least one lower layer",
                ));
            }
            if lower.len() > MAX_LAYERS {
                return Err(SpecError::new(
                    "filesystem.root.lower",
                    format!("at most {MAX_LAYERS} layers"),
                ));
            }
            for (i, l) in lower.iter().enumerate() {
                absolute(&format!("filesystem.root.lower[{i}]"), l)?;
            }
            tmpfs_size("filesystem.root.size", *size)?;
            match (upper, size) {
                // The writes go to the host's directory: no tmpfs to size,
                // and a limit asked for must not go unapplied.
                (Some(_), Some(_)) => Err(SpecError::new(
                    "filesystem.root.size",
                    "sizes the tmpfs that holds an overlay's writes; with `upper` they go to that directory instead",
                )),
                (Some(u), None) => absolute("filesystem.root.upper", u),
                (None, _) => Ok(()),
            }
        }
        Root::Tmpfs { size, .. } => tmpfs_size("filesystem.root.size", *size),
    }
}

/// One entry of `filesystem.mounts`, called `f`.
fn mount(f: &str, m: &Mount) -> Result<(), SpecError> {
    destination(&format!("{f}.destination"), m.destination())?;
    if let Mount::Tmpfs { size, .. } = m {
        tmpfs_size(&format!("{f}.size"), *size)?;
    }
    match m {
        Mount::Bind { source, .. } => absolute(&format!("{f}.source"), source),
        Mount::Overlay {
            lower,
            writable,
            size,
            upper_dir,
            work_dir,
            ..
        } => {
            persistent_layer(f, *writable, *size, upper_dir, work_dir)?;
            let least = if *writable { 1 } else { 2 };
            if lower.len() < least || lower.len() > MAX_LAYERS {
                return Err(SpecError::new(
                    f.to_string(),
                    format!(
                        "an overlay of {} layers: {least} to {MAX_LAYERS} are taken{}",
                        lower.len(),
                        if *writable {
                            ""
                        } else {
                            " without a writable layer (overlayfs wants two; one is a read-only bind)"
                        }
                    ),
                ));
            }
            for (j, l) in lower.iter().enumerate() {
                absolute(&format!("{f}.lower[{j}]"), l)?;
            }
            match size {
                Some(_) if !writable => Err(SpecError::new(
                    format!("{f}.size"),
                    "sizes the writable layer, which a read-only overlay does not have",
                )),
                _ => tmpfs_size(&format!("{f}.size"), *size),
            }
        }
        Mount::Symlink { target, .. } if target.is_empty() || target.contains('\0') => Err(
            SpecError::new(format!("{f}.target"), "must be non-empty without NUL"),
        ),
        Mount::Dir { mode: Some(m), .. }
        | Mount::Tmpfs { mode: Some(m), .. }
        | Mount::File { mode: Some(m), .. }
            if m.0 & 0o6000 != 0 =>
        {
            Err(SpecError::new(
                format!("{f}.mode"),
                "setuid and setgid bits are not allowed",
            ))
        }
        _ => Ok(()),
    }
}

/// An overlay mount's `upper_dir` and `work_dir`: both or neither, on a
/// writable overlay, each absolute, neither inside the other (overlayfs
/// refuses that with a bare EINVAL or ELOOP).
fn persistent_layer(
    f: &str,
    writable: bool,
    size: Option<super::Size>,
    upper: &Option<String>,
    work: &Option<String>,
) -> Result<(), SpecError> {
    let (upper, work) = match (upper, work) {
        (None, None) => return Ok(()),
        (Some(u), Some(w)) => (u, w),
        (Some(_), None) => {
            return Err(SpecError::new(
                format!("{f}.work_dir"),
                "is needed with upper_dir: overlayfs takes both, on one filesystem",
            ))
        }
        (None, Some(_)) => {
            return Err(SpecError::new(
                format!("{f}.upper_dir"),
                "is needed with work_dir: overlayfs takes both, on one filesystem",
            ))
        }
    };
    if !writable {
        return Err(SpecError::new(
            format!("{f}.writable"),
            "an overlay with upper_dir is writable: set writable = true",
        ));
    }
    if size.is_some() {
        return Err(SpecError::new(
            format!("{f}.size"),
            "sizes a tmpfs that holds the writes; with upper_dir they go to that directory",
        ));
    }
    absolute(&format!("{f}.upper_dir"), upper)?;
    absolute(&format!("{f}.work_dir"), work)?;
    let inside = |a: &str, b: &str| {
        let a = std::path::Path::new(a);
        a.starts_with(b) || std::path::Path::new(b).starts_with(a)
    };
    if inside(upper, work) {
        return Err(SpecError::new(
            format!("{f}.work_dir"),
            format!("{work} and upper_dir {upper} are one inside the other; overlayfs needs two separate directories"),
        ));
    }
    Ok(())
}

/// The highest `pids.max` (the kernel's PID_MAX_LIMIT on 64-bit hosts).
const PID_MAX_LIMIT: u64 = 4 * 1024 * 1024;

/// The most CPUs `resources.cpus` may name.
const MAX_CPUS: f64 = 1_000_000.0;

pub(crate) fn resources(r: &Resources) -> Result<(), SpecError> {
    if r.memory.is_some_and(|m| m.0 < 1 << 20) {
        return Err(SpecError::new("resources.memory", "must be at least 1M"));
    }
    // As docker's --memory-swap: cgroup v1 has one limit for memory and
    // swap together, and a swap allowance alone would be no limit there.
    if r.swap.is_some() && r.memory.is_none() {
        return Err(SpecError::new(
            "resources.swap",
            "needs resources.memory: the swap allowance is on top of a memory limit",
        ));
    }
    if let (Some(low), Some(max)) = (r.memory_reservation, r.memory) {
        if low.0 > max.0 {
            return Err(SpecError::new(
                "resources.memory_reservation",
                format!("{} is above the memory limit {}", low.0, max.0),
            ));
        }
    }
    if r.pids == Some(0) {
        return Err(SpecError::new("resources.pids", "must be at least 1"));
    }
    // The kernel's own bounds, checked here so that an `update` fails
    // before it writes anything rather than halfway: pids.max takes up to
    // PID_MAX_LIMIT, and a CPU count far past any machine's would be a
    // quota past what cpu.max parses without overflow on older kernels.
    if let Some(p) = r.pids.filter(|p| *p > PID_MAX_LIMIT) {
        return Err(SpecError::new(
            "resources.pids",
            format!("{p} is above the kernel's highest limit, {PID_MAX_LIMIT}"),
        ));
    }
    if let Some(p) = r.cpu_period {
        if r.cpus.is_none() {
            return Err(SpecError::new(
                "resources.cpu_period",
                "a period without a quota limits nothing: give resources.cpus too",
            ));
        }
        if !(1000..=1_000_000).contains(&p) {
            return Err(SpecError::new(
                "resources.cpu_period",
                format!("{p} is not a period the kernel takes (1000 to 1000000 microseconds)"),
            ));
        }
    }
    if let Some(c) = r.cpus {
        // The kernel's least quota is 1 ms a period.
        let period = r.cpu_period.unwrap_or(crate::cgroup::plan::CPU_PERIOD_US) as f64;
        let least = 1000.0 / period;
        if !(c.is_finite() && c >= least - 1e-9 && c <= MAX_CPUS) {
            return Err(SpecError::new(
                "resources.cpus",
                format!("{c} is not a CPU count ({least} to {MAX_CPUS}: a quota of 1 ms a period at least)"),
            ));
        }
    }
    for (field, w) in [
        ("resources.cpu_weight", r.cpu_weight),
        ("resources.io_weight", r.io_weight),
    ] {
        if w.is_some_and(|w| !(1..=10000).contains(&w)) {
            return Err(SpecError::new(field, "must be between 1 and 10000"));
        }
    }
    for (field, list) in [
        ("resources.cpuset_cpus", &r.cpuset_cpus),
        ("resources.cpuset_mems", &r.cpuset_mems),
    ] {
        if let Some(list) = list {
            cpu_list(field, list)?;
        }
    }
    Ok(())
}

fn cpu_list(field: &str, list: &str) -> Result<(), SpecError> {
    parse_cpu_list(list).map(|_| ()).map_err(|why| {
        SpecError::new(
            field,
            format!("{list:?} is not a list such as \"0-3,6\": {why}"),
        )
    })
}

/// A list as the kernel writes CPUs and memory nodes: numbers (of at
/// most five digits) and ascending ranges, comma-separated (`0-3,6`).
pub(crate) fn parse_cpu_list(list: &str) -> Result<Vec<(u32, u32)>, String> {
    if list.is_empty() {
        return Err("it is empty".into());
    }
    let number = |s: &str| {
        (!s.is_empty() && s.len() <= 5 && s.bytes().all(|c| c.is_ascii_digit()))
            .then(|| s.parse::<u32>().ok())
            .flatten()
    };
    list.split(',')
        .map(|part| {
            let (a, b) = part.split_once('-').unwrap_or((part, part));
            match (number(a), number(b)) {
                (Some(x), Some(y)) if x <= y => Ok((x, y)),
                (Some(_), Some(_)) => Err(format!("the range {part:?} runs backwards")),
                _ => Err(format!("{part:?} is not a number or a range")),
            }
        })
        .collect()
}

/// One environment variable, called `field`.
pub(crate) fn env_var(field: &str, k: &str, v: &str) -> Result<(), SpecError> {
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
pub(crate) fn cwd(field: &str, path: &str) -> Result<(), SpecError> {
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
mod tests {
    use super::*;
    use crate::spec::{SandboxSpec, Size};

    fn base() -> SandboxSpec {
        SandboxSpec::builder().args(["true"]).build()
    }

    #[test]
    fn an_overlay_upper_directory_has_no_size() {
        let mut s = base();
        s.filesystem.root = crate::spec::Root::Overlay {
            lower: vec!["/usr".into()],
            upper: Some("/var/tmp/x".into()),
            size: Some(Size(64 << 20)),
        };
        let e = validate(&s).unwrap_err();
        assert_eq!(e.field, "filesystem.root.size");
        if let crate::spec::Root::Overlay { size, .. } = &mut s.filesystem.root {
            *size = None;
        }
        validate(&s).unwrap();
    }

    #[test]
    fn make_mountpoints_is_for_a_read_only_root() {
        let mut s = base();
        s.filesystem.root = crate::spec::Root::Path {
            path: "/srv/root".into(),
            readonly: false,
            make_mountpoints: true,
        };
        let e = validate(&s).unwrap_err();
        assert_eq!(e.field, "filesystem.root.make_mountpoints");
        if let crate::spec::Root::Path { readonly, .. } = &mut s.filesystem.root {
            *readonly = true;
        }
        validate(&s).unwrap();
    }

    #[test]
    fn swap_without_a_memory_limit_is_refused() {
        let mut s = base();
        s.resources.swap = Some(Size(64 << 20));
        let e = validate(&s).unwrap_err();
        assert_eq!(e.field, "resources.swap");
        assert!(e.reason.contains("needs resources.memory"), "{e}");
        s.resources.memory = Some(Size(64 << 20));
        validate(&s).unwrap();
    }

    #[test]
    fn a_memory_reservation_above_the_limit_is_refused() {
        let mut s = base();
        s.resources.memory = Some(Size(64 << 20));
        s.resources.memory_reservation = Some(Size(32 << 20));
        validate(&s).unwrap();
        s.resources.memory_reservation = Some(Size(65 << 20));
        let e = validate(&s).unwrap_err();
        assert_eq!(e.field, "resources.memory_reservation");
        assert!(e.reason.contains("above the memory limit 67108864"), "{e}");
    }

    #[test]
    fn forbidding_nested_user_namespaces_needs_the_sandboxs_own() {
        let mut s = base();
        s.namespaces.nested_user = false;
        validate(&s).unwrap();
        let reason = |s: &SandboxSpec| {
            let e = validate(s).unwrap_err();
            assert_eq!(e.field, "namespaces.nested_user");
            e.reason
        };
        s.capabilities = vec!["sys_resource".into()];
        assert!(reason(&s).contains("raise the limit"));
        s.capabilities.clear();
        s.namespaces.pid = false;
        s.namespaces
            .join
            .insert("pid".into(), "/proc/1/ns/pid".into());
        assert!(reason(&s).contains("join.pid"));
        s.namespaces.join.clear();
        s.namespaces.user = false;
        assert!(reason(&s).contains("the host's"));
    }

    #[test]
    fn minimal_spec_is_valid() {
        validate(&base()).unwrap();
    }

    /// `/.` is the root, which no rule comparing paths would see: a dot
    /// component is refused as `..` is.
    #[test]
    fn a_dot_in_a_destination_is_refused() {
        for dest in ["/.", "//.", "/./", "/x/./y", "/x/../y"] {
            let mut s = base();
            s.filesystem.mounts.push(tmpfs_at(dest));
            let e = validate(&s).unwrap_err();
            assert_eq!(e.field, "filesystem.mounts[0].destination", "{dest}");
            assert!(e.reason.contains("give the path"), "{dest}: {}", e.reason);
        }
    }

    fn tmpfs_at(destination: &str) -> Mount {
        Mount::Tmpfs {
            destination: destination.into(),
            size: None,
            mode: None,
            readonly: false,
            noexec: false,
            copy_up: false,
        }
    }

    #[test]
    fn relative_destination() {
        let mut s = base();
        s.filesystem.mounts.push(tmpfs_at("tmp"));
        let e = validate(&s).unwrap_err();
        assert_eq!(e.field, "filesystem.mounts[0].destination");
        assert!(e.reason.contains("relative"));
    }

    #[test]
    fn unknown_capability() {
        let mut s = base();
        s.capabilities.push("CAP_MAKE_COFFEE".into());
        let e = validate(&s).unwrap_err();
        assert_eq!(e.field, "capabilities[0]");
    }

    #[test]
    fn ambient_capabilities_are_kept_ones() {
        let mut s = base();
        s.capabilities = vec!["net_bind_service".into()];
        s.ambient_capabilities = Some(vec!["CAP_NET_BIND_SERVICE".into()]);
        validate(&s).unwrap();
        s.ambient_capabilities = Some(vec!["CAP_NET_BIND_SERVICE".into(), "CAP_KILL".into()]);
        let e = validate(&s).unwrap_err();
        assert_eq!(e.field, "ambient_capabilities[1]");
        assert!(e.reason.contains("CAP_KILL is not in capabilities"), "{e}");
        s.ambient_capabilities = Some(vec!["CAP_MAKE_COFFEE".into()]);
        assert_eq!(validate(&s).unwrap_err().field, "ambient_capabilities[0]");
    }

    #[test]
    fn capability_spellings() {
        assert_eq!(
            parse_capability("net_bind_service").unwrap(),
            caps::Capability::CAP_NET_BIND_SERVICE
        );
        assert!(parse_capability("CAP_SYS_ADMIN").is_ok());
        assert!(parse_capability("").is_err());
    }

    #[test]
    fn overlapping_maps() {
        let mut s = base();
        s.identity.uid_map = vec![
            IdMap {
                inside: 0,
                outside: 1000,
                count: 10,
            },
            IdMap {
                inside: 5,
                outside: 5000,
                count: 10,
            },
        ];
        assert_eq!(validate(&s).unwrap_err().field, "identity.uid_map[1]");
    }

    #[test]
    fn cwd_under_proc_is_refused() {
        for cwd in [
            "/proc/self/fd/7",
            "/proc",
            "//proc/self/fd/7",
            "/./proc/self/cwd",
            "/tmp/../proc/1/root",
        ] {
            let mut s = base();
            s.process.cwd = Some(cwd.into());
            assert_eq!(validate(&s).unwrap_err().field, "process.cwd", "{cwd}");
        }
        for cwd in ["/", "/procedures", "/tmp/proc", "/proc-x/.."] {
            let mut s = base();
            s.process.cwd = Some(cwd.into());
            validate(&s).unwrap_or_else(|e| panic!("{cwd}: {e}"));
        }
    }
}
