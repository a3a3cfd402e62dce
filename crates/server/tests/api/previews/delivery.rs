//! A preview reaching the room: as a change (`message.updated`, with the room's next
//! change number), with its picture served by the server; read once per URL; not at all
//! with `noPreview` or with previews off; following edits; gone with the message; and
//! replayed by `sync` to a member who was away.

use palaver_proto::{
    ClientFrame, Cursors, EditMessageRequest, Message, MessageType, SendMessageRequest, ServerFrame,
};
use reqwest::Method;
use uuid::Uuid;

use crate::helpers::*;

use super::{
    Pages, allow_pages, app, cached, fetched, linking, no_card, no_update, previewed, titled,
};

#[tokio::test]
async fn a_preview_arrives_as_a_change_with_a_cleaned_picture_served_here() {
    let pages = Pages::start().await;
    let app = app().await;
    let (alice, bob) = (app.user("alice").await, app.user("bob").await);
    let room = alice.dm(&bob).await;
    let mut bob_socket = bob.connect().await;

    let url = pages.url("/page/one");
    let sent = alice.send(room.id, &linking(&url)).await;
    assert_eq!(sent.link_preview, None, "the send answers before any fetch");
    let live = next_message(&mut bob_socket).await;
    assert_eq!((live.id, live.link_preview.as_ref()), (sent.id, None));

    let updated = previewed(&mut bob_socket, sent.id).await;
    let preview = updated.link_preview.clone().expect("preview");
    assert_eq!(preview.url, url);
    assert_eq!(preview.title, "Page one");
    assert_eq!(preview.description.as_deref(), Some("All about one & more"));
    assert_eq!(preview.site_name.as_deref(), Some("Test site"));
    assert!(
        updated.version > sent.version,
        "a change takes a change number"
    );
    assert_eq!(updated.content, sent.content);

    // The picture comes from this server, by a signed link, without its metadata.
    let image_url = preview.image_url.expect("a picture");
    assert!(image_url.starts_with("/api/v1/media/"), "{image_url}");
    assert!(!image_url.contains("127.0.0.1"), "{image_url}");
    let served = reqwest::get(format!("{}{image_url}", app.base))
        .await
        .expect("GET picture");
    assert_eq!(served.status(), 200);
    let mime = served.headers()["content-type"]
        .to_str()
        .expect("type")
        .to_owned();
    assert!(mime.starts_with("image/"), "{mime}");
    let bytes = served.bytes().await.expect("bytes");
    let picture = image::load_from_memory(&bytes).expect("an image");
    assert!(
        picture.width() <= 320 && picture.height() <= 320,
        "a thumbnail"
    );
    let secret = super::media::SECRET.as_bytes();
    assert!(
        !bytes.windows(secret.len()).any(|w| w == secret),
        "metadata removed"
    );
    assert_eq!(pages.hits("/picture.jpg"), 1);

    // Every way of reading the message shows it, to both.
    assert_eq!(
        fetched(&bob, sent.id).await.link_preview,
        updated.link_preview
    );
    let history = alice
        .api
        .history(room.id, None, None, None)
        .await
        .expect("history");
    let last = history.messages.last().expect("message");
    assert_eq!(last.link_preview, updated.link_preview);
    assert_eq!(cached(&app, &url).await.as_deref(), Some("Page one"));
}

#[tokio::test]
async fn the_same_link_is_read_once_for_every_message_that_carries_it() {
    let pages = Pages::start().await;
    let app = app().await;
    let (alice, bob, carol) = (
        app.user("alice").await,
        app.user("bob").await,
        app.user("carol").await,
    );
    let dm = alice.dm(&bob).await;
    let group = carol.group("friends", &[&alice, &bob]).await;
    let mut bob_socket = bob.connect().await;

    let url = pages.url("/plain/shared");
    let first = alice.send(dm.id, &linking(&url)).await;
    let first = previewed(&mut bob_socket, first.id).await;
    let again = bob.send(dm.id, &format!("yes! {url}")).await;
    let elsewhere = carol.send(group.id, &url).await;
    let again = previewed(&mut bob_socket, again.id).await;
    let elsewhere = previewed(&mut bob_socket, elsewhere.id).await;
    assert_eq!(
        pages.hits("/plain/shared"),
        1,
        "one fetch for three messages"
    );
    for m in [&first, &again, &elsewhere] {
        let p = m.link_preview.as_ref().expect("preview");
        assert_eq!(p.title, "Plain shared");
        assert_eq!(p.description.as_deref(), Some("Said plainly"));
        assert_eq!((p.site_name.as_ref(), p.image_url.as_ref()), (None, None));
    }

    // Several at once while the first is still being read: still one fetch.
    let slow = pages.url("/page/burst?delay_ms=300&image=");
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(alice.send(dm.id, &linking(&slow)).await.id);
    }
    for id in ids {
        previewed(&mut bob_socket, id).await;
    }
    assert_eq!(pages.hits("/page/burst"), 1);
}

#[tokio::test]
async fn no_preview_when_the_sender_or_the_server_says_so() {
    let pages = Pages::start().await;
    let app = app().await;
    let (alice, bob) = (app.user("alice").await, app.user("bob").await);
    let room = alice.dm(&bob).await;
    let mut bob_socket = bob.connect().await;

    // Over REST and over the socket.
    let url = pages.url("/page/quiet");
    let body = serde_json::json!({
        "roomId": room.id, "clientMsgId": "np-1", "content": linking(&url), "noPreview": true
    });
    let (status, rest) = alice
        .api
        .call::<_, Message>(Method::POST, "/api/v1/messages/send", Some(&body))
        .await
        .expect("send");
    assert_eq!(status, 201);
    let mut alice_socket = alice.connect().await;
    let (socket, _) = alice_socket
        .send_request(SendMessageRequest {
            room_id: room.id,
            client_msg_id: "np-2".into(),
            content: linking(&url),
            no_preview: true,
            ..Default::default()
        })
        .await
        .expect("socket send");
    // Only text is previewed: not a picture's caption.
    let upload = alice
        .api
        .upload("p.png", "image/png", super::media::png(8, 8))
        .await
        .expect("upload");
    let (captioned, _) = alice_socket
        .send_request(SendMessageRequest {
            room_id: room.id,
            client_msg_id: "np-3".into(),
            content: linking(&url),
            kind: MessageType::Image,
            media_id: Some(upload.id),
            ..Default::default()
        })
        .await
        .expect("media send");
    for id in [rest.id, socket.id, captioned.id] {
        no_update(&mut bob_socket, id).await;
        assert_eq!(fetched(&bob, id).await.link_preview, None);
    }
    assert_eq!(pages.hits("/page/quiet"), 0);

    // A server with previews off reads nothing.
    let off = spawn_app_with(|c| {
        allow_pages(c);
        c.link_previews.enabled = false;
    })
    .await;
    let (dave, erin) = (off.user("dave").await, off.user("erin").await);
    let room = dave.dm(&erin).await;
    let mut erin_socket = erin.connect().await;
    let sent = dave.send(room.id, &linking(&pages.url("/page/off"))).await;
    no_update(&mut erin_socket, sent.id).await;
    assert_eq!(pages.hits("/page/off"), 0);
    assert!(
        off.db_rows("SELECT url FROM link_previews")
            .await
            .is_empty()
    );
}

/// Waits for `message.updated` of `id` without a preview.
async fn bare(socket: &mut palaver_client::Socket, id: Uuid) {
    socket
        .wait_for(WAIT, |f| {
            matches!(f, ServerFrame::MessageUpdated { message }
                if message.id == id && message.link_preview.is_none())
        })
        .await
        .expect("message.updated without a card");
}

/// Edits `id` over REST.
async fn edit(user: &TestUser, id: Uuid, content: &str, no_preview: bool) -> Message {
    let body = EditMessageRequest {
        content: content.into(),
        no_preview,
    };
    let (status, message) = user
        .api
        .call::<_, Message>(
            Method::PATCH,
            &format!("/api/v1/messages/{id}"),
            Some(&body),
        )
        .await
        .expect("edit");
    assert_eq!(status, 200);
    message
}

#[tokio::test]
async fn an_edit_follows_the_first_link() {
    let pages = Pages::start().await;
    let app = app().await;
    let (alice, bob) = (app.user("alice").await, app.user("bob").await);
    let room = alice.dm(&bob).await;
    let mut bob_socket = bob.connect().await;
    let (a, b) = (pages.url("/plain/a"), pages.url("/plain/b"));
    let sent = alice.send(room.id, &linking(&a)).await;
    previewed(&mut bob_socket, sent.id).await;

    // Same link, other words: the card stays, nothing is read again.
    let kept = edit(&alice, sent.id, &format!("{a} (edited)"), false).await;
    assert_eq!(
        kept.link_preview.map(|p| p.title).as_deref(),
        Some("Plain a")
    );
    titled(&mut bob_socket, sent.id, Some("Plain a")).await;
    // Another link: the old card goes with the edit, the new one follows.
    let moved = edit(&alice, sent.id, &linking(&b), false).await;
    // The old card never survives the edit. On the cluster, under load, the new one can be
    // read and attached before the edit's answer is built (the page is local and quick).
    let title = moved.link_preview.map(|p| p.title);
    assert!(
        matches!(title.as_deref(), None | Some("Plain b")),
        "{title:?}"
    );
    bare(&mut bob_socket, sent.id).await;
    titled(&mut bob_socket, sent.id, Some("Plain b")).await;
    assert_eq!((pages.hits("/plain/a"), pages.hits("/plain/b")), (1, 1));
    // `noPreview` on the edit (here over the socket) takes it away.
    let mut alice_socket = alice.connect().await;
    let id = alice_socket
        .send_frame(ClientFrame::Edit {
            message_id: sent.id,
            content: linking(&b),
            no_preview: true,
        })
        .await
        .expect("edit frame");
    match alice_socket.answer(&id, WAIT).await.expect("ack") {
        ServerFrame::Ack {
            message: Some(m), ..
        } => assert_eq!(m.link_preview, None),
        other => panic!("{other:?}"),
    }
    bare(&mut bob_socket, sent.id).await;
    no_card(&mut bob_socket, sent.id).await;
    // No link left: nothing to show.
    let plain = edit(&alice, sent.id, "no link any more", false).await;
    assert_eq!(plain.link_preview, None);
    assert_eq!(fetched(&bob, sent.id).await.link_preview, None);
}

#[tokio::test]
async fn a_card_read_for_an_older_text_never_lands_on_the_edited_one() {
    let pages = Pages::start().await;
    let app = app().await;
    let (alice, bob) = (app.user("alice").await, app.user("bob").await);
    let room = alice.dm(&bob).await;
    let mut bob_socket = bob.connect().await;
    let slow = pages.url("/page/late?delay_ms=600&image=");
    let sent = alice.send(room.id, &linking(&slow)).await;
    // Edited while the page is still being read.
    edit(&alice, sent.id, "never mind", false).await;
    assert_eq!(cached(&app, &slow).await.as_deref(), Some("Page late"));
    no_card(&mut bob_socket, sent.id).await;
    let now = fetched(&bob, sent.id).await;
    assert_eq!(
        (now.content.as_str(), now.link_preview),
        ("never mind", None)
    );
}

#[tokio::test]
async fn deleting_a_message_deletes_its_preview() {
    let pages = Pages::start().await;
    let app = app().await;
    let (alice, bob) = (app.user("alice").await, app.user("bob").await);
    let room = alice.dm(&bob).await;
    let mut bob_socket = bob.connect().await;
    let sent = alice
        .send(room.id, &linking(&pages.url("/page/doomed")))
        .await;
    previewed(&mut bob_socket, sent.id).await;
    let stored = format!(
        "SELECT COUNT(*) FROM message_previews WHERE url = '{}'",
        pages.url("/page/doomed")
    );
    assert_eq!(app.db_rows(&stored).await[0][0].as_deref(), Some("1"));

    let (status, _) = alice
        .api
        .raw(
            Method::DELETE,
            &format!("/api/v1/messages/{}", sent.id),
            None,
        )
        .await
        .expect("delete");
    assert_eq!(status, 200);
    match bob_socket
        .wait_for(WAIT, |f| matches!(f, ServerFrame::MessageDeleted { .. }))
        .await
        .expect("message.deleted")
    {
        ServerFrame::MessageDeleted { message } => {
            assert!(message.deleted);
            assert_eq!(message.link_preview, None);
        }
        _ => unreachable!(),
    }
    assert_eq!(fetched(&bob, sent.id).await.link_preview, None);
    assert_eq!(app.db_rows(&stored).await[0][0].as_deref(), Some("0"));
}

/// Connects with `sync` from `cursors` and `changes`; answers the replayed messages (new
/// and changed, in order) and the `synced` change numbers.
async fn sync(user: &TestUser, cursors: Cursors, changes: Cursors) -> (Vec<Message>, Cursors) {
    let mut socket = user.connect().await;
    let id = socket
        .send_frame(ClientFrame::Sync { cursors, changes })
        .await
        .expect("sync");
    let mut replayed = Vec::new();
    loop {
        match socket.next_within(WAIT).await.expect("replay") {
            ServerFrame::Message { message } | ServerFrame::MessageUpdated { message } => {
                replayed.push(message)
            }
            ServerFrame::Synced {
                id: Some(i),
                changes,
                ..
            } if i == id => return (replayed, changes),
            _ => {}
        }
    }
}

#[tokio::test]
async fn sync_replays_a_preview_to_a_member_who_was_away() {
    let pages = Pages::start().await;
    let app = app().await;
    let (alice, bob) = (app.user("alice").await, app.user("bob").await);
    let room = alice.dm(&bob).await;
    let cursors = |seq: i64| Cursors::from([(room.id, seq)]);
    let (_, changes) = sync(&bob, cursors(0), Cursors::new()).await;

    // Bob has the message, then goes away before its card is ready.
    let slow = pages.url("/page/away?delay_ms=500");
    let mut socket = bob.connect().await;
    let sent = alice.send(room.id, &linking(&slow)).await;
    assert_eq!(next_message(&mut socket).await.id, sent.id);
    drop(socket);
    let fresh = alice.send(room.id, "and another thing").await;
    assert_eq!(cached(&app, &slow).await.as_deref(), Some("Page away"));
    let shown = loop {
        let m = fetched(&alice, sent.id).await;
        if m.link_preview.is_some() {
            break m;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };

    // Back from where it left off: the new message, and the old one as it is now.
    let (replayed, _) = sync(&bob, cursors(sent.seq), changes).await;
    let card = replayed
        .iter()
        .find(|m| m.id == sent.id)
        .expect("the previewed message is replayed");
    assert_eq!(card.link_preview, shown.link_preview);
    assert!(replayed.iter().any(|m| m.id == fresh.id));
    // A device that had nothing gets the message with its card at once.
    let (from_scratch, _) = sync(&bob, cursors(0), Cursors::new()).await;
    let first = from_scratch
        .iter()
        .find(|m| m.id == sent.id)
        .expect("replayed");
    assert_eq!(first.link_preview, shown.link_preview);
}
