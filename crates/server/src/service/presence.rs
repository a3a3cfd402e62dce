//! Presence and last seen: online while any connection is open (away when the client
//! says so), offline with a last-seen time when the last one closes. Only the user's
//! peers may see it: people joined with them in a room, neither blocking the other
//! (`Membership::peers_of` and `can_see`, the one place that rule lives). And typing,
//! the other signal that is relayed and never stored.

use palaver_proto::{LastSeen, Presence, PresenceStatus, ServerFrame};
use uuid::Uuid;

use super::{Core, Identity, ServiceError, ServiceResult};
use crate::bus::Audience;
use crate::cache::RateBucket;
use crate::clock::{now_ms, to_time};

impl Core {
    async fn announce_presence(
        &self,
        user: Uuid,
        status: PresenceStatus,
        last_seen_ms: i64,
    ) -> ServiceResult<()> {
        let frame = ServerFrame::Presence {
            user_id: user,
            status,
            last_seen: Some(to_time(last_seen_ms)),
        };
        self.deliver(Audience::PeersOf(user), &frame, None).await
    }

    /// A connection of the user opened.
    pub async fn connection_opened(&self, user: Uuid) -> ServiceResult<()> {
        let now = now_ms();
        if self.cache.connected(user, now).await {
            self.announce_presence(user, PresenceStatus::Online, now)
                .await?;
        }
        Ok(())
    }

    /// A connection of the user closed; the last one makes them offline.
    pub async fn connection_closed(&self, user: Uuid) -> ServiceResult<()> {
        let now = now_ms();
        if self.cache.disconnected(user, now).await {
            self.store.set_last_seen(user, now).await?;
            self.announce_presence(user, PresenceStatus::Offline, now)
                .await?;
        }
        Ok(())
    }

    /// Announces as offline the users whose node died holding their last connections
    /// (a cluster notices within the presence TTL; see `Cache::reap_dead_nodes`).
    pub async fn reap_dead_nodes(&self) -> ServiceResult<usize> {
        let gone = self.cache.reap_dead_nodes(now_ms()).await;
        for (user, seen) in &gone {
            self.store.set_last_seen(*user, *seen).await?;
            self.announce_presence(*user, PresenceStatus::Offline, *seen)
                .await?;
        }
        Ok(gone.len())
    }

    /// The client says the user is away (or back).
    pub async fn set_presence(&self, who: Identity, status: PresenceStatus) -> ServiceResult<()> {
        let away = match status {
            PresenceStatus::Away => true,
            PresenceStatus::Online => false,
            PresenceStatus::Offline => {
                return Err(ServiceError::Validation(
                    "presence is online or away; close the socket to go offline".into(),
                ));
            }
        };
        self.limit(RateBucket::Ephemeral, &who.user_id.to_string())
            .await?;
        let now = now_ms();
        if let Some(status) = self.cache.set_away(who.user_id, away, now).await {
            self.announce_presence(who.user_id, status, now).await?;
        }
        Ok(())
    }

    /// A user's presence, for themselves or one of their peers.
    pub async fn presence(&self, who: Identity, user: Uuid) -> ServiceResult<Presence> {
        if !self.membership.can_see(who.user_id, user) {
            return Err(ServiceError::UserNotFound);
        }
        match self.cache.presence(user).await {
            Some(entry) if entry.status != PresenceStatus::Offline => {
                // While connected, "last seen" is now.
                Ok(Presence {
                    user_id: user,
                    status: entry.status,
                    last_seen: Some(to_time(now_ms())),
                })
            }
            Some(entry) => Ok(Presence {
                user_id: user,
                status: entry.status,
                last_seen: entry.last_seen_ms.map(to_time),
            }),
            None => {
                if self.store.user(user).await?.is_none() {
                    return Err(ServiceError::UserNotFound);
                }
                let last = self.store.last_seen(user).await?;
                Ok(Presence {
                    user_id: user,
                    status: PresenceStatus::Offline,
                    last_seen: last.map(to_time),
                })
            }
        }
    }

    /// When a user was last seen (now, while online).
    pub async fn last_seen(&self, who: Identity, user: Uuid) -> ServiceResult<LastSeen> {
        let p = self.presence(who, user).await?;
        Ok(LastSeen {
            user_id: p.user_id,
            last_seen: p.last_seen,
        })
    }

    /// Relays a typing indicator to the room's joined members (not stored).
    pub async fn typing(
        &self,
        who: Identity,
        room: Uuid,
        active: bool,
        origin_conn: Option<Uuid>,
    ) -> ServiceResult<()> {
        self.require_joined(room, who.user_id)?;
        self.limit(RateBucket::Ephemeral, &who.user_id.to_string())
            .await?;
        let frame = ServerFrame::Typing {
            room_id: room,
            user_id: who.user_id,
            active,
        };
        let audience = Audience::Joined {
            room,
            from: Some(who.user_id),
        };
        self.deliver(audience, &frame, origin_conn).await
    }
}
