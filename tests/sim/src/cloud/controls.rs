//! The test controls of [`Cloud`]: capacity, quota, hang, prices, call
//! counters, and the catalog they shape.

use super::{round6, Cloud};
use crate::error::ApiError;
use serde_json::{json, Value};

impl Cloud {
    /// Capacity, prices, quotas and hangs back to the config; counters to 0.
    /// Instances are kept.
    pub fn reset_controls(&mut self) {
        let c = &self.config;
        self.capacity.clear();
        self.prices.clear();
        for r in &c.regions {
            for t in &c.instance_types {
                let price = (
                    t.price * r.price_multiplier,
                    t.spot_price * r.price_multiplier,
                );
                self.prices.insert((r.name.clone(), t.name.clone()), price);
                for z in &r.zones {
                    self.capacity
                        .insert((z.clone(), t.name.clone()), c.default_capacity);
                }
            }
        }
        for o in &c.capacity {
            for t in &c.instance_types {
                if o.instance_type.as_deref().is_none_or(|n| n == t.name) {
                    self.capacity
                        .insert((o.zone.clone(), t.name.clone()), o.capacity);
                }
            }
        }
        for p in &c.prices {
            if let Some(e) = self
                .prices
                .get_mut(&(p.region.clone(), p.instance_type.clone()))
            {
                e.0 = p.price.unwrap_or(e.0);
                e.1 = p.spot_price.unwrap_or(e.1);
            }
        }
        self.hung.clear();
        self.quota_regions.clear();
        self.quota_zones.clear();
        self.calls.clear();
    }

    /// Counts one call of `endpoint` (e.g. `POST /v1/instances`).
    pub fn count_call(&mut self, endpoint: &str) {
        *self.calls.entry(endpoint.to_string()).or_default() += 1;
    }

    /// `{"calls": {endpoint: n}, "total": n}`.
    pub fn calls_json(&self) -> Value {
        json!({"calls": self.calls, "total": self.calls.values().sum::<u64>()})
    }

    /// Whether a request naming `region` (or none) must hang now.
    pub fn is_hung(&self, region: Option<&str>) -> bool {
        self.hung.contains(&None)
            || region.is_some_and(|r| self.hung.contains(&Some(r.to_string())))
    }

    /// Makes a region's requests (or all, `None`) hang, or stops that.
    pub fn set_hang(&mut self, region: Option<String>, hang: bool) -> Result<(), ApiError> {
        if let Some(r) = &region {
            self.known_region(r)?;
        }
        if hang {
            self.hung.insert(region);
        } else {
            self.hung.remove(&region);
        }
        Ok(())
    }

    /// Makes a region, or one zone, answer QuotaExceeded to creates (or not).
    pub fn set_quota(
        &mut self,
        region: Option<String>,
        zone: Option<String>,
        exceeded: bool,
    ) -> Result<(), ApiError> {
        match (region, zone) {
            (_, Some(z)) => {
                self.known_zone(&z)?;
                if exceeded {
                    self.quota_zones.insert(z);
                } else {
                    self.quota_zones.remove(&z);
                }
            }
            (Some(r), None) => {
                self.known_region(&r)?;
                if exceeded {
                    self.quota_regions.insert(r);
                } else {
                    self.quota_regions.remove(&r);
                }
            }
            (None, None) => return Err(ApiError::bad("quota: give region or zone")),
        }
        Ok(())
    }

    /// Sets the capacity of a zone's type (or all its types).
    pub fn set_capacity(
        &mut self,
        zone: &str,
        instance_type: Option<&str>,
        capacity: u32,
    ) -> Result<(), ApiError> {
        self.known_zone(zone)?;
        if let Some(t) = instance_type {
            self.known_type(t)?;
        }
        for t in &self.config.instance_types {
            if instance_type.is_none_or(|n| n == t.name) {
                self.capacity
                    .insert((zone.to_string(), t.name.clone()), capacity);
            }
        }
        Ok(())
    }

    /// Changes the prices of a (region, type).
    pub fn set_price(
        &mut self,
        region: &str,
        instance_type: &str,
        price: Option<f64>,
        spot: Option<f64>,
    ) -> Result<(), ApiError> {
        self.known_region(region)?;
        self.known_type(instance_type)?;
        if price.is_some_and(|p| p < 0.0) || spot.is_some_and(|p| p < 0.0) {
            return Err(ApiError::bad("price: negative price"));
        }
        if let Some(e) = self
            .prices
            .get_mut(&(region.to_string(), instance_type.to_string()))
        {
            e.0 = price.unwrap_or(e.0);
            e.1 = spot.unwrap_or(e.1);
        }
        Ok(())
    }

    /// The catalog (optionally one region's offerings).
    pub fn catalog(&self, region: Option<&str>) -> Result<Value, ApiError> {
        if let Some(r) = region {
            self.known_region(r)?;
        }
        let mut offerings = Vec::new();
        for r in &self.config.regions {
            if region.is_some_and(|want| want != r.name) {
                continue;
            }
            for z in &r.zones {
                for t in &self.config.instance_types {
                    let (price, spot) = self
                        .prices
                        .get(&(r.name.clone(), t.name.clone()))
                        .copied()
                        .unwrap_or((t.price, t.spot_price));
                    offerings.push(json!({
                        "instance_type": t.name,
                        "vcpus": t.vcpus,
                        "memory_gib": t.memory_gib,
                        "accelerator": t.accelerator,
                        "region": r.name,
                        "zone": z,
                        "price": round6(price),
                        "spot_price": round6(spot),
                        "arch": t.arch,
                    }));
                }
            }
        }
        Ok(json!({"version": "v8", "data_date": self.config.data_date, "offerings": offerings}))
    }
}
