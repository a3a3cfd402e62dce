//! Avatars: set from one's own image upload, shown wherever the user is (profile, lookup,
//! search, login, room members, the 1:1 room's picture), removed, and refused for
//! anything else.

use palaver_proto::{MessageType, Room, ServerFrame, User};
use reqwest::Method;
use serde_json::json;
use uuid::Uuid;

use super::*;

const AVATAR: &str = "/api/v1/users/me/avatar";

#[tokio::test]
async fn an_avatar_is_set_shown_everywhere_and_removed() {
    let app = spawn_app().await;
    let (alice, bob, carol) = (
        app.user("alice").await,
        app.user("bob").await,
        app.user("carol").await,
    );
    let dm = alice.dm(&bob).await;
    let group = carol.group("Team", &[&alice, &bob]).await;
    let picture = upload_picture(&alice, "me.png").await;

    // PUT answers the profile with the link: the thumbnail of the upload, signed.
    let (status, body) = call(&app, Some(&alice), Method::PUT, AVATAR, media(picture.id)).await;
    assert_eq!(status, 200, "{body}");
    let me: User = serde_json::from_value(body).expect("user");
    let link = me.avatar_url.clone().expect("avatarUrl");
    assert_eq!(linked(&link), (picture.id, true));
    // Anyone who is shown the link loads it without a header.
    let (status, kind) = fetch_link(&app, &link).await;
    assert_eq!(status, 200);
    assert!(kind.starts_with("image/"), "{kind}");

    // Wherever the user is: their profile, a lookup, a search, a login.
    let avatar_of = |u: &User| u.avatar_url.as_deref().map(linked);
    assert_eq!(
        avatar_of(&alice.api.me().await.expect("me")),
        Some((picture.id, true))
    );
    let (_, body) = call(
        &app,
        Some(&bob),
        Method::GET,
        &format!("/api/v1/users/{}", alice.id),
        None,
    )
    .await;
    let seen: User = serde_json::from_value(body).expect("user");
    assert_eq!(avatar_of(&seen), Some((picture.id, true)));
    let (_, body) = call(&app, Some(&bob), Method::GET, "/api/v1/users?q=ali", None).await;
    let found: Vec<User> = serde_json::from_value(body["users"].clone()).expect("users");
    assert_eq!(
        found.iter().map(avatar_of).collect::<Vec<_>>(),
        vec![Some((picture.id, true))]
    );
    let login = app.client().login("alice", PASSWORD).await.expect("login");
    assert_eq!(avatar_of(&login.user), Some((picture.id, true)));

    // In rooms: as a member, and as the picture of the 1:1 room, to the other person only.
    let member_avatar = |room: &Room, id: Uuid| {
        room.members
            .iter()
            .find(|m| m.user_id == id)
            .and_then(|m| m.avatar_url.as_deref().map(linked))
    };
    for room in bob.api.rooms().await.expect("rooms") {
        assert_eq!(member_avatar(&room, alice.id), Some((picture.id, true)));
        assert_eq!(member_avatar(&room, bob.id), None);
        if room.id == dm.id {
            assert_eq!(
                room.picture_url.as_deref().map(linked),
                Some((picture.id, true))
            );
        } else {
            assert_eq!(room.id, group.id);
            assert_eq!(room.picture_url, None, "a group shows its own picture");
        }
    }
    let mine = alice.api.rooms().await.expect("rooms");
    let dm_of_alice = mine.iter().find(|r| r.id == dm.id).expect("dm");
    assert_eq!(dm_of_alice.picture_url, None, "Bob has no avatar");

    // Removing it: gone from the profile, and absent (not null) on the wire.
    let (status, body) = call(&app, Some(&alice), Method::DELETE, AVATAR, None).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("avatarUrl").is_none(), "{body}");
    let (_, body) = call(
        &app,
        Some(&bob),
        Method::GET,
        &format!("/api/v1/users/{}", alice.id),
        None,
    )
    .await;
    assert!(body.get("avatarUrl").is_none(), "{body}");
    let (_, body) = call(
        &app,
        Some(&bob),
        Method::GET,
        &format!("/api/v1/rooms/{}", dm.id),
        None,
    )
    .await;
    assert!(body.get("pictureUrl").is_none(), "{body}");
    assert!(
        body["members"]
            .as_array()
            .expect("members")
            .iter()
            .all(|m| m.get("avatarUrl").is_none())
    );
    // Removing none is fine too.
    let (status, _) = call(&app, Some(&alice), Method::DELETE, AVATAR, None).await;
    assert_eq!(status, 200);

    // The upload that was the avatar can be the avatar again, or shared in a message.
    let (status, _) = call(&app, Some(&alice), Method::PUT, AVATAR, media(picture.id)).await;
    assert_eq!(status, 200);
    let send =
        json!({"roomId": dm.id, "clientMsgId": "pic", "type": "image", "mediaId": picture.id});
    let (status, body) = call(
        &app,
        Some(&alice),
        Method::POST,
        "/api/v1/messages/send",
        Some(send),
    )
    .await;
    assert_eq!(status, 201, "{body}");
}

/// A display name change reaches nobody's socket: members read it afresh with the user or
/// the room. An avatar does the same, and the next view of the room carries both.
#[tokio::test]
async fn an_avatar_change_is_read_afresh_like_a_display_name() {
    let app = spawn_app().await;
    let (alice, bob, carol) = (
        app.user("alice").await,
        app.user("bob").await,
        app.user("carol").await,
    );
    let group = carol.group("Team", &[&alice, &bob]).await;
    let mut socket = bob.connect().await;
    let picture = upload_picture(&alice, "me.png").await;
    let renamed = json!({"displayName": "Alice L."});
    let (status, _) = call(
        &app,
        Some(&alice),
        Method::PATCH,
        "/api/v1/users/me",
        Some(renamed),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = call(&app, Some(&alice), Method::PUT, AVATAR, media(picture.id)).await;
    assert_eq!(status, 200);
    assert_no_frame(&mut socket, "a frame about Alice's profile", |f| {
        matches!(f, ServerFrame::RoomUpdated { .. })
    })
    .await;

    // The next room.updated (here: the group renamed) carries the new name and avatar.
    let rename = json!({"name": "Team 2"});
    let (status, _) = call(
        &app,
        Some(&carol),
        Method::PATCH,
        &format!("/api/v1/rooms/{}", group.id),
        Some(rename),
    )
    .await;
    assert_eq!(status, 200);
    let frame = socket
        .wait_for(
            WAIT,
            |f| matches!(f, ServerFrame::RoomUpdated { room } if room.id == group.id),
        )
        .await
        .expect("room.updated");
    let ServerFrame::RoomUpdated { room } = frame else {
        unreachable!()
    };
    let member = room
        .members
        .iter()
        .find(|m| m.user_id == alice.id)
        .expect("alice");
    assert_eq!(member.display_name, "Alice L.");
    assert_eq!(
        member.avatar_url.as_deref().map(linked),
        Some((picture.id, true))
    );
}

#[tokio::test]
async fn avatars_are_refused_for_anything_but_ones_own_image() {
    let app = spawn_app().await;
    let (alice, bob, eve) = (
        app.user("alice").await,
        app.user("bob").await,
        app.user("eve").await,
    );
    let dm = alice.dm(&bob).await;
    let mine = upload_picture(&alice, "mine.png").await;
    let (status, _) = call(&app, Some(&alice), Method::PUT, AVATAR, media(mine.id)).await;
    assert_eq!(status, 200);
    let unchanged = || async {
        let me = alice.api.me().await.expect("me");
        assert_eq!(me.avatar_url.as_deref().map(linked), Some((mine.id, true)));
    };

    // Malformed: not JSON, no mediaId, not an id.
    let got = call_raw(&app, &alice, Method::PUT, AVATAR, "{\"mediaId\": ".into()).await;
    assert_error(&got, 400, "bad_request");
    for body in [
        json!({}),
        json!({"mediaId": "not-a-uuid"}),
        json!({"mediaId": 7}),
        json!({"mediaId": null}),
    ] {
        let got = call(&app, Some(&alice), Method::PUT, AVATAR, Some(body.clone())).await;
        assert_error(&got, 400, "bad_request");
    }
    // Oversized: a body over 64 KiB is refused before it is read.
    let big = json!({"mediaId": mine.id, "padding": "x".repeat(70 * 1024)});
    let got = call(&app, Some(&alice), Method::PUT, AVATAR, Some(big)).await;
    assert_error(&got, 413, "payload_too_large");
    // Unauthorised: no token, or a garbage one.
    let got = call(&app, None, Method::PUT, AVATAR, media(mine.id)).await;
    assert_error(&got, 401, "unauthorized");
    let got = call(&app, None, Method::DELETE, AVATAR, None).await;
    assert_error(&got, 401, "unauthorized");
    let forged = app.client().with_token("not-a-token");
    let got = forged
        .raw(Method::PUT, AVATAR, media(mine.id).as_ref())
        .await
        .expect("request");
    assert_error(&got, 401, "unauthorized");
    // Unknown id.
    let got = call(
        &app,
        Some(&alice),
        Method::PUT,
        AVATAR,
        media(Uuid::now_v7()),
    )
    .await;
    assert_error(&got, 404, "media_not_found");
    // Someone else's upload: not found where Alice cannot see it, forbidden where she can
    // (Bob shared it with her); neither becomes hers to show.
    let eves = upload_picture(&eve, "eve.png").await;
    let got = call(&app, Some(&alice), Method::PUT, AVATAR, media(eves.id)).await;
    assert_error(&got, 404, "media_not_found");
    let bobs = upload_picture(&bob, "bob.png").await;
    let send = json!({"roomId": dm.id, "clientMsgId": "b1", "type": "image", "mediaId": bobs.id});
    let (status, _) = call(
        &app,
        Some(&bob),
        Method::POST,
        "/api/v1/messages/send",
        Some(send),
    )
    .await;
    assert_eq!(status, 201);
    let got = call(&app, Some(&alice), Method::PUT, AVATAR, media(bobs.id)).await;
    assert_error(&got, 403, "forbidden");
    // Wrong kind: an upload that is not an image.
    let text = upload_text(&alice).await;
    assert_eq!(text.kind, MessageType::File);
    let got = call(&app, Some(&alice), Method::PUT, AVATAR, media(text.id)).await;
    assert_error(&got, 422, "validation_failed");
    // Wrong method on the route.
    let got = call(&app, Some(&alice), Method::POST, AVATAR, media(mine.id)).await;
    assert_eq!(got.0, 405);

    unchanged().await;
}
