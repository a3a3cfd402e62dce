//! Who may find what (members in any state; not a removed member, not a stranger), every
//! bad input with its code, and the rate limit on searches.

use palaver_proto::search::{SEARCH_MAX_QUERY_BYTES, SEARCH_MAX_TERMS};
use palaver_server::config::{RateBucket, RateLimit};
use serde_json::json;

use super::*;

#[tokio::test]
async fn membership_decides_what_a_search_finds() {
    let app = spawn_app().await;
    let (alice, bob, carol, dave) = (
        app.user("alice").await,
        app.user("bob").await,
        app.user("carol").await,
        app.user("dave").await,
    );
    let room = alice.group("secrets", &[&bob]).await.id;
    // Carol is a stranger to Alice: added, she is invited, and has not accepted.
    let members = format!("/api/v1/rooms/{room}/members");
    let (status, body) = alice
        .api
        .raw(
            Method::POST,
            &members,
            Some(&json!({"userIds": [carol.id]})),
        )
        .await
        .expect("invite");
    assert_eq!(status, 200, "{body}");
    say(
        &alice,
        room,
        &["the vault code is hidden", "金庫の暗証番号"],
    )
    .await;

    // An invited member reads the room, so finds in it.
    assert_eq!(found(&carol, "vault").await, ["the vault code is hidden"]);
    assert_eq!(found_in(&carol, "金庫", room).await, ["金庫の暗証番号"]);
    // A stranger finds nothing, and naming the room is answered as history answers it.
    assert!(found(&dave, "vault").await.is_empty());
    let (status, history) = raw(&dave, &format!("/api/v1/messages/history?roomId={room}")).await;
    let answer = raw(&dave, &path_of("vault", Some(room))).await;
    assert_eq!(
        (answer.0, &answer.1["error"]["code"]),
        (status, &history["error"]["code"])
    );
    assert_error(&answer, 404, "room_not_found");

    // A removed member finds nothing from the room any more.
    assert_eq!(found(&bob, "vault").await, ["the vault code is hidden"]);
    let removal = format!("/api/v1/rooms/{room}/members/{}", bob.id);
    let (status, body) = alice
        .api
        .raw(Method::DELETE, &removal, None)
        .await
        .expect("remove");
    assert_eq!(status, 204, "{body}");
    assert!(found(&bob, "vault").await.is_empty());
    assert!(found(&bob, "金庫").await.is_empty());
    assert_error(
        &raw(&bob, &path_of("vault", Some(room))).await,
        404,
        "room_not_found",
    );
    // Nor can a message of that room be a page's position.
    let theirs = alice.send(room, "another vault note").await;
    let beyond = query("vault", None, None, Some(theirs.id));
    assert_error(&raw(&bob, &path(&beyond)).await, 404, "message_not_found");
}

fn path_of(q: &str, room: Option<Uuid>) -> String {
    path(&query(q, room, None, None))
}

#[tokio::test]
async fn bad_input_is_refused_with_its_code() {
    let app = spawn_app().await;
    let (alice, bob) = (app.user("alice").await, app.user("bob").await);
    let room = alice.dm(&bob).await.id;
    let mine = alice.send(room, "something to find").await;
    let elsewhere = app.user("carol").await;
    let lonely = elsewhere
        .api
        .create_room(Some("alone"), true, &[])
        .await
        .expect("room")
        .1
        .id;
    let hidden = elsewhere.send(lonely, "not for alice").await;

    let invalid = |q: &str| path_of(q, None);
    let cases: Vec<(String, u16, &str)> = vec![
        // q: missing, blank, too long, nothing to search for, too many terms.
        ("/api/v1/search".into(), 400, "bad_request"),
        (invalid(""), 422, "validation_failed"),
        (invalid(" \t "), 422, "validation_failed"),
        (
            invalid(&"a".repeat(SEARCH_MAX_QUERY_BYTES + 1)),
            422,
            "validation_failed",
        ),
        (
            invalid("東".repeat(SEARCH_MAX_QUERY_BYTES / 3 + 1).as_str()),
            422,
            "validation_failed",
        ),
        (invalid("?! … ☺"), 422, "validation_failed"),
        (
            invalid(
                &(0..=SEARCH_MAX_TERMS)
                    .map(|i| format!("w{i}"))
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
            422,
            "validation_failed",
        ),
        // limit: out of range, not a number.
        (
            path(&query("find", None, Some(0), None)),
            422,
            "validation_failed",
        ),
        (
            path(&query("find", None, Some(51), None)),
            422,
            "validation_failed",
        ),
        (
            "/api/v1/search?q=find&limit=many".into(),
            400,
            "bad_request",
        ),
        ("/api/v1/search?q=find&limit=-1".into(), 400, "bad_request"),
        // roomId and before: not UUIDs, unknown, not visible.
        (
            "/api/v1/search?q=find&roomId=room-1".into(),
            400,
            "bad_request",
        ),
        ("/api/v1/search?q=find&before=42".into(), 400, "bad_request"),
        (path_of("find", Some(Uuid::now_v7())), 404, "room_not_found"),
        (path_of("find", Some(lonely)), 404, "room_not_found"),
        (
            path(&query("find", None, None, Some(Uuid::now_v7()))),
            404,
            "message_not_found",
        ),
        (
            path(&query("find", None, None, Some(hidden.id))),
            404,
            "message_not_found",
        ),
    ];
    for (path, status, code) in &cases {
        let answer = raw(&alice, path).await;
        assert_eq!(
            (answer.0, answer.1["error"]["code"].as_str()),
            (*status, Some(*code)),
            "GET {path}: {}",
            answer.1
        );
        assert_error(&answer, *status, code);
    }
    // At the limits themselves, accepted.
    let longest = "a".repeat(SEARCH_MAX_QUERY_BYTES);
    assert_eq!(raw(&alice, &invalid(&longest)).await.0, 200);
    let most: Vec<String> = (0..SEARCH_MAX_TERMS).map(|i| format!("w{i}")).collect();
    assert_eq!(raw(&alice, &invalid(&most.join(" "))).await.0, 200);
    let widest = query("something", Some(room), Some(50), Some(mine.id));
    assert_eq!(raw(&alice, &path(&widest)).await.0, 200);
    // No token, or a bad one.
    let anonymous = app.client();
    let (status, body) = anonymous
        .raw(Method::GET, &invalid("something"), None)
        .await
        .expect("anonymous");
    assert_error(&(status, body), 401, "unauthorized");
}

#[tokio::test]
async fn searches_are_rate_limited_per_user() {
    let app = spawn_app_with(|c| c.rate_limits[RateBucket::Search] = RateLimit::new(1, 2)).await;
    let (alice, bob) = (app.user("alice").await, app.user("bob").await);
    let room = alice.dm(&bob).await.id;
    alice.send(room, "limited").await;
    for _ in 0..2 {
        assert_eq!(found(&alice, "limited").await, ["limited"]);
    }
    let answer = raw(&alice, &path_of("limited", None)).await;
    assert_error(&answer, 429, "rate_limited");
    assert!(
        answer.1["error"]["retryAfterMs"].as_u64().is_some(),
        "{}",
        answer.1
    );
    // Another user has a bucket of their own.
    assert_eq!(found(&bob, "limited").await, ["limited"]);
}
