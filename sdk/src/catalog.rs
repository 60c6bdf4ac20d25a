//! SkyPilot catalog CSV (schema v6-v8) to [`Offering`]s.
//!
//! Columns are found by header name, so the column order of each cloud's file
//! does not matter. Known columns: `InstanceType`, `AcceleratorName`,
//! `AcceleratorCount`, `vCPUs`, `MemoryGiB`, `GpuInfo`, `Price`, `SpotPrice`,
//! `Region`, `AvailabilityZone`, `Arch`. Others (e.g. Azure's `Generation`)
//! are ignored. CRLF line ends are accepted.

use crate::{Accelerator, Offering};

/// Parses a whole catalog file. Errors name the line and column.
pub fn parse_skypilot_csv(text: &str) -> Result<Vec<Offering>, String> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(text.as_bytes());
    let headers = reader.headers().map_err(|e| format!("catalog header: {e}"))?.clone();
    let col = |name: &str| headers.iter().position(|h| h.trim() == name);
    let instance_type = col("InstanceType").ok_or("catalog has no InstanceType column")?;
    let region = col("Region").ok_or("catalog has no Region column")?;
    let (vcpus, memory) = (col("vCPUs"), col("MemoryGiB"));
    let (acc_name, acc_count, gpu_info) = (col("AcceleratorName"), col("AcceleratorCount"), col("GpuInfo"));
    let (price, spot, zone, arch) = (col("Price"), col("SpotPrice"), col("AvailabilityZone"), col("Arch"));

    let mut out = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let line = i + 2;
        let record = record.map_err(|e| format!("catalog line {line}: {e}"))?;
        let field = |c: Option<usize>| c.and_then(|c| record.get(c)).map(str::trim).filter(|s| !s.is_empty());
        let num = |c: Option<usize>, what: &str| -> Result<Option<f64>, String> {
            field(c)
                .map(|s| s.parse::<f64>().map_err(|_| format!("catalog line {line}: {what} {s:?} is not a number")))
                .transpose()
        };
        let accelerator = match field(acc_name) {
            Some(name) => Some(Accelerator {
                name: name.to_string(),
                count: num(acc_count, "AcceleratorCount")?.unwrap_or(1.0) as f32,
                memory_gib: field(gpu_info).and_then(gpu_memory_gib),
            }),
            None => None,
        };
        out.push(Offering {
            instance_type: record.get(instance_type).unwrap_or("").trim().to_string(),
            vcpus: num(vcpus, "vCPUs")?.unwrap_or(0.0) as f32,
            memory_gib: num(memory, "MemoryGiB")?.unwrap_or(0.0) as f32,
            accelerator,
            region: record.get(region).unwrap_or("").trim().to_string(),
            zone: field(zone).map(str::to_string),
            price: num(price, "Price")?,
            spot_price: num(spot, "SpotPrice")?,
            arch: field(arch).map(str::to_string),
        });
    }
    Ok(out)
}

/// Memory of one accelerator from a `GpuInfo` cell (a Python dict literal
/// with `'MemoryInfo': {'SizeInMiB': N}`), in GiB.
fn gpu_memory_gib(info: &str) -> Option<f32> {
    let key = "'SizeInMiB':";
    let start = info.find(key)? + key.len();
    let digits: String = info[start..]
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let mib: f32 = digits.parse().ok()?;
    Some(mib / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_columns_by_name_and_crlf() {
        let text = "InstanceType,AcceleratorName,AcceleratorCount,vCPUs,MemoryGiB,GpuInfo,Price,SpotPrice,Region,AvailabilityZone,Arch\r\n\
p4d.24xlarge,A100,8.0,96.0,1152.0,\"{'Gpus': [{'Name': 'A100', 'MemoryInfo': {'SizeInMiB': 40960}}]}\",30.09,7.52,us-east-1,use1-az1,x86_64\r\n\
m5.large,,,2.0,8.0,,0.096,,us-east-1,use1-az2,x86_64\r\n";
        let rows = parse_skypilot_csv(text).unwrap();
        assert_eq!(rows.len(), 2);
        let a = rows[0].accelerator.as_ref().unwrap();
        assert_eq!((a.name.as_str(), a.count, a.memory_gib), ("A100", 8.0, Some(40.0)));
        assert_eq!(rows[1].spot_price, None);
        assert_eq!(rows[1].zone.as_deref(), Some("use1-az2"));
    }

    #[test]
    fn bad_number_names_line() {
        let text = "InstanceType,vCPUs,Region\nx,abc,r\n";
        let err = parse_skypilot_csv(text).unwrap_err();
        assert!(err.contains("line 2") && err.contains("vCPUs"), "{err}");
    }
}

/// A catalog snapshot embedded in the component (`include_str!`).
#[derive(Debug, Clone, Copy)]
pub struct Embedded {
    /// Catalog schema version of the file, e.g. `v8`.
    pub version: &'static str,
    /// The date the data was taken, `YYYY-MM-DD`.
    pub data_date: &'static str,
    /// The CSV text.
    pub csv: &'static str,
}

impl Embedded {
    /// Parses the snapshot into the catalog the `catalog` export returns.
    pub fn load(&self) -> Result<crate::CatalogData, crate::ProviderError> {
        let offerings = parse_skypilot_csv(self.csv).map_err(crate::ProviderError::Other)?;
        Ok(crate::CatalogData {
            version: self.version.to_string(),
            data_date: self.data_date.to_string(),
            offerings,
        })
    }
}
