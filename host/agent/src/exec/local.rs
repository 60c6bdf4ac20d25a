//! [`LocalExec`]: every node on this machine, each a directory sandbox.
//!
//! A command runs as `bash -c 'bash SCRIPT; echo $? > EXIT'` in a new
//! session (`setsid`), stdout and stderr opened on the log file. Its tree
//! is found again through `/proc`: every process whose session id is the
//! wrapper's pid. A pid number stays allocated while any process uses it as
//! a session id, so a recycled wrapper pid (different start time) means the
//! session is empty.

use super::{read_exit_file, NodeExec, ProcHandle, ProcState, Signal, SpawnRequest};
use crate::cluster::NodeSpec;
use std::fs::OpenOptions;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

/// Runs the script, then records its status; `$0` is the script, `$1` the
/// exit file.
const WRAPPER: &str = r#"bash --noprofile --norc "$0"; echo $? > "$1""#;

/// Runs `ssh ARGS...` (from `$1` on), then records its status in `$0`.
const SSH_WRAPPER: &str = r#"exit_file="$0"; "$@"; echo $? > "$exit_file""#;

/// `ssh` and its options for one hop (no prompts, key pinned on first use
/// in the head's known_hosts, dead peers noticed within ~30 s).
fn ssh_argv(node: &NodeSpec, hop: &crate::cluster::SshHop) -> Vec<String> {
    vec![
        "ssh".into(),
        "-tt".into(),
        "-o".into(),
        "BatchMode=yes".into(),
        "-o".into(),
        "StrictHostKeyChecking=accept-new".into(),
        // Pinned per cluster beside its key, not in the user's own file,
        // so an address reused by another cluster is not a "changed key".
        "-o".into(),
        format!("UserKnownHostsFile={}.known_hosts", hop.key.display()),
        "-o".into(),
        "ServerAliveInterval=10".into(),
        "-o".into(),
        "ServerAliveCountMax=3".into(),
        "-o".into(),
        "LogLevel=ERROR".into(),
        "-i".into(),
        hop.key.display().to_string(),
        "-p".into(),
        hop.port.to_string(),
        format!("{}@{}", hop.user, node.ip),
    ]
}

/// POSIX single-quoting.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// The command the node runs: no CR/LF translation on its pty, the env,
/// the node's `~/sky_workdir` (or home), then the script.
fn remote_command(script: &str, env: &[(String, String)]) -> String {
    let mut cmd = String::from("stty -onlcr -echo 2>/dev/null; ");
    for (k, v) in env {
        if k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') && !k.is_empty() {
            cmd.push_str(&format!("export {k}={}; ", quote(v)));
        }
    }
    cmd.push_str("cd ~/sky_workdir 2>/dev/null || cd ~; exec bash --noprofile --norc -c ");
    cmd.push_str(&quote(script));
    cmd
}

/// Nodes that are directories on this machine.
#[derive(Debug, Default, Clone, Copy)]
pub struct LocalExec;

impl NodeExec for LocalExec {
    fn spawn(&self, node: &NodeSpec, req: &SpawnRequest<'_>) -> std::io::Result<ProcHandle> {
        match std::fs::remove_file(req.exit_file) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let out = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(req.log)?;
        let err = out.try_clone()?;
        let mut cmd = Command::new("bash");
        cmd.arg("--noprofile").arg("--norc").arg("-c");
        match &node.ssh {
            None => {
                cmd.arg(WRAPPER)
                    .arg(req.script)
                    .arg(req.exit_file)
                    .current_dir(node.workdir())
                    .envs(req.env.iter().map(|(k, v)| (k, v)))
                    .env("HOME", &node.home);
            }
            Some(hop) => {
                // The ssh client runs here, in the job's session, so
                // cancelling the session closes the connection, and `-tt`
                // makes the node hang up the job's processes with it.
                let script = std::fs::read_to_string(req.script)?;
                cmd.arg(SSH_WRAPPER)
                    .arg(req.exit_file)
                    .args(ssh_argv(node, hop))
                    .arg(remote_command(&script, req.env));
            }
        }
        cmd.stdin(Stdio::null()).stdout(out).stderr(err);
        new_session(&mut cmd);
        let child = cmd.spawn()?;
        let pid = child.id() as i32;
        // Not waited for here: the daemon reaps its children in its loop,
        // and after a daemon restart the wrapper is init's child.
        drop(child);
        Ok(ProcHandle {
            pid,
            start_ticks: stat(pid).map(|s| s.start_ticks).unwrap_or(0),
        })
    }

    fn poll(&self, _node: &NodeSpec, handle: &ProcHandle, exit_file: &Path) -> ProcState {
        if let Some(code) = read_exit_file(exit_file) {
            return ProcState::Exited(code);
        }
        if is_alive(handle) {
            return ProcState::Running;
        }
        // It may have written the file between the two checks.
        match read_exit_file(exit_file) {
            Some(code) => ProcState::Exited(code),
            None => ProcState::Vanished,
        }
    }

    fn signal_tree(&self, _node: &NodeSpec, handle: &ProcHandle, signal: Signal) -> usize {
        let sig = match signal {
            Signal::Term => libc::SIGTERM,
            Signal::Kill => libc::SIGKILL,
        };
        let members = session_members(handle);
        for pid in &members {
            // SAFETY: kill(2) has no memory-safety preconditions.
            unsafe { libc::kill(*pid, sig) };
        }
        members.len()
    }

    fn tree_alive(&self, _node: &NodeSpec, handle: &ProcHandle) -> bool {
        !session_members(handle).is_empty()
    }
}

/// Makes the spawned process a session (and process group) leader.
pub(crate) fn new_session(cmd: &mut Command) {
    // SAFETY: the closure runs between fork and exec and calls only
    // setsid(2), which is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// The fields of `/proc/<pid>/stat` we use.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stat {
    /// R, S, D, Z, ...
    pub state: char,
    /// Session id.
    pub session: i32,
    /// Start time in clock ticks since boot.
    pub start_ticks: u64,
}

/// Reads `/proc/<pid>/stat`; `None` when there is no such process.
pub(crate) fn stat(pid: i32) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: fields
    // resume after the last ')'. Index 0 below is field 3 (state).
    let rest = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(Stat {
        state: f.first()?.chars().next()?,
        session: f.get(3)?.parse().ok()?,
        start_ticks: f.get(19)?.parse().ok()?,
    })
}

fn live(s: &Stat) -> bool {
    !matches!(s.state, 'Z' | 'X' | 'x')
}

/// Whether the process `handle` names is alive (not a zombie, not a
/// recycled pid).
pub(crate) fn is_alive(handle: &ProcHandle) -> bool {
    match stat(handle.pid) {
        Some(s) => live(&s) && (handle.start_ticks == 0 || s.start_ticks == handle.start_ticks),
        None => false,
    }
}

/// Live processes of the session `handle` leads.
fn session_members(handle: &ProcHandle) -> Vec<i32> {
    if let Some(s) = stat(handle.pid) {
        if handle.start_ticks != 0 && s.start_ticks != handle.start_ticks {
            return Vec::new();
        }
    }
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| stat(pid).is_some_and(|s| s.session == handle.pid && live(&s)))
        .collect()
}

/// Reaps every exited child of this process (the daemon's wrappers).
pub(crate) fn reap_children() {
    loop {
        let mut status = 0;
        // SAFETY: waitpid(2) with a valid out-pointer.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if pid <= 0 {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::kill_trees;
    use std::time::Duration;

    fn node(home: &Path) -> NodeSpec {
        NodeSpec {
            rank: 0,
            ip: "127.0.0.1".into(),
            home: home.to_path_buf(),
            cpus: 1.0,
            gpus: vec![],
            gpu_name: None,
            ssh: None,
        }
    }

    #[test]
    fn remote_commands_quote_everything() {
        let cmd = super::remote_command(
            "echo \"$A\" 'x'",
            &[("A".into(), "it's $HOME; rm -rf /".into())],
        );
        let out = std::process::Command::new("bash")
            .arg("-c")
            .arg(&cmd)
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "it's $HOME; rm -rf / x\n"
        );
    }

    #[test]
    fn runs_detached_and_records_exit_code() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("s.sh");
        std::fs::write(&script, "echo \"home=$HOME x=$X\"; exit 3").unwrap();
        let (log, exit) = (dir.path().join("l"), dir.path().join("e"));
        let env = vec![("X".to_string(), "1".to_string())];
        let n = node(dir.path());
        let h = LocalExec
            .spawn(
                &n,
                &SpawnRequest {
                    script: &script,
                    env: &env,
                    log: &log,
                    exit_file: &exit,
                },
            )
            .unwrap();
        let mut state = ProcState::Running;
        for _ in 0..200 {
            reap_children();
            state = LocalExec.poll(&n, &h, &exit);
            if state != ProcState::Running {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(state, ProcState::Exited(3));
        assert_eq!(
            std::fs::read_to_string(&log).unwrap(),
            format!("home={} x=1\n", dir.path().display())
        );
    }

    #[test]
    fn kills_the_whole_tree() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("s.sh");
        std::fs::write(&script, "sleep 1000 & sleep 1000 & wait").unwrap();
        let (log, exit) = (dir.path().join("l"), dir.path().join("e"));
        let n = node(dir.path());
        let h = LocalExec
            .spawn(
                &n,
                &SpawnRequest {
                    script: &script,
                    env: &[],
                    log: &log,
                    exit_file: &exit,
                },
            )
            .unwrap();
        let mut members = Vec::new();
        for _ in 0..200 {
            members = session_members(&h);
            if members.len() >= 4 {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(
            members.len() >= 4,
            "wrapper, bash and two sleeps: {members:?}"
        );
        let reaper = std::thread::spawn(|| {
            for _ in 0..100 {
                reap_children();
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        kill_trees(&LocalExec, &[(n.clone(), h)], Duration::from_secs(2));
        assert!(!LocalExec.tree_alive(&n, &h));
        assert!(members.iter().all(|p| stat(*p).is_none_or(|s| !live(&s))));
        drop(reaper);
    }
}
