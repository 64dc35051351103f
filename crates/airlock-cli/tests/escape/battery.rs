//! The escape battery's host side, shared by the CLI's tests and the
//! daemon's (`#[path]`): the bait on the host the probes (probes.py) try
//! to reach, the binds and environment that point them at it, and the
//! judgment of what they printed.
#![allow(dead_code)]

use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;

/// The probes, a Python script.
const PROBES: &str = include_str!("probes.py");

/// Every probe the suite must run (so a probe cannot vanish unnoticed).
pub const EXPECTED: &[&str] = &[
    "see_host_processes",
    "signal_host_process",
    "read_host_secret",
    "write_outside_writable_binds",
    "mount_tmpfs",
    "remount_root_writable",
    "chroot_escape",
    "open_by_handle_at",
    "name_to_handle_at",
    "ptrace_init_and_host",
    "tiocsti_injection",
    "write_proc_sys",
    "sysrq_trigger",
    "write_sys",
    "read_kcore",
    "load_module",
    "init_module",
    "kexec",
    "reboot",
    "set_host_clock",
    "keyctl",
    "add_key",
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "io_uring",
    "new_user_namespace",
    "setns_host",
    "reach_host_tcp_listener",
    "reach_host_abstract_socket",
    "leaked_launcher_fd",
    "overwrite_launcher",
    "setuid_binary",
    "plant_setid_in_bind",
    "personality",
    "exotic_socket_families",
    "exotic_socketpair_families",
    "module_socket_protocols",
    "mknod_device",
    "host_devices",
    "kernel_log",
    "capabilities",
    "x32_abi",
    "fork_bomb",
    "exhaust_memory",
];

pub struct HostBait {
    _dir: tempfile::TempDir,
    pub secret: String,
    pub suid: String,
    pub probes: String,
    _tcp: std::net::TcpListener,
    pub tcp_port: u16,
    _abstract: std::os::unix::net::UnixListener,
    pub abstract_name: String,
    pub leaked: std::fs::File,
    /// A writable directory to bind at /out (the caller's, below a 0700
    /// directory of its own).
    pub out: String,
}

pub fn bait() -> HostBait {
    bait_for(0)
}

pub fn bait_for(owner: u32) -> HostBait {
    use std::os::linux::net::SocketAddrExt;
    let dir = tempfile::Builder::new()
        .prefix("airlock-escape-")
        .tempdir()
        .unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "host-secret-for-the-escape-suite").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).unwrap();
    // A setuid-root binary for the sandbox's root (the mapped host id), so
    // only nosuid and no_new_privs stand between it and a uid change.
    let suid = dir.path().join("suid-id");
    std::fs::copy("/usr/bin/id", &suid).unwrap();
    let base = airlock::plan::ROOT_CALLER_BASE;
    std::os::unix::fs::chown(&suid, Some(base), Some(base)).unwrap();
    std::fs::set_permissions(&suid, std::fs::Permissions::from_mode(0o4755)).unwrap();
    let probes = dir.path().join("probes.py");
    std::fs::write(&probes, PROBES).unwrap();
    std::fs::set_permissions(&probes, std::fs::Permissions::from_mode(0o644)).unwrap();
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let tcp_port = tcp.local_addr().unwrap().port();
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let abstract_name = format!("airlock-escape-{}-{n}", std::process::id());
    let addr =
        std::os::unix::net::SocketAddr::from_abstract_name(abstract_name.as_bytes()).unwrap();
    let abs = std::os::unix::net::UnixListener::bind_addr(&addr).unwrap();
    let leaked = std::fs::File::open(&secret).unwrap();
    let private = dir.path().join("private");
    std::fs::create_dir(&private).unwrap();
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).unwrap();
    let out = private.join("out");
    std::fs::create_dir(&out).unwrap();
    if owner != 0 {
        for d in [&private, &out] {
            std::os::unix::fs::chown(d, Some(owner), Some(owner)).unwrap();
        }
    }
    // SAFETY: fcntl on an fd we own: make it inheritable, as a careless launcher would.
    unsafe { libc::fcntl(leaked.as_raw_fd(), libc::F_SETFD, 0) };
    HostBait {
        secret: secret.display().to_string(),
        suid: suid.display().to_string(),
        probes: probes.display().to_string(),
        _dir: dir,
        _tcp: tcp,
        tcp_port,
        _abstract: abs,
        abstract_name,
        leaked,
        out: out.display().to_string(),
    }
}

impl HostBait {
    /// The bind flags that give the sandbox the probes, the setuid bait
    /// and the writable /out.
    pub fn binds(&self) -> Vec<String> {
        [
            "--ro-bind",
            &self.probes,
            "/probes.py",
            "--ro-bind",
            &self.suid,
            "/suid-id",
            "--bind",
            &self.out,
            "/out",
        ]
        .map(String::from)
        .to_vec()
    }

    /// What the probes are told of the host (`HOST_PID` is the test's).
    pub fn env(&self, caller_is_root: bool) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = [
            ("OUT", "/out".to_string()),
            ("HOST_PID", std::process::id().to_string()),
            ("SECRET", self.secret.clone()),
            ("TCP_PORT", self.tcp_port.to_string()),
            ("ABSTRACT", self.abstract_name.clone()),
            ("LEAKED_FD", self.leaked.as_raw_fd().to_string()),
            ("SUID", "/suid-id".to_string()),
        ]
        .map(|(k, v)| (k.to_string(), v))
        .to_vec();
        if caller_is_root {
            env.push(("CALLER_IS_ROOT".into(), "1".into()));
        }
        env
    }
}

/// Every probe ran, none escaped, and the battery exited 0.
pub fn judge(code: i32, stdout: &str, stderr: &str) {
    eprintln!("{stdout}");
    for name in EXPECTED {
        assert!(
            stdout.contains(&format!("probe {name}: ")),
            "probe {name} did not run:\n{stdout}\n{stderr}"
        );
    }
    assert!(!stdout.contains("ESCAPED"), "escapes:\n{stdout}");
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains(&format!("{} probes, 0 escaped", EXPECTED.len())),
        "{stdout}"
    );
}
