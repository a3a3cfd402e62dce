//! Writes the hand-made seed corpus into `fuzz/corpus/<target>/seed-*`:
//! `cargo run --example seeds` from `fuzz/` (stable is enough). Deterministic, so
//! running it again changes nothing.

use std::io::Cursor;
use std::path::Path;

use image::{DynamicImage, ImageFormat, Rgb, RgbImage, Rgba, RgbaImage};
use img_parts::{Bytes, ImageEXIF};

/// The key the `token` target verifies with.
const KEY: &[u8] = b"palaver-fuzzing-key-not-a-secret";
const USER: &str = "0190f5c4-8f0e-7a3c-9d4e-1b2c3d4e5f60";
const SESSION: &str = "0190f5c4-8f0e-7a3c-9d4e-1b2c3d4e5f61";
const ROOM: &str = "0190f5c4-8f0e-7a3c-9d4e-1b2c3d4e5f62";

fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    std::fs::create_dir_all(&dir).expect("corpus directory");
    std::fs::write(dir.join(format!("seed-{name}")), bytes).expect("seed written");
}

fn frames() {
    let frames = [
        ("ping", r#"{"type":"ping","id":"p1"}"#.to_owned()),
        (
            "send",
            format!(
                r#"{{"type":"send","id":"s1","message":{{"roomId":"{ROOM}","clientMsgId":"c-1","content":"hello","type":"text"}}}}"#
            ),
        ),
        (
            "send-media",
            format!(
                r#"{{"type":"send","message":{{"roomId":"{ROOM}","clientMsgId":"c-2","type":"image","mediaId":"{USER}"}}}}"#
            ),
        ),
        (
            "edit",
            format!(r#"{{"type":"edit","id":"e","messageId":"{USER}","content":"fixed"}}"#),
        ),
        (
            "delete",
            format!(r#"{{"type":"delete","messageId":"{USER}"}}"#),
        ),
        (
            "receipt",
            format!(r#"{{"type":"receipt","roomId":"{ROOM}","seq":42,"status":"read"}}"#),
        ),
        (
            "typing",
            format!(r#"{{"type":"typing","roomId":"{ROOM}","active":false}}"#),
        ),
        (
            "presence",
            r#"{"type":"presence","status":"away"}"#.to_owned(),
        ),
        (
            "sync",
            format!(r#"{{"type":"sync","id":7,"cursors":{{"{ROOM}":3,"{USER}":0}}}}"#),
        ),
        ("unknown", r#"{"type":"dance","id":"x"}"#.to_owned()),
        ("numeric-type", r#"{"type":3}"#.to_owned()),
        (
            "malformed",
            r#"{"type":"send","message":{"roomId":"#.to_owned(),
        ),
    ];
    for (name, text) in frames {
        write("frame_decode", name, text.as_bytes());
    }
}

fn bodies() {
    let bodies: [(u8, &str, String); 15] = [
        (0, "register", r#"{"username":"Alice_1","password":"correct horse","displayName":" Alice "}"#.into()),
        (1, "login", r#"{"username":"alice","password":"correct horse"}"#.into()),
        (2, "refresh", r#"{"refreshToken":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}"#.into()),
        (3, "logout", r#"{"refreshToken":null}"#.into()),
        (4, "profile", r#"{"displayName":"Al\u00efce"}"#.into()),
        (5, "create-room", format!(r#"{{"name":"Team","isGroup":true,"memberIds":["{USER}"]}}"#)),
        (6, "rename-room", r#"{"name":"  Renamed  "}"#.into()),
        (7, "add-members", format!(r#"{{"userIds":["{USER}","{SESSION}"]}}"#)),
        (8, "member-role", r#"{"role":"admin"}"#.into()),
        (9, "send", format!(r#"{{"roomId":"{ROOM}","clientMsgId":"k1","content":"hi","type":"text"}}"#)),
        (10, "chat-send", format!(r#"{{"clientMsgId":"k2","type":"file","mediaId":"{USER}"}}"#)),
        (11, "edit", r#"{"content":"new text"}"#.into()),
        (12, "receipt", r#"{"seq":9,"status":"delivered"}"#.into()),
        (
            13,
            "push-subscribe",
            r#"{"endpoint":"https://push.example.com/send/abc","keys":{"p256dh":"BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7I99e8QcYP7DkM","auth":"tBHItJI5svbpez7KI4CCXg"},"expirationTime":null}"#.into(),
        ),
        (14, "push-settings", r#"{"preview":"none"}"#.into()),
    ];
    for (which, name, body) in bodies {
        let mut bytes = vec![which];
        bytes.extend_from_slice(body.as_bytes());
        write("json_bodies", name, &bytes);
    }
    let internal =
        br#"{"endpoint":"https://[::ffff:127.0.0.1]:8080/","keys":{"p256dh":"","auth":""}}"#;
    write(
        "json_bodies",
        "push-internal",
        &[&[13u8][..], internal].concat(),
    );
}

fn tokens() {
    use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
    let claims = |exp: u64| {
        serde_json::json!({
            "sub": USER, "sid": SESSION, "iat": 1_700_000_000u64, "exp": exp,
            "aud": "palaver", "iss": "palaver",
        })
    };
    let key = EncodingKey::from_secret(KEY);
    let sign = |alg, claims: &serde_json::Value, key: &EncodingKey| {
        encode(&Header::new(alg), claims, key).expect("token")
    };
    // 4102444800 is 2100-01-01: these stay valid.
    let valid = sign(Algorithm::HS256, &claims(4_102_444_800), &key);
    let mut seeds = vec![
        ("valid", [&[0u8][..], valid.as_bytes()].concat()),
        (
            "expired",
            [
                &[0u8][..],
                sign(Algorithm::HS256, &claims(1_700_000_900), &key).as_bytes(),
            ]
            .concat(),
        ),
        (
            "hs512",
            [
                &[0u8][..],
                sign(Algorithm::HS512, &claims(4_102_444_800), &key).as_bytes(),
            ]
            .concat(),
        ),
        (
            "other-key",
            [
                &[0u8][..],
                sign(
                    Algorithm::HS256,
                    &claims(4_102_444_800),
                    &EncodingKey::from_secret(b"other"),
                )
                .as_bytes(),
            ]
            .concat(),
        ),
    ];
    let body = valid.split('.').nth(1).expect("claims part");
    let none = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{body}.");
    seeds.push(("alg-none", [&[0u8][..], none.as_bytes()].concat()));
    let claims_json = serde_json::to_vec(&claims(4_102_444_800)).expect("json");
    seeds.push(("signed-claims", [&[1u8][..], &claims_json].concat()));
    let aud_list = serde_json::json!({
        "sub": USER, "sid": SESSION, "exp": 4_102_444_800u64, "aud": ["x", "palaver"], "iss": "palaver",
    });
    let header = br#"{"alg":"HS256","typ":"JWT","kid":"1"}"#;
    let with_header = [
        &[1u8][..],
        header,
        &[0xFF],
        &serde_json::to_vec(&aud_list).expect("json"),
    ]
    .concat();
    seeds.push(("signed-header-claims", with_header));
    seeds.push(("unsigned-claims", [&[2u8][..], &claims_json].concat()));
    for (name, bytes) in seeds {
        write("token", name, &bytes);
    }
}

fn sniff_heads() {
    let heads: [(&str, &[u8]); 12] = [
        (
            "png",
            b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x02\0\0\0",
        ),
        (
            "jpeg",
            b"\xff\xd8\xff\xe0\0\x10JFIF\0\x01\x01\0\0\x01\0\x01\0\0",
        ),
        ("gif", b"GIF89a\x01\0\x01\0\x80\0\0"),
        ("webp", b"RIFF\x1a\0\0\0WEBPVP8L\x0d\0\0\0/\0\0\0"),
        ("pdf", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"),
        ("mp4", b"\0\0\0\x18ftypmp42\0\0\0\0mp42isom"),
        ("mp3", b"ID3\x03\0\0\0\0\0\x0fTIT2"),
        ("zip", b"PK\x03\x04\x14\0\0\0\x08\0"),
        ("html", b"<!DOCTYPE html><html><script>alert(1)</script>"),
        (
            "svg",
            b"<?xml version=\"1.0\"?><svg xmlns=\"http://www.w3.org/2000/svg\"/>",
        ),
        ("text", "hello, w\u{f6}rld\n".as_bytes()),
        ("binary", b"\0\x01\x02\x03garbage"),
    ];
    for (name, head) in heads {
        write("mime_sniff", name, head);
    }
}

fn encoded(picture: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    picture.write_to(&mut out, format).expect("encode");
    out.into_inner()
}

/// A TIFF block with one tag: Orientation = 6 (rotate 90° clockwise to show).
const EXIF_ROTATE: &[u8] = b"MM\0\x2a\0\0\0\x08\0\x01\x01\x12\0\x03\0\0\0\x01\0\x06\0\0\0\0\0\0";

fn images() {
    let rgb = DynamicImage::ImageRgb8(RgbImage::from_fn(8, 6, |x, y| {
        Rgb([x as u8 * 30, y as u8 * 40, 90])
    }));
    let rgba = DynamicImage::ImageRgba8(RgbaImage::from_fn(5, 7, |x, y| {
        Rgba([200, x as u8 * 50, y as u8 * 30, 128])
    }));
    let wide = DynamicImage::ImageRgb8(RgbImage::from_fn(400, 2, |x, _| {
        Rgb([(x % 256) as u8, 0, 255])
    }));
    let jpeg = encoded(&rgb, ImageFormat::Jpeg);
    let png = encoded(&rgba, ImageFormat::Png);
    let webp = encoded(&rgb, ImageFormat::WebP);
    write("thumbnail", "rgb.jpg", &jpeg);
    write("thumbnail", "rgba.png", &png);
    write("thumbnail", "wide.png", &encoded(&wide, ImageFormat::Png));
    write("thumbnail", "rgb.gif", &encoded(&rgb, ImageFormat::Gif));
    write("thumbnail", "rgb.webp", &webp);
    // The same pictures with an EXIF orientation, which the cleaner rotates.
    let mut j = img_parts::jpeg::Jpeg::from_bytes(Bytes::from(jpeg)).expect("jpeg");
    j.set_exif(Some(Bytes::from_static(EXIF_ROTATE)));
    write("thumbnail", "rotated.jpg", &j.encoder().bytes());
    let mut p = img_parts::png::Png::from_bytes(Bytes::from(png)).expect("png");
    p.set_exif(Some(Bytes::from_static(EXIF_ROTATE)));
    write("thumbnail", "rotated.png", &p.encoder().bytes());
    let mut w = img_parts::webp::WebP::from_bytes(Bytes::from(webp)).expect("webp");
    w.set_exif(Some(Bytes::from_static(EXIF_ROTATE)));
    write("thumbnail", "rotated.webp", &w.encoder().bytes());
}

fn main() {
    frames();
    bodies();
    tokens();
    sniff_heads();
    images();
}
