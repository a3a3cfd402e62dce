//! Store cases about link previews: the per-URL cache (expiry, replacement, purge), a
//! message's preview as a change (only on the message as it was asked for), deletion,
//! and the pictures they keep from the orphan sweep.

use palaver_proto::Role;
use palaver_server::store::{CacheEntry, PreviewRow, Toggled};
use uuid::Uuid;

use super::{Fixture, group, media_row, msg, send, user};

fn card(url: &str, title: &str, image: Option<Uuid>) -> PreviewRow {
    PreviewRow {
        url: url.into(),
        title: title.into(),
        description: Some("a description, ünïcödé".into()),
        site_name: None,
        image_media_id: image,
    }
}

pub(super) async fn link_previews_cache_and_messages(fx: &mut Fixture) {
    let s = fx.store.as_ref();
    let a = user(s, "alice").await;
    let room = group(s, &[(a.id, Role::Owner)]).await;
    let url = "https://example.com/a";

    // The cache: nothing, then an entry until it expires, replaced by a later one.
    assert_eq!(s.cached_preview(url, 1_000).await.expect("read"), None);
    let failed = CacheEntry {
        url: url.into(),
        found: None,
        fetched_at_ms: 1_000,
        expires_at_ms: 2_000,
    };
    s.cache_preview(&failed).await.expect("cache");
    assert_eq!(
        s.cached_preview(url, 1_999).await.expect("read"),
        Some(failed)
    );
    assert_eq!(
        s.cached_preview(url, 2_000).await.expect("read"),
        None,
        "expired"
    );
    let picture = media_row(a.id, "s-card", None, 100);
    let stale = media_row(a.id, "s-stale", None, 100);
    for m in [&picture, &stale] {
        assert!(s.insert_media(m, None).await.expect("insert"));
    }
    let found = CacheEntry {
        url: url.into(),
        found: Some(card(url, "A", Some(picture.id))),
        fetched_at_ms: 3_000,
        expires_at_ms: 10_000,
    };
    s.cache_preview(&found).await.expect("replace");
    assert_eq!(
        s.cached_preview(url, 3_000).await.expect("read"),
        Some(found)
    );
    let other = CacheEntry {
        url: "https://example.com/old".into(),
        found: Some(card("https://example.com/old", "Old", Some(stale.id))),
        fetched_at_ms: 0,
        expires_at_ms: 500,
    };
    s.cache_preview(&other).await.expect("cache");
    assert_eq!(s.purge_previews(3_000).await.expect("purge"), 1);
    assert!(s.cached_preview(url, 3_000).await.expect("read").is_some());

    // A message's preview: set once (a change), unchanged when the same, cleared.
    let [m, n] = send(s, vec![msg(room, a.id, "1"), msg(room, a.id, "2")])
        .await
        .try_into()
        .expect("two");
    let a_card = card(url, "A", Some(picture.id));
    let set = s
        .set_message_preview(room, m.id, None, Some(&a_card))
        .await
        .expect("set");
    let Toggled::Changed(v1) = set else {
        panic!("{set:?}")
    };
    let same = s.set_message_preview(room, m.id, None, Some(&a_card)).await;
    assert_eq!(same.expect("same"), Toggled::Unchanged);
    let found = s
        .message_previews(&[m.id, n.id, Uuid::now_v7()])
        .await
        .expect("list");
    assert_eq!(found.len(), 1);
    assert_eq!((found[0].message_id, &found[0].preview), (m.id, &a_card));
    let changed = s
        .changed_messages(room, v1 - 1, 10, 10)
        .await
        .expect("changes");
    assert_eq!(changed.iter().map(|c| c.id).collect::<Vec<_>>(), vec![m.id]);
    assert_eq!(changed[0].version, v1);
    let b_card = card(url, "B", None);
    let replaced = s.set_message_preview(room, m.id, None, Some(&b_card)).await;
    assert!(matches!(replaced.expect("replace"), Toggled::Changed(v) if v > v1));
    let cleared = s.set_message_preview(room, m.id, None, None).await;
    assert!(matches!(cleared.expect("clear"), Toggled::Changed(_)));
    assert!(s.message_previews(&[m.id]).await.expect("list").is_empty());
    let nothing = s.set_message_preview(room, m.id, None, None).await;
    assert_eq!(nothing.expect("clear again"), Toggled::Unchanged);

    // Only on the message as it was asked for: not after an edit, not in another room,
    // not on a deleted or unknown one.
    let edited = s
        .edit_message(n.id, "edited", &[], false, 5_000)
        .await
        .expect("edit");
    let stale_ask = s.set_message_preview(room, n.id, None, Some(&a_card)).await;
    assert_eq!(stale_ask.expect("stale"), Toggled::Missing);
    let edited_at = edited
        .message
        .edited_at
        .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64);
    assert_eq!(edited_at, Some(5_000));
    let fresh_ask = s
        .set_message_preview(room, n.id, edited_at, Some(&a_card))
        .await;
    assert!(matches!(fresh_ask.expect("fresh"), Toggled::Changed(_)));
    let elsewhere = group(s, &[(a.id, Role::Owner)]).await;
    let wrong_room = s
        .set_message_preview(elsewhere, n.id, edited_at, None)
        .await;
    assert_eq!(wrong_room.expect("wrong room"), Toggled::Missing);
    let unknown = s
        .set_message_preview(room, Uuid::now_v7(), None, None)
        .await;
    assert_eq!(unknown.expect("unknown"), Toggled::Missing);

    // The sweep keeps pictures the cache or a message shows; deleting the message takes
    // its preview, and then its picture goes once the cache entry has gone too.
    assert!(
        s.delete_orphan_media(1_000)
            .await
            .expect("sweep")
            .iter()
            .map(|r| r.id)
            .eq([stale.id])
    );
    s.delete_message(n.id, 6_000).await.expect("delete");
    assert!(s.message_previews(&[n.id]).await.expect("list").is_empty());
    let after_delete = s
        .set_message_preview(room, n.id, edited_at, Some(&a_card))
        .await;
    assert_eq!(after_delete.expect("deleted"), Toggled::Missing);
    assert!(
        s.delete_orphan_media(1_000)
            .await
            .expect("sweep")
            .is_empty(),
        "still cached"
    );
    assert_eq!(s.purge_previews(20_000).await.expect("purge"), 1);
    let swept: Vec<Uuid> = s
        .delete_orphan_media(1_000)
        .await
        .expect("sweep")
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(swept, vec![picture.id]);
}
