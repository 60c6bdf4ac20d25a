//! What a plugin instance can reach: the per-call store state.
//!
//! A component gets logging, the secrets its manifest declares, a clock,
//! randomness and outgoing HTTP through [`EgressHooks`], which refuses any
//! host not in the manifest's egress list. No preopened directories, no
//! environment variables, no sockets (WASI's socket check denies every
//! address), stdin empty, stdout/stderr captured (their tail is shown when
//! a plugin traps).

use crate::manifest::Manifest;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use std::collections::BTreeMap;
use std::sync::Arc;
use wasmtime::component::ResourceTable;
use wasmtime::ResourceLimiter;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{
    RequestOptions, WasiBody, WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView,
};

/// Severity of a plugin log message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    /// Fine detail.
    Trace,
    /// Debug detail.
    Debug,
    /// Progress.
    Info,
    /// Worth knowing.
    Warn,
    /// A failure.
    Error,
}

/// Where plugin log lines go: (plugin label, level, message).
pub type LogSink = Arc<dyn Fn(&str, LogLevel, &str) + Send + Sync>;

/// Default sink: stderr, at or above the level in `ALOFT_LOG` (default warn).
pub fn stderr_sink() -> LogSink {
    let min = match std::env::var("ALOFT_LOG")
        .unwrap_or_default()
        .to_ascii_lowercase()
        .as_str()
    {
        "trace" => LogLevel::Trace,
        "debug" => LogLevel::Debug,
        "info" => LogLevel::Info,
        "error" => LogLevel::Error,
        _ => LogLevel::Warn,
    };
    Arc::new(move |plugin, level, msg| {
        if level >= min {
            eprintln!("[{plugin}] {level:?}: {msg}");
        }
    })
}

/// State of one plugin instance's store.
pub struct StoreState {
    pub(crate) label: String,
    pub(crate) wasi: WasiCtx,
    pub(crate) http: WasiHttpCtx,
    pub(crate) table: ResourceTable,
    pub(crate) hooks: EgressHooks,
    pub(crate) limits: MemoryLimiter,
    /// Declared secret name -> value (None: declared but not set).
    pub(crate) secrets: BTreeMap<String, Option<String>>,
    pub(crate) log: LogSink,
    pub(crate) stderr: MemoryOutputPipe,
}

impl StoreState {
    /// A sandbox for one instance of the plugin `manifest` describes.
    /// Secrets are read from the environment variables of the same names,
    /// for the declared names only.
    pub fn new(manifest: &Manifest, memory_limit: usize, log: LogSink) -> StoreState {
        let stderr = MemoryOutputPipe::new(64 * 1024);
        let wasi = WasiCtxBuilder::new()
            .stderr(stderr.clone())
            .stdout(MemoryOutputPipe::new(64 * 1024))
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        let secrets = crate::credentials::resolve(&manifest.secrets);
        let egress = expand_egress(&manifest.egress, &secrets);
        StoreState {
            label: manifest.label(),
            wasi,
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            hooks: EgressHooks {
                label: manifest.label(),
                egress,
                refused: Vec::new(),
            },
            limits: MemoryLimiter {
                limit: memory_limit,
                hit: false,
            },
            secrets,
            log,
            stderr,
        }
    }

    /// The last lines the guest wrote to stderr (a panic message, say).
    pub fn stderr_tail(&self) -> String {
        let bytes = self.stderr.contents();
        let text = String::from_utf8_lossy(&bytes);
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        lines[lines.len().saturating_sub(3)..].join(" | ")
    }

    /// Hosts this instance tried to reach and was refused.
    pub fn refused_hosts(&self) -> &[String] {
        &self.hooks.refused
    }
}

impl WasiView for StoreState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for StoreState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

/// Memory limit per instance; records that the limit was hit so the trap
/// can be named.
pub struct MemoryLimiter {
    limit: usize,
    pub(crate) hit: bool,
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.limit {
            self.hit = true;
            return Err(wasmtime::format_err!(
                "memory limit of {} MiB reached (wanted {} MiB)",
                self.limit >> 20,
                desired >> 20
            ));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

/// The egress list with `$NAME` entries replaced by the host of the URL in
/// the declared secret NAME (an endpoint override such as
/// `AWS_ENDPOINT_URL_EC2`); an entry whose secret is not set allows nothing.
pub fn expand_egress(egress: &[String], secrets: &BTreeMap<String, Option<String>>) -> Vec<String> {
    egress
        .iter()
        .filter_map(|e| match e.strip_prefix('$') {
            None => Some(e.clone()),
            Some(name) => secrets
                .get(name)
                .and_then(|v| v.as_deref())
                .and_then(|url| url.trim().parse::<http::Uri>().ok())
                .and_then(|uri| {
                    uri.host()
                        .map(|h| h.trim_start_matches('[').trim_end_matches(']').to_string())
                }),
        })
        .collect()
}

/// The wasi:http hook that enforces the egress list.
pub struct EgressHooks {
    label: String,
    egress: Vec<String>,
    refused: Vec<String>,
}

impl WasiHttpHooks for EgressHooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn std::future::Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
    ) -> Box<
        dyn std::future::Future<
                Output = Result<
                    (
                        http::Response<WasiBody>,
                        Box<
                            dyn std::future::Future<Output = Result<(), wasmtime_wasi_http::Error>>
                                + Send,
                        >,
                    ),
                    wasmtime_wasi_http::Error,
                >,
            > + Send,
    > {
        drop(fut);
        let host = request.uri().host().unwrap_or("").to_string();
        if !crate::manifest::egress_allows(&self.egress, &host) {
            self.refused.push(host);
            // Drain the guest's body so it sees the typed refusal rather
            // than a broken pipe while writing.
            let (_, body) = request.into_parts();
            tokio::spawn(drain(body));
            return Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) });
        }
        let _ = &self.label;
        let request = fix_empty_body(request);
        Box::new(async move {
            let (response, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            Ok((
                response.map(BodyExt::boxed_unsync),
                Box::new(io) as Box<dyn std::future::Future<Output = _> + Send>,
            ))
        })
    }
}

async fn drain(mut body: WasiBody) {
    while let Some(frame) = body.frame().await {
        if frame.is_err() {
            break;
        }
    }
}

/// hyper sends a GET/HEAD whose body length is unknown as length 0 and drops
/// the body, after which a guest that still writes an empty body sees a
/// reset connection. Give hyper an empty body and drain the guest's.
fn fix_empty_body(request: http::Request<WasiBody>) -> http::Request<WasiBody> {
    let bodiless = matches!(*request.method(), http::Method::GET | http::Method::HEAD)
        && !request.headers().contains_key(http::header::CONTENT_LENGTH)
        && !request
            .headers()
            .contains_key(http::header::TRANSFER_ENCODING);
    if !bodiless {
        return request;
    }
    let (parts, body) = request.into_parts();
    tokio::spawn(drain(body));
    let empty = Empty::<Bytes>::new()
        .map_err(|never| match never {})
        .boxed_unsync();
    http::Request::from_parts(parts, empty)
}
