//! The plugin host: one wasmtime Engine, its policy, and the on-disk cache of
//! compiled components.
//!
//! Policy: pooling allocator; epoch interruption with a ticker thread (an
//! epoch deadline on every call traps); a memory limit per instance; the
//! component cache under `$ALOFT_HOME/cache/components/`, keyed by the
//! component's sha256 and the engine's compatibility hash.

use crate::manifest::{Kind, Manifest};
use crate::sandbox::{stderr_sink, LogSink, StoreState};
use crate::since_v0_1_0;
use crate::{Error, Op};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// How often the epoch advances.
pub(crate) const TICK: Duration = Duration::from_millis(10);

/// Per-call deadlines and the per-instance memory limit.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Memory limit of one instance, bytes.
    pub memory_bytes: usize,
    /// Deadline of calls not listed in `deadlines`.
    pub default_deadline: Duration,
    /// Deadlines per call kind.
    pub deadlines: BTreeMap<Op, Duration>,
}

impl Default for Limits {
    fn default() -> Self {
        let mut deadlines = BTreeMap::new();
        deadlines.insert(Op::Catalog, Duration::from_secs(30));
        deadlines.insert(Op::Check, Duration::from_secs(10));
        for op in [
            Op::RunInstances,
            Op::StartInstances,
            Op::StopInstances,
            Op::TerminateInstances,
        ] {
            // A provider answers once the request is taken; waiting for the
            // instances is polling with query-instances.
            deadlines.insert(op, Duration::from_secs(30));
        }
        Limits {
            memory_bytes: 512 << 20,
            default_deadline: Duration::from_secs(5),
            deadlines,
        }
    }
}

impl Limits {
    /// Defaults, overridden by `ALOFT_PLUGIN_DEADLINES` (`op=dur,...`, e.g.
    /// `check=2s,catalog=500ms,default=5s`) and `ALOFT_PLUGIN_MEMORY_MB`.
    pub fn from_env() -> Result<Limits, String> {
        Limits::from_env_over(Limits::default())
    }

    /// `base`, overridden by the same variables as [`Limits::from_env`]
    /// (for a command whose calls want other defaults).
    pub fn from_env_over(base: Limits) -> Result<Limits, String> {
        let mut limits = base;
        if let Ok(spec) = std::env::var("ALOFT_PLUGIN_DEADLINES") {
            limits.apply_deadlines(&spec)?;
        }
        if let Ok(mb) = std::env::var("ALOFT_PLUGIN_MEMORY_MB") {
            let mb: usize = mb
                .trim()
                .parse()
                .map_err(|_| format!("ALOFT_PLUGIN_MEMORY_MB={mb:?} is not a number of MiB"))?;
            if !(16..=MAX_MEMORY_MB).contains(&mb) {
                return Err(format!(
                    "ALOFT_PLUGIN_MEMORY_MB must be 16..={MAX_MEMORY_MB}, got {mb}"
                ));
            }
            limits.memory_bytes = mb << 20;
        }
        Ok(limits)
    }

    /// Applies `op=duration` pairs; durations are `500ms`, `5s` or `2m`.
    pub fn apply_deadlines(&mut self, spec: &str) -> Result<(), String> {
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (op, dur) = part
                .split_once('=')
                .ok_or_else(|| format!("deadline {part:?}: expected op=duration"))?;
            let dur = parse_duration(dur.trim()).ok_or_else(|| {
                format!("deadline {part:?}: {dur:?} is not a duration like 500ms, 5s, 2m")
            })?;
            if op.trim() == "default" {
                self.default_deadline = dur;
            } else {
                let op = Op::parse(op.trim()).ok_or_else(|| {
                    format!(
                        "deadline {part:?}: unknown call {op:?} (one of: default, {})",
                        Op::names()
                    )
                })?;
                self.deadlines.insert(op, dur);
            }
        }
        Ok(())
    }

    /// The deadline for one call kind.
    pub fn deadline(&self, op: Op) -> Duration {
        self.deadlines
            .get(&op)
            .copied()
            .unwrap_or(self.default_deadline)
    }
}

const MAX_MEMORY_MB: usize = 4096;

fn parse_duration(s: &str) -> Option<Duration> {
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit())?);
    let n: u64 = num.parse().ok()?;
    match unit {
        "ms" => Some(Duration::from_millis(n)),
        "s" => Some(Duration::from_secs(n)),
        "m" => Some(Duration::from_secs(n * 60)),
        _ => None,
    }
}

/// Owns the Engine, the linker with the host imports, and the cache.
pub struct PluginHost {
    pub(crate) engine: Engine,
    pub(crate) linker: Arc<Linker<StoreState>>,
    pub(crate) limits: Limits,
    pub(crate) log: LogSink,
    cache_dir: PathBuf,
    engine_id: String,
    _ticker: Ticker,
}

/// What a component is, read from its own type (not from its manifest).
#[derive(Debug, Clone)]
pub struct Inspected {
    /// `aloft:provider@X.Y.Z` as exported by the component.
    pub api: String,
    /// The version part of `api`.
    pub api_version: semver::Version,
    /// Provider or store, from its exports.
    pub kind: Kind,
    /// Every import name.
    pub imports: Vec<String>,
    /// Every export name.
    pub exports: Vec<String>,
}

impl PluginHost {
    /// A host whose cache lives under `home` (normally `$ALOFT_HOME`).
    pub fn new(home: &Path, limits: Limits) -> Result<PluginHost, Error> {
        Self::with_log(home, limits, stderr_sink())
    }

    /// Like [`PluginHost::new`] with a custom log sink.
    pub fn with_log(home: &Path, limits: Limits, log: LogSink) -> Result<PluginHost, Error> {
        let mut pool = PoolingAllocationConfig::default();
        let slot = (limits.memory_bytes.max(64 << 20))
            .next_power_of_two()
            .min(MAX_MEMORY_MB << 20);
        pool.total_component_instances(64)
            .total_core_instances(256)
            .total_memories(128)
            .total_tables(256)
            .total_stacks(64)
            .max_memory_size(slot);
        let mut config = Config::new();
        config
            .wasm_component_model(true)
            .epoch_interruption(true)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&config).map_err(|e| Error::Engine(format!("{e:#}")))?;
        let mut linker: Linker<StoreState> = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .and_then(|()| wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker))
            .and_then(|()| since_v0_1_0::add_to_linker(&mut linker))
            .map_err(|e| Error::Engine(format!("linking host imports: {e:#}")))?;
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let engine_id = format!("{:016x}", hasher.finish());
        let ticker = Ticker::start(&engine);
        Ok(PluginHost {
            engine,
            linker: Arc::new(linker),
            limits,
            log,
            cache_dir: home.join("cache").join("components"),
            engine_id,
            _ticker: ticker,
        })
    }

    /// The engine's compatibility id (part of every cache key).
    pub fn engine_id(&self) -> &str {
        &self.engine_id
    }

    /// Limits applied to every call.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Compiles a component from bytes without touching the cache.
    pub fn compile(&self, bytes: &[u8], path: &Path) -> Result<Component, Error> {
        Component::from_binary(&self.engine, bytes).map_err(|e| Error::Corrupt {
            path: path.to_path_buf(),
            message: format!("{e:#}"),
        })
    }

    /// Reads a component's API version, kind, imports and exports from its
    /// own type, without judging them.
    pub fn describe(&self, component: &Component, path: &Path) -> Result<Inspected, Error> {
        let ty = component.component_type();
        let imports: Vec<String> = ty
            .imports(&self.engine)
            .map(|(n, _)| n.to_string())
            .collect();
        let exports: Vec<String> = ty
            .exports(&self.engine)
            .map(|(n, _)| n.to_string())
            .collect();
        let mut api: Option<(String, semver::Version)> = None;
        let mut kind = None;
        for name in &exports {
            let Some(rest) = name.strip_prefix("aloft:provider/") else {
                continue;
            };
            let (iface, version) = rest.split_once('@').ok_or_else(|| Error::Refused {
                path: path.to_path_buf(),
                message: format!("export {name} has no version"),
            })?;
            let version = semver::Version::parse(version).map_err(|e| Error::Refused {
                path: path.to_path_buf(),
                message: format!("export {name}: bad version: {e}"),
            })?;
            match &api {
                Some((_, v)) if *v != version => {
                    return Err(Error::Refused {
                        path: path.to_path_buf(),
                        message: format!("exports mix API versions {v} and {version}"),
                    })
                }
                _ => api = Some((format!("aloft:provider@{version}"), version)),
            }
            match iface {
                "provision" | "catalog" => kind = Some(Kind::Provider),
                "buckets" => kind = kind.or(Some(Kind::Store)),
                _ => {}
            }
        }
        let (api, api_version) = api.ok_or_else(|| Error::Refused {
            path: path.to_path_buf(),
            message: "exports no aloft:provider interface (is it a provider component?)".into(),
        })?;
        let kind = kind.unwrap_or(Kind::Provider);
        Ok(Inspected {
            api,
            api_version,
            kind,
            imports,
            exports,
        })
    }

    /// [`PluginHost::describe`], then checks that the API version is in the
    /// host's range and that every import is one the host gives.
    pub fn inspect(
        &self,
        component: &Component,
        path: &Path,
        plugin: &str,
    ) -> Result<Inspected, Error> {
        let Inspected {
            api,
            api_version,
            kind,
            imports,
            exports,
        } = self.describe(component, path)?;
        let range = semver::VersionReq::parse(since_v0_1_0::API_RANGE)
            .map_err(|e| Error::Engine(e.to_string()))?;
        if !range.matches(&api_version) {
            return Err(Error::UnsupportedApi {
                plugin: plugin.to_string(),
                api: api.clone(),
                supported: format!("aloft:provider {}", since_v0_1_0::API_RANGE),
            });
        }
        for import in &imports {
            if !import_allowed(import) {
                return Err(Error::ForbiddenImport {
                    path: path.to_path_buf(),
                    import: import.clone(),
                });
            }
        }
        // The linker is the final word: every import must resolve.
        self.linker
            .instantiate_pre(component)
            .map_err(|e| Error::ForbiddenImport {
                path: path.to_path_buf(),
                import: format!("{e:#}"),
            })?;
        Ok(Inspected {
            api,
            api_version,
            kind,
            imports,
            exports,
        })
    }

    /// Loads an installed component: from the compiled cache when present,
    /// else compiles it and writes the cache. The component's sha256 must be
    /// the manifest's.
    pub fn load(
        &self,
        manifest: &Manifest,
        component_path: &Path,
    ) -> Result<crate::LoadedPlugin, Error> {
        let cache = self.cache_path(&manifest.sha256);
        let component = match self.load_cached(&cache) {
            Some(c) => c,
            None => {
                let bytes = read(component_path)?;
                let actual = sha256_hex(&bytes);
                if actual != manifest.sha256 {
                    return Err(Error::HashMismatch {
                        path: component_path.to_path_buf(),
                        expected: manifest.sha256.clone(),
                        actual,
                    });
                }
                let component = self.compile(&bytes, component_path)?;
                self.write_cache(&cache, &component);
                component
            }
        };
        let inspected = self.inspect(&component, component_path, &manifest.label())?;
        if inspected.api != manifest.api {
            return Err(Error::Refused {
                path: component_path.to_path_buf(),
                message: format!(
                    "manifest says api {} but the component exports {}",
                    manifest.api, inspected.api
                ),
            });
        }
        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| Error::ForbiddenImport {
                path: component_path.to_path_buf(),
                import: format!("{e:#}"),
            })?;
        let pre = since_v0_1_0::ProviderPre::new(pre).map_err(|e| Error::Refused {
            path: component_path.to_path_buf(),
            message: format!("not a provider world component: {e:#}"),
        })?;
        Ok(crate::LoadedPlugin::new(
            self,
            manifest.clone(),
            inspected,
            pre,
        ))
    }

    /// Where the compiled form of a component with this hash is cached.
    pub fn cache_path(&self, sha256: &str) -> PathBuf {
        self.cache_dir
            .join(format!("{sha256}-{}.cwasm", self.engine_id))
    }

    fn load_cached(&self, path: &Path) -> Option<Component> {
        if !path.exists() {
            return None;
        }
        // SAFETY: the file was written by `write_cache` of an engine with the
        // same compatibility hash (it is in the name), under $ALOFT_HOME,
        // which only its owner may write. wasmtime also checks the header.
        unsafe { Component::deserialize_file(&self.engine, path) }.ok()
    }

    /// Stores an already compiled component in the cache (install does this
    /// so the first call does not compile again).
    pub fn prime_cache(&self, sha256: &str, component: &Component) {
        let path = self.cache_path(sha256);
        if !path.exists() {
            self.write_cache(&path, component);
        }
    }

    fn write_cache(&self, path: &Path, component: &Component) {
        let Ok(bytes) = component.serialize() else {
            return;
        };
        if std::fs::create_dir_all(&self.cache_dir).is_err() {
            return;
        }
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        if std::fs::write(&tmp, bytes).is_ok() {
            let _ = std::fs::rename(&tmp, path);
        }
    }
}

/// Imports a plugin may have: the provider API's host interfaces and the
/// WASI interfaces the host gives (filesystem without preopens, sockets that
/// deny every address, an empty environment).
fn import_allowed(name: &str) -> bool {
    const ALLOWED: &[&str] = &[
        "aloft:provider/log@0.1.",
        "aloft:provider/secrets@0.1.",
        "aloft:provider/types@0.1.",
        "wasi:io/",
        "wasi:clocks/",
        "wasi:random/",
        "wasi:cli/",
        "wasi:filesystem/",
        "wasi:sockets/",
        "wasi:http/types@",
        "wasi:http/outgoing-handler@",
    ];
    ALLOWED.iter().any(|p| name.starts_with(p))
}

/// Hex sha256 of bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

pub(crate) fn read(path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|e| Error::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// Advances the engine's epoch every [`TICK`] until the host is dropped.
struct Ticker {
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl Ticker {
    fn start(engine: &Engine) -> Ticker {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (engine, flag) = (engine.weak(), stop.clone());
        std::thread::Builder::new()
            .name("aloft-epoch".into())
            .spawn(move || {
                while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                    std::thread::sleep(TICK);
                    match engine.upgrade() {
                        Some(e) => e.increment_epoch(),
                        None => break,
                    }
                }
            })
            .ok();
        Ticker { stop }
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}
