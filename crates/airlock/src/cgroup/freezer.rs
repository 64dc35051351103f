//! Freezing a sandbox's cgroup, and knowing when it is frozen.
//!
//! Writing `cgroup.freeze` (v2) or `freezer.state` (v1) only asks: the
//! kernel stops each task as it next leaves the kernel or wakes, and a
//! task busy in a system call (or another CPU's timeslice) still runs
//! for a while. A caller that reads the sandbox's files or checkpoints it
//! right after a pause must not see one still running, so freezing
//! returns once the kernel says every task is frozen (v2's
//! `cgroup.events` reads `frozen 1`, v1's `freezer.state` reads
//! `FROZEN`), as runc's pause does; a freeze that does not complete in
//! [`FREEZE_WITHIN`] is undone and is an error.

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long every task may take to freeze (one in uninterruptible sleep,
/// say on a slow disk, freezes only when it wakes).
pub const FREEZE_WITHIN: Duration = Duration::from_secs(5);

/// The file that freezes a sandbox, from its cgroup directories:
/// `cgroup.freeze` in the v2 one (written 1/0), else `freezer.state` in
/// v1's freezer hierarchy (FROZEN/THAWED).
pub fn freezer_file(v2: Option<&Path>, v1_freezer: Option<&Path>) -> Option<PathBuf> {
    match (v2, v1_freezer) {
        (Some(v2), _) => Some(v2.join("cgroup.freeze")),
        (None, Some(f)) => Some(f.join("freezer.state")),
        (None, None) => None,
    }
}

/// Has a freeze been asked of the cgroup whose freezer `file` is (frozen,
/// or on v1 still freezing)?
pub fn freeze_asked(file: &Path) -> bool {
    std::fs::read_to_string(file).is_ok_and(|v| matches!(v.trim(), "1" | "FROZEN" | "FREEZING"))
}

/// Freeze (`frozen`) or thaw the cgroup whose freezer `file` is
/// ([`super::Cgroups::freezer_file`]): a freeze returns once every task
/// is frozen.
pub fn set_frozen(file: &Path, frozen: bool) -> io::Result<()> {
    let v2 = file.ends_with("cgroup.freeze");
    let (on, off) = if v2 { ("1", "0") } else { ("FROZEN", "THAWED") };
    std::fs::write(file, if frozen { on } else { off })?;
    if !frozen {
        return Ok(());
    }
    // Asked, then not known frozen: thawed again, whatever went wrong (a
    // v1 cgroup left FREEZING reads as paused to airlock-runtime's state).
    wait_frozen(file, v2, on).inspect_err(|_| {
        let _ = std::fs::write(file, off);
    })
}

fn wait_frozen(file: &Path, v2: bool, on: &str) -> io::Result<()> {
    let deadline = Instant::now() + FREEZE_WITHIN;
    let mut polls = 0u32;
    while !is_frozen(file, v2)? {
        if Instant::now() >= deadline {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "not every process froze within {}s (one in uninterruptible sleep?); thawed again",
                    FREEZE_WITHIN.as_secs()
                ),
            ));
        }
        polls += 1;
        // v1's freezing is unreliable while the cgroup's tasks fork: one
        // can stay unfrozen, and the cgroup FREEZING, until the state is
        // written again (runc writes it again too).
        if !v2 && polls.is_multiple_of(10) {
            std::fs::write(file, on)?;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(())
}

/// Does the kernel say every task of the cgroup is frozen?
fn is_frozen(file: &Path, v2: bool) -> io::Result<bool> {
    if v2 {
        let events = std::fs::read_to_string(file.with_file_name("cgroup.events"))?;
        Ok(events.lines().any(|l| l == "frozen 1"))
    } else {
        Ok(std::fs::read_to_string(file)?.trim() == "FROZEN")
    }
}
