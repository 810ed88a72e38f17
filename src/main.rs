//! The `berth` command: parses the command line and launches the service.

mod api;
mod app;
mod config;
mod console;
mod db;
mod domain;
mod driver;
mod error;
mod events;
mod jobs;
mod service;
mod templates;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// berth: a host agent for LXC system containers, with a JSON API, a web
/// console and a persistent job runner in one process.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service: API and job runner on 127.0.0.1:5000 unless
    /// Rocket.toml, ROCKET_* or BERTH_* settings say otherwise.
    Serve,
}

#[rocket::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve => serve().await,
    }
}

async fn serve() -> ExitCode {
    let rocket = match app::build(config::figment()).await {
        Ok(rocket) => rocket,
        Err(error) => {
            eprintln!("berth: {error}");
            return ExitCode::FAILURE;
        }
    };
    match rocket.launch().await {
        Ok(_) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("berth: {error}");
            ExitCode::FAILURE
        }
    }
}
