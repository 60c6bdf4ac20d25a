//! Starting a job's phase on its nodes: the task environment (SkyPilot's
//! `SKYPILOT_*` variables and their `ALOFT_*` twins) and a gang spawn that
//! either starts every node or none.

use crate::cluster::{ClusterSpec, NodeSpec};
use crate::error::{io, Error, Result};
use crate::exec::{kill_trees, NodeExec, ProcHandle, SpawnRequest};
use crate::job::Job;
use crate::paths::{Phase, StateDir};
use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::time::Duration;

/// The environment of `job`'s `phase` on node `rank`: the task's envs and
/// secrets, then the system variables (which win).
pub fn node_env(
    cluster: &ClusterSpec,
    job: &Job,
    rank: u32,
    gpu_ids: &[u32],
    phase: Phase,
    secrets: &BTreeMap<String, String>,
) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = job
        .envs
        .iter()
        .chain(secrets.iter())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let ips: Vec<&str> = cluster
        .first(job.num_nodes)
        .iter()
        .map(|n| n.ip.as_str())
        .collect();
    let ips = ips.join("\n");
    let gpus = (job.gpus.ceil() as u64).to_string();
    let mut sky: Vec<(&str, String)> = match phase {
        Phase::Setup => vec![
            ("SETUP_NODE_RANK", rank.to_string()),
            ("SETUP_NODE_IPS", ips),
            ("SETUP_NUM_GPUS_PER_NODE", gpus),
        ],
        Phase::Run => vec![
            ("NODE_RANK", rank.to_string()),
            ("NODE_IPS", ips),
            ("NUM_GPUS_PER_NODE", gpus),
        ],
    };
    sky.push(("NUM_NODES", job.num_nodes.to_string()));
    sky.push(("TASK_ID", job.task_id.clone()));
    sky.push(("CLUSTER_INFO", cluster.info_json(job.num_nodes)));
    sky.push(("INTERNAL_JOB_ID", job.job_id.to_string()));
    for (k, v) in sky {
        env.push((format!("SKYPILOT_{k}"), v.clone()));
        env.push((format!("ALOFT_{k}"), v));
    }
    let has_gpus = cluster
        .nodes
        .get(rank as usize)
        .is_some_and(|n| !n.gpus.is_empty());
    if has_gpus {
        let ids: Vec<String> = gpu_ids.iter().map(u32::to_string).collect();
        env.push(("CUDA_VISIBLE_DEVICES".into(), ids.join(",")));
    }
    env
}

/// Starts `phase` on every node of `job` (`gpu_ids` per rank). On any
/// failure the nodes already started are killed and the error returned.
pub fn spawn_phase(
    dir: &StateDir,
    exec: &dyn NodeExec,
    cluster: &ClusterSpec,
    job: &Job,
    gpu_ids: &[Vec<u32>],
    phase: Phase,
) -> Result<Vec<ProcHandle>> {
    let secrets = read_secrets(dir, job)?;
    let script = dir.script(job.job_id, phase);
    let mut started: Vec<(NodeSpec, ProcHandle)> = Vec::new();
    for node in cluster.first(job.num_nodes) {
        let ids = gpu_ids
            .get(node.rank as usize)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let env = node_env(cluster, job, node.rank, ids, phase, &secrets);
        let (log, exit_file) = (
            dir.log(job.job_id, phase, node.rank),
            dir.exit_file(job.job_id, phase, node.rank),
        );
        match exec.spawn(
            node,
            &SpawnRequest {
                script: &script,
                env: &env,
                log: &log,
                exit_file: &exit_file,
            },
        ) {
            Ok(h) => started.push((node.clone(), h)),
            Err(source) => {
                kill_trees(exec, &started, Duration::ZERO);
                return Err(Error::Spawn {
                    job: job.job_id,
                    rank: node.rank,
                    phase: phase.as_str(),
                    source,
                });
            }
        }
    }
    Ok(started.into_iter().map(|(_, h)| h).collect())
}

/// Writes the job's directory: its scripts and (0600) its secrets.
pub fn write_job_files(
    dir: &StateDir,
    job: i64,
    setup: Option<&str>,
    run: Option<&str>,
    secrets: &BTreeMap<String, String>,
) -> Result<()> {
    let jd = dir.job_dir(job);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&jd)
        .map_err(io("creating", &jd))?;
    for (phase, text) in [(Phase::Setup, setup), (Phase::Run, run)] {
        if let Some(text) = text {
            let p = dir.script(job, phase);
            std::fs::write(&p, text).map_err(io("writing", &p))?;
        }
    }
    if !secrets.is_empty() {
        let p = dir.secrets(job);
        let json = serde_json::to_vec(secrets).map_err(|source| Error::Json {
            what: "secrets",
            source,
        })?;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .mode(0o600)
            .open(&p)
            .map_err(io("writing", &p))?;
        f.write_all(&json).map_err(io("writing", &p))?;
    }
    Ok(())
}

/// The job's secrets (empty when it has none).
fn read_secrets(dir: &StateDir, job: &Job) -> Result<BTreeMap<String, String>> {
    if job.secret_names.is_empty() {
        return Ok(BTreeMap::new());
    }
    let p = dir.secrets(job.job_id);
    let text = std::fs::read(&p).map_err(io("reading", &p))?;
    serde_json::from_slice(&text).map_err(|source| Error::Json {
        what: "secrets",
        source,
    })
}

/// Deletes the job's secrets file (when it ends).
pub fn forget_secrets(dir: &StateDir, job: i64) {
    let _ = std::fs::remove_file(dir.secrets(job));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::JobState;

    #[test]
    fn run_env_has_skypilot_vars_and_twins() {
        let cluster = ClusterSpec::parse(
            r#"{"name":"c1","nodes":[{"rank":0,"ip":"10.0.0.1","home":"/a","cpus":2,"gpus":[0,1]},
                {"rank":1,"ip":"10.0.0.2","home":"/b","cpus":2,"gpus":[0,1]}]}"#,
        )
        .unwrap();
        let job = Job {
            job_id: 7,
            name: None,
            username: None,
            setup: None,
            run: Some("true".into()),
            envs: [
                ("MY".to_string(), "v".to_string()),
                ("SKYPILOT_NODE_RANK".to_string(), "9".to_string()),
            ]
            .into(),
            secret_names: vec![],
            num_nodes: 2,
            cpus: 0.5,
            gpus: 1.0,
            state: JobState::Pending,
            task_id: "sky-x_c1_7".into(),
            submitted_at: 0.0,
            started_at: None,
            ended_at: None,
            exit_code: None,
            message: None,
        };
        let env = node_env(&cluster, &job, 1, &[1], Phase::Run, &BTreeMap::new());
        // Later entries win when the process is spawned.
        let get = |k: &str| {
            env.iter()
                .rev()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("SKYPILOT_NODE_RANK"), Some("1"));
        assert_eq!(get("ALOFT_NODE_IPS"), Some("10.0.0.1\n10.0.0.2"));
        assert_eq!(get("SKYPILOT_NUM_NODES"), Some("2"));
        assert_eq!(get("SKYPILOT_NUM_GPUS_PER_NODE"), Some("1"));
        assert_eq!(get("SKYPILOT_INTERNAL_JOB_ID"), Some("7"));
        assert_eq!(get("CUDA_VISIBLE_DEVICES"), Some("1"));
        assert_eq!(get("MY"), Some("v"));
        let setup = node_env(&cluster, &job, 0, &[0], Phase::Setup, &BTreeMap::new());
        assert!(setup
            .iter()
            .any(|(k, v)| k == "SKYPILOT_SETUP_NODE_RANK" && v == "0"));
    }
}
