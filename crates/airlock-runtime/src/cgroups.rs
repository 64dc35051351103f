//! Where a container's cgroups go (`linux.cgroupsPath`, both forms) and
//! `update`, which changes their limits while the container lives.
//!
//! airlock makes cgroups only beneath the cgroup its caller is in (see
//! [`airlock::cgroup`]), so both forms of `linux.cgroupsPath` are resolved
//! there: when the runtime runs in a hierarchy's root this is exactly
//! runc's meaning.
//!
//! - The cgroupfs form (`/a/b` or `a/b`): the path beneath the runtime's
//!   own cgroup.
//! - The systemd form (`slice:prefix:name`, only with `--systemd-cgroup`),
//!   laid out as runc's cgroupfs fallback lays out what systemd would
//!   make: `machine-foo.slice` expands to `machine.slice/machine-foo.slice`
//!   (an empty slice is `system.slice`), then `<prefix>-<name>.scope`.
//!   Where systemd is the host's init, its units are the only way to own
//!   cgroups beside it, which takes D-Bus: `--systemd-cgroup` is refused
//!   there rather than making cgroups systemd does not know about.
//!
//! A path with `..` (or empty components) is an error naming the field;
//! directories airlock makes for the path are removed with the container,
//! those that were there before are not.

use crate::commands::Ctx;
use airlock::spec::{Resources, Size};
use oci_spec::runtime::{LinuxResources, Spec};
use std::io::Read;
use std::path::Path;

const FIELD: &str = "linux.cgroupsPath";

/// The controllers a container gets cgroups for whatever its limits, so
/// that `update` can set them later (where the host has them). Not
/// cpuset: joining one costs every container about 0.25 ms (oci.py), and
/// the kubelet's static CPU manager, which pins containers with update,
/// gives each one its cpuset at create.
pub const PREPARE: [&str; 4] = ["memory", "pids", "cpu", "io"];

/// The container's cgroup path relative to the runtime's own cgroups
/// (`None`: airlock's default, `airlock-<id>`).
pub fn path(config: &Spec, systemd: bool) -> Result<Option<String>, String> {
    let raw = config
        .linux()
        .as_ref()
        .and_then(|l| l.cgroups_path().clone())
        .map(|p| p.display().to_string())
        .filter(|p| !p.is_empty());
    let systemd_form = |p: &str| p.split(':').count() == 3 && !p.contains('/');
    let rel = match (raw, systemd) {
        (None, _) => return Ok(None),
        (Some(p), true) if !systemd_form(&p) => {
            return Err(format!(
                "{FIELD}: expected cgroupsPath to be of format \"slice:prefix:name\" for systemd cgroups, got {p:?} instead"
            ))
        }
        (Some(p), true) => systemd_path(&p)?,
        (Some(p), false) if systemd_form(&p) => {
            return Err(format!(
                "{FIELD}: {p:?} is the systemd form (slice:prefix:name), which needs --systemd-cgroup"
            ))
        }
        (Some(p), false) => p.trim_start_matches('/').to_string(),
    };
    airlock::cgroup::plan::check_path(&rel).map_err(|e| format!("{FIELD}: {e}"))?;
    Ok(Some(rel))
}

/// `--systemd-cgroup` needs a host whose cgroups systemd does not own.
pub fn check_systemd_host() -> Result<(), String> {
    if Path::new("/run/systemd/system").exists() {
        return Err("--systemd-cgroup: systemd runs this host, and a cgroup it should know of is made as a transient unit over D-Bus, which airlock does not do; run without --systemd-cgroup (cgroupfs, beneath the caller's cgroup)".into());
    }
    Ok(())
}

/// `slice:prefix:name` as the directories systemd would give it.
fn systemd_path(p: &str) -> Result<String, String> {
    let mut parts = p.splitn(3, ':');
    let (slice, prefix, name) = (
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
    );
    if name.is_empty() {
        return Err(format!("{FIELD}: {p:?} has no name (slice:prefix:name)"));
    }
    let mut dirs = expand_slice(if slice.is_empty() {
        "system.slice"
    } else {
        slice
    })
    .map_err(|e| format!("{FIELD}: {e}"))?;
    dirs.push(match (name.ends_with(".slice"), prefix.is_empty()) {
        (true, _) => name.to_string(),
        (false, true) => format!("{name}.scope"),
        (false, false) => format!("{prefix}-{name}.scope"),
    });
    Ok(dirs.join("/"))
}

/// `a-b-c.slice` is `a.slice/a-b.slice/a-b-c.slice`; `-.slice` is the
/// root.
fn expand_slice(slice: &str) -> Result<Vec<String>, String> {
    let Some(stem) = slice.strip_suffix(".slice") else {
        return Err(format!("slice {slice:?} does not end in .slice"));
    };
    if stem == "-" {
        return Ok(Vec::new());
    }
    if stem.is_empty() || stem.contains('/') || stem.split('-').any(str::is_empty) {
        return Err(format!("{slice:?} is not a valid slice name"));
    }
    let words: Vec<&str> = stem.split('-').collect();
    Ok((1..=words.len())
        .map(|n| format!("{}.slice", words[..n].join("-")))
        .collect())
}

/// `update`: new limits for a created or running container.
pub fn update(ctx: &Ctx, u: &liboci_cli::Update) -> Result<(), String> {
    let (sb, st) = ctx.find(&u.container_id)?;
    if st.status == airlock::state::Status::Stopped {
        // runc's words (libcontainer's ErrNotRunning).
        return Err(format!(
            "cannot update container {}: container not running",
            u.container_id
        ));
    }
    let (res, flag_of) = match &u.resources {
        Some(file) => {
            let flags_too = u.memory.is_some()
                || u.memory_swap.is_some()
                || u.memory_reservation.is_some()
                || u.pids_limit.is_some()
                || u.cpu_quota.is_some()
                || u.cpu_period.is_some()
                || u.cpu_share.is_some()
                || u.blkio_weight.is_some()
                || u.cpuset_cpus.is_some()
                || u.cpuset_mems.is_some()
                || u.cpu_rt_period.is_some()
                || u.cpu_rt_runtime.is_some()
                || u.l3_cache_schema.is_some()
                || u.mem_bw_schema.is_some();
            if flags_too {
                return Err(
                    "--resources: give the limits either in the file or as flags, not both".into(),
                );
            }
            let (res, check) = from_file(file, &sb)?;
            if check {
                check_before_update(&res, &st)?;
            }
            (res, FieldNames::Json)
        }
        None => (from_flags(u, &sb)?, FieldNames::Flags),
    };
    sb.update_resources(&res)
        .map_err(|e| flag_of.rename(&e.to_string()))?;
    Ok(())
}

/// What an error from the library calls a limit, in the caller's terms.
enum FieldNames {
    Flags,
    Json,
}

impl FieldNames {
    fn rename(&self, msg: &str) -> String {
        // Longest first: "resources.memory" begins the reservation's name.
        let table: &[(&str, &str, &str)] = &[
            (
                "resources.memory_reservation",
                "--memory-reservation",
                "memory.reservation",
            ),
            (
                "resources.memory_oom_group",
                "--resources",
                "unified.memory.oom.group",
            ),
            ("resources.memory", "--memory", "memory.limit"),
            ("resources.swap", "--memory-swap", "memory.swap"),
            ("resources.pids", "--pids-limit", "pids.limit"),
            ("resources.cpuset_cpus", "--cpuset-cpus", "cpu.cpus"),
            ("resources.cpuset_mems", "--cpuset-mems", "cpu.mems"),
            ("resources.cpu_period", "--cpu-period", "cpu.period"),
            ("resources.cpus", "--cpu-quota/--cpu-period", "cpu.quota"),
            ("resources.cpu_weight", "--cpu-share", "cpu.shares"),
            ("resources.io_weight", "--blkio-weight", "blockIO.weight"),
            (
                "resources.hugetlb.",
                "--resources: the hugepageLimits pageSize ",
                "hugepageLimits: the pageSize ",
            ),
        ];
        for (lib, flag, json) in table {
            if msg.contains(lib) {
                let name = match self {
                    FieldNames::Flags => flag.to_string(),
                    FieldNames::Json => format!("linux.resources.{json}"),
                };
                return msg.replacen(lib, &name, 1);
            }
        }
        msg.to_string()
    }
}

/// `memory.checkBeforeUpdate`, as runc takes it: a new memory limit below
/// what the container uses now is refused rather than written, where v2
/// would take it and have the kernel's OOM killer make room. (The usage
/// may still grow between this look and the write.)
fn check_before_update(res: &Resources, st: &airlock::state::State) -> Result<(), String> {
    let Some(limit) = res.memory else {
        return Ok(());
    };
    const FIELD: &str = "linux.resources.memory.limit";
    let Some(paths) = &st.cgroup else {
        return Err(format!(
            "{FIELD}: checkBeforeUpdate: the container has no cgroups to read its usage from"
        ));
    };
    let usage = airlock::cgroup::read_stats(paths).memory_bytes;
    if limit.0 < usage {
        return Err(format!(
            "{FIELD}: {} is below the {usage} bytes the container uses now (memory.checkBeforeUpdate)",
            limit.0
        ));
    }
    Ok(())
}

/// The limits in an `update --resources` file, and whether it asks for
/// `memory.checkBeforeUpdate`.
fn from_file(file: &Path, sb: &airlock::state::SandboxDir) -> Result<(Resources, bool), String> {
    let mut text = String::new();
    if file == Path::new("-") {
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| format!("--resources -: {e}"))?;
    } else {
        text = std::fs::read_to_string(file)
            .map_err(|e| format!("--resources {}: {e}", file.display()))?;
    }
    let named = |e: String| format!("--resources {}: {e}", file.display());
    let raw: serde_json::Value = serde_json::from_str(&text).map_err(|e| named(e.to_string()))?;
    let r: LinuxResources =
        serde_json::from_value(raw.clone()).map_err(|e| named(e.to_string()))?;
    // What oci-spec drops without a word, refused as a bundle's is.
    let parsed = serde_json::to_value(&r).expect("parsed resources serialize");
    if let Some(field) = crate::config::dropped(&raw, &parsed, "") {
        return Err(named(format!(
            "field `{field}`: not supported by airlock-runtime"
        )));
    }
    // -1 (or 0) takes a limit away in runc's update; here a limit can be
    // changed, not removed, and skipping it would report a success.
    let memory = r.memory().as_ref();
    let check = memory.and_then(|m| m.check_before_update()) == Some(true);
    for (field, value) in [
        ("memory.limit", memory.and_then(|m| m.limit())),
        ("memory.reservation", memory.and_then(|m| m.reservation())),
        ("pids.limit", r.pids().as_ref().map(|p| p.limit())),
        ("cpu.quota", r.cpu().as_ref().and_then(|c| c.quota())),
    ] {
        if let Some(v) = value.filter(|v| *v <= 0) {
            return Err(named(format!(
                "{field}: {v}: at least 1 (removing a limit is not supported)"
            )));
        }
    }
    // Alone, swap (memory and swap together) goes with the container's
    // memory limit, as runc's update and --memory-swap take it.
    let swap_alone = memory
        .filter(|m| m.limit().is_none())
        .and_then(|m| m.swap());
    let r = match swap_alone {
        None => r,
        Some(_) => {
            let mut without = raw.clone();
            if let Some(m) = without["memory"].as_object_mut() {
                m.remove("swap");
            }
            serde_json::from_value(without).map_err(|e| named(e.to_string()))?
        }
    };
    let swap = swap_alone
        .map(|total| swap_over(total, None, "memory.limit", sb))
        .transpose()
        .map_err(|e| named(format!("memory.swap: {e}")))?;
    if r.cpu().as_ref().and_then(|c| c.period()) == Some(0) {
        return Err(named("cpu.period: 0: at least 1".into()));
    }
    let mut res = crate::config::resources_of(&r).map_err(|e| e.to_string())?;
    if let Some((memory, swap)) = swap {
        res.memory = Some(Size(memory));
        res.swap = Some(Size(swap));
    }
    // A quota or a period alone keeps the container's other value, as
    // with the flags (resources_of, for a bundle, takes the default). A
    // period alone over no quota limits nothing, as in a bundle, where it
    // is not kept either: containerd sends one for every container
    // without a CPU limit (kubelet's period with no quota), and the rest
    // of such an update must still apply.
    let quota = r.cpu().as_ref().and_then(|c| c.quota()).filter(|q| *q > 0);
    let period = r.cpu().as_ref().and_then(|c| c.period()).filter(|p| *p > 0);
    let over_no_quota = quota.is_none() && recorded_resources(sb).cpus.is_none();
    if (quota.is_some() || period.is_some()) && !over_no_quota {
        let (cpus, period) = cpu_over_period(quota.map(|q| q as f64), period, sb)?;
        res.cpus = Some(cpus);
        res.cpu_period = Some(period);
    }
    Ok((res, check))
}

/// runc's memory and swap together (`total`, as on cgroup v1) as the
/// memory limit and the swap beyond it: over `memory`, or else the
/// container's recorded limit (`given` names where to give one).
fn swap_over(
    total: i64,
    memory: Option<u64>,
    given: &str,
    sb: &airlock::state::SandboxDir,
) -> Result<(u64, u64), String> {
    let memory = match memory.or_else(|| recorded_resources(sb).memory.map(|m| m.0)) {
        Some(m) => m,
        None => {
            return Err(format!(
                "{total}: the container has no memory limit to add swap to; give {given} too"
            ))
        }
    };
    if total < 0 || (total as u64) < memory {
        return Err(format!("{total} is below the memory limit {memory} (it counts memory and swap together; unlimited swap is not supported)"));
    }
    Ok((memory, total as u64 - memory))
}

/// The limits the container has now, as its state records them (none
/// where that cannot be read).
fn recorded_resources(sb: &airlock::state::SandboxDir) -> Resources {
    sb.state()
        .ok()
        .and_then(|s| s.spec.get().ok())
        .map(|s| s.resources)
        .unwrap_or_default()
}

/// A new CPU quota and period (µs), either given alone over the
/// container's other value, as runc's update takes them: as a share of
/// CPUs and the period.
fn cpu_over_period(
    quota: Option<f64>,
    period: Option<u64>,
    sb: &airlock::state::SandboxDir,
) -> Result<(f64, u64), String> {
    let old = recorded_resources(sb);
    let old_period = old
        .cpu_period
        .unwrap_or(airlock::cgroup::plan::CPU_PERIOD_US);
    let period = period.unwrap_or(old_period);
    let quota =
        match (quota, old.cpus) {
            (Some(q), _) => q,
            (None, Some(cpus)) => cpus * old_period as f64,
            (None, None) => return Err(
                "cpu period: the container has no CPU quota to keep over it; give the quota too"
                    .into(),
            ),
        };
    Ok((quota / period as f64, period))
}

fn from_flags(
    u: &liboci_cli::Update,
    sb: &airlock::state::SandboxDir,
) -> Result<Resources, String> {
    let refuse = |flag: &str, why: &str| Err(format!("{flag}: {why}"));
    if u.cpu_rt_period.is_some() || u.cpu_rt_runtime.is_some() {
        return refuse(
            "--cpu-rt-period/--cpu-rt-runtime",
            "realtime limits are not supported",
        );
    }
    if u.l3_cache_schema.is_some() || u.mem_bw_schema.is_some() {
        return refuse(
            "--l3-cache-schema/--mem-bw-schema",
            "Intel RDT is not supported",
        );
    }
    let mut r = Resources {
        memory: u.memory.map(Size),
        cpuset_cpus: u.cpuset_cpus.clone(),
        cpuset_mems: u.cpuset_mems.clone(),
        ..Resources::default()
    };
    match u.memory_reservation {
        Some(0) => {
            return refuse(
                "--memory-reservation",
                "0: at least 1 byte (removing it is not supported)",
            )
        }
        v => r.memory_reservation = v.map(Size),
    }
    if let Some(total) = u.memory_swap {
        let memory = r.memory.map(|m| m.0);
        let (memory, swap) = match swap_over(total, memory, "--memory", sb) {
            Ok(both) => both,
            Err(e) => return refuse("--memory-swap", &e),
        };
        r.memory = Some(Size(memory));
        r.swap = Some(Size(swap));
    }
    if let Some(p) = u.pids_limit {
        if p <= 0 {
            return refuse(
                "--pids-limit",
                &format!("{p}: at least 1 (removing the limit is not supported)"),
            );
        }
        r.pids = Some(p as u64);
    }
    match (u.cpu_quota, u.cpu_period) {
        (None, None) => {}
        // Either alone keeps the other as the container has it, as runc's.
        (q, p) if q.is_none_or(|q| q > 0) && p.is_none_or(|p| p > 0) => {
            let (cpus, period) = cpu_over_period(q.map(|q| q as f64), p, sb)
                .map_err(|e| format!("--cpu-period: {e}"))?;
            r.cpus = Some(cpus);
            r.cpu_period = Some(period);
        }
        _ => {
            return refuse(
                "--cpu-quota/--cpu-period",
                "each above 0 (removing the quota is not supported)",
            )
        }
    }
    // 0 is "not set", as in a bundle's shares and runc's update.
    if let Some(shares) = u.cpu_share.filter(|s| *s > 0) {
        let shares =
            crate::config::shares_in_range(shares).map_err(|why| format!("--cpu-share: {why}"))?;
        r.cpu_weight = Some(crate::config::shares_to_weight(shares));
    }
    if let Some(w) = u.blkio_weight {
        if !(10..=1000).contains(&w) {
            return refuse("--blkio-weight", &format!("{w} is not between 10 and 1000"));
        }
        r.io_weight = Some(airlock::cgroup::plan::blkio_to_io_weight(w));
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(path: &str) -> Spec {
        let mut s = Spec::default();
        let mut l = s.linux().clone().unwrap();
        l.set_cgroups_path(Some(path.into()));
        s.set_linux(Some(l));
        s
    }

    #[test]
    fn cgroupfs_form_is_beneath_the_runtimes_cgroup() {
        assert_eq!(path(&spec("/a/b"), false).unwrap().unwrap(), "a/b");
        assert_eq!(path(&spec("a"), false).unwrap().unwrap(), "a");
        assert!(path(&spec("/a/../../b"), false)
            .unwrap_err()
            .contains(FIELD));
        assert!(path(&spec("m.slice:p:n"), false)
            .unwrap_err()
            .contains("--systemd-cgroup"));
    }

    #[test]
    fn systemd_form_is_laid_out_as_systemd_would() {
        assert_eq!(
            path(&spec("machine-foo.slice:libpod:abc"), true)
                .unwrap()
                .unwrap(),
            "machine.slice/machine-foo.slice/libpod-abc.scope"
        );
        assert_eq!(
            path(&spec(":cri:x"), true).unwrap().unwrap(),
            "system.slice/cri-x.scope"
        );
        assert_eq!(
            path(&spec("-.slice:p:n"), true).unwrap().unwrap(),
            "p-n.scope"
        );
        let e = path(&spec("/a/b"), true).unwrap_err();
        assert!(e.contains("slice:prefix:name"), "{e}");
        assert!(path(&spec("a--b.slice:p:n"), true)
            .unwrap_err()
            .contains(FIELD));
        assert!(path(&spec("a.slice:p:"), true)
            .unwrap_err()
            .contains("no name"));
    }
}
