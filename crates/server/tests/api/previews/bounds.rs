//! What a preview may cost and where it may go: the SSRF guard (internal addresses, at
//! every redirect), only HTML pages and pictures, the size and time budgets, the
//! picture's limit, and the sender's rate limit. Each failure is cached like a preview,
//! and the message stays as it was sent.

use std::time::{Duration, Instant};

use palaver_server::config::{RateBucket, RateLimit};

use crate::helpers::*;

use super::{Pages, allow_pages, app, cached, fetched, linking, no_update, previewed};

/// `url` escaped as a query value.
fn query(url: &str) -> String {
    url::form_urlencoded::byte_serialize(url.as_bytes()).collect()
}

#[tokio::test]
async fn the_guard_refuses_internal_addresses_when_nothing_is_allowed() {
    let pages = Pages::start().await;
    // No allow-list: the loopback page server is as internal as anything.
    let app = spawn_app().await;
    let (alice, bob) = (app.user("alice").await, app.user("bob").await);
    let room = alice.dm(&bob).await;
    let mut bob_socket = bob.connect().await;
    let port = pages.base.rsplit(':').next().expect("port");
    for url in [
        pages.url("/page/inside"),
        format!("http://[::ffff:127.0.0.1]:{port}/page/inside"),
        format!("http://localhost:{port}/page/inside"),
        "http://10.0.0.1/admin".to_owned(),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
    ] {
        let sent = alice.send(room.id, &linking(&url)).await;
        let key = url::Url::parse(&url).expect("url").to_string();
        assert_eq!(cached(&app, &key).await, None, "{url}: a failure, cached");
        no_update(&mut bob_socket, sent.id).await;
        assert_eq!(fetched(&bob, sent.id).await.link_preview, None);
    }
    assert_eq!(pages.hits("/page/inside"), 0, "never reached");
}

#[tokio::test]
async fn every_redirect_is_checked_and_counted() {
    let pages = Pages::start().await;
    let app = spawn_app_with(|c| {
        allow_pages(c);
        c.link_previews.max_redirects = 2;
    })
    .await;
    let (alice, bob) = (app.user("alice").await, app.user("bob").await);
    let room = alice.dm(&bob).await;
    let mut bob_socket = bob.connect().await;
    let redirect = |to: &str| pages.url(&format!("/redirect?to={}", query(to)));

    // Followed to an allowed page: its card, under the link that was sent.
    let via = redirect("/plain/target");
    let sent = alice.send(room.id, &linking(&via)).await;
    let card = previewed(&mut bob_socket, sent.id)
        .await
        .link_preview
        .expect("card");
    assert_eq!(
        (card.url.as_str(), card.title.as_str()),
        (via.as_str(), "Plain target")
    );

    // To an internal address, by literal: refused at that hop, nothing asked of it.
    let port = pages.base.rsplit(':').next().expect("port");
    for target in [
        "http://10.0.0.1/".to_owned(),
        format!("http://[::ffff:127.0.0.1]:{port}/plain/mapped"),
        format!("http://127.0.0.2:{port}/plain/other-loopback"),
    ] {
        let url = redirect(&target);
        let sent = alice.send(room.id, &linking(&url)).await;
        assert_eq!(cached(&app, &url).await, None, "{target}");
        no_update(&mut bob_socket, sent.id).await;
    }
    assert_eq!(
        pages.hits("/plain/mapped") + pages.hits("/plain/other-loopback"),
        0
    );

    // More hops than allowed.
    let far = redirect(&redirect(&redirect("/plain/far")));
    let sent = alice.send(room.id, &linking(&far)).await;
    assert_eq!(cached(&app, &far).await, None);
    no_update(&mut bob_socket, sent.id).await;
    assert_eq!(pages.hits("/plain/far"), 0);
}

#[tokio::test]
async fn only_html_is_read_as_a_page() {
    let pages = Pages::start().await;
    let app = app().await;
    let (alice, bob) = (app.user("alice").await, app.user("bob").await);
    let room = alice.dm(&bob).await;
    let mut bob_socket = bob.connect().await;
    for path in ["/json", "/picture.jpg"] {
        let url = pages.url(path);
        let sent = alice.send(room.id, &linking(&url)).await;
        assert_eq!(cached(&app, &url).await, None, "{path}");
        assert_eq!(pages.hits(path), 1, "{path} asked for once");
        no_update(&mut bob_socket, sent.id).await;
    }
    // A failure is remembered: the same link again is not asked for again.
    let again = alice.send(room.id, &pages.url("/json")).await;
    no_update(&mut bob_socket, again.id).await;
    assert_eq!(pages.hits("/json"), 1);
}

#[tokio::test]
async fn a_page_is_read_up_to_its_size_budget() {
    let pages = Pages::start().await;
    let app = app().await;
    let (alice, bob) = (app.user("alice").await, app.user("bob").await);
    let room = alice.dm(&bob).await;
    let mut bob_socket = bob.connect().await;

    // The head past the first 512 KiB is never read: no title, no card.
    let big = pages.url("/big");
    let sent = alice.send(room.id, &linking(&big)).await;
    assert_eq!(cached(&app, &big).await, None);
    no_update(&mut bob_socket, sent.id).await;

    // A page that never ends is read up to the budget, and its head makes the card.
    let started = Instant::now();
    let endless = pages.url("/endless");
    let sent = alice.send(room.id, &linking(&endless)).await;
    let card = previewed(&mut bob_socket, sent.id)
        .await
        .link_preview
        .expect("card");
    assert_eq!(card.title, "Endless");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_slow_page_runs_out_of_time() {
    let pages = Pages::start().await;
    let app = spawn_app_with(|c| {
        allow_pages(c);
        c.link_previews.timeout_ms = 400;
    })
    .await;
    let (alice, bob) = (app.user("alice").await, app.user("bob").await);
    let room = alice.dm(&bob).await;
    let mut bob_socket = bob.connect().await;
    let slow = pages.url("/page/slow?delay_ms=3000");
    let started = Instant::now();
    let sent = alice.send(room.id, &linking(&slow)).await;
    assert_eq!(
        cached(&app, &slow).await,
        None,
        "timed out, cached as a failure"
    );
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "gave up after {:?}",
        started.elapsed()
    );
    no_update(&mut bob_socket, sent.id).await;
    assert_eq!(pages.hits("/page/slow"), 1);
}

#[tokio::test]
async fn a_picture_over_its_limit_is_left_out() {
    let pages = Pages::start().await;
    let app = spawn_app_with(|c| {
        allow_pages(c);
        c.link_previews.max_image_bytes = 32 * 1024;
    })
    .await;
    let (alice, bob) = (app.user("alice").await, app.user("bob").await);
    let room = alice.dm(&bob).await;
    let mut bob_socket = bob.connect().await;
    let url = pages.url("/page/noisy?image=/noise.png");
    let sent = alice.send(room.id, &linking(&url)).await;
    let card = previewed(&mut bob_socket, sent.id)
        .await
        .link_preview
        .expect("card");
    assert_eq!(card.title, "Page noisy");
    assert_eq!(card.image_url, None, "the card goes without its picture");
    assert_eq!(pages.hits("/noise.png"), 1);
    // Nothing of it was stored.
    let media = app.db_rows("SELECT COUNT(*) FROM media").await;
    assert_eq!(media[0][0].as_deref(), Some("0"));
}

#[tokio::test]
async fn fetches_count_against_the_senders_rate_limit() {
    let pages = Pages::start().await;
    let app = spawn_app_with(|c| {
        allow_pages(c);
        c.rate_limits[RateBucket::Previews] = RateLimit::new(1, 1);
    })
    .await;
    let (alice, bob) = (app.user("alice").await, app.user("bob").await);
    let room = alice.dm(&bob).await;
    let mut bob_socket = bob.connect().await;
    let first = alice
        .send(room.id, &linking(&pages.url("/plain/first")))
        .await;
    previewed(&mut bob_socket, first.id).await;
    // Alice's budget is spent: her next new link gets no card, and is not read.
    let second = alice
        .send(room.id, &linking(&pages.url("/plain/second")))
        .await;
    no_update(&mut bob_socket, second.id).await;
    assert_eq!(pages.hits("/plain/second"), 0);
    // A link already in the cache costs nothing; another sender has a budget of their own.
    let cached_again = alice.send(room.id, &pages.url("/plain/first")).await;
    previewed(&mut bob_socket, cached_again.id).await;
    let bobs = bob.send(room.id, &pages.url("/plain/second")).await;
    previewed(&mut bob_socket, bobs.id).await;
    assert_eq!(
        (pages.hits("/plain/first"), pages.hits("/plain/second")),
        (1, 1)
    );
}
