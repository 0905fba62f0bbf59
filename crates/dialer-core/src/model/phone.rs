//! Phone numbers, normalized and validated once at the boundary.
//!
//! Identity (duplicates, blacklist, "already in flight") uses the E.164 form, so `098344484`
//! and `+59898344484` are the same callee. What goes to the trunk is the digits the user gave,
//! cleaned of punctuation: prefixes and formats are routing settings, not number data.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Why a phone number was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    #[error("empty phone number")]
    Empty,
    #[error(
        "phone number {value:?} contains {found:?}, only digits, spaces, + - . ( ) are allowed"
    )]
    BadCharacter { value: String, found: char },
    #[error("phone number {value:?} has {digits} digits, expected 3 to 15")]
    BadLength { value: String, digits: usize },
    #[error("phone number {value:?} is not a valid number for region {region}: {reason}")]
    Invalid {
        value: String,
        region: String,
        reason: String,
    },
    #[error("unknown default country {0:?}, expected an ISO 3166 alpha-2 code such as US or UY")]
    UnknownCountry(String),
}

/// A callee's number: E.164 identity plus the dial string sent to the trunk.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PhoneNumber {
    /// `+` and digits, the identity of the callee.
    e164: String,
    /// Digits (and a leading `+` if given) as the trunk expects them.
    dial: String,
}

impl PhoneNumber {
    /// Parses and validates a number; national formats use `default_country` (ISO alpha-2).
    ///
    /// ```
    /// use dialer_core::PhoneNumber;
    /// let n = PhoneNumber::parse("098 344 484", "UY").unwrap();
    /// assert_eq!(n.e164(), "+59898344484");
    /// assert_eq!(n.dial_string(), "098344484");
    /// assert!(PhoneNumber::parse("12\r\nAction: Command", "UY").is_err());
    /// ```
    pub fn parse(raw: &str, default_country: &str) -> Result<PhoneNumber, PhoneError> {
        // Control characters are refused anywhere, even where trimming would hide them.
        if let Some(c) = raw.chars().find(|c| c.is_control()) {
            return Err(PhoneError::BadCharacter {
                value: raw.to_owned(),
                found: c,
            });
        }
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(PhoneError::Empty);
        }
        let mut dial = String::with_capacity(trimmed.len());
        for (i, c) in trimmed.chars().enumerate() {
            match c {
                '0'..='9' => dial.push(c),
                '+' if i == 0 => dial.push(c),
                ' ' | '-' | '.' | '(' | ')' => {}
                other => {
                    return Err(PhoneError::BadCharacter {
                        value: raw.to_owned(),
                        found: other,
                    })
                }
            }
        }
        let digits = dial.trim_start_matches('+').len();
        if !(3..=15).contains(&digits) {
            return Err(PhoneError::BadLength {
                value: raw.to_owned(),
                digits,
            });
        }
        let region = phonenumber::country::Id::from_str(&default_country.to_ascii_uppercase())
            .map_err(|_| PhoneError::UnknownCountry(default_country.to_owned()))?;
        let parsed = phonenumber::parse(Some(region), &dial).map_err(|e| PhoneError::Invalid {
            value: raw.to_owned(),
            region: default_country.to_owned(),
            reason: e.to_string(),
        })?;
        if !phonenumber::is_valid(&parsed) {
            return Err(PhoneError::Invalid {
                value: raw.to_owned(),
                region: default_country.to_owned(),
                reason: "no number plan of the country matches it".to_owned(),
            });
        }
        let e164 = parsed.format().mode(phonenumber::Mode::E164).to_string();
        Ok(PhoneNumber { e164, dial })
    }

    /// Builds a number from parts already validated (e.g. read back from the store).
    ///
    /// Still refuses anything but digits and a leading `+`, so nothing unsafe can reach a
    /// dial string even from a corrupted database.
    pub fn from_trusted(e164: &str, dial: &str) -> Result<PhoneNumber, PhoneError> {
        for s in [e164, dial] {
            if let Some((i, c)) = s
                .char_indices()
                .find(|&(i, c)| !(c.is_ascii_digit() || (c == '+' && i == 0)))
            {
                let _ = i;
                return Err(PhoneError::BadCharacter {
                    value: s.to_owned(),
                    found: c,
                });
            }
            if s.trim_start_matches('+').is_empty() {
                return Err(PhoneError::Empty);
            }
        }
        Ok(PhoneNumber {
            e164: e164.to_owned(),
            dial: dial.to_owned(),
        })
    }

    /// The E.164 identity (`+` and digits).
    pub fn e164(&self) -> &str {
        &self.e164
    }

    /// The digits to send to the trunk, before routing prefixes.
    pub fn dial_string(&self) -> &str {
        &self.dial
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.e164)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uruguayan_mobile_in_national_format_is_normalized() {
        let n = PhoneNumber::parse("098344484", "UY").unwrap();
        assert_eq!(n.e164(), "+59898344484");
        assert_eq!(n.dial_string(), "098344484");
    }

    #[test]
    fn punctuation_is_removed_from_the_dial_string() {
        let n = PhoneNumber::parse("(212) 555-0123", "US").unwrap();
        assert_eq!(n.dial_string(), "2125550123");
        assert_eq!(n.e164(), "+12125550123");
    }

    #[test]
    fn international_and_national_forms_share_an_identity() {
        let a = PhoneNumber::parse("+1 212 555 0123", "UY").unwrap();
        let b = PhoneNumber::parse("2125550123", "US").unwrap();
        assert_eq!(a.e164(), b.e164());
    }

    #[test]
    fn control_characters_are_refused_with_the_value() {
        let err = PhoneError::BadCharacter {
            value: "1\r\n".into(),
            found: '\r',
        };
        assert_eq!(PhoneNumber::parse("1\r\n", "US"), Err(err));
    }

    #[test]
    fn invalid_numbers_are_errors_that_show_the_value() {
        let err = PhoneNumber::parse("12", "US").unwrap_err();
        assert!(err.to_string().contains("\"12\""), "{err}");
        let err = PhoneNumber::parse("0000000000", "US").unwrap_err();
        assert!(err.to_string().contains("0000000000"), "{err}");
    }

    #[test]
    fn unknown_country_is_named() {
        let err = PhoneNumber::parse("2125550123", "XX").unwrap_err();
        assert_eq!(err, PhoneError::UnknownCountry("XX".into()));
    }

    #[test]
    fn trusted_parts_still_refuse_line_breaks() {
        assert!(PhoneNumber::from_trusted("+1\n", "1").is_err());
        assert!(PhoneNumber::from_trusted("+12125550123", "2125550123").is_ok());
    }
}
