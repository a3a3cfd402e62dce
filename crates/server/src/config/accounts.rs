//! `[accounts]`: what happens to an account's data when its owner deletes it, and the
//! bounds of taking it out (docs/CONFIGURATION.md, "Accounts").

use serde::{Deserialize, Serialize};

/// `[accounts]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AccountsConfig {
    /// What a deleted account's messages become: `keep` (default: they stay, shown as
    /// from "Deleted user") or `erase` (their content goes, each seq stays as a deleted
    /// message, so rooms keep their gap-free order).
    pub deletion: DeletionPolicy,
    /// Exports this node builds at once; a request past it is answered 429 with
    /// `Retry-After`. Default 2.
    pub max_concurrent_exports: usize,
}

/// `accounts.deletion`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeletionPolicy {
    /// Messages stay, from "Deleted user".
    #[default]
    Keep,
    /// Messages are deleted (content blanked, seq kept).
    Erase,
}

impl Default for AccountsConfig {
    fn default() -> Self {
        Self {
            deletion: DeletionPolicy::Keep,
            max_concurrent_exports: 2,
        }
    }
}
