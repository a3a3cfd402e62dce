//! The cluster's backups, with `deploy/backup-cluster.sh` as an operator runs it:
//! point-in-time recovery of PostgreSQL from a base backup and archived WAL (on a scratch
//! PostgreSQL cluster of the test's own, since that needs `archive_command` and
//! replication), one deployment's schema dumped from the machine's PostgreSQL and restored
//! into a scratch database a server then runs on, and the S3 media bucket copied out and
//! back (SeaweedFS, with the aws CLI).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sha2::{Digest, Sha256};

use crate::helpers::*;
use crate::support::seaweed::{S3_KEY, S3_SECRET, SeaweedFs};

/// The script under test.
fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy/backup-cluster.sh")
}

fn run(command: &mut Command) -> Output {
    let out = command.output().expect("run");
    assert!(
        out.status.success(),
        "{command:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A PostgreSQL program: Debian's versioned directory (newest), else `PATH`.
fn pg_program(name: &str) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.path().join("bin"))
                .collect()
        })
        .unwrap_or_default();
    dirs.sort_by_key(|d| {
        d.parent()
            .and_then(|p| p.file_name())
            .and_then(|n| n.to_str())
            .and_then(|n| n.parse::<u32>().ok())
            .unwrap_or(0)
    });
    dirs.iter()
        .rev()
        .map(|d| d.join(name))
        .chain(
            std::env::var("PATH")
                .unwrap_or_default()
                .split(':')
                .map(|d| Path::new(d).join(name)),
        )
        .find(|p| p.is_file())
}

/// PostgreSQL refuses to run as root: as root, programs run as the `postgres` user.
fn as_postgres(program: &Path) -> Command {
    if rustix::process::getuid().is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

/// Gives `path` to the `postgres` user when running as root.
fn hand_to_postgres(path: &Path) {
    if rustix::process::getuid().is_root() {
        run(Command::new("chown").args(["-R", "postgres:"]).arg(path));
    }
}

fn psql(url: &str, sql: &str) -> String {
    let psql = pg_program("psql").expect("psql");
    text(&run(Command::new(psql).args([
        url,
        "-v",
        "ON_ERROR_STOP=1",
        "-Atc",
        sql,
    ])))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A PostgreSQL server of the test's own on `data`, stopped when dropped.
struct ScratchPg {
    data: PathBuf,
    port: u16,
}

impl ScratchPg {
    fn start(data: &Path, port: u16) -> ScratchPg {
        let pg_ctl = pg_program("pg_ctl").expect("pg_ctl");
        let log = data.with_extension("log");
        run(as_postgres(&pg_ctl)
            .arg("-D")
            .arg(data)
            .arg("-l")
            .arg(&log)
            .args(["-w", "-t", "60", "-o", &format!("-p {port}"), "start"]));
        ScratchPg {
            data: data.to_owned(),
            port,
        }
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for ScratchPg {
    fn drop(&mut self) {
        if let Some(pg_ctl) = pg_program("pg_ctl") {
            let _ = as_postgres(&pg_ctl)
                .arg("-D")
                .arg(&self.data)
                .args(["-w", "-m", "fast", "stop"])
                .output();
        }
    }
}

#[test]
fn postgres_recovers_to_a_point_in_time_from_a_base_backup_and_archived_wal() {
    let (Some(initdb), Some(_)) = (pg_program("initdb"), pg_program("pg_basebackup")) else {
        crate::support::skip(
            "point-in-time recovery",
            "PostgreSQL's server programs (initdb, pg_ctl, pg_basebackup) not found",
        );
        return;
    };
    let work = tempfile::tempdir().expect("tempdir");
    hand_to_postgres(work.path());
    let data = work.path().join("data");
    let archive = work.path().join("wal");
    run(as_postgres(&initdb)
        .args(["-A", "trust", "-U", "postgres", "-D"])
        .arg(&data));
    // What the script's WAL archiving needs, as docs/DEPLOYMENT.md says to set it.
    let conf = format!(
        "\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{dir}'\n\
         wal_level = replica\narchive_mode = on\n\
         archive_command = 'PALAVER_WAL_ARCHIVE={archive} {script} wal-archive %p %f'\n",
        dir = work.path().display(),
        archive = archive.display(),
        script = script().display(),
    );
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(data.join("postgresql.conf"))
        .expect("postgresql.conf");
    std::io::Write::write_all(&mut file, conf.as_bytes()).expect("write conf");
    let pg = ScratchPg::start(&data, free_port());
    let url = pg.url();
    psql(
        &url,
        "CREATE TABLE t (x text); INSERT INTO t VALUES ('before the base backup')",
    );

    let base = work.path().join("base");
    let said = run(as_postgres(&script()).arg("pg-base").arg(&url).arg(&base));
    assert!(text(&said).contains("verified"), "{}", text(&said));

    psql(&url, "INSERT INTO t VALUES ('after the base backup')");
    let target = psql(&url, "SELECT now()");
    // A moment later, so the target falls between the two commits.
    std::thread::sleep(std::time::Duration::from_millis(50));
    psql(&url, "INSERT INTO t VALUES ('after the target')");
    let segment = psql(&url, "SELECT pg_walfile_name(pg_switch_wal())");
    let deadline = std::time::Instant::now() + WAIT * 3;
    while !archive.join(&segment).exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "WAL segment {segment} was not archived"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    drop(pg);

    let recovered = work.path().join("recovered");
    // Through env(1): runuser may not pass the caller's environment on.
    run(as_postgres(Path::new("/usr/bin/env"))
        .arg(format!("PALAVER_WAL_ARCHIVE={}", archive.display()))
        .arg(script())
        .arg("pg-recover")
        .arg(&base)
        .arg(&recovered)
        .arg(&target));
    let pg = ScratchPg::start(&recovered, free_port());
    // It reads while it replays; it is done when it is promoted.
    let deadline = std::time::Instant::now() + WAIT * 3;
    while psql(&pg.url(), "SELECT pg_is_in_recovery()") != "f" {
        assert!(
            std::time::Instant::now() < deadline,
            "recovery did not finish"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let rows = psql(&pg.url(), "SELECT string_agg(x, ', ' ORDER BY x) FROM t");
    assert_eq!(rows, "after the base backup, before the base backup");
}

#[tokio::test]
async fn a_deployments_schema_dumps_and_restores_into_a_scratch_database() {
    let url = std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let reachable = url::Url::parse(&url)
        .ok()
        .and_then(|u| Some(format!("{}:{}", u.host_str()?, u.port().unwrap_or(5432))));
    if reachable.is_none_or(|a| std::net::TcpStream::connect(a).is_err())
        || pg_program("pg_dump").is_none()
    {
        crate::support::skip(
            "the schema dump",
            &format!("{url} does not answer, or pg_dump is missing"),
        );
        return;
    }
    let n = std::process::id();
    let namespace = format!("bkt_{n}");
    let scratch = format!("palaver_restore_{n}");
    let store = url.clone();
    let ns = namespace.clone();
    let app = spawn_app_with(move |c| {
        c.store = store.parse().expect("store url");
        c.namespace = ns;
    })
    .await;
    let (alice, bob) = (app.user("alice").await, app.user("bob").await);
    let room = alice.dm(&bob).await;
    for i in 0..20 {
        alice.send(room.id, &format!("m{i}")).await;
    }
    let before = bob
        .api
        .history(room.id, None, Some(0), Some(100))
        .await
        .expect("history")
        .messages;

    let work = tempfile::tempdir().expect("tempdir");
    let dump = work.path().join("palaver.dump");
    // Online: the server keeps running while its schema is dumped.
    run(Command::new(script())
        .env("PALAVER_NAMESPACE", &namespace)
        .arg("pg-dump")
        .arg(&url)
        .arg(&dump));
    app.stop().await;

    let mut scratch_url = url::Url::parse(&url).expect("url");
    scratch_url.set_path(&format!("/{scratch}"));
    let scratch_url = scratch_url.to_string();
    psql(&url, &format!("DROP DATABASE IF EXISTS {scratch}"));
    psql(&url, &format!("CREATE DATABASE {scratch}"));
    run(Command::new(script())
        .arg("pg-restore")
        .arg(&dump)
        .arg(&scratch_url));

    let (store, ns) = (scratch_url.clone(), namespace.clone());
    let restored = spawn_app_with(move |c| {
        c.store = store.parse().expect("store url");
        c.namespace = ns;
    })
    .await;
    let auth = restored
        .client()
        .login("bob", PASSWORD)
        .await
        .expect("bob logs in");
    let after = restored
        .client()
        .with_token(&auth.access_token)
        .history(room.id, None, Some(0), Some(100))
        .await
        .expect("history")
        .messages;
    assert_eq!(before, after, "every message, seq for seq");
    restored.stop().await;
    psql(&url, &format!("DROP DATABASE {scratch} WITH (FORCE)"));
    psql(&url, &format!("DROP SCHEMA \"{namespace}\" CASCADE"));
}

#[tokio::test]
async fn the_media_bucket_is_copied_out_and_back_with_the_cluster_script() {
    let aws_works = Command::new("aws")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !aws_works {
        crate::support::skip(
            "the media bucket copy",
            "the aws CLI is not installed (pip install awscli)",
        );
        return;
    }
    let Some(weed) = SeaweedFs::start().await else {
        return;
    };
    let mut media = palaver_server::config::MediaConfig::default();
    weed.configure(&mut media);
    let app = spawn_app_with(move |c| c.media = media).await;
    let (alice, bob) = (app.user("alice").await, app.user("bob").await);
    let room = alice.dm(&bob).await;
    let bytes = crate::png(20, 10, 9);
    // The bucket may take a moment to exist after the server answers (longer on a busy
    // machine).
    let deadline = std::time::Instant::now() + WAIT * 12;
    let upload = loop {
        match alice
            .api
            .upload("pic.png", "image/png", bytes.clone())
            .await
        {
            Ok(m) => break m,
            Err(e) => {
                assert!(std::time::Instant::now() < deadline, "upload: {e:?}");
                tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            }
        }
    };
    let body = serde_json::json!({"roomId": room.id, "clientMsgId": "pic", "type": "image",
        "mediaId": upload.id, "content": "look"});
    let (status, _) = alice
        .api
        .raw(reqwest::Method::POST, "/api/v1/messages/send", Some(&body))
        .await
        .expect("send");
    assert_eq!(status, 201);

    let endpoint = format!("http://127.0.0.1:{}", weed.s3);
    let env = [
        ("PALAVER_MEDIA__S3_ENDPOINT", endpoint.as_str()),
        ("PALAVER_MEDIA__S3_BUCKET", "media"),
        ("AWS_ACCESS_KEY_ID", S3_KEY),
        ("AWS_SECRET_ACCESS_KEY", S3_SECRET),
        ("AWS_DEFAULT_REGION", "us-east-1"),
    ];
    let copy = tempfile::tempdir().expect("tempdir");
    let dest = copy.path().join("media");
    run(Command::new(script())
        .envs(env)
        .arg("media-sync")
        .arg(&dest));
    let object = dest
        .join(&upload.sha256[0..2])
        .join(&upload.sha256[2..4])
        .join(&upload.sha256);
    let copied = std::fs::read(&object).expect("the object in the copy");
    assert_eq!(hex::encode(Sha256::digest(&copied)), upload.sha256);

    // The bucket loses everything; the copy brings it back.
    run(Command::new("aws").envs(env).args([
        "--endpoint-url",
        &endpoint,
        "s3",
        "rm",
        "--recursive",
        "--only-show-errors",
        "s3://media",
    ]));
    let (status, _, _) = crate::get_bytes(&app, &bob.api, &upload.url).await;
    assert_ne!(status, 200, "the object is gone from the bucket");
    run(Command::new(script())
        .envs(env)
        .arg("media-restore")
        .arg(&dest));
    let (status, _, served) = crate::get_bytes(&app, &bob.api, &upload.url).await;
    assert_eq!(status, 200);
    assert_eq!(hex::encode(Sha256::digest(&served)), upload.sha256);
}
