//! SSH node pools: `$ALOFT_HOME/ssh_node_pools.yaml`, SkyPilot's format.
//!
//! ```yaml
//! my-box:                      # pool name, used as --infra ssh/my-box
//!   user: ubuntu               # defaults for every host of the pool
//!   identity_file: ~/.ssh/id_ed25519
//!   port: 22
//!   hosts:
//!     - 10.0.0.1               # a bare address
//!     - ip: 10.0.0.2           # or a map overriding the defaults
//!       user: admin
//!       port: 2222
//! ```
//! Passwords are refused: pools are password-less (key auth only).

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One host of a pool, with defaults applied.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PoolHost {
    /// Address.
    pub ip: String,
    /// SSH port.
    pub port: u16,
    /// Login user.
    pub user: String,
    /// Key file; none = aloft's own key.
    pub identity_file: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPool {
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    identity_file: Option<String>,
    #[serde(default)]
    port: Option<u16>,
    #[serde(default)]
    password: Option<String>,
    hosts: Vec<RawHost>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawHost {
    Addr(String),
    Full(RawHostMap),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHostMap {
    ip: String,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    identity_file: Option<String>,
    #[serde(default)]
    port: Option<u16>,
    #[serde(default)]
    password: Option<String>,
}

/// Every pool: name -> hosts.
pub type Pools = BTreeMap<String, Vec<PoolHost>>;

/// Reads the pools file (`$ALOFT_HOME/ssh_node_pools.yaml`); no file = no pools.
pub fn load(home: &Path) -> Result<Pools> {
    let path = home.join("ssh_node_pools.yaml");
    match std::fs::read_to_string(&path) {
        Ok(text) => parse(&text, &path.display().to_string()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Pools::new()),
        Err(e) => Err(e).with_context(|| path.display().to_string()),
    }
}

fn expand(p: &str) -> PathBuf {
    crate::backend::local_path(p, Path::new(""))
}

/// Parses pools text; errors name the file, the pool and the host.
pub fn parse(text: &str, file: &str) -> Result<Pools> {
    let raw: BTreeMap<String, RawPool> = serde_yaml::from_str(text).map_err(|e| {
        let at = e.location().map(|l| format!(":{}:{}", l.line(), l.column())).unwrap_or_default();
        anyhow::anyhow!("{file}{at}: {e}\nhint: each pool is `NAME: {{user: U, identity_file: F, hosts: [IP, ...]}}`")
    })?;
    let mut pools = Pools::new();
    for (name, p) in raw {
        if !crate::state::valid_name(&name) {
            bail!("{file}: pool name {name:?} must be lowercase letters, digits and '-'");
        }
        if p.password.is_some() {
            bail!("{file}: pool {name}: passwords are not supported\nhint: use key authentication (identity_file)");
        }
        if p.hosts.is_empty() {
            bail!("{file}: pool {name} has no hosts");
        }
        let mut hosts = Vec::new();
        for h in p.hosts {
            let host = match h {
                RawHost::Addr(ip) => PoolHost {
                    ip,
                    port: p.port.unwrap_or(22),
                    user: p.user.clone().unwrap_or_default(),
                    identity_file: p.identity_file.as_deref().map(expand),
                },
                RawHost::Full(m) => {
                    if m.password.is_some() {
                        bail!("{file}: pool {name}, host {}: passwords are not supported\nhint: use key authentication", m.ip);
                    }
                    PoolHost {
                        port: m.port.or(p.port).unwrap_or(22),
                        user: m.user.or_else(|| p.user.clone()).unwrap_or_default(),
                        identity_file: m
                            .identity_file
                            .or_else(|| p.identity_file.clone())
                            .as_deref()
                            .map(expand),
                        ip: m.ip,
                    }
                }
            };
            if host.ip.trim().is_empty() {
                bail!("{file}: pool {name}: a host has an empty address");
            }
            if host.user.is_empty() {
                bail!("{file}: pool {name}, host {}: no user\nhint: set `user:` on the pool or the host", host.ip);
            }
            hosts.push(host);
        }
        pools.insert(name, hosts);
    }
    Ok(pools)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_defaults_and_overrides() {
        let p = parse(
            "box:\n  user: ubuntu\n  identity_file: /k\n  hosts:\n    - 127.0.0.2\n    - ip: 127.0.0.3\n      user: admin\n      port: 2222\n",
            "pools.yaml",
        )
        .unwrap();
        let hosts = &p["box"];
        assert_eq!(
            hosts[0],
            PoolHost {
                ip: "127.0.0.2".into(),
                port: 22,
                user: "ubuntu".into(),
                identity_file: Some("/k".into())
            }
        );
        assert_eq!((hosts[1].user.as_str(), hosts[1].port), ("admin", 2222));
    }

    #[test]
    fn refuses_passwords_unknown_keys_and_missing_users() {
        assert!(parse("b:\n  password: x\n  user: u\n  hosts: [h]\n", "f")
            .unwrap_err()
            .to_string()
            .contains("passwords"));
        assert!(parse("b:\n  user: u\n  hostz: [h]\n", "f")
            .unwrap_err()
            .to_string()
            .contains("f:"));
        assert!(parse("b:\n  hosts: [h]\n", "f")
            .unwrap_err()
            .to_string()
            .contains("no user"));
        assert!(parse("B:\n  user: u\n  hosts: [h]\n", "f").is_err());
    }
}
