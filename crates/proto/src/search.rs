//! Message search: `GET /api/v1/search` (docs/PROTOCOL.md, "Search").

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::model::Message;

#[cfg(feature = "openapi")]
use utoipa::{IntoParams, ToSchema};

/// The longest `q` the server takes, in bytes of UTF-8 after trimming.
pub const SEARCH_MAX_QUERY_BYTES: usize = 256;
/// The most terms (words and CJK pieces) one query may hold.
pub const SEARCH_MAX_TERMS: usize = 16;
/// `limit` when none is given.
pub const SEARCH_DEFAULT_LIMIT: u32 = 20;
/// The largest `limit`.
pub const SEARCH_MAX_LIMIT: u32 = 50;

/// Query of `GET /api/v1/search`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(IntoParams), into_params(parameter_in = Query))]
#[serde(rename_all = "camelCase")]
pub struct SearchQuery {
    /// What to find: words (a message must hold all of them, case ignored) and, in
    /// Chinese, Japanese and Korean, any substring of one character or more. At most 256
    /// bytes and 16 terms; not blank.
    #[cfg_attr(feature = "openapi", param(min_length = 1, max_length = 256))]
    pub q: String,
    /// Only this room (one the caller is a member of); every room of the caller's without it.
    #[serde(default)]
    pub room_id: Option<Uuid>,
    /// 1–50, default 20.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", param(minimum = 1, maximum = 50))]
    pub limit: Option<u32>,
    /// A message id (one the caller can see, usually the last of the previous page): only
    /// older results.
    #[serde(default)]
    pub before: Option<Uuid>,
}

/// The answer of `GET /api/v1/search`: matching messages, newest first.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct SearchResponse {
    /// At most `limit`, newest first, as history shows them.
    pub messages: Vec<Message>,
    /// True when the server stopped looking at its bound on rows examined for one request
    /// before it filled the page: older matches may exist. Page on with `before` set to
    /// the last message's id, or narrow the query (more words, a `roomId`).
    #[serde(default)]
    pub truncated: bool,
}
