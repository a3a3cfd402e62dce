//! Rooms and their members.

use async_trait::async_trait;
use palaver_proto::{MemberState, NotificationLevel, Role};
use uuid::Uuid;

use super::{Picture, StoreResult};

/// A room's own row, without its members.
#[derive(Debug, Clone)]
pub struct RoomRow {
    pub id: Uuid,
    pub name: String,
    pub is_group: bool,
    /// For a 1:1 room, its pair: `"smaller-uuid:larger-uuid"`.
    pub direct_key: Option<String>,
    pub created_at_ms: i64,
    pub last_seq: i64,
    pub last_activity_ms: i64,
    /// The room's change number (store/conversation.rs).
    pub version: i64,
    /// The change number of the last change of its name, picture or members.
    pub state_version: i64,
    /// A group's picture, if it has one.
    pub picture: Option<Picture>,
    /// End-to-end encrypted: its MLS group's current epoch. `None`: a plain room.
    pub mls_epoch: Option<u64>,
}

/// A member of a room with their names and receipt markers.
#[derive(Debug, Clone)]
pub struct MemberRow {
    pub room_id: Uuid,
    pub user_id: Uuid,
    pub username: String,
    pub display_name: String,
    pub role: Role,
    pub joined_at_ms: i64,
    pub delivered_seq: i64,
    pub read_seq: i64,
    pub state: MemberState,
    /// Who asked them in, if they were invited (kept after they accept).
    pub invited_by: Option<Uuid>,
    /// The room's change number when their markers last moved.
    pub receipt_version: i64,
    /// Their profile picture, if they have one.
    pub avatar: Option<Picture>,
}

/// A room as seen by one member: its row, that member's read marker and unread count.
#[derive(Debug, Clone)]
pub struct MyRoomRow {
    pub room: RoomRow,
    pub read_seq: i64,
    pub unread: i64,
    /// Unread messages that mention the member (or `@room`).
    pub mentions: i64,
    pub notification_level: NotificationLevel,
}

/// A member to add: joined at once, or invited by someone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewMember {
    pub user_id: Uuid,
    pub role: Role,
    /// `Some(inviter)`: the member is `invited` until they accept; `None`: `joined`.
    pub invited_by: Option<Uuid>,
}

impl NewMember {
    /// Someone who joins at once.
    pub fn joined(user_id: Uuid, role: Role) -> NewMember {
        NewMember {
            user_id,
            role,
            invited_by: None,
        }
    }
}

/// One membership as the routing table needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MembershipRow {
    pub room_id: Uuid,
    pub user_id: Uuid,
    pub state: MemberState,
    /// The room is a 1:1 room.
    pub direct: bool,
}

/// A new room with its first members.
#[derive(Debug, Clone)]
pub struct NewRoom {
    pub id: Uuid,
    pub name: String,
    pub is_group: bool,
    /// Set for 1:1 rooms: the pair's key, unique across rooms.
    pub direct_key: Option<String>,
    pub members: Vec<NewMember>,
    /// End-to-end encrypted (its MLS group starts at epoch 0).
    pub encrypted: bool,
    pub now_ms: i64,
}

/// Rooms and membership. Every method is one transaction.
#[async_trait]
pub trait RoomStore: Send + Sync + 'static {
    /// Creates a room, or for a 1:1 room whose pair already has one returns that
    /// room's id and `false`.
    async fn create_room(&self, room: &NewRoom) -> StoreResult<(Uuid, bool)>;
    async fn room(&self, id: Uuid) -> StoreResult<Option<RoomRow>>;
    /// The user's rooms (or just `only`, if given), most recently active first.
    async fn rooms_of(&self, user: Uuid, only: Option<Uuid>) -> StoreResult<Vec<MyRoomRow>>;
    async fn members(&self, room: Uuid) -> StoreResult<Vec<MemberRow>>;
    /// Adds members (existing ones are left as they are); returns those added. New
    /// members' markers start at the room's last seq. `NotFound` if there is no such room.
    async fn add_members(
        &self,
        room: Uuid,
        members: &[NewMember],
        now_ms: i64,
    ) -> StoreResult<Vec<Uuid>>;
    /// Makes an invited member joined; returns whether they were invited.
    async fn accept_invitation(&self, room: Uuid, user: Uuid) -> StoreResult<bool>;
    /// The rooms where `invitee` is invited by `inviter`.
    async fn invitations_from(&self, invitee: Uuid, inviter: Uuid) -> StoreResult<Vec<Uuid>>;
    /// Removes a member, and in the same transaction makes `heir` the owner (when the
    /// owner leaves); returns whether they were a member.
    async fn remove_member(&self, room: Uuid, user: Uuid, heir: Option<Uuid>) -> StoreResult<bool>;
    /// Sets several roles in one transaction (e.g. handing ownership over).
    async fn set_roles(&self, room: Uuid, roles: &[(Uuid, Role)]) -> StoreResult<()>;
    async fn rename_room(&self, room: Uuid, name: &str) -> StoreResult<()>;
    /// Every membership, to build the in-memory routing table at start-up.
    async fn all_memberships(&self) -> StoreResult<Vec<MembershipRow>>;
}
