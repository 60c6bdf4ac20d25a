//! `aloft check`: which providers can be used, and why not.
//!
//! Each installed provider's `check` export runs (concurrently, each under
//! its deadline). The result is kept in `$ALOFT_HOME/check.json`; the
//! optimizer plans only over providers whose last check passed.

use crate::home::aloft_home;
use crate::table::Table;
use aloft_plugin::{Call, CallError, Limits, PluginHost, Registry, Reply};
use anyhow::Result;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// One provider's check outcome.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Status {
    /// Usable now.
    pub enabled: bool,
    /// Identity when enabled, else why not.
    pub detail: String,
}

/// `aloft check [PROVIDER...]`.
#[derive(Debug, clap::Args)]
pub struct Check {
    /// Only these providers.
    pub providers: Vec<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

impl Check {
    /// Runs the command.
    pub async fn run(self) -> Result<()> {
        let home = aloft_home()?;
        let host = PluginHost::new(&home, Limits::from_env().map_err(anyhow::Error::msg)?)?;
        let mut latest: BTreeMap<String, aloft_plugin::Installed> = BTreeMap::new();
        for i in Registry::new(&home).list()? {
            if self.providers.is_empty() || self.providers.contains(&i.manifest.name) {
                latest.insert(i.manifest.name.clone(), i);
            }
        }
        for p in &self.providers {
            if !latest.contains_key(p) {
                anyhow::bail!("no installed provider named {p:?}\nhint: aloft provider list");
            }
        }
        // Load in turn (cheap, cached), then call all at once.
        let tasks: Vec<_> = latest
            .values()
            .map(|i| {
                let loaded = host.load(&i.manifest, &i.component());
                tokio::spawn(async move {
                    match loaded {
                        Ok(l) => check_one(l).await,
                        Err(e) => Status {
                            enabled: false,
                            detail: format!("cannot load: {e}"),
                        },
                    }
                })
            })
            .collect();
        let mut results = Vec::new();
        for t in tasks {
            results.push(t.await.unwrap_or_else(|e| Status {
                enabled: false,
                detail: format!("check failed: {e}"),
            }));
        }
        let mut statuses = load(&home);
        for (name, status) in latest.keys().zip(results) {
            statuses.insert(name.clone(), status);
        }
        save(&home, &statuses)?;
        if self.json {
            crate::outln(&serde_json::to_string_pretty(&statuses)?);
            return Ok(());
        }
        let mut t = Table::new(&["PROVIDER", "STATUS", "DETAIL"]);
        for (name, s) in statuses.iter().filter(|(n, _)| latest.contains_key(*n)) {
            t.row(vec![
                name.clone(),
                if s.enabled { "enabled" } else { "disabled" }.into(),
                s.detail.clone(),
            ]);
        }
        crate::out(&t.render());
        Ok(())
    }
}

async fn check_one(loaded: aloft_plugin::LoadedPlugin) -> Status {
    match loaded.call(Call::Check).await {
        Ok(Reply::Identity(id)) => {
            let mut detail = id.id;
            for (k, v) in id.details {
                detail.push_str(&format!(" {k}={v}"));
            }
            Status {
                enabled: true,
                detail,
            }
        }
        Ok(other) => Status {
            enabled: false,
            detail: format!("unexpected reply {other:?}"),
        },
        Err(CallError::Provider { error, .. }) => Status {
            enabled: false,
            detail: error.to_string(),
        },
        Err(e) => Status {
            enabled: false,
            detail: e.to_string(),
        },
    }
}

/// The last check results, by provider.
pub fn load(home: &Path) -> BTreeMap<String, Status> {
    std::fs::read(home.join("check.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

fn save(home: &Path, statuses: &BTreeMap<String, Status>) -> Result<()> {
    let path = home.join("check.json");
    let tmp = home.join(format!("check.json.tmp{}", std::process::id()));
    std::fs::write(&tmp, serde_json::to_vec_pretty(statuses)?)?;
    std::fs::rename(&tmp, &path)?;
    Ok(())
}
