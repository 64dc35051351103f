//! The bind rules, judged on made-up hosts.

use crate::check::tests::bind;
use crate::check::{check, Host};
use crate::spec::{Mount, SandboxSpec};

fn codes(mounts: Vec<Mount>, h: &Host) -> Vec<&'static str> {
    let mut s = SandboxSpec::builder().args(["true"]).build();
    s.filesystem.mounts = mounts;
    check(&s, h).iter().map(|f| f.code).collect()
}

#[test]
fn image_store_writable() {
    let mut h = Host {
        store: Some("/home/me/.local/share/airlock".into()),
        ..Default::default()
    };
    for (src, ro, want) in [
        // The store, a layer in it, and every ancestor: denied writable.
        ("/home/me/.local/share/airlock", false, true),
        (
            "/home/me/.local/share/airlock/layers/ab/rootfs",
            false,
            true,
        ),
        ("/home/me/.local", false, true),
        ("/home/me", false, true),
        // Read-only, or beside it: not this finding.
        ("/home/me/.local/share/airlock", true, false),
        ("/home/me/.local/share/other", false, false),
        ("/home/me/project", false, false),
    ] {
        let found = codes(vec![bind(src, "/x", ro)], &h).contains(&"image-store-writable");
        assert_eq!(found, want, "{src} readonly={ro}");
    }
    // Root's store (airlockd's by default) whoever the caller is: a
    // user's sandbox could otherwise rewrite the layers root's run.
    let f = codes(vec![bind("/var/lib/airlock/layers", "/s", false)], &h);
    assert!(f.contains(&"image-store-writable"), "{f:?}");
    // The default view, and a root caller's store under /var/lib.
    h.store = Some("/var/lib/airlock".into());
    let f = codes(vec![bind("/var/lib/airlock", "/s", false)], &h);
    assert!(f.contains(&"image-store-writable"), "{f:?}");
}

/// A runtime's state is refused as a whole and above one object's
/// level; one container's root, layer or pod's volume (what an engine
/// hands airlock-runtime) is that object alone.
#[test]
fn runtime_state_and_one_object_in_it() {
    let h = Host {
        state: [
            ("/var/lib/containers".into(), "/var/lib/containers".into()),
            ("/var/lib/kubelet".into(), "/var/lib/kubelet".into()),
        ]
        .into(),
        ..Default::default()
    };
    for (src, want) in [
        ("/var/lib/containers", true),
        ("/var/lib/containers/storage", true),
        ("/var/lib/containers/storage/overlay", true),
        ("/var/lib/containers/storage/overlay/abc/merged", false),
        (
            "/var/lib/containers/storage/overlay-containers/id/userdata/shm",
            false,
        ),
        ("/var/lib/kubelet/pods", true),
        (
            "/var/lib/kubelet/pods/uid/volumes/kubernetes.io~empty-dir/x",
            false,
        ),
        (
            "/run/containerd/io.containerd.runtime.v2.task/default",
            true,
        ),
        (
            "/run/containerd/io.containerd.runtime.v2.task/default/t1/rootfs",
            false,
        ),
        ("/run/containerd/containerd.sock", true),
        ("/etc/kubernetes/pki", true),
        ("/var/lib", true),
        // What sits beside the objects is the engine's, about all of
        // them: the overlay driver's links to every layer (later
        // containers' lower layers are mounted through them), its
        // databases, the kubelet's keys, containerd's content store.
        ("/var/lib/containers/storage/overlay/l", true),
        ("/var/lib/containers/storage/overlay/l/ABCDEF", true),
        (
            "/var/lib/containers/storage/overlay-containers/containers.json",
            true,
        ),
        ("/var/lib/containers/storage/libpod/bolt_state.db", true),
        (
            "/var/lib/containers/storage/overlay-images/images.json",
            true,
        ),
        ("/var/lib/kubelet/pki/kubelet-client-current.pem", true),
        ("/var/lib/docker/overlay2/l", true),
        ("/var/lib/docker/image/overlay2", true),
        ("/var/lib/docker/swarm/certificates", true),
        ("/var/lib/docker/volumes/metadata.db", true),
        ("/var/lib/docker/volumes/backingFsBlockDev", true),
        ("/var/lib/docker/volumes/data/_data", false),
        ("/var/lib/docker/volumes/my.data/_data", false),
        ("/var/lib/docker/rootfs/overlayfs/abc", false),
        ("/var/lib/docker/rootfs/overlayfs", true),
        ("/var/lib/docker/vfs/dir/abc", false),
        (
            "/var/lib/containers/storage/vfs-containers/abc/userdata/hosts",
            false,
        ),
        ("/var/lib/containers/storage/secrets/filedriver", true),
        (
            "/var/lib/containerd/io.containerd.snapshotter.v1.native/snapshots/12",
            false,
        ),
        (
            "/var/lib/containerd/io.containerd.snapshotter.v1.native/metadata.db",
            true,
        ),
        ("/var/lib/docker/containers/abc/hostname", false),
        (
            "/var/lib/containerd/io.containerd.content.v1.content/blobs/sha256",
            true,
        ),
        (
            "/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/12/fs",
            false,
        ),
        (
            "/var/lib/containerd/io.containerd.grpc.v1.cri/sandboxes/abc/hostname",
            false,
        ),
        (
            "/run/containerd/io.containerd.runtime.v2.task/k8s.io/abc/rootfs",
            false,
        ),
        // An object's metadata directory is bound only in parts, and
        // never the engine's own files there: docker reloads
        // hostconfig.json at its next start, a runtime reads config.json.
        ("/var/lib/docker/containers/abc", true),
        ("/var/lib/docker/containers/abc/hostconfig.json", true),
        ("/var/lib/docker/containers/abc/config.v2.json", true),
        (
            "/run/containerd/io.containerd.runtime.v2.task/k8s.io/abc/config.json",
            true,
        ),
        (
            "/var/lib/containers/storage/overlay-containers/id/userdata/config.json",
            true,
        ),
        (
            "/var/lib/containers/storage/overlay-containers/id/userdata/conmon.pid",
            true,
        ),
        ("/var/lib/kubelet/pods/uid", true),
        // podman's and CRI-O's run root, the OCI runtimes' state, etcd's
        // and k3s's; a container's userdata there is its own.
        ("/run/containers/storage", true),
        ("/run/containers/storage/overlay-containers", true),
        (
            "/run/containers/storage/overlay-containers/id/userdata/hostname",
            false,
        ),
        (
            "/run/containers/storage/overlay-containers/id/userdata/ctl",
            true,
        ),
        ("/run/libpod", true),
        ("/run/runc/abc", true),
        ("/run/crun/abc/status", true),
        ("/var/lib/etcd", true),
        ("/var/lib/rancher/k3s/server/tls", true),
        (
            "/run/k3s/containerd/io.containerd.runtime.v2.task/k8s.io/abc/rootfs",
            false,
        ),
        (
            "/var/lib/rancher/k3s/agent/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/7/fs",
            false,
        ),
    ] {
        let found = codes(vec![bind(src, "/x", true)], &h).contains(&"runtime-socket-bind");
        assert_eq!(found, want, "{src}");
    }
}

/// A runtime's state moved to another disk and linked back (a
/// symlink at /var/lib/docker) is judged where it leads, objects and
/// all.
#[test]
fn relocated_runtime_state_is_judged_where_it_leads() {
    let h = Host {
        state: [("/var/lib/docker".into(), "/data/docker".into())].into(),
        ..Default::default()
    };
    for (src, want) in [
        ("/data/docker", true),
        ("/data", true),
        ("/data/docker/image/overlay2", true),
        ("/data/docker/overlay2/l", true),
        ("/data/docker/overlay2/abc/merged", false),
        ("/data/dockerfile", false),
        ("/var/lib/docker/containers/abc/hosts", false),
    ] {
        let found = codes(vec![bind(src, "/x", true)], &h).contains(&"runtime-socket-bind");
        assert_eq!(found, want, "{src}");
    }
}
