//! Encryption at rest (`[encryption]`) on the embedded engines, end to end: a server on an
//! encrypted data directory round-trips messages and files across a restart while no
//! plaintext reaches the database, its WAL or the media directory; a wrong key, no key
//! and a key for a plain database are refused without a byte changing; `palaver rekey`
//! rotates (and, interrupted, carries on) and encrypts a plain directory; an encrypted
//! directory's backup verifies, stays encrypted and restores.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use palaver_proto::{Media, MessageType};
use palaver_server::Application;
use palaver_server::at_rest::AtRestKey;
use serde_json::json;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::helpers::*;
use super::{get_bytes, os, png, stderr};

/// A key file in a directory of its own, outside any data directory.
struct KeyFile {
    _dir: tempfile::TempDir,
    path: PathBuf,
    key: AtRestKey,
}

fn key_file() -> KeyFile {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("at-rest.key");
    let key = AtRestKey::generate();
    std::fs::write(&path, key.to_file_text()).expect("write key");
    KeyFile {
        _dir: dir,
        path,
        key,
    }
}

/// `palaver` with `args`, and `key` (if any) configured through the environment.
fn palaver_keyed(key: Option<&Path>, args: &[&std::ffi::OsStr]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_palaver"));
    command.args(args).env("PALAVER_LOG", "warn");
    if let Some(key) = key {
        command.env("PALAVER_ENCRYPTION__KEY_FILE", key);
    }
    command.output().expect("run palaver")
}

/// What a conversation left behind, to find again (and to look for on disk).
struct Conversation {
    alice: TestUser,
    room: Uuid,
    /// Text no file should hold in the clear.
    secret_text: String,
    /// An uploaded file of several chunks, and its upload.
    file: Vec<u8>,
    file_media: Media,
    /// An uploaded picture (stored re-encoded: its stored bytes are what is downloaded).
    picture_media: Media,
}

async fn converse(app: &TestApp) -> Conversation {
    let tag = Uuid::now_v7().simple().to_string();
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let room = alice.dm(&bob).await.id;
    let secret_text = format!("the launch code is {tag} and nobody may read it on disk");
    alice.send(room, &secret_text).await;
    // Just over three chunks of 64 KiB, each line distinct, so any window is findable.
    let mut file = Vec::new();
    let mut line = 0;
    while file.len() < 3 * 65536 + 1234 {
        file.extend_from_slice(format!("{tag} confidential line {line:08}\n").as_bytes());
        line += 1;
    }
    let file_media = alice
        .api
        .upload("plans.txt", "text/plain", file.clone())
        .await
        .expect("upload file");
    let picture_media = alice
        .api
        .upload("holiday.png", "image/png", png(300, 200, 7))
        .await
        .expect("upload picture");
    for (media, kind) in [
        (&file_media, MessageType::File),
        (&picture_media, MessageType::Image),
    ] {
        let body = json!({"roomId": room, "clientMsgId": Uuid::now_v7().to_string(),
            "type": kind, "mediaId": media.id, "content": ""});
        let (status, _) = alice
            .api
            .raw(reqwest::Method::POST, "/api/v1/messages/send", Some(&body))
            .await
            .expect("send media");
        assert_eq!(status, 201);
    }
    Conversation {
        alice,
        room,
        secret_text,
        file,
        file_media,
        picture_media,
    }
}

/// Everything the conversation stored is read back, through `app`.
async fn read_back(app: &TestApp, c: &Conversation) {
    let alice = app.client().with_token(c.alice.auth.access_token.clone());
    let history = alice
        .history(c.room, None, Some(0), Some(100))
        .await
        .expect("history")
        .messages;
    assert!(
        history.iter().any(|m| m.content == c.secret_text),
        "the message reads back"
    );
    let (status, _, bytes) = get_bytes(app, &alice, &c.file_media.url).await;
    assert_eq!(status, 200);
    assert!(bytes == c.file, "the file reads back byte for byte");
    let (status, _, picture) = get_bytes(app, &alice, &c.picture_media.url).await;
    assert_eq!(status, 200);
    assert_eq!(picture.len() as u64, c.picture_media.size);
    // A range across the first chunk boundary decrypts to the same bytes.
    let (from, to) = (65536 - 100, 2 * 65536 + 100);
    let resp = reqwest::Client::new()
        .get(format!("{}{}", app.base, c.file_media.url))
        .bearer_auth(c.alice.auth.access_token.clone())
        .header("Range", format!("bytes={from}-{to}"))
        .send()
        .await
        .expect("range request");
    assert_eq!(resp.status().as_u16(), 206);
    let part = resp.bytes().await.expect("range body");
    assert!(part[..] == c.file[from..=to], "the range reads back");
}

/// Pieces of plaintext that must not be on disk: the message, windows of the file (at
/// its start, across a chunk boundary, at its end) and of the stored picture.
async fn needles(app: &TestApp, c: &Conversation) -> Vec<(String, Vec<u8>)> {
    let alice = app.client().with_token(c.alice.auth.access_token.clone());
    let (_, _, picture) = get_bytes(app, &alice, &c.picture_media.url).await;
    let mid = picture.len() / 2;
    vec![
        ("message".into(), c.secret_text.as_bytes().to_vec()),
        ("file start".into(), c.file[..48].to_vec()),
        (
            "file across chunks".into(),
            c.file[65536 - 24..65536 + 24].to_vec(),
        ),
        ("file end".into(), c.file[c.file.len() - 48..].to_vec()),
        ("picture".into(), picture[mid..mid + 48].to_vec()),
        ("file name".into(), b"holiday.png".to_vec()),
    ]
}

/// Every regular file under `dir` with its bytes.
fn files_under(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            match entry.file_type() {
                Ok(t) if t.is_dir() => stack.push(path),
                Ok(t) if t.is_file() => {
                    if let Ok(bytes) = std::fs::read(&path) {
                        out.push((path, bytes));
                    }
                }
                _ => {}
            }
        }
    }
    out
}

/// Asserts none of `needles` is in any file under `dir`; returns how many files and
/// bytes were scanned.
fn assert_no_plaintext(dir: &Path, needles: &[(String, Vec<u8>)]) -> (usize, usize) {
    let files = files_under(dir);
    let mut bytes = 0;
    for (path, content) in &files {
        bytes += content.len();
        for (what, needle) in needles {
            assert!(
                !content
                    .windows(needle.len())
                    .any(|w| w == needle.as_slice()),
                "{what} found in the clear in {}",
                path.display()
            );
        }
    }
    (files.len(), bytes)
}

fn sha256_of(path: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(path).expect("read")))
}

/// The database's bytes once the stopped server's last connection has closed (which
/// checkpoints the WAL into the file and removes it, a moment after `stop` returns).
async fn settled_db_hash(dir: &Path) -> String {
    let wal = dir.join("palaver.db-wal");
    for _ in 0..100 {
        if !wal.exists() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(!wal.exists(), "the WAL is checkpointed away after a stop");
    sha256_of(&dir.join("palaver.db"))
}

async fn build_error(dir: &Path, key_file: Option<&Path>) -> String {
    let mut config = test_config(dir);
    config.encryption.key_file = key_file.map(Path::to_owned);
    match Application::build(config).await {
        Ok(_) => panic!("the server started"),
        Err(e) => e.to_string(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_encrypted_data_dir_round_trips_and_keeps_no_plaintext_on_disk() {
    let key = key_file();
    let key_path = key.path.clone();
    let app = spawn_app_with(|c| c.encryption.key_file = Some(key_path)).await;
    let c = converse(&app).await;
    read_back(&app, &c).await;
    let needles = needles(&app, &c).await;

    // While running: the database, its WAL (holding the latest commits) and the media.
    let db = app.data_dir().join("palaver.db");
    assert!(
        app.data_dir().join("palaver.db-wal").is_file(),
        "the WAL is there to scan"
    );
    let (files, bytes) = assert_no_plaintext(app.data_dir(), &needles);
    assert!(
        files >= 5 && bytes > 3 * 65536,
        "{files} files, {bytes} bytes"
    );
    // Neither the database file nor a media object looks like what it would in the clear.
    assert!(
        !std::fs::read(&db)
            .expect("db")
            .starts_with(b"SQLite format 3")
    );
    for (path, content) in files_under(&app.data_dir().join("media/objects")) {
        assert!(
            content.starts_with(b"palaver\0"),
            "{} is sealed",
            path.display()
        );
    }

    // Stopped (the WAL checkpointed into the file), then again.
    let dir = app.stop().await;
    let db_hash = settled_db_hash(dir.path()).await;
    assert_no_plaintext(dir.path(), &needles);

    // No key, a wrong key: refused with a clear error, and nothing written.
    let none = build_error(dir.path(), None).await;
    assert!(
        none.contains("encrypted") && none.contains("no encryption key"),
        "{none}"
    );
    let wrong = key_file();
    let refused = build_error(dir.path(), Some(&wrong.path)).await;
    assert!(
        refused.contains("cannot be read with the configured encryption key")
            && refused.contains(&wrong.key.id().to_string()),
        "{refused}"
    );
    assert!(!refused.contains(&wrong.key.to_file_text().trim().to_string()));
    assert_eq!(sha256_of(&dir.path().join("palaver.db")), db_hash);

    // The right key: everything reads back after the restart.
    let key_path = key.path.clone();
    let app = spawn_in(dir, |c| c.encryption.key_file = Some(key_path)).await;
    read_back(&app, &c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_for_a_plain_database_is_refused_and_rekey_encrypts_it() {
    // A data directory made before encryption at rest: plain database, plain objects.
    let app = spawn_app().await;
    let c = converse(&app).await;
    let needles = needles(&app, &c).await;
    let dir = app.stop().await;
    let db = dir.path().join("palaver.db");
    let db_hash = settled_db_hash(dir.path()).await;
    assert!(
        std::fs::read(&db)
            .expect("db")
            .starts_with(b"SQLite format 3\0")
    );

    let key = key_file();
    let refused = build_error(dir.path(), Some(&key.path)).await;
    assert!(refused.contains("is not encrypted"), "{refused}");
    assert_eq!(sha256_of(&db), db_hash, "nothing written");

    // `palaver rekey` with no key configured encrypts the database and seals the media.
    let run = palaver_keyed(
        None,
        &[
            os("rekey"),
            os("--new-key-file"),
            key.path.as_os_str(),
            os("--data-dir"),
            dir.path().as_os_str(),
        ],
    );
    assert!(run.status.success(), "rekey: {}", stderr(&run));
    assert_no_plaintext(dir.path(), &needles);
    let key_path = key.path.clone();
    let app = spawn_in(dir, |c| c.encryption.key_file = Some(key_path)).await;
    read_back(&app, &c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rekey_rotates_carries_on_when_interrupted_and_the_new_key_reads_everything() {
    let old = key_file();
    let old_path = old.path.clone();
    let app = spawn_app_with(|c| c.encryption.key_file = Some(old_path)).await;
    let c = converse(&app).await;
    let needles = needles(&app, &c).await;
    let dir = app.stop().await;

    // A copy of one object as the old key sealed it, to put back afterwards: the state
    // of a rotation interrupted between the database and that object.
    let name = hex::encode(Sha256::digest(&c.file));
    let object = dir
        .path()
        .join("media/objects")
        .join(&name[0..2])
        .join(&name[2..4])
        .join(&name);
    let old_bytes = std::fs::read(&object).expect("the file's object");

    let new = key_file();
    let rekey = |key: &Path, new: &Path| {
        palaver_keyed(
            Some(key),
            &[
                os("rekey"),
                os("--new-key-file"),
                new.as_os_str(),
                os("--data-dir"),
                dir.path().as_os_str(),
            ],
        )
    };
    let run = rekey(&old.path, &new.path);
    assert!(run.status.success(), "rekey: {}", stderr(&run));
    let said = String::from_utf8_lossy(&run.stdout).into_owned();
    assert!(said.contains(&new.key.id().to_string()), "{said}");
    assert!(said.contains("database rekeyed"), "{said}");

    // Every object is sealed with the new key now; the old key opens nothing.
    for (path, content) in files_under(&dir.path().join("media/objects")) {
        assert_eq!(&content[10..14], &new.key.id().0, "{}", path.display());
    }
    let refused = build_error(dir.path(), Some(&old.path)).await;
    assert!(refused.contains("another key"), "{refused}");
    assert_no_plaintext(dir.path(), &needles);

    // Interrupted mid-media: one object still under the old key. With the new key alone
    // it does not open; with the old as previous_key_file it does; a second run of the
    // same command finishes the job.
    std::fs::write(&object, &old_bytes).expect("put the old object back");
    let run = rekey(&old.path, &new.path);
    assert!(run.status.success(), "second rekey: {}", stderr(&run));
    let said = String::from_utf8_lossy(&run.stdout).into_owned();
    assert!(
        said.contains("already had the new key") && said.contains("1 resealed"),
        "{said}"
    );
    std::fs::write(&object, &old_bytes).expect("put the old object back again");
    let (new_path, old_path) = (new.path.clone(), old.path.clone());
    let app = spawn_in(dir, |c| {
        c.encryption.key_file = Some(new_path);
        c.encryption.previous_key_file = Some(old_path);
    })
    .await;
    read_back(&app, &c).await;
    let dir = app.stop().await;
    let run = palaver_keyed(
        Some(&old.path),
        &[
            os("rekey"),
            os("--new-key-file"),
            new.path.as_os_str(),
            os("--data-dir"),
            dir.path().as_os_str(),
        ],
    );
    assert!(run.status.success(), "third rekey: {}", stderr(&run));

    // Restarted on the new key alone: everything reads.
    let new_path = new.path.clone();
    let app = spawn_in(dir, |c| c.encryption.key_file = Some(new_path)).await;
    read_back(&app, &c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_encrypted_data_dirs_backup_is_encrypted_verifies_and_restores() {
    let key = key_file();
    let key_path = key.path.clone();
    let app = spawn_app_with(|c| c.encryption.key_file = Some(key_path)).await;
    let c = converse(&app).await;
    let needles = needles(&app, &c).await;

    // Taken while the server runs.
    let work = tempfile::tempdir().expect("tempdir");
    let file = work.path().join("backup.tar.gz");
    let run = palaver_keyed(
        Some(&key.path),
        &[
            os("backup"),
            os("--out"),
            file.as_os_str(),
            os("--data-dir"),
            app.data_dir().as_os_str(),
        ],
    );
    assert!(run.status.success(), "backup: {}", stderr(&run));

    // The archive, unpacked, holds no plaintext: VACUUM INTO wrote an encrypted copy.
    let unpacked = work.path().join("unpacked");
    std::fs::create_dir(&unpacked).expect("mkdir");
    let gz = flate2::read::GzDecoder::new(std::fs::File::open(&file).expect("open"));
    tar::Archive::new(gz).unpack(&unpacked).expect("unpack");
    let db = std::fs::read(unpacked.join("palaver.db")).expect("db in the backup");
    assert!(
        !db.starts_with(b"SQLite format 3"),
        "the backup's database is encrypted"
    );
    assert_no_plaintext(&unpacked, &needles);

    let verified = palaver_keyed(
        Some(&key.path),
        &[os("backup"), os("--verify"), file.as_os_str()],
    );
    assert!(verified.status.success(), "verify: {}", stderr(&verified));
    let unkeyed = palaver_keyed(None, &[os("backup"), os("--verify"), file.as_os_str()]);
    assert!(!unkeyed.status.success());
    assert!(
        stderr(&unkeyed).contains("no encryption key"),
        "{}",
        stderr(&unkeyed)
    );
    let wrong = key_file();
    let wrong_run = palaver_keyed(
        Some(&wrong.path),
        &[os("backup"), os("--verify"), file.as_os_str()],
    );
    assert!(!wrong_run.status.success());

    let restored = DataDir::new();
    let target = restored.path().join("data");
    let run = palaver_keyed(
        Some(&key.path),
        &[
            os("restore"),
            file.as_os_str(),
            os("--data-dir"),
            target.as_os_str(),
        ],
    );
    assert!(run.status.success(), "restore: {}", stderr(&run));
    assert_no_plaintext(&target, &needles);
    let key_path = key.path.clone();
    let app2 = spawn_in(restored, move |c| {
        c.data_dir = target;
        c.encryption.key_file = Some(key_path);
    })
    .await;
    read_back(&app2, &c).await;
    drop(app);
}

#[tokio::test]
async fn a_key_file_in_the_data_directory_is_refused() {
    let dir = DataDir::new();
    let inside = dir.path().join("at-rest.key");
    std::fs::write(&inside, AtRestKey::generate().to_file_text()).expect("write");
    let run = palaver_keyed(
        Some(&inside),
        &[os("config"), os("--data-dir"), dir.path().as_os_str()],
    );
    assert!(!run.status.success());
    assert!(stderr(&run).contains("inside data_dir"), "{}", stderr(&run));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rekey_refuses_a_data_dir_a_server_is_running_on() {
    let old = key_file();
    let old_path = old.path.clone();
    let app = spawn_app_with(|c| c.encryption.key_file = Some(old_path)).await;
    let c = converse(&app).await;
    let new = key_file();
    let run = palaver_keyed(
        Some(&old.path),
        &[
            os("rekey"),
            os("--new-key-file"),
            new.path.as_os_str(),
            os("--data-dir"),
            app.data_dir().as_os_str(),
        ],
    );
    assert!(!run.status.success(), "rekey ran beside a server");
    let why = stderr(&run);
    assert!(
        why.contains("stop the server") || why.contains("locked"),
        "{why}"
    );
    // Nothing changed: the server reads on, and restarts on the old key.
    read_back(&app, &c).await;
    let dir = app.stop().await;
    let old_path = old.path.clone();
    let app = spawn_in(dir, |c| c.encryption.key_file = Some(old_path)).await;
    read_back(&app, &c).await;
}
