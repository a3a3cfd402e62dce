//! Receipt markers, for both engines.

use async_trait::async_trait;
use uuid::Uuid;

use super::map;
use super::{Columns, Engine, SqlStore};
use crate::store::{MarkerMove, Markers, ReceiptStore, StoreResult};

/// The room's summary: `$1` the room. The lowest markers over its joined members, so a
/// pending invitation does not hold a group's receipts back; but while fewer than two
/// members have joined (a 1:1 request), over everyone, so the requester's own markers
/// do not make their request look read. The service's `summary_of` says the same.
const SUMMARY: &str = "SELECT \
     COALESCE(CASE WHEN SUM(CASE WHEN state = 'joined' THEN 1 ELSE 0 END) >= 2 \
       THEN MIN(CASE WHEN state = 'joined' THEN delivered_seq END) \
       ELSE MIN(delivered_seq) END, 0) AS delivered_seq, \
     COALESCE(CASE WHEN SUM(CASE WHEN state = 'joined' THEN 1 ELSE 0 END) >= 2 \
       THEN MIN(CASE WHEN state = 'joined' THEN read_seq END) \
       ELSE MIN(read_seq) END, 0) AS read_seq \
     FROM members WHERE room_id = $1";

/// Markers moved up towards `to`, never back, and never past `last_seq`.
fn advanced(was: Markers, to: Markers, last_seq: i64) -> Markers {
    Markers {
        delivered_seq: was.delivered_seq.max(to.delivered_seq.min(last_seq)),
        read_seq: was.read_seq.max(to.read_seq.min(last_seq)),
    }
}

#[async_trait]
impl<P: Engine> ReceiptStore for SqlStore<P> {
    async fn advance_markers(
        &self,
        room: Uuid,
        user: Uuid,
        to: Markers,
    ) -> StoreResult<Option<MarkerMove>> {
        // The member's row is locked where nodes write side by side: two devices of one
        // user acknowledging on two nodes at once must not move a marker back by writing
        // a stale maximum.
        let find = format!(
            "SELECT delivered_seq, read_seq FROM members WHERE room_id = $1 AND user_id = $2 {}",
            P::row_lock("FOR UPDATE")
        );
        // The room's row is share-locked where nodes write side by side, so that the
        // change number the markers are stamped with is the room's number when they
        // commit: no change can take a number past it meanwhile, and a `sync` that read
        // a later number ran after this commit (store/conversation.rs).
        let room_row = format!(
            "SELECT last_seq, version FROM rooms WHERE id = $1 {}",
            P::row_lock("FOR SHARE")
        );
        with_db!(&self.write, |db| {
            let mut tx = db.begin().await?;
            let Some(row) = sqlx::query(&room_row)
                .bind(room)
                .fetch_optional(&mut *tx)
                .await?
            else {
                return Ok(None);
            };
            let last_seq: i64 = row.col("last_seq")?;
            let version: i64 = row.col("version")?;
            let Some(row) = sqlx::query(&find)
                .bind(room)
                .bind(user)
                .fetch_optional(&mut *tx)
                .await?
            else {
                return Ok(None);
            };
            let was = map::markers(&row)?;
            let markers = advanced(was, to, last_seq);
            let summary = sqlx::query(SUMMARY).bind(room);
            let summary_before = map::markers(&summary.fetch_one(&mut *tx).await?)?;
            let moved = markers != was;
            if moved {
                sqlx::query(
                    "UPDATE members SET delivered_seq = $1, read_seq = $2, receipt_version = $3 \
                     WHERE room_id = $4 AND user_id = $5",
                )
                .bind(markers.delivered_seq)
                .bind(markers.read_seq)
                .bind(version)
                .bind(room)
                .bind(user)
                .execute(&mut *tx)
                .await?;
            }
            let summary = sqlx::query(SUMMARY).bind(room);
            let summary_after = map::markers(&summary.fetch_one(&mut *tx).await?)?;
            tx.commit().await?;
            Ok(Some(MarkerMove {
                markers,
                moved,
                summary_before,
                summary_after,
            }))
        })
    }

    async fn summary(&self, room: Uuid) -> StoreResult<Markers> {
        with_db!(&self.read, |db| {
            let row = sqlx::query(SUMMARY).bind(room).fetch_one(db).await?;
            map::markers(&row)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_move_up_to_the_target_never_back_nor_past_the_last_seq() {
        let m = |delivered_seq, read_seq| Markers {
            delivered_seq,
            read_seq,
        };
        assert_eq!(advanced(m(2, 1), m(4, 3), 10), m(4, 3));
        assert_eq!(advanced(m(2, 1), m(40, 30), 10), m(10, 10));
        assert_eq!(advanced(m(5, 3), m(4, 0), 10), m(5, 3));
    }
}
