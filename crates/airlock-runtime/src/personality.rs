//! `linux.personality`: the execution domain (`LINUX`, `LINUX32`) and
//! flags, as the one value personality(2) takes. The workload sets it
//! before exec; it changes what the process is told (uname's machine,
//! the address-space layout), not the system-call ABI, so the seccomp
//! filter still judges every call the same way.

use airlock::spec::SpecError;
use oci_spec::runtime::{LinuxPersonality, LinuxPersonalityDomain};

const PER_LINUX: u64 = 0x0000;
const PER_LINUX32: u64 = 0x0008;

/// The flags of personality(2), by the names the kernel's headers give.
const FLAGS: [(&str, u64); 11] = [
    ("UNAME26", 0x002_0000),
    ("ADDR_NO_RANDOMIZE", 0x004_0000),
    ("FDPIC_FUNCPTRS", 0x008_0000),
    ("MMAP_PAGE_ZERO", 0x010_0000),
    ("ADDR_COMPAT_LAYOUT", 0x020_0000),
    ("READ_IMPLIES_EXEC", 0x040_0000),
    ("ADDR_LIMIT_32BIT", 0x080_0000),
    ("SHORT_INODE", 0x100_0000),
    ("WHOLE_SECONDS", 0x200_0000),
    ("STICKY_TIMEOUTS", 0x400_0000),
    ("ADDR_LIMIT_3GB", 0x800_0000),
];

/// The personality(2) value.
pub fn of(p: &LinuxPersonality) -> Result<u64, SpecError> {
    let mut v = match p.domain() {
        LinuxPersonalityDomain::PerLinux => PER_LINUX,
        LinuxPersonalityDomain::PerLinux32 => PER_LINUX32,
    };
    for (i, f) in p.flags().iter().flatten().enumerate() {
        let Some((_, bit)) = FLAGS.iter().find(|(n, _)| n == f) else {
            return Err(SpecError::new(
                format!("linux.personality.flags[{i}]"),
                format!(
                    "unknown flag {f:?} (known: {})",
                    FLAGS.map(|(n, _)| n).join(", ")
                ),
            ));
        };
        v |= bit;
    }
    Ok(v)
}

/// The domain as written, before the typed parse (whose error would not
/// name the field).
pub fn check_raw(raw: &serde_json::Value) -> Result<(), String> {
    match raw.pointer("/linux/personality/domain") {
        None => Ok(()),
        Some(serde_json::Value::String(d)) if d == "LINUX" || d == "LINUX32" => Ok(()),
        Some(d) => Err(format!(
            "linux.personality.domain: {d} is not a domain airlock knows (LINUX or LINUX32)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> LinuxPersonality {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn domains_and_flags() {
        assert_eq!(of(&parse(r#"{"domain":"LINUX"}"#)).unwrap(), 0);
        assert_eq!(
            of(&parse(
                r#"{"domain":"LINUX32","flags":["ADDR_NO_RANDOMIZE"]}"#
            ))
            .unwrap(),
            0x4_0008
        );
        let e = of(&parse(r#"{"domain":"LINUX","flags":["NOPE"]}"#)).unwrap_err();
        assert!(e.to_string().contains("linux.personality.flags[0]"), "{e}");
        let raw = serde_json::json!({"linux": {"personality": {"domain": "LINUX64"}}});
        assert!(check_raw(&raw)
            .unwrap_err()
            .contains("linux.personality.domain"));
    }
}
