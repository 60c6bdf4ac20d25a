//! aloft-plugin: the one crate that owns wasmtime.
//!
//! - [`host`]: the Engine and its policy (pooling allocator, epoch deadlines,
//!   memory limit), the compiled-component cache, API-version and import
//!   checks;
//! - [`sandbox`]: what an instance can reach (log, declared secrets, clock,
//!   randomness, HTTP to its egress list only);
//! - [`call`]: calling a plugin (fresh instance per call, typed outcomes);
//! - [`manifest`], the `plugin.toml` format;
//! - [`registry`]: installed plugins under `$ALOFT_HOME/plugins`, install,
//!   remove, pack;
//! - `since_v0_1_0`: the `aloft:provider@0.1.0` adapter;
//! - [`WasmProvider`]: a loaded plugin as an `aloft_core::provider::Provider`.

pub mod call;
pub mod credentials;
pub mod host;
pub mod manifest;
pub mod registry;
pub mod sandbox;
mod since_v0_1_0;

pub use call::{Call, CallError, LoadedPlugin, Op, Reply, Session};
pub use host::{Inspected, Limits, PluginHost};
pub use manifest::Manifest;
pub use registry::{Installed, Registry};

use aloft_core::catalog::CatalogData;
use aloft_core::provider::{self as p, ClusterRef, Identity, Instance, PortRange, RunRequest};
use std::path::PathBuf;

/// Errors loading, installing or inspecting plugins. Every variant names the
/// file or plugin it is about.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading or writing a file failed.
    #[error("{}: {message}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What happened.
        message: String,
    },
    /// A manifest is malformed.
    #[error("{}: {message}", path.display())]
    Manifest {
        /// The manifest.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The component's sha256 is not the manifest's.
    #[error("{}: sha256 is {actual} but plugin.toml says {expected}", path.display())]
    HashMismatch {
        /// The component.
        path: PathBuf,
        /// From the manifest.
        expected: String,
        /// Of the file.
        actual: String,
    },
    /// The bytes are not a valid component.
    #[error("{}: not a valid WebAssembly component: {message}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// The component's API version is outside the host's range.
    #[error("plugin {plugin} implements {api}, which this host does not support (it supports {supported})")]
    UnsupportedApi {
        /// name@version.
        plugin: String,
        /// What it exports.
        api: String,
        /// What the host supports.
        supported: String,
    },
    /// The component imports something the host does not give.
    #[error("{}: imports {import}, which plugins are not given", path.display())]
    ForbiddenImport {
        /// The component.
        path: PathBuf,
        /// The import (or the linker's message).
        import: String,
    },
    /// Refused for another reason.
    #[error("{}: {message}", path.display())]
    Refused {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// No such installed plugin.
    #[error("no installed plugin matches {spec:?}")]
    NotInstalled {
        /// What was asked for.
        spec: String,
    },
    /// A `name[@version]` that does not parse.
    #[error("{spec:?}: {message}")]
    BadSpec {
        /// What was given.
        spec: String,
        /// Why it is wrong.
        message: String,
    },
    /// The engine could not be set up.
    #[error("plugin engine: {0}")]
    Engine(String),
}

/// A loaded wasm plugin as a provider: one fresh instance per call.
pub struct WasmProvider {
    plugin: LoadedPlugin,
}

impl WasmProvider {
    /// Wraps a loaded plugin.
    pub fn new(plugin: LoadedPlugin) -> WasmProvider {
        WasmProvider { plugin }
    }

    async fn call(&self, call: Call) -> p::Result<Reply> {
        self.plugin.call(call).await.map_err(Into::into)
    }

    fn unexpected<T>(&self, reply: Reply) -> p::Result<T> {
        Err(p::Error::Plugin {
            provider: self.plugin.label(),
            message: format!("host bug: unexpected reply {reply:?}"),
        })
    }
}

#[async_trait::async_trait]
impl p::Provider for WasmProvider {
    fn label(&self) -> String {
        self.plugin.label()
    }
    async fn catalog(&self) -> p::Result<CatalogData> {
        match self.call(Call::Catalog).await? {
            Reply::Catalog(c) => Ok(c),
            r => self.unexpected(r),
        }
    }
    async fn check(&self) -> p::Result<Identity> {
        match self.call(Call::Check).await? {
            Reply::Identity(i) => Ok(i),
            r => self.unexpected(r),
        }
    }
    async fn run_instances(&self, request: RunRequest) -> p::Result<Vec<Instance>> {
        match self.call(Call::RunInstances(request)).await? {
            Reply::Instances(v) => Ok(v),
            r => self.unexpected(r),
        }
    }
    async fn query_instances(&self, cluster: ClusterRef) -> p::Result<Vec<Instance>> {
        match self.call(Call::QueryInstances(cluster)).await? {
            Reply::Instances(v) => Ok(v),
            r => self.unexpected(r),
        }
    }
    async fn stop_instances(&self, cluster: ClusterRef) -> p::Result<()> {
        self.call(Call::StopInstances(cluster)).await.map(drop)
    }
    async fn start_instances(&self, cluster: ClusterRef) -> p::Result<Vec<Instance>> {
        match self.call(Call::StartInstances(cluster)).await? {
            Reply::Instances(v) => Ok(v),
            r => self.unexpected(r),
        }
    }
    async fn terminate_instances(&self, cluster: ClusterRef) -> p::Result<()> {
        self.call(Call::TerminateInstances(cluster)).await.map(drop)
    }
    async fn open_ports(&self, cluster: ClusterRef, ports: Vec<PortRange>) -> p::Result<()> {
        self.call(Call::OpenPorts(cluster, ports)).await.map(drop)
    }
}
