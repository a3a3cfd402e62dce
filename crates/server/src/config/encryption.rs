//! `[encryption]`: encryption at rest of the embedded engines, the SQLite database and
//! media on local disk (docs/CONFIGURATION.md, "Encryption at rest"; docs/DEPLOYMENT.md).
//!
//! The key is read from a file or given in the environment, never kept beside the data it
//! protects: a key file inside the data directory is refused. Reading and using the key is
//! `at_rest`'s; this only says where it comes from.

use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// Where the at-rest key comes from. Neither set (default): nothing is encrypted.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EncryptionConfig {
    /// A file holding the key: 64 hexadecimal characters (32 bytes), surrounding white
    /// space ignored. Must lie outside `data_dir`. Default none.
    pub key_file: Option<PathBuf>,
    /// The key itself, in the same form, for `PALAVER_ENCRYPTION__KEY`. Printed as
    /// `<redacted>`. Default none.
    pub key: Option<String>,
    /// During a key rotation (`palaver rekey`): the previous key's file, so media objects
    /// not yet sealed with the new key still open. Outside `data_dir` too. Default none.
    pub previous_key_file: Option<PathBuf>,
}

impl EncryptionConfig {
    /// Whether a key is configured.
    pub fn enabled(&self) -> bool {
        self.key_file.is_some() || self.key.is_some()
    }

    /// With the key blanked, for printing.
    pub fn redacted(&self) -> EncryptionConfig {
        EncryptionConfig {
            key_file: self.key_file.clone(),
            key: self.key.as_ref().map(|_| "<redacted>".into()),
            previous_key_file: self.previous_key_file.clone(),
        }
    }

    /// One source at most, and a key file outside the data directory.
    pub(super) fn check(&self, data_dir: &Path) -> Result<(), ConfigError> {
        let rule = |m: String| Err(ConfigError::Rule(format!("encryption: {m}")));
        if self.key_file.is_some() && self.key.is_some() {
            return rule("give key_file or key, not both".into());
        }
        if self.previous_key_file.is_some() && !self.enabled() {
            return rule("previous_key_file needs key_file or key (the new key)".into());
        }
        for (name, file) in [
            ("key_file", &self.key_file),
            ("previous_key_file", &self.previous_key_file),
        ] {
            if let Some(file) = file
                && inside(file, data_dir)
            {
                return rule(format!(
                    "{name} {} is inside data_dir {}: keep the key apart from the data it \
                     protects (another disk, a secrets mount, or PALAVER_ENCRYPTION__KEY)",
                    file.display(),
                    data_dir.display()
                ));
            }
        }
        Ok(())
    }
}

/// Whether `file` is `dir` or under it. Both are made absolute and, where they exist,
/// have their symbolic links resolved, so `./data/../data/key` and a link into the data
/// directory are caught too.
fn inside(file: &Path, dir: &Path) -> bool {
    let file = resolved(file);
    let dir = resolved(dir);
    file.starts_with(&dir)
}

/// `path` absolute, its `.` and `..` removed, and its longest existing ancestor
/// canonicalized (which resolves links).
fn resolved(path: &Path) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    let mut clean = PathBuf::new();
    for part in absolute.components() {
        match part {
            Component::ParentDir => {
                clean.pop();
            }
            Component::CurDir => {}
            other => clean.push(other),
        }
    }
    let mut existing = clean.as_path();
    let mut rest = Vec::new();
    loop {
        if let Ok(real) = existing.canonicalize() {
            let mut out = real;
            out.extend(rest.iter().rev());
            return out;
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_owned());
                existing = parent;
            }
            _ => return clean,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_file(file: &Path) -> EncryptionConfig {
        EncryptionConfig {
            key_file: Some(file.to_owned()),
            ..EncryptionConfig::default()
        }
    }

    #[test]
    fn a_key_file_inside_the_data_directory_is_refused() {
        let root = tempfile::tempdir().expect("tempdir");
        let data = root.path().join("data");
        std::fs::create_dir(&data).expect("mkdir");
        let outside = root.path().join("keys").join("at-rest.key");
        assert!(with_file(&outside).check(&data).is_ok());
        for under in [
            data.join("at-rest.key"),
            data.join("media").join("k"),
            data.join("..").join("data").join("k"),
            data.clone(),
        ] {
            assert!(with_file(&under).check(&data).is_err(), "{under:?}");
        }
        // Through a link to the data directory.
        #[cfg(unix)]
        {
            let link = root.path().join("link");
            std::os::unix::fs::symlink(&data, &link).expect("symlink");
            assert!(with_file(&link.join("k")).check(&data).is_err());
        }
        // A sibling whose name starts with the data directory's is outside.
        assert!(
            with_file(&root.path().join("data2").join("k"))
                .check(&data)
                .is_ok()
        );
    }

    #[test]
    fn one_source_at_most() {
        let both = EncryptionConfig {
            key_file: Some("/etc/palaver/key".into()),
            key: Some("00".repeat(32)),
            previous_key_file: None,
        };
        assert!(both.check(Path::new("/var/lib/palaver")).is_err());
        assert_eq!(both.redacted().key.as_deref(), Some("<redacted>"));
    }
}
