//! The daemon's scheduler: one [`Scheduler::tick`] moves every job along.
//!
//! - Active jobs (SETTING_UP, RUNNING) are polled on each node; a failing
//!   node fails the job (FAILED_SETUP / FAILED) and its other nodes are
//!   killed; when every node's setup exited 0 the run starts on all of
//!   them; when every run exited 0 the job SUCCEEDED.
//! - Pending jobs start in strict FIFO order: the oldest pending job that
//!   does not fit blocks the ones behind it (no backfilling), so a big job
//!   is never starved by a stream of small ones.
//!
//! Every state change is a compare-and-set in a write transaction, and a
//! gang spawn happens inside the transaction that records its pids: a
//! concurrent `cancel` sees either no processes and a PENDING job, or all
//! of them.

use crate::clock::now;
use crate::cluster::ClusterSpec;
use crate::db::Store;
use crate::error::Result;
use crate::exec::{kill_trees, NodeExec, ProcHandle, ProcState};
use crate::job::{Job, JobState};
use crate::launch::{forget_secrets, spawn_phase};
use crate::paths::{Phase, StateDir};
use crate::place::{place, Demand, Held};
use std::sync::Arc;
use std::time::Duration;

/// The exit status recorded for a process that vanished without one.
pub const VANISHED: i32 = -1;
/// How long a job may stay in INIT (a `submit` that died half-way).
const INIT_TIMEOUT_S: f64 = 60.0;
/// SIGTERM to SIGKILL.
pub const KILL_GRACE: Duration = Duration::from_secs(3);

/// Writes a line to the daemon's log (its stderr).
pub fn log(msg: &str) {
    eprintln!("{} {msg}", crate::clock::iso(now()));
}

fn demand(job: &Job) -> Demand {
    Demand {
        num_nodes: job.num_nodes,
        cpus: job.cpus,
        gpus: job.gpus,
    }
}

/// Moves jobs along; owned by the daemon.
pub struct Scheduler {
    dir: StateDir,
    store: Store,
    exec: Arc<dyn NodeExec>,
}

impl Scheduler {
    /// A scheduler over `dir`'s job table.
    pub fn new(dir: StateDir, store: Store, exec: Arc<dyn NodeExec>) -> Scheduler {
        Scheduler { dir, store, exec }
    }

    /// The job table.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// One pass: poll active jobs, expire stuck submits, start pending jobs.
    pub fn tick(&mut self) -> Result<()> {
        let cluster = self.store.require_cluster(&self.dir)?;
        for job in self.store.jobs(&[JobState::SettingUp, JobState::Running])? {
            self.advance(&cluster, &job)?;
        }
        for job in self.store.jobs(&[JobState::Init])? {
            if job.submitted_at < now() - INIT_TIMEOUT_S {
                self.finish(
                    &job,
                    JobState::Failed,
                    None,
                    "the submit of this job did not finish",
                )?;
            }
        }
        self.schedule(&cluster)
    }

    /// Moves `job` to a terminal state (if it is still in its state).
    fn finish(
        &mut self,
        job: &Job,
        to: JobState,
        code: Option<i32>,
        message: &str,
    ) -> Result<bool> {
        let won = self.store.write(|tx| {
            let won = tx.transition(job.job_id, &[job.state], to, now())?;
            if won {
                tx.set_outcome(job.job_id, code, Some(message).filter(|m| !m.is_empty()))?;
            }
            Ok(won)
        })?;
        if won {
            forget_secrets(&self.dir, job.job_id);
            log(&format!(
                "job {}: {} -> {to}{}",
                job.job_id,
                job.state,
                if message.is_empty() {
                    String::new()
                } else {
                    format!(" ({message})")
                }
            ));
        }
        Ok(won)
    }

    /// Polls an active job's current phase on every node.
    fn advance(&mut self, cluster: &ClusterSpec, job: &Job) -> Result<()> {
        let phase = if job.state == JobState::SettingUp {
            Phase::Setup
        } else {
            Phase::Run
        };
        let rows = self.store.nodes(job.job_id)?;
        let mut codes: Vec<(u32, Option<i32>)> = Vec::new();
        let mut newly: Vec<(u32, i32)> = Vec::new();
        let mut running: Vec<(crate::cluster::NodeSpec, ProcHandle)> = Vec::new();
        for row in &rows {
            let code = match row.phase(phase) {
                (_, Some(c)) => Some(c),
                (Some(h), None) => match cluster.nodes.get(row.rank as usize) {
                    Some(node) => match self.exec.poll(
                        node,
                        &h,
                        &self.dir.exit_file(job.job_id, phase, row.rank),
                    ) {
                        ProcState::Running => {
                            running.push((node.clone(), h));
                            None
                        }
                        ProcState::Exited(c) => {
                            newly.push((row.rank, c));
                            Some(c)
                        }
                        ProcState::Vanished => {
                            newly.push((row.rank, VANISHED));
                            Some(VANISHED)
                        }
                    },
                    None => Some(VANISHED),
                },
                (None, None) => Some(VANISHED),
            };
            codes.push((row.rank, code));
        }
        if !newly.is_empty() {
            self.store.write(|tx| {
                newly
                    .iter()
                    .try_for_each(|(rank, c)| tx.set_exit(job.job_id, *rank, phase, *c))
            })?;
        }
        if rows.is_empty() {
            self.finish(job, JobState::Failed, None, "the job has no recorded nodes")?;
            return Ok(());
        }
        if let Some(&(rank, Some(code))) = codes.iter().find(|(_, c)| c.is_some_and(|c| c != 0)) {
            let (to, what) = if phase == Phase::Setup {
                (JobState::FailedSetup, "setup")
            } else {
                (JobState::Failed, "run")
            };
            let message = if code == VANISHED {
                format!("the {what} process on node {rank} vanished without an exit status")
            } else {
                format!("{what} exited with status {code} on node {rank}")
            };
            if self.finish(job, to, Some(code), &message)? && !running.is_empty() {
                let exec = self.exec.clone();
                std::thread::spawn(move || kill_trees(&*exec, &running, KILL_GRACE));
            }
            return Ok(());
        }
        if codes.iter().any(|(_, c)| c.is_none()) {
            return Ok(());
        }
        if phase == Phase::Setup && job.run.is_some() {
            self.start_phase(
                cluster,
                job,
                &rows.iter().map(|r| r.gpu_ids.clone()).collect::<Vec<_>>(),
                JobState::SettingUp,
                Phase::Run,
            )?;
        } else {
            self.finish(job, JobState::Succeeded, Some(0), "")?;
        }
        Ok(())
    }

    /// Starts pending jobs, oldest first, while they fit.
    fn schedule(&mut self, cluster: &ClusterSpec) -> Result<()> {
        let pending = self.store.jobs(&[JobState::Pending])?;
        if pending.is_empty() {
            return Ok(());
        }
        let mut held = Vec::new();
        for j in self.store.jobs(&[JobState::SettingUp, JobState::Running])? {
            let gpu_ids = self
                .store
                .nodes(j.job_id)?
                .into_iter()
                .map(|r| r.gpu_ids)
                .collect();
            held.push(Held {
                demand: demand(&j),
                gpu_ids,
            });
        }
        for job in pending {
            if place(cluster, &[], &demand(&job)).is_none() {
                let msg = format!(
                    "the job no longer fits on cluster {} (its nodes changed)",
                    cluster.name
                );
                self.finish(&job, JobState::Failed, None, &msg)?;
                continue;
            }
            let Some(gpu_ids) = place(cluster, &held, &demand(&job)) else {
                break;
            };
            let phase = if job.setup.is_some() {
                Phase::Setup
            } else {
                Phase::Run
            };
            if job.setup.is_none() && job.run.is_none() {
                self.finish(&job, JobState::Succeeded, Some(0), "")?;
                continue;
            }
            if self.start_phase(cluster, &job, &gpu_ids, JobState::Pending, phase)? {
                held.push(Held {
                    demand: demand(&job),
                    gpu_ids,
                });
            }
        }
        Ok(())
    }

    /// Moves `job` from `from` into `phase` and spawns it on every node, in
    /// one transaction. False if the job left `from` meanwhile.
    fn start_phase(
        &mut self,
        cluster: &ClusterSpec,
        job: &Job,
        gpu_ids: &[Vec<u32>],
        from: JobState,
        phase: Phase,
    ) -> Result<bool> {
        let to = if phase == Phase::Setup {
            JobState::SettingUp
        } else {
            JobState::Running
        };
        let (dir, exec) = (&self.dir, &*self.exec);
        let mut failure = None;
        let started = self.store.write(|tx| {
            if !tx.transition(job.job_id, &[from], to, now())? {
                return Ok(false);
            }
            if from == JobState::Pending {
                tx.place(job.job_id, gpu_ids)?;
            }
            match spawn_phase(dir, exec, cluster, job, gpu_ids, phase) {
                Ok(handles) => {
                    let recorded = handles
                        .iter()
                        .enumerate()
                        .try_for_each(|(rank, h)| tx.set_proc(job.job_id, rank as u32, phase, h));
                    if let Err(e) = recorded {
                        let procs: Vec<_> = cluster
                            .first(job.num_nodes)
                            .iter()
                            .cloned()
                            .zip(handles)
                            .collect();
                        kill_trees(exec, &procs, Duration::ZERO);
                        return Err(e);
                    }
                }
                Err(e) => {
                    let failed = if phase == Phase::Setup {
                        JobState::FailedSetup
                    } else {
                        JobState::Failed
                    };
                    tx.transition(job.job_id, &[to], failed, now())?;
                    tx.set_outcome(job.job_id, None, Some(&e.to_string()))?;
                    failure = Some((failed, e));
                }
            }
            Ok(true)
        })?;
        let ok = started && failure.is_none();
        match failure {
            Some((failed, e)) => {
                forget_secrets(&self.dir, job.job_id);
                log(&format!("job {}: {from} -> {failed} ({e})", job.job_id));
            }
            None if started => log(&format!("job {}: {from} -> {to}", job.job_id)),
            None => {}
        }
        Ok(ok)
    }
}
