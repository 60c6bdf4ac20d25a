//! `resources:`: one set of wants, or several (`any_of` = the cheapest,
//! `ordered` = the first that fits), normalized into [`ResourcesSpec`].
//!
//! Each `any_of`/`ordered` entry overrides the base keys it names (labels
//! merge key by key), as SkyPilot does; every candidate is then validated
//! on its own, so an error names the key where it was written.

use super::error::SpecError;
use super::policy::{autostop, job_recovery, Autostop, JobRecovery};
use super::source::{Cx, Path};
use super::values::{
    accelerators, disk_size, image_id, parse_disk_tier, parse_infra, ports, provider_name,
    quantity, Accelerators, DiskTier, ImageId, Infra, Quantity,
};
use crate::provider::PortRange;
use indexmap::IndexMap;
use serde::Serialize;
use serde_yaml::Value;

/// The task's resources as candidates for the optimizer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResourcesSpec {
    /// At least one candidate.
    pub candidates: Vec<Resources>,
    /// How to choose among them.
    pub order: Ordering,
}

impl Default for ResourcesSpec {
    fn default() -> Self {
        ResourcesSpec {
            candidates: vec![Resources::default()],
            order: Ordering::Cheapest,
        }
    }
}

/// How the optimizer picks among [`ResourcesSpec::candidates`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Ordering {
    /// The cheapest feasible candidate (`any_of`, or a single one).
    Cheapest,
    /// The first candidate that is feasible (`ordered`).
    InOrder,
}

/// One candidate: every field narrows where the task may run.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Resources {
    /// Provider / region / zone (from `infra`, or legacy `cloud`,
    /// `region`, `zone`).
    pub infra: Infra,
    /// An exact instance type.
    pub instance_type: Option<String>,
    /// vCPUs per node.
    pub cpus: Option<Quantity>,
    /// Memory per node, GiB.
    pub memory: Option<Quantity>,
    /// Accelerators per node.
    pub accelerators: Option<Accelerators>,
    /// Provider-specific accelerator settings (TPU runtime, ...), as written.
    pub accelerator_args: Option<Value>,
    /// Spot instances.
    pub use_spot: bool,
    /// Recovery of managed jobs (`job_recovery`, or legacy `spot_recovery`).
    pub job_recovery: Option<JobRecovery>,
    /// Boot disk size, GB.
    pub disk_size: Option<u32>,
    /// Boot disk tier.
    pub disk_tier: Option<DiskTier>,
    /// Network tier (`standard`, `best`), as written.
    pub network_tier: Option<String>,
    /// Ports to open.
    pub ports: Vec<PortRange>,
    /// Labels/tags for the instances.
    pub labels: IndexMap<String, String>,
    /// Boot image.
    pub image_id: Option<ImageId>,
    /// Idle behaviour.
    pub autostop: Option<Autostop>,
    /// Upper bound on the hourly cost of the whole task, USD.
    pub max_hourly_cost: Option<f64>,
    /// SkyPilot keys Aloft accepts but does not interpret (`priority`,
    /// `local_disk`, `volumes`, ...), as written.
    pub extra: IndexMap<String, Value>,
}

/// Keys of one candidate.
pub(crate) const SINGLE_KEYS: &[&str] = &[
    "infra",
    "cloud",
    "region",
    "zone",
    "instance_type",
    "cpus",
    "memory",
    "accelerators",
    "accelerator_args",
    "use_spot",
    "job_recovery",
    "spot_recovery",
    "disk_size",
    "disk_tier",
    "network_tier",
    "ports",
    "labels",
    "image_id",
    "autostop",
    "max_hourly_cost",
    // Accepted and kept, not interpreted.
    "priority",
    "priority_class",
    "local_disk",
    "volumes",
    "ephemeral_storage",
    "_no_missing_accel_warnings",
    "_docker_login_config",
    "_is_image_managed",
    "_requires_fuse",
    "_cluster_config_overrides",
];

/// Keys of `resources:` itself.
pub(crate) const RESOURCES_KEYS: &[&str] = &[
    "infra",
    "cloud",
    "region",
    "zone",
    "instance_type",
    "cpus",
    "memory",
    "accelerators",
    "accelerator_args",
    "use_spot",
    "job_recovery",
    "spot_recovery",
    "disk_size",
    "disk_tier",
    "network_tier",
    "ports",
    "labels",
    "image_id",
    "autostop",
    "max_hourly_cost",
    "any_of",
    "ordered",
    "priority",
    "priority_class",
    "local_disk",
    "volumes",
    "ephemeral_storage",
    "_no_missing_accel_warnings",
    "_docker_login_config",
    "_is_image_managed",
    "_requires_fuse",
    "_cluster_config_overrides",
];

const LEGACY: [&str; 3] = ["cloud", "region", "zone"];
const INFRA_MIX_HINT: &str =
    "write the location once, as `infra: cloud/region/zone` (e.g. `aws/us-east-1`); \
                              `cloud`, `region` and `zone` are the older form";

fn misplaced_in_resources(key: &str) -> Option<String> {
    super::parse::TASK_KEYS
        .contains(&key)
        .then(|| format!("`{key}` is a task key: move it out of `resources:` to the top level"))
}

fn misplaced_in_entry(key: &str) -> Option<String> {
    match key {
        "any_of" | "ordered" => Some("`any_of` and `ordered` cannot be nested".to_string()),
        _ => misplaced_in_resources(key),
    }
}

/// One key as written, with its path.
struct Field<'v> {
    key: &'v str,
    value: &'v Value,
    path: Path,
}

/// Reads `resources:` (absent or null = one unconstrained candidate).
pub(crate) fn parse_resources(
    cx: &Cx,
    path: &Path,
    v: Option<&Value>,
) -> Result<ResourcesSpec, SpecError> {
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return Ok(ResourcesSpec::default());
    };
    let map = cx.mapping(path, v, "resources", RESOURCES_KEYS, misplaced_in_resources)?;
    let get = |k: &str| map.get(k).filter(|v| !v.is_null());
    if let (Some(_), Some(_)) = (get("any_of"), get("ordered")) {
        return Err(cx.conflict(
            &path.key("ordered"),
            &path.key("any_of"),
            "use `any_of` for the cheapest of the candidates, or `ordered` to try them in order, not both",
        ));
    }
    let base: Vec<Field> = map
        .iter()
        .filter_map(|(k, v)| k.as_str().map(|k| (k, v)))
        .filter(|(k, _)| *k != "any_of" && *k != "ordered")
        .map(|(key, value)| Field {
            key,
            value,
            path: path.key(key),
        })
        .collect();
    let (list_key, order) = match get("ordered") {
        Some(_) => ("ordered", Ordering::InOrder),
        None => ("any_of", Ordering::Cheapest),
    };
    let list_path = path.key(list_key);
    let entries: &[Value] = match get(list_key) {
        None => &[],
        Some(Value::Sequence(items)) => items,
        Some(other) => {
            let hint = format!("`{list_key}` is a list of partial resources, e.g. `- {{infra: aws, accelerators: A100:8}}`");
            return Err(cx.wrong_type(&list_path, "a list", other, hint));
        }
    };
    if entries.is_empty() {
        return Ok(ResourcesSpec {
            candidates: vec![build(cx, &base)?],
            order: Ordering::Cheapest,
        });
    }
    let mut candidates = Vec::with_capacity(entries.len());
    for (i, entry) in entries.iter().enumerate() {
        let entry_path = list_path.index(i);
        let entry_map = cx.mapping(
            &entry_path,
            entry,
            &format!("an `{list_key}` entry"),
            SINGLE_KEYS,
            misplaced_in_entry,
        )?;
        let mut fields: Vec<Field> = base
            .iter()
            .filter(|f| f.key == "labels" || !entry_map.contains_key(f.key))
            .map(|f| Field {
                key: f.key,
                value: f.value,
                path: f.path.clone(),
            })
            .collect();
        fields.extend(
            entry_map
                .iter()
                .filter_map(|(k, v)| k.as_str().map(|k| (k, v)))
                .map(|(key, value)| Field {
                    key,
                    value,
                    path: entry_path.key(key),
                }),
        );
        candidates.push(build(cx, &fields)?);
    }
    Ok(ResourcesSpec { candidates, order })
}

/// Validates one candidate's merged keys.
fn build(cx: &Cx, fields: &[Field]) -> Result<Resources, SpecError> {
    let mut r = Resources::default();
    let find = |k: &str| {
        fields
            .iter()
            .rev()
            .find(|f| f.key == k && !f.value.is_null())
    };
    if let (Some(a), Some(b)) = (find("spot_recovery"), find("job_recovery")) {
        return Err(cx.conflict(
            &a.path,
            &b.path,
            "`spot_recovery` is the old name of `job_recovery`: keep only `job_recovery`",
        ));
    }
    if let Some(inf) = find("infra") {
        if let Some(legacy) = LEGACY.iter().find_map(|k| find(k)) {
            return Err(cx.conflict(&legacy.path, &inf.path, INFRA_MIX_HINT));
        }
    }
    for f in fields {
        let (p, v) = (&f.path, f.value);
        if v.is_null() {
            continue;
        }
        match f.key {
            "infra" => {
                let text = cx.string(p, v, "e.g. `infra: aws/us-east-1`")?;
                r.infra = parse_infra(&text).map_err(|e| cx.problem(p, e))?;
            }
            "cloud" => {
                let text = cx.string(p, v, "e.g. `infra: aws`")?;
                r.infra.provider = Some(provider_name(&text).map_err(|e| cx.problem(p, e))?);
            }
            "region" => r.infra.region = Some(cx.string(p, v, "e.g. `infra: aws/us-east-1`")?),
            "zone" => {
                r.infra.zone = Some(cx.string(p, v, "e.g. `infra: aws/us-east-1/us-east-1a`")?)
            }
            "instance_type" => {
                r.instance_type = Some(cx.string(p, v, "e.g. `instance_type: p4d.24xlarge`")?)
            }
            "cpus" => r.cpus = Some(quantity(cx, p, v, "cpus", false)?),
            "memory" => r.memory = Some(quantity(cx, p, v, "memory", true)?),
            "accelerators" => r.accelerators = accelerators(cx, p, v)?,
            "accelerator_args" => {
                if !v.is_mapping() {
                    return Err(cx.wrong_type(
                        p,
                        "a mapping",
                        v,
                        "e.g. `accelerator_args: {runtime_version: tpu-vm-base}`",
                    ));
                }
                r.accelerator_args = Some(v.clone());
            }
            "use_spot" => r.use_spot = cx.boolean(p, v)?,
            "job_recovery" | "spot_recovery" => r.job_recovery = job_recovery(cx, p, v)?,
            "disk_size" => r.disk_size = Some(disk_size(cx, p, v)?),
            "disk_tier" => {
                let text = cx.string(p, v, "use `low`, `medium`, `high`, `ultra` or `best`")?;
                r.disk_tier = Some(parse_disk_tier(&text).map_err(|e| cx.problem(p, e))?);
            }
            "network_tier" => r.network_tier = Some(cx.string(p, v, "use `standard` or `best`")?),
            "ports" => r.ports = ports(cx, p, v)?,
            "labels" => {
                let labels = cx.string_map(p, v, "e.g. `labels: {team: ml}`")?;
                r.labels.extend(labels);
            }
            "image_id" => r.image_id = image_id(cx, p, v)?,
            "autostop" => r.autostop = autostop(cx, p, v)?,
            "max_hourly_cost" => {
                let hint = "USD per hour for the whole task, e.g. `max_hourly_cost: 12.5`";
                let cost = cx.number(p, v, hint)?;
                if cost <= 0.0 {
                    return Err(cx.invalid(
                        p,
                        format!("must be more than 0, found `{cost}`"),
                        hint,
                    ));
                }
                r.max_hourly_cost = Some(cost);
            }
            other => {
                r.extra.insert(other.to_string(), v.clone());
            }
        }
    }
    Ok(r)
}
