//! Where things are in the YAML text, and typed reads that say where they
//! failed.
//!
//! serde_yaml gives values without positions, so a second pass over the
//! text with yaml-rust2's event parser maps every key path
//! (`resources.any_of[1].cloud`) to the line:column of its key and value.
//! [`Cx`] then turns a path into a [`Location`] for each error, falling
//! back to the closest indexed ancestor (e.g. inside `<<:` merges).

use super::error::{list_keys, suggest, Location, Problem, SpecError};
use serde_yaml::{Mapping, Value};
use std::collections::HashMap;
use std::fmt;
use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// One step of a key path.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Seg {
    Key(String),
    Index(usize),
}

/// A key path from the document root.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub(crate) struct Path(Vec<Seg>);

impl Path {
    pub fn root() -> Path {
        Path(Vec::new())
    }

    pub fn key(&self, key: &str) -> Path {
        let mut segs = self.0.clone();
        segs.push(Seg::Key(key.to_string()));
        Path(segs)
    }

    pub fn index(&self, i: usize) -> Path {
        let mut segs = self.0.clone();
        segs.push(Seg::Index(i));
        Path(segs)
    }

    fn parent(&self) -> Option<Path> {
        let mut segs = self.0.clone();
        segs.pop().map(|_| Path(segs))
    }

    /// The path as the user reads it; the root is `task`.
    pub fn display(&self) -> String {
        if self.0.is_empty() {
            "task".to_string()
        } else {
            self.to_string()
        }
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Index(n) => write!(f, "[{n}]")?,
                Seg::Key(k) if is_plain_key(k) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    f.write_str(k)?;
                }
                Seg::Key(k) => write!(f, "[{k:?}]")?,
            }
        }
        Ok(())
    }
}

fn is_plain_key(k: &str) -> bool {
    !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pos {
    line: usize,
    column: usize,
    index: usize,
}

impl From<Marker> for Pos {
    fn from(m: Marker) -> Pos {
        Pos {
            line: m.line(),
            column: m.col() + 1,
            index: m.index(),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Span {
    key: Option<Pos>,
    value: Pos,
}

/// Key path -> positions, for one YAML document.
#[derive(Debug, Clone, Default)]
pub(crate) struct SpanIndex {
    spans: HashMap<Path, Span>,
    /// Keys written twice in one mapping: the second occurrence.
    duplicates: Vec<Pos>,
}

impl SpanIndex {
    /// `(line, column)` of the first repeated key at or after `line`.
    pub fn duplicate_from(&self, line: usize) -> Option<(usize, usize)> {
        self.duplicates
            .iter()
            .find(|p| p.line >= line)
            .map(|p| (p.line, p.column))
    }
}

enum MapState {
    Key,
    Value { key: Option<String>, key_pos: Pos },
}

enum Frame {
    Map {
        path: Option<Path>,
        state: MapState,
        first: bool,
    },
    Seq {
        path: Option<Path>,
        next: usize,
    },
}

/// Builds one [`SpanIndex`] per document; stops quietly at the first
/// syntax error (serde_yaml reports those).
pub(crate) fn index_documents(text: &str) -> Vec<SpanIndex> {
    let mut docs = Vec::new();
    let mut current: Option<SpanIndex> = None;
    let mut stack: Vec<Frame> = Vec::new();
    let mut parser = Parser::new_from_str(text);
    while let Ok((event, mark)) = parser.next_token() {
        let pos = Pos::from(mark);
        match event {
            Event::StreamEnd => break,
            Event::DocumentStart => {
                stack.clear();
                current = Some(SpanIndex::default());
            }
            Event::DocumentEnd => {
                if let Some(doc) = current.take() {
                    docs.push(doc);
                }
            }
            Event::MappingEnd | Event::SequenceEnd => {
                stack.pop();
            }
            Event::Scalar(ref text, style, _, _) => {
                let empty = text.is_empty() && style == TScalarStyle::Plain;
                if let Some(doc) = current.as_mut() {
                    node(doc, &mut stack, pos, Some(text.as_str()), empty, None);
                }
            }
            Event::Alias(_) => {
                if let Some(doc) = current.as_mut() {
                    node(doc, &mut stack, pos, None, false, None);
                }
            }
            Event::MappingStart(..) => {
                if let Some(doc) = current.as_mut() {
                    node(doc, &mut stack, pos, None, false, Some(true));
                }
            }
            Event::SequenceStart(..) => {
                if let Some(doc) = current.as_mut() {
                    node(doc, &mut stack, pos, None, false, Some(false));
                }
            }
            Event::Nothing | Event::StreamStart => {}
        }
    }
    if let Some(doc) = current.take() {
        docs.push(doc);
    }
    docs
}

/// Records one node. `scalar` is the text of a scalar node; `container`
/// is `Some(true)` for a mapping start, `Some(false)` for a sequence.
fn node(
    doc: &mut SpanIndex,
    stack: &mut Vec<Frame>,
    pos: Pos,
    scalar: Option<&str>,
    empty: bool,
    container: Option<bool>,
) {
    let (path, key_pos) = match stack.last_mut() {
        None => (Some(Path::root()), None),
        Some(Frame::Seq { path, next }) => {
            let p = path.as_ref().map(|p| p.index(*next));
            *next += 1;
            (p, None)
        }
        Some(Frame::Map { path, state, first }) => match std::mem::replace(state, MapState::Key) {
            MapState::Key => {
                // A key: remember it; fix a block mapping's start, which
                // the parser reports after its first key.
                if let (Some(p), true) = (path.as_ref(), *first) {
                    if let Some(span) = doc.spans.get_mut(p) {
                        if pos.index < span.value.index {
                            span.value = pos;
                        }
                    }
                }
                *first = false;
                *state = MapState::Value {
                    key: scalar.map(str::to_string),
                    key_pos: pos,
                };
                if let Some(is_map) = container {
                    // A complex key: nothing under it is indexed.
                    stack.push(new_frame(None, is_map));
                }
                return;
            }
            MapState::Value { key, key_pos } => {
                let p = match (path.as_ref(), key) {
                    (Some(p), Some(k)) => Some(p.key(&k)),
                    _ => None,
                };
                (p, Some(key_pos))
            }
        },
    };
    if let Some(p) = path.as_ref() {
        let value = match key_pos {
            Some(k) if empty => k,
            _ => pos,
        };
        match doc.spans.entry(p.clone()) {
            std::collections::hash_map::Entry::Occupied(_) => doc.duplicates.extend(key_pos),
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(Span {
                    key: key_pos,
                    value,
                });
            }
        }
    }
    if let Some(is_map) = container {
        stack.push(new_frame(path, is_map));
    }
}

fn new_frame(path: Option<Path>, is_map: bool) -> Frame {
    if is_map {
        Frame::Map {
            path,
            state: MapState::Key,
            first: true,
        }
    } else {
        Frame::Seq { path, next: 0 }
    }
}

/// The text of a mapping key as a path step (non-string scalars as YAML
/// writes them).
pub(crate) fn key_text(key: &Value) -> Option<String> {
    match key {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null => Some("null".to_string()),
        _ => None,
    }
}

/// Context for reading one document: the file name and its span index.
#[derive(Clone, Copy)]
pub(crate) struct Cx<'a> {
    pub file: &'a str,
    pub spans: Option<&'a SpanIndex>,
}

impl<'a> Cx<'a> {
    fn find(&self, path: &Path, want_key: bool) -> Location {
        let mut cur = Some(path.clone());
        let mut first = true;
        while let Some(p) = cur {
            if let Some(span) = self.spans.and_then(|s| s.spans.get(&p)) {
                let pos = match (want_key && first, span.key) {
                    (true, Some(k)) => k,
                    _ => span.value,
                };
                return Location::At {
                    file: self.file.to_string(),
                    line: pos.line,
                    column: pos.column,
                };
            }
            first = false;
            cur = p.parent();
        }
        Location::File(self.file.to_string())
    }

    /// Where the key at `path` is written.
    pub fn key_at(&self, path: &Path) -> Location {
        self.find(path, true)
    }

    /// Where the value at `path` is written.
    pub fn value_at(&self, path: &Path) -> Location {
        self.find(path, false)
    }

    /// A bad value at `path`.
    pub fn invalid(
        &self,
        path: &Path,
        reason: impl Into<String>,
        hint: impl Into<String>,
    ) -> SpecError {
        self.problem(path, Problem::new(reason, hint))
    }

    /// A validator's problem, placed at the value at `path`.
    pub fn problem(&self, path: &Path, problem: Problem) -> SpecError {
        problem.at(self.value_at(path), path.display())
    }

    /// The value at `path` has the wrong type.
    pub fn wrong_type(
        &self,
        path: &Path,
        expected: &str,
        found: &Value,
        hint: impl Into<String>,
    ) -> SpecError {
        self.invalid(
            path,
            format!("expected {expected}, found {}", describe(found)),
            hint,
        )
    }

    /// `path` and `other` exclude each other; the error points at `path`.
    pub fn conflict(&self, path: &Path, other: &Path, hint: impl Into<String>) -> SpecError {
        SpecError::Conflict {
            at: self.key_at(path),
            path: path.display(),
            other: other.display(),
            hint: hint.into(),
        }
    }

    /// Checks that `v` is a mapping with string keys from `valid`. `hint_for`
    /// may give a better hint for a known misplaced key.
    pub fn mapping(
        &self,
        path: &Path,
        v: &'a Value,
        what: &str,
        valid: &[&str],
        hint_for: fn(&str) -> Option<String>,
    ) -> Result<&'a Mapping, SpecError> {
        let some_keys = || {
            let mut keys: Vec<&str> = valid
                .iter()
                .copied()
                .filter(|k| !k.starts_with('_'))
                .take(9)
                .collect();
            let more = if keys.len() == 9 { ", ..." } else { "" };
            keys.truncate(8);
            format!("{what} takes keys such as {}{more}", list_keys(&keys))
        };
        let Value::Mapping(map) = v else {
            return Err(self.wrong_type(path, "a mapping", v, some_keys()));
        };
        for key in map.keys() {
            let Value::String(k) = key else {
                let p = path.key(&key_text(key).unwrap_or_else(|| "?".into()));
                return Err(SpecError::Invalid {
                    at: self.key_at(&p),
                    path: p.display(),
                    reason: format!("keys must be strings, found {}", describe(key)),
                    hint: some_keys(),
                });
            };
            if !valid.contains(&k.as_str()) {
                let hint = hint_for(k).unwrap_or_else(|| suggest(k, valid));
                return Err(SpecError::UnknownKey {
                    at: self.key_at(&path.key(k)),
                    key: k.clone(),
                    within: path.display(),
                    hint,
                });
            }
        }
        Ok(map)
    }
}

/// `a string `x``, `a list`, ... for "expected X, found Y" messages.
pub(crate) fn describe(v: &Value) -> String {
    match v {
        Value::Null => "nothing (null)".to_string(),
        Value::Bool(b) => format!("a boolean `{b}`"),
        Value::Number(n) => format!("a number `{n}`"),
        Value::String(s) => format!("a string `{}`", clip(s)),
        Value::Sequence(_) => "a list".to_string(),
        Value::Mapping(_) => "a mapping".to_string(),
        Value::Tagged(t) => format!("a value tagged `{}`", t.tag),
    }
}

/// At most 40 characters of `s`, for messages.
pub(crate) fn clip(s: &str) -> String {
    if s.chars().count() <= 40 {
        s.to_string()
    } else {
        let head: String = s.chars().take(37).collect();
        format!("{head}...")
    }
}

/// Typed reads of scalars; each error names `path` and its position.
impl Cx<'_> {
    pub fn string(&self, path: &Path, v: &Value, hint: &str) -> Result<String, SpecError> {
        match v {
            Value::String(s) => Ok(s.clone()),
            _ => Err(self.wrong_type(path, "a string", v, hint)),
        }
    }

    /// A string, or a number or boolean written bare (`labels: {tier: 1}`).
    pub fn scalar_text(&self, path: &Path, v: &Value, hint: &str) -> Result<String, SpecError> {
        match v {
            Value::String(s) => Ok(s.clone()),
            Value::Number(n) => Ok(n.to_string()),
            // As SkyPilot (Python) prints them.
            Value::Bool(true) => Ok("True".to_string()),
            Value::Bool(false) => Ok("False".to_string()),
            _ => Err(self.wrong_type(path, "a string", v, hint)),
        }
    }

    /// A boolean; YAML 1.1 words (`yes`, `off`, ...) count, as in SkyPilot.
    pub fn boolean(&self, path: &Path, v: &Value) -> Result<bool, SpecError> {
        match v {
            Value::Bool(b) => Ok(*b),
            Value::String(s) => match s.as_str() {
                "yes" | "Yes" | "YES" | "on" | "On" | "ON" | "True" | "TRUE" => Ok(true),
                "no" | "No" | "NO" | "off" | "Off" | "OFF" | "False" | "FALSE" => Ok(false),
                _ => Err(self.wrong_type(path, "true or false", v, "write `true` or `false`")),
            },
            _ => Err(self.wrong_type(path, "true or false", v, "write `true` or `false`")),
        }
    }

    /// A whole number in `min..=u32::MAX` (`2.0` counts as 2).
    pub fn uint(&self, path: &Path, v: &Value, min: u32, hint: &str) -> Result<u32, SpecError> {
        let n = match v {
            Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Some(i)
                } else {
                    n.as_f64()
                        .filter(|f| f.fract() == 0.0 && f.abs() < 1e18)
                        .map(|f| f as i64)
                }
            }
            _ => None,
        };
        let what = if min == 0 {
            "a whole number >= 0".to_string()
        } else {
            format!("a whole number >= {min}")
        };
        match n {
            Some(i) if i >= i64::from(min) && i <= i64::from(u32::MAX) => Ok(i as u32),
            Some(i) => Err(self.invalid(path, format!("expected {what}, found `{i}`"), hint)),
            None => Err(self.wrong_type(path, &what, v, hint)),
        }
    }

    /// A finite number.
    pub fn number(&self, path: &Path, v: &Value, hint: &str) -> Result<f64, SpecError> {
        match v {
            Value::Number(n) => match n.as_f64() {
                Some(f) if f.is_finite() => Ok(f),
                _ => Err(self.wrong_type(path, "a finite number", v, hint)),
            },
            _ => Err(self.wrong_type(path, "a number", v, hint)),
        }
    }

    /// A mapping of string keys to string-ish values, in order.
    pub fn string_map(
        &self,
        path: &Path,
        v: &Value,
        hint: &str,
    ) -> Result<indexmap::IndexMap<String, String>, SpecError> {
        let Value::Mapping(map) = v else {
            return Err(self.wrong_type(path, "a mapping", v, hint));
        };
        let mut out = indexmap::IndexMap::new();
        for (k, val) in map {
            let key = key_text(k).ok_or_else(|| self.wrong_type(path, "string keys", k, hint))?;
            let text = self.scalar_text(&path.key(&key), val, hint)?;
            out.insert(key, text);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str, path: &Path, key: bool) -> String {
        let docs = index_documents(text);
        let cx = Cx {
            file: "t.yaml",
            spans: docs.first(),
        };
        if key {
            cx.key_at(path)
        } else {
            cx.value_at(path)
        }
        .to_string()
    }

    #[test]
    fn indexes_keys_values_and_items() {
        let text = "name: x\nresources:\n  any_of:\n    - cloud: aws\n    - {cloud: gcp, cpus: 4}\n  ports:\n";
        let r = Path::root().key("resources");
        assert_eq!(at(text, &r, true), "t.yaml:2:1");
        assert_eq!(at(text, &r, false), "t.yaml:3:3");
        assert_eq!(
            at(text, &r.key("any_of").index(1).key("cloud"), true),
            "t.yaml:5:8"
        );
        assert_eq!(
            at(text, &r.key("any_of").index(1).key("cpus"), false),
            "t.yaml:5:26"
        );
        assert_eq!(at(text, &r.key("any_of").index(0), false), "t.yaml:4:7");
        // An empty value points at its key.
        assert_eq!(at(text, &r.key("ports"), false), "t.yaml:6:3");
        // Unknown paths fall back to the closest ancestor.
        assert_eq!(
            at(text, &r.key("any_of").index(0).key("nope"), true),
            "t.yaml:4:7"
        );
    }

    #[test]
    fn one_index_per_document() {
        let docs = index_documents("a: 1\n---\nb: 2\n");
        assert_eq!(docs.len(), 2);
        let cx = Cx {
            file: "f",
            spans: docs.get(1),
        };
        assert_eq!(cx.key_at(&Path::root().key("b")).to_string(), "f:3:1");
    }

    #[test]
    fn paths_render_readably() {
        let p = Path::root()
            .key("file_mounts")
            .key("/data")
            .key("source")
            .index(2);
        assert_eq!(p.to_string(), "file_mounts[\"/data\"].source[2]");
        assert_eq!(Path::root().display(), "task");
    }
}
