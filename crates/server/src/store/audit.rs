//! The audit log: security-relevant events, append-only.

use async_trait::async_trait;
use uuid::Uuid;

use super::StoreResult;

/// One security-relevant event for the audit log.
#[derive(Debug, Clone)]
pub struct AuditEntry {
    pub actor: Option<Uuid>,
    pub action: &'static str,
    pub target: Option<String>,
    pub detail: Option<String>,
}

/// A stored audit entry, as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// Increases with every entry.
    pub id: i64,
    pub at_ms: i64,
    pub actor: Option<Uuid>,
    pub action: String,
    pub target: Option<String>,
    pub detail: Option<String>,
}

/// Which entries to read: every filter given must match. The default reads the newest.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub actor: Option<Uuid>,
    /// The action, exactly.
    pub action: Option<String>,
    /// The target, exactly.
    pub target: Option<String>,
    /// At or after this instant.
    pub since_ms: Option<i64>,
    /// Before this instant.
    pub until_ms: Option<i64>,
    /// Older than this entry (the id of the last one of the previous page).
    pub before_id: Option<i64>,
    /// At most this many; 0 reads none.
    pub limit: u32,
}

/// The audit log. Every method is one transaction.
#[async_trait]
pub trait AuditStore: Send + Sync + 'static {
    async fn audit(&self, entry: AuditEntry, now_ms: i64) -> StoreResult<()>;
    /// The entries `filter` matches, newest first.
    async fn audit_log(&self, filter: &AuditFilter) -> StoreResult<Vec<AuditRecord>>;
}
