//! Values that arrive from clients, parsed once at the edge of the service layer so the
//! rest of the code can trust them.

/// Why a value was refused; the service turns it into its own error (`validation_failed`
/// or `payload_too_large`), so this module depends on nothing above it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// The value breaks a rule of its kind (length, characters, strength).
    #[error("{0}")]
    Invalid(String),
    /// The value is larger than its limit.
    #[error("{0}")]
    TooLarge(String),
}

fn invalid(msg: impl Into<String>) -> DomainError {
    DomainError::Invalid(msg.into())
}

fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

/// A login name: 3–32 of `a-z 0-9 _ . -`, case-insensitive (kept lowercase).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
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
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        if !(8..=256).contains(&raw.chars().count()) {
            return Err(invalid("password must be 8 to 256 characters"));
        }
        Ok(Self(raw.to_owned()))
    }

    /// A password for a new account: `parse`, and hard enough to guess.
    pub fn parse_new(raw: &str, user_inputs: &[&str], min_score: u8) -> Result<Self, DomainError> {
        let password = Self::parse(raw)?;
        password.check_strength(user_inputs, min_score)?;
        Ok(password)
    }

    /// zxcvbn (Dropbox's estimator) scores the password 0–4 against common passwords,
    /// names, words, keyboard patterns, repeats, sequences and dates, and against
    /// `user_inputs` (the username and display name); below `min_score` it is refused
    /// with zxcvbn's reason. It costs up to milliseconds (it reads the first 100
    /// characters), so callers run it off the async threads.
    pub fn check_strength(&self, user_inputs: &[&str], min_score: u8) -> Result<(), DomainError> {
        let estimate = zxcvbn::zxcvbn(&self.0, user_inputs);
        if u8::from(estimate.score()) >= min_score {
            return Ok(());
        }
        let mut reason = String::from("password is too easy to guess");
        let feedback = estimate.feedback();
        // zxcvbn's warnings are whole sentences, ending in a full stop.
        match feedback.and_then(|f| f.warning()) {
            Some(warning) => reason.push_str(&format!(": {warning}")),
            None => reason.push('.'),
        }
        let suggestions: Vec<String> = feedback
            .map(|f| f.suggestions().iter().map(ToString::to_string).collect())
            .unwrap_or_default();
        if suggestions.is_empty() {
            reason.push_str(" Use a longer one, such as a few uncommon words.");
        } else {
            reason.push(' ');
            reason.push_str(&suggestions.join(" "));
        }
        Err(invalid(reason))
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

/// The explicit bidirectional formatting characters (UAX #9): embeddings, overrides and
/// isolates. Each reorders the text after it, so a name holding one can show itself
/// as another ("Trojan Source").
fn is_bidi_format(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// A character that draws nothing: white space, a default-ignorable code point (zero-width
/// spaces and joiners, marks, variation selectors, Hangul fillers, tags…), or the
/// blank Braille pattern.
fn is_invisible(c: char) -> bool {
    use icu_properties::props::{BinaryProperty, DefaultIgnorableCodePoint};
    c.is_whitespace() || c == '\u{2800}' || DefaultIgnorableCodePoint::for_char(c)
}

/// A name people see: trimmed, 1–`max` characters, no control characters, not invisible,
/// no bidirectional overrides (so one cannot pass for another).
fn visible_name(raw: &str, what: &str, max: usize) -> Result<String, DomainError> {
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > max {
        return Err(invalid(format!("{what} must be 1 to {max} characters")));
    }
    if has_control(name) {
        return Err(invalid(format!(
            "{what} must not contain control characters"
        )));
    }
    if name.chars().any(is_bidi_format) {
        return Err(invalid(format!(
            "{what} must not contain bidirectional overrides or isolates (U+202A-U+202E, U+2066-U+2069)"
        )));
    }
    if name.chars().all(is_invisible) {
        return Err(invalid(format!("{what} must contain a visible character")));
    }
    Ok(name.to_owned())
}

/// A display name: 1–64 characters.
pub fn display_name(raw: &str) -> Result<String, DomainError> {
    visible_name(raw, "displayName", 64)
}

/// A group's name: 1–100 characters.
pub fn room_name(raw: &str) -> Result<String, DomainError> {
    visible_name(raw, "name", 100)
}

/// What a user calls one of their devices: 1–64 visible characters.
pub fn device_name(raw: &str) -> Result<String, DomainError> {
    visible_name(raw, "name", 64)
}

/// A client's idempotency key: 1–64 printable ASCII characters.
pub fn client_msg_id(raw: &str) -> Result<String, DomainError> {
    if raw.is_empty() || raw.len() > 64 || !raw.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(invalid(
            "clientMsgId must be 1 to 64 printable ASCII characters",
        ));
    }
    Ok(raw.to_owned())
}

/// Message text: at most `max_bytes` of UTF-8, no NUL.
pub fn message_content(raw: &str, max_bytes: usize) -> Result<String, DomainError> {
    if raw.len() > max_bytes {
        return Err(DomainError::TooLarge(format!(
            "content is larger than {max_bytes} bytes"
        )));
    }
    if raw.contains('\0') {
        return Err(invalid("content must not contain NUL"));
    }
    Ok(raw.to_owned())
}

/// A reaction: one emoji (any Unicode emoji, with its skin tone or as a ZWJ sequence), or
/// a GitHub short code such as `:thumbsup:`, as the emoji it names. `None` for anything
/// else: text, several emojis, an unknown code.
pub fn reaction_emoji(raw: &str) -> Option<&'static str> {
    // The longest emoji (a family with skin tones) is 35 bytes; a short code under 64.
    if raw.is_empty() || raw.len() > 64 {
        return None;
    }
    if let Some(code) = raw.strip_prefix(':').and_then(|r| r.strip_suffix(':')) {
        return emojis::get_by_shortcode(code).map(|e| e.as_str());
    }
    // Keyboards send some emojis without their emoji presentation selector (U+FE0F).
    emojis::get(raw)
        .or_else(|| emojis::get(&format!("{raw}\u{FE0F}")))
        .map(|e| e.as_str())
}

/// How long a reply's quote of a message is, in characters.
pub const PREVIEW_CHARS: usize = 100;

/// The start of a text for a quote: its first `PREVIEW_CHARS` characters, with line
/// breaks and runs of spaces made single spaces.
pub fn preview(text: &str) -> String {
    let mut out = String::new();
    for (i, word) in text.split_whitespace().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(word);
        if out.chars().count() >= PREVIEW_CHARS {
            break;
        }
    }
    out.chars().take(PREVIEW_CHARS).collect()
}

/// The names a text mentions: each `@name` where `name` is a possible username (3–32 of
/// `a-z 0-9 _ . -`, read case-insensitively, without a trailing `.` or `-`) and the `@`
/// does not follow a letter or digit (so `bob@example.com` mentions nobody). Each name
/// once, in order of first mention, at most `max`.
pub fn mentioned_names(text: &str, max: usize) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    let mut prev: Option<char> = None;
    for (i, c) in text.char_indices() {
        let starts = c == '@' && !prev.is_some_and(|p| p.is_alphanumeric() || p == '_');
        prev = Some(c);
        if !starts {
            continue;
        }
        let rest = &text[i + 1..];
        let len = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
            .unwrap_or(rest.len());
        let name = rest[..len]
            .trim_end_matches(['.', '-'])
            .to_ascii_lowercase();
        if (3..=32).contains(&name.len()) && !names.contains(&name) {
            names.push(name);
            if names.len() >= max {
                break;
            }
        }
    }
    names
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
            Err(DomainError::TooLarge(_))
        ));
        assert!(Password::parse("short").is_err());
    }

    #[test]
    fn names_must_be_visible_and_free_of_bidi_overrides() {
        for invisible in [
            "\u{200B}",
            "\u{200B}\u{200C}\u{200D}\u{2060}\u{FEFF}",
            "\u{3164}\u{115F}",
            "\u{2800}",
            "\u{00AD}\u{034F}",
            "\u{200E}\u{200F}",
            "\u{E0041}\u{E0042}",
            "\u{FE0F}",
        ] {
            assert!(display_name(invisible).is_err(), "{invisible:?}");
            assert!(room_name(invisible).is_err(), "{invisible:?}");
        }
        for tricky in [
            "Bob\u{202E}cipe",
            "\u{202D}Alice",
            "Al\u{2066}ice\u{2069}",
            "a\u{202A}b",
            "x\u{2067}",
            "\u{2068}Eve",
        ] {
            let err = display_name(tricky).expect_err(tricky);
            assert!(err.to_string().contains("bidirectional"), "{err}");
        }
        // Joiners and marks inside visible text are fine: emoji sequences, Arabic, Hebrew.
        for fine in [
            "👩\u{200D}💻 Dev",
            "❤\u{FE0F}",
            "محمد",
            "\u{05D3}\u{05E0}\u{05D4} (Dana)",
            "Zoë",
            "李小龍",
        ] {
            assert_eq!(display_name(fine).ok().as_deref(), Some(fine), "{fine:?}");
        }
    }

    #[test]
    fn new_passwords_must_be_hard_to_guess() {
        for weak in [
            "password",
            "12345678",
            "        ",
            "\0\0\0\0\0\0\0\0",
            "qwertyuiop",
            "abcdefgh",
            "Password1!",
            "iloveyou123",
        ] {
            let err = Password::parse_new(weak, &["alice"], 3).expect_err(weak);
            assert!(
                err.to_string().contains("too easy to guess"),
                "{weak:?}: {err}"
            );
        }
        // The username (or display name) itself, or a variant of it.
        assert!(Password::parse_new("marguerite-duras", &["marguerite-duras"], 3).is_err());
        assert!(Password::parse_new("Marguerite-Duras1", &["marguerite-duras"], 3).is_err());
        // A reason a person can act on.
        let err = Password::parse_new("password", &[], 3).expect_err("common");
        assert!(err.to_string().contains("common"), "{err}");
        for strong in [
            "correct horse battery",
            "palaver-bench-password",
            "vG7#qL!2zR@p",
        ] {
            assert!(
                Password::parse_new(strong, &["alice"], 3).is_ok(),
                "{strong:?}"
            );
        }
        // The score is a setting: 0 takes anything of the right length.
        assert!(Password::parse_new("password", &[], 0).is_ok());
        assert!(Password::parse_new("short", &[], 0).is_err());
    }

    #[test]
    fn reactions_are_one_emoji_or_a_short_code() {
        assert_eq!(reaction_emoji("👍"), Some("👍"));
        assert_eq!(reaction_emoji("👍🏽"), Some("👍🏽"));
        assert_eq!(reaction_emoji("👨‍👩‍👧"), Some("👨‍👩‍👧"));
        assert_eq!(reaction_emoji(":thumbsup:"), Some("👍"));
        assert_eq!(reaction_emoji("❤"), Some("❤️"));
        for refused in [
            "",
            "a",
            "👍👍",
            "ok",
            ":nope:",
            "👍 ",
            "<b>",
            &"👍".repeat(20),
        ] {
            assert_eq!(reaction_emoji(refused), None, "{refused:?}");
        }
    }

    #[test]
    fn previews_are_short_and_on_one_line() {
        assert_eq!(preview("hello\n\n  world "), "hello world");
        assert_eq!(preview(&"x".repeat(300)).chars().count(), PREVIEW_CHARS);
        assert_eq!(preview(&"東京 ".repeat(80)).chars().count(), PREVIEW_CHARS);
    }

    #[test]
    fn mentions_are_names_after_an_at() {
        assert_eq!(
            mentioned_names(
                "hi @Bob and @carol.x, see @bob. mail bob@example.com @al",
                10
            ),
            vec!["bob", "carol.x"]
        );
        assert_eq!(mentioned_names("@room @ann @ben", 2), vec!["room", "ann"]);
        assert!(mentioned_names("@@@ @ @", 5).is_empty());
    }
}
