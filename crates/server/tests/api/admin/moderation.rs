//! Moderation: reports of messages (made by members, read and closed by administrators),
//! and a group's owners and admins deleting anyone's message.

use palaver_proto::{ReportQuery, ReportStatus, Role};
use reqwest::Method;
use serde_json::json;
use uuid::Uuid;

use super::*;

#[tokio::test]
async fn members_report_messages_and_administrators_close_the_reports() {
    let (app, admin, bob) = with_admin().await;
    let carol = app.user("carol").await;
    let dave = app.user("dave").await;
    let room = bob.group("club", &[&carol]).await;
    let room = bob.accepted(room, &[&carol]).await;
    let rude = bob.send(room.id, "something rude").await;

    let report = carol
        .api
        .report_message(rude.id, "  rude to everyone  ")
        .await
        .expect("report");
    assert_eq!(report.status, ReportStatus::Open);
    assert_eq!(report.reason, "rude to everyone");
    assert_eq!(
        (report.message_id, report.room_id, report.reporter_id),
        (rude.id, room.id, carol.id)
    );
    assert!(
        report.message.is_none(),
        "the reporter gets no copy of the message"
    );
    // One open report per reporter and message.
    let path = format!("/api/v1/messages/{}/report", rude.id);
    let again = call(
        &carol,
        Method::POST,
        &path,
        Some(json!({"reason": "again"})),
    )
    .await;
    assert_error(&again, 409, "conflict");
    // Someone who cannot read the message cannot report it; nor a message that is not there.
    let got = call(
        &dave,
        Method::POST,
        &path,
        Some(json!({"reason": "curious"})),
    )
    .await;
    assert_error(&got, 404, "message_not_found");
    let nothing = format!("/api/v1/messages/{}/report", Uuid::now_v7());
    let got = call(&carol, Method::POST, &nothing, Some(json!({"reason": "x"}))).await;
    assert_error(&got, 404, "message_not_found");
    // A reason is required and bounded.
    for (reason, status, code) in [
        ("   ", 422, "validation_failed"),
        (&*"r".repeat(501), 422, "validation_failed"),
    ] {
        let got = call(&bob, Method::POST, &path, Some(json!({ "reason": reason }))).await;
        assert_error(&got, status, code);
    }
    let got = call(&bob, Method::POST, &path, Some(json!({}))).await;
    assert_error(&got, 400, "bad_request");
    let own = bob
        .api
        .report_message(rude.id, "I regret it")
        .await
        .expect("own report");

    // Administrators see them, newest first, with the message; others may not.
    let got = call(&bob, Method::GET, "/api/v1/admin/reports", None).await;
    assert_error(&got, 403, "forbidden");
    let open = admin
        .api
        .admin_reports(&ReportQuery {
            status: Some(ReportStatus::Open),
            ..Default::default()
        })
        .await
        .expect("reports");
    let ids: Vec<_> = open.reports.iter().map(|r| r.id).collect();
    assert_eq!(ids, [own.id, report.id]);
    assert_eq!(
        open.reports[1].message.as_ref().map(|m| m.content.as_str()),
        Some("something rude")
    );
    let page = admin
        .api
        .admin_reports(&ReportQuery {
            limit: Some(1),
            ..Default::default()
        })
        .await
        .expect("page");
    assert_eq!(page.reports.len(), 1);
    let rest = admin
        .api
        .admin_reports(&ReportQuery {
            before: page.next,
            ..Default::default()
        })
        .await
        .expect("rest");
    assert_eq!(
        rest.reports.iter().map(|r| r.id).collect::<Vec<_>>(),
        [report.id]
    );

    let resolved = admin
        .api
        .admin_close_report(report.id, true)
        .await
        .expect("resolve");
    assert_eq!(resolved.status, ReportStatus::Resolved);
    assert_eq!(resolved.closed_by, Some(admin.id));
    assert!(resolved.closed_at.is_some());
    let dismissed = admin
        .api
        .admin_close_report(own.id, false)
        .await
        .expect("dismiss");
    assert_eq!(dismissed.status, ReportStatus::Dismissed);
    let got = call(
        &admin,
        Method::POST,
        &format!("/api/v1/admin/reports/{}/dismiss", report.id),
        None,
    )
    .await;
    assert_error(&got, 409, "conflict");
    let got = call(
        &admin,
        Method::POST,
        &format!("/api/v1/admin/reports/{}/resolve", Uuid::now_v7()),
        None,
    )
    .await;
    assert_error(&got, 404, "report_not_found");
    let got = call(
        &admin,
        Method::GET,
        "/api/v1/admin/reports?status=pending",
        None,
    )
    .await;
    assert_eq!(got.0, 400, "{}", got.1);
    let got = call(&admin, Method::GET, "/api/v1/admin/reports?limit=0", None).await;
    assert_error(&got, 422, "validation_failed");
    assert!(
        admin
            .api
            .admin_reports(&ReportQuery {
                status: Some(ReportStatus::Open),
                ..Default::default()
            })
            .await
            .expect("open")
            .reports
            .is_empty()
    );
    // Once closed, the same member may report the message again.
    carol
        .api
        .report_message(rude.id, "still rude")
        .await
        .expect("report again");

    let log = admin
        .api
        .admin_audit(&palaver_proto::AuditQuery {
            target: Some(report.id.to_string()),
            ..Default::default()
        })
        .await
        .expect("audit");
    assert_eq!(log.entries.len(), 1);
    assert_eq!(log.entries[0].action, "admin.report_resolve");
}

#[tokio::test]
async fn a_groups_owner_and_admins_delete_anyones_message_there() {
    let app = spawn_app().await;
    let (owner, helper, member) = (
        app.user("owner").await,
        app.user("helper").await,
        app.user("member").await,
    );
    let room = owner.group("club", &[&helper, &member]).await;
    let room = owner.accepted(room, &[&helper, &member]).await;
    let path = format!("/api/v1/rooms/{}/members/{}", room.id, helper.id);
    let got = call(
        &owner,
        Method::PATCH,
        &path,
        Some(json!({"role": Role::Admin})),
    )
    .await;
    assert_eq!(got.0, 200, "{}", got.1);
    let mut watching = member.connect().await;

    let by_member = member.send(room.id, "mine").await;
    let by_owner = owner.send(room.id, "the owner's").await;
    let by_helper = helper.send(room.id, "the helper's").await;
    // A plain member deletes only their own.
    for id in [by_owner.id, by_helper.id] {
        let got = call(
            &member,
            Method::DELETE,
            &format!("/api/v1/messages/{id}"),
            None,
        )
        .await;
        assert_error(&got, 403, "forbidden");
    }
    // The admin deletes the member's and the owner's; the owner the admin's.
    for (who, id) in [
        (&helper, by_member.id),
        (&helper, by_owner.id),
        (&owner, by_helper.id),
    ] {
        let got = call(who, Method::DELETE, &format!("/api/v1/messages/{id}"), None).await;
        assert_eq!(got.0, 200, "{}", got.1);
        assert_eq!(got.1["deleted"], true);
        watching
            .wait_for(WAIT, |f| matches!(f, ServerFrame::MessageDeleted { .. }))
            .await
            .expect("message.deleted");
    }
    let got = call(
        &owner,
        Method::DELETE,
        &format!("/api/v1/messages/{}", by_member.id),
        None,
    )
    .await;
    assert_error(&got, 409, "conflict");

    // Not in a 1:1 room: there nobody moderates.
    let dm = owner.dm(&member).await;
    let theirs = member.send(dm.id, "private").await;
    let got = call(
        &owner,
        Method::DELETE,
        &format!("/api/v1/messages/{}", theirs.id),
        None,
    )
    .await;
    assert_error(&got, 403, "forbidden");

    // Audited as moderation, naming the sender.
    let rows = app
        .db_rows(&format!(
            "SELECT action, detail FROM audit_log WHERE target = '{}'",
            by_member.id
        ))
        .await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0][0].as_deref(), Some("room.message_delete"));
    assert!(
        rows[0][1]
            .as_deref()
            .unwrap_or("")
            .contains(&member.id.to_string())
    );
}

#[tokio::test]
async fn a_muted_member_cannot_send_until_unmuted_and_a_banned_one_cannot_be_added_back() {
    let app = spawn_app().await;
    let (owner, member, other) = (
        app.user("owner").await,
        app.user("member").await,
        app.user("other").await,
    );
    let room = owner.group("club", &[&member, &other]).await;
    let room = owner.accepted(room, &[&member, &other]).await;
    let mute = format!("/api/v1/rooms/{}/members/{}/mute", room.id, member.id);

    // Bounds and who may.
    for secs in [0, 2_592_001] {
        let got = call(
            &owner,
            Method::PUT,
            &mute,
            Some(json!({ "durationSecs": secs })),
        )
        .await;
        assert_error(&got, 422, "validation_failed");
    }
    let got = call(
        &other,
        Method::PUT,
        &mute,
        Some(json!({"durationSecs": 60})),
    )
    .await;
    assert_error(&got, 403, "forbidden");
    let nobody = format!("/api/v1/rooms/{}/members/{}/mute", room.id, Uuid::now_v7());
    let got = call(
        &owner,
        Method::PUT,
        &nobody,
        Some(json!({"durationSecs": 60})),
    )
    .await;
    assert_error(&got, 404, "user_not_found");

    let got = call(
        &owner,
        Method::PUT,
        &mute,
        Some(json!({"durationSecs": 3600})),
    )
    .await;
    assert_eq!(got.0, 204, "{}", got.1);
    let body =
        json!({"roomId": room.id, "clientMsgId": "m1", "content": "can I speak?", "type": "text"});
    let got = call(
        &member,
        Method::POST,
        "/api/v1/messages/send",
        Some(body.clone()),
    )
    .await;
    assert_error(&got, 403, "muted");
    let wait = got.1["error"]["retryAfterMs"]
        .as_u64()
        .expect("retryAfterMs");
    assert!(wait > 3_500_000 && wait <= 3_600_000, "{wait}");
    // Over the socket too; they still read.
    let mut socket = member.connect().await;
    let err = socket
        .send_message(room.id, "m2", "over the socket")
        .await
        .expect_err("muted on the socket");
    assert_eq!(err.code(), Some(palaver_proto::ErrorCode::Muted), "{err}");
    owner.send(room.id, "you can read this").await;
    next_message(&mut socket).await;

    let got = call(&owner, Method::DELETE, &mute, None).await;
    assert_eq!(got.0, 204, "{}", got.1);
    let got = call(&member, Method::POST, "/api/v1/messages/send", Some(body)).await;
    assert_eq!(got.0, 201, "{}", got.1);

    // A ban removes at once and keeps them out.
    let ban = format!("/api/v1/rooms/{}/bans/{}", room.id, member.id);
    let got = call(&other, Method::PUT, &ban, None).await;
    assert_error(&got, 403, "forbidden");
    let got = call(&owner, Method::PUT, &ban, None).await;
    assert_eq!(got.0, 204, "{}", got.1);
    socket
        .wait_for(
            WAIT,
            |f| matches!(f, ServerFrame::RoomLeft { room_id, .. } if *room_id == room.id),
        )
        .await
        .expect("room.left");
    let got = call(
        &member,
        Method::GET,
        &format!("/api/v1/rooms/{}", room.id),
        None,
    )
    .await;
    assert_error(&got, 404, "room_not_found");
    let add = format!("/api/v1/rooms/{}/members", room.id);
    let got = call(
        &owner,
        Method::POST,
        &add,
        Some(json!({"userIds": [member.id]})),
    )
    .await;
    assert_error(&got, 403, "banned");
    let bans = call(
        &owner,
        Method::GET,
        &format!("/api/v1/rooms/{}/bans", room.id),
        None,
    )
    .await;
    assert_eq!(bans.0, 200, "{}", bans.1);
    assert_eq!(bans.1["bans"][0]["userId"], member.id.to_string());
    assert_eq!(bans.1["bans"][0]["bannedBy"], owner.id.to_string());
    let got = call(
        &other,
        Method::GET,
        &format!("/api/v1/rooms/{}/bans", room.id),
        None,
    )
    .await;
    assert_error(&got, 403, "forbidden");

    let got = call(&owner, Method::DELETE, &ban, None).await;
    assert_eq!(got.0, 204, "{}", got.1);
    let got = call(
        &owner,
        Method::POST,
        &add,
        Some(json!({"userIds": [member.id]})),
    )
    .await;
    assert_eq!(got.0, 200, "{}", got.1);

    // Nothing of this in a 1:1 room.
    let dm = owner.dm(&other).await;
    let got = call(
        &owner,
        Method::PUT,
        &format!("/api/v1/rooms/{}/bans/{}", dm.id, other.id),
        None,
    )
    .await;
    assert_error(&got, 403, "not_a_group");

    let actions: Vec<String> = app
        .db_rows(&format!(
            "SELECT action FROM audit_log WHERE target = '{}' AND action LIKE 'room.member_%' ORDER BY id",
            room.id
        ))
        .await
        .into_iter()
        .filter_map(|r| r[0].clone())
        .collect();
    assert_eq!(
        actions,
        [
            "room.member_mute",
            "room.member_unmute",
            "room.member_remove",
            "room.member_ban",
            "room.member_unban",
            "room.member_add"
        ]
    );
}
