//! The crate's one error type.

use std::path::PathBuf;

/// What went wrong in an agent command. Messages end with a `hint:` line
/// when there is an obvious next step.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file or directory operation failed.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What we were doing ("reading", "creating", ...).
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The job database failed.
    #[error("job database {}: {source}", path.display())]
    Db {
        /// `D/agent.db`.
        path: PathBuf,
        /// The SQLite error.
        source: rusqlite::Error,
    },
    /// The database was written by a newer aloft.
    #[error("job database {} has schema version {found}, newer than this aloft knows ({known})\nhint: upgrade aloft on the head node", path.display())]
    DbTooNew {
        /// `D/agent.db`.
        path: PathBuf,
        /// Its `user_version`.
        found: i64,
        /// The newest this build knows.
        known: i64,
    },
    /// JSON given on the command line (or stored) did not parse.
    #[error("invalid {what} JSON: {source}")]
    Json {
        /// "cluster", "job spec", ...
        what: &'static str,
        /// The parse error.
        source: serde_json::Error,
    },
    /// The cluster description is not usable.
    #[error("invalid cluster description: {0}")]
    InvalidCluster(String),
    /// The job spec is not usable on this cluster.
    #[error("invalid job spec: {0}")]
    InvalidSpec(String),
    /// `init` was never run on this state directory.
    #[error("no cluster is initialized in {}\nhint: run `aloft agent init --dir {} --cluster JSON` first", dir.display(), dir.display())]
    NotInitialized {
        /// The state directory.
        dir: PathBuf,
    },
    /// No job has this id.
    #[error("job {id} not found on cluster {cluster}\nhint: `aloft agent queue --dir DIR --all` lists the jobs")]
    JobNotFound {
        /// The id asked for.
        id: i64,
        /// The cluster's name.
        cluster: String,
    },
    /// `cancel` was given neither job ids nor `--all`.
    #[error("no job to cancel\nhint: name job ids or pass --all")]
    NoJobsGiven,
    /// Starting a process on a node failed.
    #[error("starting {phase} of job {job} on node {rank}: {source}")]
    Spawn {
        /// The job.
        job: i64,
        /// The node's rank.
        rank: u32,
        /// "setup" or "run".
        phase: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
    /// The daemon could not be started or stopped.
    #[error("agent daemon in {}: {message}", dir.display())]
    Daemon {
        /// The state directory.
        dir: PathBuf,
        /// What happened (with the tail of `daemon.log` when useful).
        message: String,
    },
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Builds a `map_err` closure for an I/O step on `path`.
pub(crate) fn io(
    action: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.into();
    move |source| Error::Io {
        action,
        path,
        source,
    }
}
