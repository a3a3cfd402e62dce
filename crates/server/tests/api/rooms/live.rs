//! Room changes seen live: `room.updated` and `room.left` frames to the members, and both
//! people hearing of a new 1:1 room under the other one's name.

use palaver_proto::{MemberState, Role, ServerFrame};
use serde_json::json;

use crate::helpers::*;

use super::{
    add, create, ids_of, leave, member_ids, message_frame, remove, rename, role_of, room_of,
    room_updated, set_role,
};

#[tokio::test]
async fn members_see_room_changes_live() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let carol = app.user("carol").await;
    let mut alice_ws = alice.connect().await;
    let mut bob_ws = bob.connect().await;
    let mut carol_ws = carol.connect().await;

    // Created: every member hears of it (Bob, a stranger to Alice, as an invitation),
    // nobody else does.
    let group = room_of(
        create(
            &alice,
            json!({"name": "Team", "isGroup": true, "memberIds": [bob.id]}),
        )
        .await,
    );
    for socket in [&mut alice_ws, &mut bob_ws] {
        let room = room_updated(socket, group.id).await;
        assert_eq!(room.name, "Team");
        assert!(room.is_group);
        assert_eq!(member_ids(&room), ids_of(&[&alice, &bob]));
        assert_eq!(role_of(&room, &alice), Some(Role::Owner));
        assert!(room.last_message.is_none() && room.unread_count == 0);
    }
    // Bob accepts: a room change both hear.
    bob.api.accept(group.id).await.expect("accept");
    for socket in [&mut alice_ws, &mut bob_ws] {
        let room = room_updated(socket, group.id).await;
        assert!(room.members.iter().all(|m| m.state == MemberState::Joined));
    }
    assert_no_frame(
        &mut carol_ws,
        "room.updated for a room carol is not in",
        |f| matches!(f, ServerFrame::RoomUpdated { .. }),
    )
    .await;

    // Renamed.
    room_of(rename(&alice, group.id, "Team 2").await);
    for socket in [&mut alice_ws, &mut bob_ws] {
        assert_eq!(room_updated(socket, group.id).await.name, "Team 2");
    }
    assert_no_frame(
        &mut carol_ws,
        "room.updated for a room carol is not in",
        |f| matches!(f, ServerFrame::RoomUpdated { .. }),
    )
    .await;

    // A member added: the old members and the new one hear of it.
    room_of(add(&alice, group.id, &[carol.id]).await);
    for socket in [&mut alice_ws, &mut bob_ws, &mut carol_ws] {
        let room = room_updated(socket, group.id).await;
        assert_eq!(room.name, "Team 2");
        assert_eq!(member_ids(&room), ids_of(&[&alice, &bob, &carol]));
    }

    // ... and the new member gets the group's messages from then on.
    let sent = bob.send(group.id, "welcome carol").await;
    let got = message_frame(&mut carol_ws, sent.id).await;
    assert_eq!(got.content, "welcome carol");
    assert_eq!(got.room_id, group.id);
    message_frame(&mut alice_ws, sent.id).await;

    // A role change is a room change too.
    room_of(set_role(&alice, group.id, bob.id, "admin").await);
    for socket in [&mut alice_ws, &mut bob_ws, &mut carol_ws] {
        let room = room_updated(socket, group.id).await;
        assert_eq!(role_of(&room, &bob), Some(Role::Admin));
    }

    // Removed: the removed member gets room.left and nothing more; the others an update.
    let removed = remove(&alice, group.id, carol.id).await;
    assert_eq!(removed.0, 204, "{}", removed.1);
    let left = carol_ws
        .wait_for(WAIT, |f| matches!(f, ServerFrame::RoomLeft { .. }))
        .await
        .expect("room.left");
    assert!(
        matches!(left, ServerFrame::RoomLeft { room_id, .. } if room_id == group.id),
        "{left:?}"
    );
    for socket in [&mut alice_ws, &mut bob_ws] {
        let room = room_updated(socket, group.id).await;
        assert_eq!(member_ids(&room), ids_of(&[&alice, &bob]));
    }
    let after = alice.send(group.id, "carol is gone").await;
    message_frame(&mut bob_ws, after.id).await;
    // Nothing from her removal on: not the event saying so, which took the seq before
    // `after` (the events before it reached her as a member), nor `after`.
    assert_no_frame(
        &mut carol_ws,
        "anything from a room carol left",
        |f| match f {
            ServerFrame::Message { message } => {
                message.room_id == group.id && message.seq >= after.seq - 1
            }
            ServerFrame::RoomUpdated { room } => room.id == group.id,
            _ => false,
        },
    )
    .await;

    // Leaving: the one who leaves gets room.left, the others an update.
    let left = leave(&bob, group.id).await;
    assert_eq!(left.0, 204, "{}", left.1);
    let frame = bob_ws
        .wait_for(WAIT, |f| matches!(f, ServerFrame::RoomLeft { .. }))
        .await
        .expect("room.left");
    assert!(matches!(frame, ServerFrame::RoomLeft { room_id, .. } if room_id == group.id));
    let room = room_updated(&mut alice_ws, group.id).await;
    assert_eq!(member_ids(&room), ids_of(&[&alice]));
}

#[tokio::test]
async fn both_people_hear_of_a_new_dm_under_the_other_ones_name() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let mut alice_ws = alice.connect().await;
    let mut bob_ws = bob.connect().await;

    let dm = alice.dm_request(&bob).await;
    let as_alice = room_updated(&mut alice_ws, dm.id).await;
    assert_eq!(as_alice.name, "Bob");
    assert!(!as_alice.is_group);
    let as_bob = room_updated(&mut bob_ws, dm.id).await;
    assert_eq!(as_bob.name, "Alice");
    // They have not met: Bob accepts the request, which both hear of, under the same names.
    bob.api.accept(dm.id).await.expect("accept");
    assert_eq!(room_updated(&mut alice_ws, dm.id).await.name, "Bob");
    assert_eq!(room_updated(&mut bob_ws, dm.id).await.name, "Alice");

    // Opening it again changes nothing and announces nothing.
    let (status, again) = bob
        .api
        .create_room(None, false, &[alice.id])
        .await
        .expect("dm");
    assert_eq!((status, again.id), (200, dm.id));
    for socket in [&mut alice_ws, &mut bob_ws] {
        assert_no_frame(socket, "room.updated for an existing dm", |f| {
            matches!(f, ServerFrame::RoomUpdated { .. })
        })
        .await;
    }
}
