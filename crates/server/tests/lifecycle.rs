//! Start and stop the application many times in one process, using it each time (an
//! account, a room, an open socket, messages both ways), and find nothing left behind:
//! no task on the runtime and no file descriptor (sockets, the database, listeners)
//! beyond what the process held before.
//!
//! A binary of its own, with one test, so the process's descriptors are this test's
//! alone. It runs on the embedded engines, then on the cluster engines (PostgreSQL, NATS,
//! Redis) when they answer; under `CI=true` they must.

#[path = "api/helpers.rs"]
mod helpers;
mod support;

use std::time::Duration;

use helpers::{DataDir, TestApp, WAIT, cluster_engines, spawn_in};
use palaver_proto::{ServerFrame, close};

/// The embedded helpers' suite switch: this binary picks engines per cycle itself.
const CLUSTER_ENGINES: bool = false;

/// Cycles per engine set.
const EMBEDDED_CYCLES: usize = 12;
const CLUSTER_CYCLES: usize = 4;

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

fn alive_tasks() -> usize {
    tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
}

/// What the process holds: running tasks and open descriptors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Held {
    tasks: usize,
    fds: usize,
}

fn held() -> Held {
    Held {
        tasks: alive_tasks(),
        fds: open_fds(),
    }
}

/// Waits a little for what a stopped server let go of to be gone (a task aborted on
/// drop ends at its next poll; a socket's peer closes after ours), then compares.
async fn settles_to(baseline: Held) -> Held {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let now = held();
        if (now.tasks <= baseline.tasks && now.fds <= baseline.fds)
            || tokio::time::Instant::now() > deadline
        {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One start, some use, one stop; the socket is still open when the server stops.
async fn cycle(dir: DataDir, tweak: impl FnOnce(&mut palaver_server::Config)) -> DataDir {
    let app: TestApp = spawn_in(dir, tweak).await;
    // The data directory (and namespace) is kept from cycle to cycle: new names each time.
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let alice = app.user(&format!("alice{n}")).await;
    let bob = app.user(&format!("bob{n}")).await;
    let room = alice.dm(&bob).await;
    let mut bob_ws = bob.connect().await;
    alice.send(room.id, "hello").await;
    bob_ws
        .wait_for(WAIT, |f| matches!(f, ServerFrame::Message { .. }))
        .await
        .expect("bob hears alice");
    let dir = app.stop().await;
    // The server said goodbye before it stopped.
    match bob_ws.next_within(WAIT).await {
        Err(palaver_client::ClientError::Closed(Some((code, _)))) => {
            assert_eq!(code, close::GOING_AWAY)
        }
        other => panic!("expected close {}, got {other:?}", close::GOING_AWAY),
    }
    drop((bob_ws, alice, bob));
    dir
}

async fn many_cycles(what: &str, cycles: usize, cluster: Option<String>) {
    let engines = cluster.as_ref().and_then(|_| cluster_engines());
    let tweak = |ns: &Option<String>| {
        let ns = ns.clone();
        move |c: &mut palaver_server::Config| {
            if let (Some(ns), Some(e)) = (ns, engines) {
                e.configure(c);
                c.namespace = ns;
                c.bus_stream_max_bytes = 8 << 20;
            }
        }
    };
    // The first cycle makes what a process makes once (the metrics recorder, the TLS
    // provider, pools of blocking threads, the client's resolver), and is not counted.
    let mut dir = cycle(DataDir::new(), tweak(&cluster)).await;
    let baseline = settles_to(held()).await;
    for n in 1..=cycles {
        dir = cycle(dir, tweak(&cluster)).await;
        let after = settles_to(baseline).await;
        assert!(
            after.tasks <= baseline.tasks && after.fds <= baseline.fds,
            "{what}, after stop {n}: {after:?} held, {baseline:?} before"
        );
    }
    drop(dir);
    if let (Some(ns), Some(engines)) = (cluster, engines) {
        helpers::clean_namespace(engines, &ns).await;
    }
}

#[test]
fn starting_and_stopping_leaves_nothing_behind() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        many_cycles("embedded engines", EMBEDDED_CYCLES, None).await;
        if cluster_engines().is_some() {
            let ns = format!("apit_{}_lifecycle", std::process::id());
            many_cycles("cluster engines", CLUSTER_CYCLES, Some(ns)).await;
        }
    });
}
