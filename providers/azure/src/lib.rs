//! Aloft provider for Microsoft Azure.
//!
//! Serves the embedded catalog snapshot (`catalog/vms.csv`, SkyPilot's
//! v6 schema, taken into this repository on the date below).
//! Provisioning answers `unsupported` until it is implemented.

use aloft_sdk::{catalog::Embedded, export_provider, CatalogData, Identity, Provider, Result};

const CATALOG: Embedded = Embedded {
    version: "v6",
    data_date: "2026-11-29",
    csv: include_str!("../catalog/vms.csv"),
};

/// Secrets that must be set before this provider can be used.
const REQUIRED: &[&str] = &["AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "AZURE_TENANT_ID", "AZURE_SUBSCRIPTION_ID"];

struct Azure;

impl Provider for Azure {
    fn catalog() -> Result<CatalogData> {
        CATALOG.load()
    }

    fn check() -> Result<Identity> {
        aloft_sdk::check_credentials_present(REQUIRED)
    }
}

export_provider!(Azure);
