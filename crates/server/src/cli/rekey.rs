//! `palaver rekey --new-key-file FILE [--data-dir DIR]`: the command-line face of
//! `palaver_server::rekey`. The old key is the configured one (`[encryption]`; none to
//! encrypt a data directory for the first time); the new one is read from FILE, which
//! must lie outside the data directory like any key file.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use palaver_server::Config;
use palaver_server::at_rest::AtRestKey;
use palaver_server::config::{Flags, MediaBackend, StoreEngine};

/// `palaver rekey`.
#[derive(Debug, clap::Args)]
pub struct RekeyArgs {
    /// The new key: a file of 64 hexadecimal characters (`openssl rand -hex 32`), outside
    /// the data directory.
    #[arg(long, value_name = "FILE")]
    new_key_file: PathBuf,
    /// Data directory [default: the configuration's, ./data] (env PALAVER_DATA_DIR).
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

/// Runs `palaver rekey`.
pub async fn run(config_file: Option<&Path>, args: RekeyArgs) -> anyhow::Result<()> {
    let flags = Flags {
        data_dir: args.data_dir.clone(),
        ..Flags::default()
    };
    let mut config = Config::load(config_file, flags)?;
    if !matches!(config.store, StoreEngine::Sqlite) {
        bail!(
            "the store is PostgreSQL: its encryption at rest is the volume's (docs/DEPLOYMENT.md, \"Encryption at rest\")"
        );
    }
    if !matches!(config.media.backend, MediaBackend::Local) {
        bail!(
            "the media store is S3: its encryption at rest is the bucket's (docs/DEPLOYMENT.md, \"Encryption at rest\")"
        );
    }
    // The new key file obeys the rule the configured one does.
    let old_file = config.encryption.key_file.take();
    let old_key = config.encryption.key.take();
    config.encryption.key_file = Some(args.new_key_file.clone());
    config.check().context("--new-key-file")?;
    config.encryption.key_file = old_file;
    config.encryption.key = old_key;
    let old = AtRestKey::from_config(&config.encryption)?;
    let new = AtRestKey::read_file(&args.new_key_file)?;
    let report = palaver_server::rekey::rekey(&config.data_dir, old.as_ref(), &new)
        .await
        .with_context(|| {
            format!(
                "rekeying {} (nothing is lost: run the same command again to carry on)",
                config.data_dir.display()
            )
        })?;
    let from = old.map_or("none (not encrypted)".to_owned(), |k| k.id().to_string());
    println!(
        "rekeyed {} from key {from} to key {}: database {}, media objects {} resealed, {} already were",
        config.data_dir.display(),
        new.id(),
        if report.database_changed {
            "rekeyed"
        } else {
            "already had the new key"
        },
        report.media_resealed,
        report.media_already
    );
    println!(
        "now set encryption.key_file to {} (and drop previous_key_file) before starting the server",
        args.new_key_file.display()
    );
    Ok(())
}
