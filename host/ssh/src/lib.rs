//! Aloft's SSH client, on [russh]: the engine behind the SSH runner that
//! runs commands and places files on cluster nodes.
//!
//! - [`keys`]: the client's key pair ([`KeyPair`]), Aloft's own ed25519 key
//!   generated under `$ALOFT_HOME` on first use, or a node pool's key file.
//! - [`known_hosts`]: host keys trusted on first use and pinned in an
//!   OpenSSH-format file ([`KnownHosts`]); a changed key is refused.
//! - [`session`]: [`Session`], one authenticated connection to a
//!   [`Target`], reused for many operations (a channel per operation);
//!   [`Session::exec`] captures output, [`Session::exec_streaming`] hands it
//!   over as it arrives.
//! - [`transfer`]: [`Session::upload`] and [`Session::sync_dir`], which send
//!   only what changed as a tar stream into `tar -x` on the host.
//! - [`shell`]: POSIX quoting for env values and remote paths.
//! - [`error`]: the crate's [`Error`], naming host:port and the operation.
//! - `testing` (feature `testing`): real `sshd` "hosts" on loopback
//!   addresses for tests, here and in other crates.
//!
//! ```no_run
//! # async fn demo() -> aloft_ssh::Result<()> {
//! use aloft_ssh::{KeyPair, KnownHosts, Session, Target};
//! use std::time::Duration;
//! let home = std::path::Path::new("/home/me/.aloft");
//! let key = KeyPair::load_or_generate(&home.join("keys"))?;
//! let known = KnownHosts::new(home.join("known_hosts"));
//! let target = Target::new("127.0.0.2", 2222, "ubuntu");
//! let session = Session::connect(&target, &key, &known, Duration::from_secs(10)).await?;
//! let out = session.exec("nproc", &[], None).await?;
//! println!("{}", out.stdout_lossy());
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

pub mod error;
pub mod keys;
pub mod known_hosts;
pub mod session;
pub mod shell;
#[cfg(feature = "testing")]
pub mod testing;
pub mod transfer;

pub use error::{Error, Result};
pub use keys::KeyPair;
pub use known_hosts::{HostKeyStatus, KnownHosts};
pub use session::{ExecOutput, Session, Target};
pub use transfer::SyncStats;
