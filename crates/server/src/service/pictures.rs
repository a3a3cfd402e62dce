//! Profile pictures and group pictures.
//!
//! A picture is an upload: the client sends the image through `POST /media/upload`, which
//! cleans it as any image (metadata gone, bombs refused, a thumbnail made), then names it
//! by id. Only an image the caller uploaded may be used, so nobody can show, or keep
//! alive, someone else's file. The record stays (the orphan sweep skips it, and it counts
//! against its uploader's quota, as every upload does) while a user or room shows it; a
//! replaced one is an unsent upload again and is collected.
//!
//! On the wire a picture is a signed link to its thumbnail (`User.avatarUrl`,
//! `RoomMember.avatarUrl`, `Room.pictureUrl`), which anyone who is shown the user or room
//! can load without a header. A group's picture reaches its members live (`room.updated`,
//! as a rename does); an avatar does not, as a display name does not: both are read afresh
//! with the user or the room.

use palaver_proto::{MessageType, User};
use uuid::Uuid;

use super::links::MediaFile;
use super::{Core, Identity, ServiceError, ServiceResult};
use crate::cache::RateBucket;
use crate::clock::now_ms;
use crate::store::Picture;

impl Core {
    /// The link a picture is shown by: its thumbnail, when it has one.
    pub(crate) fn picture_url(&self, picture: Option<Picture>) -> Option<String> {
        picture.map(|p| {
            let file = if p.thumbnail {
                MediaFile::Thumbnail
            } else {
                MediaFile::Original
            };
            self.links.link(p.media_id, file, now_ms() / 1000)
        })
    }

    /// Fills in `avatarUrl` on users read from the store (which keeps only the id).
    pub(crate) async fn attach_avatars(&self, users: &mut [User]) -> ServiceResult<()> {
        let ids: Vec<Uuid> = users.iter().map(|u| u.id).collect();
        let avatars = self.store.avatars(&ids).await?;
        for user in users.iter_mut() {
            user.avatar_url = self.picture_url(avatars.get(&user.id).copied());
        }
        Ok(())
    }

    /// A user read from the store, with their `avatarUrl`.
    pub(crate) async fn with_avatar(&self, mut user: User) -> ServiceResult<User> {
        self.attach_avatars(std::slice::from_mut(&mut user)).await?;
        Ok(user)
    }

    /// Refuses what may not become the caller's picture. Someone else's upload is
    /// `forbidden` where the caller can see it and `media_not_found` where they cannot (as
    /// everywhere, what one may not see does not exist); anything but an image is
    /// `validation_failed`.
    pub(super) async fn check_own_image(&self, who: Identity, media: Uuid) -> ServiceResult<()> {
        let row = self
            .store
            .media(media)
            .await?
            .ok_or(ServiceError::MediaNotFound)?;
        if row.uploader_id != who.user_id {
            self.visible_media(who, media).await?;
            return Err(ServiceError::Forbidden(
                "only an image you uploaded can be used as a picture",
            ));
        }
        if row.kind != MessageType::Image {
            return Err(ServiceError::Validation(format!(
                "a picture must be an image (JPEG, PNG, GIF or WebP); this upload is {} ({})",
                row.kind.as_str(),
                row.mime_type
            )));
        }
        Ok(())
    }

    /// Sets the caller's avatar to an image they uploaded, or with `None` removes it.
    pub async fn set_avatar(&self, who: Identity, media: Option<Uuid>) -> ServiceResult<User> {
        self.limit(RateBucket::Actions, &who.user_id.to_string())
            .await?;
        // Held until the record is named: the sweep on this node cannot take it meanwhile.
        let sweep = self.media_sweep.read().await;
        if let Some(id) = media {
            self.check_own_image(who, id).await?;
        }
        let old = self.store.set_avatar(who.user_id, media).await?;
        drop(sweep);
        if old != media {
            self.audit(
                Some(who.user_id),
                "user.avatar",
                Some(who.user_id.to_string()),
                Some(media.map_or_else(|| "removed".into(), |id| format!("media {id}"))),
            )
            .await;
        }
        self.me(who).await
    }
}
