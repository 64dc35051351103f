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
use std::path::Path;
use std::time::{Duration, Instant};

/// How long every task may take to freeze (one in uninterruptible sleep,
/// say on a slow disk, freezes only when it wakes).
pub const FREEZE_WITHIN: Duration = Duration::from_secs(5);

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
    let deadline = Instant::now() + FREEZE_WITHIN;
    let mut polls = 0u32;
    while !is_frozen(file, v2)? {
        if Instant::now() >= deadline {
            let _ = std::fs::write(file, off);
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "not every process froze within {}s (one in uninterruptible sleep?); thawed again",
                    FREEZE_WITHIN.as_secs()
                ),
            ));
        }
        polls += 1;
        // v1 freezes the tasks it finds when written: one forked since
        // stays FREEZING until it is written again (runc writes it again
        // too).
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
