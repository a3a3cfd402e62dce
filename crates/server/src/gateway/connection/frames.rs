//! Reading a client's text frame (size, a string `type`, known fields, a short `id`),
//! explaining one that cannot be read, and the `error` frame for a refused or failed one.

use palaver_proto::{ClientEnvelope, ClientFrame, ErrorCode, ServerFrame};

use crate::service::ServiceError;
use crate::telemetry::metric;

/// The `error` frame for a refusal or failure; an internal failure is logged here and
/// reaches the client only as `internal`.
pub(super) fn service_error_frame(
    id: Option<String>,
    client_msg_id: Option<String>,
    err: &ServiceError,
) -> ServerFrame {
    let (code, message) = if err.is_internal() {
        tracing::error!(%err, "frame failed");
        (ErrorCode::Internal, "internal error".to_owned())
    } else {
        (err.code(), err.to_string())
    };
    metrics::counter!(metric::WS_FRAME_ERRORS, "code" => code.as_str()).increment(1);
    ServerFrame::Error {
        id,
        client_msg_id,
        code,
        message,
        retry_after_ms: err.retry_after_ms(),
    }
}

/// Why a client's text frame was refused: the error frame to answer with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadFrame {
    /// The frame's `id`, when one could be read from it.
    pub id: Option<String>,
    /// A `send` frame's `message.clientMsgId`, when one could be read from it.
    pub client_msg_id: Option<String>,
    pub code: ErrorCode,
    pub message: String,
}

impl BadFrame {
    pub(super) fn new(code: ErrorCode, message: impl Into<String>) -> BadFrame {
        BadFrame {
            id: None,
            client_msg_id: None,
            code,
            message: message.into(),
        }
    }

    pub(super) fn into_frame(self) -> ServerFrame {
        metrics::counter!(metric::WS_FRAME_ERRORS, "code" => self.code.as_str()).increment(1);
        ServerFrame::Error {
            id: self.id,
            client_msg_id: self.client_msg_id,
            code: self.code,
            message: self.message,
            retry_after_ms: None,
        }
    }
}

/// Reads one client text frame as the gateway does: at most `max_bytes`, a JSON object
/// whose `type` is a string naming a known frame with valid fields, and an `id` of at
/// most 64 bytes.
pub fn decode_frame(text: &str, max_bytes: usize) -> Result<ClientEnvelope, BadFrame> {
    // Every frame read, refused or not: what the error frames are a share of.
    metrics::counter!(metric::WS_FRAMES).increment(1);
    if text.len() > max_bytes {
        return Err(BadFrame::new(
            ErrorCode::PayloadTooLarge,
            format!("frame is larger than {max_bytes} bytes"),
        ));
    }
    // serde would read a numeric `type` as a variant index; only a string is a type.
    let typed = serde_json::from_str::<TypeProbe>(text).is_ok_and(|p| p.kind.is_some());
    let parsed = if typed {
        serde_json::from_str::<ClientEnvelope>(text)
    } else {
        Err(serde::de::Error::custom("a frame needs a string \"type\""))
    };
    let envelope = parsed.map_err(|err| explain_bad_frame(text, &err))?;
    if envelope.id.as_ref().is_some_and(|id| id.len() > 64) {
        let client_msg_id = match &envelope.frame {
            ClientFrame::Send { message } => echoable(&message.client_msg_id),
            _ => None,
        };
        return Err(BadFrame {
            client_msg_id,
            ..BadFrame::new(ErrorCode::BadRequest, "id is longer than 64 characters")
        });
    }
    Ok(envelope)
}

/// Just the `type` of a frame, to check it is a string.
#[derive(serde::Deserialize)]
struct TypeProbe<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<std::borrow::Cow<'a, str>>,
}

/// A `clientMsgId` short enough to send back (the rules allow at most 64 characters).
pub(super) fn echoable(client_msg_id: &str) -> Option<String> {
    (client_msg_id.len() <= 64).then(|| client_msg_id.to_owned())
}

/// Why a text frame could not be read, with its `id` (and a `send`'s `clientMsgId`) if
/// they can be found.
fn explain_bad_frame(text: &str, err: &serde_json::Error) -> BadFrame {
    let Ok(value) = serde_json::from_str::<serde_json::Value>(text) else {
        return BadFrame::new(ErrorCode::BadRequest, format!("malformed JSON: {err}"));
    };
    let id = match value.get("id") {
        Some(serde_json::Value::String(s)) if s.len() <= 64 => Some(s.clone()),
        Some(serde_json::Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    const KNOWN: &[&str] = &[
        "auth", "send", "edit", "delete", "receipt", "typing", "presence", "sync", "ping",
    ];
    let kind = value.get("type").and_then(|t| t.as_str());
    let client_msg_id = match kind {
        Some("send") => value
            .pointer("/message/clientMsgId")
            .and_then(|c| c.as_str())
            .and_then(echoable),
        _ => None,
    };
    let (code, message) = match kind {
        None => (
            ErrorCode::BadRequest,
            "a frame needs a string \"type\"".to_owned(),
        ),
        Some(kind) if !KNOWN.contains(&kind) => {
            let shown: String = kind.chars().take(32).collect();
            (
                ErrorCode::UnknownFrame,
                format!("unknown frame type {shown:?}"),
            )
        }
        Some(kind) => (
            ErrorCode::BadRequest,
            format!("invalid {kind} frame: {err}"),
        ),
    };
    BadFrame {
        id,
        client_msg_id,
        code,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_decoded_or_explained() {
        let ping = decode_frame(r#"{"type":"ping","id":"a"}"#, 1024).expect("ping");
        assert!(matches!(ping.frame, ClientFrame::Ping));
        assert_eq!(ping.id.as_deref(), Some("a"));

        let big = decode_frame(&" ".repeat(1025), 1024).expect_err("too big");
        assert_eq!(big.code, ErrorCode::PayloadTooLarge);

        let numeric = decode_frame(r#"{"type":7,"id":"n"}"#, 1024).expect_err("numeric type");
        assert_eq!(numeric.code, ErrorCode::BadRequest);
        assert_eq!(numeric.id.as_deref(), Some("n"));

        let unknown = decode_frame(r#"{"type":"dance","id":3}"#, 1024).expect_err("unknown");
        assert_eq!(unknown.code, ErrorCode::UnknownFrame);
        assert_eq!(unknown.id.as_deref(), Some("3"));

        let long_id = format!(r#"{{"type":"ping","id":"{}"}}"#, "x".repeat(65));
        let long = decode_frame(&long_id, 1024).expect_err("long id");
        assert_eq!((long.id, long.code), (None, ErrorCode::BadRequest));

        let junk = decode_frame("{not json", 1024).expect_err("junk");
        assert_eq!((junk.id, junk.code), (None, ErrorCode::BadRequest));
    }
}
