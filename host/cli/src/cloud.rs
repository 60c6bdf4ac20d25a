//! Provisioning on providers that are components (clouds, the simulator),
//! with failover: on a capacity error the zone is blocked, on quota the
//! region, on auth the provider, on a deadline (a hanging region API) the
//! region; the optimizer then gives the next cheapest place. Each attempt is
//! printed; what a failed attempt started is terminated. `--retry-until-up`
//! starts over with backoff when every place failed.

use crate::backend::{now, stage};
use crate::state::{Cluster, ClusterStatus, Handle, Node, NodeSsh, State};
use crate::Exit;
use aloft_core::optimizer::{plan, Block, Order, Plan, ProviderCatalog, Want};
use aloft_core::provider::{ClusterRef, Instance, InstanceState, ProviderError, RunRequest};
use aloft_core::task::{ImageId, Task};
use aloft_plugin::{Call, CallError, LoadedPlugin, PluginHost, Registry, Reply};
use anyhow::{anyhow, Result};
use std::path::Path;
use std::time::{Duration, Instant};

/// What to provision and how hard to try.
pub struct Request<'a> {
    /// Cluster name.
    pub name: &'a str,
    /// The task (nodes, disk, ports, labels).
    pub task: &'a Task,
    /// The optimizer's wants and how they combine.
    pub wants: &'a [Want],
    /// Cheapest or in order.
    pub order: Order,
    /// Catalogs of the enabled providers.
    pub catalogs: &'a [ProviderCatalog],
    /// Keep trying (with backoff) when every place failed.
    pub retry_until_up: bool,
}

fn load(host: &PluginHost, home: &Path, provider: &str) -> Result<LoadedPlugin> {
    let i = Registry::new(home).get(provider)?;
    Ok(host.load(&i.manifest, &i.component())?)
}

/// Provisions the cluster, failing over until it is up or nothing is left.
pub async fn provision(home: &Path, state: &State, r: Request<'_>) -> Result<Cluster> {
    let host = PluginHost::new(
        home,
        aloft_plugin::Limits::from_env().map_err(anyhow::Error::msg)?,
    )?;
    let key = aloft_ssh::KeyPair::load_or_generate(&home.join("ssh"))?;
    let mut blocked: Vec<Block> = Vec::new();
    let mut attempts: Vec<String> = Vec::new();
    let mut calls = 0usize;
    let started = Instant::now();
    let mut first_failure: Option<Instant> = None;
    let mut backoff = Duration::from_secs(2);
    loop {
        let Some(outcome) = plan(r.catalogs, r.wants, r.order, r.task.num_nodes, &blocked) else {
            if r.retry_until_up && !attempts.is_empty() {
                eprintln!(
                    "  every place failed; retrying in {}s (--retry-until-up)",
                    backoff.as_secs()
                );
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(300));
                blocked.clear();
                continue;
            }
            let tried = if attempts.is_empty() {
                "  (no place satisfies the task)".to_string()
            } else {
                attempts.join("\n")
            };
            return Err(Exit {
                code: 3,
                message: format!(
                    "could not provision {}; tried:\n{tried}\nhint: --retry-until-up keeps trying",
                    r.name
                ),
            }
            .into());
        };
        let c = outcome.chosen;
        let place = format!(
            "{}/{}{}",
            c.provider,
            c.region,
            c.zone.as_ref().map(|z| format!("/{z}")).unwrap_or_default()
        );
        stage(&format!(
            "Provisioning {} x {}{} on {place} (${:.2}/h)",
            c.num_nodes,
            c.instance_type,
            if c.use_spot { " [spot]" } else { "" },
            c.hourly_cost
        ));
        let plugin = load(&host, home, &c.provider)?;
        let cref = ClusterRef {
            cluster_name: r.name.to_string(),
            region: c.region.clone(),
            zone: c.zone.clone(),
        };
        let spec = r.task.resources.candidates.first();
        let mut labels: Vec<(String, String)> = spec
            .map(|x| {
                x.labels
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            })
            .unwrap_or_default();
        labels.push(("aloft-cluster".into(), r.name.to_string()));
        let request = RunRequest {
            cluster: cref.clone(),
            node_count: r.task.num_nodes,
            instance_type: c.instance_type.clone(),
            use_spot: c.use_spot,
            disk_size_gib: spec.and_then(|x| x.disk_size).unwrap_or(256),
            disk_tier: spec
                .and_then(|x| x.disk_tier.as_ref())
                .and_then(|t| serde_json::to_value(t).ok())
                .and_then(|v| v.as_str().map(str::to_string)),
            image_id: spec
                .and_then(|x| x.image_id.as_ref())
                .and_then(|i| match i {
                    ImageId::Single(id) => Some(id.clone()),
                    ImageId::PerRegion(m) => m.get(&c.region).cloned(),
                }),
            ports: spec.map(|x| x.ports.clone()).unwrap_or_default(),
            labels,
            ssh_public_key: key.public_openssh(),
        };
        let mut cluster = record(r.name, &c);
        state.put(&cluster)?;
        calls += 1;
        let result = match plugin.call(Call::RunInstances(request)).await {
            Ok(Reply::Instances(v)) => {
                wait_running(&plugin, &cref, r.task.num_nodes, v, &mut calls).await
            }
            Ok(other) => Err(CallError::Trap {
                plugin: plugin.label(),
                op: "run-instances",
                message: format!("unexpected reply {other:?}"),
            }),
            Err(e) => Err(e),
        };
        match result {
            Ok(instances) => {
                cluster.handle.nodes = nodes(&instances)?;
                state.put(&cluster)?;
                if let Err(e) =
                    crate::ssh_pool::bootstrap(home, &mut cluster, &Want::default()).await
                {
                    let _ = plugin.call(Call::TerminateInstances(cref)).await;
                    state.remove(r.name)?;
                    return Err(e.context(format!("setting up {} on {place}", r.name)));
                }
                cluster.status = ClusterStatus::Up;
                state.put(&cluster)?;
                if let Some(t) = first_failure {
                    eprintln!(
                        "  up on {place} after {} failed attempt(s): {:.1}s from the first failure, {calls} provider call(s), {:.1}s in all",
                        attempts.len(),
                        t.elapsed().as_secs_f64(),
                        started.elapsed().as_secs_f64()
                    );
                }
                return Ok(cluster);
            }
            Err(e) => {
                first_failure.get_or_insert_with(Instant::now);
                let (block, why, started_something) = classify(&e, &c);
                eprintln!("  ✗ {place} {}: {why}", c.instance_type);
                attempts.push(format!("  - {place} {}: {why}", c.instance_type));
                // Nothing from a failed attempt stays running (a hung API
                // got nothing to start).
                if started_something {
                    calls += 1;
                    if let Err(t) = plugin.call(Call::TerminateInstances(cref)).await {
                        eprintln!("  warning: cleaning up the failed attempt on {place}: {t}");
                    }
                }
                state.remove(r.name)?;
                blocked.push(block);
            }
        }
    }
}

fn record(name: &str, c: &Plan) -> Cluster {
    Cluster {
        name: name.to_string(),
        provider: c.provider.clone(),
        region: Some(c.region.clone()),
        zone: c.zone.clone(),
        instance_type: Some(c.instance_type.clone()),
        num_nodes: c.num_nodes,
        resources: format!(
            "{}x {}{}{}",
            c.num_nodes,
            c.instance_type,
            c.accelerators
                .as_ref()
                .map(|(n, k)| format!(" {{{n}:{k}}}"))
                .unwrap_or_default(),
            if c.use_spot { " [spot]" } else { "" }
        ),
        status: ClusterStatus::Init,
        launched_at: now(),
        handle: Handle {
            nodes: vec![],
            agent_dir: String::new(),
            exe: None,
            internal_key: None,
        },
        autostop_minutes: None,
        autostop_down: false,
        hourly_cost: c.hourly_cost,
    }
}

/// Which block an error earns, why (for the history), and whether the
/// attempt may have started instances.
fn classify(e: &CallError, c: &Plan) -> (Block, String, bool) {
    let zone = Block {
        provider: c.provider.clone(),
        region: Some(c.region.clone()),
        zone: c.zone.clone(),
        instance_type: None,
    };
    let region = Block {
        zone: None,
        ..zone.clone()
    };
    let provider = Block {
        provider: c.provider.clone(),
        ..Block::default()
    };
    match e {
        CallError::Provider { error, .. } => match error {
            ProviderError::Capacity(m) => (
                if c.zone.is_some() { zone } else { region },
                format!("no capacity ({m})"),
                true,
            ),
            ProviderError::Quota(m) => (region, format!("quota ({m})"), true),
            ProviderError::Auth(m) => (provider, format!("credentials refused ({m})"), false),
            ProviderError::Unsupported(m) => (provider, format!("unsupported ({m})"), false),
            other => (zone, other.to_string(), true),
        },
        CallError::Deadline { deadline, .. } => (
            region,
            format!("no answer within {}s (deadline)", deadline.as_secs_f64()),
            false,
        ),
        other => (region, other.to_string(), true),
    }
}

/// Polls until `n` instances are running (60 s at most).
async fn wait_running(
    plugin: &LoadedPlugin,
    cref: &ClusterRef,
    n: u32,
    first: Vec<Instance>,
    calls: &mut usize,
) -> Result<Vec<Instance>, CallError> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut instances = first;
    loop {
        let running: Vec<Instance> = instances
            .iter()
            .filter(|i| i.state == InstanceState::Running)
            .cloned()
            .collect();
        if running.len() >= n as usize {
            return Ok(running);
        }
        if Instant::now() > deadline {
            return Err(CallError::Provider {
                plugin: plugin.label(),
                op: "query-instances",
                error: ProviderError::Transient(format!(
                    "{} of {n} instances running after 60s",
                    running.len()
                )),
            });
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        *calls += 1;
        instances = match plugin.call(Call::QueryInstances(cref.clone())).await? {
            Reply::Instances(v) => v,
            _ => Vec::new(),
        };
    }
}

fn nodes(instances: &[Instance]) -> Result<Vec<Node>> {
    let mut sorted: Vec<&Instance> = instances.iter().collect();
    sorted.sort_by_key(|i| i.rank);
    sorted
        .iter()
        .enumerate()
        .map(|(rank, i)| {
            let ip = i
                .public_ip
                .clone()
                .or_else(|| i.private_ip.clone())
                .ok_or_else(|| anyhow!("instance {} has no address", i.id))?;
            Ok(Node {
                rank: rank as u32,
                ip,
                home: String::new(),
                cpus: 0.0,
                gpus: vec![],
                gpu_name: None,
                ssh: Some(NodeSsh {
                    user: i.ssh_user.clone(),
                    port: i.ssh_port,
                    identity_file: None,
                }),
            })
        })
        .collect()
}

/// The cluster's provider, loaded, and the reference naming the cluster.
fn cluster_plugin(home: &Path, cluster: &Cluster) -> Result<(LoadedPlugin, ClusterRef)> {
    let host = PluginHost::new(
        home,
        aloft_plugin::Limits::from_env().map_err(anyhow::Error::msg)?,
    )?;
    let plugin = load(&host, home, &cluster.provider)?;
    let cref = ClusterRef {
        cluster_name: cluster.name.clone(),
        region: cluster.region.clone().unwrap_or_default(),
        zone: cluster.zone.clone(),
    };
    Ok((plugin, cref))
}

/// Terminates a cloud cluster's instances.
pub async fn terminate(home: &Path, cluster: &Cluster) -> Result<()> {
    let (plugin, cref) = cluster_plugin(home, cluster)?;
    plugin.call(Call::TerminateInstances(cref)).await?;
    Ok(())
}

/// The cluster's instances as its provider sees them now.
pub async fn query(home: &Path, cluster: &Cluster) -> Result<Vec<Instance>> {
    let (plugin, cref) = cluster_plugin(home, cluster)?;
    match plugin.call(Call::QueryInstances(cref)).await? {
        Reply::Instances(v) => Ok(v),
        _ => Ok(Vec::new()),
    }
}
