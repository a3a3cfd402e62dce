//! Server administration: the administrator role, accounts (list, create, disable,
//! enable, passwords, sessions, roles), rooms whoever is in them, and the audit log.
//!
//! Every function takes an [`Admin`], which only [`Core::require_admin`] (a caller whose
//! account is an enabled administrator) and [`Admin::local`] (the operator at the command
//! line, who holds the database) make: a handler cannot forget the check. Everything an
//! administrator does is audited with the action `admin.*`.
//!
//! Ending every session of an account ([`Core::end_user_sessions`]) is the one way to
//! throw a user out at once, on every node: the store revokes the sessions (refresh
//! tokens stop working), the cache marks them revoked until their last access token
//! expires (every node checks it on each request; Redis in a cluster), and the bus tells
//! every node to close their sockets (`Event::EndSession`), as logout does.

use palaver_proto::{
    AdminCreateUserRequest, AdminRoom, AdminRoomList, AdminRoomQuery, AdminUser, AdminUserList,
    AdminUserQuery, AuditLog, AuditLogEntry, AuditQuery, Me, ServerFrame, SessionsEnded, User,
};
use uuid::Uuid;

use super::{Core, Identity, ServiceError, ServiceResult};
use crate::bus::{Audience, Event};
use crate::clock::{now_ms, to_time};
use crate::domain::Password;
use crate::store::{Account, AccountFilter, AdminRoomRow, AuditFilter, Constraint, StoreError};

/// Pages of accounts and rooms hold at most this many; default [`DEFAULT_PAGE`].
const MAX_PAGE: u32 = 200;
const DEFAULT_PAGE: u32 = 50;
/// Pages of the audit log hold at most this many; default [`DEFAULT_AUDIT_PAGE`].
const MAX_AUDIT_PAGE: u32 = 500;
const DEFAULT_AUDIT_PAGE: u32 = 100;
/// Longest audit filter values: actions are short names, targets ids or usernames.
const MAX_ACTION_CHARS: usize = 64;
const MAX_TARGET_CHARS: usize = 128;

/// What refuses demoting or disabling the last administrator.
const LAST_ADMIN: &str = "the last enabled administrator cannot be demoted or disabled";

/// Proof that an administrator acts: made by [`Core::require_admin`] or
/// [`Admin::local`].
#[derive(Debug, Clone, Copy)]
pub struct Admin {
    /// `None` for the command line against the database.
    actor: Option<Uuid>,
}

impl Admin {
    /// The operator at the command line (`palaver admin` without `--server`): whoever
    /// can open the database administers the server. Audited with no actor and the
    /// detail `command line`.
    pub fn local() -> Admin {
        Admin { actor: None }
    }

    /// The administrator's user id; `None` at the command line.
    pub fn actor(&self) -> Option<Uuid> {
        self.actor
    }
}

fn admin_user(account: Account) -> AdminUser {
    AdminUser {
        user: account.user,
        is_admin: account.is_admin,
        disabled: account.disabled_at_ms.is_some(),
    }
}

fn admin_room(row: AdminRoomRow) -> AdminRoom {
    AdminRoom {
        id: row.id,
        name: row.name,
        is_group: row.is_group,
        member_count: u32::try_from(row.member_count).unwrap_or(u32::MAX),
        created_at: to_time(row.created_at_ms),
        deleted_at: row.deleted_at_ms.map(to_time),
    }
}

/// Refusing the last administrator is a conflict of state; the rest as usual.
fn guarded(err: StoreError) -> ServiceError {
    match err {
        StoreError::Conflict(Constraint::LastAdmin) => ServiceError::Conflict(LAST_ADMIN),
        other => other.into(),
    }
}

fn page(limit: Option<u32>, default: u32, max: u32) -> ServiceResult<u32> {
    match limit {
        None => Ok(default),
        Some(n) if (1..=max).contains(&n) => Ok(n),
        Some(_) => Err(ServiceError::Validation(format!(
            "limit must be 1 to {max}"
        ))),
    }
}

impl Core {
    /// The caller as an administrator; 403 `forbidden` for anyone else, and 403
    /// `second_factor_required` for an administrator without two-factor login while
    /// `auth.require_second_factor_for_admins` is on.
    pub async fn require_admin(&self, who: Identity) -> ServiceResult<Admin> {
        match self.store.account(who.user_id).await? {
            Some(a) if a.is_admin && a.disabled_at_ms.is_none() => {
                self.admin_second_factor_gate(who.user_id).await?;
                Ok(Admin {
                    actor: Some(who.user_id),
                })
            }
            _ => Err(ServiceError::Forbidden("server administrators only")),
        }
    }

    /// `GET /users/me`: the caller's profile and role.
    pub async fn me_with_role(&self, who: Identity) -> ServiceResult<Me> {
        let account = self
            .store
            .account(who.user_id)
            .await?
            .ok_or(ServiceError::UserNotFound)?;
        Ok(Me {
            user: self.with_avatar(account.user).await?,
            is_admin: account.is_admin,
        })
    }

    /// Makes the usernames of `admin.usernames` administrators, those that exist (the
    /// others become one when they register). Run at start-up.
    pub async fn promote_configured_admins(&self) -> ServiceResult<()> {
        for name in &self.config.admin.usernames {
            self.promote_if_configured(&name.to_lowercase()).await?;
        }
        Ok(())
    }

    /// Makes `username` an administrator if `admin.usernames` names it.
    pub(in crate::service) async fn promote_if_configured(
        &self,
        username: &str,
    ) -> ServiceResult<()> {
        let named = self
            .config
            .admin
            .usernames
            .iter()
            .any(|n| n.eq_ignore_ascii_case(username));
        if !named {
            return Ok(());
        }
        if let Some(account) = self.store.account_named(username).await?
            && !account.is_admin
        {
            self.store.set_admin(account.user.id, true).await?;
            self.audit(
                None,
                "admin.promote",
                Some(account.user.id.to_string()),
                Some("named in admin.usernames".into()),
            )
            .await;
        }
        Ok(())
    }

    /// Ends every live session of `user` at once, on every node: refresh tokens stop
    /// working, access tokens are refused, sockets close. Returns how many ended. What
    /// disabling an account, resetting its password or deleting it uses; `actor` and
    /// `action` are for the audit log.
    pub async fn end_user_sessions(
        &self,
        user: Uuid,
        actor: Option<Uuid>,
        action: &'static str,
    ) -> ServiceResult<u32> {
        let ended = self.store.end_user_sessions(user, now_ms()).await?;
        self.close_sessions(&ended).await?;
        self.audit(
            actor,
            action,
            Some(user.to_string()),
            Some(format!("{} sessions ended", ended.len())),
        )
        .await;
        Ok(u32::try_from(ended.len()).unwrap_or(u32::MAX))
    }

    async fn account_or_404(&self, id: Uuid) -> ServiceResult<Account> {
        self.store
            .account(id)
            .await?
            .ok_or(ServiceError::UserNotFound)
    }

    /// The account with its avatar link.
    async fn admin_view(&self, id: Uuid) -> ServiceResult<AdminUser> {
        let mut account = self.account_or_404(id).await?;
        account.user = self.with_avatar(account.user).await?;
        Ok(admin_user(account))
    }

    /// Who did it, for the audit log's detail.
    async fn audit_admin(
        &self,
        admin: Admin,
        action: &'static str,
        target: String,
        detail: Option<String>,
    ) {
        let detail = match (admin.actor, detail) {
            (Some(_), detail) => detail,
            (None, Some(d)) => Some(format!("command line; {d}")),
            (None, None) => Some("command line".into()),
        };
        self.audit(admin.actor, action, Some(target), detail).await;
    }

    /// Accounts in username order, a page at a time.
    pub async fn admin_users(
        &self,
        _admin: Admin,
        q: AdminUserQuery,
    ) -> ServiceResult<AdminUserList> {
        let limit = page(q.limit, DEFAULT_PAGE, MAX_PAGE)?;
        let prefix = q.q.as_deref().map(str::trim).filter(|p| !p.is_empty());
        if prefix.is_some_and(|p| p.chars().count() > 64)
            || q.after.as_deref().is_some_and(|a| a.chars().count() > 64)
        {
            return Err(ServiceError::Validation(
                "q and after are at most 64 characters".into(),
            ));
        }
        let filter = AccountFilter {
            prefix: prefix.map(str::to_lowercase),
            disabled: q.disabled,
            after: q.after,
            // One more than asked tells whether there is a next page.
            limit: limit + 1,
        };
        let mut accounts = self.store.accounts(&filter).await?;
        let more = accounts.len() > limit as usize;
        accounts.truncate(limit as usize);
        let next = more
            .then(|| accounts.last().map(|a| a.user.username.clone()))
            .flatten();
        let mut users: Vec<User> = accounts.iter().map(|a| a.user.clone()).collect();
        self.attach_avatars(&mut users).await?;
        let users = accounts
            .into_iter()
            .zip(users)
            .map(|(a, user)| admin_user(Account { user, ..a }))
            .collect();
        Ok(AdminUserList { users, next })
    }

    /// One account.
    pub async fn admin_user(&self, _admin: Admin, id: Uuid) -> ServiceResult<AdminUser> {
        self.admin_view(id).await
    }

    /// Creates an account (not logged in). Its password must meet the strength rule.
    pub async fn admin_create_user(
        &self,
        admin: Admin,
        req: AdminCreateUserRequest,
    ) -> ServiceResult<AdminUser> {
        let user = self
            .create_account(&req.username, req.display_name.as_deref(), &req.password)
            .await?;
        self.audit_admin(
            admin,
            "admin.user_create",
            user.id.to_string(),
            Some(user.username.clone()),
        )
        .await;
        if req.is_admin {
            self.store.set_admin(user.id, true).await?;
            self.audit_admin(admin, "admin.promote", user.id.to_string(), None)
                .await;
        } else {
            self.promote_if_configured(&user.username).await?;
        }
        self.admin_view(user.id).await
    }

    /// Disables an account, ending all its sessions at once on every node, or enables it
    /// again. An administrator cannot disable their own account, nor the last enabled
    /// administrator.
    pub async fn admin_set_disabled(
        &self,
        admin: Admin,
        id: Uuid,
        disabled: bool,
    ) -> ServiceResult<AdminUser> {
        if disabled && admin.actor == Some(id) {
            return Err(ServiceError::Conflict(
                "an administrator cannot disable their own account",
            ));
        }
        let at = disabled.then(now_ms);
        let ended = self.store.set_disabled(id, at).await.map_err(guarded)?;
        self.close_sessions(&ended).await?;
        let (action, detail) = match disabled {
            true => (
                "admin.user_disable",
                Some(format!("{} sessions ended", ended.len())),
            ),
            false => ("admin.user_enable", None),
        };
        self.audit_admin(admin, action, id.to_string(), detail)
            .await;
        self.admin_view(id).await
    }

    /// Sets another account's password (it must meet the strength rule) and ends all
    /// its sessions.
    pub async fn admin_set_password(
        &self,
        admin: Admin,
        id: Uuid,
        password: &str,
    ) -> ServiceResult<()> {
        // One's own password is changed knowing the current one, not by decree: an
        // administrator's stolen token cannot lock the administrator out.
        if admin.actor == Some(id) {
            return Err(ServiceError::Conflict(
                "an administrator cannot reset their own password here",
            ));
        }
        let account = self.account_or_404(id).await?;
        let password = Password::parse(password)?;
        let slot = self.passwords.slot().await?;
        let hash = self
            .passwords
            .hash_new(
                slot,
                password,
                [
                    account.user.username.clone(),
                    account.user.display_name.clone(),
                ],
            )
            .await?;
        self.store.set_password_hash(id, &hash).await?;
        let ended = self.store.end_user_sessions(id, now_ms()).await?;
        self.close_sessions(&ended).await?;
        self.audit_admin(
            admin,
            "admin.password_reset",
            id.to_string(),
            Some(format!("{} sessions ended", ended.len())),
        )
        .await;
        Ok(())
    }

    /// Ends every session of an account, on every node.
    pub async fn admin_revoke_sessions(
        &self,
        admin: Admin,
        id: Uuid,
    ) -> ServiceResult<SessionsEnded> {
        self.account_or_404(id).await?;
        let sessions = self
            .end_user_sessions(id, admin.actor, "admin.sessions_revoke")
            .await?;
        Ok(SessionsEnded { sessions })
    }

    /// Promotes or demotes an administrator; the last enabled one stays.
    pub async fn admin_set_admin(
        &self,
        admin: Admin,
        id: Uuid,
        is_admin: bool,
    ) -> ServiceResult<AdminUser> {
        self.store.set_admin(id, is_admin).await.map_err(guarded)?;
        let action = if is_admin {
            "admin.promote"
        } else {
            "admin.demote"
        };
        self.audit_admin(admin, action, id.to_string(), None).await;
        self.admin_view(id).await
    }

    /// Every room, oldest first, a page at a time.
    pub async fn admin_rooms(
        &self,
        _admin: Admin,
        q: AdminRoomQuery,
    ) -> ServiceResult<AdminRoomList> {
        let limit = page(q.limit, DEFAULT_PAGE, MAX_PAGE)?;
        let mut rows = self.store.admin_rooms(q.after, limit + 1).await?;
        let more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        let next = more.then(|| rows.last().map(|r| r.id)).flatten();
        Ok(AdminRoomList {
            rooms: rows.into_iter().map(admin_room).collect(),
            next,
        })
    }

    /// Deletes a room: every member is removed at once (on every node, as a removal is)
    /// and told `room.left`; nobody can see it again, and a 1:1 pair may open a new one.
    /// Its rows stay in the database.
    pub async fn admin_delete_room(&self, admin: Admin, id: Uuid) -> ServiceResult<()> {
        let row = self
            .store
            .room(id)
            .await?
            .ok_or(ServiceError::RoomNotFound)?;
        let members = self.store.members(id).await?;
        let removed: Vec<Uuid> = members.iter().map(|m| m.user_id).collect();
        for user in &removed {
            self.store.remove_member(id, *user, None).await?;
        }
        self.store.close_room(id, now_ms()).await?;
        self.membership.apply(id, !row.is_group, &[], &[], &removed);
        self.bus
            .publish(Event::Membership {
                origin: self.node_id,
                room_id: id,
                direct: !row.is_group,
                added: Vec::new(),
                invited: Vec::new(),
                removed: removed.clone(),
            })
            .await?;
        let frame = ServerFrame::RoomLeft {
            room_id: id,
            reason: Some(palaver_proto::LeftReason::Removed),
            by: admin.actor,
        };
        self.deliver(Audience::Users(removed.clone()), &frame, None)
            .await?;
        self.audit_admin(
            admin,
            "admin.room_delete",
            id.to_string(),
            Some(format!("{} members removed", removed.len())),
        )
        .await;
        Ok(())
    }

    /// The audit log, newest first, filtered.
    pub async fn admin_audit_log(&self, _admin: Admin, q: AuditQuery) -> ServiceResult<AuditLog> {
        let limit = page(q.limit, DEFAULT_AUDIT_PAGE, MAX_AUDIT_PAGE)?;
        if q.before.is_some_and(|b| b < 1) {
            return Err(ServiceError::Validation("before must be at least 1".into()));
        }
        if q.action
            .as_deref()
            .is_some_and(|a| a.chars().count() > MAX_ACTION_CHARS)
            || q.target
                .as_deref()
                .is_some_and(|t| t.chars().count() > MAX_TARGET_CHARS)
        {
            return Err(ServiceError::Validation(format!(
                "action is at most {MAX_ACTION_CHARS} characters, target {MAX_TARGET_CHARS}"
            )));
        }
        let ms = |t: time::OffsetDateTime| (t.unix_timestamp_nanos() / 1_000_000) as i64;
        let filter = AuditFilter {
            actor: q.actor,
            action: q.action,
            target: q.target,
            since_ms: q.since.map(ms),
            until_ms: q.until.map(ms),
            before_id: q.before,
            limit: limit + 1,
        };
        let mut rows = self.store.audit_log(&filter).await?;
        let more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        let next = more.then(|| rows.last().map(|r| r.id)).flatten();
        let entries = rows
            .into_iter()
            .map(|r| AuditLogEntry {
                id: r.id,
                at: to_time(r.at_ms),
                actor: r.actor,
                action: r.action,
                target: r.target,
                detail: r.detail,
            })
            .collect();
        Ok(AuditLog { entries, next })
    }
}
