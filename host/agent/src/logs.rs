//! `logs`: a job's output, setup first, then run.
//!
//! One node: the log files as they are. Several nodes: every line prefixed
//! as SkyPilot does, `(head, rank=0, pid=P) ` / `(worker1, rank=1, pid=P) `.
//! `--follow` streams until the job ends and then exits with the job's
//! `sky logs` status ([`crate::job::exit`]).

use crate::cluster::ClusterSpec;
use crate::daemon;
use crate::db::{NodeRow, Store};
use crate::error::{io, Result};
use crate::exec::read_exit_file;
use crate::job::{exit, Job, JobState};
use crate::paths::{Phase, StateDir};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How often `--follow` looks for new output: every 5 ms right after the
/// job changes state (a job's first line matters), backing off to 50 ms.
const POLL_MIN: Duration = Duration::from_millis(5);
const POLL_MAX: Duration = Duration::from_millis(50);

/// What to print.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogOptions {
    /// Stream until the job ends.
    pub follow: bool,
    /// Only the last N lines of what exists now.
    pub tail: Option<usize>,
}

struct Source {
    phase: Phase,
    rank: u32,
    path: PathBuf,
    prefix: String,
    offset: u64,
    partial: Vec<u8>,
}

impl Source {
    /// Appends the new complete lines (all of it when `last`) to `out`.
    fn pump(&mut self, last: bool, out: &mut Vec<Vec<u8>>) -> Result<()> {
        let mut f = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io("reading", &self.path)(e)),
        };
        let mut buf = Vec::new();
        f.seek(SeekFrom::Start(self.offset))
            .and_then(|_| f.read_to_end(&mut buf))
            .map_err(io("reading", &self.path))?;
        self.offset += buf.len() as u64;
        self.partial.extend_from_slice(&buf);
        while let Some(i) = self.partial.iter().position(|&b| b == b'\n') {
            let rest = self.partial.split_off(i + 1);
            let line = std::mem::replace(&mut self.partial, rest);
            out.push([self.prefix.as_bytes(), &line].concat());
        }
        if last && !self.partial.is_empty() {
            let line = std::mem::take(&mut self.partial);
            out.push([self.prefix.as_bytes(), &line, b"\n"].concat());
        }
        Ok(())
    }
}

struct Follower<'a> {
    dir: &'a StateDir,
    cluster: &'a ClusterSpec,
    sources: Vec<Source>,
}

impl Follower<'_> {
    /// Adds a source for every phase/node that has started.
    fn refresh(&mut self, job: &Job, rows: &[NodeRow]) {
        let phases = [
            (Phase::Setup, job.setup.is_some()),
            (Phase::Run, job.run.is_some()),
        ];
        for (phase, present) in phases {
            for row in rows.iter().filter(|_| present) {
                let Some(h) = row.phase(phase).0 else {
                    continue;
                };
                if self
                    .sources
                    .iter()
                    .any(|s| s.phase == phase && s.rank == row.rank)
                {
                    continue;
                }
                let prefix = match self.cluster.nodes.get(row.rank as usize) {
                    _ if job.num_nodes <= 1 => String::new(),
                    Some(node) => format!("({}, rank={}, pid={}) ", node.role(), row.rank, h.pid),
                    None => format!("(rank={}, pid={}) ", row.rank, h.pid),
                };
                let path = self.dir.log(job.job_id, phase, row.rank);
                self.sources.push(Source {
                    phase,
                    rank: row.rank,
                    path,
                    prefix,
                    offset: 0,
                    partial: Vec::new(),
                });
            }
        }
        self.sources
            .sort_by_key(|s| (s.phase == Phase::Run, s.rank));
    }

    fn pump(&mut self, last: bool) -> Result<Vec<Vec<u8>>> {
        let mut out = Vec::new();
        for s in &mut self.sources {
            s.pump(last, &mut out)?;
        }
        Ok(out)
    }
}

/// Prints job `id`'s logs (the newest job when `None`) to `out`; returns
/// the exit status (see [`crate::job::exit`]).
pub fn logs(dir: &StateDir, id: Option<i64>, opts: LogOptions, out: &mut dyn Write) -> Result<u8> {
    let (store, cluster) = Store::open_cluster(dir)?;
    let Some(id) = id
        .map(Ok)
        .or_else(|| store.latest_job_id().transpose())
        .transpose()?
    else {
        eprintln!("error: no jobs on cluster {}", cluster.name);
        return Ok(exit::NOT_FOUND);
    };
    let mut f = Follower {
        dir,
        cluster: &cluster,
        sources: Vec::new(),
    };
    let mut first = true;
    let mut last_poke = Instant::now() - Duration::from_secs(1);
    let mut last_daemon_check = Instant::now();
    let mut warned = false;
    let mut poll = POLL_MIN;
    let mut seen = (None, 0);
    loop {
        let Some(job) = store.job(id)? else {
            eprintln!("error: job {id} not found on cluster {}", cluster.name);
            return Ok(exit::NOT_FOUND);
        };
        let rows = store.nodes(id)?;
        f.refresh(&job, &rows);
        let now_seen = (Some(job.state), f.sources.len());
        poll = if now_seen != seen {
            POLL_MIN
        } else {
            (poll * 2).min(POLL_MAX)
        };
        seen = now_seen;
        let last = job.state.is_terminal() || !opts.follow;
        let mut lines = f.pump(last)?;
        if first {
            if let Some(n) = opts.tail {
                lines.drain(..lines.len().saturating_sub(n));
            }
            first = false;
        }
        if !lines.is_empty() && !write_lines(out, &lines)? {
            return Ok(job.state.exit_code());
        }
        if last {
            return Ok(job.state.exit_code());
        }
        // The nodes have all ended but the daemon has not noticed yet.
        if job.state.is_active()
            && last_poke.elapsed() >= daemon::TICK
            && phase_done(dir, &job, &rows)
        {
            daemon::poke(dir);
            last_poke = Instant::now();
        }
        if !warned && last_daemon_check.elapsed() >= Duration::from_secs(1) {
            last_daemon_check = Instant::now();
            if daemon::running_pid(dir).is_none() {
                eprintln!(
                    "warning: the agent daemon is not running, so job {id} will not progress\nhint: run `aloft agent ensure --dir {}`",
                    dir.root().display()
                );
                warned = true;
            }
        }
        std::thread::sleep(poll);
    }
}

/// Whether every node of the job's current phase has written its exit file.
fn phase_done(dir: &StateDir, job: &Job, rows: &[NodeRow]) -> bool {
    let phase = if job.state == JobState::SettingUp {
        Phase::Setup
    } else {
        Phase::Run
    };
    !rows.is_empty()
        && rows
            .iter()
            .all(|r| read_exit_file(&dir.exit_file(job.job_id, phase, r.rank)).is_some())
}

/// Writes and flushes; false when the reader went away.
fn write_lines(out: &mut dyn Write, lines: &[Vec<u8>]) -> Result<bool> {
    let mut res = lines.iter().try_for_each(|l| out.write_all(l));
    if res.is_ok() {
        res = out.flush();
    }
    match res {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(io("writing", "standard output")(e)),
    }
}
