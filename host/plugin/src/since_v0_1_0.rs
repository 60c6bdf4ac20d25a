//! `aloft:provider@0.1.0`: bindings, conversions into aloft-core's types,
//! and the host side of its imports (log, secrets).
//!
//! When a newer API folder is released, this module keeps loading 0.1.x
//! plugins: it converts into the latest types and forwards imports to the
//! latest implementation. Dropping 0.1 = deleting this file and its variant.

use crate::sandbox::{LogLevel, StoreState};
use aloft_core::catalog as c;
use aloft_core::provider as p;

/// Generated bindings, fenced: only what the host uses is re-exported.
mod bindings {
    wasmtime::component::bindgen!({
        path: "../../wit/provider@0.1.0",
        world: "provider",
        exports: { default: async },
    });
}

use bindings::aloft::provider::{log, secrets, types as t};
/// The provider world's bindings and pre-instantiation handle.
pub use bindings::{Provider, ProviderPre};

/// Semver range of API versions this module loads.
pub const API_RANGE: &str = ">=0.1.0, <0.2.0";

/// Adds the 0.1 host imports (log, secrets) to a linker.
pub fn add_to_linker(linker: &mut wasmtime::component::Linker<StoreState>) -> wasmtime::Result<()> {
    Provider::add_to_linker::<StoreState, wasmtime::component::HasSelf<StoreState>>(linker, |s| s)
}

impl t::Host for StoreState {}

impl log::Host for StoreState {
    fn write(&mut self, level: log::Level, message: String) {
        let level = match level {
            log::Level::Trace => LogLevel::Trace,
            log::Level::Debug => LogLevel::Debug,
            log::Level::Info => LogLevel::Info,
            log::Level::Warn => LogLevel::Warn,
            log::Level::Error => LogLevel::Error,
        };
        (self.log)(&self.label, level, &message);
    }
}

impl secrets::Host for StoreState {
    fn get(&mut self, name: String) -> Result<String, secrets::SecretError> {
        match self.secrets.get(&name) {
            None => Err(secrets::SecretError::NotDeclared(format!(
                "{} does not declare secret {name} in its plugin.toml",
                self.label
            ))),
            Some(None) => Err(secrets::SecretError::NotSet(format!("{name} is not set"))),
            Some(Some(v)) => Ok(v.clone()),
        }
    }
}

impl From<t::ProviderError> for p::ProviderError {
    fn from(e: t::ProviderError) -> Self {
        match e {
            t::ProviderError::Capacity(m) => p::ProviderError::Capacity(m),
            t::ProviderError::Quota(m) => p::ProviderError::Quota(m),
            t::ProviderError::Auth(m) => p::ProviderError::Auth(m),
            t::ProviderError::NotFound(m) => p::ProviderError::NotFound(m),
            t::ProviderError::Unsupported(m) => p::ProviderError::Unsupported(m),
            t::ProviderError::Transient(m) => p::ProviderError::Transient(m),
            t::ProviderError::Other(m) => p::ProviderError::Other(m),
        }
    }
}

impl From<t::CatalogData> for c::CatalogData {
    fn from(d: t::CatalogData) -> Self {
        c::CatalogData {
            version: d.version,
            data_date: d.data_date,
            offerings: d
                .offerings
                .into_iter()
                .map(|o| c::Offering {
                    instance_type: o.instance_type.into(),
                    vcpus: o.vcpus,
                    memory_gib: o.memory_gib,
                    accelerator: o.accelerator.map(|a| c::Accelerator {
                        name: a.name.into(),
                        count: a.count,
                        memory_gib: a.memory_gib,
                    }),
                    region: o.region.into(),
                    zone: o.zone.map(Into::into),
                    price: o.price,
                    spot_price: o.spot_price,
                    arch: o.arch.map(Into::into),
                })
                .collect(),
        }
    }
}

impl From<t::Identity> for p::Identity {
    fn from(i: t::Identity) -> Self {
        p::Identity {
            id: i.id,
            details: i.details,
        }
    }
}

impl From<t::Instance> for p::Instance {
    fn from(i: t::Instance) -> Self {
        p::Instance {
            id: i.id,
            rank: i.rank,
            state: match i.state {
                t::InstanceState::Pending => p::InstanceState::Pending,
                t::InstanceState::Running => p::InstanceState::Running,
                t::InstanceState::Stopping => p::InstanceState::Stopping,
                t::InstanceState::Stopped => p::InstanceState::Stopped,
                t::InstanceState::Terminating => p::InstanceState::Terminating,
                t::InstanceState::Terminated => p::InstanceState::Terminated,
            },
            public_ip: i.public_ip,
            private_ip: i.private_ip,
            ssh_user: i.ssh_user,
            ssh_port: i.ssh_port,
            instance_type: i.instance_type,
            zone: i.zone,
            spot: i.spot,
        }
    }
}

pub(crate) fn cluster(c: p::ClusterRef) -> t::ClusterRef {
    t::ClusterRef {
        cluster_name: c.cluster_name,
        region: c.region,
        zone: c.zone,
    }
}

pub(crate) fn ports(ports: Vec<p::PortRange>) -> Vec<t::PortRange> {
    ports
        .into_iter()
        .map(|r| t::PortRange {
            start: r.start,
            end: r.end,
        })
        .collect()
}

pub(crate) fn run_request(r: p::RunRequest) -> t::RunRequest {
    t::RunRequest {
        cluster: cluster(r.cluster),
        node_count: r.node_count,
        instance_type: r.instance_type,
        use_spot: r.use_spot,
        disk_size_gib: r.disk_size_gib,
        disk_tier: r.disk_tier,
        image_id: r.image_id,
        ports: ports(r.ports),
        labels: r.labels,
        ssh_public_key: r.ssh_public_key,
    }
}

pub(crate) fn instances(v: Vec<t::Instance>) -> Vec<p::Instance> {
    v.into_iter().map(Into::into).collect()
}

pub(crate) type GuestResult<T> = Result<T, t::ProviderError>;
