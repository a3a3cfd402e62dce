//! The rules of request fields, written as JSON Schema for the OpenAPI document, so that
//! a request the document allows is a request the server accepts (and the other way
//! round). Each pattern is the server's check (`crates/server/src/domain.rs`,
//! `service::notify`) spelled as a regular expression; `crates/server/tests/schema.rs`
//! holds the two together (schemathesis sends what the document allows, which must be
//! accepted, and what it refuses, which must be refused).
//!
//! Patterns use only what ECMA-262, Rust's `regex` and Python's `re` read alike:
//! character classes with `\uXXXX` escapes, and characters beyond the BMP written as
//! themselves.

use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{
    AllOfBuilder, ArrayBuilder, KnownFormat, ObjectBuilder, OneOfBuilder, Schema, SchemaFormat,
    SchemaType, Type,
};

/// White space as Rust's `str::trim` removes it (Unicode `White_Space`), as the inside of
/// a character class.
const WHITE: &str = r"\t\n\x0B\x0C\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000";

/// A name's characters, inside a class: no control character (`Cc`), no bidirectional
/// embedding, override or isolate.
const NOT_IN_NAME: &str = r"\x00-\x1F\x7F-\x9F\u202A-\u202E\u2066-\u2069";

/// What draws nothing (white space, `Default_Ignorable_Code_Point`, the blank Braille
/// pattern), inside a class: a name needs one character outside it.
fn invisible() -> String {
    format!(
        r"{WHITE}\u00AD\u034F\u061C\u115F\u1160\u17B4\u17B5\u180B-\u180F\u200B-\u200F\u202A-\u202E\u2060-\u206F\u2800\u3164\uFE00-\uFE0F\uFEFF\uFFA0\uFFF0-\uFFF8{}-{}{}-{}{}-{}",
        '\u{1BCA0}', '\u{1BCA3}', '\u{1D173}', '\u{1D17A}', '\u{E0000}', '\u{E0FFF}'
    )
}

/// A name people see, of 1 to `max` characters once trimmed: white space around it, then
/// a first and a last character that are neither white space nor refused, and allowed
/// characters between them.
pub fn name_pattern(max: usize) -> String {
    let edge =
        format!("[^{NOT_IN_NAME} \\xA0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000]");
    let inner = max.saturating_sub(2);
    format!("^[{WHITE}]*{edge}(?:[^{NOT_IN_NAME}]{{0,{inner}}}{edge})?[{WHITE}]*$")
}

/// Somewhere in the string, a character that draws something.
pub fn visible_pattern() -> String {
    format!("[^{}]", invisible())
}

/// Message text: no NUL, and something besides white space.
pub fn text_pattern() -> String {
    format!("^[^\\x00]*[^\\x00{WHITE}][^\\x00]*$")
}

/// A caption, or an edit's text: no NUL.
pub const NO_NUL_PATTERN: &str = r"^[^\x00]*$";

/// An uncompressed P-256 point (65 bytes, the first 0x04) in base64url, padded or not:
/// 87 characters, the first `B`, the second one of 16 (the 0x04's low bits are zero),
/// the last one of 16 (its low two bits are padding).
pub const P256DH_PATTERN: &str = r"^B[A-P][A-Za-z0-9_-]{84}[AEIMQUYcgkosw048]=*$";

/// 16 bytes in base64url, padded or not: 22 characters, the last one of 4.
pub const AUTH_SECRET_PATTERN: &str = r"^[A-Za-z0-9_-]{21}[AQgw]=*$";

/// The client's idempotency key: 1–64 printable ASCII characters.
pub const CLIENT_MSG_ID_PATTERN: &str = r"^[!-~]{1,64}$";

fn string(description: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description))
}

fn nullable_string(description: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .description(Some(description))
}

fn uuid(description: &str) -> ObjectBuilder {
    string(description).format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid)))
}

/// A visible name of 1 to `max` characters, or `null` where `nullable`.
fn name(max: usize, nullable: bool, description: &str) -> RefOr<Schema> {
    let shape = if nullable {
        nullable_string(description)
    } else {
        string(description)
    };
    AllOfBuilder::new()
        .item(shape.pattern(Some(name_pattern(max))))
        .item(
            ObjectBuilder::new()
                .schema_type(SchemaType::AnyValue)
                .pattern(Some(visible_pattern())),
        )
        .into()
}

/// `displayName`: optional, `null` the same as left out.
pub fn display_name() -> RefOr<Schema> {
    name(
        64,
        true,
        "1–64 characters once trimmed of white space; no control characters; at least one \
         visible character; no bidirectional embeddings, overrides or isolates \
         (U+202A–U+202E, U+2066–U+2069).",
    )
}

/// A group's `name` in `PATCH /rooms/{roomId}`.
pub fn group_name() -> RefOr<Schema> {
    name(
        100,
        false,
        "1–100 characters once trimmed, with the rules of a display name.",
    )
}

/// A device's `name` in `POST /mls/devices`.
pub fn device_name() -> RefOr<Schema> {
    name(
        64,
        false,
        "1–64 characters once trimmed, with the rules of a display name.",
    )
}

/// `content` where its room's message type is not known from the request (an edit).
pub fn edit_content() -> RefOr<Schema> {
    string(
        "Up to 16 KiB of UTF-8, no NUL. A text message's content must hold something \
         besides white space (`422 validation_failed` otherwise); a caption may be empty.",
    )
    .pattern(Some(NO_NUL_PATTERN))
    .into()
}

/// `keys.p256dh` of a push subscription.
pub fn p256dh() -> RefOr<Schema> {
    string(
        "The browser's P-256 public key: the 65-byte uncompressed point, base64url, padded \
         or not. It must be a point of the curve (`422 validation_failed` otherwise), which \
         no pattern can say.",
    )
    .pattern(Some(P256DH_PATTERN))
    .into()
}

/// `keys.auth` of a push subscription.
pub fn auth_secret() -> RefOr<Schema> {
    string("The 16-byte authentication secret, base64url, padded or not.")
        .pattern(Some(AUTH_SECRET_PATTERN))
        .into()
}

/// What a send carries besides its room: a text message (`type` left out or `text`,
/// content that is not blank, no `mediaId`) or a media message (`type` one of the media
/// types, a `mediaId`, an optional caption).
fn send_variants(room_in_body: bool) -> RefOr<Schema> {
    let client_msg_id = || {
        string(
            "1–64 printable ASCII characters, unique per sender and room; a retry with the \
             same value returns the stored message instead of a duplicate.",
        )
        .pattern(Some(CLIENT_MSG_ID_PATTERN))
    };
    let common = |b: ObjectBuilder| {
        let b = b
            .schema_type(Type::Object)
            .property("clientMsgId", client_msg_id())
            .required("clientMsgId");
        if room_in_body {
            b.property("roomId", uuid("The room."))
                .required("roomId")
                .property(
                    "noPreview",
                    ObjectBuilder::new()
                        .schema_type(Type::Boolean)
                        .default(Some(false.into()))
                        .description(Some("No link preview for this message.")),
                )
        } else {
            b
        }
    };
    let text = common(ObjectBuilder::new())
        .title(Some("text message"))
        .property(
            "type",
            string("`text`, the default.")
                .enum_values(Some(["text"]))
                .default(Some("text".into())),
        )
        .property(
            "content",
            string("The text: up to 16 KiB of UTF-8, no NUL, not only white space.")
                .pattern(Some(text_pattern())),
        )
        .required("content")
        .property(
            "mediaId",
            ObjectBuilder::new()
                .schema_type(Type::Null)
                .description(Some(
                    "A text message has no media: leave it out (or `null`).",
                )),
        );
    let media = common(ObjectBuilder::new())
        .title(Some("media message"))
        .property(
            "type",
            string("Which kind of media; `file` may carry any upload.")
                .enum_values(Some(["image", "video", "audio", "file"])),
        )
        .required("type")
        .property(
            "mediaId",
            uuid("An upload of the sender's, or one shared in one of their rooms."),
        )
        .required("mediaId")
        .property(
            "content",
            string("The caption: up to 16 KiB of UTF-8, no NUL; may be empty.")
                .pattern(Some(NO_NUL_PATTERN))
                .default(Some("".into())),
        );
    OneOfBuilder::new()
        .item(text)
        .item(media)
        .description(Some(
            "A text message (`type` left out or `text`, with `content`) or a media message \
             (`type` image, video, audio or file, with `mediaId`).",
        ))
        .into()
}

/// `POST /rooms/create`: a 1:1 room or a group.
fn create_room() -> RefOr<Schema> {
    let member_ids = |description: &str| {
        ArrayBuilder::new()
            .items(uuid("A user's id."))
            .description(Some(description))
    };
    let direct = ObjectBuilder::new()
        .schema_type(Type::Object)
        .title(Some("1:1 room"))
        .property(
            "isGroup",
            ObjectBuilder::new()
                .schema_type(Type::Boolean)
                .enum_values(Some([false])),
        )
        .required("isGroup")
        .property(
            "memberIds",
            member_ids(
                "The other person. (The caller's own id and repeated ids are ignored, so \
                 `[me, them]` and `[them, them]` are accepted too.)",
            )
            .min_items(Some(1))
            .max_items(Some(1)),
        )
        .required("memberIds")
        .property("name", nullable_string("Ignored for a 1:1 room."));
    let group = ObjectBuilder::new()
        .schema_type(Type::Object)
        .title(Some("group"))
        .property(
            "isGroup",
            ObjectBuilder::new()
                .schema_type(Type::Boolean)
                .enum_values(Some([true])),
        )
        .required("isGroup")
        .property(
            "memberIds",
            member_ids(
                "The other members, at most 999 (1000 with the caller); the caller's own id \
                 and repeats are ignored.",
            )
            .max_items(Some(999)),
        )
        .property("name", group_name())
        .required("name");
    OneOfBuilder::new()
        .item(direct)
        .item(group)
        .description(Some("`POST /api/v1/rooms/create`: a 1:1 room or a group."))
        .into()
}

/// The schemas written here rather than derived: their rules need `oneOf`.
macro_rules! hand_written {
    ($($ty:ty => $schema:expr;)*) => {$(
        impl utoipa::PartialSchema for $ty {
            fn schema() -> RefOr<Schema> {
                $schema
            }
        }
        impl utoipa::ToSchema for $ty {}
    )*};
}

hand_written! {
    crate::SendMessageRequest => send_variants(true);
    crate::ChatSendRequest => send_variants(false);
    crate::CreateRoomRequest => create_room();
}

/// The multipart form of `POST /media/upload` (documentation only: the server streams
/// the part instead of decoding it into a value).
pub struct UploadForm;

/// The raw-body form of `POST /media/upload` (documentation only).
pub struct UploadBytes;

fn file_bytes(description: &str) -> ObjectBuilder {
    string(description)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary)))
        .min_length(Some(1))
}

hand_written! {
    UploadForm => ObjectBuilder::new()
        .schema_type(Type::Object)
        .property(
            "file",
            file_bytes("The file, not empty; the part's filename names it."),
        )
        .required("file")
        // Other parts are read and ignored, but a part name is a header value: no
        // control characters.
        .property_names(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(r"^[^\x00-\x1F\x7F]*$")),
        ))
        .into();
    UploadBytes => file_bytes("The file, not empty, named by `?filename=`.").into();
}
