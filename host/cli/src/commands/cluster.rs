//! Cluster verbs: `status`, `stop`, `start`, `down`, `autostop`, and the
//! hidden `internal-autostop` the agent runs when a cluster idles.

use crate::backend::{agent_json, down_cluster, now, start_cluster, stop_cluster};
use crate::home::aloft_home;
use crate::state::{check_cluster_name, Cluster, ClusterLock, ClusterStatus, State};
use crate::table::Table;
use crate::Exit;
use anyhow::{bail, Result};
use std::io::IsTerminal;

/// Show clusters.
#[derive(Debug, clap::Args)]
pub struct Status {
    /// Only these clusters.
    pub clusters: Vec<String>,
    /// Ask each cluster for its real state first.
    #[arg(short = 'r', long)]
    pub refresh: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

fn ago(secs: i64) -> String {
    let d = (now() - secs).max(0);
    match d {
        0..=59 => format!("{d} secs ago"),
        60..=3599 => format!("{} mins ago", d / 60),
        3600..=86399 => format!("{} hrs ago", d / 3600),
        _ => format!("{} days ago", d / 86400),
    }
}

fn autostop_text(c: &Cluster) -> String {
    match c.autostop_minutes {
        None => "-".into(),
        Some(m) => {
            let m = if m.fract() == 0.0 {
                format!("{}m", m as i64)
            } else {
                format!("{m}m")
            };
            if c.autostop_down {
                format!("{m} (down)")
            } else {
                m
            }
        }
    }
}

impl Status {
    /// Runs the command.
    pub async fn run(self) -> Result<()> {
        let home = aloft_home()?;
        let state = State::open(&home)?;
        if self.refresh {
            for c in state.clusters()? {
                if !self.clusters.is_empty() && !self.clusters.contains(&c.name) {
                    continue;
                }
                // A cluster another command is changing is left to it.
                let Some(_lock) = ClusterLock::try_acquire(&home, &c.name)? else {
                    continue;
                };
                if let Some(c) = state.cluster(&c.name)? {
                    refresh(&state, &c).await?;
                }
            }
        }
        let clusters: Vec<Cluster> = state
            .clusters()?
            .into_iter()
            .filter(|c| self.clusters.is_empty() || self.clusters.contains(&c.name))
            .collect();
        for name in &self.clusters {
            if !clusters.iter().any(|c| &c.name == name) {
                eprintln!("cluster {name} does not exist");
            }
        }
        if self.json {
            crate::outln(&serde_json::to_string_pretty(&clusters)?);
            return Ok(());
        }
        if clusters.is_empty() {
            eprintln!("No existing clusters.");
            return Ok(());
        }
        let mut t = Table::new(&[
            "NAME",
            "INFRA",
            "RESOURCES",
            "STATUS",
            "AUTOSTOP",
            "LAUNCHED",
        ]);
        for c in &clusters {
            let infra = match (&c.region, &c.zone) {
                (Some(r), Some(z)) => format!("{}/{r}/{z}", c.provider),
                (Some(r), None) => format!("{}/{r}", c.provider),
                _ => c.provider.clone(),
            };
            t.row(vec![
                c.name.clone(),
                infra,
                c.resources.clone(),
                c.status.as_str().into(),
                autostop_text(c),
                ago(c.launched_at),
            ]);
        }
        crate::out(&t.render());
        Ok(())
    }
}

/// Brings one record in line with reality: a local cluster whose directory
/// is gone is forgotten; an UP cluster's agent is restarted if it died; an
/// UP cluster whose head cannot be reached goes to INIT (and back to UP once
/// it answers again).
async fn refresh(state: &State, c: &Cluster) -> Result<()> {
    if c.provider == "local" && !std::path::Path::new(&c.handle.agent_dir).exists() {
        state.remove(&c.name)?;
        return Ok(());
    }
    if !matches!(c.status, ClusterStatus::Up | ClusterStatus::Init) {
        return Ok(());
    }
    if c.provider != "local" && c.provider != "ssh" {
        // Ask the provider: a preempted or vanished instance makes the
        // cluster INIT (as SkyPilot shows it).
        let home = crate::home::aloft_home()?;
        let running = match crate::cloud::query(&home, c).await {
            Ok(v) => v
                .into_iter()
                .filter(|i| i.state == aloft_core::provider::InstanceState::Running)
                .count(),
            Err(e) => {
                // One provider not answering does not stop `status -r`.
                eprintln!("warning: cluster {}: asking {}: {e:#}", c.name, c.provider);
                return state.set_status(&c.name, ClusterStatus::Init);
            }
        };
        if running < c.num_nodes as usize {
            eprintln!(
                "warning: cluster {}: {running} of {} instance(s) running (preempted or gone)",
                c.name, c.num_nodes
            );
            return state.set_status(&c.name, ClusterStatus::Init);
        }
    }
    match agent_json(c, "ensure", &[], None).await {
        Ok(_) if c.status == ClusterStatus::Init => state.set_status(&c.name, ClusterStatus::Up),
        Ok(_) => Ok(()),
        Err(e) => {
            eprintln!("warning: cluster {}: {e:#}", c.name);
            state.set_status(&c.name, ClusterStatus::Init)
        }
    }
}

fn confirm(what: &str, yes: bool) -> Result<()> {
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        bail!(Exit {
            code: 2,
            message: format!("{what}: confirm with -y (no terminal to ask on)")
        });
    }
    eprint!("{what}? [y/N]: ");
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    if matches!(line.trim(), "y" | "Y" | "yes") {
        Ok(())
    } else {
        bail!(Exit {
            code: 1,
            message: "aborted".into()
        })
    }
}

/// The clusters named (or all with `all`), each checked to exist.
fn pick(state: &State, names: &[String], all: bool) -> Result<Vec<Cluster>> {
    if all {
        return state.clusters();
    }
    if names.is_empty() {
        bail!(Exit {
            code: 2,
            message: "name a cluster (or -a for all)\nhint: aloft status lists them".into()
        });
    }
    let mut out = Vec::new();
    for n in names {
        check_cluster_name(n)?;
        match state.cluster(n)? {
            Some(c) => out.push(c),
            None => bail!("cluster {n} does not exist\nhint: aloft status lists the clusters"),
        }
    }
    Ok(out)
}

/// Stop clusters (jobs end; node directories are kept).
#[derive(Debug, clap::Args)]
pub struct Stop {
    /// Clusters.
    pub clusters: Vec<String>,
    /// Every cluster.
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Do not ask.
    #[arg(short = 'y', long)]
    pub yes: bool,
}

impl Stop {
    /// Runs the command.
    pub async fn run(self) -> Result<()> {
        let home = aloft_home()?;
        let state = State::open(&home)?;
        let clusters = pick(&state, &self.clusters, self.all)?;
        let names: Vec<&str> = clusters.iter().map(|c| c.name.as_str()).collect();
        confirm(&format!("Stop {}", names.join(", ")), self.yes)?;
        for c in clusters {
            let _lock = ClusterLock::acquire(&home, &c.name)?;
            let Some(c) = state.cluster(&c.name)? else {
                continue;
            };
            stop_cluster(&state, &c).await?;
            eprintln!("Cluster {} stopped.", c.name);
        }
        Ok(())
    }
}

/// Start stopped clusters.
#[derive(Debug, clap::Args)]
pub struct Start {
    /// Clusters.
    pub clusters: Vec<String>,
    /// Every cluster.
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Do not ask.
    #[arg(short = 'y', long)]
    pub yes: bool,
}

impl Start {
    /// Runs the command.
    pub async fn run(self) -> Result<()> {
        let home = aloft_home()?;
        let state = State::open(&home)?;
        for c in pick(&state, &self.clusters, self.all)? {
            let _lock = ClusterLock::acquire(&home, &c.name)?;
            let Some(c) = state.cluster(&c.name)? else {
                continue;
            };
            start_cluster(&home, &state, &c).await?;
            eprintln!("Cluster {} is UP.", c.name);
        }
        Ok(())
    }
}

/// Tear clusters down.
#[derive(Debug, clap::Args)]
pub struct Down {
    /// Clusters.
    pub clusters: Vec<String>,
    /// Every cluster.
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Do not ask.
    #[arg(short = 'y', long)]
    pub yes: bool,
}

impl Down {
    /// Runs the command.
    pub async fn run(self) -> Result<()> {
        let home = aloft_home()?;
        let state = State::open(&home)?;
        let clusters = pick(&state, &self.clusters, self.all)?;
        if clusters.is_empty() {
            eprintln!("No existing clusters.");
            return Ok(());
        }
        let names: Vec<&str> = clusters.iter().map(|c| c.name.as_str()).collect();
        confirm(&format!("Terminate {}", names.join(", ")), self.yes)?;
        for c in clusters {
            let _lock = ClusterLock::acquire(&home, &c.name)?;
            let Some(c) = state.cluster(&c.name)? else {
                continue;
            };
            down_cluster(&home, &state, &c).await?;
            eprintln!("Cluster {} terminated.", c.name);
        }
        Ok(())
    }
}

/// Set or cancel a cluster's autostop.
#[derive(Debug, clap::Args)]
pub struct Autostop {
    /// Clusters.
    pub clusters: Vec<String>,
    /// Idle minutes before stopping.
    #[arg(short = 'i', long = "idle-minutes", required_unless_present = "cancel")]
    pub idle_minutes: Option<f64>,
    /// Tear down instead of stopping.
    #[arg(long)]
    pub down: bool,
    /// Cancel autostop.
    #[arg(long, conflicts_with = "idle_minutes")]
    pub cancel: bool,
}

impl Autostop {
    /// Runs the command.
    pub async fn run(self) -> Result<()> {
        let home = aloft_home()?;
        let state = State::open(&home)?;
        for c in pick(&state, &self.clusters, false)? {
            if c.status != ClusterStatus::Up {
                bail!("cluster {} is {}, not UP", c.name, c.status.as_str());
            }
            set_autostop(
                &state,
                &c,
                if self.cancel { None } else { self.idle_minutes },
                self.down,
            )
            .await?;
        }
        Ok(())
    }
}

/// Sets autostop on the agent and in the state.
pub async fn set_autostop(
    state: &State,
    c: &Cluster,
    minutes: Option<f64>,
    down: bool,
) -> Result<()> {
    match minutes {
        None => {
            agent_json(c, "autostop", &["--cancel"], None).await?;
            eprintln!("Autostop cancelled for {}.", c.name);
        }
        Some(m) => {
            if !(m >= 0.0 && m.is_finite()) {
                bail!(Exit {
                    code: 2,
                    message: format!("-i {m}: idle minutes must be a number >= 0")
                });
            }
            let m_s = m.to_string();
            let mut args = vec!["--idle-minutes", m_s.as_str()];
            if down {
                args.push("--down");
            }
            agent_json(c, "autostop", &args, None).await?;
            eprintln!(
                "Cluster {} will {} after {m} idle minutes.",
                c.name,
                if down { "be torn down" } else { "stop" }
            );
        }
    }
    state.set_autostop(&c.name, minutes, down)
}

/// Run by the agent when a cluster's autostop is due.
#[derive(Debug, clap::Args)]
pub struct InternalAutostop {
    /// Cluster.
    pub cluster: String,
    /// `stop` or `down`.
    pub action: String,
}

impl InternalAutostop {
    /// Runs the command.
    pub async fn run(self) -> Result<()> {
        let home = aloft_home()?;
        let state = State::open(&home)?;
        check_cluster_name(&self.cluster)?;
        let _lock = ClusterLock::acquire(&home, &self.cluster)?;
        let Some(c) = state.cluster(&self.cluster)? else {
            return Ok(());
        };
        state.set_status(&c.name, ClusterStatus::Autostopping)?;
        match self.action.as_str() {
            "down" => down_cluster(&home, &state, &c).await,
            _ => stop_cluster(&state, &c).await,
        }
    }
}
