//! airlock: a programmable Linux sandbox.
//!
//! The pipeline every surface shares:
//! [`spec`] (pure data) → [`check`] (guardrails, pure) → [`plan`] (pure) →
//! [`runner`] (the only place that makes setup syscalls, in an exec'd
//! single-threaded helper) → [`Sandbox`] (the caller's handle).
//!
//! ```no_run
//! use airlock::{Sandbox, SandboxSpec};
//! let spec = SandboxSpec::builder()
//!     .args(["sh", "-c", "id; hostname"])
//!     .default_view()
//!     .build();
//! let sandbox = Sandbox::spawn(&spec)?;
//! let status = sandbox.wait()?;
//! assert_eq!(status.code, 0);
//! # Ok::<(), airlock::Error>(())
//! ```

pub mod cgroup;
pub mod check;
mod context;
mod error;
mod exec;
pub mod fs;
pub mod image;
pub mod launch;
mod mountinfo;
pub mod namespace;
pub mod plan;
pub mod report;
pub mod runner;
mod sandbox;
pub mod seccomp;
pub mod signals;
mod spawn;
pub mod spec;
pub mod state;
mod sys;
pub mod terminal;

pub use context::{default_state_root, Context};
pub use error::{Error, ErrorKind};
pub use exec::ExecOptions;
pub use report::{Ended, ExitReport, FailureKind, SetupError};
pub use sandbox::{LifecycleOptions, Sandbox, SpawnOptions, Stopper, Supervisor};
pub use spec::SandboxSpec;
pub use sys::{preserved_fds_open, set_cpu_affinity, start_time};
