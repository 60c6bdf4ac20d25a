//! The `ssh` provider (native in the host, not a component: it needs SSH
//! itself, to detect each host's resources and to bootstrap the agent, and
//! components have no sockets). A cluster takes `num_nodes` free hosts of a
//! pool in `$ALOFT_HOME/ssh_node_pools.yaml`; a host is taken while a
//! cluster record holds it and goes back to the pool on `down`.
//!
//! Bootstrap: the head gets this `aloft` binary at `~/.aloft/bin/aloft`
//! (uploaded only when its sha256 differs), the cluster-internal key (so the
//! head's agent reaches the workers over SSH without the client), and the
//! agent, started as a daemon.

use crate::backend::{agent_json, now, runner, stage, start_agent};
use crate::local::{fit_machine, Machine, DETECT_SCRIPT};
use crate::pools::{load as load_pools, PoolHost};
use crate::state::{Cluster, ClusterLock, ClusterStatus, Handle, Node, NodeSsh, State};
use crate::Exit;
use aloft_core::optimizer::Want;
use anyhow::{anyhow, bail, Context, Result};
use std::collections::BTreeSet;
use std::path::Path;

fn node_for(rank: u32, h: &PoolHost) -> Node {
    Node {
        rank,
        ip: h.ip.clone(),
        home: String::new(),
        cpus: 0.0,
        gpus: vec![],
        gpu_name: None,
        ssh: Some(NodeSsh {
            user: h.user.clone(),
            port: h.port,
            identity_file: h.identity_file.as_ref().map(|p| p.display().to_string()),
        }),
    }
}

/// Provisions a cluster on `pool`'s free hosts.
pub async fn provision(
    home: &Path,
    state: &State,
    name: &str,
    pool: &str,
    want: &Want,
    num_nodes: u32,
) -> Result<Cluster> {
    let pools = load_pools(home)?;
    let Some(hosts) = pools.get(pool) else {
        let known: Vec<&str> = pools.keys().map(String::as_str).collect();
        bail!(Exit {
            code: 3,
            message: format!(
                "no SSH node pool named {pool:?} (pools: {})\nhint: add it to {}",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                },
                home.join("ssh_node_pools.yaml").display()
            ),
        });
    };
    // Taking hosts and recording the cluster happen under the pool's lock.
    let pool_lock = ClusterLock::acquire(home, &format!("pool--{pool}"))?;
    let used: BTreeSet<(String, u16)> = state
        .clusters()?
        .into_iter()
        .filter(|c| c.provider == "ssh" && c.region.as_deref() == Some(pool))
        .flat_map(|c| {
            c.handle
                .nodes
                .into_iter()
                .filter_map(|n| n.ssh.map(|s| (n.ip, s.port)))
        })
        .collect();
    let free: Vec<&PoolHost> = hosts
        .iter()
        .filter(|h| !used.contains(&(h.ip.clone(), h.port)))
        .collect();
    if free.len() < num_nodes as usize {
        bail!(Exit {
            code: 3,
            message: format!(
                "pool {pool} has {} free host(s) of {}; the task needs {num_nodes}\nhint: aloft down a cluster on ssh/{pool}, or add hosts to the pool",
                free.len(),
                hosts.len()
            ),
        });
    }
    let mut cluster = Cluster {
        name: name.to_string(),
        provider: "ssh".into(),
        region: Some(pool.to_string()),
        zone: None,
        instance_type: None,
        num_nodes,
        resources: String::new(),
        status: ClusterStatus::Init,
        launched_at: now(),
        handle: Handle {
            nodes: free
                .iter()
                .take(num_nodes as usize)
                .enumerate()
                .map(|(i, h)| node_for(i as u32, h))
                .collect(),
            agent_dir: String::new(),
            exe: None,
            internal_key: None,
        },
        autostop_minutes: None,
        autostop_down: false,
        hourly_cost: 0.0,
    };
    state.put(&cluster)?;
    drop(pool_lock);
    match bootstrap(home, &mut cluster, want).await {
        Ok(()) => {
            cluster.status = ClusterStatus::Up;
            state.put(&cluster)?;
            Ok(cluster)
        }
        Err(e) => {
            teardown(&cluster).await;
            let _ = state.remove(name);
            Err(e.context(format!("provisioning {name} on ssh/{pool}")))
        }
    }
}

pub(crate) async fn bootstrap(home: &Path, cluster: &mut Cluster, want: &Want) -> Result<()> {
    stage(&format!(
        "Detecting resources of {} host(s)",
        cluster.num_nodes
    ));
    let mut machines = Vec::new();
    for i in 0..cluster.handle.nodes.len() {
        let node = &cluster.handle.nodes[i];
        let out = runner(cluster, node.rank)?
            .run(&["sh".into(), "-c".into(), DETECT_SCRIPT.into()], &[], None)
            .await?;
        let (m, remote_home) = Machine::parse_detect(&out.stdout).ok_or_else(|| {
            anyhow!(
                "{}: could not read its CPUs/memory: {}",
                node.ip,
                out.stderr.trim()
            )
        })?;
        if let Err(why) = fit_machine(
            &m,
            &Want {
                provider: None,
                ..want.clone()
            },
            cluster.num_nodes,
            "ssh",
        ) {
            bail!(Exit {
                code: 3,
                message: format!("host {} does not fit the task: it {why}", node.ip)
            });
        }
        let n = &mut cluster.handle.nodes[i];
        n.home = remote_home;
        n.cpus = m.cpus;
        n.gpus = m.gpus.iter().map(|(i, _)| *i).collect();
        n.gpu_name = m.gpu_name().map(str::to_string);
        machines.push(m);
    }
    let head_home = cluster.handle.nodes[0].home.clone();
    cluster.handle.agent_dir = format!("{head_home}/.aloft/agent/{}", cluster.name);
    let exe = format!("{head_home}/.aloft/bin/aloft");
    if cluster.provider == "ssh" {
        cluster.resources = {
            let m = &machines[0];
            format!(
                "{}x ssh(cpus={}, mem={:.0}{})",
                cluster.num_nodes,
                m.cpus,
                m.memory_gib,
                m.gpu_name()
                    .map(|g| format!(", {g}:{}", m.gpus.len()))
                    .unwrap_or_default()
            )
        };
    }
    stage("Installing the agent on the head node");
    let head = runner(cluster, 0)?;
    // A new cluster starts clean: whatever an earlier cluster of this name
    // left on the head (if its hosts were unreachable at `down`) goes.
    let stale = format!(
        "rm -rf '{0}' ~/.aloft/keys/{1} ~/.aloft/keys/{1}.known_hosts",
        cluster.handle.agent_dir, cluster.name
    );
    head.run(&["sh".into(), "-c".into(), stale], &[], None)
        .await?;
    let local_exe = crate::backend::aloft_exe()?;
    let digest = sha256_file(&local_exe)?;
    let have = head
        .run(
            &[
                "sh".into(),
                "-c".into(),
                format!("sha256sum '{exe}' 2>/dev/null | cut -d' ' -f1"),
            ],
            &[],
            None,
        )
        .await?;
    if have.stdout.trim() != digest {
        head.put_file(&local_exe, &format!("{exe}.upload")).await?;
        let out = head
            .run(
                &[
                    "sh".into(),
                    "-c".into(),
                    format!("chmod 755 '{exe}.upload' && mv -f '{exe}.upload' '{exe}'"),
                ],
                &[],
                None,
            )
            .await?;
        if out.status != 0 {
            bail!(
                "installing aloft on {}: {}",
                cluster.handle.nodes[0].ip,
                out.stderr.trim()
            );
        }
    }
    cluster.handle.exe = Some(exe);
    if cluster.num_nodes > 1 {
        stage("Giving the head a key to reach the workers");
        let dir = crate::local::cluster_dir(home, &cluster.name);
        let internal = aloft_ssh::KeyPair::load_or_generate(&dir)
            .context("generating the cluster's internal key")?;
        let key_path = format!("{head_home}/.aloft/keys/{}", cluster.name);
        head.put_file(internal.path(), &key_path).await?;
        head.run(&["chmod".into(), "600".into(), key_path.clone()], &[], None)
            .await?;
        let public = internal.public_openssh();
        for n in cluster.handle.nodes.iter().skip(1) {
            let add = format!(
                "mkdir -p ~/.ssh && chmod 700 ~/.ssh && touch ~/.ssh/authorized_keys && chmod 600 ~/.ssh/authorized_keys && (grep -qxF {k} ~/.ssh/authorized_keys || echo {k} >> ~/.ssh/authorized_keys)",
                k = aloft_ssh::shell::quote(&format!("{public} aloft-cluster-{}", cluster.name))
            );
            let out = runner(cluster, n.rank)?
                .run(&["sh".into(), "-c".into(), add], &[], None)
                .await?;
            if out.status != 0 {
                bail!("authorising the head on {}: {}", n.ip, out.stderr.trim());
            }
        }
        cluster.handle.internal_key = Some(key_path);
    }
    stage("Starting the agent");
    start_agent(home, cluster).await
}

/// Stops the agent and jobs, and removes what bootstrap put on the hosts
/// (the agent's directory, the internal key and its authorisations). Best
/// effort: a host that does not answer is reported, not fatal.
pub async fn teardown(cluster: &Cluster) {
    if cluster.handle.exe.is_some() && !cluster.handle.agent_dir.is_empty() {
        if let Err(e) = agent_json(cluster, "shutdown", &[], None).await {
            eprintln!("warning: stopping the agent of {}: {e:#}", cluster.name);
        }
    }
    let tag = format!("aloft-cluster-{}", cluster.name);
    for n in &cluster.handle.nodes {
        let mut cmd = format!("sed -i '/ {tag}$/d' ~/.ssh/authorized_keys 2>/dev/null; true");
        if n.rank == 0 {
            cmd = format!(
                "rm -rf ~/.aloft/agent/{0} ~/.aloft/keys/{0} ~/.aloft/keys/{0}.known_hosts; {cmd}",
                cluster.name
            );
        }
        let r = match runner(cluster, n.rank) {
            Ok(r) => r,
            Err(_) => continue,
        };
        if let Err(e) = r.run(&["sh".into(), "-c".into(), cmd], &[], None).await {
            eprintln!("warning: cleaning up {} on {}: {e:#}", cluster.name, n.ip);
        }
    }
}

fn sha256_file(path: &Path) -> Result<String> {
    use sha2::Digest;
    let bytes = std::fs::read(path).with_context(|| path.display().to_string())?;
    Ok(hex::encode(sha2::Sha256::digest(&bytes)))
}
