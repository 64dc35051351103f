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

mod as_caller;
mod binds;
mod host;
pub mod hostids;
mod identity;
pub mod paths;
mod rules;
mod seccomp;
mod snapshot;
mod unix_diag;

pub use host::{
    mount_table, nested_mounts, Host, NestedMount, Snapshot, DAEMON_STATE_ROOT, RUNTIME_SOCKETS,
    RUNTIME_STATE,
};
pub use hostids::HostIds;
pub use rules::{rule, Rule, RULES};
pub use seccomp::default_is_permissive as seccomp_default_is_permissive;
pub use seccomp::is_permissive as seccomp_is_permissive;
pub use seccomp::let_through_names as seccomp_let_through;
pub use unix_diag::{
    forget_host_view as forget_host_socket_view, keep_host_view as keep_host_socket_view,
};

use crate::spec::{SandboxSpec, SpecError};
use serde::{Deserialize, Serialize};
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

/// The spec's capabilities by their kernel names (`CAP_SETUID`), however
/// written.
pub(crate) fn capability_names(spec: &SandboxSpec) -> Vec<String> {
    spec.capabilities
        .iter()
        .map(|c| {
            crate::spec::parse_capability(c)
                .map(|cap| cap.to_string())
                .unwrap_or_else(|_| c.to_ascii_uppercase())
        })
        .collect()
}

/// Is the host's PID namespace the sandbox's? Shared, or joined by a path
/// that is the caller's own. One joined by another path is another
/// sandbox's (a pod's).
fn pid_shared(spec: &SandboxSpec, host: &Host) -> bool {
    !spec.namespaces.pid && (!spec.namespaces.join.contains_key("pid") || host.joins_own_pid)
}

/// Is the host's network namespace the sandbox's? As [`pid_shared`]: one
/// joined by another path is a pod's, prepared for it.
fn net_shared(spec: &SandboxSpec, host: &Host) -> bool {
    !spec.namespaces.net && (!spec.namespaces.join.contains_key("net") || host.joins_own_net)
}

/// The network capabilities of `caps` that the kernel does not honour:
/// in a user namespace of its own, the sandbox's capabilities count only
/// in namespaces that one owns, and a network namespace shared or joined
/// was made before it (by the host or a platform) and is never among
/// them. Binding a port below `net.ipv4.ip_unprivileged_port_start`, a
/// raw socket, an interface's settings: all refused there as without.
fn inert_net_caps<'a>(spec: &SandboxSpec, caps: &'a [String]) -> Vec<&'a str> {
    const NET: [&str; 4] = [
        "CAP_NET_ADMIN",
        "CAP_NET_RAW",
        "CAP_NET_BIND_SERVICE",
        "CAP_NET_BROADCAST",
    ];
    match spec.namespaces.user && !spec.namespaces.net {
        true => caps
            .iter()
            .map(String::as_str)
            .filter(|c| NET.contains(c))
            .collect(),
        false => Vec::new(),
    }
}

/// Judge `spec` against the rules. Pure: all host facts come from `host`.
pub fn check(spec: &SandboxSpec, host: &Host) -> Vec<Finding> {
    let mut f = Findings {
        spec,
        list: Vec::new(),
    };
    let has_host_bind = binds::judge_filesystem(&mut f, spec, host);
    judge_devices(&mut f, spec);
    let caps = capability_names(spec);
    identity::judge(&mut f, spec, host, &caps);
    judge_protections(&mut f, spec, host);
    seccomp::judge(&mut f, spec);
    let shared = (pid_shared(spec, host), net_shared(spec, host));
    judge_capabilities(&mut f, spec, &caps, has_host_bind, shared);
    judge_shared(&mut f, spec, host);
    judge_idmap(&mut f, spec, host);
    judge_caller_binds(&mut f, spec, host, &caps);
    judge_acknowledgements(&mut f, spec);
    f.list
}

/// A device node reaches the host's hardware or kernel (a disk, memory,
/// the kernel log, a console) unless it is one of the harmless few.
fn judge_devices(f: &mut Findings, spec: &SandboxSpec) {
    use crate::spec::{harmless_device, DeviceKind};
    for (i, d) in spec.filesystem.devices.iter().enumerate() {
        let harmless = d.kind == DeviceKind::Char && harmless_device(d.major, d.minor);
        if !harmless {
            let kind = match d.kind {
                DeviceKind::Char => "character",
                DeviceKind::Block => "block",
            };
            f.add(
                "host-dev-bind",
                format!("filesystem.devices[{i}]"),
                format!(
                    "{} is the host's {kind} device {}:{}, which reaches the host's hardware or kernel (disks, memory, consoles)",
                    d.path, d.major, d.minor
                ),
            );
        }
    }
}

/// An idmapped mount gives sandbox root the host owners' rights over its
/// files: to write them where it is writable, and, writable or not, to
/// read those only their owners may.
fn judge_idmap(f: &mut Findings, spec: &SandboxSpec, host: &Host) {
    // Every mount an entry names is idmapped, so each is judged: two
    // binds onto one destination must not hide a writable one behind a
    // read-only one.
    for d in &spec.filesystem.idmap {
        let named = spec.filesystem.idmapped(d);
        if named.iter().any(|(_, writable)| *writable) {
            f.add(
                "idmapped-writable",
                "filesystem.idmap",
                format!("{d} is writable and shown with host ownership: sandbox root writes there as the host's owner of each file (host root for root's files)"),
            );
        }
        // The mounts a bind carries are idmapped with it (the setattr is
        // recursive): one that shows another host directory (a bind of
        // /etc made below the source) is judged by that directory too.
        let shown = named.iter().flat_map(|(source, _)| {
            let real = host.resolve(source);
            let carried: Vec<String> = host
                .nested
                .get(&real)
                .into_iter()
                .flatten()
                .filter_map(|n| n.shows.clone())
                .collect();
            std::iter::once(real).chain(carried)
        });
        for real in shown {
            if let Some(p) = private_dir_reached(&real, host) {
                f.add(
                    "idmapped-private",
                    "filesystem.idmap",
                    format!("{d} ({real}) is shown with host ownership and reaches {p}, where files only their owners may read are: sandbox root reads each as its owner"),
                );
            }
        }
    }
    judge_idmapped_layers(f, spec, host);
}

/// A root caller's overlay root and writable overlay mounts, in a user
/// namespace of its own: each layer of host ids the namespace does not
/// map is idmapped through it (`runner::sources`), so that what the
/// workload changes can be copied up, and sandbox root reads the layer's
/// files as their owners. Store layers are unpacked for the sandbox's ids
/// and never idmapped; a read-only overlay mount copies nothing up.
fn judge_idmapped_layers(f: &mut Findings, spec: &SandboxSpec, host: &Host) {
    use crate::spec::{Mount, Root};
    if !host.root_caller || !spec.namespaces.user {
        return;
    }
    let root = match &spec.filesystem.root {
        Root::Overlay { lower, .. } => {
            Some(("filesystem.root".to_string(), "the overlay root", lower))
        }
        _ => None,
    };
    let mounts = spec
        .filesystem
        .mounts
        .iter()
        .enumerate()
        .filter_map(|(i, m)| match m {
            Mount::Overlay {
                lower,
                writable: true,
                ..
            } => Some((format!("filesystem.mounts[{i}]"), "an overlay mount", lower)),
            _ => None,
        });
    let stores = host.image_stores();
    for (field, what, lower) in root.into_iter().chain(mounts) {
        for (i, l) in lower.iter().enumerate() {
            let real = host.resolve(l);
            if stores.iter().any(|store| paths::within(&real, store)) {
                continue;
            }
            if let Some(p) = private_dir_reached(&real, host) {
                let l = match real == *l {
                    true => l.clone(),
                    false => format!("{l} ({real})"),
                };
                f.add(
                    "idmapped-private",
                    format!("{field}.lower[{i}]"),
                    format!("{l} is a layer of host ids under {what}, shown with host ownership so that its files can be copied up, and reaches {p}, where files only their owners may read are: sandbox root reads each as its owner"),
                );
            }
        }
    }
}

/// The directory of [`PRIVATE_DIRS`] (or the caller's home) that `real`
/// lies in or holds.
fn private_dir_reached<'a>(real: &str, host: &'a Host) -> Option<&'a str> {
    PRIVATE_DIRS
        .iter()
        .copied()
        .chain(host.home.as_deref())
        .find(|p| paths::within(real, p) || paths::within(p, real))
}

/// Where a host keeps files only their owners may read: an idmapped mount
/// shows them to sandbox root as its own.
const PRIVATE_DIRS: &[&str] = &[
    "/etc",
    "/root",
    "/home",
    "/var/lib",
    "/var/log",
    "/var/spool",
    "/var/mail",
    "/var/backups",
    "/var/cache",
    "/run",
    "/boot",
];

/// A root caller's writable binds are written as host root (see
/// `spec::BindOwner`). The default seccomp profile keeps setuid and setgid
/// modes out of them; a file capability needs CAP_SETFCAP. Either one set
/// there would be host root's, good for any host user who runs the file.
fn judge_caller_binds(f: &mut Findings, spec: &SandboxSpec, host: &Host, caps: &[String]) {
    let fs = &spec.filesystem;
    if !spec.binds_written_as_caller(host.root_caller) {
        return;
    }
    let Some(d) = fs.first_caller_write() else {
        return;
    };
    if caps.iter().any(|c| c == "CAP_SETFCAP") {
        f.add(
            "caller-bind-setfcap",
            "capabilities",
            format!("CAP_SETFCAP with a writable bind ({d}) written as the root caller: a file capability set there is host root's, and raises any host user who runs the file"),
        );
    }
    // The namespace is made by (so owned by) the host uid its root maps
    // to: a host account with that uid may enter it with every capability
    // there, outside the workload's filter, and set a setuid bit on host
    // root's files in the bind (shown there as the sandbox root's).
    if let Some(owner) = crate::spec::host_id(&spec.identity.uid_map, 0) {
        if owner != 0 {
            if let Some(name) = host.ids.user_names.get(owner) {
                f.add(
                    "caller-bind-owner",
                    "identity.uid_map",
                    format!("the sandbox's root is host uid {owner} ({name}), which owns its user namespace: that account can enter it with every capability there, past the syscall filter, and make a setuid-root program in the writable bind {d}, which is written as the root caller"),
                );
            }
        }
    }
    if spec.seccomp == crate::seccomp::Seccomp::None {
        f.add(
            "caller-bind-unfiltered",
            "seccomp",
            format!("no syscall filter with a writable bind ({d}) written as the root caller: nothing stops the workload from making a setuid-root program there for any host user"),
        );
    }
}

/// Protections that are on unless the spec turns them off: the PID
/// namespace, no_new_privs, the syscall filter, the host's priority over
/// the workload.
fn judge_protections(f: &mut Findings, spec: &SandboxSpec, host: &Host) {
    if pid_shared(spec, host) {
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
    // The flags the kernel clears when a setuid program runs
    // (PER_CLEAR_ON_SETID), because they weaken it; airlock's default
    // syscall filter keeps the workload from setting them itself.
    const PER_CLEAR_ON_SETID: u64 = 0x004_0000 | 0x010_0000 | 0x020_0000 | 0x040_0000;
    if let Some(p) = spec
        .process
        .personality
        .filter(|p| p & PER_CLEAR_ON_SETID != 0)
    {
        f.add(
            "personality-unsafe",
            "process.personality",
            format!("{p:#x} turns off address-space randomization or makes readable memory executable (a flag of PER_CLEAR_ON_SETID) for the workload and everything it starts"),
        );
    }
    if spec.seccomp == crate::seccomp::Seccomp::None {
        f.add(
            "seccomp-disabled",
            "seccomp",
            "without a syscall filter the workload reaches every kernel interface (keyctl, bpf, io_uring, ...), the usual way out of a namespace",
        );
    }
    for field in spec.process.scheduling.raised() {
        f.add(
            "raised-priority",
            format!("process.scheduling.{field}"),
            "puts the workload ahead of the host's own work: a busy loop there takes CPU time (with a real-time policy, whole CPUs) or disk time from the host's services",
        );
    }
    // The limits under which the workload may raise itself: RLIMIT_RTPRIO
    // is the highest real-time priority it may take, RLIMIT_NICE 20 minus
    // the lowest nice value (a soft limit rises to the hard one).
    for (i, r) in spec.process.rlimits.iter().enumerate() {
        let raises = match r.resource.as_str() {
            "rtprio" => r.hard > 0,
            "nice" => r.hard > 20,
            _ => false,
        };
        if raises {
            f.add(
                "raised-priority",
                format!("process.rlimits[{i}]"),
                format!("{} lets the workload raise its own priority (a real-time policy, a negative nice) ahead of the host's own work", r.resource),
            );
        }
    }
}

/// Capabilities that break isolation outright, and those that do beside
/// host binds or a shared network or PID namespace.
fn judge_capabilities(
    f: &mut Findings,
    spec: &SandboxSpec,
    caps: &[String],
    has_host_bind: bool,
    (pid_shared, net_shared): (bool, bool),
) {
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
    // In a user namespace the capability overrides only the permissions of
    // files whose owner and group are mapped into it: with airlock's own
    // maps (an unused host range for a root caller, the caller's own ids
    // otherwise) no host file but the caller's is among them.
    let maps_reach_host_files = !spec.namespaces.user
        || !spec.identity.uid_map.is_empty()
        || !spec.identity.gid_map.is_empty();
    if has_host_bind && maps_reach_host_files && caps.iter().any(|c| c == "CAP_DAC_OVERRIDE") {
        f.add(
            "cap-dac-override",
            "capabilities",
            "CAP_DAC_OVERRIDE with host binds: the workload ignores the permissions of the bound host files",
        );
    }
    // Only without a user namespace of its own: with one, the kernel
    // does not honour them in the host's network namespace (below).
    if net_shared
        && !spec.namespaces.user
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
    let inert = inert_net_caps(spec, caps);
    if !inert.is_empty() {
        f.add(
            "cap-net-inert",
            "capabilities",
            format!(
                "{} in a network namespace the sandbox's user namespace does not own (the host's, or one joined): the kernel does not honour {} there, so ports below net.ipv4.ip_unprivileged_port_start, raw sockets and interface settings stay refused; give the sandbox its own network namespace, or lower that sysctl where the namespace is made",
                inert.join(", "),
                if inert.len() == 1 { "it" } else { "them" }
            ),
        );
    }
    if pid_shared
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
}

/// What the workload shares with the host: its network, its IPC
/// objects, the caller's session.
fn judge_shared(f: &mut Findings, spec: &SandboxSpec, host: &Host) {
    let joined = spec.namespaces.join.contains_key("net");
    if joined && host.joins_own_net && spec.sysctls.keys().any(|k| k.starts_with("net.")) {
        f.add(
            "host-sysctl",
            "sysctls",
            "the network namespace joined is the caller's own: its net.* sysctls are the host's",
        );
    }
    if net_shared(spec, host) {
        f.add(
            "shared-network",
            "namespaces.net",
            "the host's network namespace is shared: every interface and local listener of the host is reachable",
        );
    }
    let joined_ipc = spec.namespaces.join.contains_key("ipc");
    if (!spec.namespaces.ipc && !joined_ipc) || (joined_ipc && host.joins_own_ipc) {
        f.add(
            "shared-ipc",
            "namespaces.ipc",
            "the host's IPC namespace is shared: its System V shared memory, semaphores and message queues, and its POSIX message queues, are reachable by their permissions",
        );
    }
    if !spec.new_session {
        f.add(
            "shared-session",
            "new_session",
            "the workload stays in the caller's session and can push keystrokes into its terminal (TIOCSTI)",
        );
    }
}

/// An acknowledgement of a rule this spec does not trigger is stale, and
/// would silently allow it once the spec changes.
fn judge_acknowledgements(f: &mut Findings, spec: &SandboxSpec) {
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
/// and what `seen` (a [`Snapshot`] taken once for all sources) says of it.
/// Only the filesystem rules run: nothing else depends on where a source
/// leads. Returns the findings that refuse it.
pub fn recheck_source(
    spec: &SandboxSpec,
    host: &Host,
    seen: &Snapshot,
    source: &str,
    opened: &str,
) -> Vec<Finding> {
    let named = seen.marks.name(opened);
    recheck_named(spec, host, seen, source, (opened, opened), named)
}

/// [`recheck_source`] with the opened object's name (`seen.marks.name`
/// of `opened`) already found; `opened` is its path and a path that
/// leads to the object itself (its `/proc/self/fd` link), which is what
/// is looked at.
pub fn recheck_named(
    spec: &SandboxSpec,
    host: &Host,
    seen: &Snapshot,
    source: &str,
    (opened, object): (&str, &str),
    named: String,
) -> Vec<Finding> {
    // Only what this source decides: the host facts about it alone (not a
    // copy of every source's), and only the mounts and layers that name
    // it. Rechecking each of N sources against everything was O(N^2): a
    // second for 1000 binds.
    //
    // A device-node judgement is of the object opened (`opened` leads to
    // it), never of the path: made again at every opening.
    let dev = host::dev_bind_sources(spec).any(|s| s == source);
    // The same source opened again, to the same place: judged once, with
    // every mount that names it.
    let key = (source.to_string(), opened.to_string(), named.clone());
    if !dev && seen.passed(&key) {
        return Vec::new();
    }
    let nested = host::nested_mounts(&seen.table, opened);
    // The clone that follows copies the mounts below the source as they
    // are now, so those are read again. Its sockets are another matter: a
    // bind shows the directory's live entries, so a second reading would
    // guard nothing the probe's did not, and the probe's stands while the
    // source still leads to the object it judged (an /etc of 150 entries
    // took 70 µs to list).
    let mut sockets = match host.canonical.get(source) {
        Some(checked) if *checked == named => {
            host.sockets_at.get(&named).cloned().unwrap_or_default()
        }
        _ => seen.sockets(opened),
    };
    // The object opened is judged itself: a file bind is the object it
    // pins, and one swapped for a socket under the same name (by whoever
    // may write its directory), or a hard link to another's socket, was
    // let through on the probe's word that there was none.
    let is_socket = |p: &str| {
        use std::os::unix::fs::FileTypeExt;
        std::fs::metadata(p).is_ok_and(|m| m.file_type().is_socket())
    };
    if sockets.is_empty() && is_socket(object) {
        sockets.push(named.clone());
    }
    let device_nodes = match dev {
        true => host::device_nodes_elsewhere(object)
            .map(|why| (named.clone(), why))
            .into_iter()
            .collect(),
        false => Default::default(),
    };
    let host = Host {
        canonical: [(source.to_string(), named.clone())].into(),
        device_nodes,
        nested: [(named.clone(), nested)].into(),
        sockets_at: [(named, sockets)].into(),
        home: host.home.clone(),
        sockets: host.sockets.clone(),
        state: host.state.clone(),
        state_elsewhere: host.state_elsewhere.clone(),
        ids: host.ids.clone(),
        joins_own_net: host.joins_own_net,
        joins_own_ipc: host.joins_own_ipc,
        joins_own_pid: host.joins_own_pid,
        root_caller: host.root_caller,
        namespaced_root_outside: host.namespaced_root_outside,
        namespaced_root_gids: host.namespaced_root_gids.clone(),
        store: host.store.clone(),
        state_roots: host.state_roots.clone(),
    };
    let mut f = Findings {
        spec,
        list: Vec::new(),
    };
    binds::judge_filesystem_of(&mut f, spec, &host, Some(source));
    let refused: Vec<Finding> = f.list.into_iter().filter(Finding::refuses).collect();
    if refused.is_empty() && !dev {
        seen.pass(key);
    }
    refused
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
#[cfg(test)]
mod tests_pod;
