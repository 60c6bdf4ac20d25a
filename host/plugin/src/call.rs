//! Calling a loaded plugin: one fresh instance per call (or a [`Session`]
//! for several), each call under its deadline and memory limit.
//!
//! Three outcomes are kept apart: the provider's typed answer
//! ([`CallError::Provider`]), the plugin failing (trap, deadline, memory:
//! the instance is discarded), and the host refusing to instantiate.

use crate::host::{PluginHost, TICK};
use crate::manifest::Manifest;
use crate::sandbox::{LogSink, StoreState};
use crate::since_v0_1_0::{self as v01, Provider, ProviderPre};
use aloft_core::catalog::CatalogData;
use aloft_core::provider::{ClusterRef, Identity, Instance, PortRange, ProviderError, RunRequest};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;
use wasmtime::{Engine, Store};

/// The operations a provider exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Op {
    /// catalog.offerings
    Catalog,
    /// check.check
    Check,
    /// provision.run-instances
    RunInstances,
    /// provision.query-instances
    QueryInstances,
    /// provision.stop-instances
    StopInstances,
    /// provision.start-instances
    StartInstances,
    /// provision.terminate-instances
    TerminateInstances,
    /// provision.open-ports
    OpenPorts,
}

const OPS: &[(Op, &str)] = &[
    (Op::Catalog, "catalog"),
    (Op::Check, "check"),
    (Op::RunInstances, "run-instances"),
    (Op::QueryInstances, "query-instances"),
    (Op::StopInstances, "stop-instances"),
    (Op::StartInstances, "start-instances"),
    (Op::TerminateInstances, "terminate-instances"),
    (Op::OpenPorts, "open-ports"),
];

impl Op {
    /// The WIT name of the operation.
    pub fn name(self) -> &'static str {
        OPS.iter()
            .find(|(o, _)| *o == self)
            .map(|(_, n)| *n)
            .unwrap_or("?")
    }
    /// Parses a WIT name.
    pub fn parse(name: &str) -> Option<Op> {
        OPS.iter().find(|(_, n)| *n == name).map(|(o, _)| *o)
    }
    /// All names, comma-separated (for error hints).
    pub fn names() -> String {
        OPS.iter().map(|(_, n)| *n).collect::<Vec<_>>().join(", ")
    }
}

/// One call with its arguments.
#[derive(Debug, Clone, PartialEq)]
pub enum Call {
    /// Every offering.
    Catalog,
    /// Credentials check.
    Check,
    /// Start instances.
    RunInstances(RunRequest),
    /// List instances.
    QueryInstances(ClusterRef),
    /// Stop instances.
    StopInstances(ClusterRef),
    /// Start stopped instances.
    StartInstances(ClusterRef),
    /// Terminate instances.
    TerminateInstances(ClusterRef),
    /// Open ports.
    OpenPorts(ClusterRef, Vec<PortRange>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OpenPortsArgs {
    cluster: ClusterRef,
    ports: Vec<PortRange>,
}

impl Call {
    /// Builds a call from an operation name and JSON arguments (the request
    /// record for run-instances, a cluster-ref for the others, `{cluster,
    /// ports}` for open-ports, nothing or `null` for catalog and check).
    pub fn from_json(op: &str, args: &str) -> Result<Call, String> {
        let op = Op::parse(op)
            .ok_or_else(|| format!("unknown operation {op:?}; one of: {}", Op::names()))?;
        let args = if args.trim().is_empty() { "null" } else { args };
        let parse_err = |e: serde_json::Error| format!("arguments of {}: {e}", op.name());
        Ok(match op {
            Op::Catalog => Call::Catalog,
            Op::Check => Call::Check,
            Op::RunInstances => Call::RunInstances(serde_json::from_str(args).map_err(parse_err)?),
            Op::QueryInstances => {
                Call::QueryInstances(serde_json::from_str(args).map_err(parse_err)?)
            }
            Op::StopInstances => {
                Call::StopInstances(serde_json::from_str(args).map_err(parse_err)?)
            }
            Op::StartInstances => {
                Call::StartInstances(serde_json::from_str(args).map_err(parse_err)?)
            }
            Op::TerminateInstances => {
                Call::TerminateInstances(serde_json::from_str(args).map_err(parse_err)?)
            }
            Op::OpenPorts => {
                let a: OpenPortsArgs = serde_json::from_str(args).map_err(parse_err)?;
                Call::OpenPorts(a.cluster, a.ports)
            }
        })
    }

    /// Which operation this is.
    pub fn op(&self) -> Op {
        match self {
            Call::Catalog => Op::Catalog,
            Call::Check => Op::Check,
            Call::RunInstances(_) => Op::RunInstances,
            Call::QueryInstances(_) => Op::QueryInstances,
            Call::StopInstances(_) => Op::StopInstances,
            Call::StartInstances(_) => Op::StartInstances,
            Call::TerminateInstances(_) => Op::TerminateInstances,
            Call::OpenPorts(..) => Op::OpenPorts,
        }
    }
}

/// A successful call's result.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Reply {
    /// From catalog.
    Catalog(CatalogData),
    /// From check.
    Identity(Identity),
    /// From run/query/start.
    Instances(Vec<Instance>),
    /// From stop/terminate/open-ports.
    Done,
}

/// A failed call, tagged with the plugin (`name@version`).
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    /// The provider answered with a typed error.
    #[error("plugin {plugin}: {op}: {error}")]
    Provider {
        /// name@version
        plugin: String,
        /// operation
        op: &'static str,
        /// the typed error
        error: ProviderError,
    },
    /// The call ran past its deadline and was stopped.
    #[error("plugin {plugin}: {op}: deadline of {}ms exceeded; the call was stopped", .deadline.as_millis())]
    Deadline {
        /// name@version
        plugin: String,
        /// operation
        op: &'static str,
        /// the deadline
        deadline: Duration,
    },
    /// The instance hit its memory limit and was stopped.
    #[error(
        "plugin {plugin}: {op}: memory limit of {limit_mib} MiB exceeded; the call was stopped"
    )]
    MemoryLimit {
        /// name@version
        plugin: String,
        /// operation
        op: &'static str,
        /// the limit
        limit_mib: usize,
    },
    /// The plugin trapped (panicked, hit `unreachable`, ...).
    #[error("plugin {plugin}: {op}: trapped: {message}")]
    Trap {
        /// name@version
        plugin: String,
        /// operation
        op: &'static str,
        /// trap message and the guest's last stderr lines
        message: String,
    },
    /// The plugin could not be instantiated.
    #[error("plugin {plugin}: could not instantiate: {message}")]
    Instantiate {
        /// name@version
        plugin: String,
        /// why
        message: String,
    },
}

impl CallError {
    /// The plugin's `name@version`.
    pub fn plugin(&self) -> &str {
        match self {
            CallError::Provider { plugin, .. }
            | CallError::Deadline { plugin, .. }
            | CallError::MemoryLimit { plugin, .. }
            | CallError::Trap { plugin, .. }
            | CallError::Instantiate { plugin, .. } => plugin,
        }
    }
}

impl From<CallError> for aloft_core::provider::Error {
    fn from(e: CallError) -> Self {
        match e {
            CallError::Provider { plugin, error, .. } => aloft_core::provider::Error::Provider {
                provider: plugin,
                error,
            },
            other => aloft_core::provider::Error::Plugin {
                provider: other.plugin().to_string(),
                message: other.to_string(),
            },
        }
    }
}

/// A plugin ready to instantiate: manifest, pre-linked component, limits.
#[derive(Clone)]
pub struct LoadedPlugin {
    manifest: Manifest,
    inspected: crate::Inspected,
    engine: Engine,
    pre: ProviderPre<StoreState>,
    limits: crate::Limits,
    log: LogSink,
    /// Host settings for this plugin's calls (declared names only).
    settings: BTreeMap<String, String>,
}

impl LoadedPlugin {
    pub(crate) fn new(
        host: &PluginHost,
        manifest: Manifest,
        inspected: crate::Inspected,
        pre: ProviderPre<StoreState>,
    ) -> LoadedPlugin {
        LoadedPlugin {
            manifest,
            inspected,
            engine: host.engine.clone(),
            pre,
            limits: host.limits.clone(),
            log: host.log.clone(),
            settings: BTreeMap::new(),
        }
    }

    /// Passes a host setting (a declared secret name starting with
    /// `ALOFT_CATALOG_`, which the environment never fills) to this plugin's
    /// calls. Refused when the manifest does not declare it: the plugin
    /// does not support that setting.
    pub fn with_setting(mut self, name: &str, value: &str) -> Result<LoadedPlugin, String> {
        if !name.starts_with(crate::credentials::HOST_SETTING_PREFIX)
            || !self.manifest.secrets.iter().any(|s| s == name)
        {
            return Err(format!(
                "{} does not declare the setting {name}",
                self.label()
            ));
        }
        self.settings.insert(name.to_string(), value.to_string());
        Ok(self)
    }

    /// The plugin's manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// `name@version`.
    pub fn label(&self) -> String {
        self.manifest.label()
    }

    /// What the component itself says: API, kind, imports, exports.
    pub fn inspected(&self) -> &crate::Inspected {
        &self.inspected
    }

    /// A fresh instance for one or more calls.
    pub async fn session(&self) -> Result<Session, CallError> {
        let mut state = StoreState::new(&self.manifest, self.limits.memory_bytes, self.log.clone());
        for (k, v) in &self.settings {
            state.secrets.insert(k.clone(), Some(v.clone()));
        }
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limits);
        store.epoch_deadline_trap();
        // Instantiation runs start functions: bound it like a call.
        store.set_epoch_deadline(ticks(self.limits.default_deadline));
        let instantiate = self.pre.instantiate_async(&mut store);
        let bindings = match tokio::time::timeout(self.limits.default_deadline, instantiate).await {
            Ok(Ok(b)) => b,
            Ok(Err(e)) => {
                return Err(CallError::Instantiate {
                    plugin: self.label(),
                    message: format!("{e:#}"),
                })
            }
            Err(_) => {
                return Err(CallError::Instantiate {
                    plugin: self.label(),
                    message: "instantiation ran past its deadline".into(),
                })
            }
        };
        Ok(Session {
            plugin: self.clone(),
            store,
            bindings,
            poisoned: false,
        })
    }

    /// One call on a fresh instance.
    pub async fn call(&self, call: Call) -> Result<Reply, CallError> {
        self.session().await?.call(call).await
    }
}

fn ticks(d: Duration) -> u64 {
    (d.as_millis() / TICK.as_millis()).max(1) as u64
}

/// A live instance. After a trap it is discarded: further calls fail.
pub struct Session {
    plugin: LoadedPlugin,
    store: Store<StoreState>,
    bindings: Provider,
    poisoned: bool,
}

impl Session {
    /// Hosts this instance was refused egress to, so far.
    pub fn refused_hosts(&self) -> Vec<String> {
        self.store.data().refused_hosts().to_vec()
    }

    /// Runs one call under its deadline.
    pub async fn call(&mut self, call: Call) -> Result<Reply, CallError> {
        let op = call.op();
        let label = self.plugin.label();
        if self.poisoned {
            return Err(CallError::Trap {
                plugin: label,
                op: op.name(),
                message: "instance was discarded after an earlier trap".into(),
            });
        }
        let deadline = self.plugin.limits.deadline(op);
        self.store.set_epoch_deadline(ticks(deadline));
        let outcome =
            tokio::time::timeout(deadline, dispatch(&self.bindings, &mut self.store, call)).await;
        match outcome {
            Ok(Ok(Ok(reply))) => Ok(reply),
            Ok(Ok(Err(error))) => Err(CallError::Provider {
                plugin: label,
                op: op.name(),
                error,
            }),
            Ok(Err(trap)) => {
                self.poisoned = true;
                let state = self.store.data();
                if state.limits.hit {
                    return Err(CallError::MemoryLimit {
                        plugin: label,
                        op: op.name(),
                        limit_mib: self.plugin.limits.memory_bytes >> 20,
                    });
                }
                if matches!(
                    trap.downcast_ref::<wasmtime::Trap>(),
                    Some(wasmtime::Trap::Interrupt)
                ) {
                    return Err(CallError::Deadline {
                        plugin: label,
                        op: op.name(),
                        deadline,
                    });
                }
                let what = match trap.downcast_ref::<wasmtime::Trap>() {
                    Some(code) => code.to_string(),
                    None => trap.root_cause().to_string(),
                };
                let tail = state.stderr_tail();
                let message = if tail.is_empty() {
                    what
                } else {
                    format!("{what}; guest stderr: {tail}")
                };
                Err(CallError::Trap {
                    plugin: label,
                    op: op.name(),
                    message,
                })
            }
            Err(_elapsed) => {
                self.poisoned = true;
                Err(CallError::Deadline {
                    plugin: label,
                    op: op.name(),
                    deadline,
                })
            }
        }
    }
}

async fn dispatch(
    b: &Provider,
    store: &mut Store<StoreState>,
    call: Call,
) -> wasmtime::Result<Result<Reply, ProviderError>> {
    fn map<T>(r: v01::GuestResult<T>, f: impl FnOnce(T) -> Reply) -> Result<Reply, ProviderError> {
        r.map(f).map_err(Into::into)
    }
    let provision = b.aloft_provider_provision();
    Ok(match call {
        Call::Catalog => map(
            b.aloft_provider_catalog()
                .call_offerings(&mut *store)
                .await?,
            |c| Reply::Catalog(c.into()),
        ),
        Call::Check => map(
            b.aloft_provider_check().call_check(&mut *store).await?,
            |i| Reply::Identity(i.into()),
        ),
        Call::RunInstances(r) => map(
            provision
                .call_run_instances(&mut *store, &v01::run_request(r))
                .await?,
            |v| Reply::Instances(v01::instances(v)),
        ),
        Call::QueryInstances(c) => map(
            provision
                .call_query_instances(&mut *store, &v01::cluster(c))
                .await?,
            |v| Reply::Instances(v01::instances(v)),
        ),
        Call::StopInstances(c) => map(
            provision
                .call_stop_instances(&mut *store, &v01::cluster(c))
                .await?,
            |()| Reply::Done,
        ),
        Call::StartInstances(c) => map(
            provision
                .call_start_instances(&mut *store, &v01::cluster(c))
                .await?,
            |v| Reply::Instances(v01::instances(v)),
        ),
        Call::TerminateInstances(c) => map(
            provision
                .call_terminate_instances(&mut *store, &v01::cluster(c))
                .await?,
            |()| Reply::Done,
        ),
        Call::OpenPorts(c, p) => map(
            provision
                .call_open_ports(&mut *store, &v01::cluster(c), &v01::ports(p))
                .await?,
            |()| Reply::Done,
        ),
    })
}
