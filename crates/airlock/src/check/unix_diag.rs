//! The paths of the unix sockets in this network namespace that a process
//! could still reach, from the kernel's sock_diag netlink interface
//! (`sock_diag(7)`, `UNIX_DIAG`): every listening or unconnected socket,
//! and every datagram socket whatever its state.
//!
//! Why not `/proc/net/unix` alone: it lists every socket, and every
//! connection a listener accepted carries the listener's path, so a host
//! with many connections (a daemon and its clients: airlockd under load
//! listed 48 sockets for one listener) paid the kernel's formatting of
//! each line at every sandbox's start, about 1 % of the CPU a sandbox
//! costs through airlockd. A connected stream socket can take no new peer
//! (it never listens once connected), so those are dropped. A datagram
//! socket is kept in any state: one that clients have `connect()`ed to is
//! ESTABLISHED too (since Linux 5.15) and takes datagrams from anyone, as
//! the journal's `/dev/log` does. Reading each entry's name on its own
//! also means one socket bound at a path that is not UTF-8 no longer
//! empties the whole list, as it did `read_to_string` of
//! `/proc/net/unix`, which stays the fallback for a kernel without
//! `unix_diag`.
//!
//! A socket bound at a relative path is listed by the name it was bound
//! with, relative to its binder's working directory then; the kernel also
//! gives the socket file's device and inode (`UNIX_DIAG_VFS`). Such a
//! socket is looked for beside the working directory of each process that
//! holds it now, and listed where the file found there is that very one
//! ([`locate`]). One whose holders have all moved elsewhere is not found:
//! nothing names its directory any more.
//!
//! Why by hand: the request is one fixed 40-byte message and the answer a
//! walk over message headers to two attributes each; the netlink-packet
//! crates would bring four crates for it.

use rustix::net::{netlink, AddressFamily, RecvFlags, SendFlags, SocketFlags, SocketType};
use std::io;

const SOCK_DIAG_BY_FAMILY: u16 = 20;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_DUMP: u16 = 0x300;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const UDIAG_SHOW_NAME: u32 = 0x1;
const UDIAG_SHOW_VFS: u32 = 0x2;
const UNIX_DIAG_NAME: u16 = 0;
const UNIX_DIAG_VFS: u16 = 1;
/// The kernel's TCP states, which unix sockets reuse.
const TCP_ESTABLISHED: u8 = 1;
const TCP_CLOSE: u8 = 7;
const TCP_LISTEN: u8 = 10;
/// `struct nlmsghdr`.
const HEADER: usize = 16;
/// `struct unix_diag_msg`.
const DIAG_MSG: usize = 16;

/// A socket bound at a relative path, as the kernel lists it.
#[derive(Debug, Clone, PartialEq)]
struct Relative {
    name: String,
    /// The socket's own inode (`socket:[N]` in its holders' fd tables).
    socket: u32,
    /// The socket file's device (the kernel's encoding: major above bit
    /// 20) and inode.
    file: Option<(u32, u32)>,
}

/// The filesystem paths (absolute: as bound, or found for one bound at a
/// relative path) of the unix sockets of this network namespace that can
/// take a new peer or datagram (see the module doc).
pub fn reachable_socket_paths() -> io::Result<Vec<String>> {
    let sock = rustix::net::socket_with(
        AddressFamily::NETLINK,
        SocketType::DGRAM,
        SocketFlags::CLOEXEC,
        Some(netlink::SOCK_DIAG),
    )?;
    rustix::net::send(&sock, &request(), SendFlags::empty())?;
    let mut found = Vec::new();
    let mut relative = Vec::new();
    let mut buf = vec![0u8; 32 << 10];
    loop {
        let (n, whole) = rustix::net::recv(&sock, &mut buf, RecvFlags::TRUNC)?;
        if whole > n {
            return Err(io::Error::other(
                "a sock_diag answer larger than its buffer",
            ));
        }
        if parse(&buf[..n], &mut found, &mut relative)? {
            found.extend(locate(relative));
            return Ok(found);
        }
    }
}

/// Where the sockets bound at relative paths are: each name joined to the
/// working directory of a process holding the socket, kept where that
/// path is the socket's very file. Reads every process's fd table, but
/// only while a socket bound at a relative path exists (rare: almost every
/// program binds an absolute path).
fn locate(relative: Vec<Relative>) -> Vec<String> {
    use std::collections::HashMap;
    let mut wanted: HashMap<String, Relative> = relative
        .into_iter()
        .filter(|r| r.file.is_some())
        .map(|r| (format!("socket:[{}]", r.socket), r))
        .collect();
    let mut found = Vec::new();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return found;
    };
    for proc in procs.filter_map(Result::ok) {
        if wanted.is_empty() {
            break;
        }
        let dir = proc.path();
        if !proc
            .file_name()
            .to_string_lossy()
            .bytes()
            .all(|b| b.is_ascii_digit())
        {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(dir.join("fd")) else {
            continue;
        };
        for fd in fds.filter_map(Result::ok) {
            let Ok(link) = std::fs::read_link(fd.path()) else {
                continue;
            };
            let Some(r) = link.to_str().and_then(|l| wanted.get(l)) else {
                continue;
            };
            let Ok(cwd) = std::fs::read_link(dir.join("cwd")) else {
                continue;
            };
            let path = cwd.join(&r.name);
            if is_file(&path, r.file) {
                found.push(path.to_string_lossy().into_owned());
                wanted.remove(link.to_str().unwrap_or_default());
            }
        }
    }
    found
}

/// Is `path` (in this mount namespace) the socket file `file`?
fn is_file(path: &std::path::Path, file: Option<(u32, u32)>) -> bool {
    let (Some((dev, ino)), Ok(st)) = (file, rustix::fs::lstat(path)) else {
        return false;
    };
    u64::from(ino) == st.st_ino
        && rustix::fs::major(st.st_dev) == dev >> 20
        && rustix::fs::minor(st.st_dev) == dev & ((1 << 20) - 1)
}

/// A dump request for every unix socket in state LISTEN, CLOSE or
/// ESTABLISHED, with its name and its file's device and inode.
fn request() -> [u8; HEADER + 24] {
    let mut m = [0u8; HEADER + 24];
    m[0..4].copy_from_slice(&((HEADER + 24) as u32).to_ne_bytes());
    m[4..6].copy_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    m[6..8].copy_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    // struct unix_diag_req: family, protocol, pad, states, ino, show,
    // cookie.
    m[HEADER] = libc::AF_UNIX as u8;
    let states = [TCP_LISTEN, TCP_CLOSE, TCP_ESTABLISHED]
        .iter()
        .fold(0u32, |all, s| all | 1 << s);
    m[HEADER + 4..HEADER + 8].copy_from_slice(&states.to_ne_bytes());
    m[HEADER + 12..HEADER + 16].copy_from_slice(&(UDIAG_SHOW_NAME | UDIAG_SHOW_VFS).to_ne_bytes());
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

/// Add the absolute paths one datagram of the answer names to `found`, and
/// the sockets bound at relative paths to `relative`; true once the dump
/// is done. A malformed message is an error, not a short list.
fn parse(
    datagram: &[u8],
    found: &mut Vec<String>,
    relative: &mut Vec<Relative>,
) -> io::Result<bool> {
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
                if len < HEADER + DIAG_MSG {
                    return Err(malformed());
                }
                // struct unix_diag_msg: family, type, state, ...
                let (kind, state) = (datagram[at + HEADER + 1], datagram[at + HEADER + 2]);
                if state == TCP_ESTABLISHED && i32::from(kind) != libc::SOCK_DGRAM {
                    at += align4(len);
                    continue;
                }
                let socket = u32_at(datagram, at + HEADER + 4).ok_or_else(malformed)?;
                let (mut name, mut file) = (None, None);
                let mut attr = at + HEADER + DIAG_MSG;
                while attr + 4 <= end {
                    let alen = u16_at(datagram, attr).ok_or_else(malformed)? as usize;
                    let atype = u16_at(datagram, attr + 2).ok_or_else(malformed)?;
                    if alen < 4 || attr + alen > end {
                        return Err(malformed());
                    }
                    match atype {
                        // An abstract name begins with a NUL; a path is
                        // sent with the NUL it was bound with.
                        UNIX_DIAG_NAME => {
                            let bytes = &datagram[attr + 4..attr + alen];
                            name = bytes.split(|b| *b == 0).next();
                        }
                        // struct unix_diag_vfs: inode, device.
                        UNIX_DIAG_VFS => {
                            let ino = u32_at(datagram, attr + 4).ok_or_else(malformed)?;
                            let dev = u32_at(datagram, attr + 8).ok_or_else(malformed)?;
                            file = Some((dev, ino));
                        }
                        _ => {}
                    }
                    attr += align4(alen);
                }
                match name {
                    Some(n) if n.first() == Some(&b'/') => {
                        found.push(String::from_utf8_lossy(n).into_owned())
                    }
                    Some(n) if !n.is_empty() => relative.push(Relative {
                        name: String::from_utf8_lossy(n).into_owned(),
                        socket,
                        file,
                    }),
                    _ => {}
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
    fn sockets_that_take_peers_are_listed_and_stream_connections_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = |n: &str| dir.path().join(n).to_str().unwrap().to_string();
        let listener = UnixListener::bind(path("listening")).unwrap();
        // A datagram server a client has connected to is ESTABLISHED and
        // still takes anyone's datagrams.
        let _server = UnixDatagram::bind(path("datagrams")).unwrap();
        let client = UnixDatagram::unbound().unwrap();
        client.connect(path("datagrams")).unwrap();
        // A stream connection outlives its listener and still carries the
        // path, where nobody can connect any more.
        let gone = UnixListener::bind(path("gone")).unwrap();
        let _client = UnixStream::connect(path("gone")).unwrap();
        let _accepted = gone.accept().unwrap();
        drop(gone);
        let _open = UnixStream::connect(path("listening")).unwrap();
        let _accepted_too = listener.accept().unwrap();
        let all = reachable_socket_paths().unwrap();
        let mut mine: Vec<_> = all
            .iter()
            .filter(|p| p.starts_with(dir.path().to_str().unwrap()))
            .cloned()
            .collect();
        mine.sort();
        assert_eq!(
            mine,
            [path("datagrams"), path("listening")],
            "listed: {all:?}"
        );
    }

    /// A socket bound at a relative path, by a process whose working
    /// directory is where it bound it, is listed by its absolute path.
    #[test]
    fn a_socket_bound_at_a_relative_path_is_found_where_it_is() {
        use std::io::{BufRead, Write};
        let dir = tempfile::tempdir().unwrap();
        let deep = dir.path().join("deep");
        std::fs::create_dir(&deep).unwrap();
        let mut binder = std::process::Command::new("python3")
            .args([
                "-c",
                "import socket, sys\n\
                 s = socket.socket(socket.AF_UNIX)\n\
                 s.bind('rel.sock')\n\
                 s.listen()\n\
                 print('bound', flush=True)\n\
                 sys.stdin.read()\n",
            ])
            .current_dir(&deep)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(binder.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line, "bound\n");
        let want = std::fs::canonicalize(&deep).unwrap().join("rel.sock");
        let listed = reachable_socket_paths().unwrap();
        // Done with it before asserting, so that a failure leaves nothing.
        binder.stdin.take().unwrap().write_all(b"").unwrap();
        binder.wait().unwrap();
        assert!(
            listed.iter().any(|p| std::path::Path::new(p) == want),
            "{} not in {listed:?}",
            want.display()
        );
    }

    #[test]
    fn a_malformed_answer_is_an_error() {
        let mut found = Vec::new();
        // A header that claims more than the datagram holds.
        let mut m = [0u8; HEADER];
        m[0..4].copy_from_slice(&64u32.to_ne_bytes());
        assert!(parse(&m, &mut found, &mut Vec::new()).is_err());
        // An error message carries the errno, negated.
        let mut e = [0u8; HEADER + 4];
        e[0..4].copy_from_slice(&((HEADER + 4) as u32).to_ne_bytes());
        e[4..6].copy_from_slice(&NLMSG_ERROR.to_ne_bytes());
        e[HEADER..].copy_from_slice(&(-libc::ENOENT).to_ne_bytes());
        let err = parse(&e, &mut found, &mut Vec::new()).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOENT));
    }
}
