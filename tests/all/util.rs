//! Test helpers: a temporary ALOFT_HOME and a command runner for `aloft`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The `aloft` binary under test.
pub fn aloft_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("ALOFT_BIN") {
        return PathBuf::from(p);
    }
    for profile in ["release", "debug"] {
        let p = root().join("target").join(profile).join("aloft");
        if p.exists() {
            return p;
        }
    }
    panic!("no aloft binary: run scripts/test.sh (or set ALOFT_BIN)");
}

/// Packed plugins: `<dir>/<name>/{<name>.wasm, plugin.toml}`.
pub fn plugins_dir() -> PathBuf {
    let p = std::env::var_os("ALOFT_PLUGINS")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("build").join("plugins"));
    assert!(
        p.join("aws").join("plugin.toml").exists(),
        "no packed plugins in {}: run scripts/test.sh",
        p.display()
    );
    p
}

/// A packed plugin's directory.
pub fn plugin(name: &str) -> PathBuf {
    plugins_dir().join(name)
}

/// A temporary ALOFT_HOME, removed on drop.
pub struct TestHome {
    pub dir: tempfile::TempDir,
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

    /// Asserts success and returns (stdout, stderr).
    #[track_caller]
    pub fn ok_with_stderr(self) -> (String, String) {
        assert_eq!(
            self.status, 0,
            "command failed\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        (self.stdout, self.stderr)
    }

    /// Asserts this exit status and returns stderr.
    #[track_caller]
    pub fn fails_with(self, code: i32) -> String {
        assert_eq!(
            self.status, code,
            "unexpected status\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self.stderr
    }

    /// Parses stdout as JSON.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }
}

impl TestHome {
    pub fn new() -> TestHome {
        TestHome {
            dir: tempfile::Builder::new()
                .prefix("aloft-test-")
                .tempdir()
                .expect("tempdir"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `aloft ARGS` with this home and a clean plugin environment.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(aloft_bin());
        c.args(args)
            .env("ALOFT_HOME", self.path())
            .env_remove("ALOFT_PLUGIN_DEADLINES")
            .env_remove("ALOFT_PLUGIN_MEMORY_MB")
            .env_remove("RUST_BACKTRACE");
        // Never the machine's cloud credentials: a test must not reach a
        // real cloud. Tests that want AWS set it up against moto.
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("AWS_") {
                c.env_remove(k);
            }
        }
        c.env(
            "AWS_SHARED_CREDENTIALS_FILE",
            self.path().join("no-aws-credentials"),
        )
        .env("AWS_CONFIG_FILE", self.path().join("no-aws-config"));
        c
    }

    /// Runs `aloft ARGS`.
    pub fn run(&self, args: &[&str]) -> Run {
        Run::from(self.cmd(args).output().expect("run aloft"))
    }

    /// Runs a prepared command.
    pub fn output(&self, mut cmd: Command) -> Run {
        Run::from(cmd.output().expect("run aloft"))
    }

    /// Installs packed plugins by name.
    pub fn install(&self, names: &[&str]) {
        for n in names {
            self.run(&[
                "provider",
                "install",
                plugin(n).to_str().expect("utf8 path"),
            ])
            .ok();
        }
    }
}

impl Drop for TestHome {
    /// Tears down every cluster the test left, so no agent daemons outlive it.
    fn drop(&mut self) {
        if self.path().join("state.db").exists() {
            let _ = self.cmd(&["down", "-a", "-y"]).output();
        }
    }
}

/// Polls `f` every 100 ms until it is true or `secs` pass.
pub fn wait_until(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let end = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while std::time::Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    f()
}

/// Whether a process is alive (not a zombie).
pub fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => !s
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z'),
        Err(_) => false,
    }
}

/// Copies a packed plugin directory somewhere it can be tampered with.
pub fn copy_plugin(name: &str, to: &Path) -> PathBuf {
    let dest = to.join(name);
    std::fs::create_dir_all(&dest).expect("mkdir");
    for e in std::fs::read_dir(plugin(name))
        .expect("read plugin dir")
        .flatten()
    {
        std::fs::copy(e.path(), dest.join(e.file_name())).expect("copy");
    }
    dest
}
