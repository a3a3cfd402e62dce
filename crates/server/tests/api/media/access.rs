//! Who may fetch media and how: the uploader and members of rooms where it was shared,
//! signed links that open one file and expire, removal taking access back, Range
//! requests, and media carried through the chat in messages.

use palaver_proto::{Message, MessageType, SendMessageRequest};
use reqwest::Method;
use reqwest::header::{self};
use serde_json::json;
use uuid::Uuid;

use crate::helpers::*;

use super::{fetch, http, json_of, mp4, path_of, png, send_media};

#[tokio::test]
async fn only_the_uploader_and_members_of_rooms_where_it_was_shared_may_fetch() {
    let app = spawn_app().await;
    let [alice, bob, carol] = &app.users(&["alice", "bob", "carol"]).await[..] else {
        unreachable!()
    };
    let media = alice
        .api
        .upload("pic.png", "image/png", png(8, 8))
        .await
        .expect("upload");
    let thumb = media.thumbnail_url.clone().expect("thumbnail");
    // Not yet shared: only Alice.
    assert_eq!(fetch(&app, Some(alice), &media.url).await.0, 200);
    for path in [&media.url, &thumb] {
        let (status, _, body) = fetch(&app, Some(bob), path).await;
        assert_error(&(status, json_of(&body)), 404, "media_not_found");
    }
    let (status, _, body) = fetch(&app, None, &path_of(&media.url)).await;
    assert_error(&(status, json_of(&body)), 401, "unauthorized");

    // Shared with Bob in a DM.
    let room = alice.dm(bob).await;
    let (status, sent) = send_media(alice, room.id, MessageType::Image, media.id).await;
    assert_eq!(status, 201, "{sent}");
    let sent: Message = serde_json::from_value(sent).expect("message");
    assert_eq!(sent.media.as_ref().map(|m| m.id), Some(media.id));
    assert_eq!(fetch(&app, Some(bob), &media.url).await.0, 200);
    assert_eq!(fetch(&app, Some(bob), &thumb).await.0, 200);
    // <img src> cannot send headers: the URL is a signed link. An access token in the
    // URL is refused, a valid one too.
    assert_eq!(fetch(&app, None, &media.url).await.0, 200);
    for token in [bob.auth.access_token.as_str(), "garbage"] {
        let url = format!("{}?access_token={token}", path_of(&media.url));
        let (status, _, body) = fetch(&app, None, &url).await;
        assert_error(&(status, json_of(&body)), 401, "unauthorized");
    }
    // Carol is in no room with it.
    assert_eq!(fetch(&app, Some(carol), &media.url).await.0, 404);
    // Carol cannot send Alice's media either.
    let carol_room = carol.dm(bob).await;
    let answer = send_media(carol, carol_room.id, MessageType::Image, media.id).await;
    assert_error(&answer, 404, "media_not_found");
    // Bob may forward it: he can see it.
    let group = bob.group("friends", &[carol]).await;
    assert_eq!(
        send_media(bob, group.id, MessageType::Image, media.id)
            .await
            .0,
        201
    );
    assert_eq!(fetch(&app, Some(carol), &media.url).await.0, 200);
    // Unknown and malformed ids.
    let (status, _, body) = fetch(
        &app,
        Some(alice),
        &format!("/api/v1/media/{}", Uuid::now_v7()),
    )
    .await;
    assert_error(&(status, json_of(&body)), 404, "media_not_found");
    assert_eq!(
        fetch(&app, Some(alice), "/api/v1/media/not-a-uuid").await.0,
        400
    );
}

#[tokio::test]
async fn deleting_the_message_takes_back_access() {
    let app = spawn_app().await;
    let (alice, bob) = (app.user("alice").await, app.user("bob").await);
    let media = alice
        .api
        .upload("pic.png", "image/png", png(8, 8))
        .await
        .expect("upload");
    let room = alice.dm(&bob).await;
    let (_, sent) = send_media(&alice, room.id, MessageType::Image, media.id).await;
    let id = sent["id"].as_str().expect("id");
    assert_eq!(fetch(&app, Some(&bob), &media.url).await.0, 200);
    let answer = alice
        .api
        .raw(Method::DELETE, &format!("/api/v1/messages/{id}"), None)
        .await
        .expect("delete");
    assert_eq!(answer.0, 200);
    assert_eq!(fetch(&app, Some(&bob), &media.url).await.0, 404);
    assert_eq!(
        fetch(&app, Some(&alice), &media.url).await.0,
        200,
        "still the uploader's"
    );
}

#[tokio::test]
async fn a_signed_link_opens_its_one_file_without_a_header() {
    let app = spawn_app().await;
    let (alice, bob, carol) = (
        app.user("alice").await,
        app.user("bob").await,
        app.user("carol").await,
    );
    let media = alice
        .api
        .upload("pic.png", "image/png", png(8, 8))
        .await
        .expect("upload");
    let thumb = media.thumbnail_url.clone().expect("thumbnail");
    let room = alice.dm(&bob).await;
    let (status, sent) = send_media(&alice, room.id, MessageType::Image, media.id).await;
    assert_eq!(status, 201, "{sent}");

    // Without any header, each link opens its own file, with a Range too.
    let (status, headers, body) = fetch(&app, None, &media.url).await;
    assert_eq!(status, 200);
    assert_eq!(body.len() as u64, media.size);
    assert_eq!(headers[header::CACHE_CONTROL], "private, no-cache");
    let (status, _, thumbnail) = fetch(&app, None, &thumb).await;
    assert_eq!(status, 200);
    assert_ne!(thumbnail, body, "the thumbnail link serves the thumbnail");
    let url = format!("{}{}", app.base, media.url);
    let (status, _, part) = http(
        None,
        Method::GET,
        url,
        &[(header::RANGE, "bytes=0-9")],
        None,
    )
    .await;
    assert_eq!((status, part.len()), (206, 10));
    // A header decides when there is one: Carol's, for media she may not see, is refused
    // whatever link the URL carries.
    let (status, _, body) = fetch(&app, Some(&carol), &media.url).await;
    assert_error(&(status, json_of(&body)), 404, "media_not_found");

    // Revalidation: with the ETag, a 304 while the link is good.
    let etag = format!("\"{}\"", media.sha256);
    let url = format!("{}{}", app.base, media.url);
    let (status, _, _) = http(
        None,
        Method::GET,
        url.clone(),
        &[(header::IF_NONE_MATCH, &etag)],
        None,
    )
    .await;
    assert_eq!(status, 304);

    // Links in what members read are signed for them the same way: Bob's history.
    let history = bob
        .api
        .history(room.id, None, None, None)
        .await
        .expect("history");
    let carried = history
        .messages
        .last()
        .and_then(|m| m.media.clone())
        .expect("media");
    assert_eq!(fetch(&app, None, &carried.url).await.0, 200);

    // A link for one object does not open another, nor one file the other.
    let other = alice
        .api
        .upload("other.png", "image/png", png(4, 4))
        .await
        .expect("upload");
    let query = |url: &str| url.split_once('?').expect("signed").1.to_owned();
    for url in [
        format!("{}?{}", path_of(&other.url), query(&media.url)),
        format!("{}?{}", path_of(&media.url), query(&thumb)),
        format!("{}?{}", path_of(&thumb), query(&media.url)),
        format!(
            "{}?exp=99999999999&sig={}",
            path_of(&media.url),
            query(&media.url).split("sig=").nth(1).unwrap_or_default()
        ),
        format!("{}?exp=1&sig=AAAA", path_of(&media.url)),
        format!("{}?sig=AAAA", path_of(&media.url)),
    ] {
        let (status, _, body) = fetch(&app, None, &url).await;
        assert_error(&(status, json_of(&body)), 401, "unauthorized");
    }
    // An `exp` that is not an integer is a malformed request, header or not.
    let url = format!("{}?exp=soon&sig=AAAA", path_of(&media.url));
    for user in [None, Some(&alice)] {
        let (status, _, body) = fetch(&app, user, &url).await;
        assert_error(&(status, json_of(&body)), 400, "bad_request");
    }
}

#[tokio::test]
async fn signed_links_expire_and_messages_give_fresh_ones() {
    // Links live one to two seconds.
    let app = spawn_app_with(|c| c.media.link_ttl_secs = 1).await;
    let (alice, bob) = (app.user("alice").await, app.user("bob").await);
    let media = alice
        .api
        .upload("pic.png", "image/png", png(8, 8))
        .await
        .expect("upload");
    let thumb = media.thumbnail_url.clone().expect("thumbnail");
    let room = alice.dm(&bob).await;
    let (status, sent) = send_media(&alice, room.id, MessageType::Image, media.id).await;
    assert_eq!(status, 201, "{sent}");
    let etag = format!("\"{}\"", media.sha256);

    // Expired: refused (also the revalidation); the message gives fresh links.
    tokio::time::sleep(std::time::Duration::from_millis(3100)).await;
    for url in [&media.url, &thumb] {
        let (status, _, body) = fetch(&app, None, url).await;
        assert_error(&(status, json_of(&body)), 401, "unauthorized");
    }
    let url = format!("{}{}", app.base, media.url);
    let (status, _, _) = http(
        None,
        Method::GET,
        url,
        &[(header::IF_NONE_MATCH, &etag)],
        None,
    )
    .await;
    assert_eq!(status, 401);
    let id = sent["id"].as_str().expect("id");
    let (status, fresh) = bob
        .api
        .raw(Method::GET, &format!("/api/v1/messages/{id}"), None)
        .await
        .expect("message");
    assert_eq!(status, 200, "{fresh}");
    let fresh = fresh["media"]["url"].as_str().expect("a fresh link");
    assert_ne!(fresh, media.url);
    assert_eq!(fetch(&app, None, fresh).await.0, 200);
}

#[tokio::test]
async fn a_removed_member_loses_the_media_at_once_by_header_and_when_links_expire() {
    let app = spawn_app_with(|c| c.media.link_ttl_secs = 1).await;
    let (alice, bob, carol) = (
        app.user("alice").await,
        app.user("bob").await,
        app.user("carol").await,
    );
    let group = alice.group("team", &[&bob, &carol]).await;
    let media = alice
        .api
        .upload("pic.png", "image/png", png(8, 8))
        .await
        .expect("upload");
    let (status, _) = send_media(&alice, group.id, MessageType::Image, media.id).await;
    assert_eq!(status, 201);
    let history = bob
        .api
        .history(group.id, None, None, None)
        .await
        .expect("history");
    let bobs_link = history
        .messages
        .last()
        .and_then(|m| m.media.clone())
        .expect("media")
        .url;
    assert_eq!(fetch(&app, Some(&bob), &path_of(&bobs_link)).await.0, 200);

    let (status, body) = alice
        .api
        .raw(
            Method::DELETE,
            &format!("/api/v1/rooms/{}/members/{}", group.id, bob.id),
            None,
        )
        .await
        .expect("remove");
    assert_eq!(status, 204, "{body}");
    // By header: refused at once, and he is issued no new link.
    let (status, _, body) = fetch(&app, Some(&bob), &path_of(&bobs_link)).await;
    assert_error(&(status, json_of(&body)), 404, "media_not_found");
    let (status, body) = bob
        .api
        .raw(
            Method::GET,
            &format!("/api/v1/messages/history?roomId={}", group.id),
            None,
        )
        .await
        .expect("history");
    assert_error(&(status, body), 404, "room_not_found");
    // The link he was handed before stops working when it expires (at most
    // `media.link_ttl_secs` later).
    tokio::time::sleep(std::time::Duration::from_millis(3100)).await;
    let (status, _, body) = fetch(&app, None, &bobs_link).await;
    assert_error(&(status, json_of(&body)), 401, "unauthorized");
    // Carol, still a member, carries on.
    assert_eq!(fetch(&app, Some(&carol), &path_of(&bobs_link)).await.0, 200);
}

#[tokio::test]
async fn range_requests_stream_parts() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let video = mp4();
    let media = alice
        .api
        .upload("clip.mp4", "video/mp4", video.clone())
        .await
        .expect("upload");
    let url = format!("{}{}", app.base, media.url);
    let total = video.len();
    for (spec, from, to) in [
        ("bytes=0-99", 0, 100),
        ("bytes=100-", 100, total),
        ("bytes=-10", total - 10, total),
    ] {
        let (status, headers, body) = http(
            Some(&alice),
            Method::GET,
            url.clone(),
            &[(header::RANGE, spec)],
            None,
        )
        .await;
        assert_eq!(status, 206, "{spec}");
        assert_eq!(body.as_ref(), &video[from..to], "{spec}");
        assert_eq!(
            headers[header::CONTENT_RANGE],
            format!("bytes {from}-{}/{total}", to - 1).as_str()
        );
        assert_eq!(
            headers[header::CONTENT_LENGTH],
            (to - from).to_string().as_str()
        );
    }
    let (status, headers, _) = http(
        Some(&alice),
        Method::GET,
        url.clone(),
        &[(header::RANGE, "bytes=999999-")],
        None,
    )
    .await;
    assert_eq!(status, 416);
    assert_eq!(
        headers[header::CONTENT_RANGE],
        format!("bytes */{total}").as_str()
    );
    // Several ranges at once are answered with the whole file.
    let (status, _, body) = http(
        Some(&alice),
        Method::GET,
        url.clone(),
        &[(header::RANGE, "bytes=0-1,5-6")],
        None,
    )
    .await;
    assert_eq!((status, body.len()), (200, total));
    // A cache that has it already.
    let etag = format!("\"{}\"", media.sha256);
    let (status, _, body) = http(
        Some(&alice),
        Method::GET,
        url,
        &[(header::IF_NONE_MATCH, &etag)],
        None,
    )
    .await;
    assert_eq!((status, body.len()), (304, 0));
}

#[tokio::test]
async fn media_messages_carry_their_media_through_the_chat() {
    let app = spawn_app().await;
    let (alice, bob) = (app.user("alice").await, app.user("bob").await);
    let room = alice.dm(&bob).await;
    let mut bob_socket = bob.connect().await;
    let media = alice
        .api
        .upload("pic.png", "image/png", png(30, 20))
        .await
        .expect("upload");

    let (status, _) = send_media(&alice, room.id, MessageType::Image, media.id).await;
    assert_eq!(status, 201);
    let live = next_message(&mut bob_socket).await;
    assert_eq!(live.kind, MessageType::Image);
    assert_eq!(
        live.media.as_ref(),
        Some(&media),
        "the live frame describes the media"
    );

    let history = bob
        .api
        .history(room.id, None, None, None)
        .await
        .expect("history");
    let last = history.messages.last().expect("a message");
    assert_eq!(last.media.as_ref(), Some(&media), "so does history");

    // A file message may carry any media; other types must match.
    assert_eq!(
        send_media(&alice, room.id, MessageType::File, media.id)
            .await
            .0,
        201
    );
    assert_error(
        &send_media(&alice, room.id, MessageType::Video, media.id).await,
        422,
        "validation_failed",
    );
    let text = json!({"roomId": room.id, "clientMsgId": "t1", "type": "text", "content": "hi", "mediaId": media.id});
    assert_error(
        &alice
            .api
            .raw(Method::POST, "/api/v1/messages/send", Some(&text))
            .await
            .expect("send"),
        422,
        "validation_failed",
    );
    let unknown = send_media(&alice, room.id, MessageType::Image, Uuid::now_v7()).await;
    assert_error(&unknown, 404, "media_not_found");

    // Over the socket too, with the same rules.
    let mut alice_socket = alice.connect().await;
    let req = SendMessageRequest {
        room_id: room.id,
        client_msg_id: "sock-1".into(),
        content: String::new(),
        kind: MessageType::Image,
        media_id: Some(media.id),
        ..Default::default()
    };
    let (acked, _) = alice_socket.send_request(req).await.expect("ack");
    assert_eq!(acked.media.map(|m| m.id), Some(media.id));
}
