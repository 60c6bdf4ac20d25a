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
/// from the catalog's rows for it.
fn shape(instance_type: &str) -> (bool, bool) {
    let mut lines = CATALOG.csv.lines();
    let Some(header) = lines.next() else {
        return (false, false);
    };
    let cols: Vec<&str> = header.split(',').collect();
    let acc = cols.iter().position(|c| *c == "AcceleratorName");
    let arch = cols.iter().position(|c| *c == "Arch");
    let prefix = format!("{instance_type},");
    // GpuInfo holds quoted commas: columns after it are counted from the end.
    let arch_from_end = arch.map(|i| cols.len() - 1 - i);
    match lines.find(|l| l.starts_with(&prefix)) {
        Some(row) => {
            let f: Vec<&str> = row.split(',').collect();
            let gpu = acc
                .and_then(|i| f.get(i))
                .is_some_and(|s| !s.trim().is_empty());
            let arm = arch_from_end
                .and_then(|i| f.len().checked_sub(i + 1))
                .and_then(|i| f.get(i))
                .is_some_and(|s| s.trim() == "arm64");
            (gpu, arm)
        }
        None => (false, false),
    }
}
