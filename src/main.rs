//! The `accurate` binary: arguments, logging, config, tasks.
//!
//! Each subcommand lives in its own module; this file only dispatches and
//! turns failures into distinct exit codes.
#![forbid(unsafe_code)]

mod args;
mod config;
mod console;
mod cost;
mod exit;
mod input;
mod output;
mod replay;
mod send_hep;
mod serve;
mod sniff;

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// AccuRate: rating, accounting and CDRs for VoIP, from what it sees on the
/// wire (HEP, pcap, live taps) or from the switch (agents).
#[derive(Debug, Parser)]
#[command(name = "accurate", version, about, propagate_version = true)]
struct Cli {
    /// Configuration file (TOML).
    #[arg(long, short = 'c', global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Log filter (tracing env-filter syntax: `info`, `capture=debug`...).
    /// RUST_LOG is used when this is not given.
    #[arg(long, global = true, value_name = "FILTER")]
    log_level: Option<String>,
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show every SIP message AccuRate sees, one line each, from pcap/pcapng
    /// files, a live interface or HEP listeners.
    Sniff(sniff::SniffArgs),
    /// One CDR per call attempt from pcap/pcapng files (raw SIP, HEP
    /// copies, or both), in end-time order, with a summary on stderr.
    Replay(replay::ReplayArgs),
    /// Rate one call against a CGRateS tariff plan folder.
    Cost(cost::CostArgs),
    /// Run the server: CGRateS's JSON-RPC API over TCP and HTTP, until
    /// SIGINT or SIGTERM.
    Serve(serve::ServeArgs),
    /// Call a method of a running `accurate serve` and print the reply as
    /// JSON (the cgr-console role).
    Console(console::ConsoleArgs),
    /// Load a tariff plan folder (rating data, accounts, action plans,
    /// triggers) into a running `accurate serve` and print what it holds.
    Load(console::LoadArgs),
    /// Send the SIP messages of pcap/pcapng files to a HEP collector as
    /// HEPv3, at the capture's pace or faster, optionally stamped now and
    /// copied N times (load tests).
    SendHep(send_hep::SendHepArgs),
    /// Configuration file tools.
    #[command(subcommand)]
    Config(ConfigCommand),
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Validate a configuration file; exits 78 and names the key on error.
    Check {
        /// The file to check.
        file: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Logging starts before the config is read, so config errors are logged.
    init_logging(cli.log_level.as_deref(), cli.log_format);
    let result = match cli.command {
        Command::Sniff(args) => sniff::run(args, cli.config.as_deref()),
        Command::Replay(args) => replay::run(args, cli.config.as_deref()),
        Command::Cost(args) => cost::run(args, cli.config.as_deref()),
        Command::Serve(args) => serve::run(args, cli.config.as_deref()),
        Command::Console(args) => console::run(args),
        Command::Load(args) => console::run_load(args, cli.config.as_deref()),
        Command::SendHep(args) => send_hep::run(args, cli.config.as_deref()),
        Command::Config(ConfigCommand::Check { file }) => config_check(&file),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // A closed stdout (`accurate sniff ... | head`) is a normal end, as
        // for most Unix filters.
        Err(e) if exit::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            // Not eprintln!: it panics when stderr cannot be written.
            let _ = writeln!(io::stderr(), "accurate: error: {}", exit::message(&e));
            ExitCode::from(exit::code_for(&e))
        }
    }
}

fn init_logging(filter: Option<&str>, format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = match filter {
        Some(f) => EnvFilter::new(f),
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn config_check(file: &std::path::Path) -> anyhow::Result<()> {
    config::Config::load(file)?;
    let mut out = io::stdout().lock();
    writeln!(out, "{}: ok", file.display())
        .and_then(|()| out.flush())
        .map_err(exit::Failure::Output)?;
    Ok(())
}
