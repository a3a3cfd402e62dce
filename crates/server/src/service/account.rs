//! Deleting one's account: `POST /api/v1/users/me/delete` (docs/PROTOCOL.md, "Export and
//! account deletion"; docs/OPERATIONS.md for the operator's side).
//!
//! In this order, each step safe to repeat if the node dies between them:
//! 1. the password is checked (limited like logins);
//! 2. the account is stripped and its sessions revoked in one transaction, then every
//!    session is ended on every node (the revocation path logout uses): nothing the
//!    account does gets through after this;
//! 3. it leaves every room, as a member leaving does (others see it leave; a group's
//!    owner hands the group on);
//! 4. under `accounts.deletion = "erase"`, each of its messages is deleted as its sender
//!    deleting it would (content gone, seq kept, `message.deleted` told), and its
//!    reactions removed; under `"keep"` they stay, from "Deleted user";
//! 5. its uploads that nothing references any more go, record and bytes.

use palaver_proto::DELETED_USER_NAME;
use uuid::Uuid;

use super::conversation::MAX_EMOJIS_PER_MESSAGE;
use super::{Core, Identity, ServiceError, ServiceResult};
use crate::cache::RateBucket;
use crate::clock::now_ms;
use crate::config::DeletionPolicy;
use crate::store::{Reacting, Toggled};

/// The username a deleted account's row takes: unique, and one no one can register
/// (it holds the account's own id, which exists only once the account does).
fn tombstone_username(id: Uuid) -> String {
    format!("deleted-{}", id.simple())
}

/// Whether `user` is a deleted account's row.
pub(super) fn is_tombstone(user: &palaver_proto::User) -> bool {
    user.username == tombstone_username(user.id)
}

/// Messages or reactions handled per store call while erasing.
const ERASE_PAGE: u32 = 500;

impl Core {
    /// Deletes the caller's account after checking `password`.
    pub async fn delete_account(&self, who: Identity, password: String) -> ServiceResult<()> {
        let user = who.user_id;
        let failures = format!("delete:{user}");
        self.limit(RateBucket::LoginFailure, &failures).await?;
        let slot = self.passwords.slot().await?;
        let profile = self
            .store
            .user(user)
            .await?
            .ok_or(ServiceError::UserNotFound)?;
        let hash = self
            .store
            .credentials(&profile.username)
            .await?
            .filter(|c| c.user.id == user)
            .map(|c| c.password_hash);
        if !self.passwords.verify(slot, password, hash).await? {
            self.audit(
                Some(user),
                "user.delete_refused",
                Some(user.to_string()),
                None,
            )
            .await;
            return Err(ServiceError::Forbidden("the password is wrong"));
        }
        self.cache
            .rate_reset(RateBucket::LoginFailure, &failures)
            .await;

        let tombstone = tombstone_username(user);
        let ended = self
            .store
            .tombstone_user(user, &tombstone, DELETED_USER_NAME, now_ms())
            .await?;
        // Every session, the caller's included, on every node: revoked in the same
        // transaction as the tombstone, then told to every node by the one path that
        // logout and an administrator's disable use (`close_sessions`).
        self.close_sessions(&ended.sessions).await?;
        self.audit(
            Some(user),
            "user.delete",
            Some(user.to_string()),
            Some(format!(
                "messages {:?}, {} sessions ended",
                self.config.accounts.deletion,
                ended.sessions.len()
            )),
        )
        .await;

        for room in self.store.rooms_of(user, None).await? {
            if let Err(err) = self.remove_member_unlimited(who, room.room.id, user).await {
                tracing::warn!(%err, room = %room.room.id, "a deleted account could not leave a room");
            }
        }
        if self.config.accounts.deletion == DeletionPolicy::Erase {
            self.erase_messages(user).await?;
            self.erase_reactions(user).await?;
        }
        self.collect_uploads_of(user).await?;
        Ok(())
    }

    /// Deletes every live message `user` sent, one by one as a sender's deletion does.
    async fn erase_messages(&self, user: Uuid) -> ServiceResult<()> {
        let mut after = None;
        loop {
            let ids = self
                .store
                .live_messages_sent(user, after, ERASE_PAGE)
                .await?;
            let Some(last) = ids.last() else { break };
            after = Some(*last);
            for id in ids {
                match self.store.delete_message(id, now_ms()).await {
                    Ok(changed) => {
                        self.changed(changed, None).await?;
                    }
                    // Deleted meanwhile (by a moderator, say): nothing left to erase.
                    Err(crate::store::StoreError::NotFound(_)) => {}
                    Err(err) => return Err(err.into()),
                }
            }
        }
        Ok(())
    }

    /// Removes `user`'s reactions, each announced as its removal by them would be.
    async fn erase_reactions(&self, user: Uuid) -> ServiceResult<()> {
        let mut after = None;
        loop {
            let page = self.store.reactions_given(user, after, ERASE_PAGE).await?;
            let Some(last) = page.last() else { break };
            after = Some((last.message_id, last.emoji.clone()));
            for r in page {
                let reacting = Reacting {
                    room: r.room_id,
                    message: r.message_id,
                    user,
                    emoji: &r.emoji,
                };
                let toggled = self
                    .store
                    .set_reaction(reacting, false, MAX_EMOJIS_PER_MESSAGE, now_ms())
                    .await?;
                if let Toggled::Changed(_) = toggled {
                    self.announce_changed(r.room_id, &[r.message_id], None)
                        .await?;
                }
            }
        }
        Ok(())
    }

    /// Deletes `user`'s uploads that nothing references any more, and their bytes when no
    /// other record shares them.
    async fn collect_uploads_of(&self, user: Uuid) -> ServiceResult<()> {
        let _sweep = self.media_sweep.write().await;
        let rows = self.store.delete_unreferenced_uploads(user).await?;
        for row in &rows {
            self.remove_unused_blobs(row).await;
        }
        if !rows.is_empty() {
            tracing::info!(count = rows.len(), "collected a deleted account's media");
        }
        Ok(())
    }
}
