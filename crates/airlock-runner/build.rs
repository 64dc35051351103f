//! Link the runner as a position-dependent executable.
//!
//! Two runner processes stay beside a sandbox for its whole life (the
//! supervisor and our PID 1). In a PIE every pointer in `.data.rel.ro`
//! (vtables, static tables, panic locations: about 32 KiB here) is patched
//! at start-up, which turns those pages into private memory in each
//! process; linked at a fixed address they stay clean pages of the file,
//! shared with every other runner. The cost is that the runner's own code
//! is not address-randomized (its libraries, heap and stack still are):
//! acceptable for a process that parses only its caller's plan, reports
//! from its own PID 1 and requests from the sandbox's owner, and that
//! copies the workload's output as bytes.
fn main() {
    // A static musl build is made position-dependent by its rustflags
    // (`-C relocation-model=static`); `-no-pie` beside rustc's own
    // `-static-pie` would link a binary that crashes before main.
    if std::env::var("CARGO_CFG_TARGET_ENV").as_deref() == Ok("gnu") {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
}
