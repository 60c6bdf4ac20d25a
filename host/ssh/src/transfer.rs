//! File transfer over exec channels, no SFTP needed: the files to send are
//! streamed as a tar archive into `tar -x` on the host (one channel, any
//! number of files, modes and mtimes carried in the archive).
//!
//! [`Session::sync_dir`] first lists the remote directory with one
//! `find -printf` (GNU findutils, as on Debian/Ubuntu images) and sends only
//! entries whose size, mtime (whole seconds) or mode differ; `.gitignore`
//! and `.skyignore` are honoured and `.git` is skipped, as the local runner
//! does. Files on the host that are not in the local tree are left alone.
//! The host needs `tar`, `find`, `mkdir` and a POSIX login shell.

use crate::error::{Error, Result};
use crate::session::{Session, Stdin};
use crate::shell::remote_path;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use tokio::sync::mpsc;

/// Entries sent or skipped by [`Session::sync_dir`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SyncStats {
    /// Files and symlinks sent (new or changed).
    pub copied: usize,
    /// Files and symlinks already up to date on the host.
    pub unchanged: usize,
    /// Bytes of file content sent.
    pub bytes: u64,
}

/// Size of the pieces the archive is streamed in.
const CHUNK: usize = 64 * 1024;

/// One local entry to sync.
#[derive(Debug)]
struct Local {
    /// Path relative to the synced directory.
    rel: PathBuf,
    /// Full local path.
    path: PathBuf,
    kind: Kind,
}

#[derive(Debug, PartialEq)]
enum Kind {
    File { size: u64, mtime: i64, mode: u32 },
    Dir { mode: u32 },
    Symlink { target: Vec<u8> },
}

/// One entry of the remote listing.
#[derive(Debug, PartialEq)]
struct Remote {
    kind: u8,
    size: u64,
    mtime: i64,
    mode: u32,
    link: Vec<u8>,
}

impl Session {
    /// Copies the local file `local` to `remote` on the host (`~/...` is
    /// the remote user's home; a `remote` ending in `/` is a directory to
    /// put the file in). Parent directories are created. The file keeps its
    /// mtime, and its mode unless `mode` is given.
    pub async fn upload(&self, local: &Path, remote: &str, mode: Option<u32>) -> Result<()> {
        let op = format!("upload {} to {remote}", local.display());
        let io = |source| Error::Io {
            path: local.to_path_buf(),
            op: "reading for upload",
            source,
        };
        let meta = std::fs::metadata(local).map_err(io)?;
        if !meta.is_file() {
            return Err(io(std::io::Error::other("not a regular file")));
        }
        let local_name = local.file_name().map(|n| n.to_string_lossy().into_owned());
        let (dir, name) =
            split_remote(remote, local_name.as_deref()).ok_or_else(|| Error::Invalid {
                what: format!("remote path {remote:?}"),
                message: "needs a file name (or end it with / to keep the local name)".to_string(),
            })?;
        let local = local.to_path_buf();
        let entries = vec![(local.clone(), PathBuf::from(name), mode)];
        self.send_archive(&op, &dir, move |b| append_files(b, &entries))
            .await
            .map(|_| ())
    }

    /// Makes `remote_dir` on the host hold `local_dir`'s files: only new or
    /// changed files are sent (size, mtime and mode compared against one
    /// remote listing); `.gitignore` and `.skyignore` are honoured; modes,
    /// mtimes and symlinks are kept. Nothing is deleted on the host.
    pub async fn sync_dir(&self, local_dir: &Path, remote_dir: &str) -> Result<SyncStats> {
        let op = format!("sync {} to {remote_dir}", local_dir.display());
        let root = local_dir.to_path_buf();
        let locals = tokio::task::spawn_blocking(move || walk(&root))
            .await
            .map_err(|e| Error::Io {
                path: local_dir.to_path_buf(),
                op: "walking",
                source: std::io::Error::other(e),
            })??;
        let remote = self.list_remote(&op, remote_dir).await?;
        let mut stats = SyncStats::default();
        let mut send = Vec::new();
        for entry in locals {
            let there = remote.get(entry.rel.as_os_str().as_bytes());
            let same = match (&entry.kind, there) {
                (Kind::File { size, mtime, mode }, Some(r)) => {
                    r.kind == b'f' && r.size == *size && r.mtime == *mtime && r.mode == *mode
                }
                (Kind::Dir { mode }, Some(r)) => r.kind == b'd' && r.mode == *mode,
                (Kind::Symlink { target }, Some(r)) => r.kind == b'l' && r.link == *target,
                (_, None) => false,
            };
            match (&entry.kind, same) {
                (Kind::Dir { .. }, true) => {}
                (Kind::Dir { .. }, false) => send.push(entry),
                (_, true) => stats.unchanged += 1,
                (Kind::File { size, .. }, false) => {
                    stats.copied += 1;
                    stats.bytes += size;
                    send.push(entry);
                }
                (Kind::Symlink { .. }, false) => {
                    stats.copied += 1;
                    send.push(entry);
                }
            }
        }
        if send.is_empty() {
            return Ok(stats);
        }
        self.send_archive(&op, remote_dir, move |b| append_entries(b, &send))
            .await?;
        Ok(stats)
    }

    /// Lists `dir` on the host: relative path -> entry. A missing
    /// directory lists as empty.
    async fn list_remote(&self, op: &str, dir: &str) -> Result<HashMap<Vec<u8>, Remote>> {
        let cmd = format!(
            "cd {} 2>/dev/null || exit 0; exec find . -mindepth 1 -printf '%y %s %T@ %m %P\\0%l\\0'",
            remote_path(dir)
        );
        let out = self.exec(&cmd, &[], None).await?;
        if !out.success() {
            return Err(Error::Remote {
                addr: self.addr(),
                op: format!("{op}: listing the remote directory"),
                status: out.status,
                stderr: out.stderr_lossy().trim().to_string(),
            });
        }
        parse_listing(&out.stdout).ok_or_else(|| Error::Channel {
            addr: self.addr(),
            op: op.to_string(),
            message: "the remote listing is malformed (is GNU find installed on the host?)"
                .to_string(),
        })
    }

    /// Streams the archive that `build` writes into `tar -x` in `dir`.
    async fn send_archive<F>(&self, op: &str, dir: &str, build: F) -> Result<()>
    where
        F: FnOnce(&mut tar::Builder<ChunkWriter>) -> Result<()> + Send + 'static,
    {
        let (tx, rx) = mpsc::channel::<Vec<u8>>(8);
        let producer = tokio::task::spawn_blocking(move || {
            let mut builder = tar::Builder::new(ChunkWriter::new(tx));
            builder.follow_symlinks(false);
            build(&mut builder)?;
            builder
                .into_inner()
                .and_then(|mut w| w.flush())
                .map_err(|source| Error::Io {
                    path: PathBuf::from("<archive>"),
                    op: "streaming",
                    source,
                })
        });
        let d = remote_path(dir);
        let cmd = format!("mkdir -p -- {d} && exec tar -x -o -p -f - -C {d}");
        let mut stderr = Vec::new();
        let exit = self
            .run(
                op,
                &cmd,
                Stdin::Chunks(rx),
                |_| {},
                |b| stderr.extend_from_slice(b),
            )
            .await;
        let built = producer.await.map_err(|e| Error::Io {
            path: PathBuf::from("<archive>"),
            op: "building",
            source: std::io::Error::other(e),
        })?;
        let exit = exit?;
        if exit.status != 0 {
            return Err(Error::Remote {
                addr: self.addr(),
                op: op.to_string(),
                status: exit.status,
                stderr: String::from_utf8_lossy(&stderr).trim().to_string(),
            });
        }
        built
    }
}

/// Splits an upload target into (directory, file name).
fn split_remote(remote: &str, local_name: Option<&str>) -> Option<(String, String)> {
    let (dir, name) = if remote == "~" || remote.ends_with('/') {
        let dir = match remote.trim_end_matches('/') {
            "" if remote.starts_with('/') => "/",
            "" => ".",
            d => d,
        };
        (dir.to_string(), local_name?.to_string())
    } else {
        match remote.rsplit_once('/') {
            Some(("", name)) => ("/".to_string(), name.to_string()),
            Some((dir, name)) => (dir.to_string(), name.to_string()),
            None => (".".to_string(), remote.to_string()),
        }
    };
    (!name.is_empty() && name != "." && name != "..").then_some((dir, name))
}

/// The local tree minus ignored entries, parents before children.
fn walk(root: &Path) -> Result<Vec<Local>> {
    let io = |path: &Path, op, source| Error::Io {
        path: path.to_path_buf(),
        op,
        source,
    };
    if !root.is_dir() {
        return Err(io(
            root,
            "syncing",
            std::io::Error::other("not a directory"),
        ));
    }
    let walker = ignore::WalkBuilder::new(root)
        .hidden(false)
        .git_ignore(true)
        .git_global(false)
        .git_exclude(false)
        .require_git(false)
        .add_custom_ignore_filename(".skyignore")
        .filter_entry(|e| e.file_name() != ".git")
        .build();
    let mut out = Vec::new();
    for entry in walker {
        let entry = entry.map_err(|e| io(root, "walking", std::io::Error::other(e)))?;
        let path = entry.path();
        let Ok(rel) = path.strip_prefix(root) else {
            continue;
        };
        if rel.as_os_str().is_empty() {
            continue;
        }
        let meta = std::fs::symlink_metadata(path).map_err(|e| io(path, "reading metadata", e))?;
        let ft = meta.file_type();
        let kind = if ft.is_dir() {
            Kind::Dir {
                mode: meta.mode() & 0o7777,
            }
        } else if ft.is_file() {
            Kind::File {
                size: meta.len(),
                mtime: meta.mtime(),
                mode: meta.mode() & 0o7777,
            }
        } else if ft.is_symlink() {
            let target = std::fs::read_link(path).map_err(|e| io(path, "reading link", e))?;
            Kind::Symlink {
                target: target.as_os_str().as_bytes().to_vec(),
            }
        } else {
            continue; // sockets, fifos, devices
        };
        out.push(Local {
            rel: rel.to_path_buf(),
            path: path.to_path_buf(),
            kind,
        });
    }
    Ok(out)
}

/// Parses `find -printf '%y %s %T@ %m %P\0%l\0'` output.
fn parse_listing(out: &[u8]) -> Option<HashMap<Vec<u8>, Remote>> {
    let mut map = HashMap::new();
    let mut fields = out.split(|&b| b == 0);
    while let Some(head) = fields.next() {
        if head.is_empty() {
            break; // the final terminator
        }
        let link = fields.next()?.to_vec();
        let mut parts = head.splitn(5, |&b| b == b' ');
        let kind = *parts.next()?.first()?;
        let size = std::str::from_utf8(parts.next()?).ok()?.parse().ok()?;
        let mtime = std::str::from_utf8(parts.next()?).ok()?;
        let mtime = mtime.split('.').next()?.parse().ok()?;
        let mode = u32::from_str_radix(std::str::from_utf8(parts.next()?).ok()?, 8).ok()?;
        let rel = parts.next()?.to_vec();
        map.insert(
            rel,
            Remote {
                kind,
                size,
                mtime,
                mode,
                link,
            },
        );
    }
    Some(map)
}

/// Adds sync entries to the archive.
fn append_entries(b: &mut tar::Builder<ChunkWriter>, entries: &[Local]) -> Result<()> {
    for e in entries {
        let io = |source| Error::Io {
            path: e.path.clone(),
            op: "reading for sync",
            source,
        };
        match e.kind {
            Kind::File { .. } => append_file(b, &e.path, &e.rel, None).map_err(io)?,
            _ => b.append_path_with_name(&e.path, &e.rel).map_err(io)?,
        }
    }
    Ok(())
}

/// Adds (local file, name in archive, mode override) triples.
fn append_files(
    b: &mut tar::Builder<ChunkWriter>,
    files: &[(PathBuf, PathBuf, Option<u32>)],
) -> Result<()> {
    for (path, name, mode) in files {
        append_file(b, path, name, *mode).map_err(|source| Error::Io {
            path: path.clone(),
            op: "reading for upload",
            source,
        })?;
    }
    Ok(())
}

/// Adds one regular file with the size it had when opened: a file that
/// grows meanwhile is cut there, one that shrinks is padded with zeros, so
/// the archive stays well-formed (and the next sync sees the difference).
fn append_file(
    b: &mut tar::Builder<ChunkWriter>,
    path: &Path,
    name: &Path,
    mode: Option<u32>,
) -> std::io::Result<()> {
    let file = std::fs::File::open(path)?;
    let meta = file.metadata()?;
    let mut header = tar::Header::new_gnu();
    header.set_metadata_in_mode(&meta, tar::HeaderMode::Complete);
    header.set_size(meta.len());
    if let Some(mode) = mode {
        header.set_mode(mode & 0o7777);
    }
    let reader = Exact {
        inner: file,
        left: meta.len(),
    };
    b.append_data(&mut header, name, reader)
}

/// Reads exactly `left` bytes: `inner`'s, then zeros if it runs short.
struct Exact<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for Exact<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        if want == 0 {
            return Ok(0);
        }
        let n = match self.inner.read(&mut buf[..want])? {
            0 => {
                buf[..want].fill(0);
                want
            }
            n => n,
        };
        self.left -= n as u64;
        Ok(n)
    }
}

/// A blocking writer that hands the archive over in chunks to the async
/// side, with backpressure (the channel is bounded).
pub(crate) struct ChunkWriter {
    tx: mpsc::Sender<Vec<u8>>,
    buf: Vec<u8>,
}

impl ChunkWriter {
    fn new(tx: mpsc::Sender<Vec<u8>>) -> ChunkWriter {
        ChunkWriter {
            tx,
            buf: Vec::with_capacity(CHUNK),
        }
    }

    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        self.tx.blocking_send(chunk).map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                "the host stopped reading the archive",
            )
        })
    }
}

impl Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listing_parses_files_dirs_links_and_odd_names() {
        let out = b"f 12 1700000000.5000000000 644 a.py\0\0d 4096 1700000001.0 755 sub dir\0\0l 3 1700000002.0 777 sub dir/ln\0a.py\0f 0 1700000003.0000000000 600 new\nline\0\0";
        let m = parse_listing(out).unwrap();
        assert_eq!(m.len(), 4);
        let a = &m[b"a.py".as_slice()];
        assert_eq!(
            (a.kind, a.size, a.mtime, a.mode),
            (b'f', 12, 1_700_000_000, 0o644)
        );
        assert_eq!(m[b"sub dir".as_slice()].kind, b'd');
        assert_eq!(m[b"sub dir/ln".as_slice()].link, b"a.py");
        assert_eq!(m[b"new\nline".as_slice()].mode, 0o600);
        assert!(parse_listing(b"").unwrap().is_empty());
        assert!(parse_listing(b"garbage\0").is_none());
    }

    #[test]
    fn upload_targets_split_into_dir_and_name() {
        let s = |r, l| split_remote(r, l);
        assert_eq!(
            s("~/a/b.txt", Some("x")),
            Some(("~/a".into(), "b.txt".into()))
        );
        assert_eq!(s("~/a/", Some("x")), Some(("~/a".into(), "x".into())));
        assert_eq!(s("~", Some("x")), Some(("~".into(), "x".into())));
        assert_eq!(s("b.txt", Some("x")), Some((".".into(), "b.txt".into())));
        assert_eq!(s("/b", Some("x")), Some(("/".into(), "b".into())));
        assert_eq!(s("/", Some("x")), Some(("/".into(), "x".into())));
        assert_eq!(s("~/a/..", Some("x")), None);
    }

    #[test]
    fn exact_reader_pads_and_cuts() {
        let mut out = Vec::new();
        Exact {
            inner: &b"abc"[..],
            left: 5,
        }
        .read_to_end(&mut out)
        .unwrap();
        assert_eq!(out, b"abc\0\0");
        out.clear();
        Exact {
            inner: &b"abcdef"[..],
            left: 2,
        }
        .read_to_end(&mut out)
        .unwrap();
        assert_eq!(out, b"ab");
    }
}
