//! The provider trait, its requests and results, and its typed errors.
//!
//! Two error channels are kept apart: [`ProviderError`] is what the cloud
//! said (capacity, quota, auth, ...: the optimizer fails over on these);
//! [`Error::Plugin`] is the provider itself failing (a trap, a deadline, a
//! memory limit, a refused load), after which the call's result is unknown.

use crate::catalog::CatalogData;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// A typed error from a provider, mirroring the WIT `provider-error`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "kind", content = "message", rename_all = "kebab-case")]
pub enum ProviderError {
    /// No capacity for this instance type in this zone/region now.
    #[error("capacity: {0}")]
    Capacity(String),
    /// An account quota or limit would be exceeded.
    #[error("quota: {0}")]
    Quota(String),
    /// Credentials missing, expired or not allowed.
    #[error("auth: {0}")]
    Auth(String),
    /// The named thing does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The provider does not implement this.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// May succeed on retry.
    #[error("transient: {0}")]
    Transient(String),
    /// Anything else.
    #[error("{0}")]
    Other(String),
}

impl ProviderError {
    /// The WIT case name: `capacity`, `quota`, `auth`, `not-found`, ...
    pub fn kind(&self) -> &'static str {
        match self {
            ProviderError::Capacity(_) => "capacity",
            ProviderError::Quota(_) => "quota",
            ProviderError::Auth(_) => "auth",
            ProviderError::NotFound(_) => "not-found",
            ProviderError::Unsupported(_) => "unsupported",
            ProviderError::Transient(_) => "transient",
            ProviderError::Other(_) => "other",
        }
    }
}

/// A failed provider call, tagged with the provider (`name@version`).
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The provider answered with a typed error.
    #[error("provider {provider}: {error}")]
    Provider {
        /// `name@version`.
        provider: String,
        /// What the cloud said.
        error: ProviderError,
    },
    /// The provider itself failed: trapped, ran past its deadline or memory
    /// limit, or could not be loaded.
    #[error("provider {provider}: {message}")]
    Plugin {
        /// `name@version`.
        provider: String,
        /// What happened.
        message: String,
    },
}

/// An inclusive TCP port range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortRange {
    /// First port.
    pub start: u16,
    /// Last port (inclusive).
    pub end: u16,
}

/// Names one cluster's instances.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterRef {
    /// Cluster name (`[a-z0-9-]`).
    pub cluster_name: String,
    /// Region.
    pub region: String,
    /// Zone, if pinned.
    #[serde(default)]
    pub zone: Option<String>,
}

/// What to start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunRequest {
    /// The cluster.
    pub cluster: ClusterRef,
    /// Nodes wanted in total.
    pub node_count: u32,
    /// Instance type.
    pub instance_type: String,
    /// Spot instead of on-demand.
    #[serde(default)]
    pub use_spot: bool,
    /// Boot disk GiB.
    #[serde(default = "default_disk")]
    pub disk_size_gib: u32,
    /// Disk tier hint.
    #[serde(default)]
    pub disk_tier: Option<String>,
    /// Image; none = provider default.
    #[serde(default)]
    pub image_id: Option<String>,
    /// Ports to open besides SSH.
    #[serde(default)]
    pub ports: Vec<PortRange>,
    /// User labels.
    #[serde(default)]
    pub labels: Vec<(String, String)>,
    /// OpenSSH public key for every node.
    #[serde(default)]
    pub ssh_public_key: String,
}

fn default_disk() -> u32 {
    256
}

/// Instance lifecycle state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InstanceState {
    /// Requested.
    Pending,
    /// Running.
    Running,
    /// Stopping.
    Stopping,
    /// Stopped.
    Stopped,
    /// Terminating.
    Terminating,
    /// Gone.
    Terminated,
}

/// One node of a cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Instance {
    /// Cloud instance id.
    pub id: String,
    /// Node rank; 0 is the head.
    pub rank: u32,
    /// State.
    pub state: InstanceState,
    /// Public address.
    pub public_ip: Option<String>,
    /// Private address.
    pub private_ip: Option<String>,
    /// SSH user.
    pub ssh_user: String,
    /// SSH port.
    pub ssh_port: u16,
    /// Instance type.
    pub instance_type: String,
    /// Zone.
    pub zone: Option<String>,
    /// Spot instance.
    pub spot: bool,
}

/// Whose credentials a provider has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Identity {
    /// Stable identity string.
    pub id: String,
    /// Extra facts (key, value).
    #[serde(default)]
    pub details: Vec<(String, String)>,
}

/// Shorthand for a provider call's result.
pub type Result<T> = std::result::Result<T, Error>;

/// A cloud provider, whether a wasm component or native (local, ssh).
#[async_trait]
pub trait Provider: Send + Sync {
    /// `name@version`, used in every error.
    fn label(&self) -> String;
    /// Every offering.
    async fn catalog(&self) -> Result<CatalogData>;
    /// Credentials present and valid; whose.
    async fn check(&self) -> Result<Identity>;
    /// Start instances until the cluster has `node_count`.
    async fn run_instances(&self, request: RunRequest) -> Result<Vec<Instance>>;
    /// Live instances of the cluster.
    async fn query_instances(&self, cluster: ClusterRef) -> Result<Vec<Instance>>;
    /// Stop the cluster's instances.
    async fn stop_instances(&self, cluster: ClusterRef) -> Result<()>;
    /// Start the cluster's stopped instances.
    async fn start_instances(&self, cluster: ClusterRef) -> Result<Vec<Instance>>;
    /// Terminate the cluster's instances.
    async fn terminate_instances(&self, cluster: ClusterRef) -> Result<()>;
    /// Open ports on the cluster.
    async fn open_ports(&self, cluster: ClusterRef, ports: Vec<PortRange>) -> Result<()>;
}
