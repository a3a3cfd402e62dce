//! Message search (`GET /api/v1/search`) on the real server: words and CJK substrings,
//! paging newest first, one room or all, edits and deletions (`finding.rs`); who may find
//! what, every bad input and the rate limit (`access.rs`).

mod access;
mod finding;

use palaver_client::search_path;
use palaver_proto::{Message, SearchQuery, SearchResponse};
use reqwest::Method;
use uuid::Uuid;

use crate::helpers::*;

/// A search with every parameter given as is.
fn query(q: &str, room: Option<Uuid>, limit: Option<u32>, before: Option<Uuid>) -> SearchQuery {
    SearchQuery {
        q: q.into(),
        room_id: room,
        limit,
        before,
    }
}

/// The answer to a search that must succeed.
async fn search(user: &TestUser, query: &SearchQuery) -> SearchResponse {
    user.api.search(query).await.expect("search")
}

/// The contents found for `q`, newest first, across all the user's rooms.
async fn found(user: &TestUser, q: &str) -> Vec<String> {
    contents(&search(user, &query(q, None, Some(50), None)).await.messages)
}

/// The same, in one room.
async fn found_in(user: &TestUser, q: &str, room: Uuid) -> Vec<String> {
    contents(
        &search(user, &query(q, Some(room), Some(50), None))
            .await
            .messages,
    )
}

fn contents(messages: &[Message]) -> Vec<String> {
    messages.iter().map(|m| m.content.clone()).collect()
}

/// Any search path (already encoded), as status and JSON.
async fn raw(user: &TestUser, path: &str) -> (u16, serde_json::Value) {
    user.api
        .raw(Method::GET, path, None)
        .await
        .expect("request")
}

/// `texts` sent in order by `user`, oldest first.
async fn say(user: &TestUser, room: Uuid, texts: &[&str]) -> Vec<Message> {
    let mut out = Vec::new();
    for t in texts {
        out.push(user.send(room, t).await);
    }
    out
}

fn path(q: &SearchQuery) -> String {
    search_path(q)
}
