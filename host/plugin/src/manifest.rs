//! `plugin.toml`: what a plugin is and what it may do.
//!
//! ```toml
//! name = "aws"
//! version = "0.1.0"
//! kind = "provider"            # or "store"
//! api = "aloft:provider@0.1.0"
//! egress = ["ec2.*.amazonaws.com"]
//! secrets = ["AWS_ACCESS_KEY_ID"]
//! sha256 = "..."               # of the component file beside it
//! ```
//! Unknown keys are refused, so a typo cannot silently widen or narrow what
//! a plugin may do.

use crate::Error;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Kind of plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A cloud provider (`world provider`).
    Provider,
    /// A storage backend (`world store`).
    Store,
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Kind::Provider => "provider",
            Kind::Store => "store",
        })
    }
}

/// A parsed, validated `plugin.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Plugin name: `[a-z0-9-]`, 1..=64 chars.
    pub name: String,
    /// Semver version.
    pub version: semver::Version,
    /// Provider or store.
    pub kind: Kind,
    /// The API the component implements, e.g. `aloft:provider@0.1.0`.
    pub api: String,
    /// Hosts the plugin may send HTTP requests to. `*.example.com` matches
    /// any subdomain; `ec2.*.amazonaws.com` matches one label in the middle;
    /// `$NAME` allows the host of the URL in the declared secret NAME, when
    /// set (an endpoint override).
    #[serde(default)]
    pub egress: Vec<String>,
    /// Names of the secrets the plugin may read.
    #[serde(default)]
    pub secrets: Vec<String>,
    /// Hex sha256 of the component.
    pub sha256: String,
}

impl Manifest {
    /// Reads and validates a manifest file.
    pub fn read(path: &Path) -> Result<Manifest, Error> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::Io {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        Manifest::parse(&text).map_err(|message| Error::Manifest {
            path: path.to_path_buf(),
            message,
        })
    }

    /// Parses and validates manifest text.
    pub fn parse(text: &str) -> Result<Manifest, String> {
        let m: Manifest = toml::from_str(text).map_err(|e| e.to_string())?;
        m.validate()?;
        Ok(m)
    }

    /// Checks names, hosts and the hash's shape.
    pub fn validate(&self) -> Result<(), String> {
        if !valid_name(&self.name) {
            return Err(format!(
                "name {:?} must be 1-64 characters of a-z, 0-9 and '-'",
                self.name
            ));
        }
        if self.sha256.len() != 64 || !self.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!("sha256 {:?} is not 64 hex digits", self.sha256));
        }
        for host in &self.egress {
            if let Some(secret) = host.strip_prefix('$') {
                if !self.secrets.iter().any(|s| s == secret) {
                    return Err(format!(
                        "egress entry {host:?} names a secret that is not declared in secrets"
                    ));
                }
                continue;
            }
            if host.is_empty()
                || host.contains(['/', ':', ' ', '@'])
                || host.split('.').any(|l| l.is_empty())
            {
                return Err(format!(
                    "egress host {host:?} must be a host name or pattern (no scheme, port or path)"
                ));
            }
        }
        for s in &self.secrets {
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return Err(format!("secret name {s:?} must be letters, digits and '_'"));
            }
        }
        Ok(())
    }

    /// `name@version`.
    pub fn label(&self) -> String {
        format!("{}@{}", self.name, self.version)
    }

    /// The TOML text of this manifest.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_default()
    }

    /// Whether `host` (from a request's authority) is in the static egress
    /// list (`$NAME` entries are expanded per instance, see the sandbox).
    pub fn allows_host(&self, host: &str) -> bool {
        egress_allows(&self.egress, host)
    }
}

/// Plugin and cluster names: `[a-z0-9-]{1,64}`, not starting with '-'.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('-')
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Matches a host against egress patterns, label by label; `*` matches one
/// label, a leading `*.` matches one or more.
pub fn egress_allows(patterns: &[String], host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let labels: Vec<&str> = host.split('.').collect();
    patterns.iter().any(|p| {
        let p = p.to_ascii_lowercase();
        let pl: Vec<&str> = p.split('.').collect();
        if pl.first() == Some(&"*") && pl.len() > 1 {
            let rest = &pl[1..];
            labels.len() > rest.len() && labels_match(rest, &labels[labels.len() - rest.len()..])
        } else {
            labels_match(&pl, &labels)
        }
    })
}

fn labels_match(pattern: &[&str], labels: &[&str]) -> bool {
    pattern.len() == labels.len() && pattern.iter().zip(labels).all(|(p, l)| *p == "*" || p == l)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn egress_patterns() {
        let p = vec![
            "ec2.*.amazonaws.com".to_string(),
            "*.example.com".into(),
            "127.0.0.1".into(),
        ];
        assert!(egress_allows(&p, "ec2.us-east-1.amazonaws.com"));
        assert!(!egress_allows(&p, "s3.us-east-1.amazonaws.com"));
        assert!(!egress_allows(&p, "ec2.amazonaws.com"));
        assert!(egress_allows(&p, "a.b.example.com"));
        assert!(!egress_allows(&p, "example.com"));
        assert!(!egress_allows(&p, "example.com.evil.net"));
        assert!(egress_allows(&p, "127.0.0.1"));
        assert!(!egress_allows(&p, "127.0.0.2"));
    }

    #[test]
    fn unknown_keys_refused() {
        let text = "name='x'\nversion='0.1.0'\nkind='provider'\napi='aloft:provider@0.1.0'\nsha256='00'\negres=[]\n";
        let err = Manifest::parse(text).unwrap_err();
        assert!(err.contains("unknown field `egres`"), "{err}");
    }

    #[test]
    fn bad_values_refused() {
        let base = |extra: &str| {
            format!("name='x'\nversion='0.1.0'\nkind='provider'\napi='aloft:provider@0.1.0'\nsha256='{}'\n{extra}", "a".repeat(64))
        };
        assert!(Manifest::parse(&base("")).is_ok());
        assert!(Manifest::parse(&base("egress=['https://x.com']"))
            .unwrap_err()
            .contains("egress host"));
        assert!(Manifest::parse(&base("secrets=['A B']"))
            .unwrap_err()
            .contains("secret name"));
        assert!(Manifest::parse(&base("").replace("name='x'", "name='../x'")).is_err());
        assert!(Manifest::parse(&base("egress=['$ENDPOINT']"))
            .unwrap_err()
            .contains("not declared"));
        assert!(Manifest::parse(&base("egress=['$ENDPOINT']\nsecrets=['ENDPOINT']")).is_ok());
    }

    #[test]
    fn egress_from_a_declared_endpoint_secret() {
        use crate::sandbox::expand_egress;
        let egress: Vec<String> = ["ec2.*.amazonaws.com", "$EP", "$UNSET", "$BAD"]
            .map(String::from)
            .into();
        let secrets = [
            ("EP".to_string(), Some("http://127.0.0.1:5000/".to_string())),
            ("UNSET".to_string(), None),
            ("BAD".to_string(), Some("not a url at all".to_string())),
        ]
        .into();
        let e = expand_egress(&egress, &secrets);
        assert_eq!(
            e,
            vec!["ec2.*.amazonaws.com".to_string(), "127.0.0.1".to_string()]
        );
        assert!(egress_allows(&e, "127.0.0.1"));
        assert!(!egress_allows(&e, "127.0.0.2"));
    }
}
