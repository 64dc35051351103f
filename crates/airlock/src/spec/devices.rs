//! Device nodes a sandbox asks for beyond its /dev's standard ones.

use super::FileMode;
use serde::{Deserialize, Serialize};

/// A device node in the sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Device {
    /// Where, in the sandbox (under /dev).
    pub path: String,
    pub kind: DeviceKind,
    pub major: u32,
    pub minor: u32,
    /// Permission bits (0666 when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<FileMode>,
    /// Owner inside the sandbox (root of the sandbox when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeviceKind {
    Char,
    Block,
}

/// The largest major and minor the kernel's `dev_t` holds (12 and 20
/// bits, `MINORBITS`): `mknod` drops the bits above them.
pub const MAX_MAJOR: u32 = (1 << 12) - 1;
pub const MAX_MINOR: u32 = (1 << 20) - 1;

/// The character devices of a minimal /dev (major, minor): null, zero,
/// full, random, urandom, tty. None reaches anything of the host's.
pub const STANDARD_DEVICES: &[(u32, u32)] = &[(1, 3), (1, 5), (1, 7), (1, 8), (1, 9), (5, 0)];

/// Character devices a sandbox may have without an acknowledgement
/// (major, minor): the standard nodes of its /dev, FUSE and TUN/TAP. Each
/// reaches only what the sandbox's own namespaces and mounts give it.
pub fn harmless_device(major: u32, minor: u32) -> bool {
    const FUSE: (u32, u32) = (10, 229);
    const TUN: (u32, u32) = (10, 200);
    STANDARD_DEVICES.contains(&(major, minor)) || [FUSE, TUN].contains(&(major, minor))
}
