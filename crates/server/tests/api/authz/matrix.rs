//! The matrix tests: every caller gets what each row says, and every route and frame type
//! has a row.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use palaver_proto::{ClientFrame, server_type};
use serde_json::Value;

use crate::helpers::*;

use super::cells::{frame_cell, rest_cell};
use super::table::{ACTORS, FRAMES, REST, Via};
use super::watch::Watch;
use super::world::{ACK_DELAY_MS, World};

#[tokio::test]
async fn every_caller_gets_what_the_matrix_says() {
    let w = World::new().await;
    let mut watch = Watch::open(&w).await;
    let shared = w.fixture().await;
    let mut wrong = Vec::new();
    let mut cells = 0;

    for row in REST {
        for (actor, cell) in ACTORS.iter().zip(row.expect) {
            let own;
            let fx = if row.fresh {
                own = w.fixture().await;
                &own
            } else {
                &shared
            };
            let got = rest_cell(&w, &mut watch, fx, row, *actor).await;
            cells += 1;
            if !cell.accepts(&got) {
                let target = match row.via {
                    _ if row.op.contains("{userId}") => {
                        format!(" [{{userId}} = {:?}]", row.target)
                    }
                    Via::Query => " [?access_token=]".to_owned(),
                    Via::Link(link) => format!(" [signed link: {link:?}]"),
                    Via::Header if row.owners => " [the owner's]".to_owned(),
                    Via::Header => String::new(),
                };
                wrong.push(format!(
                    "{}{target} as {actor:?}: expected {cell}, got {got}",
                    row.op
                ));
            }
        }
        watch.drain(&w, Duration::from_millis(20)).await;
    }
    for row in FRAMES {
        for (actor, cell) in ACTORS.iter().zip(row.expect) {
            let got = frame_cell(&w, &mut watch, &shared, row, *actor).await;
            cells += 1;
            if !cell.accepts(&got) {
                wrong.push(format!(
                    "frame {} as {actor:?}: expected {cell}, got {got}",
                    row.kind
                ));
            }
        }
        watch.drain(&w, Duration::from_millis(20)).await;
    }
    assert!(
        wrong.is_empty(),
        "{} of {cells} cells differ from the matrix:\n{}",
        wrong.len(),
        wrong.join("\n")
    );

    // Notifications that were pending for the removed member fall due after the ack delay.
    let since = w.last_fixture.lock().elapsed();
    let due = Duration::from_millis(ACK_DELAY_MS + 1000);
    tokio::time::sleep(due.saturating_sub(since)).await;
    watch.drain(&w, QUIET).await;

    // The events happened (the admin heard every kind)...
    for kind in [
        server_type::MESSAGE,
        server_type::MESSAGE_UPDATED,
        server_type::MESSAGE_DELETED,
        server_type::RECEIPT,
        server_type::TYPING,
        server_type::PRESENCE,
        server_type::ROOM_UPDATED,
    ] {
        assert!(
            watch.witness.kinds.contains(kind),
            "the admin heard no {kind}: {:?}",
            watch.witness.kinds
        );
    }
    // ...and reached neither the stranger nor the removed member.
    assert!(
        watch.stranger.leaks.is_empty() && watch.removed.leaks.is_empty(),
        "the stranger was sent: {:#?}\nthe removed member was sent, after being removed: {:#?}",
        watch.stranger.leaks,
        watch.removed.leaks
    );
    assert_eq!(
        watch.removed.left.len(),
        w.rooms().len(),
        "a room.left for every fixture room"
    );
    // The same for notifications: members were notified, the other two never.
    let hits = w.push.hits();
    assert!(
        hits.iter()
            .any(|h| h.starts_with("member-") || h.starts_with("admin-")),
        "no member was notified at all: {hits:?}"
    );
    let leaked: Vec<&String> = hits
        .iter()
        .filter(|h| h.starts_with("stranger-") || h.starts_with("removed-"))
        .collect();
    assert!(leaked.is_empty(), "notified: {leaked:?}");
}

/// Every client frame type the protocol defines (the wire crate's list), so a frame type
/// added to the protocol shows up here.
fn client_frame_types() -> BTreeSet<String> {
    ClientFrame::TYPES.iter().map(|t| (*t).to_owned()).collect()
}

/// Every `METHOD /path` the router's source declares with `.route(…)`. Resource modules
/// are merged into the `/api/v1` router; in `mod.rs` only the routes inside
/// `let api = Router::new() … ;` are, the rest are at the root.
fn routes_in_source() -> BTreeSet<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/http");
    let mut out = BTreeSet::new();
    for entry in std::fs::read_dir(&dir).expect("src/http") {
        let path = entry.expect("entry").path();
        let text = std::fs::read_to_string(&path).expect("source");
        let api = if path.ends_with("mod.rs") {
            assert!(
                text.contains(".nest(\"/api/v1\", api)"),
                "src/http/mod.rs no longer nests `api` under /api/v1; update routes_in_source"
            );
            let start = text
                .find("let api = Router::new()")
                .expect("the api router");
            start..start + text[start..].find(';').expect("end of the api router")
        } else {
            0..text.len()
        };
        let mut at = 0;
        while let Some(found) = text[at..].find(".route(") {
            let start = at + found + ".route(".len();
            let mut depth = 1;
            let end = text[start..]
                .char_indices()
                .find_map(|(i, c)| {
                    depth += match c {
                        '(' => 1,
                        ')' => -1,
                        _ => 0,
                    };
                    (depth == 0).then_some(start + i)
                })
                .expect("a closed .route(…)");
            let call = &text[start..end];
            let route = call.split('"').nth(1).expect("a path literal");
            let prefix = if api.contains(&start) { "/api/v1" } else { "" };
            for method in ["get", "post", "put", "patch", "delete"] {
                let named = call.match_indices(&format!("{method}(")).any(|(i, _)| {
                    i == 0
                        || !call[..i]
                            .chars()
                            .next_back()
                            .is_some_and(|c| c.is_alphanumeric() || c == '_')
                });
                if named {
                    out.insert(format!("{} {prefix}{route}", method.to_uppercase()));
                }
            }
            at = end;
        }
    }
    out
}

#[tokio::test]
async fn every_route_and_frame_has_a_row() {
    let app = spawn_app().await;
    let doc: Value = reqwest::get(format!("{}/api/v1/openapi.json", app.base))
        .await
        .expect("GET openapi.json")
        .json()
        .await
        .expect("JSON");
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in ["get", "post", "put", "patch", "delete"] {
            if item.get(method).is_some() {
                documented.insert(format!("{} {path}", method.to_uppercase()));
            }
        }
    }
    let routed = routes_in_source();
    // The scan is sound: it finds every documented route, and the undocumented socket.
    let unseen: Vec<&String> = documented.difference(&routed).collect();
    assert!(
        unseen.is_empty(),
        "routes_in_source missed documented routes: {unseen:?}"
    );
    assert!(routed.contains("GET /api/v1/ws"), "{routed:?}");

    let rows: BTreeSet<String> = REST.iter().map(|r| r.op.to_owned()).collect();
    let missing: Vec<&String> = routed.iter().filter(|op| !rows.contains(*op)).collect();
    assert!(
        missing.is_empty(),
        "routes with no row in authz::table::REST: {missing:?}"
    );
    let stale: Vec<&String> = rows.iter().filter(|op| !routed.contains(*op)).collect();
    assert!(
        stale.is_empty(),
        "rows for routes that do not exist: {stale:?}"
    );

    let types = client_frame_types();
    assert!(
        types.contains("send") && types.contains("ping"),
        "{types:?}"
    );
    let framed: BTreeSet<String> = FRAMES.iter().map(|r| r.kind.to_owned()).collect();
    assert_eq!(
        types, framed,
        "every client frame type has exactly one row in authz::table::FRAMES"
    );
}
