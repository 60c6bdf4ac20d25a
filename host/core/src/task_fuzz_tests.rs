//! Property tests: no input makes the task parser panic, and every error
//! renders as `file...: reason` plus a `hint:` line.
//!
//! Inputs: random text, YAML token soup, random mappings over the known
//! keys, task-shaped documents (both serialized by serde_yaml), and
//! mutations of valid tasks.
//! `fuzz_long` (ignored) runs many cases; `ALOFT_FUZZ_CASES` sets how many:
//!
//! ```text
//! ALOFT_FUZZ_CASES=200000 cargo test -p aloft-core --release fuzz_long -- --ignored --nocapture
//! ```

use super::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

/// Keys the generators draw from: the parser's own key lists, plus keys of
/// the nested sections and a few YAML oddities.
const EXTRA_KEYS: &[&str] = &[
    "readiness_probe",
    "replica_policy",
    "replicas",
    "load_balancing_policy",
    "path",
    "post_data",
    "initial_delay_seconds",
    "timeout_seconds",
    "headers",
    "min_replicas",
    "max_replicas",
    "target_qps_per_replica",
    "upscale_delay_seconds",
    "source",
    "store",
    "persistent",
    "mode",
    "idle_minutes",
    "down",
    "wait_for",
    "strategy",
    "max_restarts_on_errors",
    "recover_on_exit_codes",
    "url",
    "ref",
    "<<",
    "A100",
    "/data",
    "BUCKET",
    "X",
];

fn keys() -> Vec<&'static str> {
    let mut all: Vec<&'static str> = super::parse::TASK_KEYS.to_vec();
    all.extend_from_slice(super::resources::RESOURCES_KEYS);
    all.extend_from_slice(EXTRA_KEYS);
    all
}

const STRINGS: &[&str] = &[
    "",
    "A100",
    "A100:8",
    "A100:0.5",
    "A100:x",
    ":8",
    "A100:-1",
    "A100:8:2",
    "{A100:8, V100:8}",
    "aws",
    "aws/us-east-1",
    "aws/us-east-1/us-east-1a",
    "*",
    "*/us-east-1",
    "*/*/z",
    "k8s",
    "k8s/a/b",
    "ssh/pool",
    "local",
    "aws//x",
    "a/b/c/d",
    "4",
    "4+",
    "0.5+",
    "32GB+",
    "1TB",
    "x+",
    "8080",
    "8080-8090",
    "9-8",
    "99999",
    "10m",
    "1h",
    "2d",
    "soon",
    "MOUNT",
    "COPY",
    "MOUNT_CACHED",
    "s3://${BUCKET}/x",
    "$X",
    "${X}",
    "${",
    "$",
    "yes",
    "no",
    "on",
    "off",
    "null",
    "~",
    "/health",
    "health",
    "FAILOVER",
    "high",
    "best",
    "jobs",
    "-",
    "+",
    "\u{1F680}",
    "ü:1",
    "a\nb",
    "\t",
    "'",
    "\"",
    "#",
];

const TOKENS: &[&str] = &[
    ":",
    ": ",
    "- ",
    "-",
    "{",
    "}",
    "[",
    "]",
    ", ",
    "\n",
    "\n  ",
    "\n    ",
    "  ",
    "&a ",
    "*a",
    "<<: ",
    "!!set ",
    "!!str ",
    "!tag ",
    "---\n",
    "...\n",
    "? ",
    "|\n  ",
    ">\n  ",
    "'",
    "\"",
    "#",
    "%YAML 1.2\n",
    "~",
    "null",
    "true",
    "1",
    "-1",
    "0",
    "1.5",
    ".nan",
    "0x1F",
    "1e999",
    "resources",
    "accelerators",
    "any_of",
    "ordered",
    "infra",
    "cpus",
    "ports",
    "envs",
    "file_mounts",
    "service",
    "A100:8",
    "aws/us-east-1",
    "${X}",
    "\t",
    "\r\n",
    "\u{FEFF}",
];

const CORPUS: &[&str] = &[
    "run: echo hi\n",
    "name: t\nresources:\n  infra: aws/us-east-1\n  accelerators: {A100: 8, H100: 8}\n  cpus: 8+\n  ports: [8080, '9000-9010']\n  autostop: {idle_minutes: 10, down: true}\nrun: |\n  python x.py\n",
    "resources:\n  accelerators: A100:8\n  any_of:\n    - infra: aws\n      labels: {a: b}\n    - &g {infra: gcp, use_spot: true}\n    - <<: *g\n      cpus: 4\n",
    "resources:\n  ordered:\n    - cloud: gcp\n      region: us-east1\n    - infra: k8s/ctx\n",
    "envs:\n  BUCKET: b\n  TOKEN:\nsecrets:\n  KEY: null\nfile_mounts:\n  /data: s3://${BUCKET}/d\n  /ckpt:\n    name: ${BUCKET}-c\n    source: [./a, ./b]\n    mode: MOUNT_CACHED\n    config: {mount_cached: {transfers: 8}}\nworkdir: {url: 'https://x/${BUCKET}', ref: main}\n",
    "service:\n  readiness_probe:\n    path: /v1/models\n    post_data: {model: x}\n    headers: {A: b}\n  replica_policy:\n    min_replicas: 1\n    max_replicas: 3\n    target_qps_per_replica: {H100:1: 5}\n  ports: 8080\n",
    "name: p\n---\nname: a\nrun: x\n---\nname: b\nnum_nodes: 2\nresources: {accelerators: ['A100:8', 'H100:8'], job_recovery: {strategy: FAILOVER, recover_on_exit_codes: [1, 2]}}\n",
];

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-3i64..70000).prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        prop::sample::select(STRINGS).prop_map(|s| Value::String(s.to_string())),
        "[ -~]{0,12}".prop_map(Value::String),
        any::<String>().prop_map(Value::String),
    ]
}

fn key() -> impl Strategy<Value = Value> {
    prop_oneof![
        6 => prop::sample::select(keys()).prop_map(|k| Value::String(k.to_string())),
        1 => scalar(),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Sequence),
            prop::collection::vec((key(), inner), 0..6)
                .prop_map(|kv| Value::Mapping(kv.into_iter().collect())),
        ]
    })
}

/// A task-shaped mapping, serialized; sometimes several documents.
fn structured() -> impl Strategy<Value = String> {
    let doc = prop::collection::vec((key(), value()), 0..8).prop_map(|kv| {
        let map: serde_yaml::Mapping = kv.into_iter().collect();
        serde_yaml::to_string(&Value::Mapping(map)).unwrap_or_default()
    });
    prop::collection::vec(doc, 1..3).prop_map(|docs| docs.join("---\n"))
}

/// A scalar, a short list or a short mapping, biased towards values the
/// fields accept.
fn leaf() -> BoxedStrategy<Value> {
    let s = || prop::sample::select(STRINGS).prop_map(|s| Value::String(s.to_string()));
    prop_oneof![
        4 => s(),
        1 => (0i64..10).prop_map(Value::from),
        2 => scalar(),
        1 => prop::collection::vec(s(), 0..3).prop_map(Value::Sequence),
        1 => prop::collection::vec((prop::sample::select(keys()), scalar()), 0..3)
            .prop_map(|kv| Value::Mapping(kv.into_iter().map(|(k, v)| (Value::from(k), v)).collect())),
    ]
    .boxed()
}

fn map_of(keys: &'static [&'static str], max: usize) -> BoxedStrategy<Value> {
    prop::collection::vec((prop::sample::select(keys), leaf()), 0..max)
        .prop_map(|kv| Value::Mapping(kv.into_iter().map(|(k, v)| (Value::from(k), v)).collect()))
        .boxed()
}

/// Documents that follow the task layout, so values reach the field
/// validators rather than failing on an unknown key.
fn shaped() -> impl Strategy<Value = String> {
    const SERVICE: &[&str] = &[
        "readiness_probe",
        "replica_policy",
        "replicas",
        "ports",
        "load_balancing_policy",
    ];
    const NESTED: &[&str] = &[
        "path",
        "post_data",
        "initial_delay_seconds",
        "headers",
        "min_replicas",
        "max_replicas",
        "target_qps_per_replica",
        "dynamic_ondemand_fallback",
        "name",
        "source",
        "store",
        "mode",
        "persistent",
        "config",
    ];
    let entry = map_of(super::resources::SINGLE_KEYS, 4);
    let lists = prop::option::of((
        prop::sample::select(&["any_of", "ordered"][..]),
        prop::collection::vec(entry.clone(), 0..3),
    ));
    let resources = (entry, lists).prop_map(|(mut base, lists)| {
        if let (Value::Mapping(m), Some((k, items))) = (&mut base, lists) {
            m.insert(Value::from(k), Value::Sequence(items));
        }
        base
    });
    let nested = || prop_oneof![leaf(), map_of(NESTED, 5)];
    let service = prop::collection::vec((prop::sample::select(SERVICE), nested()), 0..4);
    let mounts = prop::collection::vec(
        (
            prop::sample::select(&["/a", "/b/$X", "${BUCKET}", "~/c"][..]),
            nested(),
        ),
        0..3,
    );
    let envs = prop::collection::vec(
        (
            prop::sample::select(&["X", "BUCKET", "A_1", "1A"][..]),
            leaf(),
        ),
        0..3,
    );
    let top = (
        prop::option::of(resources),
        service,
        mounts,
        envs,
        prop::option::of(leaf()),
        prop::option::of(leaf()),
    );
    top.prop_map(|(resources, service, mounts, envs, num_nodes, workdir)| {
        let pairs = |kv: Vec<(&str, Value)>| {
            Value::Mapping(kv.into_iter().map(|(k, v)| (Value::from(k), v)).collect())
        };
        let mut doc = serde_yaml::Mapping::new();
        doc.insert("run".into(), "echo".into());
        if let Some(r) = resources {
            doc.insert("resources".into(), r);
        }
        if !service.is_empty() {
            doc.insert("service".into(), pairs(service));
        }
        if !mounts.is_empty() {
            doc.insert("file_mounts".into(), pairs(mounts));
        }
        if !envs.is_empty() {
            doc.insert("envs".into(), pairs(envs));
        }
        if let Some(n) = num_nodes {
            doc.insert("num_nodes".into(), n);
        }
        if let Some(w) = workdir {
            doc.insert("workdir".into(), w);
        }
        serde_yaml::to_string(&Value::Mapping(doc)).unwrap_or_default()
    })
}

fn soup() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(TOKENS), 0..40).prop_map(|t| t.concat())
}

/// A valid task with random edits: delete, insert a token, duplicate a
/// line, or replace a byte range.
fn mutated() -> impl Strategy<Value = String> {
    let edit = (
        0u8..4,
        any::<prop::sample::Index>(),
        any::<prop::sample::Index>(),
        prop::sample::select(TOKENS),
    );
    (
        prop::sample::select(CORPUS),
        prop::collection::vec(edit, 1..6),
    )
        .prop_map(|(base, edits)| {
            let mut chars: Vec<char> = base.chars().collect();
            for (op, a, b, token) in edits {
                let len = chars.len().max(1);
                let i = a.index(len).min(chars.len());
                let j = (i + b.index(8)).min(chars.len());
                match op {
                    0 => {
                        chars.drain(i..j);
                    }
                    1 => {
                        chars.splice(i..i, token.chars());
                    }
                    2 => {
                        let text: String = chars.iter().collect();
                        let lines: Vec<&str> = text.split_inclusive('\n').collect();
                        let k = a
                            .index(lines.len().max(1))
                            .min(lines.len().saturating_sub(1));
                        let mut out = lines.clone();
                        if let Some(line) = lines.get(k) {
                            out.insert(k, line);
                        }
                        chars = out.concat().chars().collect();
                    }
                    _ => {
                        chars.splice(i..j, token.chars());
                    }
                }
            }
            chars.into_iter().collect()
        })
}

fn any_input() -> impl Strategy<Value = String> {
    prop_oneof![
        1 => any::<String>(),
        1 => "[ -~\n\t]{0,200}",
        2 => soup(),
        2 => structured(),
        4 => shaped(),
        3 => mutated(),
    ]
}

/// The property: parse never panics, errors are shaped, and a parsed task
/// survives the rest of the API. Returns whether the text parsed.
fn check(text: &str) -> Result<bool, TestCaseError> {
    let parsed = match Pipeline::parse(text, "f.yaml") {
        Ok(p) => {
            prop_assert!(!p.tasks.is_empty());
            for mut t in p.tasks {
                prop_assert!(t.num_nodes >= 1 && !t.resources.candidates.is_empty());
                let _ = t.check_required();
                let _ = serde_json::to_string(&t);
                let _ = format!("{t:?}");
                let o = Overrides {
                    gpus: Some("A100:1".into()),
                    ports: vec!["80".into()],
                    env: vec![("X".into(), "$X".into())],
                    ..Overrides::default()
                };
                let _ = t.apply_overrides(&o);
                let _ = t.apply_secret_overrides(&[("BUCKET".into(), "b".into())]);
            }
            true
        }
        Err(e) => {
            let m = e.to_string();
            prop_assert!(m.starts_with("f.yaml") && m.contains("\nhint: "), "{}", m);
            false
        }
    };
    let _ = Task::parse(text, "f.yaml");
    let _ = parse_env_file(text, ".env");
    Ok(parsed)
}

proptest! {
    #![proptest_config(Config { cases: 2000, failure_persistence: None, ..Config::default() })]

    #[test]
    fn never_panics(text in any_input()) {
        check(&text)?;
    }
}

#[test]
fn corpus_parses() {
    for text in CORPUS {
        if let Err(e) = Pipeline::parse(text, "c.yaml") {
            panic!("{text}\n{e}");
        }
    }
}

#[test]
fn alias_bombs_are_bounded() {
    let mut text = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 0..9u8 {
        let (prev, next) = ((b'a' + i) as char, (b'b' + i) as char);
        text.push_str(&format!("{next}: &{next} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"));
    }
    let started = std::time::Instant::now();
    assert!(Pipeline::parse(&text, "bomb.yaml").is_err());
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

#[test]
#[ignore = "long fuzz run; set ALOFT_FUZZ_CASES"]
fn fuzz_long() {
    let cases: u32 = std::env::var("ALOFT_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
    let (count, ok) = (AtomicU64::new(0), AtomicU64::new(0));
    let started = std::time::Instant::now();
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&any_input(), |text| {
        count.fetch_add(1, Relaxed);
        if check(&text)? {
            ok.fetch_add(1, Relaxed);
        }
        Ok(())
    });
    let (n, ok) = (count.load(Relaxed), ok.load(Relaxed));
    println!(
        "fuzz_long: {n} executions ({ok} parsed, {} rejected) in {:.1?}: {result:?}",
        n - ok,
        started.elapsed()
    );
    assert!(result.is_ok(), "{result:?}");
}
