//! `service:` (SkyServe): readiness probe, replicas and autoscaling.
//! Strings here get `${VAR}` substitution.

use super::env::{substitute, substitute_value, Vars};
use super::error::SpecError;
use super::source::{key_text, Cx, Path};
use indexmap::IndexMap;
use serde::Serialize;
use serde_yaml::Value;

/// A service: replicas of the task behind a load balancer.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Service {
    /// How to tell a replica is ready.
    pub readiness_probe: Option<ReadinessProbe>,
    /// How many replicas (`replicas: N` is min = max = N).
    pub replica_policy: Option<ReplicaPolicy>,
    /// Load balancing policy name, as written.
    pub load_balancing_policy: Option<String>,
    /// The port replicas serve on.
    pub ports: Option<u16>,
    /// Other SkyServe keys (`tls`, `load_balancer`, `pool`, `workers`), as
    /// written.
    pub extra: IndexMap<String, Value>,
}

/// An HTTP readiness probe.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ReadinessProbe {
    /// URL path, starting with `/`.
    pub path: String,
    /// Body to POST instead of a GET.
    pub post_data: Option<Value>,
    /// Seconds to wait before the first probe.
    pub initial_delay_seconds: Option<f64>,
    /// Seconds before a probe times out.
    pub timeout_seconds: Option<f64>,
    /// Extra request headers.
    pub headers: IndexMap<String, String>,
    /// Other probe keys (`endpoint_probe_interval_seconds`, ...), as written.
    pub extra: IndexMap<String, Value>,
}

/// Replica count and autoscaling.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ReplicaPolicy {
    /// Lower bound.
    pub min_replicas: u32,
    /// Upper bound; none = `min_replicas`.
    pub max_replicas: Option<u32>,
    /// Autoscaling target.
    pub target_qps_per_replica: Option<TargetQps>,
    /// Seconds above target before adding a replica.
    pub upscale_delay_seconds: Option<f64>,
    /// Seconds below target before removing one.
    pub downscale_delay_seconds: Option<f64>,
    /// On-demand replicas kept besides spot ones.
    pub base_ondemand_fallback_replicas: Option<u32>,
    /// Replace preempted spot replicas with on-demand ones meanwhile.
    pub dynamic_ondemand_fallback: Option<bool>,
    /// Other policy keys (`num_overprovision`, `spot_placer`), as written.
    pub extra: IndexMap<String, Value>,
}

/// `target_qps_per_replica`: one number, or one per accelerator.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum TargetQps {
    /// Same target for every replica.
    Uniform(f64),
    /// Accelerator (`H100:1`) -> target.
    PerAccelerator(IndexMap<String, f64>),
}

const SERVICE_KEYS: &[&str] = &[
    "readiness_probe",
    "replica_policy",
    "replicas",
    "load_balancing_policy",
    "ports",
    "tls",
    "load_balancer",
    "pool",
    "workers",
];
const PROBE_KEYS: &[&str] = &[
    "path",
    "post_data",
    "initial_delay_seconds",
    "timeout_seconds",
    "headers",
    "endpoint_probe_interval_seconds",
    "consecutive_failure_threshold_timeout",
];
const POLICY_KEYS: &[&str] = &[
    "min_replicas",
    "max_replicas",
    "target_qps_per_replica",
    "upscale_delay_seconds",
    "downscale_delay_seconds",
    "base_ondemand_fallback_replicas",
    "dynamic_ondemand_fallback",
    "num_overprovision",
    "spot_placer",
];
const PROBE_HINT: &str =
    "write `readiness_probe: /health` or `{path: /health, initial_delay_seconds: 60}`";
const POLICY_HINT: &str =
    "e.g. `replica_policy: {min_replicas: 1, max_replicas: 3, target_qps_per_replica: 5}`";

/// Reads `service`.
pub(crate) fn service(
    cx: &Cx,
    path: &Path,
    v: &Value,
    vars: &Vars,
) -> Result<Option<Service>, SpecError> {
    if v.is_null() {
        return Ok(None);
    }
    let map = cx.mapping(path, v, "service", SERVICE_KEYS, |_| None)?;
    let mut s = Service::default();
    let mut replicas: Option<(u32, Path)> = None;
    for (k, val) in map {
        let key = k.as_str().unwrap_or_default();
        let p = path.key(key);
        if val.is_null() {
            continue;
        }
        match key {
            "readiness_probe" => s.readiness_probe = Some(probe(cx, &p, val, vars)?),
            "replica_policy" => s.replica_policy = Some(policy(cx, &p, val)?),
            "replicas" => replicas = Some((cx.uint(&p, val, 0, "e.g. `replicas: 2`")?, p)),
            "load_balancing_policy" => {
                s.load_balancing_policy =
                    Some(substitute(&cx.string(&p, val, "e.g. `least_load`")?, vars))
            }
            "ports" => {
                let port = cx.uint(&p, val, 1, "the replicas' port, e.g. `ports: 8080`")?;
                let port = u16::try_from(port)
                    .map_err(|_| cx.invalid(&p, format!("port {port} > 65535"), "1-65535"))?;
                s.ports = Some(port);
            }
            other => {
                s.extra
                    .insert(other.to_string(), substitute_value(val, vars));
            }
        }
    }
    if let Some((n, p)) = replicas {
        if s.replica_policy.is_some() {
            return Err(cx.conflict(
                &p,
                &path.key("replica_policy"),
                "`replicas: N` is short for a fixed `replica_policy`: keep one",
            ));
        }
        s.replica_policy = Some(ReplicaPolicy {
            min_replicas: n,
            max_replicas: Some(n),
            ..ReplicaPolicy::default()
        });
    }
    Ok(Some(s))
}

fn probe(cx: &Cx, path: &Path, v: &Value, vars: &Vars) -> Result<ReadinessProbe, SpecError> {
    let check = |p: &Path, url: String| -> Result<String, SpecError> {
        if url.starts_with('/') {
            Ok(url)
        } else {
            Err(cx.invalid(p, format!("path `{url}` must start with `/`"), PROBE_HINT))
        }
    };
    match v {
        Value::String(s) => Ok(ReadinessProbe {
            path: check(path, substitute(s, vars))?,
            ..ReadinessProbe::default()
        }),
        Value::Mapping(_) => {
            let map = cx.mapping(path, v, "readiness_probe", PROBE_KEYS, |_| None)?;
            let mut r = ReadinessProbe::default();
            let Some(url) = map.get("path") else {
                return Err(cx.invalid(path, "`path` is missing", PROBE_HINT));
            };
            for (k, val) in map {
                let key = k.as_str().unwrap_or_default();
                let p = path.key(key);
                match key {
                    "path" => {
                        r.path = check(&p, substitute(&cx.string(&p, url, PROBE_HINT)?, vars))?
                    }
                    _ if val.is_null() => {}
                    "post_data" => r.post_data = Some(substitute_value(val, vars)),
                    "initial_delay_seconds" => {
                        r.initial_delay_seconds = Some(cx.number(&p, val, "seconds")?)
                    }
                    "timeout_seconds" => r.timeout_seconds = Some(cx.number(&p, val, "seconds")?),
                    "headers" => {
                        let headers =
                            cx.string_map(&p, val, "e.g. `headers: {Authorization: Bearer x}`")?;
                        r.headers = headers
                            .into_iter()
                            .map(|(k, v)| (substitute(&k, vars), substitute(&v, vars)))
                            .collect();
                    }
                    other => {
                        cx.number(&p, val, "seconds")?;
                        r.extra.insert(other.to_string(), val.clone());
                    }
                }
            }
            Ok(r)
        }
        other => Err(cx.wrong_type(path, "a path or a mapping", other, PROBE_HINT)),
    }
}

fn policy(cx: &Cx, path: &Path, v: &Value) -> Result<ReplicaPolicy, SpecError> {
    let map = cx.mapping(path, v, "replica_policy", POLICY_KEYS, |_| None)?;
    let mut r = ReplicaPolicy::default();
    let Some(min) = map.get("min_replicas") else {
        return Err(cx.invalid(path, "`min_replicas` is missing", POLICY_HINT));
    };
    r.min_replicas = cx.uint(&path.key("min_replicas"), min, 0, POLICY_HINT)?;
    for (k, val) in map {
        let key = k.as_str().unwrap_or_default();
        let p = path.key(key);
        if val.is_null() {
            continue;
        }
        match key {
            "min_replicas" => {}
            "max_replicas" => {
                let max = cx.uint(&p, val, 0, POLICY_HINT)?;
                if max < r.min_replicas {
                    let reason = format!("{max} is less than `min_replicas` ({})", r.min_replicas);
                    return Err(cx.invalid(&p, reason, "`max_replicas` must be >= `min_replicas`"));
                }
                r.max_replicas = Some(max);
            }
            "target_qps_per_replica" => r.target_qps_per_replica = Some(target_qps(cx, &p, val)?),
            "upscale_delay_seconds" => {
                r.upscale_delay_seconds = Some(cx.number(&p, val, "seconds")?)
            }
            "downscale_delay_seconds" => {
                r.downscale_delay_seconds = Some(cx.number(&p, val, "seconds")?)
            }
            "base_ondemand_fallback_replicas" => {
                r.base_ondemand_fallback_replicas = Some(cx.uint(&p, val, 0, POLICY_HINT)?)
            }
            "dynamic_ondemand_fallback" => r.dynamic_ondemand_fallback = Some(cx.boolean(&p, val)?),
            other => {
                r.extra.insert(other.to_string(), val.clone());
            }
        }
    }
    Ok(r)
}

fn target_qps(cx: &Cx, path: &Path, v: &Value) -> Result<TargetQps, SpecError> {
    let hint = "a number >= 0, or one per accelerator: `{H100:1: 10, A100:1: 5}`";
    let non_negative = |p: &Path, val: &Value| -> Result<f64, SpecError> {
        let n = cx.number(p, val, hint)?;
        if n < 0.0 {
            return Err(cx.invalid(p, format!("must be >= 0, found `{n}`"), hint));
        }
        Ok(n)
    };
    match v {
        Value::Mapping(map) => {
            let mut out = IndexMap::new();
            for (k, val) in map {
                let key =
                    key_text(k).ok_or_else(|| cx.wrong_type(path, "accelerator keys", k, hint))?;
                out.insert(key.clone(), non_negative(&path.key(&key), val)?);
            }
            Ok(TargetQps::PerAccelerator(out))
        }
        other => Ok(TargetQps::Uniform(non_negative(path, other)?)),
    }
}
