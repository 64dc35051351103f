//! A new network namespace starts with only `lo`, down. Bring it up so
//! the workload can use loopback, as bubblewrap does.

use super::report::SetupError;
use std::io;

pub fn loopback_up() -> Result<(), SetupError> {
    let step = "bring up lo";
    // SAFETY: socket() takes no pointers; the fd is closed below.
    let sock = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if sock < 0 {
        return Err(SetupError::io(step, &io::Error::last_os_error()));
    }
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in ifr.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: sock is a valid socket and ifr a valid ifreq for both ioctls,
    // which read and write only within it.
    let result = unsafe {
        if libc::ioctl(sock, libc::SIOCGIFFLAGS as _, &mut ifr) < 0 {
            Err(io::Error::last_os_error())
        } else {
            ifr.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
            if libc::ioctl(sock, libc::SIOCSIFFLAGS as _, &ifr) < 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(())
            }
        }
    };
    // SAFETY: sock is ours and closed once.
    unsafe { libc::close(sock) };
    result.map_err(|e| SetupError::io(step, &e))
}
