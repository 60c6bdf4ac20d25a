//! End-to-end tests of the simulator: real HTTP, real sshd instances.
//! Needs root and /usr/sbin/sshd (like host/ssh's sshd tests).

use aloft_sim::{Client, Config, Simulator};
use aloft_ssh::testing::TestClient;
use aloft_ssh::{KnownHosts, Session, Target};
use serde_json::{json, Value};
use std::time::Duration;

/// A simulator with the default model and its own slice of addresses.
async fn sim(ip_base: u8) -> Simulator {
    let config = Config {
        ip_base,
        ip_count: 8,
        ..Config::default()
    };
    Simulator::start(config).await.unwrap()
}

fn create_body(
    cluster: &str,
    region: &str,
    zone: Option<&str>,
    count: u32,
    spot: bool,
    key: &str,
) -> Value {
    json!({
        "cluster_name": cluster, "region": region, "zone": zone,
        "instance_type": "sim.small", "count": count, "use_spot": spot,
        "ssh_public_key": key, "labels": {"test": "yes"},
    })
}

async fn ok(c: &Client, path: &str, body: Value) -> Value {
    let (status, v) = c.post(path, &body).await.unwrap();
    assert_eq!(status, 200, "POST {path} {body}: {v}");
    v
}

async fn list(c: &Client, cluster: &str) -> Vec<Value> {
    let (status, v) = c
        .get(&format!("/v1/instances?cluster_name={cluster}"))
        .await
        .unwrap();
    assert_eq!(status, 200, "{v}");
    v.as_array().cloned().unwrap()
}

fn err_code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("")
}

fn listening(inst: &Value) -> bool {
    let addr = format!(
        "{}:{}",
        inst["public_ip"].as_str().unwrap(),
        inst["ssh_port"]
    );
    std::net::TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_secs(1)).is_ok()
}

async fn ssh(client: &TestClient, inst: &Value, cmd: &str) -> String {
    let target = Target::new(
        inst["public_ip"].as_str().unwrap(),
        u16::try_from(inst["ssh_port"].as_u64().unwrap()).unwrap(),
        inst["ssh_user"].as_str().unwrap(),
    );
    // A fresh known_hosts each time: a restarted instance has a new host key.
    let dir = tempfile::tempdir().unwrap();
    let known = KnownHosts::new(dir.path().join("known_hosts"));
    let s = Session::connect(&target, &client.key, &known, Duration::from_secs(10))
        .await
        .unwrap();
    let out = s.exec(cmd, &[], None).await.unwrap();
    assert!(out.success(), "{cmd}: {}", out.stderr_lossy());
    out.stdout_lossy().trim().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_ssh_list_terminate() {
    let sim = sim(100).await;
    let c = sim.client();
    let me = TestClient::new();
    let key = me.key.public_openssh();
    let v = ok(
        &c,
        "/v1/instances",
        create_body("web", "sim-east", None, 2, false, &key),
    )
    .await;
    let insts = v.as_array().unwrap();
    assert_eq!(insts.len(), 2);
    assert_eq!(insts[0]["rank"], 0);
    assert_eq!(insts[1]["rank"], 1);
    assert_eq!(insts[0]["zone"], "sim-east-a");
    assert_eq!(insts[0]["state"], "running");
    assert_eq!(insts[0]["labels"]["test"], "yes");
    assert_ne!(insts[0]["public_ip"], insts[1]["public_ip"]);
    assert!(insts[0]["public_ip"]
        .as_str()
        .unwrap()
        .starts_with("127.0.0.10"));
    for inst in insts {
        let who = ssh(&me, inst, "whoami; echo $HOME").await;
        let user = inst["ssh_user"].as_str().unwrap();
        assert_eq!(who, format!("{user}\n/home/{user}"));
    }
    assert_eq!(list(&c, "web").await.len(), 2);
    assert!(list(&c, "other").await.is_empty());

    let v = ok(
        &c,
        "/v1/instances/terminate",
        json!({"cluster_name": "web", "region": "sim-east"}),
    )
    .await;
    assert_eq!(v["instances"][0]["state"], "terminated");
    assert!(list(&c, "web").await.is_empty());
    for inst in insts {
        assert!(!listening(inst), "sshd still up after terminate: {inst}");
    }
    // Idempotent.
    ok(
        &c,
        "/v1/instances/terminate",
        json!({"cluster_name": "web"}),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capacity_zero_is_insufficient_capacity_and_creates_nothing() {
    let sim = sim(110).await;
    let c = sim.client();
    let key = TestClient::new().key.public_openssh();
    ok(
        &c,
        "/v1/control/capacity",
        json!({"zone": "sim-east-a", "capacity": 0}),
    )
    .await;
    // Explicit zone: refused, naming zone and type.
    let (status, v) = c
        .post(
            "/v1/instances",
            &create_body("a", "sim-east", Some("sim-east-a"), 1, false, &key),
        )
        .await
        .unwrap();
    assert_eq!(status, 409, "{v}");
    assert_eq!(err_code(&v), "InsufficientCapacity");
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("sim-east-a") && msg.contains("sim.small"),
        "{msg}"
    );
    assert!(list(&c, "a").await.is_empty());
    // No zone: the next zone of the region with room.
    let v = ok(
        &c,
        "/v1/instances",
        create_body("a", "sim-east", None, 1, false, &key),
    )
    .await;
    assert_eq!(v[0]["zone"], "sim-east-b");
    // Whole region empty.
    ok(
        &c,
        "/v1/control/capacity",
        json!({"zone": "sim-east-b", "instance_type": "sim.small", "capacity": 0}),
    )
    .await;
    let (status, v) = c
        .post(
            "/v1/instances",
            &create_body("b", "sim-east", None, 1, false, &key),
        )
        .await
        .unwrap();
    assert_eq!((status, err_code(&v)), (409, "InsufficientCapacity"), "{v}");
    assert!(list(&c, "b").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_or_nothing_and_terminate_frees_capacity() {
    let sim = sim(120).await;
    let c = sim.client();
    let key = TestClient::new().key.public_openssh();
    ok(
        &c,
        "/v1/control/capacity",
        json!({"zone": "sim-west-a", "instance_type": "sim.small", "capacity": 2}),
    )
    .await;
    let (status, v) = c
        .post(
            "/v1/instances",
            &create_body("x", "sim-west", None, 3, false, &key),
        )
        .await
        .unwrap();
    assert_eq!((status, err_code(&v)), (409, "InsufficientCapacity"), "{v}");
    assert!(
        list(&c, "x").await.is_empty(),
        "a refused create must create nothing"
    );
    ok(
        &c,
        "/v1/instances",
        create_body("x", "sim-west", None, 2, true, &key),
    )
    .await;
    let (status, _) = c
        .post(
            "/v1/instances",
            &create_body("y", "sim-west", None, 1, false, &key),
        )
        .await
        .unwrap();
    assert_eq!(status, 409);
    ok(
        &c,
        "/v1/instances/terminate",
        json!({"cluster_name": "x", "region": "sim-west"}),
    )
    .await;
    let v = ok(
        &c,
        "/v1/instances",
        create_body("y", "sim-west", None, 1, false, &key),
    )
    .await;
    assert_eq!(v[0]["zone"], "sim-west-a");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quota_control() {
    let sim = sim(130).await;
    let c = sim.client();
    let key = TestClient::new().key.public_openssh();
    ok(&c, "/v1/control/quota", json!({"region": "sim-west"})).await;
    let (status, v) = c
        .post(
            "/v1/instances",
            &create_body("q", "sim-west", None, 1, false, &key),
        )
        .await
        .unwrap();
    assert_eq!((status, err_code(&v)), (403, "QuotaExceeded"), "{v}");
    ok(&c, "/v1/control/quota", json!({"zone": "sim-east-a"})).await;
    let (status, v) = c
        .post(
            "/v1/instances",
            &create_body("q", "sim-east", Some("sim-east-a"), 1, false, &key),
        )
        .await
        .unwrap();
    assert_eq!((status, err_code(&v)), (403, "QuotaExceeded"), "{v}");
    assert!(list(&c, "q").await.is_empty());
    let v = ok(
        &c,
        "/v1/instances",
        create_body("q", "sim-east", None, 1, false, &key),
    )
    .await;
    assert_eq!(v[0]["zone"], "sim-east-b");
    ok(&c, "/v1/control/reset", json!({})).await;
    ok(
        &c,
        "/v1/instances",
        create_body("q", "sim-west", None, 1, false, &key),
    )
    .await;
    assert_eq!(list(&c, "q").await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hang_control_times_out_clients_until_reset() {
    let sim = sim(140).await;
    let c = sim.client();
    ok(&c, "/v1/control/hang", json!({"region": "sim-west"})).await;
    let hung = tokio::time::timeout(
        Duration::from_secs(1),
        c.get("/v1/instances?cluster_name=h&region=sim-west"),
    )
    .await;
    assert!(hung.is_err(), "a request for a hung region must not answer");
    // Other regions answer.
    let (status, _) =
        tokio::time::timeout(Duration::from_secs(5), c.get("/v1/catalog?region=sim-east"))
            .await
            .unwrap()
            .unwrap();
    assert_eq!(status, 200);
    // A request waiting when the hang is lifted then answers.
    let c2 = c.clone();
    let waiting = tokio::spawn(async move { c2.get("/v1/catalog?region=sim-west").await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!waiting.is_finished());
    ok(
        &c,
        "/v1/control/hang",
        json!({"region": "sim-west", "hang": false}),
    )
    .await;
    let (status, v) = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(status, 200, "{v}");
    // Hang everything; reset lifts it.
    ok(&c, "/v1/control/hang", json!({})).await;
    assert!(
        tokio::time::timeout(Duration::from_millis(500), c.get("/v1/catalog"))
            .await
            .is_err()
    );
    ok(&c, "/v1/control/reset", json!({})).await;
    let (status, _) = tokio::time::timeout(Duration::from_secs(5), c.get("/v1/catalog"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preempt_kills_sshd_and_listing_shows_it() {
    let sim = sim(150).await;
    let c = sim.client();
    let key = TestClient::new().key.public_openssh();
    ok(
        &c,
        "/v1/instances",
        create_body("p", "sim-east", None, 1, false, &key),
    )
    .await;
    let spot = ok(
        &c,
        "/v1/instances",
        create_body("p", "sim-east", None, 1, true, &key),
    )
    .await;
    assert_eq!(spot[0]["rank"], 1);
    assert!(listening(&spot[0]));
    let v = ok(&c, "/v1/control/preempt", json!({"cluster_name": "p"})).await;
    assert_eq!(
        v["preempted"],
        json!([spot[0]["id"]]),
        "only spot instances are preempted"
    );
    assert!(!listening(&spot[0]), "sshd must be gone after preemption");
    let l = list(&c, "p").await;
    assert_eq!(l[0]["state"], "running");
    assert_eq!(l[1]["state"], "preempted");
    // Preempting one instance by id (spot or not).
    let v = ok(
        &c,
        "/v1/control/preempt",
        json!({"instance_id": l[0]["id"]}),
    )
    .await;
    assert_eq!(v["preempted"].as_array().unwrap().len(), 1);
    assert_eq!(list(&c, "p").await[0]["state"], "preempted");
    ok(&c, "/v1/instances/terminate", json!({"cluster_name": "p"})).await;
    assert!(list(&c, "p").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_and_start() {
    let sim = sim(160).await;
    let c = sim.client();
    let me = TestClient::new();
    let v = ok(
        &c,
        "/v1/instances",
        create_body("s", "sim-east", None, 1, false, &me.key.public_openssh()),
    )
    .await;
    let inst = v[0].clone();
    ssh(&me, &inst, "touch ~/marker").await;
    let v = ok(&c, "/v1/instances/stop", json!({"cluster_name": "s"})).await;
    assert_eq!(v["instances"][0]["state"], "stopped");
    assert!(!listening(&inst));
    ok(&c, "/v1/instances/stop", json!({"cluster_name": "s"})).await;
    let v = ok(
        &c,
        "/v1/instances/start",
        json!({"cluster_name": "s", "region": "sim-east"}),
    )
    .await;
    let started = &v["instances"][0];
    assert_eq!(started["state"], "running");
    assert_eq!(started["ssh_port"], inst["ssh_port"]);
    assert_eq!(
        ssh(&me, started, "ls ~").await,
        "marker",
        "the disk survives a stop"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalog_prices_and_call_counters() {
    let sim = sim(170).await;
    let c = sim.client();
    let (status, cat) = c.get("/v1/catalog").await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(cat["version"], "v8");
    let offers = cat["offerings"].as_array().unwrap();
    assert_eq!(offers.len(), 6);
    let find = |cat: &Value, zone: &str, t: &str| {
        cat["offerings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["zone"] == zone && o["instance_type"] == t)
            .cloned()
            .unwrap()
    };
    let gpu = find(&cat, "sim-east-a", "sim.gpu");
    assert_eq!(
        gpu["accelerator"],
        json!({"name": "SIMGPU", "count": 1, "memory_gib": 16.0})
    );
    assert_eq!(gpu["price"], 1.0);
    assert_eq!(gpu["spot_price"], 0.3);
    assert!(
        find(&cat, "sim-west-a", "sim.small")["price"]
            .as_f64()
            .unwrap()
            > 0.10
    );
    assert_eq!(
        find(&cat, "sim-east-b", "sim.small")["accelerator"],
        Value::Null
    );
    ok(
        &c,
        "/v1/control/price",
        json!({"region": "sim-east", "instance_type": "sim.gpu", "spot_price": 0.05}),
    )
    .await;
    let (_, cat) = c.get("/v1/catalog?region=sim-east").await.unwrap();
    assert_eq!(cat["offerings"].as_array().unwrap().len(), 4);
    assert_eq!(find(&cat, "sim-east-b", "sim.gpu")["spot_price"], 0.05);
    assert_eq!(find(&cat, "sim-east-b", "sim.gpu")["price"], 1.0);
    list(&c, "nobody").await;
    let (status, v) = c.post("/v1/instances", &json!({"bad": 1})).await.unwrap();
    assert_eq!((status, err_code(&v)), (400, "BadRequest"));

    let (_, calls) = c.get("/v1/control/calls").await.unwrap();
    assert_eq!(calls["calls"]["GET /v1/catalog"], 2, "{calls}");
    assert_eq!(calls["calls"]["GET /v1/instances"], 1, "{calls}");
    assert_eq!(calls["calls"]["POST /v1/instances"], 1, "{calls}");
    assert_eq!(calls["total"], 4, "control calls are not counted: {calls}");
    ok(&c, "/v1/control/reset", json!({})).await;
    let (_, calls) = c.get("/v1/control/calls").await.unwrap();
    assert_eq!(calls["total"], 0);
    let (_, cat) = c.get("/v1/catalog").await.unwrap();
    assert_eq!(
        find(&cat, "sim-east-b", "sim.gpu")["spot_price"],
        0.3,
        "reset restores prices"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors() {
    let sim = sim(180).await;
    let c = sim.client();
    let key = TestClient::new().key.public_openssh();
    let (s, v) = c
        .post(
            "/v1/instances",
            &create_body("e", "nowhere", None, 1, false, &key),
        )
        .await
        .unwrap();
    assert_eq!((s, err_code(&v)), (404, "NotFound"), "{v}");
    let (s, v) = c
        .post(
            "/v1/instances",
            &create_body("e", "sim-east", Some("sim-west-a"), 1, false, &key),
        )
        .await
        .unwrap();
    assert_eq!((s, err_code(&v)), (404, "NotFound"), "{v}");
    let (s, v) = c
        .post(
            "/v1/instances",
            &create_body("e", "sim-east", None, 0, false, &key),
        )
        .await
        .unwrap();
    assert_eq!((s, err_code(&v)), (400, "BadRequest"), "{v}");
    let (s, v) = c
        .post(
            "/v1/instances",
            &create_body("bad name", "sim-east", None, 1, false, &key),
        )
        .await
        .unwrap();
    assert_eq!((s, err_code(&v)), (400, "BadRequest"), "{v}");
    let (s, v) = c.get("/v1/nope").await.unwrap();
    assert_eq!((s, err_code(&v)), (404, "NotFound"), "{v}");
    let (s, v) = c.get("/v1/instances").await.unwrap();
    assert_eq!((s, err_code(&v)), (400, "BadRequest"), "{v}");
    assert!(
        Simulator::start_on(Config::default(), "0.0.0.0:0".parse().unwrap())
            .await
            .is_err()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_prints_url_and_stops_sshds_on_sigterm() {
    use tokio::io::AsyncBufReadExt;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("sim.json");
    let mut config = Config::default();
    config.regions.truncate(1);
    std::fs::write(&cfg, serde_json::to_string(&config).unwrap()).unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_aloft-sim"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--ip-base",
            "190",
            "--ip-count",
            "8",
            "--config",
        ])
        .arg(&cfg)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let url = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let c = Client::new(url);
    let (_, cat) = c.get("/v1/catalog").await.unwrap();
    assert_eq!(
        cat["offerings"].as_array().unwrap().len(),
        4,
        "only sim-east is configured"
    );
    let key = TestClient::new().key.public_openssh();
    let v = ok(
        &c,
        "/v1/instances",
        create_body("bin", "sim-east", None, 1, false, &key),
    )
    .await;
    assert!(v[0]["public_ip"]
        .as_str()
        .unwrap()
        .starts_with("127.0.0.19"));
    assert!(listening(&v[0]));
    let pid = child.id().unwrap();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(exit.success(), "{exit:?}");
    assert!(!listening(&v[0]), "SIGTERM must stop every sshd");
}
