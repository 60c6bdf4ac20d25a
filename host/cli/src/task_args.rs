//! Reading a task the way `sky launch` does: a YAML file or a command
//! string, then the command-line overrides (`--gpus`, `--env`, ...).

use crate::Exit;
use aloft_core::task::{parse_env_file, Overrides, Task};
use anyhow::{Context, Result};
use std::path::Path;

/// Task-shaping flags shared by `launch`, `exec` and `jobs launch`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct TaskArgs {
    /// Where to run: cloud[/region[/zone]], k8s[/context], ssh/POOL, local, *.
    #[arg(long)]
    pub infra: Option<String>,
    /// Accelerators, NAME[:COUNT] (e.g. A100:8).
    #[arg(long)]
    pub gpus: Option<String>,
    /// vCPUs per node: N or N+.
    #[arg(long)]
    pub cpus: Option<String>,
    /// Memory per node in GB: N or N+.
    #[arg(long)]
    pub memory: Option<String>,
    /// Instance type.
    #[arg(long)]
    pub instance_type: Option<String>,
    /// Use spot instances.
    #[arg(long, overrides_with = "no_use_spot")]
    pub use_spot: bool,
    /// Use on-demand instances.
    #[arg(long)]
    pub no_use_spot: bool,
    /// Number of nodes.
    #[arg(long)]
    pub num_nodes: Option<u32>,
    /// Environment variable NAME=VALUE (or NAME to take it from here). Repeatable.
    #[arg(long = "env")]
    pub env: Vec<String>,
    /// A file of NAME=VALUE lines.
    #[arg(long)]
    pub env_file: Option<std::path::PathBuf>,
    /// Secret NAME=VALUE (or NAME to take it from here). Repeatable.
    #[arg(long = "secret")]
    pub secret: Vec<String>,
    /// Disk size in GB.
    #[arg(long)]
    pub disk_size: Option<String>,
    /// Disk tier: low, medium, high, ultra, best.
    #[arg(long)]
    pub disk_tier: Option<String>,
    /// Ports to open (port or range). Repeatable.
    #[arg(long)]
    pub ports: Vec<String>,
    /// Task name.
    #[arg(short = 'n', long = "name")]
    pub name: Option<String>,
}

fn invalid(e: impl std::fmt::Display) -> anyhow::Error {
    Exit {
        code: 2,
        message: e.to_string(),
    }
    .into()
}

fn pairs(values: &[String], flag: &str) -> Result<Vec<(String, String)>> {
    values
        .iter()
        .map(|v| match v.split_once('=') {
            Some((k, v)) => Ok((k.to_string(), v.to_string())),
            None => match std::env::var(v) {
                Ok(val) => Ok((v.clone(), val)),
                Err(_) => Err(invalid(format!(
                    "{flag} {v}: no value given and {v} is not set here\nhint: write {flag} {v}=VALUE"
                ))),
            },
        })
        .collect()
}

/// Loads the task: `entrypoint` is a YAML file, or else a command to run.
pub fn load_task(entrypoint: Option<&str>, args: &TaskArgs) -> Result<Task> {
    let mut task = match entrypoint {
        None => Task::parse("{}", "<command line>").map_err(invalid)?,
        Some(e) => {
            let path = Path::new(e);
            let looks_yaml = e.ends_with(".yaml") || e.ends_with(".yml");
            if path.is_file() {
                let text = std::fs::read_to_string(path).with_context(|| format!("reading {e}"))?;
                Task::parse(&text, e).map_err(invalid)?
            } else if looks_yaml {
                return Err(invalid(format!(
                    "{e}: no such file\nhint: check the path, or quote a command to run it"
                )));
            } else {
                let yaml = serde_json::json!({ "run": e }).to_string();
                Task::parse(&yaml, "<command line>").map_err(invalid)?
            }
        }
    };
    let mut env = Vec::new();
    if let Some(f) = &args.env_file {
        let text =
            std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
        env.extend(parse_env_file(&text, &f.display().to_string()).map_err(invalid)?);
    }
    env.extend(pairs(&args.env, "--env")?);
    let overrides = Overrides {
        name: args.name.clone(),
        infra: args.infra.clone(),
        gpus: args.gpus.clone(),
        cpus: args.cpus.clone(),
        memory: args.memory.clone(),
        instance_type: args.instance_type.clone(),
        use_spot: if args.use_spot {
            Some(true)
        } else if args.no_use_spot {
            Some(false)
        } else {
            None
        },
        num_nodes: args.num_nodes,
        disk_size: args.disk_size.clone(),
        disk_tier: args.disk_tier.clone(),
        image_id: None,
        ports: args.ports.clone(),
        env,
        secret: pairs(&args.secret, "--secret")?,
    };
    task.apply_overrides(&overrides).map_err(invalid)?;
    task.check_required().map_err(invalid)?;
    Ok(task)
}
