//! `$ALOFT_HOME` (default `~/.aloft`): all of Aloft's state lives here.

use anyhow::{bail, Context, Result};
use std::path::PathBuf;

/// The state directory, created if missing (mode 0700).
pub fn aloft_home() -> Result<PathBuf> {
    let home = match std::env::var_os("ALOFT_HOME").filter(|v| !v.is_empty()) {
        Some(h) => PathBuf::from(h),
        None => match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
            Some(h) => PathBuf::from(h).join(".aloft"),
            None => bail!("neither ALOFT_HOME nor HOME is set\nhint: export ALOFT_HOME=/some/dir"),
        },
    };
    if !home.exists() {
        std::fs::create_dir_all(&home).with_context(|| format!("creating {}", home.display()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o700));
        }
    }
    Ok(home)
}
