//! The simulated cloud's shape: regions, zones, instance types, prices,
//! capacity and the loopback address pool. Read from JSON (unknown keys are
//! rejected) and validated before the simulator starts.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::path::Path;

/// Everything the simulator is started with.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Regions in order (the order zones are tried in when none is given).
    pub regions: Vec<Region>,
    /// The instance types every zone offers.
    pub instance_types: Vec<InstanceType>,
    /// Slots per (zone, instance type) unless `capacity` says otherwise.
    #[serde(default = "default_capacity")]
    pub default_capacity: u32,
    /// Per-(zone, instance type) capacity overrides.
    #[serde(default)]
    pub capacity: Vec<CapacityOverride>,
    /// Per-(region, instance type) price overrides (win over multipliers).
    #[serde(default)]
    pub prices: Vec<PriceOverride>,
    /// Instances get `127.0.0.{ip_base}` .. `127.0.0.{ip_base + ip_count - 1}`.
    #[serde(default = "default_ip_base")]
    pub ip_base: u8,
    /// How many loopback addresses the pool has.
    #[serde(default = "default_ip_count")]
    pub ip_count: u8,
    /// The catalog's `data_date`.
    #[serde(default = "default_data_date")]
    pub data_date: String,
}

/// A region and its zones.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Region {
    /// e.g. `sim-east`.
    pub name: String,
    /// e.g. `["sim-east-a", "sim-east-b"]`; names are unique across regions.
    pub zones: Vec<String>,
    /// Multiplies the instance types' base prices in this region.
    #[serde(default = "one")]
    pub price_multiplier: f64,
}

/// An instance type with its base (multiplier 1) prices in $/hour.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstanceType {
    /// e.g. `sim.small`.
    pub name: String,
    /// Virtual CPUs.
    pub vcpus: u32,
    /// Memory in GiB.
    pub memory_gib: f64,
    /// Attached accelerators, if any.
    #[serde(default)]
    pub accelerator: Option<Accelerator>,
    /// On-demand $/hour.
    pub price: f64,
    /// Spot $/hour.
    pub spot_price: f64,
    /// CPU architecture (`x86_64` unless told).
    #[serde(default = "default_arch")]
    pub arch: String,
}

/// Accelerators of an instance type.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Accelerator {
    /// e.g. `SIMGPU`.
    pub name: String,
    /// How many.
    pub count: u32,
    /// Memory per accelerator in GiB.
    pub memory_gib: f64,
}

/// Capacity of one (zone, instance type).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapacityOverride {
    /// The zone.
    pub zone: String,
    /// The type; every type of the zone when absent.
    #[serde(default)]
    pub instance_type: Option<String>,
    /// Total slots (running + starting instances count against it).
    pub capacity: u32,
}

/// Prices of one (region, instance type).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceOverride {
    /// The region.
    pub region: String,
    /// The type.
    pub instance_type: String,
    /// On-demand $/hour (unchanged when absent).
    #[serde(default)]
    pub price: Option<f64>,
    /// Spot $/hour (unchanged when absent).
    #[serde(default)]
    pub spot_price: Option<f64>,
}

fn default_capacity() -> u32 {
    4
}
fn default_ip_base() -> u8 {
    100
}
fn default_ip_count() -> u8 {
    100
}
fn default_data_date() -> String {
    "2026-01-01".to_string()
}
fn default_arch() -> String {
    "x86_64".to_string()
}
fn one() -> f64 {
    1.0
}

impl Default for Config {
    /// Two regions (`sim-east`: zones a and b; `sim-west`: zone a, 10% dearer),
    /// `sim.small` and `sim.gpu`, capacity 4 per (zone, type).
    fn default() -> Self {
        Config {
            regions: vec![
                Region {
                    name: "sim-east".into(),
                    zones: vec!["sim-east-a".into(), "sim-east-b".into()],
                    price_multiplier: 1.0,
                },
                Region {
                    name: "sim-west".into(),
                    zones: vec!["sim-west-a".into()],
                    price_multiplier: 1.1,
                },
            ],
            instance_types: vec![
                InstanceType {
                    name: "sim.small".into(),
                    vcpus: 2,
                    memory_gib: 4.0,
                    accelerator: None,
                    price: 0.10,
                    spot_price: 0.03,
                    arch: default_arch(),
                },
                InstanceType {
                    name: "sim.gpu".into(),
                    vcpus: 8,
                    memory_gib: 32.0,
                    accelerator: Some(Accelerator {
                        name: "SIMGPU".into(),
                        count: 1,
                        memory_gib: 16.0,
                    }),
                    price: 1.00,
                    spot_price: 0.30,
                    arch: default_arch(),
                },
            ],
            default_capacity: default_capacity(),
            capacity: Vec::new(),
            prices: Vec::new(),
            ip_base: default_ip_base(),
            ip_count: default_ip_count(),
            data_date: default_data_date(),
        }
    }
}

impl Config {
    /// Reads and validates a JSON config file.
    pub fn from_file(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::Config {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        let config: Config = serde_json::from_str(&text).map_err(|e| Error::Config {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        config.validate().map_err(|e| match e {
            Error::Config { message, .. } => Error::Config {
                path: path.display().to_string(),
                message,
            },
            other => other,
        })?;
        Ok(config)
    }

    /// Checks names are unique and known, prices sane, the pool on loopback.
    pub fn validate(&self) -> Result<()> {
        let bad = |message: String| Error::Config {
            path: "<config>".into(),
            message,
        };
        if self.regions.is_empty() || self.instance_types.is_empty() {
            return Err(bad("needs at least one region and one instance type".into()));
        }
        let mut zones = HashSet::new();
        let mut regions = HashSet::new();
        for r in &self.regions {
            if !regions.insert(r.name.as_str()) {
                return Err(bad(format!("region {} appears twice", r.name)));
            }
            if r.zones.is_empty() {
                return Err(bad(format!("region {} has no zones", r.name)));
            }
            if !r.price_multiplier.is_finite() || r.price_multiplier <= 0.0 {
                return Err(bad(format!(
                    "region {}: price_multiplier must be > 0",
                    r.name
                )));
            }
            for z in &r.zones {
                if !zones.insert(z.as_str()) {
                    return Err(bad(format!("zone {z} appears twice")));
                }
            }
        }
        let mut types = HashSet::new();
        for t in &self.instance_types {
            if !types.insert(t.name.as_str()) {
                return Err(bad(format!("instance type {} appears twice", t.name)));
            }
            if t.price < 0.0 || t.spot_price < 0.0 {
                return Err(bad(format!("instance type {}: negative price", t.name)));
            }
        }
        for c in &self.capacity {
            if !zones.contains(c.zone.as_str()) {
                return Err(bad(format!("capacity: unknown zone {}", c.zone)));
            }
            if let Some(t) = &c.instance_type {
                if !types.contains(t.as_str()) {
                    return Err(bad(format!("capacity: unknown instance type {t}")));
                }
            }
        }
        for p in &self.prices {
            if !regions.contains(p.region.as_str()) {
                return Err(bad(format!("prices: unknown region {}", p.region)));
            }
            if !types.contains(p.instance_type.as_str()) {
                return Err(bad(format!(
                    "prices: unknown instance type {}",
                    p.instance_type
                )));
            }
        }
        let last = u16::from(self.ip_base) + u16::from(self.ip_count);
        if self.ip_base < 2 || self.ip_count == 0 || last > 255 {
            return Err(bad(format!(
                "ip pool 127.0.0.{}+{} must lie within 127.0.0.2..127.0.0.254",
                self.ip_base, self.ip_count
            )));
        }
        Ok(())
    }

    /// The region a zone belongs to.
    pub fn region_of_zone(&self, zone: &str) -> Option<&Region> {
        self.regions
            .iter()
            .find(|r| r.zones.iter().any(|z| z == zone))
    }

    /// A region by name.
    pub fn region(&self, name: &str) -> Option<&Region> {
        self.regions.iter().find(|r| r.name == name)
    }

    /// An instance type by name.
    pub fn instance_type(&self, name: &str) -> Option<&InstanceType> {
        self.instance_types.iter().find(|t| t.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid_and_round_trips() {
        let c = Config::default();
        c.validate().unwrap();
        let text = serde_json::to_string(&c).unwrap();
        let back: Config = serde_json::from_str(&text).unwrap();
        back.validate().unwrap();
        assert_eq!(back.regions.len(), 2);
    }

    #[test]
    fn rejects_unknown_keys_and_bad_pools() {
        assert!(
            serde_json::from_str::<Config>(r#"{"regions":[],"instance_types":[],"x":1}"#).is_err()
        );
        let c = Config {
            ip_base: 200,
            ip_count: 60,
            ..Config::default()
        };
        assert!(c.validate().is_err());
    }
}
