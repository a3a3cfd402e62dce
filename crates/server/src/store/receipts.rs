//! Receipts: each member's delivered and read markers, and the room-wide summary.

use async_trait::async_trait;
use uuid::Uuid;

use super::StoreResult;

/// A pair of receipt watermarks: everything up to `delivered_seq` is delivered, everything
/// up to `read_seq` read. A member's own markers, or a room's summary (the lowest of its
/// members' markers, 0 for a room without members).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Markers {
    pub delivered_seq: i64,
    pub read_seq: i64,
}

/// What moving a member's markers did, with the room's summary before and after.
#[derive(Debug, Clone, Copy)]
pub struct MarkerMove {
    /// The member's markers now.
    pub markers: Markers,
    /// Whether this call moved either of them.
    pub moved: bool,
    pub summary_before: Markers,
    pub summary_after: Markers,
}

/// Receipt markers. Every method is one transaction.
#[async_trait]
pub trait ReceiptStore: Send + Sync + 'static {
    /// Moves each of a member's markers up towards its value in `to`, clamped to the
    /// room's last seq; a marker never moves back (a target of 0 leaves it as it is).
    /// `None` if the room does not exist or the user is not a member.
    async fn advance_markers(
        &self,
        room: Uuid,
        user: Uuid,
        to: Markers,
    ) -> StoreResult<Option<MarkerMove>>;
    /// The room's summary: the lowest delivered and read markers over its members.
    async fn summary(&self, room: Uuid) -> StoreResult<Markers>;
}
