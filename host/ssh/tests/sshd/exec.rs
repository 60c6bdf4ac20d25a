//! Commands: env, exit codes, signals, stdin, streaming, connection reuse.

use super::{pair, sh};
use std::time::{Duration, Instant};

const HOSTILE: &[&str] = &[
    "",
    "plain",
    "it's a 'quoted' \"value\"",
    "$HOME $(id) `id` ${X:-y} $$",
    "line1\nline2\n\n",
    "back\\slash\\",
    "; exit 99 #",
    "*?[a] ~ &| <> !",
    "tab\there",
    "ünïcødé ✓",
    "-n",
];

#[tokio::test]
async fn exec_passes_hostile_env_values_and_reports_exit_codes() {
    let (_c, _h, s) = pair(2, "aloft-node1").await;
    let env: Vec<(String, String)> = HOSTILE
        .iter()
        .enumerate()
        .map(|(i, v)| (format!("V{i}"), v.to_string()))
        .collect();
    let vars: Vec<String> = (0..HOSTILE.len()).map(|i| format!("\"$V{i}\"")).collect();
    let cmd = format!("printf '%s\\0' {}", vars.join(" "));
    let out = s.exec(&cmd, &env, None).await.unwrap();
    assert!(out.success(), "{out:?}");
    let got: Vec<&[u8]> = out.stdout.split(|&b| b == 0).collect();
    for (i, v) in HOSTILE.iter().enumerate() {
        assert_eq!(got[i], v.as_bytes(), "V{i}");
    }

    let out = s
        .exec("echo out; echo err >&2; exit 3", &[], None)
        .await
        .unwrap();
    assert_eq!(out.status, 3);
    assert_eq!(out.stdout_lossy(), "out\n");
    assert_eq!(out.stderr_lossy(), "err\n");
    assert!(!out.success());
    assert_eq!(s.exec("false", &[], None).await.unwrap().status, 1);

    // Env names that are not identifiers never reach the host.
    let bad = [("A;touch /tmp/pwned".to_string(), "x".to_string())];
    assert!(s.exec("true", &bad, None).await.is_err());
}

#[tokio::test]
async fn a_signal_killed_command_is_a_clear_non_zero() {
    let (_c, _h, s) = pair(2, "aloft-node1").await;
    let out = s.exec("kill -KILL $$", &[], None).await.unwrap();
    assert_eq!(out.status, 137, "{out:?}");
    assert_eq!(out.signal.as_deref(), Some("KILL"));
    assert!(!out.success());
    let status = s
        .exec_streaming("kill -TERM $$", &[], |_| {}, |_| {})
        .await
        .unwrap();
    assert_eq!(status, 143);
}

#[tokio::test]
async fn stdin_is_fed_while_output_is_read() {
    let (_c, _h, s) = pair(2, "aloft-node1").await;
    // 4 MiB through `cat`: far more than the channel windows, so this
    // deadlocks unless input and output flow at the same time.
    let input: Vec<u8> = (0..4 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let out = s.exec("cat", &[], Some(&input)).await.unwrap();
    assert!(out.success());
    assert_eq!(out.stdout.len(), input.len());
    assert!(out.stdout == input);
    // No stdin means EOF at once, not a hang.
    let out = s.exec("cat; echo done", &[], None).await.unwrap();
    assert_eq!(out.stdout_lossy(), "done\n");
}

#[tokio::test]
async fn streaming_delivers_output_before_the_command_ends() {
    let (_c, _h, s) = pair(3, "aloft-node1").await;
    let start = Instant::now();
    let mut chunks: Vec<(Duration, String)> = Vec::new();
    let mut errs = Vec::new();
    let status = s
        .exec_streaming(
            "echo first; sleep 1; echo second; echo oops >&2; exit 4",
            &[("X".into(), "y".into())],
            |b| chunks.push((start.elapsed(), String::from_utf8_lossy(b).into_owned())),
            |b| errs.extend_from_slice(b),
        )
        .await
        .unwrap();
    let total = start.elapsed();
    assert_eq!(status, 4);
    assert_eq!(errs, b"oops\n");
    let text: String = chunks.iter().map(|(_, t)| t.as_str()).collect();
    assert_eq!(text, "first\nsecond\n");
    let (first_at, first) = &chunks[0];
    assert_eq!(first, "first\n");
    eprintln!("first chunk after {first_at:?}, command took {total:?}");
    assert!(total >= Duration::from_secs(1));
    assert!(
        *first_at + Duration::from_millis(700) < total,
        "first chunk at {first_at:?} but the command ended at {total:?}: output was buffered"
    );
}

#[tokio::test]
async fn one_session_serves_many_commands_sequentially_and_concurrently() {
    let (_c, h, s) = pair(4, "aloft-node1").await;
    let first = sh(&s, "echo $SSH_CONNECTION").await;
    let mut times = Vec::new();
    for _ in 0..30 {
        let t = Instant::now();
        let out = s.exec("true", &[], None).await.unwrap();
        times.push(t.elapsed());
        assert!(out.success());
    }
    times.sort();
    eprintln!(
        "exec round trip over one session: median {:?}, min {:?}, max {:?}",
        times[times.len() / 2],
        times[0],
        times[times.len() - 1]
    );
    // Same client port: the same TCP connection served every exec.
    assert_eq!(sh(&s, "echo $SSH_CONNECTION").await, first);

    // More concurrent commands than sshd's MaxSessions (10) allows at once.
    let mut set = tokio::task::JoinSet::new();
    for i in 0..24 {
        let s = s.clone();
        set.spawn(async move {
            let out = s
                .exec("sleep 0.2; echo $N", &[("N".into(), i.to_string())], None)
                .await
                .unwrap();
            assert_eq!(out.stdout_lossy().trim(), i.to_string());
        });
    }
    while let Some(r) = set.join_next().await {
        r.unwrap();
    }
    assert_eq!(sh(&s, "echo $SSH_CONNECTION").await, first);

    // A closed connection is re-opened on next use.
    s.close().await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(sh(&s, "echo again").await, "again\n", "{}", h.log());
}

#[tokio::test]
async fn a_connection_lost_mid_command_is_reported_and_the_next_command_reconnects() {
    let (_c, _h, s) = pair(3, "aloft-node1").await;
    let before = sh(&s, "echo $SSH_CONNECTION").await;
    // $PPID is the sshd process serving this connection: killing it drops
    // the TCP connection, like a host that was preempted.
    let start = Instant::now();
    let err = s
        .exec("kill -KILL $PPID; sleep 30", &[], None)
        .await
        .unwrap_err();
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    let msg = err.to_string();
    eprintln!("{msg}");
    assert!(
        matches!(err, aloft_ssh::Error::Disconnected { .. }),
        "{err:?}"
    );
    assert!(msg.contains("127.0.0.3:"), "{msg}");
    let after = sh(&s, "echo $SSH_CONNECTION").await;
    assert_ne!(
        before, after,
        "a new connection (new client port) was expected"
    );
}
