//! `aloft-bench-aws-native ENDPOINT N`: N RunInstances calls (one m5.large
//! each) from a native aws-sdk-ec2 client against ENDPOINT (moto), timed
//! around `send()`; prints the median, min and max in ms, for a reused
//! client (pooled connection) and for a new client per call.

use aws_sdk_ec2::config::{BehaviorVersion, Region};
use aws_sdk_ec2::types::InstanceType;
use std::time::Instant;

fn client(endpoint: &str) -> aws_sdk_ec2::Client {
    let creds = aws_credential_types::Credentials::new("AKIAALOFTBENCH000001", "bench", None, None, "bench");
    let conf = aws_sdk_ec2::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(creds)
        .endpoint_url(endpoint)
        .build();
    aws_sdk_ec2::Client::from_conf(conf)
}

async fn run_once(ec2: &aws_sdk_ec2::Client) -> f64 {
    let t = Instant::now();
    ec2.run_instances()
        .image_id("ami-0b43efcb5366f38d0")
        .instance_type(InstanceType::M5Large)
        .min_count(1)
        .max_count(1)
        .send()
        .await
        .expect("RunInstances");
    t.elapsed().as_secs_f64() * 1000.0
}

fn stats(mut v: Vec<f64>) -> String {
    v.sort_by(f64::total_cmp);
    format!("median {:.2} ms (min {:.2}, max {:.2}, n={})", v[v.len() / 2], v[0], v[v.len() - 1], v.len())
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let endpoint = args.get(1).expect("usage: aloft-bench-aws-native ENDPOINT [N]").clone();
    let n: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(21);
    let ec2 = client(&endpoint);
    run_once(&ec2).await; // warm-up: connection, credentials cache
    let mut reused = Vec::new();
    for _ in 0..n {
        reused.push(run_once(&ec2).await);
    }
    let mut fresh = Vec::new();
    for _ in 0..n {
        fresh.push(run_once(&client(&endpoint)).await);
    }
    println!("native RunInstances, reused client      {}", stats(reused));
    println!("native RunInstances, new client per call {}", stats(fresh));
}
