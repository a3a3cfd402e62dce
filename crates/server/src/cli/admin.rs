//! `palaver admin`: server administration from the command line, two ways.
//!
//! - Against a running server (`--server URL`, with an administrator's access token in
//!   `--token` or `PALAVER_TOKEN`): every command is a call of `/api/v1/admin/*` through
//!   the typed client, so it does exactly what the API does.
//! - Against the configured store (no `--server`; the configuration file, `--data-dir`,
//!   `--store`, `--bus`, `--cache` as for `serve`): the server library's service over the
//!   engines, with the operator as the actor. On a cluster (Redis and NATS configured)
//!   sessions it ends end on every running node at once; with the embedded engines a
//!   running server only sees them at its next start, so use `--server` there.
//!
//! Users are named by username or id. `--json` prints the API's JSON.

use std::io::BufRead;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use palaver_client::Client;
use palaver_proto::{
    AdminCreateUserRequest, AdminRoomList, AdminRoomQuery, AdminUser, AdminUserList,
    AdminUserQuery, AuditLog, AuditQuery, Report, ReportList, ReportQuery, ReportStatus,
    SessionsEnded,
};
use palaver_server::config::Flags;
use palaver_server::service::{Admin, Core};
use palaver_server::{Config, app::open_core};
use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

/// `palaver admin`: its options and command.
#[derive(Args)]
pub struct AdminArgs {
    /// A running server's base URL (e.g. http://127.0.0.1:8080); without it the
    /// configured store is opened directly.
    #[arg(long)]
    server: Option<String>,
    /// An administrator's access token, for --server (env PALAVER_TOKEN).
    #[arg(long, env = "PALAVER_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Print JSON (the API's shapes) instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(flatten)]
    flags: Flags,
    #[command(subcommand)]
    command: AdminCommand,
}

#[derive(Subcommand)]
enum AdminCommand {
    /// List accounts in username order.
    Users {
        /// Username prefix.
        #[arg(long)]
        prefix: Option<String>,
        /// Only disabled accounts.
        #[arg(long, conflicts_with = "enabled")]
        disabled: bool,
        /// Only enabled accounts.
        #[arg(long)]
        enabled: bool,
        /// The next page: accounts after this username.
        #[arg(long)]
        after: Option<String>,
        #[arg(long)]
        limit: Option<u32>,
    },
    /// Show one account.
    User { user: String },
    /// Create an account. The password is read from --password-stdin's first line.
    Create {
        username: String,
        #[arg(long)]
        display_name: Option<String>,
        /// Make it an administrator.
        #[arg(long)]
        admin: bool,
        /// Read the password from standard input (required: never on the command line).
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// Disable an account: no login, every session ends at once.
    Disable { user: String },
    /// Enable a disabled account.
    Enable { user: String },
    /// Set an account's password (read from standard input); its sessions end.
    Password {
        user: String,
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// End every session of an account.
    RevokeSessions { user: String },
    /// Make an account an administrator.
    Promote { user: String },
    /// Take the administrator role away (never from the last one).
    Demote { user: String },
    /// List rooms, oldest first.
    Rooms {
        #[arg(long)]
        after: Option<Uuid>,
        #[arg(long)]
        limit: Option<u32>,
    },
    /// Delete a room: every member is removed.
    DeleteRoom { room: Uuid },
    /// Reports of messages, newest first (open ones by default).
    Reports {
        /// open, resolved, dismissed or all.
        #[arg(long, default_value = "open")]
        status: String,
        /// The next page: reports older than this one.
        #[arg(long)]
        before: Option<Uuid>,
        #[arg(long)]
        limit: Option<u32>,
    },
    /// Close an open report as resolved.
    Resolve { report: Uuid },
    /// Close an open report as dismissed.
    Dismiss { report: Uuid },
    /// Read the audit log, newest first.
    Audit {
        /// Entries by this user (username or id).
        #[arg(long)]
        actor: Option<String>,
        /// e.g. admin.user_disable, auth.login.
        #[arg(long)]
        action: Option<String>,
        #[arg(long)]
        target: Option<String>,
        /// RFC 3339 instant.
        #[arg(long)]
        since: Option<String>,
        /// RFC 3339 instant.
        #[arg(long)]
        until: Option<String>,
        /// The next page: entries older than this id.
        #[arg(long)]
        before: Option<i64>,
        #[arg(long)]
        limit: Option<u32>,
    },
}

/// Where the commands go.
enum Target {
    Remote(Client),
    Local(Arc<Core>),
}

/// Runs `palaver admin`.
pub async fn run(config_file: Option<&Path>, args: AdminArgs) -> anyhow::Result<()> {
    let json = args.json;
    let target = match args.server {
        Some(url) => {
            let token = args
                .token
                .context("--server needs an administrator's token: --token or PALAVER_TOKEN")?;
            Target::Remote(Client::new(&url)?.with_token(token))
        }
        None => {
            let config = Config::load(config_file, args.flags)?;
            Target::Local(open_core(config).await.context("opening the store")?)
        }
    };
    let out = Output { json };
    match args.command {
        AdminCommand::Users {
            prefix,
            disabled,
            enabled,
            after,
            limit,
        } => {
            let q = AdminUserQuery {
                q: prefix,
                disabled: (disabled || enabled).then_some(disabled),
                after,
                limit,
            };
            let list = match &target {
                Target::Remote(c) => c.admin_users(&q).await?,
                Target::Local(core) => core.admin_users(Admin::local(), q).await?,
            };
            out.users(&list)
        }
        AdminCommand::User { user } => {
            let id = resolve(&target, &user).await?;
            let user = match &target {
                Target::Remote(c) => c.admin_user(id).await?,
                Target::Local(core) => core.admin_user(Admin::local(), id).await?,
            };
            out.user(&user)
        }
        AdminCommand::Create {
            username,
            display_name,
            admin,
            password_stdin: _,
        } => {
            let req = AdminCreateUserRequest {
                username,
                password: read_password()?,
                display_name,
                is_admin: admin,
            };
            let user = match &target {
                Target::Remote(c) => c.admin_create_user(&req).await?,
                Target::Local(core) => core.admin_create_user(Admin::local(), req).await?,
            };
            out.user(&user)
        }
        AdminCommand::Disable { user } => set_disabled(&target, &out, &user, true).await,
        AdminCommand::Enable { user } => set_disabled(&target, &out, &user, false).await,
        AdminCommand::Password {
            user,
            password_stdin: _,
        } => {
            let id = resolve(&target, &user).await?;
            let password = read_password()?;
            match &target {
                Target::Remote(c) => c.admin_set_password(id, &password).await?,
                Target::Local(core) => {
                    core.admin_set_password(Admin::local(), id, &password)
                        .await?
                }
            }
            out.done(&format!("password set for {id}; its sessions ended"))
        }
        AdminCommand::RevokeSessions { user } => {
            let id = resolve(&target, &user).await?;
            let ended = match &target {
                Target::Remote(c) => c.admin_revoke_sessions(id).await?,
                Target::Local(core) => core.admin_revoke_sessions(Admin::local(), id).await?,
            };
            out.ended(&ended)
        }
        AdminCommand::Promote { user } => set_admin(&target, &out, &user, true).await,
        AdminCommand::Demote { user } => set_admin(&target, &out, &user, false).await,
        AdminCommand::Rooms { after, limit } => {
            let q = AdminRoomQuery { after, limit };
            let list = match &target {
                Target::Remote(c) => c.admin_rooms(&q).await?,
                Target::Local(core) => core.admin_rooms(Admin::local(), q).await?,
            };
            out.rooms(&list)
        }
        AdminCommand::DeleteRoom { room } => {
            match &target {
                Target::Remote(c) => c.admin_delete_room(room).await?,
                Target::Local(core) => core.admin_delete_room(Admin::local(), room).await?,
            }
            out.done(&format!("room {room} deleted"))
        }
        AdminCommand::Reports {
            status,
            before,
            limit,
        } => {
            let status = match status.as_str() {
                "open" => Some(ReportStatus::Open),
                "resolved" => Some(ReportStatus::Resolved),
                "dismissed" => Some(ReportStatus::Dismissed),
                "all" => None,
                other => bail!("--status {other:?}: open, resolved, dismissed or all"),
            };
            let q = ReportQuery {
                status,
                before,
                limit,
            };
            let list = match &target {
                Target::Remote(c) => c.admin_reports(&q).await?,
                Target::Local(core) => core.admin_reports(Admin::local(), q).await?,
            };
            out.reports(&list)
        }
        AdminCommand::Resolve { report } => close_report(&target, &out, report, true).await,
        AdminCommand::Dismiss { report } => close_report(&target, &out, report, false).await,
        AdminCommand::Audit {
            actor,
            action,
            target: about,
            since,
            until,
            before,
            limit,
        } => {
            let actor = match actor {
                Some(a) => Some(resolve(&target, &a).await?),
                None => None,
            };
            let q = AuditQuery {
                actor,
                action,
                target: about,
                since: since.as_deref().map(instant).transpose()?,
                until: until.as_deref().map(instant).transpose()?,
                before,
                limit,
            };
            let log = match &target {
                Target::Remote(c) => c.admin_audit(&q).await?,
                Target::Local(core) => core.admin_audit_log(Admin::local(), q).await?,
            };
            out.audit(&log)
        }
    }
}

async fn set_disabled(
    target: &Target,
    out: &Output,
    user: &str,
    disabled: bool,
) -> anyhow::Result<()> {
    let id = resolve(target, user).await?;
    let user = match target {
        Target::Remote(c) => c.admin_set_disabled(id, disabled).await?,
        Target::Local(core) => {
            core.admin_set_disabled(Admin::local(), id, disabled)
                .await?
        }
    };
    out.user(&user)
}

async fn close_report(
    target: &Target,
    out: &Output,
    report: Uuid,
    resolved: bool,
) -> anyhow::Result<()> {
    let report = match target {
        Target::Remote(c) => c.admin_close_report(report, resolved).await?,
        Target::Local(core) => {
            core.admin_close_report(Admin::local(), report, resolved)
                .await?
        }
    };
    out.report(&report)
}

async fn set_admin(target: &Target, out: &Output, user: &str, admin: bool) -> anyhow::Result<()> {
    let id = resolve(target, user).await?;
    let user = match target {
        Target::Remote(c) => c.admin_set_admin(id, admin).await?,
        Target::Local(core) => core.admin_set_admin(Admin::local(), id, admin).await?,
    };
    out.user(&user)
}

/// A user id, or the account with this username.
async fn resolve(target: &Target, user: &str) -> anyhow::Result<Uuid> {
    if let Ok(id) = user.parse::<Uuid>() {
        return Ok(id);
    }
    let name = user.to_lowercase();
    let q = AdminUserQuery {
        q: Some(name.clone()),
        limit: Some(1),
        ..AdminUserQuery::default()
    };
    // Usernames sort first among those they prefix, so the first is it if it exists.
    let list = match target {
        Target::Remote(c) => c.admin_users(&q).await?,
        Target::Local(core) => core.admin_users(Admin::local(), q).await?,
    };
    match list.users.into_iter().next() {
        Some(u) if u.user.username == name => Ok(u.user.id),
        _ => bail!("no user named {user:?}"),
    }
}

fn instant(s: &str) -> anyhow::Result<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339).with_context(|| format!("{s:?} is not an RFC 3339 instant"))
}

/// The first line of standard input, without its line end.
fn read_password() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the password from standard input")?;
    let password = line.trim_end_matches(['\r', '\n']).to_owned();
    if password.is_empty() {
        bail!("no password on standard input");
    }
    Ok(password)
}

/// Prints answers as text or JSON.
struct Output {
    json: bool,
}

impl Output {
    fn print_json(&self, value: &impl Serialize) -> anyhow::Result<()> {
        println!("{}", serde_json::to_string_pretty(value)?);
        Ok(())
    }

    fn user(&self, u: &AdminUser) -> anyhow::Result<()> {
        if self.json {
            return self.print_json(u);
        }
        println!("{}", user_line(u));
        Ok(())
    }

    fn users(&self, list: &AdminUserList) -> anyhow::Result<()> {
        if self.json {
            return self.print_json(list);
        }
        for u in &list.users {
            println!("{}", user_line(u));
        }
        if let Some(next) = &list.next {
            println!("(more: --after {next})");
        }
        Ok(())
    }

    fn ended(&self, ended: &SessionsEnded) -> anyhow::Result<()> {
        if self.json {
            return self.print_json(ended);
        }
        println!("{} sessions ended", ended.sessions);
        Ok(())
    }

    fn rooms(&self, list: &AdminRoomList) -> anyhow::Result<()> {
        if self.json {
            return self.print_json(list);
        }
        for r in &list.rooms {
            let kind = if r.is_group { "group" } else { "1:1" };
            let deleted = if r.deleted_at.is_some() {
                " deleted"
            } else {
                ""
            };
            println!(
                "{}  {kind}  {} members{deleted}  {}",
                r.id, r.member_count, r.name
            );
        }
        if let Some(next) = list.next {
            println!("(more: --after {next})");
        }
        Ok(())
    }

    fn audit(&self, log: &AuditLog) -> anyhow::Result<()> {
        if self.json {
            return self.print_json(log);
        }
        for e in &log.entries {
            let at = e.at.format(&Rfc3339).unwrap_or_default();
            let actor = e.actor.map_or("-".to_owned(), |a| a.to_string());
            println!(
                "{}  {at}  {actor}  {}  {}  {}",
                e.id,
                e.action,
                e.target.as_deref().unwrap_or("-"),
                e.detail.as_deref().unwrap_or("")
            );
        }
        if let Some(next) = log.next {
            println!("(more: --before {next})");
        }
        Ok(())
    }

    fn report(&self, r: &Report) -> anyhow::Result<()> {
        if self.json {
            return self.print_json(r);
        }
        println!("{}", report_line(r));
        Ok(())
    }

    fn reports(&self, list: &ReportList) -> anyhow::Result<()> {
        if self.json {
            return self.print_json(list);
        }
        for r in &list.reports {
            println!("{}", report_line(r));
        }
        if let Some(next) = list.next {
            println!("(more: --before {next})");
        }
        Ok(())
    }

    fn done(&self, text: &str) -> anyhow::Result<()> {
        if self.json {
            return self.print_json(&serde_json::json!({ "ok": true }));
        }
        println!("{text}");
        Ok(())
    }
}

fn user_line(u: &AdminUser) -> String {
    let mut flags = Vec::new();
    if u.is_admin {
        flags.push("admin");
    }
    if u.disabled {
        flags.push("disabled");
    }
    format!(
        "{}  {}  {}  {}",
        u.user.id,
        u.user.username,
        u.user.display_name,
        flags.join(",")
    )
}

fn report_line(r: &Report) -> String {
    let at = r.created_at.format(&Rfc3339).unwrap_or_default();
    let content = r.message.as_ref().map_or("", |m| m.content.as_str());
    format!(
        "{}  {at}  {}  by {}  in room {}  {:?}  message {}: {:?}",
        r.id,
        r.status.as_str(),
        r.reporter_id,
        r.room_id,
        r.reason,
        r.message_id,
        content
    )
}
