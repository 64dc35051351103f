//! Reading a detached workload's output: `stdout.log` and `stderr.log` in
//! its directory, which its supervisor writes and rotates (at the limit,
//! `NAME.log` becomes `NAME.log.1` and a new `NAME.log` starts). A
//! [`LogReader`] returns what was added since its last look, across
//! rotations, so `logs -f`, `attach` and the daemon follow it the same way.
//! It holds the file it reads open: what was written before a rotation,
//! or before the directory was removed (`--rm`), is still read. A reader
//! that fell further behind (rotated three times or more between two
//! reads: only one old file is kept) says how many files it never saw
//! ([`LogChunk::lost_files`]), from each file's place in the sequence
//! ([`LOG_SEQ_XATTR`]).

use super::SandboxDir;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogStream {
    Stdout,
    Stderr,
}

impl LogStream {
    pub const ALL: [LogStream; 2] = [LogStream::Stdout, LogStream::Stderr];

    /// `stdout` or `stderr`: the file's name without `.log`.
    pub fn name(self) -> &'static str {
        match self {
            LogStream::Stdout => "stdout",
            LogStream::Stderr => "stderr",
        }
    }
}

/// The extended attribute in which the supervisor gives each log file
/// its place among its stream's files (decimal, from 0); a root
/// supervisor on a file system without user attributes (tmpfs before
/// Linux 6.6: `/run`) uses [`LOG_SEQ_TRUSTED`]. A rootless one there
/// sets none, and its readers cannot count what they missed.
pub const LOG_SEQ_XATTR: &str = "user.airlock.log_seq";

/// [`LOG_SEQ_XATTR`]'s stand-in, which only root reads and writes.
pub const LOG_SEQ_TRUSTED: &str = "trusted.airlock.log_seq";

/// Bytes one stream gained.
#[derive(Debug, Clone)]
pub struct LogChunk {
    pub stream: LogStream,
    pub data: Vec<u8>,
    /// Whole log files of this stream that were rotated away unread
    /// between what came before and `data`: their output is lost.
    pub lost_files: u64,
}

/// The file a reader is in, for one stream: kept open, so what was
/// written to it before a rotation, or before the sandbox's directory was
/// removed (`--rm`), is still read to its end.
#[derive(Debug, Default)]
pub(crate) struct Position {
    file: Option<File>,
    inode: u64,
}

/// Follows a sandbox's logs (see [`SandboxDir::log_reader`]).
#[derive(Debug)]
pub struct LogReader {
    dir: PathBuf,
    tail: Option<usize>,
    first: bool,
    pos: [Position; 2],
}

impl SandboxDir {
    /// A reader of the workload's logs; `tail`: on the first read, only
    /// the last that many lines of each stream (`Some(0)`: nothing of what
    /// is there already, only what comes next).
    pub fn log_reader(&self, tail: Option<usize>) -> LogReader {
        LogReader {
            dir: self.dir.clone(),
            tail,
            first: true,
            pos: Default::default(),
        }
    }
}

impl LogReader {
    /// Output written since the last call. The first call returns what the
    /// logs hold (the rotated `.1` file then the current one), or only the
    /// last `tail` lines of each stream.
    pub fn read_new(&mut self) -> Vec<LogChunk> {
        let first = std::mem::replace(&mut self.first, false);
        let mut out = Vec::new();
        for (i, stream) in LogStream::ALL.into_iter().enumerate() {
            let current = self.dir.join(format!("{}.log", stream.name()));
            let rotated = self.dir.join(format!("{}.log.1", stream.name()));
            let mut data = Vec::new();
            let mut gap = None;
            if first {
                if let Some(held) = first_look(&current, &rotated, &mut data, || {}) {
                    self.pos[i] = held;
                }
            }
            follow(&current, &rotated, &mut self.pos[i], &mut data, &mut gap);
            if first {
                if let Some(n) = self.tail {
                    let cut = data.len() - last_lines(&data, n).len();
                    data.drain(..cut);
                    // A gap before the lines asked for, or right at
                    // their start, is none of theirs.
                    gap = gap.and_then(|g: Gap| Some((g.0.checked_sub(cut)?, g.1)));
                    gap = gap.filter(|g| g.0 > 0);
                }
            }
            match gap {
                Some((at, lost_files)) => {
                    let after = data.split_off(at);
                    if !data.is_empty() {
                        out.push(LogChunk {
                            stream,
                            data,
                            lost_files: 0,
                        });
                    }
                    out.push(LogChunk {
                        stream,
                        data: after,
                        lost_files,
                    });
                }
                None if !data.is_empty() => out.push(LogChunk {
                    stream,
                    data,
                    lost_files: 0,
                }),
                None => {}
            }
        }
        out
    }
}

/// A reader's first look at a stream: all of the rotated file (it is
/// complete) into `data`, and the current file opened, to be read by
/// [`follow`]; `meanwhile` runs between the two opens (for the test of
/// that race). The current file is opened first: the other way round, a
/// rotation in between lost it whole. Not read here, the rotated file if
/// it is the one held (rotated since), or one that came after it (rotated
/// twice since, by their places in the sequence): `follow` reads that
/// after the rest of the one held, in order, where it came twice before.
pub(crate) fn first_look(
    current: &Path,
    rotated: &Path,
    data: &mut Vec<u8>,
    meanwhile: impl FnOnce(),
) -> Option<Position> {
    let held = File::open(current).ok().and_then(|f| {
        let inode = f.metadata().ok()?.ino();
        Some(Position {
            file: Some(f),
            inode,
        })
    });
    meanwhile();
    if let Ok(mut f) = File::open(rotated) {
        let same = held.as_ref().map(|p| p.inode);
        let held_seq = held.as_ref().and_then(|p| seq_of(p.file.as_ref()?));
        let later = matches!((held_seq, seq_of(&f)), (Some(h), Some(r)) if r > h);
        if (f.metadata().ok().map(|m| m.ino()) != same || same.is_none()) && !later {
            read_rest(&mut f, data);
        }
    }
    held
}

/// Where in what [`follow`] read some files were lost, and how many:
/// (offset in the data, files).
type Gap = (usize, u64);

/// Append what `current` gained since the last look to `data`. When it
/// was rotated since (another file at its path now), the rest of the old
/// one comes first (through the fd we hold), then the file rotated in
/// after it if we never saw it (rotated twice), then the new one; files
/// rotated away between them are counted in `gap`.
pub(crate) fn follow(
    current: &Path,
    rotated: &Path,
    pos: &mut Position,
    data: &mut Vec<u8>,
    gap: &mut Option<Gap>,
) {
    follow_racing(current, rotated, pos, data, gap, || {})
}

/// A log file's place in its stream's sequence, where the file system
/// kept it.
fn seq_of(f: &File) -> Option<u64> {
    let mut buf = [0u8; 24];
    let n = rustix::fs::fgetxattr(f, LOG_SEQ_XATTR, &mut buf[..])
        .or_else(|_| rustix::fs::fgetxattr(f, LOG_SEQ_TRUSTED, &mut buf[..]))
        .ok()?;
    std::str::from_utf8(&buf[..n]).ok()?.parse().ok()
}

/// [`follow`], with `meanwhile` run where the supervisor may write and
/// rotate between our reads (for the test of that race).
fn follow_racing(
    current: &Path,
    rotated: &Path,
    pos: &mut Position,
    data: &mut Vec<u8>,
    gap: &mut Option<Gap>,
    meanwhile: impl FnOnce(),
) {
    if let Some(f) = pos.file.as_mut() {
        read_rest(f, data);
    }
    meanwhile();
    let Ok(mut f) = File::open(current) else {
        // Gone with the sandbox's directory: what we hold was all.
        return;
    };
    let Ok(inode) = f.metadata().map(|m| m.ino()) else {
        return;
    };
    if pos.file.is_some() && inode == pos.inode {
        return;
    }
    if let Some(old) = pos.file.as_mut() {
        // Rotated since we read it: what was written to it after that
        // read and before the rotation (it takes no more now).
        read_rest(old, data);
        let at = data.len();
        let (old_seq, new_seq) = (seq_of(old), seq_of(&f));
        // The old file's successor, unless that is the one we hold or the
        // one just opened (rotated since we opened it), or (by their
        // places) one that came after it.
        let mut read_between = false;
        if let Ok(mut between) = File::open(rotated) {
            let ino = between.metadata().map(|m| m.ino()).ok();
            let seq = seq_of(&between);
            let in_order = match (old_seq, seq, new_seq) {
                (Some(o), Some(b), Some(n)) => o < b && b < n,
                _ => true,
            };
            if ino.is_some_and(|i| i != pos.inode && i != inode) && in_order {
                read_rest(&mut between, data);
                read_between = true;
            }
        }
        if let (Some(o), Some(n)) = (old_seq, new_seq) {
            let lost = n.saturating_sub(o.saturating_add(1 + u64::from(read_between)));
            if lost > 0 {
                *gap = Some((at, lost));
            }
        }
    }
    read_rest(&mut f, data);
    *pos = Position {
        file: Some(f),
        inode,
    };
}

/// Append the file from its offset to its end to `data`. A file shorter
/// than the offset started over: it is read from its start.
fn read_rest(f: &mut File, data: &mut Vec<u8>) {
    let len = f.metadata().map_or(0, |m| m.len());
    if f.stream_position().is_ok_and(|at| at > len) {
        let _ = f.seek(SeekFrom::Start(0));
    }
    let _ = f.read_to_end(data);
}

/// The last `n` lines of `data` (a last line without its newline counts).
fn last_lines(data: &[u8], n: usize) -> &[u8] {
    if n == 0 {
        return &[];
    }
    // A final newline ends the last line; it does not start another.
    let body = data.strip_suffix(b"\n").unwrap_or(data);
    let start = body
        .iter()
        .enumerate()
        .rev()
        .filter(|(_, b)| **b == b'\n')
        .nth(n - 1)
        .map_or(0, |(i, _)| i + 1);
    &data[start..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_lines() {
        assert_eq!(last_lines(b"a\nb\nc\n", 1), b"c\n");
        assert_eq!(last_lines(b"a\nb\nc\n", 2), b"b\nc\n");
        assert_eq!(last_lines(b"a\nb\nc", 1), b"c");
        assert_eq!(last_lines(b"a\nb\nc", 5), b"a\nb\nc");
        assert_eq!(last_lines(b"a\n", 0), b"");
        assert_eq!(last_lines(b"", 3), b"");
        assert_eq!(last_lines(b"\n\n", 1), b"\n");
    }

    fn text(chunks: &[LogChunk], stream: LogStream) -> String {
        chunks
            .iter()
            .filter(|c| c.stream == stream)
            .map(|c| String::from_utf8_lossy(&c.data).into_owned())
            .collect()
    }

    #[test]
    fn follows_across_rotations() {
        let tmp = std::env::temp_dir().join(format!("airlock-logs-test-{}", std::process::id()));
        std::fs::create_dir_all(&tmp).unwrap();
        let sb = SandboxDir::at(&tmp);
        let out = tmp.join("stdout.log");
        let append = |s: &str| {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(&out)
                .unwrap();
            f.write_all(s.as_bytes()).unwrap();
        };
        // The supervisor's rotation: rename, then a new file.
        let rotate = || std::fs::rename(&out, tmp.join("stdout.log.1")).unwrap();
        append("old1\nold2\n");
        rotate();
        append("a\nb\n");
        std::fs::write(tmp.join("stderr.log"), "e1\ne2\n").unwrap();

        let mut all = sb.log_reader(None);
        let first = all.read_new();
        assert_eq!(text(&first, LogStream::Stdout), "old1\nold2\na\nb\n");
        assert_eq!(text(&first, LogStream::Stderr), "e1\ne2\n");
        let mut tail = sb.log_reader(Some(1));
        let first = tail.read_new();
        assert_eq!(text(&first, LogStream::Stdout), "b\n");
        assert_eq!(text(&first, LogStream::Stderr), "e2\n");
        let mut none = sb.log_reader(Some(0));
        assert!(none.read_new().is_empty());
        assert!(all.read_new().is_empty(), "nothing new");

        // Written, rotated and written again between two reads: the end
        // of the old file, then the new one.
        append("c\n");
        rotate();
        append("d\n");
        for r in [&mut all, &mut tail, &mut none] {
            assert_eq!(text(&r.read_new(), LogStream::Stdout), "c\nd\n");
        }
        append("e\nf\n");
        assert_eq!(text(&all.read_new(), LogStream::Stdout), "e\nf\n");
        // A file that started over, shorter than where we were.
        std::fs::write(&out, "").unwrap();
        append("x\n");
        assert_eq!(text(&all.read_new(), LogStream::Stdout), "x\n");
        // Written and rotated after our read of the old file and before
        // we looked at the path: the old file's end is not lost.
        let mut racing = Vec::new();
        follow_racing(
            &out,
            &tmp.join("stdout.log.1"),
            &mut all.pos[0],
            &mut racing,
            &mut None,
            || {
                append("late\n");
                rotate();
                append("new\n");
            },
        );
        assert_eq!(String::from_utf8_lossy(&racing), "late\nnew\n");
        // Rotated twice between two reads: the file between comes too.
        append("y\n");
        rotate();
        append("z\n");
        rotate();
        append("w\n");
        assert_eq!(text(&all.read_new(), LogStream::Stdout), "y\nz\nw\n");
        // Written, then the directory removed (`--rm`) before the read.
        append("last\n");
        std::fs::remove_dir_all(&tmp).unwrap();
        assert_eq!(text(&all.read_new(), LogStream::Stdout), "last\n");
        assert!(all.read_new().is_empty());
    }
}
