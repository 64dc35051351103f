//! The default profile's programs as the build script compiled them
//! (`build.rs`), carried by every build of this crate, the runner's too
//! (which has no libseccomp): a plan names such a program by its place
//! and content hash instead of carrying its bytes, and the runner installs
//! its own copy. The hex of the default programs was most of a plan (10 of
//! its 12.6 KiB): writing and escaping it, and parsing it back in the
//! runner, was about a seventh of the CLI's instructions for a start.
//!
//! A name is honoured only for the very program: the runner refuses a
//! plan whose hash differs from its own copy's (binaries built against
//! another libseccomp) or that names a program it was built without (a
//! cross build), rather than install something else.

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
/// programs (the very slice, not an equal copy: only programs taken from
/// the table are named, so the check is a pointer comparison).
pub(super) fn name_of(bytes: &[u8]) -> Option<String> {
    let p = PRECOMPILED.as_ref()?;
    let i = table().position(|b| std::ptr::eq(b, bytes))?;
    Some(format!("{PREFIX}{i}:{:016x}", p.hashes[i]))
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
        Some(bytes) if p.hashes[index] == hash => Ok(bytes),
        Some(_) => Err(format!(
            "the caller's precompiled seccomp program {index} differs from this binary's (built against another libseccomp): build airlock's binaries together on one machine"
        )),
        None => Err(format!(
            "the caller named precompiled seccomp program {index}; this binary has {}",
            table().count()
        )),
    }
}

/// The default profile's programs, borrowed from the table.
#[cfg_attr(not(feature = "libseccomp"), allow(dead_code))]
pub(super) fn programs() -> Option<Vec<Cow<'static, [u8]>>> {
    let p = PRECOMPILED.as_ref()?;
    Some(p.programs.iter().map(|b| Cow::Borrowed(*b)).collect())
}
