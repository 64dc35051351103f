//! OCI hooks the runner runs inside the sandbox.

use serde::{Deserialize, Serialize};

/// Programs run inside the sandbox's namespaces while it is set up, each
/// with `state` on its stdin and killed after its timeout; the first that
/// fails (or times out) fails the setup, naming it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InsideHooks {
    /// OCI's prestart and createRuntime, in that order: run by the
    /// supervisor, in the host's namespaces and with its privileges, when
    /// PID 1 has made the sandbox's namespaces and mounts, before the
    /// `create` hooks and pivot_root (OCI's order; PID 1 waits for them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub runtime: Vec<Hook>,
    /// Run by PID 1 once the mounts are made, before pivot_root: with the
    /// host's tree as its root (its path is resolved there) and the
    /// sandbox's new root as its working directory.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub create: Vec<Hook>,
    /// Run by the workload's process, inside the sandbox and as the
    /// workload, once it is released (`start`) and before its exec.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub start: Vec<Hook>,
    /// The JSON given on each hook's stdin; the runner sets its `pid` (PID
    /// 1's on the host) and `status` (`creating`, then `created`).
    #[serde(default)]
    pub state: String,
}

impl InsideHooks {
    pub fn is_empty(&self) -> bool {
        self.runtime.is_empty() && self.create.is_empty() && self.start.is_empty()
    }
}

/// One hook: a program, its whole argv and environment, and how long it
/// may take.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hook {
    /// How errors name it (`hooks.createContainer[0]`).
    pub name: String,
    pub path: String,
    /// argv, `args[0]` included (the path alone when empty).
    #[serde(default)]
    pub args: Vec<String>,
    /// `KEY=VALUE` entries: the hook's whole environment.
    #[serde(default)]
    pub env: Vec<String>,
    /// Seconds; none waits for as long as it runs.
    #[serde(default)]
    pub timeout: Option<u32>,
}
