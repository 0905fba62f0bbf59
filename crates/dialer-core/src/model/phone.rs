//! Phone numbers, normalized and validated once at the boundary.
//!
//! Identity (duplicates, blacklist, "already in flight") uses the E.164 form, so `098344484`
//! and `+59898344484` are the same callee. What goes to the trunk is the digits the user gave,
//! cleaned of punctuation: prefixes and formats are routing settings, not number data.

use super::phone_fast::{self, Fast};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Why a phone number was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    /// No digits at all.
    #[error("empty phone number")]
    Empty,
    #[error(
        "phone number {value:?} contains {found:?}, only digits, spaces, + - . ( ) are allowed"
    )]
    /// A character that has no place in a phone number.
    BadCharacter {
        /// The number as given.
        value: String,
        /// The first character refused.
        found: char,
    },
    #[error("phone number {value:?} has {digits} digits, expected 3 to 15")]
    /// Too few or too many digits for any number.
    BadLength {
        /// The number as given.
        value: String,
        /// How many digits it has.
        digits: usize,
    },
    #[error("phone number {value:?} is not a valid number for region {region}: {reason}")]
    /// Not a number of the region's numbering plan.
    Invalid {
        /// The number as given.
        value: String,
        /// The region it was read in (ISO alpha-2).
        region: String,
        /// What the numbering plan says is wrong.
        reason: String,
    },
    /// The default country is not an ISO 3166 alpha-2 code the numbering plans know.
    #[error("unknown default country {0:?}, expected an ISO 3166 alpha-2 code such as US or UY")]
    UnknownCountry(String),
}

/// A callee's number: E.164 identity plus the dial string sent to the trunk.
///
/// Both parts are short ASCII strings held inline: records are copied often (store snapshots,
/// the hopper) and a number never costs an allocation.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "PhoneNumberRepr", try_from = "PhoneNumberRepr")]
pub struct PhoneNumber {
    /// `+` and digits, the identity of the callee.
    e164: Inline,
    /// Digits (and a leading `+` if given) as the trunk expects them.
    dial: Inline,
}

/// Longest part of a number. E.164 allows 15 digits, but the numbering plans libphonenumber
/// validates go to a 3-digit country code and 17 national digits (some German numbers have
/// 17 digits in all), so room for `+` and 23 digits.
const MAX_NUMBER_BYTES: usize = 24;

/// Up to [`MAX_NUMBER_BYTES`] bytes of `+` and ASCII digits (zero-padded, so `Eq` and `Hash`
/// on the array are those of the text).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct Inline {
    len: u8,
    bytes: [u8; MAX_NUMBER_BYTES],
}

impl Inline {
    /// `None` if longer than [`MAX_NUMBER_BYTES`]. Callers have checked the characters.
    fn new(s: &str) -> Option<Inline> {
        Inline::from_ascii(s.as_bytes())
    }

    /// `None` if longer than [`MAX_NUMBER_BYTES`]. Callers have checked that every byte is
    /// `+` or an ASCII digit (so the bytes are UTF-8, which `as_str` relies on).
    fn from_ascii(s: &[u8]) -> Option<Inline> {
        if s.len() > MAX_NUMBER_BYTES {
            return None;
        }
        debug_assert!(s.iter().all(|&b| b == b'+' || b.is_ascii_digit()));
        let mut bytes = [0u8; MAX_NUMBER_BYTES];
        bytes[..s.len()].copy_from_slice(s);
        Some(Inline {
            len: s.len() as u8,
            bytes,
        })
    }

    fn as_str(&self) -> &str {
        let bytes = &self.bytes[..usize::from(self.len)];
        // SAFETY: `from_ascii` is the only writer, and its callers check that every byte it
        // copies into the first `len` is `+` or an ASCII digit: valid UTF-8. (Read on every
        // eligibility check, so it skips re-validating.)
        unsafe { std::str::from_utf8_unchecked(bytes) }
    }
}

/// The serialized form: two strings, as before numbers were held inline.
#[derive(Serialize, Deserialize)]
struct PhoneNumberRepr {
    e164: String,
    dial: String,
}

impl From<PhoneNumber> for PhoneNumberRepr {
    fn from(n: PhoneNumber) -> Self {
        PhoneNumberRepr {
            e164: n.e164().to_owned(),
            dial: n.dial_string().to_owned(),
        }
    }
}

impl TryFrom<PhoneNumberRepr> for PhoneNumber {
    type Error = PhoneError;
    fn try_from(r: PhoneNumberRepr) -> Result<Self, PhoneError> {
        PhoneNumber::from_trusted(&r.e164, &r.dial)
    }
}

impl PartialOrd for PhoneNumber {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for PhoneNumber {
    /// By E.164, then dial string, as text.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.e164(), self.dial_string()).cmp(&(other.e164(), other.dial_string()))
    }
}

impl fmt::Debug for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PhoneNumber")
            .field("e164", &self.e164())
            .field("dial", &self.dial_string())
            .finish()
    }
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
        // The common case, a plain number the fast path accepts, skips the library; it
        // replays the library's algorithm (see `phone_fast`). Rejections still go through the
        // library, for its error message.
        if let Fast::Valid(e164) = phone_fast::classify(&dial, region.as_ref()) {
            return PhoneNumber::from_checked_parts(raw, &e164, &dial);
        }
        library_parse(raw, dial, default_country, region)
    }
}

/// The main country (ISO alpha-2) of a country calling code, from libphonenumber's metadata
/// (VICIdial's `phone_code`: 1 → US, 44 → GB, 598 → UY); `None` for a code no country uses.
///
/// ```
/// use dialer_core::model::phone::country_of_calling_code;
/// assert_eq!(country_of_calling_code(44).as_deref(), Some("GB"));
/// assert_eq!(country_of_calling_code(1).as_deref(), Some("US"));
/// assert_eq!(country_of_calling_code(999), None);
/// ```
pub fn country_of_calling_code(code: u16) -> Option<String> {
    let all = phonenumber::metadata::DATABASE.by_code(&code)?;
    all.iter()
        .find(|m| m.is_main_country_for_code())
        .or(all.first())
        .map(|m| m.id().to_owned())
        .filter(|id| id.len() == 2)
}

/// The `phonenumber` crate's parse, validation and E.164 formatting of a cleaned dial string.
pub(super) fn library_parse(
    raw: &str,
    dial: String,
    default_country: &str,
    region: phonenumber::country::Id,
) -> Result<PhoneNumber, PhoneError> {
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
    PhoneNumber::from_checked_parts(raw, &e164, &dial)
}

impl PhoneNumber {
    /// Builds a number from parts already validated (e.g. read back from the store).
    ///
    /// Still refuses anything but digits and a leading `+`, so nothing unsafe can reach a
    /// dial string even from a corrupted database.
    pub fn from_trusted(e164: &str, dial: &str) -> Result<PhoneNumber, PhoneError> {
        PhoneNumber::from_trusted_bytes(e164.as_bytes(), dial.as_bytes())
    }

    /// [`PhoneNumber::from_trusted`] from bytes (a store's blob, a number written digit by
    /// digit): the same checks, and no text to validate first (every byte accepted is ASCII).
    pub fn from_trusted_bytes(e164: &[u8], dial: &[u8]) -> Result<PhoneNumber, PhoneError> {
        for s in [e164, dial] {
            // Checked as bytes (a simulator makes one number per dial); only a refusal looks
            // for the character to name. A byte of a non-ASCII character is never a digit.
            let clean = s
                .iter()
                .enumerate()
                .all(|(i, &b)| b.is_ascii_digit() || (b == b'+' && i == 0));
            if !clean {
                let text = String::from_utf8_lossy(s);
                let found = text
                    .char_indices()
                    .find(|&(i, c)| !(c.is_ascii_digit() || (c == '+' && i == 0)))
                    .map_or(char::REPLACEMENT_CHARACTER, |(_, c)| c);
                return Err(PhoneError::BadCharacter {
                    value: text.into_owned(),
                    found,
                });
            }
            if s.iter().all(|&b| b == b'+') {
                return Err(PhoneError::Empty);
            }
        }
        match (Inline::from_ascii(e164), Inline::from_ascii(dial)) {
            (Some(e164), Some(dial)) => Ok(PhoneNumber { e164, dial }),
            _ => {
                let digits = |s: &[u8]| s.iter().filter(|&&b| b != b'+').count();
                Err(PhoneError::BadLength {
                    value: String::from_utf8_lossy(e164).into_owned(),
                    digits: digits(e164).max(digits(dial)),
                })
            }
        }
    }

    /// Parts made only of `+` and digits; refused if either is longer than E.164 allows.
    fn from_checked_parts(raw: &str, e164: &str, dial: &str) -> Result<PhoneNumber, PhoneError> {
        match (Inline::new(e164), Inline::new(dial)) {
            (Some(e164), Some(dial)) => Ok(PhoneNumber { e164, dial }),
            _ => {
                let digits = |s: &str| s.trim_start_matches('+').len();
                Err(PhoneError::BadLength {
                    value: raw.to_owned(),
                    digits: digits(e164).max(digits(dial)),
                })
            }
        }
    }

    /// The E.164 identity (`+` and digits).
    pub fn e164(&self) -> &str {
        self.e164.as_str()
    }

    /// The digits as typed in the base file (punctuation removed). Dial strings are made by
    /// [`crate::Routing::dial_string`], in the campaign's format, not from this.
    pub fn dial_string(&self) -> &str {
        self.dial.as_str()
    }

    /// The number as dialed inside its own country, digits only, with the country's trunk
    /// prefix where it uses one (`2125550123` in the US, `02079460000` in the UK). Derived
    /// from the E.164 identity, so it never depends on how the number was typed.
    pub fn national(&self) -> String {
        let e164 = self.e164();
        // North America has no trunk prefix in national format: drop the country code. The
        // common case, and no library call.
        if let Some(rest) = e164.strip_prefix("+1") {
            return rest.to_owned();
        }
        match phonenumber::parse(None, e164) {
            Ok(n) => n
                .format()
                .mode(phonenumber::Mode::National)
                .to_string()
                .chars()
                .filter(char::is_ascii_digit)
                .collect(),
            // Unreachable for a validated number; the E.164 digits are the safe answer.
            Err(_) => e164.trim_start_matches('+').to_owned(),
        }
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.e164())
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
    fn parts_longer_than_e164_allows_are_refused() {
        assert!(PhoneNumber::from_trusted("+123456789012345678901234", "1").is_err());
        assert!(PhoneNumber::from_trusted("+12345678901234567890123", "+1234567890").is_ok());
        assert!(PhoneNumber::parse("+1 234 567 890 123 456", "US").is_err());
    }

    #[test]
    fn serialized_form_is_two_strings_and_is_checked_on_the_way_back() {
        let n = PhoneNumber::parse("098344484", "UY").unwrap();
        let json = serde_json::to_string(&n).unwrap();
        assert_eq!(json, r#"{"e164":"+59898344484","dial":"098344484"}"#);
        assert_eq!(serde_json::from_str::<PhoneNumber>(&json).unwrap(), n);
        let bad = r#"{"e164":"+598\r\n","dial":"098"}"#;
        assert!(serde_json::from_str::<PhoneNumber>(bad).is_err());
    }

    #[test]
    fn numbers_order_by_their_text() {
        let a = PhoneNumber::from_trusted("+12", "12").unwrap();
        let b = PhoneNumber::from_trusted("+111", "111").unwrap();
        assert!(b < a, "'+111' sorts before '+12' as text");
    }

    #[test]
    fn trusted_parts_still_refuse_line_breaks() {
        assert!(PhoneNumber::from_trusted("+1\n", "1").is_err());
        assert!(PhoneNumber::from_trusted("+12125550123", "2125550123").is_ok());
    }

    #[test]
    fn trusted_bytes_are_checked_like_trusted_text() {
        let n = PhoneNumber::from_trusted_bytes(b"+12125550123", b"2125550123").unwrap();
        assert_eq!(
            n,
            PhoneNumber::from_trusted("+12125550123", "2125550123").unwrap()
        );
        assert_eq!(n.e164(), "+12125550123");
        // Bytes that are not text are refused, naming what was found, without a panic.
        match PhoneNumber::from_trusted_bytes(b"+1\xff2", b"12") {
            Err(PhoneError::BadCharacter { found, .. }) => {
                assert_eq!(found, char::REPLACEMENT_CHARACTER)
            }
            other => panic!("expected a bad character, got {other:?}"),
        }
        match PhoneNumber::from_trusted_bytes(b"+12", b"1\r2") {
            Err(PhoneError::BadCharacter { found, .. }) => assert_eq!(found, '\r'),
            other => panic!("expected a bad character, got {other:?}"),
        }
        assert!(matches!(
            PhoneNumber::from_trusted_bytes(b"+", b"1"),
            Err(PhoneError::Empty)
        ));
        assert!(PhoneNumber::from_trusted_bytes(b"+1234567890123456789012345", b"1").is_err());
    }
}
