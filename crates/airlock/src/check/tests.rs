//! One test per rule that triggers it, and the near miss that does not.

use super::*;
use crate::spec::{Mount, SandboxSpec};

fn bind(src: &str, dst: &str, readonly: bool) -> Mount {
    Mount::Bind {
        source: src.into(),
        destination: dst.into(),
        readonly,
        devices: false,
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
        check(&s, &Host::probe(&s, &crate::Context::current())).is_empty(),
        "{:?}",
        check(&s, &Host::probe(&s, &crate::Context::current()))
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
    };
    assert_eq!(denied(&spec_with(vec![dev("/dev")])), ["host-dev-bind"]);
    assert_eq!(denied(&spec_with(vec![dev("/dev/sda")])), ["host-dev-bind"]);
    assert!(denied(&spec_with(vec![dev("/dev/null")])).is_empty());
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
    };
    assert_eq!(denied(&s), ["host-rootfs"]);
    s.filesystem.root = Root::Path {
        path: "/srv/rootfs".into(),
        readonly: true,
    };
    assert!(denied(&s).is_empty());
}

#[test]
fn host_root_user() {
    let mut s = spec_with(vec![]);
    s.namespaces.user = false;
    assert_eq!(denied(&s), ["host-root-user"]);
    s.process.uid = Some(1000);
    assert!(denied(&s).is_empty());
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
    assert_eq!(denied(&s), ["host-root-user"]);
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
            },
            NestedMount {
                mountpoint: "/srv/chroot/run/docker.sock".into(),
                fstype: "tmpfs".into(),
                socket: true,
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
    // Runtime state that exists is exposed by an ancestor too.
    let mut h = host();
    h.state = vec!["/var/lib/kubelet".into()];
    let s = spec_with(vec![bind("/var", "/v", true)]);
    assert!(check(&s, &h)
        .iter()
        .any(|f| f.code == "runtime-socket-bind"));
}

#[test]
fn no_new_privs_disabled() {
    let mut s = spec_with(vec![]);
    s.process.no_new_privs = false;
    assert_eq!(denied(&s), ["no-new-privs-disabled"]);
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
    assert_eq!(denied(&s), ["cap-dac-override"]);
}

#[test]
fn capabilities_with_shared_namespaces() {
    let mut s = spec_with(vec![]);
    s.capabilities = vec!["CAP_NET_ADMIN".into()];
    assert!(denied(&s).is_empty());
    s.namespaces.net = false;
    assert_eq!(denied(&s), ["cap-net-admin-host"]);
    let mut s = spec_with(vec![]);
    s.capabilities = vec!["CAP_KILL".into()];
    assert!(denied(&s).is_empty());
    s.namespaces.pid = false;
    assert_eq!(denied(&s), ["shared-pid", "cap-host-pid"]);
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
    assert_eq!(codes(&s, &host()), ["home-writable"]);
    let s = spec_with(vec![bind("/home/me/project", "/p", false)]);
    assert!(
        codes(&s, &host()).is_empty(),
        "a folder inside home is the normal case"
    );
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
    let f = recheck_source(&s, &host(), "/tmp/share", "/etc");
    assert_eq!(f[0].code, "host-system-writable");
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
