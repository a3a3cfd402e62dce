//! `palaver`: the chat server binary.

mod cli;

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use palaver_server::config::Flags;
use palaver_server::{Application, Config, telemetry};

#[derive(Parser)]
#[command(name = "palaver", version, about = "Palaver chat server")]
struct Cli {
    /// TOML configuration file (env PALAVER_CONFIG).
    #[arg(long, global = true, env = "PALAVER_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve(Flags),
    /// Print the effective configuration (defaults, file, environment, flags) as TOML.
    Config(Flags),
    /// Back up the data directory while the server runs, or verify a backup.
    Backup(cli::backup::BackupArgs),
    /// Restore a backup into a data directory.
    Restore(cli::backup::RestoreArgs),
    /// Move the data directory to a new at-rest key, or encrypt it (server stopped).
    Rekey(cli::rekey::RekeyArgs),
    /// The terminal client: chat, login, logout, rooms, send, tail, upload.
    #[command(flatten)]
    Terminal(cli::terminal::Command),
    /// Administer the server: accounts, rooms, the audit log (docs/OPERATIONS.md).
    Admin(cli::admin::AdminArgs),
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Backup(args) => cli::backup::backup(cli.config.as_deref(), args).await,
        Command::Restore(args) => cli::backup::restore(cli.config.as_deref(), args).await,
        Command::Rekey(args) => {
            telemetry::init(palaver_server::config::LogFormat::Text);
            cli::rekey::run(cli.config.as_deref(), args).await
        }
        Command::Terminal(command) => cli::terminal::run(command).await,
        Command::Admin(args) => cli::admin::run(cli.config.as_deref(), args).await,
        Command::Config(flags) => {
            let config = Config::load(cli.config.as_deref(), flags)?;
            // The configuration knows no engine; the outbound allow-lists are the SSRF
            // guard's to read, here as at start-up, so `palaver config` refuses what
            // `serve` would.
            palaver_server::outbound::AllowList::parse(&config.push.outbound_allow)
                .map_err(|e| anyhow::anyhow!("invalid configuration: push: {e}"))?;
            palaver_server::outbound::AllowList::parse(&config.link_previews.outbound_allow)
                .map_err(|e| anyhow::anyhow!("invalid configuration: link_previews: {e}"))?;
            print!("{}", toml_string(&config.redacted())?);
            Ok(())
        }
        Command::Serve(flags) => {
            let config = Config::load(cli.config.as_deref(), flags)?;
            telemetry::init(config.log_format);
            // Every connection is a file descriptor; the default soft limit (1024) is far
            // too low for a chat server.
            const WANT: u64 = 1 << 20;
            let raised = rlimit::setrlimit(rlimit::Resource::NOFILE, WANT, WANT).map(|_| WANT);
            match raised.or_else(|_| rlimit::increase_nofile_limit(u64::MAX)) {
                Ok(n) => tracing::info!(limit = n, "open-file limit"),
                Err(err) => tracing::warn!(%err, "could not raise the open-file limit"),
            }
            let app = Application::build(config)
                .await
                .context("starting palaver")?;
            app.run_until_stopped(shutdown_signal())
                .await
                .context("running palaver")?;
            Ok(())
        }
    }
}

fn toml_string(config: &Config) -> anyhow::Result<String> {
    Ok(toml::to_string_pretty(config)?)
}
