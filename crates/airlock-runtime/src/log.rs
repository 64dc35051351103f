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
            let time = rfc3339(airlock::state::now());
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

    /// A warning (an acknowledged finding, a note) goes to the `--log`
    /// file, and to stderr only with `--debug`: a runtime that succeeded
    /// says nothing there, since a client's stderr can be the container's
    /// terminal (podman run -it). Errors always go to stderr.
    pub fn warn(&self, msg: &str) {
        self.write("warning", msg);
        if self.debug {
            eprintln!("airlock-runtime: warning: {msg}");
        }
    }

    /// A failed poststart or poststop hook, which the OCI spec says must
    /// be logged: a [`Self::warn`], and on stderr too when there is no
    /// `--log` file to hold it, as runc says it.
    pub fn hook_failed(&self, msg: &str) {
        self.warn(msg);
        if self.file.is_none() && !self.debug {
            eprintln!("airlock-runtime: warning: {msg}");
        }
    }

    pub fn debug(&self, msg: &str) {
        if self.debug {
            self.write("debug", msg);
        }
    }

    /// Report the error and exit 1, as runc does.
    pub fn fail(&self, msg: &str) -> ! {
        self.fail_with(msg, 1)
    }

    /// Report the error and exit with `code`.
    pub fn fail_with(&self, msg: &str, code: i32) -> ! {
        self.write("error", msg);
        eprintln!("airlock-runtime: {msg}");
        std::process::exit(code)
    }
}

/// Seconds since the epoch as RFC 3339 in UTC, which runc's clients parse
/// (the civil-from-days conversion of Howard Hinnant's date algorithms).
pub(crate) fn rfc3339(epoch: f64) -> String {
    let secs = epoch.max(0.0) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc3339_dates() {
        assert_eq!(super::rfc3339(0.0), "1970-01-01T00:00:00Z");
        assert_eq!(super::rfc3339(1_796_216_481.5), "2026-12-02T13:01:21Z");
        assert_eq!(super::rfc3339(951_782_400.0), "2000-02-29T00:00:00Z");
    }
}
