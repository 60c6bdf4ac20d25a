//! `aloft show-gpus [NAME[:COUNT]] [--infra X] [--all-regions]`, as
//! SkyPilot's: without a name, every accelerator and the counts offered; with
//! one, the instance types that have it and their prices (cheapest region of
//! each unless --all-regions). The catalogs' data dates are shown.

use crate::catalogs::{load_all, Loaded};
use crate::home::aloft_home;
use crate::table::{count as fmt_count, Table};
use anyhow::Result;
use std::collections::{BTreeMap, BTreeSet};

/// Show accelerators and their prices.
#[derive(Debug, clap::Args)]
pub struct ShowGpus {
    /// Accelerator name, optionally with a count (A100, A100:8).
    pub accelerator: Option<String>,
    /// Limit to a provider or provider/region (e.g. aws, aws/us-east-1).
    #[arg(long)]
    pub infra: Option<String>,
    /// Show every region, not only the cheapest of each instance type.
    #[arg(long)]
    pub all_regions: bool,
}

fn price(p: Option<f64>) -> String {
    p.map(|p| format!("$ {p:.3}")).unwrap_or_else(|| "-".into())
}

impl ShowGpus {
    /// Runs the command.
    pub async fn run(self) -> Result<()> {
        let home = aloft_home()?;
        let (want_provider, want_region) =
            match self.infra.as_deref().map(|s| s.trim().to_ascii_lowercase()) {
                None => (None, None),
                Some(s) => {
                    let mut parts = s.splitn(2, '/').map(str::to_string);
                    let p = parts.next().filter(|p| !p.is_empty() && p != "*");
                    (p, parts.next().filter(|r| !r.is_empty()))
                }
            };
        let (name, count) = match &self.accelerator {
            None => (None, None),
            Some(spec) => {
                let (n, c) = match spec.split_once(':') {
                    Some((n, c)) => (n, Some(c)),
                    None => (spec.as_str(), None),
                };
                let c = c
                    .map(|c| c.parse::<f32>().ok().filter(|c| *c > 0.0).ok_or(c))
                    .transpose()
                    .map_err(|c| {
                        crate::Exit { code: 2, message: format!("accelerator {spec:?}: count {c:?} is not a positive number\nhint: NAME or NAME:COUNT, e.g. A100:8") }
                    })?;
                (Some(n.to_ascii_lowercase()), c)
            }
        };
        let all: Vec<Loaded> = load_all(&home).await?;
        let catalogs: Vec<&Loaded> = all
            .iter()
            .filter(|l| {
                want_provider
                    .as_ref()
                    .is_none_or(|p| *p == l.catalog.provider)
            })
            .collect();
        if let Some(p) = &want_provider {
            if catalogs.is_empty() {
                anyhow::bail!("no installed provider named {p:?}\nhint: aloft provider list");
            }
        }
        let want_region = want_region.as_deref();
        let rows = catalogs.iter().flat_map(|l| {
            l.catalog.catalog.offerings.iter().filter_map(move |o| {
                let a = o.accelerator.as_ref()?;
                if want_region.is_some_and(|r| r != &*o.region) || o.instance_type.is_empty() {
                    return None;
                }
                Some((l.catalog.provider.as_str(), o, a))
            })
        });
        match name {
            None => {
                let mut by_gpu: BTreeMap<String, (BTreeSet<String>, BTreeSet<&str>)> =
                    BTreeMap::new();
                for (p, _, a) in rows {
                    let e = by_gpu.entry(a.name.to_string()).or_default();
                    e.0.insert(fmt_count(a.count));
                    e.1.insert(p);
                }
                let mut t = Table::new(&["GPU", "QTY", "INFRA"]);
                for (gpu, (counts, providers)) in by_gpu {
                    let mut counts: Vec<String> = counts.into_iter().collect();
                    counts.sort_by(|a, b| {
                        a.parse::<f32>()
                            .unwrap_or(0.0)
                            .total_cmp(&b.parse::<f32>().unwrap_or(0.0))
                    });
                    t.row(vec![
                        gpu,
                        counts.join(", "),
                        providers.into_iter().collect::<Vec<_>>().join(", "),
                    ]);
                }
                crate::out(&t.render());
            }
            Some(name) => {
                // (provider, type) -> rows by region, cheapest zone each
                let mut best: BTreeMap<(&str, &str, &str), &aloft_core::catalog::Offering> =
                    BTreeMap::new();
                for (p, o, a) in rows {
                    if !a.name.eq_ignore_ascii_case(&name)
                        || count.is_some_and(|c| (a.count - c).abs() > 1e-4)
                    {
                        continue;
                    }
                    let key = (
                        p,
                        &*o.instance_type,
                        if self.all_regions { &*o.region } else { "" },
                    );
                    let cheaper = best
                        .get(&key)
                        .is_none_or(|b| o.price.unwrap_or(f64::MAX) < b.price.unwrap_or(f64::MAX));
                    if cheaper {
                        best.insert(key, o);
                    }
                }
                if best.is_empty() {
                    return Err(crate::Exit {
                        code: 3,
                        message: format!(
                            "no offering has accelerator {}\nhint: aloft show-gpus lists them all",
                            self.accelerator.unwrap_or_default()
                        ),
                    }
                    .into());
                }
                let mut rows: Vec<_> = best.into_iter().collect();
                rows.sort_by(|a, b| {
                    let (x, y) = (a.1, b.1);
                    x.accelerator
                        .as_ref()
                        .map(|a| a.count)
                        .unwrap_or(0.0)
                        .total_cmp(&y.accelerator.as_ref().map(|a| a.count).unwrap_or(0.0))
                        .then(
                            x.price
                                .unwrap_or(f64::MAX)
                                .total_cmp(&y.price.unwrap_or(f64::MAX)),
                        )
                });
                let mut t = Table::new(&[
                    "GPU",
                    "QTY",
                    "INFRA",
                    "INSTANCE_TYPE",
                    "DEVICE_MEM",
                    "vCPUs",
                    "HOST_MEM",
                    "HOURLY_PRICE",
                    "HOURLY_SPOT_PRICE",
                    "REGION",
                ]);
                for ((p, _, _), o) in rows {
                    let a = o.accelerator.as_ref();
                    t.row(vec![
                        a.map(|a| a.name.to_string()).unwrap_or_default(),
                        a.map(|a| fmt_count(a.count)).unwrap_or_default(),
                        p.to_string(),
                        o.instance_type.to_string(),
                        a.and_then(|a| a.memory_gib)
                            .map(|m| format!("{m:.0}GB"))
                            .unwrap_or_else(|| "-".into()),
                        fmt_count(o.vcpus),
                        format!("{}GB", fmt_count(o.memory_gib)),
                        price(o.price),
                        price(o.spot_price),
                        o.region.to_string(),
                    ]);
                }
                crate::out(&t.render());
            }
        }
        let dates: Vec<String> = catalogs
            .iter()
            .map(|l| {
                format!(
                    "{} ({} catalog, data of {})",
                    l.catalog.provider, l.catalog.catalog.version, l.catalog.catalog.data_date
                )
            })
            .collect();
        crate::outln(&format!("\nCatalogs: {}", dates.join("; ")));
        Ok(())
    }
}
