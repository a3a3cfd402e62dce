//! The in-process cache of the single-binary deployment.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::time::Duration;

use async_trait::async_trait;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use palaver_proto::PresenceStatus;
use parking_lot::Mutex;
use uuid::Uuid;

use super::{Cache, PresenceEntry, RateBucket};
use crate::config::RateLimitConfig;

#[derive(Debug, Default)]
struct Presence {
    connections: u32,
    away: bool,
    last_seen_ms: Option<i64>,
}

/// Presence, revocations and rate limits in this process's memory.
pub struct MemoryCache {
    presence: Mutex<HashMap<Uuid, Presence>>,
    revoked: Mutex<HashMap<Uuid, i64>>,
    limiters: HashMap<RateBucket, DefaultKeyedRateLimiter<String>>,
    clock: DefaultClock,
}

fn quota(per_minute: u32, burst: u32) -> Quota {
    let per_minute = NonZeroU32::new(per_minute.max(1)).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(burst.max(1)).unwrap_or(NonZeroU32::MIN);
    Quota::per_minute(per_minute).allow_burst(burst)
}

impl MemoryCache {
    /// A cache enforcing the configured rate limits.
    pub fn new(limits: &RateLimitConfig) -> Self {
        let mut limiters = HashMap::new();
        limiters.insert(
            RateBucket::Login,
            RateLimiter::keyed(quota(limits.login_per_minute, limits.login_burst)),
        );
        limiters.insert(
            RateBucket::Register,
            RateLimiter::keyed(quota(limits.register_per_minute, limits.register_burst)),
        );
        limiters.insert(
            RateBucket::Send,
            RateLimiter::keyed(quota(limits.send_per_minute, limits.send_burst)),
        );
        limiters.insert(
            RateBucket::Actions,
            RateLimiter::keyed(quota(limits.actions_per_minute, limits.actions_burst)),
        );
        limiters.insert(
            RateBucket::Ephemeral,
            RateLimiter::keyed(quota(limits.ephemeral_per_minute, limits.ephemeral_burst)),
        );
        limiters.insert(
            RateBucket::Upload,
            RateLimiter::keyed(quota(limits.upload_per_minute, limits.upload_burst)),
        );
        Self {
            presence: Mutex::default(),
            revoked: Mutex::default(),
            limiters,
            clock: DefaultClock::default(),
        }
    }

    /// Forgets limiter state that no longer matters and expired revocations, so memory
    /// stays bounded. Called periodically.
    pub fn housekeeping(&self, now_ms: i64) {
        for limiter in self.limiters.values() {
            limiter.retain_recent();
        }
        self.revoked.lock().retain(|_, until| *until > now_ms);
    }
}

#[async_trait]
impl Cache for MemoryCache {
    async fn connected(&self, user: Uuid, now_ms: i64) -> bool {
        let mut map = self.presence.lock();
        let entry = map.entry(user).or_default();
        entry.connections += 1;
        entry.last_seen_ms = Some(now_ms);
        if entry.connections == 1 {
            entry.away = false;
            true
        } else {
            false
        }
    }

    async fn disconnected(&self, user: Uuid, now_ms: i64) -> bool {
        let mut map = self.presence.lock();
        let entry = map.entry(user).or_default();
        entry.connections = entry.connections.saturating_sub(1);
        entry.last_seen_ms = Some(now_ms);
        entry.connections == 0
    }

    async fn set_away(&self, user: Uuid, away: bool, now_ms: i64) -> Option<PresenceStatus> {
        let mut map = self.presence.lock();
        let entry = map.get_mut(&user)?;
        if entry.connections == 0 || entry.away == away {
            return None;
        }
        entry.away = away;
        entry.last_seen_ms = Some(now_ms);
        Some(if away {
            PresenceStatus::Away
        } else {
            PresenceStatus::Online
        })
    }

    async fn presence(&self, user: Uuid) -> Option<PresenceEntry> {
        let map = self.presence.lock();
        let entry = map.get(&user)?;
        let status = match (entry.connections, entry.away) {
            (0, _) => PresenceStatus::Offline,
            (_, true) => PresenceStatus::Away,
            (_, false) => PresenceStatus::Online,
        };
        Some(PresenceEntry {
            status,
            last_seen_ms: entry.last_seen_ms,
        })
    }

    async fn revoke_session(&self, session_id: Uuid, until_ms: i64) {
        self.revoked.lock().insert(session_id, until_ms);
    }

    async fn is_revoked(&self, session_id: Uuid) -> bool {
        self.revoked.lock().contains_key(&session_id)
    }

    async fn rate_limit(&self, bucket: RateBucket, key: &str) -> Result<(), Duration> {
        let Some(limiter) = self.limiters.get(&bucket) else {
            return Ok(());
        };
        limiter
            .check_key(&key.to_owned())
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }
}
