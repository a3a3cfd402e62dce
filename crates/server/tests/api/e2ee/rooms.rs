//! Encrypted rooms through the delivery service: members chat, the server orders and
//! routes what it cannot read, refuses what does not fit, lets one of two concurrent
//! commits win, and a removed device reads nothing sent after its removal.

use palaver_client::ClientError;
use palaver_client::e2ee::{E2eeError, Processed, mls_request};
use palaver_proto::{ErrorCode, MessageType, MlsKind, SendMessageRequest, ServerFrame};
use reqwest::Method;
use serde_json::json;
use uuid::Uuid;

use super::{Member, encrypted_group, join_from_directory, members, send_mls, start_group};
use crate::helpers::{WAIT, assert_error, spawn_app};

/// Decrypts `member`'s next application message of the room, after processing what
/// comes before it.
async fn read(member: &mut Member, room: Uuid) -> Vec<(String, Uuid)> {
    member
        .device
        .catch_up(&member.user.api, room)
        .await
        .expect("catch up")
        .into_iter()
        .filter_map(|p| match p {
            Processed::Application { plaintext, sender } => {
                Some((String::from_utf8(plaintext).expect("utf-8"), sender.1))
            }
            _ => None,
        })
        .collect()
}

async fn say(member: &mut Member, room: Uuid, text: &str) {
    let data = member
        .device
        .encrypt(room, text.as_bytes())
        .expect("encrypt");
    let stored = send_mls(member, room, data, None).await;
    assert_eq!(stored.kind, MessageType::Mls);
    assert_eq!(stored.content, "");
    let mls = stored.mls.expect("mls");
    assert_eq!(mls.kind, MlsKind::Application);
}

#[tokio::test]
async fn three_devices_chat_and_the_server_stores_no_plaintext() {
    let app = spawn_app().await;
    let mut m = members(&app, &["alice", "bob", "carol"], 2).await;
    let mut carol = m.pop().expect("carol");
    let mut bob = m.pop().expect("bob");
    let mut alice = m.pop().expect("alice");
    let room = encrypted_group(&alice, &[&bob, &carol]).await.id;
    let mut bob_socket = bob.user.connect().await;

    start_group(&mut alice, &mut [&mut carol], room).await;
    // Bob is added by a second commit; his welcome arrives on his socket too.
    let claimed = alice
        .user
        .api
        .claim_key_packages(&[bob.user.id])
        .await
        .expect("claim")
        .key_packages;
    let (commit, welcome) = alice.device.add(room, &claimed).expect("add bob");
    let stored = send_mls(&mut alice, room, commit, Some(welcome)).await;
    assert_eq!(
        stored.mls.as_ref().map(|m| (m.kind, m.epoch)),
        Some((MlsKind::Commit, 1))
    );
    let frame = bob_socket
        .wait_for(WAIT, |f| matches!(f, ServerFrame::MlsWelcome { .. }))
        .await
        .expect("welcome frame");
    let ServerFrame::MlsWelcome { welcome } = frame else {
        unreachable!()
    };
    assert_eq!(
        (welcome.room_id, welcome.device_id, welcome.seq),
        (room, bob.device.device_id, stored.seq)
    );
    join_from_directory(&mut bob, room).await;
    let _ = read(&mut carol, room).await;
    let room_now = alice
        .user
        .api
        .call::<(), palaver_proto::Room>(Method::GET, &format!("/api/v1/rooms/{room}"), None)
        .await
        .expect("room")
        .1;
    assert_eq!(room_now.mls_epoch, Some(2));

    say(&mut alice, room, "the password is swordfish").await;
    say(&mut bob, room, "meet at the old mill").await;
    assert_eq!(
        read(&mut carol, room).await,
        vec![
            (
                "the password is swordfish".to_string(),
                alice.device.device_id
            ),
            ("meet at the old mill".to_string(), bob.device.device_id),
        ]
    );
    assert_eq!(
        read(&mut bob, room).await,
        vec![(
            "the password is swordfish".to_string(),
            alice.device.device_id
        )]
    );
    assert_eq!(alice.device.members(room).len(), 3);
    assert_eq!(bob.device.epoch(room), carol.device.epoch(room));

    // The welcome was taken: nothing waits any more.
    assert!(
        bob.user
            .api
            .welcomes(bob.device.device_id)
            .await
            .expect("welcomes")
            .welcomes
            .is_empty()
    );

    // Search finds nothing, and the database holds no plaintext.
    let found = alice
        .user
        .api
        .search(&palaver_proto::SearchQuery {
            q: "swordfish".into(),
            ..Default::default()
        })
        .await
        .expect("search");
    assert!(found.messages.is_empty());
    let dir = app.data_dir().to_owned();
    let mut scanned = 0;
    for entry in std::fs::read_dir(&dir).expect("data dir") {
        let path = entry.expect("entry").path();
        if path.is_file() {
            let bytes = std::fs::read(&path).expect("read");
            scanned += bytes.len();
            for secret in ["swordfish", "old mill"] {
                assert!(
                    !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                    "{secret:?} in {path:?}"
                );
            }
        }
    }
    assert!(scanned > 0, "the database files were scanned");
}

#[tokio::test]
async fn what_does_not_fit_an_encrypted_room_is_refused() {
    let app = spawn_app().await;
    let mut m = members(&app, &["alice", "bob"], 2).await;
    let mut bob = m.pop().expect("bob");
    let mut alice = m.pop().expect("alice");
    let room = encrypted_group(&alice, &[&bob]).await.id;
    start_group(&mut alice, &mut [&mut bob], room).await;
    let plain = alice.user.group("Plain", &[&bob.user]).await.id;
    let api = alice.user.api.clone();

    // Plaintext into the encrypted room, MLS into the plain one.
    let answer = api
        .raw(
            Method::POST,
            "/api/v1/messages/send",
            Some(&json!({"roomId": room, "clientMsgId": "p1", "content": "hi"})),
        )
        .await
        .expect("answer");
    assert_error(&answer, 422, "encrypted_room");
    let data = alice.device.encrypt(room, b"x").expect("encrypt");
    let send = |room: Uuid, mls: &str| json!({"roomId": room, "clientMsgId": Uuid::now_v7().to_string(), "type": "mls", "mls": mls});
    assert_error(
        &api.raw(
            Method::POST,
            "/api/v1/messages/send",
            Some(&send(plain, &data)),
        )
        .await
        .expect("answer"),
        422,
        "not_encrypted",
    );
    // Malformed, another group's, missing, oversized.
    for bad in ["AAECAwQF", "not base64!", ""] {
        assert_error(
            &api.raw(
                Method::POST,
                "/api/v1/messages/send",
                Some(&send(room, bad)),
            )
            .await
            .expect("answer"),
            422,
            "invalid_mls",
        );
    }
    let other_room = encrypted_group(&alice, &[&bob]).await.id;
    alice.device.create_group(other_room).expect("group");
    let elsewhere = alice.device.encrypt(other_room, b"x").expect("encrypt");
    assert_error(
        &api.raw(
            Method::POST,
            "/api/v1/messages/send",
            Some(&send(room, &elsewhere)),
        )
        .await
        .expect("answer"),
        422,
        "invalid_mls",
    );
    let answer = api
        .raw(
            Method::POST,
            "/api/v1/messages/send",
            Some(&json!({"roomId": room, "clientMsgId": "p2", "type": "mls"})),
        )
        .await
        .expect("answer");
    assert_error(&answer, 422, "validation_failed");
    assert_error(
        &api.raw(
            Method::POST,
            "/api/v1/messages/send",
            Some(&send(room, &"A".repeat(56_000))),
        )
        .await
        .expect("answer"),
        413,
        "payload_too_large",
    );
    // Text or a quote beside the MLS, and a welcome without a commit.
    let answer = api
        .raw(Method::POST, "/api/v1/messages/send", Some(&json!({"roomId": room, "clientMsgId": "p3", "type": "mls", "mls": data, "content": "leak"})))
        .await
        .expect("answer");
    assert_error(&answer, 422, "validation_failed");
    let answer = api
        .raw(Method::POST, "/api/v1/messages/send", Some(&json!({"roomId": room, "clientMsgId": "p4", "type": "mls", "mls": data, "welcome": data})))
        .await
        .expect("answer");
    assert_error(&answer, 422, "validation_failed");

    // What needs the plaintext: edits, reactions, pins, forwards.
    let data = alice.device.encrypt(room, b"hello").expect("encrypt");
    let stored = send_mls(&mut alice, room, data, None).await;
    let id = stored.id;
    for (method, path, body) in [
        (
            Method::PATCH,
            format!("/api/v1/messages/{id}"),
            json!({"content": "edited"}),
        ),
        (
            Method::PUT,
            format!("/api/v1/messages/{id}/reactions/%F0%9F%91%8D"),
            json!({}),
        ),
        (
            Method::PUT,
            format!("/api/v1/rooms/{room}/pins/{id}"),
            json!({}),
        ),
        (
            Method::POST,
            format!("/api/v1/messages/{id}/forward"),
            json!({"roomId": plain, "clientMsgId": "f1"}),
        ),
    ] {
        assert_error(
            &api.raw(method, &path, Some(&body)).await.expect("answer"),
            422,
            "encrypted_room",
        );
    }
    // An application message may be deleted (its ciphertext goes); a commit may not.
    let deleted = api
        .raw(Method::DELETE, &format!("/api/v1/messages/{id}"), None)
        .await
        .expect("answer");
    assert_eq!(deleted.0, 200, "{}", deleted.1);
    assert!(deleted.1.get("mls").is_none(), "{}", deleted.1);
    let commit = api
        .history(room, None, None, Some(50))
        .await
        .expect("history")
        .messages
        .into_iter()
        .find(|m| m.mls.as_ref().is_some_and(|x| x.kind == MlsKind::Commit))
        .expect("a commit");
    assert_error(
        &api.raw(
            Method::DELETE,
            &format!("/api/v1/messages/{}", commit.id),
            None,
        )
        .await
        .expect("answer"),
        409,
        "conflict",
    );

    // The socket refuses the same way.
    let mut socket = alice.user.connect().await;
    let plain_send = SendMessageRequest {
        room_id: room,
        client_msg_id: "ws1".into(),
        content: "hi".into(),
        ..Default::default()
    };
    match socket.send_request(plain_send).await {
        Err(ClientError::Api { code, .. }) => assert_eq!(code, ErrorCode::EncryptedRoom),
        other => panic!("expected encrypted_room, got {other:?}"),
    }
    let garbage = mls_request(room, "ws2", "AAAA".into(), None);
    match socket.send_request(garbage).await {
        Err(ClientError::Api { code, .. }) => assert_eq!(code, ErrorCode::InvalidMls),
        other => panic!("expected invalid_mls, got {other:?}"),
    }
    // And a good one goes through the socket too.
    let data = alice
        .device
        .encrypt(room, b"over the socket")
        .expect("encrypt");
    let (stored, _) = socket
        .send_request(mls_request(room, "ws3", data, None))
        .await
        .expect("ws send");
    alice.device.sent(&stored).expect("sent");
    assert_eq!(
        bob.device
            .catch_up(&bob.user.api, room)
            .await
            .expect("catch up")
            .last(),
        Some(&Processed::Application {
            plaintext: b"over the socket".to_vec(),
            sender: (alice.user.id, alice.device.device_id)
        })
    );
}

#[tokio::test]
async fn of_two_concurrent_commits_exactly_one_wins_and_nobody_forks() {
    let app = spawn_app().await;
    let mut m = members(&app, &["alice", "bob", "carol"], 2).await;
    let mut carol = m.pop().expect("carol");
    let mut bob = m.pop().expect("bob");
    let mut alice = m.pop().expect("alice");
    let room = encrypted_group(&alice, &[&bob, &carol]).await.id;
    start_group(&mut alice, &mut [&mut bob, &mut carol], room).await;
    let epoch = alice.device.epoch(room).expect("epoch");

    // Both renew their keys in the same epoch and send at once.
    let a = alice.device.update(room).expect("alice's commit");
    let b = bob.device.update(room).expect("bob's commit");
    let ra = mls_request(room, "ca", a, None);
    let rb = mls_request(room, "cb", b, None);
    let (got_a, got_b) = tokio::join!(
        alice.user.api.send_request(&ra),
        bob.user.api.send_request(&rb)
    );
    let (winner, loser) = match (got_a, got_b) {
        (Ok((201, msg)), Err(err)) => {
            alice.device.sent(&msg).expect("merge");
            ((&mut alice, msg), (&mut bob, err))
        }
        (Err(err), Ok((201, msg))) => {
            bob.device.sent(&msg).expect("merge");
            ((&mut bob, msg), (&mut alice, err))
        }
        other => panic!("exactly one commit must win: {other:?}"),
    };
    let (winner, won) = winner;
    let (loser, err) = loser;
    match err {
        ClientError::Api {
            status: 409,
            code: ErrorCode::WrongEpoch,
            message,
        } => {
            assert!(message.contains(&format!("{}", epoch + 1)), "{message}");
        }
        other => panic!("expected wrong_epoch, got {other:?}"),
    }
    assert_eq!(won.mls.as_ref().map(|m| m.epoch), Some(epoch));

    // The loser drops its commit, processes the winner's, and commits again.
    loser.device.discard_pending(room).expect("discard");
    let processed = loser
        .device
        .catch_up(&loser.user.api, room)
        .await
        .expect("catch up");
    assert_eq!(
        processed,
        vec![Processed::Commit {
            epoch: epoch + 1,
            removed: false
        }]
    );
    let again = loser.device.update(room).expect("commit again");
    send_mls(loser, room, again, None).await;
    winner
        .device
        .catch_up(&winner.user.api, room)
        .await
        .expect("winner catches up");
    carol
        .device
        .catch_up(&carol.user.api, room)
        .await
        .expect("carol catches up");

    // One epoch for all, and every one reads every other.
    let epochs = [
        alice.device.epoch(room),
        bob.device.epoch(room),
        carol.device.epoch(room),
    ];
    assert_eq!(epochs, [Some(epoch + 2); 3]);
    say(&mut carol, room, "still one group").await;
    for member in [&mut alice, &mut bob] {
        assert_eq!(
            read(member, room).await,
            vec![("still one group".to_string(), carol.device.device_id)]
        );
    }
}

#[tokio::test]
async fn a_removed_device_reads_nothing_sent_after_its_removal() {
    let app = spawn_app().await;
    let mut m = members(&app, &["alice", "bob", "carol"], 2).await;
    let mut carol = m.pop().expect("carol");
    let mut bob = m.pop().expect("bob");
    let mut alice = m.pop().expect("alice");
    let room = encrypted_group(&alice, &[&bob, &carol]).await.id;
    start_group(&mut alice, &mut [&mut bob, &mut carol], room).await;

    // A copy of carol's state as it is before her removal, as a thief would keep it.
    let mut stolen = carol.device.snapshot().expect("snapshot");
    let removal = alice
        .device
        .remove(room, &[(carol.user.id, carol.device.device_id)])
        .expect("remove");
    send_mls(&mut alice, room, removal, None).await;
    say(&mut alice, room, "carol must not read this").await;

    bob.device.catch_up(&bob.user.api, room).await.expect("bob");
    assert_eq!(bob.device.members(room).len(), 2);
    // Carol processes her removal, and then cannot read what follows.
    let history = carol
        .user
        .api
        .history(room, None, None, Some(50))
        .await
        .expect("history")
        .messages;
    let (removal, secret) = (&history[history.len() - 2], &history[history.len() - 1]);
    assert_eq!(
        carol.device.process(removal).expect("removal"),
        Processed::Commit {
            epoch: alice.device.epoch(room).expect("epoch"),
            removed: true
        }
    );
    assert!(matches!(
        carol.device.process(secret),
        Err(E2eeError::Mls(_))
    ));
    // The copy that skips the removal cannot either: the message is of an epoch whose
    // secrets it never had.
    assert!(matches!(stolen.process(secret), Err(E2eeError::Mls(_))));
    let _ = read(&mut bob, room).await;
}

#[tokio::test]
async fn an_update_shuts_out_a_copy_of_the_devices_keys() {
    let app = spawn_app().await;
    let mut m = members(&app, &["alice", "bob"], 2).await;
    let mut bob = m.pop().expect("bob");
    let mut alice = m.pop().expect("alice");
    let room = encrypted_group(&alice, &[&bob]).await.id;
    start_group(&mut alice, &mut [&mut bob], room).await;

    // A thief copies bob's whole state and reads along for now.
    let mut thief = bob.device.snapshot().expect("snapshot");
    say(&mut alice, room, "before the update").await;
    assert_eq!(read(&mut bob, room).await.len(), 1);
    let seen = thief
        .catch_up(&bob.user.api, room)
        .await
        .expect("thief reads");
    assert!(matches!(seen.as_slice(), [Processed::Application { .. }]));

    // Bob renews his keys; what follows is out of the thief's reach.
    let update = bob.device.update(room).expect("update");
    send_mls(&mut bob, room, update, None).await;
    alice
        .device
        .catch_up(&alice.user.api, room)
        .await
        .expect("alice");
    say(&mut alice, room, "after the update").await;
    assert_eq!(
        read(&mut bob, room).await,
        vec![("after the update".to_string(), alice.device.device_id)]
    );
    let history = bob
        .user
        .api
        .history(room, None, None, Some(50))
        .await
        .expect("history")
        .messages;
    let (update, after) = (&history[history.len() - 2], &history[history.len() - 1]);
    assert!(
        thief.process(update).is_err(),
        "the update's secrets are not the thief's"
    );
    assert!(matches!(thief.process(after), Err(E2eeError::Mls(_))));
}
