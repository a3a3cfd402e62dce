//! Blocks: no 1:1 rooms, invitations or presence between the two, either way; a block
//! declines a pending request and withdraws one's own; blocks and accepts reach the
//! other node.

use palaver_proto::{MemberState, ServerFrame};
use reqwest::Method;
use serde_json::json;
use uuid::Uuid;

use crate::helpers::*;

use super::{activity_of, away, frame, presence_of, request, sees, state_of, typing};

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
    // What reached Bob before the block (Alice coming online as he connected, on the
    // cluster's bus) is drained: Carol's typing travels behind it.
    frame(&mut c, typing(group.id)).await.expect("typing");
    b.wait_for(
        WAIT,
        |f| matches!(f, ServerFrame::Typing { user_id, .. } if *user_id == carol.id),
    )
    .await
    .expect("Bob hears Carol");

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
        |f| matches!(f, ServerFrame::RoomLeft { room_id, .. } if *room_id == invitation.id),
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

/// Across nodes: a block made on one node hides presence on the other, and an accept made
/// on one lets presence flow on the other (the routing table follows the bus).
#[tokio::test]
async fn blocks_and_accepts_reach_the_other_node() {
    let Some((engines, ns, node_a, node_b)) = super::super::cluster::two_nodes().await else {
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
