//! aloft-agent: the node agent that owns a cluster's jobs (SkyPilot's
//! skylet and job table), run as `aloft agent <subcommand>` on the head.
//!
//! Jobs outlive the client and the daemon: every node process runs in its
//! own session, writes straight to files under `D/jobs/<id>/`, and leaves
//! its exit status in a file; a restarted daemon re-adopts them from the
//! job table.
//!
//! - [`cli`]: the clap [`AgentCommand`] the `aloft` binary mounts;
//! - [`ops`]: the short-lived commands that change state (`init`,
//!   `submit`, `cancel`, `autostop`, `shutdown`);
//! - [`daemon`]: the single daemon per state directory (lock, loop,
//!   `ensure`, autostop) and [`sched`], its FIFO gang scheduler, with
//!   [`place`] (resource accounting) and [`launch`] (task env, gang spawn);
//! - [`exec`]: the [`exec::NodeExec`] trait for running on nodes, and its
//!   local implementation;
//! - [`db`]: the SQLite job table; [`paths`]: the state directory layout;
//! - [`logs`], [`report`]: what `logs`, `queue`, `status`, `idle` print;
//! - [`cluster`], [`job`]: the cluster description and job specs/states;
//!   [`clock`]: timestamps; [`error`]: the crate's error type.

pub mod cli;
pub mod clock;
pub mod cluster;
pub mod daemon;
pub mod db;
pub mod error;
pub mod exec;
pub mod job;
pub mod launch;
pub mod logs;
pub mod ops;
pub mod paths;
pub mod place;
pub mod report;
pub mod sched;

pub use cli::AgentCommand;
pub use error::{Error, Result};
