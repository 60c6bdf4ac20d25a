//! The SSH runner: [`Runner`] over russh (`aloft-ssh`), with one session per
//! host reused for every step of a command, the user's aloft key
//! (`$ALOFT_HOME/ssh/`) and host keys pinned on first use
//! (`$ALOFT_HOME/known_hosts`).

use crate::runner::{Output, Runner, SyncStats};
use aloft_ssh::{KeyPair, KnownHosts, Session, Target};
use anyhow::{Context, Result};
use async_trait::async_trait;
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

/// How long to wait for a host to answer (`ALOFT_SSH_TIMEOUT` seconds).
pub fn connect_timeout() -> Duration {
    let secs = std::env::var("ALOFT_SSH_TIMEOUT")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(10);
    Duration::from_secs(secs.max(1))
}

static SESSIONS: OnceLock<tokio::sync::Mutex<HashMap<String, Session>>> = OnceLock::new();

/// A (cached) session to `target`.
pub async fn session(home: &Path, target: &Target) -> Result<Session> {
    let key = format!(
        "{}@{}|{}",
        target.user,
        target.addr(),
        target
            .identity_file
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    );
    let cache = SESSIONS.get_or_init(Default::default);
    let mut map = cache.lock().await;
    if let Some(s) = map.get(&key) {
        return Ok(s.clone());
    }
    let keys = KeyPair::load_or_generate(&home.join("ssh")).context("loading aloft's SSH key")?;
    let known = KnownHosts::new(home.join("known_hosts"));
    let s = Session::connect(target, &keys, &known, connect_timeout()).await?;
    map.insert(key, s.clone());
    Ok(s)
}

/// POSIX single-quoting of each word.
pub fn shell_words(argv: &[String]) -> String {
    argv.iter()
        .map(|a| aloft_ssh::shell::quote(a))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A node reached over SSH.
pub struct SshRunner {
    /// `$ALOFT_HOME`, for keys and known hosts.
    pub home: PathBuf,
    /// The node.
    pub target: Target,
}

#[async_trait]
impl Runner for SshRunner {
    async fn run(
        &self,
        argv: &[String],
        env: &[(String, String)],
        stdin: Option<&str>,
    ) -> Result<Output> {
        let s = session(&self.home, &self.target).await?;
        let out = s
            .exec(&shell_words(argv), env, stdin.map(str::as_bytes))
            .await?;
        Ok(Output {
            status: out.status,
            stdout: out.stdout_lossy(),
            stderr: out.stderr_lossy(),
        })
    }

    async fn stream(&self, argv: &[String]) -> Result<i32> {
        let s = session(&self.home, &self.target).await?;
        let code = s
            .exec_streaming(
                &shell_words(argv),
                &[],
                |b| {
                    let mut o = std::io::stdout().lock();
                    let _ = o.write_all(b).and_then(|()| o.flush());
                },
                |b| {
                    let mut e = std::io::stderr().lock();
                    let _ = e.write_all(b);
                },
            )
            .await?;
        Ok(code)
    }

    async fn put_file(&self, local: &Path, remote: &str) -> Result<()> {
        let s = session(&self.home, &self.target).await?;
        s.upload(local, remote, None).await?;
        Ok(())
    }

    async fn sync_dir(&self, local: &Path, remote: &str) -> Result<SyncStats> {
        let s = session(&self.home, &self.target).await?;
        let st = s.sync_dir(local, remote).await?;
        Ok(SyncStats {
            copied: st.copied,
            unchanged: st.unchanged,
        })
    }
}
