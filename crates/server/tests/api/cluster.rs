//! Two nodes on the cluster engines (PostgreSQL, NATS JetStream, Redis) sharing one
//! deployment namespace: what one user does on node A reaches the other on node B.

use palaver_proto::{ReceiptKind, ServerFrame};
use reqwest::Method;
use uuid::Uuid;

use crate::helpers::*;

/// Two nodes of one deployment in a namespace of their own, or `None` (skipped loudly)
/// without the engines.
pub(crate) async fn two_nodes() -> Option<(&'static ClusterEngines, String, TestApp, TestApp)> {
    let engines = cluster_engines()?;
    let ns = format!("t{}", Uuid::now_v7().simple());
    let on_cluster = |c: &mut palaver_server::Config| {
        engines.configure(c);
        c.namespace = ns.clone();
        // Every node signs and checks tokens with the same secret.
        c.jwt_secret = Some("one secret for every node of this cluster, 32+ bytes".into());
    };
    let node_a = spawn_app_with(on_cluster).await;
    let node_b = spawn_app_with(on_cluster).await;
    Some((engines, ns, node_a, node_b))
}

#[tokio::test]
async fn alice_on_node_a_and_bob_on_node_b_chat_with_receipts_and_presence() {
    let Some((engines, ns, node_a, node_b)) = two_nodes().await else {
        return;
    };

    let alice = node_a.user("alice").await;
    let bob = node_b.user("bob").await;
    let room = alice.dm(&bob).await;
    let mut a = alice.connect().await;
    let mut b = bob.connect().await;

    // A message sent on A reaches Bob on B, and his receipts reach Alice on A.
    let sent = alice.send(room.id, "hello from node A").await;
    let got = next_message(&mut b).await;
    assert_eq!((got.id, got.seq), (sent.id, 1));
    receipt(&mut b, room.id, got.seq, ReceiptKind::Read).await;
    a.wait_for(WAIT, |f| {
        matches!(f, ServerFrame::ReceiptSummary { read_seq: 1, .. })
    })
    .await
    .expect("read summary on node A");

    // Typing crosses nodes over core NATS.
    let id = b
        .send_frame(palaver_proto::ClientFrame::Typing {
            room_id: room.id,
            active: true,
        })
        .await
        .expect("typing");
    let _ = b.answer(&id, WAIT).await;
    a.wait_for(WAIT, |f| {
        matches!(f, ServerFrame::Typing { active: true, .. })
    })
    .await
    .expect("typing on node A");

    // Presence is shared through Redis: node A knows Bob (connected to B) is online.
    let (status, presence) = alice
        .api
        .raw(Method::GET, &format!("/api/v1/presence/{}", bob.id), None)
        .await
        .expect("presence");
    assert_eq!(status, 200, "{presence}");
    assert_eq!(presence["status"], "online", "{presence}");

    // Both nodes write to the room at once: seqs stay unique and gap-free.
    let (x, y) = tokio::join!(
        async {
            for i in 0..20 {
                alice.send(room.id, &format!("a{i}")).await;
            }
        },
        async {
            for i in 0..20 {
                bob.send(room.id, &format!("b{i}")).await;
            }
        }
    );
    let _ = (x, y);
    let history = alice
        .api
        .history(room.id, None, None, Some(100))
        .await
        .expect("history");
    let seqs: Vec<i64> = history.messages.iter().map(|m| m.seq).collect();
    assert_eq!(seqs, (1..=41).collect::<Vec<_>>());

    drop((a, b));
    drop((node_a, node_b));
    clean_namespace(engines, &ns).await;
}

#[tokio::test]
async fn one_send_retried_at_once_on_both_nodes_is_stored_once() {
    let Some((engines, ns, node_a, node_b)) = two_nodes().await else {
        return;
    };
    let alice = node_a.user("alice").await;
    let bob = node_b.user("bob").await;
    let room = alice.dm(&bob).await;
    // Alice's client on each node, as after a reconnect through a load balancer.
    let via = [
        alice.api.clone(),
        node_b.client().with_token(&alice.auth.access_token),
    ];
    for key in 0..20 {
        let copies = 1 + key % 5;
        let cmid = Uuid::now_v7().to_string();
        let text = format!("retried {copies} times");
        let answers =
            futures::future::join_all((0..copies).map(|i| via[i % 2].send(room.id, &cmid, &text)))
                .await;
        let answers: Vec<(u16, palaver_proto::Message)> = answers
            .into_iter()
            .map(|a| a.expect("every copy is answered"))
            .collect();
        let created = answers.iter().filter(|(status, _)| *status == 201).count();
        assert_eq!(
            created, 1,
            "one copy creates, the others are retries: {answers:?}"
        );
        let first = &answers[0].1;
        for (_, m) in &answers {
            assert_eq!((m.id, m.seq), (first.id, first.seq), "one message per key");
        }
    }
    let history = alice
        .api
        .history(room.id, None, None, Some(100))
        .await
        .expect("history");
    let seqs: Vec<i64> = history.messages.iter().map(|m| m.seq).collect();
    assert_eq!(seqs, (1..=20).collect::<Vec<_>>(), "20 keys, 20 messages");
    drop((node_a, node_b));
    clean_namespace(engines, &ns).await;
}

#[tokio::test]
async fn every_node_accepts_the_media_links_of_the_others() {
    let Some((_, _, node_a, node_b)) = two_nodes().await else {
        return;
    };
    let alice = node_a.user("alice").await;
    // Any file will do; a PDF needs no decoding.
    let pdf = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n";
    let media = alice
        .api
        .upload("doc.pdf", "application/pdf", pdf.to_vec())
        .await
        .expect("upload");
    let get = |base: &str, url: &str| {
        let url = format!("{base}{url}");
        async move { reqwest::get(url).await.expect("request").status().as_u16() }
    };
    assert_eq!(get(&node_a.base, &media.url).await, 200);
    // Node B checks node A's signature with the key both derive from the shared secret.
    // (The bytes are in node A's local media store, so B finds the record but not the
    // bytes: 404. With a shared S3 store it serves them.)
    assert_eq!(get(&node_b.base, &media.url).await, 404);
    let tampered = media.url.replace("sig=", "sig=A");
    assert_eq!(get(&node_b.base, &tampered).await, 401);
}
