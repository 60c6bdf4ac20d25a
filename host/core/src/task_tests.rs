use super::*;
use crate::provider::PortRange;

fn parse(yaml: &str) -> Task {
    match Task::parse(yaml, "task.yaml") {
        Ok(t) => t,
        Err(e) => panic!("{yaml}\n---\n{e}"),
    }
}

fn only(t: &Task) -> &Resources {
    assert_eq!(t.resources.candidates.len(), 1, "{:?}", t.resources);
    &t.resources.candidates[0]
}

fn accels(yaml: &str) -> Option<Accelerators> {
    only(&parse(&format!("resources:\n  accelerators: {yaml}\n")))
        .accelerators
        .clone()
}

fn acc(choices: &[(&str, f32)], ordered: bool) -> Option<Accelerators> {
    Some(Accelerators {
        choices: choices.iter().map(|(n, c)| (n.to_string(), *c)).collect(),
        ordered,
    })
}

fn infra(p: Option<&str>, r: Option<&str>, z: Option<&str>) -> Infra {
    Infra {
        provider: p.map(Into::into),
        region: r.map(Into::into),
        zone: z.map(Into::into),
    }
}

fn s(x: &str) -> Option<String> {
    Some(x.to_string())
}

#[test]
fn minimal_and_empty_tasks() {
    let t = parse("run: echo hi\n");
    assert_eq!(t.run, s("echo hi"));
    assert_eq!(t.num_nodes, 1);
    assert_eq!(t.resources, ResourcesSpec::default());
    for empty in ["", "# only a comment\n", "---\n", "{}\n"] {
        let t = parse(empty);
        assert_eq!((t.run, t.name, t.num_nodes), (None, None, 1), "{empty:?}");
    }
    assert_eq!(parse("name:\nrun: [a, b]\nsetup: 1\n").run, s("a\nb"));
}

#[test]
fn full_task() {
    let yaml = r#"
name: my-task
workdir: ~/code/${MODEL}
num_nodes: 4
resources:
  infra: aws/us-east-1
  accelerators: A100:8
  cpus: 32+
  memory: 256GB+
  use_spot: yes
  disk_size: 512
  disk_tier: HIGH
  ports: [8080, "9000-9010"]
  labels:
    team: ml
  image_id: docker:pytorch/pytorch:latest
  autostop: 10m
  job_recovery:
    strategy: FAILOVER
    max_restarts_on_errors: 3
  max_hourly_cost: 40
  priority: 10
envs:
  MODEL: llama-3
  BUCKET: my-bucket
  HF_TOKEN:
  EPOCHS: 3
secrets:
  WANDB_API_KEY: null
file_mounts:
  /remote/data: ./local/data
  /ckpt/$MODEL:
    name: ${BUCKET}-ckpt
    source: s3://${BUCKET}/ckpt
    store: S3
    persistent: false
    mode: mount_cached
    config:
      mount_cached:
        transfers: 8
setup: |
  pip install -r requirements.txt
run:
  - python train.py --model $MODEL
  - echo done
config:
  kubernetes:
    pod_config: {}
"#;
    let t = parse(yaml);
    assert_eq!(t.name, s("my-task"));
    assert_eq!(t.num_nodes, 4);
    assert_eq!(t.workdir, Some(Workdir::Path("~/code/llama-3".into())));
    assert_eq!(t.setup, s("pip install -r requirements.txt\n"));
    assert_eq!(t.run, s("python train.py --model $MODEL\necho done"));
    let r = only(&t);
    assert_eq!(r.infra, infra(Some("aws"), Some("us-east-1"), None));
    assert_eq!(r.accelerators, acc(&[("A100", 8.0)], false));
    assert_eq!(
        r.cpus,
        Some(Quantity {
            value: 32.0,
            plus: true
        })
    );
    assert_eq!(
        r.memory,
        Some(Quantity {
            value: 256.0,
            plus: true
        })
    );
    assert!(r.use_spot);
    assert_eq!(
        (r.disk_size, r.disk_tier),
        (Some(512), Some(DiskTier::High))
    );
    assert_eq!(
        r.ports,
        vec![
            PortRange {
                start: 8080,
                end: 8080
            },
            PortRange {
                start: 9000,
                end: 9010
            }
        ]
    );
    assert_eq!(r.labels.get("team").map(String::as_str), Some("ml"));
    assert_eq!(
        r.image_id,
        Some(ImageId::Single("docker:pytorch/pytorch:latest".into()))
    );
    assert_eq!(
        r.autostop,
        Some(Autostop {
            enabled: true,
            idle_minutes: Some(10),
            ..Autostop::default()
        })
    );
    let rec = JobRecovery {
        strategy: s("FAILOVER"),
        max_restarts_on_errors: Some(3),
        recover_on_exit_codes: vec![],
    };
    assert_eq!(r.job_recovery, Some(rec));
    assert_eq!(r.max_hourly_cost, Some(40.0));
    assert_eq!(r.extra.get("priority"), Some(&Value::from(10)));
    assert_eq!(t.envs.get("EPOCHS"), Some(&s("3")));
    assert_eq!(t.required_envs(), vec!["HF_TOKEN"]);
    assert_eq!(t.required_secrets(), vec!["WANDB_API_KEY"]);
    assert_eq!(
        t.file_mounts.get("/remote/data"),
        Some(&FileMount::Path("./local/data".into()))
    );
    let Some(FileMount::Storage(st)) = t.file_mounts.get("/ckpt/llama-3") else {
        panic!("{:?}", t.file_mounts);
    };
    assert_eq!(st.name, s("my-bucket-ckpt"));
    assert_eq!(st.source, vec!["s3://my-bucket/ckpt".to_string()]);
    assert_eq!(
        (st.store.as_deref(), st.persistent, st.mode),
        (Some("s3"), Some(false), Some(StorageMode::MountCached))
    );
    assert!(st.config.is_some());
    assert!(t.config.is_some());
    // Secret values never show.
    let mut t = t;
    assert_eq!(
        t.apply_secret_overrides(&[("WANDB_API_KEY".into(), "my-secret".into())]),
        Ok(())
    );
    let json = serde_json::to_string(&t).unwrap_or_default();
    assert!(
        json.contains("\"secrets\":{\"WANDB_API_KEY\":\"<redacted>\"}"),
        "{json}"
    );
    assert!(!json.contains("my-secret") && !format!("{t:?}").contains("my-secret"));
    assert_eq!(t.secrets.get("WANDB_API_KEY"), Some(&s("my-secret")));
}

#[test]
fn resource_field_forms() {
    let r = |y: &str| only(&parse(&format!("resources:\n  {y}\n"))).clone();
    assert_eq!(
        r("cpus: 4").cpus,
        Some(Quantity {
            value: 4.0,
            plus: false
        })
    );
    assert_eq!(
        r("cpus: 0.5").cpus,
        Some(Quantity {
            value: 0.5,
            plus: false
        })
    );
    assert_eq!(
        r("memory: 512MB").memory,
        Some(Quantity {
            value: 0.5,
            plus: false
        })
    );
    assert_eq!(
        r("ports: 8080").ports,
        vec![PortRange {
            start: 8080,
            end: 8080
        }]
    );
    assert_eq!(
        r("ports: '10-20'").ports,
        vec![PortRange { start: 10, end: 20 }]
    );
    assert_eq!(r("disk_size: 1TB").disk_size, Some(1024));
    assert_eq!(r("autostop: false").autostop, Some(Autostop::default()));
    assert_eq!(
        r("autostop: true").autostop,
        Some(Autostop {
            enabled: true,
            ..Autostop::default()
        })
    );
    assert_eq!(
        r("autostop: 30").autostop.and_then(|a| a.idle_minutes),
        Some(30)
    );
    assert_eq!(
        r("autostop: 2h").autostop.and_then(|a| a.idle_minutes),
        Some(120)
    );
    let a = Autostop {
        enabled: true,
        idle_minutes: Some(10),
        down: true,
        wait_for: Some(AutostopWaitFor::Jobs),
        hook: None,
        hook_timeout: None,
    };
    assert_eq!(
        r("autostop: {idle_minutes: 10, down: true, wait_for: JOBS}").autostop,
        Some(a)
    );
    let rec = |strategy: &str| {
        Some(JobRecovery {
            strategy: s(strategy),
            ..JobRecovery::default()
        })
    };
    assert_eq!(r("spot_recovery: FAILOVER").job_recovery, rec("FAILOVER"));
    assert_eq!(
        r("job_recovery: EAGER_NEXT_REGION").job_recovery,
        rec("EAGER_NEXT_REGION")
    );
    let codes = r("job_recovery: {recover_on_exit_codes: [33, 34]}")
        .job_recovery
        .map(|j| j.recover_on_exit_codes);
    assert_eq!(codes, Some(vec![33, 34]));
    let per_region = r("image_id: {us-east-1: ami-1, us-west-2: ami-2}").image_id;
    let Some(ImageId::PerRegion(m)) = per_region else {
        panic!("{per_region:?}")
    };
    assert_eq!(m.get("us-west-2").map(String::as_str), Some("ami-2"));
    let labels = r("labels: {team: ml, tier: 1}").labels;
    assert_eq!(labels.get("tier").map(String::as_str), Some("1"));
    let extra = r("accelerator_args: {tpu_vm: true}\n  network_tier: best\n  local_disk: nvme");
    assert!(extra.accelerator_args.is_some());
    assert_eq!(extra.network_tier, s("best"));
    assert!(extra.extra.contains_key("local_disk"));
    assert!(!r("use_spot: off").use_spot && r("use_spot: True").use_spot);
}

#[test]
fn accelerator_forms() {
    assert_eq!(accels("A100"), acc(&[("A100", 1.0)], false));
    assert_eq!(accels("A100:8"), acc(&[("A100", 8.0)], false));
    assert_eq!(accels("L4:0.5"), acc(&[("L4", 0.5)], false));
    assert_eq!(accels("tpu-v2-8"), acc(&[("tpu-v2-8", 1.0)], false));
    assert_eq!(accels("{A100: 8}"), acc(&[("A100", 8.0)], false));
    assert_eq!(
        accels("{A100: 8, H100: 8}"),
        acc(&[("A100", 8.0), ("H100", 8.0)], false)
    );
    assert_eq!(
        accels("{A100:8, V100:8}"),
        acc(&[("A100", 8.0), ("V100", 8.0)], false)
    );
    assert_eq!(
        accels("!!set {A100:8, V100:4}"),
        acc(&[("A100", 8.0), ("V100", 4.0)], false)
    );
    assert_eq!(
        accels("['A100:8', 'H100:8']"),
        acc(&[("A100", 8.0), ("H100", 8.0)], true)
    );
    assert_eq!(
        accels("\n    - H100:8\n    - A100-80GB:8"),
        acc(&[("H100", 8.0), ("A100-80GB", 8.0)], true)
    );
    assert_eq!(
        accels("\n    A100: 1\n    V100:"),
        acc(&[("A100", 1.0), ("V100", 1.0)], false)
    );
    assert_eq!(accels("[]"), None);
    assert_eq!(accels("null"), None);
}

#[test]
fn any_of_merges_over_base() {
    let t = parse(
        "resources:\n  accelerators: A100:8\n  labels: {team: ml}\n  any_of:\n    - infra: aws\n      labels: {env: prod}\n    - infra: gcp/us-central1\n      accelerators: H100:8\n",
    );
    assert_eq!(t.resources.order, Ordering::Cheapest);
    let [a, b] = &t.resources.candidates[..] else {
        panic!("{:?}", t.resources)
    };
    assert_eq!(
        (&a.infra, &a.accelerators),
        (
            &infra(Some("aws"), None, None),
            &acc(&[("A100", 8.0)], false)
        )
    );
    assert_eq!(a.labels.len(), 2);
    assert_eq!(b.infra, infra(Some("gcp"), Some("us-central1"), None));
    assert_eq!(b.accelerators, acc(&[("H100", 8.0)], false));
    assert_eq!(b.labels.keys().collect::<Vec<_>>(), vec!["team"]);
}

#[test]
fn ordered_and_merge_keys() {
    let t = parse("resources:\n  ordered:\n    - infra: gcp/us-east1\n    - infra: aws/us-east-1\n      use_spot: true\n");
    assert_eq!(t.resources.order, Ordering::InOrder);
    assert_eq!(t.resources.candidates.len(), 2);
    assert!(!t.resources.candidates[0].use_spot && t.resources.candidates[1].use_spot);
    let t = parse(
        "resources:\n  any_of:\n    - &a {infra: aws, cpus: 4+}\n    - <<: *a\n      infra: gcp\n",
    );
    let b = &t.resources.candidates[1];
    assert_eq!(
        (b.infra.provider.as_deref(), b.cpus),
        (
            Some("gcp"),
            Some(Quantity {
                value: 4.0,
                plus: true
            })
        )
    );
    // An empty list is just the base.
    assert_eq!(
        parse("resources:\n  cpus: 2\n  any_of: []\n")
            .resources
            .candidates
            .len(),
        1
    );
}

#[test]
fn infra_forms() {
    let i = |y: &str| only(&parse(&format!("resources:\n  {y}\n"))).infra.clone();
    assert_eq!(
        i("infra: k8s/my-ctx"),
        infra(Some("kubernetes"), Some("my-ctx"), None)
    );
    assert_eq!(i("infra: k8s/my-ctx").kubernetes_context(), Some("my-ctx"));
    assert_eq!(
        i("infra: kubernetes"),
        infra(Some("kubernetes"), None, None)
    );
    assert_eq!(i("infra: ssh/lab").ssh_pool(), Some("lab"));
    assert_eq!(
        i("infra: '*/us-east-1'"),
        infra(None, Some("us-east-1"), None)
    );
    assert_eq!(i("infra: '*'"), Infra::default());
    assert_eq!(i("infra: local"), infra(Some("local"), None, None));
    assert_eq!(
        i("infra: Lambda/us-east-1"),
        infra(Some("lambda"), Some("us-east-1"), None)
    );
    let legacy = "cloud: AWS\n  region: us-east-1\n  zone: us-east-1a";
    assert_eq!(
        i(legacy),
        infra(Some("aws"), Some("us-east-1"), Some("us-east-1a"))
    );
    assert_eq!(i(legacy).to_string(), "aws/us-east-1/us-east-1a");
}

#[test]
fn service_and_workdir() {
    let t = parse(
        r#"
envs:
  TOKEN: abc
service:
  readiness_probe:
    path: /v1/models
    post_data: {model: x}
    initial_delay_seconds: 1200
    timeout_seconds: 10
    headers: {Authorization: Bearer $TOKEN}
  replica_policy:
    min_replicas: 1
    max_replicas: 3
    target_qps_per_replica: 5
    upscale_delay_seconds: 300
    base_ondemand_fallback_replicas: 1
    dynamic_ondemand_fallback: true
  load_balancing_policy: least_load
  ports: 8080
workdir: {url: https://github.com/org/repo, ref: main}
"#,
    );
    let svc = t.service.clone().unwrap_or_default();
    let probe = svc.readiness_probe.unwrap_or_default();
    assert_eq!(probe.path, "/v1/models");
    assert_eq!(
        (probe.initial_delay_seconds, probe.timeout_seconds),
        (Some(1200.0), Some(10.0))
    );
    assert_eq!(
        probe.headers.get("Authorization").map(String::as_str),
        Some("Bearer abc")
    );
    let policy = svc.replica_policy.unwrap_or_default();
    assert_eq!((policy.min_replicas, policy.max_replicas), (1, Some(3)));
    assert_eq!(policy.target_qps_per_replica, Some(TargetQps::Uniform(5.0)));
    assert_eq!(policy.dynamic_ondemand_fallback, Some(true));
    assert_eq!(
        (svc.load_balancing_policy.as_deref(), svc.ports),
        (Some("least_load"), Some(8080))
    );
    let git = Workdir::Git {
        url: "https://github.com/org/repo".into(),
        git_ref: s("main"),
    };
    assert_eq!(t.workdir, Some(git));

    let t = parse("service:\n  readiness_probe: /health\n  replicas: 2\n");
    let svc = t.service.unwrap_or_default();
    assert_eq!(svc.readiness_probe.map(|p| p.path), s("/health"));
    assert_eq!(
        svc.replica_policy.map(|p| (p.min_replicas, p.max_replicas)),
        Some((2, Some(2)))
    );
}

#[test]
fn pipelines() {
    let p = Pipeline::parse("name: pipe\n---\nname: train\nrun: python train.py\n---\nname: eval\nrun: python eval.py\n---\n", "p.yaml");
    let p = p.map_err(|e| e.to_string());
    let p = match p {
        Ok(p) => p,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(p.name, s("pipe"));
    let names: Vec<_> = p.tasks.iter().map(|t| t.name.clone()).collect();
    assert_eq!(names, vec![s("train"), s("eval")]);
    // A lone `name:` is a task, not a pipeline header.
    let p = Pipeline::parse("name: solo\n", "p.yaml").map(|p| (p.name, p.tasks.len()));
    assert_eq!(p, Ok((None, 1)));
    let e = Task::parse("run: a\n---\nrun: b\n", "task.yaml")
        .map(|_| ())
        .map_err(|e| e.to_string());
    assert!(
        matches!(&e, Err(m) if m.starts_with("task.yaml:3:1:") && m.contains("holds 2 tasks")),
        "{e:?}"
    );
}

#[test]
fn env_substitution_and_required_values() {
    let yaml = "envs:\n  BUCKET:\n  DIR: /data\nfile_mounts:\n  $DIR/x: s3://${BUCKET}/x\n";
    let mut t = parse(yaml);
    assert_eq!(
        t.file_mounts.get("/data/x"),
        Some(&FileMount::Path("s3://${BUCKET}/x".into()))
    );
    let e = t.check_required().map_err(|e| e.to_string());
    assert_eq!(
        e,
        Err(
            "task.yaml:2:3: env `BUCKET` has no value\nhint: pass it with --env BUCKET=VALUE"
                .into()
        )
    );
    assert!(t
        .apply_env_overrides(&[("BUCKET".into(), "b".into()), ("NEW".into(), "1".into())])
        .is_ok());
    assert_eq!(
        t.file_mounts.get("/data/x"),
        Some(&FileMount::Path("s3://b/x".into()))
    );
    assert_eq!(t.check_required(), Ok(()));
    assert_eq!(t.envs.get("NEW"), Some(&s("1")));
    let bad = t.apply_env_overrides(&[("OK".into(), "v".into()), ("1X".into(), "v".into())]);
    let bad = bad.map_err(|e| e.to_string());
    assert!(
        matches!(&bad, Err(m) if m.starts_with("--env: invalid `name`: `1X` is not a valid variable name")),
        "{bad:?}"
    );
    assert_eq!(t.envs.get("OK"), None);
    // A section that needs a variable without a value waits for it; a value
    // that makes the section invalid is refused as a whole.
    let mut t = parse("envs:\n  M:\nfile_mounts:\n  /d: {name: b, mode: $M}\n");
    assert!(t.file_mounts.is_empty());
    let e = t.check_required().map_err(|e| e.to_string());
    assert!(
        matches!(&e, Err(m) if m.starts_with("task.yaml:2:3: env `M` has no value")),
        "{e:?}"
    );
    let bad = t
        .apply_env_overrides(&[("M".into(), "SYNC".into())])
        .map_err(|e| e.to_string());
    assert!(
        matches!(&bad, Err(m) if m.starts_with("task.yaml:4:23: invalid `file_mounts[\"/d\"].mode`: unknown mode `SYNC`")),
        "{bad:?}"
    );
    assert_eq!(t.envs.get("M"), Some(&None));
    assert_eq!(
        t.apply_env_overrides(&[("M".into(), "COPY".into())]),
        Ok(())
    );
    let Some(FileMount::Storage(st)) = t.file_mounts.get("/d") else {
        panic!("{:?}", t.file_mounts)
    };
    assert_eq!(st.mode, Some(StorageMode::Copy));
    // Errors that do not involve a missing variable are reported at once.
    let e = Task::parse(
        "envs:\n  M:\nfile_mounts:\n  /d: {name: b, mode: SYNC}\n",
        "task.yaml",
    )
    .map(|_| ());
    assert!(e.is_err());

    let mut t = parse("secrets:\n  KEY:\nservice:\n  readiness_probe: /h/${KEY}\n");
    let e = t.check_required().map_err(|e| e.to_string());
    assert!(
        matches!(&e, Err(m) if m.contains("secret `KEY`") && m.contains("--secret KEY=VALUE")),
        "{e:?}"
    );
    assert!(t
        .apply_secret_overrides(&[("KEY".into(), "k".into())])
        .is_ok());
    assert_eq!(
        t.service.and_then(|s| s.readiness_probe).map(|p| p.path),
        s("/h/k")
    );
}

#[test]
fn overrides_replace_fields_in_every_candidate() {
    let mut t = parse("resources:\n  any_of:\n    - {infra: aws, accelerators: A100:8}\n    - {infra: aws, accelerators: H100:8}\n");
    let o = Overrides {
        name: s("x"),
        gpus: s("L4:1"),
        cpus: s("8+"),
        memory: s("32"),
        use_spot: Some(true),
        num_nodes: Some(2),
        ports: vec!["8080,9000-9001".into()],
        disk_size: s("1TB"),
        env: vec![("A".into(), "1".into())],
        ..Overrides::default()
    };
    assert_eq!(t.apply_overrides(&o), Ok(()));
    assert_eq!((t.name.as_deref(), t.num_nodes), (Some("x"), 2));
    // Both candidates became the same: merged.
    let r = only(&t);
    assert_eq!(r.accelerators, acc(&[("L4", 1.0)], false));
    assert_eq!(
        (r.cpus, r.memory),
        (
            Some(Quantity {
                value: 8.0,
                plus: true
            }),
            Some(Quantity {
                value: 32.0,
                plus: false
            })
        )
    );
    assert_eq!(
        (r.use_spot, r.disk_size, r.ports.len()),
        (true, Some(1024), 2)
    );
    assert_eq!(t.envs.get("A"), Some(&s("1")));

    let mut t = parse("resources:\n  cloud: aws\n  region: us-east-1\n");
    assert_eq!(
        t.apply_overrides(&Overrides {
            infra: s("gcp"),
            ..Overrides::default()
        }),
        Ok(())
    );
    assert_eq!(only(&t).infra, infra(Some("gcp"), None, None));
}

#[test]
fn bad_overrides_change_nothing() {
    let cases: &[(Overrides, &str)] = &[
        (
            Overrides {
                gpus: s("A100:x"),
                ..Overrides::default()
            },
            "--gpus: invalid `accelerators`: count `x` in `A100:x`",
        ),
        (
            Overrides {
                infra: s("a/b/c/d"),
                ..Overrides::default()
            },
            "--infra: invalid `infra`",
        ),
        (
            Overrides {
                cpus: s("many"),
                ..Overrides::default()
            },
            "--cpus: invalid `cpus`: `many` is not a number",
        ),
        (
            Overrides {
                num_nodes: Some(0),
                ..Overrides::default()
            },
            "--num-nodes: invalid `num_nodes`",
        ),
        (
            Overrides {
                ports: vec!["99999".into()],
                ..Overrides::default()
            },
            "--ports: invalid `ports`: port 99999",
        ),
        (
            Overrides {
                disk_tier: s("fast"),
                ..Overrides::default()
            },
            "--disk-tier:",
        ),
        (
            Overrides {
                name: s(" "),
                ..Overrides::default()
            },
            "--name:",
        ),
        (
            Overrides {
                env: vec![("1A".into(), "x".into())],
                ..Overrides::default()
            },
            "--env:",
        ),
        (
            Overrides {
                secret: vec![("A-B".into(), "x".into())],
                ..Overrides::default()
            },
            "--secret:",
        ),
    ];
    for (o, want) in cases {
        let mut t = parse("name: keep\nresources:\n  accelerators: A100:8\n");
        let e = t.apply_overrides(&Overrides {
            name: o.name.clone().or(s("changed")),
            ..o.clone()
        });
        let e = e.map_err(|e| e.to_string());
        assert!(
            matches!(&e, Err(m) if m.starts_with(want) && m.contains("\nhint: ")),
            "{want}: {e:?}"
        );
        assert_eq!(
            (t.name.as_deref(), &only(&t).accelerators),
            (Some("keep"), &acc(&[("A100", 8.0)], false))
        );
    }
}

/// Malformed YAML -> substrings of the rendered error, in order.
const MALFORMED: &[(&str, &[&str])] = &[
    // Unknown keys, at every level.
    ("resources:\n  acelerators: A100\n", &["task.yaml:2:3: unknown key `acelerators` in resources", "hint: did you mean `accelerators`?"]),
    ("nmae: x\n", &["task.yaml:1:1: unknown key `nmae` in task", "did you mean `name`?"]),
    ("resources:\n  zzzz: 1\n", &["unknown key `zzzz`", "hint: valid keys here: `infra`, `cloud`"]),
    ("accelerators: A100\n", &["unknown key `accelerators` in task", "belongs under `resources:`"]),
    ("resources:\n  num_nodes: 2\n", &["unknown key `num_nodes` in resources", "is a task key"]),
    ("resources:\n  any_of:\n    - cloud: aws\n    - clod: gcp\n", &["task.yaml:4:7: unknown key `clod` in resources.any_of[1]", "`cloud`"]),
    ("resources:\n  any_of:\n    - ordered: []\n", &["unknown key `ordered`", "cannot be nested"]),
    ("service:\n  readiness_probe:\n    pth: /x\n", &["3:5: unknown key `pth` in service.readiness_probe", "`path`"]),
    ("service:\n  replica_policy:\n    min_replicas: 1\n    max_replica: 2\n", &["unknown key `max_replica`", "`max_replicas`"]),
    ("file_mounts:\n  /d:\n    name: b\n    mod: COPY\n", &["4:5: unknown key `mod` in file_mounts[\"/d\"]", "`mode`"]),
    ("resources:\n  autostop: {idle_minute: 5}\n", &["unknown key `idle_minute` in resources.autostop", "`idle_minutes`"]),
    ("resources:\n  job_recovery: {strategy: X, retries: 3}\n", &["unknown key `retries` in resources.job_recovery"]),
    ("workdir: {url: x, branch: main}\n", &["unknown key `branch` in workdir", "valid keys here: `url`, `ref`"]),
    // Wrong types and ranges.
    ("num_nodes: two\n", &["task.yaml:1:12: invalid `num_nodes`: expected a whole number >= 1, found a string `two`"]),
    ("num_nodes: 0\n", &["1:12: invalid `num_nodes`: expected a whole number >= 1, found `0`"]),
    ("num_nodes: 1.5\n", &["invalid `num_nodes`", "found a number `1.5`"]),
    ("resources:\n  cpus: [1]\n", &["2:9: invalid `resources.cpus`: expected a number or a string like `4+`, found a list"]),
    ("resources:\n  memory: lots\n", &["invalid `resources.memory`: `lots` is not a number", "`64GB`"]),
    ("resources:\n  use_spot: maybe\n", &["2:13: invalid `resources.use_spot`: expected true or false, found a string `maybe`"]),
    ("resources:\n  ports: 99999\n", &["2:10: invalid `resources.ports`: port 99999 is out of range 1-65535", "`8080-8090`"]),
    ("resources:\n  ports: [80, '90-85']\n", &["2:15: invalid `resources.ports[1]`: range `90-85` starts after it ends"]),
    ("resources:\n  ports: [80, 1.5]\n", &["invalid `resources.ports[1]`"]),
    ("resources:\n  disk_tier: fast\n", &["unknown disk tier `fast`", "`ultra`"]),
    ("resources:\n  disk_size: 10.5\n", &["invalid `resources.disk_size`"]),
    ("resources:\n  max_hourly_cost: -1\n", &["invalid `resources.max_hourly_cost`: must be more than 0"]),
    ("resources:\n  labels: {a: [1]}\n", &["invalid `resources.labels.a`: expected a string, found a list"]),
    ("resources: [cpus]\n", &["1:12: invalid `resources`: expected a mapping, found a list", "`accelerators`"]),
    ("resources: !custom {cpus: 4}\n", &["invalid `resources`: expected a mapping, found a value tagged `!custom`"]),
    ("run: {a: 1}\n", &["invalid `run`: expected a string"]),
    ("envs: [A, B]\n", &["invalid `envs`: expected a mapping of names to values, found a list"]),
    ("envs:\n  1BAD: x\n", &["2:3: invalid `envs.1BAD`: `1BAD` is not a valid variable name"]),
    ("envs:\n  A: [x]\n", &["invalid `envs.A`: expected a string"]),
    ("workdir: {ref: main}\n", &["invalid `workdir`: a git workdir needs `url`"]),
    ("workdir: 5\n", &["invalid `workdir`: expected a path or `{url, ref}`"]),
    ("config: 5\n", &["invalid `config`: expected a mapping"]),
    // Conflicts.
    ("resources:\n  infra: aws\n  region: us-east-1\n", &["3:3: `resources.region` cannot be used together with `resources.infra`", "hint: write the location once"]),
    ("resources:\n  infra: aws\n  any_of:\n    - cloud: gcp\n", &["4:7: `resources.any_of[0].cloud` cannot be used together with `resources.infra`"]),
    ("resources:\n  any_of: [{cloud: aws}]\n  ordered: [{cloud: gcp}]\n", &["3:3: `resources.ordered` cannot be used together with `resources.any_of`"]),
    ("resources:\n  spot_recovery: A\n  job_recovery: B\n", &["`resources.spot_recovery` cannot be used together with `resources.job_recovery`"]),
    ("service:\n  replicas: 2\n  replica_policy: {min_replicas: 1}\n", &["`service.replicas` cannot be used together with `service.replica_policy`"]),
    // Accelerators.
    ("resources:\n  accelerators: A100:x\n", &["2:17: invalid `resources.accelerators`: count `x` in `A100:x` is not a number", "`NAME:COUNT`"]),
    ("resources:\n  accelerators: ':8'\n", &["`:8` has no accelerator name"]),
    ("resources:\n  accelerators: A100:-1\n", &["count in `A100:-1` must be more than 0"]),
    ("resources:\n  accelerators: A100:8:2\n", &["`A100:8:2` has more than one `:`"]),
    ("resources:\n  accelerators: A100:0\n", &["must be more than 0"]),
    ("resources:\n  accelerators: {A100: 0}\n", &["invalid `resources.accelerators.A100`: count in `A100:0` must be more than 0"]),
    ("resources:\n  accelerators: {A100: x}\n", &["invalid `resources.accelerators.A100`: expected a count"]),
    ("resources:\n  accelerators: [A100:8, 5]\n", &["2:26: invalid `resources.accelerators[1]`: expected a string `NAME:COUNT`, found a number `5`"]),
    ("resources:\n  accelerators: 8\n", &["invalid `resources.accelerators`: expected a string, mapping or list"]),
    // Infra.
    ("resources:\n  infra: aws//us-east-1\n", &["2:10: invalid `resources.infra`: `aws//us-east-1` has an empty part", "`cloud/region/zone`"]),
    ("resources:\n  infra: a/b/c/d\n", &["invalid `resources.infra`: `a/b/c/d` has more than 3 parts"]),
    ("resources:\n  infra: 'my cloud'\n", &["`my cloud` is not a provider name"]),
    ("resources:\n  cloud: 'a_b'\n", &["invalid `resources.cloud`: `a_b` is not a provider name"]),
    ("resources:\n  infra: 5\n", &["invalid `resources.infra`: expected a string, found a number `5`"]),
    // Autostop.
    ("resources:\n  autostop: soon\n", &["2:13: invalid `resources.autostop`: `soon` is not a duration", "`10m`"]),
    ("resources:\n  autostop: -5\n", &["invalid `resources.autostop`"]),
    ("resources:\n  autostop: {wait_for: never}\n", &["unknown mode `never`"]),
    // Service and storage.
    ("service:\n  replica_policy: {max_replicas: 2}\n", &["invalid `service.replica_policy`: `min_replicas` is missing"]),
    ("service:\n  replica_policy: {min_replicas: 3, max_replicas: 2}\n", &["`max_replicas` must be >= `min_replicas`"]),
    ("service:\n  readiness_probe: health\n", &["path `health` must start with `/`"]),
    ("service:\n  readiness_probe: {timeout_seconds: 5}\n", &["`path` is missing"]),
    ("file_mounts:\n  /d: {mode: COPY}\n", &["invalid `file_mounts[\"/d\"]`: a storage object needs `name` or `source`"]),
    ("file_mounts:\n  /d: {name: b, mode: SYNC}\n", &["unknown mode `SYNC`", "`MOUNT_CACHED`"]),
    ("file_mounts:\n  /d: 5\n", &["expected a local path, bucket URL or storage object"]),
    ("file_mounts: [a]\n", &["invalid `file_mounts`: expected a mapping"]),
    // Syntax and shape.
    ("run: [unclosed\n", &["task.yaml:2:1: invalid YAML:", "hint: check the indentation"]),
    ("a: 1\n a: 2\n", &["task.yaml:2:3: invalid YAML: mapping values are not allowed in this context"]),
    ("name: a\nname: b\n", &["task.yaml:2:1: invalid YAML: duplicate", "hint: each key may appear once"]),
    ("resources:\n\tcpus: 4\n", &["invalid YAML", "tab"]),
    ("- run: x\n", &["task.yaml:1:1: invalid `task`: a task is a mapping of keys, found a list", "hint: start with keys"]),
    ("just a string\n", &["a task is a mapping of keys, found a string `just a string`"]),
    ("resources:\n  <<: 5\n", &["bad `<<` merge"]),
    ("1: x\n", &["task.yaml:1:1: invalid `1`: keys must be strings"]),
    ("run: a\n---\nnum_nodes: x\n", &["task.yaml:3:12: invalid `num_nodes`"]),
];

#[test]
fn malformed_yaml_gives_located_errors_with_hints() {
    let mut failures = Vec::new();
    for (yaml, wants) in MALFORMED {
        let got = match Pipeline::parse(yaml, "task.yaml") {
            Ok(p) => format!("parsed OK: {p:?}"),
            Err(e) => e.to_string(),
        };
        let shaped =
            got.starts_with("task.yaml:") && got.lines().count() == 2 && got.contains("\nhint: ");
        let mut rest = got.as_str();
        let mut ok = shaped;
        for want in wants.iter() {
            match rest.find(want) {
                Some(i) => rest = &rest[i + want.len()..],
                None => ok = false,
            }
        }
        if !ok {
            failures.push(format!("{yaml:?}\n  want {wants:?}\n  got  {got:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        MALFORMED.len(),
        failures.join("\n")
    );
}
