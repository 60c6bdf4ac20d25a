//! Client state: `$ALOFT_HOME/state.db` (SQLite, WAL, versioned
//! migrations). Every command may run concurrently with others: writes are
//! short `IMMEDIATE` transactions under a busy timeout, and operations that
//! change one cluster take that cluster's file lock ([`ClusterLock`]).

use anyhow::{bail, Context, Result};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Migrations, applied in order; `user_version` is the number applied.
const MIGRATIONS: &[&str] = &[
    // 1: clusters
    "CREATE TABLE clusters (
        name TEXT PRIMARY KEY,
        provider TEXT NOT NULL,
        region TEXT,
        zone TEXT,
        instance_type TEXT,
        num_nodes INTEGER NOT NULL,
        resources TEXT NOT NULL,
        status TEXT NOT NULL,
        launched_at INTEGER NOT NULL,
        handle TEXT NOT NULL,
        autostop_minutes REAL,
        autostop_down INTEGER NOT NULL DEFAULT 0,
        hourly_cost REAL NOT NULL DEFAULT 0
    );",
];

/// Cluster status, as SkyPilot's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ClusterStatus {
    /// Being provisioned, or in an unknown state.
    Init,
    /// Up and usable.
    Up,
    /// Stopped (disks kept).
    Stopped,
    /// Autostop is stopping it.
    Autostopping,
}

impl ClusterStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            ClusterStatus::Init => "INIT",
            ClusterStatus::Up => "UP",
            ClusterStatus::Stopped => "STOPPED",
            ClusterStatus::Autostopping => "AUTOSTOPPING",
        }
    }

    fn parse(s: &str) -> ClusterStatus {
        match s {
            "UP" => ClusterStatus::Up,
            "STOPPED" => ClusterStatus::Stopped,
            "AUTOSTOPPING" => ClusterStatus::Autostopping,
            _ => ClusterStatus::Init,
        }
    }
}

/// One node as the client knows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// Rank; 0 is the head.
    pub rank: u32,
    /// Address.
    pub ip: String,
    /// Home-like directory (local provider) or remote home.
    pub home: String,
    /// vCPUs.
    pub cpus: f64,
    /// GPU indices on this node.
    #[serde(default)]
    pub gpus: Vec<u32>,
    /// GPU model, if any.
    #[serde(default)]
    pub gpu_name: Option<String>,
    /// How the client reaches the node over SSH (ssh node pools).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh: Option<NodeSsh>,
}

/// SSH coordinates of a node, as the client reaches it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeSsh {
    /// Login user.
    pub user: String,
    /// Port.
    pub port: u16,
    /// Key file instead of aloft's own.
    #[serde(default)]
    pub identity_file: Option<String>,
}

/// How to reach a cluster: its nodes and the agent's directory on the head.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Handle {
    /// Nodes, rank order.
    pub nodes: Vec<Node>,
    /// The agent's state directory on the head node.
    pub agent_dir: String,
    /// The `aloft` binary on the head; none = this one (local provider).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exe: Option<String>,
    /// The cluster-internal private key on the head (it reaches workers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub internal_key: Option<String>,
}

/// A cluster record.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cluster {
    /// Name.
    pub name: String,
    /// Provider (`local`, `aws`, ...).
    pub provider: String,
    /// Region.
    pub region: Option<String>,
    /// Zone.
    pub zone: Option<String>,
    /// Instance type.
    pub instance_type: Option<String>,
    /// Nodes.
    pub num_nodes: u32,
    /// Human description of the resources (e.g. `1x local(cpus=2, mem=8)`).
    pub resources: String,
    /// Status.
    pub status: ClusterStatus,
    /// Unix seconds.
    pub launched_at: i64,
    /// Nodes and agent location.
    pub handle: Handle,
    /// Autostop idle minutes, if set.
    pub autostop_minutes: Option<f64>,
    /// Autostop tears down instead of stopping.
    pub autostop_down: bool,
    /// Total hourly cost.
    pub hourly_cost: f64,
}

/// The state database.
pub struct State {
    conn: Connection,
}

impl State {
    /// Opens (creating and migrating) `$ALOFT_HOME/state.db`.
    pub fn open(home: &Path) -> Result<State> {
        let path = home.join("state.db");
        let conn =
            Connection::open(&path).with_context(|| format!("opening {}", path.display()))?;
        conn.busy_timeout(Duration::from_secs(30))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        let mut state = State { conn };
        state
            .migrate()
            .with_context(|| format!("migrating {}", path.display()))?;
        Ok(state)
    }

    fn migrate(&mut self) -> Result<()> {
        // The common case, up to date, needs no write transaction.
        let current: usize = self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if current == MIGRATIONS.len() {
            return Ok(());
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let version: usize = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version > MIGRATIONS.len() {
            bail!(
                "state.db is from a newer aloft (schema {version}, this one knows {})",
                MIGRATIONS.len()
            );
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version) {
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", i + 1)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Every cluster, by name.
    pub fn clusters(&self) -> Result<Vec<Cluster>> {
        let mut stmt = self.conn.prepare(&format!("{SELECT} ORDER BY name"))?;
        let rows = stmt.query_map([], row)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(Into::into)
    }

    /// One cluster.
    pub fn cluster(&self, name: &str) -> Result<Option<Cluster>> {
        Ok(self
            .conn
            .query_row(&format!("{SELECT} WHERE name = ?1"), [name], row)
            .optional()?)
    }

    /// Inserts or replaces a cluster record.
    pub fn put(&self, c: &Cluster) -> Result<()> {
        self.conn.execute(
            "INSERT OR REPLACE INTO clusters (name, provider, region, zone, instance_type, num_nodes,
                resources, status, launched_at, handle, autostop_minutes, autostop_down, hourly_cost)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            params![
                c.name,
                c.provider,
                c.region,
                c.zone,
                c.instance_type,
                c.num_nodes,
                c.resources,
                c.status.as_str(),
                c.launched_at,
                serde_json::to_string(&c.handle)?,
                c.autostop_minutes,
                c.autostop_down,
                c.hourly_cost,
            ],
        )?;
        Ok(())
    }

    /// Sets a cluster's status.
    pub fn set_status(&self, name: &str, status: ClusterStatus) -> Result<()> {
        self.conn.execute(
            "UPDATE clusters SET status = ?2 WHERE name = ?1",
            params![name, status.as_str()],
        )?;
        Ok(())
    }

    /// Sets (or clears) autostop.
    pub fn set_autostop(&self, name: &str, minutes: Option<f64>, down: bool) -> Result<()> {
        self.conn.execute(
            "UPDATE clusters SET autostop_minutes = ?2, autostop_down = ?3 WHERE name = ?1",
            params![name, minutes, down],
        )?;
        Ok(())
    }

    /// Forgets a cluster.
    pub fn remove(&self, name: &str) -> Result<()> {
        self.conn
            .execute("DELETE FROM clusters WHERE name = ?1", [name])?;
        Ok(())
    }
}

const SELECT: &str =
    "SELECT name, provider, region, zone, instance_type, num_nodes, resources, status,
    launched_at, handle, autostop_minutes, autostop_down, hourly_cost FROM clusters";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Cluster> {
    let handle: String = r.get(9)?;
    let handle = serde_json::from_str(&handle).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(9, rusqlite::types::Type::Text, Box::new(e))
    })?;
    let status: String = r.get(7)?;
    Ok(Cluster {
        name: r.get(0)?,
        provider: r.get(1)?,
        region: r.get(2)?,
        zone: r.get(3)?,
        instance_type: r.get(4)?,
        num_nodes: r.get(5)?,
        resources: r.get(6)?,
        status: ClusterStatus::parse(&status),
        launched_at: r.get(8)?,
        handle,
        autostop_minutes: r.get(10)?,
        autostop_down: r.get(11)?,
        hourly_cost: r.get(12)?,
    })
}

/// An exclusive lock on one cluster (`$ALOFT_HOME/locks/<name>.lock`), held
/// while a command changes it; released on drop (or when the process dies).
pub struct ClusterLock {
    _file: std::fs::File,
    _path: PathBuf,
}

impl ClusterLock {
    /// Waits for and takes the lock.
    pub fn acquire(home: &Path, cluster: &str) -> Result<ClusterLock> {
        let (file, path) = lock_file(home, cluster)?;
        file.lock()
            .with_context(|| format!("locking {}", path.display()))?;
        Ok(ClusterLock {
            _file: file,
            _path: path,
        })
    }

    /// Takes the lock if nobody holds it; `None` if a command is changing
    /// the cluster right now.
    pub fn try_acquire(home: &Path, cluster: &str) -> Result<Option<ClusterLock>> {
        let (file, path) = lock_file(home, cluster)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(ClusterLock {
                _file: file,
                _path: path,
            })),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => {
                Err(e).with_context(|| format!("locking {}", path.display()))
            }
        }
    }
}

/// Opens (creating) `$ALOFT_HOME/locks/<name>.lock`.
fn lock_file(home: &Path, cluster: &str) -> Result<(std::fs::File, PathBuf)> {
    let dir = home.join("locks");
    std::fs::create_dir_all(&dir).with_context(|| dir.display().to_string())?;
    let path = dir.join(format!("{cluster}.lock"));
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| path.display().to_string())?;
    Ok((file, path))
}

/// Whether a name is `[a-z0-9-]`, 1..=63 characters, not starting with '-'.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && !name.starts_with('-')
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Checks a cluster name: `[a-z0-9-]`, 1..=63, starting with a letter or
/// digit (no shell or path tricks).
pub fn check_cluster_name(name: &str) -> Result<()> {
    if !valid_name(name) {
        return Err(crate::Exit {
            code: 2,
            message: format!(
                "invalid cluster name {name:?}: use 1-63 characters of a-z, 0-9 and '-', not starting with '-'\nhint: e.g. -c my-cluster-1"
            ),
        }
        .into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(check_cluster_name("dev-1").is_ok());
        for bad in ["", "-x", "A", "a b", "a/b", "a;rm", "../x", &"a".repeat(64)] {
            assert!(check_cluster_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn roundtrip_and_migrations_are_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let s = State::open(dir.path()).unwrap();
        let c = Cluster {
            name: "c1".into(),
            provider: "local".into(),
            region: None,
            zone: None,
            instance_type: None,
            num_nodes: 2,
            resources: "2x local".into(),
            status: ClusterStatus::Up,
            launched_at: 1,
            handle: Handle {
                nodes: vec![],
                agent_dir: "/x".into(),
                exe: Some("/h/.aloft/bin/aloft".into()),
                internal_key: None,
            },
            autostop_minutes: Some(5.0),
            autostop_down: true,
            hourly_cost: 0.0,
        };
        s.put(&c).unwrap();
        drop(s);
        let s = State::open(dir.path()).unwrap();
        assert_eq!(s.cluster("c1").unwrap().unwrap(), c);
        s.set_status("c1", ClusterStatus::Stopped).unwrap();
        assert_eq!(s.clusters().unwrap()[0].status, ClusterStatus::Stopped);
        s.remove("c1").unwrap();
        assert!(s.cluster("c1").unwrap().is_none());
    }
}
