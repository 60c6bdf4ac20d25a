//! Provisioning failover against the cloud simulator (issue 6): its
//! instances are real sshd nodes on loopback, so a launch that fails over
//! ends with a real job running on the fallback.

use crate::util::TestHome;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// A running simulator and a home with its provider installed and checked.
struct Cloud {
    rt: tokio::runtime::Runtime,
    sim: Option<aloft_sim::Simulator>,
    url: String,
    home: TestHome,
}

impl Cloud {
    fn start() -> Cloud {
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        let sim = rt
            .block_on(aloft_sim::Simulator::start(aloft_sim::Config::default()))
            .expect("simulator");
        let url = sim.url().to_string();
        let home = TestHome::new();
        home.install(&["sim"]);
        let cloud = Cloud {
            rt,
            sim: Some(sim),
            url,
            home,
        };
        let v = cloud.run(&["check", "--json"]).json();
        assert_eq!(v["sim"]["enabled"], true, "{v}");
        cloud
    }

    fn cmd(&self, args: &[&str]) -> std::process::Command {
        let mut c = self.home.cmd(args);
        c.env("ALOFT_SIM_URL", &self.url)
            .env("ALOFT_PLUGIN_DEADLINES", "run-instances=2s,default=5s");
        c
    }

    fn run(&self, args: &[&str]) -> crate::util::Run {
        self.home.output(self.cmd(args))
    }

    fn control(&self, what: &str, body: Value) -> Value {
        let client = aloft_sim::Client::new(&self.url);
        let (status, v) = self
            .rt
            .block_on(client.post(&format!("/v1/control/{what}"), &body))
            .expect("control");
        assert_eq!(status, 200, "{what}: {v}");
        v
    }

    fn instances(&self, cluster: &str) -> Vec<Value> {
        let client = aloft_sim::Client::new(&self.url);
        let mut all = Vec::new();
        for region in ["sim-east", "sim-west"] {
            let (_, v) = self
                .rt
                .block_on(client.get(&format!(
                    "/v1/instances?cluster_name={cluster}&region={region}"
                )))
                .expect("list");
            all.extend(v.as_array().cloned().unwrap_or_default());
        }
        all
    }

    fn calls(&self) -> u64 {
        let client = aloft_sim::Client::new(&self.url);
        let (_, v) = self
            .rt
            .block_on(client.get("/v1/control/calls"))
            .expect("calls");
        v["total"].as_u64().unwrap_or(0)
    }
}

impl Drop for Cloud {
    fn drop(&mut self) {
        let _ = self.cmd(&["down", "-a", "-y"]).output();
        if let Some(sim) = self.sim.take() {
            let _guard = self.rt.enter();
            drop(sim);
        }
    }
}

fn launch(c: &Cloud, name: &str, extra: &[&str]) -> crate::util::Run {
    let mut args = vec!["launch", "-y", "-c", name, "--cpus", "2", "--memory", "4"];
    args.extend_from_slice(extra);
    args.push("echo running-on-$(whoami)");
    c.run(&args)
}

#[test]
fn capacity_failover_goes_to_the_next_zone_then_region() {
    let c = Cloud::start();
    // The cheapest zone is out of capacity: the next zone of the region.
    c.control("capacity", json!({ "zone": "sim-east-a", "capacity": 0 }));
    let run = launch(&c, "z", &[]);
    let (out, err) = run.ok_with_stderr();
    assert!(out.contains("running-on-sim-"), "{out}");
    assert!(
        err.contains("✗ sim/sim-east/sim-east-a") && err.contains("no capacity"),
        "{err}"
    );
    let v = c.run(&["status", "--json"]).json();
    assert_eq!(v[0]["zone"], "sim-east-b");
    assert!(
        err.contains("up on sim/sim-east/sim-east-b after 1 failed attempt(s)"),
        "{err}"
    );
    c.run(&["down", "-y", "z"]).ok();
    assert!(c.instances("z").is_empty(), "down left instances");

    // The whole region out: the next region.
    c.control("capacity", json!({ "zone": "sim-east-b", "capacity": 0 }));
    let (_, err) = launch(&c, "r", &[]).ok_with_stderr();
    assert!(err.contains("✗ sim/sim-east/sim-east-b"), "{err}");
    assert_eq!(c.run(&["status", "--json"]).json()[0]["region"], "sim-west");
}

#[test]
fn quota_blocks_the_region_and_a_hanging_region_costs_its_deadline() {
    let c = Cloud::start();
    c.control("quota", json!({ "region": "sim-east", "exceeded": true }));
    let (_, err) = launch(&c, "q", &[]).ok_with_stderr();
    // One quota error blocks the whole region: sim-east-b is not tried.
    assert!(
        err.contains("✗ sim/sim-east/sim-east-a") && err.contains("quota"),
        "{err}"
    );
    assert!(!err.contains("✗ sim/sim-east/sim-east-b"), "{err}");
    assert_eq!(c.run(&["status", "--json"]).json()[0]["region"], "sim-west");
    c.run(&["down", "-y", "q"]).ok();

    c.control("reset", json!({}));
    c.control("hang", json!({ "region": "sim-east", "hang": true }));
    let t = Instant::now();
    let (_, err) = launch(&c, "h", &[]).ok_with_stderr();
    assert!(err.contains("no answer within 2s"), "{err}");
    assert!(
        t.elapsed() < Duration::from_secs(20),
        "took {:?}",
        t.elapsed()
    );
    assert_eq!(c.run(&["status", "--json"]).json()[0]["region"], "sim-west");
    c.control("hang", json!({ "region": "sim-east", "hang": false }));
}

#[test]
fn every_place_out_is_a_clear_error_with_nothing_left_behind() {
    let c = Cloud::start();
    for zone in ["sim-east-a", "sim-east-b", "sim-west-a"] {
        c.control("capacity", json!({ "zone": zone, "capacity": 0 }));
    }
    let before = c.calls();
    let err = launch(&c, "none", &[]).fails_with(3);
    assert!(err.contains("could not provision none; tried:"), "{err}");
    for place in [
        "sim/sim-east/sim-east-a",
        "sim/sim-east/sim-east-b",
        "sim/sim-west/sim-west-a",
    ] {
        assert!(err.contains(place), "{place} missing from:\n{err}");
    }
    assert!(err.contains("hint: --retry-until-up"), "{err}");
    assert!(c.instances("none").is_empty(), "instances left behind");
    assert!(c
        .run(&["status", "--json"])
        .json()
        .as_array()
        .expect("a")
        .is_empty());
    assert!(c.calls() > before);
}

#[test]
fn spot_preemption_of_an_up_cluster_shows_in_status_refresh() {
    let c = Cloud::start();
    launch(&c, "spot", &["--use-spot"]).ok();
    let v = c.run(&["status", "--json"]).json();
    assert_eq!(v[0]["status"], "UP");
    assert!(
        v[0]["resources"].as_str().unwrap_or("").contains("[spot]"),
        "{v}"
    );
    c.control("preempt", json!({ "cluster_name": "spot" }));
    let mut cmd = c.cmd(&["status", "-r"]);
    cmd.env("ALOFT_SSH_TIMEOUT", "2");
    let run = c.home.output(cmd);
    assert!(
        run.stderr.contains("0 of 1 instance(s) running"),
        "{}",
        run.stderr
    );
    assert_eq!(c.run(&["status", "--json"]).json()[0]["status"], "INIT");
}

#[test]
fn retry_until_up_waits_for_capacity_to_come_back() {
    let c = Cloud::start();
    for zone in ["sim-east-a", "sim-east-b", "sim-west-a"] {
        c.control("capacity", json!({ "zone": zone, "capacity": 0 }));
    }
    let mut cmd = c.cmd(&[
        "launch",
        "-y",
        "-c",
        "patient",
        "--cpus",
        "2",
        "--retry-until-up",
        "echo finally-up",
    ]);
    cmd.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = cmd.spawn().expect("spawn");
    std::thread::sleep(Duration::from_millis(1500));
    c.control("reset", json!({}));
    let out = child.wait_with_output().expect("wait");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("finally-up"), "{stdout}");
    assert!(
        stderr.contains("retrying in 2s (--retry-until-up)"),
        "{stderr}"
    );
}
