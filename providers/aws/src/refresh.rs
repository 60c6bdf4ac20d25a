//! A live catalog (`aloft catalog refresh aws`): instance types, the zones
//! that offer them and current spot prices from EC2's own APIs
//! (DescribeInstanceTypes, DescribeInstanceTypeOfferings,
//! DescribeSpotPriceHistory), merged with the embedded snapshot's on-demand
//! prices (EC2 has no on-demand price API; that is the Pricing API). Regions
//! not refreshed keep the snapshot's rows. The host keeps the result beside
//! the snapshot; the snapshot stays the default.

use crate::errors::from_sdk;
use aloft_sdk::{Accelerator, CatalogData, Offering, ProviderError, Result};
use aws_sdk_ec2::types::{ArchitectureType, LocationType};
use aws_sdk_ec2::Client;
use std::collections::{BTreeMap, HashMap};

/// What the snapshot knows per (type, region): on-demand price, and per type
/// its accelerator under the catalog's canonical name.
pub struct Snapshot {
    price: HashMap<(String, String), f64>,
    accelerator: HashMap<String, Accelerator>,
}

impl Snapshot {
    /// From the embedded catalog's offerings.
    pub fn new(offerings: &[Offering]) -> Snapshot {
        let mut price: HashMap<(String, String), f64> = HashMap::new();
        let mut accelerator = HashMap::new();
        for o in offerings {
            if let Some(p) = o.price {
                let e = price
                    .entry((o.instance_type.clone(), o.region.clone()))
                    .or_insert(p);
                *e = e.min(p);
            }
            if let Some(a) = &o.accelerator {
                accelerator
                    .entry(o.instance_type.clone())
                    .or_insert_with(|| a.clone());
            }
        }
        Snapshot { price, accelerator }
    }
}

/// The regions to refresh: `all` (every region the account has enabled)
/// or a comma-separated list.
pub async fn regions(ec2: &Client, spec: &str) -> Result<Vec<String>> {
    let spec = spec.trim();
    if !spec.is_empty() && spec != "all" {
        return Ok(spec
            .split(',')
            .map(|r| r.trim().to_string())
            .filter(|r| !r.is_empty())
            .collect());
    }
    let r = ec2
        .describe_regions()
        .send()
        .await
        .map_err(|e| from_sdk("DescribeRegions", e))?;
    Ok(r.regions()
        .iter()
        .filter_map(|r| r.region_name())
        .map(str::to_string)
        .collect())
}

/// One region's offerings.
pub async fn region(ec2: &Client, region: &str, snap: &Snapshot) -> Result<Vec<Offering>> {
    // Zone name -> id; the catalog speaks zone ids.
    let zones = ec2
        .describe_availability_zones()
        .send()
        .await
        .map_err(|e| from_sdk("DescribeAvailabilityZones", e))?;
    let zone_id: HashMap<String, String> = zones
        .availability_zones()
        .iter()
        .filter_map(|z| Some((z.zone_name()?.to_string(), z.zone_id()?.to_string())))
        .collect();
    let all_zones: Vec<String> = {
        let mut v: Vec<String> = zone_id.values().cloned().collect();
        v.sort();
        v
    };

    // Which zones offer which type.
    let mut offered: HashMap<String, Vec<String>> = HashMap::new();
    let mut pages = ec2
        .describe_instance_type_offerings()
        .location_type(LocationType::AvailabilityZoneId)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let r = page.map_err(|e| from_sdk("DescribeInstanceTypeOfferings", e))?;
        for o in r.instance_type_offerings() {
            if let (Some(t), Some(z)) = (o.instance_type(), o.location()) {
                offered
                    .entry(t.as_str().to_string())
                    .or_default()
                    .push(z.to_string());
            }
        }
    }

    // Current spot prices: the newest entry per (type, zone).
    let mut spot: HashMap<(String, String), f64> = HashMap::new();
    let now = aws_smithy_types::DateTime::from(std::time::SystemTime::now());
    let mut pages = ec2
        .describe_spot_price_history()
        .product_descriptions("Linux/UNIX")
        .start_time(now)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let r = page.map_err(|e| from_sdk("DescribeSpotPriceHistory", e))?;
        for p in r.spot_price_history() {
            let zone = p
                .availability_zone_id()
                .map(str::to_string)
                .or_else(|| p.availability_zone().and_then(|n| zone_id.get(n).cloned()));
            let (Some(t), Some(z), Some(price)) = (
                p.instance_type(),
                zone,
                p.spot_price().and_then(|s| s.parse::<f64>().ok()),
            ) else {
                continue;
            };
            spot.entry((t.as_str().to_string(), z)).or_insert(price);
        }
    }

    let mut out = Vec::new();
    let mut pages = ec2
        .describe_instance_types()
        .max_results(100)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let r = page.map_err(|e| from_sdk("DescribeInstanceTypes", e))?;
        for info in r.instance_types() {
            let Some(name) = info.instance_type().map(|t| t.as_str().to_string()) else {
                continue;
            };
            let vcpus = info
                .v_cpu_info()
                .and_then(|v| v.default_v_cpus())
                .unwrap_or(0) as f32;
            let memory_gib = info
                .memory_info()
                .and_then(|m| m.size_in_mib())
                .unwrap_or(0) as f32
                / 1024.0;
            let accelerator = snap.accelerator.get(&name).cloned().or_else(|| {
                let gpus = info.gpu_info()?.gpus();
                let g = gpus.first()?;
                Some(Accelerator {
                    name: g.name()?.to_string(),
                    count: gpus.iter().map(|g| g.count().unwrap_or(0)).sum::<i32>() as f32,
                    memory_gib: g
                        .memory_info()
                        .and_then(|m| m.size_in_mib())
                        .map(|m| m as f32 / 1024.0),
                })
            });
            let arch = info.processor_info().map(|p| {
                if p.supported_architectures()
                    .contains(&ArchitectureType::Arm64)
                {
                    "arm64"
                } else {
                    "x86_64"
                }
                .to_string()
            });
            let price = snap.price.get(&(name.clone(), region.to_string())).copied();
            let zones = offered.get(&name).unwrap_or(&all_zones);
            for z in zones {
                let spot_price = spot.get(&(name.clone(), z.clone())).copied();
                if price.is_none() && spot_price.is_none() {
                    continue; // nothing to plan with
                }
                out.push(Offering {
                    instance_type: name.clone(),
                    vcpus,
                    memory_gib,
                    accelerator: accelerator.clone(),
                    region: region.to_string(),
                    zone: Some(z.clone()),
                    price,
                    spot_price,
                    arch: arch.clone(),
                });
            }
        }
    }
    Ok(out)
}

/// Today's date, `YYYY-MM-DD` (UTC), from the clock the host gives.
pub fn today() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = (secs / 86_400) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// The whole live catalog for the regions in `spec`.
pub async fn live(
    spec: &str,
    default: &Client,
    client: impl Fn(&str) -> Result<Client>,
) -> Result<CatalogData> {
    let embedded = crate::CATALOG.load()?.offerings;
    let refreshed = regions(default, spec).await?;
    let snap = Snapshot::new(&embedded);
    let mut offerings = Vec::new();
    let mut per_region = BTreeMap::new();
    for r in refreshed.iter().cloned() {
        let ec2 = client(&r)?;
        let o = region(&ec2, &r, &snap).await.map_err(|e| match e {
            ProviderError::Other(m) => ProviderError::Other(format!("{r}: {m}")),
            other => other,
        })?;
        per_region.insert(r.clone(), o.len());
        offerings.extend(o);
    }
    aloft_sdk::log::info(&format!(
        "live catalog: {} offerings, per region {per_region:?}",
        offerings.len()
    ));
    // Regions not refreshed keep the snapshot's rows.
    offerings.extend(
        embedded
            .into_iter()
            .filter(|o| !refreshed.contains(&o.region)),
    );
    Ok(CatalogData {
        version: "v8-live".to_string(),
        data_date: today(),
        offerings,
    })
}
