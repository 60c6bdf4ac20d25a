//! `aloft-sim`: a small simulated cloud for Aloft's tests. It serves an HTTP
//! JSON API (catalog, instances, test controls) on loopback, and each
//! instance it creates is a real OpenSSH `sshd` on its own loopback address
//! (`127.0.0.N`) logging in its own local user, so provisioning failover,
//! spot preemption and SSH setup can be exercised end to end.
//!
//! Modules:
//! - [`config`]: regions, zones, instance types, prices, capacity (JSON).
//! - [`cloud`]: the state and its rules (capacity, quota, hang, counters).
//! - [`api`]: routing and the sshd work done outside the state lock.
//! - [`http`]: hyper 1 plumbing and a small JSON [`Client`].
//! - [`error`]: the crate's [`Error`] and the API's error codes.
//!
//! Run it in-process with [`Simulator::start`], or as the `aloft-sim`
//! binary. Needs root (it creates users and runs sshd).

pub mod api;
pub mod cloud;
pub mod config;
pub mod error;
pub mod http;

pub use config::Config;
pub use error::{ApiError, Code, Error, Result};
pub use http::Client;

use std::hash::{BuildHasher, Hasher};
use std::net::SocketAddr;
use std::sync::Arc;

/// A running simulator. Dropping it stops serving and kills every
/// instance's sshd (and deletes the instances' users).
pub struct Simulator {
    addr: SocketAddr,
    url: String,
    shared: Arc<api::Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Simulator {
    /// Starts on `127.0.0.1:<free port>` (needs a tokio runtime).
    pub async fn start(config: Config) -> Result<Simulator> {
        Simulator::start_on(config, SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// Starts on `addr`, which must be a loopback address.
    pub async fn start_on(config: Config, addr: SocketAddr) -> Result<Simulator> {
        config.validate()?;
        if !addr.ip().is_loopback() || addr.is_ipv6() {
            return Err(Error::NotLoopback(addr));
        }
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| Error::Listen { addr, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| Error::Listen { addr, source })?;
        let shared = Arc::new(api::Shared::new(cloud::Cloud::new(config, random_tag())));
        let for_server = Arc::clone(&shared);
        let task = tokio::spawn(http::serve(listener, move |req| {
            api::handle(Arc::clone(&for_server), req)
        }));
        Ok(Simulator {
            addr,
            url: format!("http://{addr}"),
            shared,
            task,
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A client for this simulator.
    pub fn client(&self) -> Client {
        Client::new(self.url.clone())
    }

    /// Stops serving and terminates every instance (same as drop).
    pub fn shutdown(self) {}
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.task.abort();
        self.shared.terminate_all();
    }
}

/// Six hex digits, different per simulator: keeps user names apart when
/// several simulators run on one machine.
fn random_tag() -> String {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    format!("{:06x}", h.finish() & 0xff_ffff)
}
