//! The EC2 side of the provider: every call the provider makes, on an
//! `aws_sdk_ec2::Client` built by the caller. Nothing here depends on the
//! component world, so the same code runs natively (bench/aws-native).
//!
//! Resources Aloft creates for a cluster `C`:
//! - instances tagged `aloft-cluster-name=C`, `aloft-node-rank=<rank>`,
//!   `Name=aloft-C-<rank>`, plus the task's labels;
//! - a security group `aloft-C` (SSH and the task's ports), deleted on down;
//! - a key pair `aloft-<hash of the public key>` shared by the user's clusters.

use crate::errors::{from_sdk, is_code};
use aloft_sdk::{
    ClusterRef, Instance, InstanceState, PortRange, ProviderError, Result, RunRequest,
};
use aws_sdk_ec2::types::{
    BlockDeviceMapping, EbsBlockDevice, Filter, InstanceInterruptionBehavior,
    InstanceMarketOptionsRequest, InstanceStateName, InstanceType, IpPermission, IpRange,
    MarketType, Placement, ResourceType, SpotInstanceType, SpotMarketOptions, Tag,
    TagSpecification, VolumeType,
};
use aws_sdk_ec2::Client;

/// Tag that names the cluster an instance belongs to.
pub const CLUSTER_TAG: &str = "aloft-cluster-name";
/// Tag that gives an instance's node rank (0 is the head).
pub const RANK_TAG: &str = "aloft-node-rank";
/// User name on the images Aloft launches (Ubuntu).
pub const SSH_USER: &str = "ubuntu";
/// Root device of the Ubuntu images (SkyPilot's images use the same).
const ROOT_DEVICE: &str = "/dev/sda1";

/// The security group Aloft makes for `cluster`.
pub fn security_group_name(cluster: &str) -> String {
    format!("aloft-{cluster}")
}

/// The key pair name for a public key: stable, so every cluster of one user
/// shares it, and different keys never collide.
pub fn key_pair_name(public_key: &str) -> String {
    // FNV-1a over the key's base64 body (comment excluded).
    let body = public_key
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ");
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in body.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("aloft-{h:016x}")
}

fn tag(key: &str, value: &str) -> Tag {
    Tag::builder().key(key).value(value).build()
}

fn filter(name: &str, values: &[&str]) -> Filter {
    values
        .iter()
        .fold(Filter::builder().name(name), |b, v| b.values(*v))
        .build()
}

/// States an instance that still exists can be in (not terminated).
const LIVE_STATES: &[&str] = &["pending", "running", "stopping", "stopped", "shutting-down"];

/// The cluster's instances that are not terminated, sorted by rank.
pub async fn query(ec2: &Client, cluster: &ClusterRef) -> Result<Vec<Instance>> {
    let mut out = Vec::new();
    let mut pages = ec2
        .describe_instances()
        .filters(filter(
            &format!("tag:{CLUSTER_TAG}"),
            &[&cluster.cluster_name],
        ))
        .filters(filter("instance-state-name", LIVE_STATES))
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let resp = page.map_err(|e| from_sdk("DescribeInstances", e))?;
        for r in resp.reservations() {
            for i in r.instances() {
                out.push(convert(i));
            }
        }
    }
    out.sort_by(|a, b| a.rank.cmp(&b.rank).then_with(|| a.id.cmp(&b.id)));
    Ok(out)
}

fn convert(i: &aws_sdk_ec2::types::Instance) -> Instance {
    let tag_value = |k: &str| {
        i.tags()
            .iter()
            .find(|t| t.key() == Some(k))
            .and_then(|t| t.value())
    };
    let rank = tag_value(RANK_TAG)
        .and_then(|r| r.parse().ok())
        .or_else(|| i.ami_launch_index().map(|x| x.max(0) as u32))
        .unwrap_or(0);
    let state = match i.state().and_then(|s| s.name()) {
        Some(InstanceStateName::Pending) => InstanceState::Pending,
        Some(InstanceStateName::Running) => InstanceState::Running,
        Some(InstanceStateName::Stopping) => InstanceState::Stopping,
        Some(InstanceStateName::Stopped) => InstanceState::Stopped,
        Some(InstanceStateName::ShuttingDown) => InstanceState::Terminating,
        _ => InstanceState::Terminated,
    };
    Instance {
        id: i.instance_id().unwrap_or_default().to_string(),
        rank,
        state,
        public_ip: i.public_ip_address().map(str::to_string),
        private_ip: i.private_ip_address().map(str::to_string),
        ssh_user: SSH_USER.to_string(),
        ssh_port: 22,
        instance_type: i
            .instance_type()
            .map(|t| t.as_str().to_string())
            .unwrap_or_default(),
        zone: i
            .placement()
            .and_then(|p| p.availability_zone())
            .map(str::to_string),
        spot: i
            .instance_lifecycle()
            .is_some_and(|l| l.as_str().eq_ignore_ascii_case("spot")),
    }
}

/// Imports the user's public key unless a key pair of that name exists.
pub async fn ensure_key_pair(ec2: &Client, public_key: &str) -> Result<String> {
    let name = key_pair_name(public_key);
    match ec2.describe_key_pairs().key_names(&name).send().await {
        Ok(r) if !r.key_pairs().is_empty() => return Ok(name),
        Ok(_) => {}
        Err(e) if is_code(&e, "InvalidKeyPair.NotFound") => {}
        Err(e) => return Err(from_sdk("DescribeKeyPairs", e)),
    }
    match ec2
        .import_key_pair()
        .key_name(&name)
        .public_key_material(aws_sdk_ec2::primitives::Blob::new(
            public_key.trim().as_bytes(),
        ))
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::KeyPair)
                .tags(tag("aloft", "ssh-key"))
                .build(),
        )
        .send()
        .await
    {
        Ok(_) => Ok(name),
        // Another launch imported it meanwhile.
        Err(e) if is_code(&e, "InvalidKeyPair.Duplicate") => Ok(name),
        Err(e) => Err(from_sdk("ImportKeyPair", e)),
    }
}

/// The id of the cluster's security group, if it exists.
pub async fn find_security_group(ec2: &Client, cluster: &str) -> Result<Option<String>> {
    let resp = ec2
        .describe_security_groups()
        .filters(filter("group-name", &[&security_group_name(cluster)]))
        .send()
        .await
        .map_err(|e| from_sdk("DescribeSecurityGroups", e))?;
    Ok(resp
        .security_groups()
        .iter()
        .find_map(|g| g.group_id())
        .map(str::to_string))
}

/// The cluster's security group (created when missing) with SSH and `ports`
/// open to the world.
pub async fn ensure_security_group(
    ec2: &Client,
    cluster: &str,
    ports: &[PortRange],
) -> Result<String> {
    let id = match find_security_group(ec2, cluster).await? {
        Some(id) => id,
        None => {
            let created = ec2
                .create_security_group()
                .group_name(security_group_name(cluster))
                .description(format!("Aloft cluster {cluster}"))
                .tag_specifications(
                    TagSpecification::builder()
                        .resource_type(ResourceType::SecurityGroup)
                        .tags(tag(CLUSTER_TAG, cluster))
                        .build(),
                )
                .send()
                .await;
            match created {
                Ok(r) => r.group_id().unwrap_or_default().to_string(),
                Err(e) if is_code(&e, "InvalidGroup.Duplicate") => {
                    find_security_group(ec2, cluster).await?.ok_or_else(|| {
                        ProviderError::Other(format!(
                            "security group {} vanished",
                            security_group_name(cluster)
                        ))
                    })?
                }
                Err(e) => return Err(from_sdk("CreateSecurityGroup", e)),
            }
        }
    };
    let mut all = vec![PortRange { start: 22, end: 22 }];
    all.extend(ports.iter().cloned());
    authorize(ec2, &id, &all).await?;
    Ok(id)
}

/// Opens TCP `ports` on a group; rules already there are fine.
async fn authorize(ec2: &Client, group_id: &str, ports: &[PortRange]) -> Result<()> {
    for p in ports {
        let perm = IpPermission::builder()
            .ip_protocol("tcp")
            .from_port(i32::from(p.start))
            .to_port(i32::from(p.end.max(p.start)))
            .ip_ranges(
                IpRange::builder()
                    .cidr_ip("0.0.0.0/0")
                    .description("aloft")
                    .build(),
            )
            .build();
        match ec2
            .authorize_security_group_ingress()
            .group_id(group_id)
            .ip_permissions(perm)
            .send()
            .await
        {
            Ok(_) => {}
            Err(e) if is_code(&e, "InvalidPermission.Duplicate") => {}
            Err(e) => return Err(from_sdk("AuthorizeSecurityGroupIngress", e)),
        }
    }
    Ok(())
}

/// The zone's name for a zone given by name (`us-east-1a`) or by id
/// (`use1-az1`, as the catalog has them: ids are the same zone in every
/// account, names are not).
pub async fn zone_name(ec2: &Client, zone: &str, region: &str) -> Result<String> {
    if zone.starts_with(region) {
        return Ok(zone.to_string());
    }
    let resp = ec2
        .describe_availability_zones()
        .zone_ids(zone)
        .send()
        .await
        .map_err(|e| from_sdk("DescribeAvailabilityZones", e))?;
    resp.availability_zones()
        .iter()
        .find_map(|z| z.zone_name())
        .map(str::to_string)
        .ok_or_else(|| {
            ProviderError::NotFound(format!("zone {zone} is not in {region} for this account"))
        })
}

/// Launches what the cluster lacks (ranks without a live instance), starts
/// its stopped instances, and returns all of them.
pub async fn run(ec2: &Client, r: &RunRequest, image_id: &str) -> Result<Vec<Instance>> {
    let cluster = &r.cluster.cluster_name;
    let have = query(ec2, &r.cluster).await?;
    let stopped: Vec<String> = have
        .iter()
        .filter(|i| matches!(i.state, InstanceState::Stopped | InstanceState::Stopping))
        .map(|i| i.id.clone())
        .collect();
    if !stopped.is_empty() {
        start_ids(ec2, stopped).await?;
    }
    let live: Vec<u32> = have
        .iter()
        .filter(|i| i.state != InstanceState::Terminating)
        .map(|i| i.rank)
        .collect();
    let missing: Vec<u32> = (0..r.node_count)
        .filter(|rank| !live.contains(rank))
        .collect();
    if missing.is_empty() {
        return query(ec2, &r.cluster).await;
    }

    let key_name = ensure_key_pair(ec2, &r.ssh_public_key).await?;
    let group_id = ensure_security_group(ec2, cluster, &r.ports).await?;
    let first_launch = have.is_empty();

    let mut tags = TagSpecification::builder()
        .resource_type(ResourceType::Instance)
        .tags(tag(CLUSTER_TAG, cluster));
    for (k, v) in &r.labels {
        if k != CLUSTER_TAG && k != RANK_TAG && k != "Name" {
            tags = tags.tags(tag(k, v));
        }
    }
    let volume_type = match r.disk_tier.as_deref() {
        Some("low") => VolumeType::Standard,
        Some("high" | "ultra") => VolumeType::Io2,
        _ => VolumeType::Gp3,
    };
    let mut ebs = EbsBlockDevice::builder()
        .volume_size(r.disk_size_gib.max(8) as i32)
        .volume_type(volume_type.clone())
        .delete_on_termination(true);
    if volume_type == VolumeType::Io2 {
        ebs = ebs.iops(if r.disk_tier.as_deref() == Some("ultra") {
            20_000
        } else {
            7_000
        });
    }
    let count = missing.len() as i32;
    let mut req = ec2
        .run_instances()
        .image_id(image_id)
        .instance_type(InstanceType::from(r.instance_type.as_str()))
        .min_count(count)
        .max_count(count)
        .key_name(key_name)
        .security_group_ids(&group_id)
        .block_device_mappings(
            BlockDeviceMapping::builder()
                .device_name(ROOT_DEVICE)
                .ebs(ebs.build())
                .build(),
        )
        .tag_specifications(tags.build());
    if let Some(zone) = &r.cluster.zone {
        let name = zone_name(ec2, zone, &r.cluster.region).await?;
        req = req.placement(Placement::builder().availability_zone(name).build());
    }
    if r.use_spot {
        req = req.instance_market_options(
            InstanceMarketOptionsRequest::builder()
                .market_type(MarketType::Spot)
                .spot_options(
                    SpotMarketOptions::builder()
                        .spot_instance_type(SpotInstanceType::OneTime)
                        .instance_interruption_behavior(InstanceInterruptionBehavior::Terminate)
                        .build(),
                )
                .build(),
        );
    }
    let sent = std::time::Instant::now();
    let resp = match req.send().await {
        Ok(resp) => resp,
        Err(e) => {
            // A cluster that got nothing keeps nothing: its security group
            // goes too (the host will try another zone or region).
            if first_launch {
                let _ = ec2.delete_security_group().group_id(&group_id).send().await;
            }
            return Err(from_sdk("RunInstances", e));
        }
    };
    aloft_sdk::log::debug(&format!(
        "RunInstances round trip: {:.2} ms ({count} instances)",
        sent.elapsed().as_secs_f64() * 1000.0
    ));
    let mut launched: Vec<(i32, String)> = resp
        .instances()
        .iter()
        .filter_map(|i| {
            Some((
                i.ami_launch_index().unwrap_or(0),
                i.instance_id()?.to_string(),
            ))
        })
        .collect();
    launched.sort();
    for ((_, id), rank) in launched.iter().zip(&missing) {
        let r = ec2
            .create_tags()
            .resources(id)
            .tags(tag(RANK_TAG, &rank.to_string()))
            .tags(tag("Name", &format!("aloft-{cluster}-{rank}")))
            .send()
            .await;
        if let Err(e) = r {
            // Without its rank tag the instance cannot be told apart: give
            // back what this call started rather than leave it unnamed.
            let ids: Vec<String> = launched.iter().map(|(_, id)| id.clone()).collect();
            let _ = ec2
                .terminate_instances()
                .set_instance_ids(Some(ids))
                .send()
                .await;
            return Err(from_sdk("CreateTags", e));
        }
    }
    query(ec2, &r.cluster).await
}

async fn start_ids(ec2: &Client, ids: Vec<String>) -> Result<()> {
    ec2.start_instances()
        .set_instance_ids(Some(ids))
        .send()
        .await
        .map(drop)
        .map_err(|e| from_sdk("StartInstances", e))
}

/// Stops the cluster's running instances (their disks stay).
pub async fn stop(ec2: &Client, cluster: &ClusterRef) -> Result<()> {
    let ids: Vec<String> = query(ec2, cluster)
        .await?
        .into_iter()
        .filter(|i| matches!(i.state, InstanceState::Pending | InstanceState::Running))
        .map(|i| i.id)
        .collect();
    if ids.is_empty() {
        return Ok(());
    }
    ec2.stop_instances()
        .set_instance_ids(Some(ids))
        .send()
        .await
        .map(drop)
        .map_err(|e| from_sdk("StopInstances", e))
}

/// Starts the cluster's stopped instances; returns the cluster's instances.
pub async fn start(ec2: &Client, cluster: &ClusterRef) -> Result<Vec<Instance>> {
    let have = query(ec2, cluster).await?;
    if have.is_empty() {
        return Err(ProviderError::NotFound(format!(
            "no instances of cluster {} in {}",
            cluster.cluster_name, cluster.region
        )));
    }
    let ids: Vec<String> = have
        .iter()
        .filter(|i| matches!(i.state, InstanceState::Stopped | InstanceState::Stopping))
        .map(|i| i.id.clone())
        .collect();
    if !ids.is_empty() {
        start_ids(ec2, ids).await?;
    }
    query(ec2, cluster).await
}

/// Terminates the cluster's instances and deletes its security group.
/// Idempotent: a cluster that is already gone is not an error.
pub async fn terminate(ec2: &Client, cluster: &ClusterRef) -> Result<()> {
    let ids: Vec<String> = query(ec2, cluster)
        .await?
        .into_iter()
        .filter(|i| i.state != InstanceState::Terminating)
        .map(|i| i.id)
        .collect();
    if !ids.is_empty() {
        match ec2
            .terminate_instances()
            .set_instance_ids(Some(ids))
            .send()
            .await
        {
            Ok(_) => {}
            Err(e) if is_code(&e, "InvalidInstanceID.NotFound") => {}
            Err(e) => return Err(from_sdk("TerminateInstances", e)),
        }
    }
    if let Some(group) = find_security_group(ec2, &cluster.cluster_name).await? {
        match ec2.delete_security_group().group_id(&group).send().await {
            Ok(_) => {}
            Err(e) if is_code(&e, "InvalidGroup.NotFound") => {}
            // Instances still shutting down hold it; the next launch of
            // this cluster name reuses it, the next down deletes it.
            Err(e) if is_code(&e, "DependencyViolation") => aloft_sdk::log::info(&format!(
                "security group {} is still in use by terminating instances; kept",
                security_group_name(&cluster.cluster_name)
            )),
            Err(e) => return Err(from_sdk("DeleteSecurityGroup", e)),
        }
    }
    Ok(())
}

/// Opens `ports` on the cluster's security group.
pub async fn open_ports(ec2: &Client, cluster: &ClusterRef, ports: &[PortRange]) -> Result<()> {
    match find_security_group(ec2, &cluster.cluster_name).await? {
        Some(id) => authorize(ec2, &id, ports).await,
        None => Err(ProviderError::NotFound(format!(
            "security group {} not found in {}",
            security_group_name(&cluster.cluster_name),
            cluster.region
        ))),
    }
}

/// What `check` shows: the regions the credentials can see, and the
/// account that owns them (from the default security group's owner).
pub async fn identity(ec2: &Client) -> Result<(Vec<String>, Option<String>)> {
    let regions = ec2
        .describe_regions()
        .send()
        .await
        .map_err(|e| from_sdk("DescribeRegions", e))?;
    let names = regions
        .regions()
        .iter()
        .filter_map(|r| r.region_name())
        .map(str::to_string)
        .collect();
    let account = ec2
        .describe_security_groups()
        .filters(filter("group-name", &["default"]))
        .send()
        .await
        .ok()
        .and_then(|r| {
            r.security_groups()
                .iter()
                .find_map(|g| g.owner_id())
                .map(str::to_string)
        });
    Ok((names, account))
}
