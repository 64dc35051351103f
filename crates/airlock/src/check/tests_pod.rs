//! The rules a pod's containers meet: device nodes and a joined PID
//! namespace.

use super::*;
use crate::spec::{Device, DeviceKind, SandboxSpec};

fn denied(spec: &SandboxSpec) -> Vec<&'static str> {
    check(spec, &Host::default())
        .iter()
        .filter(|f| f.refuses())
        .map(|f| f.code)
        .collect()
}

fn dev(kind: DeviceKind, major: u32, minor: u32) -> Device {
    Device {
        path: "/dev/x".into(),
        kind,
        major,
        minor,
        mode: None,
        uid: None,
        gid: None,
    }
}

#[test]
fn devices_beyond_the_harmless_few_need_host_dev_bind() {
    let mut s = SandboxSpec::builder().args(["true"]).build();
    // FUSE and TUN reach only the sandbox's own mounts and network.
    s.filesystem.devices = vec![
        dev(DeviceKind::Char, 10, 229),
        dev(DeviceKind::Char, 10, 200),
    ];
    assert!(denied(&s).is_empty(), "{:?}", denied(&s));
    // The kernel log is the host's.
    s.filesystem.devices.push(dev(DeviceKind::Char, 1, 11));
    assert_eq!(denied(&s), ["host-dev-bind"]);
    // Judged by kind and number, not by name: a block device with null's
    // numbers is a disk.
    s.filesystem.devices = vec![dev(DeviceKind::Block, 1, 3)];
    assert_eq!(denied(&s), ["host-dev-bind"]);
}

#[test]
fn a_joined_pid_namespace_is_not_the_hosts() {
    let mut s = SandboxSpec::builder().args(["true"]).build();
    s.capabilities = vec!["CAP_KILL".into()];
    s.namespaces.pid = false;
    assert_eq!(denied(&s), ["shared-pid", "cap-host-pid"]);
    s.namespaces
        .join
        .insert("pid".into(), "/proc/42/ns/pid".into());
    assert!(denied(&s).is_empty(), "{:?}", denied(&s));
    // Unless the path is the caller's own namespace: the host's.
    let own = Host {
        joins_own_pid: true,
        ..Host::default()
    };
    let codes: Vec<_> = check(&s, &own)
        .iter()
        .filter(|f| f.refuses())
        .map(|f| f.code)
        .collect();
    assert_eq!(codes, ["shared-pid", "cap-host-pid"]);
}
