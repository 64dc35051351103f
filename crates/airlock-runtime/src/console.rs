//! A terminal for a foreground `run` or `exec -t` that was given no
//! `--console-socket`, as runc gives one: the runtime makes the console
//! socket itself, takes the terminal's master the container's runner
//! sends there, and relays between it and its own stdio until the
//! container's side of the terminal is closed. (podman and containerd
//! always pass a socket; a person following runc's `runc spec` and `runc
//! run` does not.)
//!
//! Our own terminal, when stdin is one, is put in raw mode meanwhile, so
//! the container's line discipline does the echo and the job-control
//! keys; its window size is copied to the container's terminal at the
//! start and whenever it changes.

use crate::commands::Result;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

/// A listening console socket in a directory of its own (mode 0700) under
/// the runtime's state root, removed when dropped.
pub struct Console {
    dir: PathBuf,
    path: PathBuf,
    listener: OwnedFd,
}

impl Console {
    pub fn new(root: &Path) -> Result<Console> {
        use std::os::unix::fs::DirBuilderExt;
        sweep(root);
        let failed =
            |what: &str, e: std::io::Error| format!("the terminal's console socket: {what}: {e}");
        let dir = (0..)
            .map(|n| root.join(format!(".console-{}-{n}", std::process::id())))
            .find(|d| !d.exists())
            .expect("a free name");
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(|e| failed(&dir.display().to_string(), e))?;
        let console = |path: PathBuf| -> std::io::Result<Console> {
            let listener = rustix::net::socket_with(
                rustix::net::AddressFamily::UNIX,
                rustix::net::SocketType::STREAM,
                rustix::net::SocketFlags::CLOEXEC | rustix::net::SocketFlags::NONBLOCK,
                None,
            )?;
            let (addr, _dir_fd) = airlock::terminal::console_socket_address(&path)?;
            rustix::net::bind(&listener, &addr)?;
            rustix::net::listen(&listener, 1)?;
            Ok(Console {
                dir: dir.clone(),
                path,
                listener,
            })
        };
        console(dir.join("sock")).map_err(|e| {
            let _ = std::fs::remove_dir_all(&dir);
            failed("listen", e)
        })
    }

    /// What to give the runner as `--console-socket`.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Relay between the terminal the runner sends (or has sent) and our
    /// stdio, in threads of their own, from now until [`Relay::finish`].
    pub fn relay(self, size: Option<(u16, u16)>) -> Relay {
        let raw = airlock::terminal::RawMode::enter();
        let stop = Arc::new(AtomicBool::new(false));
        let (done_tx, done) = mpsc::channel();
        let watch = stop.clone();
        let relayed = Arc::new(AtomicU64::new(0));
        let counted = relayed.clone();
        let dir = self.dir.clone();
        std::thread::spawn(move || {
            let master = self.accept(&watch);
            // Its path has served once the runner connected.
            drop(self);
            if let Some(master) = master {
                relay(master, size, &counted);
            }
            let _ = done_tx.send(());
        });
        Relay {
            stop,
            done,
            relayed,
            dir,
            _raw: raw,
        }
    }

    /// The terminal's master, once the runner has connected and sent it;
    /// `None` if `stop` came first (the container was never made).
    fn accept(&self, stop: &AtomicBool) -> Option<OwnedFd> {
        use rustix::event::{poll, PollFd, PollFlags, Timespec};
        let wait = Timespec {
            tv_sec: 0,
            tv_nsec: 100_000_000,
        };
        let now = Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        loop {
            // Told to stop, one more look: a process that ended at once
            // (`exec -t x cat /etc/hostname`) had its runner connect and
            // send the terminal before this thread first looked, and its
            // whole output went unread.
            let stopping = stop.load(Ordering::Relaxed);
            let mut fds = [PollFd::new(&self.listener, PollFlags::IN)];
            let timeout = if stopping { &now } else { &wait };
            if poll(&mut fds, Some(timeout)).is_ok_and(|n| n > 0) {
                let conn =
                    rustix::net::accept_with(&self.listener, rustix::net::SocketFlags::CLOEXEC)
                        .ok()?;
                // The message came with the connection, or comes at once.
                let _ = rustix::io::ioctl_fionbio(&conn, false);
                return airlock::terminal::receive_terminal(&conn).ok();
            }
            if stopping {
                return None;
            }
        }
    }
}

/// Take away the console directories of runtimes that are gone (killed
/// during a foreground run: their `Drop` never ran), which nothing else
/// in the state root would ever remove.
fn sweep(root: &Path) {
    for e in std::fs::read_dir(root).into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(".console-")
            .and_then(|rest| rest.split('-').next())
            .and_then(|p| p.parse().ok())
            .and_then(rustix::process::Pid::from_raw)
        else {
            continue;
        };
        if rustix::process::test_kill_process(pid) == Err(rustix::io::Errno::SRCH) {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The relay's threads, and our terminal's modes to put back. Dropped
/// (a failed start), it stops waiting for a terminal and takes the
/// socket's directory away.
pub struct Relay {
    stop: Arc<AtomicBool>,
    done: mpsc::Receiver<()>,
    /// Bytes written out so far.
    relayed: Arc<AtomicU64>,
    dir: PathBuf,
    _raw: Option<airlock::terminal::RawMode>,
}

impl Relay {
    /// Once the container's process has ended: what its terminal still
    /// holds is written out while it goes on (a slow stdout, a terminal
    /// over a slow link, took only its first second's worth), until a
    /// second passes with nothing or [`FINISH_AT_MOST`] in all (a process
    /// left behind may hold the terminal open, and write for ever); then
    /// our terminal's modes are put back.
    pub fn finish(self) {
        self.stop.store(true, Ordering::Relaxed);
        let until = std::time::Instant::now() + FINISH_AT_MOST;
        let mut seen = self.relayed.load(Ordering::Relaxed);
        while let Err(mpsc::RecvTimeoutError::Timeout) =
            self.done.recv_timeout(Duration::from_secs(1))
        {
            let now = self.relayed.load(Ordering::Relaxed);
            if now == seen || std::time::Instant::now() >= until {
                return;
            }
            seen = now;
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The longest [`Relay::finish`] goes on writing out after the process.
const FINISH_AT_MOST: Duration = Duration::from_secs(10);

/// What one write to our stdout takes at most: a pipe takes a write of up
/// to this much whole or not at all, so that each one done is progress
/// `finish` sees (one of 16 KiB into a pipe read at 1 KiB/s took 16 s).
const WRITE_PIECE: usize = 4096;

/// Copy our stdin to `master` (in a thread of its own) and `master` to
/// our stdout until the container's side is closed, keeping its window
/// size our terminal's.
fn relay(master: OwnedFd, size: Option<(u16, u16)>, relayed: &AtomicU64) {
    let ours = airlock::terminal::size();
    if let Some((rows, cols)) = ours.or(size) {
        let _ = airlock::terminal::set_size(&master, rows, cols);
    }
    if let Ok(input) = master.try_clone() {
        std::thread::spawn(move || copy_input(input));
    }
    let mut shown = ours;
    // Written to the fd itself: std's line buffer would count bytes as
    // gone out that it only holds.
    let out = rustix::stdio::stdout();
    let mut buf = [0u8; 16384];
    loop {
        use rustix::event::{poll, PollFd, PollFlags, Timespec};
        let wait = Timespec {
            tv_sec: 0,
            tv_nsec: 200_000_000,
        };
        let mut fds = [PollFd::new(&master, PollFlags::IN)];
        let ready = poll(&mut fds, Some(&wait)).unwrap_or(0);
        // A window resized since: the container's terminal follows (its
        // foreground process gets SIGWINCH from the kernel).
        let now = airlock::terminal::size();
        if now.is_some() && now != shown {
            shown = now;
            if let Some((rows, cols)) = now {
                let _ = airlock::terminal::set_size(&master, rows, cols);
            }
        }
        if ready == 0 {
            continue;
        }
        // EIO: every process of the container's side has closed it.
        match rustix::io::read(&master, &mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                // Counted as it goes out, for `finish` to see a slow
                // stdout still taking it.
                let mut rest = &buf[..n];
                while !rest.is_empty() {
                    match rustix::io::write(out, &rest[..rest.len().min(WRITE_PIECE)]) {
                        Ok(0) => return,
                        Ok(k) => {
                            rest = &rest[k..];
                            relayed.fetch_add(k as u64, Ordering::Relaxed);
                        }
                        Err(rustix::io::Errno::INTR) => {}
                        Err(_) => return,
                    }
                }
            }
        }
    }
}

/// Our stdin to the container's terminal. Input from a pipe ends with
/// the terminal's end-of-file character, or a process reading the
/// terminal would wait for more for ever.
fn copy_input(master: OwnedFd) {
    // As a File: std's write_all goes on after EINTR and short writes.
    let mut master = std::fs::File::from(master);
    let mut stdin = std::io::stdin().lock();
    let mut buf = [0u8; 4096];
    let mut last = b'\n';
    loop {
        match stdin.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                last = buf[n - 1];
                if master.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    if !rustix::termios::isatty(rustix::stdio::stdin()) {
        if let Some(eof) = airlock::terminal::end_of_input(master.as_fd(), last) {
            let _ = master.write_all(&eof);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A terminal the runner sent before the relay's thread first looked
    /// (a process that ended at once) is taken even once the relay is
    /// told to stop: it was taken for "no terminal came", and the
    /// process's whole output went unread.
    #[test]
    fn a_terminal_sent_before_the_first_look_is_taken_when_told_to_stop() {
        let dir = tempfile::tempdir().unwrap();
        let console = Console::new(dir.path()).unwrap();
        let conn = std::os::unix::net::UnixStream::connect(console.path()).unwrap();
        let null = std::fs::File::open("/dev/null").unwrap();
        let fds = [null.as_fd()];
        let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut ancillary = rustix::net::SendAncillaryBuffer::new(&mut space);
        assert!(ancillary.push(rustix::net::SendAncillaryMessage::ScmRights(&fds)));
        rustix::net::sendmsg(
            &conn,
            &[std::io::IoSlice::new(b"t")],
            &mut ancillary,
            rustix::net::SendFlags::empty(),
        )
        .unwrap();
        let stop = AtomicBool::new(true);
        assert!(console.accept(&stop).is_some());
        // With nothing sent, the stop is taken at once.
        let console = Console::new(dir.path()).unwrap();
        assert!(console.accept(&stop).is_none());
    }
}
