//! What a search finds: words in any case (all of them), CJK substrings of one, two and
//! more characters without false positives, pages newest first, one room or all, and the
//! index following edits, deletions and captions.

use palaver_proto::{MessageStatus, ReceiptKind};
use reqwest::Method;
use serde_json::json;

use super::*;

#[tokio::test]
async fn words_ignore_case_and_every_word_must_be_there() {
    let app = spawn_app().await;
    let (alice, bob) = (app.user("alice").await, app.user("bob").await);
    let room = alice.dm(&bob).await.id;
    say(
        &alice,
        room,
        &[
            "Lunch tomorrow at noon?",
            "I had LUNCH already",
            "Tomorrow is a holiday",
            "Déjà vu: the café's lunch",
        ],
    )
    .await;

    assert_eq!(
        found(&bob, "lunch").await,
        [
            "Déjà vu: the café's lunch",
            "I had LUNCH already",
            "Lunch tomorrow at noon?"
        ]
    );
    assert_eq!(found(&bob, "LuNcH").await, found(&bob, "lunch").await);
    // Several words: messages holding all of them, in any order.
    assert_eq!(
        found(&bob, "tomorrow lunch").await,
        ["Lunch tomorrow at noon?"]
    );
    assert_eq!(
        found(&bob, "  NOON,  lunch!  ").await,
        ["Lunch tomorrow at noon?"]
    );
    // Whole words, accents kept; punctuation only separates.
    assert!(found(&bob, "lunc").await.is_empty());
    assert_eq!(found(&bob, "CAFÉ").await, ["Déjà vu: the café's lunch"]);
    assert!(found(&bob, "cafe").await.is_empty());
    assert!(found(&bob, "dinner").await.is_empty());

    // Results are full messages, as history gives them (status included).
    let mut socket = bob.connect().await;
    receipt(&mut socket, room, 4, ReceiptKind::Read).await;
    let answer = search(&alice, &query("lunch", None, None, None)).await;
    let history = alice
        .api
        .history(room, None, None, None)
        .await
        .expect("history");
    let newest = history.messages.last().expect("newest");
    assert_eq!(&answer.messages[0], newest);
    assert_eq!(answer.messages[0].status, MessageStatus::Read);
    assert!(!answer.truncated);
}

#[tokio::test]
async fn cjk_substrings_of_any_length_match_and_pieces_apart_do_not() {
    let app = spawn_app().await;
    let (alice, bob) = (app.user("alice").await, app.user("bob").await);
    let room = alice.dm(&bob).await.id;
    let texts = [
        "明日の会議は東京都庁で行います", // Japanese
        "明天的会议取消了",               // Chinese (simplified)
        "東京と京都に行った",             // 東京 and 京都, but not 東京都
        "한국어를 배우고 있어요",         // Korean
        "ﾃｽﾄ中です",                      // half-width Katakana
    ];
    say(&alice, room, &texts).await;
    let [ja, zh, apart, ko, kana] = texts;

    // One character.
    assert_eq!(found(&bob, "東").await, [apart, ja]);
    assert_eq!(found(&bob, "会").await, [zh, ja]);
    assert_eq!(found(&bob, "한").await, [ko]);
    // Two characters.
    assert_eq!(found(&bob, "東京").await, [apart, ja]);
    assert_eq!(found(&bob, "会议").await, [zh]);
    assert_eq!(found(&bob, "会議").await, [ja]);
    assert_eq!(found(&bob, "한국").await, [ko]);
    assert_eq!(found(&bob, "京都").await, [apart, ja]);
    // Three and more: the run as it is, not its pieces found apart.
    assert_eq!(found(&bob, "東京都").await, [ja]);
    assert_eq!(found(&bob, "東京都庁").await, [ja]);
    assert_eq!(found(&bob, "取消了").await, [zh]);
    assert_eq!(found(&bob, "한국어를").await, [ko]);
    assert_eq!(found(&bob, "京都庁").await, [ja]);
    assert!(found(&bob, "東京京都").await.is_empty());
    assert!(found(&bob, "大阪").await.is_empty());
    // Full-width and half-width forms meet (NFKC): ﾃｽﾄ is テスト.
    assert_eq!(found(&bob, "テスト").await, [kana]);
    // CJK and words together.
    say(&alice, room, &["東京 meeting at 3"]).await;
    assert_eq!(found(&bob, "meeting 東京").await, ["東京 meeting at 3"]);
}

#[tokio::test]
async fn pages_are_newest_first_and_go_on_before_a_message() {
    let app = spawn_app().await;
    let (alice, bob) = (app.user("alice").await, app.user("bob").await);
    let room = alice.dm(&bob).await.id;
    let texts: Vec<String> = (1..=7).map(|i| format!("report number {i}")).collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let sent = say(&alice, room, &refs).await;
    say(&alice, room, &["nothing to see"]).await;

    let mut pages = Vec::new();
    let mut before = None;
    loop {
        let page = search(&bob, &query("REPORT", None, Some(3), before)).await;
        if page.messages.is_empty() {
            break;
        }
        assert!(page.messages.len() <= 3);
        before = page.messages.last().map(|m| m.id);
        pages.push(contents(&page.messages));
        assert!(pages.len() <= 3, "{pages:?}");
    }
    let newest_first: Vec<String> = texts.iter().rev().cloned().collect();
    assert_eq!(pages.concat(), newest_first);
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [3, 3, 1]);
    // Before a message that is not itself a match: what is older than it.
    let page = search(&bob, &query("report", None, None, Some(sent[2].id))).await;
    assert_eq!(
        contents(&page.messages),
        ["report number 2", "report number 1"]
    );
    // The default page is 20.
    let many: Vec<String> = (0..25).map(|i| format!("bulk {i}")).collect();
    let refs: Vec<&str> = many.iter().map(String::as_str).collect();
    say(&alice, room, &refs).await;
    let page = search(&bob, &query("bulk", None, None, None)).await;
    assert_eq!(page.messages.len(), 20);
    assert_eq!(page.messages[0].content, "bulk 24");
}

#[tokio::test]
async fn one_room_or_every_room() {
    let app = spawn_app().await;
    let (alice, bob, carol) = (
        app.user("alice").await,
        app.user("bob").await,
        app.user("carol").await,
    );
    let with_bob = alice.dm(&bob).await.id;
    let group = alice.group("plans", &[&bob, &carol]).await.id;
    let with_carol = alice.dm(&carol).await.id;
    say(&alice, with_bob, &["picnic in the park"]).await;
    say(&carol, group, &["picnic on sunday?"]).await;
    say(&carol, with_carol, &["picnic secret"]).await;

    assert_eq!(
        found(&alice, "picnic").await,
        ["picnic secret", "picnic on sunday?", "picnic in the park"]
    );
    // Bob is not in Alice's 1:1 room with Carol.
    assert_eq!(
        found(&bob, "picnic").await,
        ["picnic on sunday?", "picnic in the park"]
    );
    assert_eq!(found_in(&bob, "picnic", group).await, ["picnic on sunday?"]);
    assert_eq!(
        found_in(&alice, "picnic", with_carol).await,
        ["picnic secret"]
    );
    // Results carry their room.
    let answer = search(&alice, &query("picnic", None, None, None)).await;
    let rooms: Vec<_> = answer.messages.iter().map(|m| m.room_id).collect();
    assert_eq!(rooms, [with_carol, group, with_bob]);
}

#[tokio::test]
async fn edits_deletions_and_captions_are_reflected() {
    let app = spawn_app().await;
    let (alice, bob) = (app.user("alice").await, app.user("bob").await);
    let room = alice.dm(&bob).await.id;
    let [first, second] =
        <[_; 2]>::try_from(say(&alice, room, &["meet at the station", "meet at the 駅前"]).await)
            .expect("two");

    // An edit: the old words are gone, the new ones found.
    let path = format!("/api/v1/messages/{}", first.id);
    let (status, body) = alice
        .api
        .raw(
            Method::PATCH,
            &path,
            Some(&json!({"content": "meet at the harbour"})),
        )
        .await
        .expect("edit");
    assert_eq!(status, 200, "{body}");
    assert!(found(&bob, "station").await.is_empty());
    assert_eq!(found(&bob, "harbour").await, ["meet at the harbour"]);
    let edited = search(&bob, &query("harbour", None, None, None)).await;
    assert!(edited.messages[0].edited_at.is_some());

    // A deletion: never found again, by any word.
    let path = format!("/api/v1/messages/{}", second.id);
    let (status, body) = alice
        .api
        .raw(Method::DELETE, &path, None)
        .await
        .expect("delete");
    assert_eq!(status, 200, "{body}");
    assert!(found(&bob, "駅前").await.is_empty());
    assert_eq!(found(&bob, "meet").await, ["meet at the harbour"]);

    // A picture's caption is searchable, and the result carries its media.
    let picture = alice
        .api
        .upload("cat.png", "image/png", png())
        .await
        .expect("upload");
    let body = json!({"roomId": room, "clientMsgId": "pic-1", "type": "image",
        "mediaId": picture.id, "content": "Our cat on the sofa 猫"});
    let (status, sent) = alice
        .api
        .raw(Method::POST, "/api/v1/messages/send", Some(&body))
        .await
        .expect("send picture");
    assert_eq!(status, 201, "{sent}");
    for q in ["sofa", "猫"] {
        let answer = search(&bob, &query(q, None, None, None)).await;
        assert_eq!(
            contents(&answer.messages),
            ["Our cat on the sofa 猫"],
            "{q}"
        );
        let media = answer.messages[0].media.as_ref().expect("media filled in");
        assert_eq!(media.id, picture.id);
    }
}

/// A small PNG.
fn png() -> Vec<u8> {
    let picture = image::RgbImage::from_fn(4, 4, |x, y| image::Rgb([x as u8, y as u8, 9]));
    let mut out = std::io::Cursor::new(Vec::new());
    picture
        .write_to(&mut out, image::ImageFormat::Png)
        .expect("encode png");
    out.into_inner()
}
