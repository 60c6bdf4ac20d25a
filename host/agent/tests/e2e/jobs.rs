//! Jobs: environment, setup, cancel, queueing, secrets, exit codes.

use crate::util::{pid_alive, wait_for_file, wait_until, Cluster};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// Splits multi-node logs into each rank's lines, checking the prefix.
fn lines_by_rank(logs: &str) -> BTreeMap<u32, Vec<String>> {
    let mut out: BTreeMap<u32, Vec<String>> = BTreeMap::new();
    for line in logs.lines() {
        let (prefix, text) = line
            .split_once(") ")
            .unwrap_or_else(|| panic!("no prefix: {line:?}"));
        let fields: Vec<&str> = prefix.trim_start_matches('(').split(", ").collect();
        let rank: u32 = fields[1].strip_prefix("rank=").unwrap().parse().unwrap();
        let role = if rank == 0 {
            "head".to_string()
        } else {
            format!("worker{rank}")
        };
        assert_eq!(fields[0], role, "{line}");
        assert!(
            fields[2]
                .strip_prefix("pid=")
                .unwrap()
                .parse::<i32>()
                .is_ok(),
            "{line}"
        );
        out.entry(rank).or_default().push(text.to_string());
    }
    out
}

#[test]
fn two_node_job_sees_every_skypilot_variable() {
    let c = Cluster::new(&[(2.0, &[0, 1]), (2.0, &[0, 1])]);
    std::fs::create_dir_all(c.home_file(0, "sky_workdir")).unwrap();
    c.ensure();
    let run = r#"
for v in NODE_RANK NUM_NODES NUM_GPUS_PER_NODE TASK_ID CLUSTER_INFO INTERNAL_JOB_ID; do
  eval "s=\$SKYPILOT_$v; a=\$ALOFT_$v"
  echo "$v=$s"
  [ "$s" = "$a" ] || echo "MISMATCH $v"
done
echo "NODE_IPS=$(printf %s "$SKYPILOT_NODE_IPS" | tr '\n' ,)"
[ "$SKYPILOT_NODE_IPS" = "$ALOFT_NODE_IPS" ] || echo "MISMATCH NODE_IPS"
echo "CUDA=$CUDA_VISIBLE_DEVICES"
echo "HOME=$HOME"
echo "PWD=$(pwd)"
echo "MY=$MY"
"#;
    let id = c.submit(
        json!({"name": "env", "run": run, "num_nodes": 2, "gpus": 1, "envs": {"MY": "value"}}),
    );
    let r = c.agent("logs", &[&id.to_string(), "--follow"]);
    assert_eq!(r.status, 0, "{}\n{}", r.stderr, c.daemon_log());
    let by_rank = lines_by_rank(&r.stdout);
    assert_eq!(by_rank.len(), 2, "{}", r.stdout);
    let mut task_ids = Vec::new();
    for (rank, lines) in &by_rank {
        let get = |k: &str| {
            lines
                .iter()
                .find_map(|l| l.strip_prefix(&format!("{k}=")))
                .unwrap_or_else(|| panic!("no {k} in {lines:?}"))
                .to_string()
        };
        assert!(
            !lines.iter().any(|l| l.starts_with("MISMATCH")),
            "{lines:?}"
        );
        assert_eq!(get("NODE_RANK"), rank.to_string());
        assert_eq!(get("NUM_NODES"), "2");
        assert_eq!(get("NUM_GPUS_PER_NODE"), "1");
        assert_eq!(get("NODE_IPS"), "127.0.0.1,127.0.0.2");
        assert_eq!(get("INTERNAL_JOB_ID"), id.to_string());
        assert_eq!(get("CUDA"), "0");
        assert_eq!(get("MY"), "value");
        let task = get("TASK_ID");
        assert!(
            task.starts_with("sky-") && task.ends_with(&format!("_c1_{id}")),
            "{task}"
        );
        task_ids.push(task);
        let info: Value = serde_json::from_str(&get("CLUSTER_INFO")).unwrap();
        assert_eq!(info["cluster_name"], "c1");
        assert_eq!(info["num_nodes"], 2);
        assert_eq!(info["node_ips"], json!(["127.0.0.1", "127.0.0.2"]));
        let home = &c.homes[*rank as usize];
        assert_eq!(get("HOME"), home.display().to_string());
        let cwd = if *rank == 0 {
            home.join("sky_workdir")
        } else {
            home.clone()
        };
        assert_eq!(get("PWD"), cwd.display().to_string());
    }
    assert_eq!(task_ids[0], task_ids[1]);
    let tail = c.agent("logs", &[&id.to_string(), "--tail", "2"]).ok();
    assert_eq!(tail.lines().count(), 2, "{tail}");
    assert!(tail.starts_with("(worker1, rank=1, pid="), "{tail}");
    let s = c.status(id);
    assert_eq!(
        (s["status"].as_str(), s["run_exit_codes"].clone()),
        (Some("SUCCEEDED"), json!([0, 0]))
    );
}

#[test]
fn setup_failure_is_failed_setup_with_its_output() {
    let c = Cluster::new(&[(2.0, &[]), (2.0, &[])]);
    c.ensure();
    let setup = r#"echo "preparing on $SKYPILOT_SETUP_NODE_RANK of $(printf %s "$SKYPILOT_SETUP_NODE_IPS" | wc -l)"; [ "$SKYPILOT_SETUP_NODE_RANK" = 1 ] && exit 7; true"#;
    let id = c.submit(json!({"setup": setup, "run": "echo should-not-run", "num_nodes": 2}));
    let r = c.agent("logs", &[&id.to_string(), "--follow"]);
    assert_eq!(r.status, 100, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("(head, rank=0, pid="), "{}", r.stdout);
    assert!(r.stdout.contains("preparing on 1 of 1"), "{}", r.stdout);
    assert!(!r.stdout.contains("should-not-run"));
    let s = c.status(id);
    assert_eq!(s["status"], "FAILED_SETUP");
    assert_eq!(s["exit_code"], 7);
    assert!(s["message"].as_str().unwrap().contains("node 1"), "{s}");
    assert!(!c.dir.join(format!("jobs/{id}/run-0.log")).exists());
    // Without --follow the same output (in rank order) and status.
    let (code, out) = c.logs(id);
    let sorted = |s: &str| {
        let mut v: Vec<String> = s.lines().map(String::from).collect();
        v.sort();
        v
    };
    assert_eq!((code, sorted(&out)), (100, sorted(&r.stdout)));
    assert!(out.starts_with("(head, rank=0"), "{out}");
}

#[test]
fn cancel_kills_the_whole_process_tree() {
    let c = Cluster::new(&[(2.0, &[])]);
    c.ensure();
    let run = r#"echo $$ > "$HOME/pids"; sleep 1000 & echo $! >> "$HOME/pids"; sleep 1000 & echo $! >> "$HOME/pids"; echo started; wait"#;
    let id = c.submit(json!({"run": run}));
    let pids_file = c.home_file(0, "pids");
    wait_until("three pids", || {
        std::fs::read_to_string(&pids_file)
            .map(|s| s.lines().count() == 3)
            .unwrap_or(false)
    });
    let pids: Vec<i32> = std::fs::read_to_string(&pids_file)
        .unwrap()
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    assert!(pids.iter().all(|p| pid_alive(*p)));
    assert_eq!(c.status(id)["status"], "RUNNING");
    let (code, _) = c.logs(id);
    assert_eq!(code, 101, "not finished");

    let out = c.agent("cancel", &[&id.to_string()]).ok();
    assert_eq!(out.trim(), format!("Cancelled job {id} (was RUNNING)."));
    for p in &pids {
        assert!(!pid_alive(*p), "pid {p} survived the cancel");
    }
    assert_eq!(c.status(id)["status"], "CANCELLED");
    let r = c.agent("logs", &[&id.to_string(), "--follow"]);
    assert_eq!((r.status, r.stdout.trim()), (103, "started"));

    // A finished job: a message, not an error; an unknown one: an error.
    let out = c.agent("cancel", &[&id.to_string()]).ok();
    assert!(out.contains("already CANCELLED"), "{out}");
    let r = c.agent("cancel", &["99"]);
    assert_eq!(r.status, 1);
    assert!(
        r.stderr.contains("job 99 not found on cluster c1"),
        "{}",
        r.stderr
    );
    assert_eq!(c.agent("logs", &["99"]).status, 102);
    // A pending job is just marked.
    let blocker = c.submit(json!({"run": wait_for_file("never"), "cpus": 2}));
    let pending = c.submit(json!({"run": "echo hi", "cpus": 2}));
    c.wait_state(blocker, "RUNNING");
    let v = c.agent("cancel", &["--all", "--json"]).json();
    let cancelled: Vec<(i64, String)> = v["cancelled"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["job_id"].as_i64().unwrap(),
                c["previous_status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        cancelled,
        vec![
            (blocker, "RUNNING".to_string()),
            (pending, "PENDING".to_string())
        ]
    );
}

#[test]
fn a_job_waits_for_cpus_held_by_another() {
    let c = Cluster::new(&[(1.0, &[])]);
    c.ensure();
    let a = c
        .submit(json!({"name": "a", "run": format!("echo A; {}", wait_for_file("go")), "cpus": 1}));
    c.wait_state(a, "RUNNING");
    let b = c.submit(json!({"name": "b", "run": "echo B", "cpus": 1}));
    std::thread::sleep(std::time::Duration::from_millis(400));
    assert_eq!(c.status(b)["status"], "PENDING");
    let q = c.agent("queue", &["--json"]).json();
    let states: Vec<(i64, &str)> = q
        .as_array()
        .unwrap()
        .iter()
        .map(|j| (j["job_id"].as_i64().unwrap(), j["status"].as_str().unwrap()))
        .collect();
    assert_eq!(states, vec![(b, "PENDING"), (a, "RUNNING")], "newest first");
    assert_eq!(q[0]["resources"], "1x[CPU:1]");
    let table = c.agent("queue", &[]).ok();
    assert!(
        table.lines().next().unwrap().starts_with("ID  NAME"),
        "{table}"
    );

    std::fs::write(c.home_file(0, "go"), "").unwrap();
    let sa = c.wait_state(a, "SUCCEEDED");
    let sb = c.wait_state(b, "SUCCEEDED");
    assert!(sb["started_at"].as_f64().unwrap() >= sa["ended_at"].as_f64().unwrap());
    assert_eq!(c.logs(b), (0, "B\n".to_string()));
}

#[test]
fn secrets_reach_the_job_but_are_never_stored_or_shown() {
    let secret = "sekrit-value-8c1f";
    let c = Cluster::new(&[(2.0, &[])]);
    c.ensure();
    let run = format!("echo \"len=${{#HF_TOKEN}}\"; {}", wait_for_file("go"));
    let id = c.submit(json!({"run": run, "secrets": {"HF_TOKEN": secret}, "envs": {"PLAIN": "x"}}));
    c.wait_state(id, "RUNNING");
    let secrets_file = c.dir.join(format!("jobs/{id}/secrets.json"));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&secrets_file)
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    for (sub, args) in [
        ("queue", vec!["--json"]),
        ("queue", vec!["--all"]),
        ("status", vec!["--json"]),
        ("status", vec![]),
    ] {
        let out = c.agent(sub, &args).ok();
        assert!(
            !out.contains(secret),
            "{sub} {args:?} shows the secret: {out}"
        );
    }
    let q = c.agent("queue", &["--json"]).json();
    assert_eq!(q[0]["secret_names"], json!(["HF_TOKEN"]));
    std::fs::write(c.home_file(0, "go"), "").unwrap();
    c.wait_state(id, "SUCCEEDED");
    assert_eq!(c.logs(id).1, "len=17\n");
    assert!(!secrets_file.exists(), "the secrets file outlived the job");
    // No file of the state directory (agent.db and its WAL included) holds it.
    let mut stack = vec![c.dir.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(bytes) = std::fs::read(&p) {
                assert!(
                    !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                    "{} holds the secret",
                    p.display()
                );
            }
        }
    }
}

#[test]
fn bad_submissions_are_refused_with_a_reason() {
    let c = Cluster::new(&[(1.0, &[])]);
    let r = c.agent("submit", &["--spec", r#"{"run":"true","num_nodes":3}"#]);
    assert_eq!(r.status, 1);
    assert!(
        r.stderr.contains("asks for 3 nodes but cluster c1 has 1"),
        "{}",
        r.stderr
    );
    let r = c.agent("submit", &["--spec", r#"{"run":"true","cpus":4}"#]);
    assert!(r.stderr.contains("hint: lower cpus"), "{}", r.stderr);
    let r = c.agent("submit", &["--spec", r#"{"run":"true","typo":1}"#]);
    assert!(r.stderr.contains("unknown field `typo`"), "{}", r.stderr);
    // Re-init is idempotent and updates the nodes.
    let nodes = json!({"name": "c1", "nodes": [
        {"rank": 0, "ip": "127.0.0.1", "home": c.homes[0], "cpus": 4.0},
        {"rank": 1, "ip": "127.0.0.2", "home": c.homes[0], "cpus": 4.0}]});
    c.agent("init", &["--cluster", &nodes.to_string()]).ok();
    c.agent(
        "submit",
        &["--spec", r#"{"run":"true","num_nodes":2,"cpus":4}"#],
    )
    .ok();
}
