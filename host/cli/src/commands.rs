//! One module per command group.

mod catalog;
pub mod check;
pub mod cluster;
pub mod jobs;
mod launch;
mod provider;
mod show_gpus;

use clap::Subcommand;

/// Every `aloft` command.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Install, list, inspect and call provider plugins.
    #[command(subcommand)]
    Provider(provider::ProviderCommand),
    /// Launch a task (or with --dryrun, only plan it).
    Launch(launch::Launch),
    /// Run a task or command on an existing cluster.
    Exec(jobs::Exec),
    /// Show clusters.
    Status(cluster::Status),
    /// Stop clusters.
    Stop(cluster::Stop),
    /// Start stopped clusters.
    Start(cluster::Start),
    /// Tear clusters down.
    Down(cluster::Down),
    /// Set or cancel autostop.
    Autostop(cluster::Autostop),
    /// Show or follow a job's logs.
    Logs(jobs::Logs),
    /// Show job queues.
    Queue(jobs::Queue),
    /// Cancel jobs.
    Cancel(jobs::Cancel),
    /// Run by a cluster's agent when its autostop is due.
    #[command(hide = true)]
    InternalAutostop(cluster::InternalAutostop),
    /// Check which providers' credentials work.
    Check(check::Check),
    /// Refresh a provider's catalog from its cloud, or go back to its snapshot.
    #[command(subcommand)]
    Catalog(catalog::CatalogCommand),
    /// Show accelerators, the instance types that have them, and prices.
    ShowGpus(show_gpus::ShowGpus),
    /// The node agent (run on a cluster's head node by the client).
    #[command(subcommand, hide = true)]
    Agent(aloft_agent::AgentCommand),
}

impl Command {
    /// Runs the command.
    pub async fn run(self) -> anyhow::Result<()> {
        match self {
            Command::Provider(c) => c.run().await,
            Command::Launch(c) => c.run().await,
            Command::Exec(c) => c.run().await,
            Command::Status(c) => c.run().await,
            Command::Stop(c) => c.run().await,
            Command::Start(c) => c.run().await,
            Command::Down(c) => c.run().await,
            Command::Autostop(c) => c.run().await,
            Command::Logs(c) => c.run().await,
            Command::Queue(c) => c.run().await,
            Command::Cancel(c) => c.run().await,
            Command::InternalAutostop(c) => c.run().await,
            Command::Check(c) => c.run().await,
            Command::Catalog(c) => c.run().await,
            Command::ShowGpus(c) => c.run().await,
            Command::Agent(c) => match c.run()? {
                0 => Ok(()),
                code => Err(crate::Exit {
                    code,
                    message: String::new(),
                }
                .into()),
            },
        }
    }
}
