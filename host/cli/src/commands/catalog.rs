//! `aloft catalog refresh NAME [--regions R,...]` and `aloft catalog reset
//! NAME`: a live catalog fetched from the cloud's own APIs by the provider,
//! kept as `$ALOFT_HOME/catalogs/<name>-live.bin` and used instead of the
//! provider's embedded snapshot until reset. Providers that support it
//! declare the host setting `ALOFT_CATALOG_REFRESH` (API 0.1 has no refresh
//! export; see wit/PENDING_CHANGES.md).

use crate::catalogs::{live_path, write_live};
use crate::home::aloft_home;
use crate::Exit;
use aloft_plugin::call::Op;
use aloft_plugin::{Call, Limits, PluginHost, Registry, Reply};
use anyhow::Result;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// Catalog commands.
#[derive(Debug, clap::Subcommand)]
pub enum CatalogCommand {
    /// Fetch a live catalog (instance types, zones, spot prices) from the
    /// provider's cloud; used instead of the embedded snapshot until reset.
    Refresh {
        /// Provider name (e.g. aws).
        name: String,
        /// Regions to fetch, comma-separated (default: every enabled region).
        #[arg(long)]
        regions: Option<String>,
    },
    /// Go back to the provider's embedded snapshot.
    Reset {
        /// Provider name.
        name: String,
    },
}

impl CatalogCommand {
    /// Runs the command.
    pub async fn run(self) -> Result<()> {
        let home = aloft_home()?;
        match self {
            CatalogCommand::Reset { name } => {
                let path = live_path(&home, &name);
                match std::fs::remove_file(&path) {
                    Ok(()) => eprintln!("{name}: back to the embedded catalog snapshot"),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        eprintln!("{name}: no live catalog; the embedded snapshot is in use")
                    }
                    Err(e) => return Err(anyhow::anyhow!("{}: {e}", path.display())),
                }
                Ok(())
            }
            CatalogCommand::Refresh { name, regions } => {
                // A live catalog takes many paged calls: 10 minutes unless
                // ALOFT_PLUGIN_DEADLINES says otherwise.
                let mut base = Limits::default();
                base.deadlines.insert(Op::Catalog, Duration::from_secs(600));
                let limits = Limits::from_env_over(base).map_err(anyhow::Error::msg)?;
                let host = PluginHost::new(&home, limits)?;
                let installed = Registry::new(&home).get(&name)?;
                let spec = regions.unwrap_or_else(|| "all".to_string());
                let loaded = host
                    .load(&installed.manifest, &installed.component())?
                    .with_setting("ALOFT_CATALOG_REFRESH", &spec)
                    .map_err(|m| Exit {
                        code: 2,
                        message: format!(
                            "{m}: it cannot refresh its catalog (it serves its embedded snapshot)"
                        ),
                    })?;
                let started = Instant::now();
                let catalog = match loaded.call(Call::Catalog).await? {
                    Reply::Catalog(c) => c,
                    other => anyhow::bail!("unexpected reply to catalog: {other:?}"),
                };
                if catalog.offerings.is_empty() {
                    return Err(Exit {
                        code: 1,
                        message: format!(
                            "{name}: the live catalog is empty; the snapshot stays in use"
                        ),
                    }
                    .into());
                }
                write_live(&home, &name, &catalog)?;
                let types: BTreeSet<&str> = catalog
                    .offerings
                    .iter()
                    .map(|o| &*o.instance_type)
                    .collect();
                let regions: BTreeSet<&str> =
                    catalog.offerings.iter().map(|o| &*o.region).collect();
                let spot = catalog
                    .offerings
                    .iter()
                    .filter(|o| o.spot_price.is_some())
                    .count();
                crate::outln(&format!(
                    "{name}: live catalog of {} from {} ({:.1}s): {} offerings, {} instance types, {} regions, {spot} with a spot price\n{}",
                    catalog.data_date,
                    if spec == "all" { "every enabled region".to_string() } else { spec.clone() },
                    started.elapsed().as_secs_f64(),
                    catalog.offerings.len(),
                    types.len(),
                    regions.len(),
                    live_path(&home, &name).display()
                ));
                Ok(())
            }
        }
    }
}
