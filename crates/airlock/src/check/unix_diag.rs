//! The paths of the unix sockets in this network namespace that a process
//! could still reach, from the kernel's sock_diag netlink interface
//! (`sock_diag(7)`, `UNIX_DIAG`): the listening ones and the unconnected
//! ones (a datagram socket anyone may send to, a stream socket bound but
//! not yet listening).
//!
//! Why not `/proc/net/unix` alone: it lists every socket, and every
//! connection a listener accepted carries the listener's path, so a host
//! with many connections (a daemon and its clients: airlockd under load
//! listed 48 sockets for one listener) paid the kernel's formatting of
//! each line at every sandbox's start, about 1 % of the CPU a sandbox
//! costs through airlockd. The kernel filters by state here and sends
//! only what can be connected to. A connected socket cannot take a new
//! peer (a stream socket never listens once connected; a connected
//! datagram socket takes datagrams from its peer only); one that
//! disconnects later is, for the guardrails, like a socket bound later.
//! `/proc/net/unix` stays the fallback for a kernel without `unix_diag`.
//!
//! Why by hand: the request is one fixed 40-byte message and the answer a
//! walk over message headers to one attribute each; the netlink-packet
//! crates would bring four crates for it.

use rustix::net::{netlink, AddressFamily, RecvFlags, SendFlags, SocketFlags, SocketType};
use std::io;

const SOCK_DIAG_BY_FAMILY: u16 = 20;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_DUMP: u16 = 0x300;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const UDIAG_SHOW_NAME: u32 = 0x1;
const UNIX_DIAG_NAME: u16 = 0;
/// The kernel's TCP states, which unix sockets reuse.
const TCP_CLOSE: u32 = 7;
const TCP_LISTEN: u32 = 10;
/// `struct nlmsghdr`.
const HEADER: usize = 16;
/// `struct unix_diag_msg`.
const DIAG_MSG: usize = 16;

/// The filesystem paths (as bound, absolute ones only) of the listening
/// and unconnected unix sockets of this network namespace.
pub fn reachable_socket_paths() -> io::Result<Vec<String>> {
    let sock = rustix::net::socket_with(
        AddressFamily::NETLINK,
        SocketType::DGRAM,
        SocketFlags::CLOEXEC,
        Some(netlink::SOCK_DIAG),
    )?;
    rustix::net::send(&sock, &request(), SendFlags::empty())?;
    let mut found = Vec::new();
    let mut buf = vec![0u8; 32 << 10];
    loop {
        let (n, whole) = rustix::net::recv(&sock, &mut buf, RecvFlags::TRUNC)?;
        if whole > n {
            return Err(io::Error::other(
                "a sock_diag answer larger than its buffer",
            ));
        }
        if parse(&buf[..n], &mut found)? {
            return Ok(found);
        }
    }
}

/// A dump request for every unix socket in state LISTEN or CLOSE, with
/// its name.
fn request() -> [u8; HEADER + 24] {
    let mut m = [0u8; HEADER + 24];
    m[0..4].copy_from_slice(&((HEADER + 24) as u32).to_ne_bytes());
    m[4..6].copy_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    m[6..8].copy_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    // struct unix_diag_req: family, protocol, pad, states, ino, show,
    // cookie.
    m[HEADER] = libc::AF_UNIX as u8;
    let states = (1u32 << TCP_LISTEN) | (1u32 << TCP_CLOSE);
    m[HEADER + 4..HEADER + 8].copy_from_slice(&states.to_ne_bytes());
    m[HEADER + 12..HEADER + 16].copy_from_slice(&UDIAG_SHOW_NAME.to_ne_bytes());
    m
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// Add the paths one datagram of the answer names to `found`; true once
/// the dump is done. A malformed message is an error, not a short list.
fn parse(datagram: &[u8], found: &mut Vec<String>) -> io::Result<bool> {
    let malformed = || io::Error::other("a malformed sock_diag message");
    let mut at = 0;
    while at + HEADER <= datagram.len() {
        let len = u32_at(datagram, at).ok_or_else(malformed)? as usize;
        let kind = u16_at(datagram, at + 4).ok_or_else(malformed)?;
        let end = at
            .checked_add(len)
            .filter(|e| *e <= datagram.len() && len >= HEADER);
        let end = end.ok_or_else(malformed)?;
        match kind {
            NLMSG_DONE => return Ok(true),
            NLMSG_ERROR => {
                let code = u32_at(datagram, at + HEADER).ok_or_else(malformed)? as i32;
                return Err(io::Error::from_raw_os_error(code.saturating_neg()));
            }
            _ => {
                let mut attr = at + HEADER + DIAG_MSG;
                while attr + 4 <= end {
                    let alen = u16_at(datagram, attr).ok_or_else(malformed)? as usize;
                    let atype = u16_at(datagram, attr + 2).ok_or_else(malformed)?;
                    if alen < 4 || attr + alen > end {
                        return Err(malformed());
                    }
                    if atype == UNIX_DIAG_NAME {
                        let name = &datagram[attr + 4..attr + alen];
                        // An abstract name begins with a NUL; a path is
                        // sent with the NUL it was bound with.
                        let name = name.split(|b| *b == 0).next().unwrap_or_default();
                        if name.first() == Some(&b'/') {
                            found.push(String::from_utf8_lossy(name).into_owned());
                        }
                    }
                    attr += align4(alen);
                }
            }
        }
        at += align4(len);
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::{UnixDatagram, UnixListener, UnixStream};

    #[test]
    fn listeners_and_unconnected_sockets_are_listed_and_connections_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = |n: &str| dir.path().join(n).to_str().unwrap().to_string();
        let listener = UnixListener::bind(path("listening")).unwrap();
        let _open = UnixDatagram::bind(path("datagrams")).unwrap();
        // A datagram socket bound and connected takes its peer's only.
        let peer = UnixDatagram::bind(path("peer")).unwrap();
        let connected = UnixDatagram::bind(path("connected")).unwrap();
        connected.connect(path("peer")).unwrap();
        peer.connect(path("connected")).unwrap();
        // The accepted end carries the listener's path; neither end of a
        // connection is listed for it.
        let _client = UnixStream::connect(path("listening")).unwrap();
        let _accepted = listener.accept().unwrap();
        let all = reachable_socket_paths().unwrap();
        let mine: Vec<_> = all
            .iter()
            .filter(|p| p.starts_with(dir.path().to_str().unwrap()))
            .cloned()
            .collect();
        let mut want = vec![path("datagrams"), path("listening")];
        want.sort();
        let mut got = mine.clone();
        got.sort();
        assert_eq!(got, want, "listed: {all:?}");
    }

    #[test]
    fn a_malformed_answer_is_an_error() {
        let mut found = Vec::new();
        // A header that claims more than the datagram holds.
        let mut m = [0u8; HEADER];
        m[0..4].copy_from_slice(&64u32.to_ne_bytes());
        assert!(parse(&m, &mut found).is_err());
        // An error message carries the errno, negated.
        let mut e = [0u8; HEADER + 4];
        e[0..4].copy_from_slice(&((HEADER + 4) as u32).to_ne_bytes());
        e[4..6].copy_from_slice(&NLMSG_ERROR.to_ne_bytes());
        e[HEADER..].copy_from_slice(&(-libc::ENOENT).to_ne_bytes());
        let err = parse(&e, &mut found).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOENT));
    }
}
