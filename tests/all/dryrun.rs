//! `aloft launch --dryrun`, `show-gpus` and `check` against the shipped
//! catalogs (issue 3).

use crate::util::TestHome;
use serde_json::Value;

fn home_with_clouds() -> TestHome {
    let home = TestHome::new();
    home.install(&["aws", "azure", "gcp", "lambda", "runpod"]);
    home
}

fn dryrun(home: &TestHome, yaml: Option<&str>, flags: &[&str]) -> crate::util::Run {
    let mut args = vec!["launch", "--dryrun", "--json"];
    let file = home.path().join("task.yaml");
    if let Some(y) = yaml {
        std::fs::write(&file, y).expect("write task");
        args.push(file.to_str().expect("path"));
    }
    args.extend_from_slice(flags);
    home.run(&args)
}

fn chosen(home: &TestHome, yaml: Option<&str>, flags: &[&str]) -> Value {
    let run = dryrun(home, yaml, flags);
    assert_eq!(
        run.status, 0,
        "yaml {yaml:?} flags {flags:?}: {}",
        run.stderr
    );
    let v = run.json();
    // The shape is the contract: exactly these keys at top level.
    let mut keys: Vec<&str> = v
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "accelerators",
            "candidates",
            "hourly_cost",
            "instance_type",
            "num_nodes",
            "provider",
            "region",
            "use_spot",
            "zone"
        ]
    );
    let costs: Vec<f64> = v["candidates"]
        .as_array()
        .expect("candidates")
        .iter()
        .map(|c| c["hourly_cost"].as_f64().expect("cost"))
        .collect();
    assert!(!costs.is_empty());
    v
}

fn is_sorted(v: &Value) -> bool {
    let costs: Vec<f64> = v["candidates"]
        .as_array()
        .expect("candidates")
        .iter()
        .map(|c| c["hourly_cost"].as_f64().expect("cost"))
        .collect();
    costs.windows(2).all(|w| w[0] <= w[1])
}

#[test]
fn planning_table() {
    let home = home_with_clouds();
    // (task yaml, flags, provider, instance type, extra check)
    type Check = fn(&Value);
    let cases: Vec<(Option<&str>, Vec<&str>, &str, &str, Check)> = vec![
        (Some("resources:\n  accelerators: A100:8\n"), vec![], "lambda", "gpu_8x_a100", |v| {
            assert_eq!(v["accelerators"]["A100"], 8.0);
            assert_eq!(v["hourly_cost"], 15.92);
            assert!(is_sorted(v));
        }),
        (None, vec!["--gpus", "A100:8", "--infra", "aws"], "aws", "p4d.24xlarge", |v| {
            assert!(v["zone"].is_string(), "aws has zones: {v}");
            assert!(v["candidates"].as_array().expect("c").iter().all(|c| c["provider"] == "aws"));
        }),
        (None, vec!["--gpus", "H100:8", "--use-spot", "--infra", "aws"], "aws", "p5.48xlarge", |v| {
            assert_eq!(v["use_spot"], true);
            assert!(v["hourly_cost"].as_f64().expect("cost") < 15.0, "spot price: {v}");
        }),
        (
            Some("resources:\n  any_of:\n    - infra: aws\n      accelerators: A100:8\n    - infra: lambda\n      accelerators: A100:8\n"),
            vec![],
            "lambda",
            "gpu_8x_a100",
            |v| assert!(is_sorted(v)),
        ),
        (
            Some("resources:\n  ordered:\n    - infra: aws\n      accelerators: A100:8\n    - infra: lambda\n      accelerators: A100:8\n"),
            vec![],
            "aws",
            "p4d.24xlarge",
            |_| {},
        ),
        (Some("resources:\n  accelerators: ['H100:8', 'A100:8']\n"), vec![], "lambda", "gpu_8x_h100_sxm5", |v| {
            assert_eq!(v["accelerators"]["H100"], 8.0, "a list is a preference order: {v}");
        }),
        (Some("resources:\n  accelerators: {A100: 8, H100: 8}\n"), vec![], "lambda", "gpu_8x_a100", |v| {
            assert_eq!(v["accelerators"]["A100"], 8.0, "a set takes the cheapest: {v}");
        }),
        (Some("num_nodes: 2\nresources:\n  accelerators: A100:8\n"), vec![], "lambda", "gpu_8x_a100", |v| {
            assert_eq!(v["num_nodes"], 2);
            assert_eq!(v["hourly_cost"], 31.84);
        }),
        (Some("resources:\n  infra: lambda\n  cpus: 4\n  memory: 16\n"), vec![], "lambda", "cpu_4x_general", |v| {
            assert_eq!(v["hourly_cost"], 0.2);
            assert!(v["zone"].is_null(), "lambda has no zones: {v}");
            assert!(v["accelerators"].is_null());
        }),
        (Some("resources:\n  instance_type: p4d.24xlarge\n"), vec![], "aws", "p4d.24xlarge", |_| {}),
        (Some("resources:\n  infra: aws/us-west-2\n  cpus: 8+\n"), vec![], "aws", "", |v| {
            assert_eq!(v["region"], "us-west-2");
            assert!(v["candidates"].as_array().expect("c").iter().all(|c| c["region"] == "us-west-2"));
        }),
        (Some("resources:\n  cloud: aws\n  region: eu-west-1\n  accelerators: A10G:1\n"), vec![], "aws", "g5.xlarge", |v| {
            assert_eq!(v["region"], "eu-west-1");
        }),
        (Some("resources:\n  infra: aws/us-east-1/use1-az2\n  cpus: 8+\n"), vec![], "aws", "", |v| {
            assert_eq!(v["zone"], "use1-az2");
            assert!(v["candidates"].as_array().expect("c").iter().all(|c| c["zone"] == "use1-az2"));
        }),
        (Some("resources:\n  accelerators: A100:8\n"), vec!["--gpus", "H100:8", "--infra", "aws"], "aws", "p5.48xlarge", |_| {}),
    ];
    for (yaml, flags, provider, instance, check) in cases {
        let v = chosen(&home, yaml, &flags);
        assert_eq!(
            v["provider"], provider,
            "yaml {yaml:?} flags {flags:?}: {v}"
        );
        if !instance.is_empty() {
            assert_eq!(
                v["instance_type"], instance,
                "yaml {yaml:?} flags {flags:?}"
            );
        }
        check(&v);
    }
}

#[test]
fn nothing_fits_is_exit_3_and_invalid_is_exit_2() {
    let home = home_with_clouds();
    let err = dryrun(
        &home,
        Some("resources:\n  accelerators: A100:8\n  max_hourly_cost: 1.0\n"),
        &[],
    )
    .fails_with(3);
    assert!(
        err.contains("no offering satisfies") && err.contains("A100:8") && err.contains("max $1/h"),
        "{err}"
    );
    let err = dryrun(&home, None, &["--gpus", "Q9000:3"]).fails_with(3);
    assert!(err.contains("Q9000:3") && err.contains("hint:"), "{err}");

    let cases: &[(&str, &[&str])] = &[
        (
            "resources:\n  acelerators: A100\n",
            &[
                "task.yaml:2:3",
                "unknown key `acelerators`",
                "did you mean `accelerators`?",
            ],
        ),
        (
            "resources:\n  infra: aws\n  cloud: aws\n",
            &["task.yaml:", "infra", "cloud", "hint:"],
        ),
        (
            "resources:\n  accelerators: A100:x\n",
            &["task.yaml:2:", "accelerators", "hint:"],
        ),
        (
            "resources:\n  any_of: [{cpus: 2}]\n  ordered: [{cpus: 4}]\n",
            &["task.yaml:", "ordered", "any_of", "hint:"],
        ),
        ("num_nodes: two\n", &["task.yaml:1:", "num_nodes", "hint:"]),
        ("run: [\n", &["task.yaml:", "invalid YAML"]),
    ];
    for (yaml, expect) in cases {
        let err = dryrun(&home, Some(yaml), &[]).fails_with(2);
        for e in *expect {
            assert!(err.contains(e), "{yaml:?}: expected {e:?} in:\n{err}");
        }
    }
    let err = home
        .run(&["launch", "--dryrun", "--gpus", "A100:0"])
        .fails_with(2);
    assert!(err.contains("--gpus") && err.contains("hint:"), "{err}");
    let err = home
        .run(&["launch", "--dryrun", "missing.yaml"])
        .fails_with(2);
    assert!(err.contains("missing.yaml: no such file"), "{err}");
    let err = home
        .run(&["launch", "--dryrun", "-c", "Bad/Name", "echo"])
        .fails_with(2);
    assert!(err.contains("invalid cluster name"), "{err}");
}

#[test]
fn the_table_marks_the_choice_and_says_it_plans_over_all_providers() {
    let home = home_with_clouds();
    let run = home.run(&["launch", "--dryrun", "--gpus", "A100:8"]);
    let out = run.ok_with_stderr();
    let header = out.0.lines().next().expect("header");
    for col in [
        "INFRA",
        "INSTANCE",
        "vCPUs",
        "Mem(GB)",
        "GPUS",
        "COST ($/h)",
        "CHOSEN",
    ] {
        assert!(header.contains(col), "{header}");
    }
    let chosen: Vec<&str> = out.0.lines().filter(|l| l.ends_with('✔')).collect();
    assert_eq!(chosen.len(), 1, "{}", out.0);
    assert!(chosen[0].starts_with("lambda/"), "{}", chosen[0]);
    // At most 3 rows per provider.
    assert!(out.0.lines().filter(|l| l.starts_with("aws/")).count() <= 3);
    assert!(
        out.1.contains("planning over every installed provider"),
        "{}",
        out.1
    );
}

#[test]
fn show_gpus_lists_accelerators_prices_and_the_catalog_date() {
    let home = home_with_clouds();
    let all = home.run(&["show-gpus"]).ok();
    assert!(
        all.lines()
            .any(|l| l.starts_with("A100 ") && l.contains("aws") && l.contains("lambda")),
        "{all}"
    );
    assert!(all.contains("data of 2026-11-29"), "{all}");
    let a100 = home.run(&["show-gpus", "A100:8", "--infra", "aws"]).ok();
    assert!(
        a100.contains("p4d.24xlarge") && !a100.contains("lambda"),
        "{a100}"
    );
    assert_eq!(
        a100.lines().filter(|l| l.contains("p4d.24xlarge")).count(),
        1,
        "cheapest region only:\n{a100}"
    );
    let all_regions = home
        .run(&["show-gpus", "A100:8", "--infra", "aws", "--all-regions"])
        .ok();
    assert!(
        all_regions
            .lines()
            .filter(|l| l.contains("p4d.24xlarge"))
            .count()
            > 1,
        "{all_regions}"
    );
    let err = home.run(&["show-gpus", "A100:x"]).fails_with(2);
    assert!(err.contains("hint:"), "{err}");
}

#[test]
fn check_reports_each_provider_and_why_not() {
    let home = home_with_clouds();
    let mut cmd = home.cmd(&["check", "--json"]);
    for v in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "LAMBDA_API_KEY",
        "RUNPOD_API_KEY",
    ] {
        cmd.env_remove(v);
    }
    cmd.env("LAMBDA_API_KEY", "k");
    let v = home.output(cmd).json();
    assert_eq!(v["aws"]["enabled"], false);
    assert!(
        v["aws"]["detail"]
            .as_str()
            .expect("detail")
            .contains("AWS_ACCESS_KEY_ID"),
        "{v}"
    );
    // Credentials present but not validated yet: still not enabled, and it says why.
    assert_eq!(v["lambda"]["enabled"], false);
    assert!(
        v["lambda"]["detail"]
            .as_str()
            .expect("detail")
            .contains("cannot validate"),
        "{v}"
    );
    let table = home.run(&["check"]).ok();
    assert!(
        table.contains("PROVIDER") && table.contains("disabled"),
        "{table}"
    );
}
