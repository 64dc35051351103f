//! The supervisor's control socket: one SOCK_SEQPACKET request per
//! connection, one JSON reply. Only the sandbox's owner (and root) may
//! connect: the socket is 0600 in a 0700 directory, and the supervisor
//! checks the peer's credentials too.
//!
//! Socket paths are limited to 108 bytes; both ends reach the socket
//! through `/proc/self/fd/N/` of an fd on the sandbox's directory, so a
//! deep state root works too.

use crate::namespace::Namespace;
use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType};
use serde::{Deserialize, Serialize};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

pub const SOCKET: &str = "control.sock";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum Request {
    /// Send a signal to the workload (through PID 1, which forwards it).
    Signal { signal: i32 },
    /// Kill every process of the sandbox.
    Kill,
    /// Release a created sandbox's workload.
    Start,
    /// PID 1's namespaces, as fds (for exec).
    Namespaces,
    /// What to write the workload's input to, as an fd: its terminal's
    /// master, or its stdin pipe (see [`super::SandboxDir::attach`]).
    Attach,
}

/// What the fd of an `Attach` reply is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AttachTo {
    /// The workload's terminal's master.
    Terminal,
    /// The write end of the workload's stdin pipe.
    Stdin,
    /// Neither: the sandbox was started without a terminal or stdin (no fd).
    Nothing,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The names of the namespace fds attached to the reply.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<Namespace>,
    /// The answer to `Attach`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attach: Option<AttachTo>,
}

fn socket() -> io::Result<OwnedFd> {
    Ok(rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )?)
}

/// The socket's address through an fd on `dir` (see the module doc).
fn address(dir_fd: &OwnedFd) -> io::Result<SocketAddrUnix> {
    Ok(SocketAddrUnix::new(format!(
        "/proc/self/fd/{}/{SOCKET}",
        dir_fd.as_raw_fd()
    ))?)
}

fn open_dir(dir: &Path) -> io::Result<OwnedFd> {
    use rustix::fs::{Mode, OFlags};
    Ok(rustix::fs::open(
        dir,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::empty(),
    )?)
}

/// Ask the supervisor of the sandbox in `dir` to do `req`.
pub fn request(dir: &Path, req: &Request) -> io::Result<()> {
    ask(dir, req).map(drop)
}

/// PID 1's namespaces, from the supervisor.
pub fn namespaces(dir: &Path) -> io::Result<Vec<(Namespace, OwnedFd)>> {
    let (reply, fds) = ask(dir, &Request::Namespaces)?;
    if reply.namespaces.len() != fds.len() || fds.is_empty() {
        return Err(io::Error::other(
            "the sandbox's namespaces are not available (it is not running)",
        ));
    }
    Ok(reply.namespaces.into_iter().zip(fds).collect())
}

/// The fd to write the workload's input to, and whether it is a
/// terminal; `None` when the sandbox has neither a terminal nor stdin.
pub fn attach(dir: &Path) -> io::Result<Option<(OwnedFd, bool)>> {
    let (reply, mut fds) = ask(dir, &Request::Attach)?;
    let terminal = match reply.attach {
        Some(AttachTo::Nothing) => return Ok(None),
        Some(AttachTo::Terminal) => true,
        Some(AttachTo::Stdin) => false,
        // An empty reply: it went away meanwhile.
        None => {
            return Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "its supervisor ended (the sandbox stopped)",
            ))
        }
    };
    match (fds.pop(), fds.is_empty()) {
        (Some(fd), true) => Ok(Some((fd, terminal))),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "the supervisor's answer did not carry one fd",
        )),
    }
}

fn ask(dir: &Path, req: &Request) -> io::Result<(Reply, Vec<OwnedFd>)> {
    let dir_fd = open_dir(dir)?;
    let sock = socket()?;
    // A supervisor that does not answer (stopped with SIGSTOP) is an
    // error after a while, not a wait without end: for its answer, and
    // for the connect itself, which waits while the listener's queue is
    // full (of earlier callers that gave up on it).
    for which in [
        rustix::net::sockopt::Timeout::Recv,
        rustix::net::sockopt::Timeout::Send,
    ] {
        rustix::net::sockopt::set_socket_timeout(&sock, which, Some(crate::state::KILL_WAIT))?;
    }
    rustix::net::connect(&sock, &address(&dir_fd)?).map_err(|e| match e {
        rustix::io::Errno::NOENT | rustix::io::Errno::CONNREFUSED => {
            io::Error::new(io::ErrorKind::NotConnected, "its supervisor is not running")
        }
        rustix::io::Errno::AGAIN => io::Error::new(
            io::ErrorKind::TimedOut,
            format!(
                "its supervisor took no call within {} s (is it stopped?)",
                crate::state::KILL_WAIT.as_secs()
            ),
        ),
        e => e.into(),
    })?;
    let bytes = serde_json::to_vec(req).expect("requests serialize");
    rustix::net::send(&sock, &bytes, rustix::net::SendFlags::NOSIGNAL)?;
    let mut buf = [0u8; 4096];
    let (n, fds) = loop {
        match crate::sys::recv_with_fds(&sock, &mut buf[..], rustix::net::RecvFlags::empty()) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "its supervisor did not answer within {} s (is it stopped?)",
                        crate::state::KILL_WAIT.as_secs()
                    ),
                ))
            }
            other => break other?,
        }
    };
    if n == 0 {
        // The supervisor went away while answering: a kill (or a signal)
        // that ended it did what it was asked; anything else was not done.
        return match req {
            Request::Kill | Request::Signal { .. } => Ok((Reply::default(), fds)),
            _ => Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "its supervisor ended without answering (the sandbox stopped)",
            )),
        };
    }
    let reply: Reply = serde_json::from_slice(&buf[..n])
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    match reply.error {
        None => Ok((reply, fds)),
        Some(e) => Err(io::Error::other(Refusal(e))),
    }
}

/// What a supervisor answered instead of doing a request (a signal its
/// init keeps, a start of a started sandbox): the caller's to change, no
/// failure of the host's; [`crate::state::StateError::Refused`] says it.
#[derive(Debug)]
pub struct Refusal(pub String);

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refusal {}

/// The supervisor's listening socket in `dir`, 0600.
pub fn listen(dir: &Path) -> io::Result<OwnedFd> {
    let dir_fd = open_dir(dir)?;
    let sock = socket()?;
    // Created 0600 whatever the umask: the directory is 0700 already, this
    // is the second lock on the door.
    let old = rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o177));
    let bound = rustix::net::bind(&sock, &address(&dir_fd)?);
    rustix::process::umask(old);
    bound?;
    rustix::net::listen(&sock, 16)?;
    Ok(sock)
}

/// A connection the supervisor accepted, with its one request.
pub struct Incoming {
    conn: OwnedFd,
    pub request: Request,
}

/// Accept one connection; one from anyone but the supervisor's own uid or
/// root is closed unanswered.
/// A connection of the owner's or root's; `Ok(None)` for another's,
/// refused and closed; an error when none could be taken.
fn accept_ours(listener: &OwnedFd, flags: SocketFlags) -> rustix::io::Result<Option<OwnedFd>> {
    let conn = rustix::net::accept_with(listener, flags | SocketFlags::CLOEXEC)?;
    let me = rustix::process::geteuid();
    let ours = rustix::net::sockopt::socket_peercred(&conn)
        .is_ok_and(|peer| peer.uid == me || peer.uid.is_root());
    if !ours {
        refuse(
            &conn,
            "only the sandbox's owner and root may ask its supervisor",
        );
        return Ok(None);
    }
    Ok(Some(conn))
}

/// Answer with an error before closing: a client that read end-of-file
/// after a kill would take it for done (see `ask`).
fn refuse(conn: &OwnedFd, why: &str) {
    let reply = Reply {
        error: Some(why.to_string()),
        ..Reply::default()
    };
    let bytes = serde_json::to_vec(&reply).expect("replies serialize");
    let _ = rustix::net::send(conn, &bytes, rustix::net::SendFlags::NOSIGNAL);
}

/// The request in `bytes`; one this supervisor cannot read (a newer
/// client's) is answered so, not dropped, which the client would take
/// for a supervisor that went away.
fn parse_or_answer(conn: OwnedFd, bytes: &[u8]) -> Option<Incoming> {
    match serde_json::from_slice(bytes) {
        Ok(request) => Some(Incoming { conn, request }),
        Err(e) => {
            refuse(&conn, &format!("not a request this supervisor knows: {e}"));
            None
        }
    }
}

/// Accept one connection and wait (a second at most) for its request:
/// for a caller with nothing else to watch (the runtime hooks' wait).
/// `Ok(None)`: the call was answered or gone without a request (another
/// user's, one that sent nothing or what this supervisor cannot read),
/// and the listener is as good as before; an error: no connection could
/// be taken (EMFILE), and the listener would wake its watcher again and
/// again.
pub fn accept(listener: &OwnedFd) -> rustix::io::Result<Option<Incoming>> {
    let Some(conn) = accept_ours(listener, SocketFlags::empty())? else {
        return Ok(None);
    };
    let _ = rustix::net::sockopt::set_socket_timeout(
        &conn,
        rustix::net::sockopt::Timeout::Recv,
        Some(Waiting::PATIENCE),
    );
    let mut buf = [0u8; 4096];
    match rustix::net::recv(&conn, &mut buf[..], rustix::net::RecvFlags::empty()) {
        Ok((n, _)) if n > 0 => Ok(parse_or_answer(conn, &buf[..n])),
        Err(rustix::io::Errno::AGAIN) => {
            refuse(&conn, "no request came within a second");
            Ok(None)
        }
        _ => Ok(None),
    }
}

/// Connections whose request has not come yet, kept among the
/// supervisor's other sources rather than waited for: a client that
/// connects and sends nothing (a health check that only connects) held
/// the whole loop for a second each time, logs undrained, stops and the
/// timeout late. A few, each for a second at most.
#[derive(Default)]
pub struct Waiting(Vec<(OwnedFd, std::time::Instant)>);

impl Waiting {
    const MOST: usize = 16;
    const PATIENCE: std::time::Duration = std::time::Duration::from_secs(1);

    /// Accept one connection without waiting; its request if it came
    /// with it (else the connection waits here).
    pub fn accept(&mut self, listener: &OwnedFd) -> Option<Incoming> {
        let conn = accept_ours(listener, SocketFlags::NONBLOCK)
            .ok()
            .flatten()?;
        self.read_or_keep(conn, std::time::Instant::now())
    }

    fn read_or_keep(&mut self, conn: OwnedFd, since: std::time::Instant) -> Option<Incoming> {
        let mut buf = [0u8; 4096];
        match rustix::net::recv(&conn, &mut buf[..], rustix::net::RecvFlags::DONTWAIT) {
            Ok((n, _)) if n > 0 => parse_or_answer(conn, &buf[..n]),
            Err(rustix::io::Errno::AGAIN) if since.elapsed() < Self::PATIENCE => {
                if self.0.len() >= Self::MOST {
                    let (oldest, _) = self.0.remove(0);
                    refuse(&oldest, "too many callers at once; ask again");
                }
                self.0.push((conn, since));
                None
            }
            Err(rustix::io::Errno::AGAIN) => {
                refuse(&conn, "no request came within a second");
                None
            }
            // Closed unsent.
            _ => None,
        }
    }

    /// The connections to poll, in order.
    pub fn fds(&self) -> impl Iterator<Item = BorrowedFd<'_>> {
        self.0.iter().map(|(c, _)| c.as_fd())
    }

    /// The requests of the connections polled readable (`ready[i]` for
    /// the i-th of [`Waiting::fds`]); those waited for too long are closed.
    pub fn take_ready(&mut self, ready: &[bool]) -> Vec<Incoming> {
        let mut out = Vec::new();
        for (i, (conn, since)) in std::mem::take(&mut self.0).into_iter().enumerate() {
            if ready.get(i) == Some(&true) {
                out.extend(self.read_or_keep(conn, since));
            } else if since.elapsed() < Self::PATIENCE {
                self.0.push((conn, since));
            } else {
                refuse(&conn, "no request came within a second");
            }
        }
        out
    }

    /// When the longest-waiting connection is given up.
    pub fn deadline(&self) -> Option<std::time::Instant> {
        self.0
            .iter()
            .map(|(_, since)| *since + Self::PATIENCE)
            .min()
    }
}

impl Incoming {
    pub fn reply(self, result: Result<(), String>) {
        let reply = Reply {
            error: result.err(),
            ..Reply::default()
        };
        let bytes = serde_json::to_vec(&reply).expect("replies serialize");
        let _ = rustix::net::send(self.conn.as_fd(), &bytes, rustix::net::SendFlags::NOSIGNAL);
    }

    /// Answer a `Namespaces` request with the fds attached.
    pub fn reply_namespaces(self, namespaces: &[(Namespace, OwnedFd)]) {
        let reply = Reply {
            error: namespaces
                .is_empty()
                .then(|| "the sandbox has no namespaces to join yet".into()),
            namespaces: namespaces.iter().map(|(n, _)| *n).collect(),
            ..Reply::default()
        };
        let bytes = serde_json::to_vec(&reply).expect("replies serialize");
        let fds: Vec<_> = namespaces.iter().map(|(_, f)| f.as_fd()).collect();
        let _ = crate::sys::send_with_fds(&self.conn, &bytes, &fds);
    }

    /// Answer an `Attach` request: the fd (and whether it is a terminal's
    /// master) attached, or that there is nothing to attach to.
    pub fn reply_attach(self, fd: Option<(BorrowedFd<'_>, bool)>) {
        let attach = match fd {
            Some((_, true)) => AttachTo::Terminal,
            Some((_, false)) => AttachTo::Stdin,
            None => AttachTo::Nothing,
        };
        let reply = Reply {
            attach: Some(attach),
            ..Reply::default()
        };
        let bytes = serde_json::to_vec(&reply).expect("replies serialize");
        let fds: Vec<BorrowedFd> = fd.map(|(f, _)| f).into_iter().collect();
        let _ = crate::sys::send_with_fds(&self.conn, &bytes, &fds);
    }
}
