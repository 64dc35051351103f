//! Compile the default seccomp profile once, here, instead of at every
//! start (see the module doc of `seccomp` for why this and not a cache).
//!
//! The profile's code is `src/seccomp/default.rs` itself, included below,
//! run with the same libseccomp the crate links, so the programs are what
//! a start would compile. Only when the build machine is the target
//! (libseccomp compiles for its native architecture, and the syscall
//! numbers are the architecture's); a cross build, or a libseccomp that
//! fails here, writes no programs and the crate compiles at run time.

use std::io::Write;
use std::path::Path;

#[path = "src/seccomp/default.rs"]
mod default;
#[allow(dead_code)] // ALLOWED, DENIED: the crate's, not the build's
#[path = "src/seccomp/lists.rs"]
mod lists;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=src/seccomp/default.rs");
    println!("cargo:rerun-if-changed=src/seccomp/lists.rs");
    let out = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    let out = Path::new(&out);
    let native = std::env::var("HOST").ok() == std::env::var("TARGET").ok();
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

/// Why there are no programs (read by the crate's tests).
const WHY_NOT: &str = "#[cfg_attr(not(test), allow(dead_code))]\npub const WHY_NOT: &str";

fn none(why: &str) -> String {
    format!("pub const PRECOMPILED: Option<Precompiled> = None;\n{WHY_NOT} = {why:?};\n")
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

/// The programs, one file each, and the Rust that includes them with the
/// facts they depend on.
fn precompile(out: &Path) -> Result<String, Box<dyn std::error::Error>> {
    let mut includes = String::new();
    for (i, f) in default::filters()?.iter().enumerate() {
        let name = format!("seccomp_default_{i}.bpf");
        export(out, &name, f)?;
        includes.push_str(&format!(
            "include_bytes!(concat!(env!(\"OUT_DIR\"), \"/{name}\")), "
        ));
    }
    export(out, "seccomp_set_id.bpf", &default::set_id_refusals(&[])?)?;
    let v = libseccomp::ScmpVersion::current()?;
    let arch = libseccomp::ScmpArch::native();
    Ok(format!(
        "pub const PRECOMPILED: Option<Precompiled> = Some(Precompiled {{\n    \
         programs: &[{includes}],\n    \
         set_id: include_bytes!(concat!(env!(\"OUT_DIR\"), \"/seccomp_set_id.bpf\")),\n    \
         libseccomp: ({}, {}, {}),\n    \
         arch: {:?},\n}});\n\
         {WHY_NOT} = \"\";\n",
        v.major,
        v.minor,
        v.micro,
        format!("{arch:?}"),
    ))
}
