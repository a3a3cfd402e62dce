//! Store cases about messages: appends that assign seqs and are idempotent, edits and
//! deletes, history pages, read markers and the room summary.

use palaver_proto::{MessageType, Role};
use palaver_server::clock::to_time;
use palaver_server::store::{Appended, Entity, Markers, NewMessage, SeqOrder, StoreError};
use uuid::Uuid;

use super::{Fixture, group, media_row, msg, send, seqs, user};

pub(super) async fn append_assigns_seqs_and_is_idempotent(fx: &mut Fixture) {
    let s = fx.store.as_ref();
    let a = user(s, "alice").await;
    let b = user(s, "bob").await;
    let outsider = user(s, "mallory").await;
    let r1 = group(s, &[(a.id, Role::Owner), (b.id, Role::Member)]).await;
    let r2 = group(s, &[(a.id, Role::Owner)]).await;

    let first = msg(r1, a.id, "k1");
    let batch = vec![
        first.clone(),
        msg(r2, a.id, "k1"), // same key, other room: another message
        msg(r1, b.id, "k1"), // same key, other sender: another message
        NewMessage {
            id: Uuid::now_v7(),
            ..first.clone()
        }, // a retry inside the batch
        msg(r1, outsider.id, "k9"),
        msg(Uuid::now_v7(), a.id, "k8"), // no such room
        msg(r1, a.id, "k2"),
    ];
    let out = s.append_messages(&batch).await.expect("append");
    let Appended::New(m1) = &out[0] else {
        panic!("{:?}", out[0])
    };
    assert_eq!(
        (m1.seq, m1.id, m1.content.as_str()),
        (1, first.id, "text of k1")
    );
    assert!(matches!(&out[1], Appended::New(m) if m.seq == 1 && m.room_id == r2));
    assert!(matches!(&out[2], Appended::New(m) if m.seq == 2 && m.sender_id == b.id));
    assert!(matches!(&out[3], Appended::Duplicate(m) if m.id == first.id && m.seq == 1));
    assert!(matches!(out[4], Appended::NotMember));
    assert!(matches!(out[5], Appended::NotMember));
    assert!(matches!(&out[6], Appended::New(m) if m.seq == 3));

    // A retry in a later batch answers with the stored message.
    let retry = NewMessage {
        id: Uuid::now_v7(),
        content: "changed".into(),
        ..first.clone()
    };
    let out = s
        .append_messages(&[retry, msg(r1, b.id, "k3")])
        .await
        .expect("append");
    assert!(
        matches!(&out[0], Appended::Duplicate(m) if m.id == first.id && m.content == "text of k1")
    );
    assert!(matches!(&out[1], Appended::New(m) if m.seq == 4));
    assert_eq!(
        s.message(first.id).await.expect("message").as_ref(),
        Some(m1)
    );
    assert!(s.append_messages(&[]).await.expect("empty").is_empty());

    // The room and the senders' markers followed.
    let room = s.room(r1).await.expect("room").expect("some");
    assert_eq!(room.last_seq, 4);
    let members = s.members(r1).await.expect("members");
    let marker = |u: Uuid| {
        let m = members.iter().find(|m| m.user_id == u).expect("member");
        (m.delivered_seq, m.read_seq)
    };
    assert_eq!(marker(a.id), (3, 3));
    assert_eq!(marker(b.id), (4, 4));
    assert_eq!(s.room(r2).await.expect("room").expect("some").last_seq, 1);
}

pub(super) async fn edit_and_delete(fx: &mut Fixture) {
    let s = fx.store.as_ref();
    let a = user(s, "alice").await;
    let room = group(s, &[(a.id, Role::Owner)]).await;
    let media = media_row(a.id, "aa", None, 0);
    assert!(s.insert_media(&media, None).await.expect("media"));
    let mut with_media = msg(room, a.id, "m");
    with_media.kind = MessageType::Image;
    with_media.media_id = Some(media.id);
    let [m] = send(s, vec![with_media]).await.try_into().expect("one");

    let edited = s
        .edit_message(m.id, "new text", &[], false, 5_000)
        .await
        .expect("edit")
        .message;
    assert_eq!(edited.content, "new text");
    assert_eq!(edited.edited_at, Some(to_time(5_000)));
    assert_eq!(edited.seq, m.seq);
    assert_eq!(edited.kind, MessageType::Image);

    let deleted = s.delete_message(m.id, 6_000).await.expect("delete").message;
    assert!(deleted.deleted);
    assert_eq!(deleted.content, "");
    assert_eq!(deleted.media_id, None);
    assert_eq!(s.message(m.id).await.expect("read"), Some(deleted));
    assert!(matches!(
        s.edit_message(m.id, "again", &[], false, 7_000).await,
        Err(StoreError::NotFound(Entity::Message))
    ));
    assert!(matches!(
        s.delete_message(m.id, 7_000).await,
        Err(StoreError::NotFound(Entity::Message))
    ));
    assert!(matches!(
        s.edit_message(Uuid::now_v7(), "x", &[], false, 7_000).await,
        Err(StoreError::NotFound(Entity::Message))
    ));
    assert!(s.message(Uuid::now_v7()).await.expect("read").is_none());
}

pub(super) async fn history_pages(fx: &mut Fixture) {
    let s = fx.store.as_ref();
    let a = user(s, "alice").await;
    let room = group(s, &[(a.id, Role::Owner)]).await;
    let other = group(s, &[(a.id, Role::Owner)]).await;
    let batch: Vec<NewMessage> = (1..=10).map(|i| msg(room, a.id, &format!("{i}"))).collect();
    send(s, batch).await;
    send(s, vec![msg(other, a.id, "x")]).await;

    use SeqOrder::{Ascending, Descending};
    let page = |after, before, limit, order| s.messages(room, after, before, limit, order);
    // (after, before, limit, order) → seqs, in the order read: descending pages are the
    // highest seqs of the range, from the top down.
    let cases: [(i64, i64, u32, SeqOrder, &[i64]); 6] = [
        (0, i64::MAX, 3, Ascending, &[1, 2, 3]),
        (0, i64::MAX, 3, Descending, &[10, 9, 8]),
        (0, 5, 2, Descending, &[4, 3]),
        (7, i64::MAX, 50, Ascending, &[8, 9, 10]),
        (3, 6, 50, Descending, &[5, 4]),
        (10, i64::MAX, 5, Ascending, &[]),
    ];
    for (after, before, limit, order, want) in cases {
        let got = page(after, before, limit, order).await.expect("page");
        assert_eq!(
            seqs(&got),
            want,
            "{after} < seq < {before}, {limit} {order:?}"
        );
    }
    let all = page(0, i64::MAX, 100, Ascending).await.expect("page");
    assert_eq!(all.len(), 10);
    assert!(all.iter().all(|m| m.room_id == room));
    assert_eq!(all[0].content, "text of 1");
}

pub(super) async fn markers_and_summary(fx: &mut Fixture) {
    let s = fx.store.as_ref();
    let a = user(s, "alice").await;
    let b = user(s, "bob").await;
    let room = group(s, &[(a.id, Role::Owner), (b.id, Role::Member)]).await;
    send(
        s,
        (1..=5).map(|i| msg(room, a.id, &format!("{i}"))).collect(),
    )
    .await;
    let marks = |delivered_seq, read_seq| Markers {
        delivered_seq,
        read_seq,
    };
    assert_eq!(s.summary(room).await.expect("summary"), marks(0, 0));

    // Clamped to the room's last seq; a target of 0 leaves that marker alone.
    let moved = s
        .advance_markers(room, b.id, marks(100, 0))
        .await
        .expect("advance")
        .expect("member");
    assert_eq!((moved.markers, moved.moved), (marks(5, 0), true));
    assert_eq!(moved.summary_before, marks(0, 0));
    assert_eq!(moved.summary_after, marks(5, 0));

    // Never backwards.
    let same = s
        .advance_markers(room, b.id, marks(2, 0))
        .await
        .expect("advance")
        .expect("member");
    assert_eq!((same.markers, same.moved), (marks(5, 0), false));

    // Each marker on its own: read moves to 3, delivered stays at 5.
    let read = s
        .advance_markers(room, b.id, marks(3, 3))
        .await
        .expect("advance")
        .expect("member");
    assert_eq!((read.markers, read.moved), (marks(5, 3), true));
    assert_eq!(read.summary_before, marks(5, 0));
    assert_eq!(read.summary_after, marks(5, 3));
    assert_eq!(s.summary(room).await.expect("summary"), marks(5, 3));

    // Both at once, in one transaction.
    let c = user(s, "carol").await;
    let other = group(s, &[(a.id, Role::Owner), (c.id, Role::Member)]).await;
    send(s, vec![msg(other, a.id, "1"), msg(other, a.id, "2")]).await;
    let both = s
        .advance_markers(other, c.id, marks(2, 2))
        .await
        .expect("advance")
        .expect("member");
    assert_eq!((both.markers, both.moved), (marks(2, 2), true));
    assert_eq!(
        (both.summary_before, both.summary_after),
        (marks(0, 0), marks(2, 2))
    );

    let outsider = user(s, "dave").await;
    assert!(
        s.advance_markers(room, outsider.id, marks(1, 1))
            .await
            .expect("advance")
            .is_none()
    );
    assert!(
        s.advance_markers(Uuid::now_v7(), b.id, marks(1, 1))
            .await
            .expect("advance")
            .is_none()
    );
    assert_eq!(
        s.summary(Uuid::now_v7()).await.expect("summary"),
        marks(0, 0)
    );
}
