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
struct Relative {
    /// As bound: bytes, which need not be UTF-8.
    name: Vec<u8>,
    /// The socket's own inode (`socket:[N]` in its holders' fd tables).
    socket: u32,
    /// The socket file's inode (its low 32 bits, all sock_diag gives).
    file: Option<u32>,
}

/// The kernel's own encoding of a device number (20 bits of minor), as
/// sock_diag gives it, written as the mount table writes it.
fn kernel_dev(dev: u32) -> String {
    format!("{}:{}", dev >> 20, dev & 0xf_ffff)
}

/// A unix socket as listed: the path it was bound at (absolute: as bound,
/// or found for one bound at a relative path), and the device of the
/// filesystem its file is on (`MAJ:MIN`, as the mount table writes it;
/// `None` where the kernel did not say).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Listed {
    pub path: String,
    pub dev: Option<String>,
}

/// The unix sockets of this network namespace that can take a new peer
/// or datagram (see the module doc).
pub fn reachable_sockets() -> io::Result<Vec<Listed>> {
    use std::os::fd::AsFd;
    let kept = HOST_VIEW.lock().unwrap_or_else(|e| e.into_inner());
    let own;
    let sock = match kept.as_ref() {
        Some(kept) => kept.as_fd(),
        None => {
            own = diag_socket()?;
            own.as_fd()
        }
    };
    rustix::net::send(sock, &request(), SendFlags::empty())?;
    let mut found = Vec::new();
    let mut relative = Vec::new();
    let mut buf = vec![0u8; 32 << 10];
    loop {
        let (n, whole) = rustix::net::recv(sock, &mut buf, RecvFlags::TRUNC)?;
        if whole > n {
            return Err(io::Error::other(
                "a sock_diag answer larger than its buffer",
            ));
        }
        if parse(&buf[..n], &mut found, &mut relative)? {
            found.extend(
                locate(relative)
                    .into_iter()
                    .map(|path| Listed { path, dev: None }),
            );
            return Ok(found);
        }
    }
}

fn diag_socket() -> io::Result<std::os::fd::OwnedFd> {
    Ok(rustix::net::socket_with(
        AddressFamily::NETLINK,
        SocketType::DGRAM,
        SocketFlags::CLOEXEC,
        Some(netlink::SOCK_DIAG),
    )?)
}

/// A sock_diag socket of the host's network namespace, which a netlink
/// socket keeps whatever namespace its holder moves to.
static HOST_VIEW: std::sync::Mutex<Option<std::os::fd::OwnedFd>> = std::sync::Mutex::new(None);

/// From now on, list the sockets of this network namespace, whatever
/// namespace the caller (or a child it forks) is in when it asks. The
/// supervisor calls it before it clones PID 1 into the sandbox's new
/// network namespace: PID 1's re-check of a bind source it opens (a
/// rootless caller's, an overlay's layers) must see the host's sockets,
/// where the source leads, not its own namespace's (none), or a link
/// swapped to /tmp after the check would show the caller's sockets there
/// (a tmux server's, an ssh agent's) to the workload unjudged.
pub fn keep_host_view() -> io::Result<()> {
    let mut kept = HOST_VIEW.lock().unwrap_or_else(|e| e.into_inner());
    if kept.is_none() {
        *kept = Some(diag_socket()?);
    }
    Ok(())
}

/// Let go of the socket [`keep_host_view`] kept: PID 1, once its mounts
/// are made, holds nothing of the host's.
pub fn forget_host_view() {
    HOST_VIEW.lock().unwrap_or_else(|e| e.into_inner()).take();
}

/// Where the sockets bound at relative paths are: each name joined to the
/// working directory of a process holding the socket (in this mount
/// namespace: another's paths are not ours, and looking one up here could
/// wait on whatever is mounted there), kept where that path is the
/// socket's very file. Reads every process's fd table, but only while a
/// socket bound at a relative path exists (rare: almost every program
/// binds an absolute path), and once per socket in a process (airlockd
/// judges many sandboxes): the answer, found or not, is kept while the
/// socket is listed. Only each process's main thread is looked at.
fn locate(relative: Vec<Relative>) -> Vec<String> {
    use std::collections::HashMap;
    use std::sync::Mutex;
    /// By (socket inode, file inode): where it was found, if it was.
    type Found = HashMap<Key, Option<String>>;
    static KEPT: Mutex<Option<Found>> = Mutex::new(None);
    // What root found (in another user's fds) is not a caller's to be
    // told, nor what a caller could not find root's answer.
    if super::as_caller::active() {
        let wanted: HashMap<String, (Key, &[u8])> = relative
            .iter()
            .filter_map(|r| {
                Some((
                    format!("socket:[{}]", r.socket),
                    ((r.socket, r.file?), r.name.as_slice()),
                ))
            })
            .collect();
        return holders_paths(wanted)
            .into_iter()
            .filter_map(|(_, p)| p)
            .collect();
    }
    let mut kept = KEPT.lock().unwrap_or_else(|e| e.into_inner());
    let kept = kept.get_or_insert_with(HashMap::new);
    let listed: Vec<(Key, Vec<u8>)> = relative
        .into_iter()
        .filter_map(|r| Some(((r.socket, r.file?), r.name)))
        .collect();
    // Sockets gone since are forgotten: an inode number can come back.
    kept.retain(|key, _| listed.iter().any(|(k, _)| k == key));
    let wanted: HashMap<String, (Key, &[u8])> = listed
        .iter()
        .filter(|(key, _)| !kept.contains_key(key))
        .map(|(key, name)| (format!("socket:[{}]", key.0), (*key, name.as_slice())))
        .collect();
    if !wanted.is_empty() {
        kept.extend(holders_paths(wanted));
    }
    listed
        .iter()
        .filter_map(|(key, _)| kept.get(key).cloned().flatten())
        .collect()
}

/// A socket bound at a relative path: its own inode and its file's.
type Key = (u32, u32);

/// For each wanted socket (by its `socket:[N]` link: its key and name),
/// the path beside a holder's working directory that is its file, or
/// `None`.
fn holders_paths(
    mut wanted: std::collections::HashMap<String, (Key, &[u8])>,
) -> Vec<(Key, Option<String>)> {
    use std::os::unix::ffi::OsStrExt;
    let mut out = Vec::new();
    let ns =
        |dir: &std::path::Path| rustix::fs::stat(dir.join("ns/mnt")).map(|s| (s.st_dev, s.st_ino));
    let ours = ns(std::path::Path::new("/proc/self")).ok();
    if let Ok(procs) = std::fs::read_dir("/proc") {
        for proc in procs.filter_map(Result::ok) {
            if wanted.is_empty() {
                break;
            }
            if !proc.file_name().as_bytes().iter().all(u8::is_ascii_digit) {
                continue;
            }
            let dir = proc.path();
            let Ok(fds) = std::fs::read_dir(dir.join("fd")) else {
                continue;
            };
            for fd in fds.filter_map(Result::ok) {
                let Ok(link) = std::fs::read_link(fd.path()) else {
                    continue;
                };
                let Some(link) = link.to_str() else {
                    continue;
                };
                let Some(&(key, name)) = wanted.get(link) else {
                    continue;
                };
                if ours.is_none() || ns(&dir).ok() != ours {
                    continue;
                }
                let Ok(cwd) = std::fs::read_link(dir.join("cwd")) else {
                    continue;
                };
                if let Some(path) = the_file(&cwd.join(std::ffi::OsStr::from_bytes(name)), key.1) {
                    out.push((key, Some(path)));
                    wanted.remove(link);
                }
            }
        }
    }
    out.extend(wanted.into_values().map(|(key, _)| (key, None)));
    out
}

/// `path`, with its directory resolved, if it is the socket file whose
/// inode's low 32 bits are `ino` (see [`Relative::file`]).
fn the_file(path: &std::path::Path, ino: u32) -> Option<String> {
    let st = rustix::fs::lstat(path).ok()?;
    let socket = rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Socket;
    if !socket || st.st_ino as u32 != ino {
        return None;
    }
    let dir = std::fs::canonicalize(path.parent()?).ok()?;
    Some(dir.join(path.file_name()?).to_string_lossy().into_owned())
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
    found: &mut Vec<Listed>,
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
                let (mut name, mut file, mut dev) = (None, None, None);
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
                        // struct unix_diag_vfs: inode, then device (the
                        // superblock's, which the mount table shows and
                        // `stat` may not, on btrfs subvolumes or some
                        // overlays).
                        UNIX_DIAG_VFS => {
                            file = Some(u32_at(datagram, attr + 4).ok_or_else(malformed)?);
                            dev = u32_at(datagram, attr + 8).map(kernel_dev);
                        }
                        _ => {}
                    }
                    attr += align4(alen);
                }
                match name {
                    Some(n) if n.first() == Some(&b'/') => found.push(Listed {
                        path: String::from_utf8_lossy(n).into_owned(),
                        dev,
                    }),
                    Some(n) if !n.is_empty() => relative.push(Relative {
                        name: n.to_vec(),
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

    fn reachable_socket_paths() -> io::Result<Vec<String>> {
        Ok(reachable_sockets()?.into_iter().map(|l| l.path).collect())
    }

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
        // Each with its file's device, as the mount table writes it for
        // the mount the directory lies on (the last of the deepest).
        let real = std::fs::canonicalize(dir.path()).unwrap();
        let real = real.to_str().unwrap();
        let table = crate::mountinfo::read().unwrap();
        let mut on = (0, "");
        for e in crate::mountinfo::entries(&table) {
            let mp = crate::mountinfo::unescape(e.mount_point);
            let holds = mp == "/" || real == mp || real.starts_with(&format!("{mp}/"));
            if holds && mp.len() >= on.0 {
                on = (mp.len(), e.dev);
            }
        }
        let dev = on.1.to_string();
        let listed = reachable_sockets().unwrap();
        let of = |p: String| listed.iter().find(|l| l.path == p).map(|l| l.dev.clone());
        assert_eq!(of(path("listening")), Some(Some(dev)));
    }

    /// Once the host's view is kept, a thread in a network namespace of
    /// its own (where PID 1 re-checks what it opens) still lists the
    /// host's sockets; without it, it listed its own namespace's, none.
    #[test]
    fn a_kept_host_view_lists_the_hosts_sockets_from_another_network_namespace() {
        if !rustix::process::geteuid().is_root() {
            eprintln!("skipped a_kept_host_view_...: a network namespace needs root");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("host.sock").to_str().unwrap().to_string();
        let _listener = UnixListener::bind(&path).unwrap();
        let listed_elsewhere = || {
            let path = path.clone();
            std::thread::spawn(move || {
                // This thread alone moves (unshare is per thread for a
                // network namespace).
                // SAFETY: only a network namespace is unshared, not the
                // fd table, which is what makes unshare unsafe.
                unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::NEWNET) }
                    .unwrap();
                reachable_socket_paths().unwrap().contains(&path)
            })
            .join()
            .unwrap()
        };
        assert!(!listed_elsewhere(), "the control: its own namespace's");
        keep_host_view().unwrap();
        assert!(listed_elsewhere());
    }

    /// A socket bound at a relative path, by a process whose working
    /// directory is where it bound it, is listed by its absolute path.
    #[test]
    fn a_socket_bound_at_a_relative_path_is_found_where_it_is() {
        use std::os::unix::ffi::OsStrExt;
        let dir = tempfile::tempdir().unwrap();
        let deep = dir.path().join("deep");
        std::fs::create_dir(&deep).unwrap();
        // Everything the child needs is made before the fork: after it, a
        // child of this threaded process may only make system calls.
        let deep_c = std::ffi::CString::new(deep.as_os_str().as_bytes()).unwrap();
        let name = rustix::net::SocketAddrUnix::new("rel.sock").unwrap();
        // Close-on-exec: a process another test thread spawns meanwhile
        // must not keep the child's pipe open.
        let pipe = || rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap();
        let ((ready_r, ready_w), (hold_r, hold_w)) = (pipe(), pipe());
        // SAFETY: the child makes only system calls (close, chdir, socket,
        // bind, listen, write, read, _exit) on data made before the fork.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
        if pid == 0 {
            // The parent's ends: the child waits for `hold_w` to close,
            // which its own copy would prevent.
            drop((ready_r, hold_w));
            let bound = rustix::process::chdir(deep_c.as_c_str()).is_ok()
                && rustix::net::socket(
                    rustix::net::AddressFamily::UNIX,
                    rustix::net::SocketType::STREAM,
                    None,
                )
                .is_ok_and(|s| {
                    let ok =
                        rustix::net::bind(&s, &name).is_ok() && rustix::net::listen(&s, 1).is_ok();
                    std::mem::forget(s);
                    ok
                });
            let _ = rustix::io::write(&ready_w, if bound { b"y" } else { b"n" });
            let _ = rustix::io::read(&hold_r, &mut [0u8; 1]);
            // SAFETY: ends the child without running the parent's atexit
            // handlers or destructors.
            unsafe { libc::_exit(0) };
        }
        drop((ready_w, hold_r));
        let mut said = [0u8; 1];
        let read = rustix::io::read(&ready_r, &mut said);
        let listed = reachable_socket_paths();
        // The child ends when its end of the pipe closes; reaped before
        // any assertion, so that a failure leaves nothing.
        drop(hold_w);
        // SAFETY: waits for the child this test forked.
        unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) };
        assert_eq!(
            (read.unwrap(), said),
            (1, *b"y"),
            "the child could not bind"
        );
        let want = std::fs::canonicalize(&deep).unwrap().join("rel.sock");
        let listed = listed.unwrap();
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
