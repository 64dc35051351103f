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

/// Sandbox names are each client's own, as a rootless caller's state root
/// is: two users may both call a sandbox `web`, and one learns nothing of
/// the other's names. A client's name is kept in the state root with its
/// uid before it (`u1000-web`), root's as it is; a client's names are
/// shown to it and looked up for it without the prefix. Root, who sees
/// every sandbox, sees and names them as kept (`u1000-web`): shown bare,
/// two clients' `web` would look alike to root, and a bare name root typed
/// would be taken for an id prefix (a client could name its sandbox after
/// a prefix of root's ids to have root's stop reach root's own).
pub fn stored_name(owner: u32, name: &str) -> String {
    match owner {
        0 => name.to_string(),
        uid => format!("u{uid}-{name}"),
    }
}

/// The name `owner` gave, from the one kept (see [`stored_name`]).
pub fn shown_name(owner: u32, stored: &str) -> &str {
    match owner {
        0 => stored,
        uid => stored.strip_prefix(&format!("u{uid}-")).unwrap_or(stored),
    }
}

/// The name as `viewer` sees it: its own without the prefix, every one as
/// kept for root.
pub fn name_for<'a>(viewer: &crate::peer::Peer, owner: u32, stored: &'a str) -> &'a str {
    match viewer.is_root() {
        true => stored,
        false => shown_name(owner, stored),
    }
}

/// Is `name` one a client's names are kept as (`u<digits>-...`)? Root may
/// not take one: it would be refused to that client as "in use".
pub fn is_a_clients(name: &str) -> bool {
    name.strip_prefix('u')
        .and_then(|r| r.split_once('-'))
        .is_some_and(|(uid, _)| !uid.is_empty() && uid.bytes().all(|b| b.is_ascii_digit()))
}

/// The sandbox's meta; one made by another front end (no file) is root's.
pub fn read(sb: &SandboxDir) -> Meta {
    try_read(sb).unwrap_or_default()
}

/// The sandbox's meta, if it can be read: what is written back must come
/// from it, never from the default (root's, without labels), which a
/// read failing once (EMFILE) would make the sandbox's for good.
pub fn try_read(sb: &SandboxDir) -> Option<Meta> {
    match std::fs::read(sb.dir.join(FILE)) {
        Ok(b) => serde_json::from_slice(&b).ok(),
        // Made by another front end (the CLI as root): the default is
        // its meta, root's.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && sb.dir.exists() => {
            Some(Meta::default())
        }
        Err(_) => None,
    }
}

pub fn write(sb: &SandboxDir, m: &Meta) -> Result<(), StateError> {
    let (name, bytes) = file(m);
    sb.write_atomic(&name, &bytes)
}

/// The file, for a sandbox being made (`LifecycleOptions::files`).
pub fn file(m: &Meta) -> (String, Vec<u8>) {
    (
        FILE.to_string(),
        serde_json::to_vec(m).expect("meta serializes"),
    )
}
