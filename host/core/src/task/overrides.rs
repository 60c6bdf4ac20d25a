//! [`Overrides`]: `sky launch`-style flags that replace task fields.
//!
//! Every flag is checked with the same rules as its YAML key, and all of
//! them are checked before any is applied. A resources flag replaces the
//! field in every candidate; candidates that become identical are merged.

use super::env::is_env_name;
use super::error::{Location, Problem, SpecError};
use super::values::{
    parse_accelerator, parse_disk_size, parse_disk_tier, parse_infra, parse_port_range,
    parse_quantity,
};
use super::{Accelerators, ImageId, Task};

/// Command-line overrides, as `sky launch` takes them. Strings are parsed
/// like the matching YAML key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    /// `--name`.
    pub name: Option<String>,
    /// `--infra`: replaces the location (and any legacy cloud/region/zone).
    pub infra: Option<String>,
    /// `--gpus`: `NAME[:COUNT]`.
    pub gpus: Option<String>,
    /// `--cpus`: `N` or `N+`.
    pub cpus: Option<String>,
    /// `--memory`: `N`, `N+`, with an optional unit (`64GB+`).
    pub memory: Option<String>,
    /// `--instance-type`.
    pub instance_type: Option<String>,
    /// `--use-spot` / `--no-use-spot`.
    pub use_spot: Option<bool>,
    /// `--num-nodes`.
    pub num_nodes: Option<u32>,
    /// `--disk-size`: GB, or with a unit.
    pub disk_size: Option<String>,
    /// `--disk-tier`.
    pub disk_tier: Option<String>,
    /// `--image-id`.
    pub image_id: Option<String>,
    /// `--ports`, repeatable; each a port or range (commas allowed).
    pub ports: Vec<String>,
    /// `--env NAME=VALUE`, repeatable.
    pub env: Vec<(String, String)>,
    /// `--secret NAME=VALUE`, repeatable.
    pub secret: Vec<(String, String)>,
}

fn flag_error(flag: &str, field: &str, p: Problem) -> SpecError {
    p.at(Location::Flag(flag.to_string()), field)
}

/// Checks `NAME=VALUE` names given with `flag`.
pub(crate) fn check_names(pairs: &[(String, String)], flag: &str) -> Result<(), SpecError> {
    match pairs.iter().find(|(k, _)| !is_env_name(k)) {
        Some((k, _)) => Err(flag_error(
            flag,
            "name",
            Problem::new(
                format!("`{k}` is not a valid variable name"),
                format!("write `{flag} NAME=VALUE`; names are letters, digits and `_`, not starting with a digit"),
            ),
        )),
        None => Ok(()),
    }
}

impl Task {
    /// Applies command-line overrides. Nothing changes when any is invalid.
    pub fn apply_overrides(&mut self, o: &Overrides) -> Result<(), SpecError> {
        let text_flag =
            |flag: &str, field: &str, v: &Option<String>| -> Result<Option<String>, SpecError> {
                match v.as_deref().map(str::trim) {
                    Some("") => Err(flag_error(
                        flag,
                        field,
                        Problem::new("empty value", format!("give a value to `{flag}`")),
                    )),
                    other => Ok(other.map(str::to_string)),
                }
            };
        let name = text_flag("--name", "name", &o.name)?;
        let instance_type = text_flag("--instance-type", "instance_type", &o.instance_type)?;
        let image_id = text_flag("--image-id", "image_id", &o.image_id)?;
        if o.num_nodes == Some(0) {
            let p = Problem::new("must be at least 1, found `0`", "e.g. `--num-nodes 2`");
            return Err(flag_error("--num-nodes", "num_nodes", p));
        }
        let infra = o
            .infra
            .as_deref()
            .map(parse_infra)
            .transpose()
            .map_err(|p| flag_error("--infra", "infra", p))?;
        let gpus = o
            .gpus
            .as_deref()
            .map(|g| {
                parse_accelerator(g).map(|c| Accelerators {
                    choices: vec![c],
                    ordered: false,
                })
            })
            .transpose()
            .map_err(|p| flag_error("--gpus", "accelerators", p))?;
        let cpus = o
            .cpus
            .as_deref()
            .map(|c| parse_quantity(c, "cpus", false))
            .transpose()
            .map_err(|p| flag_error("--cpus", "cpus", p))?;
        let memory = o
            .memory
            .as_deref()
            .map(|m| parse_quantity(m, "memory", true))
            .transpose()
            .map_err(|p| flag_error("--memory", "memory", p))?;
        let disk_size = o
            .disk_size
            .as_deref()
            .map(parse_disk_size)
            .transpose()
            .map_err(|p| flag_error("--disk-size", "disk_size", p))?;
        let disk_tier = o
            .disk_tier
            .as_deref()
            .map(parse_disk_tier)
            .transpose()
            .map_err(|p| flag_error("--disk-tier", "disk_tier", p))?;
        let ports = o
            .ports
            .iter()
            .flat_map(|p| p.split(','))
            .map(parse_port_range)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|p| flag_error("--ports", "ports", p))?;
        let (envs, secrets, sections) = self.with_vars(&o.env, &o.secret)?;

        if name.is_some() {
            self.name = name;
        }
        if let Some(n) = o.num_nodes {
            self.num_nodes = n;
        }
        for r in &mut self.resources.candidates {
            if let Some(i) = &infra {
                r.infra = i.clone();
            }
            if let Some(g) = &gpus {
                r.accelerators = Some(g.clone());
            }
            if let Some(c) = cpus {
                r.cpus = Some(c);
            }
            if let Some(m) = memory {
                r.memory = Some(m);
            }
            if let Some(t) = &instance_type {
                r.instance_type = Some(t.clone());
            }
            if let Some(s) = o.use_spot {
                r.use_spot = s;
            }
            if let Some(d) = disk_size {
                r.disk_size = Some(d);
            }
            if let Some(t) = disk_tier {
                r.disk_tier = Some(t);
            }
            if let Some(i) = &image_id {
                r.image_id = Some(ImageId::Single(i.clone()));
            }
            if !o.ports.is_empty() {
                r.ports = ports.clone();
            }
        }
        let mut unique = Vec::with_capacity(self.resources.candidates.len());
        for r in self.resources.candidates.drain(..) {
            if !unique.contains(&r) {
                unique.push(r);
            }
        }
        self.resources.candidates = unique;
        self.commit_vars(envs, secrets, sections);
        Ok(())
    }
}
