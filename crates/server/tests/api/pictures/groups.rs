//! Group pictures: set by the group's owner or admins from their own image uploads,
//! announced to the members live, refused to everyone else and for 1:1 rooms; and every
//! picture (avatars too) kept from the orphan sweep while shown, counted in its
//! uploader's usage, and collected once replaced.

use palaver_proto::{Room, ServerFrame};
use reqwest::Method;
use serde_json::json;
use uuid::Uuid;

use super::*;

fn picture_path(room: Uuid) -> String {
    format!("/api/v1/rooms/{room}/picture")
}

/// Waits for the `room.updated` frame about `room`; returns the room it carries.
async fn room_updated(socket: &mut palaver_client::Socket, room: Uuid) -> Room {
    match socket
        .wait_for(
            WAIT,
            |f| matches!(f, ServerFrame::RoomUpdated { room: r } if r.id == room),
        )
        .await
        .expect("room.updated frame")
    {
        ServerFrame::RoomUpdated { room } => room,
        _ => unreachable!(),
    }
}

#[tokio::test]
async fn a_group_picture_reaches_the_members_live() {
    let app = spawn_app().await;
    let (owner, admin, member) = (
        app.user("owner").await,
        app.user("admin").await,
        app.user("member").await,
    );
    let group = owner.group("Team", &[&admin, &member]).await;
    let (status, body) = call(
        &app,
        Some(&owner),
        Method::PATCH,
        &format!("/api/v1/rooms/{}/members/{}", group.id, admin.id),
        Some(json!({"role": "admin"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let mut socket = member.connect().await;

    // The owner sets it: the answer and every member's room.updated carry the link.
    let first = upload_picture(&owner, "team.png").await;
    let (status, body) = call(
        &app,
        Some(&owner),
        Method::PUT,
        &picture_path(group.id),
        media(first.id),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let answered: Room = serde_json::from_value(body).expect("room");
    assert_eq!(
        answered.picture_url.as_deref().map(linked),
        Some((first.id, true))
    );
    let live = room_updated(&mut socket, group.id).await;
    let link = live.picture_url.expect("pictureUrl");
    assert_eq!(linked(&link), (first.id, true));
    let (status, kind) = fetch_link(&app, &link).await;
    assert_eq!((status, kind.starts_with("image/")), (200, true), "{kind}");
    let listed = member.api.rooms().await.expect("rooms");
    assert_eq!(
        listed[0].picture_url.as_deref().map(linked),
        Some((first.id, true))
    );

    // An admin replaces it with their own upload.
    let second = upload_picture(&admin, "team2.png").await;
    let (status, _) = call(
        &app,
        Some(&admin),
        Method::PUT,
        &picture_path(group.id),
        media(second.id),
    )
    .await;
    assert_eq!(status, 200);
    let live = room_updated(&mut socket, group.id).await;
    assert_eq!(
        live.picture_url.as_deref().map(linked),
        Some((second.id, true))
    );

    // Removed: absent from the frame and the answers.
    let (status, body) = call(
        &app,
        Some(&owner),
        Method::DELETE,
        &picture_path(group.id),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("pictureUrl").is_none(), "{body}");
    let live = room_updated(&mut socket, group.id).await;
    assert_eq!(live.picture_url, None);
    // Removing it again changes nothing, and tells nobody.
    let (status, _) = call(
        &app,
        Some(&owner),
        Method::DELETE,
        &picture_path(group.id),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_no_frame(&mut socket, "room.updated for no change", |f| {
        matches!(f, ServerFrame::RoomUpdated { .. })
    })
    .await;
}

#[tokio::test]
async fn group_pictures_are_refused_to_others_and_for_one_to_one_rooms() {
    let app = spawn_app().await;
    let users = app
        .users(&["owner", "member", "stranger", "removed", "invited"])
        .await;
    let [owner, member, stranger, removed, invited] = &users[..] else {
        unreachable!()
    };
    let group = owner.group("Team", &[member, removed]).await;
    // The invited member is a stranger to the owner: invited, not joined.
    let (status, _) = call(
        &app,
        Some(owner),
        Method::POST,
        &format!("/api/v1/rooms/{}/members", group.id),
        Some(json!({"userIds": [invited.id]})),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = call(
        &app,
        Some(owner),
        Method::DELETE,
        &format!("/api/v1/rooms/{}/members/{}", group.id, removed.id),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let path = picture_path(group.id);
    let own = |user: &TestUser| {
        let user = user.api.clone();
        async move {
            user.upload("p.png", "image/png", png(40, 40))
                .await
                .expect("upload")
        }
    };
    let mine = upload_picture(owner, "team.png").await;

    // Who: a plain member and an invited one are forbidden; a stranger, a removed member
    // and an unknown room are not found; nobody without a token gets anywhere.
    for (who, status, code) in [
        (member, 403, "forbidden"),
        (invited, 403, "forbidden"),
        (stranger, 404, "room_not_found"),
        (removed, 404, "room_not_found"),
    ] {
        let theirs = own(who).await;
        let got = call(&app, Some(who), Method::PUT, &path, media(theirs.id)).await;
        assert_error(&got, status, code);
        let got = call(&app, Some(who), Method::DELETE, &path, None).await;
        assert_error(&got, status, code);
    }
    let got = call(
        &app,
        Some(owner),
        Method::PUT,
        &picture_path(Uuid::now_v7()),
        media(mine.id),
    )
    .await;
    assert_error(&got, 404, "room_not_found");
    let got = call(&app, None, Method::PUT, &path, media(mine.id)).await;
    assert_error(&got, 401, "unauthorized");
    let got = call(&app, None, Method::DELETE, &path, None).await;
    assert_error(&got, 401, "unauthorized");

    // A 1:1 room has no picture of its own: it shows the other person's avatar.
    let dm = owner.dm(member).await;
    let got = call(
        &app,
        Some(owner),
        Method::PUT,
        &picture_path(dm.id),
        media(mine.id),
    )
    .await;
    assert_error(&got, 403, "not_a_group");
    let got = call(
        &app,
        Some(owner),
        Method::DELETE,
        &picture_path(dm.id),
        None,
    )
    .await;
    assert_error(&got, 403, "not_a_group");

    // What: malformed, oversized, unknown, someone else's, not an image.
    let got = call_raw(&app, owner, Method::PUT, &path, "[]".into()).await;
    assert_error(&got, 400, "bad_request");
    let got = call(
        &app,
        Some(owner),
        Method::PUT,
        &path,
        Some(json!({"mediaId": "nope"})),
    )
    .await;
    assert_error(&got, 400, "bad_request");
    let got = call(
        &app,
        Some(owner),
        Method::PUT,
        "/api/v1/rooms/not-a-room/picture",
        media(mine.id),
    )
    .await;
    assert_error(&got, 400, "bad_request");
    let big = json!({"mediaId": mine.id, "padding": "x".repeat(70 * 1024)});
    let got = call(&app, Some(owner), Method::PUT, &path, Some(big)).await;
    assert_error(&got, 413, "payload_too_large");
    let got = call(&app, Some(owner), Method::PUT, &path, media(Uuid::now_v7())).await;
    assert_error(&got, 404, "media_not_found");
    let strangers = own(stranger).await;
    let got = call(&app, Some(owner), Method::PUT, &path, media(strangers.id)).await;
    assert_error(&got, 404, "media_not_found");
    let members = own(member).await;
    let send =
        json!({"roomId": group.id, "clientMsgId": "m1", "type": "image", "mediaId": members.id});
    let (status, _) = call(
        &app,
        Some(member),
        Method::POST,
        "/api/v1/messages/send",
        Some(send),
    )
    .await;
    assert_eq!(status, 201);
    let got = call(&app, Some(owner), Method::PUT, &path, media(members.id)).await;
    assert_error(&got, 403, "forbidden");
    let text = upload_text(owner).await;
    let got = call(&app, Some(owner), Method::PUT, &path, media(text.id)).await;
    assert_error(&got, 422, "validation_failed");

    // Nothing of it stuck.
    let (_, body) = call(
        &app,
        Some(owner),
        Method::GET,
        &format!("/api/v1/rooms/{}", group.id),
        None,
    )
    .await;
    assert!(body.get("pictureUrl").is_none(), "{body}");
}

#[tokio::test]
async fn pictures_stay_while_shown_and_go_once_replaced() {
    let app = spawn_app_with(|c| {
        // Short enough to watch a replaced picture go.
        c.media.orphan_ttl_secs = 2;
        c.media.gc_interval_secs = 1;
    })
    .await;
    let (alice, bob) = (app.user("alice").await, app.user("bob").await);
    let group = alice.group("Team", &[&bob]).await;
    let old_avatar = upload_picture(&alice, "old.png").await;
    let avatar = upload_picture(&alice, "avatar.png").await;
    let picture = upload_picture(&alice, "team.png").await;
    let stored = |m: &Media| m.size;
    let usage = || async { alice.api.media_usage().await.expect("usage").used_bytes };
    let all = usage().await;
    assert!(
        all > stored(&old_avatar) + stored(&avatar) + stored(&picture),
        "thumbnails count too"
    );

    for (path, id) in [
        ("/api/v1/users/me/avatar".to_owned(), old_avatar.id),
        (picture_path(group.id), picture.id),
        ("/api/v1/users/me/avatar".to_owned(), avatar.id),
    ] {
        let (status, body) = call(&app, Some(&alice), Method::PUT, &path, media(id)).await;
        assert_eq!(status, 200, "{body}");
    }

    // The replaced avatar goes; what is shown stays past the orphan lifetime.
    let deadline = std::time::Instant::now() + WAIT;
    while call(
        &app,
        Some(&alice),
        Method::GET,
        &format!("/api/v1/media/{}", old_avatar.id),
        None,
    )
    .await
    .0 != 404
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the replaced avatar was not collected"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let room = bob.api.rooms().await.expect("rooms").remove(0);
    for link in [
        room.picture_url.expect("picture"),
        room.members
            .iter()
            .find(|m| m.user_id == alice.id)
            .and_then(|m| m.avatar_url.clone())
            .expect("avatar"),
    ] {
        assert_eq!(fetch_link(&app, &link).await.0, 200, "{link}");
    }
    // Usage counts what is kept, and no longer what went.
    let kept = usage().await;
    assert!(
        kept < all && kept > stored(&avatar) + stored(&picture),
        "{kept} of {all}"
    );
}
