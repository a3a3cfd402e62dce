//! The scenarios. Each seeds what it needs through the API, measures, and returns a
//! [`crate::Report`].

pub mod bombs;
pub mod connections;
pub mod crashloop;
pub mod fanout;
pub mod flood;
pub mod history;
pub mod ingest;
pub mod logins;
pub mod reconnect;
pub mod search;
pub mod soak;

/// The number after `key` in a frame's text, e.g. `"content":"t=` → 123.
pub(crate) fn number_after(text: &str, key: &str) -> Option<u64> {
    let start = text.find(key)? + key.len();
    let digits: &str = &text[start..];
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    digits[..end].parse().ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn numbers_are_found_after_keys() {
        assert_eq!(
            super::number_after(r#"{"type":"ack","id":"42","x":1}"#, r#""id":""#),
            Some(42)
        );
        assert_eq!(
            super::number_after(r#"{"content":"t=7"}"#, r#""content":"t="#),
            Some(7)
        );
        assert_eq!(super::number_after("nothing", "id"), None);
    }
}
