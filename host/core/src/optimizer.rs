//! The optimizer: cheapest offering that satisfies a request, SkyPilot's way.
//!
//! - every constraint filters (provider/region/zone, instance type, vCPUs,
//!   memory, accelerator name and count, spot availability);
//! - an instance type's price in a region is its minimum over the zones not
//!   blocked; the plan names the zone that has it;
//! - cost = hourly price x nodes (spot price when `use_spot`);
//! - several wants (any_of, accelerator sets) -> the cheapest of all;
//!   [`Order::InOrder`] (ordered, accelerator lists) -> the first want that
//!   has any feasible plan, cheapest within it;
//! - `max_hourly_cost` bounds the total;
//! - a [`Block`] list removes what failed, so [`plan`] again gives the next
//!   best (the launch path fails over with it).
//!
//! Pure: catalogs come in as data.

use crate::catalog::{CatalogData, Offering};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// At least or exactly this many (vCPUs, GiB).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Amount {
    /// The number.
    pub value: f64,
    /// `N+`: at least; else exactly.
    pub at_least: bool,
}

impl Amount {
    fn admits(&self, have: f64) -> bool {
        if self.at_least {
            have + 1e-6 >= self.value
        } else {
            (have - self.value).abs() < 1e-6
        }
    }
}

/// One concrete request: every field narrows.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Want {
    /// Provider name (lowercase); none = any.
    pub provider: Option<String>,
    /// Region; none = any.
    pub region: Option<String>,
    /// Zone; none = any.
    pub zone: Option<String>,
    /// Exact instance type.
    pub instance_type: Option<String>,
    /// vCPUs.
    pub cpus: Option<Amount>,
    /// Memory, GiB.
    pub memory: Option<Amount>,
    /// Accelerator name (case-insensitive) and count per node.
    pub accelerator: Option<(String, f32)>,
    /// Spot instances.
    pub use_spot: bool,
    /// Upper bound on the total hourly cost.
    pub max_hourly_cost: Option<f64>,
}

/// How several wants combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Order {
    /// The cheapest over all wants.
    Cheapest,
    /// The first want (in order) that can be satisfied.
    InOrder,
}

/// Something that failed and must not be chosen again. `None` fields match
/// anything: `{provider}` blocks a provider, `{provider, region}` a region.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Block {
    /// Provider.
    pub provider: String,
    /// Region.
    pub region: Option<String>,
    /// Zone.
    pub zone: Option<String>,
    /// Instance type.
    pub instance_type: Option<String>,
}

impl Block {
    fn blocks(&self, provider: &str, o: &Offering) -> bool {
        self.provider == provider
            && self.region.as_deref().is_none_or(|r| r == &*o.region)
            && self
                .zone
                .as_deref()
                .is_none_or(|z| o.zone.as_deref() == Some(z))
            && self
                .instance_type
                .as_deref()
                .is_none_or(|t| t == &*o.instance_type)
    }
}

/// A catalog with its provider's name.
#[derive(Debug, Clone)]
pub struct ProviderCatalog {
    /// Provider name.
    pub provider: String,
    /// Its catalog.
    pub catalog: CatalogData,
}

/// One feasible choice.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    /// Provider.
    pub provider: String,
    /// Region.
    pub region: String,
    /// The cheapest unblocked zone, where the catalog has zones.
    pub zone: Option<String>,
    /// Instance type.
    pub instance_type: String,
    /// vCPUs per node.
    pub vcpus: f32,
    /// Memory per node, GiB.
    pub memory_gib: f32,
    /// Accelerator name and count per node.
    pub accelerators: Option<(String, f32)>,
    /// Spot.
    pub use_spot: bool,
    /// Nodes.
    pub num_nodes: u32,
    /// Price of one node per hour.
    pub hourly_price: f64,
    /// Total per hour (price x nodes).
    pub hourly_cost: f64,
    /// Index of the want this plan satisfies.
    pub want: usize,
}

/// The optimizer's answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outcome {
    /// The choice.
    pub chosen: Plan,
    /// Every feasible plan, cheapest first (the chosen one included).
    pub candidates: Vec<Plan>,
}

/// Plans a request over the given catalogs. `None` when nothing satisfies it.
pub fn plan(
    catalogs: &[ProviderCatalog],
    wants: &[Want],
    order: Order,
    num_nodes: u32,
    blocked: &[Block],
) -> Option<Outcome> {
    let nodes = num_nodes.max(1);
    let mut per_want: Vec<Vec<Plan>> = wants
        .iter()
        .enumerate()
        .map(|(i, w)| feasible(catalogs, w, i, nodes, blocked))
        .collect();
    let candidates: Vec<Plan> = match order {
        Order::Cheapest => {
            let mut all: Vec<Plan> = per_want.drain(..).flatten().collect();
            sort_plans(&mut all);
            dedup(all)
        }
        Order::InOrder => {
            let first = per_want.iter().position(|p| !p.is_empty())?;
            let mut all: Vec<Plan> = Vec::new();
            // The chosen want's plans first, then the others' in order.
            for (i, mut plans) in per_want.into_iter().enumerate().skip(first) {
                sort_plans(&mut plans);
                if i == first {
                    all.splice(0..0, plans);
                } else {
                    all.extend(plans);
                }
            }
            dedup(all)
        }
    };
    let chosen = candidates.first()?.clone();
    Some(Outcome { chosen, candidates })
}

fn sort_plans(plans: &mut [Plan]) {
    plans.sort_by(|a, b| {
        a.hourly_cost
            .total_cmp(&b.hourly_cost)
            .then_with(|| a.provider.cmp(&b.provider))
            .then_with(|| a.region.cmp(&b.region))
            .then_with(|| a.instance_type.cmp(&b.instance_type))
    });
}

fn dedup(plans: Vec<Plan>) -> Vec<Plan> {
    let mut seen = BTreeSet::new();
    plans
        .into_iter()
        .filter(|p| {
            seen.insert((
                p.provider.clone(),
                p.region.clone(),
                p.instance_type.clone(),
                p.use_spot,
            ))
        })
        .collect()
}

fn feasible(
    catalogs: &[ProviderCatalog],
    w: &Want,
    index: usize,
    nodes: u32,
    blocked: &[Block],
) -> Vec<Plan> {
    // (provider, region, instance type) -> cheapest zone's plan
    let mut best: BTreeMap<(&str, &str, &str), Plan> = BTreeMap::new();
    let want_acc = w
        .accelerator
        .as_ref()
        .map(|(n, c)| (n.to_ascii_lowercase(), *c));
    let default_shape = w.instance_type.is_none()
        && w.accelerator.is_none()
        && w.cpus.is_none()
        && w.memory.is_none();
    for pc in catalogs {
        if w.provider.as_ref().is_some_and(|p| *p != pc.provider) {
            continue;
        }
        let provider_blocks: Vec<&Block> = blocked
            .iter()
            .filter(|b| b.provider == pc.provider)
            .collect();
        if provider_blocks
            .iter()
            .any(|b| b.region.is_none() && b.zone.is_none() && b.instance_type.is_none())
        {
            continue;
        }
        for o in &pc.catalog.offerings {
            if o.instance_type.is_empty() {
                continue; // an attachable accelerator row, not a VM
            }
            if w.region.as_deref().is_some_and(|r| r != &*o.region)
                || w.zone
                    .as_deref()
                    .is_some_and(|z| o.zone.as_deref() != Some(z))
                || w.instance_type
                    .as_deref()
                    .is_some_and(|t| t != &*o.instance_type)
                || w.cpus.is_some_and(|c| !c.admits(o.vcpus as f64))
                || w.memory.is_some_and(|m| !m.admits(o.memory_gib as f64))
            {
                continue;
            }
            match (&want_acc, &o.accelerator) {
                (Some((name, count)), Some(a))
                    if !a.name.eq_ignore_ascii_case(name) || (a.count - count).abs() > 1e-4 =>
                {
                    continue
                }
                (Some(_), None) => continue,
                // No accelerator asked for and no instance type named:
                // accelerator instances are not offered (as SkyPilot).
                (None, Some(_)) if w.instance_type.is_none() => continue,
                _ => {}
            }
            // SkyPilot's default shape: 8+ vCPUs with 4 GiB per vCPU.
            if default_shape && (o.vcpus < 8.0 || o.memory_gib < 32.0) {
                continue;
            }
            let price = if w.use_spot { o.spot_price } else { o.price };
            let Some(price) = price.filter(|p| p.is_finite() && *p >= 0.0) else {
                continue;
            };
            if provider_blocks.iter().any(|b| b.blocks(&pc.provider, o)) {
                continue;
            }
            let cost = price * nodes as f64;
            if w.max_hourly_cost.is_some_and(|max| cost > max + 1e-9) {
                continue;
            }
            let key = (pc.provider.as_str(), &*o.region, &*o.instance_type);
            let better = match best.get(&key) {
                None => true,
                Some(p) => {
                    price < p.hourly_price
                        || (price == p.hourly_price && o.zone.as_deref() < p.zone.as_deref())
                }
            };
            if better {
                best.insert(
                    key,
                    Plan {
                        provider: pc.provider.clone(),
                        region: o.region.to_string(),
                        zone: o.zone.as_deref().map(str::to_string),
                        instance_type: o.instance_type.to_string(),
                        vcpus: o.vcpus,
                        memory_gib: o.memory_gib,
                        accelerators: o
                            .accelerator
                            .as_ref()
                            .map(|a| (a.name.to_string(), a.count)),
                        use_spot: w.use_spot,
                        num_nodes: nodes,
                        hourly_price: price,
                        hourly_cost: cost,
                        want: index,
                    },
                );
            }
        }
    }
    best.into_values().collect()
}

#[cfg(test)]
#[path = "optimizer_tests.rs"]
mod tests;

/// The optimizer's wants for a task's resources: one per candidate
/// (any_of / ordered entry) and accelerator choice, with how they combine.
pub fn wants_for(spec: &crate::task::ResourcesSpec) -> (Vec<Want>, Order) {
    use crate::task::Ordering;
    let mut wants = Vec::new();
    let mut accel_ordered = false;
    for r in &spec.candidates {
        let base = Want {
            provider: r.infra.provider.clone(),
            region: r.infra.region.clone(),
            zone: r.infra.zone.clone(),
            instance_type: r.instance_type.clone(),
            cpus: r.cpus.map(|q| Amount {
                value: q.value,
                at_least: q.plus,
            }),
            memory: r.memory.map(|q| Amount {
                value: q.value,
                at_least: q.plus,
            }),
            accelerator: None,
            use_spot: r.use_spot,
            max_hourly_cost: r.max_hourly_cost,
        };
        match &r.accelerators {
            Some(acc) if !acc.choices.is_empty() => {
                accel_ordered |= acc.ordered;
                for (name, count) in &acc.choices {
                    wants.push(Want {
                        accelerator: Some((name.clone(), *count)),
                        ..base.clone()
                    });
                }
            }
            _ => wants.push(base),
        }
    }
    let order = match spec.order {
        Ordering::InOrder => Order::InOrder,
        Ordering::Cheapest if spec.candidates.len() == 1 && accel_ordered => Order::InOrder,
        Ordering::Cheapest => Order::Cheapest,
    };
    (wants, order)
}
