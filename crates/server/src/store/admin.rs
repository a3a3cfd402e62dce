//! Server administration: accounts as administrators see them (role, disabled), every
//! session of an account at once, and rooms whoever is in them.

use async_trait::async_trait;
use palaver_proto::User;
use uuid::Uuid;

use super::StoreResult;

/// An account with what only administrators see.
#[derive(Debug, Clone, PartialEq)]
pub struct Account {
    pub user: User,
    pub is_admin: bool,
    /// When it was disabled; `None` while it may log in.
    pub disabled_at_ms: Option<i64>,
}

/// Which accounts to list, in username order.
#[derive(Debug, Clone, Default)]
pub struct AccountFilter {
    /// Usernames starting with this (lowercase).
    pub prefix: Option<String>,
    /// Only disabled (true) or only enabled (false) accounts.
    pub disabled: Option<bool>,
    /// Usernames after this one (the last of the previous page).
    pub after: Option<String>,
    pub limit: u32,
}

/// A room as administrators see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminRoomRow {
    pub id: Uuid,
    pub name: String,
    pub is_group: bool,
    pub member_count: i64,
    pub created_at_ms: i64,
    pub deleted_at_ms: Option<i64>,
}

/// Server administration. Every method is one transaction.
#[async_trait]
pub trait AdminStore: Send + Sync + 'static {
    async fn account(&self, id: Uuid) -> StoreResult<Option<Account>>;
    async fn account_named(&self, username: &str) -> StoreResult<Option<Account>>;
    async fn accounts(&self, filter: &AccountFilter) -> StoreResult<Vec<Account>>;
    /// Promotes or demotes. `Conflict(LastAdmin)` when it would leave no enabled
    /// administrator; `NotFound` if there is no such user.
    async fn set_admin(&self, id: Uuid, admin: bool) -> StoreResult<()>;
    /// Disables the account at `at_ms` (ending its live sessions in the same transaction,
    /// returned so their tokens and sockets can be ended everywhere), or enables it
    /// (`None`, no session ended). `Conflict(LastAdmin)` when disabling the last enabled
    /// administrator; `NotFound` if there is no such user.
    async fn set_disabled(&self, id: Uuid, at_ms: Option<i64>) -> StoreResult<Vec<Uuid>>;
    /// Ends every live session of the account; returns them.
    async fn end_user_sessions(&self, id: Uuid, now_ms: i64) -> StoreResult<Vec<Uuid>>;
    /// `NotFound` if there is no such user.
    async fn set_password_hash(&self, id: Uuid, hash: &str) -> StoreResult<()>;
    /// Every room, oldest first, after `after`.
    async fn admin_rooms(&self, after: Option<Uuid>, limit: u32) -> StoreResult<Vec<AdminRoomRow>>;
    async fn admin_room(&self, id: Uuid) -> StoreResult<Option<AdminRoomRow>>;
    /// Marks a room deleted (its members are removed by the caller first) and frees its
    /// 1:1 pair for a new room. `NotFound` if there is no such room.
    async fn close_room(&self, id: Uuid, at_ms: i64) -> StoreResult<()>;
}
