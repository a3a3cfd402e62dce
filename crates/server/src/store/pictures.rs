//! Profile pictures and group pictures: which media record a user or a room shows. The
//! record (and so its bytes) stays while it is named here: the orphan sweep skips it.

use std::collections::HashMap;

use async_trait::async_trait;
use uuid::Uuid;

use super::StoreResult;

/// A picture as stored: the media record it shows, and whether that record has a
/// thumbnail (what is shown when it has one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Picture {
    pub media_id: Uuid,
    pub thumbnail: bool,
}

/// Pictures of users and rooms. Every method is one transaction.
#[async_trait]
pub trait PictureStore: Send + Sync + 'static {
    /// Sets (or with `None` clears) the user's avatar; returns the one it replaced.
    /// `NotFound` if there is no such user.
    async fn set_avatar(&self, user: Uuid, media: Option<Uuid>) -> StoreResult<Option<Uuid>>;
    /// The avatars of these users, by user id; users without one are left out.
    async fn avatars(&self, users: &[Uuid]) -> StoreResult<HashMap<Uuid, Picture>>;
    /// Sets (or with `None` clears) the room's picture; returns the one it replaced.
    /// `NotFound` if there is no such room.
    async fn set_room_picture(&self, room: Uuid, media: Option<Uuid>) -> StoreResult<Option<Uuid>>;
}
