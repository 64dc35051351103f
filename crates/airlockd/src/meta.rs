//! What the daemon keeps beside a sandbox's state, in `daemon.json` in
//! its directory: who created it, its labels, how its stdio was made, and
//! whether its exit has been reported. It lives with the sandbox, so a
//! restarted daemon knows all of it again.

use airlock::state::{SandboxDir, StateError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

const FILE: &str = "daemon.json";

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Meta {
    /// The uid of the client that created it.
    pub owner: u32,
    pub labels: BTreeMap<String, String>,
    pub tty: bool,
    pub stdin: bool,
    /// An `exited` event was sent for it.
    pub exit_reported: bool,
}

/// The sandbox's meta; one made by another front end (no file) is root's.
pub fn read(sb: &SandboxDir) -> Meta {
    std::fs::read(sb.dir.join(FILE))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

pub fn write(sb: &SandboxDir, m: &Meta) -> Result<(), StateError> {
    let bytes = serde_json::to_vec(m).expect("meta serializes");
    sb.write_atomic(FILE, &bytes)
}
