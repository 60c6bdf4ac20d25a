//! Reading the YAML: documents, syntax errors, top-level keys, and the
//! sections that take `${VAR}` (`workdir`, `file_mounts`, `service`).

use super::env::{self, is_env_name, Vars};
use super::error::{Location, SpecError};
use super::source::{describe, index_documents, key_text, Cx, Path, SpanIndex};
use super::{resources, service, storage, Pipeline, ResourcesSpec, Sections, Source, Task};
use indexmap::IndexMap;
use serde::Deserialize;
use serde_yaml::Value;
use std::sync::Arc;

/// Top-level task keys.
pub(crate) const TASK_KEYS: &[&str] = &[
    "name",
    "workdir",
    "num_nodes",
    "resources",
    "setup",
    "run",
    "envs",
    "secrets",
    "file_mounts",
    "service",
    "config",
    "volumes",
    "event_callback",
    // Accepted and kept, not interpreted.
    "pool",
    "managed_secrets",
    "inputs",
    "outputs",
    "file_mounts_mapping",
    "volume_mounts",
    "api_server_access",
    "experimental",
    "_metadata",
];

fn misplaced_in_task(key: &str) -> Option<String> {
    resources::RESOURCES_KEYS
        .contains(&key)
        .then(|| format!("`{key}` belongs under `resources:`"))
}

/// Reads every document; see [`Pipeline::parse`].
pub(super) fn pipeline(text: &str, file: &str) -> Result<Pipeline, SpecError> {
    let spans = index_documents(text);
    let mut docs = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(text) {
        docs.push(Value::deserialize(doc).map_err(|e| syntax_error(&e, text, file, &spans))?);
    }
    // Positions only when both parsers saw the same documents.
    let spans: Vec<Option<SpanIndex>> = if spans.len() == docs.len() {
        spans.into_iter().map(Some).collect()
    } else {
        docs.iter().map(|_| None).collect()
    };
    let mut docs: Vec<(Value, Option<SpanIndex>)> = docs.into_iter().zip(spans).collect();
    if docs.iter().any(|(v, _)| !v.is_null()) {
        docs.retain(|(v, _)| !v.is_null());
    } else {
        docs.truncate(1);
    }
    let mut name = None;
    if docs.len() > 1 {
        if let Value::Mapping(m) = &docs[0].0 {
            if m.len() == 1 && m.contains_key("name") {
                let (v, spans) = docs.remove(0);
                let cx = Cx {
                    file,
                    spans: spans.as_ref(),
                };
                let p = Path::root().key("name");
                name = Some(cx.scalar_text(&p, &v["name"], "e.g. `name: my-pipeline`")?);
            }
        }
    }
    let mut tasks = Vec::with_capacity(docs.len());
    for (value, spans) in docs {
        tasks.push(parse_document(value, file, spans)?);
    }
    if tasks.is_empty() {
        tasks.push(parse_document(Value::Null, file, None)?);
    }
    Ok(Pipeline { name, tasks })
}

/// serde_yaml's error, placed, with a hint for the usual causes.
fn syntax_error(e: &serde_yaml::Error, text: &str, file: &str, spans: &[SpanIndex]) -> SpecError {
    let mut message = e.to_string();
    let mut tab = false;
    let at = match e.location() {
        Some(l) => {
            message = message.replacen(
                &format!(" at line {} column {}", l.line(), l.column()),
                "",
                1,
            );
            let line = text
                .lines()
                .nth(l.line().saturating_sub(1))
                .unwrap_or_default();
            tab = line
                .chars()
                .take_while(|c| c.is_whitespace())
                .any(|c| c == '\t');
            // serde_yaml places a duplicate key at its mapping; point at
            // the second occurrence instead.
            let dup = message
                .starts_with("duplicate entry")
                .then(|| spans.iter().find_map(|s| s.duplicate_from(l.line())))
                .flatten();
            let (line, column) = dup.unwrap_or((l.line(), l.column()));
            Location::At {
                file: file.to_string(),
                line,
                column,
            }
        }
        None => Location::File(file.to_string()),
    };
    let hint = if tab || message.contains("tab") {
        "indent with spaces: YAML does not allow tabs there"
    } else if message.contains("duplicate") {
        "each key may appear once per mapping: remove or merge the duplicate"
    } else {
        "check the indentation, and that each `key: value` has a space after the colon; \
         quote values that contain `: ` or start with `{`, `[`, `*`, `&`, `!`, `%` or `@`"
    };
    SpecError::Syntax {
        at,
        message,
        hint: hint.to_string(),
    }
}

/// A script: a string, or a list of lines.
fn script(cx: &Cx, path: &Path, v: &Value) -> Result<Option<String>, SpecError> {
    let hint = "write a string (use `|` for several lines) or a list of commands";
    match v {
        Value::Null => Ok(None),
        Value::Sequence(items) => {
            let lines: Result<Vec<String>, SpecError> = items
                .iter()
                .enumerate()
                .map(|(i, item)| cx.scalar_text(&path.index(i), item, hint))
                .collect();
            Ok(Some(lines?.join("\n")))
        }
        other => Ok(Some(cx.scalar_text(path, other, hint)?)),
    }
}

/// `envs` / `secrets`: checked names; null values are required.
fn vars_map(
    cx: &Cx,
    path: &Path,
    v: &Value,
    flag: &str,
) -> Result<IndexMap<String, Option<String>>, SpecError> {
    let hint = format!(
        "e.g. `MODEL: llama-3`; a name with no value must be given with `{flag} NAME=VALUE`"
    );
    let Value::Mapping(map) = v else {
        return Err(cx.wrong_type(path, "a mapping of names to values", v, hint));
    };
    let mut out = IndexMap::new();
    for (k, val) in map {
        let name = key_text(k).unwrap_or_default();
        let p = path.key(&name);
        if !matches!(k, Value::String(_)) || !is_env_name(&name) {
            return Err(SpecError::Invalid {
                at: cx.key_at(&p),
                path: p.display(),
                reason: format!("`{name}` is not a valid variable name"),
                hint: "names are letters, digits and `_`, not starting with a digit".into(),
            });
        }
        let value = match val {
            Value::Null => None,
            other => Some(cx.scalar_text(&p, other, &hint)?),
        };
        out.insert(name, value);
    }
    Ok(out)
}

/// Validates one document into a task.
fn parse_document(
    mut value: Value,
    file: &str,
    spans: Option<SpanIndex>,
) -> Result<Task, SpecError> {
    let root = Path::root();
    let mut src = Source {
        file: file.to_string(),
        spans,
        ..Source::default()
    };
    {
        let cx = Cx {
            file,
            spans: src.spans.as_ref(),
        };
        value.apply_merge().map_err(|e| {
            cx.invalid(
                &root,
                format!("bad `<<` merge: {e}"),
                "`<<:` takes a mapping alias, e.g. `<<: *base`",
            )
        })?;
    }
    let mut task = Task {
        name: None,
        workdir: None,
        num_nodes: 1,
        resources: ResourcesSpec::default(),
        setup: None,
        run: None,
        envs: IndexMap::new(),
        secrets: IndexMap::new(),
        file_mounts: IndexMap::new(),
        service: None,
        config: None,
        volumes: None,
        event_callback: None,
        extra: IndexMap::new(),
        source: Arc::new(Source::default()),
    };
    if value.is_null() {
        task.source = Arc::new(src);
        return Ok(task);
    }
    let cx = Cx {
        file,
        spans: src.spans.as_ref(),
    };
    if !value.is_mapping() {
        return Err(cx.invalid(
            &root,
            format!("a task is a mapping of keys, found {}", describe(&value)),
            "start with keys such as `resources:`, `setup:` and `run:`",
        ));
    }
    let map = cx.mapping(&root, &value, "a task", TASK_KEYS, misplaced_in_task)?;
    for (k, v) in map {
        let key = k.as_str().unwrap_or_default();
        let p = root.key(key);
        match key {
            "envs" if !v.is_null() => task.envs = vars_map(&cx, &p, v, "--env")?,
            "secrets" if v.is_sequence() => {
                task.extra.insert(key.to_string(), v.clone());
            }
            "secrets" if !v.is_null() => task.secrets = vars_map(&cx, &p, v, "--secret")?,
            _ => {}
        }
    }
    for (k, v) in map {
        let key = k.as_str().unwrap_or_default();
        let p = root.key(key);
        match key {
            "envs" | "secrets" => {}
            "resources" => task.resources = resources::parse_resources(&cx, &p, Some(v))?,
            _ if v.is_null() => {}
            "name" => task.name = Some(cx.scalar_text(&p, v, "e.g. `name: train`")?),
            "num_nodes" => {
                task.num_nodes = cx.uint(&p, v, 1, "the number of nodes, e.g. `num_nodes: 2`")?
            }
            "setup" => task.setup = script(&cx, &p, v)?,
            "run" => task.run = script(&cx, &p, v)?,
            "workdir" => src.workdir = Some(v.clone()),
            "file_mounts" => src.file_mounts = Some(v.clone()),
            "service" => src.service = Some(v.clone()),
            "config" | "volumes" => {
                if !v.is_mapping() {
                    return Err(cx.wrong_type(
                        &p,
                        "a mapping",
                        v,
                        format!("`{key}` takes a mapping, as in SkyPilot"),
                    ));
                }
                if key == "config" {
                    task.config = Some(v.clone());
                } else {
                    task.volumes = Some(v.clone());
                }
            }
            "event_callback" => task.event_callback = Some(cx.string(&p, v, "a shell command")?),
            other => {
                task.extra.insert(other.to_string(), v.clone());
            }
        }
    }
    let empty = Sections {
        workdir: None,
        file_mounts: IndexMap::new(),
        service: None,
    };
    let sections = read_sections(&cx, &src, &task.envs, &task.secrets, empty)?;
    (task.workdir, task.file_mounts, task.service) =
        (sections.workdir, sections.file_mounts, sections.service);
    task.source = Arc::new(src);
    Ok(task)
}

/// Reads the `${VAR}` sections written in `src` (others keep `current`),
/// substituting the env vars and secrets that have values. A section that
/// fails while it uses a variable still without a value is left empty:
/// [`Task::check_required`] reports the variable, and giving it re-reads
/// the section.
pub(super) fn read_sections(
    cx: &Cx,
    src: &Source,
    envs: &IndexMap<String, Option<String>>,
    secrets: &IndexMap<String, Option<String>>,
    current: Sections,
) -> Result<Sections, SpecError> {
    let vars: Vars = envs
        .iter()
        .chain(secrets.iter())
        .filter_map(|(k, v)| v.as_ref().map(|v| (k.clone(), v.clone())))
        .collect();
    let unset: Vec<&str> = envs
        .iter()
        .chain(secrets.iter())
        .filter(|(_, v)| v.is_none())
        .map(|(k, _)| k.as_str())
        .collect();
    fn soft<T: Default>(
        r: Result<T, SpecError>,
        raw: &Value,
        unset: &[&str],
    ) -> Result<T, SpecError> {
        match r {
            Err(_) if env::mentions(raw, unset) => Ok(T::default()),
            r => r,
        }
    }
    let root = Path::root();
    Ok(Sections {
        workdir: match &src.workdir {
            Some(v) => soft(
                storage::workdir(cx, &root.key("workdir"), v, &vars),
                v,
                &unset,
            )?,
            None => current.workdir,
        },
        file_mounts: match &src.file_mounts {
            Some(v) => soft(
                storage::file_mounts(cx, &root.key("file_mounts"), v, &vars),
                v,
                &unset,
            )?,
            None => current.file_mounts,
        },
        service: match &src.service {
            Some(v) => soft(
                service::service(cx, &root.key("service"), v, &vars),
                v,
                &unset,
            )?,
            None => current.service,
        },
    })
}
