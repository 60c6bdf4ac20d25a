//! Env vars: `${VAR}` / `$VAR` substitution (SkyPilot's rule: only names
//! defined in `envs`/`secrets` are replaced, others are left as written),
//! name checks, and `--env-file` parsing.

use super::error::{Location, SpecError};
use indexmap::IndexMap;
use serde_yaml::Value;

/// Names with values, for substitution.
pub(crate) type Vars = IndexMap<String, String>;

/// `[A-Za-z_][A-Za-z0-9_]*`.
pub(crate) fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Replaces `${NAME}` and `$NAME` for the names in `vars`.
pub(crate) fn substitute(text: &str, vars: &Vars) -> String {
    if vars.is_empty() || !text.contains('$') {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let (braced, body) = match after.strip_prefix('{') {
            Some(b) => (true, b),
            None => (false, after),
        };
        let len = body
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(body.len());
        let name = &body[..len];
        let closed = !braced || body[len..].starts_with('}');
        match vars.get(name) {
            Some(value) if is_env_name(name) && closed => {
                out.push_str(value);
                let used = 1 + usize::from(braced) + len + usize::from(braced);
                rest = &rest[i + used..];
            }
            _ => {
                out.push('$');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// [`substitute`] in every string (and string key) of a kept value.
pub(crate) fn substitute_value(v: &Value, vars: &Vars) -> Value {
    match v {
        Value::String(s) => Value::String(substitute(s, vars)),
        Value::Sequence(items) => {
            Value::Sequence(items.iter().map(|i| substitute_value(i, vars)).collect())
        }
        Value::Mapping(map) => Value::Mapping(
            map.iter()
                .map(|(k, v)| (substitute_value(k, vars), substitute_value(v, vars)))
                .collect(),
        ),
        Value::Tagged(t) => Value::Tagged(Box::new(serde_yaml::value::TaggedValue {
            tag: t.tag.clone(),
            value: substitute_value(&t.value, vars),
        })),
        other => other.clone(),
    }
}

/// Whether any string (or key) in `v` refers to one of `names` as `$NAME`
/// or `${NAME}`.
pub(crate) fn mentions(v: &Value, names: &[&str]) -> bool {
    if names.is_empty() {
        return false;
    }
    match v {
        Value::String(s) => {
            let marked: Vars = names
                .iter()
                .map(|n| (n.to_string(), "\u{0}".to_string()))
                .collect();
            s.contains('$') && substitute(s, &marked) != *s
        }
        Value::Sequence(items) => items.iter().any(|i| mentions(i, names)),
        Value::Mapping(map) => map
            .iter()
            .any(|(k, v)| mentions(k, names) || mentions(v, names)),
        Value::Tagged(t) => mentions(&t.value, names),
        _ => false,
    }
}

/// Parses an env file: `KEY=VALUE` lines, `# comments`, blank lines, an
/// optional `export ` prefix, and values in single or double quotes.
/// `file` names the file in errors.
pub fn parse_env_file(text: &str, file: &str) -> Result<Vec<(String, String)>, SpecError> {
    let mut out = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let indent = raw.len() - raw.trim_start().len();
        let at = |col: usize| Location::At {
            file: file.to_string(),
            line: n + 1,
            column: indent + col + 1,
        };
        let body = line
            .strip_prefix("export ")
            .map(str::trim_start)
            .unwrap_or(line);
        let offset = line.len() - body.len();
        let Some((name, value)) = body.split_once('=') else {
            return Err(SpecError::Invalid {
                at: at(0),
                path: "env file".into(),
                reason: format!("line `{}` has no `=`", super::source::clip(line)),
                hint: "write one `NAME=VALUE` per line; `#` starts a comment".into(),
            });
        };
        let name = name.trim();
        if !is_env_name(name) {
            return Err(SpecError::Invalid {
                at: at(offset),
                path: "env file".into(),
                reason: format!("`{name}` is not a valid variable name"),
                hint: "names are letters, digits and `_`, not starting with a digit".into(),
            });
        }
        out.push((name.to_string(), unquote(value.trim())));
    }
    Ok(out)
}

/// Strips matching quotes (with `\n`, `\"`, `\\` escapes inside double
/// quotes), or a trailing ` # comment` from an unquoted value.
fn unquote(v: &str) -> String {
    if v.len() >= 2 && v.starts_with('\'') && v.ends_with('\'') {
        return v[1..v.len() - 1].to_string();
    }
    if v.len() >= 2 && v.starts_with('"') && v.ends_with('"') {
        let mut out = String::new();
        let mut chars = v[1..v.len() - 1].chars();
        while let Some(c) = chars.next() {
            match (c, c == '\\') {
                (_, true) => match chars.next() {
                    Some('n') => out.push('\n'),
                    Some('t') => out.push('\t'),
                    Some(other) => out.push(other),
                    None => out.push('\\'),
                },
                (c, false) => out.push(c),
            }
        }
        return out;
    }
    match v.find(" #") {
        Some(i) => v[..i].trim_end().to_string(),
        None => v.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Vars {
        [("BUCKET", "my-bucket"), ("X", "1")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn substitutes_only_known_names() {
        let v = vars();
        assert_eq!(substitute("s3://${BUCKET}/data", &v), "s3://my-bucket/data");
        assert_eq!(
            substitute("/$BUCKET/$X/$Y/${Y}", &v),
            "/my-bucket/1/$Y/${Y}"
        );
        assert_eq!(
            substitute("$BUCKETS $X_1 ${X}1 $$X $", &v),
            "$BUCKETS $X_1 11 $1 $"
        );
        assert_eq!(substitute("${BUCKET", &v), "${BUCKET");
        assert_eq!(substitute("ünï$X→", &v), "ünï1→");
    }

    #[test]
    fn env_files() {
        let text =
            "# comment\n\nA=1\nexport B = two words \nC=\"x\\ny\"\nD='$raw'\nE=v # note\nF=\n";
        let got = parse_env_file(text, ".env").map_err(|e| e.to_string());
        let want: Vec<(String, String)> = [
            ("A", "1"),
            ("B", "two words"),
            ("C", "x\ny"),
            ("D", "$raw"),
            ("E", "v"),
            ("F", ""),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(got, Ok(want));
        let err = parse_env_file("A=1\n  oops\n", ".env").map_err(|e| e.to_string());
        assert!(
            matches!(&err, Err(m) if m.starts_with(".env:2:3: invalid `env file`: line `oops` has no `=`")),
            "{err:?}"
        );
        let err = parse_env_file("1A=x\n", ".env").map_err(|e| e.to_string());
        assert!(
            matches!(&err, Err(m) if m.contains("`1A` is not a valid variable name")),
            "{err:?}"
        );
    }
}
