//! Embeds the git commit the binary was built from, for `airlock
//! --version`: a bug report then says which code it is about. Outside a
//! git checkout (a source tarball) the commit is "unknown".

use std::process::Command;

fn main() {
    let commit = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into());
    let dirty = Command::new("git")
        .args(["status", "--porcelain", "--untracked-files=no"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .is_some_and(|o| !o.stdout.is_empty());
    let suffix = if dirty && commit != "unknown" {
        "-dirty"
    } else {
        ""
    };
    println!("cargo:rustc-env=AIRLOCK_GIT_COMMIT={commit}{suffix}");
    // Rebuild when HEAD moves (a commit, a checkout); in a worktree .git
    // is a file, so ask git where HEAD lives.
    if let Some(head) = Command::new("git")
        .args(["rev-parse", "--git-path", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
    {
        println!("cargo:rerun-if-changed={}", head.trim());
    }
    if let Some(index) = Command::new("git")
        .args(["rev-parse", "--git-path", "index"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
    {
        println!("cargo:rerun-if-changed={}", index.trim());
    }
    println!("cargo:rerun-if-changed=build.rs");
}
