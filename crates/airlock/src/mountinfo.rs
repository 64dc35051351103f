//! The calling thread's mount table (`/proc/thread-self/mountinfo`), read
//! again only when it may have changed.
//!
//! The kernel renders the whole table on every read, which cost airlockd
//! about 3 % of its CPU per sandbox (the guardrails' probe reads it for
//! each one) and `airlock run` a second read (the cgroup layout, then the
//! probe). A mountinfo fd polls `POLLPRI` after any mount or unmount in
//! its mount namespace (proc(5)), so the text is kept with the fd it was
//! read from and read again when the fd says so. Three things the event
//! does not cover make it read again too: another mount namespace (a
//! thread or a child cloned into a new one); another process (a forked
//! child shares the open file, and with it the event, with its parent),
//! told apart by its pid and PID namespace; and time: renaming a directory
//! above a mountpoint changes the table's paths without an event, so a
//! copy is kept for at most a second. The runner, which opens and clones
//! what the guardrails judged, starts with nothing kept (it is exec'd):
//! it reads the table afresh.

use rustix::event::{poll, PollFd, PollFlags, Timespec};
use std::io;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const PATH: &str = "/proc/thread-self/mountinfo";

/// How long a copy may be used without an event saying it changed.
const AT_MOST: Duration = Duration::from_secs(1);

struct Kept {
    file: std::fs::File,
    /// Where it was read: the mount namespace, and the process, by its pid
    /// and its PID namespace (a child cloned into a new one is PID 1 there,
    /// as its parent may be in its own).
    whose: Whose,
    read_at: Instant,
    text: String,
}

static KEPT: Mutex<Option<Kept>> = Mutex::new(None);

#[derive(PartialEq)]
struct Whose {
    mnt_ns: (u64, u64),
    pid_ns: (u64, u64),
    pid: u32,
}

impl Whose {
    fn now() -> io::Result<Whose> {
        let ns = |name: &str| {
            rustix::fs::stat(format!("/proc/thread-self/ns/{name}").as_str())
                .map(|st| (st.st_dev, st.st_ino))
        };
        Ok(Whose {
            mnt_ns: ns("mnt")?,
            pid_ns: ns("pid")?,
            pid: std::process::id(),
        })
    }
}

/// The mount table as the calling thread sees it.
pub fn read() -> io::Result<String> {
    let whose = Whose::now()?;
    let mut kept = KEPT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(c) = kept.as_ref() {
        if c.whose == whose && c.read_at.elapsed() < AT_MOST && !changed(&c.file)? {
            return Ok(c.text.clone());
        }
    }
    // Opened before it is read: a change after the open shows as an
    // event, one before it is in the text.
    let mut file = std::fs::File::open(PATH)?;
    let text = crate::sys::read_proc_file(&mut file)?;
    *kept = Some(Kept {
        file,
        whose,
        read_at: Instant::now(),
        text: text.clone(),
    });
    Ok(text)
}

/// One line of a mount table, as the kernel writes it (proc(5)): `ID
/// PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE
/// SUPER_OPTIONS`, fields separated by one space (a space in a path is
/// written `\040`).
pub struct Entry<'a> {
    /// The filesystem's device (`MAJ:MIN`): mounts of one filesystem
    /// share it.
    pub dev: &'a str,
    /// The directory of its filesystem the mount shows, escaped as
    /// written.
    pub root: &'a str,
    /// Escaped as written: [`unescape`] gives the path.
    pub mount_point: &'a str,
    pub fstype: &'a str,
    pub super_options: &'a str,
}

/// The entries of a mount table. Every start parses the table twice (the
/// cgroup layout, the guardrails' bind sources), so the fields are found
/// by a plain byte scan: `split_once(" - ")` set up a substring search per
/// line, and `split(' ')` a character search per field, each costing more
/// than the field is long (callgrind).
pub fn entries(table: &str) -> impl Iterator<Item = Entry<'_>> {
    table.lines().filter_map(|line| {
        let mut fields = Fields(line);
        let dev = fields.nth(2)?;
        let root = fields.next()?;
        let mount_point = fields.next()?;
        fields.find(|f| *f == "-")?;
        let fstype = fields.next()?;
        let super_options = fields.nth(1).unwrap_or("");
        Some(Entry {
            dev,
            root,
            mount_point,
            fstype,
            super_options,
        })
    })
}

/// A line's fields, split at single spaces.
struct Fields<'a>(&'a str);

impl<'a> Iterator for Fields<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        if self.0.is_empty() {
            return None;
        }
        let end = self.0.bytes().position(|c| c == b' ');
        let (field, rest) = self.0.split_at(end.unwrap_or(self.0.len()));
        self.0 = rest.get(1..).unwrap_or("");
        Some(field)
    }
}

/// Undo mountinfo's octal escapes (`\040` for a space); a path without
/// any is borrowed.
pub fn unescape(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.contains('\\') {
        return std::borrow::Cow::Borrowed(s);
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        // The kernel escapes a byte as three octal digits, so the first
        // is at most 3; anything else is kept as written.
        if b[i] == b'\\'
            && i + 4 <= b.len()
            && (b'0'..=b'3').contains(&b[i + 1])
            && b[i + 2..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    std::borrow::Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

/// Close the kept copy's file: PID 1 calls it before it leaves the host's
/// tree, which an open file of the host's /proc would otherwise keep a
/// hold on for the sandbox's whole life.
pub fn forget() {
    *KEPT.lock().unwrap_or_else(|e| e.into_inner()) = None;
}

/// Has the table changed since the last poll of this open file (or its
/// open)? Polling consumes the event.
fn changed(file: &std::fs::File) -> io::Result<bool> {
    let mut pfd = [PollFd::new(file, PollFlags::PRI)];
    let now = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    poll(&mut pfd, Some(&now))?;
    Ok(pfd[0].revents().intersects(PollFlags::PRI | PollFlags::ERR))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_read_past_the_optional_fields() {
        let table = "36 35 98:0 /mnt1 /mnt\\040two rw,noatime master:1 shared:7 - ext3 /dev/root rw,errors=continue\n\
                     bad line\n\
                     40 1 0:33 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n";
        let e: Vec<_> = entries(table).collect();
        assert_eq!(e.len(), 2);
        assert_eq!(unescape(e[0].mount_point), "/mnt two");
        assert_eq!(
            (e[0].fstype, e[0].super_options),
            ("ext3", "rw,errors=continue")
        );
        assert_eq!(e[1].mount_point, "/sys/fs/cgroup/memory");
        assert_eq!((e[1].fstype, e[1].super_options), ("cgroup", "rw,memory"));
        assert!(matches!(
            unescape("/plain"),
            std::borrow::Cow::Borrowed("/plain")
        ));
        assert_eq!(unescape("/a\\134040b"), "/a\\040b", "an escaped backslash");
        assert_eq!(unescape("/a\\777"), "/a\\777", "no byte: kept as written");
        // An empty source: its field is there, between two spaces.
        let e: Vec<_> = entries("1 2 0:3 / /x rw - tmpfs  rw,size=4k\n").collect();
        assert_eq!((e[0].fstype, e[0].super_options), ("tmpfs", "rw,size=4k"));
    }

    /// In a thread of its own mount namespace: a mount and an unmount
    /// there show at once, and nothing else is read again.
    #[test]
    fn a_mount_shows_at_once() {
        if !rustix::process::geteuid().is_root() {
            eprintln!("SKIPPED: this test needs root (CI runs it as root): it mounts in a mount namespace of its own");
            return;
        }
        std::thread::spawn(|| {
            // SAFETY: a new mount namespace for this thread alone (it
            // takes a copy of the process's fs_struct); the test touches
            // nothing that assumes the old one, and the thread ends here.
            assert_eq!(unsafe { libc::unshare(libc::CLONE_NEWNS) }, 0);
            rustix::mount::mount_change(
                "/",
                rustix::mount::MountPropagationFlags::REC
                    | rustix::mount::MountPropagationFlags::PRIVATE,
            )
            .unwrap();
            let dir =
                std::env::temp_dir().join(format!("airlock-mountinfo-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let name = dir.to_str().unwrap().to_string();
            let before = read().unwrap();
            assert!(!before.contains(&name));
            assert_eq!(read().unwrap(), before, "nothing changed");
            rustix::mount::mount(
                "tmpfs",
                &dir,
                "tmpfs",
                rustix::mount::MountFlags::empty(),
                None,
            )
            .unwrap();
            assert!(read().unwrap().contains(&name), "the mount shows");
            rustix::mount::unmount(&dir, rustix::mount::UnmountFlags::empty()).unwrap();
            assert_eq!(read().unwrap(), before, "the unmount shows");
            std::fs::remove_dir(&dir).unwrap();
        })
        .join()
        .unwrap();
        // Back on a thread of the test process's own namespace: its table.
        assert_eq!(
            read().unwrap(),
            std::fs::read_to_string(PATH).unwrap(),
            "another namespace's copy is not used"
        );
    }
}
