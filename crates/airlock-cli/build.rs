//! Embeds the git commit the binary was built from, for `airlock
//! --version`: a bug report then says which code it is about. Outside a
//! git checkout (a source tarball) the commit is "unknown".
//!
//! Links `airlock` as a position-dependent executable, as the runner is
//! (see its build.rs): a PIE patches about 9,500 pointers in 140 KiB of
//! `.data.rel.ro` at every start, which is about 50 of the 530 page faults
//! of a whole `airlock run -- /bin/true` (`perf stat -e page-faults`), and
//! page faults are most of a start's CPU time on a virtual machine. It is
//! also linked statically against glibc where the archives are there
//! (`airlock_build::link_glibc_statically`, which says why). The CLI's
//! code and its libc are then not address-randomized (its heap and stack
//! still are): it is not setuid, and it parses only its own command line
//! and spec before it execs the runner.
//!
//! The functions `airlock run` runs are linked first, together
//! (`airlock_build::order_hot_text`, from `hot-text.ld`).

use std::process::Command;

/// What `git ARGS` printed, if git ran and succeeded.
fn git(args: &[&str]) -> Option<String> {
    Command::new("git")
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
}

fn main() {
    let commit = git(&["rev-parse", "--short=12", "HEAD"])
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into());
    let dirty =
        git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    let suffix = if dirty && commit != "unknown" {
        "-dirty"
    } else {
        ""
    };
    println!("cargo:rustc-env=AIRLOCK_GIT_COMMIT={commit}{suffix}");
    // Rebuild when HEAD moves (a commit, a checkout) or the index changes;
    // in a worktree .git is a file, so ask git where they live.
    for path in git(&["rev-parse", "--git-path", "HEAD", "--git-path", "index"])
        .unwrap_or_default()
        .lines()
    {
        println!("cargo:rerun-if-changed={}", path.trim());
    }
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rustc-link-arg-bins=-no-pie");
    airlock_build::link_glibc_statically();
    airlock_build::order_hot_text();
}
