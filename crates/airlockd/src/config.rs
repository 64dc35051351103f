//! The daemon's configuration: a TOML file (`--config`, default
//! `/etc/airlock/airlockd.toml` when it exists), every key optional.
//! `dist/airlockd.toml` documents each key with its default.

use airlock::spec::Size;
use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The socket the API listens on.
    pub listen: PathBuf,
    /// The group whose members may connect besides root; the socket is
    /// made root:GROUP. Empty: root only.
    pub group: String,
    /// The socket's mode.
    pub socket_mode: u32,
    /// Where the daemon's sandboxes keep their state.
    pub state_root: PathBuf,
    /// The image layer store.
    pub store: PathBuf,
    /// The cgroup, relative to each hierarchy's root, under which
    /// sandboxes get theirs. Default: the daemon's own.
    pub cgroup_parent: Option<String>,
    /// Uids besides root that may acknowledge a guardrail's deny finding
    /// (`allow_unsafe` in a spec).
    pub acknowledge_uids: Vec<u32>,
    /// At most this many sandboxes (any state) at once; callers other
    /// than root together a tenth fewer (of ten or more), which stay root's.
    pub max_sandboxes: usize,
    /// Each sandbox's memory limit at most; a spec without one gets it.
    pub max_memory: Option<Size>,
    /// Each sandbox's pids limit at most; a spec without one gets it.
    pub max_pids: Option<u64>,
    /// Each sandbox's `cpu_weight` and `io_weight` at most (the kernel's
    /// default share is 100): the sandboxes share the daemon's cgroup.
    pub max_weight: u32,
    /// Bytes per log file before it rotates (two files per stream kept).
    pub log_limit: u64,
    /// Seconds between SIGTERM and the kill when Stop gives none.
    pub stop_grace: u32,
    /// Events kept for `Events { since }`, for each caller's sandboxes
    /// (one caller's churn does not push out another's).
    pub events_kept: usize,
    /// Exec, Attach, Logs, Events and Wait calls under way at once per
    /// caller besides root: each holds threads, a pidfd or a subscription
    /// of the daemon's own while it lasts.
    pub max_streams_per_caller: usize,
    /// Other calls (Create, Start, Signal, Stop, Delete, List, Inspect,
    /// Stats, Health) under way at once per caller besides root, and the
    /// lookups of their sandbox that Exec's siblings (Attach, Logs,
    /// Events, Wait) make: each waits on the daemon's blocking pool, which
    /// every caller shares.
    /// With `max_streams_per_caller`, it also bounds the requests whose
    /// message (up to 2 MiB) is still being received.
    pub max_calls_per_caller: usize,
    /// Connections open at once per caller besides root (each is a file
    /// descriptor of the daemon's); one more is closed as it is accepted.
    pub max_connections_per_caller: usize,
    /// Sandboxes a caller other than root may hold at once (stopped ones
    /// count until deleted): one user cannot take every `max_sandboxes`
    /// place from the others.
    pub max_sandboxes_per_caller: usize,
    /// Processes all the sandboxes of one caller besides root may hold
    /// together (a pids cgroup above theirs); 0: no such budget.
    pub max_pids_per_caller: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: airlock_client::DEFAULT_SOCKET.into(),
            group: "airlock".into(),
            socket_mode: 0o660,
            state_root: airlock::check::DAEMON_STATE_ROOT.into(),
            store: "/var/lib/airlock".into(),
            cgroup_parent: None,
            acknowledge_uids: Vec::new(),
            max_sandboxes: 1000,
            max_memory: None,
            max_pids: Some(4096),
            max_weight: 100,
            log_limit: 1 << 20,
            stop_grace: 10,
            events_kept: 1000,
            max_streams_per_caller: 64,
            max_calls_per_caller: 16,
            max_connections_per_caller: 32,
            max_sandboxes_per_caller: 250,
            max_pids_per_caller: 16384,
        }
    }
}

impl Config {
    /// Read `path`; an unknown key or a bad value is an error naming it.
    pub fn load(path: &Path) -> anyhow::Result<Config> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
        let c: Config =
            toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        c.check()
            .map_err(|(key, why)| anyhow::anyhow!("{}: {key}: {why}", path.display()))?;
        Ok(c)
    }

    /// A value the daemon could not use as written is an error naming its
    /// key, not cut to what fits (a `stop_grace` of an hour that waited
    /// ten minutes) or read another way (`socket_mode = 660`, decimal,
    /// is 0o1224).
    fn check(&self) -> Result<(), (&'static str, String)> {
        // The kernel's own bound on pids.max (PID_MAX_LIMIT).
        if self.max_pids_per_caller > 1 << 22 {
            let why = format!(
                "{} is more than the kernel counts ({})",
                self.max_pids_per_caller,
                1 << 22
            );
            return Err(("max_pids_per_caller", why));
        }
        if self.stop_grace > MAX_GRACE {
            let why = format!(
                "{} seconds; a stop waits at most {MAX_GRACE}",
                self.stop_grace
            );
            return Err(("stop_grace", why));
        }
        if !(1..=10_000).contains(&self.max_weight) {
            let why = format!(
                "{} is not a weight (1 to 10000; 100 is the kernel's default share)",
                self.max_weight
            );
            return Err(("max_weight", why));
        }
        if self.socket_mode & !0o777 != 0 {
            let why = format!(
                "{:#o} has bits beyond the permission bits (write it in octal: 0o660)",
                self.socket_mode
            );
            return Err(("socket_mode", why));
        }
        Ok(())
    }
}

/// The longest grace a stop waits between SIGTERM and the kill.
pub const MAX_GRACE: u32 = 600;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_config_parses_and_holds_the_defaults() {
        let sample = include_str!("../dist/airlockd.toml");
        let c: Config = toml::from_str(sample).unwrap();
        let d = Config::default();
        assert_eq!(c.listen, d.listen);
        assert_eq!(c.socket_mode, 0o660);
        assert_eq!(c.max_sandboxes, d.max_sandboxes);
        assert_eq!(c.max_pids, d.max_pids);
    }

    #[test]
    fn values_the_daemon_cannot_use_are_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("airlockd.toml");
        for (text, says) in [
            ("stop_grace = 3600\n", "stop_grace: 3600 seconds"),
            ("max_weight = 0\n", "max_weight: 0 is not a weight"),
            ("max_weight = 20000\n", "max_weight: 20000"),
            ("socket_mode = 660\n", "socket_mode: 0o1224"),
            ("max_pids_per_caller = 99999999\n", "max_pids_per_caller"),
        ] {
            std::fs::write(&path, text).unwrap();
            let e = Config::load(&path).unwrap_err().to_string();
            assert!(e.contains(says), "{text}: {e}");
        }
        std::fs::write(
            &path,
            "stop_grace = 600\nmax_weight = 1\nsocket_mode = 0o600\n",
        )
        .unwrap();
        Config::load(&path).unwrap();
    }

    #[test]
    fn unknown_keys_are_refused_by_name() {
        let e = toml::from_str::<Config>("max_sandbox = 3\n").unwrap_err();
        assert!(e.to_string().contains("max_sandbox"), "{e}");
    }
}
