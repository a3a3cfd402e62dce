//! What each conversation feature does, end to end.

use palaver_proto::{Message, NotificationLevel, ServerFrame};
use reqwest::Method;
use serde_json::json;
use uuid::Uuid;

use super::*;

/// The next `message.updated` (or `message.deleted`) for `id` on a socket.
async fn updated(socket: &mut palaver_client::Socket, id: Uuid) -> Message {
    let frame = socket
        .wait_for(WAIT, |f| match f {
            ServerFrame::MessageUpdated { message } | ServerFrame::MessageDeleted { message } => {
                message.id == id
            }
            _ => false,
        })
        .await
        .expect("message.updated");
    match frame {
        ServerFrame::MessageUpdated { message } | ServerFrame::MessageDeleted { message } => {
            message
        }
        _ => unreachable!(),
    }
}

#[tokio::test]
async fn a_reply_quotes_the_original_as_it_is_now() {
    let app = spawn_app().await;
    let (alice, bob) = (app.user("alice").await, app.user("bob").await);
    let room = alice.dm(&bob).await.id;
    let original = alice.send(room, "Lunch at\n  noon?  ").await;
    let mut b = bob.connect().await;
    let reply = message_of(send_with(&bob, room, "yes", json!({"replyToId": original.id})).await);
    let quote = reply.reply_to.clone().expect("replyTo");
    assert_eq!(
        (
            quote.id,
            quote.sender_id,
            quote.preview.as_str(),
            quote.deleted
        ),
        (original.id, alice.id, "Lunch at noon?", false)
    );
    assert_eq!(fetch(&alice, reply.id).await.reply_to, Some(quote));

    // The original changes: the reply shows it as it is, live and when read again.
    alice
        .api
        .raw(
            Method::PATCH,
            &format!("/api/v1/messages/{}", original.id),
            Some(&json!({"content": "Lunch at one?"})),
        )
        .await
        .expect("edit");
    let live = updated(&mut b, reply.id).await;
    assert_eq!(live.reply_to.expect("quote").preview, "Lunch at one?");
    alice
        .api
        .raw(
            Method::DELETE,
            &format!("/api/v1/messages/{}", original.id),
            None,
        )
        .await
        .expect("delete");
    let live = updated(&mut b, reply.id).await;
    let quote = live.reply_to.expect("quote");
    assert!(quote.deleted && quote.preview.is_empty(), "{quote:?}");
    assert!(live.version > reply.version);
    assert_eq!(fetch(&bob, reply.id).await.reply_to, Some(quote));
}

#[tokio::test]
async fn a_thread_takes_the_rooms_seqs_and_its_root_counts_its_replies() {
    let app = spawn_app().await;
    let users = app.users(&["alice", "bob", "carol"]).await;
    let (alice, bob, carol) = (&users[0], &users[1], &users[2]);
    let room = alice.group("Team", &[bob, carol]).await.id;
    let root = alice.send(room, "Plan for Friday").await;
    let mut a = alice.connect().await;

    let first =
        message_of(send_with(bob, room, "I can do it", json!({"threadRootId": root.id})).await);
    assert_eq!(first.thread_root_id, Some(root.id));
    assert_eq!(
        first.seq,
        root.seq + 1,
        "thread replies take the room's seq"
    );
    let live = updated(&mut a, root.id).await;
    let thread = live.thread.expect("thread summary");
    assert_eq!(
        (thread.reply_count, thread.participant_ids.clone()),
        (1, vec![bob.id])
    );

    let second = message_of(
        send_with(
            carol,
            room,
            "me too",
            json!({"threadRootId": root.id, "alsoInRoom": true}),
        )
        .await,
    );
    assert!(second.also_in_room);
    bob.send(room, "not in the thread").await;
    let third = message_of(send_with(bob, room, "again", json!({"threadRootId": root.id})).await);

    let root_now = fetch(alice, root.id).await;
    let thread = root_now.thread.expect("thread summary");
    assert_eq!(thread.reply_count, 3);
    assert_eq!(
        thread.participant_ids,
        vec![bob.id, carol.id],
        "by first reply"
    );
    assert_eq!(thread.last_reply_at, third.timestamp);

    let (status, body) = call(
        alice,
        Method::GET,
        &format!("/api/v1/messages/{}/thread", root.id),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let ids: Vec<String> = body["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["id"].as_str().expect("id").to_owned())
        .collect();
    assert_eq!(ids, [first.id, second.id, third.id].map(|i| i.to_string()));
    // Paged by seq.
    let (_, body) = call(
        alice,
        Method::GET,
        &format!(
            "/api/v1/messages/{}/thread?after={}&limit=1",
            root.id, first.seq
        ),
        None,
    )
    .await;
    assert_eq!(body["messages"][0]["id"], second.id.to_string());
    assert_eq!(body["messages"].as_array().map(Vec::len), Some(1));

    // Thread replies not sent to the room are not unread in it: after her own reply,
    // Carol has Bob's message in the room to read, not his thread reply.
    let listed = carol.api.rooms().await.expect("rooms");
    let team = listed.iter().find(|r| r.id == room).expect("room");
    assert_eq!(team.unread_count, 1);
}

#[tokio::test]
async fn reactions_are_counted_per_emoji_idempotent_live_and_replayed() {
    let app = spawn_app().await;
    let users = app.users(&["alice", "bob", "carol"]).await;
    let (alice, bob, carol) = (&users[0], &users[1], &users[2]);
    let room = alice.group("Team", &[bob, carol]).await.id;
    let m = alice.send(room, "ship it?").await;
    let mut a = alice.connect().await;

    let after = message_of(react(bob, m.id, "👍", true).await);
    assert_eq!(after.reactions.len(), 1);
    assert_eq!(
        (after.reactions[0].emoji.as_str(), after.reactions[0].count),
        ("👍", 1)
    );
    let live = updated(&mut a, m.id).await;
    assert_eq!(live.reactions, after.reactions);
    // The same again changes nothing, and announces nothing.
    let again = message_of(react(bob, m.id, "👍", true).await);
    assert_eq!(
        (again.reactions.clone(), again.version),
        (after.reactions.clone(), after.version)
    );
    assert_no_frame(
        &mut a,
        "an update for a reaction that changed nothing",
        |f| matches!(f, ServerFrame::MessageUpdated { message } if message.id == m.id),
    )
    .await;
    // A short code is its emoji; skin tones and sequences are one emoji each.
    message_of(react(carol, m.id, ":thumbsup:", true).await);
    message_of(react(carol, m.id, "👨‍👩‍👧", true).await);
    let now = message_of(react(alice, m.id, "👍🏽", true).await);
    let counts: Vec<(&str, u32, Vec<Uuid>)> = now
        .reactions
        .iter()
        .map(|r| (r.emoji.as_str(), r.count, r.user_ids.clone()))
        .collect();
    assert_eq!(
        counts,
        vec![
            ("👍", 2, vec![bob.id, carol.id]),
            ("👨‍👩‍👧", 1, vec![carol.id]),
            ("👍🏽", 1, vec![alice.id]),
        ]
    );

    // Alice goes away; Bob takes his back, Carol adds one; Alice's sync brings both.
    let cursors = palaver_proto::Cursors::from([(room, m.seq)]);
    let mut socket = alice.connect().await;
    let id = socket
        .send_frame(palaver_proto::ClientFrame::Sync {
            cursors: cursors.clone(),
            changes: Default::default(),
        })
        .await
        .expect("sync");
    let changes = match socket.answer(&id, WAIT).await.expect("synced") {
        ServerFrame::Synced { changes, .. } => changes,
        other => panic!("{other:?}"),
    };
    drop(socket);
    message_of(react(bob, m.id, "👍", false).await);
    message_of(react(carol, m.id, "🎉", true).await);
    let mut socket = alice.connect().await;
    let id = socket
        .send_frame(palaver_proto::ClientFrame::Sync { cursors, changes })
        .await
        .expect("sync");
    let mut replayed = Vec::new();
    loop {
        match socket.next_within(WAIT).await.expect("replay") {
            ServerFrame::MessageUpdated { message } => replayed.push(message),
            ServerFrame::Synced { id: Some(got), .. } if got == id => break,
            _ => {}
        }
    }
    assert_eq!(
        replayed.len(),
        1,
        "the one changed message, once: {replayed:?}"
    );
    assert_eq!(replayed[0], fetch(alice, m.id).await);
    let emojis: Vec<&str> = replayed[0]
        .reactions
        .iter()
        .map(|r| r.emoji.as_str())
        .collect();
    assert_eq!(emojis, ["👍", "👨‍👩‍👧", "👍🏽", "🎉"]);
}

#[tokio::test]
async fn mentions_are_resolved_counted_and_room_mentions_are_for_admins() {
    let app = spawn_app().await;
    let users = app.users(&["alice", "bob", "carol"]).await;
    let (alice, bob, carol) = (&users[0], &users[1], &users[2]);
    let room = alice.group("Team", &[bob, carol]).await.id;

    let m = alice
        .send(room, "@Bob and @carol, see bob@example.com; @nobody @alice")
        .await;
    assert_eq!(
        m.mentions,
        vec![bob.id, carol.id],
        "members only, never oneself"
    );
    assert!(!m.mentions_room);
    let by_member = bob.send(room, "@room hello").await;
    assert!(
        !by_member.mentions_room,
        "only owners and admins mention @room"
    );
    let by_owner = alice.send(room, "@room standup").await;
    assert!(by_owner.mentions_room);

    let listed = |u: &TestUser| {
        let api = u.api.clone();
        async move {
            api.rooms()
                .await
                .expect("rooms")
                .into_iter()
                .find(|r| r.id == room)
                .expect("room")
        }
    };
    let carols = listed(carol).await;
    assert_eq!(carols.mention_count, 2, "her name and @room");
    assert_eq!(carols.notification_level, Some(NotificationLevel::All));
    assert_eq!(
        listed(alice).await.mention_count,
        0,
        "bob's @room mentions nobody"
    );
    // Reading clears them.
    let (status, _) = call(
        carol,
        Method::POST,
        &format!("/api/v1/rooms/{room}/receipts"),
        Some(json!({"seq": by_owner.seq, "status": "read"})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(listed(carol).await.mention_count, 0);
    // An edit changes who is mentioned.
    let (status, body) = call(
        alice,
        Method::PATCH,
        &format!("/api/v1/messages/{}", m.id),
        Some(json!({"content": "only @bob now"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(fetch(carol, m.id).await.mentions, vec![bob.id]);

    // The level is per member and room.
    let (status, body) = call(
        carol,
        Method::PUT,
        &format!("/api/v1/rooms/{room}/notifications"),
        Some(json!({"level": "mentions"})),
    )
    .await;
    assert_eq!(status, 204, "{body}");
    assert_eq!(
        listed(carol).await.notification_level,
        Some(NotificationLevel::Mentions)
    );
    assert_eq!(
        listed(bob).await.notification_level,
        Some(NotificationLevel::All)
    );
}

#[tokio::test]
async fn admins_pin_in_groups_both_people_in_a_dm() {
    let app = spawn_app().await;
    let users = app.users(&["alice", "bob"]).await;
    let (alice, bob) = (&users[0], &users[1]);
    let group = alice.group("Team", &[bob]).await.id;
    let m = bob.send(group, "the plan").await;
    assert_error(&pin(bob, group, m.id, true).await, 403, "forbidden");
    let pinned = message_of(pin(alice, group, m.id, true).await);
    assert!(pinned.pinned);
    let (status, body) = call(
        bob,
        Method::GET,
        &format!("/api/v1/rooms/{group}/pins"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["messages"][0]["id"], m.id.to_string());
    assert!(!message_of(pin(alice, group, m.id, false).await).pinned);

    let dm = alice.dm(bob).await.id;
    let d = alice.send(dm, "address").await;
    assert!(message_of(pin(bob, dm, d.id, true).await).pinned);
    // A message of another room is not there.
    assert_error(
        &pin(alice, group, d.id, true).await,
        404,
        "message_not_found",
    );
}

#[tokio::test]
async fn a_forward_is_a_marked_copy_in_another_room() {
    let app = spawn_app().await;
    let users = app.users(&["alice", "bob", "carol"]).await;
    let (alice, bob, carol) = (&users[0], &users[1], &users[2]);
    let from = alice.dm(bob).await.id;
    let to = bob.dm(carol).await.id;
    let original = alice.send(from, "the address is 12 Elm St").await;
    let key = Uuid::now_v7().to_string();
    let body = json!({"roomId": to, "clientMsgId": key});
    let path = format!("/api/v1/messages/{}/forward", original.id);
    let (status, copy) = call(bob, Method::POST, &path, Some(body.clone())).await;
    assert_eq!(status, 201, "{copy}");
    let copy: Message = serde_json::from_value(copy).expect("message");
    assert_eq!(
        (copy.room_id, copy.content.as_str(), copy.forwarded),
        (to, original.content.as_str(), true)
    );
    assert_eq!(copy.sender_id, bob.id);
    // A retry is the same copy.
    let (status, again) = call(bob, Method::POST, &path, Some(body)).await;
    assert_eq!((status, again["id"].clone()), (200, json!(copy.id)));
    // Carol cannot forward what she cannot read.
    let (status, _) = call(
        carol,
        Method::POST,
        &path,
        Some(json!({"roomId": to, "clientMsgId": "x"})),
    )
    .await;
    assert_eq!(status, 404);
}
