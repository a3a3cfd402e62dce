//! `palaver`: the chat server binary.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
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
    Serve(ServeArgs),
    /// Print the effective configuration (defaults, file, environment, flags) as TOML.
    Config(ServeArgs),
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:8080] (env PALAVER_LISTEN).
    #[arg(long)]
    listen: Option<std::net::SocketAddr>,
    /// Data directory [default: ./data] (env PALAVER_DATA_DIR).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// PEM certificate chain, to serve HTTPS/WSS directly (env PALAVER_TLS_CERT).
    #[arg(long)]
    tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert (env PALAVER_TLS_KEY).
    #[arg(long)]
    tls_key: Option<PathBuf>,
    /// Durable store: `sqlite` or a `postgres://` URL [default: sqlite] (env PALAVER_STORE).
    #[arg(long)]
    store: Option<String>,
    /// Event bus between nodes: `memory` or a `nats://` URL [default: memory] (env PALAVER_BUS).
    #[arg(long)]
    bus: Option<String>,
    /// Shared cache: `memory` or a `redis://` URL [default: memory] (env PALAVER_CACHE).
    #[arg(long)]
    cache: Option<String>,
}

fn effective(cli_config: Option<&std::path::Path>, args: ServeArgs) -> anyhow::Result<Config> {
    let mut config = Config::load(cli_config)?;
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if let Some(dir) = args.data_dir {
        config.data_dir = dir;
    }
    if args.tls_cert.is_some() {
        config.tls_cert = args.tls_cert;
    }
    if args.tls_key.is_some() {
        config.tls_key = args.tls_key;
    }
    if let Some(store) = args.store {
        config.store = store;
    }
    if let Some(bus) = args.bus {
        config.bus = bus;
    }
    if let Some(cache) = args.cache {
        config.cache = cache;
    }
    config.check()?;
    // The configuration knows no engine; the outbound allow-list is the push guard's to
    // read, here as at start-up, so `palaver config` refuses what `serve` would.
    palaver_server::push::guard::AllowList::parse(&config.push.outbound_allow)
        .map_err(|e| anyhow::anyhow!("invalid configuration: push: {e}"))?;
    Ok(config)
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
        Command::Config(args) => {
            let config = effective(cli.config.as_deref(), args)?;
            print!("{}", toml_string(&config.redacted())?);
            Ok(())
        }
        Command::Serve(args) => {
            let config = effective(cli.config.as_deref(), args)?;
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
