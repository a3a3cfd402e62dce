//! One person's data, for taking it out (export) and for deleting their account.

use async_trait::async_trait;
use palaver_proto::Message;
use uuid::Uuid;

use super::{MediaRow, StoreResult};

/// A reaction the user gave.
#[derive(Debug, Clone)]
pub struct OwnReaction {
    pub room_id: Uuid,
    pub message_id: Uuid,
    pub emoji: String,
    pub created_at_ms: i64,
}

/// What deleting an account ended, for the service to announce.
#[derive(Debug, Clone, Default)]
pub struct Tombstoned {
    /// The sessions that were live, now revoked.
    pub sessions: Vec<Uuid>,
}

/// One person's data. Every method is one transaction.
#[async_trait]
pub trait PersonalStore: Send + Sync + 'static {
    /// The messages `user` sent in `room` with `seq > after`, lowest seq first, at most
    /// `limit` (deleted ones included: their seq is history too).
    async fn messages_sent(
        &self,
        user: Uuid,
        room: Uuid,
        after: i64,
        limit: u32,
    ) -> StoreResult<Vec<Message>>;
    /// Ids of the messages `user` sent that are not deleted, after `after` (by id), at
    /// most `limit`.
    async fn live_messages_sent(
        &self,
        user: Uuid,
        after: Option<Uuid>,
        limit: u32,
    ) -> StoreResult<Vec<Uuid>>;
    /// Reactions `user` gave, after `after` (message id, emoji) in that order, at most `limit`.
    async fn reactions_given(
        &self,
        user: Uuid,
        after: Option<(Uuid, String)>,
        limit: u32,
    ) -> StoreResult<Vec<OwnReaction>>;
    /// Records of what `user` uploaded, after `after` (by id), at most `limit`.
    async fn uploads(
        &self,
        user: Uuid,
        after: Option<Uuid>,
        limit: u32,
    ) -> StoreResult<Vec<MediaRow>>;
    /// Strips the account: username `tombstone`, display name `display`, no password and
    /// no picture, stamped deleted; its sessions revoked (with their push subscriptions),
    /// its blocks both ways gone. `NotFound` if there is no such live user.
    async fn tombstone_user(
        &self,
        user: Uuid,
        tombstone: &str,
        display: &str,
        now_ms: i64,
    ) -> StoreResult<Tombstoned>;
    /// Deletes the records of `user`'s uploads that nothing references any more (no
    /// message, picture or preview), whatever their age; returns them, so their bytes can
    /// go when no other record shares them.
    async fn delete_unreferenced_uploads(&self, user: Uuid) -> StoreResult<Vec<MediaRow>>;
}
