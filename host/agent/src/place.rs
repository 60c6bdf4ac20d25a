//! Placement: whether a job fits on the cluster now, next to the jobs that
//! hold resources, and which GPU indices it gets on each node.
//!
//! A job of `n` nodes runs on ranks `0..n`, asking `cpus` and `gpus` on
//! each. GPUs below 1 share a device (best fit: the fullest device that
//! still has room); whole GPUs take free devices, lowest index first.

use crate::cluster::ClusterSpec;
use std::collections::BTreeMap;

const EPS: f64 = 1e-9;

/// What a job asks for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Demand {
    /// Nodes (ranks `0..num_nodes`).
    pub num_nodes: u32,
    /// CPUs per node.
    pub cpus: f64,
    /// GPUs per node.
    pub gpus: f64,
}

impl Demand {
    /// The share of one device each allocated index stands for.
    fn share(&self) -> f64 {
        if self.gpus < 1.0 {
            self.gpus
        } else {
            1.0
        }
    }
}

/// A job holding resources: its demand and its GPU indices per rank.
#[derive(Debug, Clone, PartialEq)]
pub struct Held {
    /// What it asked.
    pub demand: Demand,
    /// GPU indices per rank (index 0 = rank 0).
    pub gpu_ids: Vec<Vec<u32>>,
}

/// The GPU indices per rank `want` gets, or `None` if it does not fit now.
pub fn place(cluster: &ClusterSpec, held: &[Held], want: &Demand) -> Option<Vec<Vec<u32>>> {
    let n = cluster.nodes.len();
    if want.num_nodes as usize > n {
        return None;
    }
    let mut cpus_used = vec![0.0; n];
    let mut gpu_used: Vec<BTreeMap<u32, f64>> = vec![BTreeMap::new(); n];
    for h in held {
        for r in 0..(h.demand.num_nodes as usize).min(n) {
            cpus_used[r] += h.demand.cpus;
            for id in h.gpu_ids.get(r).into_iter().flatten() {
                *gpu_used[r].entry(*id).or_default() += h.demand.share();
            }
        }
    }
    let mut out = Vec::with_capacity(want.num_nodes as usize);
    for node in cluster.first(want.num_nodes) {
        let r = node.rank as usize;
        if cpus_used[r] + want.cpus > node.cpus + EPS {
            return None;
        }
        let used = |id: &u32| gpu_used[r].get(id).copied().unwrap_or(0.0);
        let ids = if want.gpus <= 0.0 {
            Vec::new()
        } else if want.gpus < 1.0 {
            let best = node
                .gpus
                .iter()
                .filter(|id| used(id) + want.gpus <= 1.0 + EPS)
                .max_by(|a, b| used(a).total_cmp(&used(b)))?;
            vec![*best]
        } else {
            let free: Vec<u32> = node
                .gpus
                .iter()
                .filter(|id| used(id) <= EPS)
                .copied()
                .collect();
            let k = want.gpus.ceil() as usize;
            if free.len() < k {
                return None;
            }
            free[..k].to_vec()
        };
        out.push(ids);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster() -> ClusterSpec {
        ClusterSpec::parse(
            r#"{"name":"c","nodes":[{"rank":0,"ip":"a","home":"/h","cpus":2,"gpus":[0,1]},
                {"rank":1,"ip":"b","home":"/h","cpus":1,"gpus":[0,1]}]}"#,
        )
        .unwrap()
    }

    fn d(num_nodes: u32, cpus: f64, gpus: f64) -> Demand {
        Demand {
            num_nodes,
            cpus,
            gpus,
        }
    }

    #[test]
    fn cpus_are_counted_per_node() {
        let c = cluster();
        let a = Held {
            demand: d(2, 1.0, 0.0),
            gpu_ids: vec![vec![], vec![]],
        };
        // Rank 1 is full; a 1-node job still fits on rank 0.
        assert_eq!(
            place(&c, std::slice::from_ref(&a), &d(1, 1.0, 0.0)),
            Some(vec![vec![]])
        );
        assert_eq!(place(&c, &[a], &d(2, 0.5, 0.0)), None);
    }

    #[test]
    fn whole_gpus_take_free_devices() {
        let c = cluster();
        let a = Held {
            demand: d(1, 0.5, 1.0),
            gpu_ids: vec![vec![0]],
        };
        assert_eq!(
            place(&c, std::slice::from_ref(&a), &d(1, 0.5, 1.0)),
            Some(vec![vec![1]])
        );
        assert_eq!(place(&c, &[a], &d(1, 0.5, 2.0)), None);
        assert_eq!(
            place(&c, &[], &d(2, 0.5, 2.0)),
            Some(vec![vec![0, 1], vec![0, 1]])
        );
    }

    #[test]
    fn fractional_gpus_share_best_fit() {
        let c = cluster();
        let a = Held {
            demand: d(1, 0.1, 0.5),
            gpu_ids: vec![vec![1]],
        };
        assert_eq!(
            place(&c, std::slice::from_ref(&a), &d(1, 0.1, 0.5)),
            Some(vec![vec![1]])
        );
        let b = Held {
            demand: d(1, 0.1, 0.5),
            gpu_ids: vec![vec![1]],
        };
        assert_eq!(
            place(&c, &[a.clone(), b.clone()], &d(1, 0.1, 0.5)),
            Some(vec![vec![0]])
        );
        // Device 1 is shared, so only device 0 is free for a whole GPU.
        assert_eq!(place(&c, &[a, b], &d(1, 0.1, 2.0)), None);
    }
}
