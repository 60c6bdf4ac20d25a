//! `workdir:` and `file_mounts:` (local paths, bucket URLs and storage
//! objects). Strings here get `${VAR}` substitution.

use super::env::{substitute, substitute_value, Vars};
use super::error::SpecError;
use super::source::{key_text, Cx, Path};
use indexmap::IndexMap;
use serde::Serialize;
use serde_yaml::Value;

/// What to sync to `~/sky_workdir` on every node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Workdir {
    /// A local directory.
    Path(String),
    /// A git repository.
    Git {
        /// Clone URL.
        url: String,
        /// Branch, tag or commit; none = the default branch.
        git_ref: Option<String>,
    },
}

/// One `file_mounts` entry's source.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FileMount {
    /// A local path or a bucket URL (`s3://...`, `gs://...`).
    Path(String),
    /// A storage object.
    Storage(Storage),
}

/// A bucket to create, fill, mount or copy.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Storage {
    /// Bucket name.
    pub name: Option<String>,
    /// Local paths or bucket URLs to upload or mount.
    pub source: Vec<String>,
    /// Store kind, lowercase (`s3`, `gcs`, `azure`, `r2`, ...).
    pub store: Option<String>,
    /// Keep the bucket after the task.
    pub persistent: Option<bool>,
    /// How it appears on the nodes.
    pub mode: Option<StorageMode>,
    /// Store-specific settings, as written.
    pub config: Option<Value>,
    /// Other SkyPilot keys (`mount_options`, `type`, ...), as written.
    pub extra: IndexMap<String, Value>,
}

/// How a storage object appears on the nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StorageMode {
    /// Mounted, streamed on access.
    Mount,
    /// Copied at setup.
    Copy,
    /// Mounted with a local cache.
    MountCached,
}

const WORKDIR_HINT: &str =
    "write `workdir: path/to/dir` or `workdir: {url: https://github.com/org/repo, ref: main}`";
const STORAGE_KEYS: &[&str] = &[
    "name",
    "source",
    "store",
    "persistent",
    "mode",
    "config",
    "mount_options",
    "type",
    "_is_sky_managed",
    "_bucket_sub_path",
    "_force_delete",
];
const MOUNT_HINT: &str =
    "map a remote path to a local path or bucket URL (`/data: ./data`, `/ckpt: s3://bucket`) \
                          or to a storage object (`/ckpt: {name: my-bucket, mode: MOUNT}`)";

/// Reads `workdir`.
pub(crate) fn workdir(
    cx: &Cx,
    path: &Path,
    v: &Value,
    vars: &Vars,
) -> Result<Option<Workdir>, SpecError> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(Workdir::Path(substitute(s, vars)))),
        Value::Mapping(_) => {
            let map = cx.mapping(path, v, "workdir", &["url", "ref"], |_| None)?;
            let url = match map.get("url") {
                Some(u) => substitute(&cx.string(&path.key("url"), u, WORKDIR_HINT)?, vars),
                None => return Err(cx.invalid(path, "a git workdir needs `url`", WORKDIR_HINT)),
            };
            let git_ref = match map.get("ref") {
                None | Some(Value::Null) => None,
                Some(r) => Some(substitute(
                    &cx.scalar_text(&path.key("ref"), r, WORKDIR_HINT)?,
                    vars,
                )),
            };
            Ok(Some(Workdir::Git { url, git_ref }))
        }
        other => Err(cx.wrong_type(path, "a path or `{url, ref}`", other, WORKDIR_HINT)),
    }
}

/// Reads `file_mounts`.
pub(crate) fn file_mounts(
    cx: &Cx,
    path: &Path,
    v: &Value,
    vars: &Vars,
) -> Result<IndexMap<String, FileMount>, SpecError> {
    let mut out = IndexMap::new();
    let map = match v {
        Value::Null => return Ok(out),
        Value::Mapping(map) => map,
        other => return Err(cx.wrong_type(path, "a mapping", other, MOUNT_HINT)),
    };
    for (k, val) in map {
        let key = key_text(k).unwrap_or_default();
        let p = path.key(&key);
        let remote = match k {
            Value::String(s) if !s.trim().is_empty() => substitute(s, vars),
            other => return Err(cx.wrong_type(&p, "a remote path as the key", other, MOUNT_HINT)),
        };
        let mount = match val {
            Value::String(s) if !s.trim().is_empty() => FileMount::Path(substitute(s, vars)),
            Value::Mapping(_) => FileMount::Storage(storage(cx, &p, val, vars)?),
            other => {
                return Err(cx.wrong_type(
                    &p,
                    "a local path, bucket URL or storage object",
                    other,
                    MOUNT_HINT,
                ))
            }
        };
        out.insert(remote, mount);
    }
    Ok(out)
}

fn storage(cx: &Cx, path: &Path, v: &Value, vars: &Vars) -> Result<Storage, SpecError> {
    let map = cx.mapping(path, v, "a storage object", STORAGE_KEYS, |_| None)?;
    let mut s = Storage::default();
    for (k, val) in map {
        let key = k.as_str().unwrap_or_default();
        let p = path.key(key);
        if val.is_null() {
            continue;
        }
        match key {
            "name" => {
                s.name = Some(substitute(
                    &cx.string(&p, val, "e.g. `name: my-bucket`")?,
                    vars,
                ))
            }
            "source" => {
                let hint = "a local path or bucket URL, or a list of local paths";
                s.source = match val {
                    Value::Sequence(items) => items
                        .iter()
                        .enumerate()
                        .map(|(i, item)| {
                            cx.string(&p.index(i), item, hint)
                                .map(|t| substitute(&t, vars))
                        })
                        .collect::<Result<_, _>>()?,
                    other => vec![substitute(&cx.string(&p, other, hint)?, vars)],
                };
            }
            "store" => {
                let text = cx.string(&p, val, "e.g. `store: s3`")?;
                s.store = Some(substitute(&text, vars).to_ascii_lowercase());
            }
            "persistent" => s.persistent = Some(cx.boolean(&p, val)?),
            "mode" => {
                let hint = "use `MOUNT`, `COPY` or `MOUNT_CACHED`";
                let text = substitute(&cx.string(&p, val, hint)?, vars);
                s.mode = Some(match text.to_ascii_uppercase().as_str() {
                    "MOUNT" => StorageMode::Mount,
                    "COPY" => StorageMode::Copy,
                    "MOUNT_CACHED" => StorageMode::MountCached,
                    _ => return Err(cx.invalid(&p, format!("unknown mode `{text}`"), hint)),
                });
            }
            "config" => {
                if !val.is_mapping() {
                    return Err(cx.wrong_type(
                        &p,
                        "a mapping",
                        val,
                        "e.g. `config: {mount_cached: {transfers: 8}}`",
                    ));
                }
                s.config = Some(substitute_value(val, vars));
            }
            other => {
                s.extra
                    .insert(other.to_string(), substitute_value(val, vars));
            }
        }
    }
    if s.name.is_none() && s.source.is_empty() {
        return Err(cx.invalid(
            path,
            "a storage object needs `name` or `source`",
            "e.g. `{name: my-bucket, source: ./data}`",
        ));
    }
    Ok(s)
}
