//! The job table in `D/agent.db` (SQLite, WAL, `user_version` migrations).
//!
//! Every writer (the daemon and the short-lived commands) changes a job's
//! state with a compare-and-set ([`Store::transition`]), so e.g. a cancel
//! and the daemon noticing the same job's exit cannot both win.

use crate::cluster::ClusterSpec;
use crate::error::{Error, Result};
use crate::exec::ProcHandle;
use crate::job::{task_id, Job, JobSpec, JobState};
use crate::paths::{Phase, StateDir};
use rusqlite::{params, Connection, OptionalExtension, Row, Transaction, TransactionBehavior};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

/// Schema migrations; `user_version` is how many have been applied.
const MIGRATIONS: &[&str] = &[r#"
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT,
    username TEXT,
    setup TEXT,
    run TEXT,
    envs TEXT NOT NULL,
    secret_names TEXT NOT NULL,
    num_nodes INTEGER NOT NULL,
    cpus REAL NOT NULL,
    gpus REAL NOT NULL,
    state TEXT NOT NULL,
    task_id TEXT NOT NULL,
    submitted_at REAL NOT NULL,
    started_at REAL,
    ended_at REAL,
    exit_code INTEGER,
    message TEXT
);
CREATE INDEX jobs_state ON jobs(state);
CREATE TABLE job_nodes (
    job_id INTEGER NOT NULL REFERENCES jobs(id),
    rank INTEGER NOT NULL,
    gpu_ids TEXT NOT NULL,
    setup_pid INTEGER,
    setup_start INTEGER,
    setup_exit INTEGER,
    run_pid INTEGER,
    run_start INTEGER,
    run_exit INTEGER,
    PRIMARY KEY (job_id, rank)
);
"#];

/// Autostop settings (`aloft agent autostop`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Autostop {
    /// Idle minutes before stopping (fractions allowed).
    pub idle_minutes: f64,
    /// Tear down instead of stop.
    pub down: bool,
    /// When it was set (Unix seconds): idleness counts from here at least.
    pub set_at: f64,
}

/// A job's placement on one node, with its processes.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeRow {
    /// The node's rank.
    pub rank: u32,
    /// GPU device indices allocated to the job there.
    pub gpu_ids: Vec<u32>,
    /// The setup process, once started.
    pub setup: Option<ProcHandle>,
    /// Its exit status, once known.
    pub setup_exit: Option<i32>,
    /// The run process, once started.
    pub run: Option<ProcHandle>,
    /// Its exit status, once known.
    pub run_exit: Option<i32>,
}

impl NodeRow {
    /// The process of `phase`, and its exit status.
    pub fn phase(&self, phase: Phase) -> (Option<ProcHandle>, Option<i32>) {
        match phase {
            Phase::Setup => (self.setup, self.setup_exit),
            Phase::Run => (self.run, self.run_exit),
        }
    }
}

/// An open job database.
pub struct Store {
    conn: Connection,
    path: PathBuf,
}

const JOB_COLUMNS: &str =
    "id, name, username, setup, run, envs, secret_names, num_nodes, cpus, gpus, state, task_id, \
     submitted_at, started_at, ended_at, exit_code, message";

impl Store {
    /// Opens (creating and migrating) `D/agent.db`.
    pub fn open(dir: &StateDir) -> Result<Store> {
        crate::cluster::ensure_dir(dir.root())?;
        let path = dir.db();
        let db = |source| Error::Db {
            path: path.clone(),
            source,
        };
        let conn = Connection::open(&path).map_err(db)?;
        conn.busy_timeout(Duration::from_secs(30)).map_err(db)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(db)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(db)?;
        let mut store = Store { conn, path };
        store.migrate()?;
        Ok(store)
    }

    /// Opens the job table of an initialized state directory (never
    /// creating one) with its cluster, or [`Error::NotInitialized`].
    pub fn open_cluster(dir: &StateDir) -> Result<(Store, ClusterSpec)> {
        if !dir.db().exists() {
            return Err(Error::NotInitialized {
                dir: dir.root().to_path_buf(),
            });
        }
        let store = Store::open(dir)?;
        let cluster = store.require_cluster(dir)?;
        Ok((store, cluster))
    }

    fn err(&self) -> impl Fn(rusqlite::Error) -> Error + '_ {
        |source| Error::Db {
            path: self.path.clone(),
            source,
        }
    }

    fn migrate(&mut self) -> Result<()> {
        let path = self.path.clone();
        let db = |source| Error::Db {
            path: path.clone(),
            source,
        };
        let known = MIGRATIONS.len() as i64;
        // The common case takes no write lock.
        let version: i64 = self
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(db)?;
        if version == known {
            return Ok(());
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db)?;
        let version: i64 = tx
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(db)?;
        if version > known {
            return Err(Error::DbTooNew {
                path: path.clone(),
                found: version,
                known,
            });
        }
        for m in &MIGRATIONS[version as usize..] {
            tx.execute_batch(m).map_err(db)?;
        }
        if version < known {
            tx.pragma_update(None, "user_version", known).map_err(db)?;
        }
        tx.commit().map_err(db)
    }

    /// Runs `f` in an immediate (write-locking) transaction.
    pub fn write<T>(&mut self, f: impl FnOnce(&Tx<'_>) -> Result<T>) -> Result<T> {
        let path = self.path.clone();
        let db = |source| Error::Db {
            path: path.clone(),
            source,
        };
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db)?;
        let out = f(&Tx {
            tx: &tx,
            path: &path,
        })?;
        tx.commit().map_err(db)?;
        Ok(out)
    }

    /// A value of the `meta` table.
    pub fn meta(&self, key: &str) -> Result<Option<String>> {
        self.conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()
            .map_err(self.err())
    }

    /// Sets (or with `None` removes) a value of the `meta` table.
    pub fn set_meta(&self, key: &str, value: Option<&str>) -> Result<()> {
        match value {
            Some(v) => self.conn.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)",
                [key, v],
            ),
            None => self.conn.execute("DELETE FROM meta WHERE key = ?1", [key]),
        }
        .map(drop)
        .map_err(self.err())
    }

    /// The cluster `init` stored, if any.
    pub fn cluster(&self) -> Result<Option<ClusterSpec>> {
        self.meta_json("cluster", "stored cluster")
    }

    /// A JSON value kept in the meta table under `key`, if any.
    fn meta_json<T: serde::de::DeserializeOwned>(
        &self,
        key: &str,
        what: &'static str,
    ) -> Result<Option<T>> {
        self.meta(key)?
            .map(|j| serde_json::from_str(&j).map_err(|source| Error::Json { what, source }))
            .transpose()
    }

    /// The stored cluster, or [`Error::NotInitialized`].
    pub fn require_cluster(&self, dir: &StateDir) -> Result<ClusterSpec> {
        self.cluster()?.ok_or_else(|| Error::NotInitialized {
            dir: dir.root().to_path_buf(),
        })
    }

    /// Stores the cluster.
    pub fn set_cluster(&self, c: &ClusterSpec) -> Result<()> {
        let j = serde_json::to_string(c).map_err(|source| Error::Json {
            what: "cluster",
            source,
        })?;
        self.set_meta("cluster", Some(&j))
    }

    /// Autostop settings, if set.
    pub fn autostop(&self) -> Result<Option<Autostop>> {
        self.meta_json("autostop", "stored autostop")
    }

    /// Sets or clears autostop.
    pub fn set_autostop(&self, a: Option<&Autostop>) -> Result<()> {
        let j = a.map(|a| serde_json::json!(a).to_string());
        self.set_meta("autostop", j.as_deref())
    }

    /// Inserts a job in INIT; the caller moves it to PENDING once its files
    /// are written.
    pub fn insert_job(&mut self, spec: &JobSpec, cluster: &str, now: f64) -> Result<i64> {
        let envs = serde_json::json!(spec.envs).to_string();
        let secret_names = serde_json::json!(spec.secrets.keys().collect::<Vec<_>>()).to_string();
        let cluster = cluster.to_string();
        self.write(|tx| {
            tx.tx
                .execute(
                    "INSERT INTO jobs (name, username, setup, run, envs, secret_names, num_nodes, cpus, gpus, state, task_id, submitted_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'INIT', '', ?10)",
                    params![spec.name, spec.username, spec.setup, spec.run, envs, secret_names, spec.num_nodes, spec.cpus(), spec.gpus(), now],
                )
                .map_err(tx.err())?;
            let id = tx.tx.last_insert_rowid();
            tx.tx.execute("UPDATE jobs SET task_id = ?1 WHERE id = ?2", params![task_id(now, &cluster, id), id]).map_err(tx.err())?;
            Ok(id)
        })
    }

    /// One job.
    pub fn job(&self, id: i64) -> Result<Option<Job>> {
        self.conn
            .query_row(
                &format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?1"),
                [id],
                job_from_row,
            )
            .optional()
            .map_err(self.err())
    }

    /// Jobs in these states (all when empty), oldest first.
    pub fn jobs(&self, states: &[JobState]) -> Result<Vec<Job>> {
        let filter = if states.is_empty() {
            String::new()
        } else {
            // State names are our own constants: safe to inline.
            let names: Vec<String> = states.iter().map(|s| format!("'{}'", s.as_str())).collect();
            format!("WHERE state IN ({})", names.join(", "))
        };
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT {JOB_COLUMNS} FROM jobs {filter} ORDER BY id"
            ))
            .map_err(self.err())?;
        let rows = stmt.query_map([], job_from_row).map_err(self.err())?;
        rows.collect::<rusqlite::Result<Vec<Job>>>()
            .map_err(self.err())
    }

    /// The newest job's id.
    pub fn latest_job_id(&self) -> Result<Option<i64>> {
        self.conn
            .query_row("SELECT MAX(id) FROM jobs", [], |r| r.get(0))
            .map_err(self.err())
    }

    /// A job's node rows, by rank.
    pub fn nodes(&self, job: i64) -> Result<Vec<NodeRow>> {
        nodes(&self.conn, job).map_err(self.err())
    }

    /// The latest end time of any job.
    pub fn last_ended_at(&self) -> Result<Option<f64>> {
        self.conn
            .query_row("SELECT MAX(ended_at) FROM jobs", [], |r| r.get(0))
            .map_err(self.err())
    }
}

/// A write transaction (see [`Store::write`]).
pub struct Tx<'a> {
    tx: &'a Transaction<'a>,
    path: &'a PathBuf,
}

impl Tx<'_> {
    fn err(&self) -> impl Fn(rusqlite::Error) -> Error + '_ {
        |source| Error::Db {
            path: self.path.clone(),
            source,
        }
    }

    /// One job.
    pub fn job(&self, id: i64) -> Result<Option<Job>> {
        self.tx
            .query_row(
                &format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?1"),
                [id],
                job_from_row,
            )
            .optional()
            .map_err(self.err())
    }

    /// A job's node rows, by rank.
    pub fn nodes(&self, job: i64) -> Result<Vec<NodeRow>> {
        nodes(self.tx, job).map_err(self.err())
    }

    /// Moves `job` from one of `from` to `to`; false if it was in none of
    /// them. Sets `started_at` on entering SETTING_UP/RUNNING (first time)
    /// and `ended_at` on entering a terminal state.
    pub fn transition(&self, job: i64, from: &[JobState], to: JobState, now: f64) -> Result<bool> {
        let cur: Option<String> = self
            .tx
            .query_row("SELECT state FROM jobs WHERE id = ?1", [job], |r| r.get(0))
            .optional()
            .map_err(self.err())?;
        let Some(cur) = cur.and_then(|s| JobState::parse(&s)) else {
            return Ok(false);
        };
        if !from.contains(&cur) {
            return Ok(false);
        }
        let done = if to.is_terminal() {
            self.tx.execute(
                "UPDATE jobs SET state = ?1, ended_at = ?2 WHERE id = ?3",
                params![to.as_str(), now, job],
            )
        } else if to.is_active() {
            self.tx.execute(
                "UPDATE jobs SET state = ?1, started_at = COALESCE(started_at, ?2) WHERE id = ?3",
                params![to.as_str(), now, job],
            )
        } else {
            self.tx.execute(
                "UPDATE jobs SET state = ?1 WHERE id = ?2",
                params![to.as_str(), job],
            )
        };
        done.map_err(self.err())?;
        Ok(true)
    }

    /// Records why a job ended.
    pub fn set_outcome(
        &self,
        job: i64,
        exit_code: Option<i32>,
        message: Option<&str>,
    ) -> Result<()> {
        self.tx
            .execute(
                "UPDATE jobs SET exit_code = ?1, message = ?2 WHERE id = ?3",
                params![exit_code, message, job],
            )
            .map(drop)
            .map_err(self.err())
    }

    /// Creates the job's node rows with their GPU allocation.
    pub fn place(&self, job: i64, gpu_ids: &[Vec<u32>]) -> Result<()> {
        for (rank, ids) in gpu_ids.iter().enumerate() {
            self.tx
                .execute(
                    "INSERT OR REPLACE INTO job_nodes (job_id, rank, gpu_ids) VALUES (?1, ?2, ?3)",
                    params![job, rank as u32, serde_json::json!(ids).to_string()],
                )
                .map_err(self.err())?;
        }
        Ok(())
    }

    /// Records a started process.
    pub fn set_proc(&self, job: i64, rank: u32, phase: Phase, h: &ProcHandle) -> Result<()> {
        let sql = match phase {
            Phase::Setup => "UPDATE job_nodes SET setup_pid = ?1, setup_start = ?2, setup_exit = NULL WHERE job_id = ?3 AND rank = ?4",
            Phase::Run => "UPDATE job_nodes SET run_pid = ?1, run_start = ?2, run_exit = NULL WHERE job_id = ?3 AND rank = ?4",
        };
        self.tx
            .execute(sql, params![h.pid, h.start_ticks as i64, job, rank])
            .map(drop)
            .map_err(self.err())
    }

    /// Records a process's exit status.
    pub fn set_exit(&self, job: i64, rank: u32, phase: Phase, code: i32) -> Result<()> {
        let sql = match phase {
            Phase::Setup => "UPDATE job_nodes SET setup_exit = ?1 WHERE job_id = ?2 AND rank = ?3",
            Phase::Run => "UPDATE job_nodes SET run_exit = ?1 WHERE job_id = ?2 AND rank = ?3",
        };
        self.tx
            .execute(sql, params![code, job, rank])
            .map(drop)
            .map_err(self.err())
    }
}

fn nodes(conn: &Connection, job: i64) -> rusqlite::Result<Vec<NodeRow>> {
    let mut stmt = conn.prepare_cached(
        "SELECT rank, gpu_ids, setup_pid, setup_start, setup_exit, run_pid, run_start, run_exit FROM job_nodes WHERE job_id = ?1 ORDER BY rank",
    )?;
    let rows = stmt.query_map([job], |r| {
        let handle = |pid: Option<i32>, start: Option<i64>| {
            pid.map(|pid| ProcHandle {
                pid,
                start_ticks: start.unwrap_or(0) as u64,
            })
        };
        let gpu_ids: String = r.get(1)?;
        Ok(NodeRow {
            rank: r.get(0)?,
            gpu_ids: serde_json::from_str(&gpu_ids).unwrap_or_default(),
            setup: handle(r.get(2)?, r.get(3)?),
            setup_exit: r.get(4)?,
            run: handle(r.get(5)?, r.get(6)?),
            run_exit: r.get(7)?,
        })
    })?;
    rows.collect()
}

fn job_from_row(r: &Row<'_>) -> rusqlite::Result<Job> {
    let text = |i: usize| -> rusqlite::Result<String> { r.get(i) };
    let state = text(10)?;
    Ok(Job {
        job_id: r.get(0)?,
        name: r.get(1)?,
        username: r.get(2)?,
        setup: r.get(3)?,
        run: r.get(4)?,
        envs: serde_json::from_str(&text(5)?).unwrap_or_default(),
        secret_names: serde_json::from_str(&text(6)?).unwrap_or_default(),
        num_nodes: r.get(7)?,
        cpus: r.get(8)?,
        gpus: r.get(9)?,
        state: JobState::parse(&state).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                10,
                rusqlite::types::Type::Text,
                format!("unknown job state {state}").into(),
            )
        })?,
        task_id: text(11)?,
        submitted_at: r.get(12)?,
        started_at: r.get(13)?,
        ended_at: r.get(14)?,
        exit_code: r.get(15)?,
        message: r.get(16)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrates_inserts_and_transitions() {
        let d = tempfile::tempdir().unwrap();
        let dir = StateDir::new(d.path());
        let mut s = Store::open(&dir).unwrap();
        let spec = JobSpec::parse(r#"{"run":"echo","secrets":{"TOKEN":"hunter2"}}"#).unwrap();
        let id = s.insert_job(&spec, "c1", 10.0).unwrap();
        assert_eq!(id, 1);
        let ok = s
            .write(|tx| tx.transition(id, &[JobState::Init], JobState::Pending, 11.0))
            .unwrap();
        assert!(ok);
        let again = s
            .write(|tx| tx.transition(id, &[JobState::Init], JobState::Cancelled, 12.0))
            .unwrap();
        assert!(!again);
        s.write(|tx| tx.transition(id, &[JobState::Pending], JobState::Running, 13.0))
            .unwrap();
        s.write(|tx| tx.transition(id, &[JobState::Running], JobState::Succeeded, 14.0))
            .unwrap();
        let j = s.job(id).unwrap().unwrap();
        assert_eq!(
            (j.state, j.started_at, j.ended_at),
            (JobState::Succeeded, Some(13.0), Some(14.0))
        );
        assert_eq!(j.secret_names, vec!["TOKEN".to_string()]);
        drop(s);
        // Reopening does not re-run migrations.
        let s = Store::open(&dir).unwrap();
        assert_eq!(s.jobs(&[]).unwrap().len(), 1);
        let raw = std::fs::read(dir.db()).unwrap();
        assert!(!raw.windows(7).any(|w| w == b"hunter2"));
    }

    #[test]
    fn refuses_a_newer_schema() {
        let d = tempfile::tempdir().unwrap();
        let dir = StateDir::new(d.path());
        drop(Store::open(&dir).unwrap());
        let c = Connection::open(dir.db()).unwrap();
        c.pragma_update(None, "user_version", 99).unwrap();
        drop(c);
        let e = Store::open(&dir).err().unwrap().to_string();
        assert!(e.contains("schema version 99"), "{e}");
    }
}
