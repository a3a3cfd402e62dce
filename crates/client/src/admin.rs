//! Server administration (`/api/v1/admin/*`): what `palaver admin --server` and the tests
//! call. Every call needs an administrator's token.

use palaver_proto::{
    AdminCreateUserRequest, AdminPasswordRequest, AdminRoomList, AdminRoomQuery, AdminUser,
    AdminUserList, AdminUserQuery, AuditLog, AuditQuery, Me, Report, ReportList, ReportQuery,
    ReportRequest, SessionsEnded,
};
use reqwest::Method;
use serde::Serialize;
use uuid::Uuid;

use crate::{Client, ClientError, Result};

/// `path?query`, the query's fields that are set, by their wire names.
fn with_query(path: &str, query: &impl Serialize) -> Result<String> {
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    if let serde_json::Value::Object(fields) = serde_json::to_value(query)? {
        for (key, value) in fields {
            match value {
                serde_json::Value::Null => {}
                serde_json::Value::String(s) => {
                    form.append_pair(&key, &s);
                }
                other => {
                    form.append_pair(&key, &other.to_string());
                }
            }
        }
    }
    let query = form.finish();
    Ok(if query.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{query}")
    })
}

impl Client {
    /// `GET /api/v1/users/me`: the caller's profile and whether they administer the server.
    pub async fn me_with_role(&self) -> Result<Me> {
        Ok(self
            .call::<(), _>(Method::GET, "/api/v1/users/me", None)
            .await?
            .1)
    }

    /// Accounts in username order, one page.
    pub async fn admin_users(&self, query: &AdminUserQuery) -> Result<AdminUserList> {
        let path = with_query("/api/v1/admin/users", query)?;
        Ok(self.call::<(), _>(Method::GET, &path, None).await?.1)
    }

    /// One account.
    pub async fn admin_user(&self, id: Uuid) -> Result<AdminUser> {
        let path = format!("/api/v1/admin/users/{id}");
        Ok(self.call::<(), _>(Method::GET, &path, None).await?.1)
    }

    /// Creates an account.
    pub async fn admin_create_user(&self, req: &AdminCreateUserRequest) -> Result<AdminUser> {
        Ok(self
            .call(Method::POST, "/api/v1/admin/users", Some(req))
            .await?
            .1)
    }

    /// Disables an account (`true`), ending its sessions on every node, or enables it.
    pub async fn admin_set_disabled(&self, id: Uuid, disabled: bool) -> Result<AdminUser> {
        let verb = if disabled { "disable" } else { "enable" };
        let path = format!("/api/v1/admin/users/{id}/{verb}");
        Ok(self.call::<(), _>(Method::POST, &path, None).await?.1)
    }

    /// Sets an account's password; its sessions end.
    pub async fn admin_set_password(&self, id: Uuid, password: &str) -> Result<()> {
        let path = format!("/api/v1/admin/users/{id}/password");
        let body = AdminPasswordRequest {
            password: password.into(),
        };
        let (status, value) = self
            .raw(Method::PUT, &path, Some(&serde_json::to_value(&body)?))
            .await?;
        if status == 204 {
            return Ok(());
        }
        // An error status becomes `Api`; any other answer is unexpected.
        crate::typed::<serde_json::Value>(status, value)?;
        Err(ClientError::Unexpected {
            status,
            body: String::new(),
        })
    }

    /// Ends every session of an account.
    pub async fn admin_revoke_sessions(&self, id: Uuid) -> Result<SessionsEnded> {
        let path = format!("/api/v1/admin/users/{id}/sessions/revoke");
        Ok(self.call::<(), _>(Method::POST, &path, None).await?.1)
    }

    /// Promotes (`true`) or demotes an administrator.
    pub async fn admin_set_admin(&self, id: Uuid, admin: bool) -> Result<AdminUser> {
        let path = format!("/api/v1/admin/users/{id}/admin");
        let method = if admin { Method::PUT } else { Method::DELETE };
        Ok(self.call::<(), _>(method, &path, None).await?.1)
    }

    /// Every room, one page.
    pub async fn admin_rooms(&self, query: &AdminRoomQuery) -> Result<AdminRoomList> {
        let path = with_query("/api/v1/admin/rooms", query)?;
        Ok(self.call::<(), _>(Method::GET, &path, None).await?.1)
    }

    /// Deletes a room.
    pub async fn admin_delete_room(&self, id: Uuid) -> Result<()> {
        self.no_content(Method::DELETE, &format!("/api/v1/admin/rooms/{id}"))
            .await
    }

    /// The audit log, newest first, one page.
    pub async fn admin_audit(&self, query: &AuditQuery) -> Result<AuditLog> {
        let path = with_query("/api/v1/admin/audit", query)?;
        Ok(self.call::<(), _>(Method::GET, &path, None).await?.1)
    }

    /// Reports a message to the server's administrators.
    pub async fn report_message(&self, message: Uuid, reason: &str) -> Result<Report> {
        let path = format!("/api/v1/messages/{message}/report");
        let body = ReportRequest {
            reason: reason.into(),
        };
        Ok(self.call(Method::POST, &path, Some(&body)).await?.1)
    }

    /// Reports, newest first, one page.
    pub async fn admin_reports(&self, query: &ReportQuery) -> Result<ReportList> {
        let path = with_query("/api/v1/admin/reports", query)?;
        Ok(self.call::<(), _>(Method::GET, &path, None).await?.1)
    }

    /// Resolves (`true`) or dismisses an open report.
    pub async fn admin_close_report(&self, id: Uuid, resolved: bool) -> Result<Report> {
        let verb = if resolved { "resolve" } else { "dismiss" };
        let path = format!("/api/v1/admin/reports/{id}/{verb}");
        Ok(self.call::<(), _>(Method::POST, &path, None).await?.1)
    }
}
