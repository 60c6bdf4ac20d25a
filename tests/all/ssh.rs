//! SSH node pools against real OpenSSH (issue 5): sshd "hosts" on distinct
//! loopback addresses, each with its own user and home.

use crate::util::{wait_until, TestHome};
use aloft_ssh::testing::{loopback, silent_listener, SshdHost};
use std::time::{Duration, Instant};

/// A test home and its pool's sshd hosts. Fields drop in order: the home
/// first (its `down -a` runs while the hosts still answer), then the hosts.
struct PoolEnv {
    home: TestHome,
    hosts: Vec<SshdHost>,
}

fn pool_env(first_ip: u8, users: &[&str]) -> PoolEnv {
    let home = TestHome::new();
    let hosts = pool(&home, first_ip, users);
    PoolEnv { home, hosts }
}

/// A home whose aloft key is authorised on `n` fresh sshd hosts, listed in
/// its ssh_node_pools.yaml as pool `pool`.
fn pool(home: &TestHome, first_ip: u8, users: &[&str]) -> Vec<SshdHost> {
    let key = aloft_ssh::KeyPair::load_or_generate(&home.path().join("ssh")).expect("key");
    let hosts: Vec<SshdHost> = users
        .iter()
        .enumerate()
        .map(|(i, u)| SshdHost::start(loopback(first_ip + i as u8), u, &[&key.public_openssh()]))
        .collect();
    let mut yaml = String::from("pool:\n  hosts:\n");
    for h in &hosts {
        yaml.push_str(&format!(
            "    - ip: {}\n      port: {}\n      user: {}\n",
            h.ip(),
            h.port(),
            h.user()
        ));
    }
    std::fs::write(home.path().join("ssh_node_pools.yaml"), yaml).expect("pools file");
    hosts
}

#[test]
fn two_node_pool_cluster_runs_jobs_and_gives_hosts_back() {
    let env = pool_env(30, &["aloft-pool-a", "aloft-pool-b"]);
    let (home, hosts) = (&env.home, &env.hosts);
    let task = crate::util::root().join("examples/multinode_env.yaml");
    let out = home
        .run(&[
            "launch",
            "-y",
            "-c",
            "sshc",
            "--infra",
            "ssh/pool",
            task.to_str().expect("p"),
        ])
        .ok();
    let ips = format!("{}\n{}", hosts[0].ip(), hosts[1].ip());
    for (role, rank) in [("head", 0), ("worker1", 1)] {
        let prefix = format!("({role}, rank={rank},");
        let has = |s: &str| out.lines().any(|l| l.starts_with(&prefix) && l.contains(s));
        assert!(has(&format!("SKYPILOT_NODE_RANK={rank}")), "{out}");
        assert!(
            has("SKYPILOT_NUM_NODES=2") && has("GREETING=hello"),
            "{out}"
        );
        assert!(
            has(&format!("SKYPILOT_NODE_IPS={}", hosts[0].ip())),
            "{out}"
        );
    }
    let _ = ips;
    // Each node is its own user and home.
    let out = home
        .run(&[
            "exec",
            "sshc",
            "--num-nodes",
            "2",
            "echo \"$(whoami) $HOME\"",
        ])
        .ok();
    assert!(
        out.contains("aloft-pool-a /home/aloft-pool-a")
            && out.contains("aloft-pool-b /home/aloft-pool-b"),
        "{out}"
    );
    let v = home.run(&["status", "--json"]).json();
    assert_eq!(v[0]["provider"], "ssh");
    assert_eq!(v[0]["region"], "pool");

    // The pool is used up: a second cluster cannot get hosts.
    let err = home
        .run(&[
            "launch", "-y", "-c", "second", "--infra", "ssh/pool", "echo hi",
        ])
        .fails_with(3);
    assert!(err.contains("0 free host(s) of 2"), "{err}");

    // A dropped client connection does not stop the job; logs follow again.
    let mut client = home
        .cmd(&[
            "exec",
            "sshc",
            "for i in $(seq 1 30); do echo tick-$i; sleep 0.1; done",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    std::thread::sleep(Duration::from_millis(1200));
    client.kill().expect("kill");
    let _ = client.wait();
    let logs = home.run(&["logs", "sshc", "3"]).ok();
    assert!(
        logs.contains("tick-1\n") && logs.contains("tick-30"),
        "{logs}"
    );

    home.run(&["down", "-y", "sshc"]).ok();
    assert!(
        !hosts[0].home().join(".aloft/agent/sshc").exists(),
        "the agent's directory stayed on the head"
    );
    // Hosts went back to the pool.
    let out = home
        .run(&[
            "launch",
            "-y",
            "-c",
            "again",
            "--infra",
            "ssh/pool",
            "echo back-$(whoami)",
        ])
        .ok();
    assert!(out.contains("back-aloft-pool-a"), "{out}");
}

#[test]
fn a_changed_host_key_is_refused_and_a_silent_host_times_out() {
    let mut env = pool_env(40, &["aloft-pool-c"]);
    let (home, hosts) = (&env.home, &mut env.hosts);
    home.run(&[
        "launch",
        "-y",
        "-c",
        "pin",
        "--infra",
        "ssh/pool",
        "echo pinned",
    ])
    .ok();
    home.run(&["down", "-y", "pin"]).ok();
    hosts[0].restart_with_new_host_key();
    let err = home.run(&[
        "launch", "-y", "-c", "pin2", "--infra", "ssh/pool", "echo no",
    ]);
    assert_ne!(err.status, 0);
    assert!(
        err.stderr.matches("SHA256:").count() >= 2,
        "both fingerprints: {}",
        err.stderr
    );
    assert!(
        home.run(&["status", "--json"])
            .json()
            .as_array()
            .expect("a")
            .is_empty(),
        "refused launch left a record"
    );

    // A host that accepts TCP but never speaks SSH.
    let (_listener, port) = silent_listener(loopback(49));
    let yaml = format!(
        "quiet:\n  user: nobody\n  hosts:\n    - ip: {}\n      port: {port}\n",
        loopback(49)
    );
    std::fs::write(home.path().join("ssh_node_pools.yaml"), yaml).expect("write");
    let t = Instant::now();
    let mut cmd = home.cmd(&[
        "launch",
        "-y",
        "-c",
        "quiet",
        "--infra",
        "ssh/quiet",
        "echo no",
    ]);
    cmd.env("ALOFT_SSH_TIMEOUT", "2");
    let run = home.output(cmd);
    assert_ne!(run.status, 0);
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "took {:?}",
        t.elapsed()
    );
    assert!(run.stderr.contains("no answer within 2s"), "{}", run.stderr);
    assert!(wait_until(1, || home
        .run(&["status", "--json"])
        .json()
        .as_array()
        .is_some_and(|a| a.is_empty())));
}

/// Benchmark, not a test (run by bench/ssh.sh): on an UP 1-node pool
/// cluster, the round trip of a command over russh (one reused session)
/// and of `aloft exec` (whole CLI, through the agent), against OpenSSH's
/// `ssh host true` to the same sshd, in one run.
#[test]
#[ignore = "benchmark: bench/ssh.sh runs it"]
fn bench_exec_roundtrip() {
    let env = pool_env(60, &["aloft-bench"]);
    let (home, hosts) = (&env.home, &env.hosts);
    home.run(&[
        "launch", "-y", "-c", "bench", "--infra", "ssh/pool", "echo up",
    ])
    .ok();
    let n = 21;
    let median = |mut v: Vec<Duration>| {
        v.sort();
        v[v.len() / 2].as_secs_f64() * 1e3
    };
    let key = home.path().join("ssh/aloft_ed25519");
    let openssh: Vec<Duration> = (0..n)
        .map(|_| {
            let t = Instant::now();
            let ok = std::process::Command::new("ssh")
                .args([
                    "-i",
                    key.to_str().expect("p"),
                    "-o",
                    "StrictHostKeyChecking=no",
                    "-o",
                    "UserKnownHostsFile=/dev/null",
                    "-o",
                    "LogLevel=ERROR",
                    "-p",
                ])
                .arg(hosts[0].port().to_string())
                .arg(format!("{}@{}", hosts[0].user(), hosts[0].ip()))
                .arg("true")
                .status()
                .expect("ssh")
                .success();
            assert!(ok);
            t.elapsed()
        })
        .collect();
    let rt = tokio::runtime::Runtime::new().expect("rt");
    let russh: Vec<Duration> = rt.block_on(async {
        let keys = aloft_ssh::KeyPair::load_or_generate(&home.path().join("ssh")).expect("key");
        let known = aloft_ssh::KnownHosts::new(home.path().join("known_hosts"));
        let s =
            aloft_ssh::Session::connect(&hosts[0].target(), &keys, &known, Duration::from_secs(10))
                .await
                .expect("connect");
        let mut v = Vec::new();
        for _ in 0..n {
            let t = Instant::now();
            let out = s.exec("true", &[], None).await.expect("exec");
            assert_eq!(out.status, 0);
            v.push(t.elapsed());
        }
        v
    });
    let exec: Vec<Duration> = (0..n)
        .map(|_| {
            let t = Instant::now();
            home.run(&["exec", "bench", "true"]).ok();
            t.elapsed()
        })
        .collect();
    println!(
        "russh exec `true`, one reused session:   {:.1} ms (median of {n})",
        median(russh)
    );
    println!(
        "OpenSSH `ssh host true` (new connection): {:.1} ms (median of {n})",
        median(openssh)
    );
    println!(
        "aloft exec CLUSTER true (CLI + agent job): {:.1} ms (median of {n})",
        median(exec)
    );
}

#[test]
fn status_refresh_marks_an_unreachable_head_init() {
    let mut env = pool_env(50, &["aloft-pool-d"]);
    let (home, hosts) = (&env.home, &mut env.hosts);
    home.run(&[
        "launch", "-y", "-c", "gone", "--infra", "ssh/pool", "echo up",
    ])
    .ok();
    home.run(&["status", "-r"]).ok();
    assert_eq!(home.run(&["status", "--json"]).json()[0]["status"], "UP");
    hosts[0].stop();
    let mut cmd = home.cmd(&["status", "-r"]);
    cmd.env("ALOFT_SSH_TIMEOUT", "2");
    let run = home.output(cmd);
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("warning: cluster gone"),
        "{}",
        run.stderr
    );
    assert_eq!(home.run(&["status", "--json"]).json()[0]["status"], "INIT");
    // Its record stays: down still cleans up what it can and forgets it.
    let mut cmd = home.cmd(&["down", "-y", "gone"]);
    cmd.env("ALOFT_SSH_TIMEOUT", "2");
    home.output(cmd).ok();
    assert!(home
        .run(&["status", "--json"])
        .json()
        .as_array()
        .expect("a")
        .is_empty());
}
