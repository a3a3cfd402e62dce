//! Taking one's data out and deleting one's account: `GET /api/v1/users/me/export` and
//! `POST /api/v1/users/me/delete` (docs/PROTOCOL.md, "Export and account deletion").
//!
//! The export is a gzip-compressed tar file. Its JSON documents use the types of this
//! crate (`User`, `Room`, `Message`, `Media`) and the ones below:
//!
//! ```text
//! export.json                      ExportManifest: what the archive holds
//! profile.json                     User
//! rooms.json                       {"rooms": [Room]}: the rooms the user is in
//! receipts.json                    {"receipts": [ExportReceipt]}
//! reactions.json                   {"reactions": [ExportReaction]}
//! messages/<roomId>/<n>.json       {"messages": [Message]}: the user's own, by seq, pages of 1000
//! media.json                       {"media": [Media]}: the user's uploads
//! media/<mediaId>/<filename>       the bytes of each upload
//! ```

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

#[cfg(feature = "openapi")]
use utoipa::ToSchema;

/// The file name an export's `Content-Disposition` suggests.
pub const EXPORT_FILENAME: &str = "palaver-export.tar.gz";

/// Messages per `messages/<roomId>/<n>.json` page.
pub const EXPORT_PAGE: u32 = 1000;

/// `export.json`: the archive's table of contents.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ExportManifest {
    /// 1 for this layout.
    pub format_version: u32,
    pub user_id: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// One of the user's delivered/read markers (`receipts.json`): everything up to `readSeq`
/// in `roomId` was read, up to `deliveredSeq` delivered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ExportReceipt {
    pub room_id: Uuid,
    pub delivered_seq: i64,
    pub read_seq: i64,
}

/// One of the user's reactions (`reactions.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ExportReaction {
    pub room_id: Uuid,
    pub message_id: Uuid,
    pub emoji: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// `POST /api/v1/users/me/delete`: the account's password, to confirm.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct DeleteAccountRequest {
    pub password: String,
}

/// The display name a deleted account's profile shows.
pub const DELETED_USER_NAME: &str = "Deleted user";
