//! The link-preview cache and messages' previews, for both engines.

use async_trait::async_trait;
use uuid::Uuid;

use super::conversation::NEXT_VERSION;
use super::{Columns, Engine, SqlStore};
use crate::store::{CacheEntry, MessagePreview, PreviewRow, PreviewStore, StoreResult, Toggled};

const PREVIEW_COLUMNS: &str = "url, title, description, site_name, image_media_id";

/// A preview's columns (`PREVIEW_COLUMNS`); `title` is present.
fn preview_row(row: &impl Columns, title: String) -> StoreResult<PreviewRow> {
    Ok(PreviewRow {
        url: row.col("url")?,
        title,
        description: row.col("description")?,
        site_name: row.col("site_name")?,
        image_media_id: row.col("image_media_id")?,
    })
}

#[async_trait]
impl<P: Engine> PreviewStore for SqlStore<P> {
    async fn cached_preview(&self, url: &str, now_ms: i64) -> StoreResult<Option<CacheEntry>> {
        let sql = format!(
            "SELECT {PREVIEW_COLUMNS}, fetched_at, expires_at FROM link_previews \
             WHERE url = $1 AND expires_at > $2"
        );
        with_db!(&self.read, |db| {
            let Some(row) = sqlx::query(&sql)
                .bind(url)
                .bind(now_ms)
                .fetch_optional(db)
                .await?
            else {
                return Ok(None);
            };
            let found = match row.col::<Option<String>>("title")? {
                Some(title) => Some(preview_row(&row, title)?),
                None => None,
            };
            Ok(Some(CacheEntry {
                url: row.col("url")?,
                found,
                fetched_at_ms: row.col("fetched_at")?,
                expires_at_ms: row.col("expires_at")?,
            }))
        })
    }

    async fn cache_preview(&self, entry: &CacheEntry) -> StoreResult<()> {
        let found = entry.found.as_ref();
        with_db!(&self.write, |db| {
            sqlx::query(
                "INSERT INTO link_previews \
                   (url, title, description, site_name, image_media_id, fetched_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 ON CONFLICT (url) DO UPDATE SET title = excluded.title, \
                   description = excluded.description, site_name = excluded.site_name, \
                   image_media_id = excluded.image_media_id, fetched_at = excluded.fetched_at, \
                   expires_at = excluded.expires_at",
            )
            .bind(&entry.url)
            .bind(found.map(|p| p.title.as_str()))
            .bind(found.and_then(|p| p.description.as_deref()))
            .bind(found.and_then(|p| p.site_name.as_deref()))
            .bind(found.and_then(|p| p.image_media_id))
            .bind(entry.fetched_at_ms)
            .bind(entry.expires_at_ms)
            .execute(db)
            .await?;
        });
        Ok(())
    }

    async fn purge_previews(&self, now_ms: i64) -> StoreResult<u64> {
        with_db!(&self.write, |db| {
            let done = sqlx::query("DELETE FROM link_previews WHERE expires_at <= $1")
                .bind(now_ms)
                .execute(db)
                .await?;
            Ok(done.rows_affected())
        })
    }

    async fn set_message_preview(
        &self,
        room: Uuid,
        message: Uuid,
        edited_at_ms: Option<i64>,
        preview: Option<&PreviewRow>,
    ) -> StoreResult<Toggled> {
        let current_sql =
            format!("SELECT {PREVIEW_COLUMNS} FROM message_previews WHERE message_id = $1");
        with_db!(&self.write, |db| {
            let mut tx = db.begin().await?;
            // The room's row first: it orders this change with the room's other writes.
            let version: i64 = match sqlx::query(NEXT_VERSION)
                .bind(room)
                .fetch_optional(&mut *tx)
                .await?
            {
                Some(row) => row.col("version")?,
                None => return Ok(Toggled::Missing),
            };
            // Still the message the preview was asked for: an edit since then asked
            // for its own (or for none).
            let live = sqlx::query(
                "SELECT 1 AS x FROM messages WHERE id = $1 AND room_id = $2 \
                   AND deleted_at IS NULL \
                   AND (edited_at = $3 OR (edited_at IS NULL AND $3 IS NULL))",
            )
            .bind(message)
            .bind(room)
            .bind(edited_at_ms)
            .fetch_optional(&mut *tx)
            .await?;
            if live.is_none() {
                return Ok(Toggled::Missing);
            }
            let current = match sqlx::query(&current_sql)
                .bind(message)
                .fetch_optional(&mut *tx)
                .await?
            {
                Some(row) => Some(preview_row(&row, row.col("title")?)?),
                None => None,
            };
            if current.as_ref() == preview {
                // Nothing changes: the change number is not spent.
                tx.rollback().await?;
                return Ok(Toggled::Unchanged);
            }
            match preview {
                Some(p) => {
                    sqlx::query(
                        "INSERT INTO message_previews (message_id, room_id, url, title, \
                           description, site_name, image_media_id) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7) \
                         ON CONFLICT (message_id) DO UPDATE SET url = excluded.url, \
                           title = excluded.title, description = excluded.description, \
                           site_name = excluded.site_name, \
                           image_media_id = excluded.image_media_id",
                    )
                    .bind(message)
                    .bind(room)
                    .bind(&p.url)
                    .bind(&p.title)
                    .bind(&p.description)
                    .bind(&p.site_name)
                    .bind(p.image_media_id)
                    .execute(&mut *tx)
                    .await?;
                }
                None => {
                    sqlx::query("DELETE FROM message_previews WHERE message_id = $1")
                        .bind(message)
                        .execute(&mut *tx)
                        .await?;
                }
            }
            sqlx::query("UPDATE messages SET version = $1 WHERE id = $2")
                .bind(version)
                .bind(message)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(Toggled::Changed(version))
        })
    }

    async fn message_previews(&self, ids: &[Uuid]) -> StoreResult<Vec<MessagePreview>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let select =
            format!("SELECT message_id, {PREVIEW_COLUMNS} FROM message_previews WHERE message_id");
        let rows = self.read.rows_with_ids(&select, ids).await?;
        rows.iter()
            .map(|row| {
                let title = row.col("title")?;
                Ok(MessagePreview {
                    message_id: row.col("message_id")?,
                    preview: preview_row(row, title)?,
                })
            })
            .collect()
    }
}
