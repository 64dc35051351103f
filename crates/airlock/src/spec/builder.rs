//! A builder for Rust callers: start from the least-privilege defaults and
//! say only what differs.

use super::{default_view, fresh_view, FileMode, IdMap, InitMode, Mount, Root, SandboxSpec, Size};

#[derive(Debug, Clone, Default)]
pub struct SpecBuilder {
    spec: SandboxSpec,
}

impl SpecBuilder {
    pub fn new() -> Self {
        SpecBuilder {
            spec: SandboxSpec::default(),
        }
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.spec.process.args = args.into_iter().map(Into::into).collect();
        self
    }

    /// Add the least-privilege default view (system dirs read-only, fresh
    /// /proc, /dev and /tmp). After [`rootfs`](Self::rootfs), only the
    /// fresh ones, as `airlock run --rootfs` gives: the root directory
    /// brings its own system, and the host's would cover it.
    pub fn default_view(mut self) -> Self {
        let view = match self.spec.filesystem.root {
            Root::Path { .. } => fresh_view(),
            _ => default_view(),
        };
        self.spec.filesystem.mounts.extend(view);
        self
    }

    /// Set an environment variable; a second call for the same key
    /// replaces the first (a spec file refuses a key given twice).
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.spec.process.env.insert(key.into(), value.into());
        self
    }

    pub fn inherit_env(mut self, yes: bool) -> Self {
        self.spec.process.inherit_env = yes;
        self
    }

    pub fn cwd(mut self, dir: impl Into<String>) -> Self {
        self.spec.process.cwd = Some(dir.into());
        self
    }

    /// A new pseudo-terminal as the workload's stdio (`process.terminal`).
    pub fn terminal(mut self, yes: bool) -> Self {
        self.spec.process.terminal = yes;
        self
    }

    pub fn uid(mut self, uid: u32) -> Self {
        self.spec.process.uid = Some(uid);
        self
    }

    pub fn gid(mut self, gid: u32) -> Self {
        self.spec.process.gid = Some(gid);
        self
    }

    pub fn hostname(mut self, name: impl Into<String>) -> Self {
        self.spec.hostname = name.into();
        self
    }

    /// A host directory as the root: read-only, it still gets the mount
    /// points it lacks made in it first (`make_mountpoints`). Follow it
    /// with [`default_view`](Self::default_view) for the fresh /proc, /dev
    /// and /tmp that `airlock run --rootfs` gives.
    pub fn rootfs(mut self, path: impl Into<String>, readonly: bool) -> Self {
        self.spec.filesystem.root = Root::Path {
            path: path.into(),
            readonly,
            make_mountpoints: readonly,
        };
        self
    }

    pub fn mount(mut self, m: Mount) -> Self {
        self.spec.filesystem.mounts.push(m);
        self
    }

    pub fn ro_bind(self, source: impl Into<String>, destination: impl Into<String>) -> Self {
        self.mount(Mount::Bind {
            source: source.into(),
            destination: destination.into(),
            readonly: true,
            devices: false,
            noexec: false,
            recursive: true,
        })
    }

    pub fn bind(self, source: impl Into<String>, destination: impl Into<String>) -> Self {
        self.mount(Mount::Bind {
            source: source.into(),
            destination: destination.into(),
            readonly: false,
            devices: false,
            noexec: false,
            recursive: true,
        })
    }

    pub fn tmpfs(self, destination: impl Into<String>, size: Option<Size>) -> Self {
        self.mount(Mount::Tmpfs {
            destination: destination.into(),
            size,
            mode: Some(FileMode(0o755)),
            readonly: false,
            noexec: false,
            copy_up: false,
        })
    }

    pub fn uid_map(mut self, inside: u32, outside: u32, count: u32) -> Self {
        self.spec.identity.uid_map.push(IdMap {
            inside,
            outside,
            count,
        });
        self
    }

    pub fn gid_map(mut self, inside: u32, outside: u32, count: u32) -> Self {
        self.spec.identity.gid_map.push(IdMap {
            inside,
            outside,
            count,
        });
        self
    }

    pub fn share_net(mut self) -> Self {
        self.spec.namespaces.net = false;
        self
    }

    pub fn capability(mut self, name: impl Into<String>) -> Self {
        self.spec.capabilities.push(name.into());
        self
    }

    pub fn allow_unsafe(mut self, code: impl Into<String>) -> Self {
        self.spec.allow_unsafe.push(code.into());
        self
    }

    pub fn init(mut self, mode: InitMode) -> Self {
        self.spec.init = mode;
        self
    }

    /// Memory limit in bytes (a cgroup; swap 0 unless set in the spec).
    pub fn memory(mut self, bytes: u64) -> Self {
        self.spec.resources.memory = Some(Size(bytes));
        self
    }

    /// Maximum number of processes and threads (a cgroup).
    pub fn pids(mut self, max: u64) -> Self {
        self.spec.resources.pids = Some(max);
        self
    }

    /// CPU quota as a number of CPUs (a cgroup).
    pub fn cpus(mut self, cpus: f64) -> Self {
        self.spec.resources.cpus = Some(cpus);
        self
    }

    /// Nice value, scheduling policy, I/O priority and CPU affinity.
    pub fn scheduling(mut self, s: super::Scheduling) -> Self {
        self.spec.process.scheduling = s;
        self
    }

    /// Wall-clock limit in seconds; the whole sandbox is killed after it.
    pub fn timeout(mut self, seconds: f64) -> Self {
        self.spec.timeout = Some(seconds);
        self
    }

    pub fn build(self) -> SandboxSpec {
        self.spec
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A root directory keeps its own /usr and /etc: the default view after
    /// it adds only what is made fresh, as `airlock run --rootfs` does.
    #[test]
    fn a_root_directory_gets_only_the_fresh_view() {
        let s = SandboxSpec::builder()
            .rootfs("/srv/root", true)
            .default_view()
            .build();
        let at: Vec<&str> = s
            .filesystem
            .mounts
            .iter()
            .map(|m| m.destination())
            .collect();
        assert_eq!(at, ["/proc", "/dev", "/tmp"]);
        let s = SandboxSpec::builder().default_view().build();
        assert!(s
            .filesystem
            .mounts
            .iter()
            .any(|m| m.destination() == "/usr"));
    }
}
