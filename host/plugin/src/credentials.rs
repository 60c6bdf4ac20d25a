//! Where the values of a plugin's declared secrets come from.
//!
//! Every declared name is first read from the environment variable of the
//! same name. For AWS's names the host also reads the user's shared AWS
//! files the way the AWS CLI does, so a user with `aws configure` done needs
//! nothing more:
//!
//! - profile: `AWS_PROFILE`, else `AWS_DEFAULT_PROFILE`, else `default`;
//! - `AWS_SHARED_CREDENTIALS_FILE` (default `~/.aws/credentials`), section
//!   `[<profile>]`, and `AWS_CONFIG_FILE` (default `~/.aws/config`), section
//!   `[profile <profile>]` (`[default]` for the default profile);
//! - `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` / `AWS_SESSION_TOKEN`
//!   come as one set: from the environment when the key id is set there,
//!   else all three from the profile (credentials file first, then config);
//! - `AWS_REGION`: environment, `AWS_DEFAULT_REGION`, then the profile's
//!   `region`; `AWS_ENDPOINT_URL`: environment, then the profile's
//!   `endpoint_url`.
//!
//! Only names the manifest declares are ever looked up or handed over.

use std::collections::BTreeMap;
use std::path::PathBuf;

/// Declared names with this prefix are settings the host passes for one
/// call (`LoadedPlugin::with_setting`); the environment never fills them.
pub const HOST_SETTING_PREFIX: &str = "ALOFT_CATALOG_";

/// The value of every declared secret (None: declared but not set here).
pub fn resolve(declared: &[String]) -> BTreeMap<String, Option<String>> {
    resolve_with(declared, &|name| std::env::var(name).ok())
}

/// [`resolve`] with the environment given as a function (tests).
pub fn resolve_with(
    declared: &[String],
    env: &dyn Fn(&str) -> Option<String>,
) -> BTreeMap<String, Option<String>> {
    let env = |name: &str| env(name).filter(|v| !v.is_empty());
    let aws = declared.iter().any(|n| n.starts_with("AWS_"));
    let profile = if aws {
        AwsProfile::load(&env)
    } else {
        AwsProfile::default()
    };
    let creds_from_env = env("AWS_ACCESS_KEY_ID").is_some();
    declared
        .iter()
        .map(|name| {
            let value = match name.as_str() {
                "AWS_ACCESS_KEY_ID" | "AWS_SECRET_ACCESS_KEY" | "AWS_SESSION_TOKEN" => {
                    if creds_from_env {
                        env(name)
                    } else {
                        profile.get(&name.to_ascii_lowercase())
                    }
                }
                "AWS_REGION" => env(name)
                    .or_else(|| env("AWS_DEFAULT_REGION"))
                    .or_else(|| profile.get("region")),
                "AWS_ENDPOINT_URL" => env(name).or_else(|| profile.get("endpoint_url")),
                // Host settings for one call (`aloft catalog refresh`), never
                // taken from the environment.
                n if n.starts_with(HOST_SETTING_PREFIX) => None,
                _ => env(name),
            };
            (name.clone(), value)
        })
        .collect()
}

/// The selected profile's keys from the credentials and config files.
#[derive(Default)]
struct AwsProfile {
    /// From the credentials file (wins).
    credentials: BTreeMap<String, String>,
    /// From the config file.
    config: BTreeMap<String, String>,
}

impl AwsProfile {
    fn load(env: &dyn Fn(&str) -> Option<String>) -> AwsProfile {
        let home = env("HOME").map(PathBuf::from);
        let file = |var: &str, default: &str| {
            env(var)
                .map(PathBuf::from)
                .or_else(|| home.as_ref().map(|h| h.join(".aws").join(default)))
        };
        let name = env("AWS_PROFILE")
            .or_else(|| env("AWS_DEFAULT_PROFILE"))
            .unwrap_or_else(|| "default".to_string());
        let read = |p: Option<PathBuf>| p.and_then(|p| std::fs::read_to_string(p).ok());
        let credentials = read(file("AWS_SHARED_CREDENTIALS_FILE", "credentials"))
            .map(|t| section(&t, &name))
            .unwrap_or_default();
        let config_section = if name == "default" {
            "default".to_string()
        } else {
            format!("profile {name}")
        };
        let config = read(file("AWS_CONFIG_FILE", "config"))
            .map(|t| {
                let s = section(&t, &config_section);
                // Some files write `[profile default]`.
                if s.is_empty() && name == "default" {
                    section(&t, "profile default")
                } else {
                    s
                }
            })
            .unwrap_or_default();
        AwsProfile {
            credentials,
            config,
        }
    }

    fn get(&self, key: &str) -> Option<String> {
        self.credentials
            .get(key)
            .or_else(|| self.config.get(key))
            .cloned()
    }
}

/// The `key = value` pairs of one `[section]` of an INI file in the AWS
/// dialect: `#` and `;` comments, indented lines belong to a nested block
/// (skipped), keys are case-insensitive.
fn section(text: &str, wanted: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut inside = false;
    for line in text.lines() {
        if line.starts_with([' ', '\t']) {
            continue;
        }
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(rest) = line.strip_prefix('[') {
            let name = rest
                .trim_end_matches(']')
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            inside = name == wanted;
            continue;
        }
        if !inside {
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            let v = v.trim();
            if !v.is_empty() {
                out.insert(k.trim().to_ascii_lowercase(), v.to_string());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| s.to_string()).collect()
    }

    const ALL: &[&str] = &[
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_REGION",
        "AWS_ENDPOINT_URL",
    ];

    fn files() -> (tempfile::TempDir, String, String) {
        let dir = tempfile::tempdir().unwrap();
        let creds = dir.path().join("credentials");
        let config = dir.path().join("config");
        std::fs::write(
            &creds,
            "# comment\n[default]\naws_access_key_id = AKIDDEFAULT\naws_secret_access_key = secret-default\n\n\
             [work]\nAWS_ACCESS_KEY_ID=AKIDWORK\naws_secret_access_key = secret-work\naws_session_token = tok\n",
        )
        .unwrap();
        std::fs::write(
            &config,
            "[default]\nregion = eu-west-1\n[profile work]\nregion = us-west-2\nendpoint_url = http://127.0.0.1:5000\n\
             s3 =\n  max_concurrent_requests = 20\n[profile keys-in-config]\naws_access_key_id = AKIDCFG\n\
             aws_secret_access_key = secret-cfg\n",
        )
        .unwrap();
        let c = creds.display().to_string();
        let f = config.display().to_string();
        (dir, c, f)
    }

    fn run(vars: &[(&str, &str)]) -> BTreeMap<String, Option<String>> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        resolve_with(&names(ALL), &|n| map.get(n).cloned())
    }

    #[test]
    fn default_profile_from_files() {
        let (_d, c, f) = files();
        let r = run(&[("AWS_SHARED_CREDENTIALS_FILE", &c), ("AWS_CONFIG_FILE", &f)]);
        assert_eq!(r["AWS_ACCESS_KEY_ID"].as_deref(), Some("AKIDDEFAULT"));
        assert_eq!(
            r["AWS_SECRET_ACCESS_KEY"].as_deref(),
            Some("secret-default")
        );
        assert_eq!(r["AWS_SESSION_TOKEN"], None);
        assert_eq!(r["AWS_REGION"].as_deref(), Some("eu-west-1"));
    }

    #[test]
    fn named_profile_with_token_region_and_endpoint() {
        let (_d, c, f) = files();
        let r = run(&[
            ("AWS_SHARED_CREDENTIALS_FILE", &c),
            ("AWS_CONFIG_FILE", &f),
            ("AWS_PROFILE", "work"),
        ]);
        assert_eq!(r["AWS_ACCESS_KEY_ID"].as_deref(), Some("AKIDWORK"));
        assert_eq!(r["AWS_SESSION_TOKEN"].as_deref(), Some("tok"));
        assert_eq!(r["AWS_REGION"].as_deref(), Some("us-west-2"));
        assert_eq!(
            r["AWS_ENDPOINT_URL"].as_deref(),
            Some("http://127.0.0.1:5000")
        );
    }

    #[test]
    fn keys_in_config_file() {
        let (_d, c, f) = files();
        let r = run(&[
            ("AWS_SHARED_CREDENTIALS_FILE", &c),
            ("AWS_CONFIG_FILE", &f),
            ("AWS_PROFILE", "keys-in-config"),
        ]);
        assert_eq!(r["AWS_ACCESS_KEY_ID"].as_deref(), Some("AKIDCFG"));
        assert_eq!(r["AWS_SECRET_ACCESS_KEY"].as_deref(), Some("secret-cfg"));
    }

    #[test]
    fn environment_wins_as_a_set() {
        let (_d, c, f) = files();
        // Key id from the environment: the profile's secret and token must
        // not be mixed in with it.
        let r = run(&[
            ("AWS_SHARED_CREDENTIALS_FILE", &c),
            ("AWS_CONFIG_FILE", &f),
            ("AWS_PROFILE", "work"),
            ("AWS_ACCESS_KEY_ID", "AKIDENV"),
            ("AWS_SECRET_ACCESS_KEY", "secret-env"),
            ("AWS_DEFAULT_REGION", "ap-south-1"),
        ]);
        assert_eq!(r["AWS_ACCESS_KEY_ID"].as_deref(), Some("AKIDENV"));
        assert_eq!(r["AWS_SECRET_ACCESS_KEY"].as_deref(), Some("secret-env"));
        assert_eq!(r["AWS_SESSION_TOKEN"], None);
        assert_eq!(r["AWS_REGION"].as_deref(), Some("ap-south-1"));
    }

    #[test]
    fn missing_profile_or_files_leave_secrets_unset() {
        let (_d, c, f) = files();
        let r = run(&[
            ("AWS_SHARED_CREDENTIALS_FILE", &c),
            ("AWS_CONFIG_FILE", &f),
            ("AWS_PROFILE", "nope"),
        ]);
        assert!(r.values().all(Option::is_none), "{r:?}");
        let r = run(&[("HOME", "/nonexistent")]);
        assert!(r.values().all(Option::is_none), "{r:?}");
    }

    #[test]
    fn undeclared_names_are_never_looked_up() {
        let (_d, c, _f) = files();
        let map: HashMap<String, String> = [("AWS_SHARED_CREDENTIALS_FILE".to_string(), c)].into();
        let r = resolve_with(&names(&["AWS_REGION"]), &|n| map.get(n).cloned());
        assert_eq!(r.len(), 1);
        assert!(!r.contains_key("AWS_ACCESS_KEY_ID"));
    }
}
