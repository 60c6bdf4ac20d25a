//! `aloft provider ...`: the installed plugin set, and calling a plugin
//! directly (for provider authors).

use crate::home::aloft_home;
use crate::table::Table;
use crate::Exit;
use aloft_plugin::{Call, CallError, Limits, PluginHost, Registry};
use anyhow::{Context, Result};
use clap::Subcommand;
use std::path::PathBuf;

/// Provider plugin commands.
#[derive(Debug, Subcommand)]
pub enum ProviderCommand {
    /// List installed plugins.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Verify and install a plugin: a directory holding a component and its
    /// plugin.toml, or a .wasm with plugin.toml beside it.
    Install {
        /// The directory or component file.
        path: PathBuf,
    },
    /// Remove an installed plugin (every version, or NAME@VERSION).
    Remove {
        /// NAME or NAME@VERSION.
        spec: String,
    },
    /// Show an installed plugin's manifest and what its component imports
    /// and exports.
    Info {
        /// NAME or NAME@VERSION.
        spec: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Call one export of an installed plugin with JSON arguments and print
    /// the JSON result (or the typed error, exit status 1).
    Call {
        /// NAME or NAME@VERSION.
        spec: String,
        /// catalog, check, run-instances, query-instances, stop-instances,
        /// start-instances, terminate-instances, open-ports.
        operation: String,
        /// Arguments as JSON (a run-request, a cluster-ref, or
        /// {"cluster":..., "ports":[...]}).
        #[arg(long, default_value = "null")]
        json: String,
    },
    /// For plugin authors: write <OUT>/<name>.wasm and plugin.toml for a
    /// built component, from its crate's [package.metadata.aloft].
    Pack {
        /// The plugin crate's Cargo.toml.
        #[arg(long = "crate")]
        cargo_toml: PathBuf,
        /// The built component.
        #[arg(long)]
        wasm: PathBuf,
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
    },
}

fn host() -> Result<(PathBuf, PluginHost)> {
    let home = aloft_home()?;
    let limits = Limits::from_env().map_err(anyhow::Error::msg)?;
    let host = PluginHost::new(&home, limits)?;
    Ok((home, host))
}

impl ProviderCommand {
    /// Runs the command.
    pub async fn run(self) -> Result<()> {
        match self {
            ProviderCommand::List { json } => list(json),
            ProviderCommand::Install { path } => {
                let (home, host) = host()?;
                let installed = Registry::new(&home)
                    .install(&host, &path)
                    .with_context(|| format!("installing {}", path.display()))?;
                println!(
                    "installed {} ({})",
                    installed.manifest.label(),
                    installed.dir.display()
                );
                Ok(())
            }
            ProviderCommand::Remove { spec } => {
                let home = aloft_home()?;
                for gone in Registry::new(&home).remove(&spec)? {
                    println!("removed {}", gone.manifest.label());
                }
                Ok(())
            }
            ProviderCommand::Info { spec, json } => info(&spec, json),
            ProviderCommand::Call {
                spec,
                operation,
                json,
            } => call(&spec, &operation, &json).await,
            ProviderCommand::Pack {
                cargo_toml,
                wasm,
                out,
            } => {
                let (_, host) = host()?;
                let m = aloft_plugin::registry::pack(&host, &cargo_toml, &wasm, &out)?;
                println!("packed {} into {}", m.label(), out.display());
                Ok(())
            }
        }
    }
}

fn list(json: bool) -> Result<()> {
    let home = aloft_home()?;
    let installed = Registry::new(&home).list()?;
    if json {
        let rows: Vec<serde_json::Value> = installed
            .iter()
            .map(|i| {
                let mut v = serde_json::to_value(&i.manifest).unwrap_or_default();
                v["path"] = serde_json::Value::String(i.dir.display().to_string());
                v
            })
            .collect();
        crate::outln(&serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    let mut t = Table::new(&[
        "NAME", "VERSION", "API", "KIND", "EGRESS", "SECRETS", "SHA256",
    ]);
    for i in &installed {
        let m = &i.manifest;
        t.row(vec![
            m.name.clone(),
            m.version.to_string(),
            m.api.clone(),
            m.kind.to_string(),
            dash(m.egress.join(",")),
            dash(m.secrets.join(",")),
            m.sha256[..12].to_string(),
        ]);
    }
    if t.is_empty() {
        eprintln!("no plugins installed\nhint: aloft provider install DIR");
    } else {
        crate::out(&t.render());
    }
    Ok(())
}

fn dash(s: String) -> String {
    if s.is_empty() {
        "-".into()
    } else {
        s
    }
}

fn info(spec: &str, json: bool) -> Result<()> {
    let (home, host) = host()?;
    let installed = Registry::new(&home).get(spec)?;
    let loaded = host.load(&installed.manifest, &installed.component())?;
    let m = loaded.manifest();
    let ins = loaded.inspected();
    if json {
        let mut v = serde_json::to_value(m)?;
        v["path"] = installed.dir.display().to_string().into();
        v["imports"] = serde_json::to_value(&ins.imports)?;
        v["exports"] = serde_json::to_value(&ins.exports)?;
        crate::outln(&serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    println!("name:     {}", m.name);
    println!("version:  {}", m.version);
    println!("kind:     {}", m.kind);
    println!("api:      {}", m.api);
    println!("egress:   {}", dash(m.egress.join(", ")));
    println!("secrets:  {}", dash(m.secrets.join(", ")));
    println!("sha256:   {}", m.sha256);
    println!("path:     {}", installed.dir.display());
    println!("exports:  {}", ins.exports.join(", "));
    println!("imports:  {}", ins.imports.join(", "));
    Ok(())
}

async fn call(spec: &str, operation: &str, args: &str) -> Result<()> {
    let call = Call::from_json(operation, args).map_err(|m| Exit {
        code: 2,
        message: m,
    })?;
    let (home, host) = host()?;
    let installed = Registry::new(&home).get(spec)?;
    let loaded = host.load(&installed.manifest, &installed.component())?;
    match loaded.call(call).await {
        Ok(reply) => {
            crate::outln(&serde_json::to_string_pretty(&reply)?);
            Ok(())
        }
        Err(e) => {
            let (kind, message) = match &e {
                CallError::Provider { error, .. } => (error.kind(), error.to_string()),
                CallError::Deadline { .. } => ("deadline", e.to_string()),
                CallError::MemoryLimit { .. } => ("memory-limit", e.to_string()),
                CallError::Trap { .. } => ("trap", e.to_string()),
                _ => ("instantiate", e.to_string()),
            };
            let out = serde_json::json!({ "error": { "kind": kind, "message": message, "plugin": e.plugin() } });
            crate::outln(&serde_json::to_string_pretty(&out)?);
            Err(Exit {
                code: 1,
                message: e.to_string(),
            }
            .into())
        }
    }
}
