//! Moderation: the owners and admins of a group delete anyone's message there, and users
//! report messages to the server's administrators, who resolve or dismiss the reports
//! (docs/OPERATIONS.md, "Moderation").

use palaver_proto::{Report, ReportList, ReportQuery, ReportStatus, Role};
use uuid::Uuid;

use super::{Admin, Core, Identity, ServiceError, ServiceResult};
use crate::cache::RateBucket;
use crate::clock::{now_ms, to_time};
use crate::store::{Constraint, ReportRow, StoreError};

impl Core {
    /// Whether `who` may delete message `id`: its sender, or an owner or admin of the group
    /// it is in. Answers whether it is moderation (someone else's message). A message the
    /// caller may not delete is refused before whether it is already deleted is said.
    pub(in crate::service) async fn may_delete(&self, who: Identity, id: Uuid) -> ServiceResult<bool> {
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
            return Err(ServiceError::PayloadTooLarge(format!(
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
