//! Where the runtime's messages go: stderr, and the `--log` file that
//! clients read back when a call fails (podman and containerd show its
//! last error), as text or runc's JSON lines (`--log-format json`).

use liboci_cli::GlobalOpts;
use std::io::Write;
use std::path::PathBuf;

#[derive(Debug, Clone)]
pub struct Log {
    file: Option<PathBuf>,
    json: bool,
    debug: bool,
}

impl Log {
    pub fn open(g: &GlobalOpts) -> Log {
        Log {
            file: g.log.clone(),
            json: g.log_format.as_deref() == Some("json"),
            debug: g.debug,
        }
    }

    fn write(&self, level: &str, msg: &str) {
        let Some(path) = &self.file else {
            return;
        };
        let line = if self.json {
            let time = airlock::state::now();
            serde_json::json!({"level": level, "msg": msg, "time": time}).to_string()
        } else {
            format!("{level}: {msg}")
        };
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = writeln!(f, "{line}");
        }
    }

    pub fn warn(&self, msg: &str) {
        self.write("warning", msg);
        eprintln!("airlock-runtime: warning: {msg}");
    }

    pub fn debug(&self, msg: &str) {
        if self.debug {
            self.write("debug", msg);
        }
    }

    /// Report the error and exit 1, as runc does.
    pub fn fail(&self, msg: &str) -> ! {
        self.write("error", msg);
        eprintln!("airlock-runtime: {msg}");
        std::process::exit(1)
    }
}
