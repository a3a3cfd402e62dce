//! Structured logs with `tracing`: text for people, JSON for log pipelines. The filter
//! comes from `PALAVER_LOG` (e.g. `info,palaver_server=debug`); security events use the
//! `audit` target.
//!
//! Also the names of the metrics that the alert rules and the dashboard in `deploy/` read
//! (`metric`), each used by the one place that records it, and [`register`], which gives
//! them their help text and a first value of zero: a counter that first appears at 1 is
//! invisible to `rate()`, so the first refusals of a storm would go unseen, and a series
//! that does not exist yet cannot be told from a node that does not export it.

use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, RateBucket};

/// Installs the global subscriber (once; later calls are ignored).
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_env("PALAVER_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(true);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// Metric names the alert rules (`deploy/prometheus/palaver.rules.yml`) and the dashboard
/// (`deploy/grafana/palaver.json`) depend on. Renaming one breaks an alert: the
/// monitoring test (`tests/monitoring.rs`) checks every name they use is exported.
pub mod metric {
    /// Counter `{route, status}`: HTTP requests answered.
    pub const HTTP_REQUESTS: &str = "palaver_http_requests_total";
    /// Histogram `{route}`: time to answer an HTTP request (to its head, for streams).
    pub const HTTP_REQUEST_SECONDS: &str = "palaver_http_request_seconds";
    /// Histogram: from a send's arrival to its answer (the ack, once stored).
    pub const SEND_SECONDS: &str = "palaver_send_seconds";
    /// Histogram: one group commit of messages.
    pub const COMMIT_SECONDS: &str = "palaver_commit_seconds";
    /// Counter: messages stored.
    pub const MESSAGES: &str = "palaver_messages_total";
    /// Counter: messages whose commit failed after its retries (senders told to retry).
    pub const MESSAGE_DELIVERY_FAILED: &str = "palaver_message_delivery_failed_total";
    /// Gauge: open WebSocket connections.
    pub const WS_CONNECTIONS: &str = "palaver_ws_connections";
    /// Counter: client text frames read from sockets.
    pub const WS_FRAMES: &str = "palaver_ws_frames_total";
    /// Counter `{code}`: `error` frames sent, by error code.
    pub const WS_FRAME_ERRORS: &str = "palaver_ws_frame_errors_total";
    /// Counter `{bucket}`: requests refused by a rate limit.
    pub const RATE_LIMITED: &str = "palaver_rate_limited_total";
    /// Counter: logins with a wrong username or password.
    pub const LOGIN_FAILURES: &str = "palaver_login_failures_total";
    /// Counter: connections refused past `max_connections`.
    pub const CONNECTIONS_REFUSED: &str = "palaver_connections_refused_total";
    /// Counter: sockets closed because their outbound queue was full.
    pub const SLOW_CONSUMERS: &str = "palaver_slow_consumers_total";
    /// Counter: events the in-process bus dropped for a lagging subscriber.
    pub const BUS_LAGGED: &str = "palaver_bus_lagged_total";
    /// Counter: events NATS did not take.
    pub const BUS_PUBLISH_FAILURES: &str = "palaver_bus_publish_failures_total";
    /// Counter: Redis commands that failed.
    pub const CACHE_ERRORS: &str = "palaver_cache_errors_total";
    /// Counter `{channel}`: push notifications delivered.
    pub const PUSH_SENT: &str = "palaver_push_sent_total";
    /// Counter `{reason}`: push notifications given up on.
    pub const PUSH_FAILED: &str = "palaver_push_failed_total";
    /// Counter `{stage}`: push notifications dropped because a queue was full.
    pub const PUSH_DROPPED: &str = "palaver_push_dropped_total";
    /// Counter `{reason}`: uploads refused for the user's quota or the disk's floor.
    pub const MEDIA_REFUSED: &str = "palaver_media_refused_total";
    /// Gauge `{role, engine}`: 1 when the engine answered at the last check, else 0.
    pub const ENGINE_UP: &str = "palaver_engine_up";
    /// Gauge `{dir}`: bytes free for the server on the directory's file system.
    pub const DISK_FREE: &str = "palaver_disk_free_bytes";
    /// Gauge `{dir}`: size of the directory's file system.
    pub const DISK_SIZE: &str = "palaver_disk_size_bytes";
    /// Gauge: `media.min_free_disk_bytes`, below which uploads are refused (0: none).
    pub const DISK_FLOOR: &str = "palaver_media_min_free_disk_bytes";
    /// Gauge `{version}`: always 1; says which version a node runs.
    pub const BUILD_INFO: &str = "palaver_build_info";
}

/// The push channels, the stages where a full queue drops a notification, and the
/// reasons an upload is refused: the label values their metrics start at zero with.
const PUSH_CHANNELS: [&str; 2] = ["web_push", "webhook"];
const PUSH_STAGES: [&str; 3] = ["intake", "pending", "delivery"];
const MEDIA_REFUSALS: [&str; 2] = ["quota", "disk"];
/// The error codes that say the server failed, not the client (the alerts' error frames).
const SERVER_ERROR_CODES: [palaver_proto::ErrorCode; 3] = [
    palaver_proto::ErrorCode::Internal,
    palaver_proto::ErrorCode::Unavailable,
    palaver_proto::ErrorCode::MessageDeliveryFailed,
];

/// Describes the metrics in [`metric`] and starts each at zero (with the label values
/// known in advance). Called once, after the Prometheus recorder is installed.
pub fn register() {
    use metric::*;
    use metrics::{Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge};
    describe_counter!(HTTP_REQUESTS, "HTTP requests answered, by route and status");
    describe_histogram!(
        HTTP_REQUEST_SECONDS,
        Unit::Seconds,
        "Time to answer an HTTP request, by route"
    );
    describe_histogram!(
        SEND_SECONDS,
        Unit::Seconds,
        "From a send's arrival to its ack (stored)"
    );
    describe_histogram!(
        COMMIT_SECONDS,
        Unit::Seconds,
        "One group commit of messages"
    );
    describe_counter!(MESSAGES, "Messages stored");
    describe_counter!(
        MESSAGE_DELIVERY_FAILED,
        "Messages whose commit failed after retries; senders were told to retry"
    );
    describe_gauge!(WS_CONNECTIONS, "Open WebSocket connections");
    describe_counter!(WS_FRAMES, "Client text frames read from sockets");
    describe_counter!(WS_FRAME_ERRORS, "Error frames sent, by code");
    describe_counter!(RATE_LIMITED, "Requests refused by a rate limit, by bucket");
    describe_counter!(LOGIN_FAILURES, "Logins with a wrong username or password");
    describe_counter!(
        CONNECTIONS_REFUSED,
        "Connections refused past max_connections"
    );
    describe_counter!(
        SLOW_CONSUMERS,
        "Sockets closed because their outbound queue was full"
    );
    describe_counter!(
        BUS_LAGGED,
        "Events dropped for a lagging in-process subscriber"
    );
    describe_counter!(BUS_PUBLISH_FAILURES, "Events NATS did not take");
    describe_counter!(CACHE_ERRORS, "Redis commands that failed");
    describe_counter!(PUSH_SENT, "Push notifications delivered, by channel");
    describe_counter!(PUSH_FAILED, "Push notifications given up on, by reason");
    describe_counter!(
        PUSH_DROPPED,
        "Push notifications dropped on a full queue, by stage"
    );
    describe_counter!(MEDIA_REFUSED, "Uploads refused, by reason (quota, disk)");
    describe_gauge!(
        ENGINE_UP,
        "1 when the engine answered at the last check (each scrape), else 0"
    );
    describe_gauge!(
        DISK_FREE,
        Unit::Bytes,
        "Bytes free for the server on the directory's file system"
    );
    describe_gauge!(
        DISK_SIZE,
        Unit::Bytes,
        "Size of the directory's file system"
    );
    describe_gauge!(
        DISK_FLOOR,
        Unit::Bytes,
        "media.min_free_disk_bytes: uploads are refused below it (0: no floor)"
    );
    describe_gauge!(
        BUILD_INFO,
        "Always 1; the version label says what the node runs"
    );

    for name in [
        MESSAGES,
        MESSAGE_DELIVERY_FAILED,
        WS_FRAMES,
        LOGIN_FAILURES,
        CONNECTIONS_REFUSED,
        SLOW_CONSUMERS,
        BUS_LAGGED,
        BUS_PUBLISH_FAILURES,
        CACHE_ERRORS,
    ] {
        counter!(name).absolute(0);
    }
    for bucket in RateBucket::ALL {
        counter!(RATE_LIMITED, "bucket" => bucket.key()).absolute(0);
    }
    for code in SERVER_ERROR_CODES {
        counter!(WS_FRAME_ERRORS, "code" => code.as_str()).absolute(0);
    }
    for channel in PUSH_CHANNELS {
        counter!(PUSH_SENT, "channel" => channel).absolute(0);
    }
    // "gone" (an expired subscription, removed) is the one failure every deployment with
    // push sees; the others appear when they happen.
    counter!(PUSH_FAILED, "reason" => "gone").absolute(0);
    for stage in PUSH_STAGES {
        counter!(PUSH_DROPPED, "stage" => stage).absolute(0);
    }
    for reason in MEDIA_REFUSALS {
        counter!(MEDIA_REFUSED, "reason" => reason).absolute(0);
    }
    // Histograms appear (empty) once registered.
    let _ = (
        metrics::histogram!(SEND_SECONDS),
        metrics::histogram!(COMMIT_SECONDS),
    );
    gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
}
