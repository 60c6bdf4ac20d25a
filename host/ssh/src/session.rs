//! Connections and commands: [`Session::connect`] opens one authenticated
//! SSH connection (TCP, handshake, host key check, public key auth, all
//! within one timeout); every operation then opens its own channel on it,
//! so one `Session` serves many commands, concurrently too. A connection
//! that died is re-opened (with the same host key check) on next use.

use crate::error::{fmt_secs, Error, Result};
use crate::keys::KeyPair;
use crate::known_hosts::KnownHosts;
use crate::shell;
use russh::client::{self, Handle, Msg};
use russh::keys::{Algorithm, PrivateKeyWithHashAlg};
use russh::{ChannelMsg, Sig};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, Mutex, Semaphore};

/// How many channels one session keeps open at once. OpenSSH's sshd
/// allows 10 per connection by default (`MaxSessions`); staying under it
/// means a burst of concurrent operations queues here instead of failing.
pub const MAX_CONCURRENT_CHANNELS: usize = 8;

/// Where to connect and as whom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Host name or IP address.
    pub host: String,
    /// SSH port.
    pub port: u16,
    /// Remote user.
    pub user: String,
    /// A private key to use instead of Aloft's own (a node pool's
    /// `identity_file`).
    pub identity_file: Option<PathBuf>,
}

impl Target {
    /// A target that uses Aloft's key.
    pub fn new(host: impl Into<String>, port: u16, user: impl Into<String>) -> Target {
        Target {
            host: host.into(),
            port,
            user: user.into(),
            identity_file: None,
        }
    }

    /// `host:port` (`[v6]:port` for IPv6 literals), as errors show it.
    pub fn addr(&self) -> String {
        addr(&self.host, self.port)
    }
}

/// `host:port`, bracketing IPv6 literals.
pub(crate) fn addr(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// What a remote command did, with its output captured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    /// Exit status; `128 + N` if killed by signal N (as shells report it).
    pub status: i32,
    /// The signal's name (`KILL`, `TERM`, ...) if a signal ended it.
    pub signal: Option<String>,
    /// Captured stdout.
    pub stdout: Vec<u8>,
    /// Captured stderr.
    pub stderr: Vec<u8>,
}

impl ExecOutput {
    /// Whether the command exited with status 0.
    pub fn success(&self) -> bool {
        self.status == 0 && self.signal.is_none()
    }

    /// Stdout as text (invalid UTF-8 replaced).
    pub fn stdout_lossy(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Stderr as text (invalid UTF-8 replaced).
    pub fn stderr_lossy(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

/// How a remote command ended.
pub(crate) struct Exit {
    pub(crate) status: i32,
    pub(crate) signal: Option<String>,
}

/// What a command reads on stdin.
pub(crate) enum Stdin<'a> {
    /// Nothing (EOF at once).
    Empty,
    /// These bytes, then EOF.
    Bytes(&'a [u8]),
    /// Chunks as a producer sends them, then EOF when it hangs up.
    Chunks(mpsc::Receiver<Vec<u8>>),
}

/// One authenticated SSH connection to a host, reused across operations.
/// Cheap to clone: clones share the connection.
#[derive(Clone)]
pub struct Session {
    inner: Arc<Inner>,
}

struct Inner {
    target: Target,
    key: KeyPair,
    known: KnownHosts,
    timeout: Duration,
    handle: Mutex<Arc<Handle<Client>>>,
    slots: Semaphore,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("target", &self.inner.target)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// Connects to `target` and authenticates with `key` (or with the
    /// target's `identity_file`), checking the host key against `known`
    /// (pinning it on first use). Everything up to a usable session happens
    /// within `timeout`; a host that does not answer is an
    /// [`Error::Timeout`], never a hang.
    pub async fn connect(
        target: &Target,
        key: &KeyPair,
        known: &KnownHosts,
        timeout: Duration,
    ) -> Result<Session> {
        let key = match &target.identity_file {
            Some(path) => KeyPair::load(path)?,
            None => key.clone(),
        };
        let handle = open(target, &key, known, timeout).await?;
        Ok(Session {
            inner: Arc::new(Inner {
                target: target.clone(),
                key,
                known: known.clone(),
                timeout,
                handle: Mutex::new(Arc::new(handle)),
                slots: Semaphore::new(MAX_CONCURRENT_CHANNELS),
            }),
        })
    }

    /// The target this session talks to.
    pub fn target(&self) -> &Target {
        &self.inner.target
    }

    /// `host:port`.
    pub fn addr(&self) -> String {
        self.inner.target.addr()
    }

    /// Runs `command` through the remote user's login shell with `env`
    /// exported first (as `export K='v';`, quoted so any value is safe)
    /// and `stdin` fed to it, and captures its output.
    pub async fn exec(
        &self,
        command: &str,
        env: &[(String, String)],
        stdin: Option<&[u8]>,
    ) -> Result<ExecOutput> {
        let line = shell::with_env(command, env)?;
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        let input = stdin.map_or(Stdin::Empty, Stdin::Bytes);
        let exit = self
            .run(
                "exec",
                &line,
                input,
                |b| stdout.extend_from_slice(b),
                |b| stderr.extend_from_slice(b),
            )
            .await?;
        Ok(ExecOutput {
            status: exit.status,
            signal: exit.signal,
            stdout,
            stderr,
        })
    }

    /// Runs `command` like [`Session::exec`] (stdin empty), handing each
    /// piece of stdout and stderr to the callbacks as it arrives. Returns
    /// the exit status (`128 + N` if a signal N killed the command).
    pub async fn exec_streaming<O, E>(
        &self,
        command: &str,
        env: &[(String, String)],
        on_stdout: O,
        on_stderr: E,
    ) -> Result<i32>
    where
        O: FnMut(&[u8]),
        E: FnMut(&[u8]),
    {
        let line = shell::with_env(command, env)?;
        let exit = self
            .run("exec", &line, Stdin::Empty, on_stdout, on_stderr)
            .await?;
        Ok(exit.status)
    }

    /// Closes the connection politely. Other clones of this session
    /// reconnect if used afterwards.
    pub async fn close(&self) -> Result<()> {
        let handle = Arc::clone(&*self.inner.handle.lock().await);
        handle
            .disconnect(russh::Disconnect::ByApplication, "", "en")
            .await
            .map_err(|e| self.channel_error("disconnect", e))
    }

    /// Runs `command` on a new channel; the core of every operation.
    pub(crate) async fn run<O, E>(
        &self,
        op: &str,
        command: &str,
        stdin: Stdin<'_>,
        mut on_stdout: O,
        mut on_stderr: E,
    ) -> Result<Exit>
    where
        O: FnMut(&[u8]),
        E: FnMut(&[u8]),
    {
        let _slot = self
            .inner
            .slots
            .acquire()
            .await
            .map_err(|e| self.channel_error(op, e))?;
        let channel = self.open_channel(op).await?;
        channel
            .exec(true, command.as_bytes())
            .await
            .map_err(|e| self.channel_error(op, e))?;
        let (mut rx, tx) = channel.split();
        // Feed stdin while reading output: a command that writes a lot
        // before reading must not deadlock against us.
        let write = async move {
            match stdin {
                Stdin::Empty => {}
                Stdin::Bytes(bytes) => tx.data(bytes).await?,
                Stdin::Chunks(mut chunks) => {
                    while let Some(chunk) = chunks.recv().await {
                        tx.data_bytes(chunk).await?;
                    }
                }
            }
            tx.eof().await?;
            Ok::<_, russh::Error>(tx)
        };
        tokio::pin!(write);
        let (mut written, mut write_error, mut _writer) = (false, None, None);
        let (mut exit, mut refused) = (None, false);
        loop {
            tokio::select! {
                done = &mut write, if !written => {
                    written = true;
                    match done {
                        Ok(tx) => _writer = Some(tx),
                        Err(e) => write_error = Some(e),
                    }
                }
                msg = rx.wait() => match msg {
                    None | Some(ChannelMsg::Close) => break,
                    Some(ChannelMsg::Data { data }) => on_stdout(&data),
                    Some(ChannelMsg::ExtendedData { data, ext: 1 }) => on_stderr(&data),
                    Some(ChannelMsg::ExitStatus { exit_status }) => {
                        exit = Some(Exit {
                            status: i32::try_from(exit_status).unwrap_or(255),
                            signal: None,
                        });
                    }
                    Some(ChannelMsg::ExitSignal { signal_name, .. }) => {
                        exit = Some(Exit {
                            status: 128 + signal_number(&signal_name),
                            signal: Some(signal_name_of(&signal_name)),
                        });
                    }
                    Some(ChannelMsg::Failure) => refused = true,
                    Some(_) => {}
                },
            }
        }
        match (exit, refused, write_error) {
            (Some(exit), _, _) => Ok(exit),
            (None, true, _) => Err(Error::Channel {
                addr: self.addr(),
                op: op.to_string(),
                message: "the server refused to run the command".to_string(),
            }),
            (None, false, Some(e)) if !self.is_closed().await => {
                Err(self.channel_error(op, format!("sending input: {e}")))
            }
            (None, _, _) => Err(Error::Disconnected {
                addr: self.addr(),
                op: op.to_string(),
            }),
        }
    }

    async fn is_closed(&self) -> bool {
        self.inner.handle.lock().await.is_closed()
    }

    /// Opens a session channel, reconnecting once if the connection died.
    /// A host that refuses a channel for lack of room (sshd counts a
    /// session until it has processed our close, and `MaxSessions` may be
    /// lower than ours) is asked again with backoff until the timeout.
    async fn open_channel(&self, op: &str) -> Result<russh::Channel<Msg>> {
        let timeout = self.inner.timeout;
        let deadline = tokio::time::Instant::now() + timeout;
        let mut backoff = Duration::from_millis(5);
        let mut reconnected = false;
        loop {
            let handle = self.handle().await?;
            let opened = tokio::time::timeout_at(deadline, handle.channel_open_session()).await;
            match opened {
                Ok(Ok(channel)) => return Ok(channel),
                Ok(Err(russh::Error::ChannelOpenFailure(_)))
                    if tokio::time::Instant::now() + backoff < deadline =>
                {
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_millis(200));
                }
                Ok(Err(_)) if handle.is_closed() && !reconnected => reconnected = true,
                Ok(Err(russh::Error::ChannelOpenFailure(reason))) => {
                    return Err(self.channel_error(
                        op,
                        format!(
                            "the host kept refusing a new channel ({reason:?}) for {}\nhint: the host's sshd may allow fewer sessions per connection (MaxSessions) than Aloft opens ({MAX_CONCURRENT_CHANNELS})",
                            fmt_secs(timeout)
                        ),
                    ))
                }
                Ok(Err(e)) => return Err(self.channel_error(op, format!("opening a channel: {e}"))),
                Err(_) => {
                    return Err(Error::Timeout {
                        addr: self.addr(),
                        port: self.inner.target.port,
                        secs: fmt_secs(timeout),
                        stage: "opening a channel",
                    })
                }
            }
        }
    }

    /// The live connection, re-opened if it has closed.
    async fn handle(&self) -> Result<Arc<Handle<Client>>> {
        let mut current = self.inner.handle.lock().await;
        if current.is_closed() {
            let i = &self.inner;
            *current = Arc::new(open(&i.target, &i.key, &i.known, i.timeout).await?);
        }
        Ok(Arc::clone(&current))
    }

    fn channel_error(&self, op: &str, e: impl std::fmt::Display) -> Error {
        Error::Channel {
            addr: self.addr(),
            op: op.to_string(),
            message: e.to_string(),
        }
    }
}

/// russh's event handler: checks the host key against known_hosts.
pub(crate) struct Client {
    host: String,
    port: u16,
    known: KnownHosts,
}

/// Why a handshake failed: russh's error, or our refusal of the host key.
#[derive(Debug)]
pub(crate) enum HandshakeError {
    Russh(russh::Error),
    HostKey(Error),
}

impl From<russh::Error> for HandshakeError {
    fn from(e: russh::Error) -> Self {
        HandshakeError::Russh(e)
    }
}

impl client::Handler for Client {
    type Error = HandshakeError;

    async fn check_server_key(
        &mut self,
        key: &russh::keys::PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        match key {
            russh::keys::PublicKeyOrCertificate::PublicKey { key, .. } => self
                .known
                .check(&self.host, self.port, key)
                .map(|_| true)
                .map_err(HandshakeError::HostKey),
            russh::keys::PublicKeyOrCertificate::Certificate(_) => {
                Err(HandshakeError::HostKey(Error::Handshake {
                    addr: addr(&self.host, self.port),
                    message: "the host presented a certificate; only plain host keys are supported"
                        .to_string(),
                }))
            }
        }
    }
}

const CONNECTING: u8 = 0;
const HANDSHAKE: u8 = 1;
const AUTH: u8 = 2;

/// Opens and authenticates a connection within `timeout`.
async fn open(
    target: &Target,
    key: &KeyPair,
    known: &KnownHosts,
    timeout: Duration,
) -> Result<Handle<Client>> {
    let addr = target.addr();
    let stage = AtomicU8::new(CONNECTING);
    let attempt = async {
        let socket = tokio::net::TcpStream::connect((target.host.as_str(), target.port))
            .await
            .map_err(|source| Error::Connect {
                addr: addr.clone(),
                source,
            })?;
        // Latency matters more than packet count for short commands.
        let _ = socket.set_nodelay(true);
        stage.store(HANDSHAKE, Ordering::Relaxed);
        let config = Arc::new(client::Config {
            // A host that vanishes mid-command (preempted, rebooted) is
            // noticed within ~90 s instead of never.
            keepalive_interval: Some(Duration::from_secs(30)),
            keepalive_max: 3,
            nodelay: true,
            ..Default::default()
        });
        let handler = Client {
            host: target.host.clone(),
            port: target.port,
            known: known.clone(),
        };
        let mut handle = client::connect_stream(config, socket, handler)
            .await
            .map_err(|e| match e {
                HandshakeError::HostKey(e) => e,
                HandshakeError::Russh(e) => Error::Handshake {
                    addr: addr.clone(),
                    message: e.to_string(),
                },
            })?;
        stage.store(AUTH, Ordering::Relaxed);
        let private = key.private();
        let hash = if matches!(private.algorithm(), Algorithm::Rsa { .. }) {
            handle
                .best_supported_rsa_hash()
                .await
                .map_err(|e| Error::Handshake {
                    addr: addr.clone(),
                    message: e.to_string(),
                })?
                .flatten()
        } else {
            None
        };
        let auth = handle
            .authenticate_publickey(&target.user, PrivateKeyWithHashAlg::new(private, hash))
            .await
            .map_err(|e| Error::Handshake {
                addr: addr.clone(),
                message: format!("during authentication: {e}"),
            })?;
        if !auth.success() {
            return Err(Error::AuthRefused {
                user: target.user.clone(),
                addr: addr.clone(),
                fingerprint: key.fingerprint(),
                key: key.path().display().to_string(),
            });
        }
        Ok(handle)
    };
    match tokio::time::timeout(timeout, attempt).await {
        Ok(result) => result,
        Err(_) => Err(Error::Timeout {
            addr: addr.clone(),
            port: target.port,
            secs: fmt_secs(timeout),
            stage: match stage.load(Ordering::Relaxed) {
                CONNECTING => "connecting",
                HANDSHAKE => "waiting for the SSH handshake",
                _ => "authenticating",
            },
        }),
    }
}

/// Linux signal numbers for the names SSH reports.
fn signal_number(sig: &Sig) -> i32 {
    match sig {
        Sig::HUP => 1,
        Sig::INT => 2,
        Sig::QUIT => 3,
        Sig::ILL => 4,
        Sig::ABRT => 6,
        Sig::FPE => 8,
        Sig::KILL => 9,
        Sig::USR1 => 10,
        Sig::SEGV => 11,
        Sig::PIPE => 13,
        Sig::ALRM => 14,
        Sig::TERM => 15,
        Sig::Custom(_) => 127,
    }
}

fn signal_name_of(sig: &Sig) -> String {
    match sig {
        Sig::Custom(name) => name.clone(),
        other => format!("{other:?}"),
    }
}
