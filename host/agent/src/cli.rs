//! `aloft agent ...`: the subcommands the client runs on the head node.
//!
//! Each is a short-lived process over the state directory, except `daemon`
//! (long-lived) and `logs --follow` (until the job ends). JSON goes to
//! stdout where the client reads it; errors go to the binary, which prints
//! them once.

use crate::cluster::ClusterSpec;
use crate::daemon;
use crate::error::{io, Result};
use crate::job::JobSpec;
use crate::logs::{logs, LogOptions};
use crate::ops::{self, Which};
use crate::paths::StateDir;
use crate::report;
use clap::{Args, Subcommand};
use serde_json::json;
use std::io::Read;
use std::path::PathBuf;

/// The state directory every subcommand works on.
#[derive(Debug, Clone, Args)]
pub struct DirArg {
    /// The agent's state directory (agent.db, jobs/, daemon.*).
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
}

impl DirArg {
    fn state(&self) -> StateDir {
        StateDir::new(&self.dir)
    }
}

/// The node agent (runs on the cluster's head node).
#[derive(Debug, Subcommand)]
pub enum AgentCommand {
    /// Create or update the state directory for a cluster; prints
    /// {"cluster": NAME, "num_nodes": N}.
    Init {
        #[command(flatten)]
        dir: DirArg,
        /// The cluster description as JSON ("-" reads stdin).
        #[arg(long, value_name = "JSON")]
        cluster: String,
    },
    /// Queue a job; prints {"job_id": N}.
    Submit {
        #[command(flatten)]
        dir: DirArg,
        /// The job spec as JSON ("-" reads stdin).
        #[arg(long, value_name = "JSON")]
        spec: String,
    },
    /// Show job states, exit codes and times.
    Status {
        #[command(flatten)]
        dir: DirArg,
        /// These jobs (default: all).
        jobs: Vec<i64>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List jobs, newest first.
    Queue {
        #[command(flatten)]
        dir: DirArg,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// Include every finished job (default: the newest 50).
        #[arg(long)]
        all: bool,
    },
    /// Print a job's output (exit: 0 succeeded, 100 failed, 101 not
    /// finished, 102 not found, 103 cancelled).
    Logs {
        #[command(flatten)]
        dir: DirArg,
        /// The job (default: the newest).
        job: Option<i64>,
        /// Stream until the job ends.
        #[arg(long)]
        follow: bool,
        /// Start with only the last N lines.
        #[arg(long, value_name = "N")]
        tail: Option<usize>,
    },
    /// Cancel jobs: kill their processes on every node.
    Cancel {
        #[command(flatten)]
        dir: DirArg,
        /// The jobs.
        jobs: Vec<i64>,
        /// Every unfinished job.
        #[arg(long, conflicts_with = "jobs")]
        all: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run the scheduler daemon (exits at once if one already runs).
    Daemon {
        #[command(flatten)]
        dir: DirArg,
        /// Run in the background (output to DIR/daemon.log).
        #[arg(long)]
        detach: bool,
    },
    /// Start the daemon unless it runs; prints {"started": BOOL, "pid": P}.
    Ensure {
        #[command(flatten)]
        dir: DirArg,
    },
    /// Stop or tear down the cluster after it idles; prints {"autostop": ...}.
    Autostop {
        #[command(flatten)]
        dir: DirArg,
        /// Idle minutes before autostop (fractions allowed).
        #[arg(long, value_name = "N", required_unless_present = "cancel")]
        idle_minutes: Option<f64>,
        /// Tear down instead of stopping.
        #[arg(long, conflicts_with = "cancel")]
        down: bool,
        /// Turn autostop off.
        #[arg(long, conflicts_with = "idle_minutes")]
        cancel: bool,
    },
    /// Report idleness and autostop settings.
    Idle {
        #[command(flatten)]
        dir: DirArg,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Stop the daemon and kill every job; prints
    /// {"daemon_stopped": BOOL, "cancelled": [IDS]}.
    Shutdown {
        #[command(flatten)]
        dir: DirArg,
    },
}

/// Reads a JSON argument; "-" means stdin.
fn json_arg(arg: &str) -> Result<String> {
    if arg != "-" {
        return Ok(arg.to_string());
    }
    let mut s = String::new();
    std::io::stdin()
        .read_to_string(&mut s)
        .map_err(io("reading", "standard input"))?;
    Ok(s)
}

/// Prints a line to stdout; a closed pipe is not an error.
fn println_out(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}").and_then(|()| out.flush());
}

impl AgentCommand {
    /// Runs the subcommand; returns the process exit status (non-zero only
    /// from `logs`, already explained on stderr).
    pub fn run(self) -> Result<u8> {
        match self {
            AgentCommand::Init { dir, cluster } => {
                let spec = ClusterSpec::parse(&json_arg(&cluster)?)?;
                ops::init(&dir.state(), &spec)?;
                println_out(
                    &json!({ "cluster": spec.name, "num_nodes": spec.nodes.len() }).to_string(),
                );
            }
            AgentCommand::Submit { dir, spec } => {
                let id = ops::submit(&dir.state(), &JobSpec::parse(&json_arg(&spec)?)?)?;
                println_out(&json!({ "job_id": id }).to_string());
            }
            AgentCommand::Status { dir, jobs, json } => {
                let v = report::status_json(&dir.state(), &jobs)?;
                println_out(
                    if json {
                        v.to_string()
                    } else {
                        report::status_table(&v)
                    }
                    .trim_end(),
                );
            }
            AgentCommand::Queue { dir, json, all } => {
                let text = if json {
                    report::queue_json(&dir.state(), all)?.to_string()
                } else {
                    report::queue_table(&dir.state(), all)?
                };
                println_out(text.trim_end());
            }
            AgentCommand::Logs {
                dir,
                job,
                follow,
                tail,
            } => {
                let mut out = std::io::stdout();
                return logs(&dir.state(), job, LogOptions { follow, tail }, &mut out);
            }
            AgentCommand::Cancel {
                dir,
                jobs,
                all,
                json,
            } => {
                let which = if all { Which::All } else { Which::Ids(jobs) };
                let r = ops::cancel(&dir.state(), which, "cancelled by the user")?;
                if json {
                    println_out(&json!(r).to_string());
                } else {
                    let mut lines: Vec<String> = r
                        .cancelled
                        .iter()
                        .map(|c| format!("Cancelled job {} (was {}).", c.job_id, c.previous_status))
                        .collect();
                    lines.extend(r.already_finished.iter().map(|f| {
                        format!(
                            "Job {} is already {}; nothing to cancel.",
                            f.job_id, f.status
                        )
                    }));
                    if lines.is_empty() {
                        lines.push("No unfinished jobs to cancel.".into());
                    }
                    println_out(&lines.join("\n"));
                }
            }
            AgentCommand::Daemon { dir, detach } => {
                if detach {
                    daemon::detach(&dir.state())?;
                } else {
                    daemon::run(&dir.state())?;
                }
            }
            AgentCommand::Ensure { dir } => {
                let (started, pid) = daemon::ensure(&dir.state())?;
                println_out(&json!({ "started": started, "pid": pid }).to_string());
            }
            AgentCommand::Autostop {
                dir,
                idle_minutes,
                down,
                cancel,
            } => {
                let setting = if cancel {
                    None
                } else {
                    idle_minutes.map(|m| (m, down))
                };
                let a = ops::set_autostop(&dir.state(), setting)?;
                println_out(&json!({ "autostop": a }).to_string());
            }
            AgentCommand::Idle { dir, json } => {
                let v = report::idle_json(&dir.state())?;
                println_out(&if json {
                    v.to_string()
                } else {
                    report::idle_text(&v)
                });
            }
            AgentCommand::Shutdown { dir } => {
                let r = ops::shutdown(&dir.state())?;
                println_out(&json!(r).to_string());
            }
        }
        Ok(0)
    }
}
