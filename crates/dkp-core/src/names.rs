//! The names and texts users type, parsed once at the edge so the rest of the
//! code holds only valid values.

mod common;

/// Why a typed value was refused; `field` names the offending input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct InvalidField {
    pub field: &'static str,
    pub reason: &'static str,
}

fn invalid(field: &'static str, reason: &'static str) -> InvalidField {
    InvalidField { field, reason }
}

/// A login name: 3-32 of `A-Z a-z 0-9 _ . -`, unique case-insensitively.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    pub fn parse(text: &str) -> Result<Username, InvalidField> {
        let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-');
        if !(3..=32).contains(&text.len()) || !text.chars().all(ok_char) {
            return Err(invalid("username", "3-32 characters of A-Z a-z 0-9 _ . -"));
        }
        Ok(Username(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form uniqueness is checked on.
    pub fn folded(&self) -> String {
        self.0.to_ascii_lowercase()
    }
}

/// A password: at least 8 characters, at most 1024 bytes so hashing stays
/// bounded, and none of the most common ones (`common::PASSWORDS`, compared
/// case-insensitively), which guessing tries first.
pub fn check_password(password: &str) -> Result<(), InvalidField> {
    if password.chars().count() < 8 || password.len() > 1024 {
        return Err(invalid("password", "8 characters at least, 1024 bytes at most"));
    }
    let folded = password.to_lowercase();
    if common::PASSWORDS.contains(&folded.as_str()) {
        return Err(invalid("password", "one of the most common passwords, which are guessed first; choose another"));
    }
    Ok(())
}

/// A guild's address: 2-48 of `a-z 0-9 -`, not starting or ending with `-`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Slug(String);

impl Slug {
    pub fn parse(text: &str) -> Result<Slug, InvalidField> {
        let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
        if !(2..=48).contains(&text.len()) || !text.chars().all(ok_char) || text.starts_with('-') || text.ends_with('-')
        {
            return Err(invalid("slug", "2-48 characters of a-z 0-9 -, not starting or ending with -"));
        }
        Ok(Slug(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Free text shown to people (a guild or pool name, a reason): trimmed, not
/// empty, at most `max` characters, no control characters.
pub fn display_text(field: &'static str, text: &str, max: usize) -> Result<String, InvalidField> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    if trimmed.chars().count() > max {
        return Err(invalid(field, "too long"));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(invalid(field, "must not contain control characters"));
    }
    Ok(trimmed.to_owned())
}

/// An `Idempotency-Key`: 1-255 visible ASCII characters.
pub fn check_idempotency_key(key: &str) -> Result<(), InvalidField> {
    if key.is_empty() || key.len() > 255 || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(invalid("Idempotency-Key", "1-255 visible ASCII characters"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_allow_letters_digits_and_three_marks() {
        assert!(Username::parse("Ana_the.Bold-1").is_ok());
        assert_eq!(Username::parse("Ana").unwrap().folded(), "ana");
    }

    #[test]
    fn usernames_too_short_too_long_or_with_spaces_are_rejected() {
        for bad in ["ab", &"x".repeat(33), "a b c", "ané", "a/b/c", ""] {
            assert!(Username::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_seven_character_password_is_rejected() {
        assert!(check_password("1234567").is_err());
        assert!(check_password("k7#pq2zx").is_ok());
        assert!(check_password(&"x".repeat(1025)).is_err());
    }

    #[test]
    fn the_most_common_passwords_are_refused_whatever_their_case() {
        for common in ["password", "12345678", "Password1", "QWERTYUIOP", "iloveyou"] {
            assert_eq!(check_password(common).map_err(|e| e.field), Err("password"), "{common}");
        }
        assert!(check_password("correct horse").is_ok());
        assert!(common::PASSWORDS.iter().all(|p| p.chars().count() >= 8 && *p == p.to_lowercase()));
        let mut sorted = common::PASSWORDS.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), common::PASSWORDS.len(), "no password twice");
    }

    #[test]
    fn slugs_are_lowercase_and_dashed() {
        assert!(Slug::parse("night-owls-2").is_ok());
        for bad in ["Night", "-a", "a-", "a", "a_b", "a b"] {
            assert!(Slug::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn display_text_is_trimmed_and_bounded() {
        assert_eq!(display_text("name", "  Raid  ", 10), Ok("Raid".into()));
        assert!(display_text("name", "   ", 10).is_err());
        assert!(display_text("name", "12345678901", 10).is_err());
        assert!(display_text("name", "a\u{0}b", 10).is_err());
    }

    #[test]
    fn idempotency_keys_are_visible_ascii() {
        assert!(check_idempotency_key("abc-123").is_ok());
        for bad in ["", "a b", "ключ", &"k".repeat(256)] {
            assert!(check_idempotency_key(bad).is_err(), "{bad:?}");
        }
    }
}
