//! Configuration: built-in defaults, then a TOML file, then `PALAVER_*` environment
//! variables, then command-line flags; each later source overrides the earlier ones.
//! [`Config::load`] applies them in that order, the flags included, and checks the result.
//!
//! Every option has a default, so `palaver serve` needs none. docs/CONFIGURATION.md lists
//! them all; `palaver config` prints the effective configuration as TOML.

mod accounts;
mod auth;
mod encryption;
mod engines;
mod mls;
mod previews;
mod rates;

pub use accounts::{AccountsConfig, DeletionPolicy};
pub use auth::{AuthConfig, SsoProviderConfig};
pub use encryption::EncryptionConfig;
pub use engines::{BusEngine, CacheEngine, EngineUrl, StoreEngine};
pub use mls::MlsConfig;
pub use previews::LinkPreviewConfig;
pub use rates::{Period, RateBucket, RateLimit, RateLimits};

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

/// Everything the server can be told.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to listen on. Default `127.0.0.1:8080`.
    pub listen: SocketAddr,
    /// Where the database, the token-signing secret and (later) media live. Default `./data`.
    pub data_dir: PathBuf,
    /// Durable store: `sqlite` (default: `<data_dir>/palaver.db`) or a `postgres://` URL.
    pub store: StoreEngine,
    /// Event bus between nodes: `memory` (default: one node) or a `nats://` URL.
    pub bus: BusEngine,
    /// Presence, revoked sessions and rate limits: `memory` (default) or a `redis://` URL.
    pub cache: CacheEngine,
    /// Names this deployment on shared engines: the PostgreSQL schema, the NATS subject
    /// prefix and the Redis key prefix. Default `palaver`.
    pub namespace: String,
    /// How long the NATS stream keeps stored events, seconds: how far a node may fall
    /// behind and still catch up from the stream rather than the store. Default 86400.
    pub bus_stream_max_age_secs: u64,
    /// The NATS stream's size limit, bytes; the oldest events go first. JetStream reserves
    /// this much storage for the stream. Default 1073741824 (1 GiB).
    pub bus_stream_max_bytes: u64,
    /// With a Redis cache: how long a node's users still count as online after the node
    /// stopped refreshing its heartbeat (it died), seconds; they are then announced
    /// offline. Default 30.
    pub presence_ttl_secs: u64,
    /// Addresses of reverse proxies (IPs or CIDR blocks, e.g. `127.0.0.1`, `10.0.0.0/8`)
    /// whose `X-Forwarded-For` names the real client, for per-address rate limits. Empty
    /// (default): the TCP peer is the client.
    pub trusted_proxies: Vec<String>,
    /// Secret for signing access tokens. Default: 32 random bytes generated on first start
    /// and kept in `<data_dir>/jwt-secret` (mode 0600). Every node of a cluster needs the same.
    pub jwt_secret: Option<String>,
    /// Lifetime of access tokens, seconds. Default 900 (15 minutes).
    pub access_token_ttl_secs: u64,
    /// Lifetime of refresh tokens, seconds. Default 2592000 (30 days).
    pub refresh_token_ttl_secs: u64,
    /// Origins allowed to open WebSockets. Empty (default): only the server's own origin
    /// (the `Host` it was reached at) and clients that send no Origin (non-browsers).
    /// `"*"` allows every origin.
    pub allowed_origins: Vec<String>,
    /// Seconds between the server's WebSocket pings; a peer silent for two intervals is
    /// disconnected. Default 20.
    pub heartbeat_interval_secs: u64,
    /// Largest WebSocket text frame handled, bytes; a larger one gets an `error` frame
    /// (`payload_too_large`). Default 65536.
    pub max_frame_bytes: usize,
    /// Largest WebSocket message read at all, bytes; a larger one closes the connection
    /// (1009) before it is buffered. Default 1048576.
    pub max_ws_message_bytes: usize,
    /// Largest JSON request body, bytes. Default 65536.
    pub max_body_bytes: usize,
    /// Largest message content, bytes of UTF-8. Default 16384.
    pub max_message_bytes: usize,
    /// Largest group, members. Default 1000.
    pub max_room_members: usize,
    /// Frames queued for one connection before it counts as a slow consumer and is
    /// closed (1008). Default 1024.
    pub outbound_queue: usize,
    /// How long a new connection's live traffic waits for a first `sync` frame, ms.
    /// Default 1000.
    pub sync_grace_ms: u64,
    /// How long a socket opened without an `Authorization` header may take to send its
    /// `auth` frame, ms; then it is closed (4004). Default 5000.
    pub ws_auth_timeout_ms: u64,
    /// Most messages committed in one transaction (group commit). Default 512.
    pub group_commit_max: usize,
    /// PEM certificate chain; with `tls_key`, serve HTTPS/WSS directly. Default none.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for `tls_cert`. Default none.
    pub tls_key: Option<PathBuf>,
    /// `text` (default) or `json` log lines. The filter is `PALAVER_LOG` (default `info`).
    pub log_format: LogFormat,
    /// Seconds to let in-flight requests finish on shutdown. Default 10.
    pub shutdown_grace_secs: u64,
    /// Where `/metrics` is served: a listener of its own, so the public one never exposes
    /// it; port 0 picks a free port. Default (unset): `127.0.0.1:9090`, or a free loopback
    /// port when that one is taken (logged), so a second server on one host still starts
    /// without options. A configured address that cannot be bound stops the start.
    pub metrics_listen: Option<SocketAddr>,
    /// Serve `/metrics` on `listen` instead of `metrics_listen` (put access control of your
    /// own in front of it). Default false.
    pub metrics_on_main_listener: bool,
    /// Most connections open at once (HTTP and WebSocket alike). Past it a new connection
    /// is answered `503 unavailable` with `Retry-After` and closed. Default: 90% of the
    /// open-file limit at start-up.
    pub max_connections: Option<usize>,
    /// Seconds a connection has to send its first byte and then a whole request head; an
    /// idle keep-alive connection is closed after as long. Default 10.
    pub header_timeout_secs: u64,
    /// Longest pause while a request body arrives, seconds; then `408 request_timeout`.
    /// Default 20.
    pub body_timeout_secs: u64,
    /// A connection on which nothing was read or written for this long is closed, seconds:
    /// the backstop for every state no other timeout covers. More than
    /// `heartbeat_interval_secs`. Default 30.
    pub idle_timeout_secs: u64,
    /// Seconds a TLS handshake may take. Default 10.
    pub tls_handshake_timeout_secs: u64,
    /// Seconds a new WebSocket has, after the upgrade, to answer the server's first ping
    /// (any frame counts). Default 10.
    pub ws_handshake_timeout_secs: u64,
    /// `max-age` of the `Strict-Transport-Security` header sent when the server speaks TLS
    /// itself, seconds; 0 sends none. Default 31536000 (a year).
    pub hsts_max_age_secs: u64,
    /// Rate limits, by bucket.
    pub rate_limits: RateLimits,
    /// Hash new passwords with the cheapest argon2id parameters, so load tests can
    /// register thousands of users quickly. Never in production. Default false.
    pub insecure_fast_password_hashing: bool,
    /// Uploaded files: where they are kept and how large they may be.
    pub media: MediaConfig,
    /// Push notifications (Web Push and webhooks) to members who are not connected.
    pub push: PushConfig,
    /// `[link_previews]`: cards for the links in messages, read by the server.
    pub link_previews: LinkPreviewConfig,
    /// `[passwords]`: how strong a new password must be, and how many are hashed at once.
    pub passwords: PasswordConfig,
    /// `[admin]`: who administers the server besides the first account.
    pub admin: AdminConfig,
    /// `[accounts]`: account deletion's policy for messages, and export bounds.
    pub accounts: AccountsConfig,
    /// `[mls]`: bounds of end-to-end encrypted rooms.
    pub mls: MlsConfig,
    /// `[auth]`: password login on or off, two-factor login, single sign-on.
    pub auth: AuthConfig,
    /// `[encryption]`: the key that encrypts the SQLite database and local media at rest.
    pub encryption: EncryptionConfig,
}

/// `[admin]`: server administrators (docs/OPERATIONS.md, "Administrators").
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    /// Usernames made administrators when they register and at every start-up (the
    /// first account always is one). Removing a name demotes nobody: `palaver admin
    /// demote` does. Default none.
    pub usernames: Vec<String>,
}

/// `[passwords]`: the strength rule for new passwords and the node's hashing budget
/// (docs/CONFIGURATION.md).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PasswordConfig {
    /// Lowest zxcvbn score (0-4) a new password must reach; 3 means about 10^8 guesses or
    /// more. Default 3.
    pub min_score: u8,
    /// Password hashes (argon2id, 19 MiB each) computed at once on this node; 0 means as
    /// many as the machine has CPUs. Default 0.
    pub max_concurrent_hashes: usize,
    /// How long a login or registration waits for a hashing slot before it is answered
    /// 503 `unavailable` with `Retry-After`, ms. Default 1000.
    pub hash_wait_ms: u64,
}

impl Default for PasswordConfig {
    fn default() -> Self {
        Self {
            min_score: 3,
            max_concurrent_hashes: 0,
            hash_wait_ms: 1000,
        }
    }
}

impl PasswordConfig {
    /// `max_concurrent_hashes` with 0 resolved to the number of CPUs.
    pub fn hash_slots(&self) -> usize {
        match self.max_concurrent_hashes {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            n => n,
        }
    }
}

/// Where media lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaBackend {
    /// `<data_dir>/media`, content-addressed.
    Local,
    /// An S3-compatible object store (`s3_*` options).
    S3,
}

/// Media uploads and their storage.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MediaConfig {
    /// `local` (default) or `s3`.
    pub backend: MediaBackend,
    /// Largest image, bytes. Default 20 MiB.
    pub max_image_bytes: u64,
    /// Largest video, bytes. Default 100 MiB.
    pub max_video_bytes: u64,
    /// Largest audio file, bytes. Default 25 MiB.
    pub max_audio_bytes: u64,
    /// Largest other file, bytes. Default 50 MiB.
    pub max_file_bytes: u64,
    /// Largest image decoded for a thumbnail, pixels (width × height). Default 50,000,000.
    pub max_image_pixels: u64,
    /// Images up to this many pixels are decoded whatever their file size; a larger one
    /// needs at least one byte of file per `image_pixels_per_byte` pixels, or it is
    /// refused as implausible (a decompression bomb). Default 16,777,216 (4096 × 4096).
    pub max_sparse_image_pixels: u64,
    /// See `max_sparse_image_pixels`. Default 128.
    pub image_pixels_per_byte: u64,
    /// Memory all image decodes of this node may use at once, bytes (each decode
    /// reserves its estimated need). Default 268435456 (256 MiB).
    pub decode_memory_bytes: u64,
    /// How long an upload waits for decode memory before it is refused with 503
    /// `unavailable` and `Retry-After`, ms. Default 5000.
    pub decode_wait_ms: u64,
    /// Longest side of a thumbnail, pixels. Default 320.
    pub thumbnail_px: u32,
    /// Uploads never sent in a message are deleted after this many seconds. Default 86400.
    pub orphan_ttl_secs: u64,
    /// Seconds between sweeps for such orphans. Default 3600.
    pub gc_interval_secs: u64,
    /// Lifetime of the signed links in `url` and `thumbnailUrl`, seconds: a link stays
    /// valid for between half of this and all of it. Default 3600.
    pub link_ttl_secs: u64,
    /// The most one user's uploads may occupy, bytes: each upload's file and thumbnail,
    /// for as long as the upload exists. 0: no quota. Default 1073741824 (1 GiB).
    pub user_quota_bytes: u64,
    /// Uploads are refused (507, `Retry-After`) while the file system of the data
    /// directory, where every upload is buffered (and, with the local backend, stored),
    /// has less than this free, bytes; this keeps room for the database. 0: no floor.
    /// Default 1073741824 (1 GiB).
    pub min_free_disk_bytes: u64,
    /// S3 endpoint, e.g. `http://127.0.0.1:8333`. Default none (AWS).
    pub s3_endpoint: Option<String>,
    /// S3 bucket. Default `palaver-media`.
    pub s3_bucket: String,
    /// S3 region. Default `us-east-1`.
    pub s3_region: String,
    /// S3 access key id. Default none: `AWS_ACCESS_KEY_ID`.
    pub s3_access_key_id: Option<String>,
    /// S3 secret key. Default none: `AWS_SECRET_ACCESS_KEY`.
    pub s3_secret_access_key: Option<String>,
    /// Allow a plain-HTTP endpoint (tests, a store on the same host). Default false.
    pub s3_allow_http: bool,
}

impl Default for MediaConfig {
    fn default() -> Self {
        const MIB: u64 = 1024 * 1024;
        Self {
            backend: MediaBackend::Local,
            max_image_bytes: 20 * MIB,
            max_video_bytes: 100 * MIB,
            max_audio_bytes: 25 * MIB,
            max_file_bytes: 50 * MIB,
            max_image_pixels: 50_000_000,
            max_sparse_image_pixels: 4096 * 4096,
            image_pixels_per_byte: 128,
            decode_memory_bytes: 256 * MIB,
            decode_wait_ms: 5000,
            thumbnail_px: 320,
            orphan_ttl_secs: 24 * 3600,
            gc_interval_secs: 3600,
            link_ttl_secs: 3600,
            user_quota_bytes: 1 << 30,
            min_free_disk_bytes: 1 << 30,
            s3_endpoint: None,
            s3_bucket: "palaver-media".into(),
            s3_region: "us-east-1".into(),
            s3_access_key_id: None,
            s3_secret_access_key: None,
            s3_allow_http: false,
        }
    }
}

/// `[push]`: notifications to members with no live connection (docs/CONFIGURATION.md).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PushConfig {
    /// Send notifications at all. Default true.
    pub enabled: bool,
    /// `sub` claim of VAPID tokens: a `mailto:` or `https:` contact for push services.
    /// Default `mailto:postmaster@localhost`.
    pub vapid_subject: String,
    /// How long a connected member's devices have to acknowledge (`delivered`) a message
    /// before they are notified anyway, ms. Default 3000.
    pub ack_delay_ms: u64,
    /// How long a member who is not connected collects messages of one room into one
    /// notification, ms. Default 1000.
    pub collapse_ms: u64,
    /// How long a push service keeps an undelivered notification (`TTL`), seconds.
    /// Default 86400; at most 2419200 (four weeks).
    pub ttl_secs: u64,
    /// `Urgency` of Web Push requests (RFC 8030). Default `normal`.
    pub urgency: Urgency,
    /// Notifications waiting to be sent or retried before new ones are dropped. Default 1024.
    pub queue_size: usize,
    /// Attempts per notification (first try included) on 5xx, 429 and timeouts. Default 5.
    pub max_attempts: u32,
    /// Wait before the first retry, doubled before each further one, ms. Default 500.
    pub backoff_base_ms: u64,
    /// Time limit of one outbound request, connection included, ms. Default 10000.
    pub request_timeout_ms: u64,
    /// Operator webhook that receives every notification, signed. Default none.
    pub webhook_url: Option<String>,
    /// HMAC-SHA256 key of the webhook signature, at least 16 bytes. Required with
    /// `webhook_url`. Default none.
    pub webhook_secret: Option<String>,
    /// Destinations exempt from the SSRF guard: CIDRs (`10.0.0.0/8`), single addresses or
    /// host names. Default empty: loopback, private and other internal addresses are refused.
    pub outbound_allow: Vec<String>,
}

/// Web Push `Urgency` (RFC 8030 section 5.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Urgency {
    VeryLow,
    Low,
    Normal,
    High,
}

impl Urgency {
    /// The header value.
    pub fn as_str(self) -> &'static str {
        match self {
            Urgency::VeryLow => "very-low",
            Urgency::Low => "low",
            Urgency::Normal => "normal",
            Urgency::High => "high",
        }
    }
}

impl MediaConfig {
    /// The largest upload of any type: the limit while the type is not known yet.
    pub fn max_upload_bytes(&self) -> u64 {
        self.max_image_bytes
            .max(self.max_video_bytes)
            .max(self.max_audio_bytes)
            .max(self.max_file_bytes)
    }
}

/// Longest TTL push services accept (four weeks).
pub const MAX_PUSH_TTL_SECS: u64 = 28 * 24 * 3600;

impl Default for PushConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            vapid_subject: "mailto:postmaster@localhost".into(),
            ack_delay_ms: 3000,
            collapse_ms: 1000,
            ttl_secs: 86400,
            urgency: Urgency::Normal,
            queue_size: 1024,
            max_attempts: 5,
            backoff_base_ms: 500,
            request_timeout_ms: 10_000,
            webhook_url: None,
            webhook_secret: None,
            outbound_allow: Vec::new(),
        }
    }
}

impl PushConfig {
    /// Rules that types cannot express.
    fn check(&self) -> Result<(), ConfigError> {
        let rule = |m: &str| Err(ConfigError::Rule(format!("push: {m}")));
        if self.queue_size == 0 || self.max_attempts == 0 || self.request_timeout_ms == 0 {
            return rule("queue_size, max_attempts and request_timeout_ms must be positive");
        }
        if self.ttl_secs > MAX_PUSH_TTL_SECS {
            return rule("ttl_secs must be at most 2419200 (four weeks)");
        }
        if !(self.vapid_subject.starts_with("mailto:") || self.vapid_subject.starts_with("https:"))
        {
            return rule("vapid_subject must be a mailto: or https: URL");
        }
        match (&self.webhook_url, &self.webhook_secret) {
            (None, None) => {}
            (Some(u), Some(s)) => {
                let ok = url::Url::parse(u).is_ok_and(|u| matches!(u.scheme(), "http" | "https"));
                if !ok {
                    return rule("webhook_url must be an http(s) URL");
                }
                if s.len() < 16 {
                    return rule("webhook_secret must be at least 16 bytes");
                }
            }
            _ => return rule("webhook_url and webhook_secret go together"),
        }
        Ok(())
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("./data"),
            store: StoreEngine::Sqlite,
            bus: BusEngine::Memory,
            cache: CacheEngine::Memory,
            namespace: "palaver".into(),
            bus_stream_max_age_secs: 24 * 3600,
            bus_stream_max_bytes: 1 << 30,
            trusted_proxies: Vec::new(),
            presence_ttl_secs: 30,
            jwt_secret: None,
            access_token_ttl_secs: 900,
            refresh_token_ttl_secs: 30 * 24 * 3600,
            allowed_origins: Vec::new(),
            heartbeat_interval_secs: 20,
            max_frame_bytes: 64 * 1024,
            max_ws_message_bytes: 1024 * 1024,
            max_body_bytes: 64 * 1024,
            max_message_bytes: 16 * 1024,
            max_room_members: 1000,
            outbound_queue: 1024,
            sync_grace_ms: 1000,
            ws_auth_timeout_ms: 5000,
            group_commit_max: 512,
            tls_cert: None,
            tls_key: None,
            log_format: LogFormat::Text,
            shutdown_grace_secs: 10,
            rate_limits: RateLimits::default(),
            insecure_fast_password_hashing: false,
            media: MediaConfig::default(),
            push: PushConfig::default(),
            link_previews: LinkPreviewConfig::default(),
            metrics_listen: None,
            metrics_on_main_listener: false,
            max_connections: None,
            header_timeout_secs: 10,
            body_timeout_secs: 20,
            idle_timeout_secs: 30,
            tls_handshake_timeout_secs: 10,
            ws_handshake_timeout_secs: 10,
            hsts_max_age_secs: 365 * 24 * 3600,
            passwords: PasswordConfig::default(),
            admin: AdminConfig::default(),
            accounts: AccountsConfig::default(),
            mls: MlsConfig::default(),
            auth: AuthConfig::default(),
            encryption: EncryptionConfig::default(),
        }
    }
}

/// Why the configuration could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid configuration: {0}")]
    Invalid(#[from] Box<figment::Error>),
    #[error("invalid configuration: {0}")]
    Rule(String),
}

/// The command-line flags of `palaver serve` and `palaver config`: the last source, over
/// every other (docs/CONFIGURATION.md, "Command line").
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Flags {
    /// Address to listen on [default: 127.0.0.1:8080] (env PALAVER_LISTEN).
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Data directory [default: ./data] (env PALAVER_DATA_DIR).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// PEM certificate chain, to serve HTTPS/WSS directly (env PALAVER_TLS_CERT).
    #[arg(long)]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert (env PALAVER_TLS_KEY).
    #[arg(long)]
    pub tls_key: Option<PathBuf>,
    /// Durable store: `sqlite` or a `postgres://` URL [default: sqlite] (env PALAVER_STORE).
    #[arg(long)]
    pub store: Option<StoreEngine>,
    /// Event bus between nodes: `memory` or a `nats://` URL [default: memory] (env PALAVER_BUS).
    #[arg(long)]
    pub bus: Option<BusEngine>,
    /// Shared cache: `memory` or a `redis://` URL [default: memory] (env PALAVER_CACHE).
    #[arg(long)]
    pub cache: Option<CacheEngine>,
}

impl Flags {
    /// Puts every flag that was given over what the other sources said.
    fn apply(self, config: &mut Config) {
        let Flags {
            listen,
            data_dir,
            tls_cert,
            tls_key,
            store,
            bus,
            cache,
        } = self;
        fn set<T>(option: &mut T, flag: Option<T>) {
            if let Some(value) = flag {
                *option = value;
            }
        }
        set(&mut config.listen, listen);
        set(&mut config.data_dir, data_dir);
        set(&mut config.tls_cert, tls_cert.map(Some));
        set(&mut config.tls_key, tls_key.map(Some));
        set(&mut config.store, store);
        set(&mut config.bus, bus);
        set(&mut config.cache, cache);
    }
}

impl Config {
    /// The effective configuration: defaults, overridden by the TOML file (if any), then
    /// by `PALAVER_*` variables (nested keys with `__`, e.g.
    /// `PALAVER_RATE_LIMITS__SEND_BURST=500`), then by `flags`; checked.
    pub fn load(file: Option<&Path>, flags: Flags) -> Result<Config, ConfigError> {
        let mut config = Config::from_sources(file)?;
        flags.apply(&mut config);
        config.check()?;
        Ok(config)
    }

    /// Defaults, the TOML file and the environment, unchecked (the flags come next).
    fn from_sources(file: Option<&Path>) -> Result<Config, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            figment = figment.merge(Toml::file_exact(file));
        }
        figment = figment.merge(
            Env::prefixed("PALAVER_")
                .split("__")
                .ignore(&["config", "log"]),
        );
        Ok(figment.extract().map_err(Box::new)?)
    }

    /// The configuration with secrets blanked, for printing.
    pub fn redacted(&self) -> Config {
        let mut c = self.clone();
        c.store = c.store.redacted();
        c.bus = c.bus.redacted();
        c.cache = c.cache.redacted();
        if c.jwt_secret.is_some() {
            c.jwt_secret = Some("<redacted>".into());
        }
        if c.media.s3_secret_access_key.is_some() {
            c.media.s3_secret_access_key = Some("<redacted>".into());
        }
        if c.push.webhook_secret.is_some() {
            c.push.webhook_secret = Some("<redacted>".into());
        }
        c.auth = c.auth.redacted();
        c.encryption = c.encryption.redacted();
        c
    }

    /// Rules that types cannot express.
    pub fn check(&self) -> Result<(), ConfigError> {
        let ns = &self.namespace;
        if ns.is_empty()
            || ns.len() > 48
            || !ns.starts_with(|c: char| c.is_ascii_lowercase())
            || !ns
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            // One name that is at once a schema, a subject token and a key prefix.
            return Err(ConfigError::Rule(
                "namespace must be 1-48 of a-z, 0-9 and _, starting with a letter".into(),
            ));
        }
        self.proxies()?;
        if self.bus_stream_max_age_secs == 0
            || self.bus_stream_max_bytes == 0
            || self.presence_ttl_secs == 0
        {
            return Err(ConfigError::Rule(
                "bus_stream_max_age_secs, bus_stream_max_bytes and presence_ttl_secs must be positive"
                    .into(),
            ));
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err(ConfigError::Rule("tls_cert and tls_key go together".into()));
        }
        if self.heartbeat_interval_secs == 0
            || self.outbound_queue == 0
            || self.group_commit_max == 0
        {
            return Err(ConfigError::Rule(
                "heartbeat_interval_secs, outbound_queue and group_commit_max must be positive"
                    .into(),
            ));
        }
        if self.jwt_secret.as_ref().is_some_and(|s| s.len() < 32) {
            return Err(ConfigError::Rule(
                "jwt_secret must be at least 32 bytes".into(),
            ));
        }
        if self.max_frame_bytes > self.max_ws_message_bytes {
            return Err(ConfigError::Rule(
                "max_frame_bytes must not exceed max_ws_message_bytes".into(),
            ));
        }
        let mls = &self.mls;
        if mls.max_devices_per_user == 0
            || mls.max_key_packages == 0
            || mls.max_message_bytes == 0
            || mls.max_welcomes_per_device == 0
        {
            return Err(ConfigError::Rule(
                "mls.max_devices_per_user, max_key_packages, max_message_bytes and \
                 max_welcomes_per_device must be positive"
                    .into(),
            ));
        }
        if self.ws_auth_timeout_ms == 0 || self.media.link_ttl_secs == 0 {
            return Err(ConfigError::Rule(
                "ws_auth_timeout_ms and media.link_ttl_secs must be positive".into(),
            ));
        }
        if self.header_timeout_secs == 0
            || self.body_timeout_secs == 0
            || self.tls_handshake_timeout_secs == 0
            || self.ws_handshake_timeout_secs == 0
            || self.max_connections == Some(0)
        {
            return Err(ConfigError::Rule(
                "header_timeout_secs, body_timeout_secs, tls_handshake_timeout_secs, \
                 ws_handshake_timeout_secs and max_connections must be positive"
                    .into(),
            ));
        }
        // Server pings are what keep an idle socket's connection busy.
        if self.idle_timeout_secs <= self.heartbeat_interval_secs {
            return Err(ConfigError::Rule(
                "idle_timeout_secs must be more than heartbeat_interval_secs".into(),
            ));
        }
        if self.media.thumbnail_px == 0 || self.media.gc_interval_secs == 0 {
            return Err(ConfigError::Rule(
                "media.thumbnail_px and media.gc_interval_secs must be positive".into(),
            ));
        }
        if self.media.decode_memory_bytes == 0 || self.media.image_pixels_per_byte == 0 {
            return Err(ConfigError::Rule(
                "media.decode_memory_bytes and media.image_pixels_per_byte must be positive".into(),
            ));
        }
        if self.accounts.max_concurrent_exports == 0 {
            return Err(ConfigError::Rule(
                "accounts.max_concurrent_exports must be positive".into(),
            ));
        }
        if self.passwords.min_score > 4 {
            return Err(ConfigError::Rule(
                "passwords.min_score must be 0 to 4".into(),
            ));
        }
        if self.rate_limits.max_keys == 0 {
            return Err(ConfigError::Rule(
                "rate_limits.max_keys must be positive".into(),
            ));
        }
        self.link_previews.check()?;
        self.auth.check()?;
        self.encryption.check(&self.data_dir)?;
        self.push.check()
    }
}

impl Config {
    /// `presence_ttl_secs` as a duration.
    pub fn presence_ttl(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.presence_ttl_secs)
    }

    /// `trusted_proxies` parsed; a plain address is a block of one.
    pub fn proxies(&self) -> Result<Vec<ipnet::IpNet>, ConfigError> {
        self.trusted_proxies
            .iter()
            .map(|p| {
                p.parse::<ipnet::IpNet>()
                    .or_else(|_| p.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| {
                        ConfigError::Rule(format!(
                            "trusted_proxies: {p:?} is not an IP address or CIDR block"
                        ))
                    })
            })
            .collect()
    }
}
