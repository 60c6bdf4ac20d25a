//! The daemon: survives `kill -9`, autostops, runs once per directory.

use crate::util::{aloft_bin, pid_alive, wait_for_file, wait_until, Cluster};
use serde_json::json;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn jobs_survive_kill_9_of_the_daemon_and_are_readopted() {
    let c = Cluster::new(&[(1.0, &[]), (1.0, &[])]);
    let first = c.ensure();
    // Node 0 ends while no daemon runs; node 1 after the new one adopted it.
    let run = format!(
        "echo \"start $SKYPILOT_NODE_RANK\"; {}; echo \"end $SKYPILOT_NODE_RANK\"",
        wait_for_file("go")
    );
    let id = c.submit(json!({"run": run, "num_nodes": 2}));
    c.wait_state(id, "RUNNING");
    wait_until("both nodes started", || {
        c.logs(id).1.matches("start").count() == 2
    });

    // SAFETY: kill(2) on the daemon's pid.
    unsafe { libc::kill(first, libc::SIGKILL) };
    wait_until("the daemon to die", || !pid_alive(first));
    assert_eq!(c.agent("idle", &["--json"]).json()["daemon_running"], false);
    std::fs::write(c.home_file(0, "go"), "").unwrap();
    wait_until("node 0 to finish", || {
        c.dir.join(format!("jobs/{id}/run-0.exit")).exists()
    });
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        c.status(id)["status"],
        "RUNNING",
        "nobody may finish the job without a daemon"
    );

    let v = c.agent("ensure", &[]).json();
    assert_eq!(v["started"], true);
    assert_ne!(v["pid"], first);
    let v = c.agent("ensure", &[]).json();
    assert_eq!(v["started"], false, "a second ensure finds it running");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(c.status(id)["status"], "RUNNING", "node 1 still runs");
    std::fs::write(c.home_file(1, "go"), "").unwrap();
    let s = c.wait_state(id, "SUCCEEDED");
    assert_eq!(s["run_exit_codes"], json!([0, 0]));
    let (code, out) = c.logs(id);
    assert_eq!(code, 0);
    for want in ["start 0", "end 0", "start 1", "end 1"] {
        assert!(out.contains(want), "missing {want:?} in {out}");
    }
}

#[test]
fn only_one_daemon_runs_per_directory() {
    let c = Cluster::new(&[(1.0, &[])]);
    let pid = c.ensure();
    let t = Instant::now();
    let status = Command::new(aloft_bin())
        .args(["agent", "daemon", "--dir"])
        .arg(&c.dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    assert!(t.elapsed() < Duration::from_secs(5));
    let out = c.agent("daemon", &["--detach"]).ok();
    assert_eq!(out, "", "--detach prints nothing");
    assert_eq!(c.ensure(), pid);
    let v = c.agent("shutdown", &[]).json();
    assert_eq!(v, json!({"daemon_stopped": true, "cancelled": []}));
    assert!(!pid_alive(pid));
}

#[test]
fn autostop_runs_the_command_once_idle() {
    let tmp = tempfile::tempdir().unwrap();
    let marker = tmp.path().join("marker");
    let cmd = json!([
        "bash",
        "-c",
        format!("echo \"$1\" > '{}'", marker.display()),
        "autostop"
    ]);
    let c = Cluster::with(&[(1.0, &[])], cmd);
    c.ensure();
    let id = c.submit(json!({"run": wait_for_file("go")}));
    c.wait_state(id, "RUNNING");
    let v = c.agent("autostop", &["--idle-minutes", "0.01"]).json();
    assert_eq!(v["autostop"]["idle_minutes"], 0.01);
    assert_eq!(v["autostop"]["down"], false);
    let idle = c.agent("idle", &["--json"]).json();
    assert_eq!(
        (idle["idle"].clone(), idle["unfinished_jobs"].clone()),
        (json!(false), json!(1))
    );
    std::thread::sleep(Duration::from_millis(1000));
    assert!(!marker.exists(), "autostop fired while a job ran");

    std::fs::write(c.home_file(0, "go"), "").unwrap();
    c.wait_state(id, "SUCCEEDED");
    wait_until("the autostop command", || {
        std::fs::read_to_string(&marker).is_ok_and(|s| s == "stop\n")
    });
    wait_until("the daemon to exit", || {
        c.agent("idle", &["--json"]).json()["daemon_running"] == false
    });
    let idle = c.agent("idle", &["--json"]).json();
    assert!(idle["autostop_fired_at"].as_f64().is_some(), "{idle}");
    assert_eq!(idle["idle"], true);

    // --cancel turns it off.
    assert_eq!(
        c.agent("autostop", &["--cancel"]).json(),
        json!({"autostop": null})
    );
}
