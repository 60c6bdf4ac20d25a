//! The client side of the cluster lifecycle: provision (local now), talk to
//! the head node's agent (`aloft agent ...` through a [`Runner`]), sync a
//! task's files, submit its job, follow its logs, stop/start/down.

use crate::local::{cluster_dir, node_home, Machine};
use crate::runner::{LocalRunner, Runner};
use crate::state::{Cluster, ClusterStatus, Handle, Node, State};
use aloft_core::optimizer::Plan;
use aloft_core::task::{FileMount, Task, Workdir};
use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// Progress stages on stderr (`⚙ Provisioning...`).
pub fn stage(msg: &str) {
    eprintln!("⚙ {msg}");
}

/// The `aloft` binary that runs as the agent.
pub fn aloft_exe() -> Result<PathBuf> {
    std::env::current_exe().context("finding the aloft executable")
}

/// A runner on one node of a cluster.
pub fn runner(cluster: &Cluster, rank: u32) -> Result<Box<dyn Runner>> {
    let node = cluster
        .handle
        .nodes
        .iter()
        .find(|n| n.rank == rank)
        .ok_or_else(|| anyhow!("cluster {} has no node {rank}", cluster.name))?;
    match (&node.ssh, cluster.provider.as_str()) {
        (Some(ssh), _) => Ok(Box::new(crate::ssh::SshRunner {
            home: crate::home::aloft_home()?,
            target: aloft_ssh::Target {
                host: node.ip.clone(),
                port: ssh.port,
                user: ssh.user.clone(),
                identity_file: ssh.identity_file.as_ref().map(PathBuf::from),
            },
        })),
        (None, "local") => Ok(Box::new(LocalRunner {
            home: PathBuf::from(&node.home),
        })),
        (None, p) => bail!(
            "cluster {}: provider {p} has no command runner yet",
            cluster.name
        ),
    }
}

/// `aloft agent SUB --dir AGENT_DIR ARGS...` on the head node.
pub fn agent_argv(cluster: &Cluster, sub: &str, args: &[&str]) -> Result<Vec<String>> {
    let exe = match &cluster.handle.exe {
        Some(e) => e.clone(),
        None => aloft_exe()?.display().to_string(),
    };
    let mut argv = vec![exe, "agent".into(), sub.into()];
    argv.push("--dir".into());
    argv.push(cluster.handle.agent_dir.clone());
    argv.extend(args.iter().map(|s| s.to_string()));
    Ok(argv)
}

/// Runs an agent subcommand on the head and parses its JSON output.
pub async fn agent_json(
    cluster: &Cluster,
    sub: &str,
    args: &[&str],
    stdin: Option<&str>,
) -> Result<Value> {
    let out = agent_run(cluster, sub, args, stdin).await?;
    serde_json::from_str(out.trim())
        .with_context(|| format!("agent {sub}: unexpected output {:?}", out.trim()))
}

/// Runs an agent subcommand on the head; its stdout, or its error.
pub async fn agent_run(
    cluster: &Cluster,
    sub: &str,
    args: &[&str],
    stdin: Option<&str>,
) -> Result<String> {
    let out = runner(cluster, 0)?
        .run(&agent_argv(cluster, sub, args)?, &[], stdin)
        .await?;
    if out.status != 0 {
        let msg = out.stderr.trim().trim_start_matches("error: ");
        bail!("{msg}");
    }
    Ok(out.stdout)
}

/// Provisions a new local cluster: node directories, the agent's state and
/// its daemon. On failure nothing is left behind.
pub async fn provision_local(
    home: &Path,
    state: &State,
    name: &str,
    plan: &Plan,
    machine: &Machine,
) -> Result<Cluster> {
    let n = plan.num_nodes.max(1);
    let dir = cluster_dir(home, name);
    let gpus_per_node = plan
        .accelerators
        .as_ref()
        .map(|(_, c)| c.ceil() as usize)
        .unwrap_or(0);
    let nodes: Vec<Node> = (0..n)
        .map(|rank| {
            // Each node gets its own GPUs where there are enough to go round.
            let gpus: Vec<u32> =
                if gpus_per_node > 0 && machine.gpus.len() >= gpus_per_node * n as usize {
                    machine
                        .gpus
                        .iter()
                        .skip(rank as usize * gpus_per_node)
                        .take(gpus_per_node)
                        .map(|(i, _)| *i)
                        .collect()
                } else {
                    machine.gpus.iter().map(|(i, _)| *i).collect()
                };
            Node {
                rank,
                ip: "127.0.0.1".into(),
                home: node_home(home, name, rank).display().to_string(),
                cpus: machine.cpus,
                gpus,
                gpu_name: machine.gpu_name().map(str::to_string),
                ssh: None,
            }
        })
        .collect();
    let cluster = Cluster {
        name: name.to_string(),
        provider: "local".into(),
        region: None,
        zone: None,
        instance_type: None,
        num_nodes: n,
        resources: describe_local(machine, n),
        status: ClusterStatus::Init,
        launched_at: now(),
        handle: Handle {
            nodes,
            agent_dir: dir.join("agent").display().to_string(),
            exe: None,
            internal_key: None,
        },
        autostop_minutes: None,
        autostop_down: false,
        hourly_cost: 0.0,
    };
    state.put(&cluster)?;
    let result = async {
        for node in &cluster.handle.nodes {
            std::fs::create_dir_all(&node.home).with_context(|| node.home.clone())?;
        }
        start_agent(home, &cluster).await
    }
    .await;
    if let Err(e) = result {
        let _ = std::fs::remove_dir_all(&dir);
        let _ = state.remove(name);
        return Err(e.context(format!("provisioning local cluster {name}")));
    }
    state.set_status(name, ClusterStatus::Up)?;
    Ok(Cluster {
        status: ClusterStatus::Up,
        ..cluster
    })
}

fn describe_local(m: &Machine, n: u32) -> String {
    let gpus = match m.gpu_name() {
        Some(g) => format!(", {g}:{}", m.gpus.len()),
        None => String::new(),
    };
    format!("{n}x local(cpus={}, mem={:.0}{gpus})", m.cpus, m.memory_gib)
}

/// Writes the agent's cluster description and makes sure its daemon runs.
pub async fn start_agent(home: &Path, cluster: &Cluster) -> Result<()> {
    let exe = aloft_exe()?.display().to_string();
    // Workers behind SSH are reached from the head with the internal key.
    let nodes: Vec<Value> = cluster
        .handle
        .nodes
        .iter()
        .map(|n| {
            let hop = match (&n.ssh, &cluster.handle.internal_key) {
                (Some(s), Some(key)) if n.rank > 0 => json!({ "user": s.user, "port": s.port, "key": key }),
                _ => Value::Null,
            };
            json!({ "rank": n.rank, "ip": n.ip, "home": n.home, "cpus": n.cpus, "gpus": n.gpus, "gpu_name": n.gpu_name, "ssh": hop })
        })
        .collect();
    // Autostop runs the client's aloft only where the client is (local); a
    // remote head has no client to tell.
    let autostop = match cluster.handle.exe {
        None => json!([
            "/usr/bin/env",
            format!("ALOFT_HOME={}", home.display()),
            exe,
            "internal-autostop",
            cluster.name
        ]),
        Some(_) => Value::Null,
    };
    let spec = json!({
        "name": cluster.name,
        "nodes": nodes,
        "autostop_command": autostop,
        "cloud": cluster.provider,
        "region": cluster.region,
        "zone": cluster.zone,
    });
    agent_json(
        cluster,
        "init",
        &["--cluster", "-"],
        Some(&spec.to_string()),
    )
    .await?;
    agent_json(cluster, "ensure", &[], None).await?;
    Ok(())
}

/// Syncs the task's workdir to `~/sky_workdir` and its file mounts, on
/// every node of the cluster.
pub async fn sync_files(cluster: &Cluster, task: &Task, base: &Path) -> Result<()> {
    let resolve = |p: &str| local_path(p, base);
    if let Some(w) = &task.workdir {
        match w {
            Workdir::Path(p) => {
                let src = resolve(p);
                if !src.is_dir() {
                    bail!("workdir {}: no such directory", src.display());
                }
                stage(&format!(
                    "Syncing workdir {} to {} node(s)",
                    src.display(),
                    cluster.num_nodes
                ));
                for n in &cluster.handle.nodes {
                    runner(cluster, n.rank)?
                        .sync_dir(&src, "~/sky_workdir")
                        .await?;
                }
            }
            Workdir::Git { url, .. } => bail!(
                "workdir from git ({url}) is not supported yet\nhint: clone it and give the path"
            ),
        }
    }
    for (target, mount) in &task.file_mounts {
        match mount {
            FileMount::Path(src) => {
                let src = resolve(src);
                stage(&format!("Syncing {} to {target}", src.display()));
                for n in &cluster.handle.nodes {
                    let r = runner(cluster, n.rank)?;
                    if src.is_dir() {
                        r.sync_dir(&src, target).await?;
                    } else if src.is_file() {
                        r.put_file(&src, target).await?;
                    } else {
                        bail!(
                            "file_mounts {target}: source {} does not exist",
                            src.display()
                        );
                    }
                }
            }
            FileMount::Storage(_) => {
                bail!("file_mounts {target}: storage mounts are not supported yet\nhint: use a local path")
            }
        }
    }
    Ok(())
}

/// A path on this machine from a task or a config file: `~/` is this
/// user's home, relative paths are under `base`.
pub fn local_path(p: &str, base: &Path) -> PathBuf {
    let p = match (p.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(h)) => PathBuf::from(h).join(rest),
        _ => PathBuf::from(p),
    };
    if p.is_absolute() {
        p
    } else {
        base.join(p)
    }
}

/// Checks the task's local files exist before anything is created.
pub fn check_files(task: &Task, base: &Path) -> Result<()> {
    if let Some(Workdir::Path(p)) = &task.workdir {
        let src = local_path(p, base);
        if !src.is_dir() {
            return Err(crate::Exit {
                code: 2,
                message: format!(
                    "workdir {}: no such directory\nhint: fix `workdir:` in the task, or create it",
                    src.display()
                ),
            }
            .into());
        }
    }
    Ok(())
}

/// Submits the task's job to the cluster's agent; returns the job id.
pub async fn submit(cluster: &Cluster, task: &Task, with_setup: bool) -> Result<i64> {
    let values =
        |m: &indexmap::IndexMap<String, Option<String>>| -> serde_json::Map<String, Value> {
            m.iter()
                .filter_map(|(k, v)| v.as_ref().map(|v| (k.clone(), Value::String(v.clone()))))
                .collect()
        };
    let r = task.resources.candidates.first();
    let spec = json!({
        "name": task.name,
        "setup": if with_setup { task.setup.clone() } else { None },
        "run": task.run,
        "envs": values(&task.envs),
        "secrets": values(&task.secrets),
        "num_nodes": task.num_nodes,
        "cpus": r.and_then(|r| r.cpus).map(|c| c.value),
        "gpus": r.and_then(|r| r.accelerators.as_ref()).and_then(|a| a.choices.first()).map(|(_, c)| *c),
        "username": std::env::var("USER").ok(),
    });
    if task.num_nodes > cluster.num_nodes {
        bail!(
            "the task needs {} nodes but cluster {} has {}\nhint: launch a new cluster with -c NEW_NAME",
            task.num_nodes,
            cluster.name,
            cluster.num_nodes
        );
    }
    let v = agent_json(cluster, "submit", &["--spec", "-"], Some(&spec.to_string())).await?;
    v["job_id"]
        .as_i64()
        .ok_or_else(|| anyhow!("agent submit: no job_id in {v}"))
}

/// Streams a job's logs until it ends; Ctrl-C detaches (the job keeps
/// running). Returns the agent's exit code (0 ok, 100 failed, ...).
pub async fn follow(cluster: &Cluster, job: i64, follow: bool) -> Result<i32> {
    let id = job.to_string();
    let mut args = vec![id.as_str()];
    if follow {
        args.push("--follow");
    }
    let argv = agent_argv(cluster, "logs", &args)?;
    let r = runner(cluster, 0)?;
    tokio::select! {
        code = r.stream(&argv) => code,
        _ = tokio::signal::ctrl_c() => {
            eprintln!("\nDetached; job {job} keeps running on {}.\nhint: aloft logs {} {job}", cluster.name, cluster.name);
            Ok(0)
        }
    }
}

/// Stops the agent and the cluster's jobs (stop keeps the node directories).
pub async fn stop_cluster(state: &State, cluster: &Cluster) -> Result<()> {
    if cluster.provider == "ssh" {
        bail!(
            "cluster {}: machines of an SSH node pool cannot be stopped\nhint: aloft down {} gives them back to the pool",
            cluster.name,
            cluster.name
        );
    }
    if cluster.provider != "local" {
        bail!(
            "cluster {}: stopping clusters on {} is not supported yet\nhint: aloft down {}",
            cluster.name,
            cluster.provider,
            cluster.name
        );
    }
    if cluster.status != ClusterStatus::Stopped {
        agent_json(cluster, "shutdown", &[], None).await?;
    }
    state.set_status(&cluster.name, ClusterStatus::Stopped)
}

/// Starts a stopped cluster's agent again.
pub async fn start_cluster(home: &Path, state: &State, cluster: &Cluster) -> Result<()> {
    start_agent(home, cluster).await?;
    state.set_status(&cluster.name, ClusterStatus::Up)
}

/// Tears a cluster down: stops its jobs and agent, removes its directories
/// and its record.
pub async fn down_cluster(home: &Path, state: &State, cluster: &Cluster) -> Result<()> {
    let dir = cluster_dir(home, &cluster.name);
    if cluster.provider != "ssh" && cluster.provider != "local" {
        crate::cloud::terminate(home, cluster).await?;
        if dir.exists() {
            std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
        }
        return state.remove(&cluster.name);
    }
    if cluster.provider == "ssh" {
        crate::ssh_pool::teardown(cluster).await;
        if dir.exists() {
            std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
        }
        return state.remove(&cluster.name);
    }
    if Path::new(&cluster.handle.agent_dir).exists() {
        if let Err(e) = agent_json(cluster, "shutdown", &[], None).await {
            eprintln!("warning: stopping the agent of {}: {e:#}", cluster.name);
        }
    }
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    state.remove(&cluster.name)
}

/// Unix seconds now.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
