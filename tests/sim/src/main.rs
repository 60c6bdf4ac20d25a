//! `aloft-sim`: serves the simulated cloud until SIGTERM / SIGINT, then
//! kills every instance's sshd. Prints its URL as the first stdout line.

use aloft_sim::{Config, Simulator};
use anyhow::Context as _;
use clap::Parser;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;

/// A simulated cloud for Aloft's tests (needs root: it runs sshd).
#[derive(Parser)]
#[command(name = "aloft-sim", version)]
struct Args {
    /// Where to listen (loopback only; port 0 = any free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// A JSON config (regions, instance types, capacity, prices).
    #[arg(long)]
    config: Option<PathBuf>,
    /// First octet N of the instances' addresses 127.0.0.N (overrides the config).
    #[arg(long)]
    ip_base: Option<u8>,
    /// How many instance addresses (overrides the config).
    #[arg(long)]
    ip_count: Option<u8>,
}

fn main() -> std::process::ExitCode {
    match run(Args::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("aloft-sim: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> anyhow::Result<()> {
    let mut config = match &args.config {
        Some(path) => Config::from_file(path)?,
        None => Config::default(),
    };
    if let Some(b) = args.ip_base {
        config.ip_base = b;
    }
    if let Some(c) = args.ip_count {
        config.ip_count = c;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    rt.block_on(async move {
        let sim = Simulator::start_on(config, args.listen).await?;
        let mut out = std::io::stdout();
        writeln!(out, "{}", sim.url()).context("writing the URL to stdout")?;
        out.flush().context("flushing stdout")?;
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("installing the SIGTERM handler")?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r.context("waiting for SIGINT")?,
            _ = term.recv() => {}
        }
        eprintln!("aloft-sim: shutting down, stopping every instance");
        drop(sim);
        Ok(())
    })
}
