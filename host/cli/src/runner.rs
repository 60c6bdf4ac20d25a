//! Command runners: how the client runs commands and places files on a
//! node. One trait; the local implementation (a node is a directory sandbox
//! on this machine) now, SSH next.

use anyhow::{bail, Context, Result};
use async_trait::async_trait;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use tokio::io::AsyncWriteExt;

/// What a command did.
#[derive(Debug)]
pub struct Output {
    /// Exit status (-1 if killed by a signal).
    pub status: i32,
    /// Captured stdout.
    pub stdout: String,
    /// Captured stderr.
    pub stderr: String,
}

/// Files copied by a sync.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SyncStats {
    /// Files written (new or changed).
    pub copied: usize,
    /// Files already up to date.
    pub unchanged: usize,
}

/// Runs commands on one node and puts files there.
#[async_trait]
pub trait Runner: Send + Sync {
    /// Runs `argv` with extra env and optional stdin; captures its output.
    async fn run(
        &self,
        argv: &[String],
        env: &[(String, String)],
        stdin: Option<&str>,
    ) -> Result<Output>;
    /// Runs `argv` with its stdout and stderr streamed to ours; returns the
    /// exit status.
    async fn stream(&self, argv: &[String]) -> Result<i32>;
    /// Copies a local file to `remote` (`~/...` is the node's home).
    async fn put_file(&self, local: &Path, remote: &str) -> Result<()>;
    /// Makes `remote` hold `local`'s files: only new or changed ones are
    /// sent; `.gitignore` and `.skyignore` are honoured; modes are kept.
    async fn sync_dir(&self, local: &Path, remote: &str) -> Result<SyncStats>;
}

/// A node that is a directory on this machine (the local provider).
pub struct LocalRunner {
    /// The node's home-like directory.
    pub home: PathBuf,
}

impl LocalRunner {
    /// Resolves a node path: `~` and relative paths are under the node's
    /// home; absolute paths outside it are refused (the sandbox must not
    /// write over this machine's files).
    pub fn resolve(&self, remote: &str) -> Result<PathBuf> {
        let rel = remote
            .strip_prefix("~/")
            .or_else(|| (remote == "~").then_some(""))
            .unwrap_or(remote);
        let path = if Path::new(rel).is_absolute() {
            let p = PathBuf::from(rel);
            if !p.starts_with(&self.home) {
                bail!(
                    "{remote}: the local provider keeps each node inside its own directory, so a target outside the node's home is not allowed\nhint: use a path under ~/, e.g. ~/data"
                );
            }
            p
        } else {
            self.home.join(rel)
        };
        if path
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
        {
            bail!("{remote}: '..' is not allowed in node paths");
        }
        Ok(path)
    }
}

#[async_trait]
impl Runner for LocalRunner {
    async fn run(
        &self,
        argv: &[String],
        env: &[(String, String)],
        stdin: Option<&str>,
    ) -> Result<Output> {
        let (prog, args) = argv.split_first().context("empty command")?;
        let mut cmd = tokio::process::Command::new(prog);
        cmd.args(args)
            .envs(env.iter().cloned())
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().with_context(|| format!("running {prog}"))?;
        if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
            pipe.write_all(text.as_bytes()).await?;
            drop(pipe);
        }
        let out = child.wait_with_output().await?;
        Ok(Output {
            status: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }

    async fn stream(&self, argv: &[String]) -> Result<i32> {
        let (prog, args) = argv.split_first().context("empty command")?;
        let status = tokio::process::Command::new(prog)
            .args(args)
            .stdin(Stdio::null())
            .status()
            .await
            .with_context(|| format!("running {prog}"))?;
        Ok(status.code().unwrap_or(-1))
    }

    async fn put_file(&self, local: &Path, remote: &str) -> Result<()> {
        let dest = self.resolve(remote)?;
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).with_context(|| parent.display().to_string())?;
        }
        copy_if_changed(local, &dest)?;
        Ok(())
    }

    async fn sync_dir(&self, local: &Path, remote: &str) -> Result<SyncStats> {
        let dest = self.resolve(remote)?;
        let local = local.to_path_buf();
        tokio::task::spawn_blocking(move || sync_tree(&local, &dest)).await?
    }
}

/// Copies the files of `src` (minus ignored ones) into `dest`, skipping
/// files whose size and modification time already match.
pub fn sync_tree(src: &Path, dest: &Path) -> Result<SyncStats> {
    if !src.is_dir() {
        bail!("{}: not a directory", src.display());
    }
    let mut stats = SyncStats::default();
    let walker = ignore::WalkBuilder::new(src)
        .hidden(false)
        .git_ignore(true)
        .git_global(false)
        .git_exclude(false)
        .require_git(false)
        .add_custom_ignore_filename(".skyignore")
        .build();
    std::fs::create_dir_all(dest).with_context(|| dest.display().to_string())?;
    for entry in walker {
        let entry = entry.with_context(|| format!("walking {}", src.display()))?;
        let rel = entry.path().strip_prefix(src).unwrap_or(entry.path());
        if rel.as_os_str().is_empty() || rel.starts_with(".git") {
            continue;
        }
        let target = dest.join(rel);
        let ft = entry.file_type();
        if ft.is_some_and(|t| t.is_dir()) {
            std::fs::create_dir_all(&target).with_context(|| target.display().to_string())?;
        } else if ft.is_some_and(|t| t.is_file()) {
            if copy_if_changed(entry.path(), &target)? {
                stats.copied += 1;
            } else {
                stats.unchanged += 1;
            }
        }
    }
    Ok(stats)
}

/// Copies a file unless `dest` has the same size and mtime; keeps the mode
/// and mtime. Returns whether it copied.
fn copy_if_changed(src: &Path, dest: &Path) -> Result<bool> {
    let meta = std::fs::metadata(src).with_context(|| src.display().to_string())?;
    if let Ok(d) = std::fs::metadata(dest) {
        if d.len() == meta.len() && d.modified().ok() == meta.modified().ok() {
            return Ok(false);
        }
    }
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent).with_context(|| parent.display().to_string())?;
    }
    std::fs::copy(src, dest)
        .with_context(|| format!("copying {} to {}", src.display(), dest.display()))?;
    if let Ok(m) = meta.modified() {
        let f = std::fs::OpenOptions::new().write(true).open(dest)?;
        f.set_modified(m)?;
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_honours_ignore_files_and_only_copies_changes() {
        let src = tempfile::tempdir().unwrap();
        let dst = tempfile::tempdir().unwrap();
        let s = src.path();
        std::fs::write(s.join("a.py"), "print(1)").unwrap();
        std::fs::create_dir_all(s.join("data")).unwrap();
        std::fs::write(s.join("data/big.bin"), "x").unwrap();
        std::fs::write(s.join("secret.env"), "k").unwrap();
        std::fs::write(s.join(".gitignore"), "data/\n").unwrap();
        std::fs::write(s.join(".skyignore"), "*.env\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::write(s.join("run.sh"), "#!/bin/sh").unwrap();
        std::fs::set_permissions(s.join("run.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
        let st = sync_tree(s, dst.path()).unwrap();
        assert!(dst.path().join("a.py").exists());
        assert!(!dst.path().join("data/big.bin").exists());
        assert!(!dst.path().join("secret.env").exists());
        let mode = std::fs::metadata(dst.path().join("run.sh"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755);
        assert_eq!(st.copied, 4); // a.py, .gitignore, .skyignore, run.sh
        let again = sync_tree(s, dst.path()).unwrap();
        assert_eq!((again.copied, again.unchanged), (0, 4));
    }

    #[test]
    fn local_paths_stay_inside_the_node() {
        let r = LocalRunner {
            home: PathBuf::from("/n/0"),
        };
        assert_eq!(r.resolve("~/x").unwrap(), PathBuf::from("/n/0/x"));
        assert_eq!(r.resolve("data").unwrap(), PathBuf::from("/n/0/data"));
        assert!(r.resolve("/etc/passwd").is_err());
        assert!(r.resolve("~/../../etc").is_err());
    }
}
