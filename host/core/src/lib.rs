//! aloft-core: what Aloft knows without wasm, a CLI or SSH.
//!
//! - [`catalog`]: offerings, accelerators and the catalog a provider serves;
//! - [`optimizer`]: the cheapest feasible plan over catalogs, with a
//!   blocklist for failover;
//! - [`provider`]: the [`provider::Provider`] trait every provider (wasm
//!   component or native) implements, its request/instance types and its
//!   typed errors;
//! - [`task`]: SkyPilot task YAML parsed into validated [`task::Task`]s,
//!   with `file:line:col` errors and `sky launch`-style overrides.
//!
//! Everything here is pure and fast to test; the wasm host (aloft-plugin)
//! and the CLI depend on it, never the other way round.

pub mod catalog;
pub mod optimizer;
pub mod provider;
pub mod task;
