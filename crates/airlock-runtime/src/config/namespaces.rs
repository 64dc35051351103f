//! `linux.namespaces`: which namespaces a container gets, and which it
//! joins (a path: a pod's, or another container's by its process).

use super::err;
use airlock::namespace::Namespace;
use airlock::spec::{Namespaces, SandboxSpec, SpecError};
use oci_spec::runtime::LinuxNamespaceType;
use std::collections::BTreeMap;

/// The namespaces; true when the bundle listed a user namespace.
pub(super) fn namespaces(
    list: &[oci_spec::runtime::LinuxNamespace],
    s: &mut SandboxSpec,
) -> Result<bool, SpecError> {
    let mut ns = Namespaces {
        mount: false,
        pid: false,
        uts: false,
        ipc: false,
        net: false,
        user: false,
        cgroup: false,
        time: false,
        join: BTreeMap::new(),
        nested_user: true,
        assert_userns_disabled: false,
    };
    for (i, n) in list.iter().enumerate() {
        // As the runtime spec says: one entry a type. A second would
        // otherwise replace the first without a word (two paths for the
        // network, or a path and a new one).
        if let Some(j) = list[..i].iter().position(|o| o.typ() == n.typ()) {
            return Err(err(
                format!("linux.namespaces[{i}].type"),
                format!(
                    "a second {} namespace (linux.namespaces[{j}] is one): give each type once",
                    super::oci_name(&n.typ())
                ),
            ));
        }
        if let Some(p) = n.path() {
            // A network namespace the platform prepared (podman's netavark,
            // a pod's sandbox) or a pod's IPC and UTS namespaces (the CRI's
            // default pod): joined by the supervisor before the clone. A
            // pod's PID namespace (shareProcessNamespace) is joined
            // through the user namespace that owns it (see the runner's
            // `pidns`), which must have this container's id maps.
            let kind = kernel_kind(n.typ());
            if Namespace::JOINABLE.contains(&kind) {
                let path = p.display().to_string();
                ns.join.insert(kind.proc_name().into(), path);
                continue;
            }
            return Err(err(
                format!("linux.namespaces[{i}].path"),
                format!(
                    "joining an existing {} namespace ({}) is not supported (only network, IPC, UTS and PID)",
                    n.typ(),
                    p.display()
                ),
            ));
        }
        *match kernel_kind(n.typ()) {
            Namespace::Mnt => &mut ns.mount,
            Namespace::Pid => &mut ns.pid,
            Namespace::Uts => &mut ns.uts,
            Namespace::Ipc => &mut ns.ipc,
            Namespace::Net => &mut ns.net,
            Namespace::User => &mut ns.user,
            Namespace::Cgroup => &mut ns.cgroup,
            Namespace::Time => &mut ns.time,
        } = true;
    }
    if !ns.mount {
        return Err(err(
            "linux.namespaces",
            "a container needs a mount namespace",
        ));
    }
    // Root in the container is never the host's root: a user namespace of
    // the container's own unless keeping the host's ids is acknowledged.
    let own_user = ns.user;
    ns.user = true;
    s.namespaces = ns;
    Ok(own_user)
}

/// The kernel's kind for an OCI namespace type.
fn kernel_kind(t: LinuxNamespaceType) -> Namespace {
    match t {
        LinuxNamespaceType::Mount => Namespace::Mnt,
        LinuxNamespaceType::Pid => Namespace::Pid,
        LinuxNamespaceType::Uts => Namespace::Uts,
        LinuxNamespaceType::Ipc => Namespace::Ipc,
        LinuxNamespaceType::Network => Namespace::Net,
        LinuxNamespaceType::User => Namespace::User,
        LinuxNamespaceType::Cgroup => Namespace::Cgroup,
        LinuxNamespaceType::Time => Namespace::Time,
    }
}
