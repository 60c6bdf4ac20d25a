//! POSIX shell quoting for what is sent to the remote login shell: env
//! assignments (sshd normally refuses `setenv` requests unless `AcceptEnv`
//! lists the name, so env travels as `export K='v';` in front of the
//! command) and remote paths (`~/x` becomes `"$HOME"/'x'`).

use crate::error::{Error, Result};

/// Quotes `s` as one POSIX shell word: wrapped in single quotes, each `'`
/// written as `'\''`. Everything else (`$`, backquotes, `\`, newlines,
/// spaces, globs) is literal inside single quotes.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

/// An argv as one command line: each word quoted, joined by spaces.
pub fn join<S: AsRef<str>>(argv: &[S]) -> String {
    argv.iter()
        .map(|a| quote(a.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `export A='1'; export B='x y'; ` for `env`, to put in front of a
/// command. Names must be shell identifiers and values must not contain
/// NUL (a shell cannot hold one).
pub fn env_prefix(env: &[(String, String)]) -> Result<String> {
    let mut out = String::new();
    for (k, v) in env {
        if !is_identifier(k) {
            return Err(Error::Invalid {
                what: format!("environment variable {k:?}"),
                message: "names must be letters, digits and '_', not starting with a digit"
                    .to_string(),
            });
        }
        if v.contains('\0') {
            return Err(Error::Invalid {
                what: format!("environment variable {k}"),
                message: "the value contains a NUL byte, which a shell cannot hold".to_string(),
            });
        }
        out.push_str("export ");
        out.push_str(k);
        out.push('=');
        out.push_str(&quote(v));
        out.push_str("; ");
    }
    Ok(out)
}

/// The command line to send: env exports, then `command`.
pub fn with_env(command: &str, env: &[(String, String)]) -> Result<String> {
    Ok(format!("{}{command}", env_prefix(env)?))
}

/// A remote path as a shell word: `~` and `~/rest` are the remote user's
/// home (`"$HOME"`, `"$HOME"/'rest'`); anything else is quoted as is
/// (relative paths are relative to the home, where sshd starts commands).
/// `~user` forms are not expanded.
pub fn remote_path(path: &str) -> String {
    if path == "~" {
        "\"$HOME\"".to_string()
    } else if let Some(rest) = path.strip_prefix("~/") {
        format!("\"$HOME\"/{}", quote(rest))
    } else {
        quote(path)
    }
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `sh -c 'printf %s "$V"'` prints with `V` exported our way.
    fn roundtrip(value: &str) -> String {
        let cmd = with_env("printf %s \"$V\"", &[("V".into(), value.into())]).unwrap();
        let out = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(&cmd)
            .env_clear()
            .output()
            .unwrap();
        assert!(out.status.success(), "{cmd}: {out:?}");
        String::from_utf8(out.stdout).unwrap()
    }

    #[test]
    fn hostile_values_survive_the_local_shell() {
        for v in [
            "",
            "plain",
            "it's",
            "'",
            "''",
            "'\\''",
            "a b  c",
            "$HOME $(id) `id` ${X:-y}",
            "line1\nline2\n",
            "back\\slash\\",
            "\"double\"",
            "; rm -rf / #",
            "*?[a]",
            "tab\there",
            "ünïcødé ✓",
            "-n",
        ] {
            assert_eq!(roundtrip(v), v, "value {v:?}");
        }
    }

    #[test]
    fn quoting_is_single_quotes_with_escaped_quotes() {
        assert_eq!(quote("a'b"), "'a'\\''b'");
        assert_eq!(quote(""), "''");
        assert_eq!(join(&["echo", "a b", "it's"]), "'echo' 'a b' 'it'\\''s'");
    }

    #[test]
    fn bad_names_and_nul_are_refused() {
        assert!(env_prefix(&[("1A".into(), "x".into())]).is_err());
        assert!(env_prefix(&[("A-B".into(), "x".into())]).is_err());
        assert!(env_prefix(&[("A;rm".into(), "x".into())]).is_err());
        assert!(env_prefix(&[("".into(), "x".into())]).is_err());
        assert!(env_prefix(&[("A".into(), "x\0y".into())]).is_err());
        assert_eq!(
            env_prefix(&[("_A1".into(), "v".into())]).unwrap(),
            "export _A1='v'; "
        );
    }

    #[test]
    fn remote_paths_expand_home_only() {
        assert_eq!(remote_path("~"), "\"$HOME\"");
        assert_eq!(remote_path("~/a b"), "\"$HOME\"/'a b'");
        assert_eq!(remote_path("/tmp/x"), "'/tmp/x'");
        assert_eq!(remote_path("~user/x"), "'~user/x'");
    }
}
