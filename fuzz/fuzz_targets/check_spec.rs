#![no_main]
//! The plan and the guardrails on any spec that parses, in the order a
//! launch runs them (plan, then judge): they must never panic. The first
//! byte picks the caller, root or not, so the root caller's rules run
//! too; the context has a pure v2 host with every controller, so a spec
//! with limits is planned all the way rather than stopped at the cgroups.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&who, rest)) = data.split_first() else { return };
    let Ok(text) = std::str::from_utf8(rest) else { return };
    let Ok(spec) = airlock::spec::from_str_auto(text) else { return };
    let uid = if who & 1 == 0 { 0 } else { 1000 };
    let mut ctx = airlock::Context::for_ids(uid, uid);
    ctx.cgroup = airlock::cgroup::parse_layout(
        "30 25 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
        "0::/fuzz\n",
    );
    ctx.cgroup.v2_controllers = ["cpu", "cpuset", "io", "memory", "pids", "hugetlb", "rdma", "misc"]
        .map(String::from)
        .to_vec();
    if airlock::plan::plan(&spec, &ctx).is_err() {
        return;
    }
    let host = airlock::check::Host {
        root_caller: uid == 0,
        ..Default::default()
    };
    let _ = airlock::check::validate_codes(&spec);
    let _ = airlock::check::check(&spec, &host);
});
