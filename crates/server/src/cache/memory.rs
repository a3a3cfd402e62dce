//! The in-process cache of the single-binary deployment.
//!
//! Rate limits are governor's GCRA over a keyed state of our own, [`BoundedState`]:
//! governor's own keyed stores grow with every new key until the next sweep, so a client
//! that invents keys (usernames, addresses) could fill memory between sweeps.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use governor::clock::{Clock, DefaultClock};
use governor::nanos::Nanos;
use governor::state::StateStore;
use governor::state::keyed::ShrinkableKeyedStateStore;
use governor::{Quota, RateLimiter};
use palaver_proto::PresenceStatus;
use parking_lot::Mutex;
use uuid::Uuid;

use super::{Cache, PresenceEntry, RateBucket};
use crate::config::{Period, RateLimit, RateLimits};

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
    limiters: HashMap<RateBucket, KeyedLimiter>,
    clock: DefaultClock,
}

/// Governor's quota for a bucket's limit (zeros count as one).
fn quota(period: Period, limit: RateLimit) -> Quota {
    let rate = NonZeroU32::new(limit.rate.max(1)).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(limit.burst.max(1)).unwrap_or(NonZeroU32::MIN);
    match period {
        Period::Minute => Quota::per_minute(rate),
        Period::Hour => Quota::per_hour(rate),
    }
    .allow_burst(burst)
}

/// Shards of a limiter's keys, each behind its own lock.
const SHARDS: usize = 16;

/// A 128-bit digest of a limiter key, under two random SipHash keys chosen at start-up:
/// fixed in size whatever the client sent, and not predictable, so no one can aim
/// collisions at someone else's bucket.
struct KeyDigest([std::hash::RandomState; 2]);

impl KeyDigest {
    fn new() -> Self {
        Self([std::hash::RandomState::new(), std::hash::RandomState::new()])
    }

    fn of(&self, key: &str) -> u128 {
        let [a, b] = &self.0;
        (u128::from(a.hash_one(key)) << 64) | u128::from(b.hash_one(key))
    }
}

/// Rate-limit state (each key's theoretical arrival time, as governor keeps it) with a
/// bound on the number of keys: a shard that is full forgets a quarter of its keys, those
/// whose buckets are nearest to full (the smallest arrival times), before it takes a new
/// one. Forgetting them gives their owners the least, so making keys cannot buy anyone a
/// fresh bucket of their own; and a key that is forgotten has at most a burst's worth
/// back.
struct BoundedState {
    shards: Vec<Mutex<HashMap<u128, u64>>>,
    per_shard: usize,
}

impl BoundedState {
    fn new(max_keys: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            per_shard: max_keys.div_ceil(SHARDS).max(1),
        }
    }

    fn shard(&self, key: u128) -> &Mutex<HashMap<u128, u64>> {
        &self.shards[(key as usize) % SHARDS]
    }

    fn remove(&self, key: u128) {
        self.shard(key).lock().remove(&key);
    }

    fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().len()).sum()
    }
}

/// Drops the keys with the smallest arrival times until at most three quarters of `cap`
/// are left (ties may take a few more).
fn evict(map: &mut HashMap<u128, u64>, cap: usize) {
    let keep = cap * 3 / 4;
    let mut tats: Vec<u64> = map.values().copied().collect();
    let drop = tats.len().saturating_sub(keep);
    if drop == 0 {
        return;
    }
    let (_, threshold, _) = tats.select_nth_unstable(drop - 1);
    let threshold = *threshold;
    map.retain(|_, tat| *tat > threshold);
}

/// The [`StateStore`] governor drives: a handle on shared [`BoundedState`], so the cache
/// can also forget a key (`rate_reset`).
struct BoundedStore(Arc<BoundedState>);

impl StateStore for BoundedStore {
    type Key = u128;

    fn measure_and_replace<T, F, E>(&self, key: &u128, f: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        let mut shard = self.0.shard(*key).lock();
        let (answer, tat) = f(shard.get(key).copied().map(Nanos::from))?;
        if shard.len() >= self.0.per_shard && !shard.contains_key(key) {
            evict(&mut shard, self.0.per_shard);
        }
        shard.insert(*key, tat.into());
        Ok(answer)
    }
}

impl ShrinkableKeyedStateStore<u128> for BoundedStore {
    fn retain_recent(&self, drop_below: Nanos) {
        let drop_below = u64::from(drop_below);
        for shard in &self.0.shards {
            let mut shard = shard.lock();
            shard.retain(|_, tat| *tat > drop_below);
            shard.shrink_to_fit();
        }
    }

    fn len(&self) -> usize {
        self.0.len()
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One limit: governor's GCRA over bounded state, keyed by digest.
struct KeyedLimiter {
    gcra: RateLimiter<u128, BoundedStore, DefaultClock>,
    state: Arc<BoundedState>,
    digest: KeyDigest,
}

impl KeyedLimiter {
    fn new(quota: Quota, max_keys: usize) -> Self {
        let state = Arc::new(BoundedState::new(max_keys));
        Self {
            gcra: RateLimiter::new(quota, BoundedStore(state.clone()), DefaultClock::default()),
            state,
            digest: KeyDigest::new(),
        }
    }
}

impl MemoryCache {
    /// A cache enforcing the configured rate limits.
    pub fn new(limits: &RateLimits) -> Self {
        let limiters = RateBucket::ALL
            .into_iter()
            .map(|bucket| {
                let quota = quota(bucket.period(), limits[bucket]);
                (bucket, KeyedLimiter::new(quota, limits.max_keys))
            })
            .collect();
        Self {
            presence: Mutex::default(),
            revoked: Mutex::default(),
            limiters,
            clock: DefaultClock::default(),
        }
    }

    /// How many keys a limit tracks now (for tests of the bound).
    pub fn rate_keys(&self, bucket: RateBucket) -> usize {
        self.limiters.get(&bucket).map_or(0, |l| l.state.len())
    }

    /// Forgets limiter state that no longer matters and expired revocations, so memory
    /// stays bounded. Called periodically.
    pub fn housekeeping(&self, now_ms: i64) {
        for limiter in self.limiters.values() {
            limiter.gcra.retain_recent();
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
            .gcra
            .check_key(&limiter.digest.of(key))
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }

    async fn rate_reset(&self, bucket: RateBucket, key: &str) {
        if let Some(limiter) = self.limiters.get(&bucket) {
            limiter.state.remove(limiter.digest.of(key));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max_keys: usize) -> RateLimits {
        let mut limits = RateLimits::all(1_000);
        limits.max_keys = max_keys;
        limits
    }

    /// `limits(max_keys)` with `bucket` set to `limit`.
    fn with(max_keys: usize, bucket: RateBucket, limit: RateLimit) -> RateLimits {
        let mut limits = limits(max_keys);
        limits[bucket] = limit;
        limits
    }

    #[tokio::test]
    async fn the_number_of_keys_is_bounded_whatever_is_sent() {
        let cache = MemoryCache::new(&limits(1_000));
        // 20,000 keys of 4 KiB each; kept, they would take 80 MB.
        let long = "k".repeat(4096);
        for i in 0..20_000 {
            let key = format!("{i}{long}");
            cache
                .rate_limit(RateBucket::Login, &key)
                .await
                .expect("a new key has its burst");
        }
        let kept = cache.rate_keys(RateBucket::Login);
        assert!(kept <= 1_000 + SHARDS, "{kept} keys kept");
        assert!(kept >= 500, "{kept} keys kept");
    }

    #[tokio::test]
    async fn a_full_limiter_forgets_the_fullest_buckets_first() {
        let cache = MemoryCache::new(&with(SHARDS * 8, RateBucket::Login, RateLimit::new(1, 3)));
        // The flooder spends its burst, then many one-off keys push the limiter past its
        // bound: they, with a token spent each, go before the flooder's empty bucket.
        for _ in 0..3 {
            cache
                .rate_limit(RateBucket::Login, "flooder")
                .await
                .expect("burst");
        }
        assert!(
            cache
                .rate_limit(RateBucket::Login, "flooder")
                .await
                .is_err()
        );
        for i in 0..10_000 {
            let _ = cache
                .rate_limit(RateBucket::Login, &format!("one-off {i}"))
                .await;
        }
        assert!(
            cache
                .rate_limit(RateBucket::Login, "flooder")
                .await
                .is_err(),
            "the flooder did not buy itself a fresh bucket"
        );
    }

    #[tokio::test]
    async fn a_reset_bucket_is_full_again_and_others_are_untouched() {
        let cache = MemoryCache::new(&with(100, RateBucket::LoginFailure, RateLimit::new(1, 2)));
        for key in ["alice@192.0.2.1", "bob@192.0.2.1"] {
            for _ in 0..2 {
                cache
                    .rate_limit(RateBucket::LoginFailure, key)
                    .await
                    .expect("burst");
            }
            let wait = cache
                .rate_limit(RateBucket::LoginFailure, key)
                .await
                .expect_err("spent");
            assert!(wait > Duration::from_secs(3000), "{wait:?}");
        }
        cache
            .rate_reset(RateBucket::LoginFailure, "alice@192.0.2.1")
            .await;
        for _ in 0..2 {
            cache
                .rate_limit(RateBucket::LoginFailure, "alice@192.0.2.1")
                .await
                .expect("full again");
        }
        assert!(
            cache
                .rate_limit(RateBucket::LoginFailure, "bob@192.0.2.1")
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn housekeeping_drops_full_buckets() {
        let cache = MemoryCache::new(&with(1_000, RateBucket::Send, RateLimit::new(60_000, 1)));
        for i in 0..100 {
            cache
                .rate_limit(RateBucket::Send, &i.to_string())
                .await
                .expect("first");
        }
        assert_eq!(cache.rate_keys(RateBucket::Send), 100);
        tokio::time::sleep(Duration::from_millis(5)).await;
        cache.housekeeping(crate::clock::now_ms());
        assert_eq!(cache.rate_keys(RateBucket::Send), 0);
    }
}
