//! Host keys, trusted on first use: the first key a host presents is
//! pinned in Aloft's own known_hosts file (OpenSSH's line format, so
//! `ssh -o UserKnownHostsFile=...` and `ssh-keygen -R` work on it); later
//! connections must present the same key.
//!
//! Lines are `host key-type base64`, with `[host]:port` for ports other
//! than 22, and comma-separated host lists. Hashed (`|1|...`) and marker
//! (`@cert-authority`, `@revoked`) lines are skipped: Aloft writes neither.

use crate::error::{Error, Result};
use russh::keys::{HashAlg, PublicKey};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// What [`KnownHosts::check`] decided about an acceptable key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostKeyStatus {
    /// The key matches a pinned entry.
    Known,
    /// The host had no entry; the key is now pinned.
    Pinned,
}

/// Aloft's known_hosts file. Cheap to clone; clones share a lock so
/// concurrent first connections in one process do not pin twice.
#[derive(Debug, Clone)]
pub struct KnownHosts {
    path: PathBuf,
    lock: Arc<Mutex<()>>,
}

impl KnownHosts {
    /// Uses the file at `path` (usually `$ALOFT_HOME/known_hosts`); it is
    /// created, mode 0600, on the first pin.
    pub fn new(path: impl Into<PathBuf>) -> KnownHosts {
        KnownHosts {
            path: path.into(),
            lock: Arc::new(Mutex::new(())),
        }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The host pattern OpenSSH uses for `host:port`.
    pub fn pattern(host: &str, port: u16) -> String {
        let host = host.to_ascii_lowercase();
        if port == 22 {
            host
        } else {
            format!("[{host}]:{port}")
        }
    }

    /// Accepts `key` for `host:port` if it matches the pinned key, pins it
    /// if the host is new, and refuses it (with both fingerprints) if the
    /// host has a different key pinned.
    pub fn check(&self, host: &str, port: u16, key: &PublicKey) -> Result<HostKeyStatus> {
        let _guard = self
            .lock
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let pattern = Self::pattern(host, port);
        let entries = self.entries_for(&pattern)?;
        if entries.iter().any(|(_, k)| k.key_data() == key.key_data()) {
            return Ok(HostKeyStatus::Known);
        }
        if let Some((line, pinned)) = entries.first() {
            return Err(Error::HostKeyChanged(Box::new(
                crate::error::HostKeyChange {
                    addr: crate::session::addr(host, port),
                    pattern,
                    known_hosts: self.path.display().to_string(),
                    line: *line,
                    pinned: describe(pinned),
                    presented: describe(key),
                },
            )));
        }
        self.append(&pattern, key)?;
        Ok(HostKeyStatus::Pinned)
    }

    /// The pinned keys for `pattern`, with their 1-based line numbers.
    fn entries_for(&self, pattern: &str) -> Result<Vec<(usize, PublicKey)>> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(Error::Io {
                    path: self.path.clone(),
                    op: "reading known hosts",
                    source,
                })
            }
        };
        let mut found = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with(['#', '|', '@']) {
                continue;
            }
            let mut fields = line.split_whitespace();
            let (Some(hosts), Some(kind), Some(b64)) =
                (fields.next(), fields.next(), fields.next())
            else {
                continue;
            };
            if !hosts.split(',').any(|h| h.eq_ignore_ascii_case(pattern)) {
                continue;
            }
            // A line we cannot parse for this host is still a pin: treat it
            // as a key that matches nothing, so the host is not re-pinned.
            match PublicKey::from_openssh(&format!("{kind} {b64}")) {
                Ok(k) => found.push((i + 1, k)),
                Err(_) => {
                    return Err(Error::Key {
                        path: self.path.clone(),
                        message: format!(
                            "line {}: unreadable key for {pattern}\nhint: remove it with: ssh-keygen -R '{pattern}' -f {}",
                            i + 1,
                            self.path.display()
                        ),
                    })
                }
            }
        }
        Ok(found)
    }

    fn append(&self, pattern: &str, key: &PublicKey) -> Result<()> {
        let io = |op, source| Error::Io {
            path: self.path.clone(),
            op,
            source,
        };
        let openssh = key.to_openssh().map_err(|e| Error::Key {
            path: self.path.clone(),
            message: format!("cannot encode the host key for {pattern}: {e}"),
        })?;
        // Keep `type base64`, drop any comment the server's key carried.
        let mut parts = openssh.split_whitespace();
        let (kind, b64) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        if let Some(parent) = self.path.parent() {
            if !parent.as_os_str().is_empty() {
                std::fs::create_dir_all(parent).map_err(|e| io("creating its directory", e))?;
            }
        }
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(&self.path)
            .map_err(|e| io("opening known hosts", e))?;
        // One write, so concurrent appenders cannot interleave a line.
        f.write_all(format!("{pattern} {kind} {b64}\n").as_bytes())
            .map_err(|e| io("pinning a host key", e))
    }
}

/// `ED25519 key SHA256:...`, as OpenSSH words it.
fn describe(key: &PublicKey) -> String {
    let algo = match key.algorithm().as_str() {
        "ssh-ed25519" => "ED25519".to_string(),
        "ssh-rsa" => "RSA".to_string(),
        s if s.starts_with("ecdsa-") => "ECDSA".to_string(),
        s => s.to_string(),
    };
    format!("{algo} key {}", key.fingerprint(HashAlg::Sha256))
}

#[cfg(test)]
mod tests {
    use super::*;
    use russh::keys::ssh_key::private::Ed25519Keypair;
    use russh::keys::PrivateKey;

    fn key(seed: u8) -> PublicKey {
        PrivateKey::from(Ed25519Keypair::from_seed(&[seed; 32]))
            .public_key()
            .clone()
    }

    #[test]
    fn first_use_pins_then_same_key_passes_and_a_new_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let kh = KnownHosts::new(dir.path().join("known_hosts"));
        assert_eq!(
            kh.check("127.0.0.2", 2222, &key(1)).unwrap(),
            HostKeyStatus::Pinned
        );
        assert_eq!(
            kh.check("127.0.0.2", 2222, &key(1)).unwrap(),
            HostKeyStatus::Known
        );
        // Another port is another host.
        assert_eq!(
            kh.check("127.0.0.2", 2223, &key(2)).unwrap(),
            HostKeyStatus::Pinned
        );
        let text = std::fs::read_to_string(kh.path()).unwrap();
        assert!(
            text.starts_with("[127.0.0.2]:2222 ssh-ed25519 AAAA"),
            "{text}"
        );
        let e = kh
            .check("127.0.0.2", 2222, &key(3))
            .unwrap_err()
            .to_string();
        let old = key(1).fingerprint(HashAlg::Sha256).to_string();
        let new = key(3).fingerprint(HashAlg::Sha256).to_string();
        assert!(e.contains(&old) && e.contains(&new), "{e}");
        assert!(e.contains("127.0.0.2:2222"), "{e}");
        assert!(e.contains("ssh-keygen -R '[127.0.0.2]:2222'"), "{e}");
        assert!(e.contains("known_hosts:1"), "{e}");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(kh.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn reads_openssh_lines_with_host_lists_and_port_22() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kh");
        let b64 = key(5).to_openssh().unwrap();
        std::fs::write(
            &path,
            format!("# comment\n|1|abc|def ssh-ed25519 AAAA\nother,Node.Example {b64} c\n"),
        )
        .unwrap();
        let kh = KnownHosts::new(&path);
        assert_eq!(
            kh.check("node.example", 22, &key(5)).unwrap(),
            HostKeyStatus::Known
        );
        assert!(kh.check("other", 22, &key(6)).is_err());
    }
}
