//! The rule table: every guardrail code, its severity and what it catches.
//! The README's table is this one.

use super::Severity::{self, Deny, Warn};

pub struct Rule {
    pub code: &'static str,
    pub severity: Severity,
    pub catches: &'static str,
}

pub const RULES: &[Rule] = &[
    Rule { code: "host-root-writable", severity: Deny, catches: "a writable bind of the host's / (however it is spelled: `..`, symlinks)" },
    Rule { code: "host-system-writable", severity: Deny, catches: "a writable bind of /etc, /usr, /bin, /sbin, /lib*, /boot, /efi, /opt, /var/spool, /var/lib/{dpkg,rpm,polkit-1,sudo,cloud,flatpak,snapd}, /root/.ssh, /run/{systemd,udev,tmpfiles.d,initramfs,modprobe.d,sysctl.d,binfmt.d,environment.d,extensions,sudo} or something inside one, of root's dotfiles (/root/.*) or something inside one, of /root or /var/lib, or of an ancestor of any" },
    Rule { code: "host-rootfs", severity: Deny, catches: "filesystem.root is the host's / itself" },
    Rule { code: "kernel-surface-bind", severity: Deny, catches: "a bind, even read-only, that exposes the host's /proc or /sys (and /sys/fs/cgroup), or lies on or carries a procfs, sysfs, cgroup, debugfs, tracefs, securityfs, bpf or configfs mount wherever it is" },
    Rule { code: "host-dev-bind", severity: Deny, catches: "a device bind (--dev-bind) of /dev, an ancestor of it, any other directory (nodes made with mknod, a chroot's /dev, work as /dev's do), or a device node other than null, zero, full, random, urandom, tty, fuse and net/tun; a device node (filesystem.devices) other than those" },
    Rule { code: "runtime-socket-bind", severity: Deny, catches: "a bind, even read-only, that exposes a container runtime socket or state (Docker, containerd, CRI-O, podman, kubelet, runc/crun/youki, etcd, k3s, the system D-Bus), by any name it has (a link, a bind mount from elsewhere such as fstab's /data/docker on /var/lib/docker); what is inside one container's, image layer's or pod's own directory in that state (the root and files an engine hands its runtime, not the engine's own files there) is not" },
    Rule { code: "host-shared-writable", severity: Deny, catches: "a writable bind of a directory every host user or service shares (/tmp, /var/tmp, /dev/shm, /run, /home) or an ancestor of one" },
    Rule { code: "socket-bind", severity: Deny, catches: "a bind, even read-only, of a unix socket or of a directory that holds one (an ssh agent, X11, tmux, libvirt, a session bus): whoever listens there acts for the workload. Sockets deeper down are found among those bound in the caller's network namespace, by the path they were bound at or through a symbolic link; one bound at a relative path is found beside the working directory of a process that holds it (one whose fds the caller may read)" },
    Rule { code: "state-root-bind", severity: Deny, catches: "a bind, even read-only, of a sandbox state root (the caller's, /run/airlock, airlock-runtime's /run/airlock-runtime, airlockd's /run/airlockd), of something in it, or of a directory above it: the workload could read every sandbox's environment, attach to their input, and change what `exec` puts into a sandbox" },
    Rule { code: "image-store-writable", severity: Deny, catches: "a writable bind of the caller's image store or root's (airlockd's), of a layer in one, or of a directory above one: the workload could change the layers later sandboxes run" },
    Rule { code: "host-root-user", severity: Deny, catches: "uid 0, or CAP_SETUID/CAP_SETGID, without a user namespace: the workload is (or can become) the host's real root" },
    Rule { code: "host-proc-writable", severity: Deny, catches: "the host's uid 0 (without a user namespace, or mapped onto it), or CAP_SETUID to become it, with /proc/sys or /proc/sysrq-trigger neither masked nor read-only: the host's kernel settings are the workload's to write" },
    Rule { code: "host-root-mapped", severity: Deny, catches: "an id map that maps the host's uid or gid 0 into the sandbox" },
    Rule { code: "idmapped-private", severity: Deny, catches: "a bind or root shown with host ownership (filesystem.idmap), read-only too, or a root caller's layer of host ids under an overlay root or a writable overlay mount (idmapped so that its files can be copied up), of a host directory that holds files only their owners may read (/etc, /root, homes, /var/lib, /var/log, /var/spool, /var/mail, /var/backups, /var/cache, /run, /boot, or one above them): sandbox root reads each as its owner (/etc/shadow, ssh host keys, users' keys)" },
    Rule { code: "idmapped-writable", severity: Deny, catches: "a writable bind or root shown with host ownership (filesystem.idmap): sandbox root writes there as the host's owner of each file, host root for root's files, setuid bits included" },
    Rule { code: "caller-bind-setfcap", severity: Deny, catches: "CAP_SETFCAP kept by a root caller's sandbox with a writable bind, which is written as the caller (filesystem.bind_owner): a file capability set there is host root's" },
    Rule { code: "caller-bind-owner", severity: Deny, catches: "identity.uid_map puts a root caller's sandbox root on a host account, which owns the sandbox's user namespace, beside a writable bind written as the caller: the account can enter the namespace past the syscall filter and make a setuid-root program there" },
    Rule { code: "caller-bind-unfiltered", severity: Deny, catches: "seccomp.profile = \"none\" in a root caller's sandbox with a writable bind, which is written as the caller: nothing keeps setuid and setgid modes (host root's) out of it" },
    Rule { code: "host-privileged-mapped", severity: Deny, catches: "an id map onto a privileged host id other than 0: a system account or group (below UID_MIN/GID_MIN of /etc/login.defs), the owner or group of a host system file others cannot use (/etc/shadow, a disk, a runtime socket), another user's subordinate id (/etc/subuid, /etc/subgid), or another login account's own uid or primary group" },
    Rule { code: "shared-user", severity: Deny, catches: "the host's user namespace is shared: the workload's uid, gid and groups are the host's own, what it writes to binds is theirs and its setuid/setgid bits work on the host" },
    Rule { code: "cap-host-user", severity: Deny, catches: "any capability kept with the host's user namespace shared: each is a capability over the host (CAP_CHOWN with CAP_FOWNER plants setuid-root files, CAP_SETFCAP file capabilities, CAP_MKNOD device nodes)" },
    Rule { code: "host-privileged-id", severity: Deny, catches: "with the host's user namespace shared, a gid or supplementary group that is a privileged host group (gid 0, a system group below GID_MIN, the group of a host system file others cannot use), or a uid that is a system account" },
    Rule { code: "shared-pid", severity: Deny, catches: "the host's PID namespace is shared: every host process is visible, and those of the same host uid (other sandboxes) can be signalled" },
    Rule { code: "no-new-privs-disabled", severity: Deny, catches: "process.no_new_privs = false: setuid binaries can raise privilege inside" },
    Rule { code: "personality-unsafe", severity: Deny, catches: "process.personality with a flag the kernel clears for a setuid program (ADDR_NO_RANDOMIZE, ADDR_COMPAT_LAYOUT, MMAP_PAGE_ZERO, READ_IMPLIES_EXEC): no address-space randomization, or every readable mapping executable, for the workload and all it starts" },
    Rule { code: "seccomp-disabled", severity: Deny, catches: "seccomp.profile = \"none\": every syscall of the kernel is reachable" },
    Rule { code: "seccomp-permissive", severity: Deny, catches: "a custom seccomp profile that lets through what the default profile leaves out as escape surface: a permissive defaultAction (ALLOW, LOG, TRACE), or an allow rule for a call of the default's deny list (mount, unshare, keyctl, bpf, ptrace, ...; clone without the namespace flags masked off, socket or personality beyond the default's arguments, socket's protocol included)" },
    Rule { code: "seccomp-argument-filters-off", severity: Deny, catches: "a custom seccomp profile with argument_filters = false: airlock's refusals by argument (TIOCSTI/TIOCLINUX/TIOCSETD, ...) are not added after it" },
    Rule { code: "cap-sys-admin", severity: Deny, catches: "CAP_SYS_ADMIN: mount, namespaces, and most of the kernel's attack surface" },
    Rule { code: "cap-sys-module", severity: Deny, catches: "CAP_SYS_MODULE: load kernel modules" },
    Rule { code: "cap-sys-rawio", severity: Deny, catches: "CAP_SYS_RAWIO: raw I/O ports and devices" },
    Rule { code: "cap-sys-ptrace", severity: Deny, catches: "CAP_SYS_PTRACE: trace and inspect other processes" },
    Rule { code: "cap-dac-read-search", severity: Deny, catches: "CAP_DAC_READ_SEARCH: open_by_handle_at reads host files outside the mounts (the 'shocker' escape)" },
    Rule { code: "cap-dac-override", severity: Deny, catches: "CAP_DAC_OVERRIDE together with host binds, where the sandbox's ids reach the owners of host files (shared user namespace or explicit id maps): file permissions on the bound host files stop applying" },
    Rule { code: "cap-bpf", severity: Deny, catches: "CAP_BPF: load BPF programs" },
    Rule { code: "cap-perfmon", severity: Deny, catches: "CAP_PERFMON: perf events on the whole system" },
    Rule { code: "cap-sys-time", severity: Deny, catches: "CAP_SYS_TIME: set the host's clock" },
    Rule { code: "cap-sys-boot", severity: Deny, catches: "CAP_SYS_BOOT: reboot, kexec" },
    Rule { code: "cap-mac-admin", severity: Deny, catches: "CAP_MAC_ADMIN / CAP_MAC_OVERRIDE: change or bypass LSM policy" },
    Rule { code: "cap-syslog", severity: Deny, catches: "CAP_SYSLOG: read kernel addresses and the kernel log" },
    Rule { code: "cap-net-admin-host", severity: Deny, catches: "CAP_NET_ADMIN or CAP_NET_RAW with the host's network namespace shared, and no user namespace of the sandbox's own" },
    Rule { code: "cap-net-inert", severity: Warn, catches: "a network capability that the kernel does not honour: the sandbox has a user namespace of its own and the network namespace is shared or joined" },
    Rule { code: "cap-host-pid", severity: Deny, catches: "CAP_KILL or CAP_SYS_PTRACE with the host's PID namespace shared" },
    Rule { code: "host-sysctl", severity: Deny, catches: "a sysctl written into a namespace the sandbox shares with the host (a joined network namespace that is the caller's own): it would change the host" },
    Rule { code: "raised-priority", severity: Deny, catches: "process.scheduling ahead of the host's own work: a negative nice, a real-time policy (fifo, rr) or the realtime I/O class, or an rlimit that lets the workload take them itself (rtprio above 0, nice above 20): the workload can take CPUs or the disk from the host's services" },
    Rule { code: "shared-network", severity: Warn, catches: "the host's network namespace is shared (every host interface and listener is reachable)" },
    Rule { code: "shared-ipc", severity: Warn, catches: "the host's IPC namespace is shared: its System V shared memory, semaphores and message queues and its POSIX message queues are reachable by their permissions" },
    Rule { code: "shared-session", severity: Warn, catches: "new_session = false: the workload can push keystrokes into the caller's terminal (TIOCSTI)" },
    Rule { code: "host-root-readonly", severity: Warn, catches: "a read-only bind of the host's /" },
    Rule { code: "home-writable", severity: Warn, catches: "a writable bind of the caller's home directory or an ancestor of it, or of one of its dotfiles (~/.*) or something inside one" },
    Rule { code: "unused-allow-unsafe", severity: Warn, catches: "allow_unsafe names a code this spec does not trigger" },
];

pub fn rule(code: &str) -> Option<&'static Rule> {
    RULES.iter().find(|r| r.code == code)
}
