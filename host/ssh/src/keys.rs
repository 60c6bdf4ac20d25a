//! The client's key pair: Aloft's own ed25519 key under `$ALOFT_HOME`
//! (generated on first use), or a key file a node pool names.

use crate::error::{Error, Result};
use russh::keys::ssh_key::private::Ed25519Keypair;
use russh::keys::ssh_key::LineEnding;
use russh::keys::{HashAlg, PrivateKey};
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// File name of Aloft's private key inside the key directory.
pub const KEY_FILE: &str = "aloft_ed25519";

/// A private key and where it came from. Cheap to clone.
#[derive(Clone)]
pub struct KeyPair {
    key: Arc<PrivateKey>,
    path: PathBuf,
}

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyPair")
            .field("path", &self.path)
            .field("fingerprint", &self.fingerprint())
            .finish()
    }
}

impl KeyPair {
    /// Loads `dir/aloft_ed25519`, or generates it (with
    /// `dir/aloft_ed25519.pub` beside it) if it does not exist yet. The
    /// private key is written 0600 in OpenSSH format, so `ssh -i` accepts
    /// it too; `dir` is created 0700 if missing. Safe against another
    /// process generating at the same time: the first one wins and both
    /// end up with the same key.
    pub fn load_or_generate(dir: &Path) -> Result<KeyPair> {
        let path = dir.join(KEY_FILE);
        if !path.exists() {
            create_dir_private(dir)?;
            generate(&path)?;
        }
        let pair = KeyPair::load(&path)?;
        let pub_path = pub_path(&path);
        if !pub_path.exists() {
            write_atomic(
                &pub_path,
                format!("{}\n", pair.public_openssh()).as_bytes(),
                0o644,
            )?;
        }
        Ok(pair)
    }

    /// Loads an unencrypted OpenSSH private key (ed25519, ECDSA or RSA),
    /// e.g. a node pool's `identity_file`.
    pub fn load(path: &Path) -> Result<KeyPair> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            op: "reading the private key",
            source,
        })?;
        let key = PrivateKey::from_openssh(text.trim_start()).map_err(|e| Error::Key {
            path: path.to_path_buf(),
            message: format!(
                "not an OpenSSH private key ({e})\nhint: convert a PEM key with: ssh-keygen -p -N '' -f {}",
                path.display()
            ),
        })?;
        if key.is_encrypted() {
            return Err(Error::Key {
                path: path.to_path_buf(),
                message: format!(
                    "the key is protected by a passphrase, which Aloft cannot prompt for\nhint: use a key without a passphrase, or remove it with: ssh-keygen -p -N '' -f {}",
                    path.display()
                ),
            });
        }
        Ok(KeyPair {
            key: Arc::new(key),
            path: path.to_path_buf(),
        })
    }

    /// The public key as one OpenSSH line: `ssh-ed25519 AAAA... aloft`
    /// (no trailing newline), ready for `authorized_keys`.
    pub fn public_openssh(&self) -> String {
        let mut public = self.key.public_key().clone();
        if public.comment().is_empty() {
            public.set_comment("aloft");
        }
        public
            .to_openssh()
            .unwrap_or_else(|_| String::from("<unencodable public key>"))
    }

    /// The public key's fingerprint as OpenSSH prints it (`SHA256:...`).
    pub fn fingerprint(&self) -> String {
        self.key.fingerprint(HashAlg::Sha256).to_string()
    }

    /// The private key file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The key itself, for russh.
    pub(crate) fn private(&self) -> Arc<PrivateKey> {
        Arc::clone(&self.key)
    }
}

/// `key` -> `key.pub`.
fn pub_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".pub");
    PathBuf::from(name)
}

fn create_dir_private(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::create_dir_all(dir).map_err(|source| Error::Io {
        path: dir.to_path_buf(),
        op: "creating the key directory",
        source,
    })?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(|source| {
        Error::Io {
            path: dir.to_path_buf(),
            op: "setting the key directory's mode",
            source,
        }
    })
}

/// Generates a fresh ed25519 key at `path` unless one appears there first.
fn generate(path: &Path) -> Result<()> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| Error::Key {
        path: path.to_path_buf(),
        message: format!("no randomness for a new key: {e}"),
    })?;
    let mut key = PrivateKey::from(Ed25519Keypair::from_seed(&seed));
    key.set_comment("aloft");
    let pem = key.to_openssh(LineEnding::LF).map_err(|e| Error::Key {
        path: path.to_path_buf(),
        message: format!("encoding the new key: {e}"),
    })?;
    write_atomic(path, pem.as_bytes(), 0o600)?;
    Ok(())
}

/// Writes `bytes` to a temp file beside `path` with `mode`, then links it
/// into place; if `path` already exists (another process won), keeps that.
fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let io = |op, source| Error::Io {
        path: path.to_path_buf(),
        op,
        source,
    };
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .map_err(|e| io("creating", e))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| io("writing", e))?;
    drop(f);
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(io("writing", e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_once_then_loads_the_same_key() {
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("keys");
        let a = KeyPair::load_or_generate(&keys).unwrap();
        let b = KeyPair::load_or_generate(&keys).unwrap();
        assert_eq!(a.fingerprint(), b.fingerprint());
        assert!(a.fingerprint().starts_with("SHA256:"));
        let mode = std::fs::metadata(keys.join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let pubtext = std::fs::read_to_string(keys.join("aloft_ed25519.pub")).unwrap();
        assert!(pubtext.starts_with("ssh-ed25519 AAAA"), "{pubtext}");
        assert!(pubtext.trim_end().ends_with(" aloft"), "{pubtext}");
        assert_eq!(pubtext.trim_end(), a.public_openssh());
        let pem = std::fs::read_to_string(keys.join(KEY_FILE)).unwrap();
        assert!(pem.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----"));
    }

    #[test]
    fn a_file_that_is_not_a_key_names_the_file_and_hints() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("id");
        std::fs::write(&p, "hello").unwrap();
        let e = KeyPair::load(&p).unwrap_err().to_string();
        assert!(e.contains("id: not an OpenSSH private key"), "{e}");
        assert!(e.contains("hint:"), "{e}");
    }
}
