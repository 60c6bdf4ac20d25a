//! End-to-end tests of `aloft agent`: real daemons, real job processes,
//! each test with its own temporary cluster (nodes are directories).
//!
//! - [`jobs`]: task environment, setup failure, cancel, queueing, secrets,
//!   the `logs` exit codes;
//! - [`daemon`]: surviving `kill -9` of the daemon, autostop, one daemon per
//!   state directory.

mod daemon;
mod jobs;
mod util;
