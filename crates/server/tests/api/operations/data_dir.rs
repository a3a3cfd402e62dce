//! The data directory is private to the server, uploads on their way in included.

use std::time::Duration;

use crate::helpers::*;

/// Permission bits of a path.
#[cfg(unix)]
fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// Every file under `dir` and `dir` itself, with what its mode should be.
#[cfg(unix)]
fn everything_in(dir: &std::path::Path, out: &mut Vec<(std::path::PathBuf, u32)>) {
    out.push((dir.to_path_buf(), 0o700));
    for entry in std::fs::read_dir(dir).expect("read_dir") {
        let entry = entry.expect("entry");
        if entry.file_type().expect("type").is_dir() {
            everything_in(&entry.path(), out);
        } else {
            out.push((entry.path(), 0o600));
        }
    }
}

#[cfg(unix)]
#[tokio::test]
async fn the_data_directory_is_private_to_the_server() {
    use std::os::unix::fs::PermissionsExt;
    // An operator's directory made with a lax umask, holding a secret an older version
    // left readable.
    let dir = DataDir::new();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let secret = dir.path().join("jwt-secret");
    std::fs::write(&secret, "0123456789abcdef0123456789abcdef").expect("write");
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).expect("chmod");

    let app = spawn_in(dir, |_| {}).await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let dm = alice.dm(&bob).await;
    alice.send(dm.id, "written to the database").await;
    let mut png = Vec::new();
    image::DynamicImage::new_rgb8(64, 48)
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .expect("png");
    let media = alice
        .api
        .upload("pic.png", "image/png", png)
        .await
        .expect("upload");
    let thumbnail = alice
        .api
        .raw(
            reqwest::Method::GET,
            &format!("/api/v1/media/{}/thumbnail", media.id),
            None,
        )
        .await;
    assert!(thumbnail.is_ok());

    let data = app.data_dir().to_path_buf();
    let mut all = Vec::new();
    everything_in(&data, &mut all);
    let names: Vec<String> = all
        .iter()
        .map(|(p, _)| p.strip_prefix(&data).unwrap_or(p).display().to_string())
        .collect();
    for expected in ["jwt-secret", "vapid-private.pem", "media/objects"] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} in {names:?}"
        );
    }
    if !crate::CLUSTER_ENGINES {
        for expected in ["palaver.db", "palaver.db-wal", "palaver.db-shm"] {
            assert!(
                names.iter().any(|n| n == expected),
                "{expected} in {names:?}"
            );
        }
    }
    let objects = all
        .iter()
        .filter(|(p, want)| *want == 0o600 && p.starts_with(data.join("media/objects")))
        .count();
    assert!(objects >= 1, "an uploaded object in {names:?}");
    let loose: Vec<String> = all
        .iter()
        .filter(|(p, want)| mode(p) != *want)
        .map(|(p, want)| format!("{} is {:o}, not {want:o}", p.display(), mode(p)))
        .collect();
    assert!(loose.is_empty(), "{loose:#?}");
}

#[cfg(unix)]
#[tokio::test]
async fn an_upload_on_its_way_in_is_private_too() {
    use tokio::io::AsyncWriteExt;
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    // Half a multipart upload, then a pause: the server is buffering it.
    let mut stream = tokio::net::TcpStream::connect(app.addr)
        .await
        .expect("connect");
    let head = format!(
        "POST /api/v1/media/upload HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: multipart/form-data; boundary=XYZ\r\nContent-Length: 100000\r\n\r\n\
         --XYZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.bin\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n",
        app.addr, alice.auth.access_token
    );
    stream.write_all(head.as_bytes()).await.expect("head");
    stream.write_all(&[7u8; 20_000]).await.expect("some bytes");
    let tmp = app.data_dir().join("media/tmp");
    let deadline = tokio::time::Instant::now() + WAIT;
    let part = loop {
        let found = std::fs::read_dir(&tmp)
            .expect("media/tmp")
            .filter_map(Result::ok)
            .map(|e| e.path())
            .next();
        if let Some(path) = found {
            break path;
        }
        assert!(tokio::time::Instant::now() < deadline, "no temporary file");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(mode(&tmp), 0o700);
    assert_eq!(mode(&part), 0o600, "{}", part.display());
}
