//! Bearer tokens: read-write (operators, agent desktops, CRMs) and read-only (supervisors).
//! Compared in constant time; never logged.

use crate::problem::Problem;
use axum::http::{header, Method, StatusCode};
use dialer_runtime::config::Secret;
use subtle::ConstantTimeEq;

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    ReadWrite,
}

/// The tokens a server accepts.
#[derive(Clone)]
pub struct Tokens {
    read_write: Vec<Secret>,
    read_only: Vec<Secret>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Tokens({} read-write, {} read-only)",
            self.read_write.len(),
            self.read_only.len()
        )
    }
}

/// Tokens shorter than this are refused at start: they can be guessed.
pub const MIN_TOKEN_LEN: usize = 16;

impl Tokens {
    /// Checks the tokens: at least one read-write token, none short, none in both lists.
    pub fn new(read_write: Vec<Secret>, read_only: Vec<Secret>) -> Result<Tokens, String> {
        if read_write.is_empty() {
            return Err(
                "the API needs at least one read-write token (`tokens` or `token_env` in [api])"
                    .into(),
            );
        }
        for t in read_write.iter().chain(&read_only) {
            if t.expose().len() < MIN_TOKEN_LEN {
                return Err(format!(
                    "an API token is shorter than {MIN_TOKEN_LEN} characters; use a long random one"
                ));
            }
            if t.expose()
                .chars()
                .any(|c| c.is_whitespace() || c.is_control())
            {
                return Err("an API token contains a space or a control character".into());
            }
        }
        Ok(Tokens {
            read_write,
            read_only,
        })
    }

    /// What the presented token grants, if anything. Every stored token is compared (in
    /// constant time), so timing tells nothing about which one matched or how much of it.
    fn grant(&self, presented: &[u8]) -> Option<Access> {
        let mut rw = subtle::Choice::from(0);
        for t in &self.read_write {
            rw |= t.expose().as_bytes().ct_eq(presented);
        }
        let mut ro = subtle::Choice::from(0);
        for t in &self.read_only {
            ro |= t.expose().as_bytes().ct_eq(presented);
        }
        if bool::from(rw) {
            Some(Access::ReadWrite)
        } else if bool::from(ro) {
            Some(Access::Read)
        } else {
            None
        }
    }

    /// Checks a request's `Authorization` header for the access the method needs: reads
    /// (GET, HEAD) need any token, everything else a read-write one.
    pub fn check(
        &self,
        method: &Method,
        headers: &axum::http::HeaderMap,
    ) -> Result<Access, Problem> {
        let Some(value) = headers.get(header::AUTHORIZATION) else {
            return Err(Problem::new(
                StatusCode::UNAUTHORIZED,
                "missing_token",
                "this request needs a bearer token (Authorization: Bearer <token>)",
            ));
        };
        let token = value.as_bytes().strip_prefix(b"Bearer ").ok_or_else(|| {
            Problem::new(
                StatusCode::UNAUTHORIZED,
                "bad_token",
                "the Authorization header must be `Bearer <token>`",
            )
        })?;
        let access = self.grant(token).ok_or_else(|| {
            Problem::new(
                StatusCode::UNAUTHORIZED,
                "bad_token",
                "the bearer token is not one this dialer accepts",
            )
        })?;
        let read = matches!(*method, Method::GET | Method::HEAD);
        if !read && access == Access::Read {
            return Err(Problem::new(
                StatusCode::FORBIDDEN,
                "read_only_token",
                "this token is read-only (supervisor); changes need a read-write token",
            ));
        }
        Ok(access)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(t: &str) -> Secret {
        Secret::from(t.to_owned())
    }

    #[test]
    fn short_tokens_and_no_write_token_are_refused() {
        assert!(Tokens::new(vec![], vec![s("0123456789abcdef")]).is_err());
        assert!(Tokens::new(vec![s("short")], vec![]).is_err());
        assert!(Tokens::new(vec![s("0123456789abcdef")], vec![]).is_ok());
    }

    #[test]
    fn a_prefix_of_a_token_grants_nothing() {
        let t = Tokens::new(vec![s("0123456789abcdef")], vec![s("fedcba9876543210")]).unwrap();
        assert_eq!(t.grant(b"0123456789abcdef"), Some(Access::ReadWrite));
        assert_eq!(t.grant(b"fedcba9876543210"), Some(Access::Read));
        assert_eq!(t.grant(b"0123456789abcde"), None);
        assert_eq!(t.grant(b"0123456789abcdef0"), None);
        assert_eq!(t.grant(b""), None);
    }
}
