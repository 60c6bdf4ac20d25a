//! The crate's error type, and the API errors the simulator answers with.

use serde_json::json;

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong starting or running the simulator.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The config file (or built config) is unreadable or invalid.
    #[error("invalid simulator config {path}: {message}")]
    Config {
        /// The file, or `<config>` for an in-memory config.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The listen address is not on loopback (the simulator never serves
    /// anything else).
    #[error("refusing to listen on {0}: the simulator only listens on 127.0.0.0/8")]
    NotLoopback(std::net::SocketAddr),
    /// Binding or accepting failed.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// Where.
        addr: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// An HTTP client request failed (the [`crate::client`]).
    #[error("request {method} {url} failed: {message}")]
    Client {
        /// GET or POST.
        method: String,
        /// The full URL.
        url: String,
        /// Why.
        message: String,
    },
}

/// The API's error codes, each with its HTTP status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code {
    /// 409: no capacity for the request (nothing was created).
    InsufficientCapacity,
    /// 403: the region or zone is over quota (a control).
    QuotaExceeded,
    /// 404: unknown route, region, zone, type, instance.
    NotFound,
    /// 400: malformed or invalid body or query.
    BadRequest,
    /// 500: the simulator itself failed (e.g. an sshd did not start).
    Internal,
}

impl Code {
    /// The HTTP status.
    pub fn status(self) -> u16 {
        match self {
            Code::InsufficientCapacity => 409,
            Code::QuotaExceeded => 403,
            Code::NotFound => 404,
            Code::BadRequest => 400,
            Code::Internal => 500,
        }
    }

    /// The `code` string of the error body.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::InsufficientCapacity => "InsufficientCapacity",
            Code::QuotaExceeded => "QuotaExceeded",
            Code::NotFound => "NotFound",
            Code::BadRequest => "BadRequest",
            Code::Internal => "Internal",
        }
    }
}

/// An error answer: `{"error": {"code", "message"}}` with the code's status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    /// The code.
    pub code: Code,
    /// What happened, naming region / zone / type / instance.
    pub message: String,
}

impl ApiError {
    /// A new API error.
    pub fn new(code: Code, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
        }
    }

    /// 400.
    pub fn bad(message: impl Into<String>) -> ApiError {
        ApiError::new(Code::BadRequest, message)
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(Code::NotFound, message)
    }

    /// The JSON body.
    pub fn body(&self) -> serde_json::Value {
        json!({"error": {"code": self.code.as_str(), "message": self.message}})
    }
}
