//! Links the runner as a position-dependent executable, and builds a
//! static (musl) copy of it beside the binaries: `airlock-runner-static`,
//! which the runner lookup prefers.
//!
//! Position-dependent: two runner processes stay beside a sandbox for its
//! whole life (the supervisor and our PID 1). In a PIE every pointer in
//! `.data.rel.ro` (vtables, static tables, panic locations: about 32 KiB
//! here) is patched at start-up, which turns those pages into private
//! memory in each process; linked at a fixed address they stay clean pages
//! of the file, shared with every other runner. The cost is that the
//! runner's own code is not address-randomized (its heap and stack still
//! are): acceptable for a process that parses only its caller's plan,
//! reports from its own PID 1 and requests from the sandbox's owner, and
//! that copies the workload's output as bytes.
//!
//! Its functions that a sandbox's start runs are linked first, together
//! (`airlock_build::order_hot_text`, from `hot-text.ld`).
//!
//! Static: every glibc program on a virtual machine spends about 1 ms of
//! CPU before `main` (its loader sizes the caches with `cpuid`, which traps
//! to the hypervisor), and `airlock run` execs the runner once per
//! sandbox. A musl static binary starts in a tenth of that. Cargo cannot
//! build one package of a workspace for another target, so this script
//! runs a second cargo for `<arch>-unknown-linux-musl` into its own target
//! directory (`<target>/airlock-static`) and copies the result beside the
//! binaries of this build. The nested cargo shares this build's jobserver.
//!
//! Without the musl target (`rustup target add x86_64-unknown-linux-musl`)
//! or a musl C compiler for zstd's C code (`apt-get install musl-tools`),
//! in a cross build, or when the nested build fails, it says so in a
//! warning and removes a stale copy, so the glibc runner of this very
//! build is the one found; `AIRLOCK_REQUIRE_STATIC_RUNNER=1` (CI) makes
//! that an error. `AIRLOCK_STATIC_RUNNER=0` skips the static build.
//!
//! The copy's place is derived from OUT_DIR's layout, which is the
//! artifact directory's unless `build.build-dir` moves the intermediate
//! files elsewhere; there, set `AIRLOCK_RUNNER` to the static runner (or
//! use the glibc one). Either way the caller and the runner check that
//! they were built from the same sources (`plan::BUILD_ID`).

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Set for the nested cargo, whose own run of this script must not recurse.
const NESTED: &str = "AIRLOCK_RUNNER_NESTED_BUILD";

fn main() {
    let target_env = env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    // A static musl build is made position-dependent by its rustflags
    // (`-C relocation-model=static`); `-no-pie` beside rustc's own
    // `-static-pie` would link a binary that crashes before main.
    if target_env == "gnu" {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
    // Both runners, the nested static one too: its three processes per
    // sandbox each fault the code they run in again.
    let hot_text = airlock_build::order_hot_text();
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=AIRLOCK_STATIC_RUNNER");
    println!("cargo:rerun-if-env-changed=AIRLOCK_REQUIRE_STATIC_RUNNER");
    if env::var_os(NESTED).is_some()
        || target_env != "gnu"
        || env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("linux")
    {
        return;
    }
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    // OUT_DIR is <target>/[<triple>/]<profile>/build/airlock-runner-<hash>/out.
    let bin_dir = out_dir.ancestors().nth(3).expect("OUT_DIR's layout");
    let dest = bin_dir.join("airlock-runner-static");
    if env::var("AIRLOCK_STATIC_RUNNER").as_deref() == Ok("0") {
        remove_stale(&dest);
        return;
    }
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let workspace = manifest.parent().and_then(Path::parent).unwrap();
    // The nested cargo's own fingerprints decide what it rebuilds; this
    // script only has to run again when anything the runner is built from
    // changed.
    for p in [
        "crates/airlock",
        "crates/airlock-runner/src",
        "crates/airlock-runner/Cargo.toml",
        "Cargo.toml",
        "Cargo.lock",
        ".cargo",
    ] {
        println!("cargo:rerun-if-changed={}", workspace.join(p).display());
    }
    let target = env::var("TARGET").unwrap();
    if env::var("HOST").as_deref() != Ok(&target) {
        // A cross build: its musl toolchain is the cross-builder's choice.
        unavailable(&dest, "this is a cross build");
        return;
    }
    // x86_64-unknown-linux-gnu -> x86_64-unknown-linux-musl, and
    // armv7-unknown-linux-gnueabihf -> armv7-unknown-linux-musleabihf.
    let triple = target.replacen("-gnu", "-musl", 1);
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    if !target_installed(&rustc, &triple) {
        unavailable(&dest, &format!(
            "the {triple} target is not installed (`rustup target add {triple}`), so the runner beside `airlock` is the glibc one, which starts about 1 ms slower"
        ));
        return;
    }
    if !musl_cc(&triple) {
        unavailable(&dest, &format!(
            "no C compiler for {triple} (the runner's zstd is C): `apt-get install musl-tools`, or name one in CC_{}",
            triple.replace('-', "_")
        ));
        return;
    }
    let profile_dir = bin_dir.file_name().unwrap().to_string_lossy().into_owned();
    let profile = if profile_dir == "debug" {
        "dev".to_string()
    } else {
        profile_dir
    };
    // Beside the profile directories: <target>/[<triple>/]airlock-static.
    let nested_target = bin_dir.parent().unwrap().join("airlock-static");
    let mut cargo = Command::new(env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cargo
        .current_dir(workspace)
        .args(["build", "-p", "airlock-runner", "--bin", "airlock-runner"])
        .args(["--profile", &profile, "--target", &triple])
        .arg("--target-dir")
        .arg(&nested_target)
        .env(NESTED, "1")
        // The same choice for both runners (its own RUSTFLAGS differ).
        .env("AIRLOCK_HOT_TEXT", if hot_text { "1" } else { "0" })
        // Position-dependent, as the glibc runner is linked with -no-pie.
        .env("CARGO_ENCODED_RUSTFLAGS", "-Crelocation-model=static")
        // What the outer build passes to its own rustc is not for this one.
        .env_remove("RUSTFLAGS")
        .env_remove("RUSTC_WRAPPER")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET")
        // Its intermediate files in its own directory too: a build-dir
        // shared with the outer cargo would be locked by it.
        .env("CARGO_BUILD_BUILD_DIR", &nested_target);
    let status = cargo.status().expect("run the nested cargo");
    if !status.success() {
        // The glibc runner of this build still works: only CI insists.
        unavailable(
            &dest,
            &format!(
                "its build for {triple} failed (`cargo build -vv` shows the nested cargo's output)"
            ),
        );
        return;
    }
    let built = nested_target
        .join(&triple)
        .join(bin_dir.file_name().unwrap())
        .join("airlock-runner");
    // Copy then rename, so a runner started meanwhile never sees half a file.
    let tmp = dest.with_extension(format!("tmp{}", std::process::id()));
    std::fs::copy(&built, &tmp).expect("copy the static runner");
    std::fs::rename(&tmp, &dest).expect("put the static runner in place");
}

/// Whether rustup (or the toolchain) has the standard library for `triple`.
fn target_installed(rustc: &str, triple: &str) -> bool {
    Command::new(rustc)
        .args(["--print", "target-libdir", "--target", triple])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|dir| std::fs::read_dir(dir.trim()).ok())
        .is_some_and(|mut entries| {
            entries.any(|e| e.is_ok_and(|e| e.file_name().to_string_lossy().starts_with("libstd-")))
        })
}

/// Whether cc-rs will find a C compiler for `triple`: one named in its
/// environment variables, or musl-tools' `<arch>-linux-musl-gcc` or
/// `musl-gcc` on PATH.
fn musl_cc(triple: &str) -> bool {
    let underscored = triple.replace('-', "_");
    for var in [
        format!("CC_{triple}"),
        format!("CC_{underscored}"),
        "TARGET_CC".into(),
        "CC".into(),
    ] {
        println!("cargo:rerun-if-env-changed={var}");
        if env::var_os(&var).is_some() {
            return true;
        }
    }
    let arch = triple.split('-').next().unwrap_or_default();
    let names = [format!("{arch}-linux-musl-gcc"), "musl-gcc".to_string()];
    let path = env::var_os("PATH").unwrap_or_default();
    let found = env::split_paths(&path).any(|dir| names.iter().any(|n| dir.join(n).is_file()));
    if !found {
        // Missing files count as changed: this script runs again at the
        // next build (a cheap look), and builds once the compiler is there.
        for dir in env::split_paths(&path) {
            println!("cargo:rerun-if-changed={}", dir.join(&names[0]).display());
        }
    }
    found
}

fn unavailable(dest: &Path, why: &str) {
    remove_stale(dest);
    if env::var("AIRLOCK_REQUIRE_STATIC_RUNNER").as_deref() == Ok("1") {
        panic!("AIRLOCK_REQUIRE_STATIC_RUNNER=1, but {why}");
    }
    println!("cargo:warning=no static airlock-runner: {why}");
}

/// A static runner left from an earlier build would speak an older plan.
fn remove_stale(dest: &Path) {
    let _ = std::fs::remove_file(dest);
}
