//! Aloft provider for Google Cloud (Compute Engine).
//!
//! Serves the embedded catalog snapshot (`catalog/vms.csv`, SkyPilot's
//! v8 schema, taken into this repository on the date below).
//! Provisioning answers `unsupported` until it is implemented.
//!
//! GCP's catalog lists GPU-bundled machine types (a2, a3, g2) without their
//! GPUs (those rows describe the VM only); as SkyPilot does in code, the
//! bundled accelerator is filled in here from the machine type's name, and
//! its price is the VM's plus its GPUs' (from the catalog's GPU rows, those
//! with an empty InstanceType, in the same region). Where the snapshot has no
//! price for those GPUs, the machine type has no price (it is shown, not
//! planned), rather than a VM-only price that would be wrong.

use std::collections::BTreeMap;

use aloft_sdk::{catalog::Embedded, export_provider, Accelerator, CatalogData, Identity, Provider, Result};

const CATALOG: Embedded = Embedded {
    version: "v8",
    data_date: "2026-11-29",
    csv: include_str!("../catalog/vms.csv"),
};

/// Secrets that must be set before this provider can be used.
const REQUIRED: &[&str] = &["GCP_SERVICE_ACCOUNT_JSON"];

struct Gcp;

impl Provider for Gcp {
    fn catalog() -> Result<CatalogData> {
        let mut data = CATALOG.load()?;
        // (accelerator, region) -> cheapest (on-demand, spot) price of one GPU.
        let mut gpu_prices: BTreeMap<(String, String), (Option<f64>, Option<f64>)> = BTreeMap::new();
        for o in data.offerings.iter().filter(|o| o.instance_type.is_empty()) {
            if let Some(a) = &o.accelerator {
                let per = |p: Option<f64>| p.map(|p| p / f64::from(a.count.max(1.0)));
                let e = gpu_prices.entry((a.name.clone(), o.region.clone())).or_insert((None, None));
                e.0 = min(e.0, per(o.price));
                e.1 = min(e.1, per(o.spot_price));
            }
        }
        for o in &mut data.offerings {
            if o.accelerator.is_some() || o.instance_type.is_empty() {
                continue;
            }
            let Some(acc) = bundled_accelerator(&o.instance_type) else { continue };
            let gpu = gpu_prices.get(&(acc.name.clone(), o.region.clone())).copied().unwrap_or((None, None));
            let n = f64::from(acc.count);
            o.price = o.price.zip(gpu.0).map(|(vm, g)| vm + n * g);
            o.spot_price = o.spot_price.zip(gpu.1).map(|(vm, g)| vm + n * g);
            o.accelerator = Some(acc);
        }
        Ok(data)
    }

    fn check() -> Result<Identity> {
        aloft_sdk::check_credentials_present(REQUIRED)
    }
}

fn min(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

/// The GPUs a GPU-bundled machine type comes with, from its name:
/// `a2-highgpu-Ng` A100 x N, `a2-ultragpu-Ng` A100-80GB x N, `a2-megagpu-16g`
/// A100 x 16, `a3-*-Ng` H100 x N (`a3-megagpu` H100-MEGA), `g2-standard-N`
/// L4 (1, 2, 4 or 8 by size).
fn bundled_accelerator(machine: &str) -> Option<Accelerator> {
    let gpus_in_name = |m: &str| m.rsplit('-').next()?.strip_suffix('g')?.parse::<f32>().ok();
    let (name, count, mem) = if machine.starts_with("a2-ultragpu-") {
        ("A100-80GB", gpus_in_name(machine)?, 80.0)
    } else if machine.starts_with("a2-") {
        ("A100", gpus_in_name(machine)?, 40.0)
    } else if machine.starts_with("a3-megagpu-") {
        ("H100-MEGA", gpus_in_name(machine)?, 80.0)
    } else if machine.starts_with("a3-") {
        ("H100", gpus_in_name(machine)?, 80.0)
    } else if let Some(size) = machine.strip_prefix("g2-standard-") {
        let count = match size.parse::<u32>().ok()? {
            4 | 8 | 12 | 16 | 32 => 1.0,
            24 => 2.0,
            48 => 4.0,
            96 => 8.0,
            _ => return None,
        };
        ("L4", count, 24.0)
    } else {
        return None;
    };
    Some(Accelerator { name: name.to_string(), count, memory_gib: Some(mem) })
}

export_provider!(Gcp);
