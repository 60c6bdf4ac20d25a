//! One module per command group.

mod check;
mod provider;
mod show_gpus;

use clap::Subcommand;

/// Every `aloft` command.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Install, list, inspect and call provider plugins.
    #[command(subcommand)]
    Provider(provider::ProviderCommand),
    /// Check which providers' credentials work.
    Check(check::Check),
    /// Show accelerators, the instance types that have them, and prices.
    ShowGpus(show_gpus::ShowGpus),
}

impl Command {
    /// Runs the command.
    pub async fn run(self) -> anyhow::Result<()> {
        match self {
            Command::Provider(c) => c.run().await,
            Command::Check(c) => c.run().await,
            Command::ShowGpus(c) => c.run().await,
        }
    }
}
