//! Names of record variables (base-file columns passed to the dialplan): one grammar,
//! Asterisk's, parsed once at import and checked again before an Originate.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Longest name accepted.
pub const MAX_VARIABLE_NAME: usize = 64;

/// A variable name the telephone system accepts: a letter or `_` first, then letters, digits
/// and `_` (Asterisk's rule), at most [`MAX_VARIABLE_NAME`] bytes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct VariableName(String);

/// Why a text is not a variable name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "problem", rename_all = "snake_case")]
pub enum VariableNameError {
    /// Nothing at all.
    #[error("a variable name cannot be empty")]
    Empty,
    /// Too long.
    #[error("variable name {name:?} is longer than {MAX_VARIABLE_NAME} characters")]
    TooLong {
        /// The name given.
        name: String,
    },
    /// Starts with something else than a letter or `_` (a digit, say).
    #[error("variable name {name:?} must start with a letter or `_`")]
    BadStart {
        /// The name given.
        name: String,
    },
    /// Has a character outside letters, digits and `_`.
    #[error("variable name {name:?} may only contain letters, digits and `_`, not {found:?}")]
    BadCharacter {
        /// The name given.
        name: String,
        /// The first bad character.
        found: char,
    },
}

impl VariableName {
    /// Parses a name with Asterisk's grammar.
    pub fn parse(name: &str) -> Result<VariableName, VariableNameError> {
        let mut chars = name.chars();
        let Some(first) = chars.next() else {
            return Err(VariableNameError::Empty);
        };
        if name.len() > MAX_VARIABLE_NAME {
            return Err(VariableNameError::TooLong {
                name: name.to_owned(),
            });
        }
        if !(first.is_ascii_alphabetic() || first == '_') {
            return Err(VariableNameError::BadStart {
                name: name.to_owned(),
            });
        }
        if let Some(found) = chars.find(|c| !(c.is_ascii_alphanumeric() || *c == '_')) {
            return Err(VariableNameError::BadCharacter {
                name: name.to_owned(),
                found,
            });
        }
        Ok(VariableName(name.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for VariableName {
    type Error = VariableNameError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        VariableName::parse(&s)
    }
}

impl From<VariableName> for String {
    fn from(v: VariableName) -> String {
        v.0
    }
}

impl fmt::Display for VariableName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asterisk_grammar_letter_or_underscore_first() {
        for ok in ["name", "_x", "__INHERIT", "a1", "Contact_2"] {
            assert!(VariableName::parse(ok).is_ok(), "{ok}");
        }
        assert!(matches!(
            VariableName::parse("1st_contact"),
            Err(VariableNameError::BadStart { .. })
        ));
        assert!(matches!(
            VariableName::parse("first-contact"),
            Err(VariableNameError::BadCharacter { found: '-', .. })
        ));
        assert_eq!(VariableName::parse(""), Err(VariableNameError::Empty));
        assert!(VariableName::parse(&"a".repeat(65)).is_err());
        assert_eq!(
            VariableName::parse("1st").unwrap_err().to_string(),
            "variable name \"1st\" must start with a letter or `_`"
        );
    }
}
