//! Moderation: the owners and admins of a group delete anyone's message there, mute
//! members (no sending for a while) and ban people (removed, and not added back until
//! unbanned); users report messages to the server's administrators, who resolve or
//! dismiss the reports (docs/OPERATIONS.md, "Moderation").

use palaver_proto::{Ban, BanList, Report, ReportList, ReportQuery, ReportStatus, Role};
use uuid::Uuid;

use super::{Admin, Core, Identity, ServiceError, ServiceResult};
use crate::bus::Event;
use crate::cache::RateBucket;
use crate::clock::{now_ms, to_time};
use crate::store::{Constraint, MuteRow, ReportRow, StoreError};

impl Core {
    /// Whether `who` may delete message `id`: its sender, or an owner or admin of the group
    /// it is in. Answers whether it is moderation (someone else's message). A message the
    /// caller may not delete is refused before whether it is already deleted is said.
    pub(in crate::service) async fn may_delete(
        &self,
        who: Identity,
        id: Uuid,
    ) -> ServiceResult<bool> {
        let message = self.message(who, id).await?;
        let moderation = message.sender_id != who.user_id;
        if moderation {
            let (row, _, role) = self.member_room(who, message.room_id).await?;
            if !row.is_group || !matches!(role, Role::Owner | Role::Admin) {
                return Err(ServiceError::Forbidden(
                    "only the sender, or an owner or admin of the group, may delete a message",
                ));
            }
        }
        if message.deleted {
            return Err(ServiceError::Conflict("the message is deleted"));
        }
        Ok(moderation)
    }
}

/// Longest reason of a report, in characters.
const MAX_REASON_CHARS: usize = 500;

fn report_of(row: ReportRow) -> ServiceResult<Report> {
    let status = match row.status.as_str() {
        "open" => ReportStatus::Open,
        "resolved" => ReportStatus::Resolved,
        "dismissed" => ReportStatus::Dismissed,
        other => {
            return Err(ServiceError::Store(StoreError::Corrupt(format!(
                "report status {other:?}"
            ))));
        }
    };
    Ok(Report {
        id: row.id,
        message_id: row.message_id,
        room_id: row.room_id,
        reporter_id: row.reporter_id,
        reason: row.reason,
        created_at: to_time(row.created_at_ms),
        status,
        closed_by: row.closed_by,
        closed_at: row.closed_at_ms.map(to_time),
        message: None,
    })
}

impl Core {
    /// Reports a message the caller can read to the server's administrators. One open
    /// report per reporter and message (`409 conflict` for a second).
    pub async fn report_message(
        &self,
        who: Identity,
        id: Uuid,
        reason: &str,
    ) -> ServiceResult<Report> {
        self.limit(RateBucket::Actions, &who.user_id.to_string())
            .await?;
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(ServiceError::Validation("a report needs a reason".into()));
        }
        if reason.chars().count() > MAX_REASON_CHARS {
            return Err(ServiceError::Validation(format!(
                "a reason is at most {MAX_REASON_CHARS} characters"
            )));
        }
        let message = self.message(who, id).await?;
        let row = ReportRow {
            id: Uuid::now_v7(),
            message_id: id,
            room_id: message.room_id,
            reporter_id: who.user_id,
            reason: reason.to_owned(),
            created_at_ms: now_ms(),
            status: ReportStatus::Open.as_str().to_owned(),
            closed_by: None,
            closed_at_ms: None,
        };
        self.store.create_report(&row).await.map_err(|e| match e {
            StoreError::Conflict(Constraint::OpenReport) => {
                ServiceError::Conflict("you already reported this message; it is still open")
            }
            other => other.into(),
        })?;
        self.audit(
            Some(who.user_id),
            "message.report",
            Some(id.to_string()),
            Some(format!("report {}", row.id)),
        )
        .await;
        report_of(row)
    }

    /// Reports, newest first, with the messages as they are now.
    pub async fn admin_reports(&self, _admin: Admin, q: ReportQuery) -> ServiceResult<ReportList> {
        let limit = match q.limit {
            None => 50,
            Some(n @ 1..=200) => n,
            Some(_) => return Err(ServiceError::Validation("limit must be 1 to 200".into())),
        };
        let status = q.status.map(ReportStatus::as_str);
        let mut rows = self.store.reports(status, q.before, limit + 1).await?;
        let more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        let next = more.then(|| rows.last().map(|r| r.id)).flatten();
        let mut reports = Vec::with_capacity(rows.len());
        for row in rows {
            reports.push(self.admin_report_view(row).await?);
        }
        Ok(ReportList { reports, next })
    }

    async fn admin_report_view(&self, row: ReportRow) -> ServiceResult<Report> {
        let message = self.store.message(row.message_id).await?;
        let mut report = report_of(row)?;
        report.message = message;
        Ok(report)
    }

    /// Resolves (`true`) or dismisses an open report; `409 conflict` if it is closed.
    pub async fn admin_close_report(
        &self,
        admin: Admin,
        id: Uuid,
        resolved: bool,
    ) -> ServiceResult<Report> {
        let status = if resolved {
            ReportStatus::Resolved
        } else {
            ReportStatus::Dismissed
        };
        let closed = self
            .store
            .close_report(id, status.as_str(), admin.actor(), now_ms())
            .await?;
        if !closed {
            return Err(ServiceError::Conflict("the report is already closed"));
        }
        let action = if resolved {
            "admin.report_resolve"
        } else {
            "admin.report_dismiss"
        };
        self.audit(admin.actor(), action, Some(id.to_string()), None)
            .await;
        let row = self
            .store
            .report(id)
            .await?
            .ok_or(ServiceError::ReportNotFound)?;
        self.admin_report_view(row).await
    }
}

/// Longest mute: 30 days.
pub const MAX_MUTE_SECS: u64 = 30 * 24 * 3600;

/// Mutes in force, in memory beside the routing table: the send path checks it without a
/// database read. Loaded at start-up; changed here and on other nodes through the bus
/// (`Event::Mute`). An expired entry is ignored, and dropped when it is next looked at.
#[derive(Default)]
pub struct Mutes {
    until: dashmap::DashMap<(Uuid, Uuid), i64>,
}

impl Mutes {
    pub(in crate::service) fn load(&self, rows: Vec<MuteRow>) {
        for m in rows {
            self.until.insert((m.room_id, m.user_id), m.until_ms);
        }
    }

    pub(in crate::service) fn set(&self, room: Uuid, user: Uuid, until_ms: Option<i64>) {
        match until_ms {
            Some(until) => {
                self.until.insert((room, user), until);
            }
            None => {
                self.until.remove(&(room, user));
            }
        }
    }

    /// `muted` with the wait, if `user` is muted in `room` now.
    pub(in crate::service) fn check(&self, room: Uuid, user: Uuid) -> ServiceResult<()> {
        let Some(until) = self.until.get(&(room, user)).map(|u| *u) else {
            return Ok(());
        };
        let left = until - now_ms();
        if left <= 0 {
            self.until.remove_if(&(room, user), |_, u| *u == until);
            return Ok(());
        }
        Err(ServiceError::Muted(std::time::Duration::from_millis(
            left as u64,
        )))
    }
}

impl Core {
    /// The group, the caller's role, and the target's role if they are in it; refused
    /// unless the caller is an owner or admin who outranks a target in the group.
    async fn sanction_target(
        &self,
        who: Identity,
        room: Uuid,
        target: Uuid,
    ) -> ServiceResult<(
        crate::store::RoomRow,
        Vec<crate::store::MemberRow>,
        Option<Role>,
    )> {
        self.limit(RateBucket::Actions, &who.user_id.to_string())
            .await?;
        let (row, members, role) = self.member_room(who, room).await?;
        if !row.is_group {
            return Err(ServiceError::NotAGroup(
                "nobody is muted or banned in a 1:1 room; block instead",
            ));
        }
        if !matches!(role, Role::Owner | Role::Admin) {
            return Err(ServiceError::Forbidden(
                "only an owner or admin may mute or ban",
            ));
        }
        let target_role = members.iter().find(|m| m.user_id == target).map(|m| m.role);
        match target_role {
            Some(t) if !super::rooms::outranks(role, t) => Err(ServiceError::Forbidden(
                "not allowed to mute or ban this member",
            )),
            _ => Ok((row, members, target_role)),
        }
    }

    /// Mutes a member of a group for `secs` (1 s to 30 days): they read, but their sends
    /// are refused with `muted` until then, on every node.
    pub async fn mute_member(
        &self,
        who: Identity,
        room: Uuid,
        target: Uuid,
        secs: u64,
    ) -> ServiceResult<()> {
        if !(1..=MAX_MUTE_SECS).contains(&secs) {
            return Err(ServiceError::Validation(format!(
                "durationSecs must be 1 to {MAX_MUTE_SECS}"
            )));
        }
        let (_, _, target_role) = self.sanction_target(who, room, target).await?;
        if target_role.is_none() {
            return Err(ServiceError::UserNotFound);
        }
        let until = now_ms() + (secs as i64) * 1000;
        self.set_mute(room, target, Some(until)).await?;
        self.audit(
            Some(who.user_id),
            "room.member_mute",
            Some(room.to_string()),
            Some(format!("{target} for {secs} s")),
        )
        .await;
        Ok(())
    }

    /// Lifts a member's mute (lifting none is fine).
    pub async fn unmute_member(
        &self,
        who: Identity,
        room: Uuid,
        target: Uuid,
    ) -> ServiceResult<()> {
        let (_, _, target_role) = self.sanction_target(who, room, target).await?;
        if target_role.is_none() {
            return Err(ServiceError::UserNotFound);
        }
        self.set_mute(room, target, None).await?;
        self.audit(
            Some(who.user_id),
            "room.member_unmute",
            Some(room.to_string()),
            Some(target.to_string()),
        )
        .await;
        Ok(())
    }

    async fn set_mute(&self, room: Uuid, user: Uuid, until: Option<i64>) -> ServiceResult<()> {
        if !self.store.set_mute(room, user, until).await? {
            return Err(ServiceError::UserNotFound);
        }
        self.mutes.set(room, user, until);
        self.bus
            .publish(Event::Mute {
                origin: self.node_id,
                room_id: room,
                user_id: user,
                until_ms: until,
            })
            .await?;
        Ok(())
    }

    /// Bans someone from a group: a member is removed (at once, as a removal is), and
    /// nobody can add them back until they are unbanned.
    pub async fn ban_member(&self, who: Identity, room: Uuid, target: Uuid) -> ServiceResult<()> {
        // Nobody outranks themselves: the caller cannot ban themselves.
        let (row, members, target_role) = self.sanction_target(who, room, target).await?;
        if target_role.is_none() {
            self.check_users_exist(&[target]).await?;
        }
        self.store.ban(room, target, who.user_id, now_ms()).await?;
        if target_role.is_some() {
            self.drop_member(
                who.user_id,
                &row,
                &members,
                target,
                None,
                "room.member_remove",
            )
            .await?;
        }
        self.audit(
            Some(who.user_id),
            "room.member_ban",
            Some(room.to_string()),
            Some(target.to_string()),
        )
        .await;
        Ok(())
    }

    /// Lifts a ban (lifting none is fine); the user is not added back.
    pub async fn unban_member(&self, who: Identity, room: Uuid, target: Uuid) -> ServiceResult<()> {
        self.sanction_target(who, room, target).await?;
        if self.store.unban(room, target).await? {
            self.audit(
                Some(who.user_id),
                "room.member_unban",
                Some(room.to_string()),
                Some(target.to_string()),
            )
            .await;
        }
        Ok(())
    }

    /// A group's bans, for its owners and admins.
    pub async fn room_bans(&self, who: Identity, room: Uuid) -> ServiceResult<BanList> {
        let (row, _, role) = self.member_room(who, room).await?;
        if !row.is_group || !matches!(role, Role::Owner | Role::Admin) {
            return Err(ServiceError::Forbidden(
                "only an owner or admin of a group sees its bans",
            ));
        }
        let bans = self
            .store
            .bans(room)
            .await?
            .into_iter()
            .map(|b| Ban {
                user_id: b.user_id,
                banned_by: b.banned_by,
                created_at: to_time(b.created_at_ms),
            })
            .collect();
        Ok(BanList { bans })
    }
}
