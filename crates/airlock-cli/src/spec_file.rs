//! Reading a spec file, the same for every command that takes one.

use airlock::spec::{self, SandboxSpec};

/// The spec in `path` (JSON or TOML), or on stdin for `-`. The error
/// names the file and says why.
pub fn read(path: &str) -> Result<SandboxSpec, String> {
    let text = if path == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
            .map_err(|e| format!("reading the spec from stdin: {e}"))?;
        s
    } else {
        std::fs::read_to_string(path).map_err(|e| format!("reading the spec {path}: {e}"))?
    };
    spec::from_str_auto(&text).map_err(|e| format!("{path}: {e}"))
}
