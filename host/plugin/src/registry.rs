//! Installed plugins: `$ALOFT_HOME/plugins/<name>/<version>/` holding
//! `component.wasm` and `plugin.toml`.
//!
//! Install verifies everything before touching the installed set (manifest
//! keys and values, sha256, that the bytes are a component, its API version
//! and its imports) and then moves the new version in with a rename, so a
//! refused or interrupted install leaves the set as it was.

use crate::host::{read, sha256_hex, PluginHost};
use crate::manifest::{valid_name, Kind, Manifest};
use crate::Error;
use std::path::{Path, PathBuf};

/// File name of an installed component.
pub const COMPONENT_FILE: &str = "component.wasm";
/// File name of a manifest.
pub const MANIFEST_FILE: &str = "plugin.toml";

/// One installed plugin version.
#[derive(Debug, Clone)]
pub struct Installed {
    /// Its manifest.
    pub manifest: Manifest,
    /// Its directory.
    pub dir: PathBuf,
}

impl Installed {
    /// Path of its component.
    pub fn component(&self) -> PathBuf {
        self.dir.join(COMPONENT_FILE)
    }
}

/// The set of installed plugins under one `$ALOFT_HOME`.
pub struct Registry {
    root: PathBuf,
}

impl Registry {
    /// The registry of `home` (`$ALOFT_HOME`).
    pub fn new(home: &Path) -> Registry {
        Registry {
            root: home.join("plugins"),
        }
    }

    /// Every installed plugin version, by name then version.
    pub fn list(&self) -> Result<Vec<Installed>, Error> {
        let mut out = Vec::new();
        let Ok(names) = std::fs::read_dir(&self.root) else {
            return Ok(out);
        };
        for name in names.flatten() {
            let name_str = name.file_name().to_string_lossy().into_owned();
            if !valid_name(&name_str) {
                continue; // staging and trash directories
            }
            let Ok(versions) = std::fs::read_dir(name.path()) else {
                continue;
            };
            for v in versions.flatten() {
                let dir = v.path();
                let manifest = Manifest::read(&dir.join(MANIFEST_FILE))?;
                out.push(Installed { manifest, dir });
            }
        }
        out.sort_by(|a, b| {
            (a.manifest.name.as_str(), &a.manifest.version)
                .cmp(&(b.manifest.name.as_str(), &b.manifest.version))
        });
        Ok(out)
    }

    /// The newest installed version of `name`, or a given `name@version`.
    pub fn get(&self, spec: &str) -> Result<Installed, Error> {
        let (name, version) = split_spec(spec)?;
        self.list()?
            .into_iter()
            .rfind(|i| {
                i.manifest.name == name && version.as_ref().is_none_or(|v| *v == i.manifest.version)
            })
            .ok_or_else(|| Error::NotInstalled {
                spec: spec.to_string(),
            })
    }

    /// Verifies and installs a plugin from `path`: a directory holding one
    /// `.wasm` and `plugin.toml`, or a `.wasm` file with `plugin.toml`
    /// beside it. Replaces an installed plugin of the same name and version.
    pub fn install(&self, host: &PluginHost, path: &Path) -> Result<Installed, Error> {
        let (component_path, manifest_path) = locate(path)?;
        let manifest = Manifest::read(&manifest_path)?;
        let bytes = read(&component_path)?;
        let actual = sha256_hex(&bytes);
        if actual != manifest.sha256 {
            return Err(Error::HashMismatch {
                path: component_path,
                expected: manifest.sha256,
                actual,
            });
        }
        let component = host.compile(&bytes, &component_path)?;
        let inspected = host.inspect(&component, &component_path, &manifest.label())?;
        if inspected.api != manifest.api {
            return Err(Error::Manifest {
                path: manifest_path,
                message: format!(
                    "api is {:?} but the component exports {}",
                    manifest.api, inspected.api
                ),
            });
        }
        if inspected.kind != manifest.kind {
            return Err(Error::Manifest {
                path: manifest_path,
                message: format!(
                    "kind is {} but the component is a {}",
                    manifest.kind, inspected.kind
                ),
            });
        }
        let io = |p: &Path| {
            let p = p.to_path_buf();
            move |e: std::io::Error| Error::Io {
                path: p,
                message: e.to_string(),
            }
        };
        let staging = self
            .root
            .join(format!(".staging-{}-{}", std::process::id(), manifest.name));
        let _ = std::fs::remove_dir_all(&staging);
        std::fs::create_dir_all(&staging).map_err(io(&staging))?;
        let write = || -> Result<(), Error> {
            std::fs::write(staging.join(COMPONENT_FILE), &bytes).map_err(io(&staging))?;
            std::fs::write(staging.join(MANIFEST_FILE), manifest.to_toml())
                .map_err(io(&staging))?;
            Ok(())
        };
        if let Err(e) = write() {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(e);
        }
        let parent = self.root.join(&manifest.name);
        let dest = parent.join(manifest.version.to_string());
        std::fs::create_dir_all(&parent).map_err(io(&parent))?;
        let trash = self
            .root
            .join(format!(".trash-{}-{}", std::process::id(), manifest.name));
        let had_old = dest.exists();
        if had_old {
            std::fs::rename(&dest, &trash).map_err(io(&dest))?;
        }
        if let Err(e) = std::fs::rename(&staging, &dest) {
            if had_old {
                let _ = std::fs::rename(&trash, &dest);
            }
            let _ = std::fs::remove_dir_all(&staging);
            return Err(io(&dest)(e));
        }
        let _ = std::fs::remove_dir_all(&trash);
        host.prime_cache(&manifest.sha256, &component);
        Ok(Installed {
            manifest,
            dir: dest,
        })
    }

    /// Removes `name` (every version) or `name@version`. Returns what went.
    pub fn remove(&self, spec: &str) -> Result<Vec<Installed>, Error> {
        let (name, version) = split_spec(spec)?;
        let gone: Vec<Installed> = self
            .list()?
            .into_iter()
            .filter(|i| {
                i.manifest.name == name && version.as_ref().is_none_or(|v| *v == i.manifest.version)
            })
            .collect();
        if gone.is_empty() {
            return Err(Error::NotInstalled {
                spec: spec.to_string(),
            });
        }
        for i in &gone {
            std::fs::remove_dir_all(&i.dir).map_err(|e| Error::Io {
                path: i.dir.clone(),
                message: e.to_string(),
            })?;
        }
        let parent = self.root.join(&name);
        let _ = std::fs::remove_dir(&parent); // only if now empty
        Ok(gone)
    }
}

fn split_spec(spec: &str) -> Result<(String, Option<semver::Version>), Error> {
    let (name, version) = match spec.split_once('@') {
        Some((n, v)) => (n, Some(v)),
        None => (spec, None),
    };
    if !valid_name(name) {
        return Err(Error::BadSpec {
            spec: spec.to_string(),
            message: "name must be [a-z0-9-]".into(),
        });
    }
    let version = version
        .map(|v| {
            semver::Version::parse(v).map_err(|e| Error::BadSpec {
                spec: spec.to_string(),
                message: e.to_string(),
            })
        })
        .transpose()?;
    Ok((name.to_string(), version))
}

/// Finds the component and manifest for an install path.
fn locate(path: &Path) -> Result<(PathBuf, PathBuf), Error> {
    let meta = std::fs::metadata(path).map_err(|e| Error::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    if meta.is_dir() {
        let wasm: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|e| Error::Io {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "wasm"))
            .collect();
        match wasm.as_slice() {
            [one] => Ok((one.clone(), path.join(MANIFEST_FILE))),
            [] => Err(Error::Refused {
                path: path.to_path_buf(),
                message: "no .wasm component in this directory".into(),
            }),
            _ => Err(Error::Refused {
                path: path.to_path_buf(),
                message: "more than one .wasm in this directory; name the component file".into(),
            }),
        }
    } else {
        let dir = path.parent().unwrap_or(Path::new("."));
        Ok((path.to_path_buf(), dir.join(MANIFEST_FILE)))
    }
}

/// `[package.metadata.aloft]` of a plugin crate.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CrateMeta {
    name: String,
    kind: Kind,
    #[serde(default)]
    api: Option<String>,
    #[serde(default)]
    egress: Vec<String>,
    #[serde(default)]
    secrets: Vec<String>,
}

/// Writes `<out>/<name>.wasm` and `<out>/plugin.toml` for a built component,
/// taking name, kind, egress and secrets from the crate's
/// `[package.metadata.aloft]`, the version from `[package]`, and the API
/// version from the component itself (unless the metadata names one).
pub fn pack(
    host: &PluginHost,
    cargo_toml: &Path,
    wasm: &Path,
    out: &Path,
) -> Result<Manifest, Error> {
    let text = std::fs::read_to_string(cargo_toml).map_err(|e| Error::Io {
        path: cargo_toml.to_path_buf(),
        message: e.to_string(),
    })?;
    let bad = |message: String| Error::Manifest {
        path: cargo_toml.to_path_buf(),
        message,
    };
    let doc: toml::Value = toml::from_str(&text).map_err(|e| bad(e.to_string()))?;
    let package = doc
        .get("package")
        .ok_or_else(|| bad("no [package]".into()))?;
    let version = package
        .get("version")
        .and_then(|v| v.as_str())
        .ok_or_else(|| bad("[package] has no literal version".into()))?;
    let meta = package
        .get("metadata")
        .and_then(|m| m.get("aloft"))
        .ok_or_else(|| bad("no [package.metadata.aloft]".into()))?;
    let meta: CrateMeta = meta
        .clone()
        .try_into()
        .map_err(|e: toml::de::Error| bad(format!("[package.metadata.aloft]: {e}")))?;
    let bytes = read(wasm)?;
    let api = match meta.api {
        Some(api) => api,
        None => {
            let component = host.compile(&bytes, wasm)?;
            host.describe(&component, wasm)?.api
        }
    };
    let manifest = Manifest {
        name: meta.name,
        version: semver::Version::parse(version)
            .map_err(|e| bad(format!("version {version:?}: {e}")))?,
        kind: meta.kind,
        api,
        egress: meta.egress,
        secrets: meta.secrets,
        sha256: sha256_hex(&bytes),
    };
    manifest.validate().map_err(bad)?;
    std::fs::create_dir_all(out).map_err(|e| Error::Io {
        path: out.to_path_buf(),
        message: e.to_string(),
    })?;
    let dest = out.join(format!("{}.wasm", manifest.name));
    std::fs::write(&dest, &bytes).map_err(|e| Error::Io {
        path: dest.clone(),
        message: e.to_string(),
    })?;
    let mpath = out.join(MANIFEST_FILE);
    std::fs::write(&mpath, manifest.to_toml()).map_err(|e| Error::Io {
        path: mpath,
        message: e.to_string(),
    })?;
    Ok(manifest)
}
