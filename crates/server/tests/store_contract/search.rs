//! Store cases about the search index: filled by the append, kept in step by edits and
//! deletions, read newest first in windows, within rooms.

use palaver_proto::{Message, MessageType, Role};
use palaver_server::store::{IndexQuery, NewMessage, SearchBatch, Store, tokens};
use uuid::Uuid;

use super::{Fixture, group, msg, send, user};

fn text(room: Uuid, sender: Uuid, key: &str, content: &str) -> NewMessage {
    NewMessage {
        content: content.into(),
        ..msg(room, sender, key)
    }
}

/// One look for `q` in `rooms`.
async fn look(
    s: &dyn Store,
    q: &str,
    rooms: &[Uuid],
    before: Option<Uuid>,
    window: u32,
    limit: u32,
) -> SearchBatch {
    let query = tokens::query(q);
    s.search_messages(&IndexQuery {
        tokens: &query.tokens,
        rooms,
        before,
        window,
        limit,
    })
    .await
    .expect("search")
}

fn contents(messages: &[Message]) -> Vec<&str> {
    messages.iter().map(|m| m.content.as_str()).collect()
}

pub(super) async fn search_index_follows_appends_edits_and_deletions(fx: &mut Fixture) {
    let s = fx.store.as_ref();
    let a = user(s, "alice").await;
    let b = user(s, "bob").await;
    let r1 = group(s, &[(a.id, Role::Owner), (b.id, Role::Member)]).await;
    let r2 = group(s, &[(b.id, Role::Owner)]).await;
    let both = [r1, r2];
    let stored = send(
        s,
        vec![
            text(r1, a.id, "k1", "Lunch at noon?"),
            text(r1, b.id, "k2", "東京都に行きます"),
            text(r2, b.id, "k3", "lunch is over"),
            text(r1, a.id, "k4", "明日の会議"),
            // A picture without a caption: nothing to index.
            NewMessage {
                kind: MessageType::Image,
                content: String::new(),
                ..msg(r1, a.id, "k5")
            },
        ],
    )
    .await;

    // Words ignore case; newest first; only the rooms asked for.
    let found = look(s, "LUNCH", &both, None, 100, 10).await;
    assert_eq!(
        contents(&found.messages),
        ["lunch is over", "Lunch at noon?"]
    );
    assert!(found.resume.is_none(), "nothing older");
    let found = look(s, "lunch", &[r1], None, 100, 10).await;
    assert_eq!(contents(&found.messages), ["Lunch at noon?"]);
    assert!(
        look(s, "lunch", &[], None, 100, 10)
            .await
            .messages
            .is_empty()
    );
    // CJK: one and two characters, and the bigrams of a longer run.
    for q in ["東", "東京", "京都", "東京都"] {
        let found = look(s, q, &both, None, 100, 10).await;
        assert_eq!(contents(&found.messages), ["東京都に行きます"], "{q}");
    }
    assert_eq!(
        contents(&look(s, "会議", &both, None, 100, 10).await.messages),
        ["明日の会議"]
    );
    assert!(
        look(s, "dinner", &both, None, 100, 10)
            .await
            .messages
            .is_empty()
    );

    // An edit re-indexes: the old words are gone, the new ones found.
    s.edit_message(stored[0].id, "Dinner at eight?", &[], false, 1)
        .await
        .expect("edit");
    assert_eq!(
        contents(&look(s, "lunch", &both, None, 100, 10).await.messages),
        ["lunch is over"]
    );
    assert_eq!(
        contents(&look(s, "dinner", &both, None, 100, 10).await.messages),
        ["Dinner at eight?"]
    );
    // Editing a message that had nothing indexed (a caption added) indexes it.
    s.edit_message(stored[4].id, "a caption at last", &[], false, 2)
        .await
        .expect("caption");
    assert_eq!(
        contents(&look(s, "caption", &both, None, 100, 10).await.messages),
        ["a caption at last"]
    );
    // A deletion removes it.
    s.delete_message(stored[1].id, 3).await.expect("delete");
    assert!(
        look(s, "東京", &both, None, 100, 10)
            .await
            .messages
            .is_empty()
    );
    s.delete_message(stored[4].id, 4).await.expect("delete");
    assert!(
        look(s, "caption", &both, None, 100, 10)
            .await
            .messages
            .is_empty()
    );
}

pub(super) async fn search_pages_in_windows(fx: &mut Fixture) {
    let s = fx.store.as_ref();
    let a = user(s, "alice").await;
    let b = user(s, "bob").await;
    let mine = group(s, &[(a.id, Role::Owner)]).await;
    let other = group(s, &[(b.id, Role::Owner)]).await;
    // Ten of mine and ten of someone else's, interleaved, oldest first.
    let mut batch = Vec::new();
    for i in 0..10 {
        batch.push(text(
            mine,
            a.id,
            &format!("m{i}"),
            &format!("needle mine {i}"),
        ));
        batch.push(text(
            other,
            b.id,
            &format!("o{i}"),
            &format!("needle other {i}"),
        ));
    }
    send(s, batch).await;
    let mine_newest_first: Vec<String> =
        (0..10).rev().map(|i| format!("needle mine {i}")).collect();

    // The limit is reached: go on from the last message answered.
    let page = look(s, "needle", &[mine], None, 100, 3).await;
    assert_eq!(contents(&page.messages), mine_newest_first[..3]);
    assert_eq!(page.resume, Some(page.messages[2].id));
    let page = look(s, "needle", &[mine], page.resume, 100, 3).await;
    assert_eq!(contents(&page.messages), mine_newest_first[3..6]);

    // The window fills before the limit: the look answers what it examined and says
    // where to go on. (SQLite's window counts every room's entries, PostgreSQL's only the
    // rooms asked for; either way, going on from `resume` finds the rest, once each.)
    let mut seen = Vec::new();
    let mut before = None;
    let mut looks = 0;
    loop {
        let page = look(s, "needle", &[mine], before, 4, 10).await;
        assert!(page.messages.len() <= 4, "{:?}", contents(&page.messages));
        seen.extend(page.messages.iter().map(|m| m.content.clone()));
        looks += 1;
        match page.resume {
            Some(next) => before = Some(next),
            None => break,
        }
        assert!(looks < 10, "the looks end");
    }
    assert_eq!(seen, mine_newest_first);
    assert!(
        looks >= 3,
        "ten matches take at least three windows of four"
    );

    // The end: everything older read, nothing to resume.
    let all = look(s, "needle", &[mine, other], None, 100, 50).await;
    assert_eq!(all.messages.len(), 20);
    assert!(all.resume.is_none());
    let oldest = all.messages.last().expect("oldest").id;
    let past = look(s, "needle", &[mine, other], Some(oldest), 100, 50).await;
    assert!(past.messages.is_empty() && past.resume.is_none());
}
