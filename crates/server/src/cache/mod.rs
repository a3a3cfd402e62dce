//! Shared fast state: presence, revoked sessions and rate limits. In one binary it lives
//! in memory; in a cluster every node must see the same values (Redis).

pub mod memory;
pub mod redis;

use std::time::Duration;

use async_trait::async_trait;
use palaver_proto::PresenceStatus;
use uuid::Uuid;

/// Why a cache engine could not start.
///
/// Once running, the `Cache` methods do not fail: each engine decides per method whether
/// an outage lets a request through or refuses it (see `redis.rs`).
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// The cache was configured wrongly (e.g. a key prefix with spaces).
    #[error("cache configuration: {0}")]
    Config(String),
    /// The cache service could not be reached, or refused a request.
    #[error("cache unavailable: {0}")]
    Unavailable(String),
}

/// The buckets are the configuration's: `[rate_limits]` sets one limit per bucket.
pub use crate::config::RateBucket;

/// Presence as the cache knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PresenceEntry {
    pub status: PresenceStatus,
    /// Milliseconds; `None` if the user has not been seen since this node started.
    pub last_seen_ms: Option<i64>,
}

/// Shared fast state.
#[async_trait]
pub trait Cache: Send + Sync + 'static {
    /// A connection of `user` opened; true if the user just came online.
    async fn connected(&self, user: Uuid, now_ms: i64) -> bool;
    /// A connection closed; true if it was the user's last (they are now offline).
    async fn disconnected(&self, user: Uuid, now_ms: i64) -> bool;
    /// Marks an online user away (or back); returns the new status if it changed.
    async fn set_away(&self, user: Uuid, away: bool, now_ms: i64) -> Option<PresenceStatus>;
    /// The user's presence, if the cache has seen them.
    async fn presence(&self, user: Uuid) -> Option<PresenceEntry>;
    /// Users whose connections were all on nodes that died (no heartbeat within the
    /// TTL), now offline, with their last-seen time. Each such user is returned once, to
    /// one caller in the cluster, so one node announces it. None on a single node.
    async fn reap_dead_nodes(&self, _now_ms: i64) -> Vec<(Uuid, i64)> {
        Vec::new()
    }
    /// Refuses the session's access tokens until `until_ms` (when they would expire).
    async fn revoke_session(&self, session_id: Uuid, until_ms: i64);
    async fn is_revoked(&self, session_id: Uuid) -> bool;
    /// Counts one request; `Err(retry_after)` when over the limit. Keys may be of any
    /// length: engines keep a fixed-size digest of long ones.
    async fn rate_limit(&self, bucket: RateBucket, key: &str) -> Result<(), Duration>;
    /// Forgets what `key` has used of `bucket` (it is full again).
    async fn rate_reset(&self, bucket: RateBucket, key: &str);
    /// Whether the cache service answers (health checks and `palaver_engine_up`). The
    /// in-process cache always does.
    async fn ping(&self) -> Result<(), CacheError> {
        Ok(())
    }
}
