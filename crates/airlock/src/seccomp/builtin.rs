//! The default profile's programs as the build script compiled them
//! (`build.rs`), carried by every build of this crate, the runner's too
//! (which has no libseccomp): a plan names such a program by its place
//! and content hash instead of carrying its bytes, and the runner installs
//! its own copy. The hex of the default programs was most of a plan (10 of
//! its 12.6 KiB): writing and escaping it was about a ninth of the CLI's
//! instructions for a start, and the runner parsed it back.
//!
//! A name is honoured only for the very program: the runner refuses a
//! plan whose hash differs from its own copy's (binaries built against
//! another libseccomp) or that names a program it was built without (a
//! cross build), rather than install something else.

use super::Program;
use std::borrow::Cow;

pub struct Precompiled {
    pub programs: &'static [&'static [u8]],
    /// `default::set_id_refusals` for the native architecture.
    pub set_id: &'static [u8],
    /// FNV-1a of each program, then of `set_id`: what a plan names them by.
    pub hashes: &'static [u64],
    /// libseccomp's (major, minor, micro) at build time.
    #[cfg_attr(not(feature = "libseccomp"), allow(dead_code))]
    pub libseccomp: (u32, u32, u32),
    /// `ScmpArch::native()` at build time, as Debug prints it.
    #[cfg_attr(not(feature = "libseccomp"), allow(dead_code))]
    pub arch: &'static str,
}

include!(concat!(env!("OUT_DIR"), "/seccomp_default.rs"));

const PREFIX: &str = "builtin:";

/// The built-in programs in the order a plan numbers them: the default
/// profile's, then the set-id refusals.
fn table() -> impl Iterator<Item = &'static [u8]> {
    PRECOMPILED
        .iter()
        .flat_map(|p| p.programs.iter().copied().chain([p.set_id]))
}

/// How a plan names `bytes`, if they are one of this binary's built-in
/// programs: the very slice, not an equal copy (only programs taken from
/// the table are named, so the check is a pointer comparison; the table is
/// a `static`, not a `const`, so that each program has one address, where
/// each use of a constant may get a copy of its own).
pub(super) fn name_of(bytes: &[u8]) -> Option<String> {
    let p = PRECOMPILED.as_ref()?;
    let i = table().position(|b| std::ptr::eq(b, bytes))?;
    Some(format!("{PREFIX}{i}:{:016x}", p.hashes.get(i)?))
}

/// The program a plan names, if `text` is such a name (`None`: it is hex).
pub(super) fn resolve(text: &str) -> Option<Result<&'static [u8], String>> {
    let rest = text.strip_prefix(PREFIX)?;
    Some(resolve_name(rest))
}

fn resolve_name(rest: &str) -> Result<&'static [u8], String> {
    let (index, hash) = rest
        .split_once(':')
        .and_then(|(i, h)| Some((i.parse::<usize>().ok()?, u64::from_str_radix(h, 16).ok()?)))
        .ok_or_else(|| format!("{PREFIX}{rest:?} is not a built-in program's name"))?;
    let Some(p) = PRECOMPILED.as_ref() else {
        return Err(format!(
            "the caller named its precompiled seccomp program {index}, and this binary was built without them ({WHY_NOT}): build airlock's binaries together on one machine"
        ));
    };
    match table().nth(index) {
        Some(bytes) if p.hashes.get(index) == Some(&hash) => Ok(bytes),
        Some(_) => Err(format!(
            "the caller's precompiled seccomp program {index} differs from this binary's (built against another libseccomp): build airlock's binaries together on one machine"
        )),
        None => Err(format!(
            "the caller named precompiled seccomp program {index}; this binary has {}",
            table().count()
        )),
    }
}

/// The set-id refusals, borrowed from the table.
#[cfg_attr(not(feature = "libseccomp"), allow(dead_code))]
pub(super) fn set_id() -> Option<Program> {
    PRECOMPILED
        .as_ref()
        .map(|p| Program(Cow::Borrowed(p.set_id)))
}

/// The default profile's programs, borrowed from the table.
#[cfg_attr(not(feature = "libseccomp"), allow(dead_code))]
pub(super) fn programs() -> Option<Vec<Program>> {
    let p = PRECOMPILED.as_ref()?;
    Some(
        p.programs
            .iter()
            .map(|b| Program(Cow::Borrowed(*b)))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// FNV-1a again, here, so that a wrong or misplaced hash from the
    /// build script shows.
    fn fnv(bytes: &[u8]) -> u64 {
        bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
        })
    }

    #[test]
    fn each_name_carries_its_programs_hash_and_resolves_to_it() {
        let Some(p) = PRECOMPILED.as_ref() else {
            eprintln!("not precompiled: {WHY_NOT}");
            return;
        };
        let all: Vec<&'static [u8]> = table().collect();
        assert_eq!(all.len(), p.programs.len() + 1);
        assert_eq!(p.hashes.len(), all.len());
        for (i, bytes) in all.iter().enumerate() {
            assert_eq!(p.hashes[i], fnv(bytes), "program {i}");
            let name = name_of(bytes).unwrap();
            assert_eq!(name, format!("builtin:{i}:{:016x}", fnv(bytes)));
            let back = resolve(&name).unwrap().unwrap();
            assert!(std::ptr::eq(back, *bytes), "program {i}");
        }
        let copy: Vec<u8> = all[0].to_vec();
        assert_eq!(name_of(copy.as_slice()), None, "an equal copy");
        assert!(resolve("0011223344556677").is_none(), "hex is not a name");
    }
}
