//! Exec round trip: one russh session reused, vs a new russh connection
//! per command, vs spawning OpenSSH's `ssh` per command. Prints the median
//! of N runs of `true` each.
//!
//! ```text
//! cargo run -p aloft-ssh --example roundtrip -- --host 127.0.0.2 --port 2222 --user node1 --key KEY [-n 50]
//! cargo run -p aloft-ssh --example roundtrip -- --local [-n 50]   # starts its own sshd on 127.0.0.20 (root)
//! ```
//! The host key is trusted on first use in a temporary known_hosts file.

use aloft_ssh::testing::{loopback, SshdHost, TestClient};
use aloft_ssh::{KeyPair, KnownHosts, Session, Target};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

struct Args {
    host: String,
    port: u16,
    user: String,
    key: Option<PathBuf>,
    n: usize,
    local: bool,
}

fn parse() -> Result<Args, String> {
    let mut a = Args {
        host: String::new(),
        port: 22,
        user: String::new(),
        key: None,
        n: 50,
        local: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--host" => a.host = value()?,
            "--port" => a.port = value()?.parse().map_err(|e| format!("--port: {e}"))?,
            "--user" => a.user = value()?,
            "--key" => a.key = Some(PathBuf::from(value()?)),
            "-n" => a.n = value()?.parse().map_err(|e| format!("-n: {e}"))?,
            "--local" => a.local = true,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if !a.local && (a.host.is_empty() || a.user.is_empty() || a.key.is_none()) {
        return Err("give --host, --user and --key (and --port), or --local".into());
    }
    a.n = a.n.max(1);
    Ok(a)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), String> {
    let mut args = parse()?;
    // --local: a throwaway client identity and sshd, kept alive to the end.
    let mut _local = None;
    let key = if args.local {
        let client = TestClient::new();
        let host = SshdHost::start(loopback(20), "aloft-bench", &[&client.key.public_openssh()]);
        args.host = host.ip().to_string();
        args.port = host.port();
        args.user = host.user().to_string();
        let key = client.key.clone();
        _local = Some((client, host));
        key
    } else {
        let path = args.key.clone().ok_or("--key is required")?;
        KeyPair::load(&path).map_err(|e| e.to_string())?
    };
    let scratch = tempfile::tempdir().map_err(|e| e.to_string())?;
    let known = KnownHosts::new(scratch.path().join("known_hosts"));
    let target = Target::new(args.host.clone(), args.port, args.user.clone());
    let timeout = Duration::from_secs(10);
    let n = args.n;

    let t = Instant::now();
    let session = Session::connect(&target, &key, &known, timeout)
        .await
        .map_err(|e| e.to_string())?;
    let first_connect = t.elapsed();

    let mut reused = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let out = session
            .exec("true", &[], None)
            .await
            .map_err(|e| e.to_string())?;
        reused.push(t.elapsed());
        if !out.success() {
            return Err(format!("`true` exited {}", out.status));
        }
    }

    let mut fresh = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let s = Session::connect(&target, &key, &known, timeout)
            .await
            .map_err(|e| e.to_string())?;
        s.exec("true", &[], None).await.map_err(|e| e.to_string())?;
        fresh.push(t.elapsed());
        let _ = s.close().await;
    }

    let mut openssh = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let status = Command::new("ssh")
            .arg("-i")
            .arg(key.path())
            .args(["-F", "/dev/null", "-o", "StrictHostKeyChecking=no"])
            .args(["-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes"])
            .args(["-o", "IdentitiesOnly=yes", "-o", "LogLevel=ERROR"])
            .args(["-p", &args.port.to_string()])
            .arg(format!("{}@{}", args.user, args.host))
            .arg("true")
            .stdin(Stdio::null())
            .status()
            .map_err(|e| format!("running ssh: {e}"))?;
        openssh.push(t.elapsed());
        if !status.success() {
            return Err(format!("ssh exited {status}"));
        }
    }

    println!("target: {}@{}:{}, n = {n}", args.user, args.host, args.port);
    println!("first russh connect (handshake + auth):  {first_connect:>10.2?}");
    println!(
        "russh exec `true`, one reused session:    {:>10.2?} median",
        median(reused)
    );
    println!(
        "russh connect + exec `true` each time:    {:>10.2?} median",
        median(fresh)
    );
    println!(
        "OpenSSH `ssh ... true` process each time: {:>10.2?} median",
        median(openssh)
    );
    Ok(())
}
