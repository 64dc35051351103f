//! One test per rule that triggers it, and the near miss that does not.

use super::*;
use crate::spec::{IdMap, Mount, Root, SandboxSpec};
use std::collections::BTreeMap;

/// A plain recursive bind (the bind rules' tests use it too).
pub(super) fn bind(src: &str, dst: &str, readonly: bool) -> Mount {
    Mount::Bind {
        source: src.into(),
        destination: dst.into(),
        readonly,
        devices: false,
        noexec: false,
        recursive: true,
    }
}

fn spec_with(mounts: Vec<Mount>) -> SandboxSpec {
    let mut s = SandboxSpec::builder().args(["true"]).build();
    s.filesystem.mounts = mounts;
    s
}

fn host() -> Host {
    Host {
        home: Some("/home/me".into()),
        canonical: BTreeMap::new(),
        sockets: vec!["/run/docker.sock".into()],
        ..Default::default()
    }
}

fn codes(spec: &SandboxSpec, host: &Host) -> Vec<&'static str> {
    check(spec, host).iter().map(|f| f.code).collect()
}

fn denied(spec: &SandboxSpec) -> Vec<&'static str> {
    check(spec, &host())
        .iter()
        .filter(|f| f.refuses())
        .map(|f| f.code)
        .collect()
}

#[test]
fn default_view_is_clean() {
    let s = SandboxSpec::builder().args(["true"]).default_view().build();
    assert!(
        check(&s, &Host::probe(&s, &crate::Context::current()).unwrap()).is_empty(),
        "{:?}",
        check(&s, &Host::probe(&s, &crate::Context::current()).unwrap())
    );
}

#[test]
fn host_root_writable() {
    // A bind of / also exposes /proc, /sys and the sockets; the first
    // finding names the root itself.
    let root = |src: &str| denied(&spec_with(vec![bind(src, "/h", false)]))[0];
    assert_eq!(root("/"), "host-root-writable");
    // `..` chains that climb to `/`, and /usr/..
    assert_eq!(root("/home/me/share/../../.."), "host-root-writable");
    assert_eq!(root("/usr/.."), "host-root-writable");
    // Near miss: a folder to share.
    assert!(denied(&spec_with(vec![bind("/tmp/share", "/share", false)])).is_empty());
}

#[test]
fn host_system_writable() {
    for p in [
        "/etc",
        "/usr",
        "/usr/lib",
        "/boot",
        "/root",
        "/var/lib",
        "/var",
        "/etc/cron.d",
        "/var/spool",
        "/var/spool/cron/crontabs",
        "/run/systemd",
        "/run/systemd/system",
        "/run/udev/rules.d",
        "/opt",
        "/opt/google/chrome",
        "/var/lib/flatpak",
    ] {
        assert!(
            denied(&spec_with(vec![bind(p, "/x", false)])).contains(&"host-system-writable"),
            "{p}"
        );
    }
    // Near misses: read-only binds of the same, a data dir under /var/lib.
    assert!(denied(&spec_with(vec![bind("/etc", "/etc", true)])).is_empty());
    assert!(denied(&spec_with(vec![bind("/var/lib/myapp", "/data", false)])).is_empty());
    assert!(denied(&spec_with(vec![bind("/srv/data", "/data", false)])).is_empty());
}

#[test]
fn symlink_to_root_is_root() {
    let mut h = host();
    h.canonical.insert("/tmp/link".into(), "/".into());
    h.canonical.insert("/tmp/etc-link".into(), "/etc".into());
    let s = spec_with(vec![bind("/tmp/link", "/x", false)]);
    assert!(check(&s, &h).iter().any(|f| f.code == "host-root-writable"));
    let s = spec_with(vec![bind("/tmp/etc-link", "/x", false)]);
    assert!(check(&s, &h)
        .iter()
        .any(|f| f.code == "host-system-writable"));
}

#[test]
fn kernel_surface_bind() {
    for p in ["/proc", "/sys", "/sys/fs/cgroup", "/proc/1/root"] {
        assert_eq!(
            denied(&spec_with(vec![bind(p, "/x", true)])),
            ["kernel-surface-bind"],
            "{p}"
        );
    }
    // A read-only bind of / exposes /proc and /sys too.
    assert!(denied(&spec_with(vec![bind("/", "/host", true)])).contains(&"kernel-surface-bind"));
    assert!(denied(&spec_with(vec![bind("/procedures", "/x", true)])).is_empty());
}

#[test]
fn host_dev_bind() {
    let dev = |src: &str| Mount::Bind {
        source: src.into(),
        destination: "/dev".into(),
        readonly: false,
        devices: true,
        noexec: false,
        recursive: true,
    };
    // A writable /dev brings the host's shared /dev/shm along.
    assert_eq!(
        denied(&spec_with(vec![dev("/dev")])),
        ["host-shared-writable", "host-dev-bind"]
    );
    assert_eq!(denied(&spec_with(vec![dev("/dev/sda")])), ["host-dev-bind"]);
    assert!(denied(&spec_with(vec![dev("/dev/null")])).is_empty());
    // FUSE and TUN, which filesystem.devices gives unacknowledged.
    for node in ["/dev/fuse", "/dev/net/tun"] {
        assert!(denied(&spec_with(vec![dev(node)])).is_empty(), "{node}");
    }
    // A plain read-only bind of /dev/null is fine too.
    assert!(denied(&spec_with(vec![bind("/dev/null", "/null", true)])).is_empty());
}

#[test]
fn runtime_socket_bind() {
    assert_eq!(
        denied(&spec_with(vec![bind("/run/docker.sock", "/s", true)])),
        ["runtime-socket-bind"]
    );
    assert_eq!(
        denied(&spec_with(vec![bind("/var/lib/kubelet/pods", "/p", true)])),
        ["runtime-socket-bind"]
    );
    // /run exposes the socket that exists on this host.
    assert_eq!(
        denied(&spec_with(vec![bind("/run", "/run", true)])),
        ["runtime-socket-bind"]
    );
    // Near miss: on a host without the socket, /run is just /run.
    let mut h = host();
    h.sockets.clear();
    assert!(check(&spec_with(vec![bind("/run", "/run", true)]), &h).is_empty());
}

#[test]
fn host_rootfs() {
    let mut s = spec_with(vec![]);
    s.filesystem.root = Root::Path {
        path: "/".into(),
        readonly: true,
        make_mountpoints: false,
    };
    assert_eq!(denied(&s), ["host-rootfs"]);
    s.filesystem.root = Root::Path {
        path: "/srv/rootfs".into(),
        readonly: true,
        make_mountpoints: false,
    };
    assert!(denied(&s).is_empty());
}

#[test]
fn host_root_user() {
    let mut s = spec_with(vec![]);
    s.namespaces.user = false;
    // Root's uid, and root's group with it, of the host's own namespace.
    assert_eq!(
        denied(&s),
        ["host-root-user", "shared-user", "host-privileged-id"]
    );
    s.process.uid = Some(1000);
    assert_eq!(denied(&s), ["shared-user"]);
}

/// The host's root with a procfs whose /proc/sys is writable writes the
/// host's kernel settings: a finding of its own, which acknowledging
/// host-root-user does not cover (a bundle with no readonlyPaths).
#[test]
fn host_root_with_a_writable_proc_sys() {
    let mut s = spec_with(vec![crate::spec::Mount::Proc {
        destination: "/proc".into(),
    }]);
    s.namespaces.user = false;
    assert!(!denied(&s).contains(&"host-proc-writable"));
    s.filesystem
        .readonly_paths
        .retain(|p| p != "/proc/sysrq-trigger");
    let d = denied(&s);
    assert!(d.contains(&"host-proc-writable"), "{d:?}");
    // Read-only or masked by an ancestor covers it.
    s.filesystem.masked_paths.push("//proc/".into());
    assert!(!denied(&s).contains(&"host-proc-writable"));
    s.filesystem.masked_paths.pop();
    s.filesystem.readonly_paths.clear();
    let f = check(&s, &host());
    let found = f.iter().find(|f| f.code == "host-proc-writable").unwrap();
    assert!(
        found.message.starts_with("/proc/sys is neither"),
        "{}",
        found.message
    );
    // Another uid, or no procfs, or a user namespace of its own: none.
    s.process.uid = Some(1000);
    assert!(!denied(&s).contains(&"host-proc-writable"));
    s.process.uid = None;
    s.namespaces.user = true;
    assert!(!denied(&s).contains(&"host-proc-writable"));
    s.namespaces.user = false;
    s.filesystem.mounts.clear();
    assert!(!denied(&s).contains(&"host-proc-writable"));
    // Proc elsewhere: its own paths, or /proc's (masked in every procfs).
    s.filesystem.mounts.push(crate::spec::Mount::Proc {
        destination: "/proc2".into(),
    });
    s.filesystem.readonly_paths = vec!["/proc2/sys".into(), "/proc/sysrq-trigger".into()];
    assert!(
        !denied(&s).contains(&"host-proc-writable"),
        "{:?}",
        denied(&s)
    );
    s.filesystem.readonly_paths = vec!["/proc2/sys".into()];
    let f = check(&s, &host());
    let found = f.iter().find(|f| f.code == "host-proc-writable").unwrap();
    assert!(
        found.message.starts_with("/proc2/sysrq-trigger is neither"),
        "{}",
        found.message
    );
    // A map that gives the workload's uid the host's 0 is the host's root
    // to /proc/sys as well.
    s.namespaces.user = true;
    s.identity.uid_map = vec![IdMap {
        inside: 0,
        outside: 0,
        count: 1,
    }];
    s.identity.gid_map = s.identity.uid_map.clone();
    assert!(
        denied(&s).contains(&"host-proc-writable"),
        "{:?}",
        denied(&s)
    );
    s.identity.uid_map[0].outside = 100000;
    assert!(!denied(&s).contains(&"host-proc-writable"));
}

#[test]
fn shared_pid_and_host_root_mapped() {
    let mut s = spec_with(vec![]);
    s.namespaces.pid = false;
    assert_eq!(denied(&s), ["shared-pid"]);
    let mut s = spec_with(vec![]);
    s.identity.uid_map = vec![crate::spec::IdMap {
        inside: 0,
        outside: 0,
        count: 1,
    }];
    assert_eq!(denied(&s), ["host-root-mapped"]);
    s.identity.uid_map = vec![crate::spec::IdMap {
        inside: 0,
        outside: 100000,
        count: 65536,
    }];
    assert!(denied(&s).is_empty());
    let mut s = spec_with(vec![]);
    s.namespaces.user = false;
    s.process.uid = Some(1000);
    s.capabilities = vec!["CAP_SETUID".into()];
    assert_eq!(
        denied(&s),
        ["host-root-user", "shared-user", "cap-host-user"]
    );
}

#[test]
fn nested_mounts_are_judged() {
    let mut h = host();
    h.nested.insert(
        "/srv/chroot".into(),
        vec![
            NestedMount {
                mountpoint: "/srv/chroot/sys".into(),
                fstype: "sysfs".into(),
                socket: false,
                shows: None,
            },
            NestedMount {
                mountpoint: "/srv/chroot/run/docker.sock".into(),
                fstype: "tmpfs".into(),
                socket: true,
                shows: None,
            },
        ],
    );
    let s = spec_with(vec![bind("/srv/chroot", "/c", true)]);
    let codes: Vec<_> = check(&s, &h)
        .iter()
        .filter(|f| f.refuses())
        .map(|f| f.code)
        .collect();
    assert_eq!(codes, ["kernel-surface-bind", "runtime-socket-bind"]);
    // A chroot's /dev, the host's devtmpfs, through a device bind.
    let mut h = host();
    h.nested.insert(
        "/srv/chroot".into(),
        vec![NestedMount {
            mountpoint: "/srv/chroot/dev".into(),
            fstype: "devtmpfs".into(),
            socket: false,
            shows: None,
        }],
    );
    let mut s = spec_with(vec![bind("/srv/chroot", "/c", true)]);
    // (Without device access, its nodes do not open: no finding.)
    assert!(!check(&s, &h).iter().any(|f| f.code == "host-dev-bind"));
    if let Mount::Bind { devices, .. } = &mut s.filesystem.mounts[0] {
        *devices = true;
    }
    assert!(check(&s, &h)
        .iter()
        .any(|f| f.code == "host-dev-bind" && f.refuses()));
    // Runtime state that exists is exposed by an ancestor too.
    let mut h = host();
    h.state = [("/var/lib/kubelet".into(), "/var/lib/kubelet".into())].into();
    let s = spec_with(vec![bind("/var", "/v", true)]);
    assert!(check(&s, &h)
        .iter()
        .any(|f| f.code == "runtime-socket-bind"));
    // So is state another mount shows under a second name, by that name,
    // and from inside it; not a sibling of it.
    let mut h = host();
    h.state = [("/var/lib/docker".into(), "/var/lib/docker".into())].into();
    h.state_elsewhere = [("/var/lib/docker".into(), vec!["/data/docker".into()])].into();
    let judged = |src: &str| {
        let s = spec_with(vec![bind(src, "/v", false)]);
        check(&s, &h)
            .iter()
            .any(|f| f.code == "runtime-socket-bind")
    };
    assert!(judged("/data"));
    assert!(judged("/data/docker/image"));
    assert!(!judged("/data/other"));
    assert!(!judged("/data/docker/volumes/cache"));
}

#[test]
fn no_new_privs_disabled() {
    let mut s = spec_with(vec![]);
    s.process.no_new_privs = false;
    assert_eq!(denied(&s), ["no-new-privs-disabled"]);
}

/// The flags the kernel drops for a setuid program are judged; the
/// others (a domain, UNAME26) are not.
#[test]
fn a_personality_that_weakens_the_workload_is_denied() {
    let mut s = spec_with(vec![]);
    for harmless in [0x0, 0x8, 0x2_0008] {
        s.process.personality = Some(harmless);
        assert!(denied(&s).is_empty(), "{harmless:#x}");
    }
    for unsafe_flag in [0x4_0000, 0x10_0000, 0x20_0000, 0x40_0008] {
        s.process.personality = Some(unsafe_flag);
        assert_eq!(denied(&s), ["personality-unsafe"], "{unsafe_flag:#x}");
    }
}

#[test]
fn dangerous_capabilities() {
    for (cap, code) in CAPABILITY_CODES {
        let mut s = spec_with(vec![]);
        s.capabilities = vec![cap.to_string()];
        assert_eq!(denied(&s), [*code], "{cap}");
    }
    let mut s = spec_with(vec![]);
    s.capabilities = vec!["CAP_NET_BIND_SERVICE".into(), "CAP_CHOWN".into()];
    assert!(denied(&s).is_empty());
}

#[test]
fn dac_override_needs_host_binds() {
    let mut s = spec_with(vec![]);
    s.capabilities = vec!["CAP_DAC_OVERRIDE".into()];
    assert!(denied(&s).is_empty());
    s.filesystem.mounts.push(bind("/srv/data", "/data", true));
    // airlock's own maps reach no host file's owner.
    assert!(denied(&s).is_empty());
    s.identity.uid_map = vec![IdMap {
        inside: 0,
        outside: 1000,
        count: 1,
    }];
    assert_eq!(denied(&s), ["cap-dac-override"]);
}

#[test]
fn capabilities_with_shared_namespaces() {
    let mut s = spec_with(vec![]);
    s.capabilities = vec!["CAP_NET_ADMIN".into()];
    assert!(denied(&s).is_empty());
    s.namespaces.net = false;
    // With a user namespace of its own the host's network takes none of
    // its capabilities: a warning that says so.
    assert!(denied(&s).is_empty());
    assert_eq!(codes(&s, &host()), ["cap-net-inert", "shared-network"]);
    s.namespaces.user = false;
    let without_user = denied(&s);
    assert!(
        without_user.contains(&"cap-net-admin-host"),
        "{without_user:?}"
    );
    assert!(!codes(&s, &host()).contains(&"cap-net-inert"));
    // A network namespace joined by another path is a pod's, not the
    // host's: CNI pods run with containerd's CAP_NET_RAW.
    s.namespaces
        .join
        .insert("net".into(), "/run/netns/pod".into());
    let mut pod = host();
    pod.joins_own_net = false;
    let in_pod = codes(&s, &pod);
    assert!(!in_pod.contains(&"cap-net-admin-host"), "{in_pod:?}");
    assert!(!in_pod.contains(&"shared-network"), "{in_pod:?}");
    pod.joins_own_net = true;
    assert!(codes(&s, &pod).contains(&"cap-net-admin-host"));
    let mut s = spec_with(vec![]);
    s.capabilities = vec!["CAP_KILL".into()];
    assert!(denied(&s).is_empty());
    s.namespaces.pid = false;
    assert_eq!(denied(&s), ["shared-pid", "cap-host-pid"]);
}

/// Root's dotfiles run as root (its shell's start-up files, ~/.config's
/// units and autostart, ~/.local/bin), as do cloud-init's scripts and
/// what the EFI system partition boots: written, refused like /etc.
/// Root's other folders stay the caller's business.
#[test]
fn roots_dotfiles_and_boot_time_code_are_system() {
    let mut root = host();
    root.home = Some("/root".into());
    for dir in [
        "/root/.bashrc",
        "/root/.profile",
        "/root/.config/systemd/user",
        "/var/lib/cloud/scripts/per-boot",
        "/efi",
    ] {
        for h in [host(), root.clone()] {
            let s = spec_with(vec![bind(dir, "/d", false)]);
            assert_eq!(codes(&s, &h), ["host-system-writable"], "{dir}");
            let s = spec_with(vec![bind(dir, "/d", true)]);
            assert!(codes(&s, &h).is_empty(), "{dir} read-only");
        }
    }
    let s = spec_with(vec![bind("/root/work", "/w", false)]);
    assert!(codes(&s, &root).is_empty());
}

#[test]
fn warnings() {
    let mut s = spec_with(vec![]);
    s.namespaces.net = false;
    s.new_session = false;
    assert_eq!(codes(&s, &host()), ["shared-network", "shared-session"]);
    assert!(!refused(&check(&s, &host())));
    let s = spec_with(vec![bind("/home/me", "/home/me", false)]);
    assert_eq!(codes(&s, &host()), ["home-writable"]);
    let s = spec_with(vec![bind("/home", "/home", false)]);
    assert_eq!(
        codes(&s, &host()),
        ["host-shared-writable", "home-writable"]
    );
    let s = spec_with(vec![bind("/home/me/project", "/p", false)]);
    assert!(
        codes(&s, &host()).is_empty(),
        "a folder inside home is the normal case"
    );
    // Its dotfiles are what the caller's shell and programs run: written,
    // warned of; read, or a folder that only starts with a dot further
    // down, not.
    for dot in [
        "/home/me/.bashrc",
        "/home/me/.config/autostart",
        "/home/me/.local",
    ] {
        let s = spec_with(vec![bind(dot, "/d", false)]);
        assert_eq!(codes(&s, &host()), ["home-writable"], "{dot}");
        let s = spec_with(vec![bind(dot, "/d", true)]);
        assert!(codes(&s, &host()).is_empty(), "{dot} read-only");
    }
    let s = spec_with(vec![bind("/home/me/project/.git", "/g", false)]);
    assert!(codes(&s, &host()).is_empty());
    let s = spec_with(vec![bind("/", "/host", true)]);
    assert!(codes(&s, &host()).contains(&"host-root-readonly"));
}

#[test]
fn acknowledgement() {
    let mut s = spec_with(vec![bind("/etc", "/etc", false)]);
    assert!(refused(&check(&s, &host())));
    s.allow_unsafe = vec!["host-system-writable".into()];
    let f = check(&s, &host());
    assert!(!refused(&f));
    assert!(f[0].acknowledged);
    // Acknowledging something not triggered is a warning.
    s.allow_unsafe.push("cap-bpf".into());
    let f = check(&s, &host());
    assert!(f
        .iter()
        .any(|x| x.code == "unused-allow-unsafe" && x.severity == Severity::Warn));
    // Unknown codes are an error.
    s.allow_unsafe.push("everything".into());
    assert_eq!(validate_codes(&s).unwrap_err().field, "allow_unsafe[2]");
}

#[test]
fn rendering_is_compiler_like() {
    let s = spec_with(vec![bind("/etc", "/etc", false)]);
    let text = render(&check(&s, &host()));
    assert!(
        text.starts_with("error[host-system-writable]: filesystem.mounts[0]: "),
        "{text}"
    );
    assert!(
        text.contains("  = help: if this is intended, pass `--allow-unsafe host-system-writable`"),
        "{text}"
    );
}

#[test]
fn recheck_sees_the_opened_object() {
    let s = spec_with(vec![bind("/tmp/share", "/share", false)]);
    assert!(check(&s, &host()).is_empty());
    // The path was swapped for a symlink to /etc after the check.
    let f = recheck_source(&s, &host(), &Snapshot::take(None), "/tmp/share", "/etc");
    assert_eq!(f[0].code, "host-system-writable");
}

/// A source opened again to the same place is judged once, every mount
/// of it with it (N binds of one directory were judged N × N times); a
/// refusal is never remembered.
#[test]
fn recheck_judges_a_source_once_and_never_forgets_a_refusal() {
    let s = spec_with(vec![
        bind("/tmp/share", "/a", false),
        bind("/tmp/share", "/b", false),
    ]);
    let seen = Snapshot::take(None);
    for _ in 0..2 {
        let f = recheck_source(&s, &host(), &seen, "/tmp/share", "/etc");
        assert_eq!(f.first().map(|f| f.code), Some("host-system-writable"));
    }
    let key = |opened: &str| {
        let named = seen.marks.name(opened);
        ("/tmp/share".to_string(), opened.to_string(), named)
    };
    assert!(!seen.passed(&key("/etc")));
    assert!(recheck_source(&s, &host(), &seen, "/tmp/share", "/tmp/share").is_empty());
    assert!(seen.passed(&key("/tmp/share")));
    // Led elsewhere by the next opening: judged again.
    let f = recheck_source(&s, &host(), &seen, "/tmp/share", "/etc");
    assert_eq!(f.first().map(|f| f.code), Some("host-system-writable"));
}

#[test]
fn recheck_keeps_the_probed_sockets_of_the_object_it_judged() {
    let dir = std::env::temp_dir().join(format!("airlock-recheck-{}", std::process::id()));
    let (plain, with_socket) = (dir.join("plain"), dir.join("agent"));
    std::fs::create_dir_all(&plain).unwrap();
    std::fs::create_dir_all(&with_socket).unwrap();
    let _listener = std::os::unix::net::UnixListener::bind(with_socket.join("s.sock")).unwrap();
    let (plain, with_socket) = (
        plain.to_str().unwrap().to_string(),
        with_socket.to_str().unwrap().to_string(),
    );
    let s = spec_with(vec![bind(&plain, "/x", true)]);
    let seen = Snapshot::take(None);
    // Still the object the probe judged: the probe's sockets stand (a
    // bind shows the live entries, so reading them again guards nothing).
    let mut h = host();
    h.canonical.insert(plain.clone(), plain.clone());
    h.sockets_at
        .insert(plain.clone(), vec![format!("{plain}/s.sock")]);
    let f = recheck_source(&s, &h, &seen, &plain, &plain);
    assert_eq!(f.first().map(|f| f.code), Some("socket-bind"), "{f:?}");
    h.sockets_at.clear();
    assert!(recheck_source(&s, &h, &seen, &plain, &plain).is_empty());
    // Swapped for another directory: that one's sockets are read.
    let f = recheck_source(&s, &h, &seen, &plain, &with_socket);
    assert_eq!(f.first().map(|f| f.code), Some("socket-bind"), "{f:?}");
    // A file bind whose source became a socket under the same name (the
    // probe saw a file, and no socket): the object opened is a socket.
    let file = format!("{with_socket}/input");
    let _swapped = std::os::unix::net::UnixListener::bind(&file).unwrap();
    let s = spec_with(vec![bind(&file, "/input", true)]);
    let mut h = host();
    h.canonical.insert(file.clone(), file.clone());
    let seen = Snapshot::take(None);
    let f = recheck_source(&s, &h, &seen, &file, &file);
    assert_eq!(f.first().map(|f| f.code), Some("socket-bind"), "{f:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_kept_listing_of_sockets_goes_when_the_directory_changes() {
    let dir = std::env::temp_dir().join(format!("airlock-listed-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.to_str().unwrap().to_string();
    // Kept only once the directory's ctime is over a second old.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert!(super::snapshot::sockets_at(&path).is_empty());
    assert!(super::snapshot::sockets_at(&path).is_empty());
    let _listener = std::os::unix::net::UnixListener::bind(dir.join("s.sock")).unwrap();
    assert_eq!(
        super::snapshot::sockets_at(&path),
        vec![format!("{path}/s.sock")]
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn every_rule_code_is_kebab_case_and_unique() {
    let mut seen = std::collections::HashSet::new();
    for r in RULES {
        assert!(
            r.code.chars().all(|c| c.is_ascii_lowercase() || c == '-'),
            "{}",
            r.code
        );
        assert!(seen.insert(r.code), "duplicate {}", r.code);
    }
}

/// A host like Debian's: shadow owns /etc/shadow, a docker group made with
/// an ordinary gid owns the socket, a service user owns its logs.
fn host_with_ids() -> Host {
    let mut h = host();
    let ids = &mut h.ids;
    for (gid, name) in [
        (0, "root"),
        (4, "adm"),
        (6, "disk"),
        (42, "shadow"),
        (100, "users"),
    ] {
        ids.group_names.insert(gid, name);
    }
    ids.group_names.insert(1000, "me");
    ids.group_keys.insert(42, "/etc/shadow");
    ids.group_keys.insert(4242, "/run/docker.sock");
    ids.owners.insert(1500, "/etc/app/secret.conf");
    h
}

fn denied_on(s: &SandboxSpec, h: &Host) -> Vec<(&'static str, String)> {
    check(s, h)
        .into_iter()
        .filter(|f| f.refuses())
        .map(|f| (f.code, f.subject))
        .collect()
}

fn shared_user(uid: u32) -> SandboxSpec {
    let mut s = spec_with(vec![]);
    s.namespaces.user = false;
    s.process.uid = Some(uid);
    s
}

#[test]
fn shared_user_is_a_finding_of_its_own() {
    let s = shared_user(1000);
    let f = check(&s, &host_with_ids());
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!((f[0].code, f[0].severity), ("shared-user", Severity::Deny));
    assert!(
        f[0].message.contains("uid 1000 and gid 1000"),
        "{}",
        f[0].message
    );
    let mut s = s;
    s.allow_unsafe = vec!["shared-user".into()];
    assert!(!refused(&check(&s, &host_with_ids())));
}

#[test]
fn shared_user_with_any_capability() {
    // The reported example and its neighbours, however they are spelled.
    for caps in [
        &["CAP_CHOWN", "CAP_FOWNER"][..],
        &["cap_chown"],
        &["fowner"],
        &["CAP_SETFCAP"],
        &["cap_mknod"],
        &["CAP_NET_BIND_SERVICE"],
        &["CAP_KILL"],
    ] {
        let mut s = shared_user(1000);
        s.capabilities = caps.iter().map(|c| c.to_string()).collect();
        let d = denied_on(&s, &host_with_ids());
        assert!(
            d.contains(&("cap-host-user", "capabilities".into())),
            "{caps:?}: {d:?}"
        );
    }
    // Near miss: the same capability in a user namespace of its own.
    let mut s = spec_with(vec![]);
    s.capabilities = vec!["CAP_CHOWN".into(), "CAP_MKNOD".into()];
    assert!(denied(&s).is_empty());
}

#[test]
fn shared_user_with_a_privileged_group() {
    let h = host_with_ids();
    let gid = |g: u32| {
        let mut s = shared_user(1000);
        s.process.gid = Some(g);
        denied_on(&s, &h)
    };
    let privileged = ("host-privileged-id", "process.gid".to_string());
    // gid 0; shadow by its file; adm and disk as system groups; a docker
    // group with an ordinary gid, by the socket it owns.
    for g in [0, 42, 4, 6, 100, 999, 4242] {
        assert!(gid(g).contains(&privileged), "gid {g}: {:?}", gid(g));
    }
    // Near misses: an ordinary group, the overflow group, an unknown one.
    for g in [1000, 65534, 5000] {
        assert_eq!(
            gid(g),
            [("shared-user", "namespaces.user".into())],
            "gid {g}"
        );
    }
    // Supplementary groups, each named by its index.
    let mut s = shared_user(1000);
    s.process.groups = vec![1000, 42, 4242];
    let d = denied_on(&s, &h);
    assert!(
        !d.iter().any(|(_, subj)| subj == "process.groups[0]"),
        "{d:?}"
    );
    assert!(d.contains(&("host-privileged-id", "process.groups[1]".into())));
    assert!(d.contains(&("host-privileged-id", "process.groups[2]".into())));
    // The message says which group and why.
    let f = check(&s, &h);
    let m = &f
        .iter()
        .find(|f| f.subject == "process.groups[1]")
        .unwrap()
        .message;
    assert!(
        m.contains("gid 42 (shadow)") && m.contains("/etc/shadow"),
        "{m}"
    );
    // A uid given alone brings its own group: uid 42 is a system account
    // and gid 42 is shadow.
    let d = denied_on(&shared_user(42), &h);
    assert!(
        d.contains(&("host-privileged-id", "process.uid".into())),
        "{d:?}"
    );
    assert!(d.contains(&privileged), "{d:?}");
    // A uid that owns a host system file is privileged too.
    assert!(
        denied_on(&shared_user(1500), &h).contains(&("host-privileged-id", "process.uid".into()))
    );
}

#[test]
fn login_defs_and_overflow_ids_move_the_line() {
    let mut h = host_with_ids();
    h.ids.gid_min = 500;
    h.ids.uid_min = 500;
    let mut s = shared_user(600);
    s.process.gid = Some(600);
    assert_eq!(
        denied_on(&s, &h),
        [("shared-user", "namespaces.user".into())]
    );
    h.ids.overflow_gid = 99;
    s.process.gid = Some(99);
    assert_eq!(
        denied_on(&s, &h),
        [("shared-user", "namespaces.user".into())]
    );
    // Unprobed, the usual line of 1000 holds: the default fails closed.
    s.process.gid = Some(42);
    assert!(!denied_on(&s, &host()).is_empty());
    assert!(denied_on(&s, &host()).contains(&("host-privileged-id", "process.gid".into())));
}

fn map(inside: u32, outside: u32, count: u32) -> crate::spec::IdMap {
    crate::spec::IdMap {
        inside,
        outside,
        count,
    }
}

#[test]
fn maps_onto_privileged_host_ids() {
    let h = host_with_ids();
    let with = |uid_map: Vec<crate::spec::IdMap>, gid_map: Vec<crate::spec::IdMap>| {
        let mut s = spec_with(vec![]);
        s.identity.uid_map = uid_map;
        s.identity.gid_map = gid_map;
        denied_on(&s, &h)
    };
    let range = || vec![map(0, 100000, 65536)];
    // The reported example: gid 0 inside is the host's shadow group.
    assert_eq!(
        with(range(), vec![map(0, 42, 1)]),
        [("host-privileged-mapped", "identity.gid_map[0]".into())]
    );
    // Neighbours: adm and disk, a second line of a map, a range that
    // covers system groups, a docker group with an ordinary gid.
    for gid_map in [
        vec![map(0, 4, 1)],
        vec![map(0, 6, 1)],
        vec![map(0, 100000, 65536), map(65536, 42, 1)],
        vec![map(1, 1, 999)],
        vec![map(0, 4000, 1000)],
    ] {
        let d = with(range(), gid_map.clone());
        assert!(
            d.iter().any(|(c, _)| *c == "host-privileged-mapped"),
            "{gid_map:?}: {d:?}"
        );
    }
    // uid maps onto system accounts or owners of host system files.
    for uid_map in [
        vec![map(0, 33, 1)],
        vec![map(0, 1500, 1)],
        vec![map(0, 1, 65535)],
    ] {
        assert_eq!(
            with(uid_map.clone(), range()),
            [("host-privileged-mapped", "identity.uid_map[0]".into())],
            "{uid_map:?}"
        );
    }
    // Host id 0 stays host-root-mapped's.
    let d = with(vec![map(0, 0, 1)], range());
    assert_eq!(d, [("host-root-mapped", "identity".into())]);
    // Near misses: the usual subordinate range, one ordinary id, the
    // overflow ids, a range that wraps past u32::MAX without panicking.
    assert!(with(range(), range()).is_empty());
    assert!(with(vec![map(0, 1000, 1)], vec![map(0, 1000, 1)]).is_empty());
    assert!(with(vec![map(0, 65534, 1)], vec![map(0, 65534, 1)]).is_empty());
    assert!(with(range(), vec![map(0, u32::MAX - 1, u32::MAX)]).is_empty());
    // The message names the host id and why it matters.
    let mut s = spec_with(vec![]);
    s.identity.gid_map = vec![map(0, 42, 1)];
    let f = check(&s, &h);
    assert!(
        f[0].message.contains("host gid 42") && f[0].message.contains("(shadow)"),
        "{}",
        f[0].message
    );
}

#[test]
fn sysctls_of_a_joined_host_network_namespace_are_refused() {
    let mut s = spec_with(vec![]);
    s.namespaces.net = false;
    s.namespaces
        .join
        .insert("net".into(), "/run/netns/x".into());
    s.sysctls.insert("net.ipv4.ip_forward".into(), "1".into());
    // Another namespace: its own sysctls are its business.
    assert!(denied(&s).is_empty(), "{:?}", denied(&s));
    // The caller's own: they would be the host's.
    let h = Host {
        joins_own_net: true,
        ..host()
    };
    let codes: Vec<_> = check(&s, &h)
        .iter()
        .filter(|f| f.refuses())
        .map(|f| f.code)
        .collect();
    assert_eq!(codes, ["host-sysctl"]);
}

#[test]
fn a_shared_or_joined_host_ipc_namespace_is_a_warning() {
    let warned = |s: &SandboxSpec, h: &Host| {
        let f = check(s, h);
        let ipc: Vec<_> = f.iter().filter(|f| f.code == "shared-ipc").collect();
        assert!(ipc.iter().all(|f| !f.refuses()), "a warning: {ipc:?}");
        !ipc.is_empty()
    };
    let mut s = spec_with(vec![]);
    assert!(!warned(&s, &host()), "a new IPC namespace");
    s.namespaces.ipc = false;
    assert!(warned(&s, &host()), "the caller's, shared");
    s.namespaces
        .join
        .insert("ipc".into(), "/proc/4242/ns/ipc".into());
    assert!(!warned(&s, &host()), "another's, joined");
    let h = Host {
        joins_own_ipc: true,
        ..host()
    };
    assert!(warned(&s, &h), "the caller's own, joined by path");
}

#[test]
fn caller_bind_setfcap_and_unfiltered() {
    let root = Host {
        root_caller: true,
        ..host()
    };
    let mut s = spec_with(vec![bind("/srv/out", "/out", false)]);
    s.capabilities = vec!["CAP_SETFCAP".into()];
    assert!(codes(&s, &root).contains(&"caller-bind-setfcap"));
    s.capabilities.clear();
    s.seccomp = crate::seccomp::Seccomp::None;
    assert!(codes(&s, &root).contains(&"caller-bind-unfiltered"));
    // Near misses: a rootless caller (its binds are its own already), a
    // read-only bind, ids kept as they are, the host's ownership view.
    let near = |edit: &dyn Fn(&mut SandboxSpec), h: &Host| {
        let mut s = spec_with(vec![bind("/srv/out", "/out", false)]);
        s.capabilities = vec!["CAP_SETFCAP".into()];
        s.seccomp = crate::seccomp::Seccomp::None;
        edit(&mut s);
        let c = codes(&s, h);
        assert!(
            !c.contains(&"caller-bind-setfcap") && !c.contains(&"caller-bind-unfiltered"),
            "{c:?}"
        );
    };
    near(&|_| {}, &host());
    near(
        &|s| s.filesystem.mounts = vec![bind("/srv/out", "/out", true)],
        &root,
    );
    near(
        &|s| s.filesystem.bind_owner = crate::spec::BindOwner::AsIs,
        &root,
    );
    near(&|s| s.filesystem.idmap = vec!["/out".into()], &root);
}

/// A root caller's map that puts the sandbox's root on a host account:
/// that account owns the user namespace and can enter it past the filter,
/// where host root's files in a writable bind are the sandbox root's.
#[test]
fn caller_bind_owner_is_a_host_account() {
    let mut root = Host {
        root_caller: true,
        ..host()
    };
    root.ids.user_names.insert(1000, "alice");
    let map = |outside| {
        vec![crate::spec::IdMap {
            inside: 0,
            outside,
            count: 1,
        }]
    };
    let mut s = spec_with(vec![bind("/srv/out", "/out", false)]);
    s.identity.uid_map = map(1000);
    s.identity.gid_map = map(1000);
    assert!(denied_on(&s, &root).contains(&("caller-bind-owner", "identity.uid_map".into())));
    // Not an account; a read-only bind; ids as they are.
    s.identity.uid_map = map(300_000);
    assert!(!codes(&s, &root).contains(&"caller-bind-owner"));
    s.identity.uid_map = map(1000);
    s.filesystem.mounts = vec![bind("/srv/out", "/out", true)];
    assert!(!codes(&s, &root).contains(&"caller-bind-owner"));
    s.filesystem.mounts = vec![bind("/srv/out", "/out", false)];
    s.filesystem.bind_owner = crate::spec::BindOwner::AsIs;
    assert!(!codes(&s, &root).contains(&"caller-bind-owner"));
}

#[test]
fn host_shared_writable_and_socket_bind() {
    for d in ["/tmp", "/var/tmp", "/dev/shm", "/run", "/home", "/var"] {
        let s = spec_with(vec![bind(d, "/x", false)]);
        assert!(denied(&s).contains(&"host-shared-writable"), "{d}");
        let s = spec_with(vec![bind(d, "/x", true)]);
        assert!(!codes(&s, &host()).contains(&"host-shared-writable"), "{d}");
    }
    let s = spec_with(vec![bind("/tmp/mine", "/x", false)]);
    assert!(!codes(&s, &host()).contains(&"host-shared-writable"));
    let mut h = host();
    h.sockets_at
        .insert("/srv/agent".into(), vec!["/srv/agent/s.sock".into()]);
    let s = spec_with(vec![bind("/srv/agent", "/x", true)]);
    assert!(codes(&s, &h).contains(&"socket-bind"));
    assert!(!codes(&s, &host()).contains(&"socket-bind"));
}

#[test]
fn raised_priority_by_scheduling_or_by_the_limits_that_allow_it() {
    use crate::spec::{IoClass, Rlimit, SchedPolicy, Scheduling};
    let mut s = spec_with(vec![]);
    assert!(!codes(&s, &host()).contains(&"raised-priority"));
    // Lowered: nothing to acknowledge.
    s.process.scheduling = Scheduling {
        nice: Some(10),
        policy: Some(SchedPolicy::Idle),
        io_class: Some(IoClass::Idle),
        ..Default::default()
    };
    assert!(!codes(&s, &host()).contains(&"raised-priority"));
    for raised in [
        Scheduling {
            nice: Some(-1),
            ..Default::default()
        },
        Scheduling {
            policy: Some(SchedPolicy::Fifo),
            priority: Some(1),
            ..Default::default()
        },
        Scheduling {
            io_class: Some(IoClass::Realtime),
            ..Default::default()
        },
    ] {
        s.process.scheduling = raised;
        assert!(
            denied(&s).contains(&"raised-priority"),
            "{:?}",
            s.process.scheduling
        );
    }
    s.process.scheduling = Scheduling::default();
    let limit = |resource: &str, hard| Rlimit {
        resource: resource.into(),
        soft: 0,
        hard,
    };
    for (r, raises) in [
        (limit("rtprio", 0), false),
        (limit("rtprio", 1), true),
        (limit("nice", 20), false),
        (limit("nice", 21), true),
        (limit("nofile", 1 << 20), false),
    ] {
        s.process.rlimits = vec![r.clone()];
        assert_eq!(denied(&s).contains(&"raised-priority"), raises, "{r:?}");
    }
}

/// An idmapped bind shows host root's files as sandbox root's: read-only
/// too, where files only their owners may read are (/etc/shadow), it is
/// refused; elsewhere (a data directory) it is not.
#[test]
fn an_idmapped_bind_of_private_files_is_refused_read_only_too() {
    let with = |source: &str| {
        let mut s = SandboxSpec::default();
        s.filesystem.mounts = vec![bind(source, "/x", true)];
        s.filesystem.idmap = vec!["/x".into()];
        s
    };
    for private in [
        "/etc",
        "/root/.ssh",
        "/var/lib/postgresql",
        "/",
        "/home/me/src",
        "/var",
        // Debian's mail spool and its backups of /etc/shadow.
        "/var/mail",
        "/var/backups",
    ] {
        assert!(
            denied(&with(private)).contains(&"idmapped-private"),
            "{private}: {:?}",
            denied(&with(private))
        );
    }
    assert!(!codes(&with("/srv/data"), &host()).contains(&"idmapped-private"));
    assert!(!codes(&with("/usr/share/doc"), &host()).contains(&"idmapped-private"));
}

/// A root caller's overlay root of host directories is idmapped through
/// the sandbox's user namespace (so that its files can be copied up):
/// a layer that reaches private files is refused as an idmapped bind of
/// them would be; a store layer (unpacked for the sandbox's ids, never
/// idmapped), a rootless caller's layer and one without a user namespace
/// of the sandbox's own are not.
#[test]
fn a_root_callers_overlay_layer_of_private_files_is_refused() {
    use crate::spec::Root;
    let with = |lower: &str| {
        let mut s = SandboxSpec::default();
        s.filesystem.root = Root::Overlay {
            lower: vec!["/srv/rootfs".into(), lower.into()],
            upper: None,
            size: None,
        };
        s
    };
    let root = Host {
        root_caller: true,
        store: Some("/var/lib/airlock/images".into()),
        ..host()
    };
    let on = |s: &SandboxSpec, h: &Host| -> Vec<(&'static str, String)> {
        denied_on(s, h)
            .into_iter()
            .filter(|(c, _)| *c == "idmapped-private")
            .collect()
    };
    for private in ["/etc", "/home", "/home/me/img", "/var/lib/machines/x", "/"] {
        assert_eq!(
            on(&with(private), &root),
            [("idmapped-private", "filesystem.root.lower[1]".to_string())],
            "{private}"
        );
    }
    assert!(on(&with("/srv/other"), &root).is_empty());
    let layer = "/var/lib/airlock/images/layers/ab12/rootfs";
    assert!(on(&with(layer), &root).is_empty());
    assert!(on(&with("/etc"), &host()).is_empty(), "a rootless caller");
    let mut shared = with("/etc");
    shared.namespaces.user = false;
    assert!(on(&shared, &root).is_empty(), "no user namespace");
    // A writable overlay mount's layers likewise; a read-only one's are
    // never idmapped.
    let mount = |writable: bool| {
        let mut s = SandboxSpec::default();
        s.filesystem.mounts = vec![crate::spec::Mount::Overlay {
            destination: "/o".into(),
            lower: vec!["/srv/a".into(), "/etc".into()],
            writable,
            size: None,
            upper_dir: None,
            work_dir: None,
        }];
        s
    };
    assert_eq!(
        on(&mount(true), &root),
        [(
            "idmapped-private",
            "filesystem.mounts[0].lower[1]".to_string()
        )]
    );
    assert!(on(&mount(false), &root).is_empty());
}

/// The mounts an idmapped bind carries are idmapped with it: one that
/// shows /etc (a bind of it made below a data directory) is judged as
/// /etc, not passed as the data directory.
#[test]
fn an_idmapped_bind_is_judged_by_what_its_mounts_show() {
    let mut s = SandboxSpec::default();
    s.filesystem.mounts = vec![bind("/srv/data", "/x", true)];
    s.filesystem.idmap = vec!["/x".into()];
    let mut h = host();
    assert!(!codes(&s, &h).contains(&"idmapped-private"));
    h.nested.insert(
        "/srv/data".into(),
        vec![NestedMount {
            mountpoint: "/srv/data/etc".into(),
            fstype: "ext4".into(),
            socket: false,
            shows: Some("/etc".into()),
        }],
    );
    assert!(
        codes(&s, &h).contains(&"idmapped-private"),
        "{:?}",
        codes(&s, &h)
    );
}

/// Every bind onto an idmapped destination is idmapped, so each is
/// judged: a harmless read-only bind listed first does not hide a
/// writable bind of private files onto the same path.
#[test]
fn an_idmap_entry_is_judged_for_every_bind_it_names() {
    let mut s = SandboxSpec::default();
    s.filesystem.mounts = vec![bind("/srv/data", "/x", true), bind("/etc", "/x", false)];
    s.filesystem.idmap = vec!["/x".into()];
    let d = denied(&s);
    assert!(d.contains(&"idmapped-writable"), "{d:?}");
    assert!(d.contains(&"idmapped-private"), "{d:?}");
}

/// Inside /var/lib, /root and /run most directories are a service's own
/// data, shared on purpose; these few are what root runs or trusts next.
#[test]
fn what_root_runs_next_is_refused_inside_the_data_directories() {
    for dir in [
        "/var/lib/dpkg/info",
        "/var/lib/rpm",
        "/root/.ssh",
        "/run/initramfs",
        "/run/sysctl.d",
    ] {
        let mut s = SandboxSpec::default();
        s.filesystem.mounts = vec![bind(dir, "/x", false)];
        assert!(denied(&s).contains(&"host-system-writable"), "{dir}");
        s.filesystem.mounts = vec![bind(dir, "/x", true)];
        assert!(
            !denied(&s).contains(&"host-system-writable"),
            "{dir} read-only"
        );
    }
    let mut s = SandboxSpec::default();
    s.filesystem.mounts = vec![bind("/var/lib/postgresql", "/x", false)];
    assert!(!denied(&s).contains(&"host-system-writable"));
}

/// Every kernel filesystem mounted above a path counts, wherever the
/// table lists it: a procfs moved below a tmpfs mounted after it keeps
/// its earlier place in the table, and a procfs mounted over a directory
/// hides a tmpfs mounted deeper before it.
#[test]
fn every_kernel_mount_above_a_path_counts() {
    let table = "30 1 0:5 / /y/p rw - proc proc rw\n31 1 0:6 / /y rw - tmpfs tmpfs rw\n";
    let n = host::nested_mounts(table, "/y/p/1");
    assert!(
        n.iter()
            .any(|m| m.fstype == "proc" && m.mountpoint == "/y/p"),
        "{n:?}"
    );
    assert!(host::nested_mounts(table, "/y/q").is_empty());
    let table = "30 1 0:6 / /a/sys rw - tmpfs tmpfs rw\n31 1 0:5 / /a rw - proc proc rw\n";
    let n = host::nested_mounts(table, "/a/sys/kernel");
    assert!(n.iter().any(|m| m.fstype == "proc"), "{n:?}");
}
