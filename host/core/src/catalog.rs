//! Catalog types: what a provider sells, where, and at what price.
//!
//! These mirror `aloft:provider/types@0.1.0` (the WIT is the reference) and
//! serialise to JSON for `aloft provider call` and the on-disk catalog cache.

use serde::{Deserialize, Serialize};

/// An accelerator attached to an offering.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Accelerator {
    /// Canonical name, e.g. `A100-80GB`.
    pub name: String,
    /// How many per instance (may be fractional).
    pub count: f32,
    /// Memory of one accelerator in GiB, when known.
    #[serde(default)]
    pub memory_gib: Option<f32>,
}

/// One instance type in one region (and zone) at a price.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Offering {
    /// Instance type name; empty for a GPU attachable to any VM.
    pub instance_type: String,
    /// vCPUs per instance.
    pub vcpus: f32,
    /// Memory per instance, GiB.
    pub memory_gib: f32,
    /// The accelerator, if any.
    #[serde(default)]
    pub accelerator: Option<Accelerator>,
    /// Region.
    pub region: String,
    /// Zone, where the catalog has zones.
    #[serde(default)]
    pub zone: Option<String>,
    /// On-demand USD/hour.
    #[serde(default)]
    pub price: Option<f64>,
    /// Spot USD/hour.
    #[serde(default)]
    pub spot_price: Option<f64>,
    /// `x86_64`, `arm64`, ...
    #[serde(default)]
    pub arch: Option<String>,
}

/// A provider's whole catalog.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogData {
    /// Catalog schema version, e.g. `v8`.
    pub version: String,
    /// Date the data was taken, `YYYY-MM-DD`.
    pub data_date: String,
    /// Every offering.
    pub offerings: Vec<Offering>,
}
