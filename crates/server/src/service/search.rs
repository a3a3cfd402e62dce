//! Message search: who may find what, the bounds of one query, and pages newest first.
//!
//! The query is cut by the index's own rule (`store::tokens`), then the store is asked
//! for windows of index entries, newest first, in the caller's rooms (or the one asked
//! for), until the page is full, the index has nothing older, or [`MAX_EXAMINED`] entries
//! have been looked at; that last bound, with the limits on the query's length and terms,
//! is what one request may cost, whatever it asks. Candidates are checked against their
//! phrases (CJK runs of three characters or more), then filled in as history fills
//! messages (`Core::with_status`).

use std::collections::HashMap;

use palaver_proto::search::{
    SEARCH_DEFAULT_LIMIT, SEARCH_MAX_LIMIT, SEARCH_MAX_QUERY_BYTES, SEARCH_MAX_TERMS,
};
use palaver_proto::{Message, SearchQuery, SearchResponse};
use uuid::Uuid;

use super::{Core, Identity, ServiceError, ServiceResult};
use crate::cache::RateBucket;
use crate::store::{IndexQuery, tokens};

/// Index entries examined per look into the store.
const WINDOW: u32 = 1_000;
/// Index entries one request may examine in all.
pub const MAX_EXAMINED: u32 = 10_000;

impl Core {
    /// Messages the caller can read that match `req.q`, newest first.
    pub async fn search(&self, who: Identity, req: &SearchQuery) -> ServiceResult<SearchResponse> {
        self.limit(RateBucket::Search, &who.user_id.to_string())
            .await?;
        let q = req.q.trim();
        if q.is_empty() {
            return Err(ServiceError::Validation("q must not be blank".into()));
        }
        if q.len() > SEARCH_MAX_QUERY_BYTES {
            return Err(ServiceError::Validation(format!(
                "q must be at most {SEARCH_MAX_QUERY_BYTES} bytes"
            )));
        }
        let limit = req.limit.unwrap_or(SEARCH_DEFAULT_LIMIT);
        if !(1..=SEARCH_MAX_LIMIT).contains(&limit) {
            return Err(ServiceError::Validation(format!(
                "limit must be 1 to {SEARCH_MAX_LIMIT}"
            )));
        }
        let query = tokens::query(q);
        if query.tokens.is_empty() {
            return Err(ServiceError::Validation(
                "q has no words or characters to search for".into(),
            ));
        }
        if query.tokens.len() > SEARCH_MAX_TERMS {
            return Err(ServiceError::Validation(format!(
                "q has more than {SEARCH_MAX_TERMS} terms"
            )));
        }
        let rooms = match req.room_id {
            Some(room) => {
                self.require_member(room, who.user_id)?;
                vec![room]
            }
            None => self.membership.rooms_of(who.user_id),
        };
        let mut before = match req.before {
            // A position the caller may know of: a message they can read now.
            Some(id) => Some(self.message(who, id).await?.id),
            None => None,
        };

        let mut found: Vec<Message> = Vec::new();
        let mut examined = 0;
        let mut truncated = false;
        while !rooms.is_empty() && found.len() < limit as usize {
            if examined >= MAX_EXAMINED {
                truncated = true;
                break;
            }
            let window = WINDOW.min(MAX_EXAMINED - examined);
            let batch = self
                .store
                .search_messages(&IndexQuery {
                    tokens: &query.tokens,
                    rooms: &rooms,
                    before,
                    window,
                    limit: limit - found.len() as u32,
                })
                .await?;
            examined += window;
            found.extend(
                batch
                    .messages
                    .into_iter()
                    .filter(|m| query.matches(&m.content)),
            );
            match batch.resume {
                Some(next) => before = Some(next),
                None => break,
            }
        }
        if truncated {
            metrics::counter!("palaver_search_truncated_total").increment(1);
        }
        Ok(SearchResponse {
            messages: self.fill(found).await?,
            truncated,
        })
    }

    /// Messages of several rooms, filled in room by room as history fills a page, in the
    /// order given.
    async fn fill(&self, messages: Vec<Message>) -> ServiceResult<Vec<Message>> {
        let mut by_room: HashMap<Uuid, Vec<(usize, Message)>> = HashMap::new();
        for (i, m) in messages.into_iter().enumerate() {
            by_room.entry(m.room_id).or_default().push((i, m));
        }
        let mut out: Vec<(usize, Message)> = Vec::new();
        for (room, group) in by_room {
            let (places, group): (Vec<usize>, Vec<Message>) = group.into_iter().unzip();
            let filled = self.with_status(room, group).await?;
            out.extend(places.into_iter().zip(filled));
        }
        out.sort_by_key(|(i, _)| *i);
        Ok(out.into_iter().map(|(_, m)| m).collect())
    }
}
