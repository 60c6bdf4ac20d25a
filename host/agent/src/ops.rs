//! The short-lived commands that change state: `init`, `submit`,
//! `cancel`, `autostop` and `shutdown`. Each opens the job table, does its
//! work in write transactions and pokes the daemon.

use crate::clock::now;
use crate::cluster::{ClusterSpec, NodeSpec};
use crate::daemon;
use crate::db::{Autostop, Store};
use crate::error::{Error, Result};
use crate::exec::local::LocalExec;
use crate::exec::{kill_trees, NodeExec, ProcHandle};
use crate::job::{JobSpec, JobState};
use crate::launch::{forget_secrets, write_job_files};
use crate::paths::{Phase, StateDir};
use crate::sched::KILL_GRACE;
use serde::Serialize;

/// `init`: stores (or updates) the cluster description.
pub fn init(dir: &StateDir, cluster: &ClusterSpec) -> Result<()> {
    crate::cluster::ensure_dir(&dir.root().join("jobs"))?;
    let store = Store::open(dir)?;
    store.set_cluster(cluster)?;
    if store.meta("initialized_at")?.is_none() {
        store.set_meta("initialized_at", Some(&now().to_string()))?;
    }
    Ok(())
}

/// `submit`: queues a job and returns its id.
pub fn submit(dir: &StateDir, spec: &JobSpec) -> Result<i64> {
    let (mut store, cluster) = Store::open_cluster(dir)?;
    spec.validate(&cluster)?;
    let id = store.insert_job(spec, &cluster.name, now())?;
    if let Err(e) = write_job_files(
        dir,
        id,
        spec.setup.as_deref(),
        spec.run.as_deref(),
        &spec.secrets,
    ) {
        forget_secrets(dir, id);
        store.write(|tx| {
            tx.transition(id, &[JobState::Init], JobState::Failed, now())?;
            tx.set_outcome(id, None, Some(&e.to_string()))
        })?;
        return Err(e);
    }
    store.write(|tx| tx.transition(id, &[JobState::Init], JobState::Pending, now()))?;
    daemon::poke(dir);
    Ok(id)
}

/// A job `cancel` cancelled.
#[derive(Debug, Clone, Serialize)]
pub struct Cancelled {
    /// The job.
    pub job_id: i64,
    /// Its status before.
    pub previous_status: JobState,
}

/// A job `cancel` left alone because it had finished.
#[derive(Debug, Clone, Serialize)]
pub struct Finished {
    /// The job.
    pub job_id: i64,
    /// Its (terminal) status.
    pub status: JobState,
}

/// What `cancel` did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CancelReport {
    /// Cancelled now.
    pub cancelled: Vec<Cancelled>,
    /// Already finished.
    pub already_finished: Vec<Finished>,
}

/// Which jobs to cancel.
#[derive(Debug, Clone)]
pub enum Which {
    /// These ids (all must exist).
    Ids(Vec<i64>),
    /// Every unfinished job.
    All,
}

/// `cancel` (and `shutdown`): marks the jobs CANCELLED, then kills their
/// processes on every node (SIGTERM, SIGKILL after a grace period).
pub fn cancel(dir: &StateDir, which: Which, message: &str) -> Result<CancelReport> {
    let (mut store, cluster) = Store::open_cluster(dir)?;
    let ids = match which {
        Which::All => store
            .jobs(&[
                JobState::Init,
                JobState::Pending,
                JobState::SettingUp,
                JobState::Running,
            ])?
            .into_iter()
            .map(|j| j.job_id)
            .collect(),
        Which::Ids(ids) if ids.is_empty() => return Err(Error::NoJobsGiven),
        Which::Ids(ids) => {
            for &id in &ids {
                if store.job(id)?.is_none() {
                    return Err(Error::JobNotFound {
                        id,
                        cluster: cluster.name.clone(),
                    });
                }
            }
            ids
        }
    };
    let mut report = CancelReport::default();
    let mut targets: Vec<(NodeSpec, ProcHandle)> = Vec::new();
    // One transaction for all, so the daemon cannot start a pending job in
    // the room a just-cancelled one left.
    store.write(|tx| {
        for id in ids {
            let Some(job) = tx.job(id)? else {
                continue;
            };
            if job.state.is_terminal() {
                report.already_finished.push(Finished {
                    job_id: id,
                    status: job.state,
                });
                continue;
            }
            tx.transition(id, &[job.state], JobState::Cancelled, now())?;
            tx.set_outcome(id, None, Some(message))?;
            report.cancelled.push(Cancelled {
                job_id: id,
                previous_status: job.state,
            });
            for row in tx.nodes(id)? {
                let Some(node) = cluster.nodes.get(row.rank as usize) else {
                    continue;
                };
                for phase in [Phase::Setup, Phase::Run] {
                    if let (Some(h), None) = row.phase(phase) {
                        targets.push((node.clone(), h));
                    }
                }
            }
        }
        Ok(())
    })?;
    let exec: &dyn NodeExec = &LocalExec;
    kill_trees(exec, &targets, KILL_GRACE);
    for c in &report.cancelled {
        forget_secrets(dir, c.job_id);
    }
    if !report.cancelled.is_empty() {
        daemon::poke(dir);
    }
    Ok(report)
}

/// `autostop`: sets (or with `None` clears) autostop.
pub fn set_autostop(dir: &StateDir, setting: Option<(f64, bool)>) -> Result<Option<Autostop>> {
    let (store, _) = Store::open_cluster(dir)?;
    let a = match setting {
        Some((idle_minutes, down)) => {
            if !(idle_minutes.is_finite() && idle_minutes >= 0.0) {
                return Err(Error::InvalidSpec(format!(
                    "--idle-minutes must be a number >= 0, not {idle_minutes}"
                )));
            }
            Some(Autostop {
                idle_minutes,
                down,
                set_at: now(),
            })
        }
        None => None,
    };
    store.set_autostop(a.as_ref())?;
    daemon::poke(dir);
    Ok(a)
}

/// What `shutdown` did.
#[derive(Debug, Clone, Serialize)]
pub struct ShutdownReport {
    /// A daemon was running and was stopped.
    pub daemon_stopped: bool,
    /// Jobs cancelled (their processes killed).
    pub cancelled: Vec<i64>,
}

/// `shutdown`: stops the daemon, then cancels every unfinished job.
pub fn shutdown(dir: &StateDir) -> Result<ShutdownReport> {
    let daemon_stopped = daemon::stop(dir);
    // A half-created state directory has nothing to cancel (and is not
    // created here).
    if !dir.db().exists() || Store::open(dir)?.cluster()?.is_none() {
        return Ok(ShutdownReport {
            daemon_stopped,
            cancelled: Vec::new(),
        });
    }
    let report = cancel(dir, Which::All, "cancelled by agent shutdown")?;
    Ok(ShutdownReport {
        daemon_stopped,
        cancelled: report.cancelled.iter().map(|c| c.job_id).collect(),
    })
}
