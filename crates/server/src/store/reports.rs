//! Reports of messages, for the server's administrators (moderation).

use async_trait::async_trait;
use uuid::Uuid;

use super::StoreResult;

/// A report as stored; `status` is `open`, `resolved` or `dismissed`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportRow {
    pub id: Uuid,
    pub message_id: Uuid,
    pub room_id: Uuid,
    pub reporter_id: Uuid,
    pub reason: String,
    pub created_at_ms: i64,
    pub status: String,
    pub closed_by: Option<Uuid>,
    pub closed_at_ms: Option<i64>,
}

/// Reports. Every method is one transaction.
#[async_trait]
pub trait ReportStore: Send + Sync + 'static {
    /// Stores an open report; `Conflict(OpenReport)` if the reporter has one open on the
    /// message already.
    async fn create_report(&self, report: &ReportRow) -> StoreResult<()>;
    async fn report(&self, id: Uuid) -> StoreResult<Option<ReportRow>>;
    /// Newest first, older than `before`, in `status` if given.
    async fn reports(
        &self,
        status: Option<&str>,
        before: Option<Uuid>,
        limit: u32,
    ) -> StoreResult<Vec<ReportRow>>;
    /// Closes an open report as `status` (resolved or dismissed). `NotFound(Report)` if
    /// there is no such report; false if it was not open.
    async fn close_report(
        &self,
        id: Uuid,
        status: &str,
        by: Option<Uuid>,
        at_ms: i64,
    ) -> StoreResult<bool>;
}
