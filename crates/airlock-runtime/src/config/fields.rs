//! The names a bundle's author knows. airlock's errors and guardrail
//! findings name the fields of its own spec (`filesystem.mounts[4]`,
//! `sysctls.kernel.panic`); the runtime says which field of config.json
//! that came from (`mounts[7]`, `linux.sysctl.kernel.panic`), as the
//! CLI names the flag a user typed.

use airlock::check::Finding;
use airlock::spec::SandboxSpec;

/// config.json's name for each part of the spec it made.
pub struct ConfigFields {
    /// Spec mount index, config mount index.
    mounts: Vec<(usize, usize)>,
    /// Spec device index, `linux.devices` index (devices airlock's /dev
    /// makes anyway are left out of the spec).
    devices: Vec<(usize, usize)>,
    /// Acknowledgements the runtime made itself (not the caller's).
    own_acks: Vec<String>,
}

/// Spec field prefixes and the config.json fields they come from.
const PREFIXES: &[(&str, &str)] = &[
    ("sysctls.", "linux.sysctl."),
    ("namespaces.join.", "linux.namespaces: the path of "),
    ("process.uid", "process.user.uid"),
    ("process.gid", "process.user.gid"),
    ("process.groups", "process.user.additionalGids"),
    ("process.umask", "process.user.umask"),
    ("process.no_new_privs", "process.noNewPrivileges"),
    ("process.personality", "linux.personality"),
    ("ambient_capabilities", "process.capabilities.ambient"),
    ("capabilities", "process.capabilities"),
    ("identity.uid_map", "linux.uidMappings"),
    ("identity.gid_map", "linux.gidMappings"),
    ("filesystem.root.path", "root.path"),
    ("filesystem.root", "root"),
    // Each limit by its own name: airlock's fields are not config.json's.
    (
        "resources.memory_reservation",
        "linux.resources.memory.reservation",
    ),
    (
        "resources.memory_oom_group",
        "linux.resources.unified.memory.oom.group",
    ),
    ("resources.memory", "linux.resources.memory.limit"),
    ("resources.swap", "linux.resources.memory.swap"),
    ("resources.pids", "linux.resources.pids.limit"),
    ("resources.cpuset_cpus", "linux.resources.cpu.cpus"),
    ("resources.cpuset_mems", "linux.resources.cpu.mems"),
    ("resources.cpus", "linux.resources.cpu.quota"),
    ("resources.cpu_period", "linux.resources.cpu.period"),
    ("resources.cpu_weight", "linux.resources.cpu.shares"),
    ("resources.io_weight", "linux.resources.blockIO.weight"),
    (
        "resources.hugetlb.",
        "linux.resources.hugepageLimits: the pageSize ",
    ),
    ("seccomp.oci", "linux.seccomp"),
    ("seccomp", "linux.seccomp"),
    ("filesystem.masked_paths", "linux.maskedPaths"),
    ("filesystem.readonly_paths", "linux.readonlyPaths"),
    ("time.monotonic", "linux.timeOffsets.monotonic"),
    ("time.boottime", "linux.timeOffsets.boottime"),
];

impl ConfigFields {
    /// Each spec mount is matched to the config mount of its destination,
    /// in order (mounts the runtime adds itself keep the spec's name).
    pub fn new(spec: &SandboxSpec, bundle: &super::Bundle, own_acks: Vec<String>) -> Self {
        let config_mounts: Vec<String> = bundle
            .config
            .mounts()
            .iter()
            .flatten()
            // As the spec's destinations were made (`/tmp/` is `/tmp`).
            .map(|m| super::mounts::normal(m.destination()))
            .collect();
        let config_devices: Vec<String> = bundle
            .config
            .linux()
            .as_ref()
            .and_then(|l| l.devices().as_ref())
            .into_iter()
            .flatten()
            .map(|d| d.path().display().to_string())
            .collect();
        let mounts = pair_in_order(
            spec.filesystem.mounts.iter().map(|m| m.destination()),
            &config_mounts,
        );
        let devices = pair_in_order(
            spec.filesystem.devices.iter().map(|d| d.path.as_str()),
            &config_devices,
        );
        ConfigFields {
            mounts,
            devices,
            own_acks,
        }
    }

    /// For an exec's process: its fields only, no mounts or devices.
    pub fn for_process(own_acks: Vec<String>) -> Self {
        ConfigFields {
            mounts: Vec::new(),
            devices: Vec::new(),
            own_acks,
        }
    }

    /// `text` with the spec's field names made config.json's.
    pub fn rewrite(&self, text: &str) -> String {
        let mut out = text.to_string();
        for (list, ours, theirs) in [
            (&self.mounts, "filesystem.mounts", "mounts"),
            (&self.devices, "filesystem.devices", "linux.devices"),
        ] {
            // A name given lacks the `filesystem.` prefix: none is renamed
            // twice, and `[1]` never matches in `[12]` (the bracket ends it).
            for (j, i) in list {
                out = out.replace(&format!("{ours}[{j}]"), &format!("{theirs}[{i}]"));
            }
        }
        for (ours, theirs) in PREFIXES {
            out = replace_field(&out, ours, theirs);
        }
        super::scheduling::in_oci_words(&out)
    }

    /// The findings worth the bundle's author's time: not the runtime's
    /// own acknowledgements that this bundle happens not to need.
    pub fn findings(&self, findings: &[Finding]) -> Vec<Finding> {
        findings
            .iter()
            .filter(|f| {
                !(f.code == "unused-allow-unsafe"
                    && self.own_acks.iter().any(|a| f.message.contains(a.as_str())))
            })
            .map(|f| Finding {
                subject: self.rewrite(&f.subject),
                message: self.rewrite(&f.message),
                ..f.clone()
            })
            .collect()
    }
}

/// Each of `ours` (spec index) with the first of `theirs` (config.json
/// index) at the same path not yet taken, in order.
fn pair_in_order<'a>(
    ours: impl Iterator<Item = &'a str>,
    theirs: &[String],
) -> Vec<(usize, usize)> {
    let mut taken = vec![false; theirs.len()];
    let mut pairs = Vec::new();
    for (j, path) in ours.enumerate() {
        if let Some(i) = (0..theirs.len()).find(|&i| !taken[i] && theirs[i] == path) {
            taken[i] = true;
            pairs.push((j, i));
        }
    }
    pairs
}

/// `text` with each field that starts with `ours` starting with `theirs`
/// instead: where `ours` starts a word and is followed by what follows a
/// field's name (`.`, `[`, `:`, `` ` ``, `,`, `)` or the end), so that
/// prose ("no capabilities at all") stays as it is.
fn replace_field(text: &str, ours: &str, theirs: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(ours) {
        let starts_word = rest[..at]
            .chars()
            .next_back()
            .is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == '.'));
        let after = &rest[at + ours.len()..];
        let ends_field =
            ours.ends_with('.') || after.chars().next().is_none_or(|c| ".[:`,)".contains(c));
        out.push_str(&rest[..at]);
        out.push_str(if starts_word && ends_field {
            theirs
        } else {
            ours
        });
        rest = after;
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_fields_become_config_fields() {
        let f = ConfigFields {
            mounts: vec![(4, 7), (1, 2)],
            devices: vec![(0, 3)],
            own_acks: vec!["idmapped-writable".into()],
        };
        assert_eq!(
            f.rewrite("filesystem.mounts[4].source: x; filesystem.mounts[14]: y"),
            "mounts[7].source: x; filesystem.mounts[14]: y"
        );
        assert_eq!(
            f.rewrite("mount /dev/fuse (filesystem.devices[0]): no"),
            "mount /dev/fuse (linux.devices[3]): no"
        );
        assert_eq!(
            f.rewrite("sysctls.kernel.panic: no; process.uid: uid 7 is not in identity.uid_map"),
            "linux.sysctl.kernel.panic: no; process.user.uid: uid 7 is not in linux.uidMappings"
        );
        // Only at a field's start: ambient_capabilities is not capabilities.
        assert_eq!(
            f.rewrite("ambient_capabilities[0]; capabilities[1]"),
            "process.capabilities.ambient[0]; process.capabilities[1]"
        );
        assert_eq!(
            f.rewrite("resources.cpus: 0.005 is not a CPU count; filesystem.root.path: x"),
            "linux.resources.cpu.quota: 0.005 is not a CPU count; root.path: x"
        );
        // Prose stays prose.
        assert_eq!(
            f.rewrite("no capabilities at all under the seccomp filter"),
            "no capabilities at all under the seccomp filter"
        );
    }
}
