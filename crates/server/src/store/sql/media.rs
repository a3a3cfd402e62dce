//! Media records, for both engines.

use async_trait::async_trait;
use uuid::Uuid;

use super::map::{self, MEDIA_COLUMNS};
use super::{Columns, Engine, SqlStore};
use crate::store::{MediaRecordStore, MediaRow, StoreError, StoreResult};

/// What a user's records occupy (`MediaRow::stored_bytes`, summed): `$1` the user. Cast,
/// because PostgreSQL sums BIGINTs into NUMERIC.
const USAGE: &str = "SELECT CAST(COALESCE(SUM(size + COALESCE(thumb_size, 0)), 0) AS BIGINT) \
                     AS used FROM media WHERE uploader_id = $1";

/// A media record nothing references: no message carries it, and it is nobody's picture
/// and no preview's. The orphan sweep and account deletion both collect by this.
pub(super) const UNREFERENCED: &str = "\
    NOT EXISTS (SELECT 1 FROM messages WHERE messages.media_id = media.id) \
    AND NOT EXISTS (SELECT 1 FROM users WHERE users.avatar_media_id = media.id) \
    AND NOT EXISTS (SELECT 1 FROM rooms WHERE rooms.picture_media_id = media.id) \
    AND NOT EXISTS (SELECT 1 FROM link_previews l WHERE l.image_media_id = media.id) \
    AND NOT EXISTS (SELECT 1 FROM message_previews p WHERE p.image_media_id = media.id)";

/// A stored byte count, which is never negative.
fn stored(used: i64) -> StoreResult<u64> {
    u64::try_from(used).map_err(|_| StoreError::Corrupt(format!("media usage {used}")))
}

#[async_trait]
impl<P: Engine> MediaRecordStore for SqlStore<P> {
    async fn insert_media(&self, m: &MediaRow, quota: Option<u64>) -> StoreResult<bool> {
        let column = |name: &str, v: u64| {
            i64::try_from(v).map_err(|_| StoreError::Invalid(format!("media {name} {v}")))
        };
        let size = column("size", m.size)?;
        let thumb_size = m.thumb_size.map(|v| column("thumb_size", v)).transpose()?;
        let sql = format!(
            "INSERT INTO media ({MEDIA_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        );
        // One uploader's inserts take turns on their user row, so two nodes cannot both
        // find room for their upload (SQLite's one writer already takes turns). NO KEY:
        // rows that merely reference the user (their messages) are not held up.
        let lock = format!(
            "SELECT id FROM users WHERE id = $1 {}",
            P::row_lock("FOR NO KEY UPDATE")
        );
        with_db!(&self.write, |db| {
            let mut tx = db.begin().await?;
            if let Some(quota) = quota {
                sqlx::query(&lock)
                    .bind(m.uploader_id)
                    .fetch_optional(&mut *tx)
                    .await?;
                let row = sqlx::query(USAGE)
                    .bind(m.uploader_id)
                    .fetch_one(&mut *tx)
                    .await?;
                let used = stored(row.col("used")?)?;
                if used.saturating_add(m.stored_bytes()) > quota {
                    return Ok(false);
                }
            }
            sqlx::query(&sql)
                .bind(m.id)
                .bind(m.uploader_id)
                .bind(&m.sha256)
                .bind(m.kind.as_str())
                .bind(&m.mime_type)
                .bind(size)
                .bind(&m.filename)
                .bind(m.width.map(i64::from))
                .bind(m.height.map(i64::from))
                .bind(&m.thumb_sha256)
                .bind(&m.thumb_mime)
                .bind(m.created_at_ms)
                .bind(thumb_size)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        });
        Ok(true)
    }

    async fn media_usage(&self, user: Uuid) -> StoreResult<u64> {
        with_db!(&self.read, |db| {
            let row = sqlx::query(USAGE).bind(user).fetch_one(db).await?;
            stored(row.col("used")?)
        })
    }

    async fn media(&self, id: Uuid) -> StoreResult<Option<MediaRow>> {
        let sql = format!("SELECT {MEDIA_COLUMNS} FROM media WHERE id = $1");
        with_db!(&self.read, |db| {
            let row = sqlx::query(&sql).bind(id).fetch_optional(db).await?;
            row.as_ref().map(map::media).transpose()
        })
    }

    async fn media_many(&self, ids: &[Uuid]) -> StoreResult<Vec<MediaRow>> {
        let select = format!("SELECT {MEDIA_COLUMNS} FROM media WHERE id");
        let rows = self.read.rows_with_ids(&select, ids).await?;
        rows.iter().map(map::media).collect()
    }

    async fn media_rooms(&self, id: Uuid) -> StoreResult<Vec<Uuid>> {
        with_db!(&self.read, |db| {
            let rows = sqlx::query(
                "SELECT DISTINCT room_id FROM messages WHERE media_id = $1 AND deleted_at IS NULL",
            )
            .bind(id)
            .fetch_all(db)
            .await?;
            rows.iter().map(|row| row.col("room_id")).collect()
        })
    }

    async fn delete_media(&self, id: Uuid) -> StoreResult<()> {
        with_db!(&self.write, |db| {
            sqlx::query("DELETE FROM media WHERE id = $1")
                .bind(id)
                .execute(db)
                .await?;
        });
        Ok(())
    }

    async fn delete_orphan_media(&self, before_ms: i64) -> StoreResult<Vec<MediaRow>> {
        // A deleted message gives up its media (media_id is cleared), so "no message
        // carries it" is simply: no row points at it. An avatar, a group picture or a
        // link preview's picture keeps its record the same way; a replaced one (or one
        // whose cache entry and messages are gone) is collected like any unsent upload.
        let sql = format!(
            "DELETE FROM media WHERE created_at < $1 AND {UNREFERENCED} RETURNING {MEDIA_COLUMNS}"
        );
        with_db!(&self.write, |db| {
            let rows = sqlx::query(&sql).bind(before_ms).fetch_all(db).await?;
            rows.iter().map(map::media).collect()
        })
    }

    async fn blob_in_use(&self, sha256: &str) -> StoreResult<bool> {
        with_db!(&self.read, |db| {
            let row = sqlx::query(
                "SELECT EXISTS (SELECT 1 FROM media WHERE sha256 = $1) \
                 OR EXISTS (SELECT 1 FROM media WHERE thumb_sha256 = $1) AS used",
            )
            .bind(sha256)
            .fetch_one(db)
            .await?;
            row.col("used")
        })
    }
}
