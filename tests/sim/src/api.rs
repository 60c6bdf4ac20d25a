//! The HTTP API: routing, JSON bodies, the request hang, and the sshd work
//! (starting, restarting and killing instances' sshd processes, creating
//! and deleting their users) done outside the [`Cloud`] lock.

use crate::cloud::{Cloud, CreateRequest, State};
use crate::error::{ApiError, Code};
use crate::http::{Request, Response};
use aloft_ssh::testing::SshdHost;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// State shared by all connections.
pub struct Shared {
    cloud: Mutex<Cloud>,
    /// Ticks on every control change, waking hung requests to recheck.
    changed: tokio::sync::watch::Sender<()>,
}

impl Shared {
    /// Wraps a cloud.
    pub fn new(cloud: Cloud) -> Shared {
        Shared {
            cloud: Mutex::new(cloud),
            changed: tokio::sync::watch::Sender::new(()),
        }
    }

    /// The cloud, under its lock (a panicked holder does not poison it).
    pub fn lock(&self) -> MutexGuard<'_, Cloud> {
        self.cloud.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sleeps while requests naming `region` hang.
    async fn wait_unhung(&self, region: Option<&str>) {
        loop {
            let mut rx = self.changed.subscribe();
            if !self.lock().is_hung(region) {
                return;
            }
            if rx.changed().await.is_err() {
                return;
            }
        }
    }

    /// Removes every instance and kills its sshd (shutdown).
    pub fn terminate_all(&self) {
        let gone: Vec<_> = std::mem::take(&mut self.lock().instances)
            .into_values()
            .collect();
        dispose(gone.into_iter().map(|i| (i.host, i.user)).collect());
    }
}

/// Answers one request.
pub async fn handle(shared: Arc<Shared>, req: Request) -> Response {
    match route(&shared, req).await {
        Ok(v) => (200, v),
        Err(e) => (e.code.status(), e.body()),
    }
}

async fn route(s: &Shared, req: Request) -> Result<Value, ApiError> {
    let q = parse_query(&req.query);
    let endpoint = format!("{} {}", req.method, req.path);
    if !req.path.starts_with("/v1/control/") {
        s.lock().count_call(&endpoint);
    }
    match (req.method.as_str(), req.path.as_str()) {
        ("GET", "/v1/catalog") => {
            let region = q.get("region").map(String::as_str);
            s.wait_unhung(region).await;
            s.lock().catalog(region)
        }
        ("POST", "/v1/instances") => create(s, body(&req)?).await,
        ("GET", "/v1/instances") => {
            let cluster = q
                .get("cluster_name")
                .ok_or_else(|| ApiError::bad("cluster_name query parameter is required"))?;
            let region = q.get("region").map(String::as_str);
            s.wait_unhung(region).await;
            let cloud = s.lock();
            if let Some(r) = region {
                cloud.known_region(r)?;
            }
            Ok(cloud.list(cluster, region))
        }
        ("POST", "/v1/instances/stop") => stop(s, body(&req)?).await,
        ("POST", "/v1/instances/start") => start(s, body(&req)?).await,
        ("POST", "/v1/instances/terminate") => terminate(s, body(&req)?).await,
        ("GET", "/v1/control/calls") => Ok(s.lock().calls_json()),
        ("POST", "/v1/control/reset") => {
            s.lock().reset_controls();
            s.changed.send_replace(());
            Ok(json!({"ok": true}))
        }
        ("POST", "/v1/control/capacity") => {
            let b: CapacityControl = body(&req)?;
            s.lock()
                .set_capacity(&b.zone, b.instance_type.as_deref(), b.capacity)?;
            Ok(json!({"ok": true}))
        }
        ("POST", "/v1/control/quota") => {
            let b: QuotaControl = body(&req)?;
            s.lock().set_quota(b.region, b.zone, b.exceeded)?;
            Ok(json!({"ok": true}))
        }
        ("POST", "/v1/control/hang") => {
            let b: HangControl = body(&req)?;
            s.lock().set_hang(b.region, b.hang)?;
            s.changed.send_replace(());
            Ok(json!({"ok": true}))
        }
        ("POST", "/v1/control/price") => {
            let b: PriceControl = body(&req)?;
            s.lock()
                .set_price(&b.region, &b.instance_type, b.price, b.spot_price)?;
            Ok(json!({"ok": true}))
        }
        ("POST", "/v1/control/preempt") => preempt(s, body(&req)?),
        _ => Err(ApiError::not_found(format!("no endpoint {endpoint}"))),
    }
}

/// `{"cluster_name", "region"?}`: the body of stop / start / terminate.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClusterRequest {
    cluster_name: String,
    #[serde(default)]
    region: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CapacityControl {
    zone: String,
    #[serde(default)]
    instance_type: Option<String>,
    capacity: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QuotaControl {
    #[serde(default)]
    region: Option<String>,
    #[serde(default)]
    zone: Option<String>,
    #[serde(default = "yes")]
    exceeded: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HangControl {
    #[serde(default)]
    region: Option<String>,
    #[serde(default = "yes")]
    hang: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PriceControl {
    region: String,
    instance_type: String,
    #[serde(default)]
    price: Option<f64>,
    #[serde(default)]
    spot_price: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PreemptControl {
    #[serde(default)]
    instance_id: Option<String>,
    #[serde(default)]
    cluster_name: Option<String>,
}

fn yes() -> bool {
    true
}

fn body<T: DeserializeOwned>(req: &Request) -> Result<T, ApiError> {
    serde_json::from_slice(&req.body).map_err(|e| {
        ApiError::bad(format!(
            "{} {}: invalid JSON body: {e}",
            req.method, req.path
        ))
    })
}

async fn create(s: &Shared, req: CreateRequest) -> Result<Value, ApiError> {
    s.wait_unhung(Some(&req.region)).await;
    let (ids, jobs) = {
        let mut cloud = s.lock();
        let ids = cloud.reserve(&req)?;
        let jobs: Vec<_> = ids
            .iter()
            .filter_map(|id| cloud.instances.get(id))
            .map(|i| (i.ip, i.user.clone(), i.ssh_public_key.clone()))
            .collect();
        (ids, jobs)
    };
    let tasks: Vec<_> = jobs
        .into_iter()
        .map(|(ip, user, key)| {
            tokio::task::spawn_blocking(move || SshdHost::start(ip, &user, &[key.as_str()]))
        })
        .collect();
    let mut hosts = Vec::new();
    let mut failure = None;
    for t in tasks {
        match t.await {
            Ok(h) => hosts.push(Some(h)),
            Err(e) => {
                failure.get_or_insert(panic_message(e));
                hosts.push(None);
            }
        }
    }
    let mut leftovers = Vec::new();
    let result = {
        let mut cloud = s.lock();
        if let Some(why) = failure {
            for (id, h) in ids.iter().zip(hosts) {
                let user = cloud.instances.remove(id).map(|i| i.user);
                leftovers.push((h, user.unwrap_or_default()));
            }
            Err(ApiError::new(
                Code::Internal,
                format!("an instance's sshd did not start; created none: {why}"),
            ))
        } else {
            for (id, h) in ids.iter().zip(hosts) {
                match cloud.instances.get_mut(id) {
                    Some(i) => {
                        i.port = h.as_ref().map(SshdHost::port).unwrap_or(0);
                        i.host = h;
                        i.state = State::Running;
                    }
                    // Terminated while starting.
                    None => leftovers.push((h, String::new())),
                }
            }
            Ok(cloud.views(&ids))
        }
    };
    run_blocking(move || dispose(leftovers)).await;
    result
}

async fn stop(s: &Shared, req: ClusterRequest) -> Result<Value, ApiError> {
    s.wait_unhung(req.region.as_deref()).await;
    let mut cloud = s.lock();
    if let Some(r) = &req.region {
        cloud.known_region(r)?;
    }
    let ids = cloud.ids_of(&req.cluster_name, req.region.as_deref(), |st| {
        st == State::Running
    });
    cloud.halt(&ids, State::Stopped);
    Ok(json!({"instances": cloud.list(&req.cluster_name, req.region.as_deref())}))
}

async fn start(s: &Shared, req: ClusterRequest) -> Result<Value, ApiError> {
    s.wait_unhung(req.region.as_deref()).await;
    let jobs = {
        let mut cloud = s.lock();
        if let Some(r) = &req.region {
            cloud.known_region(r)?;
        }
        let ids = cloud.reserve_start(&req.cluster_name, req.region.as_deref())?;
        let mut jobs = Vec::new();
        for id in &ids {
            if let Some(i) = cloud.instances.get_mut(id) {
                jobs.push((
                    i.id.clone(),
                    i.host.take(),
                    i.ip,
                    i.user.clone(),
                    i.ssh_public_key.clone(),
                ));
            }
        }
        jobs
    };
    let tasks: Vec<_> = jobs
        .into_iter()
        .map(|(id, host, ip, user, key)| {
            let t = tokio::task::spawn_blocking(move || match host {
                // Same address and port, a new host key (a rebooted VM keeps
                // its key; this harness cannot).
                Some(mut h) => {
                    h.restart_with_new_host_key();
                    h
                }
                None => SshdHost::start(ip, &user, &[key.as_str()]),
            });
            (id, t)
        })
        .collect();
    let mut failed = Vec::new();
    let mut results = Vec::new();
    for (id, t) in tasks {
        results.push((id, t.await));
    }
    let mut leftovers = Vec::new();
    let view = {
        let mut cloud = s.lock();
        for (id, r) in results {
            match (cloud.instances.get_mut(&id), r) {
                (Some(i), Ok(h)) => {
                    i.port = h.port();
                    i.host = Some(h);
                    i.state = State::Running;
                }
                (Some(i), Err(e)) => {
                    i.state = State::Stopped;
                    failed.push(format!("{id}: {}", panic_message(e)));
                }
                (None, Ok(h)) => leftovers.push((Some(h), String::new())),
                (None, Err(_)) => {}
            }
        }
        cloud.list(&req.cluster_name, req.region.as_deref())
    };
    run_blocking(move || dispose(leftovers)).await;
    if failed.is_empty() {
        Ok(json!({"instances": view}))
    } else {
        Err(ApiError::new(
            Code::Internal,
            format!("sshd did not restart on {}", failed.join("; ")),
        ))
    }
}

async fn terminate(s: &Shared, req: ClusterRequest) -> Result<Value, ApiError> {
    s.wait_unhung(req.region.as_deref()).await;
    let (view, gone) = {
        let mut cloud = s.lock();
        if let Some(r) = &req.region {
            cloud.known_region(r)?;
        }
        let ids = cloud.ids_of(&req.cluster_name, req.region.as_deref(), |_| true);
        let mut view = cloud.views(&ids);
        if let Value::Array(items) = &mut view {
            for v in items {
                v["state"] = json!("terminated");
            }
        }
        let gone: Vec<_> = ids
            .iter()
            .filter_map(|id| cloud.instances.remove(id))
            .map(|i| (i.host, i.user))
            .collect();
        (view, gone)
    };
    run_blocking(move || dispose(gone)).await;
    Ok(json!({"instances": view}))
}

fn preempt(s: &Shared, req: PreemptControl) -> Result<Value, ApiError> {
    let mut cloud = s.lock();
    let ids: Vec<String> = match (&req.instance_id, &req.cluster_name) {
        (Some(id), _) => match cloud.instances.get(id) {
            Some(i) if i.state == State::Running => vec![id.clone()],
            Some(_) => Vec::new(),
            None => return Err(ApiError::not_found(format!("no instance {id}"))),
        },
        (None, Some(c)) => cloud
            .instances
            .values()
            .filter(|i| &i.cluster_name == c && i.spot && i.state == State::Running)
            .map(|i| i.id.clone())
            .collect(),
        (None, None) => return Err(ApiError::bad("preempt: give instance_id or cluster_name")),
    };
    cloud.halt(&ids, State::Preempted);
    Ok(json!({"preempted": ids}))
}

/// Kills sshds and deletes the instances' users (best effort).
fn dispose(items: Vec<(Option<SshdHost>, String)>) {
    for (host, user) in items {
        drop(host);
        if !user.is_empty() {
            delete_user(&user);
        }
    }
}

fn delete_user(user: &str) {
    for _ in 0..5 {
        let status = std::process::Command::new("userdel")
            .args(["-r", "-f", user])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
        // 0 = deleted, 6 = no such user, 12 = home not removed.
        match status.map(|s| s.code()) {
            Ok(Some(0 | 6 | 12)) | Err(_) => return,
            _ => std::thread::sleep(std::time::Duration::from_millis(100)),
        }
    }
}

async fn run_blocking(f: impl FnOnce() + Send + 'static) {
    let _ = tokio::task::spawn_blocking(f).await;
}

fn panic_message(e: tokio::task::JoinError) -> String {
    match e.try_into_panic() {
        Ok(p) => p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "panicked".into()),
        Err(e) => e.to_string(),
    }
}

/// `a=b&c=d` → map, with `%XX` and `+` decoded.
fn parse_query(q: &str) -> HashMap<String, String> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(v) => {
                        out.push(v);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_decoding() {
        let q = parse_query("cluster_name=a%2Db&region=sim-east&x");
        assert_eq!(q["cluster_name"], "a-b");
        assert_eq!(q["region"], "sim-east");
        assert_eq!(q["x"], "");
        assert_eq!(decode("100%"), "100%");
    }
}
