//! aloft-sdk: write Aloft cloud providers and storage backends as WebAssembly
//! components.
//!
//! A provider implements [`Provider`] and registers it with
//! [`export_provider!`]; a storage backend (feature `store`) implements
//! `Store` and uses `export_store!`. Everything a plugin may do outside its
//! sandbox goes through this crate:
//!
//! - [`http`]: outgoing HTTP (JSON in/out) over `wasi:http`, limited by the
//!   host to the hosts the plugin's manifest declares in `egress`;
//! - [`secrets`]: credentials the manifest declares in `secrets`;
//! - [`log`]: messages into the host's log, tagged with the plugin's name;
//! - [`catalog`]: a parser for SkyPilot's catalog CSV files, so a provider can
//!   embed its cloud's catalog snapshot.
//!
//! The WIT reference is `wit/provider@0.1.0/` in the Aloft repository.

pub mod catalog;
pub mod http;

#[doc(hidden)]
pub mod __bindings;

pub use wstd;

/// Types of the provider API (`aloft:provider/types@0.1.0`).
pub use __bindings::aloft::provider::types::{
    Accelerator, CatalogData, ClusterRef, Identity, Instance, InstanceState, Offering,
    PortRange, ProviderError, RunRequest,
};

#[cfg(feature = "store")]
pub use __bindings::exports::aloft::provider::buckets::{Bucket, MountMode};

/// Shorthand for a provider call's result.
pub type Result<T, E = ProviderError> = std::result::Result<T, E>;

/// Messages into the host's log. The host tags them with the plugin's name
/// and version.
pub mod log {
    use crate::__bindings::aloft::provider::log::{write, Level};

    /// Debug detail.
    pub fn debug(message: &str) {
        write(Level::Debug, message)
    }
    /// Normal progress.
    pub fn info(message: &str) {
        write(Level::Info, message)
    }
    /// Something the user may want to know.
    pub fn warn(message: &str) {
        write(Level::Warn, message)
    }
    /// A failure.
    pub fn error(message: &str) {
        write(Level::Error, message)
    }
}

/// Credentials the plugin's manifest declares (`secrets = [...]`).
pub mod secrets {
    pub use crate::__bindings::aloft::provider::secrets::SecretError;
    use crate::ProviderError;

    /// The value of a declared secret. A name the manifest does not declare
    /// is refused by the host with [`SecretError::NotDeclared`].
    pub fn get(name: &str) -> Result<String, SecretError> {
        crate::__bindings::aloft::provider::secrets::get(name)
    }

    /// The value of a declared secret, or `None` when it is not set here.
    /// Undeclared names are an error (a bug in the plugin).
    pub fn optional(name: &str) -> Result<Option<String>, ProviderError> {
        match get(name) {
            Ok(v) => Ok(Some(v)),
            Err(SecretError::NotSet(_)) => Ok(None),
            Err(SecretError::NotDeclared(m)) => Err(ProviderError::Other(format!(
                "secret {name} is not declared in plugin.toml: {m}"
            ))),
        }
    }

    /// The value of a declared secret that must be set: `auth` error if not.
    pub fn required(name: &str) -> Result<String, ProviderError> {
        optional(name)?.ok_or_else(|| ProviderError::Auth(format!("{name} is not set")))
    }
}

/// An error for an operation this provider does not implement.
pub fn unsupported(operation: &str) -> ProviderError {
    ProviderError::Unsupported(format!("{operation} is not supported by this provider yet"))
}

/// What a cloud provider implements. Every method but [`Provider::catalog`]
/// and [`Provider::check`] has a default that answers `unsupported`, so a
/// provider can start with its catalog and grow.
///
/// Methods are associated functions: the host may create a fresh instance
/// for any call, so keep no state between calls that you cannot rebuild.
pub trait Provider {
    /// Every offering, with the catalog's schema version and data date.
    fn catalog() -> Result<CatalogData>;

    /// Checks credentials with a cheap call and says whose they are.
    fn check() -> Result<Identity>;

    /// Starts instances until the cluster has `request.node_count`.
    fn run_instances(request: RunRequest) -> Result<Vec<Instance>> {
        let _ = request;
        Err(unsupported("run-instances"))
    }

    /// Every live instance of the cluster (empty if none).
    fn query_instances(cluster: ClusterRef) -> Result<Vec<Instance>> {
        let _ = cluster;
        Err(unsupported("query-instances"))
    }

    /// Stops the cluster's instances, keeping disks.
    fn stop_instances(cluster: ClusterRef) -> Result<()> {
        let _ = cluster;
        Err(unsupported("stop-instances"))
    }

    /// Starts the cluster's stopped instances.
    fn start_instances(cluster: ClusterRef) -> Result<Vec<Instance>> {
        let _ = cluster;
        Err(unsupported("start-instances"))
    }

    /// Terminates the cluster's instances; succeeds if they are gone.
    fn terminate_instances(cluster: ClusterRef) -> Result<()> {
        let _ = cluster;
        Err(unsupported("terminate-instances"))
    }

    /// Opens TCP ports on the cluster's instances.
    fn open_ports(cluster: ClusterRef, ports: Vec<PortRange>) -> Result<()> {
        let _ = (cluster, ports);
        Err(unsupported("open-ports"))
    }
}

/// Registers a type implementing [`Provider`] as this component's exports.
///
/// ```ignore
/// struct MyCloud;
/// impl aloft_sdk::Provider for MyCloud { /* ... */ }
/// aloft_sdk::export_provider!(MyCloud);
/// ```
#[cfg(feature = "provider")]
#[macro_export]
macro_rules! export_provider {
    ($t:ty) => {
        #[doc(hidden)]
        struct __AloftProviderExports;

        impl $crate::__bindings::exports::aloft::provider::catalog::Guest for __AloftProviderExports {
            fn offerings() -> $crate::Result<$crate::CatalogData> {
                <$t as $crate::Provider>::catalog()
            }
        }

        impl $crate::__bindings::exports::aloft::provider::check::Guest for __AloftProviderExports {
            fn check() -> $crate::Result<$crate::Identity> {
                <$t as $crate::Provider>::check()
            }
        }

        impl $crate::__bindings::exports::aloft::provider::provision::Guest for __AloftProviderExports {
            fn run_instances(request: $crate::RunRequest) -> $crate::Result<Vec<$crate::Instance>> {
                <$t as $crate::Provider>::run_instances(request)
            }
            fn query_instances(cluster: $crate::ClusterRef) -> $crate::Result<Vec<$crate::Instance>> {
                <$t as $crate::Provider>::query_instances(cluster)
            }
            fn stop_instances(cluster: $crate::ClusterRef) -> $crate::Result<()> {
                <$t as $crate::Provider>::stop_instances(cluster)
            }
            fn start_instances(cluster: $crate::ClusterRef) -> $crate::Result<Vec<$crate::Instance>> {
                <$t as $crate::Provider>::start_instances(cluster)
            }
            fn terminate_instances(cluster: $crate::ClusterRef) -> $crate::Result<()> {
                <$t as $crate::Provider>::terminate_instances(cluster)
            }
            fn open_ports(
                cluster: $crate::ClusterRef,
                ports: Vec<$crate::PortRange>,
            ) -> $crate::Result<()> {
                <$t as $crate::Provider>::open_ports(cluster, ports)
            }
        }

        $crate::__bindings::__export_world!(__AloftProviderExports with_types_in $crate::__bindings);
    };
}

/// What a storage backend implements (feature `store`).
#[cfg(feature = "store")]
pub trait Store {
    /// Checks credentials and says whose they are.
    fn check() -> Result<Identity>;
    /// Creates a bucket (succeeds if it exists and is ours).
    fn create(name: String, region: Option<String>) -> Result<()>;
    /// Deletes a bucket and its contents (succeeds if gone).
    fn delete(name: String) -> Result<()>;
    /// Whether the bucket exists.
    fn exists(name: String) -> Result<bool>;
    /// Every bucket these credentials see.
    fn list() -> Result<Vec<Bucket>>;
    /// Shell command that makes the bucket appear at `target` on a node.
    fn mount_command(name: String, sub_path: Option<String>, target: String, mode: MountMode) -> Result<String>;
    /// Shell command that uploads `source` on a node into the bucket.
    fn upload_command(source: String, name: String, sub_path: Option<String>) -> Result<String>;
}

/// Registers a type implementing `Store` as this component's exports.
#[cfg(feature = "store")]
#[macro_export]
macro_rules! export_store {
    ($t:ty) => {
        #[doc(hidden)]
        struct __AloftStoreExports;

        impl $crate::__bindings::exports::aloft::provider::check::Guest for __AloftStoreExports {
            fn check() -> $crate::Result<$crate::Identity> {
                <$t as $crate::Store>::check()
            }
        }

        impl $crate::__bindings::exports::aloft::provider::buckets::Guest for __AloftStoreExports {
            fn create_bucket(name: String, region: Option<String>) -> $crate::Result<()> {
                <$t as $crate::Store>::create(name, region)
            }
            fn delete_bucket(name: String) -> $crate::Result<()> {
                <$t as $crate::Store>::delete(name)
            }
            fn bucket_exists(name: String) -> $crate::Result<bool> {
                <$t as $crate::Store>::exists(name)
            }
            fn list_buckets() -> $crate::Result<Vec<$crate::Bucket>> {
                <$t as $crate::Store>::list()
            }
            fn mount_command(
                name: String,
                sub_path: Option<String>,
                target: String,
                mode: $crate::MountMode,
            ) -> $crate::Result<String> {
                <$t as $crate::Store>::mount_command(name, sub_path, target, mode)
            }
            fn upload_command(source: String, name: String, sub_path: Option<String>) -> $crate::Result<String> {
                <$t as $crate::Store>::upload_command(source, name, sub_path)
            }
        }

        $crate::__bindings::__export_world!(__AloftStoreExports with_types_in $crate::__bindings);
    };
}

/// For providers whose credential validation is not written yet: `auth` if
/// any required secret is missing, else `unsupported` saying the credentials
/// are present but were not validated with the cloud.
pub fn check_credentials_present(required: &[&str]) -> Result<Identity> {
    let missing: Vec<&str> = required
        .iter()
        .copied()
        .filter(|name| !matches!(secrets::optional(name), Ok(Some(_))))
        .collect();
    if !missing.is_empty() {
        return Err(ProviderError::Auth(format!("not set: {}", missing.join(", "))));
    }
    Err(ProviderError::Unsupported(
        "credentials are set, but this provider cannot validate them with the cloud yet".into(),
    ))
}
