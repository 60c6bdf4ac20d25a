//! `aloft`: the command-line interface.
//!
//! Glue over the library crates: `commands/` holds one file per command
//! group, each a clap struct with `run`; [`home`] resolves `$ALOFT_HOME`;
//! [`table`] prints aligned tables. Errors are `anyhow` chains printed once
//! here and mapped to exit codes by [`exit_code`].

mod backend;
mod catalogs;
mod cloud;
mod commands;
mod home;
mod local;
mod pools;
mod runner;
mod ssh;
mod ssh_pool;
mod state;
mod table;
mod task_args;

use clap::Parser;
use std::process::ExitCode;

/// Run ML jobs and services on the cheapest place that fits.
#[derive(Debug, Parser)]
#[command(name = "aloft", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: commands::Command,
}

/// An error that carries its own exit status (e.g. 2 = invalid task).
#[derive(Debug)]
pub struct Exit {
    /// The process exit status.
    pub code: u8,
    /// Already printed to the user when `message` is empty.
    pub message: String,
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Exit {}

fn exit_code(err: &anyhow::Error) -> u8 {
    err.downcast_ref::<Exit>().map(|e| e.code).unwrap_or(1)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: starting the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(cli.command.run()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let code = exit_code(&err);
            let text = format!("{err:#}");
            if !text.is_empty() {
                eprintln!("error: {text}");
            }
            ExitCode::from(code)
        }
    }
}

/// Writes to stdout; a closed pipe (`aloft ... | head`) ends quietly.
pub fn out(text: &str) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
    }
}

/// [`out`] with a newline.
pub fn outln(text: &str) {
    out(&format!("{text}\n"));
}
