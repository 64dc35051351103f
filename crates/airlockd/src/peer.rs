//! Who is calling: the peer's credentials, read from the socket
//! (SO_PEERCRED, SO_PEERGROUPS) when the connection is accepted, and the
//! socket itself, made root:GROUP with the configured mode.
//!
//! tonic's own unix-socket stream carries SO_PEERCRED but not the
//! supplementary groups, which decide whether a user in the configured
//! group may connect; hence this wrapper around tokio's `UnixStream`.

use crate::quota::{Place, Quota};
use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::UnixStream;
use tonic::transport::server::Connected;

/// The credentials of the process at the other end of a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub uid: u32,
    pub gid: u32,
    pub pid: i32,
    /// Supplementary groups.
    pub groups: Vec<u32>,
}

impl Peer {
    pub fn is_root(&self) -> bool {
        self.uid == 0
    }

    pub fn in_group(&self, gid: u32) -> bool {
        self.gid == gid || self.groups.contains(&gid)
    }
}

/// What tonic hands each request of a connection (its extensions).
#[derive(Debug, Clone)]
pub struct PeerInfo(pub Option<Peer>);

/// An accepted connection and its peer's credentials.
pub struct PeerStream {
    inner: UnixStream,
    peer: Option<Peer>,
    /// The caller's place under `max_connections_per_caller` (root: none).
    _place: Option<Place>,
}

impl PeerStream {
    /// The connection `inner` with its peer's credentials, holding one
    /// of its caller's `max` places in `open` (root: no limit); None,
    /// the connection closed, when the caller holds all of them already.
    ///
    /// Each connection is a file descriptor of the daemon's, and the
    /// kernel's limit on those is the daemon's, shared by every caller.
    pub fn admit(inner: UnixStream, open: &Quota, max: usize) -> Option<PeerStream> {
        // Nobody could be counted, nor allowed a call.
        let peer = credentials(&inner).ok()?;
        let place = match peer.is_root() {
            true => None,
            false => match open.take(peer.uid, max) {
                Ok(place) => Some(place),
                Err(n) => {
                    if REFUSALS.note() {
                        tracing::warn!(
                            uid = peer.uid,
                            pid = peer.pid,
                            "connection closed: uid {} has {n} connections open, max_connections_per_caller",
                            peer.uid
                        );
                    }
                    return None;
                }
            },
        };
        Some(PeerStream {
            inner,
            peer: Some(peer),
            _place: place,
        })
    }
}

/// Refused connections are logged once a second at most: a caller that
/// connects in a loop would otherwise flood the log (and, under journald,
/// have the daemon's other messages dropped by its rate limit).
static REFUSALS: Throttle = Throttle(std::sync::atomic::AtomicU64::new(0));

struct Throttle(std::sync::atomic::AtomicU64);

impl Throttle {
    /// Whether to log now: true at most once per second.
    fn note(&self) -> bool {
        use std::sync::atomic::Ordering;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let last = self.0.load(Ordering::Relaxed);
        now != last
            && self
                .0
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }
}

fn credentials(s: &UnixStream) -> io::Result<Peer> {
    let cred = s.peer_cred()?;
    Ok(Peer {
        uid: cred.uid(),
        gid: cred.gid(),
        pid: cred.pid().unwrap_or(0),
        // Without SO_PEERGROUPS (an old kernel), no supplementary groups.
        groups: peer_groups(s).unwrap_or_default(),
    })
}

/// SO_PEERGROUPS: the peer's supplementary groups when it connected.
fn peer_groups(s: &UnixStream) -> io::Result<Vec<u32>> {
    let mut groups = vec![0u32; 64];
    loop {
        let mut len = (groups.len() * 4) as libc::socklen_t;
        // SAFETY: the buffer is `len` bytes of writable, properly aligned
        // u32 storage that outlives the call; the kernel writes at most
        // `len` bytes and sets `len` to what it wrote (or needs).
        let r = unsafe {
            libc::getsockopt(
                s.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_PEERGROUPS,
                groups.as_mut_ptr().cast(),
                &mut len,
            )
        };
        let needed = len as usize / 4;
        if r == 0 {
            groups.truncate(needed);
            return Ok(groups);
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::ERANGE) && needed > groups.len() {
            groups.resize(needed, 0);
            continue;
        }
        return Err(e);
    }
}

impl Connected for PeerStream {
    type ConnectInfo = PeerInfo;

    fn connect_info(&self) -> PeerInfo {
        PeerInfo(self.peer.clone())
    }
}

impl AsyncRead for PeerStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for PeerStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// The gid of group `name` (a number, or a name in the C library's group
/// database: /etc/group, or LDAP and sssd through NSS).
pub fn group_id(name: &str) -> Option<u32> {
    if let Ok(gid) = name.parse() {
        return Some(gid);
    }
    let cname = std::ffi::CString::new(name).ok()?;
    let mut buf = vec![0u8; 4096];
    loop {
        // SAFETY: a zeroed group is a valid value of this plain C struct
        // (null pointers, zero gid); getgrnam_r fills it.
        let mut gr: libc::group = unsafe { std::mem::zeroed() };
        let mut found: *mut libc::group = std::ptr::null_mut();
        // SAFETY: every pointer is to live storage of ours (`buf` of
        // `buf.len()` bytes for the strings and member list); getgrnam_r
        // is the reentrant form, safe from any thread.
        let r = unsafe {
            libc::getgrnam_r(
                cname.as_ptr(),
                &mut gr,
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut found,
            )
        };
        if r == libc::ERANGE && buf.len() < 1 << 24 {
            buf.resize(buf.len() * 2, 0);
            continue;
        }
        return (r == 0 && !found.is_null()).then_some(gr.gr_gid);
    }
}

/// Bind the API socket at `path`: a stale socket from a daemon that died
/// is replaced, a live one (another daemon answering) is an error. The
/// socket gets `mode` and, with a group, is chowned root:group.
pub fn bind(path: &Path, mode: u32, gid: Option<u32>) -> anyhow::Result<tokio::net::UnixListener> {
    if let Some(dir) = path.parent() {
        if !dir.exists() {
            std::fs::create_dir_all(dir)?;
            // Traversable, not listable: group members reach the socket.
            std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o711))?;
        }
    }
    if std::os::unix::net::UnixStream::connect(path).is_ok() {
        anyhow::bail!(
            "{}: another airlockd is listening there already",
            path.display()
        );
    }
    use std::os::unix::fs::FileTypeExt;
    if let Ok(m) = std::fs::symlink_metadata(path) {
        if !m.file_type().is_socket() {
            anyhow::bail!("{}: exists and is not a socket", path.display());
        }
    }
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => anyhow::bail!("remove the stale socket {}: {e}", path.display()),
    }
    // Bound with no access at all, then opened up: nobody connects in
    // between with permissions the umask happened to give.
    let old = rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o777));
    let bound = tokio::net::UnixListener::bind(path);
    rustix::process::umask(old);
    let listener = bound.map_err(|e| anyhow::anyhow!("bind {}: {e}", path.display()))?;
    if let Some(gid) = gid {
        std::os::unix::fs::chown(path, Some(0), Some(gid))
            .map_err(|e| anyhow::anyhow!("chown {}: {e}", path.display()))?;
    }
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(mode))
        .map_err(|e| anyhow::anyhow!("chmod {}: {e}", path.display()))?;
    Ok(listener)
}

#[cfg(test)]
mod tests {
    #[test]
    fn root_group_is_zero() {
        assert_eq!(super::group_id("root"), Some(0));
        assert_eq!(super::group_id("1234"), Some(1234));
        assert_eq!(super::group_id("no-such-group-airlock"), None);
    }

    #[tokio::test]
    async fn credentials_of_our_own_connection() {
        let (a, _b) = tokio::net::UnixStream::pair().unwrap();
        let p = super::credentials(&a).unwrap();
        assert_eq!(p.uid, rustix::process::geteuid().as_raw());
        assert_eq!(p.pid as u32, std::process::id());
    }
}
