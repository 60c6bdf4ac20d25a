//! Aloft provider for Google Cloud (Compute Engine).
//!
//! Serves the embedded catalog snapshot (`catalog/vms.csv`, SkyPilot's
//! v8 schema, taken into this repository on the date below).
//! Provisioning answers `unsupported` until it is implemented.

use aloft_sdk::{catalog::Embedded, export_provider, CatalogData, Identity, Provider, Result};

const CATALOG: Embedded = Embedded {
    version: "v8",
    data_date: "2026-11-29",
    csv: include_str!("../catalog/vms.csv"),
};

/// Secrets that must be set before this provider can be used.
const REQUIRED: &[&str] = &["GCP_SERVICE_ACCOUNT_JSON"];

struct Gcp;

impl Provider for Gcp {
    fn catalog() -> Result<CatalogData> {
        CATALOG.load()
    }

    fn check() -> Result<Identity> {
        aloft_sdk::check_credentials_present(REQUIRED)
    }
}

export_provider!(Gcp);
