//! The simulated cloud's state: instances, capacity, prices and the test
//! controls (quota, hang, call counters). Everything here runs under one
//! lock and never waits long: only killing an sshd (stop, preempt) happens
//! under it; starting sshds and deleting users happen in [`crate::api`]
//! outside the lock. The test controls and the catalog live
//! in `cloud/controls.rs`.

use crate::config::Config;
use crate::error::{ApiError, Code};
use aloft_ssh::testing::{loopback, SshdHost};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::Ipv4Addr;

mod controls;

/// An instance's lifecycle state, as the API shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Capacity reserved, sshd starting.
    Pending,
    /// sshd up.
    Running,
    /// Stopped by the client: sshd down, capacity released.
    Stopped,
    /// A spot instance the cloud took back: sshd down, capacity released.
    /// Listed until the client terminates it.
    Preempted,
}

impl State {
    fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Running => "running",
            State::Stopped => "stopped",
            State::Preempted => "preempted",
        }
    }

    fn holds_capacity(self) -> bool {
        matches!(self, State::Pending | State::Running)
    }
}

/// One instance (a user, an address and, when up, an sshd).
pub struct Instance {
    /// `i-<sim tag>-<seq>`.
    pub id: String,
    /// The cluster it belongs to.
    pub cluster_name: String,
    /// 0 = head.
    pub rank: u32,
    /// Lifecycle state.
    pub state: State,
    /// Its own loopback address (public and private).
    pub ip: Ipv4Addr,
    /// Its own local user.
    pub user: String,
    /// sshd's port (0 until running).
    pub port: u16,
    /// Instance type name.
    pub instance_type: String,
    /// Region name.
    pub region: String,
    /// Zone name.
    pub zone: String,
    /// Spot or on-demand.
    pub spot: bool,
    /// Client labels.
    pub labels: BTreeMap<String, String>,
    /// The key its user accepts.
    pub ssh_public_key: String,
    /// The sshd (kept while stopped so start can reuse its port).
    pub host: Option<SshdHost>,
}

impl Instance {
    /// The API view.
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "cluster_name": self.cluster_name,
            "rank": self.rank,
            "state": self.state.as_str(),
            "public_ip": self.ip.to_string(),
            "private_ip": self.ip.to_string(),
            "ssh_user": self.user,
            "ssh_port": self.port,
            "instance_type": self.instance_type,
            "region": self.region,
            "zone": self.zone,
            "spot": self.spot,
            "labels": self.labels,
        })
    }
}

/// `POST /v1/instances` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateRequest {
    /// Cluster the instances join.
    pub cluster_name: String,
    /// Region.
    pub region: String,
    /// Zone; the first zone of the region with room when absent.
    #[serde(default)]
    pub zone: Option<String>,
    /// Type.
    pub instance_type: String,
    /// How many (all or nothing).
    #[serde(default = "one")]
    pub count: u32,
    /// Spot?
    #[serde(default)]
    pub use_spot: bool,
    /// OpenSSH one-line public key the instances' users accept.
    pub ssh_public_key: String,
    /// Free-form labels, returned as given.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

fn one() -> u32 {
    1
}

/// The cloud.
pub struct Cloud {
    config: Config,
    tag: String,
    next_seq: u64,
    ip_cursor: u8,
    /// All non-terminated instances by id.
    pub instances: BTreeMap<String, Instance>,
    capacity: HashMap<(String, String), u32>,
    prices: HashMap<(String, String), (f64, f64)>,
    /// Regions whose requests hang (`None` in the set = every request).
    hung: HashSet<Option<String>>,
    quota_regions: HashSet<String>,
    quota_zones: HashSet<String>,
    calls: BTreeMap<String, u64>,
}

impl Cloud {
    /// A cloud with no instances, controls at their config values.
    /// `tag` makes user names unique between simulators.
    pub fn new(config: Config, tag: String) -> Cloud {
        let mut cloud = Cloud {
            ip_cursor: 0,
            tag,
            next_seq: 1,
            instances: BTreeMap::new(),
            capacity: HashMap::new(),
            prices: HashMap::new(),
            hung: HashSet::new(),
            quota_regions: HashSet::new(),
            quota_zones: HashSet::new(),
            calls: BTreeMap::new(),
            config,
        };
        cloud.reset_controls();
        cloud
    }

    /// The config it was started with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Free slots of (zone, type).
    pub fn available(&self, zone: &str, instance_type: &str) -> u32 {
        let total = self
            .capacity
            .get(&(zone.to_string(), instance_type.to_string()))
            .copied()
            .unwrap_or(0);
        let used = self
            .instances
            .values()
            .filter(|i| {
                i.zone == zone && i.instance_type == instance_type && i.state.holds_capacity()
            })
            .count();
        total.saturating_sub(u32::try_from(used).unwrap_or(u32::MAX))
    }

    /// Validates a create, picks the zone, reserves capacity and addresses
    /// and records the instances as pending. All or nothing.
    pub fn reserve(&mut self, req: &CreateRequest) -> Result<Vec<String>, ApiError> {
        check_name("cluster_name", &req.cluster_name)?;
        let region = self.known_region(&req.region)?.clone();
        self.known_type(&req.instance_type)?;
        if req.count == 0 || req.count > 64 {
            return Err(ApiError::bad(format!(
                "count must be 1..=64, got {}",
                req.count
            )));
        }
        let key = req.ssh_public_key.trim();
        if key.is_empty() || key.contains('\n') || !key.contains(' ') {
            return Err(ApiError::bad(
                "ssh_public_key must be one OpenSSH public key line",
            ));
        }
        if self.quota_regions.contains(&region.name) {
            return Err(ApiError::new(
                Code::QuotaExceeded,
                format!("quota exceeded in region {}", region.name),
            ));
        }
        let zone = match &req.zone {
            Some(z) => {
                if !region.zones.contains(z) {
                    return Err(ApiError::not_found(format!(
                        "zone {z} is not in region {}",
                        region.name
                    )));
                }
                if self.quota_zones.contains(z) {
                    return Err(ApiError::new(
                        Code::QuotaExceeded,
                        format!("quota exceeded in zone {z}"),
                    ));
                }
                if self.available(z, &req.instance_type) < req.count {
                    return Err(no_capacity(z, req));
                }
                z.clone()
            }
            None => {
                let open: Vec<&String> = region
                    .zones
                    .iter()
                    .filter(|z| !self.quota_zones.contains(*z))
                    .collect();
                if open.is_empty() {
                    return Err(ApiError::new(
                        Code::QuotaExceeded,
                        format!("quota exceeded in every zone of region {}", region.name),
                    ));
                }
                match open
                    .into_iter()
                    .find(|z| self.available(z, &req.instance_type) >= req.count)
                {
                    Some(z) => z.clone(),
                    None => {
                        return Err(ApiError::new(
                            Code::InsufficientCapacity,
                            format!(
                                "no zone of region {} has capacity for {} x {} (zones: {})",
                                region.name,
                                req.count,
                                req.instance_type,
                                region.zones.join(", ")
                            ),
                        ))
                    }
                }
            }
        };
        let ips = self.free_ips(req.count)?;
        let first_rank = self
            .instances
            .values()
            .filter(|i| i.cluster_name == req.cluster_name)
            .map(|i| i.rank + 1)
            .max()
            .unwrap_or(0);
        let mut ids = Vec::new();
        for (n, ip) in ips.into_iter().enumerate() {
            let seq = self.next_seq;
            self.next_seq += 1;
            let id = format!("i-{}-{seq}", self.tag);
            let rank = first_rank + u32::try_from(n).unwrap_or(0);
            self.instances.insert(
                id.clone(),
                Instance {
                    id: id.clone(),
                    cluster_name: req.cluster_name.clone(),
                    rank,
                    state: State::Pending,
                    ip,
                    user: format!("sim-{}-{seq}", self.tag),
                    port: 0,
                    instance_type: req.instance_type.clone(),
                    region: region.name.clone(),
                    zone: zone.clone(),
                    spot: req.use_spot,
                    labels: req.labels.clone(),
                    ssh_public_key: key.to_string(),
                    host: None,
                },
            );
            ids.push(id);
        }
        Ok(ids)
    }

    /// Reserves capacity again for a cluster's stopped instances (all or
    /// nothing) and marks them pending; returns their ids.
    pub fn reserve_start(
        &mut self,
        cluster: &str,
        region: Option<&str>,
    ) -> Result<Vec<String>, ApiError> {
        let ids = self.ids_of(cluster, region, |s| s == State::Stopped);
        let mut need: BTreeMap<(String, String), u32> = BTreeMap::new();
        for id in &ids {
            if let Some(i) = self.instances.get(id) {
                *need
                    .entry((i.zone.clone(), i.instance_type.clone()))
                    .or_default() += 1;
            }
        }
        for ((zone, t), n) in &need {
            if self.available(zone, t) < *n {
                return Err(ApiError::new(
                    Code::InsufficientCapacity,
                    format!(
                        "cannot start cluster {cluster}: zone {zone} has no capacity for {n} x {t}"
                    ),
                ));
            }
        }
        for id in &ids {
            if let Some(i) = self.instances.get_mut(id) {
                i.state = State::Pending;
            }
        }
        Ok(ids)
    }

    /// Ids of a cluster's instances (in a region, if given) in a state.
    pub fn ids_of(
        &self,
        cluster: &str,
        region: Option<&str>,
        state: impl Fn(State) -> bool,
    ) -> Vec<String> {
        self.instances
            .values()
            .filter(|i| {
                i.cluster_name == cluster && region.is_none_or(|r| r == i.region) && state(i.state)
            })
            .map(|i| i.id.clone())
            .collect()
    }

    /// The cluster's instances (in a region, if given), by rank.
    pub fn list(&self, cluster: &str, region: Option<&str>) -> Value {
        let mut v: Vec<&Instance> = self
            .instances
            .values()
            .filter(|i| i.cluster_name == cluster && region.is_none_or(|r| r == i.region))
            .collect();
        v.sort_by_key(|i| i.rank);
        Value::Array(v.into_iter().map(Instance::to_json).collect())
    }

    /// Instance views by id, in rank order.
    pub fn views(&self, ids: &[String]) -> Value {
        let mut v: Vec<&Instance> = ids.iter().filter_map(|id| self.instances.get(id)).collect();
        v.sort_by_key(|i| i.rank);
        Value::Array(v.into_iter().map(Instance::to_json).collect())
    }

    /// Stops sshd and sets `state` on the given instances if running
    /// (used for stop and preemption).
    pub fn halt(&mut self, ids: &[String], state: State) {
        for id in ids {
            if let Some(i) = self.instances.get_mut(id) {
                if let Some(h) = i.host.as_mut() {
                    h.stop();
                }
                i.state = state;
            }
        }
    }

    /// Checks a region exists.
    pub fn known_region(&self, name: &str) -> Result<&crate::config::Region, ApiError> {
        self.config
            .region(name)
            .ok_or_else(|| ApiError::not_found(format!("unknown region {name}")))
    }

    fn known_zone(&self, name: &str) -> Result<(), ApiError> {
        self.config
            .region_of_zone(name)
            .map(|_| ())
            .ok_or_else(|| ApiError::not_found(format!("unknown zone {name}")))
    }

    fn known_type(&self, name: &str) -> Result<(), ApiError> {
        self.config
            .instance_type(name)
            .map(|_| ())
            .ok_or_else(|| ApiError::not_found(format!("unknown instance type {name}")))
    }

    /// `n` loopback addresses no instance holds, round-robin through the
    /// pool so a terminated instance's address is not reused at once.
    fn free_ips(&mut self, n: u32) -> Result<Vec<Ipv4Addr>, ApiError> {
        let used: HashSet<Ipv4Addr> = self.instances.values().map(|i| i.ip).collect();
        let (base, count) = (self.config.ip_base, self.config.ip_count);
        let mut out = Vec::new();
        for step in 0..count {
            if out.len() as u32 == n {
                break;
            }
            let off = (self.ip_cursor.wrapping_add(step)) % count;
            let ip = loopback(base + off);
            if !used.contains(&ip) {
                out.push(ip);
            }
        }
        if (out.len() as u32) < n {
            return Err(ApiError::new(Code::InsufficientCapacity, format!(
                "the simulator's address pool 127.0.0.{base}+{count} has no room for {n} more instances"
            )));
        }
        if let Some(last) = out.last() {
            self.ip_cursor = (last.octets()[3] - base + 1) % count;
        }
        Ok(out)
    }
}

fn no_capacity(zone: &str, req: &CreateRequest) -> ApiError {
    ApiError::new(
        Code::InsufficientCapacity,
        format!(
            "zone {zone} has no capacity for {} x {}",
            req.count, req.instance_type
        ),
    )
}

fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

fn check_name(what: &str, name: &str) -> Result<(), ApiError> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad(format!(
            "{what} {name:?} must be 1-63 of [A-Za-z0-9._-]"
        )))
    }
}
