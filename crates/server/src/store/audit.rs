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
    pub at_ms: i64,
    pub actor: Option<Uuid>,
    pub action: String,
    pub target: Option<String>,
}

/// The audit log. Every method is one transaction.
#[async_trait]
pub trait AuditStore: Send + Sync + 'static {
    async fn audit(&self, entry: AuditEntry, now_ms: i64) -> StoreResult<()>;
    /// The newest audit entries, newest first, for operators and tests.
    async fn audit_tail(&self, limit: u32) -> StoreResult<Vec<AuditRecord>>;
}
