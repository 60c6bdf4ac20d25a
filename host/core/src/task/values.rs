//! What a node must have, and their parsers: [`Infra`], [`Quantity`]
//! (cpus, memory), [`Accelerators`], ports, disks ([`DiskTier`], sizes) and
//! [`ImageId`]. [`super::policy`] has autostop and job recovery.
//!
//! String parsers return a [`Problem`] so the same rules serve YAML fields
//! and CLI flags (`--gpus`, `--infra`, ...).

use super::error::{Problem, SpecError};
use super::source::{Cx, Path};
use crate::provider::PortRange;
use indexmap::IndexMap;
use serde::Serialize;
use serde_yaml::Value;
use std::fmt;

/// Where to run: a provider, optionally narrowed to a region and zone.
///
/// `None` means "any". For Kubernetes `region` holds the context, for SSH
/// node pools it holds the pool name (see [`Infra::kubernetes_context`] and
/// [`Infra::ssh_pool`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Infra {
    /// Provider name, lowercase (`aws`, `gcp`, `kubernetes`, `ssh`,
    /// `local`, or any plugin's name); none = any provider.
    pub provider: Option<String>,
    /// Region (or Kubernetes context, or SSH pool); none = any.
    pub region: Option<String>,
    /// Zone; none = any.
    pub zone: Option<String>,
}

impl Infra {
    /// True when nothing is pinned.
    pub fn is_any(&self) -> bool {
        self.provider.is_none() && self.region.is_none() && self.zone.is_none()
    }

    /// The Kubernetes context, for `k8s/<context>`.
    pub fn kubernetes_context(&self) -> Option<&str> {
        match self.provider.as_deref() {
            Some("kubernetes") => self.region.as_deref(),
            _ => None,
        }
    }

    /// The SSH node pool, for `ssh/<pool>`.
    pub fn ssh_pool(&self) -> Option<&str> {
        match self.provider.as_deref() {
            Some("ssh") => self.region.as_deref(),
            _ => None,
        }
    }
}

impl fmt::Display for Infra {
    /// The `infra:` form: `aws/us-east-1`, `*/us-east-1`, `*`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = vec![
            self.provider.as_deref().unwrap_or("*"),
            self.region.as_deref().unwrap_or("*"),
            self.zone.as_deref().unwrap_or("*"),
        ];
        while parts.len() > 1 && parts.last() == Some(&"*") {
            parts.pop();
        }
        f.write_str(&parts.join("/"))
    }
}

const INFRA_HINT: &str = "use `cloud`, `cloud/region`, `cloud/region/zone` (`*` for any part), \
                          `k8s[/context]` or `ssh/<pool>`, e.g. `aws/us-east-1`";

/// Normalizes a provider name: lowercase, `k8s` -> `kubernetes`.
pub(crate) fn provider_name(name: &str) -> Result<String, Problem> {
    let lower = name.trim().to_ascii_lowercase();
    let valid = !lower.is_empty()
        && lower
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !lower.starts_with('-');
    if !valid {
        return Err(Problem::new(
            format!("`{name}` is not a provider name"),
            "provider names are letters, digits and `-`, e.g. `aws`, `gcp`, `lambda`, `kubernetes`",
        ));
    }
    Ok(if lower == "k8s" {
        "kubernetes".to_string()
    } else {
        lower
    })
}

/// Parses an `infra` string (SkyPilot's rules: leading/trailing `/` are
/// ignored, `*` is a wildcard, a Kubernetes context may contain `/`).
pub(crate) fn parse_infra(text: &str) -> Result<Infra, Problem> {
    let trimmed = text.trim().trim_matches('/');
    if trimmed.is_empty() {
        return Err(Problem::new("empty infra", INFRA_HINT));
    }
    let parts: Vec<&str> = trimmed.split('/').map(str::trim).collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(Problem::new(
            format!("`{text}` has an empty part (`//`)"),
            INFRA_HINT,
        ));
    }
    let wild = |s: &str| if s == "*" { None } else { Some(s.to_string()) };
    let provider = if parts[0] == "*" {
        None
    } else {
        Some(provider_name(parts[0])?)
    };
    let rest = &parts[1..];
    match provider.as_deref() {
        Some("kubernetes") | Some("ssh") => {
            let region = if rest.is_empty() {
                None
            } else {
                wild(&rest.join("/"))
            };
            Ok(Infra {
                provider,
                region,
                zone: None,
            })
        }
        Some("local") if !rest.is_empty() => Err(Problem::new(
            format!("`{text}`: `local` takes no region or zone"),
            INFRA_HINT,
        )),
        _ if rest.len() > 2 => Err(Problem::new(
            format!("`{text}` has more than 3 parts"),
            INFRA_HINT,
        )),
        _ => Ok(Infra {
            provider,
            region: rest.first().and_then(|r| wild(r)),
            zone: rest.get(1).and_then(|z| wild(z)),
        }),
    }
}

/// At least (`N+`) or exactly (`N`) this much: vCPUs, or memory in GiB.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Quantity {
    /// The number (vCPUs, or GiB for memory).
    pub value: f64,
    /// `N+`: at least `value`; otherwise exactly.
    pub plus: bool,
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.value, if self.plus { "+" } else { "" })
    }
}

/// Memory units SkyPilot accepts, in GiB (SkyPilot's "GB" is 2^30 bytes).
const MEMORY_UNITS: [(&str, f64); 10] = [
    ("kb", 1.0 / 1_048_576.0),
    ("ki", 1.0 / 1_048_576.0),
    ("mb", 1.0 / 1024.0),
    ("mi", 1.0 / 1024.0),
    ("gb", 1.0),
    ("gi", 1.0),
    ("tb", 1024.0),
    ("ti", 1024.0),
    ("pb", 1_048_576.0),
    ("pi", 1_048_576.0),
];

/// Parses `cpus` (`4`, `4+`, `0.5`) or, with `units`, `memory` (`32`, `32+`,
/// `32GB`, `1TB+`, in GiB).
pub(crate) fn parse_quantity(text: &str, field: &str, units: bool) -> Result<Quantity, Problem> {
    let hint = if units {
        format!("{field} is `32` (exactly 32 GiB), `32+` (at least) or with a unit: `64GB`, `1TB+`")
    } else {
        format!("{field} is `4` (exactly 4) or `4+` (at least 4)")
    };
    let t = text.trim();
    let (body, plus) = match t.strip_suffix('+') {
        Some(b) => (b.trim_end(), true),
        None => (t, false),
    };
    let lower = body.to_ascii_lowercase();
    let (number, scale) = if units {
        match MEMORY_UNITS.iter().find(|(u, _)| lower.ends_with(u)) {
            Some((u, scale)) => (&lower[..lower.len() - u.len()], *scale),
            None => (lower.as_str(), 1.0),
        }
    } else {
        (lower.as_str(), 1.0)
    };
    let value = number
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && !number.trim().starts_with(['+', '-']))
        .ok_or_else(|| Problem::new(format!("`{text}` is not a number"), hint.clone()))?
        * scale;
    if !(value > 0.0 && value.is_finite()) {
        return Err(Problem::new(format!("`{text}` must be more than 0"), hint));
    }
    Ok(Quantity { value, plus })
}

/// Reads `cpus`/`memory`: a number or a string.
pub(crate) fn quantity(
    cx: &Cx,
    path: &Path,
    v: &Value,
    field: &str,
    units: bool,
) -> Result<Quantity, SpecError> {
    let text = match v {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        _ => {
            let hint = format!("write `{field}: 4` or `{field}: 4+`");
            return Err(cx.wrong_type(path, "a number or a string like `4+`", v, hint));
        }
    };
    parse_quantity(&text, field, units).map_err(|p| cx.problem(path, p))
}

/// The accelerators wanted per node.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Accelerators {
    /// `(name, count)` choices. Names are kept as written; match them
    /// case-insensitively. Counts are > 0 and may be fractional.
    pub choices: Vec<(String, f32)>,
    /// `true` for the list form (`['A100:8', 'H100:8']`): try in this
    /// order. `false`: the cheapest of the choices.
    pub ordered: bool,
}

impl fmt::Display for Accelerators {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let items: Vec<String> = self
            .choices
            .iter()
            .map(|(n, c)| format!("{n}:{c}"))
            .collect();
        match (self.ordered, items.len()) {
            (_, 1) => f.write_str(&items[0]),
            (true, _) => write!(f, "[{}]", items.join(", ")),
            (false, _) => write!(f, "{{{}}}", items.join(", ")),
        }
    }
}

const ACCEL_HINT: &str = "write `NAME` or `NAME:COUNT` (count > 0, may be fractional), e.g. `A100`, `A100:8`, \
                          `L4:0.5`; several: `{A100: 8, H100: 8}` (cheapest) or `['A100:8', 'H100:8']` (in order)";

fn accel_name(name: &str, text: &str) -> Result<String, Problem> {
    let name = name.trim();
    let ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ' '))
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric());
    if ok {
        Ok(name.to_string())
    } else if name.is_empty() {
        Err(Problem::new(
            format!("`{text}` has no accelerator name"),
            ACCEL_HINT,
        ))
    } else {
        Err(Problem::new(
            format!("`{name}` is not an accelerator name"),
            ACCEL_HINT,
        ))
    }
}

fn accel_count(count: f64, text: &str) -> Result<f32, Problem> {
    if count.is_finite() && count > 0.0 && count <= f64::from(u32::MAX) {
        Ok(count as f32)
    } else {
        Err(Problem::new(
            format!("count in `{text}` must be more than 0"),
            ACCEL_HINT,
        ))
    }
}

/// Parses one `NAME[:COUNT]`.
pub(crate) fn parse_accelerator(text: &str) -> Result<(String, f32), Problem> {
    let mut parts = text.split(':');
    let name = parts.next().unwrap_or_default();
    let count = parts.next();
    if parts.next().is_some() {
        return Err(Problem::new(
            format!("`{text}` has more than one `:`"),
            ACCEL_HINT,
        ));
    }
    let name = accel_name(name, text)?;
    let count = match count.map(str::trim) {
        None => 1.0,
        Some(c) => match c.parse::<f64>() {
            Ok(n) if !c.starts_with('+') => n,
            _ => {
                return Err(Problem::new(
                    format!("count `{c}` in `{text}` is not a number"),
                    ACCEL_HINT,
                ))
            }
        },
    };
    Ok((name, accel_count(count, text)?))
}

/// Reads `accelerators` in every form SkyPilot takes: a string, a mapping
/// `{A100: 8}` (several keys, or a `!!set` / `{A100:8, V100:8}` with null
/// values = the cheapest), or a list (= preference order). Empty = none.
pub(crate) fn accelerators(
    cx: &Cx,
    path: &Path,
    v: &Value,
) -> Result<Option<Accelerators>, SpecError> {
    let one = |p: &Path, text: &str| parse_accelerator(text).map_err(|e| cx.problem(p, e));
    let (choices, ordered) = match v {
        Value::Null => return Ok(None),
        Value::String(s) => (vec![one(path, s)?], false),
        Value::Mapping(map) => {
            let mut out = Vec::new();
            for (k, count) in map {
                let Value::String(name) = k else {
                    return Err(cx.wrong_type(path, "accelerator names as keys", k, ACCEL_HINT));
                };
                let p = path.key(name);
                out.push(match count {
                    Value::Null => one(&p, name)?,
                    Value::Number(n) => {
                        let text = format!("{name}:{n}");
                        let name = accel_name(name, &text).map_err(|e| cx.problem(&p, e))?;
                        let c = accel_count(n.as_f64().unwrap_or(f64::NAN), &text)
                            .map_err(|e| cx.problem(&p, e))?;
                        (name, c)
                    }
                    other => return Err(cx.wrong_type(&p, "a count", other, ACCEL_HINT)),
                });
            }
            (out, false)
        }
        Value::Sequence(items) => {
            let mut out = Vec::new();
            for (i, item) in items.iter().enumerate() {
                match item {
                    Value::String(s) => out.push(one(&path.index(i), s)?),
                    other => {
                        return Err(cx.wrong_type(
                            &path.index(i),
                            "a string `NAME:COUNT`",
                            other,
                            ACCEL_HINT,
                        ))
                    }
                }
            }
            (out, true)
        }
        other => return Err(cx.wrong_type(path, "a string, mapping or list", other, ACCEL_HINT)),
    };
    if choices.is_empty() {
        return Ok(None);
    }
    Ok(Some(Accelerators { choices, ordered }))
}

const PORTS_HINT: &str =
    "write a port `8080`, a range `8080-8090`, or a list of them: `[8080, '9000-9010']`";

/// Parses `8080` or `8080-8090`.
pub(crate) fn parse_port_range(text: &str) -> Result<PortRange, Problem> {
    let port = |s: &str| -> Result<u16, Problem> {
        match s.trim().parse::<u64>() {
            Ok(p) if (1..=65535).contains(&p) => Ok(p as u16),
            Ok(p) => Err(Problem::new(
                format!("port {p} is out of range 1-65535"),
                PORTS_HINT,
            )),
            Err(_) => Err(Problem::new(
                format!("`{}` is not a port number", s.trim()),
                PORTS_HINT,
            )),
        }
    };
    let (start, end) = match text.split_once('-') {
        Some((a, b)) => (port(a)?, port(b)?),
        None => {
            let p = port(text)?;
            (p, p)
        }
    };
    if start > end {
        return Err(Problem::new(
            format!("range `{text}` starts after it ends"),
            PORTS_HINT,
        ));
    }
    Ok(PortRange { start, end })
}

fn port_item(cx: &Cx, path: &Path, v: &Value) -> Result<PortRange, SpecError> {
    let text = match v {
        Value::Number(n) if n.is_i64() || n.is_u64() => n.to_string(),
        Value::String(s) => s.clone(),
        other => return Err(cx.wrong_type(path, "a port or range", other, PORTS_HINT)),
    };
    parse_port_range(&text).map_err(|p| cx.problem(path, p))
}

/// Reads `ports`: one port or range, or a list of them.
pub(crate) fn ports(cx: &Cx, path: &Path, v: &Value) -> Result<Vec<PortRange>, SpecError> {
    match v {
        Value::Null => Ok(Vec::new()),
        Value::Sequence(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| port_item(cx, &path.index(i), item))
            .collect(),
        other => Ok(vec![port_item(cx, path, other)?]),
    }
}

/// Disk performance tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DiskTier {
    /// Cheapest.
    Low,
    /// Balanced.
    Medium,
    /// Fast.
    High,
    /// Fastest.
    Ultra,
    /// The best the chosen instance offers.
    Best,
}

/// Parses `low|medium|high|ultra|best` (any case).
pub(crate) fn parse_disk_tier(text: &str) -> Result<DiskTier, Problem> {
    match text.trim().to_ascii_lowercase().as_str() {
        "low" => Ok(DiskTier::Low),
        "medium" => Ok(DiskTier::Medium),
        "high" => Ok(DiskTier::High),
        "ultra" => Ok(DiskTier::Ultra),
        "best" => Ok(DiskTier::Best),
        _ => Err(Problem::new(
            format!("unknown disk tier `{text}`"),
            "use `low`, `medium`, `high`, `ultra` or `best`",
        )),
    }
}

/// Parses a disk size: GB as a number, or with a unit (`100GB`, `1TB`).
pub(crate) fn parse_disk_size(text: &str) -> Result<u32, Problem> {
    let hint = "write whole GB (`disk_size: 256`) or with a unit (`512GB`, `1TB`)";
    let q = parse_quantity(text, "disk_size", true).map_err(|p| Problem::new(p.reason, hint))?;
    if q.plus || q.value.fract() != 0.0 || q.value > f64::from(u32::MAX) {
        return Err(Problem::new(
            format!("`{text}` is not a whole number of GB"),
            hint,
        ));
    }
    Ok(q.value as u32)
}

/// Reads `disk_size`: an integer or a string with a unit.
pub(crate) fn disk_size(cx: &Cx, path: &Path, v: &Value) -> Result<u32, SpecError> {
    match v {
        Value::Number(n) => parse_disk_size(&n.to_string()).map_err(|p| cx.problem(path, p)),
        Value::String(s) => parse_disk_size(s).map_err(|p| cx.problem(path, p)),
        other => Err(cx.wrong_type(path, "a size in GB", other, "e.g. `disk_size: 256`")),
    }
}

/// The boot image: one for every region, or one per region.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum ImageId {
    /// An image id, or `docker:<image>`.
    Single(String),
    /// Region -> image id.
    PerRegion(IndexMap<String, String>),
}

/// Reads `image_id`.
pub(crate) fn image_id(cx: &Cx, path: &Path, v: &Value) -> Result<Option<ImageId>, SpecError> {
    let hint =
        "write `image_id: <id>` (or `docker:<image>`) or `{us-east-1: ami-1, us-west-2: ami-2}`";
    match v {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(ImageId::Single(s.clone()))),
        Value::Mapping(_) => Ok(Some(ImageId::PerRegion(cx.string_map(path, v, hint)?))),
        other => Err(cx.wrong_type(path, "a string or a region mapping", other, hint)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn infra_forms() {
        let i = |s: &str| parse_infra(s).map(|i| (i.provider, i.region, i.zone));
        let s = |x: &str| Some(x.to_string());
        assert_eq!(i("AWS"), Ok((s("aws"), None, None)));
        assert_eq!(
            i("aws/us-east-1/us-east-1a"),
            Ok((s("aws"), s("us-east-1"), s("us-east-1a")))
        );
        assert_eq!(i("*/us-east-1"), Ok((None, s("us-east-1"), None)));
        assert_eq!(i("*/*/us-east-1a"), Ok((None, None, s("us-east-1a"))));
        assert_eq!(i("k8s"), Ok((s("kubernetes"), None, None)));
        assert_eq!(
            i("k8s/arn:aws:eks:cluster/my-cluster"),
            Ok((s("kubernetes"), s("arn:aws:eks:cluster/my-cluster"), None))
        );
        assert_eq!(i("ssh/my-pool"), Ok((s("ssh"), s("my-pool"), None)));
        assert!(i("aws//us-east-1").is_err());
        assert!(i("a/b/c/d").is_err());
        assert!(i("a b").is_err());
        assert_eq!(
            parse_infra("aws/us-east-1").map(|i| i.to_string()),
            Ok("aws/us-east-1".to_string())
        );
        assert_eq!(
            parse_infra("*/*/z").map(|i| i.to_string()),
            Ok("*/*/z".to_string())
        );
    }

    #[test]
    fn quantities() {
        let q = |s: &str, u| parse_quantity(s, "memory", u).map(|q| (q.value, q.plus));
        assert_eq!(q("4", false), Ok((4.0, false)));
        assert_eq!(q("4+", false), Ok((4.0, true)));
        assert_eq!(q("0.5", false), Ok((0.5, false)));
        assert_eq!(q("64GB", true), Ok((64.0, false)));
        assert_eq!(q("1TB+", true), Ok((1024.0, true)));
        assert_eq!(q("512mb", true), Ok((0.5, false)));
        assert!(q("64GB", false).is_err());
        assert!(q("0", false).is_err());
        assert!(q("-1", false).is_err());
        assert!(q("x", false).is_err());
        assert!(q("inf", false).is_err());
    }

    #[test]
    fn accelerator_strings() {
        assert_eq!(parse_accelerator("A100"), Ok(("A100".into(), 1.0)));
        assert_eq!(parse_accelerator("A100:8"), Ok(("A100".into(), 8.0)));
        assert_eq!(parse_accelerator("L4:0.5"), Ok(("L4".into(), 0.5)));
        for bad in [
            "A100:x", ":8", "A100:-1", "A100:8:2", "A100:0", "", "A100:", "{A100:8}",
        ] {
            assert!(parse_accelerator(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ports_and_disks() {
        assert_eq!(
            parse_port_range("8080"),
            Ok(PortRange {
                start: 8080,
                end: 8080
            })
        );
        assert_eq!(
            parse_port_range("8080-8090"),
            Ok(PortRange {
                start: 8080,
                end: 8090
            })
        );
        for bad in ["0", "99999", "9-8", "a", "1-", "-1"] {
            assert!(parse_port_range(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_disk_size("1TB"), Ok(1024));
        assert!(parse_disk_size("500MB").is_err());
    }
}
