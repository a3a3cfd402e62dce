//! Store cases about media: rows, orphans, and per-user usage against the quota.

use palaver_proto::{MessageType, Role};
use palaver_server::store::MediaRow;
use uuid::Uuid;

use super::{Fixture, group, media_row, msg, send, user};

pub(super) async fn media_rows_and_orphans(fx: &mut Fixture) {
    let s = fx.store.as_ref();
    let a = user(s, "alice").await;
    let room = group(s, &[(a.id, Role::Owner)]).await;
    let used = media_row(a.id, "s-used", Some("t-used"), 100);
    let orphan = media_row(a.id, "s-orphan", None, 100);
    let recent = media_row(a.id, "s-recent", None, 10_000);
    let freed = media_row(a.id, "s-freed", None, 100);
    for m in [&used, &orphan, &recent, &freed] {
        assert!(s.insert_media(m, None).await.expect("insert"));
    }
    assert_eq!(s.media(used.id).await.expect("media"), Some(used.clone()));
    assert!(s.media(Uuid::now_v7()).await.expect("media").is_none());
    let mut many = s
        .media_many(&[used.id, orphan.id, Uuid::now_v7()])
        .await
        .expect("many");
    many.sort_by_key(|m| m.id);
    assert_eq!(many, vec![used.clone(), orphan.clone()]);

    let carry = |media: &MediaRow, key: &str| {
        let mut m = msg(room, a.id, key);
        m.kind = MessageType::Image;
        m.media_id = Some(media.id);
        m
    };
    let [_, to_delete] = send(s, vec![carry(&used, "1"), carry(&freed, "2")])
        .await
        .try_into()
        .expect("two");
    assert_eq!(s.media_rooms(used.id).await.expect("rooms"), vec![room]);
    s.delete_message(to_delete.id, 200).await.expect("delete");
    assert!(s.media_rooms(freed.id).await.expect("rooms").is_empty());

    let mut gone = s.delete_orphan_media(1_000).await.expect("orphans");
    gone.sort_by_key(|m| m.id);
    assert_eq!(gone, vec![orphan.clone(), freed.clone()]);
    assert!(s.media(orphan.id).await.expect("media").is_none());
    assert!(s.media(recent.id).await.expect("media").is_some());

    assert!(s.blob_in_use("s-used").await.expect("in use"));
    assert!(s.blob_in_use("t-used").await.expect("in use"));
    assert!(!s.blob_in_use("s-orphan").await.expect("in use"));
    s.delete_media(recent.id).await.expect("delete");
    assert!(!s.blob_in_use("s-recent").await.expect("in use"));
}

pub(super) async fn media_usage_and_quota(fx: &mut Fixture) {
    let s = fx.store.as_ref();
    let a = user(s, "alice").await;
    let b = user(s, "bob").await;
    let sized = |uploader: Uuid, sha: &str, size: u64, thumb: Option<u64>| MediaRow {
        size,
        thumb_size: thumb,
        ..media_row(uploader, sha, thumb.map(|_| "thumb"), 100)
    };
    assert_eq!(s.media_usage(a.id).await.expect("usage"), 0);
    // A file and its thumbnail count; the same bytes uploaded again count again.
    let first = sized(a.id, "same", 100, Some(20));
    assert!(s.insert_media(&first, Some(1_000)).await.expect("insert"));
    assert_eq!(s.media(first.id).await.expect("media"), Some(first.clone()));
    let again = sized(a.id, "same", 100, None);
    assert!(s.insert_media(&again, Some(1_000)).await.expect("insert"));
    assert_eq!(s.media_usage(a.id).await.expect("usage"), 220);
    assert_eq!(s.media_usage(b.id).await.expect("usage"), 0);
    // Past the quota: refused, nothing stored. Up to it exactly: stored.
    let over = sized(a.id, "over", 781, None);
    assert!(!s.insert_media(&over, Some(1_000)).await.expect("insert"));
    assert!(s.media(over.id).await.expect("media").is_none());
    let exact = sized(a.id, "exact", 780, None);
    assert!(s.insert_media(&exact, Some(1_000)).await.expect("insert"));
    assert_eq!(s.media_usage(a.id).await.expect("usage"), 1_000);
    // Without a quota anything goes; deleting gives the room back.
    assert!(s.insert_media(&over, None).await.expect("insert"));
    assert_eq!(s.media_usage(a.id).await.expect("usage"), 1_781);
    let gone = s.delete_orphan_media(1_000).await.expect("orphans");
    assert_eq!(gone.len(), 4);
    assert_eq!(s.media_usage(a.id).await.expect("usage"), 0);

    // Uploads side by side (on PostgreSQL, from two nodes): exactly what fits is stored.
    let other = match fx.pg {
        Some(_) => fx.node().await,
        None => fx.store.clone(),
    };
    let stores = [fx.store.clone(), other];
    let tries = (0..40).map(|i| {
        let store = stores[i % 2].clone();
        let row = sized(b.id, &format!("b{i}"), 10, Some(15));
        tokio::spawn(async move { store.insert_media(&row, Some(250)).await.expect("insert") })
    });
    let stored = futures::future::join_all(tries)
        .await
        .into_iter()
        .filter(|done| *done.as_ref().expect("task"))
        .count();
    assert_eq!(stored, 10);
    assert_eq!(fx.store.media_usage(b.id).await.expect("usage"), 250);
}
