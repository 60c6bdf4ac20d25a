//! The local provider and the whole cluster lifecycle with real processes
//! (issue 4). Each test has its own ALOFT_HOME; clusters are torn down when
//! the test's home is dropped.

use crate::util::{alive, wait_until, TestHome};
use std::time::Duration;

fn launch(home: &TestHome, args: &[&str]) -> crate::util::Run {
    let mut a = vec!["launch", "-y"];
    a.extend_from_slice(args);
    home.run(&a)
}

fn status_of(home: &TestHome, cluster: &str) -> Option<String> {
    let v = home.run(&["status", "--json"]).json();
    v.as_array()?
        .iter()
        .find(|c| c["name"] == cluster)
        .map(|c| c["status"].as_str().unwrap_or("").to_string())
}

fn job_status(home: &TestHome, cluster: &str, job: u32) -> String {
    let run = home.run(&["logs", cluster, &job.to_string(), "--status"]);
    run.stdout
        .trim()
        .rsplit(' ')
        .next()
        .unwrap_or("")
        .to_string()
}

fn examples() -> std::path::PathBuf {
    crate::util::root().join("examples")
}

#[test]
fn two_nodes_see_every_skypilot_variable() {
    let home = TestHome::new();
    let task = examples().join("multinode_env.yaml");
    let out = launch(&home, &["-c", "envs", task.to_str().expect("path")]).ok();
    for (role, rank) in [("head", 0), ("worker1", 1)] {
        let lines: Vec<&str> = out
            .lines()
            .filter(|l| l.starts_with(&format!("({role}, rank={rank},")))
            .collect();
        let has = |s: &str| lines.iter().any(|l| l.contains(s));
        assert!(has(&format!("SKYPILOT_NODE_RANK={rank}")), "{out}");
        assert!(has("SKYPILOT_NUM_NODES=2"), "{out}");
        assert!(has("SKYPILOT_NUM_GPUS_PER_NODE=0"), "{out}");
        assert!(has("SKYPILOT_TASK_ID=sky-") && has("_envs_1"), "{out}");
        assert!(
            has("SKYPILOT_CLUSTER_INFO={") && has("\"num_nodes\":2"),
            "{out}"
        );
        assert!(has("SKYPILOT_NODE_IPS=127.0.0.1"), "{out}");
        assert!(has("GREETING=hello"), "{out}");
        assert!(has(&format!("setup on rank {rank}")), "{out}");
    }
    // Each node has its own home: a file written on one is not on the other.
    home.run(&[
        "exec",
        "envs",
        "--num-nodes",
        "2",
        "echo mine > ~/who-$SKYPILOT_NODE_RANK",
    ])
    .ok();
    let nodes = home.path().join("clusters/envs/nodes");
    assert!(nodes.join("0/who-0").exists() && !nodes.join("0/who-1").exists());
    assert!(nodes.join("1/who-1").exists() && !nodes.join("1/who-0").exists());
    let v = home.run(&["status", "--json"]).json();
    assert_eq!(v[0]["num_nodes"], 2);
    assert_eq!(v[0]["status"], "UP");
}

#[test]
fn workdir_and_file_mounts_land_on_every_node_and_run_starts_there() {
    let home = TestHome::new();
    let proj = tempfile::tempdir().expect("tmp");
    std::fs::write(proj.path().join("train.py"), "print('x')").expect("write");
    std::fs::write(proj.path().join("data.csv"), "a,b").expect("write");
    std::fs::write(
        proj.path().join("task.yaml"),
        "num_nodes: 2\nworkdir: .\nfile_mounts:\n  ~/inputs/data.csv: ./data.csv\nrun: |\n  ls train.py && cat ~/inputs/data.csv && pwd\n",
    )
    .expect("write");
    let mut cmd = home.cmd(&["launch", "-y", "-c", "wd", "task.yaml"]);
    cmd.current_dir(proj.path());
    let out = home.output(cmd).ok();
    assert_eq!(out.matches("train.py").count(), 2, "{out}");
    assert_eq!(out.matches("a,b").count(), 2, "{out}");
    assert!(out.contains("/clusters/wd/nodes/1/sky_workdir"), "{out}");
}

#[test]
fn setup_failure_is_failed_setup_with_its_log() {
    let home = TestHome::new();
    let run = launch(&home, &["-c", "bad-setup", "examples/none.yaml"]);
    assert_eq!(run.status, 2, "{}", run.stderr);
    let dir = tempfile::tempdir().expect("tmp");
    let task = dir.path().join("t.yaml");
    std::fs::write(
        &task,
        "setup: |\n  echo installing-things\n  exit 7\nrun: echo never-runs\n",
    )
    .expect("write");
    let run = launch(&home, &["-c", "bad-setup", task.to_str().expect("p")]);
    assert_eq!(run.status, 100, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("installing-things") && !run.stdout.contains("never-runs"),
        "{}",
        run.stdout
    );
    assert_eq!(job_status(&home, "bad-setup", 1), "FAILED_SETUP");
    let logs = home.run(&["logs", "bad-setup", "1", "--no-follow"]);
    assert!(logs.stdout.contains("installing-things"), "{}", logs.stdout);
}

#[test]
fn cancel_kills_the_whole_process_tree() {
    let home = TestHome::new();
    launch(&home, &["-c", "canc", "echo up"]).ok();
    let job = home
        .run(&[
            "exec",
            "-d",
            "canc",
            "sleep 1000 & echo $! > ~/child.pid; echo $$ > ~/parent.pid; wait",
        ])
        .ok();
    let job = job.trim().to_string();
    let node = home.path().join("clusters/canc/nodes/0");
    assert!(wait_until(10, || node.join("child.pid").exists()
        && node.join("parent.pid").exists()));
    std::thread::sleep(Duration::from_millis(200));
    let read = |f: &str| {
        std::fs::read_to_string(node.join(f))
            .expect("pid")
            .trim()
            .parse::<i32>()
            .expect("pid")
    };
    let (child, parent) = (read("child.pid"), read("parent.pid"));
    assert!(alive(child) && alive(parent));
    home.run(&["cancel", "canc", &job]).ok();
    assert!(
        wait_until(10, || !alive(child) && !alive(parent)),
        "processes survived cancel"
    );
    assert_eq!(
        job_status(&home, "canc", job.parse().expect("id")),
        "CANCELLED"
    );
    let err = home.run(&["cancel", "canc", "999"]);
    assert_ne!(err.status, 0);
    assert!(err.stderr.contains("999"), "{}", err.stderr);
}

#[test]
fn a_queued_job_waits_for_cpus_then_runs() {
    let home = TestHome::new();
    launch(&home, &["-c", "q", "echo up"]).ok();
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .to_string();
    let a = home
        .run(&["exec", "-d", "q", "--cpus", &cpus, "sleep 3; echo a-done"])
        .ok();
    let b = home
        .run(&["exec", "-d", "q", "--cpus", &cpus, "echo b-done"])
        .ok();
    let (a, b): (u32, u32) = (a.trim().parse().expect("a"), b.trim().parse().expect("b"));
    assert!(wait_until(5, || job_status(&home, "q", a) == "RUNNING"));
    assert_eq!(job_status(&home, "q", b), "PENDING");
    let queue = home.run(&["queue", "q"]).ok();
    assert!(
        queue.contains("PENDING") && queue.contains("RUNNING"),
        "{queue}"
    );
    assert!(wait_until(20, || job_status(&home, "q", b) == "SUCCEEDED"));
    assert_eq!(job_status(&home, "q", a), "SUCCEEDED");
    let logs = home.run(&["logs", "q", &b.to_string()]).ok();
    assert!(logs.contains("b-done"), "{logs}");
}

#[test]
fn autostop_stops_an_idle_cluster() {
    let home = TestHome::new();
    launch(&home, &["-c", "idle", "-i", "0.05", "echo up"]).ok();
    let v = home.run(&["status", "--json"]).json();
    assert_eq!(v[0]["autostop_minutes"], 0.05);
    assert!(
        wait_until(30, || status_of(&home, "idle").as_deref()
            == Some("STOPPED")),
        "still {:?}",
        status_of(&home, "idle")
    );
    // A stopped cluster starts again, and a down one is gone.
    home.run(&["start", "idle"]).ok();
    assert_eq!(status_of(&home, "idle").as_deref(), Some("UP"));
    home.run(&["exec", "idle", "echo again"]).ok();
    home.run(&["down", "-y", "idle"]).ok();
    assert_eq!(status_of(&home, "idle"), None);
    assert!(!home.path().join("clusters/idle").exists());
}

#[test]
fn killed_agent_and_client_recover_and_down_leaves_no_orphans() {
    let home = TestHome::new();
    launch(&home, &["-c", "crash", "echo up"]).ok();
    let node = home.path().join("clusters/crash/nodes/0");
    // A client following a running job, killed with SIGKILL.
    let mut client = home
        .cmd(&[
            "exec",
            "crash",
            "echo $$ > ~/job.pid; for i in $(seq 1 40); do echo tick-$i; sleep 0.1; done",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    assert!(wait_until(10, || node.join("job.pid").exists()));
    client.kill().expect("kill client");
    let _ = client.wait();
    // The agent daemon, killed with SIGKILL too.
    let agent_pid: i32 =
        std::fs::read_to_string(home.path().join("clusters/crash/agent/daemon.pid"))
            .expect("daemon.pid")
            .trim()
            .parse()
            .expect("pid");
    unsafe_kill(agent_pid);
    assert!(wait_until(5, || !alive(agent_pid)));
    // status -r restarts the agent; the job ends and its logs are whole.
    home.run(&["status", "-r"]).ok();
    assert!(
        wait_until(20, || job_status(&home, "crash", 2) == "SUCCEEDED"),
        "{}",
        job_status(&home, "crash", 2)
    );
    let logs = home.run(&["logs", "crash", "2"]).ok();
    assert!(
        logs.contains("tick-1\n") && logs.contains("tick-40"),
        "{logs}"
    );
    // A job still running at down is killed with everything else.
    home.run(&["exec", "-d", "crash", "echo $$ > ~/long.pid; sleep 1000"])
        .ok();
    assert!(wait_until(10, || node.join("long.pid").exists()));
    let long: i32 = std::fs::read_to_string(node.join("long.pid"))
        .expect("pid")
        .trim()
        .parse()
        .expect("pid");
    let new_agent: i32 =
        std::fs::read_to_string(home.path().join("clusters/crash/agent/daemon.pid"))
            .expect("daemon.pid")
            .trim()
            .parse()
            .expect("pid");
    home.run(&["down", "-y", "crash"]).ok();
    assert!(
        wait_until(10, || !alive(long) && !alive(new_agent)),
        "orphans after down"
    );
}

fn unsafe_kill(pid: i32) {
    let _ = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status();
}

#[test]
fn concurrent_launches_and_downs_stay_consistent() {
    let home = std::sync::Arc::new(TestHome::new());
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let (home, stop) = (home.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut errors = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let run = home.run(&["status", "--json"]);
                if run.status != 0 || run.stderr.contains("locked") {
                    errors.push(run.stderr);
                }
            }
            errors
        })
    };
    let workers: Vec<_> = (0..10)
        .map(|i| {
            let home = home.clone();
            std::thread::spawn(move || {
                let name = format!("par-{i}");
                let up = home.run(&[
                    "launch",
                    "-y",
                    "-c",
                    &name,
                    "echo hello-from-$SKYPILOT_NODE_RANK",
                ]);
                let down = if i % 2 == 0 {
                    Some(home.run(&["down", "-y", &name]))
                } else {
                    None
                };
                (up, down)
            })
        })
        .collect();
    for w in workers {
        let (up, down) = w.join().expect("worker");
        assert_eq!(up.status, 0, "{}", up.stderr);
        assert!(up.stdout.contains("hello-from-0"), "{}", up.stdout);
        if let Some(d) = down {
            assert_eq!(d.status, 0, "{}", d.stderr);
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let errors = watcher.join().expect("watcher");
    assert!(
        errors.is_empty(),
        "status failed while launches ran: {errors:?}"
    );
    let v = home.run(&["status", "--json"]).json();
    let mut names: Vec<&str> = v
        .as_array()
        .expect("array")
        .iter()
        .map(|c| c["name"].as_str().expect("name"))
        .collect();
    names.sort();
    assert_eq!(names, ["par-1", "par-3", "par-5", "par-7", "par-9"]);
    assert!(v
        .as_array()
        .expect("array")
        .iter()
        .all(|c| c["status"] == "UP"));
    let dirs = std::fs::read_dir(home.path().join("clusters"))
        .expect("clusters")
        .count();
    assert_eq!(dirs, 5, "directories of torn-down clusters remain");
}

#[test]
fn bad_input_is_refused_and_nothing_half_created() {
    let home = TestHome::new();
    for bad in ["Bad", "a/b", "x;rm -rf", "../up", "-dash"] {
        let err = home
            .run(&["launch", "-y", &format!("--cluster={bad}"), "echo hi"])
            .fails_with(2);
        assert!(err.contains("invalid cluster name"), "{bad}: {err}");
    }
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::write(dir.path().join("t.yaml"), "workdir: ./nope\nrun: ls\n").expect("write");
    let mut cmd = home.cmd(&["launch", "-y", "-c", "wd", "t.yaml"]);
    cmd.current_dir(dir.path());
    let err = home.output(cmd).fails_with(2);
    assert!(err.contains("nope: no such directory"), "{err}");
    assert_eq!(
        status_of(&home, "wd"),
        None,
        "a refused launch left a cluster record"
    );
    assert!(!home.path().join("clusters/wd").exists());

    launch(&home, &["-c", "ok", "echo hi"]).ok();
    let err = home.run(&["logs", "ok", "42", "--status"]).fails_with(102);
    assert!(err.contains("job 42 not found"), "{err}");
    let err = home.run(&["exec", "missing", "echo hi"]).fails_with(1);
    assert!(err.contains("cluster missing does not exist"), "{err}");
    let err = home.run(&["down", "-y", "missing"]).fails_with(1);
    assert!(err.contains("does not exist"), "{err}");
    let err = home
        .run(&["launch", "-y", "--infra", "local", "--cpus", "4096", "echo"])
        .fails_with(3);
    assert!(err.contains("does not fit this machine"), "{err}");
}
