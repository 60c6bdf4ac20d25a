//! Outgoing HTTP over `wasi:http`, with JSON helpers.
//!
//! The host lets a request out only when its host is in the plugin's declared
//! `egress` list; a refused request comes back as
//! [`HttpError::Denied`], which converts into a [`ProviderError::Other`] that
//! names the host, so the user sees why.

use crate::ProviderError;
use serde::{de::DeserializeOwned, Serialize};
use wstd::http::{Body, Client, ErrorCode, Method, Request};

/// A response with its whole body read.
#[derive(Debug, Clone)]
pub struct Response {
    /// HTTP status code.
    pub status: u16,
    /// Response headers (name, value), names lower-case.
    pub headers: Vec<(String, String)>,
    /// The body bytes.
    pub body: Vec<u8>,
}

impl Response {
    /// The body as UTF-8 text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The first header with this (case-insensitive) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Why a request failed before a response arrived.
#[derive(Debug, Clone, PartialEq)]
pub enum HttpError {
    /// The host refused the request: its host is not in the egress list.
    Denied(String),
    /// The URL, method or a header is malformed.
    Invalid(String),
    /// Connection, DNS, TLS or timeout failure.
    Transport(String),
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HttpError::Denied(m) => write!(f, "egress refused by the host: {m}"),
            HttpError::Invalid(m) => write!(f, "invalid request: {m}"),
            HttpError::Transport(m) => write!(f, "transport error: {m}"),
        }
    }
}

impl From<HttpError> for ProviderError {
    fn from(e: HttpError) -> Self {
        match e {
            HttpError::Transport(_) => ProviderError::Transient(e.to_string()),
            _ => ProviderError::Other(e.to_string()),
        }
    }
}

/// Sends one request and reads the whole response. Blocks the (single)
/// guest thread; the host's deadline bounds it.
pub fn send(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<Vec<u8>>,
) -> Result<Response, HttpError> {
    let method = Method::from_bytes(method.as_bytes())
        .map_err(|e| HttpError::Invalid(format!("method {method}: {e}")))?;
    let mut builder = Request::builder().method(method).uri(url);
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    let body = match body {
        Some(b) => Body::from(b),
        None => Body::empty(),
    };
    let request = builder
        .body(body)
        .map_err(|e| HttpError::Invalid(format!("{url}: {e}")))?;
    let host = request.uri().host().unwrap_or("").to_string();
    wstd::runtime::block_on(async move {
        let response = Client::new()
            .send(request)
            .await
            .map_err(|e| classify(&host, e))?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect();
        let mut body = response.into_body();
        let bytes = body
            .contents()
            .await
            .map_err(|e| HttpError::Transport(format!("reading body from {host}: {e:#}")))?
            .to_vec();
        Ok(Response { status, headers, body: bytes })
    })
}

fn classify(host: &str, e: wstd::http::Error) -> HttpError {
    match e.downcast_ref::<ErrorCode>() {
        Some(ErrorCode::HttpRequestDenied) => HttpError::Denied(format!(
            "{host} is not in this plugin's egress list"
        )),
        _ => HttpError::Transport(format!("{host}: {e:#}")),
    }
}

/// Maps a non-2xx status to the provider error a host can act on.
pub fn status_error(status: u16, what: &str, body: &str) -> ProviderError {
    let msg = format!("{what}: HTTP {status}: {}", body.chars().take(500).collect::<String>());
    match status {
        401 | 403 => ProviderError::Auth(msg),
        404 => ProviderError::NotFound(msg),
        429 | 500..=599 => ProviderError::Transient(msg),
        _ => ProviderError::Other(msg),
    }
}

/// GET `url` and parse a JSON body; non-2xx statuses become typed errors.
pub fn get_json<T: DeserializeOwned>(url: &str, headers: &[(&str, &str)]) -> Result<T, ProviderError> {
    json_call("GET", url, headers, None)
}

/// POST `body` as JSON to `url` and parse a JSON answer.
pub fn post_json<B: Serialize, T: DeserializeOwned>(
    url: &str,
    headers: &[(&str, &str)],
    body: &B,
) -> Result<T, ProviderError> {
    let bytes = serde_json::to_vec(body)
        .map_err(|e| ProviderError::Other(format!("encoding request to {url}: {e}")))?;
    json_call("POST", url, headers, Some(bytes))
}

fn json_call<T: DeserializeOwned>(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<Vec<u8>>,
) -> Result<T, ProviderError> {
    let mut all: Vec<(&str, &str)> = vec![("accept", "application/json")];
    if body.is_some() {
        all.push(("content-type", "application/json"));
    }
    all.extend_from_slice(headers);
    let response = send(method, url, &all, body)?;
    if !(200..300).contains(&response.status) {
        return Err(status_error(response.status, &format!("{method} {url}"), &response.text()));
    }
    serde_json::from_slice(&response.body)
        .map_err(|e| ProviderError::Other(format!("{method} {url}: bad JSON in response: {e}")))
}
