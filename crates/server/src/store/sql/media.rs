//! Media records, for both engines.

use async_trait::async_trait;
use uuid::Uuid;

use super::map::{self, MEDIA_COLUMNS};
use super::{Columns, Engine, SqlStore};
use crate::store::{MediaRecordStore, MediaRow, StoreError, StoreResult};

#[async_trait]
impl<P: Engine> MediaRecordStore for SqlStore<P> {
    async fn insert_media(&self, m: &MediaRow) -> StoreResult<()> {
        let size = i64::try_from(m.size)
            .map_err(|_| StoreError::Invalid(format!("media size {}", m.size)))?;
        let sql = format!(
            "INSERT INTO media ({MEDIA_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
        );
        with_db!(&self.write, |db| {
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
                .execute(db)
                .await?;
        });
        Ok(())
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
        // carries it" is simply: no row points at it.
        let sql = format!(
            "DELETE FROM media WHERE created_at < $1 \
             AND NOT EXISTS (SELECT 1 FROM messages WHERE messages.media_id = media.id) \
             RETURNING {MEDIA_COLUMNS}"
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
