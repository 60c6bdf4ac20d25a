//! [`SpecError`]: what is wrong with a task, where, and what to do.
//!
//! Every error renders as `<where>: <what>` and a `hint:` line, e.g.
//!
//! ```text
//! task.yaml:4:3: unknown key `acelerators` in resources
//! hint: did you mean `accelerators`?
//! ```
//!
//! The CLI prefixes the `error: ` itself.

use std::fmt;

/// Where a problem is: a place in a file, or a command-line flag.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Location {
    /// `file:line:column`, both 1-based.
    At {
        /// The file name the caller gave (e.g. `task.yaml`).
        file: String,
        /// Line, 1-based.
        line: usize,
        /// Column, 1-based.
        column: usize,
    },
    /// Somewhere in this file; the position is not known.
    File(String),
    /// A command-line flag, e.g. `--gpus`.
    Flag(String),
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::At { file, line, column } => write!(f, "{file}:{line}:{column}"),
            Location::File(file) => f.write_str(file),
            Location::Flag(flag) => f.write_str(flag),
        }
    }
}

/// An invalid task: malformed YAML, an unknown key, a bad value, two keys
/// that exclude each other, or a variable that still needs a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SpecError {
    /// The text is not valid YAML.
    #[error("{at}: invalid YAML: {message}\nhint: {hint}")]
    Syntax {
        /// Where the parser stopped.
        at: Location,
        /// The parser's message.
        message: String,
        /// What to check.
        hint: String,
    },
    /// A key the task format does not have.
    #[error("{at}: unknown key `{key}` in {within}\nhint: {hint}")]
    UnknownKey {
        /// Where the key is.
        at: Location,
        /// The key as written.
        key: String,
        /// The mapping that holds it (`task`, `resources`,
        /// `resources.any_of[1]`, ...).
        within: String,
        /// The closest valid key, or the list of valid keys.
        hint: String,
    },
    /// A value of the wrong type, out of range or malformed.
    #[error("{at}: invalid `{path}`: {reason}\nhint: {hint}")]
    Invalid {
        /// Where the value is.
        at: Location,
        /// Key path, e.g. `resources.any_of[1].cloud`.
        path: String,
        /// What is wrong.
        reason: String,
        /// The valid forms.
        hint: String,
    },
    /// Two keys that cannot be used together.
    #[error("{at}: `{path}` cannot be used together with `{other}`\nhint: {hint}")]
    Conflict {
        /// Where the second key is.
        at: Location,
        /// Key path of the second key.
        path: String,
        /// Key path of the first key.
        other: String,
        /// Which one to keep.
        hint: String,
    },
    /// An env var or secret declared without a value (`NAME:` or
    /// `NAME: null`) that was not given on the command line.
    #[error("{at}: {kind} `{name}` has no value\nhint: {hint}")]
    MissingValue {
        /// Where it is declared.
        at: Location,
        /// `env` or `secret`.
        kind: &'static str,
        /// The variable.
        name: String,
        /// The flag that gives it.
        hint: String,
    },
}

impl SpecError {
    /// Where the problem is.
    pub fn location(&self) -> &Location {
        match self {
            SpecError::Syntax { at, .. }
            | SpecError::UnknownKey { at, .. }
            | SpecError::Invalid { at, .. }
            | SpecError::Conflict { at, .. }
            | SpecError::MissingValue { at, .. } => at,
        }
    }

    /// The `hint:` line's text.
    pub fn hint(&self) -> &str {
        match self {
            SpecError::Syntax { hint, .. }
            | SpecError::UnknownKey { hint, .. }
            | SpecError::Invalid { hint, .. }
            | SpecError::Conflict { hint, .. }
            | SpecError::MissingValue { hint, .. } => hint,
        }
    }
}

/// A value problem before it has a location: the reason and the hint.
/// Validators shared by YAML fields and CLI flags return this.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    pub reason: String,
    pub hint: String,
}

impl Problem {
    pub fn new(reason: impl Into<String>, hint: impl Into<String>) -> Self {
        Problem {
            reason: reason.into(),
            hint: hint.into(),
        }
    }

    /// Attaches the location and the key path.
    pub fn at(self, at: Location, path: impl Into<String>) -> SpecError {
        SpecError::Invalid {
            at,
            path: path.into(),
            reason: self.reason,
            hint: self.hint,
        }
    }
}

/// `did you mean `x`?` when a valid key is close to `key`, else the list of
/// valid keys.
pub(crate) fn suggest(key: &str, valid: &[&str]) -> String {
    let lower = key.to_ascii_lowercase();
    let best = valid
        .iter()
        .filter(|v| !v.starts_with('_'))
        .map(|v| (strsim::damerau_levenshtein(&lower, v), *v))
        .min_by_key(|(d, _)| *d);
    if let Some((distance, candidate)) = best {
        if distance <= (candidate.chars().count() / 3).max(1) {
            return format!("did you mean `{candidate}`?");
        }
    }
    if lower.len() >= 4 {
        if let Some(candidate) = valid
            .iter()
            .find(|v| !v.starts_with('_') && v.starts_with(&lower))
        {
            return format!("did you mean `{candidate}`?");
        }
    }
    format!("valid keys here: {}", list_keys(valid))
}

/// The public keys, comma-separated, in backticks.
pub(crate) fn list_keys(valid: &[&str]) -> String {
    let shown: Vec<String> = valid
        .iter()
        .filter(|v| !v.starts_with('_'))
        .map(|v| format!("`{v}`"))
        .collect();
    shown.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_keys_and_lists_otherwise() {
        let valid = ["accelerators", "cpus", "memory", "_internal"];
        assert_eq!(
            suggest("acelerators", &valid),
            "did you mean `accelerators`?"
        );
        assert_eq!(suggest("CPUS", &valid), "did you mean `cpus`?");
        assert_eq!(suggest("accel", &valid), "did you mean `accelerators`?");
        assert_eq!(
            suggest("zzz", &valid),
            "valid keys here: `accelerators`, `cpus`, `memory`"
        );
    }

    #[test]
    fn renders_location_reason_and_hint() {
        let e = SpecError::UnknownKey {
            at: Location::At {
                file: "task.yaml".into(),
                line: 4,
                column: 3,
            },
            key: "acelerators".into(),
            within: "resources".into(),
            hint: "did you mean `accelerators`?".into(),
        };
        assert_eq!(
            e.to_string(),
            "task.yaml:4:3: unknown key `acelerators` in resources\nhint: did you mean `accelerators`?"
        );
        let e = Problem::new("bad", "good").at(Location::Flag("--gpus".into()), "accelerators");
        assert_eq!(
            e.to_string(),
            "--gpus: invalid `accelerators`: bad\nhint: good"
        );
    }
}
