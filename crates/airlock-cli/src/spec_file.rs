//! Reading a spec file, the same for every command that takes one.

use airlock::spec::{self, SandboxSpec};

/// The spec in `path` (JSON or TOML), or on stdin for `-`. The error
/// names the file and says why.
pub fn read(path: &str) -> Result<SandboxSpec, String> {
    let text = if path == "-" {
        take_stdin("--spec -").map_err(|e| format!("reading the spec from stdin: {e}"))?;
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
            .map_err(|e| format!("reading the spec from stdin: {e}"))?;
        s
    } else {
        std::fs::read_to_string(path).map_err(|e| format!("reading the spec {path}: {e}"))?
    };
    spec::from_str_auto(&text).map_err(|e| format!("{path}: {e}"))
}

/// Who has read standard input: it can be read whole once, and a second
/// reader (`--spec -` and `--file 0 DST`, say) would get nothing.
static STDIN_READER: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Claim standard input for `who` (the flag as given), or say which flag
/// already read it.
pub fn take_stdin(who: &str) -> Result<(), String> {
    STDIN_READER
        .set(who.to_string())
        .map_err(|_| match STDIN_READER.get() {
            Some(first) => format!("standard input was already read for {first}"),
            None => "standard input was already read".into(),
        })
}
