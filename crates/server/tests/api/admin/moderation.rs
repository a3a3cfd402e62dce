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
    assert_eq!((report.message_id, report.room_id, report.reporter_id), (rude.id, room.id, carol.id));
    assert!(report.message.is_none(), "the reporter gets no copy of the message");
    // One open report per reporter and message.
    let path = format!("/api/v1/messages/{}/report", rude.id);
    let again = call(&carol, Method::POST, &path, Some(json!({"reason": "again"}))).await;
    assert_error(&again, 409, "conflict");
    // Someone who cannot read the message cannot report it; nor a message that is not there.
    let got = call(&dave, Method::POST, &path, Some(json!({"reason": "curious"}))).await;
    assert_error(&got, 404, "message_not_found");
    let nothing = format!("/api/v1/messages/{}/report", Uuid::now_v7());
    let got = call(&carol, Method::POST, &nothing, Some(json!({"reason": "x"}))).await;
    assert_error(&got, 404, "message_not_found");
    // A reason is required and bounded.
    for (reason, status, code) in [("   ", 422, "validation_failed"), (&*"r".repeat(501), 413, "payload_too_large")] {
        let got = call(&bob, Method::POST, &path, Some(json!({ "reason": reason }))).await;
        assert_error(&got, status, code);
    }
    let got = call(&bob, Method::POST, &path, Some(json!({}))).await;
    assert_error(&got, 400, "bad_request");
    let own = bob.api.report_message(rude.id, "I regret it").await.expect("own report");

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
    assert_eq!(open.reports[1].message.as_ref().map(|m| m.content.as_str()), Some("something rude"));
    let page = admin
        .api
        .admin_reports(&ReportQuery { limit: Some(1), ..Default::default() })
        .await
        .expect("page");
    assert_eq!(page.reports.len(), 1);
    let rest = admin
        .api
        .admin_reports(&ReportQuery { before: page.next, ..Default::default() })
        .await
        .expect("rest");
    assert_eq!(rest.reports.iter().map(|r| r.id).collect::<Vec<_>>(), [report.id]);

    let resolved = admin.api.admin_close_report(report.id, true).await.expect("resolve");
    assert_eq!(resolved.status, ReportStatus::Resolved);
    assert_eq!(resolved.closed_by, Some(admin.id));
    assert!(resolved.closed_at.is_some());
    let dismissed = admin.api.admin_close_report(own.id, false).await.expect("dismiss");
    assert_eq!(dismissed.status, ReportStatus::Dismissed);
    let got = call(&admin, Method::POST, &format!("/api/v1/admin/reports/{}/dismiss", report.id), None).await;
    assert_error(&got, 409, "conflict");
    let got = call(&admin, Method::POST, &format!("/api/v1/admin/reports/{}/resolve", Uuid::now_v7()), None).await;
    assert_error(&got, 404, "report_not_found");
    let got = call(&admin, Method::GET, "/api/v1/admin/reports?status=pending", None).await;
    assert_eq!(got.0, 400, "{}", got.1);
    let got = call(&admin, Method::GET, "/api/v1/admin/reports?limit=0", None).await;
    assert_error(&got, 422, "validation_failed");
    assert!(admin
        .api
        .admin_reports(&ReportQuery { status: Some(ReportStatus::Open), ..Default::default() })
        .await
        .expect("open")
        .reports
        .is_empty());
    // Once closed, the same member may report the message again.
    carol.api.report_message(rude.id, "still rude").await.expect("report again");

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
    let (owner, helper, member) = (app.user("owner").await, app.user("helper").await, app.user("member").await);
    let room = owner.group("club", &[&helper, &member]).await;
    let room = owner.accepted(room, &[&helper, &member]).await;
    let path = format!("/api/v1/rooms/{}/members/{}", room.id, helper.id);
    let got = call(&owner, Method::PATCH, &path, Some(json!({"role": Role::Admin}))).await;
    assert_eq!(got.0, 200, "{}", got.1);
    let mut watching = member.connect().await;

    let by_member = member.send(room.id, "mine").await;
    let by_owner = owner.send(room.id, "the owner's").await;
    let by_helper = helper.send(room.id, "the helper's").await;
    // A plain member deletes only their own.
    for id in [by_owner.id, by_helper.id] {
        let got = call(&member, Method::DELETE, &format!("/api/v1/messages/{id}"), None).await;
        assert_error(&got, 403, "forbidden");
    }
    // The admin deletes the member's and the owner's; the owner the admin's.
    for (who, id) in [(&helper, by_member.id), (&helper, by_owner.id), (&owner, by_helper.id)] {
        let got = call(who, Method::DELETE, &format!("/api/v1/messages/{id}"), None).await;
        assert_eq!(got.0, 200, "{}", got.1);
        assert_eq!(got.1["deleted"], true);
        watching
            .wait_for(WAIT, |f| matches!(f, ServerFrame::MessageDeleted { .. }))
            .await
            .expect("message.deleted");
    }
    let got = call(&owner, Method::DELETE, &format!("/api/v1/messages/{}", by_member.id), None).await;
    assert_error(&got, 409, "conflict");

    // Not in a 1:1 room: there nobody moderates.
    let dm = owner.dm(&member).await;
    let theirs = member.send(dm.id, "private").await;
    let got = call(&owner, Method::DELETE, &format!("/api/v1/messages/{}", theirs.id), None).await;
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
    assert!(rows[0][1].as_deref().unwrap_or("").contains(&member.id.to_string()));
}
