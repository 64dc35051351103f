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

pub mod paths;
mod rules;

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
    pub fn probe(spec: &SandboxSpec) -> Host {
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
        let uid = rustix::process::geteuid().as_raw();
        let mut sockets: Vec<String> = RUNTIME_SOCKETS.iter().map(|s| s.to_string()).collect();
        sockets.push(format!("/run/user/{uid}/docker.sock"));
        sockets.push(format!("/run/user/{uid}/podman/podman.sock"));
        let sockets = sockets
            .into_iter()
            .filter(|s| std::path::Path::new(s).exists())
            .map(|s| canonical(&s))
            .collect();
        let home = std::env::var("HOME")
            .ok()
            .filter(|h| h.starts_with('/') && h != "/")
            .map(|h| canonical(&h));
        Host {
            home,
            canonical: canonical_map,
            sockets,
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
        if within(real, state) {
            f.add(
                "runtime-socket-bind",
                subject,
                format!("{what} reaches into {state}, container runtime or orchestrator state"),
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

    let uid = spec.process.uid.unwrap_or(0);
    if !spec.namespaces.user && uid == 0 {
        f.add(
            "host-root-user",
            "namespaces.user",
            "uid 0 without a user namespace is the host's real root: every capability kept and every file owned by root is the host's",
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
    let caps = capability_names(spec);
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

/// Judge a bind source again on the path of the object the runner opened.
/// Returns the findings that refuse it.
pub fn recheck_source(spec: &SandboxSpec, host: &Host, source: &str, opened: &str) -> Vec<Finding> {
    let mut host = host.clone();
    host.canonical
        .insert(source.to_string(), opened.to_string());
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
