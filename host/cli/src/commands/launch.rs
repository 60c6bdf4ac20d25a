//! `aloft launch`: plan (and with `--dryrun` only plan) a task, then
//! provision, sync, set up and run it.

use crate::backend::{
    check_files, down_cluster, follow, provision_local, stage, start_cluster, submit, sync_files,
};
use crate::catalogs::load_all;
use crate::home::aloft_home;
use crate::local::Machine;
use crate::state::{Cluster, ClusterLock, ClusterStatus, State};
use crate::table::{count, Table};
use crate::task_args::{load_task, TaskArgs};
use crate::Exit;
use aloft_core::optimizer::{plan, wants_for, Outcome, Plan, ProviderCatalog};
use anyhow::Result;
use serde_json::json;

/// Launch a task on a cluster (a YAML file, or a command in quotes).
#[derive(Debug, clap::Args)]
pub struct Launch {
    /// Task YAML, or a command to run.
    pub entrypoint: Option<String>,
    /// Cluster name.
    #[arg(short = 'c', long = "cluster")]
    pub cluster: Option<String>,
    /// Only plan: print the chosen resources and the alternatives.
    #[arg(long)]
    pub dryrun: bool,
    /// With --dryrun: print the plan as one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Do not stream the job's output; return once it is submitted.
    #[arg(short = 'd', long = "detach-run")]
    pub detach_run: bool,
    /// Do not ask for confirmation.
    #[arg(short = 'y', long = "yes")]
    pub yes: bool,
    /// Autostop after this many idle minutes.
    #[arg(short = 'i', long = "idle-minutes-to-autostop")]
    pub idle_minutes: Option<f64>,
    /// With -i: tear the cluster down instead of stopping it.
    #[arg(long)]
    pub down: bool,
    /// Skip the task's setup.
    #[arg(long)]
    pub no_setup: bool,
    /// When every place fails, keep trying (with backoff) until one works.
    #[arg(long)]
    pub retry_until_up: bool,
    #[command(flatten)]
    pub task: TaskArgs,
}

/// The plan as `--json` prints it.
fn plan_json(p: &Plan) -> serde_json::Value {
    json!({
        "provider": p.provider,
        "region": p.region,
        "zone": p.zone,
        "instance_type": p.instance_type,
        "accelerators": p.accelerators.as_ref().map(|(n, c)| json!({ n.clone(): c })),
        "use_spot": p.use_spot,
        "num_nodes": p.num_nodes,
        "hourly_cost": (p.hourly_cost * 1e6).round() / 1e6,
    })
}

/// Prints the plan table: the best few per provider, cheapest first.
fn print_table(outcome: &Outcome) {
    const PER_PROVIDER: usize = 3;
    let mut shown: std::collections::BTreeMap<&str, usize> = Default::default();
    let mut t = Table::new(&[
        "INFRA",
        "INSTANCE",
        "vCPUs",
        "Mem(GB)",
        "GPUS",
        "COST ($/h)",
        "CHOSEN",
    ]);
    for p in &outcome.candidates {
        let n = shown.entry(p.provider.as_str()).or_default();
        if *n >= PER_PROVIDER {
            continue;
        }
        *n += 1;
        let infra = match &p.zone {
            Some(z) => format!("{}/{}/{z}", p.provider, p.region),
            None => format!("{}/{}", p.provider, p.region),
        };
        let spot = if p.use_spot { "[spot]" } else { "" };
        t.row(vec![
            infra,
            format!("{}{spot}", p.instance_type),
            count(p.vcpus),
            count(p.memory_gib),
            p.accelerators
                .as_ref()
                .map(|(n, c)| format!("{n}:{}", count(*c)))
                .unwrap_or_else(|| "-".into()),
            format!("{:.2}", p.hourly_cost),
            if p == &outcome.chosen {
                "✔".into()
            } else {
                String::new()
            },
        ]);
    }
    crate::out(&t.render());
}

impl Launch {
    /// Runs the command.
    pub async fn run(self) -> Result<()> {
        if let Some(c) = &self.cluster {
            crate::state::check_cluster_name(c)?;
        }
        let timing = std::env::var_os("ALOFT_TIMING").is_some();
        let t0 = std::time::Instant::now();
        let task = load_task(self.entrypoint.as_deref(), &self.task)?;
        let home = aloft_home()?;
        if !self.dryrun {
            return self.launch(task, &home).await;
        }
        let t1 = std::time::Instant::now();
        let catalogs: Vec<ProviderCatalog> = load_all(&home)
            .await?
            .into_iter()
            .map(|l| l.catalog)
            .collect();
        let t2 = std::time::Instant::now();
        let (wants, order) = wants_for(&task.resources);
        let planned = plan(&catalogs, &wants, order, task.num_nodes, &[]);
        if timing {
            let rows: usize = catalogs.iter().map(|c| c.catalog.offerings.len()).sum();
            eprintln!(
                "timing: task {:.2} ms, catalogs ({rows} rows) {:.2} ms, plan {:.2} ms",
                (t1 - t0).as_secs_f64() * 1e3,
                (t2 - t1).as_secs_f64() * 1e3,
                t2.elapsed().as_secs_f64() * 1e3
            );
        }
        let Some(outcome) = planned else {
            let providers: Vec<&str> = catalogs.iter().map(|c| c.provider.as_str()).collect();
            return Err(Exit {
                code: 3,
                message: format!(
                    "no offering satisfies the task's resources ({} wanted) among the installed providers: {}\nhint: relax the resources, or see what is offered with `aloft show-gpus`",
                    describe_wants(&task),
                    if providers.is_empty() { "none".to_string() } else { providers.join(", ") }
                ),
            }
            .into());
        };
        if self.json {
            let mut v = plan_json(&outcome.chosen);
            v["candidates"] = outcome.candidates.iter().map(plan_json).collect();
            crate::outln(&serde_json::to_string(&v)?);
            return Ok(());
        }
        let names: Vec<&str> = catalogs.iter().map(|c| c.provider.as_str()).collect();
        eprintln!("Dry run: planning over every installed provider ({}), whether or not its credentials are set up.", names.join(", "));
        print_table(&outcome);
        let c = &outcome.chosen;
        eprintln!(
            "Chosen: {} x {} in {}{} at ${:.2}/h",
            c.num_nodes,
            c.instance_type,
            c.region,
            c.zone
                .as_ref()
                .map(|z| format!(" ({z})"))
                .unwrap_or_default(),
            c.hourly_cost
        );
        Ok(())
    }
}

impl Launch {
    async fn launch(self, task: aloft_core::task::Task, home: &std::path::Path) -> Result<()> {
        let state = State::open(home)?;
        let name = match &self.cluster {
            Some(c) => c.clone(),
            None => generated_name(),
        };
        check_files(&task, &std::env::current_dir()?)?;
        let lock = ClusterLock::acquire(home, &name)?;
        let cluster = match state.cluster(&name)? {
            Some(c) if c.status == ClusterStatus::Up => {
                stage(&format!("Reusing cluster {name} (already UP)"));
                c
            }
            Some(c) if c.status == ClusterStatus::Stopped => {
                stage(&format!("Starting stopped cluster {name}"));
                start_cluster(home, &state, &c).await?;
                Cluster {
                    status: ClusterStatus::Up,
                    ..c
                }
            }
            Some(c) => {
                // INIT/AUTOSTOPPING: an earlier launch or stop did not finish.
                stage(&format!(
                    "Cluster {name} is {}; cleaning it up and provisioning again",
                    c.status.as_str()
                ));
                down_cluster(home, &state, &c).await?;
                self.provision(&task, home, &state, &name).await?
            }
            None => self.provision(&task, home, &state, &name).await?,
        };
        if let Some(m) = self.idle_minutes {
            crate::commands::cluster::set_autostop(&state, &cluster, Some(m), self.down).await?;
        } else if let Some(a) = task
            .resources
            .candidates
            .first()
            .and_then(|r| r.autostop.as_ref())
            .filter(|a| a.enabled)
        {
            let m = a.idle_minutes.map(f64::from).unwrap_or(5.0);
            crate::commands::cluster::set_autostop(&state, &cluster, Some(m), a.down).await?;
        }
        sync_files(&cluster, &task, &std::env::current_dir()?).await?;
        if task.setup.is_some() && !self.no_setup {
            stage("Running setup, then the job");
        } else {
            stage("Running the job");
        }
        let job = submit(&cluster, &task, !self.no_setup).await?;
        drop(lock);
        eprintln!("Job submitted, ID: {job} on cluster {name}");
        if self.detach_run {
            crate::outln(&job.to_string());
            return Ok(());
        }
        let code = follow(&cluster, job, true).await?;
        crate::commands::jobs::job_exit(code, &name, job)
    }

    async fn provision(
        &self,
        task: &aloft_core::task::Task,
        home: &std::path::Path,
        state: &State,
        name: &str,
    ) -> Result<Cluster> {
        stage("Optimizing");
        let machine = Machine::detect();
        let (wants, order) = wants_for(&task.resources);
        if let Some(w) = wants.iter().find(|w| w.provider.as_deref() == Some("ssh")) {
            let Some(pool) = w.region.clone() else {
                return Err(Exit {
                    code: 2,
                    message: "--infra ssh needs a pool: ssh/POOL\nhint: pools are in $ALOFT_HOME/ssh_node_pools.yaml".into(),
                }
                .into());
            };
            stage(&format!(
                "Provisioning {} host(s) of SSH node pool {pool} for {name}",
                task.num_nodes
            ));
            return crate::ssh_pool::provision(home, state, name, &pool, w, task.num_nodes).await;
        }
        let wants_local = wants.iter().any(|w| w.provider.as_deref() == Some("local"));
        let enabled: Vec<String> = crate::commands::check::load(home)
            .into_iter()
            .filter(|(_, s)| s.enabled)
            .map(|(n, _)| n)
            .collect();
        if wants_local || enabled.is_empty() {
            let mut why = Vec::new();
            for w in wants
                .iter()
                .filter(|w| w.provider.is_none() || w.provider.as_deref() == Some("local"))
            {
                match crate::local::fit(&machine, w, task.num_nodes) {
                    Ok(plan) => {
                        stage(&format!(
                            "Provisioning {} local node(s) for {name}",
                            plan.num_nodes
                        ));
                        return provision_local(home, state, name, &plan, &machine).await;
                    }
                    Err(e) => why.push(e),
                }
            }
            return Err(Exit {
                code: 3,
                message: format!(
                    "the task does not fit this machine ({}) and no cloud is enabled\nhint: relax the resources, or enable a cloud (aloft check)",
                    if why.is_empty() { "it asks for another provider".to_string() } else { why.join("; ") }
                ),
            }
            .into());
        }
        let catalogs: Vec<ProviderCatalog> = load_all(home)
            .await?
            .into_iter()
            .map(|l| l.catalog)
            .filter(|c| enabled.contains(&c.provider))
            .collect();
        // Nothing fits at all: say what was asked (failover reports attempts).
        if plan(&catalogs, &wants, order, task.num_nodes, &[]).is_none() {
            return Err(Exit {
                code: 3,
                message: format!(
                    "no offering of the enabled providers ({}) satisfies {}",
                    enabled.join(", "),
                    describe_wants(task)
                ),
            }
            .into());
        }
        crate::cloud::provision(
            home,
            state,
            crate::cloud::Request {
                name,
                task,
                wants: &wants,
                order,
                catalogs: &catalogs,
                retry_until_up: self.retry_until_up,
            },
        )
        .await
    }
}

fn generated_name() -> String {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("aloft-{:04x}", (n ^ std::process::id()) & 0xffff)
}

/// A short description of what the task asks for, e.g.
/// `aws/us-east-1 A100:8 [spot]`, candidates joined by ` | `.
fn describe_wants(task: &aloft_core::task::Task) -> String {
    let one = |r: &aloft_core::task::Resources| {
        let mut parts = Vec::new();
        if !r.infra.is_any() {
            parts.push(r.infra.to_string());
        }
        if let Some(t) = &r.instance_type {
            parts.push(t.clone());
        }
        if let Some(c) = r.cpus {
            parts.push(format!("cpus={c}"));
        }
        if let Some(m) = r.memory {
            parts.push(format!("memory={m}"));
        }
        if let Some(a) = &r.accelerators {
            let names: Vec<String> = a
                .choices
                .iter()
                .map(|(n, c)| format!("{n}:{}", count(*c)))
                .collect();
            parts.push(names.join(if a.ordered { " > " } else { " or " }));
        }
        if r.use_spot {
            parts.push("[spot]".into());
        }
        if let Some(m) = r.max_hourly_cost {
            parts.push(format!("max ${m}/h"));
        }
        if parts.is_empty() {
            "the default 8+ vCPUs".to_string()
        } else {
            parts.join(" ")
        }
    };
    let all: Vec<String> = task.resources.candidates.iter().map(one).collect();
    format!("{} x {}", task.num_nodes, all.join(" | "))
}
