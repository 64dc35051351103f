use super::super::oci::Image;
use super::scratch::*;
use super::*;

/// A parent of the store that was missing when it was looked at, and
/// that another user made before it was made (under a sticky /tmp),
/// is refused as one that was there would be, not built into: that
/// user could swap the store's directories under root.
#[test]
fn a_parent_another_user_made_meanwhile_is_refused() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("SKIPPED a_parent_another_user_made_meanwhile_is_refused: needs root (chown)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let theirs = dir.path().join("shared");
    let r = Store::open_racing(theirs.join("store"), None, || {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir(&theirs).unwrap();
        std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).unwrap();
        std::fs::set_permissions(&theirs, std::fs::Permissions::from_mode(0o777)).unwrap();
    });
    let Err(e) = r else {
        panic!("the store was made in another user's directory");
    };
    assert!(
        e.to_string().contains("another user could replace it"),
        "{e}"
    );
    assert!(!theirs.join("store").exists());
}

/// A record that cannot be parsed stops a prune, naming it: taken for
/// absent, the layers of its image were removed from under it.
#[test]
fn a_prune_keeps_everything_while_a_record_cannot_be_read() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("store")).unwrap();
    let (used, unused) = ("ab".repeat(32), "cd".repeat(32));
    let layer = |hex: &str| store.root.join("layers").join(format!("{hex}-plain"));
    for hex in [&used, &unused] {
        std::fs::create_dir_all(layer(hex).join("rootfs")).unwrap();
    }
    let images = store.root.join("images");
    std::fs::create_dir_all(&images).unwrap();
    let record = ImageRecord {
        id: format!("sha256:{}", "ef".repeat(32)),
        name: "kept".into(),
        source: "/nowhere".into(),
        layers: vec![format!("sha256:{used}")],
    };
    std::fs::write(
        images.join(format!("{}.json", "ef".repeat(32))),
        serde_json::to_vec(&record).unwrap(),
    )
    .unwrap();
    let broken = images.join(format!("{}.json", "12".repeat(32)));
    std::fs::write(&broken, "{\"id\": ").unwrap();
    let e = store.prune().unwrap_err().to_string();
    assert!(e.contains(&broken.display().to_string()), "{e}");
    assert!(layer(&used).exists() && layer(&unused).exists());
    // `ls` still shows what it can read.
    assert_eq!(store.images().len(), 1);
    std::fs::remove_file(&broken).unwrap();
    assert_eq!(store.prune().unwrap(), 1);
    assert!(layer(&used).exists() && !layer(&unused).exists());
}

/// A prune waiting for the store's lock holds back pulls that come
/// after it: with flock alone they took the shared lock past it, and
/// pulls that overlapped kept it waiting for good.
#[test]
fn a_waiting_prune_goes_before_later_pulls() {
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("store")).unwrap();
    let order = AtomicUsize::new(0);
    let (mut prune_at, mut pull_at) = (0, 0);
    std::thread::scope(|s| {
        let first = store.lock(false).unwrap();
        let prune = s.spawn(|| {
            let _l = store.lock(true).unwrap();
            order.fetch_add(1, SeqCst) + 1
        });
        // Time enough for the prune to wait on the store's lock.
        std::thread::sleep(std::time::Duration::from_millis(300));
        let pull = s.spawn(|| {
            let _l = store.lock(false).unwrap();
            order.fetch_add(1, SeqCst) + 1
        });
        std::thread::sleep(std::time::Duration::from_millis(300));
        assert_eq!(order.load(SeqCst), 0, "a later pull went past the prune");
        drop(first);
        prune_at = prune.join().unwrap();
        pull_at = pull.join().unwrap();
    });
    assert_eq!((prune_at, pull_at), (1, 2));
    // Held back for a bounded time only: a pull that keeps the lock (one
    // stopped) fails the prune, naming the store, and lets starts on.
    let held = store.lock(false).unwrap();
    let e = store
        .lock_within(true, std::time::Duration::from_millis(300))
        .unwrap_err();
    assert!(e.to_string().contains("is busy"), "{e}");
    let _another = store.lock(false).unwrap();
    drop(held);
}

/// A name several images have (each layout's `latest`) is refused by
/// `remove`, naming their ids; an id removes one.
#[test]
fn a_name_of_several_images_removes_none() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("store")).unwrap();
    let images = store.root.join("images");
    std::fs::create_dir_all(&images).unwrap();
    for hex in ["ab".repeat(32), "cd".repeat(32)] {
        let record = ImageRecord {
            id: format!("sha256:{hex}"),
            name: "latest".into(),
            source: format!("/layouts/{hex}"),
            layers: Vec::new(),
        };
        std::fs::write(
            images.join(format!("{hex}.json")),
            serde_json::to_vec(&record).unwrap(),
        )
        .unwrap();
    }
    let e = store.remove("latest").unwrap_err().to_string();
    assert!(
        e.contains("names 2 images") && e.contains("abababababab"),
        "{e}"
    );
    assert_eq!(store.images().len(), 2);
    assert_eq!(store.remove("cdcdcd").unwrap(), 1);
    assert_eq!(store.remove("latest").unwrap(), 1);
    assert!(store.images().is_empty());
}

/// A prune removes what it chose after letting go of the store's
/// lock: pulls and starts wait only for the renames, not for the
/// removal of every tree. A dead pull's leftover in tmp/ goes too; a
/// living process's stays.
#[test]
fn a_prune_removes_its_trees_outside_the_store_lock() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("store")).unwrap();
    let layer = store
        .root
        .join("layers")
        .join(format!("{}-plain", "ab".repeat(32)));
    std::fs::create_dir_all(layer.join("rootfs/usr/lib")).unwrap();
    std::fs::write(layer.join("rootfs/usr/lib/big"), "x").unwrap();
    let tmp = store.root.join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    // pid 4194304 is past PID_MAX_LIMIT: no process has it.
    let dead = tmp.join("unpack-4194304-1-0");
    let alive = tmp.join(format!(
        "unpack-{}-1-0",
        std::os::unix::process::parent_id()
    ));
    // What a prune of an earlier process of our pid left goes too.
    let earlier = tmp.join(format!("pruned-{}-1-0", std::process::id()));
    for d in [&dead, &alive, &earlier] {
        std::fs::create_dir(d).unwrap();
    }
    // A living writer holds its directory's lock.
    let at_work = claim(&alive);
    assert!(matches!(at_work, Claim::Taken(_)));
    let mut seen = None;
    let n = store
        .prune_then(|| {
            let lock = crate::fs::open_lock_file(&store.root.join("lock")).unwrap();
            let shared = rustix::fs::FlockOperation::NonBlockingLockShared;
            let names: Vec<String> = std::fs::read_dir(&tmp)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            // A while: a child another test forks holds a copy of
            // every descriptor of ours until its exec.
            let free = (0..200).any(|_| {
                let taken = rustix::fs::flock(&lock, shared).is_ok();
                if !taken {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                taken
            });
            // The layer moved aside is still locked as it goes: a
            // start that opened it by its old name is refused.
            let moved = names
                .iter()
                .map(|n| tmp.join(n).join("rootfs"))
                .find(|r| r.exists())
                .expect("the layer in tmp/");
            let pinned = open_dir(&moved).is_ok_and(|fd| {
                rustix::fs::flock(&fd, rustix::fs::FlockOperation::NonBlockingLockShared).is_err()
            });
            assert!(pinned, "the layer's lock was let go before its removal");
            seen = Some((free, layer.exists(), names));
        })
        .unwrap();
    let (free, layer_there, names) = seen.unwrap();
    assert!(
        free,
        "the store's lock was still held while trees were removed"
    );
    assert!(!layer_there, "the layer was still in layers/");
    assert_eq!(
        names.iter().filter(|n| n.starts_with("pruned-")).count(),
        3,
        "{names:?}"
    );
    assert_eq!(n, 3);
    let left: Vec<_> = std::fs::read_dir(&tmp)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(left, [alive]);
}

/// A pull at work in another pid namespace (its pid, in the name,
/// names no process here) keeps its scratch directory: it holds the
/// directory's lock, which neither a sweep nor a prune takes. Once it
/// lets go, both do.
#[test]
fn a_scratch_whose_maker_holds_it_stays_wherever_its_pid_is() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("store")).unwrap();
    let tmp = store.root.join("tmp");
    // pid 4194304 is past PID_MAX_LIMIT: no process here has it.
    let theirs = tmp.join("unpack-4194304-1-0");
    let at_work = store.scratch("unpack").unwrap();
    std::fs::rename(at_work.path(), &theirs).unwrap();
    std::fs::write(theirs.join("half-unpacked"), "x").unwrap();
    store.sweep_scratch();
    assert!(theirs.join("half-unpacked").exists(), "swept while held");
    assert_eq!(store.prune().unwrap(), 0);
    assert!(theirs.join("half-unpacked").exists(), "pruned while held");
    drop(at_work);
    // A child another test forks holds a copy of every descriptor of
    // ours until its exec: a while.
    let gone = (0..200).any(|_| {
        store.sweep_scratch();
        let gone = !theirs.exists();
        if !gone {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        gone
    });
    assert!(gone, "an abandoned scratch was not swept");
}

/// A note goes to a terminal: what its file holds cannot drive it.
#[test]
fn layer_notes_come_with_control_characters_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("store")).unwrap();
    let layer = dir.path().join("layer");
    std::fs::create_dir_all(layer.join("rootfs")).unwrap();
    let meta = serde_json::json!({
        "diff_id": "sha256:00",
        "digest": null,
        "notes": ["\u{1b}]0;owned\u{7}\u{1b}[2Jcleared"],
    });
    std::fs::write(layer.join("meta.json"), meta.to_string()).unwrap();
    let notes = store.layer_notes(&layer.join("rootfs"));
    assert_eq!(notes, ["\\u{1b}]0;owned\\u{7}\\u{1b}[2Jcleared"]);
}

/// Images pulled without a name are recorded as "": an empty argument
/// names none of them, and is refused rather than forgetting them all.
#[test]
fn an_empty_name_removes_no_image() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("store")).unwrap();
    for hex in ["aa", "bb"] {
        let image = Image {
            id: format!("sha256:{}", hex.repeat(32)),
            name: String::new(),
            config: Default::default(),
            layers: Vec::new(),
        };
        store.record(&image, "/src").unwrap();
    }
    let err = store.remove("").unwrap_err().to_string();
    assert!(err.contains("empty name"), "{err}");
    assert_eq!(store.images().len(), 2);
    assert_eq!(store.remove(&"aa".repeat(4)).unwrap(), 1);
    assert_eq!(store.images().len(), 1);
}

/// The sweep reads the owner back from the name `scratch` gives (a
/// prefix with dashes of its own too): a pull that was killed is
/// known as gone, not as a name of another form.
#[test]
fn a_scratch_names_its_process() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("store")).unwrap();
    for prefix in ["abcd", "sha256-ab-cd"] {
        let made = store.scratch(prefix).unwrap();
        let name = made.path().file_name().unwrap().to_str().unwrap();
        assert!(scratch_owner(name) == Owner::Ours, "{name}");
        let mut gone = std::process::Command::new("true").spawn().unwrap();
        let dead = gone.id().to_string();
        gone.wait().unwrap();
        let theirs = name.replacen(
            &format!("-{}-", std::process::id()),
            &format!("-{dead}-"),
            1,
        );
        assert!(scratch_owner(&theirs) == Owner::Gone, "{theirs}");
    }
    assert!(scratch_owner("abcd-1-2") == Owner::Unknown);
}
