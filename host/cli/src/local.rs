//! The `local` provider, native in the host: a cluster of N nodes on this
//! machine, each node a directory sandbox under
//! `$ALOFT_HOME/clusters/<name>/nodes/<rank>` used as the node's home (so
//! `~/sky_workdir` and file mounts land per node as on a VM). It offers this
//! machine's CPUs, memory and GPUs (from nvidia-smi when present).

use aloft_core::optimizer::{Plan, Want};
use std::path::{Path, PathBuf};

/// What this machine has.
#[derive(Debug, Clone, PartialEq)]
pub struct Machine {
    /// Logical CPUs.
    pub cpus: f64,
    /// Memory in GiB.
    pub memory_gib: f64,
    /// GPUs: (index, name).
    pub gpus: Vec<(u32, String)>,
}

impl Machine {
    /// Parses the output of [`DETECT_SCRIPT`] run on a machine: the
    /// machine and its `$HOME`.
    pub fn parse_detect(out: &str) -> Option<(Machine, String)> {
        let mut lines = out.lines();
        let cpus: f64 = lines.next()?.trim().parse().ok()?;
        let mem_kb: f64 = lines.next()?.trim().parse().ok()?;
        let home = lines.next()?.trim().to_string();
        let gpus = lines
            .filter_map(|l| {
                let (i, name) = l.split_once(',')?;
                Some((i.trim().parse().ok()?, canonical_gpu_name(name.trim())))
            })
            .collect();
        Some((
            Machine {
                cpus,
                memory_gib: mem_kb / 1024.0 / 1024.0,
                gpus,
            },
            home,
        ))
    }

    /// Reads this machine's resources.
    pub fn detect() -> Machine {
        let cpus = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1) as f64;
        let memory_gib = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| {
                m.lines()
                    .find(|l| l.starts_with("MemTotal:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|kb| kb.parse::<f64>().ok())
            })
            .map(|kb| kb / 1024.0 / 1024.0)
            .unwrap_or(0.0);
        Machine {
            cpus,
            memory_gib,
            gpus: detect_gpus(),
        }
    }

    /// The GPU model, if the machine has GPUs.
    pub fn gpu_name(&self) -> Option<&str> {
        self.gpus.first().map(|(_, n)| n.as_str())
    }
}

/// Prints CPUs, MemTotal (kB), `$HOME` and nvidia-smi's GPUs, a line each.
pub const DETECT_SCRIPT: &str = "nproc; awk '/^MemTotal:/{print $2}' /proc/meminfo; echo \"$HOME\"; nvidia-smi --query-gpu=index,name --format=csv,noheader 2>/dev/null || true";

fn detect_gpus() -> Vec<(u32, String)> {
    let out = std::process::Command::new("nvidia-smi")
        .args(["--query-gpu=index,name", "--format=csv,noheader"])
        .stderr(std::process::Stdio::null())
        .output();
    let Ok(out) = out else { return Vec::new() };
    if !out.status.success() {
        return Vec::new();
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let (i, name) = l.split_once(',')?;
            Some((i.trim().parse().ok()?, canonical_gpu_name(name.trim())))
        })
        .collect()
}

/// `NVIDIA A100-SXM4-80GB` -> `A100-80GB`, `Tesla T4` -> `T4`, ... so task
/// accelerator names match what nvidia-smi reports.
fn canonical_gpu_name(raw: &str) -> String {
    let s = raw
        .trim_start_matches("NVIDIA ")
        .trim_start_matches("Tesla ")
        .trim_start_matches("GeForce ");
    let mut parts = s.split(['-', ' ']).filter(|p| !p.is_empty());
    let model = parts.next().unwrap_or(s).to_string();
    let mem = parts.find(|p| p.ends_with("GB"));
    match mem {
        Some(m) if model == "A100" || model == "H100" => format!("{model}-{m}"),
        _ => model,
    }
}

/// Whether one want fits this machine; the local plan if so, else why not.
pub fn fit(m: &Machine, w: &Want, num_nodes: u32) -> Result<Plan, String> {
    if w.provider.as_deref().is_some_and(|p| p != "local") {
        return Err(format!(
            "asks for provider {}",
            w.provider.as_deref().unwrap_or("")
        ));
    }
    fit_machine(m, w, num_nodes, "local")
}

/// Whether one want fits a machine of `provider` (its CPUs, memory, GPUs).
pub fn fit_machine(m: &Machine, w: &Want, num_nodes: u32, provider: &str) -> Result<Plan, String> {
    if let Some(t) = w.instance_type.as_deref().filter(|t| *t != "local") {
        return Err(format!("asks for instance type {t}"));
    }
    if let Some(c) = w.cpus {
        if c.value > m.cpus + 1e-6 {
            return Err(format!(
                "asks for {} vCPUs; this machine has {}",
                c.value, m.cpus
            ));
        }
    }
    if let Some(mem) = w.memory {
        if mem.value > m.memory_gib + 1e-6 {
            return Err(format!(
                "asks for {} GB of memory; this machine has {:.1}",
                mem.value, m.memory_gib
            ));
        }
    }
    let mut accelerators = None;
    if let Some((name, count)) = &w.accelerator {
        let have = m
            .gpus
            .iter()
            .filter(|(_, n)| n.eq_ignore_ascii_case(name))
            .count() as f32;
        if have < *count {
            return Err(match m.gpu_name() {
                None => format!("asks for {name}:{count}; this machine has no GPU"),
                Some(g) => format!(
                    "asks for {name}:{count}; this machine has {} x {g}",
                    m.gpus.len()
                ),
            });
        }
        accelerators = Some((name.clone(), *count));
    }
    Ok(Plan {
        provider: provider.into(),
        region: provider.into(),
        zone: None,
        instance_type: "local".into(),
        vcpus: m.cpus as f32,
        memory_gib: m.memory_gib as f32,
        accelerators,
        use_spot: false,
        num_nodes,
        hourly_price: 0.0,
        hourly_cost: 0.0,
        want: 0,
    })
}

/// A cluster's directory.
pub fn cluster_dir(home: &Path, name: &str) -> PathBuf {
    home.join("clusters").join(name)
}

/// A node's home directory.
pub fn node_home(home: &Path, name: &str, rank: u32) -> PathBuf {
    cluster_dir(home, name).join("nodes").join(rank.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use aloft_core::optimizer::Amount;

    #[test]
    fn names_and_fit() {
        assert_eq!(canonical_gpu_name("NVIDIA A100-SXM4-80GB"), "A100-80GB");
        assert_eq!(canonical_gpu_name("Tesla T4"), "T4");
        assert_eq!(canonical_gpu_name("NVIDIA H100 80GB HBM3"), "H100-80GB");
        let m = Machine {
            cpus: 2.0,
            memory_gib: 8.0,
            gpus: vec![],
        };
        let w = Want {
            cpus: Some(Amount {
                value: 1.0,
                at_least: true,
            }),
            ..Want::default()
        };
        assert_eq!(fit(&m, &w, 2).unwrap().num_nodes, 2);
        let w = Want {
            cpus: Some(Amount {
                value: 4.0,
                at_least: true,
            }),
            ..Want::default()
        };
        assert!(fit(&m, &w, 1).unwrap_err().contains("this machine has 2"));
        let w = Want {
            accelerator: Some(("A100".into(), 1.0)),
            ..Want::default()
        };
        assert!(fit(&m, &w, 1).unwrap_err().contains("no GPU"));
        let w = Want {
            provider: Some("aws".into()),
            ..Want::default()
        };
        assert!(fit(&m, &w, 1).is_err());
    }
}
