//! The rules of Palaver, with no HTTP in sight: who may do what, in which order things
//! are stored and announced. HTTP handlers and the WebSocket gateway both call in here,
//! so the REST and socket paths share one implementation.

mod account;
mod admin;
mod auth;
mod blocks;
mod conversation;
mod export;
pub mod health;
pub mod inspect;
pub mod links;
mod media;
mod membership;
mod messages;
mod mls;
mod moderation;
mod notify;
mod pictures;
mod presence;
mod previews;
mod rooms;
mod search;
mod sync;

use std::sync::Arc;
use std::time::Duration;

use palaver_proto::{ErrorCode, ServerFrame};
use uuid::Uuid;

pub use admin::Admin;
pub use auth::{
    CallbackOutcome, Identity, Passwords, SSO_COOKIE, Sealer, Sso, SsoFailure, SsoRedirect, Tokens,
};
pub use media::clean_filename;
pub use membership::Membership;
pub use messages::{MessageWriter, PendingSend, Sent};

use crate::bus::{Audience, Bus, BusError, Class, Delivery, Event, EventStream};
use crate::cache::Cache;
use crate::config::Config;
use crate::media::MediaStore;
use crate::store::{AuditEntry, Constraint, Entity, Markers, Store, StoreError};

/// What an invited member is told when they try what only joined members may do.
pub(crate) const NOT_ACCEPTED: &str = "accept the invitation first";

/// Batches of thread roots waiting to be announced, at most; past it a batch's new counts
/// reach clients only at their next sync or fetch.
const THREAD_BATCHES: usize = 1024;

/// Everything a request can be refused or fail with.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Validation(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error("access token expired")]
    TokenExpired,
    #[error("wrong username or password")]
    InvalidCredentials,
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("user not found")]
    UserNotFound,
    #[error("room not found")]
    RoomNotFound,
    #[error("message not found")]
    MessageNotFound,
    #[error("media not found")]
    MediaNotFound,
    /// Storing an upload failed; nothing of it was kept and the client may retry.
    #[error("{0}")]
    UploadFailed(String),
    #[error("username is taken")]
    UsernameTaken,
    #[error("{0}")]
    Conflict(&'static str),
    #[error("too many requests; retry in {} ms", .0.as_millis())]
    RateLimited(Duration),
    /// Storing failed after retries; the client should retry with the same clientMsgId.
    #[error("the message could not be stored; retry with the same clientMsgId")]
    DeliveryFailed,
    #[error("the server is shutting down")]
    Unavailable,
    /// A bound of this node is reached (e.g. the memory for decoding images); the
    /// request may succeed after the delay.
    #[error("{what}; retry in {} s", .retry.as_secs().max(1))]
    Busy { what: String, retry: Duration },
    /// A store failure with no meaning for the client (`NotFound` and `Conflict` that
    /// the client can cause become their own variants, through `From`).
    #[error(transparent)]
    Store(StoreError),
    #[error(transparent)]
    Bus(#[from] BusError),
    #[error("internal error: {0}")]
    Internal(String),
    #[error("push subscription not found")]
    SubscriptionNotFound,
    /// The upload would take the uploader past their storage quota.
    #[error("{0}")]
    QuotaExceeded(String),
    /// One of the two people blocked the other.
    #[error("one of you blocked the other")]
    Blocked,
    /// The 1:1 room's other person left it.
    #[error("the other person left this 1:1 room; open it again to send a new request")]
    DirectClosed,
    /// What was asked is for groups, and the room is a 1:1 room.
    #[error("{0}")]
    NotAGroup(&'static str),
    /// The data directory's file system is below its free-space floor; uploads may
    /// succeed again after the delay.
    #[error("the server is low on disk space and stores no uploads for now; retry in {} s", .retry.as_secs().max(1))]
    InsufficientStorage { retry: Duration },
    /// A reply or thread reply names a message of another room.
    #[error("{0} must be a message of the same room")]
    CrossRoom(&'static str),
    /// A thread reply to a message that is itself a thread reply.
    #[error("a thread reply cannot start a thread; reply in its thread instead")]
    NestedThread,
    #[error("{0}")]
    InvalidEmoji(String),
    /// A bound on what a message or room holds is reached.
    #[error("{0}")]
    LimitReached(&'static str),
    /// A group's owner or admin muted the caller there; sending may work after the wait.
    #[error("you are muted in this room; retry in {} s", .0.as_secs().max(1))]
    Muted(Duration),
    /// The user is banned from the room.
    #[error("banned from this room")]
    Banned,
    /// An administrator disabled the account.
    #[error("this account is disabled")]
    AccountDisabled,
    #[error("report not found")]
    ReportNotFound,
    /// The second step of a login failed.
    #[error("{0}")]
    InvalidSecondFactor(&'static str),
    /// Two-factor login must be on first (administrators, when required).
    #[error("turn on two-factor login first")]
    SecondFactorRequired,
    /// No `[[auth.sso]]` provider of that name.
    #[error("no such single sign-on provider")]
    UnknownProvider,
    /// `auth.password_login` is off.
    #[error("password login is turned off on this server; use single sign-on")]
    PasswordLoginDisabled,
    /// The room is end-to-end encrypted and this needs its plaintext.
    #[error("{0}")]
    EncryptedRoom(&'static str),
    /// MLS for a room that is not end-to-end encrypted.
    #[error("this room is not end-to-end encrypted")]
    NotEncrypted,
    /// Bytes that are not the MLS structure expected.
    #[error("{0}")]
    InvalidMls(String),
    /// A commit or proposal not made in the group's current epoch.
    #[error(
        "not made in the group's current epoch {0}; process the room's newer messages and retry"
    )]
    WrongEpoch(u64),
    /// No such live device of the caller's (or visible to them).
    #[error("device not found")]
    DeviceNotFound,
    /// No such welcome waiting for the device.
    #[error("welcome not found")]
    WelcomeNotFound,
}

impl ServiceError {
    /// The wire code.
    pub fn code(&self) -> ErrorCode {
        use ServiceError::*;
        match self {
            BadRequest(_) => ErrorCode::BadRequest,
            Validation(_) => ErrorCode::ValidationFailed,
            PayloadTooLarge(_) => ErrorCode::PayloadTooLarge,
            Unauthorized(_) => ErrorCode::Unauthorized,
            TokenExpired => ErrorCode::TokenExpired,
            InvalidCredentials => ErrorCode::InvalidCredentials,
            Forbidden(_) => ErrorCode::Forbidden,
            UserNotFound => ErrorCode::UserNotFound,
            RoomNotFound => ErrorCode::RoomNotFound,
            MessageNotFound => ErrorCode::MessageNotFound,
            MediaNotFound => ErrorCode::MediaNotFound,
            UploadFailed(_) => ErrorCode::MediaUploadFailed,
            UsernameTaken => ErrorCode::UsernameTaken,
            Conflict(_) => ErrorCode::Conflict,
            RateLimited(_) => ErrorCode::RateLimited,
            DeliveryFailed => ErrorCode::MessageDeliveryFailed,
            Unavailable | Busy { .. } => ErrorCode::Unavailable,
            Store(_) | Bus(_) | Internal(_) => ErrorCode::Internal,
            SubscriptionNotFound => ErrorCode::SubscriptionNotFound,
            QuotaExceeded(_) => ErrorCode::QuotaExceeded,
            InsufficientStorage { .. } => ErrorCode::InsufficientStorage,
            Blocked => ErrorCode::Blocked,
            DirectClosed => ErrorCode::DirectClosed,
            CrossRoom(_) => ErrorCode::CrossRoom,
            NestedThread => ErrorCode::NestedThread,
            InvalidEmoji(_) => ErrorCode::InvalidEmoji,
            LimitReached(_) => ErrorCode::LimitReached,
            NotAGroup(_) => ErrorCode::NotAGroup,
            AccountDisabled => ErrorCode::AccountDisabled,
            ReportNotFound => ErrorCode::ReportNotFound,
            Muted(_) => ErrorCode::Muted,
            Banned => ErrorCode::Banned,
            InvalidSecondFactor(_) => ErrorCode::InvalidSecondFactor,
            SecondFactorRequired => ErrorCode::SecondFactorRequired,
            PasswordLoginDisabled => ErrorCode::PasswordLoginDisabled,
            UnknownProvider => ErrorCode::NotFound,
            EncryptedRoom(_) => ErrorCode::EncryptedRoom,
            NotEncrypted => ErrorCode::NotEncrypted,
            InvalidMls(_) => ErrorCode::InvalidMls,
            WrongEpoch(_) => ErrorCode::WrongEpoch,
            DeviceNotFound => ErrorCode::DeviceNotFound,
            WelcomeNotFound => ErrorCode::NotFound,
        }
    }

    /// For `rate_limited` and `unavailable` with a known wait: how long to wait before
    /// retrying, in whole milliseconds rounded up (at least 1), as both edges state it
    /// (`retryAfterMs`, `Retry-After`).
    pub fn retry_after_ms(&self) -> Option<u64> {
        match self {
            ServiceError::RateLimited(wait)
            | ServiceError::Busy { retry: wait, .. }
            | ServiceError::InsufficientStorage { retry: wait }
            | ServiceError::Muted(wait) => {
                let ms = wait.as_micros().div_ceil(1000);
                Some(u64::try_from(ms).unwrap_or(u64::MAX).max(1))
            }
            _ => None,
        }
    }

    /// True for failures of the server (logged, and hidden from the client).
    pub fn is_internal(&self) -> bool {
        self.code() == ErrorCode::Internal
    }
}

impl From<StoreError> for ServiceError {
    /// What the store could not find or refused is the client's business (404, 409);
    /// everything else is the server's (internal, logged).
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound(Entity::User) => ServiceError::UserNotFound,
            StoreError::NotFound(Entity::Room) => ServiceError::RoomNotFound,
            StoreError::NotFound(Entity::Message) => ServiceError::MessageNotFound,
            StoreError::NotFound(Entity::Report) => ServiceError::ReportNotFound,
            StoreError::NotFound(Entity::Device) => ServiceError::DeviceNotFound,
            StoreError::Conflict(Constraint::Username) => ServiceError::UsernameTaken,
            err => ServiceError::Store(err),
        }
    }
}

impl From<crate::domain::DomainError> for ServiceError {
    /// A refused value is the client's mistake: 422, or 413 when it is too large.
    fn from(err: crate::domain::DomainError) -> Self {
        use crate::domain::DomainError;
        match err {
            DomainError::Invalid(msg) => ServiceError::Validation(msg),
            DomainError::TooLarge(msg) => ServiceError::PayloadTooLarge(msg),
        }
    }
}

/// Result alias for the service layer.
pub type ServiceResult<T> = Result<T, ServiceError>;

/// The state every request works with: the engines behind their traits, the in-memory
/// routing table, token keys and the message writer.
pub struct Core {
    pub config: Config,
    pub store: Arc<dyn Store>,
    pub bus: Arc<dyn Bus>,
    pub cache: Arc<dyn Cache>,
    pub media: Arc<dyn MediaStore>,
    pub membership: Membership,
    /// Who may not send where until when (`moderation`), beside the routing table.
    pub(crate) mutes: moderation::Mutes,
    pub tokens: Tokens,
    /// Signs and checks the media links in `Media.url` and `thumbnailUrl`.
    pub links: links::LinkSigner,
    /// Password hashing: its parameters, its node-wide bound and the strength rule.
    pub passwords: Passwords,
    /// Seals and opens the TOTP secrets of two-factor login.
    second_factor: Sealer,
    /// The single sign-on providers (`[[auth.sso]]`).
    sso: Sso,
    /// Identifies this node on the bus, so it can skip its own membership events.
    pub node_id: Uuid,
    writer: MessageWriter,
    /// Where uploads are buffered while they arrive.
    media_tmp: std::path::PathBuf,
    /// Uploads and media sends hold it shared, the orphan sweep exclusively: the sweep
    /// never deletes bytes an upload just found stored, nor media a send is storing.
    media_sweep: Arc<tokio::sync::RwLock<()>>,
    /// Sends push notifications; `None` when `push.enabled` is false.
    pub push: Option<Arc<crate::push::Dispatcher>>,
    /// The memory image decodes may take at once (`media.decode_memory_bytes`).
    decode_budget: media::DecodeBudget,
    /// Link previews; `None` when `link_previews.enabled` is false.
    previews: Option<previews::Previews>,
    /// The service's own tasks (the notification collector, the preview task and what
    /// they start), waited for by `drain`.
    tasks: tokio_util::task::TaskTracker,
    /// Exports being built (`accounts.max_concurrent_exports`).
    exports: Arc<tokio::sync::Semaphore>,
    /// Which rooms are end-to-end encrypted, as far as this node has looked (it never
    /// changes for a room): `mls::is_encrypted`.
    encrypted_rooms: dashmap::DashMap<Uuid, bool>,
}

impl Core {
    /// Wires the engines together, loads the routing table and starts the message writer.
    #[allow(clippy::too_many_arguments)] // the engines, each its own trait object
    pub async fn start(
        config: Config,
        node_id: Uuid,
        store: Arc<dyn Store>,
        bus: Arc<dyn Bus>,
        cache: Arc<dyn Cache>,
        media: Arc<dyn MediaStore>,
        secret: &[u8],
        push: Option<Arc<crate::push::Dispatcher>>,
        previews: Option<crate::link_preview::Fetcher>,
    ) -> ServiceResult<Arc<Core>> {
        let config_media = config.media.clone();
        let media_tmp = config.data_dir.join("media").join("tmp");
        crate::files::private_dir(&media_tmp)
            .map_err(|e| ServiceError::Internal(format!("cannot create {media_tmp:?}: {e}")))?;
        let links = links::LinkSigner::new(secret, config.media.link_ttl_secs);
        let membership = Membership::default();
        membership.load(store.all_memberships().await?, store.all_blocks().await?);
        let mutes = moderation::Mutes::default();
        mutes.load(store.mutes_in_force(crate::clock::now_ms()).await?);
        let tokens = Tokens::new(
            secret,
            config.access_token_ttl_secs,
            config.refresh_token_ttl_secs,
        );
        let passwords = Passwords::new(&config)?;
        // Sessions revoked recently may still have unexpired access tokens.
        let since = crate::clock::now_ms() - (config.access_token_ttl_secs as i64) * 1000;
        for sid in store.revoked_sessions_since(since).await? {
            cache
                .revoke_session(sid, since + (config.access_token_ttl_secs as i64) * 2000)
                .await;
        }
        // Stored messages go to the notification collector only when push is on.
        let (notify_tx, notify_rx) = match &push {
            Some(_) => {
                let (tx, rx) = tokio::sync::mpsc::channel(notify::INTAKE_BATCHES);
                (Some(tx), Some(rx))
            }
            None => (None, None),
        };
        // Thread roots whose counts the writer moved, announced by a task of ours.
        let (threads_tx, threads_rx) = tokio::sync::mpsc::channel(THREAD_BATCHES);
        let previews = previews.map(|fetcher| {
            let c = &config.link_previews;
            previews::Previews::new(fetcher, c.queue_size, c.max_concurrent_fetches)
        });
        let writer = MessageWriter::start(
            store.clone(),
            bus.clone(),
            config.group_commit_max,
            notify_tx,
            threads_tx,
            previews.as_ref().and_then(previews::Previews::sender),
        );
        let exports = Arc::new(tokio::sync::Semaphore::new(
            config.accounts.max_concurrent_exports,
        ));
        let sso = Sso::new(&config.auth)?;
        let core = Arc::new(Core {
            config,
            store,
            bus,
            cache,
            media,
            membership,
            mutes,
            tokens,
            links,
            passwords,
            second_factor: Sealer::new(secret),
            sso,
            node_id,
            writer,
            media_tmp,
            media_sweep: Arc::new(tokio::sync::RwLock::new(())),
            push: push.clone(),
            decode_budget: media::DecodeBudget::new(
                config_media.decode_memory_bytes,
                Duration::from_millis(config_media.decode_wait_ms),
            ),
            previews,
            tasks: tokio_util::task::TaskTracker::new(),
            exports,
            encrypted_rooms: dashmap::DashMap::new(),
        });
        core.promote_configured_admins().await?;
        // It ends when `drain` stops previews.
        core.tasks.spawn(previews::run(core.clone()));
        // It ends when the writer, the only sender, is drained.
        core.tasks
            .spawn(conversation::announce_threads(core.clone(), threads_rx));
        if let (Some(push), Some(rx)) = (push, notify_rx) {
            // It ends when the writer, the only sender, is drained.
            core.tasks.spawn(notify::run(core.clone(), push, rx));
        }
        Ok(core)
    }

    /// This node's stream of bus events, with the service's own share of each applied
    /// first: another node's membership change or block updates the routing table before
    /// the event, or any later one, reaches the hub's fan-out.
    pub fn consume(self: &Arc<Self>, events: EventStream) -> EventStream {
        use futures::StreamExt;
        let core = self.clone();
        events
            .map(move |event| {
                match &*event {
                    Event::Membership {
                        origin,
                        room_id,
                        direct,
                        added,
                        invited,
                        removed,
                    } if *origin != core.node_id => {
                        core.membership
                            .apply(*room_id, *direct, added, invited, removed);
                    }
                    Event::Block {
                        origin,
                        blocker,
                        blocked,
                        active,
                    } if *origin != core.node_id => {
                        let block = crate::store::Block {
                            blocker: *blocker,
                            blocked: *blocked,
                        };
                        core.membership.set_block(block, *active);
                    }
                    Event::Mute {
                        origin,
                        room_id,
                        user_id,
                        until_ms,
                    } if *origin != core.node_id => {
                        core.mutes.set(*room_id, *user_id, *until_ms);
                    }
                    _ => {}
                }
                event
            })
            .boxed()
    }

    /// Stops taking messages and waits until every accepted one is stored and announced;
    /// then until the service's own tasks have ended (previews in progress are dropped),
    /// and push sends have stopped.
    pub async fn drain(&self) {
        self.writer.drain().await;
        if let Some(previews) = &self.previews {
            previews.stop();
        }
        self.tasks.close();
        self.tasks.wait().await;
        if let Some(push) = &self.push {
            push.stop().await;
        }
    }

    /// Publishes a frame to an audience, encoded once and classed (not for new
    /// messages: those carry a seq and go out from the message writer).
    pub(crate) async fn deliver(
        &self,
        audience: Audience,
        frame: &ServerFrame,
        exclude_conn: Option<Uuid>,
    ) -> ServiceResult<()> {
        metrics::counter!("palaver_events_published_total").increment(1);
        let delivery = Delivery {
            audience,
            frame: encode(frame),
            room_seq: None,
            exclude_conn,
            class: class_of(frame),
        };
        self.bus.publish(Event::Deliver(delivery)).await?;
        Ok(())
    }

    /// Tells a room's members that its receipt summary moved.
    pub(crate) async fn announce_summary(&self, room: Uuid, summary: Markers) -> ServiceResult<()> {
        let frame = ServerFrame::ReceiptSummary {
            room_id: room,
            delivered_seq: summary.delivered_seq,
            read_seq: summary.read_seq,
        };
        self.deliver(Audience::Joined { room, from: None }, &frame, None)
            .await
    }

    /// Records a security event in the audit log and the `audit` log target.
    pub(crate) async fn audit(
        &self,
        actor: Option<Uuid>,
        action: &'static str,
        target: Option<String>,
        detail: Option<String>,
    ) {
        tracing::info!(target: "audit", actor = ?actor, action, target = target.as_deref(), detail = detail.as_deref());
        let entry = AuditEntry {
            actor,
            action,
            target,
            detail,
        };
        if let Err(err) = self.store.audit(entry, crate::clock::now_ms()).await {
            tracing::error!(%err, action, "could not write audit entry");
        }
    }

    /// Counts one request against a limit.
    pub(crate) async fn limit(
        &self,
        bucket: crate::cache::RateBucket,
        key: &str,
    ) -> ServiceResult<()> {
        self.cache.rate_limit(bucket, key).await.map_err(|retry| {
            metrics::counter!(crate::telemetry::metric::RATE_LIMITED, "bucket" => bucket.key())
                .increment(1);
            ServiceError::RateLimited(retry)
        })
    }
}

/// How the bus carries a frame (`bus::Class`). Exhaustive on purpose: a new frame type
/// does not compile until someone decides whether it is stored.
pub(crate) fn class_of(frame: &ServerFrame) -> Class {
    match frame {
        ServerFrame::Typing { .. } | ServerFrame::Presence { .. } => Class::Ephemeral,
        ServerFrame::Message { .. }
        | ServerFrame::MessageUpdated { .. }
        | ServerFrame::MessageDeleted { .. }
        | ServerFrame::Receipt { .. }
        | ServerFrame::ReceiptSummary { .. }
        | ServerFrame::MlsWelcome { .. } => Class::Change,
        ServerFrame::RoomUpdated { .. } | ServerFrame::RoomLeft { .. } => Class::State,
        // Answers to one connection, never published; were one published, it would count
        // each time.
        ServerFrame::Hello { .. }
        | ServerFrame::Ack { .. }
        | ServerFrame::Synced { .. }
        | ServerFrame::Pong { .. }
        | ServerFrame::Error { .. } => Class::State,
    }
}

/// Serializes a server frame once, for every recipient.
pub(crate) fn encode(frame: &ServerFrame) -> bytes::Bytes {
    // Serializing our own types into a Vec cannot fail: no maps with non-string keys and
    // no failing Serialize impls; an empty frame would be dropped by clients, not crash.
    bytes::Bytes::from(serde_json::to_vec(frame).unwrap_or_default())
}
