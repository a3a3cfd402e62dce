//! `palaver backup --out FILE`, `palaver backup --verify FILE` and
//! `palaver restore FILE --data-dir DIR [--force]`: the command-line face of
//! `palaver_server::backup`.
//!
//! All three read the configuration (file and `PALAVER_*`) for the at-rest key
//! (`[encryption]`): an encrypted data directory's backup is encrypted with its key, and
//! verifying or restoring it needs that key.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use palaver_server::Config;
use palaver_server::at_rest::AtRestKey;
use palaver_server::backup::{self, Manifest};
use palaver_server::config::{Flags, MediaBackend, StoreEngine};

/// `palaver backup`.
#[derive(Debug, clap::Args)]
pub struct BackupArgs {
    /// Write a backup of the data directory to FILE (replaced if it exists). The server
    /// may keep running and taking traffic.
    #[arg(
        long,
        value_name = "FILE",
        required_unless_present = "verify",
        conflicts_with = "verify"
    )]
    out: Option<PathBuf>,
    /// Check the backup FILE (manifest, hashes, database integrity, media) without
    /// restoring it.
    #[arg(long, value_name = "FILE")]
    verify: Option<PathBuf>,
    /// Data directory [default: the configuration's, ./data] (env PALAVER_DATA_DIR).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Print the manifest as JSON.
    #[arg(long)]
    json: bool,
}

/// `palaver restore`.
#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    /// The backup file.
    file: PathBuf,
    /// Where to restore; must be empty (or missing) unless --force. No server may run on it.
    #[arg(long)]
    data_dir: PathBuf,
    /// Replace the contents of a non-empty data directory (after the backup is verified).
    #[arg(long)]
    force: bool,
    /// Print the manifest as JSON.
    #[arg(long)]
    json: bool,
}

/// The configured at-rest key, if any.
fn configured_key(config: &Config) -> anyhow::Result<Option<AtRestKey>> {
    Ok(AtRestKey::from_config(&config.encryption)?)
}

/// Runs `palaver backup`.
pub async fn backup(config_file: Option<&Path>, args: BackupArgs) -> anyhow::Result<()> {
    if let Some(file) = &args.verify {
        let config = Config::load(config_file, Flags::default())?;
        let key = configured_key(&config)?;
        let manifest = backup::verify(file, key.as_ref())
            .await
            .with_context(|| format!("{} is not a usable backup", file.display()))?;
        return report(
            &format!("backup {} verified", file.display()),
            &manifest,
            args.json,
        );
    }
    let Some(out) = &args.out else {
        bail!("give --out FILE or --verify FILE");
    };
    let flags = Flags {
        data_dir: args.data_dir.clone(),
        ..Flags::default()
    };
    let config = Config::load(config_file, flags)?;
    if !matches!(config.store, StoreEngine::Sqlite) {
        bail!(
            "the store is PostgreSQL: back it up with pg_basebackup and WAL archiving (docs/DEPLOYMENT.md, \"Backups\")"
        );
    }
    if !matches!(config.media.backend, MediaBackend::Local) {
        bail!(
            "the media store is S3: back it up with the object store's own tools (docs/DEPLOYMENT.md, \"Backups\")"
        );
    }
    let key = configured_key(&config)?;
    let manifest = backup::create(&config.data_dir, out, key.as_ref())
        .await
        .with_context(|| format!("backing up {}", config.data_dir.display()))?;
    report(
        &format!("backup written to {}", out.display()),
        &manifest,
        args.json,
    )
}

/// Runs `palaver restore`.
pub async fn restore(config_file: Option<&Path>, args: RestoreArgs) -> anyhow::Result<()> {
    let flags = Flags {
        data_dir: Some(args.data_dir.clone()),
        ..Flags::default()
    };
    let key = configured_key(&Config::load(config_file, flags)?)?;
    let manifest = backup::restore(&args.file, &args.data_dir, args.force, key.as_ref())
        .await
        .with_context(|| {
            format!(
                "restoring {} into {}",
                args.file.display(),
                args.data_dir.display()
            )
        })?;
    report(
        &format!(
            "restored {} into {}",
            args.file.display(),
            args.data_dir.display()
        ),
        &manifest,
        args.json,
    )
}

fn report(what: &str, manifest: &Manifest, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(manifest)?);
    } else {
        println!(
            "{what}: taken {} by palaver {}, schema {}, {} files ({} media objects), {} bytes",
            manifest.created_at,
            manifest.server_version,
            manifest.schema_version,
            manifest.entries.len(),
            manifest.media_count(),
            manifest.total_size()
        );
    }
    Ok(())
}
