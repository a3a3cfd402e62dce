//! Blocks, for both engines.

use async_trait::async_trait;
use uuid::Uuid;

use super::{Columns, Engine, SqlStore};
use crate::store::{Block, BlockRow, BlockStore, StoreResult};

#[async_trait]
impl<P: Engine> BlockStore for SqlStore<P> {
    async fn block(&self, block: Block, now_ms: i64) -> StoreResult<bool> {
        let inserted = with_db!(&self.write, |db| {
            sqlx::query(
                "INSERT INTO blocks (blocker_id, blocked_id, created_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (blocker_id, blocked_id) DO NOTHING",
            )
            .bind(block.blocker)
            .bind(block.blocked)
            .bind(now_ms)
            .execute(db)
            .await?
            .rows_affected()
        });
        Ok(inserted == 1)
    }

    async fn unblock(&self, block: Block) -> StoreResult<bool> {
        let deleted = with_db!(&self.write, |db| {
            sqlx::query("DELETE FROM blocks WHERE blocker_id = $1 AND blocked_id = $2")
                .bind(block.blocker)
                .bind(block.blocked)
                .execute(db)
                .await?
                .rows_affected()
        });
        Ok(deleted == 1)
    }

    async fn blocks_of(&self, blocker: Uuid) -> StoreResult<Vec<BlockRow>> {
        with_db!(&self.read, |db| {
            let rows = sqlx::query(
                "SELECT b.blocked_id, u.username, u.display_name, b.created_at \
                 FROM blocks b JOIN users u ON u.id = b.blocked_id WHERE b.blocker_id = $1 \
                 ORDER BY b.created_at DESC, b.blocked_id",
            )
            .bind(blocker)
            .fetch_all(db)
            .await?;
            rows.iter()
                .map(|row| {
                    Ok(BlockRow {
                        user_id: row.col("blocked_id")?,
                        username: row.col("username")?,
                        display_name: row.col("display_name")?,
                        created_at_ms: row.col("created_at")?,
                    })
                })
                .collect()
        })
    }

    async fn all_blocks(&self) -> StoreResult<Vec<Block>> {
        with_db!(&self.read, |db| {
            let rows = sqlx::query("SELECT blocker_id, blocked_id FROM blocks")
                .fetch_all(db)
                .await?;
            rows.iter()
                .map(|row| {
                    Ok(Block {
                        blocker: row.col("blocker_id")?,
                        blocked: row.col("blocked_id")?,
                    })
                })
                .collect()
        })
    }
}
