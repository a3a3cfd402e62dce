//! Where the bytes live: one copy of a file uploaded twice, a failed store that leaves no
//! record, uploads never sent collected, and the S3 backend on a real SeaweedFS.

use palaver_proto::MessageType;
use reqwest::Method;
use reqwest::header::{self};
use sha2::{Digest, Sha256};

use crate::helpers::*;
use crate::support::seaweed::SeaweedFs;

use super::{
    SECRET, assert_refused, fetch, http, jpeg_with_metadata, media_records, mp3, mp4, pdf,
    send_media, stored_objects, temp_files,
};

#[tokio::test]
async fn the_same_file_twice_is_stored_once() {
    let app = spawn_app().await;
    let (alice, bob) = (app.user("alice").await, app.user("bob").await);
    let first = alice
        .api
        .upload("a.pdf", "application/pdf", pdf())
        .await
        .expect("upload");
    let second = bob
        .api
        .upload("b.pdf", "application/pdf", pdf())
        .await
        .expect("upload");
    assert_ne!(first.id, second.id, "each upload has its own id");
    assert_eq!(first.sha256, second.sha256);
    assert_eq!(first.sha256, hex::encode(Sha256::digest(pdf())));
    assert_eq!(
        stored_objects(app.data_dir()).len(),
        1,
        "one copy of the bytes"
    );
    // Bob's upload does not let him read Alice's.
    assert_eq!(fetch(&app, Some(&bob), &first.url).await.0, 404);
}

#[tokio::test]
async fn a_failed_store_leaves_no_record_and_the_client_can_retry() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bytes = pdf();
    let sha = hex::encode(Sha256::digest(&bytes));
    // A file where the object's directory should be makes the store fail.
    let objects = app.data_dir().join("media").join("objects");
    let blocker = objects.join(&sha[0..2]);
    std::fs::write(&blocker, b"in the way").expect("blocker");
    let answer = alice
        .api
        .upload("doc.pdf", "application/pdf", bytes.clone())
        .await;
    assert_refused(answer, 500, "media_upload_failed");
    assert_eq!(temp_files(app.data_dir()), 0, "no partial upload left");
    assert_eq!(
        media_records(&app).await,
        0,
        "no record of the failed upload"
    );
    std::fs::remove_file(&blocker).expect("unblock");
    let media = alice
        .api
        .upload("doc.pdf", "application/pdf", bytes.clone())
        .await
        .expect("retry works");
    let (_, _, body) = fetch(&app, Some(&alice), &media.url).await;
    assert_eq!(body.as_ref(), bytes.as_slice());
}

#[tokio::test]
async fn uploads_never_sent_are_collected() {
    let app = spawn_app_with(|c| {
        // Long enough to share an upload first, short enough to watch one go.
        c.media.orphan_ttl_secs = 3;
        c.media.gc_interval_secs = 1;
    })
    .await;
    let (alice, bob) = (app.user("alice").await, app.user("bob").await);
    let room = alice.dm(&bob).await;
    let kept = alice
        .api
        .upload("kept.pdf", "application/pdf", pdf())
        .await
        .expect("upload");
    assert_eq!(
        send_media(&alice, room.id, MessageType::File, kept.id)
            .await
            .0,
        201
    );
    let orphan = alice
        .api
        .upload("orphan.mp3", "audio/mpeg", mp3())
        .await
        .expect("upload");
    let deadline = std::time::Instant::now() + WAIT;
    while fetch(&app, Some(&alice), &orphan.url).await.0 != 404 {
        assert!(
            std::time::Instant::now() < deadline,
            "the orphan was not collected"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(
        fetch(&app, Some(&bob), &kept.url).await.0,
        200,
        "shared media stays"
    );
    assert_eq!(
        stored_objects(app.data_dir()).len(),
        1,
        "the orphan's bytes are gone"
    );
}

#[tokio::test]
async fn media_lives_in_a_real_s3_store() {
    let Some(weed) = SeaweedFs::start().await else {
        return;
    };
    let mut s3_config = palaver_server::config::MediaConfig::default();
    weed.configure(&mut s3_config);
    let app = spawn_app_with(|c| {
        c.media = s3_config.clone();
        // Long enough to share an upload first, short enough to watch one go.
        c.media.orphan_ttl_secs = 3;
        c.media.gc_interval_secs = 1;
    })
    .await;
    let (alice, bob) = (app.user("alice").await, app.user("bob").await);
    let room = alice.dm(&bob).await;

    // The bucket may take a moment to exist after the server answers.
    let deadline = std::time::Instant::now() + WAIT;
    let picture = loop {
        match alice
            .api
            .upload("photo.jpg", "image/jpeg", jpeg_with_metadata(40, 20, 1))
            .await
        {
            Ok(media) => break media,
            Err(err) => {
                assert!(
                    std::time::Instant::now() < deadline,
                    "upload to S3 failed: {err:?}"
                );
                tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            }
        }
    };
    assert_eq!(
        send_media(&alice, room.id, MessageType::Image, picture.id)
            .await
            .0,
        201
    );
    let (status, _, stored) = fetch(&app, Some(&bob), &picture.url).await;
    assert_eq!(status, 200);
    assert!(!stored.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()));
    assert_eq!(hex::encode(Sha256::digest(&stored)), picture.sha256);
    let thumb = picture.thumbnail_url.clone().expect("thumbnail");
    assert_eq!(fetch(&app, Some(&bob), &thumb).await.0, 200);

    // Range requests go through to S3.
    let video = mp4();
    let clip = alice
        .api
        .upload("clip.mp4", "video/mp4", video.clone())
        .await
        .expect("upload");
    // Everything fetched here is shared first: this server sweeps unshared uploads every
    // second.
    let shared = send_media(&alice, room.id, MessageType::Video, clip.id).await;
    assert_eq!(shared.0, 201);
    let (status, _, part) = http(
        Some(&alice),
        Method::GET,
        format!("{}{}", app.base, clip.url),
        &[(header::RANGE, "bytes=10-19")],
        None,
    )
    .await;
    assert_eq!((status, part.as_ref()), (206, &video[10..20]));

    // A file large enough for a multipart upload (over 8 MiB) arrives whole.
    let mut big = pdf();
    big.extend((0..9 * 1024 * 1024u32).map(|i| (i % 253) as u8));
    let doc = alice
        .api
        .upload("big.pdf", "application/pdf", big.clone())
        .await
        .expect("big upload");
    let shared = send_media(&alice, room.id, MessageType::File, doc.id).await;
    assert_eq!(shared.0, 201);
    let (status, _, body) = fetch(&app, Some(&alice), &doc.url).await;
    assert_eq!(
        status,
        200,
        "{}",
        String::from_utf8_lossy(&body[..body.len().min(300)])
    );
    assert!(
        body.as_ref() == big.as_slice(),
        "the big file comes back intact"
    );

    // Nothing lands on local disk; an upload never sent leaves the bucket, shared ones stay.
    assert!(stored_objects(app.data_dir()).is_empty());
    let orphan = alice
        .api
        .upload("orphan.mp3", "audio/mpeg", mp3())
        .await
        .expect("upload");
    let store = palaver_server::media::s3::S3MediaStore::open(&s3_config).expect("s3 store");
    use palaver_server::media::MediaStore;
    let deadline = std::time::Instant::now() + WAIT;
    while store.exists(&orphan.sha256).await.expect("head") {
        assert!(
            std::time::Instant::now() < deadline,
            "the orphan was not collected from S3"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    for kept in [&picture.sha256, &clip.sha256, &doc.sha256] {
        assert!(
            store.exists(kept).await.expect("head"),
            "shared media stays"
        );
    }
    assert!(
        store.exists(&picture.sha256).await.expect("head"),
        "shared media stays"
    );
}
