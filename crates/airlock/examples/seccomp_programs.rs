//! Write the seccomp programs `airlock run` installs with the default
//! profile, one file each (`DIR/0.bpf`, `DIR/1.bpf`, ...), as raw
//! `struct sock_filter` arrays: what bubblewrap's `--add-seccomp-fd`
//! reads. The benches give them to bubblewrap, so that a comparison row
//! has the same seccomp isolation as airlock's start.
//!
//! Usage: seccomp_programs DIR

use airlock::{Context, SandboxSpec};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args()
        .nth(1)
        .ok_or("usage: seccomp_programs DIR")?;
    std::fs::create_dir_all(&dir)?;
    let spec = SandboxSpec::builder()
        .args(["/bin/true"])
        .default_view()
        .build();
    let plan = airlock::plan::plan(&spec, &Context::current())?;
    for (i, program) in plan.walls.seccomp.iter().enumerate() {
        std::fs::write(format!("{dir}/{i}.bpf"), program.as_bytes())?;
    }
    println!("{}", plan.walls.seccomp.len());
    Ok(())
}
