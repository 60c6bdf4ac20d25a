//! Catalog types: what a provider sells, where, and at what price.
//!
//! These mirror `aloft:provider/types@0.1.0` (the WIT is the reference) and
//! serialise to JSON for `aloft provider call` and the on-disk catalog cache.

use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// A shared name (instance type, region, zone, ...): catalogs repeat a few
/// thousand distinct names over tens of thousands of rows.
pub type Name = Arc<str>;

/// An accelerator attached to an offering.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Accelerator {
    /// Canonical name, e.g. `A100-80GB`.
    pub name: Name,
    /// How many per instance (may be fractional).
    pub count: f32,
    /// Memory of one accelerator in GiB, when known.
    #[serde(default)]
    pub memory_gib: Option<f32>,
}

/// One instance type in one region (and zone) at a price.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Offering {
    /// Instance type name; empty for a GPU attachable to any VM.
    pub instance_type: Name,
    /// vCPUs per instance.
    pub vcpus: f32,
    /// Memory per instance, GiB.
    pub memory_gib: f32,
    /// The accelerator, if any.
    #[serde(default)]
    pub accelerator: Option<Accelerator>,
    /// Region.
    pub region: Name,
    /// Zone, where the catalog has zones.
    #[serde(default)]
    pub zone: Option<Name>,
    /// On-demand USD/hour.
    #[serde(default)]
    pub price: Option<f64>,
    /// Spot USD/hour.
    #[serde(default)]
    pub spot_price: Option<f64>,
    /// `x86_64`, `arm64`, ...
    #[serde(default)]
    pub arch: Option<Name>,
}

/// A provider's whole catalog.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogData {
    /// Catalog schema version, e.g. `v8`.
    pub version: String,
    /// Date the data was taken, `YYYY-MM-DD`.
    pub data_date: String,
    /// Every offering.
    pub offerings: Vec<Offering>,
}

const MAGIC: &[u8; 8] = b"ALOFTCAT";
const FORMAT: u32 = 1;
const NONE: u32 = u32::MAX;

/// Encodes a catalog compactly: a table of distinct names, then fixed-size
/// rows that refer to it. [`decode`] reads it back without one allocation per
/// row, which is what keeps planning over ~50k rows fast.
pub fn encode(c: &CatalogData) -> Vec<u8> {
    let mut interner = Interner::default();
    let mut rows = Vec::with_capacity(c.offerings.len() * 52);
    for o in &c.offerings {
        let a = o.accelerator.as_ref();
        for v in [
            interner.id(Some(&o.instance_type)),
            interner.id(Some(&o.region)),
            interner.id(o.zone.as_deref()),
            interner.id(o.arch.as_deref()),
            interner.id(a.map(|a| &*a.name)),
        ] {
            rows.extend_from_slice(&v.to_le_bytes());
        }
        for v in [
            a.map_or(0.0, |a| a.count),
            a.and_then(|a| a.memory_gib).unwrap_or(f32::NAN),
            o.vcpus,
            o.memory_gib,
        ] {
            rows.extend_from_slice(&v.to_le_bytes());
        }
        for v in [
            o.price.unwrap_or(f64::NAN),
            o.spot_price.unwrap_or(f64::NAN),
        ] {
            rows.extend_from_slice(&v.to_le_bytes());
        }
    }
    let names = interner.names;
    let mut out = Vec::with_capacity(rows.len() + 64 * names.len() + 64);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT.to_le_bytes());
    let put_str = |out: &mut Vec<u8>, s: &str| {
        out.extend_from_slice(&(s.len() as u32).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
    };
    put_str(&mut out, &c.version);
    put_str(&mut out, &c.data_date);
    out.extend_from_slice(&(names.len() as u32).to_le_bytes());
    for n in &names {
        put_str(&mut out, n);
    }
    out.extend_from_slice(&(c.offerings.len() as u32).to_le_bytes());
    out.extend_from_slice(&rows);
    out
}

/// Decodes [`encode`]'s output; `None` if it is not that format (a stale or
/// damaged cache is simply rebuilt).
pub fn decode(bytes: &[u8]) -> Option<CatalogData> {
    let mut r = Reader { b: bytes, at: 0 };
    if r.take(8)? != MAGIC || r.u32()? != FORMAT {
        return None;
    }
    let version = r.string()?;
    let data_date = r.string()?;
    let n = r.u32()? as usize;
    let mut names: Vec<Name> = Vec::with_capacity(n.min(1 << 20));
    for _ in 0..n {
        names.push(Name::from(r.string()?));
    }
    let name = |i: u32| -> Option<Option<Name>> {
        if i == NONE {
            Some(None)
        } else {
            names.get(i as usize).cloned().map(Some)
        }
    };
    let rows = r.u32()? as usize;
    if r.b.len().saturating_sub(r.at) != rows * 52 {
        return None;
    }
    let mut offerings = Vec::with_capacity(rows);
    for _ in 0..rows {
        let (it, region, zone, arch, acc) = (r.u32()?, r.u32()?, r.u32()?, r.u32()?, r.u32()?);
        let (count, acc_mem, vcpus, memory_gib) = (r.f32()?, r.f32()?, r.f32()?, r.f32()?);
        let (price, spot) = (r.f64()?, r.f64()?);
        let some = |v: f64| (!v.is_nan()).then_some(v);
        offerings.push(Offering {
            instance_type: name(it)??,
            vcpus,
            memory_gib,
            accelerator: name(acc)?.map(|n| Accelerator {
                name: n,
                count,
                memory_gib: (!acc_mem.is_nan()).then_some(acc_mem),
            }),
            region: name(region)??,
            zone: name(zone)?,
            price: some(price),
            spot_price: some(spot),
            arch: name(arch)?,
        });
    }
    Some(CatalogData {
        version,
        data_date,
        offerings,
    })
}

#[derive(Default)]
struct Interner<'a> {
    names: Vec<&'a str>,
    index: std::collections::HashMap<&'a str, u32>,
}

impl<'a> Interner<'a> {
    fn id(&mut self, s: Option<&'a str>) -> u32 {
        let Some(s) = s else { return NONE };
        if let Some(i) = self.index.get(s) {
            return *i;
        }
        self.names.push(s);
        let i = (self.names.len() - 1) as u32;
        self.index.insert(s, i);
        i
    }
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.b.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(s)
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn f32(&mut self) -> Option<f32> {
        Some(f32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn f64(&mut self) -> Option<f64> {
        Some(f64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    fn string(&mut self) -> Option<String> {
        let n = self.u32()? as usize;
        String::from_utf8(self.take(n)?.to_vec()).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_decode_roundtrip_and_garbage() {
        let c = CatalogData {
            version: "v8".into(),
            data_date: "2026-11-29".into(),
            offerings: vec![
                Offering {
                    instance_type: "p4d.24xlarge".into(),
                    vcpus: 96.0,
                    memory_gib: 1152.0,
                    accelerator: Some(Accelerator {
                        name: "A100".into(),
                        count: 8.0,
                        memory_gib: Some(40.0),
                    }),
                    region: "us-east-1".into(),
                    zone: Some("use1-az1".into()),
                    price: Some(32.77),
                    spot_price: None,
                    arch: Some("x86_64".into()),
                },
                Offering {
                    instance_type: "m5.large".into(),
                    vcpus: 2.0,
                    memory_gib: 8.0,
                    accelerator: None,
                    region: "us-east-1".into(),
                    zone: None,
                    price: None,
                    spot_price: Some(0.03),
                    arch: None,
                },
            ],
        };
        let bytes = encode(&c);
        assert_eq!(decode(&bytes), Some(c));
        assert_eq!(decode(b"garbage"), None);
        assert_eq!(decode(&bytes[..bytes.len() - 1]), None);
    }
}
