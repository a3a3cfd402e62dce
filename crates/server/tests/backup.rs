//! Backup and restore as an operator runs them: the real `palaver backup` binary against a
//! server taking a send storm, `palaver restore` into a fresh directory, a server started
//! on it; and the archives `--verify` and `restore` must refuse (truncated, corrupt, of
//! another format version), and the `--force` rule. `cluster` tests the cluster's
//! backup script (deploy/backup-cluster.sh); `at_rest` an encrypted data directory, its
//! key rotation and its backups.

#[path = "api/helpers.rs"]
mod helpers;
#[path = "support/mod.rs"]
mod support;

#[path = "backup/cluster.rs"]
mod cluster;

#[path = "backup/at_rest.rs"]
mod at_rest;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use palaver_proto::{Message, MessageType};
use serde_json::json;
use uuid::Uuid;

use helpers::*;

/// This binary runs on the embedded engines only: backup covers SQLite + local media.
const CLUSTER_ENGINES: bool = false;

/// Runs the `palaver` binary with `args`.
fn palaver(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_palaver"))
        .args(args)
        .env("PALAVER_LOG", "warn")
        .output()
        .expect("run palaver")
}

fn os(s: &str) -> &std::ffi::OsStr {
    s.as_ref()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `palaver backup --out FILE --data-dir DIR`, asserting success.
fn backup(data_dir: &Path, out: &Path) {
    let run = palaver(&[
        os("backup"),
        os("--out"),
        out.as_os_str(),
        os("--data-dir"),
        data_dir.as_os_str(),
    ]);
    assert!(run.status.success(), "backup failed: {}", stderr(&run));
}

/// `palaver backup --verify FILE`.
fn verify(file: &Path) -> Output {
    palaver(&[os("backup"), os("--verify"), file.as_os_str()])
}

/// `palaver restore FILE --data-dir DIR [--force]`.
fn restore(file: &Path, data_dir: &Path, force: bool) -> Output {
    let mut args = vec![
        os("restore"),
        file.as_os_str(),
        os("--data-dir"),
        data_dir.as_os_str(),
    ];
    if force {
        args.push(os("--force"));
    }
    palaver(&args)
}

/// A PNG of `w`×`h` pixels (uploads get a thumbnail: two objects per upload).
fn png(w: u32, h: u32, tint: u8) -> Vec<u8> {
    let picture = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([x as u8, y as u8, tint]));
    let mut out = std::io::Cursor::new(Vec::new());
    picture
        .write_to(&mut out, image::ImageFormat::Png)
        .expect("encode png");
    out.into_inner()
}

async fn download(app: &TestApp, user: &palaver_client::Client, url: &str) -> Vec<u8> {
    let (status, _, bytes) = get_bytes(app, user, url).await;
    assert_eq!(status, 200, "download {url}");
    bytes
}

/// GET `path` on `app` with `client`'s token.
async fn get_bytes(
    app: &TestApp,
    client: &palaver_client::Client,
    path: &str,
) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let mut req = reqwest::Client::new().get(format!("{}{path}", app.base));
    if let Some(token) = client.token() {
        req = req.bearer_auth(token);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, headers, resp.bytes().await.expect("body").to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn backup_during_a_send_storm_restores_every_acknowledged_message_and_media() {
    let app = spawn_app().await;
    let names = ["alice", "bob", "carol", "dave"];
    let users = app.users(&names).await;
    let refs: Vec<&TestUser> = users.iter().skip(1).collect();
    let group = users[0].group("storm", &refs).await;
    let dm = users[0].dm(&users[1]).await;
    let rooms = [group.id, dm.id];

    // Media shared before the storm: bytes the restored server must serve again.
    let mut media = Vec::new();
    for (i, user) in users.iter().enumerate().take(2) {
        let bytes = png(16 + i as u32, 16, i as u8 * 40);
        let uploaded = user
            .api
            .upload("pic.png", "image/png", bytes.clone())
            .await
            .expect("upload");
        let body = json!({"roomId": group.id, "clientMsgId": Uuid::now_v7().to_string(),
            "type": MessageType::Image, "mediaId": uploaded.id, "content": "look"});
        let (status, _) = user
            .api
            .raw(reqwest::Method::POST, "/api/v1/messages/send", Some(&body))
            .await
            .expect("send media");
        assert_eq!(status, 201);
        media.push((uploaded, bytes));
    }

    // The storm: every user sends as fast as acknowledgements come back, into both rooms
    // (Carol and Dave only into the group), until told to stop.
    let acked: Arc<Mutex<Vec<Message>>> = Arc::default();
    let stopping = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut senders = Vec::new();
    for (u, user) in users.iter().enumerate() {
        let api = user.api.clone();
        let acked = acked.clone();
        let stopping = stopping.clone();
        let targets: Vec<Uuid> = match u {
            0 | 1 => rooms.to_vec(),
            _ => vec![group.id],
        };
        senders.push(tokio::spawn(async move {
            let mut i = 0usize;
            while !stopping.load(std::sync::atomic::Ordering::Relaxed) {
                let room = targets[i % targets.len()];
                let text = format!("u{u}-m{i}");
                let (_, message) = api.send(room, &text, &text).await.expect("send in storm");
                acked.lock().expect("lock").push(message);
                i += 1;
            }
        }));
    }
    // Mid-storm: wait until a good number are in, then note what is acknowledged and
    // start the backup at once (from another thread: the binary blocks).
    while acked.lock().expect("lock").len() < 400 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let before: Vec<Message> = acked.lock().expect("lock").clone();
    let work = tempfile::tempdir().expect("tempdir");
    let file = work.path().join("palaver-backup.tar.gz");
    let (data_dir, out) = (app.data_dir().to_owned(), file.clone());
    tokio::task::spawn_blocking(move || backup(&data_dir, &out))
        .await
        .expect("backup thread");
    let during = acked.lock().expect("lock").len();
    stopping.store(true, std::sync::atomic::Ordering::Relaxed);
    for s in senders {
        s.await.expect("sender");
    }
    assert!(
        during > before.len(),
        "the storm went on while the backup ran ({} before, {during} after)",
        before.len()
    );

    let checked = verify(&file);
    assert!(checked.status.success(), "verify: {}", stderr(&checked));

    // Restore into a fresh directory and start a server on it.
    let restored = DataDir::new();
    let target = restored.path().join("data");
    let run = restore(&file, &target, false);
    assert!(run.status.success(), "restore: {}", stderr(&run));
    let app2 = spawn_in_path(restored, &target).await;

    // Tokens still work: the signing secret came back with the backup.
    let alice = app2.client().with_token(users[0].auth.access_token.clone());
    let carol = app2.client().with_token(users[2].auth.access_token.clone());
    let mut restored_by_id = BTreeMap::new();
    for (room, reader) in [(group.id, &carol), (dm.id, &alice)] {
        let mut all = Vec::new();
        let mut after = Some(0);
        loop {
            let page = reader
                .history(room, None, after, Some(100))
                .await
                .expect("history after restore")
                .messages;
            let Some(last) = page.last() else { break };
            after = Some(last.seq);
            all.extend(page);
        }
        let seqs: Vec<i64> = all.iter().map(|m| m.seq).collect();
        let expected: Vec<i64> = (1..=seqs.len() as i64).collect();
        assert_eq!(seqs, expected, "room {room}: seqs from 1 without a gap");
        for m in all {
            restored_by_id.insert(m.id, m);
        }
    }
    for m in &before {
        let got = restored_by_id
            .get(&m.id)
            .unwrap_or_else(|| panic!("acknowledged message {} (seq {}) lost", m.id, m.seq));
        assert_eq!(
            (got.seq, &got.content, got.room_id),
            (m.seq, &m.content, m.room_id)
        );
    }

    // The media opens, byte for byte, thumbnails too.
    for (uploaded, bytes) in &media {
        assert_eq!(&download(&app2, &carol, &uploaded.url).await, bytes);
        if let Some(thumb) = &uploaded.thumbnail_url {
            assert!(!download(&app2, &carol, thumb).await.is_empty());
        }
    }
    // And the restored server takes new messages after the restored ones.
    let (_, next) = alice
        .send(dm.id, "after-restore", "hello again")
        .await
        .expect("send");
    assert!(next.seq > 1);
    drop(app);
}

/// Starts a server over `path` (a directory inside `dir`, which keeps it alive).
async fn spawn_in_path(dir: DataDir, path: &Path) -> TestApp {
    let path = path.to_owned();
    spawn_in(dir, move |c| c.data_dir = path).await
}

/// A small backup of a server with one message and one upload, in `work`.
async fn small_backup(work: &Path) -> PathBuf {
    let app = spawn_app().await;
    let (alice, bob) = (app.user("alice").await, app.user("bob").await);
    let room = alice.dm(&bob).await;
    alice.send(room.id, "hello").await;
    alice
        .api
        .upload("pic.png", "image/png", png(8, 8, 7))
        .await
        .expect("upload");
    let file = work.join("small.tar.gz");
    backup(app.data_dir(), &file);
    file
}

/// Asserts that `verify` and `restore` both refuse `file`, naming `reason`, and that
/// restore left the target directory empty.
fn assert_refused(file: &Path, reason: &str) {
    let checked = verify(file);
    assert!(!checked.status.success(), "verify accepted a bad backup");
    assert!(
        stderr(&checked).contains(reason),
        "verify said: {}",
        stderr(&checked)
    );
    let target = tempfile::tempdir().expect("tempdir");
    let run = restore(file, target.path(), false);
    assert!(!run.status.success(), "restore accepted a bad backup");
    assert!(
        stderr(&run).contains(reason),
        "restore said: {}",
        stderr(&run)
    );
    let left: Vec<_> = std::fs::read_dir(target.path())
        .expect("read dir")
        .collect();
    assert!(
        left.is_empty(),
        "a refused restore left files behind: {left:?}"
    );
}

/// An archive's entries as (name, bytes), in order.
type Entries = Vec<(String, Vec<u8>)>;

/// The archive's entries as (name, bytes), decompressed.
fn entries(file: &Path) -> Entries {
    let gz = flate2::read::GzDecoder::new(std::fs::File::open(file).expect("open"));
    let mut archive = tar::Archive::new(gz);
    let mut out = Vec::new();
    for entry in archive.entries().expect("entries") {
        let mut entry = entry.expect("entry");
        let name = entry.path().expect("path").to_string_lossy().into_owned();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).expect("read");
        out.push((name, bytes));
    }
    out
}

/// Writes `entries` as a backup archive at `file`.
fn write_entries(file: &Path, entries: &[(String, Vec<u8>)]) {
    let gz = flate2::write::GzEncoder::new(
        std::fs::File::create(file).expect("create"),
        flate2::Compression::fast(),
    );
    let mut tar = tar::Builder::new(gz);
    for (name, bytes) in entries {
        // The name is written raw: the tar crate refuses a `..` that a hostile archive has.
        let mut header = tar::Header::new_gnu();
        header.as_gnu_mut().expect("gnu").name[..name.len()].copy_from_slice(name.as_bytes());
        header.set_size(bytes.len() as u64);
        header.set_mode(0o600);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_cksum();
        tar.append(&header, bytes.as_slice()).expect("append");
    }
    tar.into_inner()
        .expect("tar")
        .finish()
        .expect("gzip")
        .flush()
        .expect("flush");
}

#[tokio::test]
async fn truncated_corrupt_and_foreign_backups_are_refused_with_the_reason() {
    let work = tempfile::tempdir().expect("tempdir");
    let file = small_backup(work.path()).await;
    let good = std::fs::read(&file).expect("read");
    assert!(verify(&file).status.success(), "the good backup verifies");

    // Cut short, at several places: inside the gzip stream, and just before its trailer.
    for cut in [good.len() / 3, good.len() - 12, good.len() - 1] {
        let bad = work.path().join(format!("cut-{cut}.tar.gz"));
        std::fs::write(&bad, &good[..cut]).expect("write");
        assert_refused(&bad, "truncated");
    }
    // Bytes flipped in the compressed stream.
    let bad = work.path().join("flipped.tar.gz");
    let mut flipped = good.clone();
    let at = flipped.len() / 2;
    flipped[at] ^= 0xff;
    std::fs::write(&bad, &flipped).expect("write");
    assert_refused(&bad, "corrupt");
    // Not an archive at all.
    let bad = work.path().join("notes.txt");
    std::fs::write(&bad, b"just some text, not a backup").expect("write");
    assert_refused(&bad, "corrupt");

    let original = entries(&file);
    let rebuild = |name: &str, change: &dyn Fn(&mut Entries)| {
        let mut e = original.clone();
        change(&mut e);
        let path = work.path().join(name);
        write_entries(&path, &e);
        path
    };
    // A well-formed archive whose database differs from its manifest's hash.
    let bad = rebuild("db-changed.tar.gz", &|e| {
        let db = e.iter_mut().find(|(n, _)| n == "palaver.db").expect("db");
        let last = db.1.len() - 1;
        db.1[last] ^= 1;
    });
    assert_refused(&bad, "differs from the manifest");
    // A media object dropped (and from the manifest too): the database still references it.
    let bad = rebuild("media-gone.tar.gz", &|e| {
        let gone = e
            .iter()
            .position(|(n, _)| n.starts_with("media/objects/"))
            .expect("a media entry");
        let name = e.remove(gone).0;
        let manifest = e
            .iter_mut()
            .find(|(n, _)| n == "manifest.json")
            .expect("manifest");
        let mut m: serde_json::Value = serde_json::from_slice(&manifest.1).expect("json");
        m["entries"]
            .as_array_mut()
            .expect("entries")
            .retain(|x| x["path"] != name.as_str());
        manifest.1 = serde_json::to_vec(&m).expect("json");
    });
    assert_refused(&bad, "not in the backup");
    // No manifest: the archive ends early.
    let bad = rebuild("no-manifest.tar.gz", &|e| {
        e.retain(|(n, _)| n != "manifest.json")
    });
    assert_refused(&bad, "truncated");
    // A format this palaver does not know.
    let bad = rebuild("future.tar.gz", &|e| {
        let manifest = e
            .iter_mut()
            .find(|(n, _)| n == "manifest.json")
            .expect("manifest");
        let mut m: serde_json::Value = serde_json::from_slice(&manifest.1).expect("json");
        m["formatVersion"] = json!(99);
        manifest.1 = serde_json::to_vec(&m).expect("json");
    });
    assert_refused(&bad, "format version 99");
    // An entry that would land outside the data directory.
    let bad = rebuild("escape.tar.gz", &|e| {
        e.insert(0, ("media/objects/../../escaped".into(), b"x".to_vec()));
    });
    assert_refused(&bad, "unexpected entry");
}

#[tokio::test]
async fn restore_never_replaces_a_non_empty_data_dir_without_force() {
    let work = tempfile::tempdir().expect("tempdir");
    let file = small_backup(work.path()).await;
    let target = work.path().join("data");
    std::fs::create_dir(&target).expect("mkdir");
    std::fs::write(target.join("palaver.db"), b"someone's database").expect("write");

    let run = restore(&file, &target, false);
    assert!(!run.status.success());
    assert!(stderr(&run).contains("--force"), "said: {}", stderr(&run));
    assert_eq!(
        std::fs::read(target.join("palaver.db")).expect("read"),
        b"someone's database",
        "left as it was"
    );

    // A bad backup with --force still leaves the directory as it was.
    let bad = work.path().join("bad.tar.gz");
    let good = std::fs::read(&file).expect("read");
    std::fs::write(&bad, &good[..good.len() / 2]).expect("write");
    let run = restore(&bad, &target, true);
    assert!(!run.status.success());
    assert_eq!(
        std::fs::read(target.join("palaver.db")).expect("read"),
        b"someone's database"
    );

    // --force with a good backup replaces it, and a server starts on the result.
    let run = restore(&file, &target, true);
    assert!(run.status.success(), "restore --force: {}", stderr(&run));
    let names: Vec<String> = std::fs::read_dir(&target)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.contains(&"jwt-secret".to_owned()),
        "keys restored: {names:?}"
    );
    assert!(
        !names.iter().any(|n| n.starts_with(".palaver-restore")),
        "no staging left: {names:?}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(target.join("palaver.db"))
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "the restored database is private");
    }
    let app = spawn_in_path(DataDir::new(), &target).await;
    app.client()
        .login("alice", PASSWORD)
        .await
        .expect("alice logs in on the restored server");
}
