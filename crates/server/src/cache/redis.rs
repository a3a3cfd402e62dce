//! The cluster cache: presence, revoked sessions and rate limits in Redis, shared by every
//! node.
//!
//! # Keys
//!
//! Every key starts with `palaver:<prefix>:` (one deployment or one test run).
//!
//! - `node:<node>`: this node is alive. Set with a TTL (`presence_ttl`, e.g. 30 s) and
//!   refreshed by a background task every third of it, and by every presence write.
//! - `presence:<user>`: a hash. `n:<node>` is the number of connections `node` holds for
//!   the user; `away` is `0`/`1`; `seen` is the last-seen time in milliseconds. A user is
//!   online while any `n:<node>` field counts above zero **and** its `node:<node>` key
//!   exists. So a node that dies (no disconnects, no heartbeats) takes its users' presence
//!   with it within `presence_ttl`, and no one has to notice it died; the scripts drop the
//!   fields of dead nodes when they meet them. The hash expires after 30 days without a
//!   write (each node re-arms it hourly for the users it holds), so users who never come
//!   back do not stay in memory forever.
//! - `nodes`, `users:<node>`: the nodes that hold connections, and the users each holds.
//!   Only for noticing deaths: every node runs REAP now and then, and the one that first
//!   finds a node's key expired takes that node's users offline (announcing it), once.
//! - `revoked:<session>`: exists until the session's access tokens would expire (`PXAT`).
//! - `rl:<bucket>:<key>`: a GCRA "theoretical arrival time" in ms, expiring when the bucket
//!   is full again. A key part longer than 128 bytes is replaced by its SHA-256 (hex), so
//!   no client makes a large key; a successful login deletes that account's failure
//!   bucket for the address. The Lua script reads the clock from Redis (`TIME`), so nodes
//!   with skewed clocks still share one limit; it is atomic, so two nodes cannot both take
//!   the last token.
//!
//! Every read-modify-write is one Lua script, so concurrent nodes never interleave inside
//! one. The presence scripts look up `node:*` keys they are not handed in `KEYS`, which a
//! single Redis (with replicas or Sentinel) allows and Redis Cluster does not.
//!
//! # When Redis is down
//!
//! The `Cache` methods cannot fail, so each one picks its failure mode: rate limits let the
//! request through (an outage should not stop the service); a revocation check refuses
//! (a stolen token must not work because Redis is away); presence answers from this
//! node's own connections. Redis's counts heal by themselves: a node whose write failed,
//! or whose own key Redis no longer has (Redis restarted empty), rewrites its users'
//! counts from its own at the next heartbeat. Every failure is logged and counted in
//! `palaver_cache_errors_total`.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{AsyncCommands, Script};
use async_trait::async_trait;
use palaver_proto::PresenceStatus;
use parking_lot::Mutex;
use sha2::{Digest, Sha256};
use tokio::task::JoinHandle;
use uuid::Uuid;

use super::{Cache, CacheError, PresenceEntry, RateBucket};
use crate::config::{RateLimit, RateLimits};

/// A presence hash without writes for this long is dropped.
const PRESENCE_IDLE_MS: i64 = 30 * 24 * 3600 * 1000;
/// How often a node re-arms the idle expiry of the presence hashes of users it holds.
const REARM_EVERY: Duration = Duration::from_secs(3600);
/// Rate-limit keys longer than this are hashed (they come from usernames and addresses).
const MAX_KEY_LEN: usize = 128;

/// Sums live connections in a presence hash (KEYS[1]), dropping fields of dead nodes.
/// ARGV[1] is the node key prefix.
const LIVE_FN: &str = r"
local function live(hash, node_prefix)
  local fields = redis.call('HGETALL', hash)
  local total = 0
  for i = 1, #fields, 2 do
    local f = fields[i]
    if string.sub(f, 1, 2) == 'n:' then
      local c = tonumber(fields[i + 1]) or 0
      if c > 0 and redis.call('EXISTS', node_prefix .. string.sub(f, 3)) == 1 then
        total = total + c
      else
        redis.call('HDEL', hash, f)
      end
    end
  end
  return total
end
";

/// KEYS: presence hash, own node key, own node's user set, the set of nodes.
/// ARGV: node prefix, node id, now ms, ttl ms, idle ms, user id.
/// Returns 1 if the user just came online.
const CONNECTED: &str = r"
redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[4])
redis.call('SADD', KEYS[3], ARGV[6])
redis.call('SADD', KEYS[4], ARGV[2])
local before = live(KEYS[1], ARGV[1])
redis.call('HINCRBY', KEYS[1], 'n:' .. ARGV[2], 1)
redis.call('HSET', KEYS[1], 'seen', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
if before == 0 then
  redis.call('HSET', KEYS[1], 'away', '0')
  return 1
end
return 0
";

/// Same KEYS and ARGV as CONNECTED. Returns 1 if no live connection is left.
const DISCONNECTED: &str = r"
redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[4])
local f = 'n:' .. ARGV[2]
local c = tonumber(redis.call('HINCRBY', KEYS[1], f, -1))
if c <= 0 then
  redis.call('HDEL', KEYS[1], f)
  redis.call('SREM', KEYS[3], ARGV[6])
end
redis.call('HSET', KEYS[1], 'seen', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
if live(KEYS[1], ARGV[1]) == 0 then return 1 end
return 0
";

/// Takes the users of dead nodes offline, once: a node in the set of nodes whose key has
/// expired is removed with its user set, and each of its users left with no live
/// connection anywhere is returned with their last-seen time. ARGV: key root, now ms.
/// Returns a flat list: user, seen, user, seen, …
const REAP: &str = r"
local root = ARGV[1]
local out = {}
for _, node in ipairs(redis.call('SMEMBERS', root .. 'nodes')) do
  if redis.call('EXISTS', root .. 'node:' .. node) == 0 then
    local set = root .. 'users:' .. node
    for _, user in ipairs(redis.call('SMEMBERS', set)) do
      local hash = root .. 'presence:' .. user
      redis.call('HDEL', hash, 'n:' .. node)
      if redis.call('EXISTS', hash) == 1 and live(hash, root .. 'node:') == 0 then
        redis.call('HSET', hash, 'seen', ARGV[2])
        out[#out + 1] = user
        out[#out + 1] = ARGV[2]
      end
    end
    redis.call('DEL', set)
    redis.call('SREM', root .. 'nodes', node)
  end
end
return out
";

/// KEYS: presence hash. ARGV: node prefix, away ('0'/'1'), now ms.
/// Returns the new away flag, or -1 when nothing changed (offline, or already so).
const SET_AWAY: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
if live(KEYS[1], ARGV[1]) == 0 then return -1 end
local cur = redis.call('HGET', KEYS[1], 'away') or '0'
if cur == ARGV[2] then return -1 end
redis.call('HSET', KEYS[1], 'away', ARGV[2], 'seen', ARGV[3])
return tonumber(ARGV[2])
";

/// KEYS: presence hash. ARGV: node prefix. Returns nil, or {live connections, away, seen}.
const PRESENCE: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local n = live(KEYS[1], ARGV[1])
local away = redis.call('HGET', KEYS[1], 'away') or '0'
local seen = redis.call('HGET', KEYS[1], 'seen') or ''
return {n, away, seen}
";

/// GCRA. KEYS: the bucket key. ARGV: emission interval ms, burst.
/// Returns 0 when allowed, else the ms to wait.
const RATE_LIMIT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local interval = tonumber(ARGV[1])
local tat = tonumber(redis.call('GET', KEYS[1]) or now) or now
if tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - interval * tonumber(ARGV[2])
if allow_at > now then
  return math.max(1, math.ceil(allow_at - now))
end
redis.call('SET', KEYS[1], tostring(new_tat), 'PX', math.max(1, math.ceil(new_tat - now)))
return 0
";

/// One bucket's GCRA parameters.
#[derive(Debug, Clone, Copy)]
struct Limit {
    interval_ms: f64,
    burst: u32,
}

impl Limit {
    /// A bucket's limit, `rate` per `period` (zeros count as one).
    fn new(period: Duration, limit: RateLimit) -> Self {
        Self {
            interval_ms: period.as_millis() as f64 / f64::from(limit.rate.max(1)),
            burst: limit.burst.max(1),
        }
    }
}

struct Scripts {
    connected: Script,
    disconnected: Script,
    set_away: Script,
    presence: Script,
    reap: Script,
    rate_limit: Script,
}

/// Presence, revocations and rate limits in Redis.
pub struct RedisCache {
    conn: ConnectionManager,
    root: String,
    node_id: Uuid,
    presence_ttl: Duration,
    limits: HashMap<RateBucket, Limit>,
    scripts: Scripts,
    /// This node's own connection counts: the fallback when Redis fails, and the users
    /// whose presence hashes the heartbeat keeps from expiring.
    local: Arc<Mutex<HashMap<Uuid, u32>>>,
    /// Users whose count a failed write left wrong in Redis; the heartbeat rewrites them.
    unsynced: Arc<Mutex<HashSet<Uuid>>>,
    heartbeat: JoinHandle<()>,
}

fn unavailable(err: impl std::fmt::Display) -> CacheError {
    CacheError::Unavailable(err.to_string())
}

fn failed(what: &'static str, err: &::redis::RedisError) {
    metrics::counter!(crate::telemetry::metric::CACHE_ERRORS).increment(1);
    tracing::warn!(%err, what, "redis cache");
}

fn bucket_name(bucket: RateBucket) -> &'static str {
    match bucket {
        RateBucket::Login => "login",
        RateBucket::LoginFailure => "login-failure",
        RateBucket::Register => "register",
        RateBucket::Send => "send",
        RateBucket::Ephemeral => "ephemeral",
        RateBucket::Actions => "actions",
        RateBucket::Upload => "upload",
        RateBucket::Search => "search",
        RateBucket::Previews => "previews",
    }
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl RedisCache {
    /// Connects to Redis at `url`, with keys under `palaver:<prefix>:`, for the node
    /// `node_id` (the same id the node uses on the bus). `presence_ttl` bounds how long a
    /// dead node's users still look online; a heartbeat task refreshes this node's liveness
    /// every third of it until the cache is dropped.
    pub async fn connect(
        url: &str,
        prefix: &str,
        node_id: Uuid,
        limits: &RateLimits,
        presence_ttl: Duration,
    ) -> Result<RedisCache, CacheError> {
        let prefix_ok = !prefix.is_empty()
            && prefix.len() <= 64
            && prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !prefix_ok {
            return Err(CacheError::Config(format!(
                "Redis prefix {prefix:?} must be 1-64 letters, digits, '-' or '_'"
            )));
        }
        if presence_ttl < Duration::from_millis(300) {
            return Err(CacheError::Config(
                "presence TTL must be at least 300 ms".into(),
            ));
        }
        let client = ::redis::Client::open(url).map_err(unavailable)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_number_of_retries(2);
        let mut conn = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(unavailable)?;
        let root = format!("palaver:{prefix}:");
        let node_key = format!("{root}node:{node_id}");
        let _: () = conn
            .pset_ex(&node_key, crate::clock::now_ms(), ms(presence_ttl) as u64)
            .await
            .map_err(unavailable)?;

        let limits = RateBucket::ALL
            .into_iter()
            .map(|bucket| {
                (
                    bucket,
                    Limit::new(bucket.period().duration(), limits[bucket]),
                )
            })
            .collect();
        let with_live = |body: &str| Script::new(&format!("{LIVE_FN}\n{body}"));
        let scripts = Scripts {
            connected: with_live(CONNECTED),
            disconnected: with_live(DISCONNECTED),
            set_away: with_live(SET_AWAY),
            presence: with_live(PRESENCE),
            reap: with_live(REAP),
            rate_limit: Script::new(RATE_LIMIT),
        };
        let local = Arc::new(Mutex::new(HashMap::new()));
        let unsynced = Arc::new(Mutex::new(HashSet::new()));
        let heartbeat = tokio::spawn(heartbeat(
            conn.clone(),
            Held {
                root: root.clone(),
                node_id,
                local: local.clone(),
                unsynced: unsynced.clone(),
            },
            node_key,
            presence_ttl,
        ));
        Ok(RedisCache {
            conn,
            root,
            node_id,
            presence_ttl,
            limits,
            scripts,
            local,
            unsynced,
            heartbeat,
        })
    }

    /// The id of the node this cache counts connections for.
    pub fn node_id(&self) -> Uuid {
        self.node_id
    }

    /// A bucket's key: a client-chosen part longer than [`MAX_KEY_LEN`] is replaced by
    /// its SHA-256, so keys stay small whatever was sent.
    fn rate_key(&self, bucket: RateBucket, key: &str) -> String {
        let key = if key.len() > MAX_KEY_LEN {
            hex::encode(Sha256::digest(key.as_bytes()))
        } else {
            key.to_owned()
        };
        format!("{}rl:{}:{key}", self.root, bucket_name(bucket))
    }

    fn presence_key(&self, user: Uuid) -> String {
        format!("{}presence:{user}", self.root)
    }

    fn node_prefix(&self) -> String {
        format!("{}node:", self.root)
    }

    /// Runs CONNECTED or DISCONNECTED.
    async fn count(&self, script: &Script, user: Uuid, now_ms: i64) -> ::redis::RedisResult<i64> {
        script
            .key(self.presence_key(user))
            .key(format!("{}node:{}", self.root, self.node_id))
            .key(format!("{}users:{}", self.root, self.node_id))
            .key(format!("{}nodes", self.root))
            .arg(self.node_prefix())
            .arg(self.node_id.to_string())
            .arg(now_ms)
            .arg(ms(self.presence_ttl))
            .arg(PRESENCE_IDLE_MS)
            .arg(user.to_string())
            .invoke_async(&mut self.conn.clone())
            .await
    }
}

impl Drop for RedisCache {
    fn drop(&mut self) {
        // Without heartbeats the node key expires and this node's users go offline, as
        // when the process dies.
        self.heartbeat.abort();
    }
}

/// What the heartbeat needs of the cache: this node's own view of its connections.
struct Held {
    root: String,
    node_id: Uuid,
    local: Arc<Mutex<HashMap<Uuid, u32>>>,
    unsynced: Arc<Mutex<HashSet<Uuid>>>,
}

impl Held {
    /// Writes this node's connection counts for `users` into their presence hashes (or
    /// removes the node's field where it holds none). Users it could not write stay
    /// unsynced for the next beat.
    async fn resync(&self, conn: &mut ConnectionManager, users: Vec<Uuid>, now_ms: i64) {
        if users.is_empty() {
            return;
        }
        let field = format!("n:{}", self.node_id);
        let users_key = format!("{}users:{}", self.root, self.node_id);
        let mut pipe = ::redis::pipe();
        pipe.sadd(format!("{}nodes", self.root), self.node_id.to_string())
            .ignore();
        {
            let local = self.local.lock();
            for user in &users {
                let key = format!("{}presence:{user}", self.root);
                match local.get(user) {
                    Some(n) => {
                        pipe.sadd(&users_key, user.to_string()).ignore();
                        pipe.hset(&key, &field, *n).ignore();
                        pipe.hset_nx(&key, "seen", now_ms).ignore();
                        pipe.pexpire(&key, PRESENCE_IDLE_MS).ignore();
                    }
                    None => {
                        pipe.srem(&users_key, user.to_string()).ignore();
                        pipe.hdel(&key, &field).ignore();
                    }
                }
            }
        }
        let written: ::redis::RedisResult<()> = pipe.query_async(conn).await;
        if let Err(err) = written {
            failed("presence resync", &err);
            self.unsynced.lock().extend(users);
        }
    }
}

/// Keeps this node alive in Redis, its users' presence hashes from expiring, and Redis's
/// counts equal to this node's own: after a failed write, and after Redis lost this
/// node's key (it restarted empty, or this node stalled longer than the TTL), the next
/// beat writes them again, so presence heals within a third of the TTL.
async fn heartbeat(mut conn: ConnectionManager, held: Held, node_key: String, ttl: Duration) {
    let mut tick = tokio::time::interval(ttl / 3);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_rearm = tokio::time::Instant::now();
    loop {
        tick.tick().await;
        let now = crate::clock::now_ms();
        // SET … GET answers the previous value: none means Redis forgot this node.
        let beat: ::redis::RedisResult<Option<String>> = ::redis::cmd("SET")
            .arg(&node_key)
            .arg(now)
            .arg("PX")
            .arg(ms(ttl))
            .arg("GET")
            .query_async(&mut conn)
            .await;
        let forgotten = match beat {
            Ok(previous) => previous.is_none(),
            Err(err) => {
                failed("heartbeat", &err);
                continue;
            }
        };
        let mut users: HashSet<Uuid> = std::mem::take(&mut *held.unsynced.lock());
        if forgotten {
            users.extend(held.local.lock().keys().copied());
        }
        held.resync(&mut conn, users.into_iter().collect(), now)
            .await;
        if last_rearm.elapsed() >= REARM_EVERY {
            last_rearm = tokio::time::Instant::now();
            let users: Vec<Uuid> = held.local.lock().keys().copied().collect();
            let mut pipe = ::redis::pipe();
            for user in users {
                pipe.pexpire(format!("{}presence:{user}", held.root), PRESENCE_IDLE_MS)
                    .ignore();
            }
            let rearm: ::redis::RedisResult<()> = pipe.query_async(&mut conn).await;
            if let Err(err) = rearm {
                failed("presence re-arm", &err);
            }
        }
    }
}

#[async_trait]
impl Cache for RedisCache {
    async fn connected(&self, user: Uuid, now_ms: i64) -> bool {
        let first_here = {
            let mut local = self.local.lock();
            let n = local.entry(user).or_default();
            *n += 1;
            *n == 1
        };
        match self.count(&self.scripts.connected, user, now_ms).await {
            Ok(came_online) => came_online == 1,
            Err(err) => {
                failed("connected", &err);
                self.unsynced.lock().insert(user);
                first_here
            }
        }
    }

    async fn disconnected(&self, user: Uuid, now_ms: i64) -> bool {
        let last_here = {
            let mut local = self.local.lock();
            match local.get_mut(&user) {
                Some(n) if *n > 1 => {
                    *n -= 1;
                    false
                }
                _ => {
                    local.remove(&user);
                    true
                }
            }
        };
        match self.count(&self.scripts.disconnected, user, now_ms).await {
            Ok(went_offline) => went_offline == 1,
            Err(err) => {
                failed("disconnected", &err);
                self.unsynced.lock().insert(user);
                last_here
            }
        }
    }

    async fn set_away(&self, user: Uuid, away: bool, now_ms: i64) -> Option<PresenceStatus> {
        let result: ::redis::RedisResult<i64> = self
            .scripts
            .set_away
            .key(self.presence_key(user))
            .arg(self.node_prefix())
            .arg(if away { "1" } else { "0" })
            .arg(now_ms)
            .invoke_async(&mut self.conn.clone())
            .await;
        match result {
            Ok(1) => Some(PresenceStatus::Away),
            Ok(0) => Some(PresenceStatus::Online),
            Ok(_) => None,
            Err(err) => {
                failed("set_away", &err);
                None
            }
        }
    }

    async fn presence(&self, user: Uuid) -> Option<PresenceEntry> {
        let result: ::redis::RedisResult<Option<(i64, String, String)>> = self
            .scripts
            .presence
            .key(self.presence_key(user))
            .arg(self.node_prefix())
            .invoke_async(&mut self.conn.clone())
            .await;
        match result {
            Ok(Some((live, away, seen))) => Some(PresenceEntry {
                status: match (live, away.as_str()) {
                    (0, _) => PresenceStatus::Offline,
                    (_, "1") => PresenceStatus::Away,
                    _ => PresenceStatus::Online,
                },
                last_seen_ms: seen.parse().ok(),
            }),
            Ok(None) => None,
            Err(err) => {
                failed("presence", &err);
                // What this node knows; otherwise the caller falls back to the store.
                self.local
                    .lock()
                    .contains_key(&user)
                    .then_some(PresenceEntry {
                        status: PresenceStatus::Online,
                        last_seen_ms: None,
                    })
            }
        }
    }

    async fn reap_dead_nodes(&self, now_ms: i64) -> Vec<(Uuid, i64)> {
        let result: ::redis::RedisResult<Vec<String>> = self
            .scripts
            .reap
            .arg(&self.root)
            .arg(now_ms)
            .invoke_async(&mut self.conn.clone())
            .await;
        match result {
            Ok(flat) => flat
                .chunks_exact(2)
                .filter_map(|pair| Some((pair[0].parse().ok()?, pair[1].parse().ok()?)))
                .collect(),
            Err(err) => {
                failed("reap dead nodes", &err);
                Vec::new()
            }
        }
    }

    async fn revoke_session(&self, session_id: Uuid, until_ms: i64) {
        let ttl = until_ms - crate::clock::now_ms();
        if ttl <= 0 {
            return;
        }
        let key = format!("{}revoked:{session_id}", self.root);
        let result: ::redis::RedisResult<()> = self.conn.clone().pset_ex(key, 1, ttl as u64).await;
        if let Err(err) = result {
            // The store still has the revocation and the EndSession event closes the
            // sockets; tokens already issued work until they expire on other nodes.
            failed("revoke_session", &err);
            tracing::error!(%session_id, "session revocation not shared with other nodes");
        }
    }

    async fn is_revoked(&self, session_id: Uuid) -> bool {
        let key = format!("{}revoked:{session_id}", self.root);
        let result: ::redis::RedisResult<bool> = self.conn.clone().exists(key).await;
        result.unwrap_or_else(|err| {
            failed("is_revoked", &err);
            // Fail closed: a revoked token must not work because Redis is away.
            true
        })
    }

    async fn rate_limit(&self, bucket: RateBucket, key: &str) -> Result<(), Duration> {
        let Some(limit) = self.limits.get(&bucket) else {
            return Ok(());
        };
        let result: ::redis::RedisResult<i64> = self
            .scripts
            .rate_limit
            .key(self.rate_key(bucket, key))
            .arg(limit.interval_ms)
            .arg(limit.burst)
            .invoke_async(&mut self.conn.clone())
            .await;
        match result {
            Ok(wait) if wait > 0 => Err(Duration::from_millis(wait as u64)),
            Ok(_) => Ok(()),
            Err(err) => {
                // Fail open: an outage should slow abuse down less, not stop everyone.
                failed("rate_limit", &err);
                Ok(())
            }
        }
    }

    async fn rate_reset(&self, bucket: RateBucket, key: &str) {
        let result: ::redis::RedisResult<()> =
            self.conn.clone().del(self.rate_key(bucket, key)).await;
        if let Err(err) = result {
            // The bucket refills by itself; the owner waits a little longer.
            failed("rate_reset", &err);
        }
    }

    async fn ping(&self) -> Result<(), CacheError> {
        ::redis::cmd("PING")
            .query_async::<String>(&mut self.conn.clone())
            .await
            .map(drop)
            .map_err(unavailable)
    }
}
