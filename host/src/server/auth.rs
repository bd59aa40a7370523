//! API-key authentication: `Authorization: Bearer KEY` or `X-API-Key: KEY`.
//!
//! The key comes from `LEXECON_API_KEY` only (never the config file). Keys
//! are compared as SHA-256 digests in constant time, so neither the content
//! nor the length of the configured key leaks through timing. Keys are never
//! logged.

use axum::http::HeaderMap;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

/// A configured API key (only its digest is kept).
#[derive(Clone)]
pub struct ApiKey {
    digest: [u8; 32],
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(..)")
    }
}

impl ApiKey {
    /// The key `secret`.
    pub fn new(secret: &str) -> Self {
        Self {
            digest: Sha256::digest(secret.as_bytes()).into(),
        }
    }

    /// Whether `candidate` is the key, in constant time.
    pub fn matches(&self, candidate: &str) -> bool {
        let d: [u8; 32] = Sha256::digest(candidate.as_bytes()).into();
        bool::from(self.digest.ct_eq(&d))
    }

    /// Whether the request's headers carry the key.
    pub fn authorizes(&self, headers: &HeaderMap) -> bool {
        let mut ok = false;
        if let Some(v) = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            && let Some((scheme, token)) = v.trim().split_once(' ')
        {
            ok |= scheme.eq_ignore_ascii_case("bearer") && self.matches(token.trim());
        }
        if let Some(v) = headers.get("x-api-key").and_then(|v| v.to_str().ok()) {
            ok |= self.matches(v.trim());
        }
        ok
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn bearer_and_header() {
        let k = ApiKey::new("s3cret");
        let mut h = HeaderMap::new();
        assert!(!k.authorizes(&h));
        h.insert("authorization", "Bearer s3cret".parse().unwrap());
        assert!(k.authorizes(&h));
        h.insert("authorization", "Bearer s3cre".parse().unwrap());
        assert!(!k.authorizes(&h));
        h.insert("x-api-key", "s3cret".parse().unwrap());
        assert!(k.authorizes(&h));
        assert_eq!(format!("{k:?}"), "ApiKey(..)");
    }
}
