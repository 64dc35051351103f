//! A detached workload's stdio, on the supervisor's side. Its stdout and
//! stderr are two pipes the supervisor drains into `stdout.log` and
//! `stderr.log` in the sandbox's directory; with a terminal, the
//! terminal's master is drained into `stdout.log` too. Each file is
//! bounded: when it reaches the limit it becomes `NAME.log.1` (replacing
//! the previous one) and a new file starts, so a chatty workload costs at
//! most twice the limit per stream.
//!
//! Each file carries its place in that sequence (the extended attribute
//! [`crate::state::LOG_SEQ_XATTR`], set before a byte is written to it):
//! a reader that fell more than one file behind learns how many were
//! rotated away unread, instead of skipping them without a word.
//!
//! What `attach` writes to is kept here as well: the terminal's master,
//! or else the write end of the workload's stdin pipe (`stdin`), which
//! stays open for as long as the supervisor lives, so the workload never
//! sees end-of-file on stdin while it could still be attached to.

use super::report::{SetupError, StepExt};
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// One bounded log file.
struct LogFile {
    path: PathBuf,
    file: File,
    written: u64,
    /// This file's place among the stream's files (0: the first).
    seq: u64,
}

impl LogFile {
    fn create(path: PathBuf) -> Result<LogFile, SetupError> {
        let file = open_log(&path).step(|| format!("create {}", path.display()))?;
        mark(&file, 0);
        Ok(LogFile {
            path,
            file,
            written: 0,
            seq: 0,
        })
    }

    /// Append `bytes`, first rotating the file if they would take it
    /// past `limit`.
    fn write(&mut self, bytes: &[u8], limit: u64) {
        if self.written + bytes.len() as u64 > limit {
            let old = self.path.with_extension("log.1");
            let _ = std::fs::rename(&self.path, old);
            if let Ok(f) = open_log(&self.path) {
                self.seq += 1;
                mark(&f, self.seq);
                self.file = f;
            }
            self.written = 0;
        }
        // A full disk loses log lines, never the workload.
        let _ = self.file.write_all(bytes);
        self.written += bytes.len() as u64;
    }
}

/// Something the supervisor reads and logs: one of the two pipes, or the
/// terminal's master.
struct Input {
    fd: OwnedFd,
    /// Still has a writer: polled.
    open: bool,
}

/// Which of the logged fds is ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// PID 1's stdout (0) or stderr (1).
    Pipe(usize),
    /// The workload's terminal: its output goes to `stdout.log`.
    Terminal,
}

pub struct Logs {
    pipes: Vec<Input>,
    files: Vec<LogFile>,
    terminal: Option<Input>,
    /// PID 1's ends (stdout, stderr, then stdin's read end), until they
    /// are handed to it.
    pid1_ends: Vec<OwnedFd>,
    /// The write end of the workload's stdin, when it has one.
    stdin: Option<OwnedFd>,
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

/// Give a new log file its place in the sequence: as a user attribute,
/// or, where the file system keeps none (tmpfs before Linux 6.6), as a
/// trusted one if we are root. A rootless supervisor there marks
/// nothing: its readers then cannot tell how many files they missed.
fn mark(f: &File, seq: u64) {
    let value = seq.to_string();
    let set =
        |name| rustix::fs::fsetxattr(f, name, value.as_bytes(), rustix::fs::XattrFlags::empty());
    if set(crate::state::LOG_SEQ_XATTR).is_err() {
        let _ = set(crate::state::LOG_SEQ_TRUSTED);
    }
}

fn pipe(what: &str) -> Result<(OwnedFd, OwnedFd), SetupError> {
    rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).step(|| format!("pipe for {what}"))
}

impl Logs {
    /// The log files in `dir` and the pipes to them; with `stdin`, a pipe
    /// for the workload's stdin too.
    pub fn create(dir: &Path, limit: u64, stdin: bool) -> Result<Logs, SetupError> {
        let mut pipes = Vec::new();
        let mut files = Vec::new();
        let mut pid1_ends = Vec::new();
        for name in ["stdout", "stderr"] {
            let (r, w) = pipe(name)?;
            files.push(LogFile::create(dir.join(format!("{name}.log")))?);
            pipes.push(Input { fd: r, open: true });
            pid1_ends.push(w);
        }
        let stdin = match stdin {
            true => {
                let (r, w) = pipe("stdin")?;
                pid1_ends.push(r);
                Some(w)
            }
            false => None,
        };
        Ok(Logs {
            pipes,
            files,
            terminal: None,
            pid1_ends,
            stdin,
            limit: limit.max(4096),
        })
    }

    /// In PID 1: the pipes become stdout and stderr, and stdin the stdin
    /// pipe or /dev/null. (Dropping `self` afterwards lets go of the
    /// supervisor's end of stdin.)
    pub fn attach_stdio(&self) -> std::io::Result<()> {
        let null;
        let stdin = match self.pid1_ends.get(2) {
            Some(r) => r.as_fd(),
            None => {
                null = rustix::fs::open(
                    "/dev/null",
                    rustix::fs::OFlags::RDWR | rustix::fs::OFlags::CLOEXEC,
                    rustix::fs::Mode::empty(),
                )?;
                null.as_fd()
            }
        };
        rustix::io::dup2(stdin, &mut unsafe_stdio(0))?;
        for (i, w) in self.pid1_ends.iter().take(2).enumerate() {
            rustix::io::dup2(w, &mut unsafe_stdio(i as i32 + 1))?;
        }
        Ok(())
    }

    /// In the supervisor, once PID 1 holds its ends.
    pub fn close_pid1_ends(&mut self) {
        self.pid1_ends.clear();
    }

    /// The workload's terminal (detached, without a console socket): its
    /// output is logged, and `attach` writes to it.
    pub fn set_terminal(&mut self, master: OwnedFd) {
        // Attachers write to this same file: non-blocking, so that one
        // whose workload reads nothing can give up instead of waiting in
        // write(2) for good (`state::write_while`). Reads here already
        // take EAGAIN as "nothing yet".
        if let Ok(flags) = rustix::fs::fcntl_getfl(&master) {
            let _ = rustix::fs::fcntl_setfl(&master, flags | rustix::fs::OFlags::NONBLOCK);
        }
        self.terminal = Some(Input {
            fd: master,
            open: true,
        });
    }

    /// What `attach` writes to, and whether it is a terminal.
    pub fn attach_fd(&self) -> Option<(BorrowedFd<'_>, bool)> {
        match (&self.terminal, &self.stdin) {
            (Some(t), _) => Some((t.fd.as_fd(), true)),
            (None, Some(w)) => Some((w.as_fd(), false)),
            (None, None) => None,
        }
    }

    fn input(&mut self, src: Source) -> Option<&mut Input> {
        match src {
            Source::Pipe(i) => self.pipes.get_mut(i),
            Source::Terminal => self.terminal.as_mut(),
        }
    }

    /// Copy what is waiting on `src` into its file. Returns false at
    /// end-of-file (every writer is gone; for a terminal, EIO: every
    /// process holding it has closed it).
    pub fn drain(&mut self, src: Source) -> bool {
        let limit = self.limit;
        let Some(input) = self.input(src) else {
            return false;
        };
        let mut buf = [0u8; 16384];
        let n = match rustix::io::read(&input.fd, &mut buf) {
            Ok(0) => {
                input.open = false;
                return false;
            }
            Ok(n) => n,
            Err(rustix::io::Errno::INTR) | Err(rustix::io::Errno::AGAIN) => return true,
            Err(_) => {
                input.open = false;
                return false;
            }
        };
        let file = match src {
            Source::Pipe(i) => i,
            Source::Terminal => 0,
        };
        self.files[file].write(&buf[..n], limit);
        true
    }

    /// After PID 1 ended: what is still waiting in the pipes and the
    /// terminal.
    pub fn drain_all(&mut self) {
        for src in self.sources() {
            while self
                .input(src)
                .is_some_and(|i| i.open && crate::sys::readable_now(i.fd.as_fd()))
                && self.drain(src)
            {}
        }
    }

    fn sources(&self) -> Vec<Source> {
        let mut all: Vec<Source> = (0..self.pipes.len()).map(Source::Pipe).collect();
        all.extend(self.terminal.as_ref().map(|_| Source::Terminal));
        all
    }

    /// The fds that still have a writer, with what each one is.
    pub fn open_fds(&self) -> Vec<(Source, BorrowedFd<'_>)> {
        let pipes = self
            .pipes
            .iter()
            .enumerate()
            .map(|(i, p)| (Source::Pipe(i), p));
        let terminal = self.terminal.iter().map(|t| (Source::Terminal, t));
        pipes
            .chain(terminal)
            .filter(|(_, input)| input.open)
            .map(|(s, input)| (s, input.fd.as_fd()))
            .collect()
    }
}

/// A handle on stdio fd `n` to dup onto; never closed through this handle.
fn unsafe_stdio(n: i32) -> std::mem::ManuallyDrop<OwnedFd> {
    use std::os::fd::FromRawFd;
    // SAFETY: fds 0-2 are open in the runner (the caller gave it /dev/null
    // at least); ManuallyDrop keeps this handle from closing them.
    std::mem::ManuallyDrop::new(unsafe { OwnedFd::from_raw_fd(n) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{LogChunk, LogStream, SandboxDir};

    /// 3000 bytes of `c`: at a 4096-byte limit, every write after the
    /// first rotates the file.
    fn line(c: char) -> String {
        format!("{}\n", c.to_string().repeat(2999))
    }

    /// A line of `c` written by PID 1 to its stdout, and drained to the log.
    fn put(logs: &mut Logs, c: char) {
        rustix::io::write(&logs.pid1_ends[0], line(c).as_bytes()).unwrap();
        assert!(logs.drain(Source::Pipe(0)));
    }

    /// The supervisor's rotations as a reader sees them: two between its
    /// reads lose nothing (the old file is kept); a third loses a file,
    /// and the reader says so, where it was lost.
    #[test]
    fn a_reader_three_rotations_behind_is_told_how_many_files_it_lost() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let mut logs = Logs::create(dir, 4096, false).unwrap();
        let mut put = |c: char| put(&mut logs, c);
        let stdout = |chunks: Vec<LogChunk>| -> Vec<(u64, String)> {
            chunks
                .into_iter()
                .filter(|c| c.stream == LogStream::Stdout)
                .map(|c| (c.lost_files, String::from_utf8(c.data).unwrap()))
                .collect()
        };
        let mut reader = SandboxDir::at(dir).log_reader(None);
        put('a');
        assert_eq!(stdout(reader.read_new()), [(0, line('a'))]);
        put('b');
        put('c');
        assert_eq!(stdout(reader.read_new()), [(0, line('b') + &line('c'))]);
        put('d');
        put('e');
        put('f');
        // d was rotated away when e took its place as stdout.log.1.
        assert_eq!(stdout(reader.read_new()), [(1, line('e') + &line('f'))]);
        for c in ['g', 'h', 'i', 'j', 'k'] {
            put(c);
        }
        // g, h and i went; j (stdout.log.1) and k remain.
        assert_eq!(stdout(reader.read_new()), [(3, line('j') + &line('k'))]);
    }

    /// Rotated twice between a first read's two opens (the current file,
    /// then the rotated one): each file once, in order, where the file
    /// rotated in after the one held came first and then again.
    #[test]
    fn a_first_read_two_rotations_behind_reads_each_file_once() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let mut logs = Logs::create(dir, 4096, false).unwrap();
        let mut put = |c: char| put(&mut logs, c);
        put('a');
        put('b');
        let (current, rotated) = (dir.join("stdout.log"), dir.join("stdout.log.1"));
        let mut data = Vec::new();
        let mut pos = crate::state::logs::first_look(&current, &rotated, &mut data, || {
            put('c');
            put('d');
        })
        .unwrap();
        crate::state::logs::follow(&current, &rotated, &mut pos, &mut data, &mut None);
        let got = String::from_utf8(data).unwrap();
        // Each line is one letter's: the letters, in the order read.
        let order: String = got.lines().map(|l| &l[..1]).collect();
        assert_eq!(order, "bcd");
        assert_eq!(got, line('b') + &line('c') + &line('d'));
    }
}
