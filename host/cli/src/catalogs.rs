//! The on-disk catalog cache: each installed provider's catalog, parsed once
//! per provider build and kept as `$ALOFT_HOME/catalogs/<name>-<sha12>.bin`,
//! so planning does not instantiate every component. A new provider version
//! (a new component hash) gets a new file; the old one is removed.
//! `aloft catalog refresh NAME` writes `<name>-live.bin`, which is used
//! instead until `aloft catalog reset NAME`.

use aloft_core::catalog::CatalogData;
use aloft_core::optimizer::ProviderCatalog;
use aloft_plugin::{Call, PluginHost, Registry, Reply};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// One provider's catalog and where it came from.
pub struct Loaded {
    /// Name and catalog.
    pub catalog: ProviderCatalog,
}

/// Catalogs of every installed provider (newest version of each). A
/// provider whose catalog cannot be had is reported on stderr and skipped.
pub async fn load_all(home: &Path) -> Result<Vec<Loaded>> {
    let registry = Registry::new(home);
    let installed = registry.list()?;
    let mut newest: Vec<aloft_plugin::Installed> = Vec::new();
    for i in installed
        .into_iter()
        .filter(|i| i.manifest.kind == aloft_plugin::manifest::Kind::Provider)
    {
        match newest.last() {
            Some(last) if last.manifest.name == i.manifest.name => {
                let n = newest.len() - 1;
                newest[n] = i; // list is sorted by name, then version
            }
            _ => newest.push(i),
        }
    }
    let mut host: Option<PluginHost> = None;
    let mut out = Vec::new();
    for i in newest {
        let path = cache_path(home, &i.manifest.name, &i.manifest.sha256);
        let live = read_cache(&live_path(home, &i.manifest.name));
        let catalog = match live.or_else(|| read_cache(&path)) {
            Some(c) => c,
            None => {
                if host.is_none() {
                    let limits = aloft_plugin::Limits::from_env().map_err(anyhow::Error::msg)?;
                    host = Some(PluginHost::new(home, limits)?);
                }
                let Some(h) = host.as_ref() else {
                    bail!("plugin host")
                };
                match fetch(h, &i).await {
                    Ok(c) => {
                        write_cache(home, &i.manifest.name, &path, &c);
                        c
                    }
                    Err(e) => {
                        eprintln!("warning: no catalog from {}: {e:#}", i.manifest.label());
                        continue;
                    }
                }
            }
        };
        out.push(Loaded {
            catalog: ProviderCatalog {
                provider: i.manifest.name.clone(),
                catalog,
            },
        });
    }
    Ok(out)
}

async fn fetch(host: &PluginHost, i: &aloft_plugin::Installed) -> Result<CatalogData> {
    let loaded = host.load(&i.manifest, &i.component())?;
    match loaded.call(Call::Catalog).await? {
        Reply::Catalog(c) => Ok(c),
        other => bail!("unexpected reply to catalog: {other:?}"),
    }
}

fn cache_path(home: &Path, name: &str, sha256: &str) -> PathBuf {
    home.join("catalogs")
        .join(format!("{name}-{}.bin", &sha256[..12.min(sha256.len())]))
}

/// Where a refreshed (live) catalog of provider `name` is kept.
pub fn live_path(home: &Path, name: &str) -> PathBuf {
    home.join("catalogs").join(format!("{name}-live.bin"))
}

/// Keeps a refreshed catalog (atomically replaced).
pub fn write_live(home: &Path, name: &str, catalog: &CatalogData) -> Result<()> {
    let path = live_path(home, name);
    let dir = home.join("catalogs");
    std::fs::create_dir_all(&dir).with_context(|| dir.display().to_string())?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, aloft_core::catalog::encode(catalog))
        .with_context(|| tmp.display().to_string())?;
    std::fs::rename(&tmp, &path).with_context(|| path.display().to_string())?;
    Ok(())
}

fn read_cache(path: &Path) -> Option<CatalogData> {
    aloft_core::catalog::decode(&std::fs::read(path).ok()?)
}

fn write_cache(home: &Path, name: &str, path: &Path, catalog: &CatalogData) {
    let write = || -> Result<()> {
        let dir = home.join("catalogs");
        std::fs::create_dir_all(&dir).with_context(|| dir.display().to_string())?;
        // Older builds of this provider are stale now.
        for e in std::fs::read_dir(&dir)?.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if n.strip_prefix(name)
                .and_then(|r| r.strip_prefix('-'))
                .is_some_and(|r| r.len() == 16 && r.ends_with(".bin"))
            {
                let _ = std::fs::remove_file(e.path());
            }
        }
        let bytes = aloft_core::catalog::encode(catalog);
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, bytes)?;
        std::fs::rename(&tmp, path)?;
        Ok(())
    };
    if let Err(e) = write() {
        eprintln!(
            "warning: could not cache the catalog at {}: {e:#}",
            path.display()
        );
    }
}
