//! The cluster description `init` stores: nodes in rank order with their
//! capacity, and the command autostop runs.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// One node of the cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSpec {
    /// 0 is the head; ranks are 0..n without gaps.
    pub rank: u32,
    /// The address other nodes reach it at (`SKYPILOT_NODE_IPS`).
    pub ip: String,
    /// The node's home directory (absolute): jobs run with `HOME` set to it,
    /// in `<home>/sky_workdir` when that exists.
    pub home: PathBuf,
    /// CPUs jobs may demand in total.
    pub cpus: f64,
    /// Device indices of the node's GPUs (`CUDA_VISIBLE_DEVICES` values).
    #[serde(default)]
    pub gpus: Vec<u32>,
    /// The accelerator's name, e.g. "A100" (shown in `queue`).
    #[serde(default)]
    pub gpu_name: Option<String>,
    /// How the head reaches this node over SSH; none = the node is on the
    /// head's machine (the head itself, or a local-provider sandbox).
    #[serde(default)]
    pub ssh: Option<SshHop>,
}

/// An SSH hop from the head to another node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SshHop {
    /// Login user on the node.
    pub user: String,
    /// SSH port.
    pub port: u16,
    /// Private key on the head (the cluster-internal key).
    pub key: PathBuf,
}

impl NodeSpec {
    /// Where jobs on this node start: `<home>/sky_workdir` if it exists.
    /// (For a node behind an SSH hop this is decided on the node.)
    pub fn workdir(&self) -> PathBuf {
        let wd = self.home.join("sky_workdir");
        if wd.is_dir() {
            wd
        } else {
            self.home.clone()
        }
    }

    /// `head` for rank 0, `worker<rank>` otherwise (SkyPilot's log prefix).
    pub fn role(&self) -> String {
        if self.rank == 0 {
            "head".to_string()
        } else {
            format!("worker{}", self.rank)
        }
    }
}

/// What `aloft agent init --cluster JSON` describes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterSpec {
    /// The cluster's name.
    pub name: String,
    /// Its nodes, any order in the JSON; kept sorted by rank.
    pub nodes: Vec<NodeSpec>,
    /// argv that autostop runs with `stop` or `down` appended.
    #[serde(default)]
    pub autostop_command: Option<Vec<String>>,
    /// The cloud, for `SKYPILOT_CLUSTER_INFO` (e.g. "local").
    #[serde(default)]
    pub cloud: Option<String>,
    /// The region, for `SKYPILOT_CLUSTER_INFO`.
    #[serde(default)]
    pub region: Option<String>,
    /// The zone, for `SKYPILOT_CLUSTER_INFO`.
    #[serde(default)]
    pub zone: Option<String>,
}

impl ClusterSpec {
    /// Parses and validates the JSON `init` is given.
    pub fn parse(json: &str) -> Result<ClusterSpec> {
        let mut spec: ClusterSpec = serde_json::from_str(json).map_err(|source| Error::Json {
            what: "cluster",
            source,
        })?;
        spec.nodes.sort_by_key(|n| n.rank);
        spec.validate()?;
        Ok(spec)
    }

    fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::InvalidCluster(m));
        if self.name.trim().is_empty() {
            return bad("the cluster name is empty".into());
        }
        if self.nodes.is_empty() {
            return bad(format!("cluster {} has no nodes", self.name));
        }
        for (i, n) in self.nodes.iter().enumerate() {
            if n.rank as usize != i {
                return bad(format!("node ranks must be 0..{} without gaps or repeats; found rank {} at position {i}", self.nodes.len(), n.rank));
            }
            if !n.home.is_absolute() {
                return bad(format!(
                    "node {}: home {} is not an absolute path",
                    n.rank,
                    n.home.display()
                ));
            }
            if !(n.cpus.is_finite() && n.cpus >= 0.0) {
                return bad(format!(
                    "node {}: cpus must be a number >= 0, not {}",
                    n.rank, n.cpus
                ));
            }
            if n.ip.trim().is_empty() {
                return bad(format!("node {}: the ip is empty", n.rank));
            }
        }
        if let Some(cmd) = &self.autostop_command {
            if cmd.is_empty() {
                return bad("autostop_command is an empty list; use null for none".into());
            }
        }
        Ok(())
    }

    /// The first `n` nodes (the ones a job of `n` nodes runs on).
    pub fn first(&self, n: u32) -> &[NodeSpec] {
        &self.nodes[..(n as usize).min(self.nodes.len())]
    }

    /// `SKYPILOT_CLUSTER_INFO` for a job on the first `num_nodes` nodes.
    pub fn info_json(&self, num_nodes: u32) -> String {
        let ips: Vec<&str> = self
            .first(num_nodes)
            .iter()
            .map(|n| n.ip.as_str())
            .collect();
        serde_json::json!({
            "cluster_name": self.name,
            "cloud": self.cloud.as_deref().unwrap_or("local"),
            "region": self.region,
            "zone": self.zone,
            "num_nodes": num_nodes,
            "node_ips": ips,
        })
        .to_string()
    }
}

/// Creates `dir` (and parents) if missing.
pub(crate) fn ensure_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(crate::error::io("creating", dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sorts_and_validates() {
        let c = ClusterSpec::parse(
            r#"{"name":"c1","nodes":[{"rank":1,"ip":"10.0.0.2","home":"/n1","cpus":2.0,"gpus":[],"gpu_name":null},
                {"rank":0,"ip":"10.0.0.1","home":"/n0","cpus":2,"gpus":[0,1],"gpu_name":"A100"}],"autostop_command":["x","stop"]}"#,
        )
        .unwrap();
        assert_eq!(c.nodes[0].ip, "10.0.0.1");
        assert_eq!(c.nodes[1].role(), "worker1");
        let info: serde_json::Value = serde_json::from_str(&c.info_json(2)).unwrap();
        assert_eq!(info["node_ips"][1], "10.0.0.2");
        assert_eq!(info["cluster_name"], "c1");
    }

    #[test]
    fn rejects_gaps_relative_homes_and_unknown_keys() {
        let gap = r#"{"name":"c","nodes":[{"rank":0,"ip":"a","home":"/h","cpus":1},{"rank":2,"ip":"b","home":"/h","cpus":1}]}"#;
        assert!(ClusterSpec::parse(gap)
            .unwrap_err()
            .to_string()
            .contains("without gaps"));
        let rel = r#"{"name":"c","nodes":[{"rank":0,"ip":"a","home":"h","cpus":1}]}"#;
        assert!(ClusterSpec::parse(rel)
            .unwrap_err()
            .to_string()
            .contains("absolute"));
        let unk = r#"{"name":"c","nodes":[],"bogus":1}"#;
        assert!(ClusterSpec::parse(unk)
            .unwrap_err()
            .to_string()
            .contains("bogus"));
    }
}
