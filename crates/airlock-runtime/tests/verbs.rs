//! `update`, `linux.cgroupsPath` (and `--systemd-cgroup`) and
//! `linux.personality`, driven as an OCI client drives runc; each checked
//! on the host's cgroup files and from inside the container.

#[macro_use]
mod common;
use common::*;
use serde_json::json;
use std::path::{Path, PathBuf};

/// A container's cgroup in `controller`'s v1 hierarchy, from its
/// process's /proc/PID/cgroup.
fn cgroup_of(pid: i64, controller: &str) -> String {
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    cg.lines()
        .find_map(|l| {
            let mut f = l.splitn(3, ':');
            let (_, ctrls, path) = (f.next()?, f.next()?, f.next()?);
            ctrls
                .split(',')
                .any(|c| c == controller)
                .then(|| path.to_string())
        })
        .unwrap_or_else(|| panic!("no {controller} line in {cg}"))
}

fn v1_dir(controller: &str, rel: &str) -> PathBuf {
    Path::new("/sys/fs/cgroup")
        .join(controller)
        .join(rel.trim_start_matches('/'))
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .trim()
        .to_string()
}

/// Skips (true) unless the host has v1 memory and pids hierarchies, as
/// this machine's hybrid layout does.
fn no_v1_memory_and_pids() -> bool {
    let missing = ["memory", "pids"].iter().any(|c| {
        !Path::new("/sys/fs/cgroup")
            .join(c)
            .join("cgroup.procs")
            .exists()
    });
    if missing {
        eprintln!("SKIPPED: the host has no v1 memory and pids hierarchies");
    }
    missing
}

fn sleeper(env: &Env, id: &str, edit: impl FnOnce(&mut serde_json::Value)) -> i64 {
    let b = env.bundle(id, &["sleep", "1000"], edit);
    let o = env.rt(&["create", "--bundle", b.to_str().unwrap(), id]);
    assert!(o.status.success(), "{:?}", text(&o));
    state(env, id)["pid"].as_i64().unwrap()
}

/// The CPUs a container may use, from its bundle and then by `update`,
/// as the kubelet's static CPU manager pins containers: seen from inside.
#[test]
fn a_cpuset_from_create_and_update() {
    require_root!();
    let env = Env::new();
    let ours = std::fs::read_to_string("/proc/self/status").unwrap();
    let all = ours
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .unwrap()
        .trim()
        .to_string();
    sleeper(&env, "p1", |c| {
        c["linux"]["resources"] = json!({"cpu": {"cpus": "0"}});
    });
    assert!(env.rt(&["start", "p1"]).status.success());
    wait_status(&env, "p1", "running");
    let allowed = || {
        let o = env.rt(&[
            "exec",
            "p1",
            "busybox",
            "grep",
            "Cpus_allowed_list",
            "/proc/1/status",
        ]);
        text(&o)
            .0
            .split_whitespace()
            .last()
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(allowed(), "0");
    let o = env.rt(&["update", "--cpuset-cpus", &all, "p1"]);
    assert!(o.status.success(), "{:?}", text(&o));
    assert_eq!(allowed(), all);
    // A CPU the runtime's cgroup lacks is refused before any limit is
    // written: the pids limit given with it is not applied either.
    let o = env.rt(&[
        "update",
        "--pids-limit",
        "20",
        "--cpuset-cpus",
        "4095",
        "p1",
    ]);
    let err = text(&o).1;
    assert!(
        err.contains("--cpuset-cpus: \"4095\" is not within the caller's cgroup's"),
        "{err}"
    );
    let pids_max = "cat /sys/fs/cgroup/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids/pids.max";
    let o = env.rt(&["exec", "p1", "sh", "-c", pids_max]);
    assert_eq!(text(&o).0, "max\n", "{:?}", text(&o));
    assert_eq!(allowed(), all);
}

#[test]
fn update_changes_limits_live() {
    require_root!();
    if no_v1_memory_and_pids() {
        return;
    }
    let env = Env::new();
    // podman's --memory-reservation at create: v1's soft limit.
    let pid = sleeper(&env, "u1", |c| {
        c["linux"]["resources"] = json!({"memory": {"reservation": 33554432}});
    });
    let o = env.rt(&["start", "u1"]);
    assert!(o.status.success(), "{:?}", text(&o));
    wait_status(&env, "u1", "running");
    let memory = v1_dir("memory", &cgroup_of(pid, "memory"));
    let pids = v1_dir("pids", &cgroup_of(pid, "pids"));
    assert_eq!(read(&pids.join("pids.max")), "max");
    assert_eq!(read(&memory.join("memory.soft_limit_in_bytes")), "33554432");
    let o = env.rt(&[
        "update",
        "--memory",
        "67108864",
        "--memory-reservation",
        "16777216",
        "--pids-limit",
        "4",
        "u1",
    ]);
    assert!(o.status.success(), "{:?}", text(&o));
    assert_eq!(read(&memory.join("memory.limit_in_bytes")), "67108864");
    assert_eq!(read(&memory.join("memory.soft_limit_in_bytes")), "16777216");
    assert_eq!(read(&pids.join("pids.max")), "4");
    // From inside: sleep and the exec'd shell are two of the four; the
    // shell cannot fork past the rest.
    let script = "i=0; while [ $i -lt 6 ]; do sleep 100 & i=$((i+1)); done; echo forked $i";
    let o = env.rt(&["exec", "u1", "sh", "-c", script]);
    let (out, err) = text(&o);
    assert!(
        err.contains("fork"),
        "forking past the new limit: {out} {err}"
    );
    // The new limits are the sandbox's recorded ones.
    let recorded: serde_json::Value = std::fs::read_dir(env.root())
        .unwrap()
        .flatten()
        .find_map(|e| std::fs::read(e.path().join("state.json")).ok())
        .map(|b| serde_json::from_slice(&b).unwrap())
        .unwrap();
    assert_eq!(recorded["spec"]["resources"]["pids"], 4, "{recorded}");
    // --resources: an OCI LinuxResources document.
    let file = env.dir.path().join("r.json");
    std::fs::write(&file, json!({"pids": {"limit": 9}}).to_string()).unwrap();
    let o = env.rt(&["update", "-r", file.to_str().unwrap(), "u1"]);
    assert!(o.status.success(), "{:?}", text(&o));
    assert_eq!(read(&pids.join("pids.max")), "9");
    // runc's -1 takes a limit away, which airlock cannot: an error naming
    // the field, as is a field oci-spec does not know; nothing changes.
    for (doc, says) in [
        (json!({"pids": {"limit": -1}}), "pids.limit: -1: at least 1"),
        (
            json!({"memory": {"limit": -1}}),
            "memory.limit: -1: at least 1",
        ),
        (json!({"cpu": {"quota": -1}}), "cpu.quota: -1: at least 1"),
        (
            json!({"memory": {"swap": 0}}),
            "memory.swap: 0 is below the memory limit 67108864",
        ),
        (
            json!({"pids": {"limit": 5, "bogus": 1}}),
            "field `pids.bogus`",
        ),
    ] {
        std::fs::write(&file, doc.to_string()).unwrap();
        let o = env.rt(&["update", "-r", file.to_str().unwrap(), "u1"]);
        assert!(!o.status.success(), "{doc}");
        assert!(text(&o).1.contains(says), "{doc}: {:?}", text(&o));
        assert_eq!(read(&pids.join("pids.max")), "9");
        assert_eq!(read(&memory.join("memory.limit_in_bytes")), "67108864");
    }
    // Swap alone goes with the container's memory limit, as runc's
    // update takes it (memory and swap together: 64 MiB of swap here).
    std::fs::write(&file, json!({"memory": {"swap": 134217728}}).to_string()).unwrap();
    let o = env.rt(&["update", "-r", file.to_str().unwrap(), "u1"]);
    assert!(o.status.success(), "{:?}", text(&o));
    let memsw = memory.join("memory.memsw.limit_in_bytes");
    if memsw.exists() {
        assert_eq!(read(&memsw), "134217728");
    }
    // What airlock cannot set is an error naming the flag, and nothing
    // changes.
    let o = env.rt(&[
        "update",
        "--pids-limit",
        "20",
        "--cpu-rt-period",
        "1000",
        "u1",
    ]);
    assert!(text(&o).1.contains("--cpu-rt-period"), "{:?}", text(&o));
    assert_eq!(read(&pids.join("pids.max")), "9");
    let o = env.rt(&["update", "--pids-limit", "20", "--cpuset-cpus", "0-x", "u1"]);
    assert!(text(&o).1.contains("--cpuset-cpus"), "{:?}", text(&o));
    assert_eq!(read(&pids.join("pids.max")), "9");
    // A container made without a cpuset has no cpuset cgroup to pin.
    let o = env.rt(&["update", "--cpuset-cpus", "0", "u1"]);
    assert!(
        text(&o)
            .1
            .contains("--cpuset-cpus: the sandbox was created without a cpuset"),
        "{:?}",
        text(&o)
    );
    // A reservation above the memory limit, by the flag's name.
    let o = env.rt(&["update", "--memory-reservation", "134217728", "u1"]);
    let (_, err) = text(&o);
    assert!(
        err.contains("--memory-reservation") && err.contains("above the memory limit 67108864"),
        "{err}"
    );
    assert_eq!(read(&memory.join("memory.soft_limit_in_bytes")), "16777216");
    // A limit under the reservation already set, by the flag given.
    let o = env.rt(&["update", "--memory", "8388608", "u1"]);
    let (_, err) = text(&o);
    assert!(
        err.contains("--memory: 8388608 is below the memory reservation 16777216"),
        "{err}"
    );
    assert_eq!(read(&memory.join("memory.limit_in_bytes")), "67108864");
    let o = env.rt(&["update", "--memory", "1000", "u1"]);
    assert!(text(&o).1.contains("--memory"), "{:?}", text(&o));
    assert_eq!(read(&memory.join("memory.limit_in_bytes")), "67108864");
    assert!(env.rt(&["delete", "--force", "u1"]).status.success());
    assert!(!pids.exists() && !memory.exists());
    // A stopped or missing container: runc's errors.
    let b = env.bundle("u2", &["sh", "-c", "exit 0"], |_| {});
    assert!(env
        .rt(&["run", "--keep", "--bundle", b.to_str().unwrap(), "u2"])
        .status
        .success());
    let o = env.rt(&["update", "--pids-limit", "5", "u2"]);
    assert!(
        text(&o).1.contains("container not running"),
        "{:?}",
        text(&o)
    );
    let o = env.rt(&["update", "--pids-limit", "5", "nope"]);
    assert!(text(&o).1.contains("does not exist"), "{:?}", text(&o));
}

/// The updates containerd sends for a pod: the whole resources again, a
/// CPU period with no quota for a container without a CPU limit (it
/// refused the whole update), `checkBeforeUpdate`, and shares of 0 for
/// "unchanged" (they became the least weight).
#[test]
fn update_takes_what_containerd_sends() {
    require_root!();
    if no_v1_memory_and_pids() || !Path::new("/sys/fs/cgroup/cpu/cgroup.procs").exists() {
        return;
    }
    let env = Env::new();
    // 32 MiB of shared memory in use before the update.
    let b = env.bundle(
        "k1",
        &["sh", "-c", "dd if=/dev/zero of=/dev/shm/x bs=1M count=32 2>/dev/null; touch /dev/shm/ok; sleep 1000"],
        |c| {
            c["linux"]["resources"] = json!({
                "cpu": {"shares": 512, "period": 100000},
                "memory": {"limit": 134217728}
            });
        },
    );
    let o = env.rt(&["create", "--bundle", b.to_str().unwrap(), "k1"]);
    assert!(o.status.success(), "{:?}", text(&o));
    let pid = state(&env, "k1")["pid"].as_i64().unwrap();
    assert!(env.rt(&["start", "k1"]).status.success());
    let memory = v1_dir("memory", &cgroup_of(pid, "memory"));
    let cpu = v1_dir("cpu", &cgroup_of(pid, "cpu"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !Path::new(&format!("/proc/{pid}/root/dev/shm/ok")).exists() {
        assert!(std::time::Instant::now() < deadline, "dd did not finish");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let file = env.dir.path().join("r.json");
    let update = |doc: serde_json::Value| {
        std::fs::write(&file, doc.to_string()).unwrap();
        env.rt(&["update", "-r", file.to_str().unwrap(), "k1"])
    };
    let o = update(json!({
        "cpu": {"shares": 512, "period": 100000},
        "memory": {"limit": 100663296}
    }));
    assert!(o.status.success(), "{:?}", text(&o));
    assert_eq!(read(&memory.join("memory.limit_in_bytes")), "100663296");
    assert_eq!(read(&cpu.join("cpu.cfs_quota_us")), "-1");
    assert_eq!(read(&cpu.join("cpu.shares")), "512");
    // Below what the container uses: refused before the write, by name.
    let o = update(json!({"memory": {"limit": 16777216, "checkBeforeUpdate": true}}));
    let (_, err) = text(&o);
    assert!(!o.status.success());
    assert!(
        err.contains("linux.resources.memory.limit: 16777216 is below the")
            && err.contains("checkBeforeUpdate"),
        "{err}"
    );
    assert_eq!(read(&memory.join("memory.limit_in_bytes")), "100663296");
    // Above it, the check passes.
    let o = update(json!({"memory": {"limit": 83886080, "checkBeforeUpdate": true}}));
    assert!(o.status.success(), "{:?}", text(&o));
    assert_eq!(read(&memory.join("memory.limit_in_bytes")), "83886080");
    // Shares of 0 leave the weight as it is.
    let o = env.rt(&["update", "--cpu-share", "0", "--pids-limit", "50", "k1"]);
    assert!(o.status.success(), "{:?}", text(&o));
    assert_eq!(read(&cpu.join("cpu.shares")), "512");
    // Shares the kernel would clamp are refused, not written clamped.
    for shares in ["1", "300000"] {
        let o = env.rt(&["update", "--cpu-share", shares, "k1"]);
        let err = text(&o).1;
        assert!(!o.status.success(), "{shares}");
        assert!(
            err.contains(&format!(
                "--cpu-share: {shares} is not between 2 and 262144"
            )),
            "{err}"
        );
    }
    assert_eq!(read(&cpu.join("cpu.shares")), "512");
    // Every limit flag beside --resources is refused, not dropped.
    for flag in ["--cpu-rt-runtime", "--cpu-rt-period"] {
        let o = env.rt(&["update", "-r", file.to_str().unwrap(), flag, "1000", "k1"]);
        assert!(!o.status.success(), "{flag}");
        assert!(text(&o).1.contains("not both"), "{flag}: {:?}", text(&o));
    }
    assert!(env.rt(&["delete", "--force", "k1"]).status.success());
    // A hierarchy turned off is refused by name, not ignored.
    let b = env.bundle("k2", &["true"], |c| {
        c["linux"]["resources"] = json!({"memory": {"limit": 134217728, "useHierarchy": false}});
    });
    let o = env.rt(&["create", "--bundle", b.to_str().unwrap(), "k2"]);
    assert!(!o.status.success());
    assert!(
        text(&o).1.contains("linux.resources.memory.useHierarchy"),
        "{:?}",
        text(&o)
    );
}

/// kubelet 1.28 and later put `memory.oom.group: "1"` in every
/// container's `linux.resources.unified` on a v2 host: taken as the group
/// OOM kill it asks for where memory is a v2 controller, refused by name
/// (leaving no container) where it is a v1 one, as on this machine.
#[test]
fn kubelets_group_oom_kill() {
    require_root!();
    let env = Env::new();
    let memory_on_v1 = Path::new("/sys/fs/cgroup/memory/cgroup.procs").exists();
    let b = env.bundle("g1", &["sleep", "1000"], |c| {
        c["linux"]["resources"] = json!({"unified": {"memory.oom.group": "1"}});
    });
    let o = env.rt(&["create", "--bundle", b.to_str().unwrap(), "g1"]);
    if memory_on_v1 {
        let err = text(&o).1;
        assert!(!o.status.success());
        assert!(
            err.contains(
                "linux.resources.unified.memory.oom.group: memory.oom.group is a cgroup v2 file"
            ),
            "{err}"
        );
        assert!(!env.rt(&["state", "g1"]).status.success(), "left behind");
    } else {
        assert!(o.status.success(), "{:?}", text(&o));
        let pid = state(&env, "g1")["pid"].as_i64().unwrap();
        let dir = Path::new("/sys/fs/cgroup").join(cgroup_of(pid, "").trim_start_matches('/'));
        assert_eq!(read(&dir.join("memory.oom.group")), "1");
        assert!(env.rt(&["delete", "--force", "g1"]).status.success());
    }
    // Off is what v1 does anyway: taken on either.
    sleeper(&env, "g2", |c| {
        c["linux"]["resources"] = json!({"unified": {"memory.oom.group": "0"}});
    });
    // Turned on later by update, the same answer.
    let file = env.dir.path().join("g.json");
    std::fs::write(&file, r#"{"unified": {"memory.oom.group": "1"}}"#).unwrap();
    let o = env.rt(&["update", "-r", file.to_str().unwrap(), "g2"]);
    assert_eq!(o.status.success(), !memory_on_v1, "{:?}", text(&o));
    if memory_on_v1 {
        assert!(
            text(&o).1.contains(
                "linux.resources.unified.memory.oom.group: memory.oom.group is a cgroup v2 file"
            ),
            "{:?}",
            text(&o)
        );
    }
    // Neither 0 nor 1, and any other raw file, are refused by name.
    for (id, unified, named) in [
        (
            "g3",
            json!({"memory.oom.group": "yes"}),
            "linux.resources.unified.memory.oom.group: \"yes\" is neither 0 nor 1",
        ),
        (
            "g4",
            json!({"memory.oom.group": "0", "memory.high": "1G"}),
            "linux.resources.unified.memory.high: raw cgroup v2 files",
        ),
    ] {
        let b = env.bundle(id, &["true"], |c| {
            c["linux"]["resources"] = json!({ "unified": unified });
        });
        let o = env.rt(&["create", "--bundle", b.to_str().unwrap(), id]);
        assert!(!o.status.success());
        assert!(text(&o).1.contains(named), "{:?}", text(&o));
    }
}

/// kubelet's NoSwap (its default on v2 from 1.30) puts
/// `memory.swap.max: "0"` in every container's `unified`, with a memory
/// limit or without: memory.swap.max where memory is v2; with a limit,
/// the swap allowance of 0 that v1 has too; without one, refused by name
/// where memory is v1, as on this machine, leaving no container.
#[test]
fn kubelets_no_swap() {
    require_root!();
    let env = Env::new();
    let memory_on_v1 = Path::new("/sys/fs/cgroup/memory/cgroup.procs").exists();
    let b = env.bundle("s1", &["sleep", "1000"], |c| {
        c["linux"]["resources"] = json!({"unified": {"memory.swap.max": "0"}});
    });
    let o = env.rt(&["create", "--bundle", b.to_str().unwrap(), "s1"]);
    if memory_on_v1 {
        let err = text(&o).1;
        assert!(!o.status.success());
        assert!(err.contains("cgroup v2's memory.swap.max"), "{err}");
        assert!(!env.rt(&["state", "s1"]).status.success(), "left behind");
    } else {
        assert!(o.status.success(), "{:?}", text(&o));
        let pid = state(&env, "s1")["pid"].as_i64().unwrap();
        let dir = Path::new("/sys/fs/cgroup").join(cgroup_of(pid, "").trim_start_matches('/'));
        assert_eq!(read(&dir.join("memory.swap.max")), "0");
        assert!(env.rt(&["delete", "--force", "s1"]).status.success());
    }
    // With a limit: no swap on top of it, on either.
    sleeper(&env, "s2", |c| {
        c["linux"]["resources"] = json!({
            "memory": {"limit": 64 << 20},
            "unified": {"memory.swap.max": "0"}
        });
    });
    let pid = state(&env, "s2")["pid"].as_i64().unwrap();
    if memory_on_v1 {
        let dir = v1_dir("memory", &cgroup_of(pid, "memory"));
        let memsw = dir.join("memory.memsw.limit_in_bytes");
        if memsw.exists() {
            assert_eq!(read(&memsw), (64u64 << 20).to_string());
        }
    }
    // The unified file over the OCI field, as runc writes it last:
    // containerd's swap = limit with kubelet's LimitedSwap allowance.
    let pid = sleeper(&env, "s4", |c| {
        c["linux"]["resources"] = json!({
            "memory": {"limit": 64 << 20, "swap": 64 << 20},
            "unified": {"memory.swap.max": (16 << 20).to_string()}
        });
    });
    if memory_on_v1 {
        let memsw = v1_dir("memory", &cgroup_of(pid, "memory")).join("memory.memsw.limit_in_bytes");
        if memsw.exists() {
            assert_eq!(read(&memsw), (80u64 << 20).to_string());
        }
    }
    // Unlimited is refused by name.
    let b = env.bundle("s3", &["true"], |c| {
        c["linux"]["resources"] =
            json!({"memory": {"limit": 64 << 20}, "unified": {"memory.swap.max": "max"}});
    });
    let o = env.rt(&["create", "--bundle", b.to_str().unwrap(), "s3"]);
    assert!(!o.status.success());
    assert!(
        text(&o)
            .1
            .contains("linux.resources.unified.memory.swap.max: \"max\": give bytes"),
        "{:?}",
        text(&o)
    );
}

#[test]
fn cgroups_path_both_forms() {
    require_root!();
    if no_v1_memory_and_pids() {
        return;
    }
    let env = Env::new();
    // No dash: systemd reads one in a slice's name as a level.
    let tag = format!("airlocktest{}", std::process::id());
    let own = cgroup_of(std::process::id() as i64, "pids");
    let own_dir = v1_dir("pids", &own);
    // A directory that was there before stays after delete.
    let pre = own_dir.join(format!("{tag}-pre"));
    std::fs::create_dir(&pre).unwrap();
    let cases = [
        (
            false,
            format!("/{tag}/a/c1"),
            format!("{tag}/a/c1"),
            own_dir.join(&tag),
        ),
        (
            false,
            format!("{tag}-pre/c2"),
            format!("{tag}-pre/c2"),
            own_dir.join(format!("{tag}-pre/c2")),
        ),
        (
            true,
            format!("{tag}-x.slice:pfx:c3"),
            format!("{tag}.slice/{tag}-x.slice/pfx-c3.scope"),
            own_dir.join(format!("{tag}.slice")),
        ),
    ];
    let systemd_host = Path::new("/run/systemd/system").exists();
    for (i, (systemd, path, rel, made)) in cases.iter().enumerate() {
        let id = format!("p{i}");
        let b = env.bundle(&id, &["sleep", "1000"], |c| {
            c["linux"]["cgroupsPath"] = json!(path);
        });
        let mut args = vec!["create", "--bundle", b.to_str().unwrap(), &id];
        if *systemd {
            args.insert(0, "--systemd-cgroup");
        }
        let o = env.rt(&args);
        if *systemd && systemd_host {
            assert!(text(&o).1.contains("D-Bus"), "{:?}", text(&o));
            continue;
        }
        assert!(o.status.success(), "{path}: {:?}", text(&o));
        let pid = state(&env, &id)["pid"].as_i64().unwrap();
        let want = format!("{}/{rel}", own.trim_end_matches('/'));
        assert_eq!(cgroup_of(pid, "pids"), want, "{path}");
        assert!(made.is_dir());
        assert!(env.rt(&["delete", "--force", &id]).status.success());
        assert!(!made.exists(), "{} is left after delete", made.display());
    }
    assert!(pre.is_dir(), "a directory airlock did not make was removed");
    // A cgroup already there (here in the pids hierarchy only) is neither
    // taken nor passed over: the container was made without a pids
    // cgroup before, and `update` then blamed the host.
    let b = env.bundle("taken", &["true"], |c| {
        c["linux"]["cgroupsPath"] = json!(format!("{tag}-pre"));
    });
    let o = env.rt(&["create", "--bundle", b.to_str().unwrap(), "taken"]);
    assert_eq!(o.status.code(), Some(1), "{:?}", text(&o));
    assert!(text(&o).1.contains("already exists"), "{:?}", text(&o));
    assert!(pre.is_dir());
    let mem = v1_dir("memory", &cgroup_of(std::process::id() as i64, "memory"));
    assert!(
        !mem.join(format!("{tag}-pre")).exists(),
        "left a memory cgroup"
    );
    assert!(!env.rt(&["state", "taken"]).status.success());
    std::fs::remove_dir(&pre).unwrap();
    // Bad forms: errors naming the field or flag, nothing left behind.
    let bad = [
        (false, "/../../x", "linux.cgroupsPath"),
        (false, "a.slice:p:n", "--systemd-cgroup"),
        (true, "/a/b", "slice:prefix:name"),
        (true, "nodot:p:n", "linux.cgroupsPath"),
    ];
    for (systemd, path, want) in bad {
        let b = env.bundle(&format!("bad{}", path.len()), &["true"], |c| {
            c["linux"]["cgroupsPath"] = json!(path);
        });
        let mut args = vec!["create", "--bundle", b.to_str().unwrap(), "bad"];
        if systemd {
            args.insert(0, "--systemd-cgroup");
        }
        let o = env.rt(&args);
        assert!(!o.status.success());
        if !(systemd && systemd_host) {
            assert!(text(&o).1.contains(want), "{path}: {:?}", text(&o));
        }
        assert!(!env.rt(&["state", "bad"]).status.success());
    }
}

#[test]
fn personality_sets_the_execution_domain() {
    require_root!();
    if std::env::consts::ARCH != "x86_64" {
        eprintln!("SKIPPED: LINUX32 is checked on x86_64 (uname -m says i686)");
        return;
    }
    let env = Env::new();
    for (domain, want) in [("LINUX32", "i686"), ("LINUX", "x86_64")] {
        let id = domain.to_ascii_lowercase();
        let b = env.bundle(&id, &["uname", "-m"], |c| {
            c["linux"]["personality"] = json!({"domain": domain});
        });
        std::os::unix::fs::symlink("busybox", b.join("rootfs/bin/uname")).unwrap();
        let o = env.rt(&["run", "--bundle", b.to_str().unwrap(), &id]);
        let (out, err) = text(&o);
        assert!(o.status.success(), "{out} {err}");
        assert_eq!(out.trim(), want);
    }
    // Flags beyond what the default seccomp filter lets the workload set
    // itself: set before the filter. One that weakens the workload (the
    // kernel clears it for a setuid program; runc ignores every flag)
    // is a guardrail's finding, set only when acknowledged.
    let flags = |id: &str, flag: &str, ack: Option<&str>| {
        let b = env.bundle(id, &["cat", "/proc/self/personality"], |c| {
            c["linux"]["personality"] = json!({"domain": "LINUX32", "flags": [flag]});
            if let Some(code) = ack {
                c["annotations"] = json!({"run.airlock.allow-unsafe": code});
            }
        });
        let o = env.rt(&["run", "--bundle", b.to_str().unwrap(), id]);
        (o.status.success(), text(&o))
    };
    let (ok, (out, err)) = flags("uname26", "UNAME26", None);
    assert!(ok, "{out} {err}");
    assert_eq!(out.trim(), "00020008");
    let (ok, (out, err)) = flags("aslr-off", "ADDR_NO_RANDOMIZE", None);
    assert!(!ok, "{out}");
    assert!(
        err.contains("personality-unsafe") && err.contains("linux.personality"),
        "{err}"
    );
    assert!(!env.rt(&["state", "aslr-off"]).status.success());
    let (ok, (out, err)) = flags(
        "aslr-off-ack",
        "ADDR_NO_RANDOMIZE",
        Some("personality-unsafe"),
    );
    assert!(ok, "{out} {err}");
    assert_eq!(out.trim(), "00040008");
    for (p, field) in [
        (json!({"domain": "LINUX64"}), "linux.personality.domain"),
        (
            json!({"domain": "LINUX", "flags": ["BOGUS"]}),
            "linux.personality.flags[0]",
        ),
    ] {
        let b = env.bundle(&format!("bad-{field}"), &["true"], |c| {
            c["linux"]["personality"] = p;
        });
        let o = env.rt(&["run", "--bundle", b.to_str().unwrap(), "bad"]);
        assert!(!o.status.success());
        assert!(text(&o).1.contains(field), "{:?}", text(&o));
        assert!(!env.rt(&["state", "bad"]).status.success());
    }
}

/// `airlock-runtime --root STATE ARGS` with `fds` at 3, 4, ... (as a
/// client passes them with --preserve-fds).
fn rt_fds(env: &Env, args: &[&str], fds: &[std::os::fd::RawFd]) -> std::process::Output {
    use std::os::unix::process::CommandExt;
    let fds = fds.to_vec();
    // Files, not pipes, as in Env::rt: a container keeps its stdio.
    let out = tempfile::NamedTempFile::new_in(env.dir.path()).unwrap();
    let err = tempfile::NamedTempFile::new_in(env.dir.path()).unwrap();
    let mut c = std::process::Command::new(runtime());
    c.arg("--root").arg(env.root()).args(args);
    c.stdin(std::process::Stdio::null())
        .stdout(out.reopen().unwrap())
        .stderr(err.reopen().unwrap());
    // SAFETY: between fork and exec the closure only calls dup2, which is
    // async-signal-safe; it allocates nothing.
    unsafe {
        c.pre_exec(move || {
            // Out of the way first, so that no source is overwritten.
            for (i, fd) in fds.iter().enumerate() {
                if libc::dup2(*fd, 100 + i as i32) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            for i in 0..fds.len() as i32 {
                if libc::dup2(100 + i, 3 + i) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                libc::close(100 + i);
            }
            Ok(())
        });
    }
    let status = c.status().unwrap();
    std::process::Output {
        status,
        stdout: std::fs::read(out.path()).unwrap(),
        stderr: std::fs::read(err.path()).unwrap(),
    }
}

#[test]
fn preserve_fds_reach_the_container() {
    use std::io::Read;
    use std::os::fd::AsRawFd;
    require_root!();
    let env = Env::new();
    // A file the container reads and appends to, and a pipe it writes to
    // and then closes: the reader sees the end while the container still
    // runs, so nothing else (the supervisor) holds the write end.
    let path = env.dir.path().join("shared.txt");
    std::fs::write(&path, "from-host\n").unwrap();
    let file = std::fs::OpenOptions::new()
        .read(true)
        .append(true)
        .open(&path)
        .unwrap();
    let (mut r, w) = std::io::pipe().unwrap();
    let script = "cat <&3 >/tmp/seen; echo from-container >&3; echo piped >&4; \
                  exec 3>&- 4>&-; exec sleep 1000";
    let b = env.bundle("f1", &["sh", "-c", script], |_| {});
    let o = rt_fds(
        &env,
        &[
            "create",
            "--preserve-fds",
            "2",
            "--bundle",
            b.to_str().unwrap(),
            "f1",
        ],
        &[file.as_raw_fd(), w.as_raw_fd()],
    );
    assert!(o.status.success(), "{:?}", text(&o));
    drop(w);
    assert!(env.rt(&["start", "f1"]).status.success());
    let mut got = String::new();
    r.read_to_string(&mut got).unwrap();
    assert_eq!(got, "piped\n");
    assert_eq!(state(&env, "f1")["status"], "running");
    let o = env.rt(&["exec", "f1", "cat", "/tmp/seen"]);
    assert_eq!(text(&o).0, "from-host\n", "{:?}", text(&o));
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "from-host\nfrom-container\n"
    );
    // exec --preserve-fds: the same for a process run in it.
    let o = rt_fds(
        &env,
        &[
            "exec",
            "--preserve-fds",
            "1",
            "f1",
            "sh",
            "-c",
            "echo via-exec >&3",
        ],
        &[file.as_raw_fd()],
    );
    assert!(o.status.success(), "{:?}", text(&o));
    assert!(std::fs::read_to_string(&path)
        .unwrap()
        .ends_with("via-exec\n"));
    // Without --preserve-fds the process gets nothing past stderr (3 is
    // ls's own handle on the directory it lists).
    let o = rt_fds(
        &env,
        &["exec", "f1", "ls", "/proc/self/fd"],
        &[file.as_raw_fd()],
    );
    let fds: Vec<&str> = std::str::from_utf8(&o.stdout)
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(fds, ["0", "1", "2", "3"]);
    assert!(env.rt(&["delete", "--force", "f1"]).status.success());
    // The runtime's own hooks get none of them (poststart, run by `run`
    // while it holds them for the container).
    let seen = env.dir.path().join("hook-fds");
    let b = env.bundle("f3", &["sh", "-c", "exit 0"], |c| {
        c["hooks"] = serde_json::json!({"poststart": [{"path": "/bin/sh", "args": ["sh", "-c",
            format!("if test -e /proc/self/fd/3; then echo leaked; else echo none; fi > {}", seen.display())]}]});
    });
    // `run` of bundle `b` as `id` with `fd` at 3, preserved.
    let run_with = |b: &Path, id: &str, fd: std::os::fd::RawFd| {
        let args = [
            "run",
            "--preserve-fds",
            "1",
            "--bundle",
            b.to_str().unwrap(),
            id,
        ];
        rt_fds(&env, &args, &[fd])
    };
    let o = run_with(&b, "f3", file.as_raw_fd());
    assert!(o.status.success(), "{:?}", text(&o));
    assert_eq!(std::fs::read_to_string(&seen).unwrap(), "none\n");
    // A directory fd is a way back into the host's tree: refused, and
    // nothing is left.
    let dir = std::fs::File::open("/").unwrap();
    let b = env.bundle("f2", &["sh", "-c", "ls /proc/self/fd/3/"], |_| {});
    let o = run_with(&b, "f2", dir.as_raw_fd());
    assert!(!o.status.success());
    let err = text(&o).1;
    assert!(
        err.contains("--preserve-fds") && err.contains("directory"),
        "{err}"
    );
    assert!(!env.rt(&["state", "f2"]).status.success());
    // More fds than were given: an error before anything is made.
    let o = env.rt(&[
        "run",
        "--preserve-fds",
        "3",
        "--bundle",
        b.to_str().unwrap(),
        "f2",
    ]);
    // (fd 3 unless the test itself inherited one, as under `flock CMD`.)
    assert!(text(&o).1.contains("is not open"), "{:?}", text(&o));
}

/// `kill --all SIGNAL` reaches every process of the container, as runc's
/// does, not only its PID 1: a background process dies of SIGUSR1 while
/// the shell that started it ignores it, and the container then ends.
/// Without --all the container goes on.
#[test]
fn kill_all_signals_every_process() {
    require_root!();
    let env = Env::new();
    // The trap comes after the fork: the sleep keeps USR1's default.
    let script = "sleep 1000 & trap '' USR1; touch /tmp/ready; wait";
    let b = env.bundle("b", &["sh", "-c", script], |_| {});
    let o = env.rt(&["run", "-d", "--bundle", b.to_str().unwrap(), "k1"]);
    assert!(o.status.success(), "{:?}", text(&o));
    let ready = b.join("rootfs/tmp/ready");
    for _ in 0..200 {
        if ready.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    assert!(ready.exists(), "the script did not start");
    // The sleep moves into cgroups of its own beneath the container's, in
    // every hierarchy (as systemd inside a container puts its services):
    // the container's own cgroup.procs no longer lists it.
    let sh = state(&env, "k1")["pid"].as_i64().unwrap();
    let sleep = children_named(sh, "sleep")
        .into_iter()
        .next()
        .expect("the container's sleep");
    let mut made = Vec::new();
    for dir in cgroup_dirs(sleep) {
        let sub = dir.join("sub");
        std::fs::create_dir(&sub).unwrap();
        std::fs::write(sub.join("cgroup.procs"), sleep.to_string()).unwrap();
        made.push(sub);
    }
    assert!(!made.is_empty());
    assert!(env.rt(&["kill", "k1", "USR1"]).status.success());
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(state(&env, "k1")["status"], "running");
    let o = env.rt(&["kill", "--all", "k1", "USR1"]);
    assert!(o.status.success(), "{:?}", text(&o));
    wait_status(&env, "k1", "stopped");
    assert!(env.rt(&["delete", "k1"]).status.success());
    // The cgroups the workload made go with the container's own.
    for sub in &made {
        let top = sub.parent().unwrap();
        assert!(!top.exists(), "{} is left", top.display());
    }
}

/// Pids of `parent`'s children whose name (comm) is `name`.
fn children_named(parent: i64, name: &str) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|p| {
            let status = std::fs::read_to_string(format!("/proc/{p}/status")).unwrap_or_default();
            let field = |k: &str| {
                status
                    .lines()
                    .find_map(|l| l.strip_prefix(k).map(|v| v.trim().to_string()))
            };
            field("Name:").as_deref() == Some(name)
                && field("PPid:").as_deref() == Some(parent.to_string().as_str())
        })
        .collect()
}

/// The directories of `pid`'s cgroups that airlock made (named
/// airlock-*), in every mounted hierarchy.
fn cgroup_dirs(pid: i32) -> Vec<PathBuf> {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let mut dirs = Vec::new();
    for line in std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .unwrap()
        .lines()
    {
        let mut f = line.splitn(3, ':');
        let (_, controllers, path) = (f.next(), f.next().unwrap(), f.next().unwrap());
        if !path.contains("airlock-") {
            continue;
        }
        let mount = mounts.lines().find_map(|m| {
            let (left, right) = m.split_once(" - ")?;
            let mut l = left.split(' ');
            let (root, point) = (l.nth(3)?, l.next()?);
            let mut r = right.split(' ');
            let (fstype, opts) = (r.next()?, r.nth(1)?);
            let ours = match controllers {
                "" => fstype == "cgroup2",
                c => fstype == "cgroup" && c.split(',').all(|c| opts.split(',').any(|o| o == c)),
            };
            let below = path.strip_prefix(root)?.trim_start_matches('/');
            ours.then(|| PathBuf::from(point).join(below))
        });
        dirs.extend(mount);
    }
    dirs
}

/// `pause` freezes the container's cgroup and `state` says `paused`, as
/// runc's does (it said `running`); `resume` thaws it; a paused container
/// is thawed before `delete --force` kills it (a frozen process takes no
/// SIGKILL under the v1 freezer).
#[test]
fn pause_shows_in_state_and_delete_force_thaws() {
    require_root!();
    let env = Env::new();
    sleeper(&env, "p", |c| {
        c["linux"]["resources"] = json!({"memory": {"limit": 64 << 20}});
    });
    assert!(env.rt(&["start", "p"]).status.success());
    let status = || state(&env, "p")["status"].as_str().unwrap().to_string();
    assert_eq!(status(), "running");
    let o = env.rt(&["resume", "p"]);
    assert_eq!(o.status.code(), Some(1), "resume of a running one");
    assert!(text(&o).1.contains("is not paused"), "{:?}", text(&o));
    assert!(env.rt(&["pause", "p"]).status.success());
    assert_eq!(status(), "paused");
    let o = env.rt(&["pause", "p"]);
    assert_eq!(o.status.code(), Some(1), "pause of a paused one");
    assert!(text(&o).1.contains("already paused"), "{:?}", text(&o));
    // An exec would wait in the frozen cgroup: refused, as runc does (it
    // hung before).
    let o = env.rt(&["exec", "p", "true"]);
    assert_eq!(o.status.code(), Some(255), "{:?}", text(&o));
    assert!(
        text(&o).1.contains("cannot exec in a paused container"),
        "{:?}",
        text(&o)
    );
    let o = env.rt(&["delete", "p"]);
    assert!(text(&o).1.contains("it is paused"), "{:?}", text(&o));
    // kill --all freezes the cgroup while it signals (so no pid is reused
    // meanwhile) and leaves it as it found it: paused here, running below.
    assert!(env.rt(&["kill", "--all", "p", "CONT"]).status.success());
    assert_eq!(status(), "paused");
    assert!(env.rt(&["resume", "p"]).status.success());
    assert_eq!(status(), "running");
    assert!(env.rt(&["kill", "--all", "p", "CONT"]).status.success());
    assert_eq!(status(), "running");
    // While a pause or resume holds the freezer, kill --all waits for it
    // and then looks again: it thawed a pause made between its look and
    // its thaw, and `state` said running.
    let dir = env
        .root()
        .join(std::fs::read_link(env.root().join(".names/p")).unwrap());
    let held = std::fs::File::create(dir.join("freeze.lock")).unwrap();
    rustix::fs::flock(&held, rustix::fs::FlockOperation::LockExclusive).unwrap();
    std::thread::scope(|scope| {
        let kill = scope.spawn(|| env.rt(&["kill", "--all", "p", "CONT"]));
        std::thread::sleep(std::time::Duration::from_millis(500));
        assert!(
            !kill.is_finished(),
            "kill --all did not wait for the freezer"
        );
        drop(held);
        assert!(kill.join().unwrap().status.success());
    });
    // A delete --force that meets the brief freeze of a kill --all waits
    // for it to end and deletes: it took the frozen cgroup for a pause,
    // and failed with "not paused" once the kill had thawed it.
    let st: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("state.json")).unwrap()).unwrap();
    let cg = &st["cgroup"];
    let freezer = airlock::cgroup::freezer_file(
        cg["v2"].as_str().map(Path::new),
        cg["v1"]["freezer"].as_str().map(Path::new),
    )
    .unwrap();
    let held = std::fs::File::create(dir.join("freeze.lock")).unwrap();
    rustix::fs::flock(&held, rustix::fs::FlockOperation::LockExclusive).unwrap();
    airlock::cgroup::set_frozen(&freezer, true).unwrap();
    std::thread::scope(|scope| {
        let delete = scope.spawn(|| env.rt(&["delete", "--force", "p"]));
        std::thread::sleep(std::time::Duration::from_millis(300));
        airlock::cgroup::set_frozen(&freezer, false).unwrap();
        drop(held);
        let o = delete.join().unwrap();
        assert!(o.status.success(), "{:?}", text(&o));
    });
    assert!(!env.rt(&["state", "p"]).status.success());
    sleeper(&env, "q", |c| {
        c["linux"]["resources"] = json!({"memory": {"limit": 64 << 20}});
    });
    assert!(env.rt(&["start", "q"]).status.success());
    assert!(env.rt(&["pause", "q"]).status.success());
    let o = env.rt(&["delete", "--force", "q"]);
    assert!(o.status.success(), "{:?}", text(&o));
    assert!(!env.rt(&["state", "q"]).status.success());

    // A created container pauses too, as runc's does: it then neither
    // starts nor goes without --force until it is resumed.
    sleeper(&env, "c", |c| {
        c["linux"]["resources"] = json!({"memory": {"limit": 64 << 20}});
    });
    let status = || state(&env, "c")["status"].as_str().unwrap().to_string();
    let o = env.rt(&["pause", "c"]);
    assert!(o.status.success(), "{:?}", text(&o));
    assert_eq!(status(), "paused");
    let o = env.rt(&["start", "c"]);
    assert!(text(&o).1.contains("it is paused"), "{:?}", text(&o));
    let o = env.rt(&["delete", "c"]);
    assert!(text(&o).1.contains("it is paused"), "{:?}", text(&o));
    assert!(env.rt(&["resume", "c"]).status.success());
    assert_eq!(status(), "created");
    assert!(env.rt(&["start", "c"]).status.success());
    assert_eq!(status(), "running");
    assert!(env.rt(&["delete", "--force", "c"]).status.success());
}

/// A container whose state cannot be read is not taken for a missing
/// one: `delete --force` said it deleted it (exit 0) and left it
/// running, and `state` said it did not exist.
#[test]
fn an_unreadable_container_is_not_a_missing_one() {
    require_root!();
    let env = Env::new();
    let pid = sleeper(&env, "u", |_| {});
    let id = std::fs::read_link(env.root().join(".names/u")).unwrap();
    let state_json = env.root().join(id).join("state.json");
    let kept = std::fs::read(&state_json).unwrap();
    std::fs::write(&state_json, "{}").unwrap();
    for verb in [&["delete", "--force", "u"][..], &["state", "u"]] {
        let o = env.rt(verb);
        let (_, err) = text(&o);
        assert!(!o.status.success(), "{verb:?}: {err}");
        assert!(
            err.contains("container \"u\"") && !err.contains("does not exist"),
            "{verb:?}: {err}"
        );
    }
    assert!(
        std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "the container's process went"
    );
    std::fs::write(&state_json, kept).unwrap();
    assert!(env.rt(&["delete", "--force", "u"]).status.success());
    // What is not there is still not an error for --force.
    assert!(env.rt(&["delete", "--force", "u"]).status.success());
}

/// `run` in the foreground whose container another caller deleted says
/// so (it failed with "remove ...: No such file or directory").
#[test]
fn a_foreground_run_whose_container_is_deleted_says_so() {
    require_root!();
    let env = Env::new();
    let b = env.bundle("fg", &["sleep", "1000"], |_| {});
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_airlock-runtime"))
        .arg("--root")
        .arg(env.root())
        .args(["run", "--bundle", b.to_str().unwrap(), "fg"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Until the run has made and started it.
    let started = (0..200).any(|_| {
        let o = env.rt(&["state", "fg"]);
        let up = o.status.success() && text(&o).0.contains("\"running\"");
        if !up {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        up
    });
    assert!(started, "the run never started its container");
    let o = env.rt(&["delete", "--force", "fg"]);
    assert!(o.status.success(), "{:?}", text(&o));
    // Whichever removes the state first, neither fails on the other's
    // having done it: the run reports the kill, or that it was deleted.
    let out = run.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    match out.status.code() {
        Some(137) => assert!(err.is_empty(), "{err}"),
        Some(1) => assert!(
            err.contains("container fg was deleted by another caller while it ran"),
            "{err}"
        ),
        other => panic!("{other:?}: {err}"),
    }
    assert!(!err.contains("No such file"), "{err}");
}

/// A CPU quota without a period takes the kernel's default period, as
/// runc gives it (it was dropped: no limit at all).
#[test]
fn a_cpu_quota_alone_takes_the_default_period() {
    require_root!();
    if !Path::new("/sys/fs/cgroup/cpu/cgroup.procs").exists() {
        eprintln!(
            "SKIPPED: the host has no v1 cpu hierarchy (the v2 path is the plan's, unit-tested)"
        );
        return;
    }
    let env = Env::new();
    let pid = sleeper(&env, "q1", |c| {
        c["linux"]["resources"] = json!({"cpu": {"quota": 50000}});
    });
    let cpu = v1_dir("cpu", &cgroup_of(pid, "cpu"));
    assert_eq!(read(&cpu.join("cpu.cfs_quota_us")), "50000");
    assert_eq!(read(&cpu.join("cpu.cfs_period_us")), "100000");
    // A period of the bundle's own is kept, and the least quota over it
    // (1 ms a second) taken: it was rescaled to 100 ms, and refused.
    let pid = sleeper(&env, "q2", |c| {
        c["linux"]["resources"] = json!({"cpu": {"quota": 1000, "period": 1000000}});
    });
    let cpu = v1_dir("cpu", &cgroup_of(pid, "cpu"));
    assert_eq!(read(&cpu.join("cpu.cfs_quota_us")), "1000");
    assert_eq!(read(&cpu.join("cpu.cfs_period_us")), "1000000");
    // update --cpu-quota alone keeps that period, as runc's, and so does
    // a quota alone in a --resources file.
    let o = env.rt(&["update", "--cpu-quota", "250000", "q2"]);
    assert!(o.status.success(), "{:?}", text(&o));
    assert_eq!(read(&cpu.join("cpu.cfs_quota_us")), "250000");
    assert_eq!(read(&cpu.join("cpu.cfs_period_us")), "1000000");
    let file = env.dir.path().join("cpu.json");
    std::fs::write(&file, r#"{"cpu": {"quota": 500000}}"#).unwrap();
    let o = env.rt(&["update", "--resources", file.to_str().unwrap(), "q2"]);
    assert!(o.status.success(), "{:?}", text(&o));
    assert_eq!(read(&cpu.join("cpu.cfs_quota_us")), "500000");
    assert_eq!(read(&cpu.join("cpu.cfs_period_us")), "1000000");
    // Both, the period shorter (written after the quota on v1).
    let o = env.rt(&[
        "update",
        "--cpu-quota",
        "50000",
        "--cpu-period",
        "100000",
        "q2",
    ]);
    assert!(o.status.success(), "{:?}", text(&o));
    assert_eq!(read(&cpu.join("cpu.cfs_quota_us")), "50000");
    assert_eq!(read(&cpu.join("cpu.cfs_period_us")), "100000");
}

/// A container whose supervisor and guard were killed together (a unit's
/// last SIGKILL) is stopped by no one's record: `delete` kills what is
/// left in its cgroups and removes them, as the library's delete does. It
/// removed only the state, and the cgroups stayed (with a pod's shared
/// PID namespace, its processes too).
#[test]
fn delete_reclaims_the_cgroups_a_dead_supervisor_left() {
    require_root!();
    let env = Env::new();
    let pid = sleeper(&env, "orphan", |c| {
        c["linux"]["resources"] = json!({"pids": {"limit": 64}});
    });
    assert!(env.rt(&["start", "orphan"]).status.success());
    let dirs = cgroup_dirs(pid as i32);
    assert!(!dirs.is_empty(), "no cgroup of its own");
    let supervisor = parent_of(pid);
    let guard: Vec<i64> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i64>().ok())
        .filter(|p| {
            *p != pid
                && std::fs::read_to_string(format!("/proc/{p}/status"))
                    .is_ok_and(|s| s.contains(&format!("\nPPid:\t{supervisor}\n")))
        })
        .collect();
    assert_eq!(guard.len(), 1, "the supervisor's guard");
    for p in [supervisor, guard[0]] {
        // SAFETY: kill takes no pointers; both are this test's sandbox's.
        unsafe { libc::kill(p as i32, libc::SIGKILL) };
    }
    wait_status(&env, "orphan", "stopped");
    let o = env.rt(&["delete", "orphan"]);
    assert!(o.status.success(), "{:?}", text(&o));
    assert!(
        wait_until(10, || dirs.iter().all(|d| !d.exists())),
        "left behind: {dirs:?}"
    );
}

/// The parent of process `pid` (a container's PID 1's: its supervisor).
fn parent_of(pid: i64) -> i64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("PPid:")).unwrap();
    line[5..].trim().parse().unwrap()
}

/// `delete --force` of a container whose supervisor does not answer
/// (stopped with SIGSTOP) kills the supervisor itself, as runc's kills
/// init: the container, its processes and its cgroups go.
#[test]
fn delete_force_kills_a_supervisor_that_does_not_answer() {
    require_root!();
    let env = Env::new();
    let pid = sleeper(&env, "stuck", |c| {
        c["linux"]["resources"] = json!({"pids": {"limit": 64}});
    });
    assert!(env.rt(&["start", "stuck"]).status.success());
    let dirs = cgroup_dirs(pid as i32);
    assert!(!dirs.is_empty(), "no cgroup of its own");
    let supervisor = parent_of(pid) as i32;
    // SAFETY: kill takes no pointers; the supervisor is this test's
    // container's.
    unsafe { libc::kill(supervisor, libc::SIGSTOP) };
    let o = env.rt(&["delete", "--force", "stuck"]);
    assert!(o.status.success(), "{:?}", text(&o));
    let (_, err) = text(&env.rt(&["state", "stuck"]));
    assert!(err.contains("does not exist"), "{err}");
    let gone = |p: i64| !Path::new(&format!("/proc/{p}")).exists();
    assert!(
        wait_until(10, || gone(pid) && gone(supervisor as i64)),
        "the container ({pid}) or its supervisor ({supervisor}) lives on"
    );
    assert!(
        wait_until(10, || dirs.iter().all(|d| !d.exists())),
        "left behind: {dirs:?}"
    );
}

/// Two `delete --force` of one running container at once (a shim's and
/// an operator's) both succeed, and the poststop hook runs once: the
/// second waits for the first's lock and finds the container gone. (One
/// that found it before the first removed it, and looked again after,
/// failed with "has been removed": a narrow window, tried three times.)
#[test]
fn concurrent_force_deletes_both_succeed() {
    require_root!();
    let env = Env::new();
    for round in 0..3 {
        let id = format!("twice{round}");
        let marks = env.dir.path().join(format!("{id}.poststop"));
        sleeper(&env, &id, |c| {
            c["hooks"] = json!({"poststop": [{
                "path": "/bin/sh",
                "args": ["sh", "-c", format!("echo ran >> {}", marks.display())],
            }]});
        });
        assert!(env.rt(&["start", &id]).status.success());
        std::thread::scope(|s| {
            let both: Vec<_> = (0..2)
                .map(|_| s.spawn(|| env.rt(&["delete", "--force", &id])))
                .collect();
            for d in both {
                let o = d.join().unwrap();
                assert!(o.status.success(), "{id}: {:?}", text(&o));
            }
        });
        let ran = std::fs::read_to_string(&marks).unwrap_or_default();
        assert_eq!(ran, "ran\n", "{id}: the poststop hook's runs");
    }
}

/// A `create` killed while a createRuntime hook hangs (a shim's deadline)
/// leaves a container being created that no one else cleans up: the
/// `delete --force` that removes it runs its poststop hooks, once.
#[test]
fn a_delete_after_a_killed_create_runs_the_poststop_hooks() {
    require_root!();
    let env = Env::new();
    let marks = env.dir.path().join("marks");
    let mark = |what: &str| format!("echo {what} >> {}", marks.display());
    let b = env.bundle("k", &["true"], |c| {
        c["hooks"] = json!({
            "createRuntime": [{"path": "/bin/sh",
                "args": ["sh", "-c", format!("{}; sleep 100", mark("hung"))], "timeout": 100}],
            "poststop": [{"path": "/bin/sh", "args": ["sh", "-c", mark("poststop")]}],
        });
    });
    let mut create = env.rt_spawn(&["create", "--bundle", b.to_str().unwrap(), "k"]);
    let hung = wait_until(10, || {
        std::fs::read_to_string(&marks).is_ok_and(|m| m.contains("hung"))
    });
    let _ = create.kill();
    let _ = create.wait();
    assert!(hung, "the hook never ran");
    assert_eq!(state(&env, "k")["status"], "creating");
    let o = env.rt(&["delete", "--force", "k"]);
    assert!(o.status.success(), "{:?}", text(&o));
    assert_eq!(
        std::fs::read_to_string(&marks).unwrap(),
        "hung\npoststop\n",
        "the hooks' runs"
    );
}

/// An `exec --pid-file` whose file cannot be written fails and leaves no
/// process behind, as runc kills it: it ran on, unwatched.
#[test]
fn an_exec_whose_pid_file_fails_leaves_no_process() {
    require_root!();
    let env = Env::new();
    sleeper(&env, "pf", |_| {});
    assert!(env.rt(&["start", "pf"]).status.success());
    let missing = env.dir.path().join("no-such-dir/pid");
    let o = env.rt(&[
        "exec",
        "-d",
        "--pid-file",
        missing.to_str().unwrap(),
        "pf",
        "sleep",
        "7717",
    ]);
    assert_eq!(o.status.code(), Some(255), "{:?}", text(&o));
    let running = || {
        std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
            std::fs::read(e.path().join("cmdline")).is_ok_and(|c| c == b"sleep\x007717\x00")
        })
    };
    let gone = wait_until(5, || !running());
    assert!(env.rt(&["delete", "--force", "pf"]).status.success());
    assert!(gone, "the exec'd process is still running");
}

/// An exec'd process is in the container's cgroups, and only it: `ps`
/// lists processes of the container's PID namespace alone (not the host
/// process that waits for the exec), and the pids limit counts the
/// process, as runc's exec does.
#[test]
fn an_exec_puts_only_its_process_in_the_containers_cgroups() {
    require_root!();
    let env = Env::new();
    let pid = sleeper(&env, "e1", |c| {
        c["linux"]["resources"] = json!({"pids": {"limit": 3}});
    });
    let o = env.rt(&["start", "e1"]);
    assert!(o.status.success(), "{:?}", text(&o));
    wait_status(&env, "e1", "running");
    let ns = |p: i64| std::fs::read_link(format!("/proc/{p}/ns/pid")).ok();
    let listed = || -> Vec<i64> {
        let o = env.rt(&["ps", "--format", "json", "e1"]);
        serde_json::from_slice(&o.stdout).unwrap()
    };
    let before = listed().len();
    let o = env.rt(&["exec", "-d", "e1", "sleep", "1000"]);
    assert!(o.status.success(), "{:?}", text(&o));
    let mut pids = listed();
    for _ in 0..100 {
        if pids.len() > before {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
        pids = listed();
    }
    assert_eq!(pids.len(), before + 1, "{pids:?}");
    for p in &pids {
        assert_eq!(ns(*p), ns(pid), "{p} of {pids:?} is not in the container");
    }
    // A shell and its fork are past the limit of three: the fork fails,
    // and `ps` lists no more than before.
    let o = env.rt(&["exec", "e1", "sh", "-c", "sleep 1 & wait"]);
    assert!(!o.status.success(), "{:?}", text(&o));
    assert_eq!(listed().len(), before + 1);
    assert!(env.rt(&["delete", "--force", "e1"]).status.success());
}

/// CRI-O passes kubelet's huge page limits, one for each page size the
/// node has (0 where the pod asked for none): written in the container's
/// hugetlb cgroup (v2 here), then changed by `update`. A page size that
/// is malformed or given twice, or a negative limit, is refused by its
/// field and leaves no container.
#[test]
fn kubelets_huge_page_limits() {
    require_root!();
    let env = Env::new();
    let (dir_of, max): (fn(i64) -> PathBuf, &str) = if Path::new("/sys/fs/cgroup/hugetlb").exists()
    {
        (
            |pid| v1_dir("hugetlb", &cgroup_of(pid, "hugetlb")),
            "limit_in_bytes",
        )
    } else {
        (
            |pid| {
                let v2 = match Path::new("/sys/fs/cgroup/unified/cgroup.procs").exists() {
                    true => Path::new("/sys/fs/cgroup/unified"),
                    false => Path::new("/sys/fs/cgroup"),
                };
                v2.join(cgroup_of(pid, "").trim_start_matches('/'))
            },
            "max",
        )
    };
    let pid = sleeper(&env, "h1", |c| {
        c["linux"]["resources"] = json!({"hugepageLimits": [
            {"pageSize": "2MB", "limit": 8 << 20},
            {"pageSize": "1GB", "limit": 0},
        ]});
    });
    let dir = dir_of(pid);
    assert_eq!(
        read(&dir.join(format!("hugetlb.2MB.{max}"))),
        (8u64 << 20).to_string()
    );
    assert_eq!(
        read(&dir.join(format!("hugetlb.2MB.rsvd.{max}"))),
        (8u64 << 20).to_string()
    );
    assert_eq!(read(&dir.join(format!("hugetlb.1GB.{max}"))), "0");
    let file = env.dir.path().join("h.json");
    std::fs::write(
        &file,
        r#"{"hugepageLimits": [{"pageSize": "2MB", "limit": 2097152}]}"#,
    )
    .unwrap();
    let o = env.rt(&["update", "-r", file.to_str().unwrap(), "h1"]);
    assert!(o.status.success(), "{:?}", text(&o));
    assert_eq!(read(&dir.join(format!("hugetlb.2MB.{max}"))), "2097152");
    assert_eq!(read(&dir.join(format!("hugetlb.1GB.{max}"))), "0");
    assert!(env.rt(&["delete", "--force", "h1"]).status.success());
    for (id, limits, named) in [
        (
            "h2",
            json!([{"pageSize": "2M", "limit": 0}]),
            "linux.resources.hugepageLimits: the pageSize 2M: not a huge page size",
        ),
        (
            "h3",
            json!([{"pageSize": "2MB", "limit": 0}, {"pageSize": "2MB", "limit": 4096}]),
            "linux.resources.hugepageLimits[1].pageSize: \"2MB\" is limited twice",
        ),
        (
            "h4",
            json!([{"pageSize": "2MB", "limit": -1}]),
            "linux.resources.hugepageLimits[0].limit: -1 is not a number of bytes",
        ),
    ] {
        let b = env.bundle(id, &["true"], |c| {
            c["linux"]["resources"] = json!({ "hugepageLimits": limits });
        });
        let o = env.rt(&["create", "--bundle", b.to_str().unwrap(), id]);
        assert!(!o.status.success());
        assert!(text(&o).1.contains(named), "{:?}", text(&o));
        assert!(!env.rt(&["state", id]).status.success(), "{id} left behind");
    }
}

/// `ps` lists the processes of the cgroups beneath the container's too
/// (a systemd inside makes them), as runc's does; options for ps(1) and
/// an unknown format are refused, not dropped.
#[test]
fn ps_lists_nested_cgroups_and_refuses_what_it_ignores() {
    require_root!();
    let env = Env::new();
    let pid = sleeper(&env, "p1", |c| {
        c["process"]["args"] = json!(["sh", "-c", "sleep 1000 & exec sleep 1001"]);
        c["linux"]["resources"] = json!({"pids": {"limit": 50}});
    });
    let o = env.rt(&["start", "p1"]);
    assert!(o.status.success(), "{:?}", text(&o));
    let listed = |env: &Env| -> Vec<i64> {
        let o = env.rt(&["ps", "--format", "json", "p1"]);
        assert!(o.status.success(), "{:?}", text(&o));
        serde_json::from_slice(&o.stdout).unwrap()
    };
    let mut all = Vec::new();
    for _ in 0..100 {
        all = listed(&env);
        if all.len() >= 2 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(all.len() >= 2, "{all:?}");
    // One of them moved into a cgroup beneath the container's, in every
    // hierarchy the container has one in.
    let moved = *all.iter().max().unwrap();
    let ours = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let dirs: Vec<PathBuf> = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .unwrap()
        .lines()
        // Where the container has a cgroup of its own, not the caller's.
        .filter(|l| !ours.lines().any(|o| o == *l))
        .filter_map(|l| {
            let mut f = l.splitn(3, ':');
            let (_, ctrls, path) = (f.next()?, f.next()?, f.next()?);
            let mount = match ctrls {
                "" if Path::new("/sys/fs/cgroup/unified").exists() => "unified".to_string(),
                "" => String::new(),
                c => c.trim_start_matches("name=").to_string(),
            };
            let dir = Path::new("/sys/fs/cgroup")
                .join(mount)
                .join(path.trim_start_matches('/'));
            Some(dir)
        })
        .filter(|d| d.is_dir())
        .collect();
    assert!(!dirs.is_empty());
    for dir in &dirs {
        let nested = dir.join("nested");
        std::fs::create_dir(&nested).unwrap();
        std::fs::write(nested.join("cgroup.procs"), moved.to_string()).unwrap();
        assert_eq!(read(&nested.join("cgroup.procs")), moved.to_string());
    }
    assert_eq!(listed(&env), all, "the nested cgroups' process is listed");
    let dir = v1_dir("pids", &cgroup_of(pid, "pids"));
    for (args, named) in [
        (
            vec!["ps", "p1", "--", "-ef"],
            "options for ps(1) (-ef) are not supported",
        ),
        (
            vec!["ps", "--format", "yaml", "p1"],
            "--format \"yaml\": table or json",
        ),
    ] {
        let o = env.rt(&args);
        assert!(!o.status.success());
        assert!(text(&o).1.contains(named), "{:?}", text(&o));
    }
    assert!(env.rt(&["delete", "--force", "p1"]).status.success());
    assert!(
        !dir.exists(),
        "the container's cgroups are removed, nested ones too"
    );
}

/// `checkpoint` is refused by name, `--help` included (podman asks it
/// whether the runtime can checkpoint).
#[test]
fn checkpoint_is_refused_by_name() {
    let env = Env::new();
    for args in [vec!["checkpoint", "c1"], vec!["checkpoint", "--help"]] {
        let o = env.rt(&args);
        assert_eq!(o.status.code(), Some(1), "{:?}", text(&o));
        assert!(
            text(&o).1.contains("`checkpoint` is not supported"),
            "{:?}",
            text(&o)
        );
    }
}

/// systemd's socket activation, as runc passes it on: with LISTEN_PID
/// the runtime's own, its LISTEN_FDS fds reach the container at the same
/// numbers, and the workload is told (LISTEN_PID=1). NOTIFY_SOCKET,
/// which airlock does not relay, is refused and leaves no container.
#[test]
fn socket_activation_and_notify_socket() {
    require_root!();
    let env = Env::new();
    let b = env.bundle(
        "l1",
        &[
            "sh",
            "-c",
            "echo $LISTEN_FDS $LISTEN_PID; read x <&3; echo $x",
        ],
        |_| {},
    );
    let given = env.dir.path().join("given");
    std::fs::write(&given, "from-fd-3\n").unwrap();
    // Run with fd 3 open and LISTEN_PID `pid` (`$$`: the runtime's, which
    // the shell's exec keeps).
    let activated = |pid: &str, id: &str| {
        let script = format!(
            r#"exec 3<"$GIVEN"; LISTEN_PID={pid} LISTEN_FDS=1 exec "$RT" --root "$ROOT" run --bundle "$B" {id}"#
        );
        std::process::Command::new("sh")
            .args(["-c", &script])
            .env("GIVEN", &given)
            .env("RT", env!("CARGO_BIN_EXE_airlock-runtime"))
            .env("ROOT", env.root())
            .env("B", &b)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    };
    let o = activated("$$", "l1");
    assert!(o.status.success(), "{:?}", text(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "1 1\nfrom-fd-3\n");
    // Another process's LISTEN_PID: none are passed, and no fd 3.
    let o = activated("1", "l2");
    assert!(
        !String::from_utf8_lossy(&o.stdout).contains("from-fd-3"),
        "{:?}",
        text(&o)
    );
    let b = env.bundle("n1", &["true"], |_| {});
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_airlock-runtime"))
        .args([
            "--root",
            env.root().to_str().unwrap(),
            "create",
            "--bundle",
            b.to_str().unwrap(),
            "n1",
        ])
        .env("NOTIFY_SOCKET", "/run/systemd/notify")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(
        text(&o).1.contains("NOTIFY_SOCKET is set"),
        "{:?}",
        text(&o)
    );
    assert!(!env.rt(&["state", "n1"]).status.success(), "left behind");
}

/// A foreground `exec` passes the signals it gets on to its process, as
/// runc's does: a SIGTERM to the runtime reaches the process, whose
/// status the runtime then exits with (it used to end the runtime alone
/// and leave the process running).
#[test]
fn a_foreground_exec_passes_signals_on() {
    require_root!();
    let env = Env::new();
    sleeper(&env, "s1", |_| {});
    assert!(env.rt(&["start", "s1"]).status.success());
    let mut exec = std::process::Command::new(env!("CARGO_BIN_EXE_airlock-runtime"))
        .args([
            "--root",
            env.root().to_str().unwrap(),
            "exec",
            "s1",
            "sh",
            "-c",
        ])
        .arg("trap 'exit 7' TERM; echo ready; while :; do sleep 0.1; done")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(exec.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line, "ready\n");
    // SAFETY: kill(2) on the pid of our own child, not yet reaped.
    assert_eq!(unsafe { libc::kill(exec.id() as i32, libc::SIGTERM) }, 0);
    let status = exec.wait().unwrap();
    assert_eq!(status.code(), Some(7), "{status:?}");
    assert!(env.rt(&["delete", "--force", "s1"]).status.success());
}

/// `features` lists exactly the seccomp actions, comparisons and flags a
/// bundle's profile may use: containerd and podman read it to decide what
/// to send.
#[test]
fn features_list_what_a_seccomp_profile_may_use() {
    let env = Env::new();
    let o = env.rt(&["features"]);
    assert!(o.status.success(), "{:?}", text(&o));
    let f: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let listed = |key: &str| -> Vec<String> {
        f["linux"]["seccomp"][key]
            .as_array()
            .unwrap_or_else(|| panic!("no linux.seccomp.{key}: {f}"))
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    };
    let compiles = |profile: serde_json::Value| {
        let p = serde_json::from_value(profile).unwrap();
        airlock::seccomp::filters(&airlock::seccomp::Seccomp::custom(p)).is_ok()
    };
    let actions = listed("actions");
    for action in [
        "SCMP_ACT_ALLOW",
        "SCMP_ACT_ERRNO",
        "SCMP_ACT_KILL",
        "SCMP_ACT_KILL_PROCESS",
        "SCMP_ACT_KILL_THREAD",
        "SCMP_ACT_TRAP",
        "SCMP_ACT_TRACE",
        "SCMP_ACT_LOG",
        "SCMP_ACT_NOTIFY",
    ] {
        let profile = json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["capset"], "action": action}]});
        assert_eq!(
            compiles(profile),
            actions.contains(&action.to_string()),
            "{action}"
        );
    }
    let operators = listed("operators");
    for op in [
        "SCMP_CMP_NE",
        "SCMP_CMP_LT",
        "SCMP_CMP_LE",
        "SCMP_CMP_EQ",
        "SCMP_CMP_GE",
        "SCMP_CMP_GT",
        "SCMP_CMP_MASKED_EQ",
    ] {
        let profile = json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["capset"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 1, "op": op}]}]});
        assert_eq!(
            compiles(profile),
            operators.contains(&op.to_string()),
            "{op}"
        );
    }
    // The one flag the runtime applies (bundle_policy.rs runs it, and
    // a refused one).
    assert_eq!(listed("supportedFlags"), ["SECCOMP_FILTER_FLAG_LOG"]);
    // Every annotation that can take a protection away is declared so,
    // for an engine to keep it from images and pods: each one listed is
    // within the declared prefix.
    assert_eq!(
        f["potentiallyUnsafeConfigAnnotations"],
        json!(["run.airlock."])
    );
    let annotations = f["annotations"].as_object().unwrap();
    assert!(annotations.len() >= 3, "{f}");
    for key in annotations.keys() {
        assert!(key.starts_with("run.airlock."), "{key}");
    }
}
