//! Moderation: reports of messages for the server's administrators, and the mutes and
//! bans of a group's owners and admins.

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

/// A mute in force: `user` may not send to `room` until `until_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MuteRow {
    pub room_id: Uuid,
    pub user_id: Uuid,
    pub until_ms: i64,
}

/// A ban: `user` cannot be in `room` until unbanned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BanRow {
    pub user_id: Uuid,
    pub banned_by: Uuid,
    pub created_at_ms: i64,
}

/// Mutes and bans in rooms. Every method is one transaction.
#[async_trait]
pub trait SanctionStore: Send + Sync + 'static {
    /// Mutes a member until `until_ms`, or lifts it (`None`); false if not a member.
    async fn set_mute(&self, room: Uuid, user: Uuid, until_ms: Option<i64>) -> StoreResult<bool>;
    /// Every mute still in force at `now_ms`, to load at start-up.
    async fn mutes_in_force(&self, now_ms: i64) -> StoreResult<Vec<MuteRow>>;
    /// Bans (again: the first ban's record stays).
    async fn ban(&self, room: Uuid, user: Uuid, by: Uuid, at_ms: i64) -> StoreResult<()>;
    /// Lifts a ban; false if there was none.
    async fn unban(&self, room: Uuid, user: Uuid) -> StoreResult<bool>;
    /// The room's bans, oldest first.
    async fn bans(&self, room: Uuid) -> StoreResult<Vec<BanRow>>;
    /// Which of `users` are banned from the room.
    async fn banned_among(&self, room: Uuid, users: &[Uuid]) -> StoreResult<Vec<Uuid>>;
}
