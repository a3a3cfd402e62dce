//! Requests and invitations: a 1:1 room from a stranger is a request until accepted,
//! someone known joins a group directly while a stranger is invited, leaving a 1:1 room
//! closes it, and the consent routes check their input.

use palaver_proto::{
    BlockList, ClientFrame, MemberState, PresenceStatus, ReceiptKind, Room, ServerFrame,
};
use reqwest::Method;
use serde_json::json;
use uuid::Uuid;

use crate::helpers::*;

use super::{activity_of, away, frame, request, request_to, room_updated, sees, state_of, typing};

#[tokio::test]
async fn a_dm_from_a_stranger_is_a_request_until_accepted() {
    let app = spawn_app().await;
    let [alice, bob] = <[TestUser; 2]>::try_from(app.users(&["alice", "bob"]).await)
        .ok()
        .expect("two users");
    let mut a = alice.connect().await;
    let mut b = bob.connect().await;

    // Alice opens a 1:1 room with Bob, whom she does not know: a request.
    let (status, room) = alice
        .api
        .create_room(None, false, &[bob.id])
        .await
        .expect("create");
    assert_eq!(status, 201);
    assert_eq!(room.state, MemberState::Joined);
    assert_eq!(state_of(&room, &alice), Some(MemberState::Joined));
    assert_eq!(state_of(&room, &bob), Some(MemberState::Invited));
    // Bob hears of it live, as a request from Alice; it is in his list as one.
    let heard = room_updated(&mut b, room.id).await;
    assert_eq!(
        (heard.state, heard.invited_by),
        (MemberState::Invited, Some(alice.id))
    );
    let listed = bob.api.rooms().await.expect("rooms");
    let mine = listed.iter().find(|r| r.id == room.id).expect("listed");
    assert_eq!(
        (mine.state, mine.invited_by),
        (MemberState::Invited, Some(alice.id))
    );

    // Bob reads what Alice sends; her message does not look read while he has not answered.
    let sent = alice.send(room.id, "hello, we have not met").await;
    assert_eq!(next_message(&mut b).await.id, sent.id);
    let history = bob
        .api
        .history(room.id, None, None, None)
        .await
        .expect("history");
    assert_eq!(history.messages.len(), 1);
    let path = format!("/api/v1/messages/{}", sent.id);
    let answer = request(&alice, Method::GET, &path, None).await;
    assert_eq!(answer.1["status"], "sent", "{}", answer.1);

    // Until he accepts, Bob sends nothing: no message, typing or receipt.
    let answer = request(
        &bob,
        Method::POST,
        "/api/v1/messages/send",
        Some(json!({"roomId": room.id, "clientMsgId": "b1", "content": "hi"})),
    )
    .await;
    assert_error(&answer, 403, "forbidden");
    assert_eq!(
        frame(&mut b, typing(room.id)).await,
        Err("forbidden".into())
    );
    let read = ClientFrame::Receipt {
        room_id: room.id,
        seq: sent.seq,
        status: ReceiptKind::Read,
    };
    assert_eq!(frame(&mut b, read.clone()).await, Err("forbidden".into()));
    let path = format!("/api/v1/rooms/{}/receipts", room.id);
    assert_error(
        &request(&bob, Method::GET, &path, None).await,
        403,
        "forbidden",
    );

    // Neither sees the other's presence or last seen, nor hears activity, either way.
    assert!(!sees(&alice, &bob).await, "Alice sees Bob's presence");
    assert!(!sees(&bob, &alice).await, "Bob sees Alice's presence");
    frame(&mut a, away()).await.expect("away");
    frame(&mut a, typing(room.id)).await.expect("typing");
    assert_no_frame(&mut b, "Alice's activity", activity_of(alice.id)).await;
    frame(&mut b, away()).await.expect("away");
    assert_no_frame(&mut a, "Bob's activity", activity_of(bob.id)).await;
    // Nor does Bob see Alice's markers in the room.
    let seen_by_bob = bob.api.rooms().await.expect("rooms");
    let alice_there = seen_by_bob[0]
        .members
        .iter()
        .find(|m| m.user_id == alice.id)
        .expect("alice");
    assert_eq!((alice_there.delivered_seq, alice_there.read_seq), (0, 0));

    // He accepts: Alice hears it, and from now on everything flows both ways.
    let accepted = bob.api.accept(room.id).await.expect("accept");
    assert_eq!(accepted.state, MemberState::Joined);
    assert_eq!(accepted.invited_by, None);
    let updated = room_updated(&mut a, room.id).await;
    assert_eq!(state_of(&updated, &bob), Some(MemberState::Joined));
    assert!(sees(&alice, &bob).await && sees(&bob, &alice).await);
    frame(&mut b, typing(room.id)).await.expect("typing");
    a.wait_for(WAIT, activity_of(bob.id))
        .await
        .expect("Bob's typing");
    frame(&mut b, read).await.expect("read");
    a.wait_for(
        WAIT,
        |f| matches!(f, ServerFrame::ReceiptSummary { read_seq, .. } if *read_seq == sent.seq),
    )
    .await
    .expect("the summary moves");
    frame(
        &mut a,
        ClientFrame::Presence {
            status: PresenceStatus::Online,
        },
    )
    .await
    .expect("back");
    b.wait_for(
        WAIT,
        |f| matches!(f, ServerFrame::Presence { user_id, .. } if *user_id == alice.id),
    )
    .await
    .expect("Alice's presence");
    bob.send(room.id, "hello Alice").await;
    // Accepting again changes nothing.
    assert_eq!(
        bob.api.accept(room.id).await.expect("again").state,
        MemberState::Joined
    );
}

#[tokio::test]
async fn someone_known_joins_directly_and_a_stranger_is_invited() {
    let app = spawn_app().await;
    let users = app.users(&["alice", "bob", "carol", "dave"]).await;
    let [alice, bob, carol, dave] = <[TestUser; 4]>::try_from(users).ok().expect("four");
    // Alice and Bob know each other from a group they both joined.
    alice.group("friends", &[&bob]).await;
    let dm = alice.dm_request(&bob).await;
    assert_eq!(
        state_of(&dm, &bob),
        Some(MemberState::Joined),
        "no request between friends"
    );
    bob.send(dm.id, "straight in").await;

    // Carol is a stranger to Alice, Bob a friend: one invitation, one membership.
    let mut c = carol.connect().await;
    let (_, group) = alice
        .api
        .create_room(Some("mixed"), true, &[bob.id, carol.id])
        .await
        .expect("create");
    assert_eq!(state_of(&group, &bob), Some(MemberState::Joined));
    assert_eq!(state_of(&group, &carol), Some(MemberState::Invited));
    let heard = room_updated(&mut c, group.id).await;
    assert_eq!(
        (heard.state, heard.invited_by),
        (MemberState::Invited, Some(alice.id))
    );
    // Adding someone: Dave, a stranger, is invited too.
    let path = format!("/api/v1/rooms/{}/members", group.id);
    let added = request(
        &alice,
        Method::POST,
        &path,
        Some(json!({"userIds": [dave.id]})),
    )
    .await;
    assert_eq!(added.0, 200, "{}", added.1);
    let added: Room = serde_json::from_value(added.1).expect("room");
    assert_eq!(state_of(&added, &dave), Some(MemberState::Invited));

    // Bob's typing reaches Alice, not the invited Carol.
    let mut a = alice.connect().await;
    let mut b = bob.connect().await;
    frame(&mut b, typing(group.id)).await.expect("typing");
    a.wait_for(WAIT, activity_of(bob.id)).await.expect("typing");
    assert_no_frame(
        &mut c,
        "typing in a group she has not joined",
        activity_of(bob.id),
    )
    .await;
    // A pending invitation holds no one's receipts back: Bob's read makes it read.
    let sent = alice.send(group.id, "welcome").await;
    receipt(&mut b, group.id, sent.seq, ReceiptKind::Read).await;
    a.wait_for(
        WAIT,
        |f| matches!(f, ServerFrame::ReceiptSummary { read_seq, .. } if *read_seq == sent.seq),
    )
    .await
    .expect("read by everyone who joined");
    assert_no_frame(&mut c, "receipts", |f| {
        matches!(
            f,
            ServerFrame::ReceiptSummary { .. } | ServerFrame::Receipt { .. }
        )
    })
    .await;

    // Carol declines: the group disappears for her, the others see her gone.
    let decline = format!("/api/v1/rooms/{}/decline", group.id);
    assert_eq!(request(&carol, Method::POST, &decline, None).await.0, 204);
    c.wait_for(
        WAIT,
        |f| matches!(f, ServerFrame::RoomLeft { room_id, .. } if *room_id == group.id),
    )
    .await
    .expect("room.left");
    let after = room_updated(&mut a, group.id).await;
    assert_eq!(state_of(&after, &carol), None);
    assert!(
        !carol
            .api
            .rooms()
            .await
            .expect("rooms")
            .iter()
            .any(|r| r.id == group.id)
    );
    // Only an invitation is declined: Bob has joined, so he would leave instead.
    assert_error(
        &request(&bob, Method::POST, &decline, None).await,
        409,
        "conflict",
    );
    // And what one cannot see is not there to decline or accept.
    assert_error(
        &request(&carol, Method::POST, &decline, None).await,
        404,
        "room_not_found",
    );
    let accept = format!("/api/v1/rooms/{}/accept", group.id);
    assert_error(
        &request(&carol, Method::POST, &accept, None).await,
        404,
        "room_not_found",
    );
}

#[tokio::test]
async fn leaving_a_dm_closes_it_and_opening_it_again_is_a_new_request() {
    let app = spawn_app().await;
    let [alice, bob] = <[TestUser; 2]>::try_from(app.users(&["alice", "bob"]).await)
        .ok()
        .expect("two users");
    let room = alice.dm(&bob).await;
    let first = alice.send(room.id, "one").await;
    let mut a = alice.connect().await;

    // Bob leaves: the room is gone for him; Alice sees him gone and cannot send.
    let leave = format!("/api/v1/rooms/{}/leave", room.id);
    assert_eq!(request(&bob, Method::POST, &leave, None).await.0, 204);
    let closed = room_updated(&mut a, room.id).await;
    assert_eq!(closed.members.len(), 1);
    assert_eq!(closed.name, "Bob", "still named after the one who left");
    assert!(
        !bob.api
            .rooms()
            .await
            .expect("rooms")
            .iter()
            .any(|r| r.id == room.id)
    );
    let answer = request(
        &alice,
        Method::POST,
        "/api/v1/messages/send",
        Some(json!({"roomId": room.id, "clientMsgId": "after", "content": "still there?"})),
    )
    .await;
    assert_error(&answer, 409, "direct_closed");
    assert!(!sees(&alice, &bob).await, "a closed room is no shared room");

    // Alice opens it again: the same room, its history kept, and a new request for Bob.
    let (status, again) = alice
        .api
        .create_room(None, false, &[bob.id])
        .await
        .expect("reopen");
    assert_eq!((status, again.id), (200, room.id));
    assert_eq!(state_of(&again, &bob), Some(MemberState::Invited));
    let theirs = bob.api.rooms().await.expect("rooms");
    let theirs = theirs
        .iter()
        .find(|r| r.id == room.id)
        .expect("listed again");
    assert_eq!(theirs.state, MemberState::Invited);
    let history = bob
        .api
        .history(room.id, None, None, None)
        .await
        .expect("history");
    assert_eq!(history.messages[0].id, first.id, "nothing stored was lost");
    bob.api.accept(room.id).await.expect("accept");
    bob.send(room.id, "back").await;
    alice.send(room.id, "welcome back").await;

    // Alice leaves too; when Bob, the one left behind... opens it, he is back in at once
    // but Alice, who left, is asked again.
    assert_eq!(request(&alice, Method::POST, &leave, None).await.0, 204);
    let (status, reopened) = bob
        .api
        .create_room(None, false, &[alice.id])
        .await
        .expect("reopen");
    assert_eq!((status, reopened.id), (200, room.id));
    assert_eq!(state_of(&reopened, &alice), Some(MemberState::Invited));
    // Opening the 1:1 room one was asked into is accepting it.
    let (_, answered) = alice
        .api
        .create_room(None, false, &[bob.id])
        .await
        .expect("open");
    assert_eq!(
        (answered.id, answered.state),
        (room.id, MemberState::Joined)
    );
    // Nobody is removed from a 1:1 room by the other.
    let remove = format!("/api/v1/rooms/{}/members/{}", room.id, bob.id);
    assert_error(
        &request(&alice, Method::DELETE, &remove, None).await,
        403,
        "forbidden",
    );
}

#[tokio::test]
async fn consent_routes_check_their_input() {
    let app = spawn_app().await;
    let [alice, bob] = <[TestUser; 2]>::try_from(app.users(&["alice", "bob"]).await)
        .ok()
        .expect("two users");
    let room = alice.dm_request(&bob).await;
    let long = "x".repeat(4096);
    for method in [Method::PUT, Method::DELETE] {
        let base = "/api/v1/users/me/blocks";
        let call = |p: String| request_to(&alice, method.clone(), format!("{base}/{p}"));
        assert_error(&call("not-a-uuid".into()).await, 400, "bad_request");
        assert_error(&call(long.clone()).await, 400, "bad_request");
        assert_error(
            &call(Uuid::now_v7().to_string()).await,
            404,
            "user_not_found",
        );
        assert_error(&call(alice.id.to_string()).await, 422, "validation_failed");
        let anonymous = app
            .client()
            .raw(method.clone(), &format!("{base}/{}", bob.id), None)
            .await
            .expect("request");
        assert_error(&anonymous, 401, "unauthorized");
    }
    let anonymous = app
        .client()
        .raw(Method::GET, "/api/v1/users/me/blocks", None)
        .await
        .expect("request");
    assert_error(&anonymous, 401, "unauthorized");
    for action in ["accept", "decline"] {
        let call =
            |room: String| request_to(&bob, Method::POST, format!("/api/v1/rooms/{room}/{action}"));
        assert_error(&call("not-a-uuid".into()).await, 400, "bad_request");
        assert_error(&call(long.clone()).await, 400, "bad_request");
        assert_error(
            &call(Uuid::now_v7().to_string()).await,
            404,
            "room_not_found",
        );
        let anonymous = app
            .client()
            .raw(
                Method::POST,
                &format!("/api/v1/rooms/{}/{action}", room.id),
                None,
            )
            .await
            .expect("request");
        assert_error(&anonymous, 401, "unauthorized");
    }
    // A body is not expected, and an unknown field in one does not matter; the list is
    // well formed for someone who blocked nobody.
    let list = request(&bob, Method::GET, "/api/v1/users/me/blocks", None).await;
    assert_eq!(list.0, 200);
    let list: BlockList = serde_json::from_value(list.1).expect("a BlockList");
    assert!(list.blocks.is_empty());
}
