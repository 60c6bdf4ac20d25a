//! Task specs: SkyPilot task YAML, parsed unchanged into validated types.
//!
//! - [`Task::parse`] / [`Pipeline::parse`]: one task, or `---`-separated
//!   tasks (a pipeline);
//! - `resources`: `resources:` normalized into [`ResourcesSpec`]
//!   candidates for the optimizer (`any_of` / `ordered` merged over the
//!   base keys);
//! - `values`: infra, accelerators, cpus/memory, ports, disks, image;
//!   `policy`: autostop and job recovery;
//! - `storage` (`workdir`, `file_mounts`) and `service` (SkyServe);
//! - `env`: `${VAR}` substitution and `--env-file` parsing;
//! - `overrides`: `sky launch`-style flags ([`Overrides`]);
//! - `error`: [`SpecError`], always `file:line:col` (or the flag), the
//!   key path, a reason and a `hint:` line.
//!
//! Unknown keys are errors (with a did-you-mean). Keys SkyPilot has but
//! Aloft does not interpret are kept as written in `extra` maps.
//! `${VAR}` in `workdir`, `file_mounts` and `service` is replaced from
//! `envs` and `secrets`, and again after [`Task::apply_env_overrides`].

mod env;
mod error;
mod overrides;
mod parse;
mod policy;
mod resources;
mod service;
mod source;
mod storage;
mod values;

pub use env::parse_env_file;
pub use error::{Location, SpecError};
pub use overrides::Overrides;
pub use policy::{Autostop, AutostopWaitFor, JobRecovery};
pub use resources::{Ordering, Resources, ResourcesSpec};
pub use service::{ReadinessProbe, ReplicaPolicy, Service, TargetQps};
pub use storage::{FileMount, Storage, StorageMode, Workdir};
pub use values::{Accelerators, DiskTier, ImageId, Infra, Quantity};

use indexmap::IndexMap;
use serde::{Serialize, Serializer};
use serde_yaml::Value;
use source::{Cx, Path, SpanIndex};
use std::fmt;
use std::sync::Arc;

/// One task.
#[derive(Clone, Serialize)]
pub struct Task {
    /// Task name.
    pub name: Option<String>,
    /// What to sync to the nodes' working directory.
    pub workdir: Option<Workdir>,
    /// Nodes, >= 1.
    pub num_nodes: u32,
    /// Where and on what to run.
    pub resources: ResourcesSpec,
    /// Setup script.
    pub setup: Option<String>,
    /// Run script (a list of lines is joined with newlines).
    pub run: Option<String>,
    /// Env vars in order; `None` = declared without a value, to be given
    /// with `--env` (see [`Task::check_required`]).
    pub envs: IndexMap<String, Option<String>>,
    /// Secrets, like `envs` but never printed (`--secret`).
    #[serde(serialize_with = "redacted")]
    pub secrets: IndexMap<String, Option<String>>,
    /// Remote path -> source.
    pub file_mounts: IndexMap<String, FileMount>,
    /// SkyServe settings.
    pub service: Option<Service>,
    /// Per-task config overrides, as written.
    pub config: Option<Value>,
    /// Volumes, as written.
    pub volumes: Option<Value>,
    /// Managed-job event callback command.
    pub event_callback: Option<String>,
    /// SkyPilot task keys Aloft keeps but does not interpret (`pool`,
    /// `volume_mounts`, `secrets` as a list, ...), as written.
    pub extra: IndexMap<String, Value>,
    #[serde(skip)]
    source: Arc<Source>,
}

/// Several tasks run one after another (a multi-document YAML).
#[derive(Debug, Clone, Serialize)]
pub struct Pipeline {
    /// From a first document holding only `name:`.
    pub name: Option<String>,
    /// The tasks in order; at least one.
    pub tasks: Vec<Task>,
}

/// The sections that take `${VAR}`, re-read with new values.
struct Sections {
    workdir: Option<Workdir>,
    file_mounts: IndexMap<String, FileMount>,
    service: Option<Service>,
}

/// New envs, new secrets, and the sections read with them.
type VarsApplied = (
    IndexMap<String, Option<String>>,
    IndexMap<String, Option<String>>,
    Sections,
);

/// What a task needs to re-read its `${VAR}` sections and place errors.
#[derive(Debug, Default)]
struct Source {
    file: String,
    spans: Option<SpanIndex>,
    workdir: Option<Value>,
    file_mounts: Option<Value>,
    service: Option<Value>,
}

impl Task {
    /// Parses a one-task YAML. `file` names the text in errors.
    pub fn parse(text: &str, file: &str) -> Result<Task, SpecError> {
        let mut pipeline = Pipeline::parse(text, file)?;
        if pipeline.tasks.len() > 1 {
            let second = &pipeline.tasks[1];
            let cx = second.cx();
            return Err(cx.invalid(
                &Path::root(),
                format!(
                    "this file holds {} tasks separated by `---`, not one",
                    pipeline.tasks.len()
                ),
                "keep one task per file, or load the file as a pipeline",
            ));
        }
        Ok(pipeline.tasks.remove(0))
    }

    /// The file name errors use.
    pub fn file(&self) -> &str {
        &self.source.file
    }

    fn cx(&self) -> Cx<'_> {
        Cx {
            file: &self.source.file,
            spans: self.source.spans.as_ref(),
        }
    }

    /// Sets env vars from `--env NAME=VALUE` (added if not declared), then
    /// redoes `${VAR}` substitution. Nothing changes on error.
    pub fn apply_env_overrides(&mut self, env: &[(String, String)]) -> Result<(), SpecError> {
        self.apply_vars(env, &[])
    }

    /// Sets secrets from `--secret NAME=VALUE`, then redoes substitution.
    /// Nothing changes on error.
    pub fn apply_secret_overrides(
        &mut self,
        secrets: &[(String, String)],
    ) -> Result<(), SpecError> {
        self.apply_vars(&[], secrets)
    }

    fn apply_vars(
        &mut self,
        env: &[(String, String)],
        secrets: &[(String, String)],
    ) -> Result<(), SpecError> {
        let (envs, secrets, sections) = self.with_vars(env, secrets)?;
        self.commit_vars(envs, secrets, sections);
        Ok(())
    }

    /// The env/secret maps after the overrides, and the `${VAR}` sections
    /// re-read with them; `self` is untouched.
    fn with_vars(
        &self,
        env: &[(String, String)],
        secrets: &[(String, String)],
    ) -> Result<VarsApplied, SpecError> {
        overrides::check_names(env, "--env")?;
        overrides::check_names(secrets, "--secret")?;
        let merge = |base: &IndexMap<String, Option<String>>, pairs: &[(String, String)]| {
            let mut out = base.clone();
            out.extend(pairs.iter().map(|(k, v)| (k.clone(), Some(v.clone()))));
            out
        };
        let (envs, secrets) = (merge(&self.envs, env), merge(&self.secrets, secrets));
        let current = Sections {
            workdir: self.workdir.clone(),
            file_mounts: self.file_mounts.clone(),
            service: self.service.clone(),
        };
        let sections = parse::read_sections(&self.cx(), &self.source, &envs, &secrets, current)?;
        Ok((envs, secrets, sections))
    }

    fn commit_vars(
        &mut self,
        envs: IndexMap<String, Option<String>>,
        secrets: IndexMap<String, Option<String>>,
        s: Sections,
    ) {
        self.envs = envs;
        self.secrets = secrets;
        self.workdir = s.workdir;
        self.file_mounts = s.file_mounts;
        self.service = s.service;
    }

    /// Env vars declared without a value and not given yet.
    pub fn required_envs(&self) -> Vec<&str> {
        self.envs
            .iter()
            .filter(|(_, v)| v.is_none())
            .map(|(k, _)| k.as_str())
            .collect()
    }

    /// Secrets declared without a value and not given yet.
    pub fn required_secrets(&self) -> Vec<&str> {
        self.secrets
            .iter()
            .filter(|(_, v)| v.is_none())
            .map(|(k, _)| k.as_str())
            .collect()
    }

    /// Fails on the first env var or secret that still has no value,
    /// pointing at its declaration.
    pub fn check_required(&self) -> Result<(), SpecError> {
        let cx = self.cx();
        let missing =
            |kind: &'static str, key: &str, flag: &str, name: &str| SpecError::MissingValue {
                at: cx.key_at(&Path::root().key(key).key(name)),
                kind,
                name: name.to_string(),
                hint: format!("pass it with {flag} {name}=VALUE"),
            };
        if let Some(name) = self.required_envs().first() {
            return Err(missing("env", "envs", "--env", name));
        }
        if let Some(name) = self.required_secrets().first() {
            return Err(missing("secret", "secrets", "--secret", name));
        }
        Ok(())
    }
}

impl fmt::Debug for Task {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secrets: IndexMap<&str, Option<&str>> = self
            .secrets
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_ref().map(|_| "<redacted>")))
            .collect();
        f.debug_struct("Task")
            .field("name", &self.name)
            .field("workdir", &self.workdir)
            .field("num_nodes", &self.num_nodes)
            .field("resources", &self.resources)
            .field("setup", &self.setup)
            .field("run", &self.run)
            .field("envs", &self.envs)
            .field("secrets", &secrets)
            .field("file_mounts", &self.file_mounts)
            .field("service", &self.service)
            .field("config", &self.config)
            .field("volumes", &self.volumes)
            .field("event_callback", &self.event_callback)
            .field("extra", &self.extra)
            .field("file", &self.source.file)
            .finish()
    }
}

fn redacted<S: Serializer>(
    secrets: &IndexMap<String, Option<String>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    let shown: IndexMap<&str, Option<&str>> = secrets
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_ref().map(|_| "<redacted>")))
        .collect();
    shown.serialize(s)
}

impl Pipeline {
    /// Parses one or more `---`-separated tasks. Empty documents between
    /// tasks are skipped; a first document with only `name:` names the
    /// pipeline; an empty file is one empty task.
    pub fn parse(text: &str, file: &str) -> Result<Pipeline, SpecError> {
        parse::pipeline(text, file)
    }
}

#[cfg(test)]
#[path = "task_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "task_fuzz_tests.rs"]
mod fuzz_tests;
