//! Receipts: each member's delivered and read markers, and the room-wide summary.

use async_trait::async_trait;
use palaver_proto::ReceiptKind;
use uuid::Uuid;

use super::StoreResult;

/// A receipt marker that moved, with the room-wide minimums before and after.
#[derive(Debug, Clone, Copy)]
pub struct MarkerMove {
    /// The marker's value now (it never moves back, and never past the room's last seq).
    pub seq: i64,
    /// Whether this call moved it.
    pub moved: bool,
    /// (min delivered, min read) over all members, before and after.
    pub summary_before: (i64, i64),
    pub summary_after: (i64, i64),
}

/// Receipt markers. Every method is one transaction.
#[async_trait]
pub trait ReceiptStore: Send + Sync + 'static {
    /// Moves a member's marker forward to `seq` (clamped to the room's last seq).
    async fn advance_marker(
        &self,
        room: Uuid,
        user: Uuid,
        kind: ReceiptKind,
        seq: i64,
    ) -> StoreResult<Option<MarkerMove>>;
    /// (min delivered, min read) over the room's members.
    async fn summary(&self, room: Uuid) -> StoreResult<(i64, i64)>;
}
