//! Push notifications out of the server: Web Push (RFC 8030) with VAPID (RFC 8292) and
//! aes128gcm payload encryption (RFC 8291), and signed webhooks, both through the SSRF
//! guard (`crate::outbound`).
//!
//! The service layer (`service/notify.rs`) decides who is notified of what and hands
//! each notification here as `Notice`s, one per subscription and one for the webhook.
//! The `Dispatcher` sends them with retries: a bounded number may be in flight or waiting
//! for a retry at once (`push.queue_size`); past that, new ones are dropped and counted.

pub mod vapid;
pub mod webhook;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use palaver_proto::ErrorCode;
use rand::Rng;
use reqwest::header::{AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE, HeaderMap, HeaderValue};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use url::Url;
use uuid::Uuid;

use crate::config::PushConfig;
use crate::outbound::{AllowList, GuardError, Outbound, OutboundError};
use crate::store::{PushSubscriptionRow, Store};
use crate::telemetry::metric;
use vapid::Vapid;

/// Requests to push services and the webhook in flight at once.
const MAX_CONCURRENT_SENDS: usize = 64;
/// Longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// What can go wrong setting up or sending push notifications.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("VAPID key: {0}")]
    Key(String),
    #[error(transparent)]
    Guard(#[from] GuardError),
    #[error(transparent)]
    Outbound(#[from] OutboundError),
}

/// Where a notice goes.
#[derive(Debug, Clone)]
pub enum Channel {
    /// One browser subscription.
    WebPush(PushSubscriptionRow),
    /// The operator's webhook.
    Webhook,
}

impl Channel {
    fn name(&self) -> &'static str {
        match self {
            Channel::WebPush(_) => "web_push",
            Channel::Webhook => "webhook",
        }
    }
}

/// One notification on its way to one channel.
#[derive(Debug, Clone)]
pub struct Notice {
    /// The notification's id (the webhook's `X-Palaver-Delivery`).
    pub id: Uuid,
    pub user: Uuid,
    pub room: Uuid,
    pub channel: Channel,
    /// The JSON to send (encrypted for Web Push, signed for the webhook).
    pub body: Vec<u8>,
}

/// The result of one attempt.
enum Outcome {
    Sent,
    /// 404 or 410 from a push service: the subscription is gone for good.
    Gone,
    /// Worth another attempt (5xx, 429, timeout, network).
    Retry(&'static str),
    /// Not worth another attempt.
    Failed(&'static str),
}

/// A notice ready to send: URL, headers and body, built once for every attempt.
struct Prepared {
    url: Url,
    headers: HeaderMap,
    body: Vec<u8>,
    /// For the webhook: the key to sign each attempt with.
    sign_with: Option<Arc<[u8]>>,
}

/// Sends deliveries with retries and exponential backoff.
pub struct Dispatcher {
    config: PushConfig,
    vapid: Vapid,
    outbound: Outbound,
    store: Arc<dyn Store>,
    webhook: Option<(Url, Arc<[u8]>)>,
    /// One permit per notice in flight or waiting to retry: the bounded queue.
    queue: Arc<Semaphore>,
    sending: Semaphore,
    /// The sends in progress, each ended by `stop` at shutdown.
    tasks: TaskTracker,
    stop: CancellationToken,
}

impl Dispatcher {
    /// Loads (or creates) the VAPID key in `data_dir` and builds the guarded client.
    pub fn new(
        config: &PushConfig,
        data_dir: &Path,
        store: Arc<dyn Store>,
    ) -> Result<Arc<Dispatcher>, PushError> {
        let vapid =
            Vapid::load_or_create(&data_dir.join("vapid-private.pem"), &config.vapid_subject)?;
        let allow = AllowList::parse(&config.outbound_allow)?;
        let outbound = Outbound::new(allow, Duration::from_millis(config.request_timeout_ms))?;
        let webhook = match (&config.webhook_url, &config.webhook_secret) {
            (Some(url), Some(secret)) => {
                let url = Url::parse(url).map_err(|e| GuardError::BadUrl(e.to_string()))?;
                Some((url, Arc::from(secret.as_bytes())))
            }
            _ => None,
        };
        Ok(Arc::new(Dispatcher {
            config: config.clone(),
            vapid,
            outbound,
            store,
            webhook,
            queue: Arc::new(Semaphore::new(config.queue_size)),
            sending: Semaphore::new(MAX_CONCURRENT_SENDS),
            tasks: TaskTracker::new(),
            stop: CancellationToken::new(),
        }))
    }

    /// The VAPID public key, base64url.
    pub fn public_key(&self) -> &str {
        self.vapid.public_key()
    }

    /// Whether an operator webhook is configured.
    pub fn has_webhook(&self) -> bool {
        self.webhook.is_some()
    }

    /// Whether the guard would let the server reach `url` (checked when a subscription
    /// is stored; every request is checked again).
    pub async fn check_endpoint(&self, url: &Url) -> Result<(), GuardError> {
        self.outbound.guard().check_destination(url).await
    }

    /// Queues a notice without waiting; false (and counted) if the queue is full.
    pub fn enqueue(self: &Arc<Self>, notice: Notice) -> bool {
        let Ok(permit) = self.queue.clone().try_acquire_owned() else {
            metrics::counter!(metric::PUSH_DROPPED, "stage" => "delivery").increment(1);
            // Counted, not logged one by one: under overload that would flood the log.
            tracing::debug!(user = %notice.user, room = %notice.room, "push queue full; notification dropped");
            return false;
        };
        let stop = self.stop.clone();
        let me = self.clone();
        self.tasks.spawn(async move {
            tokio::select! {
                // Notifications are best effort: one still retrying at shutdown is lost.
                _ = stop.cancelled() => {}
                _ = me.run(notice, permit) => {}
            }
        });
        true
    }

    /// Ends every send and retry in progress and waits until they have stopped.
    pub async fn stop(&self) {
        self.stop.cancel();
        self.tasks.close();
        self.tasks.wait().await;
    }

    async fn run(self: Arc<Self>, notice: Notice, _permit: OwnedSemaphorePermit) {
        let prepared = match self.prepare(&notice) {
            Ok(p) => p,
            Err(reason) => return self.failed(&notice, reason, 0),
        };
        let attempts = self.config.max_attempts.max(1);
        for attempt in 1..=attempts {
            let outcome = {
                let _slot = self.sending.acquire().await;
                self.attempt(&prepared).await
            };
            match outcome {
                Outcome::Sent => {
                    metrics::counter!(metric::PUSH_SENT, "channel" => notice.channel.name())
                        .increment(1);
                    return;
                }
                Outcome::Gone => {
                    if let Channel::WebPush(sub) = &notice.channel {
                        tracing::info!(subscription = %sub.id, user = %notice.user, "push subscription expired; removed");
                        metrics::counter!(metric::PUSH_FAILED, "reason" => "gone").increment(1);
                        if let Err(err) = self.store.delete_push_subscription(sub.id, None).await {
                            tracing::error!(%err, "could not remove an expired push subscription");
                        }
                    }
                    return;
                }
                Outcome::Retry(reason) if attempt < attempts => {
                    metrics::counter!("palaver_push_retries_total").increment(1);
                    tracing::debug!(reason, attempt, "push attempt failed; retrying");
                    tokio::time::sleep(self.backoff(attempt)).await;
                }
                Outcome::Retry(reason) | Outcome::Failed(reason) => {
                    return self.failed(&notice, reason, attempt);
                }
            }
        }
    }

    /// Wait after failed attempt `n` (1-based): base × 2^(n-1), plus up to a quarter
    /// more at random so many retries do not hit a recovering service at once.
    fn backoff(&self, n: u32) -> Duration {
        let base = Duration::from_millis(self.config.backoff_base_ms);
        let wait = base
            .saturating_mul(1u32 << (n - 1).min(20))
            .min(MAX_BACKOFF);
        let jitter = rand::thread_rng().gen_range(0..=wait.as_millis() as u64 / 4);
        wait + Duration::from_millis(jitter)
    }

    fn failed(&self, notice: &Notice, reason: &'static str, attempts: u32) {
        metrics::counter!(metric::PUSH_FAILED, "reason" => reason).increment(1);
        tracing::warn!(
            code = %ErrorCode::MessageDeliveryFailed,
            channel = notice.channel.name(),
            user = %notice.user,
            room = %notice.room,
            reason,
            attempts,
            "push notification not delivered"
        );
    }

    fn prepare(&self, notice: &Notice) -> Result<Prepared, &'static str> {
        match &notice.channel {
            Channel::WebPush(sub) => self.prepare_web_push(sub, notice),
            Channel::Webhook => {
                let (url, secret) = self.webhook.as_ref().ok_or("no_webhook")?;
                let mut headers = HeaderMap::new();
                headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                let id = HeaderValue::from_str(&notice.id.to_string()).map_err(|_| "bad_header")?;
                headers.insert("x-palaver-delivery", id);
                Ok(Prepared {
                    url: url.clone(),
                    headers,
                    body: notice.body.clone(),
                    sign_with: Some(secret.clone()),
                })
            }
        }
    }

    /// Encrypts the payload for the subscription (RFC 8291) and signs for its push
    /// service (RFC 8292).
    fn prepare_web_push(
        &self,
        sub: &PushSubscriptionRow,
        notice: &Notice,
    ) -> Result<Prepared, &'static str> {
        use web_push_native::p256::PublicKey;
        let url = Url::parse(&sub.endpoint).map_err(|_| "bad_subscription")?;
        let key = PublicKey::from_sec1_bytes(&sub.p256dh).map_err(|_| "bad_subscription")?;
        if sub.auth.len() != 16 {
            return Err("bad_subscription");
        }
        let auth = web_push_native::Auth::clone_from_slice(&sub.auth);
        let body =
            web_push_native::encrypt(notice.body.clone(), &key, &auth).map_err(|_| "encryption")?;
        let authorization = self.vapid.authorization(&url).map_err(|_| "vapid")?;
        let mut headers = HeaderMap::new();
        let header = |v: String| HeaderValue::from_str(&v).map_err(|_| "bad_header");
        headers.insert("ttl", HeaderValue::from(self.config.ttl_secs));
        headers.insert(
            "urgency",
            HeaderValue::from_static(self.config.urgency.as_str()),
        );
        // One topic per room: a push service holding an undelivered notification for the
        // room replaces it with the newer one (RFC 8030 section 5.4).
        headers.insert(
            "topic",
            header(URL_SAFE_NO_PAD.encode(notice.room.as_bytes()))?,
        );
        headers.insert(CONTENT_ENCODING, HeaderValue::from_static("aes128gcm"));
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        headers.insert(AUTHORIZATION, header(authorization)?);
        Ok(Prepared {
            url,
            headers,
            body,
            sign_with: None,
        })
    }

    async fn attempt(&self, p: &Prepared) -> Outcome {
        let mut headers = p.headers.clone();
        if let Some(secret) = &p.sign_with {
            let sig = webhook::signature(secret, crate::clock::now_ms() / 1000, &p.body);
            match HeaderValue::from_str(&sig) {
                Ok(v) => headers.insert("x-palaver-signature", v),
                Err(_) => return Outcome::Failed("bad_header"),
            };
        }
        let web_push = p.sign_with.is_none();
        match self.outbound.post(&p.url, headers, p.body.clone()).await {
            Err(OutboundError::Refused(err)) => {
                tracing::warn!(%err, "outbound request refused by the SSRF guard");
                Outcome::Failed("refused")
            }
            Err(OutboundError::Timeout) => Outcome::Retry("timeout"),
            Err(OutboundError::Network(_)) => Outcome::Retry("network"),
            Ok(response) => match response.status().as_u16() {
                200..=299 => Outcome::Sent,
                404 | 410 if web_push => Outcome::Gone,
                429 => Outcome::Retry("rate_limited"),
                500..=599 => Outcome::Retry("server_error"),
                _ => Outcome::Failed("rejected"),
            },
        }
    }
}
