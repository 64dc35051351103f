//! Build-script helpers for the binaries whose start-up is on every
//! sandbox's path: `airlock` (each `airlock run` is one exec of it) and
//! `airlock-runtime` (each container is several execs of it).
//!
//! [`link_glibc_statically`] links such a binary statically against glibc
//! (and libseccomp). A dynamically linked Rust program here spends about
//! 0.3 ms of CPU more before `main` than the same program linked
//! statically: the loader maps and relocates four libraries, and
//! libgcc_s's constructor runs `cpuid` a dozen times, each a trap to the
//! hypervisor on a virtual machine (about 7 µs each on the project's CI
//! machine). Measured on that machine in one interleaved run:
//! `airlock run -- /bin/true` 5.49 against 5.82 ms, airlock-runtime's
//! whole container life 6.63 against 6.92 ms (5.80 against 6.60 ms of
//! CPU); see docs/benchmarks.md. glibc's own `cpuid` probing of the caches
//! stays: static glibc runs it too. musl would skip it, but the same code
//! ran slower over musl's string and allocation routines (measured and
//! not kept, docs/benchmarks.md), and Debian ships no musl libseccomp.
//!
//! Why by hand: rustc's way, `-C target-feature=+crt-static`, can only be
//! given for a whole build, and cargo then applies it to the workspace's
//! proc macros too when it builds for the host, which glibc cannot link
//! statically (rustc refuses: "cannot produce proc-macro ... does not
//! support these crate types"). So the build script adds, for the binary
//! alone, `-static` (the C compiler then picks the static start files and
//! leaves out the dynamic loader) and a search directory of linker scripts
//! named after the shared libraries rustc asks for (`libc.so` holding
//! `GROUP(/usr/lib/x86_64-linux-gnu/libc.a ...)`): rustc puts
//! `-Bdynamic -lgcc_s -lc` after every argument a build script can add,
//! and a linker searches a `-L` directory given anywhere before its own.
//! `libgcc_s` becomes `libgcc_eh.a`, the static unwinder that
//! crt-static uses.
//!
//! The binary is then position-dependent in full: its libc is not
//! address-randomized either (its heap, stack and mmaps still are). Both
//! binaries were already linked `-no-pie`; neither is setuid, and each
//! parses only input its own caller gives it (a command line and spec, an
//! OCI bundle) before it execs the runner or hands the work to it.
//!
//! Where an archive is missing (`libc6-dev` ships `libc.a`,
//! `libseccomp-dev` `libseccomp.a`) the binary is linked dynamically, with
//! a build warning; `AIRLOCK_REQUIRE_STATIC_GLIBC=1` (CI) makes that an
//! error and `AIRLOCK_STATIC_GLIBC=0` skips static linking. The package is
//! compiled with `AIRLOCK_GLIBC_STATIC` set to `1` or `0` accordingly, so
//! that its tests can check with [`dynamic_loader`] that the binary came
//! out as the build meant.

use std::env;
use std::fs;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The shared libraries rustc and the `-sys` crates ask for with `-l`, and
/// the archives each stands for. glibc's others (`-lutil -lrt -lpthread
/// -ldl`) have no development `.so` since glibc 2.34: the linker finds
/// their (empty) archives by itself. libc's and libgcc's archives need
/// each other (`__gcc_personality_v0`, `__multf3`, `dl_iterate_phdr`), and
/// GNU ld, unlike lld, searches an archive only where it stands on the
/// line: so `libc.so` is a GROUP of the three, searched until nothing more
/// resolves.
const SHARED_TO_STATIC: &[(&str, &[&str])] = &[
    ("gcc_s", &["libgcc_eh.a", "libgcc.a"]),
    ("c", &["libc.a", "libgcc.a", "libgcc_eh.a"]),
    ("m", &["libm.a"]),
    ("seccomp", &["libseccomp.a"]),
];

/// Links the package's binaries statically against glibc, when the target
/// is linux-gnu and every archive is there; else says why in a warning
/// (or fails, under `AIRLOCK_REQUIRE_STATIC_GLIBC=1`). Tests and examples
/// stay dynamic: only `-bins` link arguments are given.
pub fn link_glibc_statically() {
    println!("cargo:rerun-if-env-changed=AIRLOCK_STATIC_GLIBC");
    println!("cargo:rerun-if-env-changed=AIRLOCK_REQUIRE_STATIC_GLIBC");
    let linux_gnu = env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux")
        && env::var("CARGO_CFG_TARGET_ENV").as_deref() == Ok("gnu");
    let linked = linux_gnu && env::var("AIRLOCK_STATIC_GLIBC").as_deref() != Ok("0") && {
        match shim_dir() {
            Ok(dir) => {
                println!("cargo:rustc-link-arg-bins=-L{}", dir.display());
                println!("cargo:rustc-link-arg-bins=-static");
                true
            }
            Err(why) => {
                refuse_or_warn(&why);
                false
            }
        }
    };
    println!("cargo:rustc-env=AIRLOCK_GLIBC_STATIC={}", u8::from(linked));
}

fn refuse_or_warn(why: &str) {
    if env::var("AIRLOCK_REQUIRE_STATIC_GLIBC").as_deref() == Ok("1") {
        panic!("cannot link {} statically: {why}", package());
    }
    println!(
        "cargo:warning={} is linked dynamically, which starts slower: {why}",
        package()
    );
}

fn package() -> String {
    env::var("CARGO_PKG_NAME").unwrap_or_default()
}

/// Writes the linker scripts into `OUT_DIR/static-glibc` and returns it,
/// or names the archive that is missing.
fn shim_dir() -> Result<PathBuf, String> {
    let dir = PathBuf::from(env::var("OUT_DIR").map_err(|e| format!("OUT_DIR: {e}"))?)
        .join("static-glibc");
    fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    for (shared, archives) in SHARED_TO_STATIC {
        let mut paths = Vec::new();
        for archive in *archives {
            let path = find_archive(archive)?;
            // A space or a parenthesis would end the script's GROUP
            // early; the C compiler's own directories have neither.
            match path.to_str() {
                Some(p) if !p.contains([' ', '(', ')']) => paths.push(p.to_string()),
                _ => {
                    let name = path.display();
                    return Err(format!("{name} is not a path a linker script can name"));
                }
            }
        }
        let script = dir.join(format!("lib{shared}.so"));
        fs::write(&script, format!("GROUP({})\n", paths.join(" ")))
            .map_err(|e| format!("write {}: {e}", script.display()))?;
    }
    Ok(dir)
}

/// Where the C compiler that links the binary finds `archive`: it prints
/// the bare name back when it has none.
fn find_archive(archive: &str) -> Result<PathBuf, String> {
    let cc = env::var("RUSTC_LINKER").unwrap_or_else(|_| "cc".into());
    let out = Command::new(&cc)
        .arg(format!("-print-file-name={archive}"))
        .output()
        .map_err(|e| format!("run {cc}: {e}"))?;
    let printed = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let path = PathBuf::from(&printed);
    if !out.status.success() || !path.is_absolute() || !path.is_file() {
        let package = match archive {
            "libseccomp.a" => "libseccomp-dev",
            "libgcc_eh.a" => "gcc",
            _ => "libc6-dev",
        };
        return Err(format!(
            "{cc} finds no {archive} (Debian: `apt-get install {package}`)"
        ));
    }
    Ok(path)
}

/// The dynamic loader an ELF executable names (its `PT_INTERP`), or `None`
/// for a static one. 64-bit little-endian ELF only, as this crate's
/// binaries are.
pub fn dynamic_loader(path: &Path) -> io::Result<Option<PathBuf>> {
    let bad = |what: &str| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: {what}", path.display()),
        )
    };
    let mut f = fs::File::open(path)?;
    let mut header = [0u8; 64];
    f.read_exact(&mut header)?;
    if header[..4] != *b"\x7fELF" || header[4] != 2 || header[5] != 1 {
        return Err(bad("not a 64-bit little-endian ELF file"));
    }
    let u16_at = |b: &[u8], at: usize| u16::from_le_bytes([b[at], b[at + 1]]);
    let u64_at = |b: &[u8], at: usize| u64::from_le_bytes(b[at..at + 8].try_into().unwrap());
    let (phoff, phentsize, phnum) = (
        u64_at(&header, 32),
        u16_at(&header, 54),
        u16_at(&header, 56),
    );
    if phentsize < 56 {
        return Err(bad("program headers too small"));
    }
    for i in 0..u64::from(phnum) {
        let mut ph = vec![0u8; usize::from(phentsize)];
        f.seek(SeekFrom::Start(phoff + i * u64::from(phentsize)))?;
        f.read_exact(&mut ph)?;
        const PT_INTERP: u32 = 3;
        if u32::from_le_bytes(ph[..4].try_into().unwrap()) != PT_INTERP {
            continue;
        }
        let (offset, size) = (u64_at(&ph, 8), u64_at(&ph, 32));
        let mut name = vec![0u8; usize::try_from(size).map_err(|_| bad("PT_INTERP too large"))?];
        f.seek(SeekFrom::Start(offset))?;
        f.read_exact(&mut name)?;
        let name = name.split(|&b| b == 0).next().unwrap_or_default();
        return Ok(Some(PathBuf::from(
            String::from_utf8_lossy(name).into_owned(),
        )));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dynamic_program_names_its_loader_and_a_static_one_none() {
        // Debian's /bin/true is dynamic; busybox-static (which CI
        // installs for the image tests) is not.
        let loader = dynamic_loader(Path::new("/bin/true")).unwrap();
        assert!(
            loader
                .as_deref()
                .is_some_and(|l| l.to_string_lossy().contains("/ld-")),
            "{loader:?}"
        );
        let busybox = Path::new("/bin/busybox");
        if busybox.exists() {
            assert_eq!(dynamic_loader(busybox).unwrap(), None);
        }
        assert!(dynamic_loader(Path::new("/etc/passwd")).is_err());
    }
}
