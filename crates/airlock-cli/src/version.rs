//! What `airlock --version` says beside the version and commit: the
//! kernel features this host offers, found now, so that a bug report
//! carries them.

use airlock::cgroup::Layout;

/// One line per feature: Landlock ABI, cgroup layout, idmapped mounts.
pub fn features() -> String {
    let abi = airlock::runner::landlock::kernel_abi();
    let landlock = if abi > 0 {
        format!("ABI {abi}")
    } else {
        "not available".into()
    };
    format!(
        "landlock: {landlock}\ncgroup: {}\nidmapped mounts: {}",
        cgroup_layout(),
        if idmapped_mounts() { "yes" } else { "no" }
    )
}

/// v2 (unified), v1 (legacy) or hybrid, as the caller's mount table shows
/// the hierarchies its own cgroups are in.
fn cgroup_layout() -> &'static str {
    match Layout::detect() {
        Ok(l) => match (l.v2.is_some(), !l.v1.is_empty()) {
            (true, false) => "v2",
            (false, true) => "v1",
            (true, true) => "hybrid",
            (false, false) => "none found",
        },
        Err(_) => "unknown (cannot read /proc/self)",
    }
}

/// Does the kernel have mount_setattr(2), which idmapped mounts are made
/// with? Asked with arguments it rejects: ENOSYS means no such call.
fn idmapped_mounts() -> bool {
    // SAFETY: an invalid fd, an empty path and a NULL attr of size 0: the
    // kernel rejects the call before touching any memory or mount.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            -1,
            c"".as_ptr(),
            0u32,
            std::ptr::null::<libc::c_void>(),
            0usize,
        )
    };
    r == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ENOSYS)
}
