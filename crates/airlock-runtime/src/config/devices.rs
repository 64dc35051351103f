//! `linux.devices`: device nodes the bundle asks for, beyond the standard
//! ones airlock's /dev has. Each must be a device the host has, at the
//! same path, of the same type and number (as runc binds it from there
//! under a user namespace). The node the container gets is its own, with
//! the mode and owner asked (see `airlock::spec::Device`); the guardrails
//! refuse one that reaches the host's hardware or kernel (`host-dev-bind`)
//! unless acknowledged.
//!
//! The device cgroup (`linux.resources.devices`) is informational: the
//! container's /dev holds only the nodes airlock made, so there is nothing
//! for an allow-list to deny beyond them. A device this list asks for that
//! those rules deny is not made at all (and the log says so).

use super::err;
use airlock::spec::{Device, DeviceKind, FileMode, SandboxSpec, SpecError};
use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};
use std::os::unix::fs::{FileTypeExt, MetadataExt};

/// The nodes airlock's own /dev makes, by path and number.
const STANDARD: &[(&str, u32, u32)] = &[
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
];

pub(super) fn devices(
    l: &oci_spec::runtime::Linux,
    s: &mut SandboxSpec,
    notes: &mut Vec<String>,
) -> Result<(), SpecError> {
    let rules: &[LinuxDeviceCgroup] = l
        .resources()
        .as_ref()
        .and_then(|r| r.devices().as_deref())
        .unwrap_or_default();
    // A letter the kernel does not know would match nothing here: a deny
    // written "W" or "RW" would stop denying. The kernel refuses it
    // (EINVAL), and so does runc when it writes the rule.
    for (i, r) in rules.iter().enumerate() {
        if let Some(bad) = r
            .access()
            .as_deref()
            .and_then(|a| a.chars().find(|c| !"rwm".contains(*c)))
        {
            return Err(err(
                format!("linux.resources.devices[{i}].access"),
                format!("{bad:?} is not an access (r, w and m are)"),
            ));
        }
    }
    let has_dev = s
        .filesystem
        .mounts
        .iter()
        .any(|m| matches!(m, airlock::spec::Mount::Dev { .. }));
    for (i, d) in l.devices().iter().flatten().enumerate() {
        let field = format!("linux.devices[{i}]");
        let path = d.path().display().to_string();
        let (major, minor) = (d.major(), d.minor());
        if major < 0 || minor < 0 {
            return Err(err(field, "major and minor must be given"));
        }
        let number = |n: i64, what: &str| {
            u32::try_from(n).map_err(|_| {
                err(
                    format!("{field}.{what}"),
                    format!("{n} is not a device number"),
                )
            })
        };
        let (major, minor) = (number(major, "major")?, number(minor, "minor")?);
        let (kind, letter) = match d.typ() {
            LinuxDeviceType::C | LinuxDeviceType::U => (DeviceKind::Char, 'c'),
            LinuxDeviceType::B => (DeviceKind::Block, 'b'),
            other => {
                return Err(err(
                    format!("{field}.type"),
                    format!("{other:?}: only character and block devices are supported"),
                ))
            }
        };
        if has_dev && STANDARD.contains(&(path.as_str(), major, minor)) && letter == 'c' {
            // Already there: airlock's /dev makes it.
            continue;
        }
        host_has(&field, &path, kind, major, minor)?;
        match allowed(rules, letter, major, minor) {
            (true, true) => {}
            (false, false) => {
                notes.push(format!(
                    "{field} ({path}, {letter} {major}:{minor}): linux.resources.devices denies it, so the container does not get it"
                ));
                continue;
            }
            // airlock has no device cgroup to hold an open to one way:
            // the node would open both ways (for root in the container,
            // whatever its mode).
            (read, _) => {
                let only = if read { "reading" } else { "writing" };
                return Err(err(
                    "linux.resources.devices",
                    format!("{path} ({letter} {major}:{minor}) is allowed for {only} only, which airlock cannot hold it to: allow it both ways or not at all"),
                ));
            }
        }
        let mode = d.file_mode().map(|m| m & 0o7777);
        if mode.is_some_and(|m| m & !0o777 != 0) {
            return Err(err(
                format!("{field}.fileMode"),
                "setuid, setgid and sticky bits are not supported on a device node",
            ));
        }
        s.filesystem.devices.push(Device {
            path,
            kind,
            major,
            minor,
            mode: mode.map(FileMode),
            uid: d.uid(),
            gid: d.gid(),
        });
    }
    Ok(())
}

/// The host's node at `path` is this device.
fn host_has(
    field: &str,
    path: &str,
    kind: DeviceKind,
    major: u32,
    minor: u32,
) -> Result<(), SpecError> {
    let meta = std::fs::metadata(path)
        .map_err(|e| err(field, format!("the host has no device at {path}: {e}")))?;
    let ft = meta.file_type();
    let same_kind = match kind {
        DeviceKind::Char => ft.is_char_device(),
        DeviceKind::Block => ft.is_block_device(),
    };
    let rdev = meta.rdev();
    let (hmaj, hmin) = (libc::major(rdev), libc::minor(rdev));
    if !same_kind || (hmaj, hmin) != (major, minor) {
        let is = if ft.is_char_device() {
            format!("character device {hmaj}:{hmin}")
        } else if ft.is_block_device() {
            format!("block device {hmaj}:{hmin}")
        } else {
            "not a device".into()
        };
        let want = match kind {
            DeviceKind::Char => "character",
            DeviceKind::Block => "block",
        };
        return Err(err(
            field,
            format!("the host's {path} is {is}, not the {want} device {major}:{minor} asked for"),
        ));
    }
    Ok(())
}

/// Whether the device cgroup rules let the device be read, and written:
/// the kernel's order, the last rule that matches decides each access,
/// and none that matches denies it, as runc's rules do (an allow-list:
/// podman's and containerd's begin with a deny of everything anyway).
fn allowed(rules: &[LinuxDeviceCgroup], letter: char, major: u32, minor: u32) -> (bool, bool) {
    let mut read = false;
    let mut write = false;
    for r in rules {
        let typ_matches = match r.typ() {
            None | Some(LinuxDeviceType::A) => true,
            Some(LinuxDeviceType::C) | Some(LinuxDeviceType::U) => letter == 'c',
            Some(LinuxDeviceType::B) => letter == 'b',
            Some(_) => false,
        };
        let num = |want: Option<i64>, have: u32| want.is_none_or(|w| w < 0 || w as u32 == have);
        if !typ_matches || !num(r.major(), major) || !num(r.minor(), minor) {
            continue;
        }
        let access = r.access().clone().unwrap_or_else(|| "rwm".into());
        if access.contains('r') {
            read = r.allow();
        }
        if access.contains('w') {
            write = r.allow();
        }
    }
    (read, write)
}
