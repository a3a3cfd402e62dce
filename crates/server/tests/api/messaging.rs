//! The message path over REST: the seeds' endpoints, idempotency, gap-free seq,
//! paging, edit and delete.

use std::collections::HashSet;

use palaver_proto::{ErrorCode, HistoryResponse, Message, MessageStatus, ServerFrame};
use reqwest::Method;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn send_is_idempotent_on_client_msg_id() {
    let app = spawn_app().await;
    let (alice, bob) = (app.user("alice").await, app.user("bob").await);
    let room = alice.dm(&bob).await;

    let (status, first) = alice
        .api
        .send(room.id, "retry-1", "hello")
        .await
        .expect("send");
    assert_eq!(status, 201);
    assert_eq!((first.seq, first.status), (1, MessageStatus::Sent));
    let (status, again) = alice
        .api
        .send(room.id, "retry-1", "hello")
        .await
        .expect("retry");
    assert_eq!(status, 200, "a retry answers 200");
    assert_eq!(again.id, first.id);
    assert_eq!(again.seq, first.seq);

    // The same key over the socket is the same message too.
    let mut socket = alice.connect().await;
    let (over_ws, duplicate) = socket
        .send_message(room.id, "retry-1", "hello")
        .await
        .expect("ws send");
    assert!(duplicate);
    assert_eq!(over_ws.id, first.id);

    // Keys are per sender: bob may use the same one.
    let (status, bobs) = bob
        .api
        .send(room.id, "retry-1", "hi")
        .await
        .expect("bob send");
    assert_eq!((status, bobs.seq), (201, 2));

    let history = alice
        .api
        .history(room.id, None, None, None)
        .await
        .expect("history");
    assert_eq!(history.messages.len(), 2);
}

#[tokio::test]
async fn concurrent_senders_get_gap_free_seqs() {
    let app = spawn_app().await;
    let users = app.users(&["alice", "bob", "carol", "dave"]).await;
    let room = users[0]
        .group("busy", &[&users[1], &users[2], &users[3]])
        .await;
    // The room's events (created, joined) came first.
    let base = room.last_seq;
    let mut tasks = Vec::new();
    for (i, u) in users.iter().enumerate() {
        let api = u.api.clone();
        tasks.push(tokio::spawn(async move {
            let mut seqs = Vec::new();
            for n in 0..25 {
                let (_, m) = api
                    .send(room.id, &format!("u{i}-m{n}"), &format!("{i}/{n}"))
                    .await
                    .expect("send");
                seqs.push(m.seq);
            }
            seqs
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        let seqs = t.await.expect("task");
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "one sender's messages keep their order"
        );
        all.extend(seqs);
    }
    all.sort();
    assert_eq!(
        all,
        (base + 1..=base + 100).collect::<Vec<i64>>(),
        "every seq once, no gaps"
    );
}

#[tokio::test]
async fn history_pages_before_and_after() {
    let app = spawn_app().await;
    let (alice, bob) = (app.user("alice").await, app.user("bob").await);
    let room = alice.dm(&bob).await;
    for i in 1..=25 {
        alice.send(room.id, &format!("m{i}")).await;
    }
    let newest = alice
        .api
        .history(room.id, None, None, Some(10))
        .await
        .expect("newest");
    assert_eq!(
        newest.messages.iter().map(|m| m.seq).collect::<Vec<_>>(),
        (16..=25).collect::<Vec<_>>()
    );
    assert!(newest.has_more);
    let before = alice
        .api
        .history(room.id, Some(16), None, Some(10))
        .await
        .expect("before");
    assert_eq!(before.messages.first().map(|m| m.seq), Some(6));
    assert_eq!(before.messages.last().map(|m| m.seq), Some(15));
    let oldest = alice
        .api
        .history(room.id, Some(6), None, Some(10))
        .await
        .expect("oldest");
    assert_eq!(oldest.messages.len(), 5);
    assert!(!oldest.has_more);
    let after = alice
        .api
        .history(room.id, None, Some(20), Some(3))
        .await
        .expect("after");
    assert_eq!(
        after.messages.iter().map(|m| m.seq).collect::<Vec<_>>(),
        vec![21, 22, 23]
    );
    assert!(after.has_more);
    let (status, body) = alice
        .api
        .raw(
            Method::GET,
            &format!("/api/v1/messages/history?roomId={}&limit=500", room.id),
            None,
        )
        .await
        .expect("raw");
    assert_eq!(status, 422);
    assert_eq!(body["error"]["code"], "validation_failed");
    // Every page is in ascending seq, and pages meet without overlap.
    let mut seen = HashSet::new();
    for page in [&newest, &before, &oldest] {
        for m in &page.messages {
            assert!(seen.insert(m.seq));
        }
    }
    assert_eq!(seen.len(), 25);
}

#[tokio::test]
async fn seed_chat_endpoints_share_the_message_path() {
    let app = spawn_app().await;
    let (alice, bob) = (app.user("alice").await, app.user("bob").await);
    let room = alice.dm(&bob).await;
    let mut bob_socket = bob.connect().await;

    let body = json!({"clientMsgId": "c-1", "content": "via chat"});
    let (status, m): (u16, Message) = alice
        .api
        .call(
            Method::POST,
            &format!("/api/v1/chat/{}", room.id),
            Some(&body),
        )
        .await
        .expect("chat send");
    assert_eq!((status, m.seq, m.content.as_str()), (201, 1, "via chat"));
    let (status, again): (u16, Message) = alice
        .api
        .call(
            Method::POST,
            &format!("/api/v1/chat/{}", room.id),
            Some(&body),
        )
        .await
        .expect("chat retry");
    assert_eq!((status, again.id), (200, m.id));
    assert_eq!(
        next_message(&mut bob_socket).await.id,
        m.id,
        "REST sends are delivered live"
    );

    let (_, page): (u16, HistoryResponse) = bob
        .api
        .call::<(), _>(
            Method::GET,
            &format!("/api/v1/chat/{}?limit=5", room.id),
            None,
        )
        .await
        .expect("chat history");
    assert_eq!(page.messages.len(), 1);
    let (_, page): (u16, HistoryResponse) = bob
        .api
        .call::<(), _>(
            Method::GET,
            &format!("/api/v1/messages/history?roomId={}", room.id),
            None,
        )
        .await
        .expect("history");
    assert_eq!(page.messages[0].id, m.id);
    let (status, one): (u16, Message) = bob
        .api
        .call::<(), _>(Method::GET, &format!("/api/v1/messages/{}", m.id), None)
        .await
        .expect("get one");
    assert_eq!((status, one.id), (200, m.id));
}

#[tokio::test]
async fn edit_and_delete_are_seen_live_and_only_by_the_sender() {
    let app = spawn_app().await;
    let (alice, bob) = (app.user("alice").await, app.user("bob").await);
    let room = alice.dm(&bob).await;
    let m = alice.send(room.id, "helo").await;
    let mut bob_socket = bob.connect().await;

    let (status, edited): (u16, Message) = alice
        .api
        .call(
            Method::PATCH,
            &format!("/api/v1/messages/{}", m.id),
            Some(&json!({"content": "hello"})),
        )
        .await
        .expect("edit");
    assert_eq!((status, edited.content.as_str()), (200, "hello"));
    assert!(edited.edited_at.is_some());
    match bob_socket
        .wait_for(WAIT, |f| matches!(f, ServerFrame::MessageUpdated { .. }))
        .await
        .expect("updated")
    {
        ServerFrame::MessageUpdated { message } => {
            assert_eq!((message.id, message.content.as_str()), (m.id, "hello"))
        }
        _ => unreachable!(),
    }

    let err = bob
        .api
        .call::<_, Message>(
            Method::PATCH,
            &format!("/api/v1/messages/{}", m.id),
            Some(&json!({"content": "mine"})),
        )
        .await
        .expect_err("not bob's");
    assert_eq!(err.code(), Some(ErrorCode::Forbidden));
    let err = bob
        .api
        .call::<(), Message>(Method::DELETE, &format!("/api/v1/messages/{}", m.id), None)
        .await
        .expect_err("not bob's");
    assert_eq!(err.code(), Some(ErrorCode::Forbidden));

    let (_, deleted): (u16, Message) = alice
        .api
        .call::<(), _>(Method::DELETE, &format!("/api/v1/messages/{}", m.id), None)
        .await
        .expect("delete");
    assert!(deleted.deleted);
    assert_eq!(deleted.content, "");
    match bob_socket
        .wait_for(WAIT, |f| matches!(f, ServerFrame::MessageDeleted { .. }))
        .await
        .expect("deleted")
    {
        ServerFrame::MessageDeleted { message } => {
            assert!(message.deleted && message.content.is_empty())
        }
        _ => unreachable!(),
    }
    let history = bob
        .api
        .history(room.id, None, None, None)
        .await
        .expect("history");
    assert_eq!(history.messages.len(), 1, "the seq stays");
    assert!(history.messages[0].deleted);
    let err = alice
        .api
        .call::<_, Message>(
            Method::PATCH,
            &format!("/api/v1/messages/{}", m.id),
            Some(&json!({"content": "back"})),
        )
        .await
        .expect_err("deleted");
    assert_eq!(err.code(), Some(ErrorCode::Conflict));
}
