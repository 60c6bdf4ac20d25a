//! Aloft provider for Amazon Web Services (EC2).
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
const REQUIRED: &[&str] = &["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"];

struct Aws;

impl Provider for Aws {
    fn catalog() -> Result<CatalogData> {
        CATALOG.load()
    }

    fn check() -> Result<Identity> {
        aloft_sdk::check_credentials_present(REQUIRED)
    }
}

export_provider!(Aws);
