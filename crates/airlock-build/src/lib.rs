//! Build-script helpers for the binaries whose start-up is on every
//! sandbox's path: `airlock` (each `airlock run` is one exec of it),
//! `airlock-runtime` (each container is several execs of it) and, for
//! [`order_hot_text`] (see its module), the runner.
//!
//! [`link_glibc_statically`] links such a binary statically against glibc
//! (and libseccomp). A dynamically linked program spends CPU before `main`
//! that a static one does not: the loader maps and relocates its
//! libraries, and libgcc_s's constructor runs `cpuid` a dozen times, each
//! a trap to the hypervisor on a virtual machine (about 7 µs each on the
//! project's CI machine). There, each exec of either binary got about
//! 0.2 ms faster and 0.3 ms cheaper in CPU; the figures are in
//! docs/benchmarks.md (2026-12-04). glibc's own `cpuid` probing of the
//! caches stays: static glibc runs it too. musl would skip it, but the
//! same code ran slower over musl's string and allocation routines
//! (measured and not kept, docs/benchmarks.md), and Debian ships no musl
//! libseccomp.
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
//! OCI bundle) before it execs the runner or hands the work to it. A
//! static glibc cannot load NSS modules other than its built-in `files`
//! and `dns`: neither binary looks up users, groups or hosts through NSS
//! (a container's users come from its own /etc/passwd, read as a file).
//!
//! Only a native linux-gnu build is linked statically (the archives are
//! found by asking the C compiler, which knows the host's). Where an
//! archive is missing (`libc6-dev` ships `libc.a`, `libseccomp-dev`
//! `libseccomp.a`) the binary is linked dynamically, with a build warning;
//! `AIRLOCK_STATIC_GLIBC=0` asks for that. `AIRLOCK_REQUIRE_STATIC_GLIBC=1`
//! (CI) makes a dynamic link of any linux-gnu build an error. The
//! package is compiled with `AIRLOCK_BUILT_STATIC` set to `1` or `0`
//! accordingly, so that its tests can check with [`dynamic_loader`] that
//! the binary came out as the build meant.

mod elf;
mod hot_text;

pub use hot_text::{assert_hot_text_as_built, order_hot_text, section_size};

use std::env;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The shared libraries rustc and the `-sys` crates ask for with `-l`, and
/// the archives each stands for. libc's and libgcc's archives need each
/// other (`__gcc_personality_v0`, `__multf3`, `dl_iterate_phdr`), and GNU
/// ld, unlike lld, searches an archive only where it stands on the line:
/// so `libc.so` is a GROUP of the three, searched until nothing more
/// resolves. `-lpthread -ldl -lrt -lutil` are empty archives since glibc
/// 2.34, but before it they had development `.so` files of their own.
const SHARED_TO_STATIC: &[(&str, &[&str])] = &[
    ("gcc_s", &["libgcc_eh.a", "libgcc.a"]),
    ("c", &["libc.a", "libgcc.a", "libgcc_eh.a"]),
    ("m", &["libm.a"]),
    ("pthread", &["libpthread.a"]),
    ("dl", &["libdl.a"]),
    ("rt", &["librt.a"]),
    ("util", &["libutil.a"]),
    ("seccomp", &["libseccomp.a"]),
];

/// Links the package's binaries statically against glibc when the build
/// is a native linux-gnu one and every archive is there; else links them
/// dynamically, saying why in a warning (or failing, under
/// `AIRLOCK_REQUIRE_STATIC_GLIBC=1`). Tests and examples stay dynamic:
/// only `-bins` link arguments are given.
pub fn link_glibc_statically() {
    println!("cargo:rerun-if-env-changed=AIRLOCK_STATIC_GLIBC");
    println!("cargo:rerun-if-env-changed=AIRLOCK_REQUIRE_STATIC_GLIBC");
    let linux_gnu = env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux")
        && env::var("CARGO_CFG_TARGET_ENV").as_deref() == Ok("gnu");
    let linked = linux_gnu
        && match static_link_dir() {
            Ok(dir) => {
                println!("cargo:rustc-link-arg-bins=-L{}", dir.display());
                println!("cargo:rustc-link-arg-bins=-static");
                true
            }
            Err(why) => {
                let package = env::var("CARGO_PKG_NAME").unwrap_or_default();
                if env::var("AIRLOCK_REQUIRE_STATIC_GLIBC").as_deref() == Ok("1") {
                    panic!("cannot link {package} statically: {why}");
                }
                println!(
                    "cargo:warning={package} is linked dynamically, which starts slower: {why}"
                );
                false
            }
        };
    println!("cargo:rustc-env=AIRLOCK_BUILT_STATIC={}", u8::from(linked));
}

/// Writes the linker scripts into `OUT_DIR/static-glibc` and returns it,
/// or says why the build cannot link statically.
fn static_link_dir() -> Result<PathBuf, String> {
    if env::var("AIRLOCK_STATIC_GLIBC").as_deref() == Ok("0") {
        return Err("AIRLOCK_STATIC_GLIBC=0".into());
    }
    // The archives are found through the C compiler, which answers for the
    // machine it runs on: a cross build would get the host's.
    if env::var("TARGET").ok() != env::var("HOST").ok() {
        return Err("a cross build (TARGET is not HOST)".into());
    }
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
            // The scripts name the archives by path (gcc's has its version
            // in it): an upgrade or a removed package must write them again.
            println!("cargo:rerun-if-changed={}", path.display());
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
            "libgcc.a" | "libgcc_eh.a" => "gcc",
            _ => "libc6-dev",
        };
        // Cargo runs this script again when the package is installed only
        // if something it watches changed.
        return Err(format!(
            "{cc} finds no {archive} (Debian: `apt-get install {package}`, then `touch build.rs` of this package)"
        ));
    }
    Ok(path)
}

/// The dynamic loader an ELF executable names (its `PT_INTERP`), or `None`
/// for a static one. 64-bit little-endian ELF only, as this crate's
/// binaries are.
pub fn dynamic_loader(path: &Path) -> io::Result<Option<PathBuf>> {
    let mut elf = elf::Elf::open(path)?;
    let (phoff, phentsize, phnum) = (
        elf::u64_at(&elf.header, 32),
        u64::from(elf::u16_at(&elf.header, 54)),
        u64::from(elf::u16_at(&elf.header, 56)),
    );
    if phentsize < 56 {
        return Err(elf.bad("program headers too small"));
    }
    let table = elf.read_at(phoff, phentsize * phnum)?;
    for ph in table.chunks_exact(phentsize as usize) {
        const PT_INTERP: u32 = 3;
        if elf::u32_at(ph, 0) != PT_INTERP {
            continue;
        }
        // A loader's path is a path: PATH_MAX bounds it.
        let (offset, size) = (elf::u64_at(ph, 8), elf::u64_at(ph, 32));
        if size > 4096 {
            return Err(elf.bad("PT_INTERP longer than a path"));
        }
        let name = elf.read_at(offset, size)?;
        let name = name.split(|&b| b == 0).next().unwrap_or_default();
        return Ok(Some(PathBuf::from(
            String::from_utf8_lossy(name).into_owned(),
        )));
    }
    Ok(None)
}

/// For a binary's test: panics unless `binary` is linked the way its
/// build said (`built_static`, the package's `AIRLOCK_BUILT_STATIC`):
/// static means no loader, and a linux-gnu build's dynamic fallback names
/// one. A linker that quietly made it dynamic again fails the test.
pub fn assert_linked_as_built(binary: &Path, built_static: &str) {
    let loader = dynamic_loader(binary).unwrap();
    if built_static == "1" {
        assert_eq!(
            loader,
            None,
            "{}: built to be static, but it names a loader",
            binary.display()
        );
    } else if cfg!(target_env = "gnu") {
        assert!(
            loader.is_some(),
            "{}: linked dynamically, but it names no loader",
            binary.display()
        );
    }
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
        let err = dynamic_loader(Path::new("/etc/passwd")).unwrap_err();
        assert!(err.to_string().contains("/etc/passwd"), "{err}");
    }
}
