//! The state directory's layout: `agent.db`, `daemon.{pid,log,sock}` and one
//! `jobs/<id>/` per job with its scripts, logs, exit files and secrets.

use std::path::{Path, PathBuf};

/// A job's two phases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// The task's `setup`.
    Setup,
    /// The task's `run`.
    Run,
}

impl Phase {
    /// "setup" or "run".
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Setup => "setup",
            Phase::Run => "run",
        }
    }
}

/// Paths under the state directory `D`.
#[derive(Debug, Clone)]
pub struct StateDir {
    root: PathBuf,
}

impl StateDir {
    /// `dir` made absolute (the daemon and jobs run elsewhere).
    pub fn new(dir: &Path) -> StateDir {
        StateDir {
            root: std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf()),
        }
    }

    /// `D` itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `D/agent.db`.
    pub fn db(&self) -> PathBuf {
        self.root.join("agent.db")
    }

    /// `D/daemon.pid`, also the daemon's lock file.
    pub fn pid_file(&self) -> PathBuf {
        self.root.join("daemon.pid")
    }

    /// `D/daemon.log`.
    pub fn daemon_log(&self) -> PathBuf {
        self.root.join("daemon.log")
    }

    /// `D/daemon.sock`: a datagram socket `submit` and `cancel` poke.
    pub fn socket(&self) -> PathBuf {
        self.root.join("daemon.sock")
    }

    /// `D/autostop.log`: output of the autostop command.
    pub fn autostop_log(&self) -> PathBuf {
        self.root.join("autostop.log")
    }

    /// `D/jobs/<id>`.
    pub fn job_dir(&self, job: i64) -> PathBuf {
        self.root.join("jobs").join(job.to_string())
    }

    /// `D/jobs/<id>/<phase>.sh`.
    pub fn script(&self, job: i64, phase: Phase) -> PathBuf {
        self.job_dir(job).join(format!("{}.sh", phase.as_str()))
    }

    /// `D/jobs/<id>/<phase>-<rank>.log`.
    pub fn log(&self, job: i64, phase: Phase, rank: u32) -> PathBuf {
        self.job_dir(job)
            .join(format!("{}-{rank}.log", phase.as_str()))
    }

    /// `D/jobs/<id>/<phase>-<rank>.exit`: the exit code, written by the
    /// node's wrapper when the command ends.
    pub fn exit_file(&self, job: i64, phase: Phase, rank: u32) -> PathBuf {
        self.job_dir(job)
            .join(format!("{}-{rank}.exit", phase.as_str()))
    }

    /// `D/jobs/<id>/secrets.json` (0600, removed when the job ends).
    pub fn secrets(&self, job: i64) -> PathBuf {
        self.job_dir(job).join("secrets.json")
    }
}
