//! Pictures of users and rooms, for both engines.

use std::collections::HashMap;

use async_trait::async_trait;
use uuid::Uuid;

use super::{Columns, Engine, SqlStore, map};
use crate::store::{Entity, Picture, PictureStore, StoreError, StoreResult};

/// Sets a picture column and reads back the value it replaced, in one transaction: `$1`
/// the row's id, `$2` the new media id or NULL. The row is locked first, so two changes at
/// once each see what the other left. `also_set` (`, col = …`) changes more of the row.
async fn swap<P: Engine>(
    store: &SqlStore<P>,
    table: &'static str,
    column: &'static str,
    id: Uuid,
    media: Option<Uuid>,
    missing: Entity,
    also_set: &'static str,
) -> StoreResult<Option<Uuid>> {
    let find = format!(
        "SELECT {column} AS old FROM {table} WHERE id = $1 {}",
        P::row_lock("FOR NO KEY UPDATE")
    );
    let set = format!("UPDATE {table} SET {column} = $2{also_set} WHERE id = $1");
    with_db!(&store.write, |db| {
        let mut tx = db.begin().await?;
        let Some(row) = sqlx::query(&find).bind(id).fetch_optional(&mut *tx).await? else {
            return Err(StoreError::NotFound(missing));
        };
        let old: Option<Uuid> = row.col("old")?;
        sqlx::query(&set)
            .bind(id)
            .bind(media)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(old)
    })
}

#[async_trait]
impl<P: Engine> PictureStore for SqlStore<P> {
    async fn set_avatar(&self, user: Uuid, media: Option<Uuid>) -> StoreResult<Option<Uuid>> {
        swap(
            self,
            "users",
            "avatar_media_id",
            user,
            media,
            Entity::User,
            "",
        )
        .await
    }

    async fn avatars(&self, users: &[Uuid]) -> StoreResult<HashMap<Uuid, Picture>> {
        if users.is_empty() {
            return Ok(HashMap::new());
        }
        let select = "SELECT u.id, u.avatar_media_id, a.thumb_sha256 AS avatar_thumb \
                      FROM users u JOIN media a ON a.id = u.avatar_media_id WHERE u.id";
        let rows = self.read.rows_with_ids(select, users).await?;
        let mut out = HashMap::with_capacity(rows.len());
        for row in &rows {
            if let Some(picture) = map::picture(row, "avatar_media_id", "avatar_thumb")? {
                out.insert(row.col("id")?, picture);
            }
        }
        Ok(out)
    }

    async fn set_room_picture(&self, room: Uuid, media: Option<Uuid>) -> StoreResult<Option<Uuid>> {
        // A room's picture is part of its state: it takes the room's next change number.
        let bump = ", version = version + 1, state_version = version + 1";
        swap(
            self,
            "rooms",
            "picture_media_id",
            room,
            media,
            Entity::Room,
            bump,
        )
        .await
    }
}
