//! The SSRF guard: subscriptions to internal endpoints refused, the guarded client
//! refusing internal addresses and redirects to them, and the webhook behind the same
//! guard.

use std::time::Duration;

use palaver_proto::ErrorCode;
use palaver_server::outbound::{AllowList, Outbound, OutboundError};
use reqwest::Method;
use serde_json::json;

use crate::helpers::*;

use super::{Browser, FakePush, WEBHOOK_SECRET, assert_error, call, push_config, strict_app};

#[tokio::test]
async fn subscriptions_refuse_internal_endpoints() {
    let app = strict_app().await;
    let bob = app.user("bob").await;
    for endpoint in [
        "https://127.0.0.1/push",
        "https://169.254.169.254/latest/meta-data/",
        "https://[::ffff:127.0.0.1]/push",
        "https://10.1.2.3/push",
        "https://[::1]/push",
        "https://[fd00::1]/push",
        "https://localhost/push",
        "http://push.example.com/push",
        "ftp://push.example.com/push",
        "not a url",
    ] {
        let mut sub = Browser::new(endpoint.into()).json();
        sub["endpoint"] = json!(endpoint);
        let got = call(&bob, Method::POST, "/api/v1/push/subscriptions", Some(&sub)).await;
        assert_error(got, 422, ErrorCode::ValidationFailed);
    }
    let (_, body) = call(&bob, Method::GET, "/api/v1/push/subscriptions", None).await;
    assert_eq!(body["subscriptions"], json!([]));
}

#[tokio::test]
async fn the_guarded_client_refuses_internal_addresses_and_redirects_to_them() {
    let fake = FakePush::start().await;
    let timeout = Duration::from_secs(5);
    let strict = Outbound::new(AllowList::default(), timeout).expect("client");
    let post = |o: &Outbound, url: String| {
        let o = o.clone();
        async move {
            o.post(
                &url::Url::parse(&url).expect("url"),
                Default::default(),
                Vec::new(),
            )
            .await
        }
    };
    // Straight to an internal address, by literal or by a name that resolves to one.
    for url in [
        fake.url("x"),
        "http://169.254.169.254/latest/meta-data/".into(),
        "http://[::ffff:127.0.0.1]/".into(),
        "http://10.0.0.1/".into(),
        fake.url("x")
            .replace("127.0.0.1", "localhost")
            .replace("http:", "https:"),
    ] {
        let got = post(&strict, url.clone()).await;
        assert!(
            matches!(got, Err(OutboundError::Refused(_))),
            "{url}: {got:?}"
        );
    }
    // Allowed: the fake service itself. Not allowed: where it redirects.
    let allowed = Outbound::new(
        AllowList::parse(&["127.0.0.1".into()]).expect("allow"),
        timeout,
    )
    .expect("client");
    assert_eq!(
        post(&allowed, fake.url("x"))
            .await
            .expect("allowed")
            .status(),
        201
    );
    let port = fake.base.rsplit(':').next().expect("port");
    for target in [
        format!("http://127.0.0.2:{port}/push/x"),
        format!("http://[::ffff:127.0.0.1]:{port}/push/x"),
        format!("http://[::1]:{port}/push/x"),
        "http://169.254.169.254/".into(),
    ] {
        let url = format!(
            "{}/redirect?to={}",
            fake.base,
            url::form_urlencoded::byte_serialize(target.as_bytes()).collect::<String>()
        );
        let got = post(&allowed, url).await;
        assert!(
            matches!(got, Err(OutboundError::Refused(_))),
            "redirect to {target}: {got:?}"
        );
    }
}

/// How many deliveries the SSRF guard refused so far (process-wide: the metrics recorder
/// is shared by every server in this test binary).
async fn refused_deliveries(app: &TestApp) -> u64 {
    let text = reqwest::get(format!("{}/metrics", app.metrics_base))
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("metrics text");
    text.lines()
        .find(|l| l.starts_with(r#"palaver_push_failed_total{reason="refused"}"#))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn the_webhook_goes_through_the_same_guard() {
    let mut fake = FakePush::start().await;
    let port = fake.base.rsplit(':').next().expect("port").to_owned();
    let via_redirect = |target: &str| {
        format!(
            "{}/redirect?to={}",
            fake.base,
            url::form_urlencoded::byte_serialize(target.as_bytes()).collect::<String>()
        )
    };
    for (allow, hook) in [
        // Straight to loopback, which the operator did not allow.
        (vec![], fake.url("hook")),
        // Loopback allowed, but the allowed host redirects to an address spelled
        // differently (IPv4-mapped IPv6) that reaches the same listener.
        (
            vec!["127.0.0.1".to_owned()],
            via_redirect(&format!("http://[::ffff:127.0.0.1]:{port}/push/hook")),
        ),
        // ... or to the cloud metadata address.
        (
            vec!["127.0.0.1".to_owned()],
            via_redirect("http://169.254.169.254/latest/meta-data/"),
        ),
    ] {
        let app = spawn_app_with(|c| {
            push_config(c);
            c.push.outbound_allow = allow.clone();
            c.push.max_attempts = 1;
            c.push.webhook_url = Some(hook.clone());
            c.push.webhook_secret = Some(WEBHOOK_SECRET.into());
        })
        .await;
        let (alice, bob) = (app.user("alice").await, app.user("bob").await);
        let room = alice.dm(&bob).await;
        let before = refused_deliveries(&app).await;
        alice.send(room.id, "to the gateway").await;
        let deadline = tokio::time::Instant::now() + WAIT;
        while refused_deliveries(&app).await <= before {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{hook}: no refused delivery counted"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        fake.assert_silent(QUIET).await;
    }
}
