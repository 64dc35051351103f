//! The README's library example, as a program: `tests/readme.rs` checks
//! that the README shows exactly the lines between the markers, and runs
//! this (as root: the memory limit needs a cgroup the caller may make).

use airlock::{Sandbox, SandboxSpec};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "/tmp/airlock-out".into());
    // README begin
    std::fs::create_dir_all(&out)?;
    let spec = SandboxSpec::builder()
        .args(["sh", "-c", "echo hi from $(hostname) > /out/hi; sleep 1"])
        .default_view()
        .bind(&out, "/out") // writable, and written as you (see Identity)
        .memory(256 << 20) // a cgroup, so it can be frozen
        .build();
    let sandbox = Sandbox::spawn(&spec)?; // validate, guardrails, plan, start
    sandbox.freeze(true)?; // cgroup freezer; returns once every process is frozen
    sandbox.freeze(false)?; // also: signal(libc::SIGTERM), kill() (all of it)
    let report = sandbox.wait()?; // how it ended: ExitReport
    let hi = std::fs::read_to_string(format!("{out}/hi"))?;
    println!("{}: {:?}", hi.trim(), report.ended);
    // README end
    Ok(())
}
