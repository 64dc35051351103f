//! Attach to the main workload of a detached sandbox: its supervisor hands
//! out what the workload's input is written to — the master of its
//! terminal (`process.terminal`), or the write end of its stdin pipe
//! ([`crate::LifecycleOptions::stdin`]). Its output is read from the logs
//! ([`SandboxDir::log_reader`]), where the supervisor keeps writing it
//! whether anyone is attached or not.

use super::{control, SandboxDir, StateError, Status};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

/// The workload's input, from [`SandboxDir::attach`]. Any number of
/// callers may be attached at once; what each one writes reaches the
/// workload as it is written.
///
/// A terminal's master is non-blocking (its file is the supervisor's
/// too, and one writer waiting for a workload that reads nothing must not
/// hold the others): write with [`Attached::write_while`].
#[derive(Debug)]
pub struct Attached {
    /// Write the workload's input here: the terminal's master (`terminal`)
    /// or the write end of its stdin pipe. Closing it does not close the
    /// workload's stdin: the supervisor holds it open for the next caller.
    pub input: OwnedFd,
    /// `input` is a terminal's master: what is written is processed by
    /// the terminal's line discipline (echo, Ctrl-C), and the window size
    /// can be set ([`Attached::resize`]).
    pub terminal: bool,
}

impl Attached {
    /// Set the terminal's window size (the workload gets SIGWINCH).
    pub fn resize(&self, rows: u16, cols: u16) -> std::io::Result<()> {
        if !self.terminal {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "the workload has no terminal to resize",
            ));
        }
        crate::terminal::set_size(&self.input, rows, cols)
    }

    /// Write all of `bytes` to the workload's input; see [`write_while`].
    pub fn write_while(&self, bytes: &[u8], wanted: impl Fn() -> bool) -> std::io::Result<bool> {
        write_while(self.input.as_fd(), bytes, wanted)
    }
}

/// Write all of `bytes` to `fd`, blocking or not: while a non-blocking
/// `fd` has no room, wait for it a fifth of a second at a time, and only
/// while `wanted()`. Ok(false) when it stopped being wanted first; an
/// error when the write failed (the workload closed its input).
pub fn write_while(
    fd: BorrowedFd,
    mut bytes: &[u8],
    wanted: impl Fn() -> bool,
) -> std::io::Result<bool> {
    use rustix::event::{poll, PollFd, PollFlags, Timespec};
    while !bytes.is_empty() {
        match rustix::io::write(fd, bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(rustix::io::Errno::AGAIN) => {
                if !wanted() {
                    return Ok(false);
                }
                let mut room = [PollFd::from_borrowed_fd(fd, PollFlags::OUT)];
                let fifth = Timespec {
                    tv_sec: 0,
                    tv_nsec: 200_000_000,
                };
                let _ = poll(&mut room, Some(&fifth));
            }
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(true)
}

impl SandboxDir {
    /// What to write the main workload's input to, from its supervisor.
    /// Errors: the sandbox is stopped ([`StateError::WrongStatus`]), or it
    /// was started with neither a terminal nor stdin
    /// ([`StateError::NotAttachable`]).
    pub fn attach(&self) -> Result<Attached, StateError> {
        let st = self.state()?;
        let stopped = |status| StateError::WrongStatus {
            name: st.name.clone(),
            status,
            what: "there is nothing to attach to".into(),
        };
        if st.status == Status::Stopped {
            return Err(stopped(st.status));
        }
        match control::attach(&self.dir) {
            Ok(Some((input, terminal))) => Ok(Attached { input, terminal }),
            Ok(None) => Err(StateError::NotAttachable(st.name.clone())),
            // It ended between the look at its state and the request.
            Err(_) if !self.alive() => Err(stopped(Status::Stopped)),
            Err(source) => Err(StateError::Io {
                what: "ask the supervisor through",
                path: self.dir.clone(),
                source,
            }),
        }
    }
}
