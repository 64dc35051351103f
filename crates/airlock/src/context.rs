//! Who a sandbox is launched for. Every fact about the caller that the
//! launch path depends on — ids, home, environment, cgroups, where sandbox
//! state and image layers live — is in a [`Context`], read from the
//! current process in one place ([`Context::current`]). A service that
//! launches on behalf of clients builds one per request instead, so the
//! facts never silently become the service's own.

use crate::cgroup::Layout;
use crate::image::store;
use crate::plan::Caller;
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Context {
    /// The ids the sandbox is launched as (and maps from).
    pub caller: Caller,
    /// The caller's home directory, which the guardrails protect.
    pub home: Option<String>,
    /// The environment a spec with `process.inherit_env` starts from.
    pub env: Vec<(String, String)>,
    /// Where sandboxes with state live (see [`crate::state`]).
    pub state_root: PathBuf,
    /// The cgroups a sandbox's own are made under: the caller's, in every
    /// hierarchy the host has.
    pub cgroup: Layout,
    /// The image layer store (see [`crate::image::Store`]).
    pub store: PathBuf,
    /// The pids limit of a sandbox whose spec sets none
    /// ([`crate::spec::DEFAULT_PIDS`] unless changed; `None` for none, as
    /// the OCI runtime does: a bundle gets only the limits it asks for).
    pub default_pids: Option<u64>,
    /// Where the sandbox's cgroups are made, relative to the caller's own
    /// in each hierarchy (default `airlock-<id>`); several components
    /// make the directories between, as an OCI bundle's
    /// `linux.cgroupsPath` asks. Never `..`: the caller's subtree is the
    /// limit.
    pub cgroup_path: Option<String>,
    /// A cgroup, relative to the caller's own in each hierarchy, that the
    /// sandbox's own (`airlock-<id>`) are made in, when `cgroup_path` is
    /// unset: airlockd's per-caller process budget (`airlockd-u<UID>`).
    pub cgroup_nest: Option<String>,
    /// Controllers (v2 names) a sandbox gets cgroups for even without a
    /// limit, where the host has them, so that its limits can be set
    /// while it runs (the OCI runtime's `update`). Such a sandbox always
    /// gets cgroups.
    pub cgroup_prepare: Vec<String>,
    /// What one image may unpack into the store
    /// ([`crate::image::unpack::DEFAULT_LIMITS`] unless changed).
    pub image_limits: crate::image::unpack::Limits,
    /// The umask of a workload whose spec gives none, recorded in its
    /// plan so that a process exec'd into the sandbox gets it too (not
    /// its own caller's); `None`: whatever the runner inherits.
    pub umask: Option<u32>,
    /// A root caller's sandbox in the id range every such sandbox shares
    /// that writes host files with those ids (a writable bind or root
    /// kept as the host has it, `bind_owner = "as-is"`) gets the filter
    /// that refuses setuid and setgid modes. The OCI runtime turns it
    /// off: a bundle's rootfs and volumes are its engine's to guard, as
    /// with runc (where the files would be host root's), and a package
    /// that installs a setuid program must install. A persistent overlay
    /// layer is filtered regardless.
    pub filter_set_id_on_host_writes: bool,
}

impl Context {
    /// The facts of the current process: its effective ids, `$HOME`, its
    /// environment, its cgroups, and the default state root and image
    /// store for those ids (`$AIRLOCK_STATE_ROOT` and `$AIRLOCK_STORE`
    /// override them).
    pub fn current() -> Context {
        let caller = Caller::here(
            rustix::process::geteuid().as_raw(),
            rustix::process::getegid().as_raw(),
        );
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        Context {
            caller,
            home: var("HOME"),
            store: var("AIRLOCK_STORE").map(absolute).unwrap_or_else(|| {
                match caller.namespaced_root {
                    // `unshare -r`: /var/lib/airlock is the host root's.
                    true => store::user_root(var("XDG_DATA_HOME"), var("HOME")),
                    false => store::default_root(caller.uid, var("XDG_DATA_HOME"), var("HOME")),
                }
            }),
            env: std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
                .collect(),
            state_root: var("AIRLOCK_STATE_ROOT").map(absolute).unwrap_or_else(|| {
                match (caller.namespaced_root, var("XDG_RUNTIME_DIR")) {
                    // `unshare -r` from a session: /run/airlock is the
                    // host root's, the session's runtime directory ours;
                    // without one, the one id's own in /tmp.
                    (true, Some(d)) if d.starts_with('/') => PathBuf::from(d).join("airlock"),
                    (true, _) => {
                        let id = crate::sys::one_id_outside().unwrap_or(caller.uid);
                        format!("/tmp/airlock-{id}").into()
                    }
                    (false, xdg) => default_state_root(caller.uid, xdg),
                }
            }),
            // Unreadable, the layout is empty: a sandbox that needs a
            // cgroup then fails naming the controller it lacks.
            cgroup: Layout::detect().unwrap_or_default(),
            default_pids: Some(crate::spec::DEFAULT_PIDS),
            cgroup_path: None,
            cgroup_nest: None,
            cgroup_prepare: Vec::new(),
            image_limits: Default::default(),
            umask: process_umask(),
            filter_set_id_on_host_writes: true,
        }
    }

    /// A context with only ids (for planning in tests and tools): no home,
    /// an empty environment, no cgroups, the default state root and store.
    pub fn for_ids(uid: u32, gid: u32) -> Context {
        Context {
            caller: Caller::new(uid, gid),
            home: None,
            env: Vec::new(),
            state_root: default_state_root(uid, None),
            cgroup: Layout::default(),
            store: store::default_root(uid, None, None),
            default_pids: Some(crate::spec::DEFAULT_PIDS),
            cgroup_path: None,
            cgroup_nest: None,
            cgroup_prepare: Vec::new(),
            image_limits: Default::default(),
            umask: None,
            filter_set_id_on_host_writes: true,
        }
    }
}

/// `path` from the working directory when relative: the guardrails
/// compare binds with the state root and the store, and a sandbox's
/// supervisor works elsewhere.
pub fn absolute(path: impl Into<PathBuf>) -> PathBuf {
    let path = path.into();
    std::path::absolute(&path).unwrap_or(path)
}

/// This process's umask, from `/proc/self/status` (umask(2) can only
/// read it by setting it, which another thread creating a file at that
/// moment would get).
pub fn process_umask() -> Option<u32> {
    let status = crate::sys::read_proc("/proc/self/status").ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("Umask:"))?;
    u32::from_str_radix(line.trim(), 8).ok()
}

/// `/run/airlock` for root; `$XDG_RUNTIME_DIR/airlock` for anyone else,
/// or `/tmp/airlock-UID` when there is no runtime directory (the state
/// module then insists that it is the user's own and private).
pub fn default_state_root(uid: u32, xdg_runtime_dir: Option<String>) -> PathBuf {
    if uid == 0 {
        return "/run/airlock".into();
    }
    match xdg_runtime_dir.filter(|d| d.starts_with('/')) {
        Some(d) => PathBuf::from(d).join("airlock"),
        None => format!("/tmp/airlock-{uid}").into(),
    }
}
