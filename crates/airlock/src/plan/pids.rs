//! The pids limit every sandbox gets unless its spec sets one.

use crate::spec::{self, SandboxSpec};

/// The resources and rlimits with the context's default pids limit
/// applied where the spec sets none. In a user namespace of the sandbox's
/// own, RLIMIT_NPROC: the kernel counts it per user namespace and uid, so
/// per sandbox, and it costs nothing at start (a cgroup would cost its
/// creation, its removal and a guard process beside every sandbox). The
/// spec's own nproc rlimit wins. Without a user namespace of its own
/// (the host's uids, where RLIMIT_NPROC would count every process of the
/// uid on the host), a root caller's cgroup takes `pids.max` instead,
/// where the host has a pids controller.
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
    if spec.namespaces.user {
        // The spec's own nproc rlimit wins, and is the whole default then.
        if limits.iter().any(|l| l.0 == nproc) {
            return (resources, limits);
        }
        limits.push((nproc, n, n));
        // RLIMIT_NPROC counts per uid: a workload that keeps CAP_SETUID
        // and has many uids mapped spreads its processes over them, each
        // with a count of its own. A root caller's cgroup counts them all.
        if switches_uids(spec, ctx) && ctx.caller.is_root() && ctx.cgroup.has_controller("pids") {
            resources.pids = Some(n);
        }
    } else if ctx.caller.is_root() && ctx.cgroup.has_controller("pids") {
        resources.pids = Some(n);
    }
    (resources, limits)
}

/// Can the workload take another of its uids (CAP_SETUID kept, more than
/// one uid mapped: a root caller's default map has 65536)?
fn switches_uids(spec: &SandboxSpec, ctx: &crate::Context) -> bool {
    let many = match spec.identity.uid_map.is_empty() {
        true => ctx.caller.is_root(),
        false => {
            spec.identity
                .uid_map
                .iter()
                .map(|m| u64::from(m.count))
                .sum::<u64>()
                > 1
        }
    };
    many && crate::check::capability_names(spec)
        .iter()
        .any(|c| c == "CAP_SETUID")
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
                root: "/".into(),
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
        let default = spec::DEFAULT_PIDS;
        // In the sandbox's own user namespace, root or rootless, with a
        // pids controller or without: RLIMIT_NPROC, and no cgroup to make.
        for ctx in [with_pids(0), with_pids(1000), crate::Context::for_ids(0, 0)] {
            let p = plan(&spec(), &ctx).unwrap();
            assert!(p.cgroup.is_none(), "{:?}", ctx.caller);
            assert_eq!(nproc(&p), [(default, default)]);
        }
        // The spec's own pids limit is a cgroup's, and wins.
        let mut s = spec();
        s.resources.pids = Some(64);
        let p = plan(&s, &with_pids(0)).unwrap();
        assert_eq!(pids_max(&p), Some("64".into()));
        assert!(nproc(&p).is_empty());
        // A context without a default (the OCI runtime's): nothing.
        let mut ctx = with_pids(0);
        ctx.default_pids = None;
        let p = plan(&spec(), &ctx).unwrap();
        assert!(p.cgroup.is_none() && nproc(&p).is_empty());
        ctx.default_pids = Some(100);
        assert_eq!(nproc(&plan(&spec(), &ctx).unwrap()), [(100, 100)]);
        // Never over the spec's own nproc rlimit.
        let mut s = spec();
        s.process.rlimits.push(spec::Rlimit {
            resource: "nproc".into(),
            soft: 10,
            hard: 20,
        });
        assert_eq!(nproc(&plan(&s, &with_pids(1000)).unwrap()), [(10, 20)]);
        // A workload that may take any of its 65536 uids (CAP_SETUID)
        // would spread its processes over as many RLIMIT_NPROC counts:
        // a root caller's cgroup counts them all, beside the rlimit.
        let mut s = spec();
        s.capabilities = vec!["setuid".into()];
        let p = plan(&s, &with_pids(0)).unwrap();
        assert_eq!(pids_max(&p), Some(default.to_string()));
        assert_eq!(nproc(&p), [(default, default)]);
        // (A rootless caller's sandbox maps its one uid.)
        assert!(plan(&s, &with_pids(1000)).unwrap().cgroup.is_none());
        // The spec's own nproc rlimit is the whole default: no cgroup.
        s.process.rlimits.push(spec::Rlimit {
            resource: "nproc".into(),
            soft: 50_000,
            hard: 50_000,
        });
        assert!(plan(&s, &with_pids(0)).unwrap().cgroup.is_none());
        // With the host's user namespace, where RLIMIT_NPROC would count
        // every process of the uid on the host: a root caller's cgroup.
        let mut s = spec();
        s.namespaces.user = false;
        let p = plan(&s, &with_pids(0)).unwrap();
        assert!(nproc(&p).is_empty());
        assert_eq!(pids_max(&p), Some(default.to_string()));
        let p = plan(&s, &crate::Context::for_ids(0, 0)).unwrap();
        assert!(nproc(&p).is_empty() && p.cgroup.is_none());
    }
}
