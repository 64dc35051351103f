//! `airlock-runner PARENT_PID PLAN_FD REPORT_FD [ALIVE_FD]`: the small,
//! single-threaded program the airlock library execs to carry out a plan
//! (see `airlock::runner`). It is its own binary so that a library caller
//! needs neither the CLI nor a fork of its own (possibly multi-threaded)
//! process, and so that what stays beside a running sandbox is small.
//! Nobody runs it by hand: the library finds it (`$AIRLOCK_RUNNER`, beside
//! the calling program, `/usr/libexec/airlock/`, or `PATH`).

fn main() {
    let mut args = std::env::args().skip(1);
    let mut num = || args.next().and_then(|s| s.parse::<i32>().ok());
    let parent = num().unwrap_or(-1);
    let plan_fd = num().unwrap_or(-1);
    let report_fd = num().unwrap_or(-1);
    let alive_fd = num();
    airlock::runner::main(parent, plan_fd, report_fd, alive_fd)
}
