//! OCI hooks that run in the runtime's own namespaces: `prestart` and
//! `createRuntime` once the container is created (its workload held),
//! `poststart` after `start`, `poststop` on `delete`. Each gets the
//! container's state JSON on stdin and is killed after its `timeout`.
//! `createContainer` and `startContainer` run inside the container's
//! namespaces and are refused until airlock runs them there.

use oci_spec::runtime::Hook;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The hooks the runtime runs, kept beside the container's state.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Hooks {
    /// `createRuntime`, then the deprecated `prestart`.
    pub created: Vec<Hook>,
    pub poststart: Vec<Hook>,
    pub poststop: Vec<Hook>,
}

impl Hooks {
    /// The hooks of a bundle; an error names a kind airlock cannot run.
    pub fn of(config: &oci_spec::runtime::Spec) -> Result<Hooks, String> {
        let Some(h) = config.hooks() else {
            return Ok(Hooks::default());
        };
        let some = |x: &Option<Vec<Hook>>| x.as_ref().is_some_and(|v| !v.is_empty());
        if some(h.create_container()) || some(h.start_container()) {
            return Err("hooks.createContainer, hooks.startContainer: hooks inside the container's namespaces are not supported yet".into());
        }
        let list = |x: &Option<Vec<Hook>>| x.clone().unwrap_or_default();
        #[allow(deprecated)]
        let prestart = list(h.prestart());
        let mut created = list(h.create_runtime());
        created.extend(prestart);
        Ok(Hooks {
            created,
            poststart: list(h.poststart()),
            poststop: list(h.poststop()),
        })
    }
}

/// Run `hooks` in order with `state` on stdin; the first failure stops
/// them and is returned, naming the hook.
pub fn run(kind: &str, hooks: &[Hook], state: &serde_json::Value) -> Result<(), String> {
    for (i, h) in hooks.iter().enumerate() {
        run_one(h, state).map_err(|e| format!("hooks.{kind}[{i}] {}: {e}", h.path().display()))?;
    }
    Ok(())
}

fn run_one(h: &Hook, state: &serde_json::Value) -> Result<(), String> {
    let args = h.args().clone().unwrap_or_default();
    let mut cmd = Command::new(h.path());
    if let Some((argv0, rest)) = args.split_first() {
        cmd.arg0(argv0).args(rest);
    }
    cmd.env_clear();
    for kv in h.env().iter().flatten() {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin is not an error.
        let _ = stdin.write_all(state.to_string().as_bytes());
    }
    let deadline = h
        .timeout()
        .filter(|t| *t > 0)
        .map(|t| Instant::now() + Duration::from_secs(t as u64));
    loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            return if status.success() {
                Ok(())
            } else {
                Err(format!("exited with {status}"))
            };
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "did not finish within its timeout of {}s",
                h.timeout().unwrap_or(0)
            ));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
