//! The pids limit every sandbox gets unless its spec sets one.

use crate::spec::{self, SandboxSpec};

/// The resources and rlimits with the context's default pids limit
/// applied where the spec sets none: the cgroup's `pids.max` for a root
/// caller on a host with a pids controller; RLIMIT_NPROC otherwise
/// (rootless callers' cgroups are rarely delegated), only in a user
/// namespace of the sandbox's own, where the kernel counts it per sandbox
/// (in the caller's it would count every process of the caller's uid on
/// the host), and not over an nproc rlimit the spec sets.
pub(super) fn default_pids(
    spec: &SandboxSpec,
    ctx: &crate::Context,
    mut limits: Vec<(i32, u64, u64)>,
) -> (spec::Resources, Vec<(i32, u64, u64)>) {
    let mut resources = spec.resources.clone();
    let Some(n) = ctx.default_pids.filter(|_| spec.resources.pids.is_none()) else {
        return (resources, limits);
    };
    let nproc = libc::RLIMIT_NPROC as i32;
    let pids_controller =
        ctx.cgroup.v1.contains_key("pids") || ctx.cgroup.v2_controllers.iter().any(|c| c == "pids");
    if ctx.caller.is_root() && pids_controller {
        resources.pids = Some(n);
    } else if spec.namespaces.user && !limits.iter().any(|l| l.0 == nproc) {
        limits.push((nproc, n, n));
    }
    (resources, limits)
}

#[cfg(test)]
mod tests {
    use super::super::{plan, Plan};
    use crate::spec::{self, SandboxSpec};

    fn spec() -> SandboxSpec {
        SandboxSpec::builder().args(["true"]).build()
    }

    /// A context whose host has a v1 pids controller (as this hybrid
    /// host has), for a caller of `uid`.
    fn with_pids(uid: u32) -> crate::Context {
        let mut ctx = crate::Context::for_ids(uid, uid);
        ctx.cgroup.v1.insert(
            "pids".into(),
            crate::cgroup::Hierarchy {
                mount: "/sys/fs/cgroup/pids".into(),
                own: "/".into(),
            },
        );
        ctx
    }

    fn pids_max(p: &Plan) -> Option<String> {
        let c = p.cgroup.as_ref()?;
        let w = c.writes.iter().find(|w| w.file == "pids.max")?;
        Some(w.value.clone())
    }

    fn nproc(p: &Plan) -> Vec<(u64, u64)> {
        let n = libc::RLIMIT_NPROC as i32;
        p.process
            .rlimits
            .iter()
            .filter(|r| r.0 == n)
            .map(|r| (r.1, r.2))
            .collect()
    }

    #[test]
    fn every_sandbox_gets_the_default_pids_limit_unless_it_sets_one() {
        let default = spec::DEFAULT_PIDS.to_string();
        // Root: the cgroup's pids.max, the spec's own value first.
        let p = plan(&spec(), &with_pids(0)).unwrap();
        assert_eq!(pids_max(&p), Some(default.clone()));
        assert!(nproc(&p).is_empty());
        let mut s = spec();
        s.resources.pids = Some(64);
        assert_eq!(
            pids_max(&plan(&s, &with_pids(0)).unwrap()),
            Some("64".into())
        );
        // A context without a default (the OCI runtime's): no cgroup at all.
        let mut ctx = with_pids(0);
        ctx.default_pids = None;
        assert!(plan(&spec(), &ctx).unwrap().cgroup.is_none());
        ctx.default_pids = Some(100);
        assert_eq!(pids_max(&plan(&spec(), &ctx).unwrap()), Some("100".into()));
        // Rootless, or a host without a pids controller: RLIMIT_NPROC in
        // the sandbox's user namespace, and no cgroup to make.
        for ctx in [with_pids(1000), crate::Context::for_ids(0, 0)] {
            let p = plan(&spec(), &ctx).unwrap();
            assert!(p.cgroup.is_none(), "{:?}", ctx.caller);
            assert_eq!(nproc(&p), [(spec::DEFAULT_PIDS, spec::DEFAULT_PIDS)]);
        }
        // ... never over the spec's own nproc rlimit, nor in the caller's
        // user namespace, where it would count the caller's processes.
        let mut s = spec();
        s.process.rlimits.push(spec::Rlimit {
            resource: "nproc".into(),
            soft: 10,
            hard: 20,
        });
        assert_eq!(nproc(&plan(&s, &with_pids(1000)).unwrap()), [(10, 20)]);
        let mut s = spec();
        s.namespaces.user = false;
        let p = plan(&s, &crate::Context::for_ids(0, 0)).unwrap();
        assert!(nproc(&p).is_empty() && p.cgroup.is_none());
    }
}
