//! The daemon: at most one per state directory, its loop, starting it
//! detached (`ensure`), stopping it (`shutdown`) and autostop.
//!
//! The lock is a POSIX write lock on `D/daemon.pid`, held for the daemon's
//! life and dropped by the kernel when it dies (even by SIGKILL). Others
//! ask who holds it with `F_GETLK`, which takes nothing, so probing never
//! races a starting daemon. Jobs never inherit it: locks are not passed to
//! children and the file is close-on-exec.

use crate::clock::now;
use crate::db::Store;
use crate::error::{io, Error, Result};
use crate::exec::local::{is_alive, new_session, reap_children, LocalExec};
use crate::exec::NodeExec;
use crate::job::JobState;
use crate::paths::StateDir;
use crate::sched::{log, Scheduler};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The loop's period when nothing pokes it.
pub const TICK: Duration = Duration::from_millis(100);

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_stop(_sig: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

fn lock_request(kind: libc::c_int) -> libc::flock {
    // SAFETY: `flock` is a plain C struct; all-zero is a valid value.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = kind as libc::c_short;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl
}

/// The pid of the running daemon, if one holds the lock.
pub fn running_pid(dir: &StateDir) -> Option<i32> {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(dir.pid_file())
        .ok()?;
    let mut fl = lock_request(libc::F_WRLCK);
    // SAFETY: a valid fd and a valid `flock` out-pointer.
    let r = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_GETLK, &mut fl) };
    (r != -1 && fl.l_type != libc::F_UNLCK as libc::c_short).then_some(fl.l_pid)
}

/// Takes the lock and writes our pid; `None` if another daemon has it.
fn acquire(dir: &StateDir) -> Result<Option<File>> {
    let path = dir.pid_file();
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io("opening", &path))?;
    let fl = lock_request(libc::F_WRLCK);
    // SAFETY: a valid fd and a valid `flock`.
    if unsafe { libc::fcntl(f.as_raw_fd(), libc::F_SETLK, &fl) } == -1 {
        let e = std::io::Error::last_os_error();
        if matches!(e.raw_os_error(), Some(libc::EACCES) | Some(libc::EAGAIN)) {
            return Ok(None);
        }
        return Err(io("locking", &path)(e));
    }
    f.set_len(0)
        .and_then(|()| f.seek(SeekFrom::Start(0)))
        .map_err(io("writing", &path))?;
    writeln!(f, "{}", std::process::id()).map_err(io("writing", &path))?;
    Ok(Some(f))
}

/// Runs the daemon in this process until signalled, autostopped or the
/// state directory disappears. Returns at once if another daemon runs.
pub fn run(dir: &StateDir) -> Result<()> {
    let (store, cluster) = Store::open_cluster(dir)?;
    let Some(_lock) = acquire(dir)? else {
        return Ok(());
    };
    for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
        // SAFETY: the handler only stores to an atomic (async-signal-safe).
        unsafe { libc::signal(sig, on_stop as *const () as libc::sighandler_t) };
    }
    let started = now();
    store.set_meta("daemon_started_at", Some(&started.to_string()))?;
    log(&format!(
        "daemon started: pid {}, cluster {}, {} node(s)",
        std::process::id(),
        cluster.name,
        cluster.nodes.len()
    ));
    let _ = std::fs::remove_file(dir.socket());
    let sock = match UnixDatagram::bind(dir.socket()) {
        Ok(s) => s.set_read_timeout(Some(TICK)).map(|()| s).ok(),
        Err(e) => {
            log(&format!(
                "no wake-up socket ({e}); polling every {} ms",
                TICK.as_millis()
            ));
            None
        }
    };
    let exec: Arc<dyn NodeExec> = Arc::new(LocalExec);
    let mut sched = Scheduler::new(dir.clone(), store, exec);
    let mut autostop = AutostopState::default();
    loop {
        if STOP.load(Ordering::SeqCst) {
            log("stopping: signalled");
            break;
        }
        if !dir.db().exists() {
            log("stopping: the state directory is gone");
            break;
        }
        reap_children();
        if let Err(e) = sched.tick() {
            log(&format!("scheduling pass failed: {e}"));
        }
        match autostop.check(sched.store(), dir, started) {
            Ok(true) => break,
            Ok(false) => {}
            Err(e) => log(&format!("autostop check failed: {e}")),
        }
        wait(sock.as_ref());
    }
    if sock.is_some() {
        let _ = std::fs::remove_file(dir.socket());
    }
    Ok(())
}

/// Sleeps one tick, or less when poked.
fn wait(sock: Option<&UnixDatagram>) {
    let Some(sock) = sock else {
        std::thread::sleep(TICK);
        return;
    };
    let mut buf = [0u8; 16];
    if sock.recv(&mut buf).is_ok() && sock.set_nonblocking(true).is_ok() {
        while sock.recv(&mut buf).is_ok() {}
        let _ = sock.set_nonblocking(false);
    }
}

/// Wakes the daemon (after a submit or a cancel); harmless if none runs.
pub fn poke(dir: &StateDir) {
    if let Ok(s) = UnixDatagram::unbound() {
        let _ = s.set_nonblocking(true);
        let _ = s.send_to(b"!", dir.socket());
    }
}

/// How idle the cluster is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Idle {
    /// Jobs not yet finished (INIT, PENDING, SETTING_UP, RUNNING).
    pub unfinished: usize,
    /// Since when nothing ran: the latest of the last job's end, the
    /// daemon's start, autostop being set and `init`. `None` while busy.
    pub idle_since: Option<f64>,
}

/// Computes [`Idle`]; `daemon_started_at` defaults to the stored one.
pub fn idle(store: &Store, daemon_started_at: Option<f64>) -> Result<Idle> {
    let unfinished = store
        .jobs(&[
            JobState::Init,
            JobState::Pending,
            JobState::SettingUp,
            JobState::Running,
        ])?
        .len();
    if unfinished > 0 {
        return Ok(Idle {
            unfinished,
            idle_since: None,
        });
    }
    let started = match daemon_started_at {
        Some(t) => Some(t),
        None => store
            .meta("daemon_started_at")?
            .and_then(|s| s.parse().ok()),
    };
    let set_at = store.autostop()?.map(|a| a.set_at);
    let initialized = store.meta("initialized_at")?.and_then(|s| s.parse().ok());
    let since = [initialized, started, set_at, store.last_ended_at()?]
        .into_iter()
        .flatten()
        .fold(0.0, f64::max);
    Ok(Idle {
        unfinished,
        idle_since: Some(since),
    })
}

#[derive(Default)]
struct AutostopState {
    /// `set_at` of a setting we already reported as unusable.
    reported: Option<f64>,
}

impl AutostopState {
    /// Runs the autostop command when due; true when it ran (the daemon
    /// then exits).
    fn check(&mut self, store: &Store, dir: &StateDir, started: f64) -> Result<bool> {
        let Some(a) = store.autostop()? else {
            return Ok(false);
        };
        let Some(since) = idle(store, Some(started))?.idle_since else {
            return Ok(false);
        };
        if now() - since < a.idle_minutes * 60.0 || self.reported == Some(a.set_at) {
            return Ok(false);
        }
        let cluster = store.require_cluster(dir)?;
        let Some(argv) = cluster.autostop_command.filter(|v| !v.is_empty()) else {
            log("autostop is due but the cluster has no autostop_command; doing nothing");
            self.reported = Some(a.set_at);
            return Ok(false);
        };
        let verb = if a.down { "down" } else { "stop" };
        let path = dir.autostop_log();
        let spawned = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|out| {
                let err = out.try_clone()?;
                let mut cmd = Command::new(&argv[0]);
                cmd.args(&argv[1..])
                    .arg(verb)
                    .stdin(Stdio::null())
                    .stdout(out)
                    .stderr(err);
                new_session(&mut cmd);
                cmd.spawn()
            });
        match spawned {
            Ok(child) => {
                store.set_meta("autostop_fired_at", Some(&now().to_string()))?;
                log(&format!(
                    "autostop: idle for {:.1} min; ran {argv:?} {verb} (pid {}); exiting",
                    (now() - since) / 60.0,
                    child.id()
                ));
                Ok(true)
            }
            Err(e) => {
                log(&format!("autostop: running {argv:?} {verb} failed: {e}"));
                self.reported = Some(a.set_at);
                Ok(false)
            }
        }
    }
}

/// Starts `aloft agent daemon --dir D` detached: a new session, output to
/// `D/daemon.log`.
fn spawn_detached(dir: &StateDir) -> Result<std::process::Child> {
    let exe = std::env::current_exe().map_err(io("finding", "the aloft executable"))?;
    let path = dir.daemon_log();
    let out = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(io("opening", &path))?;
    let err = out.try_clone().map_err(io("opening", &path))?;
    let mut cmd = Command::new(&exe);
    cmd.args(["agent", "daemon", "--dir"])
        .arg(dir.root())
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    new_session(&mut cmd);
    cmd.spawn().map_err(io("starting", &exe))
}

/// `daemon --detach`: starts one in the background unless one runs.
pub fn detach(dir: &StateDir) -> Result<()> {
    if running_pid(dir).is_none() {
        spawn_detached(dir)?;
    }
    Ok(())
}

/// Starts the daemon unless it runs; returns (whether we started it, its
/// pid) once it holds the lock.
pub fn ensure(dir: &StateDir) -> Result<(bool, i32)> {
    if let Some(pid) = running_pid(dir) {
        return Ok((false, pid));
    }
    Store::open_cluster(dir)?;
    let mut child = spawn_detached(dir)?;
    let deadline = Instant::now() + Duration::from_secs(10);
    let fail = |message: String| Error::Daemon {
        dir: dir.root().to_path_buf(),
        message,
    };
    loop {
        if let Some(pid) = running_pid(dir) {
            return Ok((pid == child.id() as i32, pid));
        }
        if let Some(status) = child
            .try_wait()
            .map_err(io("waiting for", dir.daemon_log()))?
        {
            if let Some(pid) = running_pid(dir) {
                return Ok((false, pid));
            }
            return Err(fail(format!(
                "it exited ({status}) while starting; {}",
                log_tail(dir)
            )));
        }
        if Instant::now() > deadline {
            return Err(fail(format!(
                "it did not start within 10 s; {}",
                log_tail(dir)
            )));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn log_tail(dir: &StateDir) -> String {
    let mut text = String::new();
    let _ = File::open(dir.daemon_log()).and_then(|mut f| f.read_to_string(&mut text));
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(5)..].join("\n");
    format!("the end of {}:\n{tail}", dir.daemon_log().display())
}

/// Stops the daemon (SIGTERM, then SIGKILL after 5 s); false if none ran.
pub fn stop(dir: &StateDir) -> bool {
    let Some(pid) = running_pid(dir) else {
        return false;
    };
    let gone_within = |secs: u64| {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < deadline {
            if running_pid(dir).is_none() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    };
    // SAFETY: kill(2) has no memory-safety preconditions.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    if !gone_within(5) {
        // SAFETY: as above.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        gone_within(2);
    }
    // The lock goes early in the process's exit: wait for the exit itself.
    let handle = crate::exec::ProcHandle {
        pid,
        start_ticks: 0,
    };
    let deadline = Instant::now() + Duration::from_secs(2);
    while is_alive(&handle) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    true
}
