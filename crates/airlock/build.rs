//! Compile the default seccomp profile once, here, instead of at every
//! start (see the module doc of `seccomp` for why this and not a cache).
//!
//! The profile's code is `src/seccomp/default.rs` itself, included below,
//! run with the same libseccomp the crate links, so the programs are what
//! a start would compile. Only when the build machine has the target's
//! architecture and system (libseccomp compiles for its native
//! architecture, and the syscall numbers are the architecture's); the C
//! library may differ, so the static runner's musl build carries the same
//! programs as the glibc CLI, and a plan can name them
//! (`src/seccomp/builtin.rs`). A cross build, or a libseccomp that fails
//! here, writes no programs and the crate compiles at run time.

use std::io::Write;
use std::path::Path;

#[path = "src/seccomp/default.rs"]
mod default;
#[allow(dead_code)] // ALLOWED, DENIED: the crate's, not the build's
#[path = "src/seccomp/lists.rs"]
mod lists;

fn main() {
    build_id();
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=src/seccomp/default.rs");
    println!("cargo:rerun-if-changed=src/seccomp/lists.rs");
    let out = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    let out = Path::new(&out);
    let native = abi(&std::env::var("HOST").unwrap_or_default())
        == abi(&std::env::var("TARGET").unwrap_or_default());
    let generated = if native {
        match precompile(out) {
            Ok(code) => code,
            Err(e) => {
                println!("cargo:warning=the default seccomp profile will be compiled at every start: {e}");
                none(&format!("compiling it at build time failed: {e}"))
            }
        }
    } else {
        none("a cross build (libseccomp compiles for the build machine's architecture)")
    };
    std::fs::write(out.join("seccomp_default.rs"), generated).expect("write OUT_DIR");
}

/// `AIRLOCK_BUILD_ID`: a hash of everything the plan's format and its
/// meaning come from (this crate's sources and manifest, the workspace's
/// lock file). The caller writes it before the plan and the runner refuses
/// a plan of another build: the static runner is built by a cargo of its
/// own (see the runner's build.rs) and found beside the binaries, so a
/// stale one must not be run, nor a runner of another installation.
/// Features do not enter it: they change what a build can do, not what a
/// plan says.
fn build_id() {
    fn walk(dir: &Path, files: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(dir)
            .expect("read the crate's sources")
            .flatten()
        {
            let p = e.path();
            if p.is_dir() {
                walk(&p, files);
            } else {
                files.push(p);
            }
        }
    }
    let mut files = Vec::new();
    walk(Path::new("src"), &mut files);
    files.sort();
    files.extend(["Cargo.toml", "build.rs", "../../Cargo.lock"].map(std::path::PathBuf::from));
    let mut hash = FNV_START;
    for f in &files {
        let name = f.to_string_lossy();
        let text = std::fs::read(f).unwrap_or_default();
        hash = fnv(hash, name.bytes().chain([0]).chain(text).chain([0]));
    }
    println!("cargo:rustc-env=AIRLOCK_BUILD_ID={hash:016x}");
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=Cargo.toml");
    println!("cargo:rerun-if-changed=../../Cargo.lock");
}

/// What decides the programs libseccomp compiles natively: the
/// architecture, the system and the ABI (`x32` and `eabihf` matter), not
/// the C library, so a musl build on a glibc host of the same ABI gets the
/// same programs.
fn abi(triple: &str) -> (String, String, String) {
    let parts: Vec<&str> = triple.split('-').collect();
    let part = |i: usize| parts.get(i).copied().unwrap_or_default();
    let env = part(3);
    let env = env
        .strip_prefix("gnu")
        .or_else(|| env.strip_prefix("musl"))
        .unwrap_or(env);
    (part(0).into(), part(2).into(), env.into())
}

/// Why there are no programs (for the tests, and for the runner's refusal
/// of a plan that names them).
const WHY_NOT: &str = "pub const WHY_NOT: &str";

fn none(why: &str) -> String {
    format!("pub static PRECOMPILED: Option<Precompiled> = None;\n{WHY_NOT} = {why:?};\n")
}

/// One filter's program written to `out/name`, whole instructions only.
fn export(
    out: &Path,
    name: &str,
    f: &libseccomp::ScmpFilterContext,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut file = std::fs::File::create(out.join(name))?;
    f.export_bpf(&file)?;
    file.flush()?;
    let len = std::fs::metadata(out.join(name))?.len();
    if len == 0 || len % 8 != 0 {
        return Err(format!("libseccomp exported {len} bytes, not whole instructions").into());
    }
    Ok(())
}

/// FNV-1a, for the build id and for what a plan names a built-in program
/// by (`seccomp/builtin.rs`): only equality matters, and a build script
/// needs no dependency for it.
fn fnv(start: u64, bytes: impl IntoIterator<Item = u8>) -> u64 {
    bytes.into_iter().fold(start, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

const FNV_START: u64 = 0xcbf2_9ce4_8422_2325;

/// The programs, one file each, and the Rust that includes them with the
/// facts they depend on.
fn precompile(out: &Path) -> Result<String, Box<dyn std::error::Error>> {
    let mut includes = String::new();
    let mut hashes = String::new();
    for (i, f) in default::filters()?.iter().enumerate() {
        let name = format!("seccomp_default_{i}.bpf");
        export(out, &name, f)?;
        includes.push_str(&format!(
            "include_bytes!(concat!(env!(\"OUT_DIR\"), \"/{name}\")), "
        ));
        hashes.push_str(&format!(
            "{:#x}, ",
            fnv(FNV_START, std::fs::read(out.join(&name))?)
        ));
    }
    export(out, "seccomp_set_id.bpf", &default::set_id_refusals(&[])?)?;
    hashes.push_str(&format!(
        "{:#x}",
        fnv(FNV_START, std::fs::read(out.join("seccomp_set_id.bpf"))?)
    ));
    let v = libseccomp::ScmpVersion::current()?;
    let arch = libseccomp::ScmpArch::native();
    Ok(format!(
        "pub static PRECOMPILED: Option<Precompiled> = Some(Precompiled {{\n    \
         programs: &[{includes}],\n    \
         set_id: include_bytes!(concat!(env!(\"OUT_DIR\"), \"/seccomp_set_id.bpf\")),\n    \
         hashes: &[{hashes}],\n    \
         libseccomp: ({}, {}, {}),\n    \
         arch: {:?},\n}});\n\
         {WHY_NOT} = \"\";\n",
        v.major,
        v.minor,
        v.micro,
        format!("{arch:?}"),
    ))
}
