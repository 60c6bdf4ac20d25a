//! The crate's one error type. Every variant names where it happened: the
//! remote `host:port` (and user where it matters) or the local file, and
//! the operation that failed.

use std::path::PathBuf;

/// What went wrong talking to a host, or preparing to.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The host did not complete the TCP connect, SSH handshake and
    /// authentication within the connect timeout.
    #[error(
        "{addr}: no answer within {secs} while {stage}\nhint: check that the host is up and that sshd listens on port {port} there"
    )]
    Timeout {
        /// `host:port`.
        addr: String,
        /// The port, for the hint.
        port: u16,
        /// The timeout, formatted (`10s`, `0.5s`).
        secs: String,
        /// What the client was waiting for.
        stage: &'static str,
    },

    /// The TCP connection could not be made (refused, unreachable, bad
    /// address).
    #[error("{addr}: cannot connect: {source}\nhint: check the address and port, and that sshd runs there")]
    Connect {
        /// `host:port`.
        addr: String,
        /// The socket error.
        #[source]
        source: std::io::Error,
    },

    /// The SSH handshake failed (not an SSH server, no common algorithm,
    /// the server hung up).
    #[error("{addr}: SSH handshake failed: {message}")]
    Handshake {
        /// `host:port`.
        addr: String,
        /// What russh reported.
        message: String,
    },

    /// The server refused our key for this user.
    #[error(
        "{user}@{addr}: the server refused public key {fingerprint} ({key})\nhint: add the public key to ~{user}/.ssh/authorized_keys on the host, or give the host an identity_file the host accepts"
    )]
    AuthRefused {
        /// The remote user.
        user: String,
        /// `host:port`.
        addr: String,
        /// `SHA256:...` of the key that was offered.
        fingerprint: String,
        /// Where the key came from.
        key: String,
    },

    /// The host presented a key other than the one pinned for it.
    #[error("{0}")]
    HostKeyChanged(Box<HostKeyChange>),

    /// A local file could not be read or written.
    #[error("{}: {op}: {source}", path.display())]
    Io {
        /// The local path.
        path: PathBuf,
        /// What was being done (`reading`, `writing`, ...).
        op: &'static str,
        /// The error.
        #[source]
        source: std::io::Error,
    },

    /// A key file is unusable.
    #[error("{}: {message}", path.display())]
    Key {
        /// The key file.
        path: PathBuf,
        /// Why, with a hint where there is one.
        message: String,
    },

    /// The caller passed something that cannot be sent safely (an env
    /// name that is not an identifier, a NUL byte in a value).
    #[error("{what}: {message}")]
    Invalid {
        /// The offending item.
        what: String,
        /// Why.
        message: String,
    },

    /// A channel operation failed on an established connection.
    #[error("{addr}: {op}: {message}")]
    Channel {
        /// `host:port`.
        addr: String,
        /// The operation (`exec`, `open channel`, `sync_dir ~/x`).
        op: String,
        /// What failed.
        message: String,
    },

    /// The connection dropped before the remote command reported how it
    /// ended.
    #[error("{addr}: the connection was lost during {op}\nhint: the host may have rebooted or been preempted; retry to reconnect")]
    Disconnected {
        /// `host:port`.
        addr: String,
        /// The operation.
        op: String,
    },

    /// A transfer's remote side failed (e.g. `tar` could not write).
    #[error("{addr}: {op} failed on the host (exit {status}): {stderr}")]
    Remote {
        /// `host:port`.
        addr: String,
        /// The operation.
        op: String,
        /// The remote command's exit status.
        status: i32,
        /// Its stderr, trimmed.
        stderr: String,
    },
}

/// The details of a refused host key (boxed in [`Error::HostKeyChanged`]).
#[derive(Debug, thiserror::Error)]
#[error(
    "{addr}: the host key has CHANGED since it was first seen; refusing to connect (the host may have been rebuilt, or someone may be intercepting the connection)\n  pinned:    {pinned} ({known_hosts}:{line})\n  presented: {presented}\nhint: if the host was legitimately rebuilt, remove the stale entry with: ssh-keygen -R '{pattern}' -f {known_hosts}"
)]
pub struct HostKeyChange {
    /// `host:port`.
    pub addr: String,
    /// The known_hosts host pattern (`[host]:port` or `host`).
    pub pattern: String,
    /// The known_hosts file.
    pub known_hosts: String,
    /// The line of the pinned entry (1-based).
    pub line: usize,
    /// Algorithm and fingerprint of the pinned key.
    pub pinned: String,
    /// Algorithm and fingerprint of the presented key.
    pub presented: String,
}

/// This crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Formats a duration for a message: `10s`, `0.5s`.
pub(crate) fn fmt_secs(d: std::time::Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{s:.0}s")
    } else {
        format!("{s:.1}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_people_write_them() {
        assert_eq!(fmt_secs(std::time::Duration::from_secs(10)), "10s");
        assert_eq!(fmt_secs(std::time::Duration::from_millis(500)), "0.5s");
    }
}
