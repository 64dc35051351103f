//! Guardrails: refuse configurations that hand the workload the host.
//!
//! [`check`] is pure: it judges a spec against facts about the host that
//! [`Host::probe`] gathered beforehand (canonical paths, the caller's home,
//! which runtime sockets exist), and returns findings with a stable code,
//! a severity, and why it matters. A deny finding refuses the start unless
//! the spec acknowledges its code in `allow_unsafe`. Every surface — `airlock
//! run`, `--spec`, `airlock check`, the library's spawn — runs this same
//! check before anything is created, and the runner judges each bind source
//! again on the object it actually opened, so a path swapped between check
//! and mount cannot slip through.

pub mod hostids;
mod identity;
pub mod paths;
mod rules;

pub use hostids::HostIds;
pub use rules::{rule, Rule, RULES};

use crate::spec::{Mount, Root, SandboxSpec, SpecError};
use paths::{canonical, exposes, normalize, within};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Deny,
    Warn,
}

/// One thing the guardrails found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub code: &'static str,
    pub severity: Severity,
    /// The spec field it is about, such as `filesystem.mounts[3]`.
    pub subject: String,
    /// Why it is dangerous, in a sentence or two.
    pub message: String,
    /// The spec lists this code in `allow_unsafe`.
    pub acknowledged: bool,
}

impl Finding {
    /// Does this finding stop the sandbox from starting?
    pub fn refuses(&self) -> bool {
        self.severity == Severity::Deny && !self.acknowledged
    }

    pub fn help(&self) -> String {
        if self.code == "unused-allow-unsafe" {
            return "remove it from --allow-unsafe / allow_unsafe".into();
        }
        if self.acknowledged {
            return format!("acknowledged by allow_unsafe \"{}\"", self.code);
        }
        format!(
            "if this is intended, pass `--allow-unsafe {code}` (spec: allow_unsafe = [\"{code}\"])",
            code = self.code
        )
    }
}

/// Facts about the host that the rules need, gathered once by [`Host::probe`]
/// so that [`check`] itself does no I/O.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Host {
    /// The caller's home directory (canonical), if known.
    pub home: Option<String>,
    /// Host path as written in the spec → the path the kernel will reach.
    pub canonical: BTreeMap<String, String>,
    /// Runtime sockets that exist on this host (canonical paths).
    pub sockets: Vec<String>,
    /// Runtime and orchestrator state directories that exist on this host.
    #[serde(default)]
    pub state: Vec<String>,
    /// Mounts below each bind source (canonical path → mounts under it):
    /// a recursive bind brings them along.
    #[serde(default)]
    pub nested: BTreeMap<String, Vec<NestedMount>>,
    /// Which host ids are privileged (probed only when the spec shares the
    /// user namespace or writes its own id maps).
    #[serde(default)]
    pub ids: HostIds,
}

/// A mount found below a bind source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NestedMount {
    pub mountpoint: String,
    pub fstype: String,
    /// The mountpoint is a socket (a bind-mounted runtime socket).
    pub socket: bool,
}

/// Filesystems that are kernel control surfaces wherever they are mounted.
const KERNEL_FS: &[&str] = &[
    "proc",
    "sysfs",
    "cgroup",
    "cgroup2",
    "securityfs",
    "debugfs",
    "tracefs",
    "bpf",
    "configfs",
    "efivarfs",
    "fusectl",
    "pstore",
];

/// Undo mountinfo's octal escapes (`\040` for a space).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 4 <= b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The mounts at or below `path`, from this process's mount table.
pub fn nested_mounts(path: &str) -> Vec<NestedMount> {
    let Ok(table) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for line in table.lines() {
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        let Some(mp) = pre.split_whitespace().nth(4).map(unescape) else {
            continue;
        };
        // The source itself counts when it is a mountpoint (a socket or a
        // procfs mounted exactly there).
        if !within(&mp, path) {
            continue;
        }
        let fstype = post.split_whitespace().next().unwrap_or("").to_string();
        let socket = std::fs::symlink_metadata(&mp)
            .map(|m| std::os::unix::fs::FileTypeExt::is_socket(&m.file_type()))
            .unwrap_or(false);
        out.push(NestedMount {
            mountpoint: mp,
            fstype,
            socket,
        });
    }
    out
}

/// Container runtime and system sockets: connectable even through a
/// read-only mount, and each one is root on the host.
pub const RUNTIME_SOCKETS: &[&str] = &[
    "/run/docker.sock",
    "/var/run/docker.sock",
    "/run/containerd/containerd.sock",
    "/run/crio/crio.sock",
    "/run/podman/podman.sock",
    "/run/dbus/system_bus_socket",
    "/run/systemd/private",
];

/// Runtime and orchestrator state that a bind must not reach into.
pub const RUNTIME_STATE: &[&str] = &[
    "/run/containerd",
    "/run/crio",
    "/run/podman",
    "/run/docker",
    "/var/lib/docker",
    "/var/lib/containerd",
    "/var/lib/kubelet",
    "/var/lib/containers",
    "/etc/kubernetes",
];

/// Directories whose writable exposure rewrites the host.
const SYSTEM_DIRS: &[&str] = &[
    "/etc", "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/boot",
];
/// Directories that are dangerous to expose writably as a whole (their
/// contents are ordinary data dirs).
const SYSTEM_DATA_DIRS: &[&str] = &["/root", "/var/lib"];
/// Device nodes a device bind may expose.
const HARMLESS_DEVICES: &[&str] = &[
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/random",
    "/dev/urandom",
    "/dev/tty",
];

impl Host {
    /// Gather the facts for `spec` from this host: where each bind source
    /// and rootfs really leads, the caller's home, which sockets exist.
    pub fn probe(spec: &SandboxSpec, ctx: &crate::Context) -> Host {
        let mut canonical_map = BTreeMap::new();
        let mut add = |p: &str| {
            canonical_map.insert(p.to_string(), canonical(p));
        };
        for m in &spec.filesystem.mounts {
            if let Mount::Bind { source, .. } = m {
                add(source);
            }
        }
        match &spec.filesystem.root {
            Root::Path { path, .. } => add(path),
            Root::Overlay { lower, upper, .. } => {
                for l in lower.iter().chain(upper) {
                    add(l);
                }
            }
            Root::Tmpfs { .. } => {}
        }
        let uid = ctx.caller.uid;
        let mut sockets: Vec<String> = RUNTIME_SOCKETS.iter().map(|s| s.to_string()).collect();
        // The user's own managers: a session bus or systemd --user socket
        // starts host processes for whoever connects (systemd-run --user).
        for s in [
            "docker.sock",
            "podman/podman.sock",
            "bus",
            "systemd/private",
        ] {
            sockets.push(format!("/run/user/{uid}/{s}"));
        }
        let existing = |list: Vec<String>| -> Vec<String> {
            list.into_iter()
                .filter(|s| std::path::Path::new(s).exists())
                .map(|s| canonical(&s))
                .collect()
        };
        let sockets = existing(sockets);
        let state = existing(RUNTIME_STATE.iter().map(|s| s.to_string()).collect());
        let nested = canonical_map
            .values()
            .map(|c| (c.clone(), nested_mounts(c)))
            .filter(|(_, n)| !n.is_empty())
            .collect();
        let home = ctx
            .home
            .as_deref()
            .filter(|h| h.starts_with('/') && *h != "/")
            .map(canonical);
        let ids = if !spec.namespaces.user
            || !spec.identity.uid_map.is_empty()
            || !spec.identity.gid_map.is_empty()
        {
            HostIds::probe()
        } else {
            HostIds::default()
        };
        Host {
            home,
            canonical: canonical_map,
            sockets,
            state,
            nested,
            ids,
        }
    }

    /// Where `path` leads on the host (lexically normalized if not probed).
    pub fn resolve(&self, path: &str) -> String {
        self.canonical
            .get(path)
            .cloned()
            .unwrap_or_else(|| normalize(path))
    }
}

/// The capabilities that are refused outright, with their codes.
const CAPABILITY_CODES: &[(&str, &str)] = &[
    ("CAP_SYS_ADMIN", "cap-sys-admin"),
    ("CAP_SYS_MODULE", "cap-sys-module"),
    ("CAP_SYS_RAWIO", "cap-sys-rawio"),
    ("CAP_SYS_PTRACE", "cap-sys-ptrace"),
    ("CAP_DAC_READ_SEARCH", "cap-dac-read-search"),
    ("CAP_BPF", "cap-bpf"),
    ("CAP_PERFMON", "cap-perfmon"),
    ("CAP_SYS_TIME", "cap-sys-time"),
    ("CAP_SYS_BOOT", "cap-sys-boot"),
    ("CAP_MAC_ADMIN", "cap-mac-admin"),
    ("CAP_MAC_OVERRIDE", "cap-mac-admin"),
    ("CAP_SYSLOG", "cap-syslog"),
];

struct Findings<'a> {
    spec: &'a SandboxSpec,
    list: Vec<Finding>,
}

impl Findings<'_> {
    fn add(&mut self, code: &'static str, subject: impl Into<String>, message: impl Into<String>) {
        let severity = rule(code).map_or(Severity::Deny, |r| r.severity);
        let subject = subject.into();
        if self
            .list
            .iter()
            .any(|f| f.code == code && f.subject == subject)
        {
            return;
        }
        self.list.push(Finding {
            code,
            severity,
            subject,
            message: message.into(),
            acknowledged: self.spec.allow_unsafe.iter().any(|c| c == code),
        });
    }
}

fn capability_names(spec: &SandboxSpec) -> Vec<String> {
    spec.capabilities
        .iter()
        .map(|c| {
            crate::spec::parse_capability(c)
                .map(|cap| cap.to_string())
                .unwrap_or_else(|_| c.to_ascii_uppercase())
        })
        .collect()
}

/// Judge one bind mount whose source leads to `real` on the host.
fn judge_bind(
    f: &mut Findings,
    subject: &str,
    real: &str,
    readonly: bool,
    devices: bool,
    host: &Host,
) {
    let what = format!(
        "{} bind of {real}",
        if readonly { "read-only" } else { "writable" }
    );
    if !readonly {
        if real == "/" {
            f.add(
                "host-root-writable",
                subject,
                format!("{what} hands the workload the whole host filesystem to rewrite"),
            );
        } else if let Some(dir) = SYSTEM_DIRS
            .iter()
            .find(|d| exposes(real, d) || within(real, d))
            .or_else(|| SYSTEM_DATA_DIRS.iter().find(|d| exposes(real, d)))
        {
            f.add(
                "host-system-writable",
                subject,
                format!("{what} exposes the host's {dir} writable: the workload could change what the host runs or trusts"),
            );
        }
        if let Some(home) = &host.home {
            if real != "/" && exposes(real, home) {
                f.add(
                    "home-writable",
                    subject,
                    format!("{what} lets the workload change files in your home ({home}), such as shell start-up files"),
                );
            }
        }
    }
    if real == "/" && readonly {
        f.add(
            "host-root-readonly",
            subject,
            format!("{what}: the workload can read every file of the host its ids may read"),
        );
    }
    for surface in ["/proc", "/sys"] {
        if exposes(real, surface) || within(real, surface) {
            f.add(
                "kernel-surface-bind",
                subject,
                format!("{what} exposes the host's {surface}: host processes, kernel tunables and cgroups, even read-only"),
            );
        }
    }
    if devices
        && !HARMLESS_DEVICES.contains(&real)
        && (within(real, "/dev") || exposes(real, "/dev"))
    {
        f.add(
            "host-dev-bind",
            subject,
            format!("device bind of {real} gives the workload the host's devices (disks, memory, consoles)"),
        );
    }
    for socket in &host.sockets {
        if exposes(real, socket) {
            f.add(
                "runtime-socket-bind",
                subject,
                format!("{what} exposes {socket}; a socket stays connectable through a read-only mount, and this one is root on the host"),
            );
        }
    }
    for state in RUNTIME_SOCKETS.iter().chain(RUNTIME_STATE) {
        let present = host.state.iter().any(|s| s == state);
        if within(real, state) || (present && exposes(real, state)) {
            f.add(
                "runtime-socket-bind",
                subject,
                format!("{what} reaches into {state}, container runtime or orchestrator state"),
            );
        }
    }
    judge_nested(f, subject, real, host);
}

/// Judge the mounts a recursive bind of `real` brings along.
fn judge_nested(f: &mut Findings, subject: &str, real: &str, host: &Host) {
    for n in host.nested.get(real).into_iter().flatten() {
        if KERNEL_FS.contains(&n.fstype.as_str()) {
            f.add(
                "kernel-surface-bind",
                subject,
                format!(
                    "the bind of {real} carries the {} mount at {} (a kernel control surface)",
                    n.fstype, n.mountpoint
                ),
            );
        }
        if n.socket {
            f.add(
                "runtime-socket-bind",
                subject,
                format!("the bind of {real} carries a socket mounted at {}; sockets stay connectable through read-only mounts", n.mountpoint),
            );
        }
    }
}

/// Judge `spec` against the rules. Pure: all host facts come from `host`.
pub fn check(spec: &SandboxSpec, host: &Host) -> Vec<Finding> {
    let mut f = Findings {
        spec,
        list: Vec::new(),
    };
    let mut has_host_bind = false;
    for (i, m) in spec.filesystem.mounts.iter().enumerate() {
        if let Mount::Bind {
            source,
            readonly,
            devices,
            ..
        } = m
        {
            has_host_bind = true;
            let real = host.resolve(source);
            judge_bind(
                &mut f,
                &format!("filesystem.mounts[{i}]"),
                &real,
                *readonly,
                *devices,
                host,
            );
        }
    }
    if let Root::Overlay { lower, upper, .. } = &spec.filesystem.root {
        for (i, l) in lower.iter().enumerate() {
            let real = host.resolve(l);
            if real == "/" {
                f.add(
                    "host-rootfs",
                    format!("filesystem.root.lower[{i}]"),
                    "the host's / is a layer of the sandbox's root: nothing of the host is hidden",
                );
            } else {
                judge_bind(
                    &mut f,
                    &format!("filesystem.root.lower[{i}]"),
                    &real,
                    true,
                    false,
                    host,
                );
            }
        }
        if let Some(u) = upper {
            let real = host.resolve(u);
            judge_bind(&mut f, "filesystem.root.upper", &real, false, false, host);
        }
        has_host_bind = true;
    }
    if let Root::Path { path, readonly } = &spec.filesystem.root {
        let real = host.resolve(path);
        if real == "/" {
            f.add(
                "host-rootfs",
                "filesystem.root",
                format!(
                    "the sandbox's root is the host's / ({}): nothing of the host is hidden",
                    if *readonly { "read-only" } else { "writable" }
                ),
            );
        } else {
            judge_bind(&mut f, "filesystem.root", &real, *readonly, false, host);
        }
        has_host_bind = true;
    }

    let caps = capability_names(spec);
    identity::judge(&mut f, spec, host, &caps);
    if !spec.namespaces.pid {
        f.add(
            "shared-pid",
            "namespaces.pid",
            "the host's PID namespace is shared: the workload sees every host process and can signal those of its host uid, which all of a root caller's sandboxes share",
        );
    }
    if !spec.process.no_new_privs {
        f.add(
            "no-new-privs-disabled",
            "process.no_new_privs",
            "without no_new_privs a setuid or file-capability binary inside can raise the workload's privileges",
        );
    }
    if spec.seccomp == crate::seccomp::Seccomp::None {
        f.add(
            "seccomp-disabled",
            "seccomp",
            "without a syscall filter the workload reaches every kernel interface (keyctl, bpf, io_uring, ...), the usual way out of a namespace",
        );
    }

    for (name, code) in CAPABILITY_CODES {
        if caps.iter().any(|c| c == name) {
            let why = rule(code).map_or("", |r| r.catches);
            f.add(
                code,
                "capabilities",
                format!("{name} breaks isolation: {why}"),
            );
        }
    }
    if has_host_bind && caps.iter().any(|c| c == "CAP_DAC_OVERRIDE") {
        f.add(
            "cap-dac-override",
            "capabilities",
            "CAP_DAC_OVERRIDE with host binds: the workload ignores the permissions of the bound host files",
        );
    }
    if !spec.namespaces.net
        && caps
            .iter()
            .any(|c| c == "CAP_NET_ADMIN" || c == "CAP_NET_RAW")
    {
        f.add(
            "cap-net-admin-host",
            "capabilities",
            "CAP_NET_ADMIN/CAP_NET_RAW in the host's network namespace: the workload can reconfigure or sniff the host's network",
        );
    }
    if !spec.namespaces.pid
        && caps
            .iter()
            .any(|c| c == "CAP_KILL" || c == "CAP_SYS_PTRACE")
    {
        f.add(
            "cap-host-pid",
            "capabilities",
            "CAP_KILL/CAP_SYS_PTRACE in the host's PID namespace: the workload can signal or trace host processes",
        );
    }
    if !spec.namespaces.net {
        f.add(
            "shared-network",
            "namespaces.net",
            "the host's network namespace is shared: every interface and local listener of the host is reachable",
        );
    }
    if !spec.new_session {
        f.add(
            "shared-session",
            "new_session",
            "the workload stays in the caller's session and can push keystrokes into its terminal (TIOCSTI)",
        );
    }
    let triggered: Vec<&str> = f.list.iter().map(|x| x.code).collect();
    for (i, code) in spec.allow_unsafe.iter().enumerate() {
        if rule(code).is_some() && !triggered.contains(&code.as_str()) {
            f.add(
                "unused-allow-unsafe",
                format!("allow_unsafe[{i}]"),
                format!("`{code}` is acknowledged but this spec does not trigger it"),
            );
        }
    }
    f.list
}

/// Unknown codes in `allow_unsafe` are an error, not a silent no-op.
pub fn validate_codes(spec: &SandboxSpec) -> Result<(), SpecError> {
    for (i, code) in spec.allow_unsafe.iter().enumerate() {
        if rule(code).is_none() {
            return Err(SpecError::new(
                format!("allow_unsafe[{i}]"),
                format!("unknown guardrail code {code:?} (see `airlock check --list`)"),
            ));
        }
    }
    Ok(())
}

/// Does any finding refuse the start?
pub fn refused(findings: &[Finding]) -> bool {
    findings.iter().any(Finding::refuses)
}

/// Check and refuse: the warnings when the spec may run, or
/// [`crate::Error::Refused`].
pub fn enforce(spec: &SandboxSpec, host: &Host) -> Result<Vec<Finding>, crate::Error> {
    validate_codes(spec)?;
    let findings = check(spec, host);
    if refused(&findings) {
        return Err(crate::Error::Refused(findings));
    }
    Ok(findings)
}

/// Judge a bind source again on the path of the object the runner opened
/// (and the mounts below it now). Returns the findings that refuse it.
pub fn recheck_source(spec: &SandboxSpec, host: &Host, source: &str, opened: &str) -> Vec<Finding> {
    let mut host = host.clone();
    host.canonical
        .insert(source.to_string(), opened.to_string());
    host.nested
        .insert(opened.to_string(), nested_mounts(opened));
    check(spec, &host)
        .into_iter()
        .filter(Finding::refuses)
        .collect()
}

/// Findings the way a compiler prints diagnostics.
pub fn render(findings: &[Finding]) -> String {
    let mut out = String::new();
    for x in findings {
        let level = if x.refuses() { "error" } else { "warning" };
        let ack = if x.acknowledged {
            " (acknowledged)"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "{level}[{}]: {}: {}{ack}",
            x.code, x.subject, x.message
        );
        let _ = writeln!(out, "  = help: {}", x.help());
    }
    out
}

#[cfg(test)]
mod tests;
