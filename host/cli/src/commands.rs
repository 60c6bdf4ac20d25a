//! One module per command group.

mod check;
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
    /// Check which providers' credentials work.
    Check(check::Check),
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
            Command::Check(c) => c.run().await,
            Command::ShowGpus(c) => c.run().await,
            Command::Agent(c) => match c.run()? {
                0 => Ok(()),
                code => Err(crate::Exit { code, message: String::new() }.into()),
            },
        }
    }
}
