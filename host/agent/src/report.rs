//! What `queue`, `status` and `idle` print: JSON for the client, aligned
//! tables for people. Secrets appear only by name.

use crate::clock::{ago, duration, now};
use crate::cluster::ClusterSpec;
use crate::daemon::{self, Idle};
use crate::db::{Autostop, Store};
use crate::error::Result;
use crate::job::Job;
use crate::paths::{Phase, StateDir};
use serde_json::{json, Value};

/// How many finished jobs `queue` shows without `--all`.
pub const QUEUE_FINISHED_LIMIT: usize = 50;

/// A `queue --json` row.
fn queue_row(dir: &StateDir, cluster: &ClusterSpec, job: &Job, now: f64) -> Value {
    let gpu_name = cluster.nodes.first().and_then(|n| n.gpu_name.as_deref());
    let duration = job.started_at.map(|s| job.ended_at.unwrap_or(now) - s);
    json!({
        "job_id": job.job_id,
        "name": job.name,
        "username": job.username,
        "submitted_at": job.submitted_at,
        "started_at": job.started_at,
        "ended_at": job.ended_at,
        "duration": duration,
        "resources": job.resources(gpu_name),
        "num_nodes": job.num_nodes,
        "cpus": job.cpus,
        "gpus": job.gpus,
        "status": job.state,
        "exit_code": job.exit_code,
        "message": job.message,
        "task_id": job.task_id,
        "secret_names": job.secret_names,
        "log_dir": dir.job_dir(job.job_id),
    })
}

/// The jobs `queue` lists, newest first: every unfinished job and the
/// newest finished ones (all with `all`).
fn queue_jobs(store: &Store, all: bool) -> Result<Vec<Job>> {
    let mut jobs = store.jobs(&[])?;
    jobs.reverse();
    if !all {
        let mut finished = 0;
        jobs.retain(|j| {
            if j.state.is_terminal() {
                finished += 1;
                finished <= QUEUE_FINISHED_LIMIT
            } else {
                true
            }
        });
    }
    Ok(jobs)
}

/// `queue --json`: an array of rows, newest first.
pub fn queue_json(dir: &StateDir, all: bool) -> Result<Value> {
    let (store, cluster) = Store::open_cluster(dir)?;
    let now = now();
    let rows: Vec<Value> = queue_jobs(&store, all)?
        .iter()
        .map(|j| queue_row(dir, &cluster, j, now))
        .collect();
    Ok(Value::Array(rows))
}

/// `queue`: `sky queue`'s table (without its heading).
pub fn queue_table(dir: &StateDir, all: bool) -> Result<String> {
    let (store, cluster) = Store::open_cluster(dir)?;
    let now = now();
    let gpu_name = cluster.nodes.first().and_then(|n| n.gpu_name.as_deref());
    let mut rows = vec![[
        "ID",
        "NAME",
        "SUBMITTED",
        "STARTED",
        "DURATION",
        "RESOURCES",
        "STATUS",
        "LOG",
    ]
    .map(String::from)
    .to_vec()];
    for j in queue_jobs(&store, all)? {
        rows.push(vec![
            j.job_id.to_string(),
            j.name.clone().unwrap_or_else(|| "-".into()),
            ago(j.submitted_at, now),
            j.started_at
                .map(|s| ago(s, now))
                .unwrap_or_else(|| "-".into()),
            j.started_at
                .map(|s| duration(j.ended_at.unwrap_or(now) - s))
                .unwrap_or_else(|| "-".into()),
            j.resources(gpu_name),
            j.state.to_string(),
            dir.job_dir(j.job_id).display().to_string(),
        ]);
    }
    // The client prints the "Job queue of cluster NAME" heading.
    Ok(table(&rows))
}

/// `status --json`: an array, one object per job asked (all jobs, oldest
/// first, when none); an unknown id gets `"status": null`.
pub fn status_json(dir: &StateDir, ids: &[i64]) -> Result<Value> {
    let (store, _) = Store::open_cluster(dir)?;
    let jobs: Vec<(i64, Option<Job>)> = if ids.is_empty() {
        store
            .jobs(&[])?
            .into_iter()
            .map(|j| (j.job_id, Some(j)))
            .collect()
    } else {
        ids.iter()
            .map(|&id| Ok((id, store.job(id)?)))
            .collect::<Result<_>>()?
    };
    let mut out = Vec::new();
    for (id, job) in jobs {
        let Some(j) = job else {
            out.push(json!({ "job_id": id, "status": null }));
            continue;
        };
        let rows = store.nodes(id)?;
        let codes = |p: Phase| rows.iter().map(|r| r.phase(p).1).collect::<Vec<_>>();
        out.push(json!({
            "job_id": id,
            "name": j.name,
            "status": j.state,
            "exit_code": j.exit_code,
            "setup_exit_codes": if j.setup.is_some() { json!(codes(Phase::Setup)) } else { json!([]) },
            "run_exit_codes": if j.run.is_some() { json!(codes(Phase::Run)) } else { json!([]) },
            "submitted_at": j.submitted_at,
            "started_at": j.started_at,
            "ended_at": j.ended_at,
            "message": j.message,
        }));
    }
    Ok(Value::Array(out))
}

/// `status` without `--json`.
pub fn status_table(v: &Value) -> String {
    let mut rows = vec![["ID", "STATUS", "EXIT", "MESSAGE"]
        .map(String::from)
        .to_vec()];
    for j in v.as_array().into_iter().flatten() {
        let s = |k: &str| match &j[k] {
            Value::Null => "-".to_string(),
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let state = if j["status"].is_null() {
            "NOT FOUND".to_string()
        } else {
            s("status")
        };
        rows.push(vec![s("job_id"), state, s("exit_code"), s("message")]);
    }
    table(&rows)
}

/// `idle --json`.
pub fn idle_json(dir: &StateDir) -> Result<Value> {
    let (store, _) = Store::open_cluster(dir)?;
    let Idle {
        unfinished,
        idle_since,
    } = daemon::idle(&store, None)?;
    let autostop: Option<Autostop> = store.autostop()?;
    let now = now();
    Ok(json!({
        "daemon_running": daemon::running_pid(dir).is_some(),
        "daemon_pid": daemon::running_pid(dir),
        "unfinished_jobs": unfinished,
        "idle": idle_since.is_some(),
        "idle_since": idle_since,
        "idle_minutes": idle_since.map(|s| (now - s).max(0.0) / 60.0),
        "autostop": autostop,
        "autostop_fired_at": store.meta("autostop_fired_at")?.and_then(|s| s.parse::<f64>().ok()),
    }))
}

/// `idle` without `--json`.
pub fn idle_text(v: &Value) -> String {
    let idle = match v["idle_minutes"].as_f64() {
        Some(m) => format!("idle for {m:.1} min"),
        None => format!("busy ({} unfinished job(s))", v["unfinished_jobs"]),
    };
    let autostop = match v["autostop"].as_object() {
        Some(a) => format!(
            "autostop after {} idle min ({})",
            a.get("idle_minutes")
                .map(Value::to_string)
                .unwrap_or_default(),
            if a.get("down").and_then(Value::as_bool).unwrap_or(false) {
                "down"
            } else {
                "stop"
            }
        ),
        None => "autostop off".into(),
    };
    let daemon = if v["daemon_running"].as_bool().unwrap_or(false) {
        "daemon running"
    } else {
        "daemon not running"
    };
    format!("{idle}; {autostop}; {daemon}")
}

/// Left-aligned columns, two spaces apart.
fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for r in rows {
        let cells: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(i, s)| format!("{s:<w$}", w = widths[i]))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}
