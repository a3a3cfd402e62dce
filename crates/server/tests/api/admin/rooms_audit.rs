//! Rooms whoever is in them, and the audit log with its filters.

use palaver_proto::{AdminRoomQuery, AuditQuery, LeftReason};
use reqwest::Method;
use time::OffsetDateTime;

use super::*;

#[tokio::test]
async fn rooms_are_listed_and_a_deleted_room_is_gone_for_its_members() {
    let (app, admin, bob) = with_admin().await;
    let carol = app.user("carol").await;
    let group = bob.group("plans", &[&carol]).await;
    let group = bob.accepted(group, &[&carol]).await;
    let dm = bob.dm(&carol).await;
    bob.send(group.id, "before the deletion").await;

    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = admin
            .api
            .admin_rooms(&AdminRoomQuery {
                after,
                limit: Some(1),
            })
            .await
            .expect("rooms");
        seen.extend(
            page.rooms
                .iter()
                .map(|r| (r.id, r.member_count, r.is_group)),
        );
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, [(group.id, 2, true), (dm.id, 2, false)]);

    let mut socket = carol.connect().await;
    admin.api.admin_delete_room(group.id).await.expect("delete");
    let left = socket
        .wait_for(
            WAIT,
            |f| matches!(f, ServerFrame::RoomLeft { room_id, .. } if *room_id == group.id),
        )
        .await
        .expect("room.left");
    match left {
        ServerFrame::RoomLeft { reason, by, .. } => {
            assert_eq!(reason, Some(LeftReason::Removed));
            assert_eq!(by, Some(admin.id));
        }
        other => panic!("{other:?}"),
    }
    for member in [&bob, &carol] {
        let got = call(
            member,
            Method::GET,
            &format!("/api/v1/rooms/{}", group.id),
            None,
        )
        .await;
        assert_error(&got, 404, "room_not_found");
        let rooms = member.api.rooms().await.expect("rooms");
        assert!(rooms.iter().all(|r| r.id != group.id));
    }
    let body = serde_json::json!({"roomId": group.id, "clientMsgId": "x", "content": "still here?", "type": "text"});
    let got = call(&bob, Method::POST, "/api/v1/messages/send", Some(body)).await;
    assert_error(&got, 404, "room_not_found");
    let page = admin
        .api
        .admin_rooms(&AdminRoomQuery::default())
        .await
        .expect("rooms");
    let deleted = page
        .rooms
        .iter()
        .find(|r| r.id == group.id)
        .expect("listed");
    assert!(deleted.deleted_at.is_some());
    assert_eq!(deleted.member_count, 0);

    // A deleted 1:1 room frees the pair for a new one.
    admin.api.admin_delete_room(dm.id).await.expect("delete dm");
    let again = bob.dm(&carol).await;
    assert_ne!(again.id, dm.id);

    let got = call(
        &admin,
        Method::DELETE,
        &format!("/api/v1/admin/rooms/{}", uuid::Uuid::now_v7()),
        None,
    )
    .await;
    assert_error(&got, 404, "room_not_found");
}

#[tokio::test]
async fn the_audit_log_is_filtered_and_paged() {
    let (app, admin, bob) = with_admin().await;
    let start = OffsetDateTime::now_utc() - time::Duration::seconds(1);
    let carol = app.user("carol").await;
    admin
        .api
        .admin_set_disabled(bob.id, true)
        .await
        .expect("disable");
    admin
        .api
        .admin_set_disabled(carol.id, true)
        .await
        .expect("disable");
    admin
        .api
        .admin_set_disabled(carol.id, false)
        .await
        .expect("enable");

    let by_action = admin
        .api
        .admin_audit(&AuditQuery {
            action: Some("admin.user_disable".into()),
            ..Default::default()
        })
        .await
        .expect("audit");
    let targets: Vec<_> = by_action.entries.iter().map(|e| e.target.clone()).collect();
    assert_eq!(
        targets,
        [Some(carol.id.to_string()), Some(bob.id.to_string())]
    );

    let by_actor = admin
        .api
        .admin_audit(&AuditQuery {
            actor: Some(admin.id),
            since: Some(start),
            ..Default::default()
        })
        .await
        .expect("audit");
    let actions: Vec<_> = by_actor.entries.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "admin.user_enable",
            "admin.user_disable",
            "admin.user_disable",
            "user.register"
        ],
        "{:?}",
        by_actor.entries
    );
    assert!(by_actor.entries.iter().all(|e| e.actor == Some(admin.id)));

    // Paging walks every entry once, newest first.
    let everything = admin
        .api
        .admin_audit(&AuditQuery::default())
        .await
        .expect("all");
    let mut paged = Vec::new();
    let mut before = None;
    loop {
        let page = admin
            .api
            .admin_audit(&AuditQuery {
                before,
                limit: Some(2),
                ..Default::default()
            })
            .await
            .expect("page");
        paged.extend(page.entries.iter().map(|e| e.id));
        match page.next {
            Some(next) => before = Some(next),
            None => break,
        }
    }
    let all: Vec<i64> = everything.entries.iter().map(|e| e.id).collect();
    assert_eq!(paged, all);
    assert!(all.windows(2).all(|w| w[0] > w[1]));

    // A window in the future holds nothing; one ending before the start holds only
    // what came before it.
    let future = OffsetDateTime::now_utc() + time::Duration::hours(1);
    let none = admin
        .api
        .admin_audit(&AuditQuery {
            since: Some(future),
            ..Default::default()
        })
        .await
        .expect("future");
    assert!(none.entries.is_empty());
    let early = admin
        .api
        .admin_audit(&AuditQuery {
            until: Some(start),
            ..Default::default()
        })
        .await
        .expect("until");
    assert!(early.entries.iter().all(|e| e.at < start));
    assert!(
        early
            .entries
            .iter()
            .all(|e| !e.action.starts_with("admin."))
    );
}
