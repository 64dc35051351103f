//! The `airlock.v1.Sandboxes` service: each call checks who is asking,
//! then is argument handling over the airlock library (the launch path,
//! the state root's verbs) run on the blocking pool, since every library
//! call waits on a runner or a supervisor.

use crate::config::MAX_GRACE;
use crate::daemon::{blocking, call_slot, info, Shared};
use crate::events;
use crate::meta::{self, Meta};
use crate::peer::Peer;
use crate::status::{self, finding, from_error_for, from_state_for, invalid};
use crate::stdio;
use airlock::spec::{self, SandboxSpec};
use airlock::state::{SandboxDir, Status};
use airlock::{LifecycleOptions, Sandbox, SpawnOptions};
use airlock_client::proto::{self, sandboxes_server::Sandboxes, EventKind};
use std::time::Duration;
use tonic::{Request, Response, Status as RpcStatus, Streaming};

type Reply<T> = Result<Response<T>, RpcStatus>;

#[derive(Clone)]
pub struct Service(pub Shared);

/// The spec a request gives, or the default, least-privilege one: the
/// host's read-only system directories as the view, or, with an image,
/// nothing but the image.
fn request_spec(r: &proto::CreateRequest) -> Result<SandboxSpec, RpcStatus> {
    // It is kept (state.json, plan.json) in the state root, a tmpfs on
    // most hosts: RAM, which the per-caller limits count in sandboxes.
    if r.spec.len() > MAX_SPEC {
        return Err(invalid(
            "spec",
            format!(
                "{} bytes; a spec of at most {} KiB is taken",
                r.spec.len(),
                MAX_SPEC >> 10
            ),
        ));
    }
    if r.spec.trim().is_empty() {
        if !r.image.is_empty() {
            return Ok(SandboxSpec::default());
        }
        return Ok(SandboxSpec::builder().default_view().build());
    }
    let parsed = match proto::SpecFormat::try_from(r.format) {
        Ok(proto::SpecFormat::Json) => spec::from_json(&r.spec),
        Ok(proto::SpecFormat::Toml) => spec::from_toml(&r.spec),
        Ok(proto::SpecFormat::Auto) => spec::from_str_auto(&r.spec),
        Err(_) => return Err(invalid("format", format!("unknown format {}", r.format))),
    };
    // Named as a spec's refusals are, by the field within it.
    parsed.map_err(|e| invalid(e.named_field().unwrap_or("spec"), e.to_string()))
}

/// The largest spec a request may give.
const MAX_SPEC: usize = 1 << 20;

/// Most labels a sandbox may carry.
const MAX_LABELS: usize = 64;

/// The most bytes a sandbox's labels may hold together: each listing
/// and lookup reads and copies them for every sandbox it passes.
const MAX_LABEL_BYTES: usize = 16 << 10;

fn check_labels(labels: &std::collections::HashMap<String, String>) -> Result<(), RpcStatus> {
    if labels.len() > MAX_LABELS {
        return Err(invalid(
            "labels",
            format!("{} labels; at most {MAX_LABELS}", labels.len()),
        ));
    }
    let bytes: usize = labels.iter().map(|(k, v)| k.len() + v.len()).sum();
    if bytes > MAX_LABEL_BYTES {
        return Err(invalid(
            "labels",
            format!(
                "{bytes} bytes of keys and values; at most {} KiB",
                MAX_LABEL_BYTES >> 10
            ),
        ));
    }
    for (k, v) in labels {
        let ok = !k.is_empty()
            && k.len() <= 253
            && v.len() <= 4096
            && !k.chars().chain(v.chars()).any(char::is_control);
        if !ok {
            return Err(invalid(
                &format!("labels[{k:?}]"),
                "a label's key must be 1 to 253 characters and its value at most 4096, with no control characters",
            ));
        }
    }
    Ok(())
}

/// What a caller that is not root may not ask of the daemon, which sets
/// sandboxes up with root's credentials on the host side: to join a
/// namespace by path (the kernel would not let the caller itself), id
/// maps beyond its own id (root's subordinate ranges would apply, not
/// the caller's), an image (its layers would be read and unpacked as root),
/// an overlay's upper layer on the host (made as root), or any
/// acknowledgement when it may not acknowledge.
fn check_unprivileged(
    d: &Shared,
    peer: &Peer,
    r: &proto::CreateRequest,
    spec: &SandboxSpec,
) -> Result<(), RpcStatus> {
    // The keyring kept would be the daemon's, not the caller's: for no
    // caller, root included.
    if spec.process.keep_session_keyring {
        return Err(status::denied(
            "process.keep_session_keyring",
            "process.keep_session_keyring: a sandbox the daemon starts never keeps its session keyring (it would be the daemon's, not yours)".to_string(),
            Vec::new(),
        ));
    }
    if peer.is_root() {
        return Ok(());
    }
    let refuse = |field: &str, what: &str| {
        status::denied(
            field,
            format!(
                "{field}: uid {} may not {what} through the daemon",
                peer.uid
            ),
            Vec::new(),
        )
    };
    if !spec.namespaces.join.is_empty() {
        return Err(refuse("namespaces.join", "join namespaces by path"));
    }
    if !spec.identity.uid_map.is_empty() || !spec.identity.gid_map.is_empty() {
        return Err(refuse("identity", "give id maps (its own id is mapped)"));
    }
    // The supervisor sets it with the daemon's CAP_SYS_NICE, which the
    // caller lacks: acknowledged or not (acknowledge_uids), not for it.
    if let Some(field) = spec.process.scheduling.raised().first() {
        return Err(refuse(
            &format!("process.scheduling.{field}"),
            "raise a priority (a negative nice, a real-time policy or I/O class)",
        ));
    }
    // A warning's code unlocks nothing (its finding never refuses):
    // anyone may acknowledge it, to quiet it.
    let unlocking: Vec<&str> = spec
        .allow_unsafe
        .iter()
        .map(String::as_str)
        .filter(|c| {
            airlock::check::rule(c).is_none_or(|r| r.severity == airlock::check::Severity::Deny)
        })
        .collect();
    if !unlocking.is_empty() && !d.may_acknowledge(peer) {
        return Err(status::denied(
            "allow_unsafe",
            format!(
                "uid {} may not acknowledge {}: only root and the uids in acknowledge_uids may acknowledge a deny finding",
                peer.uid,
                unlocking.join(", ")
            ),
            Vec::new(),
        ));
    }
    // The daemon would read the image and unpack its layers as root:
    // checking first that the caller could read the path leaves the swap
    // of a link between check and use, and the links inside an image
    // directory, and the layers it unpacks are root's, which the caller's
    // sandbox cannot read anyway. Until layers are unpacked as the caller
    // (or idmapped for it), its own `airlock run --image` does this.
    if !r.image.is_empty() {
        return Err(refuse(
            "image",
            "run an image (the daemon unpacks layers as root; `airlock run --image` as the caller does it as the caller)",
        ));
    }
    // The daemon's supervisor would make `upper/` and `work/` there as
    // root, in a directory the caller may not be able to write.
    if matches!(
        spec.filesystem.root,
        airlock::spec::Root::Overlay { upper: Some(_), .. }
    ) {
        return Err(refuse(
            "filesystem.root.upper",
            "keep an overlay's upper layer on the host (the daemon would make its directories as root; `airlock run --overlay-dir` as the caller does it as the caller)",
        ));
    }
    // The same for an overlay mount's: its directories would be looked
    // up and made as root, and a refusal would describe what root sees
    // there.
    let upper = spec.filesystem.mounts.iter().position(|m| {
        matches!(
            m,
            airlock::spec::Mount::Overlay { upper_dir, work_dir, .. }
                if upper_dir.is_some() || work_dir.is_some()
        )
    });
    if let Some(i) = upper {
        return Err(refuse(
            &format!("filesystem.mounts[{i}].upper_dir"),
            "keep an overlay's upper layer on the host (the daemon would make its directories as root; `airlock run --overlay` as the caller does it as the caller)",
        ));
    }
    Ok(())
}

/// The daemon's per-sandbox limits: a spec beyond one is refused, a spec
/// without one gets it.
fn apply_limits(c: &crate::config::Config, spec: &mut SandboxSpec) -> Result<(), RpcStatus> {
    // The daemon's sandboxes share its cgroup: a weight is a claim on the
    // CPU or disk time the others lose in contention. A spec without a CPU
    // weight has the kernel's default share (100), more than a max_weight
    // below it allows: it gets max_weight. Not so the I/O weight, which
    // only hosts with a proportional I/O scheduler (BFQ, iocost) can apply
    // at all, and which would fail every start on the others.
    if spec.resources.cpu_weight.is_none() && c.max_weight < 100 {
        spec.resources.cpu_weight = Some(c.max_weight);
    }
    for (field, weight) in [
        ("resources.cpu_weight", spec.resources.cpu_weight),
        ("resources.io_weight", spec.resources.io_weight),
    ] {
        if let Some(w) = weight.filter(|w| *w > c.max_weight) {
            return Err(status::limit(
                field,
                format!(
                    "{w} is more than this daemon allows per sandbox (max_weight {}; 100 is the kernel's default share)",
                    c.max_weight
                ),
            ));
        }
    }
    if let Some(max) = c.max_memory {
        match spec.resources.memory {
            Some(m) if m.bytes() > max.bytes() => {
                return Err(status::limit(
                    "resources.memory",
                    format!("{m} is more than this daemon allows per sandbox ({max})"),
                ))
            }
            Some(_) => {}
            None => spec.resources.memory = Some(max),
        }
        // max_memory counts swap: the sandbox's memory and its swap
        // allowance together (each alone within it could be twice it).
        if let (Some(m), Some(sw)) = (spec.resources.memory, spec.resources.swap) {
            if m.bytes().saturating_add(sw.bytes()) > max.bytes() {
                return Err(status::limit(
                    "resources.swap",
                    format!(
                        "memory ({m}) and swap ({sw}) together are more than this daemon allows per sandbox ({max}, swap included)"
                    ),
                ));
            }
        }
    }
    if let Some(max) = c.max_pids {
        match spec.resources.pids {
            Some(p) if p > max => {
                return Err(status::limit(
                    "resources.pids",
                    format!("{p} is more than this daemon allows per sandbox ({max})"),
                ))
            }
            // A spec without one gets max_pids as its default limit
            // (`Context::default_pids`, see Shared::context): RLIMIT_NPROC
            // in the sandbox's own user namespace, which costs nothing at
            // start, where a cgroup would cost its creation, its removal
            // and a guard process beside every sandbox.
            _ => {}
        }
        // The spec's own nproc rlimit takes that default's place, so it
        // is bounded the same way (its hard limit: the soft one can be
        // raised up to it from inside).
        for (i, r) in spec.process.rlimits.iter().enumerate() {
            if r.resource == "nproc" && r.hard > max {
                let hard = if r.hard == u64::MAX {
                    "unlimited".to_string()
                } else {
                    r.hard.to_string()
                };
                return Err(status::limit(
                    &format!("process.rlimits[{i}] (nproc)"),
                    format!("a hard limit of {hard} is more than this daemon allows per sandbox ({max} processes)"),
                ));
            }
        }
    }
    Ok(())
}

/// The name a client asked for, as the state root keeps it (see
/// [`meta::stored_name`]); none for none.
fn stored_name(d: &Shared, peer: &Peer, name: &str) -> Result<Option<String>, RpcStatus> {
    if name.is_empty() {
        return Ok(None);
    }
    airlock::state::check_name(name).map_err(|e| status::invalid("name", e.to_string()))?;
    // Lookups try 64 hex digits as an id first: such a name could never
    // be used, and would look like another sandbox's id in a list.
    if airlock::state::is_id(name) {
        return Err(status::invalid(
            "name",
            "64 hex digits are a sandbox id, not a name",
        ));
    }
    if peer.is_root() && meta::is_a_clients(name) {
        return Err(status::invalid(
            "name",
            "names that begin u<uid>- are how the daemon keeps its clients' names",
        ));
    }
    let stored = meta::stored_name(peer.uid, name);
    if stored.len() > 64 {
        return Err(status::invalid(
            "name",
            format!(
                "at most {} characters for uid {} (the daemon keeps it as {stored:?})",
                64 - (stored.len() - name.len()),
                peer.uid
            ),
        ));
    }
    // Said here with the name as the client gave it; the library's own
    // check, which also settles a race, would name the stored one.
    if d.root.lookup(&stored).is_some() {
        return Err(status::from_state(airlock::state::StateError::NameInUse(
            name.to_string(),
        )));
    }
    Ok(Some(stored))
}

fn create(
    d: &Shared,
    peer: &Peer,
    r: proto::CreateRequest,
) -> Result<proto::CreateResponse, RpcStatus> {
    check_labels(&r.labels)?;
    // Before the spec is parsed and serialized again (a megabyte each):
    // the caller's limit on creates at once bounds that work too.
    let _slot = d.reserve(peer)?;
    let name = stored_name(d, peer, &r.name)?;
    let mut spec = request_spec(&r)?;
    if !r.args.is_empty() {
        spec.process.args = r.args.clone();
    }
    if r.tty {
        spec.process.terminal = true;
    }
    // The daemon's own environment is not the caller's, and it has no
    // other: started with none, the workload would lack what it asked for.
    // (An image's workload gets the image's instead, as locally.)
    if spec.process.inherit_env && r.image.is_empty() {
        return Err(invalid(
            "process.inherit_env",
            "the daemon has no caller's environment to inherit: give the variables in process.env",
        ));
    }
    // The spec as it is kept (state.json and plan.json, in RAM on most
    // hosts), its args merged: MAX_SPEC bounds that, not only the request's
    // spec text (a control byte in an argument takes six bytes of JSON).
    let kept = serde_json::to_vec(&spec).map_err(|e| RpcStatus::internal(e.to_string()))?;
    if kept.len() > MAX_SPEC {
        // The args' when they were merged in, else the spec's own (a
        // short TOML text whose defaults take more as JSON).
        return Err(invalid(
            if r.args.is_empty() { "spec" } else { "args" },
            format!(
                "the spec as kept (its arguments merged) takes {} bytes; at most {} KiB is taken",
                kept.len(),
                MAX_SPEC >> 10
            ),
        ));
    }
    check_unprivileged(d, peer, &r, &spec)?;
    apply_limits(&d.config, &mut spec)?;
    if let Some(nofile) = &d.nofile {
        if !spec.process.rlimits.iter().any(|r| r.resource == "nofile") {
            spec.process.rlimits.push(nofile.clone());
        }
    }
    let mut ctx = d.context(peer);
    let max = d.config.max_pids_per_caller;
    if !peer.is_root() && max > 0 {
        // Its cgroups below the caller's budget, a pids cgroup always.
        let nest = crate::budget::prepare(&d.layout, peer.uid, max).map_err(|why| {
            tracing::warn!(uid = peer.uid, "max_pids_per_caller: {why}");
            status::limit(
                "max_pids_per_caller",
                format!("this daemon keeps each user's sandboxes to {max} processes together, and cannot here: {why}"),
            )
        })?;
        d.budgets.lock().expect("budgets lock").insert(peer.uid);
        ctx.cgroup_nest = Some(nest);
        ctx.cgroup_prepare = vec!["pids".into()];
    }
    let prepared = if r.image.is_empty() {
        airlock::launch::prepare(&spec, &ctx)
    } else {
        airlock::launch::prepare_image(&spec, &r.image, &ctx)
    }
    .map_err(|e| from_error_for(peer, e))?;
    let findings: Vec<proto::Finding> = prepared.findings.iter().map(finding).collect();
    // The client may ask for smaller logs, never larger: they live in RAM.
    let log_limit = match r.log_limit {
        0 => d.config.log_limit,
        n => n.min(d.config.log_limit),
    };
    // The supervisor stays our child, for us to reap (crate::reap), while
    // there are fds to spare for it.
    let place = d.reaper.reserve();
    let m = Meta {
        owner: peer.uid,
        labels: r.labels.clone().into_iter().collect(),
        tty: spec.process.terminal,
        stdin: r.stdin,
        exit_reported: false,
    };
    let stored = name.clone();
    let opts = SpawnOptions {
        runner: d.runner.clone(),
        context: Some(ctx.clone()),
        lifecycle: Some(LifecycleOptions {
            name,
            detach: true,
            hold: !r.start,
            remove_on_exit: r.remove_on_exit,
            stdin: r.stdin,
            log_limit: Some(log_limit),
            supervisor_stays_child: place.is_some(),
            // Whose it is, there before its supervisor: a daemon that
            // crashed before writing it left a user's sandbox root's.
            files: vec![meta::file(&m)],
            ..Default::default()
        }),
        ..Default::default()
    };
    let notes = prepared.notes.clone();
    let sandbox =
        Sandbox::start_prepared(prepared.plan, &ctx, &opts).map_err(|e| from_error_for(peer, e))?;
    let sb = sandbox.state().expect("a sandbox with state").clone();
    match place {
        Some(p) => p.reap(sandbox),
        // It forked away: the library reaped what it left behind.
        None => drop(sandbox),
    }
    let st = match sb.state() {
        Ok(st) => st,
        // A `remove_on_exit` workload that already ended and took its
        // directory along: it ran, which is what was asked. The watch
        // never knew it: its whole life is announced here (under the name
        // given, else its id: a name made for it went with its state).
        Err(_) if r.remove_on_exit && !sb.dir.exists() => {
            let shown = stored.as_deref().unwrap_or(&sb.id);
            let mut life = vec![EventKind::Created];
            if r.start {
                life.push(EventKind::Started);
            }
            life.extend([EventKind::Exited, EventKind::Deleted]);
            let exit = sb.kept_end().as_ref().and_then(crate::daemon::exit_of);
            for kind in life {
                let ended = if kind == EventKind::Exited {
                    exit.clone()
                } else {
                    None
                };
                d.bus.publish(peer.uid, kind, &sb.id, shown, ended);
            }
            return Ok(proto::CreateResponse {
                sandbox: Some(proto::SandboxInfo {
                    id: sb.id.clone(),
                    name: r.name.clone(),
                    state: proto::State::Stopped as i32,
                    owner: peer.uid,
                    ..Default::default()
                }),
                findings,
                notes,
            });
        }
        Err(e) => {
            // Nothing half-created: a sandbox the daemon cannot describe goes.
            let _ = sb.delete(true);
            return Err(from_state_for(peer, e));
        }
    };
    let expected = if r.start {
        Status::Running
    } else {
        Status::Created
    };
    // Announced before the watch knows it, so `created` (and `started`)
    // come before anything the watch sees.
    d.bus
        .publish(peer.uid, EventKind::Created, &sb.id, &st.name, None);
    if r.start {
        d.bus
            .publish(peer.uid, EventKind::Started, &sb.id, &st.name, None);
    }
    events::know(d, &m, &st, expected);
    tracing::info!(id = sb.id, name = st.name, uid = peer.uid, "created");
    Ok(proto::CreateResponse {
        sandbox: Some(info(peer, &sb, &st, &m, false)),
        findings,
        notes,
    })
}

#[tonic::async_trait]
impl Sandboxes for Service {
    async fn create(&self, req: Request<proto::CreateRequest>) -> Reply<proto::CreateResponse> {
        let peer = self.0.peer(&req)?;
        let call = call_slot(&self.0, &peer)?;
        let d = self.0.clone();
        let r = req.into_inner();
        Ok(Response::new(
            call.blocking(move || create(&d, &peer, r)).await?,
        ))
    }

    async fn start(&self, req: Request<proto::SandboxRef>) -> Reply<proto::SandboxInfo> {
        let peer = self.0.peer(&req)?;
        let call = call_slot(&self.0, &peer)?;
        let d = self.0.clone();
        let key = req.into_inner().sandbox;
        let found = d.clone();
        let (sb, last, m) = call
            .blocking({
                let p = peer.clone();
                move || found.find(&p, &key)
            })
            .await?;
        let lock = locked(&sb).await?;
        call.blocking(move || {
            sb.start_holding(&lock)
                .map_err(|e| from_state_for(&peer, e))?;
            drop(lock);
            let st = state_after(&sb, last, &peer)?;
            events::observe(&d, &sb, &st);
            Ok(Response::new(info(&peer, &sb, &st, &m, false)))
        })
        .await
    }

    type ExecStream = stdio::OutputStream;

    async fn exec(&self, req: Request<Streaming<proto::ExecInput>>) -> Reply<Self::ExecStream> {
        let peer = self.0.peer(&req)?;
        stdio::exec(self.0.clone(), peer, req.into_inner()).await
    }

    type AttachStream = stdio::OutputStream;

    async fn attach(
        &self,
        req: Request<Streaming<proto::AttachInput>>,
    ) -> Reply<Self::AttachStream> {
        let peer = self.0.peer(&req)?;
        stdio::attach(self.0.clone(), peer, req.into_inner()).await
    }

    async fn signal(&self, req: Request<proto::SignalRequest>) -> Reply<proto::SandboxInfo> {
        let peer = self.0.peer(&req)?;
        let call = call_slot(&self.0, &peer)?;
        let d = self.0.clone();
        let r = req.into_inner();
        let sig = airlock::state::parse_signal(&r.signal)
            .ok_or_else(|| invalid("signal", format!("unknown signal {:?}", r.signal)))?;
        call.blocking(move || {
            let (sb, last, m) = d.find(&peer, &r.sandbox)?;
            sb.signal(sig).map_err(|e| from_state_for(&peer, e))?;
            let st = state_after(&sb, last, &peer)?;
            Ok(Response::new(info(&peer, &sb, &st, &m, false)))
        })
        .await
    }

    async fn stop(&self, req: Request<proto::StopRequest>) -> Reply<proto::SandboxInfo> {
        let peer = self.0.peer(&req)?;
        let call = call_slot(&self.0, &peer)?;
        let d = self.0.clone();
        let r = req.into_inner();
        // Bounded: a stop holds the sandbox's lock for its grace period.
        if let Some(g) = r.grace_seconds.filter(|g| *g > MAX_GRACE) {
            return Err(invalid(
                "grace_seconds",
                format!("{g} seconds; a stop waits at most {MAX_GRACE}"),
            ));
        }
        let grace = r
            .grace_seconds
            .unwrap_or(d.config.stop_grace)
            .min(MAX_GRACE);
        let grace = Duration::from_secs(grace.into());
        let found = d.clone();
        let (sb, st, m) = call
            .blocking({
                let p = peer.clone();
                move || found.find(&p, &r.sandbox)
            })
            .await?;
        // SandboxDir::stop, with its lock, grace period and wait for the
        // end awaited rather than held on a pool thread (see `locked`).
        let lock = locked(&sb).await?;
        let last = st.clone();
        // Once SIGTERM is sent the stop goes on to its end in a task of its
        // own: a client that goes away during the grace period must not
        // leave the workload terminated but never killed.
        let (stopping, held) = (sb.clone(), call.clone());
        let stop = tokio::spawn(async move {
            let sb = stopping;
            let term = sb.clone();
            let terminated = held
                .blocking(move || term.terminate().map_err(status::from_state))
                .await?;
            let deadline = tokio::time::Instant::now() + grace;
            if !(terminated && ended(&sb, st.supervisor_pid, Some(deadline)).await) {
                held.blocking(move || sb.kill_all().map_err(status::from_state))
                    .await?;
            }
            drop(lock);
            Ok::<(), RpcStatus>(())
        });
        stop.await
            .map_err(|e| RpcStatus::internal(format!("the stop's task failed: {e}")))??;
        call.blocking(move || {
            let st = state_after(&sb, last, &peer)?;
            events::observe(&d, &sb, &st);
            Ok(Response::new(info(&peer, &sb, &st, &m, false)))
        })
        .await
    }

    async fn delete(&self, req: Request<proto::DeleteRequest>) -> Reply<proto::DeleteResponse> {
        let peer = self.0.peer(&req)?;
        let call = call_slot(&self.0, &peer)?;
        let d = self.0.clone();
        let r = req.into_inner();
        let delete =
            move |d: &Shared, peer: &Peer, sb: SandboxDir, lock: std::fs::File, m: Meta| {
                events::deleting(d, &sb.id, true);
                let st = sb.delete_holding(&lock, r.force).map_err(|e| {
                    events::deleting(d, &sb.id, false);
                    from_state_for(peer, e)
                })?;
                // `exited` (if nobody reported it yet), then `deleted`.
                events::gone(d, &sb.id, Some(&st));
                Ok(Response::new(proto::DeleteResponse {
                    id: sb.id,
                    name: meta::name_for(peer, m.owner, &st.name).to_string(),
                }))
            };
        // Found, locked and deleted in one trip to the blocking pool when
        // nobody holds the lock (each trip is a thread's wakeup, a few per
        // cent of the daemon's CPU per sandbox); a held lock is awaited
        // here rather than on a pool thread (see `locked`).
        let found = call
            .blocking({
                let (d, peer) = (d.clone(), peer.clone());
                move || {
                    let (sb, _, m) = d.find(&peer, &r.sandbox)?;
                    match sb.try_lock().map_err(status::from_state)? {
                        Some(lock) => delete(&d, &peer, sb, lock, m).map(Ok),
                        None => Ok(Err((sb, m, delete))),
                    }
                }
            })
            .await?;
        let (sb, m, delete) = match found {
            Ok(deleted) => return Ok(deleted),
            Err(held) => held,
        };
        let lock = locked(&sb).await?;
        call.blocking(move || delete(&d, &peer, sb, lock, m)).await
    }

    async fn list(&self, req: Request<proto::ListRequest>) -> Reply<proto::ListResponse> {
        let peer = self.0.peer(&req)?;
        let call = call_slot(&self.0, &peer)?;
        let d = self.0.clone();
        let r = req.into_inner();
        // A state no sandbox can have matched none, silently: a caller's
        // typo (or a newer client's state) listed nothing.
        for (i, s) in r.states.iter().enumerate() {
            match proto::State::try_from(*s) {
                Ok(proto::State::Unspecified) | Err(_) => {
                    return Err(invalid(
                        &format!("states[{i}]"),
                        format!("{s} is no sandbox state (creating, created, running, stopped)"),
                    ))
                }
                Ok(_) => {}
            }
        }
        call.blocking(move || {
            let sandboxes = d
                .visible(&peer)
                .iter()
                .map(|(sb, st, m)| info(&peer, sb, st, m, false))
                .filter(|i| r.states.is_empty() || r.states.contains(&i.state))
                .filter(|i| r.labels.iter().all(|(k, v)| i.labels.get(k) == Some(v)))
                .collect();
            Ok(Response::new(proto::ListResponse { sandboxes }))
        })
        .await
    }

    async fn inspect(&self, req: Request<proto::SandboxRef>) -> Reply<proto::SandboxInfo> {
        let peer = self.0.peer(&req)?;
        let call = call_slot(&self.0, &peer)?;
        let d = self.0.clone();
        let key = req.into_inner().sandbox;
        call.blocking(move || {
            let (sb, st, m) = d.find(&peer, &key)?;
            Ok(Response::new(info(&peer, &sb, &st, &m, true)))
        })
        .await
    }

    async fn wait(&self, req: Request<proto::SandboxRef>) -> Reply<proto::SandboxInfo> {
        let peer = self.0.peer(&req)?;
        let d = self.0.clone();
        let key = req.into_inner().sandbox;
        // Held until the end: a pidfd of ours, and a task, while it waits.
        let _slot = crate::daemon::stream_slot(&d, &peer)?;
        // Root's sandbox is found here, by its name or id: a trip to the
        // blocking pool costs a thread's wakeup, a few per cent of the
        // daemon's CPU per sandbox. Another caller's state, which holds a
        // spec of up to MAX_SPEC, is parsed there, under its call limit,
        // not on one of the few workers every stream shares.
        let found = match peer.is_root() {
            true => d.lookup(&peer, &key),
            false => None,
        };
        let (sb, st, m) = match found {
            Some(found) => found,
            None => {
                call_slot(&d, &peer)?
                    .blocking({
                        let (d, p) = (d.clone(), peer.clone());
                        move || d.find(&p, &key)
                    })
                    .await?
            }
        };
        ended(&sb, st.supervisor_pid, None).await;
        let name = crate::meta::name_for(&peer, m.owner, &st.name).to_string();
        // On the blocking pool too, but outside the call limit: a wait
        // that waited must not end in "too many calls".
        let st = blocking({
            let sb = sb.clone();
            move || status::state_at_end(&sb, &name)
        })
        .await?;
        Ok(Response::new(info(&peer, &sb, &st, &m, false)))
    }

    async fn stats(&self, req: Request<proto::SandboxRef>) -> Reply<proto::StatsResponse> {
        let peer = self.0.peer(&req)?;
        let call = call_slot(&self.0, &peer)?;
        let d = self.0.clone();
        let key = req.into_inner().sandbox;
        call.blocking(move || {
            let (sb, st, _) = d.find(&peer, &key)?;
            let s = st.stats();
            // Without a cgroup pids limit, the default one is the
            // workload's RLIMIT_NPROC in its own user namespace.
            let pids_limit = match s.pids_limit {
                0 => sb.plan().ok().map_or(0, |p| {
                    p.process
                        .rlimits
                        .iter()
                        .find(|r| r.0 == libc::RLIMIT_NPROC as i32)
                        .map_or(0, |r| r.1)
                }),
                n => n,
            };
            Ok(Response::new(proto::StatsResponse {
                id: sb.id,
                memory_bytes: s.memory_bytes,
                memory_limit: s.memory_limit,
                memory_peak: s.memory_peak,
                cpu_usec: s.cpu_usec,
                pids: s.pids,
                pids_limit,
                io_read_bytes: s.io_read_bytes,
                io_write_bytes: s.io_write_bytes,
                oom_kills: s.oom_kills,
                timestamp: airlock::state::now(),
                cgroup: st.cgroup.is_some(),
            }))
        })
        .await
    }

    type LogsStream = stdio::LogStream;

    async fn logs(&self, req: Request<proto::LogsRequest>) -> Reply<Self::LogsStream> {
        let peer = self.0.peer(&req)?;
        stdio::logs(self.0.clone(), peer, req.into_inner()).await
    }

    type EventsStream = stdio::EventStream;

    async fn events(&self, req: Request<proto::EventsRequest>) -> Reply<Self::EventsStream> {
        let peer = self.0.peer(&req)?;
        stdio::events(self.0.clone(), peer, req.into_inner()).await
    }

    async fn version(&self, req: Request<proto::Empty>) -> Reply<proto::VersionResponse> {
        self.0.peer(&req)?;
        Ok(Response::new(proto::VersionResponse {
            version: env!("CARGO_PKG_VERSION").into(),
            api: "airlock.v1".into(),
        }))
    }

    async fn health(&self, req: Request<proto::Empty>) -> Reply<proto::HealthResponse> {
        let peer = self.0.peer(&req)?;
        let call = call_slot(&self.0, &peer)?;
        let d = self.0.clone();
        call.blocking(move || {
            // What the caller may see: another user's sandboxes are not
            // counted for it, as List does not show them.
            let all = d.visible(&peer);
            let running = all
                .iter()
                .filter(|(_, s, _)| s.status == Status::Running)
                .count();
            Ok(Response::new(proto::HealthResponse {
                serving: true,
                sandboxes: all.len() as u32,
                running: running as u32,
            }))
        })
        .await
    }
}

/// The sandbox's lock, awaited. A stop holds it through its grace period
/// (up to MAX_GRACE): a call that waited for it on one of the blocking
/// pool's threads would keep that thread, and a caller asking again and
/// again could take every one of them, stalling every other caller's
/// calls (root's included) until the grace ran out.
/// `sb`'s state after a verb that did what it was asked (a start, a
/// signal, a stop), or `last` as stopped when the sandbox ended and was
/// removed at its end (`remove_on_exit`) meanwhile: a killed `--rm`
/// sandbox is gone by the time the reply is made, which is no error.
fn state_after(
    sb: &SandboxDir,
    last: airlock::state::State,
    peer: &Peer,
) -> Result<airlock::state::State, RpcStatus> {
    match sb.state() {
        Ok(st) => Ok(st),
        Err(_) if !sb.dir.exists() => Ok(airlock::state::State {
            status: Status::Stopped,
            ..last
        }),
        Err(e) => Err(from_state_for(peer, e)),
    }
}

async fn locked(sb: &airlock::state::SandboxDir) -> Result<std::fs::File, RpcStatus> {
    let mut pause = Duration::from_millis(1);
    loop {
        if let Some(lock) = sb.try_lock().map_err(status::from_state)? {
            return Ok(lock);
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// Wait until the sandbox has ended or `deadline` has passed; true if it
/// has. Awaited, not a blocked thread: a client that goes away ends it.
/// The supervisor's pidfd wakes us as it exits, which is when most
/// sandboxes end; the `alive` lock (the supervisor's and its guard's) is
/// what says so, checked at growing intervals in case the guard outlives
/// the supervisor for a moment or the pid was already someone else's.
async fn ended(
    sb: &airlock::state::SandboxDir,
    supervisor_pid: Option<i32>,
    deadline: Option<tokio::time::Instant>,
) -> bool {
    let mut exited = supervisor_pid.and_then(supervisor_exit);
    let mut pause = Duration::from_millis(1);
    while sb.alive() {
        let now = tokio::time::Instant::now();
        if deadline.is_some_and(|d| now >= d) {
            return false;
        }
        let step = deadline.map_or(pause, |d| pause.min(d - now));
        match &exited {
            Some(fd) => {
                if tokio::time::timeout(step, fd.readable()).await.is_ok() {
                    exited = None;
                }
            }
            None => tokio::time::sleep(step).await,
        }
        pause = (pause * 2).min(Duration::from_millis(50));
    }
    true
}

/// A pidfd of the sandbox's supervisor that becomes readable when it
/// exits, if it is still there.
fn supervisor_exit(pid: i32) -> Option<tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>> {
    let pid = rustix::process::Pid::from_raw(pid)?;
    let fd = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::NONBLOCK).ok()?;
    // SAFETY: the AsyncFd owns the OwnedFd, whose raw fd never changes and
    // is closed only when the AsyncFd drops it, after deregistering it.
    unsafe { tokio::io::unix::AsyncFd::register(fd) }.ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use airlock::spec::Rlimit;

    #[test]
    fn labels_are_bounded_in_number_and_in_bytes() {
        let labels = |n: usize, len: usize| -> std::collections::HashMap<String, String> {
            (0..n).map(|i| (format!("k{i}"), "v".repeat(len))).collect()
        };
        assert!(check_labels(&labels(64, 200)).is_ok());
        let e = check_labels(&labels(65, 1)).unwrap_err();
        assert!(e.message().contains("65 labels"), "{}", e.message());
        // 64 values of 4096 bytes each pass one by one, not together.
        let e = check_labels(&labels(64, 4096)).unwrap_err();
        assert!(e.message().contains("at most 16 KiB"), "{}", e.message());
    }

    fn limits(spec: &mut SandboxSpec) -> Result<(), String> {
        let c = crate::config::Config {
            max_pids: Some(100),
            max_memory: Some(spec::Size(64 << 20)),
            ..Default::default()
        };
        apply_limits(&c, spec).map_err(|e| e.message().to_string())
    }

    fn nproc(hard: u64) -> SandboxSpec {
        let mut s = SandboxSpec::default();
        s.process.rlimits = vec![
            Rlimit {
                resource: "nofile".into(),
                soft: 1 << 20,
                hard: 1 << 20,
            },
            Rlimit {
                resource: "nproc".into(),
                soft: 10,
                hard,
            },
        ];
        s
    }

    #[test]
    fn the_daemons_limits_bound_the_spec_and_fill_what_it_leaves_out() {
        let mut s = SandboxSpec::default();
        limits(&mut s).unwrap();
        assert_eq!(s.resources.memory, Some(spec::Size(64 << 20)));
        s.resources.memory = Some(spec::Size(1 << 30));
        assert!(limits(&mut s).unwrap_err().contains("resources.memory"));
        let mut s = SandboxSpec::default();
        s.resources.pids = Some(101);
        assert!(limits(&mut s).unwrap_err().contains("resources.pids"));
        let mut s = SandboxSpec::default();
        s.resources.cpu_weight = Some(100);
        s.resources.io_weight = Some(50);
        limits(&mut s).unwrap();
        s.resources.io_weight = Some(101);
        let e = limits(&mut s).unwrap_err();
        assert!(e.contains("101") && e.contains("max_weight 100"), "{e}");
        // Below the kernel's default share, a spec without a CPU weight
        // gets the maximum, as it does a memory or pids limit.
        let c = crate::config::Config {
            max_weight: 20,
            ..Default::default()
        };
        let mut s = SandboxSpec::default();
        apply_limits(&c, &mut s).unwrap();
        assert_eq!(s.resources.cpu_weight, Some(20));
        assert_eq!(s.resources.io_weight, None);
    }

    #[test]
    fn an_nproc_rlimit_is_bounded_like_the_pids_limit_it_replaces() {
        limits(&mut nproc(100)).unwrap();
        let e = limits(&mut nproc(90_000)).unwrap_err();
        assert!(
            e.contains("process.rlimits[1] (nproc)")
                && e.contains("90000")
                && e.contains("(100 processes)"),
            "{e}"
        );
        let e = limits(&mut nproc(u64::MAX)).unwrap_err();
        assert!(e.contains("unlimited"), "{e}");
    }
}
