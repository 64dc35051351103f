//! An OCI bundle's `config.json` as an airlock [`SandboxSpec`].
//!
//! Each field is either carried over, or refused with an error that names
//! it: nothing the bundle asks for is dropped silently. What differs from
//! runc on purpose:
//!
//! - A bundle without a user namespace (what podman and containerd send
//!   unless told otherwise) still gets one: the container's root is mapped
//!   onto an unprivileged host id range, so root in the container is never
//!   the host's root. Keeping the host's ids takes the `shared-user`
//!   acknowledgement (`--allow-unsafe` or the annotation).
//! - The workload is PID 1 itself, as with runc (`init = workload`).
//! - The guardrails judge the result like any spec. Under that user
//!   namespace, the platform default `noNewPrivileges: false` only lets a
//!   setuid binary become the container's unprivileged root, so it is
//!   acknowledged for the bundle (and logged); without one it is refused.
//! - `/dev` is airlock's minimal /dev (null, zero, full, random, urandom,
//!   tty, a private devpts, shm); the bundle's own `/dev/pts` is covered
//!   by it, and its `/dev/shm` replaces airlock's (with its size and mode). `linux.devices` beyond
//!   those standard nodes are nodes of the container's own, each a device
//!   the host has, judged by the guardrails (see `devices`).
//! - The device cgroup (`linux.resources.devices`) is informational: the
//!   container's /dev holds only what airlock made there, so an allow-list
//!   has nothing more to deny; a listed device those rules do not allow
//!   (no rule allows nothing, as in runc) is not made at all.

use airlock::seccomp::{OciSeccomp, Seccomp};
use airlock::spec::{IdMap, InitMode, LandlockMode, Mount, Rlimit, Root, SandboxSpec, SpecError};
use oci_spec::runtime::Spec;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

mod devices;
mod fields;
mod mounts;
mod namespaces;
mod resources;
pub(crate) mod scheduling;

use namespaces::namespaces;
use resources::resources;
pub use resources::{resources_of, shares_in_range, shares_to_weight};

/// Annotations that configure airlock itself (`run.airlock.*`).
pub const ANNOTATION_PREFIX: &str = "run.airlock.";

/// What the runtime was asked beyond the bundle.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Guardrail codes acknowledged on the command line.
    pub allow_unsafe: Vec<String>,
    /// The runtime runs as root (idmapped mounts need it).
    pub root_caller: bool,
    /// The container's id, which names the directories a client keeps
    /// for it outside the bundle.
    pub id: String,
}

pub use fields::ConfigFields;

/// The bundle's config, and where it came from.
pub struct Bundle {
    pub dir: PathBuf,
    pub config: Spec,
    /// The raw JSON, for the parts airlock reads in its own types
    /// (seccomp).
    pub raw: serde_json::Value,
    /// `process.execCPUAffinity`: where an exec without a process file
    /// of its own runs (checked).
    pub exec_cpu_affinity: Option<scheduling::ExecCpuAffinity>,
}

impl Bundle {
    pub fn load(dir: &Path) -> Result<Bundle, String> {
        let dir = dir
            .canonicalize()
            .map_err(|e| format!("bundle {}: {e}", dir.display()))?;
        let path = dir.join("config.json");
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let raw: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        crate::personality::check_raw(&raw).map_err(|e| format!("{}: {e}", path.display()))?;
        // oci-spec types linux.timeOffsets as strings where the runtime
        // spec has objects ({"secs", "nanosecs"}): read from `raw` instead.
        let mut typed = raw.clone();
        if let Some(l) = typed.get_mut("linux").and_then(|l| l.as_object_mut()) {
            l.remove("timeOffsets");
        }
        // A mount's own id maps (newer than oci-spec's Mount) are read from
        // `raw` too, and refused there by name when given.
        for m in typed
            .get_mut("mounts")
            .and_then(|m| m.as_array_mut())
            .into_iter()
            .flatten()
        {
            if let Some(m) = m.as_object_mut() {
                m.remove("uidMappings");
                m.remove("gidMappings");
            }
        }
        // Not the container's own process's (OCI: "not applicable to the
        // container's init process"): the default of its execs'.
        let exec_cpu_affinity = match typed.get_mut("process") {
            Some(p) => scheduling::take_exec_cpu_affinity(p, "process.")
                .map_err(|e| format!("{}: {e}", path.display()))?,
            None => None,
        };
        let config: Spec =
            typed_json(typed.clone()).map_err(|e| format!("{}: {e}", path.display()))?;
        // oci-spec drops, without a word, any field it does not know
        // (linux.memoryPolicy, newer than it): what it dropped is refused,
        // as everything airlock cannot honour is.
        let parsed = serde_json::to_value(&config).expect("a parsed spec serializes");
        if let Some(field) = dropped(&typed, &parsed, "") {
            return Err(format!(
                "{}: field `{field}`: not supported by airlock-runtime",
                path.display()
            ));
        }
        // Fields oci-spec does read, and the translation never would: a
        // VM's, another platform's, and id maps outside `linux`.
        let elsewhere = [
            (
                "uidMappings",
                "give the container's id maps as linux.uidMappings",
            ),
            (
                "gidMappings",
                "give the container's id maps as linux.gidMappings",
            ),
            ("vm", "airlock runs containers, not virtual machines"),
            ("windows", "airlock runs Linux containers"),
            ("solaris", "airlock runs Linux containers"),
            ("zos", "airlock runs Linux containers"),
        ];
        let given = |v: &serde_json::Value| match v {
            serde_json::Value::Null => false,
            serde_json::Value::Array(a) => !a.is_empty(),
            serde_json::Value::Object(o) => !o.is_empty(),
            _ => true,
        };
        if let Some((field, why)) = elsewhere
            .iter()
            .find(|(k, _)| typed.get(*k).is_some_and(given))
        {
            return Err(format!(
                "{}: field `{field}`: not supported by airlock-runtime ({why})",
                path.display()
            ));
        }
        if !config.version().starts_with("1.") {
            return Err(format!(
                "{}: ociVersion {:?} is not supported (1.x is)",
                path.display(),
                config.version()
            ));
        }
        Ok(Bundle {
            dir,
            config,
            raw,
            exec_cpu_affinity,
        })
    }

    /// The root filesystem `root.path` names (relative to the bundle).
    pub fn rootfs(&self) -> PathBuf {
        let path = self.config.root().as_ref().map(|r| r.path().clone());
        self.dir.join(path.unwrap_or_default())
    }

    pub fn annotations(&self) -> BTreeMap<String, String> {
        self.config
            .annotations()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect()
    }
}

/// The first field (a dotted path) `raw` sets that `parsed`, the same
/// document read into oci-spec's types and written out again, lacks.
pub(crate) fn dropped(
    raw: &serde_json::Value,
    parsed: &serde_json::Value,
    at: &str,
) -> Option<String> {
    use serde_json::Value;
    let path = |k: &str| match at {
        "" => k.to_string(),
        _ => format!("{at}.{k}"),
    };
    match (raw, parsed) {
        (Value::Object(r), Value::Object(p)) => r.iter().find_map(|(k, v)| match p.get(k) {
            _ if v.is_null() => None,
            None => Some(path(k)),
            Some(pv) => dropped(v, pv, &path(k)),
        }),
        (Value::Array(r), Value::Array(p)) => r
            .iter()
            .zip(p)
            .enumerate()
            .find_map(|(i, (rv, pv))| dropped(rv, pv, &format!("{at}[{i}]"))),
        _ => None,
    }
}

/// `value` as a `T`, an error naming the field that does not fit
/// ("field `linux.resources.memory.limit`: invalid type: ...").
pub fn typed_json<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> Result<T, String> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let field = e.path().to_string();
        if field.is_empty() || field == "." {
            e.inner().to_string()
        } else {
            format!("field `{field}`: {}", e.inner())
        }
    })
}

fn err(field: impl Into<String>, reason: impl Into<String>) -> SpecError {
    SpecError::new(field, reason)
}

/// The spec for `bundle`, and notes for the log about what it presents
/// differently from runc.
pub fn to_spec(bundle: &Bundle, opts: &Options) -> Result<(SandboxSpec, Vec<String>), SpecError> {
    let c = &bundle.config;
    let mut notes = Vec::new();
    let mut s = SandboxSpec {
        init: InitMode::Workload,
        // The OCI client owns the container's life; a runtime command that
        // exits must not take the container with it.
        die_with_parent: false,
        // A container's stdio is what its client gave it, terminal or pipe.
        new_session: true,
        ..SandboxSpec::default()
    };
    // A bundle's mounts keep the ids its config gives, as runc's do; the
    // bundle's own files are idmapped below when that is what fits.
    s.filesystem.bind_owner = airlock::spec::BindOwner::AsIs;
    root(bundle, &mut s)?;
    process(c, &mut s)?;
    // Empty is unset, as runc takes it.
    if let Some(h) = c.hostname().as_ref().filter(|h| !h.is_empty()) {
        s.hostname = h.clone();
    }
    s.domainname = c.domainname().clone().filter(|d| !d.is_empty());
    let own_user = linux(bundle, &mut s)?;
    // With the host's UTS namespace the hostname would go unset without a
    // word (runc refuses it too; domainname is refused by the spec's rules).
    if c.hostname().as_deref().is_some_and(|h| !h.is_empty())
        && !s.namespaces.uts
        && !s.namespaces.join.contains_key("uts")
    {
        return Err(err(
            "hostname",
            "needs a UTS namespace of the container's own (linux.namespaces)",
        ));
    }
    // One joined by path keeps its own name (a pod's containers get the
    // pause container's): a different one asked for goes unset, which
    // the log says. (runc sets it in the joined namespace; CRI-O's pinned
    // one has the host's name until then.)
    if let (Some(want), Some(path)) = (
        c.hostname().as_deref().filter(|h| !h.is_empty()),
        s.namespaces.join.get("uts"),
    ) {
        s.hostname = airlock::spec::SandboxSpec::default().hostname;
        match nodename_in(path) {
            Ok(name) if name == want => {}
            Ok(name) => notes.push(format!(
                "hostname: {want:?} is not set: the UTS namespace it joins ({path}) keeps its own name, {name:?}"
            )),
            Err(e) => notes.push(format!(
                "hostname: {want:?} is not set: the UTS namespace it joins ({path}) keeps its own name, which could not be read ({e})"
            )),
        }
    }
    time_offsets(bundle, &mut s)?;
    // A container in the host's PID namespace (hostPID) signals the
    // host's processes and its execs the container's, as under runc: no
    // Landlock scope parts them.
    s.landlock.host_signals = true;
    mounts::mounts(bundle, &mut s)?;
    if let Some(l) = c.linux() {
        // After the mounts: the nodes go into their /dev.
        devices::devices(l, &mut s, &mut notes)?;
    }
    annotations(bundle, &mut s)?;
    s.allow_unsafe.extend(opts.allow_unsafe.iter().cloned());
    if !own_user && s.allow_unsafe.iter().any(|c| c == "shared-user") {
        // Keeping the host's ids was acknowledged by name.
        s.namespaces.user = false;
    }
    if own_user {
        own_files_under_own_maps(bundle, &opts.id, &mut s);
    }
    platform_defaults(&mut s);
    if s.namespaces.user && !own_user && opts.root_caller {
        notes.extend(idmap_own_files(bundle, &opts.id, &mut s));
    }
    Ok((s, notes))
}

fn root(bundle: &Bundle, s: &mut SandboxSpec) -> Result<(), SpecError> {
    let Some(r) = bundle.config.root() else {
        return Err(err("root", "the bundle has no root"));
    };
    let path = bundle.rootfs();
    if !path.is_dir() {
        return Err(err(
            "root.path",
            format!("{} is not a directory", path.display()),
        ));
    }
    // runc makes the mount points a read-only rootfs lacks before it
    // makes it read-only; engines (podman --read-only) count on that.
    let readonly = r.readonly().unwrap_or(false);
    s.filesystem.root = Root::Path {
        path: path.display().to_string(),
        readonly,
        make_mountpoints: readonly,
    };
    Ok(())
}

fn process(c: &Spec, s: &mut SandboxSpec) -> Result<(), SpecError> {
    let Some(p) = c.process() else {
        return Err(err("process", "the bundle has no process"));
    };
    s.process.args = p.args().clone().unwrap_or_default();
    if s.process.args.is_empty() {
        return Err(err("process.args", "no program to run"));
    }
    for (i, kv) in p.env().iter().flatten().enumerate() {
        let Some((k, v)) = kv.split_once('=').filter(|(k, _)| !k.is_empty()) else {
            return Err(err(format!("process.env[{i}]"), "not KEY=VALUE"));
        };
        s.process.env.insert(k.to_string(), v.to_string());
    }
    s.process.cwd = Some(p.cwd().display().to_string());
    // Windows's, and nothing a Linux runtime may take for something else.
    if p.command_line().is_some() {
        return Err(err(
            "process.commandLine",
            "Windows only: give process.args",
        ));
    }
    let u = p.user();
    if u.username().as_deref().is_some_and(|n| !n.is_empty()) {
        return Err(err(
            "process.user.username",
            "Windows only: give process.user.uid and gid",
        ));
    }
    s.process.uid = Some(u.uid());
    s.process.gid = Some(u.gid());
    s.process.groups = u.additional_gids().clone().unwrap_or_default();
    // runc's default too, whatever the caller's (the library checks it).
    s.process.umask = Some(u.umask().unwrap_or(0o022));
    s.process.home_from_passwd = true;
    s.process.terminal = p.terminal().unwrap_or(false);
    s.process.no_new_privs = p.no_new_privileges().unwrap_or(false);
    // What a non-root user keeps over its exec is the bundle's ambient
    // set, none if it lists none: a container's `user.uid` 1000 with the
    // usual bounding, effective and permitted sets has no capability, as
    // under runc (the kernel clears the others at a non-root exec).
    if let Some(c) = p.capabilities() {
        effective_within_permitted(c, "process.capabilities")?;
    }
    let (kept, ambient) = p
        .capabilities()
        .as_ref()
        .map(|c| capabilities(c, s.process.no_new_privs))
        .unwrap_or_default();
    s.capabilities = kept;
    s.ambient_capabilities = Some(ambient);
    s.process.rlimits = rlimits(p)?;
    if p.apparmor_profile()
        .as_deref()
        .is_some_and(|a| !a.is_empty())
    {
        return Err(err(
            "process.apparmorProfile",
            "AppArmor profiles are not supported by airlock; its seccomp filter and Landlock rules apply instead",
        ));
    }
    if p.selinux_label().as_deref().is_some_and(|l| !l.is_empty()) {
        return Err(err(
            "process.selinuxLabel",
            "SELinux labels are not supported by airlock",
        ));
    }
    // process.oomScoreAdj is applied by `create` to the runtime itself
    // before the sandbox starts, so that its supervisor and PID 1
    // inherit it (a host-side write, not part of the sandbox spec).
    s.process.scheduling = scheduling::scheduling(p, "process.")?;
    Ok(())
}

/// The host name in the UTS namespace at `path`, read by a thread that
/// joins it (a UTS namespace is a thread's own to join) and ends.
fn nodename_in(path: &str) -> std::io::Result<String> {
    let ns = std::fs::File::open(path)?;
    std::thread::spawn(move || {
        rustix::thread::move_into_link_name_space(
            std::os::fd::AsFd::as_fd(&ns),
            Some(rustix::thread::LinkNameSpaceType::HostNameAndNISDomainName),
        )?;
        Ok(rustix::system::uname()
            .nodename()
            .to_string_lossy()
            .into_owned())
    })
    .join()
    .map_err(|_| std::io::Error::other("the thread that read it panicked"))?
}

/// The capabilities a process keeps, and those of them it keeps over exec
/// as a non-root user (the ambient set). airlock gives one set as the
/// bounding, effective and permitted ones (the guardrails judge it); its
/// inheritable set is the ambient one, so a file's inheritable
/// capabilities give a non-root process nothing more.
///
/// With `no_new_privs`, that set is what the process may use: its
/// effective and permitted sets (within bounding), as runc's process has
/// them; what is only in bounding could never be gained, by setuid-root or
/// file capabilities alike. Without it, a process running as root gets
/// its whole bounding set at its exec whatever its effective set (under
/// runc too), so every set named is kept, within bounding. (All five
/// sets were merged before: a bundle that asked for CHOWN effective and
/// KILL only in bounding got KILL effective.)
/// A value of config.json as it spells it (`CAP_CHOWN`, `network`), which
/// oci-spec's Display does not (`CHOWN`, `net`).
pub(crate) fn oci_name<T: serde::Serialize + std::fmt::Display>(t: &T) -> String {
    serde_json::to_value(t)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_else(|| t.to_string())
}

/// The effective set within the permitted one, as capset(2) wants it
/// (runc's fails otherwise): one outside would be kept here, where the
/// sets are merged into what the process keeps.
pub fn effective_within_permitted(
    caps: &oci_spec::runtime::LinuxCapabilities,
    field: &str,
) -> Result<(), SpecError> {
    let permitted = caps.permitted().clone().unwrap_or_default();
    let stray = caps
        .effective()
        .iter()
        .flatten()
        .find(|c| !permitted.contains(c));
    match stray {
        Some(c) => Err(err(
            format!("{field}.effective"),
            format!(
                "{} is not in {field}.permitted: a capability is effective only while permitted",
                oci_name(c)
            ),
        )),
        None => Ok(()),
    }
}

pub fn capabilities(
    caps: &oci_spec::runtime::LinuxCapabilities,
    no_new_privs: bool,
) -> (Vec<String>, Vec<String>) {
    let names = |set: &Option<oci_spec::runtime::Capabilities>| -> Vec<String> {
        set.iter().flatten().map(|c| c.to_string()).collect()
    };
    let mut ambient = names(caps.ambient());
    let bounding = caps.bounding().as_ref().map(|_| names(caps.bounding()));
    let mut kept: Vec<String> = if no_new_privs {
        let mut usable = names(caps.effective());
        usable.extend(names(caps.permitted()));
        usable.extend(ambient.iter().cloned());
        usable
    } else {
        [
            caps.bounding(),
            caps.effective(),
            caps.permitted(),
            caps.inheritable(),
            caps.ambient(),
        ]
        .into_iter()
        .flat_map(names)
        .collect()
    };
    // Bounding, when given, is the ceiling of every set: nothing outside
    // it is ever the process's (runc's capset fails on an inheritable one
    // outside it, and an exec takes permitted down to it).
    kept.retain(|c| bounding.as_ref().is_none_or(|b| b.contains(c)));
    kept.sort();
    kept.dedup();
    // The kernel keeps an ambient capability only while it is permitted.
    ambient.retain(|c| kept.contains(c));
    ambient.sort();
    ambient.dedup();
    (kept, ambient)
}

/// A process's rlimits in airlock's names.
pub fn rlimits(p: &oci_spec::runtime::Process) -> Result<Vec<Rlimit>, SpecError> {
    let list: Vec<Rlimit> = p
        .rlimits()
        .iter()
        .flatten()
        .map(|r| {
            let name = r.typ().to_string().to_ascii_lowercase();
            Rlimit {
                resource: name.trim_start_matches("rlimit_").to_string(),
                soft: r.soft(),
                hard: r.hard(),
            }
        })
        .collect();
    // config.md: a runtime MUST refuse two entries of one type (an exec's
    // process object too).
    for (j, r) in list.iter().enumerate() {
        if let Some(i) = list[..j].iter().position(|o| o.resource == r.resource) {
            return Err(err(
                format!("process.rlimits[{j}]"),
                format!(
                    "{} is given twice (process.rlimits[{i}] too)",
                    p.rlimits()
                        .as_ref()
                        .map_or(String::new(), |l| l[j].typ().to_string())
                ),
            ));
        }
    }
    Ok(list)
}

/// The `linux` section; true when the bundle asked for a user namespace.
fn linux(bundle: &Bundle, s: &mut SandboxSpec) -> Result<bool, SpecError> {
    let Some(l) = bundle.config.linux() else {
        return Err(err("linux", "the bundle has no linux section"));
    };
    let list = l.namespaces().as_deref().unwrap_or_default();
    let own_user = namespaces(list, s)?;
    let map = |m: &Option<Vec<oci_spec::runtime::LinuxIdMapping>>| -> Vec<IdMap> {
        m.iter()
            .flatten()
            .map(|m| IdMap {
                inside: m.container_id(),
                outside: m.host_id(),
                count: m.size(),
            })
            .collect()
    };
    s.identity.uid_map = map(l.uid_mappings());
    s.identity.gid_map = map(l.gid_mappings());
    // As runc: maps are for a user namespace the bundle asks for.
    for (field, maps) in [
        ("linux.uidMappings", &s.identity.uid_map),
        ("linux.gidMappings", &s.identity.gid_map),
    ] {
        if !own_user && !maps.is_empty() {
            return Err(err(field, "needs a user namespace in linux.namespaces"));
        }
    }
    s.filesystem.masked_paths = l.masked_paths().clone().unwrap_or_default();
    s.filesystem.readonly_paths = l.readonly_paths().clone().unwrap_or_default();
    s.sysctls = l.sysctl().clone().unwrap_or_default().into_iter().collect();
    if let Some(r) = l.resources() {
        resources(r, s)?;
    }
    if let Some(p) = l.personality() {
        s.process.personality = Some(crate::personality::of(p)?);
    }
    if l.intel_rdt().is_some() {
        return Err(err("linux.intelRdt", "Intel RDT is not supported"));
    }
    if l.mount_label().as_deref().is_some_and(|m| !m.is_empty()) {
        return Err(err(
            "linux.mountLabel",
            "SELinux mount labels are not supported by airlock",
        ));
    }
    if l.rootfs_propagation()
        .as_deref()
        .is_some_and(|p| !matches!(p, "private" | "rprivate" | ""))
    {
        return Err(err(
            "linux.rootfsPropagation",
            "only private propagation is supported: nothing of the sandbox propagates to the host",
        ));
    }
    match bundle.raw.pointer("/linux/seccomp") {
        Some(v) if !v.is_null() => {
            // A listener would be handed syscalls to decide for the
            // container; nothing here would hand them over.
            for key in ["listenerPath", "listenerMetadata"] {
                if v.get(key)
                    .and_then(|l| l.as_str())
                    .is_some_and(|l| !l.is_empty())
                {
                    return Err(err(
                        format!("linux.seccomp.{key}"),
                        "seccomp user notification is not supported: the filter's actions are all airlock applies",
                    ));
                }
            }
            let mut oci: OciSeccomp = serde_json::from_value(v.clone())
                .map_err(|e| err("linux.seccomp", e.to_string()))?;
            // The one flag airlock applies itself, as runc does; any other
            // is refused by the compiler, naming it.
            let before = oci.flags.len();
            oci.flags.retain(|f| f != "SECCOMP_FILTER_FLAG_LOG");
            s.seccomp_log = oci.flags.len() != before;
            s.seccomp = Seccomp::custom(oci);
        }
        // runc runs without a filter when the bundle has none; airlock's
        // default filter stays on unless acknowledged otherwise.
        _ => s.seccomp = Seccomp::Default,
    }
    Ok(own_user)
}

/// `run.airlock.*` annotations: airlock's own settings per container.
fn annotations(bundle: &Bundle, s: &mut SandboxSpec) -> Result<(), SpecError> {
    for (k, v) in bundle.annotations() {
        let Some(key) = k.strip_prefix(ANNOTATION_PREFIX) else {
            continue;
        };
        let field = format!("annotations.{k}");
        match key {
            "allow-unsafe" => s
                .allow_unsafe
                .extend(v.split(',').map(|c| c.trim().to_string()).filter(|c| !c.is_empty())),
            "landlock" => {
                s.landlock.mode = match v.as_str() {
                    "off" => LandlockMode::Off,
                    "auto" => LandlockMode::Auto,
                    "required" => LandlockMode::Required,
                    _ => return Err(err(field, "one of off, auto, required")),
                }
            }
            "seccomp" => {
                s.seccomp = match v.as_str() {
                    "default" => Seccomp::Default,
                    "none" => {
                        // Nothing is left whose refusals could be logged.
                        s.seccomp_log = false;
                        Seccomp::None
                    }
                    "bundle" => s.seccomp.clone(),
                    _ => return Err(err(field, "one of default, none, bundle")),
                }
            }
            _ => {
                return Err(err(
                    field,
                    "unknown airlock annotation (known: run.airlock.allow-unsafe, run.airlock.landlock, run.airlock.seccomp)",
                ))
            }
        }
    }
    Ok(())
}

/// The escape-surface calls that podman's default profile (containers'
/// seccomp.json) and containerd's allow a container with their default
/// capabilities, each confined by the container's user, mount or PID
/// namespace: mounts and namespaces of its own, its own processes
/// traced, its own session keyring, ioctl, the argument-filtered clone
/// and socket, a reboot that ends its PID namespace, a syslog its user
/// namespace may not read. Not personality: their profiles let through
/// only the values airlock's default does (which are not findings), and
/// one beyond them turns off address-space randomization or makes
/// memory executable, whatever the namespaces.
const ORCHESTRATED: &[&str] = &[
    "chroot",
    "clone",
    "clone3",
    "fsconfig",
    "fsmount",
    "fsopen",
    "fspick",
    "get_mempolicy",
    "ioctl",
    "kcmp",
    "keyctl",
    "mbind",
    "mount",
    "mount_setattr",
    "move_mount",
    "name_to_handle_at",
    "open_tree",
    "pidfd_getfd",
    "pivot_root",
    "process_madvise",
    "process_vm_readv",
    "process_vm_writev",
    "ptrace",
    "reboot",
    "set_mempolicy",
    "setns",
    "socket",
    // The 32-bit ABI's multiplexer of the socket calls, which podman's
    // profile lets through there (libseccomp cannot read the family).
    "socketcall",
    "syslog",
    "umount2",
    "unshare",
];

/// The platform's defaults that are safe under airlock's user namespace.
fn platform_defaults(s: &mut SandboxSpec) {
    let root_unprivileged = root_unprivileged(s);
    if !s.process.no_new_privs && root_unprivileged {
        s.allow_unsafe.push("no-new-privs-disabled".into());
    }
    // The orchestrator's profile (podman's, containerd's) allows what
    // its containers rely on under a user namespace; runc would apply it
    // as is. Judged all the same, and acknowledged only while the
    // container's root is not the host's, while it still refuses what it
    // does not name (a default action that lets everything through is no
    // filter at all), and while what it opens is among what those
    // profiles open for their default capabilities: calls a user or PID
    // namespace confines. bpf, io_uring, userfaultfd, perf_event_open
    // and the like are the kernel's, not the namespace's: a profile that
    // allows them needs the code by name.
    let opened = airlock::check::seccomp_let_through(&s.seccomp);
    if !opened.is_empty()
        && root_unprivileged
        && !airlock::check::seccomp_default_is_permissive(&s.seccomp)
        && opened.iter().all(|c| ORCHESTRATED.contains(c))
    {
        s.allow_unsafe.push("seccomp-permissive".into());
    }
    s.allow_unsafe.sort();
    s.allow_unsafe.dedup();
}

/// The container's root is neither the host's uid 0 nor its gid 0.
pub(crate) fn root_unprivileged(s: &SandboxSpec) -> bool {
    s.namespaces.user
        && s.identity.uid_map.iter().all(|m| m.outside != 0)
        && s.identity.gid_map.iter().all(|m| m.outside != 0)
}

/// A bind source that is the container's own file (`..` and links
/// resolved): inside the bundle directory the client made for it, or,
/// when the client is containers/storage's (podman, CRI-O), inside the
/// container's directory under its run root, where it keeps /etc/hosts,
/// /etc/hostname and .containerenv while the bundle is under its graph
/// root.
fn is_own_file(bundle: &Bundle, id: &str, source: &str) -> bool {
    let Ok(real) = std::fs::canonicalize(source) else {
        return false;
    };
    real.starts_with(&bundle.dir)
        || (storage_userdata(&bundle.dir, id) == Some(bundle.dir.as_path())
            && storage_userdata(&real, id).is_some())
}

/// The directory containers/storage keeps a container's files in,
/// `ROOT/DRIVER-containers/ID/userdata`, that `path` is in.
fn storage_userdata<'a>(path: &'a Path, id: &str) -> Option<&'a Path> {
    fn name(p: Option<&Path>) -> Option<&str> {
        p.and_then(Path::file_name).and_then(|n| n.to_str())
    }
    path.ancestors().find(|a| {
        let parent = a.parent();
        name(Some(a)) == Some("userdata")
            && name(parent) == Some(id)
            && name(parent.and_then(Path::parent)).is_some_and(|n| n.ends_with("containers"))
    })
}

/// With id maps of the container's own (podman `--uidmap`, `ctr run
/// --uidmap`), the client has made the container's files its mapped
/// root's: the root and what it keeps in the bundle directory.
/// CAP_DAC_OVERRIDE over those is the container's own business, as under
/// runc, and is acknowledged while every bind is such a file; a bind of
/// anything else (a volume) is a host bind, whose files the map may
/// reach, and still needs `cap-dac-override` by name.
fn own_files_under_own_maps(bundle: &Bundle, id: &str, s: &mut SandboxSpec) {
    let only_own = s.filesystem.mounts.iter().all(|m| match m {
        Mount::Bind { source, .. } => is_own_file(bundle, id, source),
        _ => true,
    });
    if root_unprivileged(s) && only_own {
        // Sorted and deduplicated with the platform's defaults.
        s.allow_unsafe.push("cap-dac-override".into());
    }
}

/// Under the user namespace airlock adds, the container's own files — its
/// root, and what the client keeps for it in the bundle directory — are
/// shown with their ownership as
/// on disk, so root-owned files are the container root's as the image
/// expects. Writing them as that owner is what the container is for; the
/// acknowledgement says so in the log. Other binds (volumes) keep the host
/// view: their files' owners are not the container's. Every bind onto an
/// idmapped destination is idmapped, so a destination is one only where
/// each bind onto it is the container's own: a host directory bound onto
/// the same path would otherwise be shown with host ownership too, under
/// an acknowledgement meant for the container's files.
fn idmap_own_files(bundle: &Bundle, id: &str, s: &mut SandboxSpec) -> Vec<String> {
    let mut notes = Vec::new();
    if let Root::Path { path, .. } = &s.filesystem.root {
        // overlayfs cannot be idmapped (the kernel refuses with EINVAL);
        // such a root keeps the host's view of ownership.
        if is_overlayfs(Path::new(path)) {
            notes.push(format!(
                "the root {path} is an overlayfs mount, which cannot be idmapped: files the host's root owns appear as nobody (65534) in the container; give the container id maps of its own (podman --uidmap, ctr run --uidmap) and the client maps its files"
            ));
        } else {
            s.filesystem.idmap.push("/".into());
        }
    }
    let binds: Vec<(&str, bool)> = s
        .filesystem
        .mounts
        .iter()
        .filter_map(|m| match m {
            Mount::Bind {
                source,
                destination,
                ..
            } => Some((destination.as_str(), is_own_file(bundle, id, source))),
            _ => None,
        })
        .collect();
    let own: Vec<String> = binds
        .iter()
        .filter(|(dest, _)| binds.iter().all(|(d, own)| d != dest || *own))
        .map(|(dest, _)| dest.to_string())
        .collect();
    for dest in own {
        if !s.filesystem.idmap.contains(&dest) {
            s.filesystem.idmap.push(dest);
        }
    }
    if !s.filesystem.idmap.is_empty() {
        s.allow_unsafe
            .extend(OWN_IDMAP_ACKS.iter().map(|a| a.to_string()));
    }
    notes
}

/// What the runtime acknowledges for the bundle's own files it idmaps (the
/// rootfs, the container's own files the client made for it): they are
/// the container's, to write, and to read as their owner, as runc gives
/// them (the rootfs of a container on /var/lib/containers reaches
/// /var/lib, which `idmapped-private` names).
pub const OWN_IDMAP_ACKS: &[&str] = &["idmapped-writable", "idmapped-private"];

fn is_overlayfs(path: &Path) -> bool {
    const OVERLAYFS_SUPER_MAGIC: i64 = 0x794c_7630;
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()) else {
        return false;
    };
    // SAFETY: statfs writes into the zeroed struct we own; c is a valid
    // NUL-terminated path for the call.
    unsafe {
        let mut st: libc::statfs = std::mem::zeroed();
        libc::statfs(c.as_ptr(), &mut st) == 0 && st.f_type as i64 == OVERLAYFS_SUPER_MAGIC
    }
}

/// `linux.timeOffsets`: the container's CLOCK_MONOTONIC and CLOCK_BOOTTIME
/// moved from the host's, in its own time namespace.
fn time_offsets(bundle: &Bundle, s: &mut SandboxSpec) -> Result<(), SpecError> {
    s.time = airlock::spec::Clocks {
        offsets: true,
        ..Default::default()
    };
    if s.namespaces.time {
        // As runc, which writes only the clocks named: one not named keeps
        // the offset of the namespace the runtime runs in (the kernel
        // copies it into a new one), none on the host. Written as 0, it
        // put a container made inside a sandbox or `unshare --time` back
        // on the host's clocks.
        let (mono, boot) = airlock::runner::own_time_offsets()
            .map_err(|e| err("linux.timeOffsets", e.to_string()))?;
        (s.time.monotonic, s.time.monotonic_nanos) = seconds_and_nanos(mono);
        (s.time.boottime, s.time.boottime_nanos) = seconds_and_nanos(boot);
    }
    let Some(offsets) = bundle.raw.pointer("/linux/timeOffsets") else {
        return Ok(());
    };
    let Some(offsets) = offsets.as_object() else {
        return Err(err(
            "linux.timeOffsets",
            "not an object of clocks (monotonic, boottime)",
        ));
    };
    if !offsets.is_empty() && !s.namespaces.time {
        return Err(err(
            "linux.timeOffsets",
            "needs a time namespace of the container's own in linux.namespaces",
        ));
    }
    for (clock, v) in offsets {
        let field = format!("linux.timeOffsets.{clock}");
        // An object of secs and nanosecs: anything else (a bare number, a
        // misspelt key) would otherwise be an offset of 0 without a word.
        let Some(entry) = v.as_object() else {
            return Err(err(
                field,
                "must be an object such as {\"secs\": 3600, \"nanosecs\": 0}",
            ));
        };
        if let Some(k) = entry
            .keys()
            .find(|k| !matches!(k.as_str(), "secs" | "nanosecs"))
        {
            return Err(err(
                format!("{field}.{k}"),
                "unknown key: an offset has secs and nanosecs",
            ));
        }
        let secs = v.get("secs").map_or(Some(0), |x| x.as_i64());
        let nanos = v.get("nanosecs").map_or(Some(0), |x| x.as_u64());
        let (Some(secs), Some(nanos)) = (secs, nanos) else {
            return Err(err(
                field,
                "secs must be an integer and nanosecs a non-negative one",
            ));
        };
        let Some(nanos) = u32::try_from(nanos).ok().filter(|n| *n < 1_000_000_000) else {
            return Err(err(
                format!("{field}.nanosecs"),
                format!("{nanos} is not below 1000000000 (a second's nanoseconds)"),
            ));
        };
        match clock.as_str() {
            "monotonic" => (s.time.monotonic, s.time.monotonic_nanos) = (secs, nanos),
            "boottime" => (s.time.boottime, s.time.boottime_nanos) = (secs, nanos),
            _ => return Err(err(field, "only monotonic and boottime have offsets")),
        }
    }
    Ok(())
}

/// Nanoseconds as whole seconds and the nanoseconds past them (0 to
/// 1e9-1, so -1.5 s is -2 s and 500000000 ns), as the kernel writes them.
fn seconds_and_nanos(n: i128) -> (i64, u32) {
    const NANOS: i128 = 1_000_000_000;
    (n.div_euclid(NANOS) as i64, n.rem_euclid(NANOS) as u32)
}
