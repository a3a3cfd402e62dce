//! Store cases about accounts: users and search, sessions and refresh-token rotation, and
//! the audit log.

use palaver_proto::User;
use palaver_server::clock::now_ms;
use palaver_server::store::{
    AuditEntry, AuditRecord, Constraint, Entity, RefreshOutcome, StoreError,
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
    let tail = s.audit_tail(10).await.expect("tail");
    assert_eq!(
        tail,
        vec![
            AuditRecord {
                at_ms: 200,
                actor: None,
                action: "login_failed".into(),
                target: None,
            },
            AuditRecord {
                at_ms: 100,
                actor: Some(actor),
                action: "login".into(),
                target: Some("alice".into()),
            },
        ]
    );
    assert_eq!(s.audit_tail(1).await.expect("tail").len(), 1);
}
