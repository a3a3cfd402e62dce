//! Blocking: a user stops another from opening a 1:1 room with them or inviting them,
//! and presence, last seen, typing and receipts stop flowing between the two, both ways.
//! The routing table (`Membership`) holds every block, so the rule is applied where
//! audiences are computed; the store keeps them, and the bus tells the other nodes.

use palaver_proto::{BlockList, BlockedUser};
use uuid::Uuid;

use super::{Core, Identity, ServiceError, ServiceResult};
use crate::bus::Event;
use crate::cache::RateBucket;
use crate::clock::{now_ms, to_time};
use crate::store::Block;

impl Core {
    /// The people the caller blocked, most recent first.
    pub async fn blocks(&self, who: Identity) -> ServiceResult<BlockList> {
        let rows = self.store.blocks_of(who.user_id).await?;
        Ok(BlockList {
            blocks: rows
                .into_iter()
                .map(|b| BlockedUser {
                    user_id: b.user_id,
                    username: b.username,
                    display_name: b.display_name,
                    blocked_at: to_time(b.created_at_ms),
                })
                .collect(),
        })
    }

    /// Blocks `target` (blocking twice is blocking once). Pending invitations between the
    /// two, either way, end with it: the caller's are declined, the target's withdrawn.
    pub async fn block(&self, who: Identity, target: Uuid) -> ServiceResult<()> {
        self.limit(RateBucket::Actions, &who.user_id.to_string())
            .await?;
        let block = self.block_of(who, target).await?;
        if self.store.block(block, now_ms()).await? {
            self.audit(
                Some(who.user_id),
                "user.block",
                Some(target.to_string()),
                None,
            )
            .await;
        }
        self.block_changed(block, true).await?;
        let declined = self.store.invitations_from(who.user_id, target).await?;
        let withdrawn = self.store.invitations_from(target, who.user_id).await?;
        let ends = declined
            .into_iter()
            .map(|room| (room, who.user_id, "room.decline"))
            .chain(
                withdrawn
                    .into_iter()
                    .map(|room| (room, target, "room.withdraw")),
            );
        for (room, invitee, action) in ends {
            let Some(row) = self.store.room(room).await? else {
                continue;
            };
            let members = self.store.members(room).await?;
            self.drop_member(who.user_id, &row, &members, invitee, None, action)
                .await?;
        }
        Ok(())
    }

    /// Lifts a block the caller made (lifting one that is not there changes nothing).
    pub async fn unblock(&self, who: Identity, target: Uuid) -> ServiceResult<()> {
        self.limit(RateBucket::Actions, &who.user_id.to_string())
            .await?;
        let block = self.block_of(who, target).await?;
        if self.store.unblock(block).await? {
            self.audit(
                Some(who.user_id),
                "user.unblock",
                Some(target.to_string()),
                None,
            )
            .await;
        }
        self.block_changed(block, false).await
    }

    async fn block_of(&self, who: Identity, target: Uuid) -> ServiceResult<Block> {
        if target == who.user_id {
            return Err(ServiceError::Validation("one cannot block oneself".into()));
        }
        if self.store.user(target).await?.is_none() {
            return Err(ServiceError::UserNotFound);
        }
        Ok(Block {
            blocker: who.user_id,
            blocked: target,
        })
    }

    /// Updates the routing table here and on every other node.
    async fn block_changed(&self, block: Block, active: bool) -> ServiceResult<()> {
        self.membership.set_block(block, active);
        self.bus
            .publish(Event::Block {
                origin: self.node_id,
                blocker: block.blocker,
                blocked: block.blocked,
                active,
            })
            .await?;
        Ok(())
    }
}
