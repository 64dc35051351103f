//! A detached workload's stdout and stderr: two pipes the supervisor
//! drains into `stdout.log` and `stderr.log` in the sandbox's directory.
//! Each file is bounded: when it reaches the limit it becomes `NAME.log.1`
//! (replacing the previous one) and a new file starts, so a chatty
//! workload costs at most twice the limit per stream.

use super::report::{SetupError, StepExt};
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

pub struct Stream {
    pub read: OwnedFd,
    /// Still has a writer: polled.
    pub open: bool,
    path: PathBuf,
    file: File,
    written: u64,
}

pub struct Logs {
    pub streams: Vec<Stream>,
    /// The workload's ends, until they are handed to PID 1.
    writers: Vec<OwnedFd>,
    limit: u64,
}

fn open_log(path: &Path) -> std::io::Result<File> {
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
        .open(path)
}

impl Logs {
    pub fn create(dir: &Path, limit: u64) -> Result<Logs, SetupError> {
        let mut streams = Vec::new();
        let mut writers = Vec::new();
        for name in ["stdout", "stderr"] {
            let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
                .step(|| format!("pipe for {name}"))?;
            let path = dir.join(format!("{name}.log"));
            let file = open_log(&path).step(|| format!("create {}", path.display()))?;
            streams.push(Stream {
                read: r,
                open: true,
                path,
                file,
                written: 0,
            });
            writers.push(w);
        }
        Ok(Logs {
            streams,
            writers,
            limit: limit.max(4096),
        })
    }

    /// In PID 1: the pipes become stdout and stderr, /dev/null stdin.
    pub fn attach_stdio(&self) -> std::io::Result<()> {
        let null = rustix::fs::open(
            "/dev/null",
            rustix::fs::OFlags::RDWR,
            rustix::fs::Mode::empty(),
        )?;
        let mut stdin = unsafe_stdio(0);
        rustix::io::dup2(&null, &mut stdin)?;
        for (i, w) in self.writers.iter().enumerate() {
            let mut target = unsafe_stdio(i as i32 + 1);
            rustix::io::dup2(w, &mut target)?;
        }
        Ok(())
    }

    /// In the supervisor, once PID 1 holds the write ends.
    pub fn close_writers(&mut self) {
        self.writers.clear();
    }

    /// Copy what is waiting on stream `i` into its file. Returns false at
    /// end-of-file (every writer is gone).
    pub fn drain(&mut self, i: usize) -> bool {
        let limit = self.limit;
        let s = &mut self.streams[i];
        let mut buf = [0u8; 16384];
        match rustix::io::read(&s.read, &mut buf) {
            Ok(0) => {
                s.open = false;
                false
            }
            Ok(n) => {
                if s.written + n as u64 > limit {
                    let old = s.path.with_extension("log.1");
                    let _ = std::fs::rename(&s.path, old);
                    if let Ok(f) = open_log(&s.path) {
                        s.file = f;
                    }
                    s.written = 0;
                }
                // A full disk loses log lines, never the workload.
                let _ = s.file.write_all(&buf[..n]);
                s.written += n as u64;
                true
            }
            Err(rustix::io::Errno::INTR) | Err(rustix::io::Errno::AGAIN) => true,
            Err(_) => {
                s.open = false;
                false
            }
        }
    }

    /// The streams that still have a writer, with their index.
    pub fn open_fds(&self) -> impl Iterator<Item = (usize, std::os::fd::BorrowedFd<'_>)> {
        self.streams
            .iter()
            .enumerate()
            .filter(|(_, s)| s.open)
            .map(|(i, s)| (i, s.read.as_fd()))
    }
}

/// A handle on stdio fd `n` to dup onto; never closed through this handle.
fn unsafe_stdio(n: i32) -> std::mem::ManuallyDrop<OwnedFd> {
    use std::os::fd::FromRawFd;
    // SAFETY: fds 0-2 are open in the runner (the caller gave it /dev/null
    // at least); ManuallyDrop keeps this handle from closing them.
    std::mem::ManuallyDrop::new(unsafe { OwnedFd::from_raw_fd(n) })
}
