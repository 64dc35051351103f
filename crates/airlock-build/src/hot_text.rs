//! Puts the functions a binary runs on its main path first in its text.
//!
//! Why: a page fault on a file mapping maps the neighbouring pages of the
//! page cache too (fault-around: 64 KiB by default, 128 KiB where ext4
//! caches the file in large folios, as on the project's CI machine), and
//! the process's exit or exec unmaps every one of them again. The code an
//! `airlock run -- /bin/true` runs lay spread over the whole 6.6 MiB of
//! the CLI's text, and the CLI mapped 4.1 MiB of it; the runner, whose
//! supervisor, PID 1 and pre-exec workload each fault their code in again
//! (a fork copies no page table entries of a file mapping), mapped 2.0 and
//! 1.6 MiB of its 1.8 MiB in the first two. Gathered in the order they
//! first run, the functions take 1.4 MiB of the CLI's mappings and 1.0
//! and 0.8 MiB of the runner's, and `airlock run -- /bin/true` got about
//! a fifth cheaper (docs/benchmarks.md, 2026-12-04, fourteenth session).
//!
//! How: `benches/hot_text.py` counts which functions run (a BPF program on
//! a uprobe at every function's entry) and writes `hot-text.ld` into the
//! package: a linker script that gathers their sections into an output
//! section `.text.hot`, `INSERT`ed before `.text`. rustc gives every
//! function a section of its own (`.text.<symbol>`), as musl's archive
//! does, so the script names those; glibc's and libseccomp's archives do
//! not, so their functions are named by archive member.
//!
//! Why by hand: no crate orders a binary's functions. GNU ld before 2.43
//! (Debian 12 has 2.40) has no section-ordering file; lld's symbol
//! ordering file wants exact symbol names, which carry hashes that differ
//! between profiles, feature sets and toolchains (the scripts name each
//! function exactly, and again without the hashes in a tail that a build
//! with other hashes finds it in); and profile-guided optimization
//! would need a profiling build and run inside every build. An `INSERT`ed
//! section is understood by GNU ld and lld alike (rust-lld, rustc's default
//! linker on x86_64 Linux since Rust 1.90, links `airlock` here; the musl
//! runner goes through the C compiler's ld), but not by mold or gold: a build
//! that picks a linker with `-fuse-ld=` other than those two goes without,
//! as does one with `AIRLOCK_HOT_TEXT=0` (a linker picked another way,
//! `-C linker=` to a wrapper around mold, is not seen: set that).
//!
//! A stale script costs speed, never correctness: a pattern that matches
//! nothing is ignored, and a function it misses stays in `.text`.

use crate::elf::Elf;
use std::env;
use std::io;
use std::path::{Path, PathBuf};

/// The output section the scripts gather the functions into.
pub const SECTION: &str = ".text.hot";

/// Links the package's binaries with its `hot-text.ld` when the linker
/// takes it, and compiles the package with `AIRLOCK_BUILT_HOT_TEXT` set to
/// `1` or `0` accordingly, for [`assert_hot_text_as_built`]. Returns which.
pub fn order_hot_text() -> bool {
    println!("cargo:rerun-if-env-changed=AIRLOCK_HOT_TEXT");
    let script = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"))
        .join("hot-text.ld");
    println!("cargo:rerun-if-changed={}", script.display());
    let ordered = match why_not(&script) {
        None => {
            println!("cargo:rustc-link-arg-bins=-Wl,-T,{}", script.display());
            true
        }
        Some(why) => {
            if !why.is_empty() {
                let package = env::var("CARGO_PKG_NAME").unwrap_or_default();
                println!("cargo:warning={package} is linked without its hot-text order: {why}");
            }
            false
        }
    };
    println!(
        "cargo:rustc-env=AIRLOCK_BUILT_HOT_TEXT={}",
        u8::from(ordered)
    );
    ordered
}

/// Why the script cannot be used (empty: asked not to, nothing to say).
fn why_not(script: &Path) -> Option<String> {
    if env::var("AIRLOCK_HOT_TEXT").as_deref() == Ok("0") {
        return Some(String::new());
    }
    if env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("linux") {
        return Some("not a Linux build".into());
    }
    // The tests that check the order read 64-bit little-endian ELF only.
    if env::var("CARGO_CFG_TARGET_POINTER_WIDTH").as_deref() != Ok("64")
        || env::var("CARGO_CFG_TARGET_ENDIAN").as_deref() != Ok("little")
    {
        return Some("not a 64-bit little-endian target".into());
    }
    if !script.is_file() {
        return Some(format!("no {}", script.display()));
    }
    // `-Wl,` splits its argument at commas.
    if script.to_string_lossy().contains(',') {
        return Some(format!("{} has a comma in its path", script.display()));
    }
    // A linker picked with -fuse-ld (how mold and gold are usually
    // picked); one behind `-C linker=` or a wrapper is not seen.
    let flags = env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    for (_, rest) in flags
        .match_indices("fuse-ld=")
        .map(|(i, _)| flags.split_at(i + 8))
    {
        let linker = rest
            .split(|c: char| c.is_whitespace() || c == ',' || c == '\x1f')
            .next()
            .unwrap_or_default();
        if !matches!(linker, "bfd" | "lld" | "ld.bfd" | "ld.lld") {
            return Some(format!(
                "the {linker} linker (-fuse-ld) takes no INSERT linker script"
            ));
        }
    }
    None
}

/// The size of the ELF section `name` of `path`, or `None` when it has
/// none.
pub fn section_size(path: &Path, name: &str) -> io::Result<Option<u64>> {
    let sections = Elf::open(path)?.sections()?;
    Ok(sections
        .iter()
        .find(|s| s.name == name.as_bytes())
        .map(|s| s.size))
}

/// For a binary's test: panics unless `binary` has the hot-text section
/// its build said (`built`, the package's `AIRLOCK_BUILT_HOT_TEXT`), and,
/// if it does, a function whose symbol contains each of `functions` lies
/// in it. So a script whose patterns no longer match (a toolchain that
/// names std's functions or their sections otherwise) fails it, not only
/// one that was left out of the link.
pub fn assert_hot_text_as_built(binary: &Path, built: &str, functions: &[&str]) {
    if built != "1" {
        // A 32-bit target's binary, which the ELF reader cannot read, was
        // built without the order too.
        if let Ok(size) = section_size(binary, SECTION) {
            assert_eq!(size, None, "{}: built without hot-text", binary.display());
        }
        return;
    }
    let mut elf = Elf::open(binary).unwrap();
    let sections = elf.sections().unwrap();
    let Some(index) = sections.iter().position(|s| s.name == SECTION.as_bytes()) else {
        panic!(
            "{}: built with its hot-text.ld, but it has no {SECTION}",
            binary.display()
        );
    };
    let inside = elf.functions_in(&sections, index).unwrap();
    for wanted in functions {
        assert!(
            inside.iter().any(|f| f.contains(wanted)),
            "{}: no function named like {wanted} in {SECTION} (of {} there): its hot-text.ld no \
             longer names it (run `sudo benches/hot_text.py` again)",
            binary.display(),
            inside.len()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn section_sizes_are_read_from_the_section_headers() {
        // Every ELF executable has a .text; none has a section of this name.
        let text = section_size(Path::new("/bin/true"), ".text").unwrap();
        assert!(text.is_some_and(|s| s > 1024), "{text:?}");
        assert_eq!(
            section_size(Path::new("/bin/true"), ".no-such-section").unwrap(),
            None
        );
        let err = section_size(Path::new("/etc/passwd"), ".text").unwrap_err();
        assert!(err.to_string().contains("/etc/passwd"), "{err}");
        let dir = std::env::temp_dir().join(format!("airlock-elf-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // Shorter than a header: said as not ELF, not as a short read.
        let short = dir.join("short");
        std::fs::write(&short, b"\x7fELF\x02\x01").unwrap();
        let err = section_size(&short, ".text").unwrap_err().to_string();
        assert!(err.contains("not a 64-bit little-endian ELF"), "{err}");
        // No section count but a table: extended numbering, refused
        // rather than read as no sections.
        let mut header = std::fs::read("/bin/true").unwrap();
        header[60..62].copy_from_slice(&0u16.to_le_bytes());
        let extended = dir.join("extended");
        std::fs::write(&extended, &header).unwrap();
        let err = section_size(&extended, ".text").unwrap_err().to_string();
        assert!(
            err.contains("section headers this reader does not know"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
