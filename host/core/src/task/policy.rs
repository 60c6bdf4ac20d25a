//! How a cluster and a job behave over time: [`Autostop`] and
//! [`JobRecovery`].

use super::error::{Problem, SpecError};
use super::source::{Cx, Path};
use serde::Serialize;
use serde_yaml::Value;

/// What the cluster does when idle.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Autostop {
    /// `false` for `autostop: false`.
    pub enabled: bool,
    /// Idle minutes before stopping; none = the default.
    pub idle_minutes: Option<u32>,
    /// Tear down instead of stop.
    pub down: bool,
    /// What counts as activity.
    pub wait_for: Option<AutostopWaitFor>,
    /// A command to run before stopping (SkyPilot's `hook`).
    pub hook: Option<String>,
    /// Seconds the hook may run.
    pub hook_timeout: Option<u32>,
}

/// `autostop.wait_for`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AutostopWaitFor {
    /// Running jobs and SSH sessions keep the cluster up.
    JobsAndSsh,
    /// Only running jobs keep it up.
    Jobs,
    /// Stop after the idle time regardless.
    None,
}

const AUTOSTOP_HINT: &str =
    "write `autostop: true`, `autostop: false`, minutes (`autostop: 10`), a duration \
                             (`10m`, `2h`, `1d`, `1w`), or `{idle_minutes: 10, down: true}`";

/// Parses a duration in minutes: `10`, `10m`, `2h`, `1d`, `1w`.
pub(crate) fn parse_minutes(text: &str) -> Result<u32, Problem> {
    let t = text.trim().to_ascii_lowercase();
    let (digits, scale) = match t.char_indices().last() {
        Some((i, 'm')) => (&t[..i], 1),
        Some((i, 'h')) => (&t[..i], 60),
        Some((i, 'd')) => (&t[..i], 24 * 60),
        Some((i, 'w')) => (&t[..i], 7 * 24 * 60),
        _ => (t.as_str(), 1),
    };
    let n = if !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit()) {
        digits.parse::<u64>().ok()
    } else {
        None
    };
    match n
        .and_then(|n| n.checked_mul(scale))
        .filter(|m| *m <= u64::from(u32::MAX))
    {
        Some(m) => Ok(m as u32),
        None => Err(Problem::new(
            format!("`{text}` is not a duration"),
            AUTOSTOP_HINT,
        )),
    }
}

const AUTOSTOP_KEYS: &[&str] = &["idle_minutes", "down", "wait_for", "hook", "hook_timeout"];

/// Reads `autostop`.
pub(crate) fn autostop(cx: &Cx, path: &Path, v: &Value) -> Result<Option<Autostop>, SpecError> {
    let on = |minutes| Autostop {
        enabled: true,
        idle_minutes: minutes,
        ..Autostop::default()
    };
    match v {
        Value::Null => Ok(None),
        Value::Bool(b) => Ok(Some(Autostop {
            enabled: *b,
            ..Autostop::default()
        })),
        Value::Number(_) => Ok(Some(on(Some(cx.uint(path, v, 0, AUTOSTOP_HINT)?)))),
        Value::String(s) => match cx.boolean(path, v) {
            Ok(b) => Ok(Some(Autostop {
                enabled: b,
                ..Autostop::default()
            })),
            Err(_) => Ok(Some(on(Some(
                parse_minutes(s).map_err(|p| cx.problem(path, p))?,
            )))),
        },
        Value::Mapping(_) => {
            let map = cx.mapping(path, v, "autostop", AUTOSTOP_KEYS, |_| None)?;
            let mut a = on(None);
            for (k, val) in map {
                let key = k.as_str().unwrap_or_default();
                let p = path.key(key);
                match key {
                    "idle_minutes" => {
                        a.idle_minutes = Some(cx.uint(&p, val, 0, "e.g. `idle_minutes: 10`")?)
                    }
                    "down" => a.down = cx.boolean(&p, val)?,
                    "wait_for" => {
                        let text = cx.string(&p, val, "`jobs_and_ssh`, `jobs` or `none`")?;
                        a.wait_for = Some(match text.to_ascii_lowercase().as_str() {
                            "jobs_and_ssh" => AutostopWaitFor::JobsAndSsh,
                            "jobs" => AutostopWaitFor::Jobs,
                            "none" => AutostopWaitFor::None,
                            _ => {
                                return Err(cx.invalid(
                                    &p,
                                    format!("unknown mode `{text}`"),
                                    "use `jobs_and_ssh`, `jobs` or `none`",
                                ))
                            }
                        });
                    }
                    "hook" => a.hook = Some(cx.string(&p, val, "a shell command")?),
                    _ => {
                        a.hook_timeout =
                            Some(cx.uint(&p, val, 1, "seconds, e.g. `hook_timeout: 300`")?)
                    }
                }
            }
            Ok(Some(a))
        }
        other => Err(cx.wrong_type(
            path,
            "a boolean, minutes or a mapping",
            other,
            AUTOSTOP_HINT,
        )),
    }
}

/// How a managed job recovers from preemption and failures.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct JobRecovery {
    /// `FAILOVER`, `EAGER_NEXT_REGION`, ...; none = the default.
    pub strategy: Option<String>,
    /// Restarts on user-code errors.
    pub max_restarts_on_errors: Option<u32>,
    /// Exit codes that trigger a recovery.
    pub recover_on_exit_codes: Vec<u8>,
}

const RECOVERY_KEYS: &[&str] = &[
    "strategy",
    "max_restarts_on_errors",
    "recover_on_exit_codes",
];
const RECOVERY_HINT: &str = "write a strategy (`job_recovery: FAILOVER`) or \
                             `{strategy: FAILOVER, max_restarts_on_errors: 3}`";

/// Reads `job_recovery` (or the legacy `spot_recovery`).
pub(crate) fn job_recovery(
    cx: &Cx,
    path: &Path,
    v: &Value,
) -> Result<Option<JobRecovery>, SpecError> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(JobRecovery {
            strategy: Some(s.clone()),
            ..JobRecovery::default()
        })),
        Value::Mapping(_) => {
            let map = cx.mapping(path, v, "job_recovery", RECOVERY_KEYS, |_| None)?;
            let mut r = JobRecovery::default();
            for (k, val) in map {
                let key = k.as_str().unwrap_or_default();
                let p = path.key(key);
                match key {
                    "strategy" if val.is_null() => {}
                    "strategy" => r.strategy = Some(cx.string(&p, val, RECOVERY_HINT)?),
                    "max_restarts_on_errors" => {
                        r.max_restarts_on_errors =
                            Some(cx.uint(&p, val, 0, "e.g. `max_restarts_on_errors: 3`")?)
                    }
                    _ => {
                        let hint = "an exit code 0-255 or a list of them";
                        let codes: Vec<(Path, &Value)> = match val {
                            Value::Sequence(items) => items
                                .iter()
                                .enumerate()
                                .map(|(i, c)| (p.index(i), c))
                                .collect(),
                            other => vec![(p.clone(), other)],
                        };
                        for (cp, c) in codes {
                            let code = cx.uint(&cp, c, 0, hint)?;
                            let code = u8::try_from(code)
                                .map_err(|_| cx.invalid(&cp, format!("{code} > 255"), hint))?;
                            r.recover_on_exit_codes.push(code);
                        }
                    }
                }
            }
            Ok(Some(r))
        }
        other => Err(cx.wrong_type(path, "a strategy name or a mapping", other, RECOVERY_HINT)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_minutes("10"), Ok(10));
        assert_eq!(parse_minutes("2h"), Ok(120));
        assert_eq!(parse_minutes("1D"), Ok(1440));
        assert_eq!(parse_minutes("1w"), Ok(10080));
        for bad in ["soon", "30s", "h", "-5m", "1.5h", "99999999999m"] {
            assert!(parse_minutes(bad).is_err(), "{bad}");
        }
    }
}
