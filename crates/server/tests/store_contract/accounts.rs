//! Store cases about accounts: users and search, sessions and refresh-token rotation,
//! the audit log with its filters, administrators and disabled accounts, and moderation
//! (reports, mutes, bans).

use palaver_proto::User;
use palaver_server::clock::now_ms;
use palaver_server::store::{
    AccountFilter, AuditEntry, AuditFilter, AuditRecord, BanRow, Constraint, Entity, MuteRow,
    RefreshOutcome, ReportRow, StoreError,
};
use uuid::Uuid;

use super::{Fixture, user};

pub(super) async fn users_and_search(fx: &mut Fixture) {
    let s = fx.store.as_ref();
    let alice = user(s, "alice").await;
    let bob = user(s, "bob").await;
    let odd = user(s, "per%cent").await;
    s.set_display_name(bob.id, "Albert").await.expect("rename");

    let again = User {
        id: Uuid::now_v7(),
        ..alice.clone()
    };
    assert!(matches!(
        s.create_user(&again, "h").await,
        Err(StoreError::Conflict(Constraint::Username))
    ));

    assert_eq!(s.user(alice.id).await.expect("user"), Some(alice.clone()));
    assert_eq!(s.user(Uuid::now_v7()).await.expect("user"), None);
    let many = s
        .users(&[bob.id, Uuid::now_v7(), alice.id])
        .await
        .expect("users");
    assert_eq!(
        many.iter().map(|u| u.id).collect::<Vec<_>>(),
        vec![bob.id, alice.id]
    );

    let creds = s.credentials("alice").await.expect("creds").expect("some");
    assert_eq!(creds.user, alice);
    assert_eq!(creds.password_hash, "hash");
    assert!(s.credentials("nobody").await.expect("creds").is_none());

    // Username or display name, case-insensitively; ordered by username.
    let found = s.search_users("AL", 10).await.expect("search");
    assert_eq!(
        found
            .iter()
            .map(|u| u.username.as_str())
            .collect::<Vec<_>>(),
        vec!["alice", "bob"]
    );
    assert_eq!(s.search_users("al", 1).await.expect("search").len(), 1);
    // Wildcards in the query match only themselves.
    let found = s.search_users("per%", 10).await.expect("search");
    assert_eq!(found.iter().map(|u| u.id).collect::<Vec<_>>(), vec![odd.id]);
    assert!(s.search_users("p_r", 10).await.expect("search").is_empty());

    assert!(matches!(
        s.set_display_name(Uuid::now_v7(), "x").await,
        Err(StoreError::NotFound(Entity::User))
    ));
    assert_eq!(s.last_seen(alice.id).await.expect("last seen"), None);
    s.set_last_seen(alice.id, 1234)
        .await
        .expect("set last seen");
    assert_eq!(s.last_seen(alice.id).await.expect("last seen"), Some(1234));
    assert_eq!(s.last_seen(Uuid::now_v7()).await.expect("last seen"), None);
    s.ping().await.expect("ping");
}

pub(super) async fn sessions_and_refresh(fx: &mut Fixture) {
    let s = fx.store.as_ref();
    let alice = user(s, "alice").await;
    let now = now_ms();
    let session = Uuid::now_v7();
    s.create_session(session, alice.id, b"token-1", now + 60_000, now)
        .await
        .expect("session");
    assert_eq!(
        s.session_of_refresh(b"token-1").await.expect("lookup"),
        Some((session, alice.id))
    );
    assert_eq!(s.session_of_refresh(b"nope").await.expect("lookup"), None);

    let rotated = s
        .rotate_refresh(b"token-1", b"token-2", now + 60_000, now + 1)
        .await
        .expect("rotate");
    assert!(
        matches!(rotated, RefreshOutcome::Rotated { session_id, user_id } if session_id == session && user_id == alice.id)
    );
    // The old token again: stolen. The session ends, and its newer token dies with it.
    let reused = s
        .rotate_refresh(b"token-1", b"token-3", now + 60_000, now + 2)
        .await
        .expect("rotate");
    assert!(matches!(reused, RefreshOutcome::Reused { session_id, .. } if session_id == session));
    assert_eq!(
        s.revoked_sessions_since(now).await.expect("revoked"),
        vec![session]
    );
    assert!(matches!(
        s.rotate_refresh(b"token-2", b"token-4", now + 60_000, now + 3)
            .await
            .expect("rotate"),
        RefreshOutcome::Invalid
    ));
    assert!(matches!(
        s.rotate_refresh(b"unknown", b"token-5", now + 60_000, now + 3)
            .await
            .expect("rotate"),
        RefreshOutcome::Invalid
    ));

    // Expiry, and revocation by logout.
    let second = Uuid::now_v7();
    s.create_session(second, alice.id, b"short", now + 10, now)
        .await
        .expect("session");
    assert!(matches!(
        s.rotate_refresh(b"short", b"x", now + 60_000, now + 10)
            .await
            .expect("rotate"),
        RefreshOutcome::Invalid
    ));
    assert_eq!(
        s.revoke_session(second, now + 20).await.expect("revoke"),
        Some(alice.id)
    );
    assert_eq!(
        s.revoke_session(second, now + 21).await.expect("revoke"),
        None
    );
    assert_eq!(
        s.revoked_sessions_since(now + 15).await.expect("revoked"),
        vec![second]
    );
}

pub(super) async fn audit_log(fx: &mut Fixture) {
    let s = fx.store.as_ref();
    let actor = Uuid::now_v7();
    s.audit(
        AuditEntry {
            actor: Some(actor),
            action: "login",
            target: Some("alice".into()),
            detail: None,
        },
        100,
    )
    .await
    .expect("audit");
    s.audit(
        AuditEntry {
            actor: None,
            action: "login_failed",
            target: None,
            detail: Some("bad password".into()),
        },
        200,
    )
    .await
    .expect("audit");
    s.audit(
        AuditEntry {
            actor: Some(actor),
            action: "admin.user_disable",
            target: Some("bob".into()),
            detail: None,
        },
        300,
    )
    .await
    .expect("audit");
    let all = |limit| AuditFilter {
        limit,
        ..AuditFilter::default()
    };
    let tail = s.audit_log(&all(10)).await.expect("tail");
    let ids: Vec<i64> = tail.iter().map(|r| r.id).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");
    assert_eq!(
        tail.iter().map(|r| r.at_ms).collect::<Vec<_>>(),
        vec![300, 200, 100]
    );
    assert_eq!(
        tail[1],
        AuditRecord {
            id: ids[1],
            at_ms: 200,
            actor: None,
            action: "login_failed".into(),
            target: None,
            detail: Some("bad password".into()),
        }
    );
    assert_eq!(s.audit_log(&all(1)).await.expect("tail").len(), 1);
    assert!(s.audit_log(&all(0)).await.expect("none").is_empty());
    // Each filter alone, then together; paging by id.
    let got = |f: AuditFilter| async move {
        s.audit_log(&f)
            .await
            .expect("filtered")
            .iter()
            .map(|r| r.at_ms)
            .collect::<Vec<_>>()
    };
    let f = || all(10);
    assert_eq!(
        got(AuditFilter {
            actor: Some(actor),
            ..f()
        })
        .await,
        vec![300, 100]
    );
    assert_eq!(
        got(AuditFilter {
            action: Some("login".into()),
            ..f()
        })
        .await,
        vec![100]
    );
    assert_eq!(
        got(AuditFilter {
            target: Some("bob".into()),
            ..f()
        })
        .await,
        vec![300]
    );
    assert_eq!(
        got(AuditFilter {
            since_ms: Some(200),
            ..f()
        })
        .await,
        vec![300, 200]
    );
    assert_eq!(
        got(AuditFilter {
            until_ms: Some(200),
            ..f()
        })
        .await,
        vec![100]
    );
    assert_eq!(
        got(AuditFilter {
            before_id: Some(ids[0]),
            ..f()
        })
        .await,
        vec![200, 100]
    );
    let both = AuditFilter {
        actor: Some(actor),
        since_ms: Some(150),
        until_ms: Some(400),
        action: Some("admin.user_disable".into()),
        ..f()
    };
    assert_eq!(got(both).await, vec![300]);
    assert!(
        got(AuditFilter {
            actor: Some(Uuid::now_v7()),
            ..f()
        })
        .await
        .is_empty()
    );
}

pub(super) async fn administrators_and_disabled_accounts(fx: &mut Fixture) {
    let s = fx.store.as_ref();
    let first = user(s, "first").await;
    let bob = user(s, "bob").await;
    let carol = user(s, "carol").await;
    // The first account administers the server; the others do not.
    let account = |id| async move { s.account(id).await.expect("account").expect("some") };
    assert!(account(first.id).await.is_admin);
    assert!(!account(bob.id).await.is_admin);
    assert_eq!(account(bob.id).await.user, bob);
    assert_eq!(
        s.account_named("carol")
            .await
            .expect("named")
            .map(|a| a.user.id),
        Some(carol.id)
    );
    assert!(s.account(Uuid::now_v7()).await.expect("none").is_none());

    // The last enabled administrator is neither demoted nor disabled.
    assert!(matches!(
        s.set_admin(first.id, false).await,
        Err(StoreError::Conflict(Constraint::LastAdmin))
    ));
    assert!(matches!(
        s.set_disabled(first.id, Some(now_ms())).await,
        Err(StoreError::Conflict(Constraint::LastAdmin))
    ));
    s.set_admin(bob.id, true).await.expect("promote");
    s.set_admin(first.id, false)
        .await
        .expect("demote, bob remains");
    assert!(matches!(
        s.set_admin(Uuid::now_v7(), true).await,
        Err(StoreError::NotFound(Entity::User))
    ));

    // Disabling ends the live sessions, returns them, and refuses new ones.
    let now = now_ms();
    for (i, token) in [b"carol-1".as_slice(), b"carol-2"].iter().enumerate() {
        let id = Uuid::now_v7();
        assert!(
            s.create_session(id, carol.id, token, now + 60_000, now)
                .await
                .expect("session"),
            "{i}"
        );
    }
    let ended = s.set_disabled(carol.id, Some(now)).await.expect("disable");
    assert_eq!(ended.len(), 2);
    assert!(
        !s.create_session(Uuid::now_v7(), carol.id, b"carol-3", now + 60_000, now)
            .await
            .expect("refused")
    );
    assert!(matches!(
        s.rotate_refresh(b"carol-1", b"carol-4", now + 60_000, now)
            .await
            .expect("rotate"),
        RefreshOutcome::Invalid
    ));
    assert_eq!(account(carol.id).await.disabled_at_ms, Some(now));
    // Disabling again keeps the first instant and ends nothing more.
    assert!(
        s.set_disabled(carol.id, Some(now + 5))
            .await
            .expect("again")
            .is_empty()
    );
    assert_eq!(account(carol.id).await.disabled_at_ms, Some(now));
    let disabled = s
        .accounts(&AccountFilter {
            disabled: Some(true),
            limit: 10,
            ..Default::default()
        })
        .await
        .expect("disabled");
    assert_eq!(
        disabled.iter().map(|a| a.user.id).collect::<Vec<_>>(),
        vec![carol.id]
    );
    assert!(
        s.set_disabled(carol.id, None)
            .await
            .expect("enable")
            .is_empty()
    );
    assert!(
        s.create_session(Uuid::now_v7(), carol.id, b"carol-5", now + 60_000, now)
            .await
            .expect("session")
    );
    assert!(matches!(
        s.set_disabled(Uuid::now_v7(), None).await,
        Err(StoreError::NotFound(Entity::User))
    ));

    // Ending every session of an account, and passwords.
    let ended = s.end_user_sessions(carol.id, now + 1).await.expect("end");
    assert_eq!(ended.len(), 1);
    assert!(
        s.end_user_sessions(carol.id, now + 2)
            .await
            .expect("none")
            .is_empty()
    );
    s.set_password_hash(carol.id, "new-hash")
        .await
        .expect("password");
    assert_eq!(
        s.credentials("carol")
            .await
            .expect("creds")
            .expect("some")
            .password_hash,
        "new-hash"
    );

    // Listing: username order, prefix (wildcards are literal), pages.
    let names = |f: AccountFilter| async move {
        s.accounts(&f)
            .await
            .expect("accounts")
            .into_iter()
            .map(|a| a.user.username)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(AccountFilter {
            limit: 10,
            ..Default::default()
        })
        .await,
        ["bob", "carol", "first"]
    );
    assert_eq!(
        names(AccountFilter {
            limit: 1,
            after: Some("bob".into()),
            ..Default::default()
        })
        .await,
        ["carol"]
    );
    assert_eq!(
        names(AccountFilter {
            limit: 10,
            prefix: Some("c".into()),
            ..Default::default()
        })
        .await,
        ["carol"]
    );
    assert!(
        names(AccountFilter {
            limit: 10,
            prefix: Some("%".into()),
            ..Default::default()
        })
        .await
        .is_empty()
    );

    // Rooms for administrators, and closing one.
    let room = super::group(
        s,
        &[
            (bob.id, palaver_proto::Role::Owner),
            (carol.id, palaver_proto::Role::Member),
        ],
    )
    .await;
    let rooms = s.admin_rooms(None, 10).await.expect("rooms");
    assert_eq!(rooms.len(), 1);
    assert_eq!(
        (rooms[0].id, rooms[0].member_count, rooms[0].deleted_at_ms),
        (room, 2, None)
    );
    assert!(
        s.admin_rooms(Some(room), 10)
            .await
            .expect("after")
            .is_empty()
    );
    s.close_room(room, now).await.expect("close");
    assert_eq!(
        s.admin_room(room)
            .await
            .expect("room")
            .expect("some")
            .deleted_at_ms,
        Some(now)
    );
    assert!(matches!(
        s.close_room(Uuid::now_v7(), now).await,
        Err(StoreError::NotFound(Entity::Room))
    ));
}

pub(super) async fn reports_mutes_and_bans(fx: &mut Fixture) {
    let s = fx.store.as_ref();
    let (owner, bob, carol) = (
        user(s, "owner").await,
        user(s, "bob").await,
        user(s, "carol").await,
    );
    let room = super::group(
        s,
        &[
            (owner.id, palaver_proto::Role::Owner),
            (bob.id, palaver_proto::Role::Member),
        ],
    )
    .await;
    let message = Uuid::now_v7();
    let report = |reporter: Uuid, at: i64| ReportRow {
        id: Uuid::now_v7(),
        message_id: message,
        room_id: room,
        reporter_id: reporter,
        reason: "spam".into(),
        created_at_ms: at,
        status: "open".into(),
        closed_by: None,
        closed_at_ms: None,
    };
    let first = report(bob.id, 100);
    s.create_report(&first).await.expect("report");
    assert!(matches!(
        s.create_report(&report(bob.id, 101)).await,
        Err(StoreError::Conflict(Constraint::OpenReport))
    ));
    let second = report(carol.id, 102);
    s.create_report(&second).await.expect("another reporter");
    assert_eq!(s.report(first.id).await.expect("read"), Some(first.clone()));
    let ids = |rows: Vec<ReportRow>| rows.into_iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(
        ids(s.reports(None, None, 10).await.expect("all")),
        [second.id, first.id]
    );
    assert_eq!(
        ids(s.reports(None, Some(second.id), 10).await.expect("older")),
        [first.id]
    );
    assert!(
        s.close_report(first.id, "resolved", Some(owner.id), 200)
            .await
            .expect("close")
    );
    assert!(
        !s.close_report(first.id, "dismissed", None, 300)
            .await
            .expect("closed once")
    );
    let closed = s.report(first.id).await.expect("read").expect("some");
    assert_eq!(
        (
            closed.status.as_str(),
            closed.closed_by,
            closed.closed_at_ms
        ),
        ("resolved", Some(owner.id), Some(200))
    );
    assert_eq!(
        ids(s.reports(Some("open"), None, 10).await.expect("open")),
        [second.id]
    );
    assert!(matches!(
        s.close_report(Uuid::now_v7(), "resolved", None, 1).await,
        Err(StoreError::NotFound(Entity::Report))
    ));
    // Once closed, the same reporter may report again.
    s.create_report(&report(bob.id, 400)).await.expect("again");

    // Mutes: only members; in force until their instant.
    assert!(s.set_mute(room, bob.id, Some(1_000)).await.expect("mute"));
    assert!(
        !s.set_mute(room, carol.id, Some(1_000))
            .await
            .expect("not a member")
    );
    let mutes = s.mutes_in_force(500).await.expect("mutes");
    assert_eq!(
        mutes,
        [MuteRow {
            room_id: room,
            user_id: bob.id,
            until_ms: 1_000
        }]
    );
    assert!(s.mutes_in_force(1_000).await.expect("over").is_empty());
    assert!(s.set_mute(room, bob.id, None).await.expect("unmute"));
    assert!(s.mutes_in_force(0).await.expect("none").is_empty());

    // Bans: once each, listed, found among others, lifted once.
    s.ban(room, carol.id, owner.id, 10).await.expect("ban");
    s.ban(room, carol.id, bob.id, 20).await.expect("ban again");
    let bans = s.bans(room).await.expect("bans");
    assert_eq!(
        bans,
        [BanRow {
            user_id: carol.id,
            banned_by: owner.id,
            created_at_ms: 10
        }]
    );
    assert_eq!(
        s.banned_among(room, &[bob.id, carol.id])
            .await
            .expect("among"),
        [carol.id]
    );
    assert!(s.banned_among(room, &[]).await.expect("none").is_empty());
    assert!(s.unban(room, carol.id).await.expect("unban"));
    assert!(!s.unban(room, carol.id).await.expect("unban twice"));
    assert!(s.bans(room).await.expect("bans").is_empty());
}
