//! `airlock-runner PARENT_PID PLAN_FD REPORT_FD [ALIVE_FD]`: the small,
//! single-threaded program the airlock library execs to carry out a plan
//! (see `airlock::runner`). It is its own binary so that a library caller
//! needs neither the CLI nor a fork of its own (possibly multi-threaded)
//! process, and so that what stays beside a running sandbox is small.
//! `airlock-runner --attended PLAN_FD [REPORT_FILE]` is the same, exec'd
//! by `airlock run` in its own place (`Sandbox::exec_supervisor`).
//! Nobody runs it by hand: the library finds it (`$AIRLOCK_RUNNER`, beside
//! the calling program, `/usr/libexec/airlock/`, or `PATH`).

mod arena;

/// musl's allocator in the static runner maps and unmaps pages as it goes;
/// see the module for what this one does instead.
#[global_allocator]
static ALLOCATOR: arena::Arena<{ arena::RUNNER_ARENA }> = arena::Arena::new();

fn main() {
    airlock::runner::on_release_free_memory(|| ALLOCATOR.release());
    let mut args = std::env::args_os().skip(1).peekable();
    let attended = args.next_if(|a| a == "--attended").is_some();
    let mut num = || {
        args.next()
            .and_then(|s| s.to_str()?.parse::<i32>().ok())
            .unwrap_or(-1)
    };
    if attended {
        let plan_fd = num();
        airlock::runner::main_attended(plan_fd, args.next().map(Into::into))
    }
    let parent = num();
    let plan_fd = num();
    let report_fd = num();
    let alive_fd = args.next().and_then(|s| s.to_str()?.parse::<i32>().ok());
    airlock::runner::main(parent, plan_fd, report_fd, alive_fd)
}
