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
