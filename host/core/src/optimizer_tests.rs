use super::*;
use crate::catalog::Accelerator;

fn o(
    it: &str,
    vcpus: f32,
    mem: f32,
    acc: Option<(&str, f32)>,
    region: &str,
    zone: Option<&str>,
    price: f64,
    spot: Option<f64>,
) -> Offering {
    Offering {
        instance_type: it.into(),
        vcpus,
        memory_gib: mem,
        accelerator: acc.map(|(n, c)| Accelerator {
            name: n.into(),
            count: c,
            memory_gib: None,
        }),
        region: region.into(),
        zone: zone.map(Into::into),
        price: Some(price),
        spot_price: spot,
        arch: None,
    }
}

fn catalogs() -> Vec<ProviderCatalog> {
    let cat = |provider: &str, offerings| ProviderCatalog {
        provider: provider.into(),
        catalog: CatalogData {
            version: "v8".into(),
            data_date: "2026-01-01".into(),
            offerings,
        },
    };
    vec![
        cat(
            "alpha",
            vec![
                o(
                    "a.cpu8",
                    8.0,
                    32.0,
                    None,
                    "east",
                    Some("east-a"),
                    0.40,
                    Some(0.10),
                ),
                o(
                    "a.cpu8",
                    8.0,
                    32.0,
                    None,
                    "east",
                    Some("east-b"),
                    0.38,
                    Some(0.12),
                ),
                o(
                    "a.cpu8",
                    8.0,
                    32.0,
                    None,
                    "west",
                    Some("west-a"),
                    0.45,
                    None,
                ),
                o(
                    "a.cpu2",
                    2.0,
                    8.0,
                    None,
                    "east",
                    Some("east-a"),
                    0.10,
                    Some(0.03),
                ),
                o(
                    "a.gpu1",
                    8.0,
                    61.0,
                    Some(("V100", 1.0)),
                    "east",
                    Some("east-a"),
                    3.06,
                    Some(0.9),
                ),
                o(
                    "a.a100x8",
                    96.0,
                    1152.0,
                    Some(("A100", 8.0)),
                    "east",
                    Some("east-b"),
                    32.77,
                    Some(9.0),
                ),
            ],
        ),
        cat(
            "beta",
            vec![
                o("b.cpu8", 8.0, 32.0, None, "eu", None, 0.39, None),
                o(
                    "b.a100",
                    30.0,
                    200.0,
                    Some(("A100", 1.0)),
                    "eu",
                    None,
                    1.29,
                    None,
                ),
                o(
                    "b.h100x8",
                    208.0,
                    1800.0,
                    Some(("H100", 8.0)),
                    "eu",
                    None,
                    23.92,
                    None,
                ),
            ],
        ),
    ]
}

fn want() -> Want {
    Want::default()
}

#[test]
fn default_shape_is_cheapest_8_cpu_and_price_is_min_over_zones() {
    let out = plan(&catalogs(), &[want()], Order::Cheapest, 1, &[]).unwrap();
    assert_eq!(
        (
            out.chosen.provider.as_str(),
            out.chosen.instance_type.as_str()
        ),
        ("alpha", "a.cpu8")
    );
    assert_eq!(out.chosen.zone.as_deref(), Some("east-b"));
    assert_eq!(out.chosen.hourly_cost, 0.38);
    // a.cpu2 is below the default shape; GPU types are not offered unasked.
    assert!(out
        .candidates
        .iter()
        .all(|p| p.instance_type != "a.cpu2" && p.accelerators.is_none()));
    // one candidate per (provider, region, type)
    assert_eq!(out.candidates.len(), 3);
}

#[test]
fn cost_is_price_times_nodes_and_spot_uses_spot_price() {
    let w = Want {
        use_spot: true,
        cpus: Some(Amount {
            value: 2.0,
            at_least: true,
        }),
        ..want()
    };
    let out = plan(&catalogs(), &[w], Order::Cheapest, 4, &[]).unwrap();
    assert_eq!(out.chosen.instance_type, "a.cpu2");
    assert!((out.chosen.hourly_cost - 0.12).abs() < 1e-9);
    // beta has no spot market: absent.
    assert!(out.candidates.iter().all(|p| p.provider == "alpha"));
}

#[test]
fn accelerators_match_name_case_insensitively_and_count_exactly() {
    let w = Want {
        accelerator: Some(("a100".into(), 8.0)),
        ..want()
    };
    let out = plan(&catalogs(), &[w], Order::Cheapest, 1, &[]).unwrap();
    assert_eq!(out.chosen.instance_type, "a.a100x8");
    assert_eq!(out.candidates.len(), 1);
}

#[test]
fn a_set_takes_the_cheapest_and_a_list_the_first_feasible() {
    let a100 = Want {
        accelerator: Some(("A100".into(), 8.0)),
        ..want()
    };
    let h100 = Want {
        accelerator: Some(("H100".into(), 8.0)),
        ..want()
    };
    let set = plan(
        &catalogs(),
        &[a100.clone(), h100.clone()],
        Order::Cheapest,
        1,
        &[],
    )
    .unwrap();
    assert_eq!(set.chosen.instance_type, "b.h100x8");
    let list = plan(
        &catalogs(),
        &[a100.clone(), h100.clone()],
        Order::InOrder,
        1,
        &[],
    )
    .unwrap();
    assert_eq!(list.chosen.instance_type, "a.a100x8");
    assert_eq!(list.candidates.len(), 2);
    // First infeasible entry is skipped.
    let none = Want {
        accelerator: Some(("TPU".into(), 8.0)),
        ..want()
    };
    let list = plan(&catalogs(), &[none, h100], Order::InOrder, 1, &[]).unwrap();
    assert_eq!(list.chosen.instance_type, "b.h100x8");
}

#[test]
fn infra_narrowing_and_max_hourly_cost() {
    let w = Want {
        provider: Some("alpha".into()),
        region: Some("west".into()),
        ..want()
    };
    assert_eq!(
        plan(&catalogs(), &[w], Order::Cheapest, 1, &[])
            .unwrap()
            .chosen
            .region,
        "west"
    );
    let w = Want {
        zone: Some("east-a".into()),
        ..want()
    };
    let out = plan(&catalogs(), &[w], Order::Cheapest, 1, &[]).unwrap();
    assert_eq!(
        (out.chosen.zone.as_deref(), out.chosen.hourly_cost),
        (Some("east-a"), 0.40)
    );
    let w = Want {
        max_hourly_cost: Some(0.70),
        ..want()
    };
    assert!(plan(&catalogs(), &[w.clone()], Order::Cheapest, 2, &[]).is_none());
    assert!(plan(&catalogs(), &[w], Order::Cheapest, 1, &[]).is_some());
}

#[test]
fn blocklist_gives_next_zone_then_region_then_provider() {
    let cats = catalogs();
    let w = [want()];
    let mut blocked = vec![];
    let mut seen = vec![];
    while let Some(out) = plan(&cats, &w, Order::Cheapest, 1, &blocked) {
        let c = out.chosen;
        seen.push(format!(
            "{}/{}/{}",
            c.provider,
            c.region,
            c.zone.clone().unwrap_or_default()
        ));
        blocked.push(Block {
            provider: c.provider.clone(),
            region: Some(c.region.clone()),
            zone: c.zone.clone(),
            instance_type: None,
        });
    }
    assert_eq!(
        seen,
        [
            "alpha/east/east-b",
            "beta/eu/",
            "alpha/east/east-a",
            "alpha/west/west-a"
        ]
    );
    // Blocking a whole provider removes it.
    let out = plan(
        &cats,
        &w,
        Order::Cheapest,
        1,
        &[Block {
            provider: "alpha".into(),
            ..Block::default()
        }],
    )
    .unwrap();
    assert!(out.candidates.iter().all(|p| p.provider == "beta"));
}

#[test]
fn exact_amounts() {
    let w = Want {
        cpus: Some(Amount {
            value: 2.0,
            at_least: false,
        }),
        ..want()
    };
    let out = plan(&catalogs(), &[w], Order::Cheapest, 1, &[]).unwrap();
    assert!(out.candidates.iter().all(|p| p.vcpus == 2.0));
    let w = Want {
        memory: Some(Amount {
            value: 1000.0,
            at_least: true,
        }),
        accelerator: Some(("H100".into(), 8.0)),
        ..want()
    };
    assert_eq!(
        plan(&catalogs(), &[w], Order::Cheapest, 1, &[])
            .unwrap()
            .chosen
            .instance_type,
        "b.h100x8"
    );
}
