//! Real OpenSSH `sshd` "hosts" on loopback addresses, for tests (feature
//! `testing`). Each [`SshdHost`] is its own `sshd -D` child process on
//! `127.0.0.N:PORT` with its own host key and authorized_keys file, logging
//! in a local user (created if missing); it is killed on drop.
//!
//! Needs root (to create users and run sshd) and `/usr/sbin/sshd`
//! (Debian's openssh-server, installed by `scripts/install-deps.sh`).
//! The helpers panic with a clear message when something is missing: they
//! are for tests, where a panic is the report.

use crate::{KeyPair, KnownHosts, Session, Target};
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Where Debian puts the OpenSSH server.
pub const SSHD: &str = "/usr/sbin/sshd";

/// How long a starting sshd may take to listen.
const START_TIMEOUT: Duration = Duration::from_secs(15);

/// Serialises user creation in this process (`useradd` locks /etc/passwd).
static USERS: Mutex<()> = Mutex::new(());

/// `127.0.0.n`. Use n >= 2 so hosts do not share the client's 127.0.0.1.
pub fn loopback(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, n)
}

/// Panics unless sshd is installed, saying how to install it.
pub fn require_sshd() -> PathBuf {
    let sshd = PathBuf::from(SSHD);
    assert!(
        sshd.exists(),
        "{SSHD} is missing: these tests run against a real OpenSSH server\nhint: run scripts/install-deps.sh (installs Debian's openssh-server)"
    );
    sshd
}

/// A port on `ip` that nothing listens on right now.
pub fn free_port(ip: Ipv4Addr) -> u16 {
    TcpListener::bind(SocketAddrV4::new(ip, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("cannot bind {ip}:0 to find a free port: {e}"))
}

/// A TCP socket on `ip` that accepts connections in the kernel but never
/// answers: a host that hangs. Keep it alive for as long as it should hang.
pub fn silent_listener(ip: Ipv4Addr) -> (TcpListener, u16) {
    let l = TcpListener::bind(SocketAddrV4::new(ip, 0))
        .unwrap_or_else(|e| panic!("cannot bind {ip}:0: {e}"));
    let port = l.local_addr().map(|a| a.port()).unwrap_or(0);
    (l, port)
}

/// Makes sure the local user `name` exists and can log in with a key
/// (`usermod -p '*'`: a fresh account is locked, and sshd with UsePAM=no
/// refuses locked accounts). Returns its home directory.
pub fn ensure_user(name: &str) -> PathBuf {
    let _guard = USERS.lock().unwrap_or_else(|p| p.into_inner());
    for _ in 0..50 {
        if home_of(name).is_none() {
            let _ = Command::new("useradd")
                .args(["-m", "-s", "/bin/bash", name])
                .stderr(Stdio::null())
                .status();
        }
        if let Some(home) = home_of(name) {
            let ok = Command::new("usermod")
                .args(["-p", "*", name])
                .status()
                .is_ok_and(|s| s.success());
            if ok {
                let _ = std::fs::create_dir_all(&home);
                let _ = Command::new("chown")
                    .arg(format!("{name}:"))
                    .arg(&home)
                    .status();
                return home;
            }
        }
        // Another process may hold the passwd lock.
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("cannot create user {name} (useradd/usermod failed; are the tests running as root?)");
}

fn home_of(name: &str) -> Option<PathBuf> {
    let out = Command::new("getent")
        .args(["passwd", name])
        .output()
        .ok()?;
    let line = String::from_utf8(out.stdout).ok()?;
    line.trim().split(':').nth(5).map(PathBuf::from)
}

/// One sshd "host": `user@ip:port`, killed on drop.
pub struct SshdHost {
    ip: Ipv4Addr,
    port: u16,
    user: String,
    home: PathBuf,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl SshdHost {
    /// Starts sshd on `ip` (a free port) for `user` (created if missing),
    /// accepting the given public keys (OpenSSH one-line form).
    pub fn start(ip: Ipv4Addr, user: &str, authorized_keys: &[&str]) -> SshdHost {
        require_sshd();
        let home = ensure_user(user);
        let dir = tempfile::Builder::new()
            .prefix("aloft-sshd-")
            .tempdir()
            .unwrap_or_else(|e| panic!("cannot create a temp dir for sshd: {e}"));
        // sshd reads authorized_keys as the user: let it in.
        set_mode(dir.path(), 0o755);
        let mut host = SshdHost {
            ip,
            port: 0,
            user: user.to_string(),
            home,
            dir,
            child: None,
        };
        for key in authorized_keys {
            host.authorize(key);
        }
        if authorized_keys.is_empty() {
            host.authorize("");
        }
        host.new_host_key();
        // Another process could take the free port before sshd binds it.
        for attempt in 0..5 {
            host.port = free_port(ip);
            match host.spawn() {
                Ok(()) => return host,
                Err(log) if log.contains("Address already in use") && attempt < 4 => continue,
                Err(log) => panic!("sshd on {ip}:{} did not start:\n{log}", host.port),
            }
        }
        unreachable!("the loop returns or panics");
    }

    /// The address sshd listens on.
    pub fn ip(&self) -> Ipv4Addr {
        self.ip
    }

    /// The port sshd listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The user that logs in.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The user's home directory (on this machine, since the host is).
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// Where to connect, as that user, with Aloft's key.
    pub fn target(&self) -> Target {
        Target::new(self.ip.to_string(), self.port, self.user.clone())
    }

    /// Adds a public key (OpenSSH one-line form) to the keys this host
    /// accepts; takes effect for the next login.
    pub fn authorize(&self, public_key: &str) {
        let path = self.dir.path().join("authorized_keys");
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if !public_key.is_empty() {
            writeln!(f, "{public_key}").unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
        set_mode(&path, 0o644);
    }

    /// The host key's fingerprint, `SHA256:...`.
    pub fn host_key_fingerprint(&self) -> String {
        let path = self.dir.path().join("host_key.pub");
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        russh::keys::PublicKey::from_openssh(text.trim())
            .map(|k| k.fingerprint(russh::keys::HashAlg::Sha256).to_string())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// Replaces the host: same address and port, new host key (a rebuilt
    /// machine, or an impostor).
    pub fn restart_with_new_host_key(&mut self) {
        self.stop();
        self.new_host_key();
        if let Err(log) = self.spawn() {
            panic!("sshd on {}:{} did not restart:\n{log}", self.ip, self.port);
        }
    }

    /// Stops sshd (connections already open keep their session process
    /// until they close, as on a real host).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// sshd's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }

    fn new_host_key(&self) {
        let key = self.dir.path().join("host_key");
        let _ = std::fs::remove_file(&key);
        let _ = std::fs::remove_file(key.with_extension("pub"));
        let status = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "", "-f"])
            .arg(&key)
            .status();
        assert!(
            status.is_ok_and(|s| s.success()),
            "ssh-keygen failed for {}\nhint: run scripts/install-deps.sh (installs OpenSSH)",
            key.display()
        );
    }

    /// Starts sshd on `self.port` and waits until it listens; on failure
    /// returns its log.
    fn spawn(&mut self) -> Result<(), String> {
        std::fs::create_dir_all("/run/sshd").map_err(|e| format!("mkdir /run/sshd: {e}"))?;
        let d = self.dir.path();
        let log_path = d.join("sshd.log");
        let log =
            std::fs::File::create(&log_path).map_err(|e| format!("{}: {e}", log_path.display()))?;
        let child = Command::new(SSHD)
            .arg("-D")
            .arg("-e")
            .args(["-f", "/dev/null", "-h"])
            .arg(d.join("host_key"))
            .arg("-o")
            .arg(format!("ListenAddress={}:{}", self.ip, self.port))
            .arg("-o")
            .arg(format!("PidFile={}", d.join("sshd.pid").display()))
            .arg("-o")
            // The harness's own file first, then the user's: a cluster's
            // head authorises itself on its workers there, as on a VM.
            .arg(format!(
                "AuthorizedKeysFile={} .ssh/authorized_keys",
                d.join("authorized_keys").display()
            ))
            .args(["-o", "PasswordAuthentication=no"])
            .args(["-o", "KbdInteractiveAuthentication=no"])
            .args(["-o", "UsePAM=no"])
            .args(["-o", "StrictModes=no"])
            .args(["-o", "UseDNS=no"])
            .args(["-o", "MaxStartups=64"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("spawning {SSHD}: {e}"))?;
        self.child = Some(child);
        let start = Instant::now();
        loop {
            if self.log().contains("Server listening on") {
                return Ok(());
            }
            let exited = self
                .child
                .as_mut()
                .map(|c| c.try_wait().ok().flatten().is_some())
                .unwrap_or(true);
            if exited || start.elapsed() > START_TIMEOUT {
                self.stop();
                return Err(self.log());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for SshdHost {
    fn drop(&mut self) {
        self.stop();
    }
}

fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}

/// A client with its own `ALOFT_HOME`: a fresh key pair and an empty
/// known_hosts, in a temp dir removed on drop.
pub struct TestClient {
    /// The temp `ALOFT_HOME`.
    pub home: tempfile::TempDir,
    /// The client's key (`home/keys/aloft_ed25519`).
    pub key: KeyPair,
    /// `home/known_hosts`.
    pub known: KnownHosts,
}

impl TestClient {
    /// A new client identity.
    pub fn new() -> TestClient {
        let home = tempfile::Builder::new()
            .prefix("aloft-home-")
            .tempdir()
            .unwrap_or_else(|e| panic!("cannot create a temp ALOFT_HOME: {e}"));
        let key =
            KeyPair::load_or_generate(&home.path().join("keys")).unwrap_or_else(|e| panic!("{e}"));
        let known = KnownHosts::new(home.path().join("known_hosts"));
        TestClient { home, key, known }
    }

    /// Connects to `host` with a 10 s timeout, panicking on failure.
    pub async fn connect(&self, host: &SshdHost) -> Session {
        Session::connect(
            &host.target(),
            &self.key,
            &self.known,
            Duration::from_secs(10),
        )
        .await
        .unwrap_or_else(|e| panic!("{e:#}\n--- sshd log ---\n{}", host.log()))
    }
}

impl Default for TestClient {
    fn default() -> Self {
        Self::new()
    }
}
