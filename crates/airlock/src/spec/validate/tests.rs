use super::*;
use crate::spec::{SandboxSpec, Size};

fn base() -> SandboxSpec {
    SandboxSpec::builder().args(["true"]).build()
}

#[test]
fn an_overlay_upper_directory_has_no_size() {
    let mut s = base();
    s.filesystem.root = crate::spec::Root::Overlay {
        lower: vec!["/usr".into()],
        upper: Some("/var/tmp/x".into()),
        size: Some(Size(64 << 20)),
    };
    let e = validate(&s).unwrap_err();
    assert_eq!(e.field, "filesystem.root.size");
    if let crate::spec::Root::Overlay { size, .. } = &mut s.filesystem.root {
        *size = None;
    }
    validate(&s).unwrap();
}

#[test]
fn make_mountpoints_is_for_a_read_only_root() {
    let mut s = base();
    s.filesystem.root = crate::spec::Root::Path {
        path: "/srv/root".into(),
        readonly: false,
        make_mountpoints: true,
    };
    let e = validate(&s).unwrap_err();
    assert_eq!(e.field, "filesystem.root.make_mountpoints");
    if let crate::spec::Root::Path { readonly, .. } = &mut s.filesystem.root {
        *readonly = true;
    }
    validate(&s).unwrap();
}

#[test]
fn swap_without_a_memory_limit_is_refused() {
    let mut s = base();
    s.resources.swap = Some(Size(64 << 20));
    let e = validate(&s).unwrap_err();
    assert_eq!(e.field, "resources.swap");
    assert!(e.reason.contains("needs resources.memory"), "{e}");
    s.resources.memory = Some(Size(64 << 20));
    validate(&s).unwrap();
}

#[test]
fn a_memory_reservation_above_the_limit_is_refused() {
    let mut s = base();
    s.resources.memory = Some(Size(64 << 20));
    s.resources.memory_reservation = Some(Size(32 << 20));
    validate(&s).unwrap();
    s.resources.memory_reservation = Some(Size(65 << 20));
    let e = validate(&s).unwrap_err();
    assert_eq!(e.field, "resources.memory_reservation");
    assert!(e.reason.contains("above the memory limit 67108864"), "{e}");
}

#[test]
fn a_huge_page_size_is_named_as_the_kernel_names_it() {
    let mut s = base();
    for good in ["2MB", "1GB", "64KB", "16GB"] {
        s.resources.hugetlb = [(good.to_string(), Size(0))].into();
        validate(&s).unwrap();
    }
    // Each would be part of a cgroup file name.
    for bad in [
        "2M", "2mb", "", "MB", "02MB", "2MB/../x", "1.5GB", "123456MB",
    ] {
        s.resources.hugetlb = [(bad.to_string(), Size(0))].into();
        let e = validate(&s).unwrap_err();
        assert_eq!(e.field, format!("resources.hugetlb.{bad}"));
        assert!(e.reason.contains("not a huge page size"), "{e}");
    }
}

#[test]
fn forbidding_nested_user_namespaces_needs_the_sandboxs_own() {
    let mut s = base();
    s.namespaces.nested_user = false;
    validate(&s).unwrap();
    let reason = |s: &SandboxSpec| {
        let e = validate(s).unwrap_err();
        assert_eq!(e.field, "namespaces.nested_user");
        e.reason
    };
    s.capabilities = vec!["sys_resource".into()];
    assert!(reason(&s).contains("raise the limit"));
    s.capabilities.clear();
    s.namespaces.pid = false;
    s.namespaces
        .join
        .insert("pid".into(), "/proc/1/ns/pid".into());
    assert!(reason(&s).contains("join.pid"));
    s.namespaces.join.clear();
    s.namespaces.user = false;
    assert!(reason(&s).contains("the host's"));
}

#[test]
fn minimal_spec_is_valid() {
    validate(&base()).unwrap();
}

/// `/.` is the root, which no rule comparing paths would see: a dot
/// component is refused as `..` is.
#[test]
fn a_dot_in_a_destination_is_refused() {
    for dest in ["/.", "//.", "/./", "/x/./y", "/x/../y"] {
        let mut s = base();
        s.filesystem.mounts.push(tmpfs_at(dest));
        let e = validate(&s).unwrap_err();
        assert_eq!(e.field, "filesystem.mounts[0].destination", "{dest}");
        assert!(e.reason.contains("give the path"), "{dest}: {}", e.reason);
    }
}

fn tmpfs_at(destination: &str) -> Mount {
    Mount::Tmpfs {
        destination: destination.into(),
        size: None,
        mode: None,
        readonly: false,
        noexec: false,
        copy_up: false,
    }
}

#[test]
fn relative_destination() {
    let mut s = base();
    s.filesystem.mounts.push(tmpfs_at("tmp"));
    let e = validate(&s).unwrap_err();
    assert_eq!(e.field, "filesystem.mounts[0].destination");
    assert!(e.reason.contains("relative"));
}

#[test]
fn unknown_capability() {
    let mut s = base();
    s.capabilities.push("CAP_MAKE_COFFEE".into());
    let e = validate(&s).unwrap_err();
    assert_eq!(e.field, "capabilities[0]");
}

#[test]
fn ambient_capabilities_are_kept_ones() {
    let mut s = base();
    s.capabilities = vec!["net_bind_service".into()];
    s.ambient_capabilities = Some(vec!["CAP_NET_BIND_SERVICE".into()]);
    validate(&s).unwrap();
    s.ambient_capabilities = Some(vec!["CAP_NET_BIND_SERVICE".into(), "CAP_KILL".into()]);
    let e = validate(&s).unwrap_err();
    assert_eq!(e.field, "ambient_capabilities[1]");
    assert!(e.reason.contains("CAP_KILL is not in capabilities"), "{e}");
    s.ambient_capabilities = Some(vec!["CAP_MAKE_COFFEE".into()]);
    assert_eq!(validate(&s).unwrap_err().field, "ambient_capabilities[0]");
}

#[test]
fn capability_spellings() {
    assert_eq!(
        parse_capability("net_bind_service").unwrap(),
        caps::Capability::CAP_NET_BIND_SERVICE
    );
    assert!(parse_capability("CAP_SYS_ADMIN").is_ok());
    assert!(parse_capability("").is_err());
}

#[test]
fn overlapping_maps() {
    let mut s = base();
    s.identity.uid_map = vec![
        IdMap {
            inside: 0,
            outside: 1000,
            count: 10,
        },
        IdMap {
            inside: 5,
            outside: 5000,
            count: 10,
        },
    ];
    assert_eq!(validate(&s).unwrap_err().field, "identity.uid_map[1]");
}

#[test]
fn cwd_under_proc_is_refused() {
    for cwd in [
        "/proc/self/fd/7",
        "/proc",
        "//proc/self/fd/7",
        "/./proc/self/cwd",
        "/tmp/../proc/1/root",
    ] {
        let mut s = base();
        s.process.cwd = Some(cwd.into());
        assert_eq!(validate(&s).unwrap_err().field, "process.cwd", "{cwd}");
    }
    for cwd in ["/", "/procedures", "/tmp/proc", "/proc-x/.."] {
        let mut s = base();
        s.process.cwd = Some(cwd.into());
        validate(&s).unwrap_or_else(|e| panic!("{cwd}: {e}"));
    }
}

/// A clock that would start below zero is named, not "time".
#[test]
fn a_negative_clock_is_named() {
    let mut s = base();
    s.time.boottime = -5;
    assert_eq!(validate(&s).unwrap_err().field, "time.boottime");
    s.time.boottime = 10;
    s.time.monotonic = -1;
    assert_eq!(validate(&s).unwrap_err().field, "time.monotonic");
    // Offsets may be negative: only the kernel knows the host's clocks.
    s.time.offsets = true;
    validate(&s).unwrap();
}

/// Nanoseconds stay below a second, count in the clocks' order, and need
/// a time namespace like the seconds.
#[test]
fn clock_nanoseconds_are_checked() {
    let mut s = base();
    s.time.boottime = 5;
    s.time.monotonic = 5;
    s.time.boottime_nanos = 1_000_000_000;
    assert_eq!(validate(&s).unwrap_err().field, "time.boottime_nanos");
    s.time.boottime_nanos = 10;
    s.time.monotonic_nanos = 11;
    assert_eq!(validate(&s).unwrap_err().field, "time.monotonic");
    s.time.monotonic_nanos = 10;
    validate(&s).unwrap();
    let mut s = base();
    s.namespaces.time = false;
    s.time.boottime_nanos = 1;
    assert_eq!(validate(&s).unwrap_err().field, "time.boottime_nanos");
}

/// mknod keeps 12 bits of a major and 20 of a minor: 4109:64 would make
/// 13:64 (an input device) while checks named 4109. And a device's path
/// names a node below /dev, not /dev itself.
#[test]
fn a_device_the_kernel_cannot_number_or_place_is_refused() {
    let device = |path: &str, major, minor| crate::spec::Device {
        path: path.into(),
        kind: crate::spec::DeviceKind::Char,
        major,
        minor,
        mode: None,
        uid: None,
        gid: None,
    };
    for (d, field) in [
        (
            device("/dev/x", 4096 + 13, 64),
            "filesystem.devices[0].major",
        ),
        (device("/dev/x", 13, 1 << 20), "filesystem.devices[0].minor"),
        (device("/dev/", 1, 3), "filesystem.devices[0].path"),
        (device("/dev/.", 1, 3), "filesystem.devices[0].path"),
        (device("/dev/x/", 1, 3), "filesystem.devices[0].path"),
        (device("/dev/./x", 1, 3), "filesystem.devices[0].path"),
    ] {
        let mut s = base();
        s.filesystem.devices = vec![d];
        assert_eq!(validate(&s).unwrap_err().field, field);
    }
    for d in [
        device("/dev/x", 4095, (1 << 20) - 1),
        device("/dev/input/event0", 13, 64),
    ] {
        let mut s = base();
        s.filesystem.devices = vec![d];
        validate(&s).unwrap();
    }
}

/// A mode taken whole from st_mode keeps the file's type bits: the runner
/// could not read such a plan back, so the spec's check refuses it.
#[test]
fn a_mode_holds_permission_bits_only() {
    let mut s = base();
    s.filesystem.mounts = vec![crate::spec::Mount::Dir {
        destination: "/x".into(),
        mode: Some(crate::spec::FileMode(0o40755)),
        chmod: false,
    }];
    let e = validate(&s).unwrap_err();
    assert_eq!(e.field, "filesystem.mounts[0].mode");
    assert!(e.to_string().contains("40755 is larger than 7777"), "{e}");
}

/// chmod gives a dir mount's mode to a directory already there: with no
/// mode it would do nothing.
#[test]
fn chmod_of_a_dir_needs_a_mode() {
    let mut s = base();
    s.filesystem.mounts = vec![crate::spec::Mount::Dir {
        destination: "/x".into(),
        mode: None,
        chmod: true,
    }];
    assert_eq!(
        validate(&s).unwrap_err().field,
        "filesystem.mounts[0].chmod"
    );
    s.filesystem.mounts = vec![crate::spec::Mount::Dir {
        destination: "/x".into(),
        mode: Some(crate::spec::FileMode(0o700)),
        chmod: true,
    }];
    validate(&s).unwrap();
}

/// A file written under /proc or /sys would be written to the kernel (a
/// sysctl, /proc/sysrq-trigger): refused, however the path is spelled;
/// one bound over such a path (bubblewrap's --bind-data) is not written.
#[test]
fn a_file_is_not_written_into_the_kernels_filesystems() {
    let file = |destination: &str, bind| crate::spec::Mount::File {
        destination: destination.into(),
        content: "x".into(),
        mode: None,
        bind,
        chmod: false,
    };
    for dest in [
        "/proc/sys/kernel/core_pattern",
        "//proc/sysrq-trigger",
        "/sys/kernel/x",
    ] {
        let mut s = base();
        s.filesystem.mounts = vec![file(dest, false)];
        assert_eq!(
            validate(&s).unwrap_err().field,
            "filesystem.mounts[0].destination",
            "{dest}"
        );
    }
    for (dest, bind) in [
        ("/proc/cpuinfo", true),
        ("/procedures/x", false),
        ("/etc/sys", false),
    ] {
        let mut s = base();
        s.filesystem.mounts = vec![file(dest, bind)];
        validate(&s).unwrap_or_else(|e| panic!("{dest}: {e}"));
    }
}

/// Names and values that can never do what they say are refused by
/// field: an `unset_env` no variable can have would remove nothing, and a
/// sysctl value with a NUL failed only at the write, named by the sysctl.
#[test]
fn unset_names_and_sysctl_values_that_cannot_be_are_refused() {
    for name in ["", "FOO=", "FOO\0"] {
        let mut s = base();
        s.process.unset_env = vec!["OK".into(), name.into()];
        let e = validate(&s).unwrap_err();
        assert_eq!(e.field, "process.unset_env[1]", "{name:?}: {e}");
    }
    let mut s = base();
    s.sysctls.insert(
        "net.ipv4.ip_unprivileged_port_start".into(),
        "80\0junk".into(),
    );
    let e = validate(&s).unwrap_err();
    assert_eq!(
        e.field, "sysctls.net.ipv4.ip_unprivileged_port_start",
        "{e}"
    );
    assert!(e.to_string().contains("without NUL"), "{e}");
}

/// An overlay's layer given twice is refused naming both (overlayfs said
/// only "Too many levels of symbolic links"); one inside another is the
/// kernel's to judge (it takes it across mounts).
#[test]
fn overlay_layers_must_be_separate() {
    let mut s = base();
    s.filesystem.root = crate::spec::Root::Overlay {
        lower: vec!["/l/a".into(), "/l/a/".into()],
        upper: None,
        size: None,
    };
    let e = validate(&s).unwrap_err();
    assert_eq!(e.field, "filesystem.root.lower[1]", "{e}");
    assert!(e.to_string().contains("is also lower[0]"), "{e}");
    s.filesystem.root = crate::spec::Root::Overlay {
        lower: vec!["/l/a".into(), "/l/b".into()],
        upper: Some("/l/b".into()),
        size: None,
    };
    let e = validate(&s).unwrap_err();
    assert_eq!(e.field, "filesystem.root.upper", "{e}");
    assert!(e.to_string().contains("is also lower[1]"), "{e}");
    // On a tmpfs of its own, an overlay dir under a root of `/` mounts.
    s.filesystem.root = crate::spec::Root::Overlay {
        lower: vec!["/".into()],
        upper: Some("/tmp/ovl/up".into()),
        size: None,
    };
    validate(&s).unwrap();
    let mut s = base();
    s.filesystem.mounts.push(Mount::Overlay {
        destination: "/o".into(),
        lower: vec!["/x".into(), "//x".into()],
        writable: false,
        size: None,
        upper_dir: None,
        work_dir: None,
    });
    let e = validate(&s).unwrap_err();
    assert!(e.field.ends_with(".lower[1]"), "{e}");
    assert!(e.to_string().contains("is also lower[0]"), "{e}");
}
