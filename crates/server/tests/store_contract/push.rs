//! Store cases about push: settings, subscriptions, and a session that ends taking its
//! subscriptions along.

use palaver_proto::{NotificationLevel, NotificationPreview, Role};
use palaver_server::clock::now_ms;
use palaver_server::store::{
    Entity, Markers, PushSubscriptionRow, RefreshOutcome, StoreError, Subscribed,
};
use uuid::Uuid;

use super::{Fixture, group, msg, send, session, user};

pub(super) async fn a_session_that_ends_takes_its_push_subscriptions(fx: &mut Fixture) {
    let s = fx.store.as_ref();
    let a = user(s, "alice").await;
    let now = now_ms();
    let laptop = session(s, a.id, b"laptop-1", now + 60_000).await;
    let phone = session(s, a.id, b"phone-1", now + 60_000).await;
    let subscribe = |session: Uuid, endpoint: &str| PushSubscriptionRow {
        id: Uuid::now_v7(),
        user_id: a.id,
        endpoint: endpoint.into(),
        p256dh: vec![4; 65],
        auth: vec![7; 16],
        created_at_ms: now,
        session_id: Some(session),
    };
    for (session, endpoint) in [
        (laptop, "https://push.example/laptop"),
        (phone, "https://push.example/phone"),
        (phone, "https://push.example/phone-2"),
    ] {
        let sub = subscribe(session, endpoint);
        assert!(matches!(
            s.upsert_push_subscription(&sub, now).await.expect("upsert"),
            Subscribed::Created(_)
        ));
    }
    let endpoints = || async {
        let mut list: Vec<String> = s
            .push_subscriptions(a.id)
            .await
            .expect("subs")
            .into_iter()
            .map(|sub| sub.endpoint)
            .collect();
        list.sort();
        list
    };
    // Logout.
    assert_eq!(
        s.revoke_session(laptop, now).await.expect("revoke"),
        Some(a.id)
    );
    assert_eq!(
        endpoints().await,
        vec!["https://push.example/phone", "https://push.example/phone-2"]
    );
    // A reused refresh token.
    s.rotate_refresh(b"phone-1", b"phone-2", now + 60_000, now)
        .await
        .expect("rotate");
    let reused = s
        .rotate_refresh(b"phone-1", b"phone-3", now + 60_000, now)
        .await
        .expect("rotate");
    assert!(matches!(reused, RefreshOutcome::Reused { .. }));
    assert!(endpoints().await.is_empty());
}

pub(super) async fn push_settings_and_subscriptions(fx: &mut Fixture) {
    let s = fx.store.as_ref();
    let a = user(s, "alice").await;
    let b = user(s, "bob").await;
    let room = group(s, &[(a.id, Role::Owner), (b.id, Role::Member)]).await;
    let other = group(s, &[(a.id, Role::Owner)]).await;

    let now = now_ms();
    let a_session = session(s, a.id, b"a-1", now + 60_000).await;
    let sub = PushSubscriptionRow {
        id: Uuid::now_v7(),
        user_id: a.id,
        endpoint: "https://push.example/1".into(),
        p256dh: vec![4; 65],
        auth: vec![7; 16],
        created_at_ms: 10,
        session_id: Some(a_session),
    };
    let stored = match s.upsert_push_subscription(&sub, now).await.expect("upsert") {
        Subscribed::Created(stored) => stored,
        other => panic!("expected Created, got {other:?}"),
    };
    assert_eq!((stored.id, stored.session_id), (sub.id, Some(a_session)));
    // The same endpoint from b, whose session is live as a's is: a's it stays.
    let b_session = session(s, b.id, b"b-1", now + 60_000).await;
    let bs = PushSubscriptionRow {
        id: Uuid::now_v7(),
        user_id: b.id,
        p256dh: vec![5; 65],
        created_at_ms: 20,
        session_id: Some(b_session),
        ..sub.clone()
    };
    assert!(matches!(
        s.upsert_push_subscription(&bs, now).await.expect("upsert"),
        Subscribed::Taken
    ));
    assert!(s.push_subscriptions(b.id).await.expect("subs").is_empty());
    assert_eq!(
        s.push_subscriptions(a.id).await.expect("subs")[0].p256dh,
        vec![4; 65]
    );
    // From another session of a's: the row keeps its id and creation time, takes the new
    // keys, and moves to that session.
    let a_other = session(s, a.id, b"a-2", now + 60_000).await;
    let again = PushSubscriptionRow {
        id: Uuid::now_v7(),
        p256dh: vec![6; 65],
        created_at_ms: 30,
        session_id: Some(a_other),
        ..sub.clone()
    };
    let stored = match s
        .upsert_push_subscription(&again, now)
        .await
        .expect("upsert")
    {
        Subscribed::Updated(stored) => stored,
        other => panic!("expected Updated, got {other:?}"),
    };
    assert_eq!(
        (stored.id, stored.created_at_ms, stored.session_id),
        (sub.id, 10, Some(a_other))
    );
    assert_eq!(stored.p256dh, vec![6; 65]);
    // Once a_other can no longer be refreshed (its token expired), b may have it.
    let later = now + 60_001;
    let b_later = session(s, b.id, b"b-2", later + 60_000).await;
    let taken_over = PushSubscriptionRow {
        session_id: Some(b_later),
        ..bs.clone()
    };
    let stored = match s
        .upsert_push_subscription(&taken_over, later)
        .await
        .expect("upsert")
    {
        Subscribed::Updated(stored) => stored,
        other => panic!("expected Updated, got {other:?}"),
    };
    assert_eq!(
        (stored.id, stored.user_id, stored.session_id),
        (sub.id, b.id, Some(b_later))
    );
    assert!(s.push_subscriptions(a.id).await.expect("subs").is_empty());
    assert!(
        !s.delete_push_subscription(sub.id, Some(a.id))
            .await
            .expect("delete")
    );
    assert!(
        s.delete_push_subscription(sub.id, Some(b.id))
            .await
            .expect("delete")
    );
    let third = PushSubscriptionRow {
        id: Uuid::now_v7(),
        endpoint: "https://push.example/2".into(),
        ..sub.clone()
    };
    assert!(matches!(
        s.upsert_push_subscription(&third, now)
            .await
            .expect("upsert"),
        Subscribed::Created(_)
    ));
    assert!(
        s.delete_push_subscription(third.id, None)
            .await
            .expect("delete")
    );
    assert!(
        !s.delete_push_subscription(third.id, None)
            .await
            .expect("delete")
    );
    // Without a session, or from one that has ended, nothing is stored.
    let sessionless = PushSubscriptionRow {
        session_id: None,
        ..third.clone()
    };
    assert!(matches!(
        s.upsert_push_subscription(&sessionless, now).await,
        Err(StoreError::Invalid(_))
    ));
    s.revoke_session(a_other, now).await.expect("revoke");
    assert!(matches!(
        s.upsert_push_subscription(&again, now)
            .await
            .expect("upsert"),
        Subscribed::SessionEnded
    ));
    // Nor from a session of someone else's.
    let as_b = PushSubscriptionRow {
        session_id: Some(b_session),
        ..third.clone()
    };
    assert!(matches!(
        s.upsert_push_subscription(&as_b, now)
            .await
            .expect("upsert"),
        Subscribed::SessionEnded
    ));
    assert!(s.push_subscriptions(a.id).await.expect("subs").is_empty());

    assert_eq!(
        s.push_settings(a.id).await.expect("settings"),
        (NotificationPreview::Sender, vec![])
    );
    assert!(
        s.set_notification_level(room, a.id, NotificationLevel::Nothing)
            .await
            .expect("mute")
    );
    assert!(
        s.set_notification_level(other, a.id, NotificationLevel::Nothing)
            .await
            .expect("mute")
    );
    assert!(
        !s.set_notification_level(Uuid::now_v7(), a.id, NotificationLevel::Nothing)
            .await
            .expect("mute")
    );
    s.set_notification_preview(a.id, NotificationPreview::None)
        .await
        .expect("preview");
    let (preview, mut muted) = s.push_settings(a.id).await.expect("settings");
    muted.sort();
    let mut expected = vec![room, other];
    expected.sort();
    assert_eq!((preview, muted), (NotificationPreview::None, expected));
    assert!(
        s.set_notification_level(other, a.id, NotificationLevel::All)
            .await
            .expect("unmute")
    );
    assert_eq!(s.push_settings(a.id).await.expect("settings").1, vec![room]);
    assert!(matches!(
        s.push_settings(Uuid::now_v7()).await,
        Err(StoreError::NotFound(Entity::User))
    ));
    assert!(matches!(
        s.set_notification_preview(Uuid::now_v7(), NotificationPreview::Full)
            .await,
        Err(StoreError::NotFound(Entity::User))
    ));

    send(s, vec![msg(room, b.id, "1"), msg(room, b.id, "2")]).await;
    s.advance_markers(
        room,
        a.id,
        Markers {
            delivered_seq: 1,
            read_seq: 0,
        },
    )
    .await
    .expect("advance");
    let target = s
        .push_target(room, a.id)
        .await
        .expect("target")
        .expect("member");
    assert_eq!(target.delivered_seq, 1);
    assert_eq!(target.level, NotificationLevel::Nothing);
    assert_eq!(target.preview, NotificationPreview::None);
    let target = s
        .push_target(room, b.id)
        .await
        .expect("target")
        .expect("member");
    assert_eq!(
        (target.delivered_seq, target.level),
        (2, NotificationLevel::All)
    );
    assert_eq!(target.preview, NotificationPreview::Sender);
    assert!(s.push_target(other, b.id).await.expect("target").is_none());
}
