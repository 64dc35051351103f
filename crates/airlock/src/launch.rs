//! The one launch path every surface shares: spec + [`Context`] →
//! (image) → validate → guardrails → host probe → plan, each exactly once.
//! `airlock run`, the library's [`crate::Sandbox::spawn`] and the
//! lifecycle verbs all come through here; the runner then executes the
//! plan and decides nothing.
//!
//! An image is a parameter of the launch ([`prepare_image`]), not a field
//! of [`SandboxSpec`]. The spec says what runs, completely, like an OCI
//! `config.json`: the OCI runtime is handed bundles whose root is already
//! unpacked, so an image field would be dead weight there; a daemon gets
//! the image beside the container's settings (as CRI's CreateContainer
//! does) and keeps the resolved spec in the sandbox's state, so `inspect`
//! shows the layers that ran and a restart never resolves a tag again to
//! something else. The image step comes first because it supplies what
//! validation needs (the program, the root); what the image unpacks goes
//! to the store, a cache that a later refusal leaves as it is (as `podman
//! run` pulls before it creates).

use crate::check::{self, Finding, Host};
use crate::image::{self, Store};
use crate::plan::{self, Plan};
use crate::spec::SandboxSpec;
use crate::{Context, Error};

/// A spec that passed, resolved into the plan the runner carries out.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub plan: Plan,
    /// Every finding, the acknowledged and the warnings included, for the
    /// front end to show.
    pub findings: Vec<Finding>,
    /// What unpacking the image neutralised (an absolute path made
    /// relative, a device node skipped), for the front end to show.
    pub notes: Vec<String>,
}

/// Validate `spec`, judge it with the guardrails against the host as
/// `ctx` sees it, and plan it. A refusal carries every finding
/// ([`Error::Refused`]); nothing has been created either way.
pub fn prepare(spec: &SandboxSpec, ctx: &Context) -> Result<Prepared, Error> {
    // Validation first: the guardrails judge only specs that make sense.
    let mut plan = plan::plan(spec, ctx)?;
    let host = Host::probe(spec, ctx).map_err(|source| Error::Io {
        what: "look at the host with the caller's file-system ids",
        source,
    })?;
    let findings = check::enforce(spec, &host)?;
    // A network namespace joined by path that is the caller's own is the
    // host's as much as a shared one: its abstract sockets out of reach.
    if host.joins_own_net {
        if let Some(l) = plan.walls.landlock.as_mut() {
            l.scope_abstract_unix = true;
        }
    }
    plan.host = host;
    Ok(Prepared {
        plan,
        findings,
        notes: Vec::new(),
    })
}

/// [`prepare`] a sandbox built from the image at `reference` (`PATH`,
/// `PATH:TAG` or `PATH@sha256:...`; see [`resolve_image`]).
pub fn prepare_image(
    spec: &SandboxSpec,
    reference: &str,
    ctx: &Context,
) -> Result<Prepared, Error> {
    let resolved = resolve_image(spec, reference, ctx)?;
    let mut prepared = prepare(&resolved.spec, ctx)?;
    prepared.notes = resolved.notes;
    Ok(prepared)
}

/// A spec with an image made its root and defaults.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub spec: SandboxSpec,
    /// What unpacking the image neutralised.
    pub notes: Vec<String>,
}

/// The image step alone (for a front end that shows the resulting spec
/// without launching it): pull the image at `reference` into the store
/// `ctx.store`, owned by the host ids the sandbox's root will map to, and
/// apply it to `spec` as [`image::apply`] describes: the image gives the
/// defaults, what `spec` sets wins.
pub fn resolve_image(
    spec: &SandboxSpec,
    reference: &str,
    ctx: &Context,
) -> Result<Resolved, Error> {
    let in_image = |e: image::ImageError| e.context(format!("image {reference}"));
    // A root the image would replace is refused before anything is unpacked.
    image::upper_size(spec).map_err(in_image)?;
    image::check_id_bases(spec, ctx.caller).map_err(in_image)?;
    let id_base = image::id_base(spec, ctx.caller);
    let mut store = Store::open_for(&ctx.store, id_base).map_err(|e| e.context("image store"))?;
    store.limits = ctx.image_limits;
    let pulled = image::pull(reference, &store, id_base).map_err(in_image)?;
    let mut spec = spec.clone();
    image::apply(&mut spec, &pulled).map_err(in_image)?;
    Ok(Resolved {
        spec,
        notes: pulled.notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    fn ctx(store: &std::path::Path) -> Context {
        let mut ctx = Context::for_ids(0, 0);
        ctx.store = store.to_path_buf();
        ctx
    }

    fn scratch(name: &str) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("airlock-launch-{name}-{}", std::process::id()))
    }

    #[test]
    fn a_root_the_image_would_replace_is_refused_before_the_store_is_touched() {
        let store = scratch("root");
        let spec = SandboxSpec::builder().rootfs("/srv/root", true).build();
        let e = prepare_image(&spec, "/no/such/img", &ctx(&store)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(
            e.to_string()
                .starts_with("image /no/such/img: filesystem.root: "),
            "{e}"
        );
        assert!(!store.exists(), "the store was created");
    }

    #[test]
    fn a_missing_image_is_not_found() {
        let store = scratch("missing");
        let spec = SandboxSpec::default();
        let e = prepare_image(&spec, "/no/such/img:v1", &ctx(&store)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert_eq!(e.exit_code(), 125);
        assert_eq!(
            e.to_string(),
            "image /no/such/img:v1: /no/such/img: no such file or directory"
        );
        crate::fs::remove_tree(&store);
    }

    #[test]
    fn an_unusable_store_names_itself() {
        let e = prepare_image(
            &SandboxSpec::default(),
            "/no/such/img",
            &ctx(std::path::Path::new("/proc/airlock-store")),
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("image store: /proc/airlock-store: "),
            "{e}"
        );
        assert_eq!(e.kind(), ErrorKind::Internal);
    }
}
