//! Host key pinning, authentication failures and hosts that do not answer.

use aloft_ssh::testing::{free_port, loopback, silent_listener, SshdHost, TestClient};
use aloft_ssh::{Error, Session, Target};
use std::time::{Duration, Instant};

#[tokio::test]
async fn first_connect_pins_and_a_new_host_key_is_refused() {
    let client = TestClient::new();
    let mut host = SshdHost::start(loopback(7), "aloft-node3", &[&client.key.public_openssh()]);
    let old = host.host_key_fingerprint();
    let s = client.connect(&host).await;
    assert_eq!(super::sh(&s, "echo pinned").await, "pinned\n");
    drop(s);
    let pinned = std::fs::read_to_string(client.known.path()).unwrap();
    assert!(
        pinned.starts_with(&format!("[127.0.0.7]:{} ssh-ed25519 AAAA", host.port())),
        "{pinned}"
    );
    // Same key again: accepted, not pinned twice.
    drop(client.connect(&host).await);
    assert_eq!(
        std::fs::read_to_string(client.known.path()).unwrap(),
        pinned
    );

    // OpenSSH's own client accepts both files Aloft wrote.
    let ssh = std::process::Command::new("ssh")
        .arg("-i")
        .arg(client.key.path())
        .arg("-o")
        .arg(format!(
            "UserKnownHostsFile={}",
            client.known.path().display()
        ))
        .args([
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "BatchMode=yes",
            "-o",
            "IdentitiesOnly=yes",
        ])
        .args(["-F", "/dev/null", "-p", &host.port().to_string()])
        .arg(format!("aloft-node3@{}", host.ip()))
        .arg("echo openssh-ok")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&ssh.stdout),
        "openssh-ok\n",
        "{}",
        String::from_utf8_lossy(&ssh.stderr)
    );

    host.restart_with_new_host_key();
    let new = host.host_key_fingerprint();
    assert_ne!(old, new);
    let target = host.target();
    let err = Session::connect(&target, &client.key, &client.known, Duration::from_secs(10))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::HostKeyChanged(_)), "{err:?}");
    let msg = err.to_string();
    eprintln!("{msg}");
    assert!(msg.contains(&old), "{msg}");
    assert!(msg.contains(&new), "{msg}");
    assert!(msg.contains(&format!("127.0.0.7:{}", host.port())), "{msg}");
    assert!(
        msg.contains(&format!("ssh-keygen -R '[127.0.0.7]:{}' -f", host.port())),
        "{msg}"
    );
    // The pin was not overwritten.
    assert_eq!(
        std::fs::read_to_string(client.known.path()).unwrap(),
        pinned
    );
}

#[tokio::test]
async fn a_refused_key_names_the_user_host_and_key() {
    let good = TestClient::new();
    let stranger = TestClient::new();
    let host = SshdHost::start(loopback(8), "aloft-node3", &[&good.key.public_openssh()]);
    let err = Session::connect(
        &host.target(),
        &stranger.key,
        &stranger.known,
        Duration::from_secs(10),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Error::AuthRefused { .. }), "{err:?}");
    let msg = err.to_string();
    eprintln!("{msg}");
    assert!(
        msg.contains(&format!("aloft-node3@127.0.0.8:{}", host.port())),
        "{msg}"
    );
    assert!(msg.contains(&stranger.key.fingerprint()), "{msg}");
    assert!(msg.contains("hint:"), "{msg}");

    // A target's identity_file overrides the client's own key.
    let mut target = host.target();
    target.identity_file = Some(good.key.path().to_path_buf());
    let s = Session::connect(
        &target,
        &stranger.key,
        &stranger.known,
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    assert_eq!(super::sh(&s, "whoami").await, "aloft-node3\n");
}

#[tokio::test]
async fn a_host_that_never_answers_times_out_instead_of_hanging() {
    let client = TestClient::new();
    let (_listener, port) = silent_listener(loopback(9));
    let target = Target::new("127.0.0.9", port, "nobody");
    let timeout = Duration::from_secs(2);
    let start = Instant::now();
    let err = Session::connect(&target, &client.key, &client.known, timeout)
        .await
        .unwrap_err();
    let elapsed = start.elapsed();
    let msg = err.to_string();
    eprintln!("after {elapsed:?}: {msg}");
    assert!(elapsed < timeout + Duration::from_secs(2), "{elapsed:?}");
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    assert!(
        msg.contains(&format!("127.0.0.9:{port}: no answer within 2s")),
        "{msg}"
    );
}

#[tokio::test]
async fn a_port_with_nothing_on_it_fails_fast_and_says_where() {
    let client = TestClient::new();
    let port = free_port(loopback(10));
    let target = Target::new("127.0.0.10", port, "nobody");
    let timeout = Duration::from_secs(3);
    let start = Instant::now();
    let err = Session::connect(&target, &client.key, &client.known, timeout)
        .await
        .unwrap_err();
    assert!(start.elapsed() < timeout + Duration::from_secs(2));
    let msg = err.to_string();
    eprintln!("{msg}");
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    assert!(
        msg.contains(&format!("127.0.0.10:{port}: cannot connect")),
        "{msg}"
    );
}
