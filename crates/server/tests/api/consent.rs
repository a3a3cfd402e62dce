//! Privacy by consent (issue 13, finding 7): a 1:1 room from a stranger is a request and
//! a group add by a stranger an invitation; until the invitee accepts, no presence, last
//! seen, typing or receipts flow between them and the room. A user can decline, leave a
//! 1:1 room, and block: no 1:1 rooms, invitations or presence between the two, either way.
//!
//! Each test opens sockets on both sides and checks what does not arrive as well as what
//! does: a hidden presence is one that neither the REST answer nor any frame reveals.

use palaver_client::Socket;
use palaver_proto::{
    BlockList, ClientFrame, MemberState, PresenceStatus, ReceiptKind, Room, ServerFrame,
};
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::*;

async fn request(user: &TestUser, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    user.api
        .raw(method, path, body.as_ref())
        .await
        .expect("request")
}

/// `request` with a path of its own (for closures that build it).
async fn request_to(user: &TestUser, method: Method, path: String) -> (u16, Value) {
    request(user, method, &path, None).await
}

fn state_of(room: &Room, user: &TestUser) -> Option<MemberState> {
    room.members
        .iter()
        .find(|m| m.user_id == user.id)
        .map(|m| m.state)
}

/// `GET /presence/{user}` as `viewer`: the status, or the error code.
async fn presence_of(viewer: &TestUser, user: &TestUser) -> (u16, Value) {
    let path = format!("/api/v1/presence/{}", user.id);
    request(viewer, Method::GET, &path, None).await
}

/// Whether `viewer` may see `user`'s presence and last seen, over every REST route that
/// answers them: all three agree, or the test fails.
async fn sees(viewer: &TestUser, user: &TestUser) -> bool {
    let mut answers = Vec::new();
    for route in ["presence", "chat/status", "lastseen"] {
        let path = format!("/api/v1/{route}/{}", user.id);
        let answer = request(viewer, Method::GET, &path, None).await;
        match answer.0 {
            200 => answers.push(true),
            _ => {
                assert_error(&answer, 404, "user_not_found");
                answers.push(false);
            }
        }
    }
    assert!(
        answers.iter().all(|a| *a == answers[0]),
        "the presence routes disagree: {answers:?}"
    );
    answers[0]
}

/// Sends a frame and returns the answer: `Ok` for an ack, else the error code.
async fn frame(socket: &mut Socket, frame: ClientFrame) -> Result<(), String> {
    let id = socket.send_frame(frame).await.expect("send frame");
    match socket.answer(&id, WAIT).await {
        Ok(_) => Ok(()),
        Err(palaver_client::ClientError::Api { code, .. }) => Err(code.as_str().to_owned()),
        Err(other) => panic!("no answer: {other}"),
    }
}

fn typing(room: Uuid) -> ClientFrame {
    ClientFrame::Typing {
        room_id: room,
        active: true,
    }
}

fn away() -> ClientFrame {
    ClientFrame::Presence {
        status: PresenceStatus::Away,
    }
}

/// Waits for a `room.updated` about `room`.
async fn room_updated(socket: &mut Socket, room: Uuid) -> Room {
    match socket
        .wait_for(
            WAIT,
            |f| matches!(f, ServerFrame::RoomUpdated { room: r } if r.id == room),
        )
        .await
        .expect("room.updated")
    {
        ServerFrame::RoomUpdated { room } => room,
        _ => unreachable!(),
    }
}

/// Frames that would tell one side about the other's activity.
fn activity_of(user: Uuid) -> impl Fn(&ServerFrame) -> bool {
    move |f| match f {
        ServerFrame::Presence { user_id, .. }
        | ServerFrame::Typing { user_id, .. }
        | ServerFrame::Receipt { user_id, .. } => *user_id == user,
        _ => false,
    }
}

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
        |f| matches!(f, ServerFrame::RoomLeft { room_id } if *room_id == group.id),
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
async fn a_block_stops_dms_invitations_and_presence_both_ways() {
    let app = spawn_app().await;
    let users = app.users(&["alice", "bob", "carol"]).await;
    let [alice, bob, carol] = <[TestUser; 3]>::try_from(users).ok().expect("three");
    // They know each other: a group they all joined.
    let group = alice.group("club", &[&bob, &carol]).await;
    assert!(sees(&alice, &bob).await);
    // Alice writes (her markers move with it) and Carol reads it.
    alice.send(group.id, "hello club").await;
    let read = json!({"seq": 1, "status": "read"});
    let path = format!("/api/v1/rooms/{}/receipts", group.id);
    assert_eq!(
        request(&carol, Method::POST, &path, Some(read)).await.0,
        200
    );
    let mut a = alice.connect().await;
    let mut b = bob.connect().await;
    // Alice hears Bob come online before anything else happens.
    a.wait_for(
        WAIT,
        |f| matches!(f, ServerFrame::Presence { user_id, .. } if *user_id == bob.id),
    )
    .await
    .expect("Bob online");
    let mut c = carol.connect().await;

    // Bob blocks Alice.
    let block = format!("/api/v1/users/me/blocks/{}", alice.id);
    assert_eq!(request(&bob, Method::PUT, &block, None).await.0, 204);
    assert_eq!(
        request(&bob, Method::PUT, &block, None).await.0,
        204,
        "twice is once"
    );
    let listed = bob.api.blocks().await.expect("blocks");
    let ids: Vec<Uuid> = listed.blocks.iter().map(|b| b.user_id).collect();
    assert_eq!(ids, vec![alice.id]);
    assert_eq!(listed.blocks[0].username, alice.name);
    assert!(alice.api.blocks().await.expect("blocks").blocks.is_empty());

    // No presence either way, over REST or frames, and no typing in the shared group;
    // Carol still hears both.
    assert!(!sees(&alice, &bob).await && !sees(&bob, &alice).await);
    assert!(sees(&carol, &alice).await && sees(&carol, &bob).await);
    frame(&mut a, away()).await.expect("away");
    frame(&mut a, typing(group.id)).await.expect("typing");
    c.wait_for(
        WAIT,
        |f| matches!(f, ServerFrame::Typing { user_id, .. } if *user_id == alice.id),
    )
    .await
    .expect("Carol hears Alice");
    assert_no_frame(&mut b, "Alice's activity", activity_of(alice.id)).await;
    frame(&mut b, away()).await.expect("away");
    frame(&mut b, typing(group.id)).await.expect("typing");
    assert_no_frame(&mut a, "Bob's activity", activity_of(bob.id)).await;
    // Nor each other's receipt markers in the group; Carol's stay visible.
    let path = format!("/api/v1/rooms/{}/receipts", group.id);
    let markers = request(&bob, Method::GET, &path, None).await;
    assert_eq!(markers.0, 200, "{}", markers.1);
    let of = |user: &TestUser| {
        let members = markers.1["members"].as_array().expect("members").clone();
        let m = members
            .into_iter()
            .find(|m| m["userId"] == json!(user.id))
            .expect("member");
        (m["deliveredSeq"].as_i64(), m["readSeq"].as_i64())
    };
    assert_eq!(
        of(&alice),
        (Some(0), Some(0)),
        "Alice's markers are hidden from Bob"
    );
    assert!(of(&carol).0 > Some(0), "Carol's are not: {}", markers.1);

    // No 1:1 room and no invitation, whoever asks.
    let dm = |to: Uuid| json!({"isGroup": false, "memberIds": [to]});
    let create = "/api/v1/rooms/create";
    assert_error(
        &request(&alice, Method::POST, create, Some(dm(bob.id))).await,
        403,
        "blocked",
    );
    assert_error(
        &request(&bob, Method::POST, create, Some(dm(alice.id))).await,
        403,
        "blocked",
    );
    let with_bob = json!({"isGroup": true, "name": "g", "memberIds": [bob.id, carol.id]});
    assert_error(
        &request(&alice, Method::POST, create, Some(with_bob)).await,
        403,
        "blocked",
    );
    let other = alice.group("other", &[&carol]).await;
    let path = format!("/api/v1/rooms/{}/members", other.id);
    let add = request(
        &alice,
        Method::POST,
        &path,
        Some(json!({"userIds": [bob.id]})),
    )
    .await;
    assert_error(&add, 403, "blocked");

    // Unblocking restores all of it.
    assert_eq!(request(&bob, Method::DELETE, &block, None).await.0, 204);
    assert_eq!(
        request(&bob, Method::DELETE, &block, None).await.0,
        204,
        "twice is once"
    );
    assert!(bob.api.blocks().await.expect("blocks").blocks.is_empty());
    assert!(sees(&alice, &bob).await && sees(&bob, &alice).await);
    let (status, _) = alice
        .api
        .create_room(None, false, &[bob.id])
        .await
        .expect("dm after unblocking");
    assert_eq!(status, 201);
}

#[tokio::test]
async fn blocking_declines_a_pending_request_and_withdraws_ones_own() {
    let app = spawn_app().await;
    let users = app.users(&["alice", "bob", "carol"]).await;
    let [alice, bob, carol] = <[TestUser; 3]>::try_from(users).ok().expect("three");
    let request_room = alice.dm_request(&bob).await;
    let invitation = bob
        .api
        .create_room(Some("bob's"), true, &[alice.id, carol.id])
        .await
        .expect("group")
        .1;
    assert_eq!(state_of(&invitation, &alice), Some(MemberState::Invited));
    let mut a = alice.connect().await;

    // Bob blocks Alice: her request to him is declined, his invitation to her withdrawn.
    bob.api.block(alice.id).await.expect("block");
    let bobs = bob.api.rooms().await.expect("rooms");
    assert!(
        !bobs.iter().any(|r| r.id == request_room.id),
        "the request is declined"
    );
    let alices = alice.api.rooms().await.expect("rooms");
    assert!(
        !alices.iter().any(|r| r.id == invitation.id),
        "the invitation is withdrawn"
    );
    a.wait_for(
        WAIT,
        |f| matches!(f, ServerFrame::RoomLeft { room_id } if *room_id == invitation.id),
    )
    .await
    .expect("room.left for the withdrawn invitation");
    // Carol's invitation stands.
    let carols = carol.api.rooms().await.expect("rooms");
    assert!(carols.iter().any(|r| r.id == invitation.id));
    // Alice's request is closed: nothing more reaches Bob.
    let answer = request(
        &alice,
        Method::POST,
        "/api/v1/messages/send",
        Some(json!({"roomId": request_room.id, "clientMsgId": "x", "content": "please"})),
    )
    .await;
    assert_error(&answer, 409, "direct_closed");
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

/// Across nodes: a block made on one node hides presence on the other, and an accept made
/// on one lets presence flow on the other (the routing table follows the bus).
#[tokio::test]
async fn blocks_and_accepts_reach_the_other_node() {
    let Some((engines, ns, node_a, node_b)) = super::cluster::two_nodes().await else {
        return;
    };
    let alice = node_a.user("alice").await;
    let bob = node_b.user("bob").await;
    let room = alice.dm_request(&bob).await;
    assert!(!visible(&alice, &bob).await);
    bob.api.accept(room.id).await.expect("accept on node B");
    assert!(
        eventually(|| visible(&alice, &bob)).await,
        "node A never learnt of the accept"
    );
    let mut b = bob.connect().await;
    bob.api.block(alice.id).await.expect("block on node B");
    assert!(
        eventually(|| async { !visible(&alice, &bob).await }).await,
        "node A never learnt of the block"
    );
    let mut a = alice.connect().await;
    frame(&mut a, away()).await.expect("away");
    assert_no_frame(&mut b, "Alice's presence", activity_of(alice.id)).await;
    bob.api.unblock(alice.id).await.expect("unblock on node B");
    assert!(
        eventually(|| visible(&alice, &bob)).await,
        "node A never learnt of the unblock"
    );
    drop((a, b));
    drop((node_a, node_b));
    clean_namespace(engines, &ns).await;
}

/// Whether `GET /presence` answers `viewer` about `user` (one route: while a change
/// crosses nodes, the three routes may be asked on either side of it).
async fn visible(viewer: &TestUser, user: &TestUser) -> bool {
    presence_of(viewer, user).await.0 == 200
}

/// Whether `check` comes true within `WAIT`, polling.
async fn eventually<F, Fut>(check: F) -> bool
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    while tokio::time::Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    false
}
