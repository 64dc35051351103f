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
/// the verbs that call this print their answer last).
pub fn line(s: impl std::fmt::Display) {
    if !bytes(format!("{s}\n").as_bytes()) {
        std::process::exit(EXIT_PIPE.into());
    }
}
