//! The `berth` command: parses the command line, then launches the service
//! or runs a one-off task.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use berth::domain::os_template::TemplateFormat;
use berth::os_templates::OsTemplateStore;
use berth::{app, config, db, domain, driver, error, events, jobs, logging, service};

/// berth: a host agent for LXC system containers, with a JSON API, a web
/// console and a persistent job runner in one process.
///
/// Configuration comes from Rocket.toml (or the file in ROCKET_CONFIG),
/// ROCKET_* variables, and berth's own [default.berth] table or BERTH_*
/// variables (BERTH_DATA_DIR, BERTH_TEMPLATE_DIR, BERTH_LXC_PATH, …).
#[derive(Parser)]
#[command(version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service: API, console and job runner on 127.0.0.1:5000
    /// unless the configuration says otherwise.
    Serve,
    /// Manage OS templates.
    #[command(subcommand)]
    Template(TemplateCommand),
    /// Manage API tokens (used when auth = "token").
    #[command(subcommand)]
    Token(TokenCommand),
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create a token and print it once; only its digest is stored.
    Create {
        /// A name for who will use it, e.g. "billing".
        name: String,
    },
    /// List tokens by name, with when they were created and last used.
    List,
    /// Revoke a token: requests carrying it are refused from now on.
    Revoke { name: String },
}

#[derive(Subcommand)]
enum TemplateCommand {
    /// Copy template archives (<name>.tar.gz, .tar.xz, .tar.zst or .tar)
    /// into the template directory; a directory imports every archive in it.
    Import {
        /// Archive files or directories holding them.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Replace a template of the same name instead of refusing.
        #[arg(long)]
        replace: bool,
    },
}

#[rocket::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve => serve().await,
        Command::Template(TemplateCommand::Import { paths, replace }) => {
            import_templates(&paths, replace)
        }
        Command::Token(command) => manage_tokens(command).await,
    }
}

async fn serve() -> ExitCode {
    let figment = config::figment();
    logging::init(&figment);
    let rocket = match app::build(figment).await {
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

async fn manage_tokens(command: TokenCommand) -> ExitCode {
    let service = match offline_service().await {
        Ok(service) => service,
        Err(error) => {
            eprintln!("berth: {error}");
            return ExitCode::FAILURE;
        }
    };
    let done = match command {
        TokenCommand::Create { name } => service.create_token(&name).await.map(|token| {
            // The token is the last word, for scripts: `berth token create x | awk '{print $NF}'`.
            println!("created token '{name}'; it is shown only now, store it safely: {token}");
        }),
        TokenCommand::List => service.tokens().await.map(|tokens| {
            for token in tokens {
                let last_used = token
                    .last_used_at
                    .map_or("never".into(), |t| domain::time::format(&t));
                println!(
                    "{}\tcreated {}\tlast used {last_used}",
                    token.name,
                    domain::time::format(&token.created_at)
                );
            }
        }),
        TokenCommand::Revoke { name } => service
            .revoke_token(&name)
            .await
            .map(|()| println!("revoked token '{name}'")),
    };
    match done {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("berth: {}", error::ApiError::from(error));
            ExitCode::FAILURE
        }
    }
}

/// The service over berth's database, for commands run beside the server.
async fn offline_service() -> Result<service::Service, app::StartupError> {
    let settings = config::Settings::from_figment(&config::figment())?.resolve()?;
    let db = db::Db::open(&settings.database_url).await?;
    Ok(service::Service::new(
        db,
        OsTemplateStore::new(settings.template_dir),
        jobs::JobQueue::new(),
        events::EventBus::new(),
        driver::host::HostProbe::new(settings.lxc_path, settings.allow_disk_overcommit),
        // Token commands neither place containers nor beat.
        service::ThisNode {
            name: settings.node_name,
            host_id: settings.host_id,
            api_url: settings.api_url.unwrap_or_default(),
            timeout_secs: settings.node_timeout_secs,
            moves_containers: settings.cluster_secret.is_some(),
        },
    ))
}

fn import_templates(paths: &[PathBuf], replace: bool) -> ExitCode {
    let settings =
        match config::Settings::from_figment(&config::figment()).and_then(|s| s.resolve()) {
            Ok(settings) => settings,
            Err(error) => {
                eprintln!("berth: {error}");
                return ExitCode::FAILURE;
            }
        };
    let store = OsTemplateStore::new(settings.template_dir);
    let mut failed = false;
    for path in paths {
        let files = if path.is_dir() {
            archives_in(path)
        } else {
            Ok(vec![path.clone()])
        };
        match files {
            Ok(files) => {
                for file in files {
                    match import_one(&store, &file, replace) {
                        Ok(name) => println!("imported {name} from {}", file.display()),
                        Err(error) => {
                            eprintln!("berth: {}: {error}", file.display());
                            failed = true;
                        }
                    }
                }
            }
            Err(error) => {
                eprintln!("berth: {}: {error}", path.display());
                failed = true;
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// The template archives directly inside `dir`.
fn archives_in(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let is_archive = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| TemplateFormat::split_file_name(n).is_some());
        if is_archive && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Copies one archive in under its own file name, atomically.
fn import_one(store: &OsTemplateStore, file: &Path, replace: bool) -> Result<String, String> {
    let file_name = file
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| "the file name is not valid UTF-8".to_owned())?;
    let staging = store.staging_path();
    if let Err(error) = std::fs::copy(file, &staging) {
        let _ = std::fs::remove_file(&staging);
        return Err(error.to_string());
    }
    store
        .install(&staging, file_name, replace)
        .map(|info| info.name)
        .map_err(|e| e.to_string())
}
