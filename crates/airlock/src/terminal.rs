//! The caller's side of `-t`: while a sandbox's terminal is proxied, the
//! caller's own terminal passes every keystroke through untouched (raw
//! mode), so the sandbox's line discipline does the echo, line editing and
//! job-control keys. The mode is restored when the guard drops.

use rustix::termios::{tcgetattr, tcsetattr, OptionalActions, Termios};

/// The caller's terminal in raw mode until dropped ([`RawMode::enter`]),
/// or its modes noted to be put back ([`RawMode::keep`]).
pub struct RawMode {
    saved: Termios,
    /// Kept for a workload that held the terminal itself: its exclusive
    /// mode is cleared too. (Proxied, the workload never had it.)
    kept: bool,
}

impl RawMode {
    /// Put stdin in raw mode; `None` when stdin is not a terminal (input
    /// from a pipe is passed on as it is).
    pub fn enter() -> Option<RawMode> {
        let stdin = rustix::stdio::stdin();
        if !rustix::termios::isatty(stdin) {
            return None;
        }
        let saved = tcgetattr(stdin).ok()?;
        let mut raw = saved.clone();
        raw.make_raw();
        tcsetattr(stdin, OptionalActions::Now, &raw).ok()?;
        Some(RawMode { saved, kept: false })
    }
}

impl RawMode {
    /// Note stdin's terminal modes as they are, to give them back when
    /// dropped: a workload that holds the caller's terminal (a run
    /// without `-t`) may change them, or make it exclusive, and neither
    /// should outlive the sandbox. `None` when stdin is not a terminal.
    pub fn keep() -> Option<RawMode> {
        let stdin = rustix::stdio::stdin();
        if !rustix::termios::isatty(stdin) {
            return None;
        }
        Some(RawMode {
            saved: tcgetattr(stdin).ok()?,
            kept: true,
        })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        // From a background process group a change of our controlling
        // terminal would stop us (SIGTTOU): `airlock run ... &` ending.
        // The terminal is then the foreground job's, not ours to put back.
        // (Not our controlling terminal, tcgetpgrp fails: no such stop.)
        let stdin = rustix::stdio::stdin();
        if rustix::termios::tcgetpgrp(stdin).is_ok_and(|g| g != rustix::process::getpgrp()) {
            return;
        }
        let _ = tcsetattr(stdin, OptionalActions::Now, &self.saved);
        if !self.kept {
            return;
        }
        // Exclusive mode (TIOCEXCL) the workload set would keep every
        // later open of the terminal out, but root's (sudo, ssh, a new
        // shell's /dev/tty). One the user set before stays, when the
        // workload only saw a terminal of its own.
        // SAFETY: TIOCNXCL takes no argument and acts on stdin's terminal.
        unsafe { libc::ioctl(0, libc::TIOCNXCL) };
        // Output the workload stopped (TCOOFF, which its own session may
        // do) stays stopped through every tcsetattr and a typed Ctrl-Q:
        // the shell would block for good writing its next prompt. TCOON
        // clears only that stop, not a Ctrl-S of the user's.
        // SAFETY: tcflow takes no pointers and acts on stdin's terminal.
        unsafe { libc::tcflow(0, libc::TCOON) };
    }
}

/// The receiving end of a console socket (OCI's `--console-socket`, or
/// [`crate::ExecOptions::console_socket`]): read the one message on the
/// accepted connection `conn` and return the terminal master it carries.
pub fn receive_terminal(conn: impl std::os::fd::AsFd) -> std::io::Result<std::os::fd::OwnedFd> {
    let mut buf = [0u8; 256];
    let (_, fds) = crate::sys::recv_with_fds(conn, &mut buf, rustix::net::RecvFlags::empty())?;
    fds.into_iter().next().ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "the console socket's message carried no terminal",
        )
    })
}

/// The address of a console socket at `path`, which may be longer than
/// the 108 bytes an address holds (a daemon's or an engine's deep state
/// directory): then it is reached through an fd on its directory,
/// `/proc/self/fd/N/NAME`, and the fd comes along, to be kept until the
/// bind or connect is done. (The kernel resolves the address as a path.)
pub fn console_socket_address(
    path: &std::path::Path,
) -> std::io::Result<(rustix::net::SocketAddrUnix, Option<std::os::fd::OwnedFd>)> {
    use std::os::fd::AsRawFd;
    match rustix::net::SocketAddrUnix::new(path) {
        Err(rustix::io::Errno::NAMETOOLONG) | Err(rustix::io::Errno::INVAL) => {}
        other => return Ok((other?, None)),
    }
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(rustix::io::Errno::NAMETOOLONG.into());
    };
    let dir = rustix::fs::open(
        if dir.as_os_str().is_empty() {
            std::path::Path::new(".")
        } else {
            dir
        },
        rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )?;
    let mut short = std::ffi::OsString::from(format!("/proc/self/fd/{}/", dir.as_raw_fd()));
    short.push(name);
    Ok((
        rustix::net::SocketAddrUnix::new(short.as_os_str())?,
        Some(dir),
    ))
}

/// Set the window size (rows, columns) of the terminal `fd` (its master
/// or slave).
pub fn set_size(fd: impl std::os::fd::AsFd, rows: u16, cols: u16) -> std::io::Result<()> {
    let size = rustix::termios::Winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    Ok(rustix::termios::tcsetwinsize(fd, size)?)
}

/// The window size (rows, columns) of the caller's terminal; `None` when
/// none of stdin, stdout and stderr is one. (`airlock attach` copies it
/// to an attached workload's terminal with
/// [`crate::state::Attached::resize`].)
pub fn size() -> Option<(u16, u16)> {
    let ws = winsize()?;
    Some((ws.ws_row, ws.ws_col))
}

/// The caller's terminal's window size, from the first of stdin, stdout
/// and stderr that is a terminal: with input from a pipe or /dev/null
/// (`echo q | airlock exec -t box less`), the output still shows on one,
/// and a terminal of 0x0 would be laid out for nothing.
pub fn winsize() -> Option<rustix::termios::Winsize> {
    use rustix::stdio::{stderr, stdin, stdout};
    [stdin(), stdout(), stderr()]
        .into_iter()
        .find_map(|fd| rustix::termios::tcgetwinsize(fd).ok())
}

/// What a terminal hears when its piped input ends: its end-of-file
/// character (VEOF), twice after a line not ended (`last_input` not a
/// newline), since the first only ends the line. Without it a workload
/// reading the terminal waits for more input for ever. `None` when
/// `master` is not a terminal.
pub fn end_of_input(master: impl std::os::fd::AsFd, last_input: u8) -> Option<Vec<u8>> {
    let t = rustix::termios::tcgetattr(master).ok()?;
    let eof = t.special_codes[rustix::termios::SpecialCodeIndex::VEOF];
    let times = if last_input == b'\n' { 1 } else { 2 };
    Some(vec![eof; times])
}
