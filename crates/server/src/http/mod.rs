//! The HTTP edge: one router per resource, merged here under `/api/v1`, plus health,
//! metrics and the OpenAPI document. Handlers only translate; the rules live in
//! `service`.

pub mod account;
pub mod admin;
pub mod auth;
pub mod blocks;
pub mod conversation;
pub mod error;
pub mod extract;
pub mod media;
pub mod messages;
pub mod mls;
pub mod moderation;
pub mod presence;
pub mod push;
pub mod rooms;
pub mod search;
pub mod second_factor;
pub mod sso;
pub mod timeout;
pub mod web;
pub mod ws;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;
use palaver_proto::{ErrorCode, HealthResponse};
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

use crate::gateway::hub::Hub;
use crate::service::Core;
use crate::telemetry::metric;
use error::ApiError;
use extract::Json;

/// What every handler gets.
#[derive(Clone)]
pub struct AppState {
    pub core: Arc<Core>,
    pub hub: Arc<Hub>,
    pub metrics: PrometheusHandle,
    /// Process CPU time and memory, sampled when `/metrics` is read.
    pub process: Arc<metrics_process::Collector>,
    /// False while shutting down, so load balancers stop sending traffic.
    pub ready: Arc<std::sync::atomic::AtomicBool>,
    /// `trusted_proxies`, parsed once.
    pub trusted_proxies: Arc<[ipnet::IpNet]>,
    /// Every upgraded socket's task, so shutdown can wait for them to finish.
    pub connections: tokio_util::task::TaskTracker,
}

/// The whole HTTP surface of the main listener.
pub fn router(state: AppState) -> Router {
    let config = &state.core.config;
    let max_body = config.max_body_bytes;
    let body_timeout = std::time::Duration::from_secs(config.body_timeout_secs);
    // Only where the server speaks TLS itself: behind a proxy, the proxy says it.
    let hsts = match (&config.tls_cert, config.hsts_max_age_secs) {
        (Some(_), secs) if secs > 0 => HeaderValue::from_str(&format!("max-age={secs}")).ok(),
        _ => None,
    };
    let metrics_here = config.metrics_on_main_listener;
    let api = Router::new()
        .merge(auth::router())
        .merge(admin::router())
        .merge(moderation::router())
        .merge(account::router())
        .merge(second_factor::router())
        .merge(sso::router())
        .merge(rooms::router())
        .merge(blocks::router())
        .merge(messages::router())
        .merge(mls::router())
        .merge(conversation::router())
        .merge(presence::router())
        .merge(media::router())
        .merge(push::router())
        .merge(search::router())
        .route("/ws", get(ws::upgrade))
        .route("/openapi.json", get(openapi))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::map_response(no_store));
    let mut app = Router::new()
        .nest("/api/v1", api)
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/", get(web::index))
        .fallback(web::fallback)
        .method_not_allowed_fallback(method_not_allowed);
    if metrics_here {
        app = app.merge(metrics_routes());
    }
    let app = app
        .layer(DefaultBodyLimit::max(max_body))
        .layer(middleware::from_fn_with_state(
            body_timeout,
            timeout::body_timeout,
        ));
    let app = match hsts {
        Some(value) => app.layer(middleware::map_response(move |mut response: Response| {
            let value = value.clone();
            async move {
                response
                    .headers_mut()
                    .insert(header::STRICT_TRANSPORT_SECURITY, value);
                response
            }
        })),
        None => app,
    };
    app.layer(middleware::from_fn(record))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
            // The path only: a query may carry an access token.
            tracing::info_span!("http", method = %req.method(), path = %req.uri().path())
        }))
        .with_state(state)
}

/// `/metrics` alone, for the metrics listener (`metrics_listen`).
pub fn metrics_router(state: AppState) -> Router {
    metrics_routes().with_state(state)
}

fn metrics_routes() -> Router<AppState> {
    Router::new().route("/metrics", get(metrics_text))
}

/// Answers under `/api/v1` are private to their caller (tokens above all), so no cache
/// keeps a JSON answer unless its handler chose a policy of its own. Media bytes keep theirs.
async fn no_store(mut response: Response) -> Response {
    let headers = response.headers_mut();
    let json = headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if json && !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

async fn not_found() -> ApiError {
    ApiError::new(ErrorCode::NotFound, "no such endpoint")
}

async fn method_not_allowed() -> Response {
    let mut response =
        ApiError::new(ErrorCode::BadRequest, "method not allowed on this endpoint").into_response();
    *response.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
    response
}

/// Counts requests and their latency by route.
async fn record(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".into());
    let started = Instant::now();
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!(metric::HTTP_REQUESTS, "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!(metric::HTTP_REQUEST_SECONDS, "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, body = HealthResponse)))]
pub async fn healthz() -> Json<HealthResponse> {
    Json(HealthResponse {
        status: "ok".into(),
    })
}

/// Readiness: the database answers and the node is not shutting down.
#[utoipa::path(get, path = "/readyz", tag = "operations", responses((status = 200, body = HealthResponse), (status = 503, body = palaver_proto::ErrorBody)))]
pub async fn readyz(State(app): State<AppState>) -> Result<Json<HealthResponse>, ApiError> {
    if !app.ready.load(std::sync::atomic::Ordering::Relaxed) {
        return Err(ApiError::new(ErrorCode::Unavailable, "shutting down"));
    }
    // The bus and the cache are checked too, for their gauges (the alerts), but only
    // the database decides readiness, as before: without NATS a node still stores and
    // answers its own users.
    if app.core.check_engines().await.store.is_err() {
        return Err(ApiError::new(
            ErrorCode::Unavailable,
            "database unavailable",
        ));
    }
    Ok(Json(HealthResponse {
        status: "ready".into(),
    }))
}

/// Prometheus metrics, on the metrics listener (`metrics_listen`).
pub async fn metrics_text(State(app): State<AppState>) -> Response {
    metrics::gauge!(metric::WS_CONNECTIONS).set(app.hub.connections() as f64);
    // Fresh at every scrape, for the alert rules (deploy/prometheus).
    let _ = app.core.check_engines().await;
    app.core.record_disk_space().await;
    app.process.collect();
    if let Some(cpu) = process_cpu_seconds() {
        metrics::gauge!("palaver_process_cpu_seconds").set(cpu);
    }
    let mut response = app.metrics.render().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    response
}

/// CPU time (user + system) of this process with 10 ms resolution, from /proc:
/// `process_cpu_seconds_total` is whole seconds, too coarse to divide by deliveries.
fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may contain spaces) start at its closing ')'.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let (utime, stime): (f64, f64) = (fields.get(11)?.parse().ok()?, fields.get(12)?.parse().ok()?);
    // /proc reports in USER_HZ, which Linux fixes at 100 for user space.
    Some((utime + stime) / 100.0)
}

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "operations", responses((status = 200, description = "OpenAPI 3.1 document")))]
pub async fn openapi() -> impl IntoResponse {
    (StatusCode::OK, axum::Json(document()))
}

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// The answers every operation can give, documented once here instead of on each
/// handler: `400 bad_request` where a path, query or body can be malformed (the
/// extractors refuse it before the handler runs), `401` where a token is required, and
/// `413` and `408` where there is a body (the body limit and the body timeout apply to
/// every route).
struct CommonResponses;

impl utoipa::Modify for CommonResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        let error = |description: &str| {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("ErrorBody")))
                        .build(),
                )
                .build()
        };
        for item in openapi.paths.paths.values_mut() {
            for op in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ]
            .into_iter()
            .flatten()
            {
                let responses = &mut op.responses.responses;
                let has_input = op.request_body.is_some()
                    || op.parameters.as_ref().is_some_and(|p| !p.is_empty());
                if has_input {
                    responses.entry("400".into()).or_insert_with(|| {
                        error("bad_request: a malformed path, query or body").into()
                    });
                }
                if op.request_body.is_some() {
                    responses.entry("413".into()).or_insert_with(|| {
                        error("payload_too_large: the body is over the limit").into()
                    });
                    responses.entry("408".into()).or_insert_with(|| {
                        error("request_timeout: the body stopped arriving").into()
                    });
                }
                if op.security.as_ref().is_some_and(|s| !s.is_empty()) {
                    responses.entry("401".into()).or_insert_with(|| {
                        error("unauthorized or token_expired: no valid access token").into()
                    });
                }
            }
        }
    }
}

/// One OpenAPI link: from the answers `statuses` of operation `from`, to operation `to`,
/// with `params` (name, runtime expression) and optionally a request body (JSON with
/// runtime expressions as values) to merge into the target's.
struct LinkSpec {
    from: &'static str,
    statuses: &'static [&'static str],
    name: &'static str,
    to: &'static str,
    params: &'static [(&'static str, &'static str)],
    body: Option<&'static str>,
}

const fn link(
    from: &'static str,
    statuses: &'static [&'static str],
    name: &'static str,
    to: &'static str,
    params: &'static [(&'static str, &'static str)],
) -> LinkSpec {
    LinkSpec {
        from,
        statuses,
        name,
        to,
        params,
        body: None,
    }
}

const CREATED: &[&str] = &["200", "201"];
const ROOM: &[(&str, &str)] = &[("roomId", "$response.body#/id")];
const CONVERSATION: &[(&str, &str)] = &[("conversationId", "$response.body#/id")];
/// The creator is the first member; the second (when there is one) is someone else.
const OTHER_MEMBER: &[(&str, &str)] = &[
    ("roomId", "$response.body#/id"),
    ("userId", "$response.body#/members/1/userId"),
];
const MESSAGE: &[(&str, &str)] = &[("messageId", "$response.body#/id")];
const REPORT: &[(&str, &str)] = &[("reportId", "$response.body#/id")];
const MESSAGE_ROOM: &[(&str, &str)] = &[("roomId", "$response.body#/roomId")];
const MEDIA: &[(&str, &str)] = &[("mediaId", "$response.body#/id")];
const SUBSCRIPTION: &[(&str, &str)] = &[("subscriptionId", "$response.body#/id")];
const SELF: &[(&str, &str)] = &[("userId", "$response.body#/user/id")];

/// Which ids an answer carries and where they can be used next: documentation for client
/// writers, and what lets a stateful fuzzer chain real ids (tests/schema.rs).
const LINKS: &[LinkSpec] = &[
    link("create", CREATED, "GetRoom", "room", ROOM),
    link("create", CREATED, "RenameRoom", "rename", ROOM),
    link("create", CREATED, "SetPicture", "set_picture", ROOM),
    link("create", CREATED, "RemovePicture", "remove_picture", ROOM),
    link("create", CREATED, "AddMembers", "add_members", ROOM),
    link("create", CREATED, "SetRole", "set_role", OTHER_MEMBER),
    link(
        "create",
        CREATED,
        "RemoveMember",
        "remove_member",
        OTHER_MEMBER,
    ),
    link("create", CREATED, "Leave", "leave", ROOM),
    link("create", CREATED, "Accept", "accept", ROOM),
    link("create", CREATED, "Decline", "decline", ROOM),
    link("create", CREATED, "Receipts", "receipts", ROOM),
    link("create", CREATED, "MarkReceipt", "receipt", ROOM),
    link("create", CREATED, "Mute", "mute", ROOM),
    link("create", CREATED, "Unmute", "unmute", ROOM),
    link("create", CREATED, "History", "history", ROOM),
    link("create", CREATED, "Search", "search_messages", ROOM),
    link(
        "create",
        CREATED,
        "ChatHistory",
        "chat_history",
        CONVERSATION,
    ),
    link("create", CREATED, "ChatSend", "chat_send", CONVERSATION),
    LinkSpec {
        body: Some(r#"{"roomId": "$response.body#/id"}"#),
        ..link("create", CREATED, "Send", "send", &[])
    },
    link("send", CREATED, "GetMessage", "message", MESSAGE),
    link("send", CREATED, "React", "react", MESSAGE),
    link("send", CREATED, "Thread", "thread", MESSAGE),
    link("create", CREATED, "Pins", "pins", ROOM),
    link("create", CREATED, "Notifications", "notifications", ROOM),
    link("send", CREATED, "EditMessage", "edit", MESSAGE),
    link("send", CREATED, "DeleteMessage", "delete", MESSAGE),
    link("send", CREATED, "Report", "report_message", MESSAGE),
    link(
        "report_message",
        &["201"],
        "ResolveReport",
        "resolve_report",
        REPORT,
    ),
    link(
        "report_message",
        &["201"],
        "DismissReport",
        "dismiss_report",
        REPORT,
    ),
    link("send", CREATED, "History", "history", MESSAGE_ROOM),
    link(
        "send",
        CREATED,
        "SearchBefore",
        "search_messages",
        &[("before", "$response.body#/id")],
    ),
    link("chat_send", CREATED, "GetMessage", "message", MESSAGE),
    link("chat_send", CREATED, "EditMessage", "edit", MESSAGE),
    link("chat_send", CREATED, "DeleteMessage", "delete", MESSAGE),
    link("upload", &["201"], "Download", "download", MEDIA),
    link("upload", &["201"], "Thumbnail", "thumbnail", MEDIA),
    LinkSpec {
        body: Some(r#"{"mediaId": "$response.body#/id"}"#),
        ..link("upload", &["201"], "SetAvatar", "set_avatar", &[])
    },
    link(
        "subscribe",
        CREATED,
        "Unsubscribe",
        "unsubscribe",
        SUBSCRIPTION,
    ),
    LinkSpec {
        body: Some(r#"{"memberIds": ["$response.body#/user/id"]}"#),
        ..link("register", &["201"], "CreateRoomWith", "create", &[])
    },
    link("register", &["201"], "GetUser", "user", SELF),
    link("register", &["201"], "Presence", "presence", SELF),
    link("register", &["201"], "ChatStatus", "chat_status", SELF),
    link("register", &["201"], "LastSeen", "last_seen", SELF),
    link("login", &["200"], "GetUser", "user", SELF),
    link("login", &["200"], "Presence", "presence", SELF),
];

/// Adds [`LINKS`] to the answers they start from. On the JSON, not utoipa's types: its
/// `Link` (5.5) serializes `operationId` and `requestBody` in snake_case.
fn add_links(doc: &mut serde_json::Value) {
    use serde_json::{Map, Value, json};
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for item in paths.values_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for op in item.values_mut() {
            let Some(id) = op.get("operationId").and_then(Value::as_str) else {
                continue;
            };
            let specs: Vec<&LinkSpec> = LINKS.iter().filter(|l| l.from == id).collect();
            for spec in specs {
                let params: Map<String, Value> = spec
                    .params
                    .iter()
                    .map(|(name, expression)| ((*name).to_owned(), json!(expression)))
                    .collect();
                let mut link = json!({ "operationId": spec.to, "parameters": params });
                if let Some(body) = spec
                    .body
                    .and_then(|b| serde_json::from_str::<Value>(b).ok())
                {
                    link["requestBody"] = body;
                }
                for status in spec.statuses {
                    if let Some(response) = op
                        .get_mut("responses")
                        .and_then(|r| r.get_mut(*status))
                        .and_then(Value::as_object_mut)
                    {
                        let links = response
                            .entry("links")
                            .or_insert_with(|| Value::Object(Map::new()));
                        links[spec.name] = link.clone();
                    }
                }
            }
        }
    }
}

/// The document as served: utoipa's, plus the links. Built once.
pub fn document() -> &'static serde_json::Value {
    static DOC: std::sync::OnceLock<serde_json::Value> = std::sync::OnceLock::new();
    DOC.get_or_init(|| {
        // Serializing utoipa's own types cannot fail (string keys, no custom serializers).
        let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
        add_links(&mut doc);
        doc
    })
}

/// The OpenAPI document of every REST endpoint (the WebSocket is in docs/PROTOCOL.md).
#[derive(OpenApi)]
#[openapi(
    info(title = "Palaver", description = "Palaver chat server REST API. Real-time traffic uses the WebSocket at /api/v1/ws; see docs/PROTOCOL.md."),
    paths(
        auth::register, auth::login, auth::refresh, auth::logout, auth::me, auth::update_me, auth::set_avatar, auth::remove_avatar, auth::user, auth::search,
        account::export, account::delete_account,
        rooms::list, rooms::create, rooms::room, rooms::rename, rooms::set_picture, rooms::remove_picture, rooms::add_members, rooms::set_role, rooms::remove_member, rooms::leave,
        rooms::accept, rooms::decline, rooms::receipts, rooms::receipt,
        blocks::list_blocks, blocks::block, blocks::unblock,
        messages::send, messages::history, messages::message, messages::edit, messages::delete, messages::chat_send, messages::chat_history,
        conversation::react, conversation::unreact, conversation::thread, conversation::forward, conversation::pins, conversation::pin, conversation::unpin,
        conversation::notifications,
        search::search_messages,
        mls::register, mls::revoke, mls::upload, mls::stock, mls::welcomes, mls::take_welcome, mls::claim, mls::devices,
        presence::presence, presence::chat_status, presence::last_seen,
        media::upload, media::usage, media::download, media::thumbnail,
        push::vapid_public_key, push::subscribe, push::subscriptions, push::unsubscribe, push::settings, push::update_settings, push::mute, push::unmute,
        admin::users, admin::create_user, admin::user, admin::disable, admin::enable, admin::set_password, admin::revoke_sessions,
        admin::promote, admin::demote, admin::rooms, admin::delete_room, admin::audit,
        admin::reports, admin::resolve_report, admin::dismiss_report, admin::report_message,
        moderation::mute, moderation::unmute, moderation::bans, moderation::ban, moderation::unban,
        second_factor::second_factor, second_factor::totp_status, second_factor::totp_enrol, second_factor::totp_confirm, second_factor::totp_remove,
        sso::methods, sso::start, sso::link, sso::callback, sso::exchange,
        healthz, readyz, openapi,
    ),
    modifiers(&BearerAuth, &CommonResponses)
)]
pub struct ApiDoc;
