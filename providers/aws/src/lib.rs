//! Aloft provider for Amazon Web Services (EC2).
//!
//! - Catalog: the embedded snapshot (`catalog/vms.csv`, SkyPilot's v8 schema).
//! - Provisioning: aws-sdk-ec2 inside the component; its HTTP goes through
//!   wasi:http (aws-smithy-wasm), so every request passes the host's egress
//!   check. See `ec2.rs` for what a cluster is made of on EC2.
//! - Credentials: the secrets AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
//!   AWS_SESSION_TOKEN, which the host fills from the environment or from the
//!   user's AWS profile; AWS_REGION is the default region; AWS_ENDPOINT_URL_EC2
//!   or AWS_ENDPOINT_URL overrides the endpoint (tests point it at moto).

pub mod ec2;
pub mod errors;
pub mod images;
pub mod refresh;

use aloft_sdk::{
    catalog::Embedded, export_provider, secrets, CatalogData, ClusterRef, Identity, Instance,
    PortRange, Provider, ProviderError, Result, RunRequest,
};
use aws_sdk_ec2::config::{BehaviorVersion, Region, SharedAsyncSleep};
use aws_smithy_async::time::SystemTimeSource;
use aws_smithy_types::retry::RetryConfig;
use aws_smithy_types::timeout::TimeoutConfig;
use std::time::Duration;

/// The embedded catalog snapshot.
pub const CATALOG: Embedded = Embedded {
    version: "v8",
    data_date: "2026-11-29",
    csv: include_str!("../catalog/vms.csv"),
};

/// Per-region images (SkyPilot's images.csv).
pub const IMAGES: &str = include_str!("../catalog/images.csv");

/// Region used when neither the call nor AWS_REGION names one.
const DEFAULT_REGION: &str = "us-east-1";

/// The endpoint override, if any: AWS_ENDPOINT_URL_EC2, then AWS_ENDPOINT_URL.
fn endpoint() -> Result<Option<String>> {
    Ok(match secrets::optional("AWS_ENDPOINT_URL_EC2")? {
        Some(e) => Some(e),
        None => secrets::optional("AWS_ENDPOINT_URL")?,
    })
}

/// An EC2 client for `region` over wasi:http.
fn client(region: Option<&str>) -> Result<aws_sdk_ec2::Client> {
    let key = secrets::optional("AWS_ACCESS_KEY_ID")?;
    let secret = secrets::optional("AWS_SECRET_ACCESS_KEY")?;
    let (key, secret) = match (key, secret) {
        (Some(k), Some(s)) => (k, s),
        (k, _) => {
            let missing = if k.is_none() {
                "AWS_ACCESS_KEY_ID"
            } else {
                "AWS_SECRET_ACCESS_KEY"
            };
            return Err(ProviderError::Auth(format!(
                "no AWS credentials: {missing} is not set (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, \
                 or AWS_PROFILE with ~/.aws/credentials)"
            )));
        }
    };
    let token = secrets::optional("AWS_SESSION_TOKEN")?;
    let region = match region.filter(|r| !r.is_empty()) {
        Some(r) => r.to_string(),
        None => secrets::optional("AWS_REGION")?.unwrap_or_else(|| DEFAULT_REGION.to_string()),
    };
    let creds = aws_credential_types::Credentials::new(key, secret, token, None, "aloft");
    let mut conf = aws_sdk_ec2::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region))
        .credentials_provider(creds)
        .http_client(aws_smithy_wasm::wasi::WasiHttpClientBuilder::new().build())
        .sleep_impl(SharedAsyncSleep::new(aws_smithy_wasm::wasi::WasiSleep))
        .time_source(SystemTimeSource::new())
        // The host's failover handles capacity; retry only briefly here so a
        // call ends well inside its deadline.
        .retry_config(RetryConfig::standard().with_max_attempts(3))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .operation_attempt_timeout(Duration::from_secs(8))
                .build(),
        );
    if let Some(url) = endpoint()? {
        conf = conf.endpoint_url(url);
    }
    Ok(aws_sdk_ec2::Client::from_conf(conf.build()))
}

fn block_on<T>(f: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    wstd::runtime::block_on(f)
}

struct Aws;

impl Provider for Aws {
    fn catalog() -> Result<CatalogData> {
        // Set only by `aloft catalog refresh aws [--regions ...]`.
        match secrets::optional("ALOFT_CATALOG_REFRESH")? {
            Some(spec) => {
                let ec2 = client(None)?;
                block_on(refresh::live(&spec, &ec2, |r| client(Some(r))))
            }
            None => CATALOG.load(),
        }
    }

    fn check() -> Result<Identity> {
        let ec2 = client(None)?;
        let (regions, account) = block_on(ec2::identity(&ec2))?;
        let key = secrets::optional("AWS_ACCESS_KEY_ID")?.unwrap_or_default();
        let shown_key = if key.len() > 8 {
            format!("{}…{}", &key[..4], &key[key.len() - 4..])
        } else {
            key
        };
        let mut details = vec![
            ("access-key".to_string(), shown_key),
            ("regions".to_string(), regions.len().to_string()),
        ];
        if let Some(e) = endpoint()? {
            details.push(("endpoint".to_string(), e));
        }
        let id = match &account {
            Some(a) => format!("AWS account {a}"),
            None => "AWS (account not shown to these credentials)".to_string(),
        };
        Ok(Identity { id, details })
    }

    fn run_instances(r: RunRequest) -> Result<Vec<Instance>> {
        if r.node_count == 0 {
            return Err(ProviderError::Other("node-count must be at least 1".into()));
        }
        let image = images::resolve(&r)?;
        let ec2 = client(Some(&r.cluster.region))?;
        block_on(ec2::run(&ec2, &r, &image))
    }

    fn query_instances(c: ClusterRef) -> Result<Vec<Instance>> {
        let ec2 = client(Some(&c.region))?;
        block_on(ec2::query(&ec2, &c))
    }

    fn stop_instances(c: ClusterRef) -> Result<()> {
        let ec2 = client(Some(&c.region))?;
        block_on(ec2::stop(&ec2, &c))
    }

    fn start_instances(c: ClusterRef) -> Result<Vec<Instance>> {
        let ec2 = client(Some(&c.region))?;
        block_on(ec2::start(&ec2, &c))
    }

    fn terminate_instances(c: ClusterRef) -> Result<()> {
        let ec2 = client(Some(&c.region))?;
        block_on(ec2::terminate(&ec2, &c))
    }

    fn open_ports(c: ClusterRef, ports: Vec<PortRange>) -> Result<()> {
        let ec2 = client(Some(&c.region))?;
        block_on(ec2::open_ports(&ec2, &c, &ports))
    }
}

export_provider!(Aws);
