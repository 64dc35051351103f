//! Kubernetes' own interface drives airlock: a private containerd with its
//! CRI plugin and a runtime handler `airlock` (the runc shim v2 with
//! `BinaryName` = airlock-runtime), and a client that makes the kubelet's
//! calls over the CRI gRPC API on containerd's socket. The containerd
//! configuration is the one docs/kubernetes.md gives (paths aside).
//!
//! No registry is reachable: the pod's "pause" image and the workload image
//! are busybox images imported with `ctr -n k8s.io images import`. The pod
//! uses the node's network (hostNetwork), so no CNI plugin runs.

mod common;

use common::{runtime, text, Containerd};
use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

#[allow(clippy::all, clippy::pedantic)]
mod cri {
    tonic::include_proto!("runtime.v1");
}

use cri::runtime_service_client::RuntimeServiceClient;
use tonic::transport::{Channel, Endpoint, Uri};

const PAUSE: &str = "localhost/pause:airlock";
const BUSYBOX: &str = "localhost/busybox:cri";
/// Where the runc shim keeps the runtime's state for CRI's namespace.
const RUNTIME_ROOT: &str = "/run/containerd/runc/k8s.io";

/// containerd's CRI section, as docs/kubernetes.md gives it: the `airlock`
/// handler, pod annotations `run.airlock.*` passed to the runtime, and a
/// local sandbox image. cgroupfs (not systemd) because the test's
/// containerd is no systemd unit; the stream server on a free port so that
/// it cannot collide with a containerd already on the machine;
/// `restrict_oom_score_adj` because root here lacks CAP_SYS_RESOURCE and
/// cannot give the pause container its usual score of -998.
fn cri_config(dir: &Path) -> String {
    let rt = runtime();
    let d = dir.display();
    format!(
        r#"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE}"
  stream_server_port = "0"
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    conf_dir = "{d}/cni"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.airlock]
      runtime_type = "io.containerd.runc.v2"
      pod_annotations = ["run.airlock.*"]
      container_annotations = ["run.airlock.*"]
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.airlock.options]
        BinaryName = "{}"
        SystemdCgroup = false
"#,
        rt.display()
    )
}

async fn connect(socket: &Path) -> Channel {
    let p = socket.to_path_buf();
    // The URI is a placeholder tonic requires; the connector dials the socket.
    Endpoint::from_static("http://containerd")
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let p = p.clone();
            async move {
                let s = tokio::net::UnixStream::connect(p).await?;
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(s))
            }
        }))
        .await
        .expect("connect to containerd's socket")
}

/// The kubelet's default pod (a PID namespace per container, IPC shared by
/// the pod) on the node's network; it gives these to the pod and to each
/// container.
fn namespaces() -> cri::NamespaceOption {
    cri::NamespaceOption {
        network: cri::NamespaceMode::Node as i32,
        pid: cri::NamespaceMode::Container as i32,
        ipc: cri::NamespaceMode::Pod as i32,
        ..Default::default()
    }
}

fn pod_config(logs: &Path) -> cri::PodSandboxConfig {
    cri::PodSandboxConfig {
        metadata: Some(cri::PodSandboxMetadata {
            name: "airlock-pod".into(),
            uid: format!("uid-{}", std::process::id()),
            namespace: "default".into(),
            attempt: 0,
        }),
        log_directory: logs.display().to_string(),
        // The node's network with containerd's default capabilities
        // (CAP_NET_RAW) needs no acknowledgement: in the container's own
        // user namespace the kernel does not honour them there, which
        // the log says (`cap-net-inert`), as docs/kubernetes.md does.
        linux: Some(cri::LinuxPodSandboxConfig {
            security_context: Some(cri::LinuxSandboxSecurityContext {
                namespace_options: Some(namespaces()),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn container_config(name: &str, command: &[&str]) -> cri::ContainerConfig {
    cri::ContainerConfig {
        metadata: Some(cri::ContainerMetadata {
            name: name.into(),
            attempt: 0,
        }),
        image: Some(cri::ImageSpec {
            image: BUSYBOX.into(),
            ..Default::default()
        }),
        command: command.iter().map(|s| s.to_string()).collect(),
        log_path: format!("{name}.log"),
        linux: Some(cri::LinuxContainerConfig {
            security_context: Some(cri::LinuxContainerSecurityContext {
                namespace_options: Some(namespaces()),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The container's state, exit code and (from the verbose info) host pid.
async fn status(
    rt: &mut RuntimeServiceClient<Channel>,
    id: &str,
) -> (cri::ContainerState, i32, Option<u32>) {
    let r = rt
        .container_status(cri::ContainerStatusRequest {
            container_id: id.into(),
            verbose: true,
        })
        .await
        .expect("ContainerStatus")
        .into_inner();
    let s = r.status.expect("a status");
    let pid = info_pid(&r.info);
    (s.state(), s.exit_code, pid)
}

/// The kubelet's last two calls for a pod.
async fn stop_and_remove_pod(rt: &mut RuntimeServiceClient<Channel>, pod_id: &str) {
    rt.stop_pod_sandbox(cri::StopPodSandboxRequest {
        pod_sandbox_id: pod_id.into(),
    })
    .await
    .expect("StopPodSandbox");
    rt.remove_pod_sandbox(cri::RemovePodSandboxRequest {
        pod_sandbox_id: pod_id.into(),
    })
    .await
    .expect("RemovePodSandbox");
}

fn info_pid(info: &HashMap<String, String>) -> Option<u32> {
    let v: serde_json::Value = serde_json::from_str(info.get("info")?).ok()?;
    v["pid"].as_u64().map(|p| p as u32).filter(|p| *p != 0)
}

async fn wait_exited(c: &Containerd, rt: &mut RuntimeServiceClient<Channel>, id: &str) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (state, code, _) = status(rt, id).await;
        if state == cri::ContainerState::ContainerExited {
            return code;
        }
        if Instant::now() > deadline {
            let o = Command::new(runtime())
                .args(["--root", RUNTIME_ROOT, "state", id])
                .output()
                .unwrap();
            let log = c.log();
            let log: Vec<&str> = log.lines().filter(|l| !l.contains("level=info")).collect();
            panic!("{id} still {state:?}: {:?}\n{}", text(&o), log.join("\n"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The host uid of a process (the real uid on /proc/PID/status's Uid line).
fn host_uid(pid: u32) -> u32 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = s.lines().find(|l| l.starts_with("Uid:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// On the way out, pass or fail: the containers of this test's containerd
/// still known to the runtime are deleted and its shims (which outlive
/// containerd) are killed by pid, so a failed run leaves nothing.
struct Leftovers(String);

impl Drop for Leftovers {
    fn drop(&mut self) {
        let o = Command::new(runtime())
            .args(["--root", RUNTIME_ROOT, "list", "--format", "json"])
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
        for c in v.as_array().into_iter().flatten() {
            if c["bundle"].as_str().is_some_and(|b| b.starts_with(&self.0)) {
                let id = c["id"].as_str().unwrap_or_default();
                let _ = Command::new(runtime())
                    .args(["--root", RUNTIME_ROOT, "delete", "--force", id])
                    .status();
            }
        }
        // The rootfs mounts the shims made in the bundles (the temporary
        // directory cannot be removed while they are mounted).
        let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
        for m in mounts.lines().rev() {
            let Some(target) = m.split(' ').nth(1) else {
                continue;
            };
            if target.starts_with(&self.0) {
                let _ = Command::new("umount").args(["-l", target]).status();
            }
        }
        let Ok(procs) = std::fs::read_dir("/proc") else {
            return;
        };
        for p in procs.flatten() {
            let Ok(pid) = p.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let cmd = std::fs::read(p.path().join("cmdline")).unwrap_or_default();
            let cmd = String::from_utf8_lossy(&cmd);
            if cmd.starts_with("/usr/bin/containerd-shim") && cmd.contains(&self.0) {
                // SAFETY: kill has no memory effects; the pid is a shim of
                // this test's containerd.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    }
}

/// The container process's host pid, from airlock-runtime's `state`.
fn state_pid(id: &str) -> u32 {
    let o = Command::new(runtime())
        .args(["--root", RUNTIME_ROOT, "state", id])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("state {id}: {e}: {:?}", text(&o)));
    v["pid"]
        .as_u64()
        .filter(|p| *p != 0)
        .expect("a running pid") as u32
}

/// The ids airlock-runtime lists under the shim's root.
fn runtime_ids() -> Vec<String> {
    let o = Command::new(runtime())
        .args(["--root", RUNTIME_ROOT, "list", "--format", "json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["id"].as_str().map(String::from))
        .collect()
}

#[test]
fn kubelet_calls_run_a_pod_through_the_airlock_handler() {
    let Some(c) = Containerd::start("k8s.io", cri_config) else {
        return;
    };
    // The pod's infrastructure container only has to stay alive.
    c.import_busybox(
        PAUSE,
        &[r#"ENTRYPOINT ["/bin/sleep"]"#, r#"CMD ["1000000"]"#],
    );
    c.import_busybox(BUSYBOX, &[]);
    let _leftovers = Leftovers(c.dir.path().display().to_string());
    let logs = c.dir.path().join("pod-logs");
    std::fs::create_dir_all(&logs).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(pod_flow(&c, &logs));
    rt.block_on(shared_pid_flow(&c, &logs));
}

async fn pod_flow(c: &Containerd, logs: &Path) {
    let mut rt = RuntimeServiceClient::new(connect(&c.socket()).await);
    let v = rt
        .version(cri::VersionRequest {
            version: "v1".into(),
        })
        .await
        .unwrap_or_else(|e| panic!("Version: {e}\n{}", c.log()))
        .into_inner();
    assert_eq!(v.runtime_name, "containerd", "{v:?}");
    assert_eq!(v.runtime_api_version, "v1", "{v:?}");

    let pod = pod_config(logs);
    let r = rt
        .run_pod_sandbox(cri::RunPodSandboxRequest {
            config: Some(pod.clone()),
            runtime_handler: "airlock".into(),
        })
        .await;
    let pod_id = match r {
        Ok(r) => r.into_inner().pod_sandbox_id,
        Err(e) => panic!("RunPodSandbox: {e}\n{}", c.log()),
    };
    // The sandbox container is airlock's: its state is under the shim's root.
    assert!(runtime_ids().contains(&pod_id), "{:?}", runtime_ids());

    let r = rt
        .pod_sandbox_status(cri::PodSandboxStatusRequest {
            pod_sandbox_id: pod_id.clone(),
            verbose: true,
        })
        .await
        .expect("PodSandboxStatus")
        .into_inner();
    let state = r.status.as_ref().map(|s| s.state());
    assert_eq!(state, Some(cri::PodSandboxState::SandboxReady), "{r:?}");
    // The shim's pid (the --pid-file) is the container process, as
    // `state` names it.
    let given = info_pid(&r.info).expect("the verbose status names the pod's pid");
    let pause_pid = state_pid(&pod_id);
    assert_eq!(given, pause_pid);
    assert_ne!(
        host_uid(pause_pid),
        0,
        "the pause container runs as host root"
    );

    let mut ids = vec![pod_id.clone()];
    let mut pids = vec![pause_pid];
    let create = |name: &str, cmd: &[&str]| cri::CreateContainerRequest {
        pod_sandbox_id: pod_id.clone(),
        config: Some(container_config(name, cmd)),
        sandbox_config: Some(pod.clone()),
    };
    let r = rt
        .create_container(create("sleeper", &["sleep", "1000"]))
        .await;
    let sleeper = match r {
        Ok(r) => r.into_inner().container_id,
        Err(e) => panic!("CreateContainer: {e}\n{}", c.log()),
    };
    ids.push(sleeper.clone());
    assert_eq!(
        status(&mut rt, &sleeper).await.0,
        cri::ContainerState::ContainerCreated
    );
    if let Err(e) = rt
        .start_container(cri::StartContainerRequest {
            container_id: sleeper.clone(),
        })
        .await
    {
        panic!("StartContainer: {e}\n{}", c.log());
    }
    let (state, _, pid) = status(&mut rt, &sleeper).await;
    assert_eq!(state, cri::ContainerState::ContainerRunning);
    let given = pid.expect("the verbose status names the container's pid");
    let pid = state_pid(&sleeper);
    assert_eq!(given, pid);
    pids.push(pid);
    // The pod's IPC namespace is the pause container's, which containerd
    // names by the pid it was given: not the host's.
    let ipc = |p: String| std::fs::read_link(format!("/proc/{p}/ns/ipc")).unwrap();
    assert_eq!(ipc(pid.to_string()), ipc(pause_pid.to_string()));
    assert_ne!(ipc(pid.to_string()), ipc("self".into()));

    // Root inside, never the host's root outside; the node's hostname
    // (hostNetwork pods share the node's UTS namespace too).
    let r = rt
        .exec_sync(cri::ExecSyncRequest {
            container_id: sleeper.clone(),
            cmd: vec![
                "sh".into(),
                "-c".into(),
                "id -u; hostname; cat /proc/1/comm".into(),
            ],
            timeout: 10,
        })
        .await
        .expect("ExecSync")
        .into_inner();
    let out = String::from_utf8_lossy(&r.stdout);
    assert_eq!(
        r.exit_code,
        0,
        "{out} {}",
        String::from_utf8_lossy(&r.stderr)
    );
    let host_name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(out, format!("0\n{}sleep\n", host_name));
    let uid = host_uid(pid);
    assert_ne!(uid, 0, "the container's root is host uid {uid}");
    // An exec's own exit status comes back.
    let r = rt
        .exec_sync(cri::ExecSyncRequest {
            container_id: sleeper.clone(),
            cmd: vec!["sh".into(), "-c".into(), "exit 5".into()],
            timeout: 10,
        })
        .await
        .expect("ExecSync")
        .into_inner();
    assert_eq!(r.exit_code, 5);

    // A container whose command ends: exited, with its status.
    let one_shot = rt
        .create_container(create("one-shot", &["sh", "-c", "exit 7"]))
        .await
        .expect("CreateContainer")
        .into_inner()
        .container_id;
    ids.push(one_shot.clone());
    rt.start_container(cri::StartContainerRequest {
        container_id: one_shot.clone(),
    })
    .await
    .expect("StartContainer");
    assert_eq!(wait_exited(c, &mut rt, &one_shot).await, 7);

    // StopContainer: `sleep` as PID 1 ignores SIGTERM, so after the grace
    // period it is killed.
    rt.stop_container(cri::StopContainerRequest {
        container_id: sleeper.clone(),
        timeout: 1,
    })
    .await
    .expect("StopContainer");
    assert_eq!(wait_exited(c, &mut rt, &sleeper).await, 137);
    assert!(!alive(pid), "the stopped container's process {pid} is gone");

    stop_and_remove_pod(&mut rt, &pod_id).await;
    // Nothing is left: no container in the runtime's state, no state
    // directory, no process.
    let left = runtime_ids();
    for id in &ids {
        assert!(!left.contains(id), "{id} is still listed: {left:?}");
    }
    for pid in pids {
        assert!(!alive(pid), "process {pid} is left");
    }
    let o = c.ctr(&["containers", "ls", "-q"]);
    assert_eq!(text(&o).0.trim(), "", "containerd still has containers");
}

/// `shareProcessNamespace: true`: the kubelet asks for the pod's PID
/// namespace, containerd hands each container the pause container's by
/// path, and a container sees the pod's processes.
async fn shared_pid_flow(c: &Containerd, logs: &Path) {
    let mut rt = RuntimeServiceClient::new(connect(&c.socket()).await);
    let shared = |mut ns: cri::NamespaceOption| {
        ns.pid = cri::NamespaceMode::Pod as i32;
        ns
    };
    let mut pod = pod_config(logs);
    if let Some(m) = pod.metadata.as_mut() {
        m.name = "airlock-shared-pid".into();
        m.uid = format!("uid-shared-{}", std::process::id());
    }
    if let Some(sc) = pod.linux.as_mut().and_then(|l| l.security_context.as_mut()) {
        sc.namespace_options = Some(shared(namespaces()));
    }
    let pod_id = match rt
        .run_pod_sandbox(cri::RunPodSandboxRequest {
            config: Some(pod.clone()),
            runtime_handler: "airlock".into(),
        })
        .await
    {
        Ok(r) => r.into_inner().pod_sandbox_id,
        Err(e) => panic!("RunPodSandbox: {e}\n{}", c.log()),
    };
    let mut config = container_config("sharer", &["sleep", "1000"]);
    if let Some(sc) = config
        .linux
        .as_mut()
        .and_then(|l| l.security_context.as_mut())
    {
        sc.namespace_options = Some(shared(namespaces()));
    }
    let id = match rt
        .create_container(cri::CreateContainerRequest {
            pod_sandbox_id: pod_id.clone(),
            config: Some(config),
            sandbox_config: Some(pod.clone()),
        })
        .await
    {
        Ok(r) => r.into_inner().container_id,
        Err(e) => panic!("CreateContainer: {e}\n{}", c.log()),
    };
    if let Err(e) = rt
        .start_container(cri::StartContainerRequest {
            container_id: id.clone(),
        })
        .await
    {
        panic!("StartContainer: {e}\n{}", c.log());
    }
    let r = rt
        .exec_sync(cri::ExecSyncRequest {
            container_id: id.clone(),
            cmd: vec!["cat".into(), "/proc/1/cmdline".into()],
            timeout: 10,
        })
        .await
        .expect("ExecSync")
        .into_inner();
    let out = String::from_utf8_lossy(&r.stdout).replace('\0', " ");
    // PID 1 of the pod's namespace is the pause container's process.
    assert_eq!(
        out.trim(),
        "/bin/sleep 1000000",
        "{out} {}",
        String::from_utf8_lossy(&r.stderr)
    );
    let pause_ns = std::fs::read_link(format!("/proc/{}/ns/pid", state_pid(&pod_id))).unwrap();
    let app_ns = std::fs::read_link(format!("/proc/{}/ns/pid", state_pid(&id))).unwrap();
    assert_eq!(app_ns, pause_ns);
    stop_and_remove_pod(&mut rt, &pod_id).await;
    let left = runtime_ids();
    assert!(!left.contains(&id) && !left.contains(&pod_id), "{left:?}");
}
