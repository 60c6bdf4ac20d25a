//! Jobs: the spec `submit` takes, the states (SkyPilot's names) and the
//! record the job table keeps.

use crate::cluster::ClusterSpec;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// SkyPilot's `DEFAULT_TASK_CPU_DEMAND`: what a job asks per node when it
/// names no CPUs.
pub const DEFAULT_CPUS: f64 = 0.5;

/// What `aloft agent submit --spec JSON` takes.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobSpec {
    /// Shown in `queue`.
    #[serde(default)]
    pub name: Option<String>,
    /// Runs first on every node; failing anywhere is FAILED_SETUP.
    #[serde(default)]
    pub setup: Option<String>,
    /// The job's command on every node.
    #[serde(default)]
    pub run: Option<String>,
    /// Environment for setup and run.
    #[serde(default)]
    pub envs: BTreeMap<String, String>,
    /// Environment too, but only the names are ever stored or shown.
    #[serde(default)]
    pub secrets: BTreeMap<String, String>,
    /// How many nodes (ranks 0..n-1).
    #[serde(default = "one")]
    pub num_nodes: u32,
    /// CPUs per node (default [`DEFAULT_CPUS`]).
    #[serde(default)]
    pub cpus: Option<f64>,
    /// GPUs per node (default 0; below 1 shares a device).
    #[serde(default)]
    pub gpus: Option<f64>,
    /// Who submitted it.
    #[serde(default)]
    pub username: Option<String>,
}

fn one() -> u32 {
    1
}

impl JobSpec {
    /// Parses the JSON `submit` is given.
    pub fn parse(json: &str) -> Result<JobSpec> {
        serde_json::from_str(json).map_err(|source| Error::Json {
            what: "job spec",
            source,
        })
    }

    /// CPUs per node after defaults.
    pub fn cpus(&self) -> f64 {
        self.cpus.unwrap_or(DEFAULT_CPUS)
    }

    /// GPUs per node after defaults.
    pub fn gpus(&self) -> f64 {
        self.gpus.unwrap_or(0.0)
    }

    /// Refuses what could never run on `cluster`, so nothing waits forever.
    pub fn validate(&self, cluster: &ClusterSpec) -> Result<()> {
        let bad = |m: String| Err(Error::InvalidSpec(m));
        let have = cluster.nodes.len() as u32;
        if self.num_nodes == 0 {
            return bad("num_nodes must be at least 1".into());
        }
        if self.num_nodes > have {
            return bad(format!(
                "the job asks for {} nodes but cluster {} has {have}\nhint: launch a cluster with more nodes, or lower num_nodes",
                self.num_nodes, cluster.name
            ));
        }
        let (cpus, gpus) = (self.cpus(), self.gpus());
        if !(cpus.is_finite() && cpus >= 0.0) {
            return bad(format!("cpus must be a number >= 0, not {cpus}"));
        }
        if !(gpus.is_finite() && gpus >= 0.0) {
            return bad(format!("gpus must be a number >= 0, not {gpus}"));
        }
        if gpus > 1.0 && gpus.fract() != 0.0 {
            return bad(format!("gpus above 1 must be a whole number, not {gpus}"));
        }
        for n in cluster.first(self.num_nodes) {
            if cpus > n.cpus + 1e-9 {
                return bad(format!(
                    "the job asks for {cpus} CPUs per node but node {} has {}\nhint: lower cpus",
                    n.rank, n.cpus
                ));
            }
            if gpus > n.gpus.len() as f64 + 1e-9 {
                return bad(format!(
                    "the job asks for {gpus} GPUs per node but node {} has {}",
                    n.rank,
                    n.gpus.len()
                ));
            }
        }
        for key in self.envs.keys().chain(self.secrets.keys()) {
            if key.is_empty() || key.contains('=') || key.contains('\0') {
                return bad(format!("invalid environment variable name {key:?}"));
            }
        }
        for (what, text) in [("setup", &self.setup), ("run", &self.run)] {
            if text.as_deref().is_some_and(|t| t.contains('\0')) {
                return bad(format!("{what} contains a NUL byte"));
            }
        }
        Ok(())
    }
}

/// A job's state (SkyPilot's `JobStatus` names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobState {
    /// Being submitted.
    Init,
    /// Waiting for resources.
    Pending,
    /// Setup running on its nodes.
    SettingUp,
    /// Run running on its nodes.
    Running,
    /// Every node's run exited 0.
    Succeeded,
    /// A node's run failed (or vanished).
    Failed,
    /// A node's setup failed.
    FailedSetup,
    /// Cancelled (or killed by `shutdown`).
    Cancelled,
}

impl JobState {
    /// Every state, for parsing.
    pub const ALL: [JobState; 8] = [
        JobState::Init,
        JobState::Pending,
        JobState::SettingUp,
        JobState::Running,
        JobState::Succeeded,
        JobState::Failed,
        JobState::FailedSetup,
        JobState::Cancelled,
    ];

    /// The stored and printed name.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Init => "INIT",
            JobState::Pending => "PENDING",
            JobState::SettingUp => "SETTING_UP",
            JobState::Running => "RUNNING",
            JobState::Succeeded => "SUCCEEDED",
            JobState::Failed => "FAILED",
            JobState::FailedSetup => "FAILED_SETUP",
            JobState::Cancelled => "CANCELLED",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<JobState> {
        JobState::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// No further transitions.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobState::Succeeded | JobState::Failed | JobState::FailedSetup | JobState::Cancelled
        )
    }

    /// Holds node resources (processes may be running).
    pub fn is_active(self) -> bool {
        matches!(self, JobState::SettingUp | JobState::Running)
    }

    /// The exit status `sky logs` uses for a job in this state
    /// (SkyPilot's `exceptions.JobExitCode`).
    pub fn exit_code(self) -> u8 {
        match self {
            JobState::Succeeded => exit::SUCCEEDED,
            JobState::Failed | JobState::FailedSetup => exit::FAILED,
            JobState::Cancelled => exit::CANCELLED,
            JobState::Init | JobState::Pending | JobState::SettingUp | JobState::Running => {
                exit::NOT_FINISHED
            }
        }
    }
}

impl std::fmt::Display for JobState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// SkyPilot's `exceptions.JobExitCode`: what `logs` exits with.
pub mod exit {
    /// The job succeeded.
    pub const SUCCEEDED: u8 = 0;
    /// The job failed (FAILED or FAILED_SETUP).
    pub const FAILED: u8 = 100;
    /// The job has not finished (`logs` without `--follow`).
    pub const NOT_FINISHED: u8 = 101;
    /// No such job.
    pub const NOT_FOUND: u8 = 102;
    /// The job was cancelled.
    pub const CANCELLED: u8 = 103;
}

/// A row of the job table.
#[derive(Debug, Clone, Serialize)]
pub struct Job {
    /// The job's id (1, 2, ...).
    pub job_id: i64,
    /// Its name.
    pub name: Option<String>,
    /// Who submitted it.
    pub username: Option<String>,
    /// Setup command.
    #[serde(skip)]
    pub setup: Option<String>,
    /// Run command.
    #[serde(skip)]
    pub run: Option<String>,
    /// Environment (not secrets).
    #[serde(skip)]
    pub envs: BTreeMap<String, String>,
    /// Names of the secrets it was given.
    pub secret_names: Vec<String>,
    /// Nodes.
    pub num_nodes: u32,
    /// CPUs per node.
    pub cpus: f64,
    /// GPUs per node.
    pub gpus: f64,
    /// Its state (`status` in JSON, as SkyPilot calls it).
    #[serde(rename = "status")]
    pub state: JobState,
    /// `SKYPILOT_TASK_ID`.
    pub task_id: String,
    /// Unix seconds.
    pub submitted_at: f64,
    /// When setup (or run) started.
    pub started_at: Option<f64>,
    /// When it reached a terminal state.
    pub ended_at: Option<f64>,
    /// The failing node's exit code (0 when succeeded).
    pub exit_code: Option<i32>,
    /// Why it failed or was cancelled, when known.
    pub message: Option<String>,
}

impl Job {
    /// `sky queue`'s RESOURCES column, e.g. `2x[A100:1, CPU:0.5]`.
    pub fn resources(&self, gpu_name: Option<&str>) -> String {
        let num = |x: f64| {
            if x.fract() == 0.0 {
                format!("{x:.0}")
            } else {
                format!("{x}")
            }
        };
        if self.gpus > 0.0 {
            format!(
                "{}x[{}:{}, CPU:{}]",
                self.num_nodes,
                gpu_name.unwrap_or("GPU"),
                num(self.gpus),
                num(self.cpus)
            )
        } else {
            format!("{}x[CPU:{}]", self.num_nodes, num(self.cpus))
        }
    }
}

/// SkyPilot's task id: `sky-<YYYY-MM-DD-HH-MM-SS-micros>_<cluster>_<job>` (UTC).
pub fn task_id(submitted_at: f64, cluster: &str, job_id: i64) -> String {
    format!(
        "sky-{}_{cluster}_{job_id}",
        crate::clock::stamp(submitted_at, '-')
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster() -> ClusterSpec {
        ClusterSpec::parse(
            r#"{"name":"c","nodes":[{"rank":0,"ip":"a","home":"/h","cpus":1,"gpus":[0]}]}"#,
        )
        .unwrap()
    }

    #[test]
    fn defaults_and_validation() {
        let s = JobSpec::parse(r#"{"run":"echo hi"}"#).unwrap();
        assert_eq!((s.num_nodes, s.cpus(), s.gpus()), (1, 0.5, 0.0));
        s.validate(&cluster()).unwrap();
        let two = JobSpec::parse(r#"{"run":"x","num_nodes":2}"#).unwrap();
        assert!(two
            .validate(&cluster())
            .unwrap_err()
            .to_string()
            .contains("asks for 2 nodes but cluster c has 1"));
        let big = JobSpec::parse(r#"{"run":"x","cpus":4}"#).unwrap();
        assert!(big.validate(&cluster()).is_err());
        let gpus = JobSpec::parse(r#"{"run":"x","gpus":2}"#).unwrap();
        assert!(gpus.validate(&cluster()).is_err());
        assert!(JobSpec::parse(r#"{"run":"x","nope":1}"#).is_err());
    }

    #[test]
    fn states_round_trip_and_exit_codes() {
        for s in JobState::ALL {
            assert_eq!(JobState::parse(s.as_str()), Some(s));
        }
        assert_eq!(JobState::FailedSetup.exit_code(), 100);
        assert_eq!(JobState::Running.exit_code(), 101);
        assert_eq!(JobState::Cancelled.exit_code(), 103);
    }

    #[test]
    fn task_id_looks_like_skypilot() {
        let id = task_id(0.25, "c1", 3);
        assert_eq!(id, "sky-1970-01-01-00-00-00-250000_c1_3");
    }
}
