//! Which machine image a launch uses.
//!
//! - `image_id: ami-...` is used as given.
//! - `image_id: skypilot:<tag>` (SkyPilot's image tags) is looked up in the
//!   embedded images table for the cluster's region.
//! - No image: SkyPilot's Ubuntu images, the GPU one for instance types with
//!   accelerators and the arm64 one for Graviton types.

use crate::{CATALOG, IMAGES};
use aloft_sdk::{ProviderError, Result, RunRequest};

/// The AMI for a launch request.
pub fn resolve(r: &RunRequest) -> Result<String> {
    let region = &r.cluster.region;
    match r.image_id.as_deref().map(str::trim) {
        Some(id) if id.starts_with("ami-") => Ok(id.to_string()),
        Some(tag) if tag.starts_with("skypilot:") => lookup(tag, region).ok_or_else(|| {
            ProviderError::NotFound(format!(
                "no image tagged {tag} in {region} in the embedded images table"
            ))
        }),
        Some(other) if !other.is_empty() => Err(ProviderError::Other(format!(
            "image_id {other:?}: expected an AMI id (ami-...) or a skypilot:<tag> image tag"
        ))),
        _ => {
            let (gpu, arm) = shape(&r.instance_type);
            let tag = match (gpu, arm) {
                (true, true) => "skypilot:custom-gpu-ubuntu-arm64",
                (true, false) => "skypilot:custom-gpu-ubuntu",
                (false, true) => "skypilot:custom-cpu-ubuntu-arm64",
                (false, false) => "skypilot:custom-cpu-ubuntu",
            };
            lookup(tag, region).ok_or_else(|| {
                ProviderError::NotFound(format!(
                    "no default image ({tag}) for {region}; give image_id: ami-... in the task's resources"
                ))
            })
        }
    }
}

/// The newest image with `tag` in `region` (columns by header name).
pub fn lookup(tag: &str, region: &str) -> Option<String> {
    let mut lines = IMAGES.lines();
    let header: Vec<&str> = lines.next()?.split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name);
    let (t, r, id, date) = (
        col("Tag")?,
        col("Region")?,
        col("ImageId")?,
        col("CreationDate"),
    );
    lines
        .map(|l| l.split(',').collect::<Vec<&str>>())
        .filter(|f| f.get(t) == Some(&tag) && f.get(r) == Some(&region))
        .max_by_key(|f| {
            date.and_then(|d| f.get(d))
                .map(|s| s.to_string())
                .unwrap_or_default()
        })
        .and_then(|f| f.get(id).map(|s| s.to_string()))
}

/// Whether an instance type has accelerators, and whether it is arm64,
/// from the catalog's first row for it (only its rows are parsed).
fn shape(instance_type: &str) -> (bool, bool) {
    let mut lines = CATALOG.csv.lines();
    let Some(header) = lines.next() else {
        return (false, false);
    };
    let prefix = format!("{instance_type},");
    let Some(row) = lines.find(|l| l.starts_with(&prefix)) else {
        return (false, false);
    };
    match aloft_sdk::catalog::parse_skypilot_csv(&format!("{header}\n{row}\n")) {
        Ok(rows) => rows.first().map_or((false, false), |o| {
            (o.accelerator.is_some(), o.arch.as_deref() == Some("arm64"))
        }),
        Err(_) => (false, false),
    }
}
