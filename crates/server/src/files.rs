//! Files and directories only the server's user may read: secrets, keys, the database,
//! uploads. At the bottom of the crate (it uses nothing of ours), so any layer that keeps
//! something on disk makes it private the same way.

use std::path::Path;

/// Writes a file only its owner may read (mode 0600): secrets and private keys.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(bytes)
}

/// Creates the file 0600 if it is missing, and leaves it as it is otherwise (SQLite gives
/// its `-wal` and `-shm` files the database file's mode).
pub fn create_private_file(path: &Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path).map(drop)
}

/// Creates `dir` and its missing parents, 0700.
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Creates a new file only the server's user may read (0600), for writing.
pub async fn create_private(path: &Path) -> std::io::Result<tokio::fs::File> {
    let mut options = tokio::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    options.open(path).await
}

/// The size of a file system and what of it the server may still fill.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskSpace {
    /// Bytes free for an unprivileged writer (what the server can use).
    pub free: u64,
    /// Bytes in the whole file system.
    pub size: u64,
}

/// The file system that holds `dir` (statvfs). Blocking: call it off the runtime.
pub fn disk_space(dir: &Path) -> std::io::Result<DiskSpace> {
    let stat = rustix::fs::statvfs(dir)?;
    Ok(DiskSpace {
        free: stat.f_bavail.saturating_mul(stat.f_frsize),
        size: stat.f_blocks.saturating_mul(stat.f_frsize),
    })
}
