//! `[rate_limits]`: a token bucket per kind of request ([`RateBucket`]), looked up by
//! bucket (`limits[RateBucket::Send]`) by both cache engines and the tests.
//!
//! The file keeps its flat keys, `<bucket>_per_minute` (`_per_hour` for login failures)
//! and `<bucket>_burst`, plus `max_keys`. They are derived from [`RateBucket::key`] and
//! [`RateBucket::period`], so a new bucket is one enum variant and one default.

use std::fmt;
use std::ops::{Index, IndexMut};
use std::time::Duration;

use serde::de::{self, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Which limit a request counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RateBucket {
    /// Login attempts, per client address.
    Login,
    /// Failed password checks, per account and client address; cleared by a success.
    LoginFailure,
    /// Registrations, per client address.
    Register,
    /// Messages sent, per user.
    Send,
    /// Typing indicators and other ephemeral frames, per user.
    Ephemeral,
    /// Other writes and searches (edits, deletions, room changes, user search), per user.
    Actions,
    /// Media uploads, per user.
    Upload,
    /// Message searches, per user: each reads the search index, so they have a bucket of
    /// their own.
    Search,
    /// Pages read for link previews (not those found in the cache), per user.
    Previews,
}

/// The span a bucket's rate is counted over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    Minute,
    Hour,
}

impl Period {
    /// Its length.
    pub fn duration(self) -> Duration {
        match self {
            Period::Minute => Duration::from_secs(60),
            Period::Hour => Duration::from_secs(3600),
        }
    }

    fn word(self) -> &'static str {
        match self {
            Period::Minute => "minute",
            Period::Hour => "hour",
        }
    }
}

impl RateBucket {
    /// Every bucket, in the order of the configuration file.
    pub const ALL: [RateBucket; 9] = [
        RateBucket::Login,
        RateBucket::LoginFailure,
        RateBucket::Register,
        RateBucket::Send,
        RateBucket::Ephemeral,
        RateBucket::Actions,
        RateBucket::Upload,
        RateBucket::Search,
        RateBucket::Previews,
    ];

    /// The bucket's name in its `[rate_limits]` keys.
    pub fn key(self) -> &'static str {
        match self {
            RateBucket::Login => "login",
            RateBucket::LoginFailure => "login_failures",
            RateBucket::Register => "register",
            RateBucket::Send => "send",
            RateBucket::Ephemeral => "ephemeral",
            RateBucket::Actions => "actions",
            RateBucket::Upload => "upload",
            RateBucket::Search => "search",
            RateBucket::Previews => "previews",
        }
    }

    /// What its rate counts per: an hour for failed logins (a guesser gets few tries a
    /// day), a minute for everything else.
    pub fn period(self) -> Period {
        match self {
            RateBucket::LoginFailure => Period::Hour,
            _ => Period::Minute,
        }
    }

    fn rate_key(self) -> String {
        format!("{}_per_{}", self.key(), self.period().word())
    }

    fn burst_key(self) -> String {
        format!("{}_burst", self.key())
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// One bucket's limit: `rate` tokens come back per its [`Period`], and at most `burst`
/// may be spent at once. Zeros count as one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub rate: u32,
    pub burst: u32,
}

impl RateLimit {
    /// `rate` per period, bursts of `burst`.
    pub const fn new(rate: u32, burst: u32) -> RateLimit {
        RateLimit { rate, burst }
    }
}

/// Per-key token buckets, one limit per [`RateBucket`] (docs/CONFIGURATION.md, "Rate
/// limits").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimits {
    limits: [RateLimit; RateBucket::ALL.len()],
    /// Keys (addresses, users) each limit tracks at most in the in-process cache; past
    /// that the buckets nearest to full are forgotten first. Bounds the limiter's memory
    /// (about 50 bytes a key) whatever clients send. Default 100000.
    pub max_keys: usize,
}

const DEFAULT_MAX_KEYS: usize = 100_000;

impl RateLimits {
    /// The same limit for every bucket.
    pub fn each(limit: RateLimit) -> RateLimits {
        RateLimits {
            limits: [limit; RateBucket::ALL.len()],
            max_keys: DEFAULT_MAX_KEYS,
        }
    }

    /// Every rate and burst at `n`: for tests and load runs that must not be throttled.
    pub fn all(n: u32) -> RateLimits {
        RateLimits::each(RateLimit::new(n, n))
    }
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            limits: RateBucket::ALL.map(|bucket| match bucket {
                RateBucket::Login => RateLimit::new(10, 5),
                RateBucket::LoginFailure => RateLimit::new(10, 5),
                RateBucket::Register => RateLimit::new(30, 10),
                RateBucket::Send => RateLimit::new(600, 100),
                RateBucket::Ephemeral => RateLimit::new(120, 20),
                RateBucket::Actions => RateLimit::new(300, 60),
                RateBucket::Upload => RateLimit::new(60, 20),
                RateBucket::Search => RateLimit::new(60, 20),
                RateBucket::Previews => RateLimit::new(30, 10),
            }),
            max_keys: DEFAULT_MAX_KEYS,
        }
    }
}

impl RateLimits {
    /// The number a flat file key names, if it names one.
    fn field_mut(&mut self, key: &str) -> Option<&mut u32> {
        let bucket = RateBucket::ALL
            .into_iter()
            .find(|b| key == b.rate_key() || key == b.burst_key())?;
        let limit = &mut self[bucket];
        Some(match key == bucket.rate_key() {
            true => &mut limit.rate,
            false => &mut limit.burst,
        })
    }
}

impl Index<RateBucket> for RateLimits {
    type Output = RateLimit;

    fn index(&self, bucket: RateBucket) -> &RateLimit {
        &self.limits[bucket.index()]
    }
}

impl IndexMut<RateBucket> for RateLimits {
    fn index_mut(&mut self, bucket: RateBucket) -> &mut RateLimit {
        &mut self.limits[bucket.index()]
    }
}

impl Serialize for RateLimits {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(2 * RateBucket::ALL.len() + 1))?;
        for bucket in RateBucket::ALL {
            map.serialize_entry(&bucket.rate_key(), &self[bucket].rate)?;
            map.serialize_entry(&bucket.burst_key(), &self[bucket].burst)?;
        }
        map.serialize_entry("max_keys", &self.max_keys)?;
        map.end()
    }
}

/// Reads the flat table: keys not given keep their defaults, unknown ones are refused
/// (as everywhere in the configuration).
impl<'de> Deserialize<'de> for RateLimits {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Table;

        impl<'de> Visitor<'de> for Table {
            type Value = RateLimits;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a table of rate limits")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RateLimits, A::Error> {
                let mut limits = RateLimits::default();
                while let Some(key) = map.next_key::<String>()? {
                    if key == "max_keys" {
                        limits.max_keys = map.next_value()?;
                        continue;
                    }
                    match limits.field_mut(&key) {
                        Some(field) => *field = map.next_value()?,
                        None => {
                            let known: Vec<String> = RateBucket::ALL
                                .into_iter()
                                .flat_map(|b| [b.rate_key(), b.burst_key()])
                                .chain(["max_keys".to_owned()])
                                .map(|k| format!("`{k}`"))
                                .collect();
                            return Err(de::Error::custom(format_args!(
                                "unknown field `{key}`, expected one of {}",
                                known.join(", ")
                            )));
                        }
                    }
                }
                Ok(limits)
            }
        }

        deserializer.deserialize_map(Table)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_keeps_its_flat_documented_keys() {
        let text = toml::to_string(&RateLimits::default()).expect("toml");
        assert_eq!(
            text,
            "login_per_minute = 10\nlogin_burst = 5\n\
             login_failures_per_hour = 10\nlogin_failures_burst = 5\n\
             register_per_minute = 30\nregister_burst = 10\n\
             send_per_minute = 600\nsend_burst = 100\n\
             ephemeral_per_minute = 120\nephemeral_burst = 20\n\
             actions_per_minute = 300\nactions_burst = 60\n\
             upload_per_minute = 60\nupload_burst = 20\n\
             search_per_minute = 60\nsearch_burst = 20\n\
             previews_per_minute = 30\npreviews_burst = 10\n\
             max_keys = 100000\n"
        );
        let read: RateLimits = toml::from_str(&text).expect("read back");
        assert_eq!(read, RateLimits::default());
    }

    #[test]
    fn a_partial_table_keeps_defaults_and_a_misspelt_key_is_refused() {
        let read: RateLimits =
            toml::from_str("send_burst = 5\nlogin_failures_per_hour = 2\n").expect("partial");
        assert_eq!(read[RateBucket::Send], RateLimit::new(600, 5));
        assert_eq!(read[RateBucket::LoginFailure], RateLimit::new(2, 5));
        assert_eq!(
            read[RateBucket::Upload],
            RateLimits::default()[RateBucket::Upload]
        );
        let err = toml::from_str::<RateLimits>("send_per_hour = 5\n").expect_err("unknown");
        assert!(
            err.to_string().contains("unknown field `send_per_hour`"),
            "{err}"
        );
        assert!(toml::from_str::<RateLimits>("send_burst = -1\n").is_err());
    }

    #[test]
    fn buckets_are_listed_in_index_order() {
        for (i, bucket) in RateBucket::ALL.into_iter().enumerate() {
            assert_eq!(bucket.index(), i, "{bucket:?}");
        }
    }
}
