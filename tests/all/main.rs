//! Aloft's integration tests: one binary, one module per area.
//!
//! They run the real `aloft` binary (`ALOFT_BIN`, built by scripts/test.sh)
//! and the real provider components (`ALOFT_PLUGINS`, packed by
//! scripts/pack-all.sh), each test in its own temporary `ALOFT_HOME`.

mod aws;
mod dryrun;
mod failover;
mod local;
mod plugins;
mod ssh;
mod util;
