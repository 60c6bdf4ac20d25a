//! Running commands on nodes, behind [`NodeExec`] so the transport can
//! change: [`local::LocalExec`] runs every node on this machine (the local
//! provider: a node is a directory); an SSH implementation will reach
//! workers from the head.
//!
//! The contract that makes jobs outlive the daemon: a spawned command runs
//! in its own session, writes its output straight to a log file and, when
//! it ends, its exit status to an exit file. Nothing flows through a pipe
//! the daemon owns, so a restarted daemon learns everything it needs from
//! the files and the recorded [`ProcHandle`].

pub mod local;

use crate::cluster::NodeSpec;
use std::path::Path;
use std::time::{Duration, Instant};

/// A process started on a node, enough to find it again after a restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcHandle {
    /// The wrapper's pid; also its process group and session id.
    pub pid: i32,
    /// When it started (clock ticks since boot; 0 when unknown), to tell a
    /// recycled pid from ours.
    pub start_ticks: u64,
}

/// What to start.
#[derive(Debug)]
pub struct SpawnRequest<'a> {
    /// The script to run with bash (a file on the head).
    pub script: &'a Path,
    /// Environment on top of the node's own (`HOME` included).
    pub env: &'a [(String, String)],
    /// Where stdout and stderr go (a file on the head).
    pub log: &'a Path,
    /// Where the exit status goes when the script ends (a file on the head).
    pub exit_file: &'a Path,
}

/// What [`NodeExec::poll`] finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcState {
    /// Still running.
    Running,
    /// Ended with this status (128+N when killed by signal N).
    Exited(i32),
    /// Gone without writing its exit status (killed with its wrapper).
    Vanished,
}

/// A signal for a process tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// Ask to stop.
    Term,
    /// Stop now.
    Kill,
}

/// Starts, watches and kills commands on the cluster's nodes.
pub trait NodeExec: Send + Sync {
    /// Starts `req.script` detached on `node`: its own session, `HOME` and
    /// cwd from the node, output to `req.log`, exit status to
    /// `req.exit_file`.
    fn spawn(&self, node: &NodeSpec, req: &SpawnRequest<'_>) -> std::io::Result<ProcHandle>;

    /// Whether the command is still running, and its status if not.
    fn poll(&self, node: &NodeSpec, handle: &ProcHandle, exit_file: &Path) -> ProcState;

    /// Signals every process of the command's session; returns how many
    /// were still alive.
    fn signal_tree(&self, node: &NodeSpec, handle: &ProcHandle, signal: Signal) -> usize;

    /// Whether any process of the command's session is alive.
    fn tree_alive(&self, node: &NodeSpec, handle: &ProcHandle) -> bool;
}

/// Reads an exit file: `None` while absent or not yet written.
pub fn read_exit_file(path: &Path) -> Option<i32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// SIGTERM to every tree, SIGKILL to what is left after `grace`; returns
/// once all are gone (or a few seconds after SIGKILL, whichever is first).
pub fn kill_trees(exec: &dyn NodeExec, targets: &[(NodeSpec, ProcHandle)], grace: Duration) {
    if targets.is_empty() {
        return;
    }
    for (node, h) in targets {
        exec.signal_tree(node, h, Signal::Term);
    }
    let alive = || {
        targets
            .iter()
            .filter(|(n, h)| exec.tree_alive(n, h))
            .collect::<Vec<_>>()
    };
    let deadline = Instant::now() + grace;
    loop {
        let left = alive();
        if left.is_empty() {
            return;
        }
        if Instant::now() >= deadline {
            for (node, h) in left {
                exec.signal_tree(node, h, Signal::Kill);
            }
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let deadline = Instant::now() + Duration::from_secs(3);
    while !alive().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
}
