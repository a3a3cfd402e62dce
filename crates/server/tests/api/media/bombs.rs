//! Decompression bombs (finding 1 of the hardening round, docs/SECURITY.md): small files
//! that claim huge pictures, refused before decoding, while ordinary photos still upload
//! and decoding shares a bounded budget. The GIF and PNG are built by the load generator's
//! `bombs` scenario, which measures what they cost a running server.

use std::io::Cursor;

use reqwest::header::{self};

use crate::helpers::*;
use palaver_bench::scenarios::bombs::{gif_bomb, png_bomb};

use super::{assert_refused, jpeg_with_metadata, png, stored_objects, temp_files, upload_raw};

/// A real JPEG of noise with its frame header claiming 7071×7071, cut to 3.7 KB.
fn truncated_jpeg_bomb() -> Vec<u8> {
    let mut seed = 0x2545_f491_u32;
    let picture = image::RgbImage::from_fn(128, 128, |_, _| {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        let [a, b, c, _] = seed.to_le_bytes();
        image::Rgb([a, b, c])
    });
    let mut out = Cursor::new(Vec::new());
    picture
        .write_to(&mut out, image::ImageFormat::Jpeg)
        .expect("encode jpeg");
    let mut jpeg = out.into_inner();
    let sof = jpeg
        .windows(2)
        .position(|w| w == [0xFF, 0xC0])
        .expect("a baseline frame header");
    jpeg[sof + 5..sof + 7].copy_from_slice(&7071u16.to_be_bytes());
    jpeg[sof + 7..sof + 9].copy_from_slice(&7071u16.to_be_bytes());
    assert!(jpeg.len() > 3700);
    jpeg.truncate(3700);
    jpeg
}

#[tokio::test]
async fn decompression_bombs_are_refused_before_decoding() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bombs = [
        ("screen.gif", gif_bomb(), "implausible"),
        ("cut.jpg", truncated_jpeg_bomb(), "truncated"),
        ("zeros.png", png_bomb(7071), "implausible"),
    ];
    let png_len = bombs[2].1.len();
    assert!((190_000..200_000).contains(&png_len), "{png_len} bytes");
    for (name, bytes, why) in bombs {
        let (status, _, body) = upload_raw(&app, &alice, name, bytes).await;
        assert_error(&(status, body.clone()), 422, "validation_failed");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(why), "{name}: {message}");
    }
    assert!(stored_objects(app.data_dir()).is_empty(), "nothing kept");
    assert_eq!(temp_files(app.data_dir()), 0);
}

#[test]
fn the_bombs_are_real_pictures() {
    // Refused for what they claim, not for being broken: the PNG builder's output
    // decodes (at a side small enough to check here) and the GIF is 7071×7071.
    let small = image::load_from_memory(&png_bomb(300)).expect("the PNG decodes");
    assert_eq!((small.width(), small.height()), (300, 300));
    assert!(small.to_rgba8().iter().all(|b| *b == 0));
    let gif = image::ImageReader::with_format(Cursor::new(gif_bomb()), image::ImageFormat::Gif)
        .into_dimensions()
        .expect("the GIF's header");
    assert_eq!(gif, (7071, 7071));
}

#[tokio::test]
async fn ordinary_photos_and_screenshots_still_upload() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    // A camera-sized JPEG with an EXIF rotation (decoded, rotated and re-encoded).
    let photo = alice
        .api
        .upload("photo.jpg", "image/jpeg", jpeg_with_metadata(1600, 1200, 6))
        .await
        .expect("a photo");
    assert_eq!((photo.width, photo.height), (Some(1200), Some(1600)));
    // A flat screenshot: one colour with a few lines (under the sparse bound, so its
    // file may be as small as it likes).
    let screen = image::RgbImage::from_fn(2560, 1440, |x, y| {
        if y % 200 < 2 || x == 100 {
            image::Rgb([30, 30, 30])
        } else {
            image::Rgb([250, 250, 250])
        }
    });
    let mut out = Cursor::new(Vec::new());
    screen
        .write_to(&mut out, image::ImageFormat::Png)
        .expect("encode png");
    let bytes = out.into_inner();
    let shot = alice
        .api
        .upload("screen.png", "image/png", bytes)
        .await
        .expect("a screenshot");
    assert_eq!((shot.width, shot.height), (Some(2560), Some(1440)));
}

#[tokio::test]
async fn pictures_over_the_sparse_bound_need_bytes_to_match() {
    let app = spawn_app_with(|c| c.media.max_sparse_image_pixels = 250_000).await;
    let alice = app.user("alice").await;
    // Up to the bound, any size; past it, one byte per 128 pixels. Transparent pictures
    // compressed as far as deflate goes have about 258 pixels per byte.
    let at_bound = png_bomb(500);
    assert!(500 * 500 / at_bound.len() > 128);
    alice
        .api
        .upload("flat.png", "image/png", at_bound)
        .await
        .expect("at the bound");
    let answer = alice
        .api
        .upload("flat.png", "image/png", png_bomb(501))
        .await;
    assert_refused(answer, 422, "validation_failed");
    // The same size with detail in it is a plausible picture.
    alice
        .api
        .upload("busy.png", "image/png", png(600, 600))
        .await
        .expect("detail makes bytes");
}

#[tokio::test]
async fn image_decoding_shares_a_bounded_budget() {
    // 4 MiB: less than a 1000×1000 RGB picture needs (3 MB, the thumbnail, the file).
    let app = spawn_app_with(|c| c.media.decode_memory_bytes = 4 << 20).await;
    let alice = app.user("alice").await;
    let (status, _, body) = upload_raw(&app, &alice, "big.png", png(1000, 1000)).await;
    assert_error(&(status, body.clone()), 413, "payload_too_large");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("decode")),
        "{body}"
    );
    alice
        .api
        .upload("small.png", "image/png", png(200, 200))
        .await
        .expect("fits the budget");

    // Room for one 500×500 decode at a time, and no waiting: concurrent uploads are
    // either decoded or told to come back, never decoded past the budget.
    let app = spawn_app_with(|c| {
        c.media.decode_memory_bytes = 3 << 20;
        c.media.decode_wait_ms = 0;
    })
    .await;
    let alice = app.user("alice").await;
    let picture = png(500, 500);
    let answers = futures::future::join_all((0..12).map(|i| {
        upload_raw(
            &app,
            &alice,
            if i % 2 == 0 { "a.png" } else { "b.png" },
            picture.clone(),
        )
    }))
    .await;
    for (status, headers, body) in &answers {
        match status {
            201 => assert_eq!(body["width"], 500),
            503 => {
                assert_error(&(*status, body.clone()), 503, "unavailable");
                let retry: u64 = headers[header::RETRY_AFTER]
                    .to_str()
                    .expect("ascii")
                    .parse()
                    .expect("seconds");
                assert!(retry >= 1);
            }
            other => panic!("{other}: {body}"),
        }
    }
    // With time to wait, every one of them is decoded in turn.
    let app = spawn_app_with(|c| {
        c.media.decode_memory_bytes = 3 << 20;
        c.media.decode_wait_ms = 60_000;
    })
    .await;
    let alice = app.user("alice").await;
    let answers = futures::future::join_all(
        (0..6).map(|_| upload_raw(&app, &alice, "c.png", picture.clone())),
    )
    .await;
    assert!(answers.iter().all(|(s, _, _)| *s == 201), "{answers:?}");
}
