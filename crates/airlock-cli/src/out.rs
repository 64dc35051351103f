//! What the verbs print on stdout, for a reader that may go away (`| head`).
//!
//! `println!` panics when stdout is a closed pipe, and SIGPIPE is ignored
//! where a verb writes to a socket (the daemon's through `--host`, a
//! sandbox's control socket): a write to one closed under us must end in
//! an error we can name, not in a signal. So a closed stdout is checked
//! for here and ends the program as SIGPIPE would have, 128 + 13.

use std::io::Write;

/// The exit status of a verb whose stdout was closed under it.
pub const EXIT_PIPE: u8 = 128 + libc::SIGPIPE as u8;

/// Write `b` to stdout at once; false when no one reads it any more.
pub fn bytes(b: &[u8]) -> bool {
    let mut out = std::io::stdout().lock();
    out.write_all(b).and_then(|()| out.flush()).is_ok()
}

/// Print `s` and a newline; end the program with [`EXIT_PIPE`] when no
/// one reads stdout any more (nothing is held that an exit would lose:
/// the verbs that call this print their one answer last; a list's go
/// through [`Listed`]).
pub fn line(s: impl std::fmt::Display) {
    if !bytes(format!("{s}\n").as_bytes()) {
        std::process::exit(EXIT_PIPE.into());
    }
}

/// The names a verb prints as it goes through a list (`stop a b c`): a
/// stdout closed on the way does not stop the list, every name is still
/// acted on, and the verb ends with [`EXIT_PIPE`] after.
#[derive(Default)]
pub struct Listed {
    closed: bool,
}

impl Listed {
    pub fn line(&mut self, s: impl std::fmt::Display) {
        if !self.closed {
            self.closed = !bytes(format!("{s}\n").as_bytes());
        }
    }

    /// `code`, or [`EXIT_PIPE`] when stdout was closed on the way.
    pub fn code(self, code: std::process::ExitCode) -> std::process::ExitCode {
        match self.closed {
            true => EXIT_PIPE.into(),
            false => code,
        }
    }
}

/// A verb could not write its output to stdout: [`EXIT_PIPE`] when the
/// reader went away (`| head`), as SIGPIPE would have ended it; any other
/// error (a full disk, a closed stdout) is said, as `what`, so that it
/// does not look like everything was written.
pub fn write_failed(what: &str, e: std::io::Error) -> std::process::ExitCode {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        return EXIT_PIPE.into();
    }
    crate::run::refuse(format!("{what}: {e}"))
}
