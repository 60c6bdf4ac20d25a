//! Test helpers: a cluster of directory nodes in a temp dir, driven by the
//! real `aloft agent ...` commands.

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The `aloft` binary under test: `$ALOFT_BIN`, else a workspace build.
pub fn aloft_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("ALOFT_BIN") {
        return PathBuf::from(p);
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    for p in [
        "target/agent/debug/aloft",
        "target/debug/aloft",
        "target/release/aloft",
    ] {
        let p = root.join(p);
        if p.exists() {
            return p;
        }
    }
    panic!("no aloft binary: build it with `CARGO_TARGET_DIR=target/agent cargo build -p aloft` (or set ALOFT_BIN)");
}

/// What a command did.
pub struct Run {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(out: Output) -> Run {
        Run {
            status: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Asserts success and returns stdout.
    #[track_caller]
    pub fn ok(self) -> String {
        assert_eq!(
            self.status, 0,
            "command failed\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self.stdout
    }

    /// Asserts success and parses stdout as JSON.
    #[track_caller]
    pub fn json(self) -> Value {
        let out = self.ok();
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{out}"))
    }
}

/// A cluster whose nodes are directories, with its agent state directory.
/// Dropping it shuts the agent down.
pub struct Cluster {
    _tmp: tempfile::TempDir,
    pub dir: PathBuf,
    pub homes: Vec<PathBuf>,
}

impl Cluster {
    /// `nodes`: (cpus, gpu indices) per rank; ips are 127.0.0.(rank+1).
    pub fn new(nodes: &[(f64, &[u32])]) -> Cluster {
        Cluster::with(nodes, Value::Null)
    }

    /// Like [`Cluster::new`] with an autostop command.
    pub fn with(nodes: &[(f64, &[u32])], autostop_command: Value) -> Cluster {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("agent");
        let homes: Vec<PathBuf> = (0..nodes.len())
            .map(|r| tmp.path().join(format!("node{r}")))
            .collect();
        let spec: Vec<Value> = nodes
            .iter()
            .enumerate()
            .map(|(r, (cpus, gpus))| {
                std::fs::create_dir_all(&homes[r]).unwrap();
                json!({"rank": r, "ip": format!("127.0.0.{}", r + 1), "home": homes[r], "cpus": cpus, "gpus": gpus, "gpu_name": null})
            })
            .collect();
        let c = Cluster {
            _tmp: tmp,
            dir,
            homes,
        };
        let cluster = json!({"name": "c1", "nodes": spec, "autostop_command": autostop_command});
        let out = c.agent("init", &["--cluster", &cluster.to_string()]).json();
        assert_eq!(out, json!({"cluster": "c1", "num_nodes": nodes.len()}));
        c
    }

    /// Runs `aloft agent SUB --dir D ARGS...`.
    pub fn agent(&self, sub: &str, args: &[&str]) -> Run {
        let out = Command::new(aloft_bin())
            .arg("agent")
            .arg(sub)
            .arg("--dir")
            .arg(&self.dir)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        Run::from(out)
    }

    /// Starts the daemon if needed; returns its pid.
    pub fn ensure(&self) -> i32 {
        self.agent("ensure", &[]).json()["pid"].as_i64().unwrap() as i32
    }

    /// Submits a job spec; returns its id.
    pub fn submit(&self, spec: Value) -> i64 {
        self.agent("submit", &["--spec", &spec.to_string()]).json()["job_id"]
            .as_i64()
            .unwrap()
    }

    /// `status --json` of one job.
    pub fn status(&self, id: i64) -> Value {
        let v = self.agent("status", &[&id.to_string(), "--json"]).json();
        v[0].clone()
    }

    /// Waits (up to 20 s) until the job is in `state`.
    #[track_caller]
    pub fn wait_state(&self, id: i64, state: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let s = self.status(id);
            if s["status"] == state {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "job {id} never reached {state}: {s}\n{}",
                self.daemon_log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `logs JOB` (no follow): (exit status, output).
    pub fn logs(&self, id: i64) -> (i32, String) {
        let r = self.agent("logs", &[&id.to_string()]);
        (r.status, r.stdout)
    }

    /// The daemon's log, for failure messages.
    pub fn daemon_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("daemon.log")).unwrap_or_default()
    }

    /// A file in node `rank`'s home.
    pub fn home_file(&self, rank: usize, name: &str) -> PathBuf {
        self.homes[rank].join(name)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.agent("shutdown", &[]);
    }
}

/// Waits (up to 20 s) for `f` to hold.
#[track_caller]
pub fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether `pid` is a live (non-zombie) process.
pub fn pid_alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => {
            let state = s
                .rsplit_once(')')
                .map(|(_, r)| r.trim_start().chars().next())
                .unwrap_or(None);
            !matches!(state, Some('Z') | Some('X'))
        }
        Err(_) => false,
    }
}

/// A shell loop that waits for `$HOME/<name>` to exist.
pub fn wait_for_file(name: &str) -> String {
    format!("while [ ! -e \"$HOME/{name}\" ]; do sleep 0.02; done")
}
