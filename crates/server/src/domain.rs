//! Values that arrive from clients, parsed once at the edge of the service layer so the
//! rest of the code can trust them.

use crate::service::ServiceError;

fn invalid(msg: impl Into<String>) -> ServiceError {
    ServiceError::Validation(msg.into())
}

fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

/// A login name: 3–32 of `a-z 0-9 _ . -`, case-insensitive (kept lowercase).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    pub fn parse(raw: &str) -> Result<Self, ServiceError> {
        let name = raw.trim().to_lowercase();
        if !(3..=32).contains(&name.chars().count()) {
            return Err(invalid("username must be 3 to 32 characters"));
        }
        if !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '.' | '-'))
        {
            return Err(invalid(
                "username may contain only letters, digits, '_', '.' and '-'",
            ));
        }
        Ok(Self(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A password: 8–256 characters. Only its argon2id hash is ever stored.
pub struct Password(String);

impl Password {
    pub fn parse(raw: &str) -> Result<Self, ServiceError> {
        if !(8..=256).contains(&raw.chars().count()) {
            return Err(invalid("password must be 8 to 256 characters"));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(***)")
    }
}

/// A name people see: trimmed, 1–`max` characters, no control characters.
fn visible_name(raw: &str, what: &str, max: usize) -> Result<String, ServiceError> {
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > max {
        return Err(invalid(format!("{what} must be 1 to {max} characters")));
    }
    if has_control(name) {
        return Err(invalid(format!(
            "{what} must not contain control characters"
        )));
    }
    Ok(name.to_owned())
}

/// A display name: 1–64 characters.
pub fn display_name(raw: &str) -> Result<String, ServiceError> {
    visible_name(raw, "displayName", 64)
}

/// A group's name: 1–100 characters.
pub fn room_name(raw: &str) -> Result<String, ServiceError> {
    visible_name(raw, "name", 100)
}

/// A client's idempotency key: 1–64 printable ASCII characters.
pub fn client_msg_id(raw: &str) -> Result<String, ServiceError> {
    if raw.is_empty() || raw.len() > 64 || !raw.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(invalid(
            "clientMsgId must be 1 to 64 printable ASCII characters",
        ));
    }
    Ok(raw.to_owned())
}

/// Message text: at most `max_bytes` of UTF-8, no NUL.
pub fn message_content(raw: &str, max_bytes: usize) -> Result<String, ServiceError> {
    if raw.len() > max_bytes {
        return Err(ServiceError::PayloadTooLarge(format!(
            "content is larger than {max_bytes} bytes"
        )));
    }
    if raw.contains('\0') {
        return Err(invalid("content must not contain NUL"));
    }
    Ok(raw.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_normalised_and_checked() {
        assert_eq!(
            Username::parse(" Alice ").map(|u| u.0).ok().as_deref(),
            Some("alice")
        );
        assert!(Username::parse("al").is_err());
        assert!(Username::parse("al ice").is_err());
        assert!(Username::parse("ålice").is_err());
        assert!(Username::parse(&"a".repeat(33)).is_err());
    }

    #[test]
    fn names_and_keys() {
        assert!(display_name("  ").is_err());
        assert!(display_name("Bob\u{7}").is_err());
        assert_eq!(display_name(" Bob ").ok().as_deref(), Some("Bob"));
        assert!(client_msg_id("").is_err());
        assert!(client_msg_id("a b").is_err());
        assert!(client_msg_id(&"x".repeat(65)).is_err());
        assert!(message_content("hi\0", 10).is_err());
        assert!(matches!(
            message_content("12345", 4),
            Err(ServiceError::PayloadTooLarge(_))
        ));
        assert!(Password::parse("short").is_err());
    }
}
