//! REST request bodies, read as the handlers get them (`axum::Json::from_bytes`, which
//! `extract::Json` wraps), then checked by the service's validators that need no database.
//!
//! The first byte picks the body type (or a text the service parses: a reaction's emoji,
//! the mentions of a message), the rest is the body. Checks: no panic; an
//! accepted body reads back the same after encoding; whatever a validator accepts obeys
//! the rule it documents; a push endpoint that passes the outbound guard is https and not
//! an internal address.
#![no_main]

use axum::Json;
use libfuzzer_sys::fuzz_target;
use palaver_proto::*;
use palaver_server::domain::{
    Password, Username, client_msg_id, display_name, mentioned_names, message_content,
    reaction_emoji, room_name,
};
use palaver_server::outbound::guard::{AllowList, Guard, Rules, is_internal};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The server's default `max_message_bytes`.
const MAX_MESSAGE_BYTES: usize = 16 * 1024;

/// Reads a body as axum does; an accepted one must survive a round trip.
fn read<T: DeserializeOwned + Serialize>(body: &[u8]) -> Option<T> {
    let Json(value) = Json::<T>::from_bytes(body).ok()?;
    let encoded = serde_json::to_vec(&value).expect("a body encodes");
    let Json(again) = Json::<T>::from_bytes(&encoded).unwrap_or_else(|e| {
        panic!(
            "{} does not read back: {e}",
            String::from_utf8_lossy(&encoded)
        )
    });
    assert_eq!(
        serde_json::to_value(&value).expect("value"),
        serde_json::to_value(&again).expect("value")
    );
    Some(value)
}

/// A name people see: trimmed, 1..=max characters, no control characters, no
/// bidirectional overrides or isolates, not only white space or zero-width characters.
fn check_name(raw: &str, parsed: Result<String, impl std::fmt::Debug>, max: usize) {
    if let Ok(name) = parsed {
        assert_eq!(name, raw.trim());
        assert!((1..=max).contains(&name.chars().count()));
        assert!(!name.chars().any(char::is_control));
        assert!(
            !name
                .chars()
                .any(|c| matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'))
        );
        assert!(
            !name.chars().all(|c| c.is_whitespace()
                || matches!(c, '\u{200B}'..='\u{200F}' | '\u{2060}' | '\u{FEFF}')),
            "{name:?} is invisible"
        );
    }
}

fn check_username(raw: &str) {
    if let Ok(name) = Username::parse(raw) {
        let name = name.as_str();
        assert!((3..=32).contains(&name.len()));
        assert!(
            name.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.-".contains(&b))
        );
    }
}

fn check_password(raw: &str) {
    if let Ok(password) = Password::parse(raw) {
        assert!((8..=256).contains(&password.expose().chars().count()));
    }
}

/// A new account's password: the strength estimate runs on anything without panicking,
/// and what it accepts also passes the length rule.
fn check_new_password(raw: &str, username: &str) {
    if Password::parse_new(raw, &[username], 3).is_ok() {
        assert!(Password::parse(raw).is_ok());
    }
}

fn check_send(key: &str, content: &str) {
    if let Ok(key) = client_msg_id(key) {
        assert!((1..=64).contains(&key.len()));
        assert!(key.bytes().all(|b| b.is_ascii_graphic()));
    }
    check_content(content);
}

fn check_content(raw: &str) {
    if let Ok(content) = message_content(raw, MAX_MESSAGE_BYTES) {
        assert!(content.len() <= MAX_MESSAGE_BYTES);
        assert!(!content.contains('\0'));
    }
}

fn check_endpoint(endpoint: &str) {
    let Ok(url) = url::Url::parse(endpoint) else {
        return;
    };
    if Guard::new(AllowList::default(), Rules::NOTIFICATIONS)
        .check_url(&url)
        .is_ok()
    {
        assert_eq!(url.scheme(), "https", "{endpoint} passed the guard");
        match url.host() {
            Some(url::Host::Ipv4(ip)) => assert!(!is_internal(ip.into()), "{endpoint}"),
            Some(url::Host::Ipv6(ip)) => assert!(!is_internal(ip.into()), "{endpoint}"),
            Some(url::Host::Domain(_)) => {}
            None => panic!("{endpoint} has no host and passed the guard"),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    match which % 19 {
        0 => {
            if let Some(req) = read::<RegisterRequest>(body) {
                check_username(&req.username);
                check_password(&req.password);
                check_new_password(&req.password, &req.username);
                if let Some(name) = &req.display_name {
                    check_name(name, display_name(name), 64);
                }
            }
        }
        1 => {
            if let Some(req) = read::<LoginRequest>(body) {
                check_username(&req.username);
                check_password(&req.password);
            }
        }
        2 => {
            read::<RefreshRequest>(body);
        }
        3 => {
            read::<LogoutRequest>(body);
        }
        4 => {
            if let Some(UpdateProfileRequest {
                display_name: Some(name),
            }) = read(body)
            {
                check_name(&name, display_name(&name), 64);
            }
        }
        5 => {
            if let Some(CreateRoomRequest {
                name: Some(name), ..
            }) = read(body)
            {
                check_name(&name, room_name(&name), 100);
            }
        }
        6 => {
            if let Some(req) = read::<UpdateRoomRequest>(body) {
                check_name(&req.name, room_name(&req.name), 100);
            }
        }
        7 => {
            read::<AddMembersRequest>(body);
        }
        8 => {
            read::<UpdateMemberRequest>(body);
        }
        9 => {
            if let Some(req) = read::<SendMessageRequest>(body) {
                check_send(&req.client_msg_id, &req.content);
            }
        }
        10 => {
            if let Some(req) = read::<ChatSendRequest>(body) {
                check_send(&req.client_msg_id, &req.content);
            }
        }
        11 => {
            if let Some(req) = read::<EditMessageRequest>(body) {
                check_content(&req.content);
            }
        }
        12 => {
            read::<ReceiptRequest>(body);
        }
        13 => {
            if let Some(req) = read::<PushSubscriptionRequest>(body) {
                check_endpoint(&req.endpoint);
            }
        }
        14 => {
            read::<UpdatePushSettingsRequest>(body);
        }
        15 => {
            if let Some(req) = read::<ForwardRequest>(body) {
                check_send(&req.client_msg_id, "");
            }
        }
        16 => {
            read::<NotificationLevelRequest>(body);
        }
        // A reaction's emoji, as the path segment gives it.
        17 => {
            if let (Ok(raw), Some(emoji)) = (
                std::str::from_utf8(body),
                std::str::from_utf8(body).ok().and_then(reaction_emoji),
            ) {
                assert!(raw.len() <= 64);
                assert_eq!(reaction_emoji(emoji), Some(emoji), "{raw:?} → {emoji:?}");
            }
        }
        // The names a message text mentions.
        _ => {
            if let Ok(text) = std::str::from_utf8(body) {
                let names = mentioned_names(text, 50);
                assert!(names.len() <= 50);
                for name in &names {
                    assert!(Username::parse(name).is_ok(), "{name:?} from {text:?}");
                    assert!(!name.ends_with(['.', '-']));
                }
            }
        }
    }
});
