//! Blocks: who blocked whom.

use async_trait::async_trait;
use uuid::Uuid;

use super::StoreResult;

/// Someone a user blocked, with their names.
#[derive(Debug, Clone)]
pub struct BlockRow {
    pub user_id: Uuid,
    pub username: String,
    pub display_name: String,
    pub created_at_ms: i64,
}

/// One block, as the routing table keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Block {
    pub blocker: Uuid,
    pub blocked: Uuid,
}

/// Blocks between users. Every method is one transaction.
#[async_trait]
pub trait BlockStore: Send + Sync + 'static {
    /// Records the block; returns whether it is new (blocking twice is blocking once).
    async fn block(&self, block: Block, now_ms: i64) -> StoreResult<bool>;
    /// Lifts the block; returns whether there was one.
    async fn unblock(&self, block: Block) -> StoreResult<bool>;
    /// The people `blocker` blocked, most recent first.
    async fn blocks_of(&self, blocker: Uuid) -> StoreResult<Vec<BlockRow>>;
    /// Every block, to build the routing table at start-up.
    async fn all_blocks(&self) -> StoreResult<Vec<Block>>;
}
