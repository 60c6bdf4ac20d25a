//! aloft-ssh against real OpenSSH: every test starts its own `sshd` on a
//! loopback address (see `aloft_ssh::testing`) and talks to it with
//! russh. Needs root and Debian's openssh-server (scripts/install-deps.sh).
//!
//! Loopback addresses used here: exec 127.0.0.2-4, transfer 127.0.0.5-6,
//! trust 127.0.0.7-11. Users: aloft-node1..aloft-node3.

mod exec;
mod transfer;
mod trust;

use aloft_ssh::testing::{SshdHost, TestClient};
use aloft_ssh::Session;

/// A client and a host that accepts its key, connected.
async fn pair(ip: u8, user: &str) -> (TestClient, SshdHost, Session) {
    let client = TestClient::new();
    let host = SshdHost::start(
        aloft_ssh::testing::loopback(ip),
        user,
        &[&client.key.public_openssh()],
    );
    let session = client.connect(&host).await;
    (client, host, session)
}

/// Runs `cmd` and returns its stdout, asserting success.
async fn sh(session: &Session, cmd: &str) -> String {
    let out = session.exec(cmd, &[], None).await.unwrap();
    assert!(out.success(), "{cmd}: {out:?}");
    out.stdout_lossy()
}
