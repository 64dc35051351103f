//! The eight kernel namespace kinds, in one table: the clone flag that
//! makes each, the name under /proc/PID/ns, and the order a process joins
//! them (the user namespace first: it grants the capabilities that
//! joining the others needs).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Namespace {
    User,
    Mnt,
    Pid,
    Uts,
    Ipc,
    Net,
    Cgroup,
    Time,
}

impl Namespace {
    /// Every kind, in the order setns(2) joins them.
    pub const ALL: [Namespace; 8] = [
        Namespace::User,
        Namespace::Mnt,
        Namespace::Pid,
        Namespace::Uts,
        Namespace::Ipc,
        Namespace::Net,
        Namespace::Cgroup,
        Namespace::Time,
    ];

    /// The CLONE_NEW* flag.
    pub fn clone_flag(self) -> u64 {
        (match self {
            Namespace::User => libc::CLONE_NEWUSER,
            Namespace::Mnt => libc::CLONE_NEWNS,
            Namespace::Pid => libc::CLONE_NEWPID,
            Namespace::Uts => libc::CLONE_NEWUTS,
            Namespace::Ipc => libc::CLONE_NEWIPC,
            Namespace::Net => libc::CLONE_NEWNET,
            Namespace::Cgroup => libc::CLONE_NEWCGROUP,
            Namespace::Time => libc::CLONE_NEWTIME,
        }) as u64
    }

    /// Its type for setns(2), which then refuses an fd of another type.
    pub fn link_type(self) -> rustix::thread::LinkNameSpaceType {
        use rustix::thread::LinkNameSpaceType as T;
        match self {
            Namespace::User => T::User,
            Namespace::Mnt => T::Mount,
            Namespace::Pid => T::ProcessID,
            Namespace::Uts => T::HostNameAndNISDomainName,
            Namespace::Ipc => T::InterProcessCommunication,
            Namespace::Net => T::Network,
            Namespace::Cgroup => T::ControlGroup,
            Namespace::Time => T::Time,
        }
    }

    /// Its name under /proc/PID/ns.
    pub fn proc_name(self) -> &'static str {
        match self {
            Namespace::User => "user",
            Namespace::Mnt => "mnt",
            Namespace::Pid => "pid",
            Namespace::Uts => "uts",
            Namespace::Ipc => "ipc",
            Namespace::Net => "net",
            Namespace::Cgroup => "cgroup",
            Namespace::Time => "time",
        }
    }

    /// The kinds a sandbox can join by path instead of making
    /// (`namespaces.join`, keyed by [`Namespace::proc_name`]): a pod's
    /// network, IPC (SysV objects, POSIX queues) and UTS namespaces, and
    /// its PID namespace. The others would hand the workload the host's
    /// mounts, ids, cgroups or clocks, or need more than a setns.
    pub const JOINABLE: [Namespace; 4] = [
        Namespace::Net,
        Namespace::Ipc,
        Namespace::Uts,
        Namespace::Pid,
    ];

    /// The joinable kind named `key` in `namespaces.join`.
    pub fn joinable(key: &str) -> Option<Namespace> {
        Self::JOINABLE.into_iter().find(|n| n.proc_name() == key)
    }

    /// Does the spec make a namespace of this kind?
    pub fn made_by(self, ns: &crate::spec::Namespaces) -> bool {
        match self {
            Namespace::User => ns.user,
            Namespace::Mnt => ns.mount,
            Namespace::Pid => ns.pid,
            Namespace::Uts => ns.uts,
            Namespace::Ipc => ns.ipc,
            Namespace::Net => ns.net,
            Namespace::Cgroup => ns.cgroup,
            Namespace::Time => ns.time,
        }
    }

    /// The kinds a spec makes new, in join order.
    pub fn new_in(ns: &crate::spec::Namespaces) -> Vec<Namespace> {
        Self::ALL.into_iter().filter(|n| n.made_by(ns)).collect()
    }
}

/// The flags for clone3: every new namespace but time, which applies only
/// to children and so is entered by PID 1 itself with unshare (time.rs).
pub fn clone_flags(new: &[Namespace]) -> u64 {
    new.iter()
        .filter(|n| **n != Namespace::Time)
        .fold(0, |f, n| f | n.clone_flag())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_spec_makes_all_eight_and_clones_seven() {
        let all = Namespace::new_in(&Default::default());
        assert_eq!(all, Namespace::ALL);
        let flags = clone_flags(&all);
        assert_eq!(flags & libc::CLONE_NEWTIME as u64, 0);
        assert_eq!(flags.count_ones(), 7);
        let shared = crate::spec::Namespaces {
            net: false,
            ..Default::default()
        };
        assert!(!Namespace::new_in(&shared).contains(&Namespace::Net));
    }

    #[test]
    fn only_the_four_joinable_kinds_are_joined_and_never_also_made() {
        use crate::spec::{validate, SandboxSpec};
        let joining = |key: &str, make: bool| {
            let mut spec = SandboxSpec::default();
            spec.process.args = vec!["/bin/true".into()];
            spec.namespaces.net = make;
            spec.namespaces.ipc = make;
            spec.namespaces.uts = make;
            spec.namespaces.pid = make;
            spec.namespaces
                .join
                .insert(key.into(), "/proc/1/ns/x".into());
            validate(&spec).err().map(|e| (e.field, e.reason))
        };
        for n in Namespace::ALL {
            let key = n.proc_name();
            let field = format!("namespaces.join.{key}");
            match Namespace::joinable(key) {
                Some(j) => {
                    assert_eq!(j, n);
                    assert_eq!(joining(key, false), None, "{key}");
                    let (f, why) = joining(key, true).expect(key);
                    assert_eq!(f, field);
                    assert!(why.contains("cannot both make"), "{why}");
                }
                None => {
                    let (f, why) = joining(key, false).expect(key);
                    assert_eq!(f, field);
                    assert!(
                        why.starts_with("only the network, IPC, UTS and PID"),
                        "{why}"
                    );
                }
            }
        }
        assert_eq!(
            Namespace::JOINABLE.map(Namespace::proc_name),
            ["net", "ipc", "uts", "pid"]
        );
    }
}
