//! Job verbs on a cluster: `exec`, `logs`, `queue`, `cancel`.

use crate::backend::{agent_json, agent_run, check_files, follow, submit, sync_files};
use crate::home::aloft_home;
use crate::state::{check_cluster_name, Cluster, ClusterStatus, State};
use crate::task_args::{load_task, TaskArgs};
use crate::Exit;
use anyhow::{bail, Result};

/// An UP cluster, or a clear error.
pub fn up_cluster(state: &State, name: &str) -> Result<Cluster> {
    check_cluster_name(name)?;
    match state.cluster(name)? {
        None => bail!("cluster {name} does not exist\nhint: aloft status lists the clusters"),
        Some(c) if c.status != ClusterStatus::Up => {
            bail!(
                "cluster {name} is {}, not UP\nhint: aloft start {name}",
                c.status.as_str()
            )
        }
        Some(c) => Ok(c),
    }
}

/// Maps an agent `logs` exit code to ours (SkyPilot's codes).
pub fn job_exit(code: i32, cluster: &str, job: i64) -> Result<()> {
    match code {
        0 => Ok(()),
        100 => bail!(Exit {
            code: 100,
            message: format!("job {job} on {cluster} failed")
        }),
        101 => bail!(Exit {
            code: 101,
            message: String::new()
        }),
        102 => bail!(Exit {
            code: 102,
            message: format!("job {job} not found on {cluster}")
        }),
        103 => bail!(Exit {
            code: 103,
            message: format!("job {job} on {cluster} was cancelled")
        }),
        c => bail!(Exit {
            code: u8::try_from(c).unwrap_or(1),
            message: String::new()
        }),
    }
}

/// Run a task or command on an existing cluster (no setup, no provisioning).
#[derive(Debug, clap::Args)]
pub struct Exec {
    /// Cluster.
    pub cluster: String,
    /// Task YAML, or a command.
    pub entrypoint: String,
    /// Do not stream the output.
    #[arg(short = 'd', long = "detach-run")]
    pub detach_run: bool,
    #[command(flatten)]
    pub task: TaskArgs,
}

impl Exec {
    /// Runs the command.
    pub async fn run(self) -> Result<()> {
        let home = aloft_home()?;
        let state = State::open(&home)?;
        let cluster = up_cluster(&state, &self.cluster)?;
        let task = load_task(Some(&self.entrypoint), &self.task)?;
        let base = std::env::current_dir()?;
        check_files(&task, &base)?;
        if task.workdir.is_some() {
            sync_files(&cluster, &task, &base).await?;
        }
        let job = submit(&cluster, &task, false).await?;
        eprintln!("Job submitted, ID: {job}");
        if self.detach_run {
            crate::outln(&job.to_string());
            return Ok(());
        }
        let code = follow(&cluster, job, true).await?;
        job_exit(code, &cluster.name, job)
    }
}

/// Show or follow a job's logs.
#[derive(Debug, clap::Args)]
pub struct Logs {
    /// Cluster.
    pub cluster: String,
    /// Job id (default: the latest).
    pub job: Option<i64>,
    /// Print what there is and return.
    #[arg(long)]
    pub no_follow: bool,
    /// Print the job's status only; the exit code says it (0 succeeded,
    /// 100 failed, 101 not finished, 102 not found, 103 cancelled).
    #[arg(long)]
    pub status: bool,
}

impl Logs {
    /// Runs the command.
    pub async fn run(self) -> Result<()> {
        let home = aloft_home()?;
        let state = State::open(&home)?;
        let cluster = up_cluster(&state, &self.cluster)?;
        let job = match self.job {
            Some(j) => j,
            None => latest_job(&cluster).await?,
        };
        if self.status {
            let v = agent_json(&cluster, "status", &[&job.to_string(), "--json"], None).await;
            let state = match v {
                Ok(v) => v
                    .as_array()
                    .and_then(|a| a.iter().find(|j| j["job_id"] == job))
                    .and_then(|j| j["status"].as_str())
                    .map(str::to_string),
                Err(_) => None,
            };
            let Some(state) = state else {
                bail!(Exit {
                    code: 102,
                    message: format!("job {job} not found on {}", cluster.name)
                });
            };
            crate::outln(&format!("Job {job}: {state}"));
            let code = match state.as_str() {
                "SUCCEEDED" => 0,
                "FAILED" | "FAILED_SETUP" => 100,
                "CANCELLED" => 103,
                _ => 101,
            };
            return if code == 0 {
                Ok(())
            } else {
                Err(Exit {
                    code,
                    message: String::new(),
                }
                .into())
            };
        }
        let code = follow(&cluster, job, !self.no_follow).await?;
        if self.no_follow && code == 101 {
            return Ok(());
        }
        job_exit(code, &cluster.name, job)
    }
}

async fn latest_job(cluster: &Cluster) -> Result<i64> {
    let v = agent_json(cluster, "queue", &["--json"], None).await?;
    v.as_array()
        .and_then(|a| a.iter().filter_map(|j| j["job_id"].as_i64()).max())
        .ok_or_else(|| anyhow::anyhow!("cluster {} has no jobs", cluster.name))
}

/// Show the job queue of clusters.
#[derive(Debug, clap::Args)]
pub struct Queue {
    /// Clusters (default: every UP cluster).
    pub clusters: Vec<String>,
    /// Include all finished jobs.
    #[arg(short = 'a', long)]
    pub all: bool,
}

impl Queue {
    /// Runs the command.
    pub async fn run(self) -> Result<()> {
        let home = aloft_home()?;
        let state = State::open(&home)?;
        let clusters: Vec<Cluster> = if self.clusters.is_empty() {
            state
                .clusters()?
                .into_iter()
                .filter(|c| c.status == ClusterStatus::Up)
                .collect()
        } else {
            self.clusters
                .iter()
                .map(|n| up_cluster(&state, n))
                .collect::<Result<_>>()?
        };
        for c in clusters {
            let args: &[&str] = if self.all { &["--all"] } else { &[] };
            let out = agent_run(&c, "queue", args, None).await?;
            crate::outln(&format!("Job queue of cluster {}", c.name));
            crate::out(&out);
        }
        Ok(())
    }
}

/// Cancel jobs on a cluster.
#[derive(Debug, clap::Args)]
pub struct Cancel {
    /// Cluster.
    pub cluster: String,
    /// Job ids.
    pub jobs: Vec<i64>,
    /// Every unfinished job.
    #[arg(short = 'a', long)]
    pub all: bool,
}

impl Cancel {
    /// Runs the command.
    pub async fn run(self) -> Result<()> {
        let home = aloft_home()?;
        let state = State::open(&home)?;
        let cluster = up_cluster(&state, &self.cluster)?;
        if self.jobs.is_empty() && !self.all {
            bail!(Exit {
                code: 2,
                message: "name the jobs to cancel, or -a for all\nhint: aloft queue CLUSTER".into()
            });
        }
        let ids: Vec<String> = self.jobs.iter().map(|j| j.to_string()).collect();
        let mut args: Vec<&str> = ids.iter().map(String::as_str).collect();
        if self.all {
            args.push("--all");
        }
        let out = agent_run(&cluster, "cancel", &args, None).await?;
        crate::out(&out);
        Ok(())
    }
}
