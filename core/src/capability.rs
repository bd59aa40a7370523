//! Capability tokens: short-lived, Ed25519-signed permission to make one
//! kind of tool call, verifiable offline with the node's public key.
//!
//! Compact form (for headers such as `X-Capability-Token`):
//! `lxc2.<base64url(claims)>.<base64url(signature)>`, no padding, where
//! `claims` is the RFC 8785 canonical JSON of [`TokenClaims`] and the
//! signature is Ed25519 over `b"lexecon-cap-v2\n" ‖ SHA-256(claims)` (the 32
//! raw digest bytes; 47 bytes in all). Signing the digest rather than the
//! ~430-byte claims, behind a context this short, keeps each of Ed25519's
//! two SHA-512 passes to one block.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use crate::signer::{self, VerifyError};

/// Prefix of every compact token.
pub const TOKEN_PREFIX: &str = "lxc2.";
/// Domain separation for token signatures: 15 bytes, so that Ed25519's
/// second SHA-512 input (`R ‖ A ‖ message`, 64 + 47 bytes) still fits one
/// 128-byte block with its padding.
pub const TOKEN_SIGNING_CONTEXT: &[u8] = b"lexecon-cap-v2\n";
/// Longest compact token accepted by [`verify_token`].
pub const MAX_TOKEN_LEN: usize = 4096;

/// Largest integer an IEEE double holds exactly (2^53): token times above it
/// would not be canonical RFC 8785 numbers, so they are refused.
pub const MAX_TIME: u64 = 1 << 53;

/// What a token grants, and for how long.
///
/// Fields are declared in canonical (sorted) order, so serialising this
/// struct with `serde_json` yields its RFC 8785 form directly (times are
/// kept at or below [`MAX_TIME`], where both forms agree).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenClaims {
    /// The resolved action id.
    pub action: String,
    /// The actor the decision was for, as the request named it.
    pub actor: String,
    /// The decision that granted it.
    pub decision_hash: String,
    /// Unix seconds; invalid from this instant on.
    pub expires_at: u64,
    /// Unix seconds.
    pub issued_at: u64,
    /// The signing key's id (`ed25519:…`).
    pub key_id: String,
    /// The node that issued it.
    pub node_id: String,
    /// The policy that decided.
    pub policy_version_hash: String,
    /// Unique id (`tok_…`).
    pub token_id: String,
    /// The tool it may call, as the request named it.
    pub tool: String,
}

impl TokenClaims {
    /// The canonical JSON of the claims.
    ///
    /// Written by hand (it is on every permit's path); a unit test checks
    /// it against `serde_json`'s serialisation of the same struct.
    pub fn canonical(&self) -> Result<Vec<u8>, TokenError> {
        let mut out = Vec::with_capacity(512);
        self.write_canonical(&mut out);
        Ok(out)
    }

    /// Appends [`TokenClaims::canonical`]'s bytes to `out`.
    pub fn write_canonical(&self, out: &mut Vec<u8>) {
        use crate::canonical::{write_string as string, write_u64};
        out.extend_from_slice(b"{\"action\":");
        string(out, &self.action);
        out.extend_from_slice(b",\"actor\":");
        string(out, &self.actor);
        out.extend_from_slice(b",\"decision_hash\":");
        string(out, &self.decision_hash);
        out.extend_from_slice(b",\"expires_at\":");
        write_u64(out, self.expires_at);
        out.extend_from_slice(b",\"issued_at\":");
        write_u64(out, self.issued_at);
        out.extend_from_slice(b",\"key_id\":");
        string(out, &self.key_id);
        out.extend_from_slice(b",\"node_id\":");
        string(out, &self.node_id);
        out.extend_from_slice(b",\"policy_version_hash\":");
        string(out, &self.policy_version_hash);
        out.extend_from_slice(b",\"token_id\":");
        string(out, &self.token_id);
        out.extend_from_slice(b",\"tool\":");
        string(out, &self.tool);
        out.push(b'}');
    }

    /// The exact bytes that are signed.
    pub fn signing_message(&self) -> Result<[u8; SIGNING_MESSAGE_LEN], TokenError> {
        Ok(signing_message(&self.canonical()?))
    }

    /// The compact string form, given the signature over
    /// [`TokenClaims::signing_message`].
    pub fn encode(&self, signature: &[u8; 64]) -> Result<String, TokenError> {
        Ok(encode(&self.canonical()?, signature))
    }
}

/// Length of [`signing_message`]: the context and a SHA-256 digest.
pub const SIGNING_MESSAGE_LEN: usize = TOKEN_SIGNING_CONTEXT.len() + 32;

// One SHA-512 block holds 111 bytes of input (17 go to padding and length).
const _: () = assert!(64 + SIGNING_MESSAGE_LEN <= 111);

/// `TOKEN_SIGNING_CONTEXT ‖ SHA-256(canonical claims)`.
pub fn signing_message(canonical_claims: &[u8]) -> [u8; SIGNING_MESSAGE_LEN] {
    let mut msg = [0u8; SIGNING_MESSAGE_LEN];
    let (context, digest) = msg.split_at_mut(TOKEN_SIGNING_CONTEXT.len());
    context.copy_from_slice(TOKEN_SIGNING_CONTEXT);
    digest.copy_from_slice(&crate::hash::sha256(canonical_claims));
    msg
}

/// The compact token for canonical claims and their signature.
pub fn encode(canonical_claims: &[u8], signature: &[u8; 64]) -> String {
    use base64_simd::URL_SAFE_NO_PAD as B64;
    let claims_len = B64.encoded_length(canonical_claims.len());
    let signature_len = B64.encoded_length(signature.len());
    let mut token = String::with_capacity(TOKEN_PREFIX.len() + claims_len + 1 + signature_len);
    token.push_str(TOKEN_PREFIX);
    B64.encode_append(canonical_claims, &mut token);
    token.push('.');
    B64.encode_append(signature, &mut token);
    token
}

/// A token as it travels with an allowed decision: its claims plus the
/// compact string to present to the tool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapabilityToken {
    /// The claims, flattened (`token_id`, `actor`, `tool`, …).
    #[serde(flatten)]
    pub claims: TokenClaims,
    /// `lxc2.…`: what the tool verifies.
    pub token: String,
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenError {
    /// Not a Lexecon token, or damaged.
    Malformed(String),
    /// Signed by another key than the one given.
    UnknownKey {
        /// The key id in the token.
        key_id: String,
    },
    /// The signature does not match the claims.
    BadSignature,
    /// Past `expires_at`.
    Expired {
        /// When it expired (Unix seconds).
        expires_at: u64,
    },
    /// Issued for another tool.
    WrongTool {
        /// The tool the caller expected.
        expected: String,
        /// The tool in the token.
        actual: String,
    },
    /// Issued for another actor.
    WrongActor {
        /// The actor the caller expected.
        expected: String,
        /// The actor in the token.
        actual: String,
    },
}

impl TokenError {
    /// A stable machine-readable code (`expired`, `bad_signature`, …).
    pub fn code(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "malformed",
            Self::UnknownKey { .. } => "unknown_key",
            Self::BadSignature => "bad_signature",
            Self::Expired { .. } => "expired",
            Self::WrongTool { .. } => "wrong_tool",
            Self::WrongActor { .. } => "wrong_actor",
        }
    }
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed(why) => write!(f, "malformed capability token: {why}"),
            Self::UnknownKey { key_id } => write!(
                f,
                "capability token was signed by key `{key_id}`, not this node's key"
            ),
            Self::BadSignature => write!(f, "capability token signature does not verify"),
            Self::Expired { expires_at } => {
                write!(f, "capability token expired at {expires_at} (unix seconds)")
            }
            Self::WrongTool { expected, actual } => write!(
                f,
                "capability token is for tool `{actual}`, not `{expected}`"
            ),
            Self::WrongActor { expected, actual } => write!(
                f,
                "capability token is for actor `{actual}`, not `{expected}`"
            ),
        }
    }
}

impl std::error::Error for TokenError {}

/// What a verifier additionally requires of a token.
#[derive(Debug, Clone, Copy, Default)]
pub struct Expect<'a> {
    /// The tool about to be called.
    pub tool: Option<&'a str>,
    /// The actor calling it.
    pub actor: Option<&'a str>,
}

/// Verifies a compact token offline.
///
/// # Errors
/// [`TokenError`] says what is wrong: checked in the order format, key,
/// signature, expiry, scope.
pub fn verify_token(
    token: &str,
    public_key: &[u8; 32],
    now_s: u64,
    expect: Expect<'_>,
) -> Result<TokenClaims, TokenError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::Malformed(format!(
            "longer than {MAX_TOKEN_LEN} bytes"
        )));
    }
    if token.starts_with("lxc1.") {
        return Err(TokenError::Malformed(
            "a version-1 (`lxc1.`) token: this node issues and verifies `lxc2.` tokens".into(),
        ));
    }
    let rest = token
        .strip_prefix(TOKEN_PREFIX)
        .ok_or_else(|| TokenError::Malformed("missing `lxc2.` prefix".into()))?;
    let (claims_b64, sig_b64) = rest
        .split_once('.')
        .ok_or_else(|| TokenError::Malformed("expected `lxc2.<claims>.<signature>`".into()))?;
    let claims_bytes = URL_SAFE_NO_PAD
        .decode(claims_b64)
        .map_err(|e| TokenError::Malformed(format!("claims: {e}")))?;
    let sig: [u8; 64] = URL_SAFE_NO_PAD
        .decode(sig_b64)
        .map_err(|e| TokenError::Malformed(format!("signature: {e}")))?
        .try_into()
        .map_err(|_| TokenError::Malformed("signature is not 64 bytes".into()))?;
    let claims: TokenClaims = serde_json::from_slice(&claims_bytes)
        .map_err(|e| TokenError::Malformed(format!("claims: {e}")))?;
    if claims.issued_at > MAX_TIME || claims.expires_at > MAX_TIME {
        return Err(TokenError::Malformed(format!(
            "token times must not exceed {MAX_TIME}"
        )));
    }
    // Only the canonical encoding is accepted, so a token has one spelling.
    let canonical_claims = claims.canonical()?;
    if canonical_claims != claims_bytes {
        return Err(TokenError::Malformed(
            "claims are not canonical JSON".into(),
        ));
    }
    if claims.key_id != signer::key_id(public_key) {
        return Err(TokenError::UnknownKey {
            key_id: claims.key_id,
        });
    }
    signer::verify(public_key, &signing_message(&claims_bytes), &sig).map_err(|e| match e {
        VerifyError::BadPublicKey => TokenError::UnknownKey {
            key_id: claims.key_id.clone(),
        },
        VerifyError::BadSignature => TokenError::BadSignature,
    })?;
    if now_s >= claims.expires_at {
        return Err(TokenError::Expired {
            expires_at: claims.expires_at,
        });
    }
    if let Some(tool) = expect.tool
        && tool != claims.tool
    {
        return Err(TokenError::WrongTool {
            expected: tool.into(),
            actual: claims.tool,
        });
    }
    if let Some(actor) = expect.actor
        && actor != claims.actor
    {
        return Err(TokenError::WrongActor {
            expected: actor.into(),
            actual: claims.actor,
        });
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canonical;
    use crate::signer::{Ed25519Signer, Signer};

    pub(crate) fn claims(key: &Ed25519Signer) -> TokenClaims {
        TokenClaims {
            token_id: "tok_1".into(),
            actor: "model".into(),
            tool: "web_search".into(),
            action: "action:read".into(),
            decision_hash: "ab".repeat(32),
            policy_version_hash: "cd".repeat(32),
            issued_at: 1000,
            expires_at: 1300,
            key_id: key.key_id(),
            node_id: "n1".into(),
        }
    }

    fn issue(key: &Ed25519Signer, c: &TokenClaims) -> String {
        let sig = key.sign(&c.signing_message().unwrap()).unwrap();
        c.encode(&sig).unwrap()
    }

    #[test]
    fn round_trip_and_scope() {
        let key = Ed25519Signer::from_seed(&[1; 32]);
        let c = claims(&key);
        let t = issue(&key, &c);
        let pk = key.public_key();
        assert_eq!(
            verify_token(&t, &pk, 1000, Expect::default()),
            Ok(c.clone())
        );
        assert_eq!(
            verify_token(
                &t,
                &pk,
                1299,
                Expect {
                    tool: Some("web_search"),
                    actor: Some("model")
                }
            ),
            Ok(c)
        );
        assert_eq!(
            verify_token(&t, &pk, 1300, Expect::default()),
            Err(TokenError::Expired { expires_at: 1300 })
        );
        assert!(matches!(
            verify_token(
                &t,
                &pk,
                1000,
                Expect {
                    tool: Some("shell"),
                    actor: None
                }
            ),
            Err(TokenError::WrongTool { .. })
        ));
        assert!(matches!(
            verify_token(
                &t,
                &pk,
                1000,
                Expect {
                    tool: None,
                    actor: Some("user")
                }
            ),
            Err(TokenError::WrongActor { .. })
        ));
        let other = Ed25519Signer::from_seed(&[2; 32]);
        assert!(matches!(
            verify_token(&t, &other.public_key(), 1000, Expect::default()),
            Err(TokenError::UnknownKey { .. })
        ));
    }

    #[test]
    fn struct_order_is_canonical() {
        let key = Ed25519Signer::from_seed(&[1; 32]);
        let mut c = claims(&key);
        for text in [
            "é\u{1}\"x/\u{7f}",
            "",
            "web_search",
            "a\\b\n\u{1F600}tool:long_name_x",
        ] {
            c.actor = text.into();
            c.tool = text.chars().rev().collect();
            c.node_id = format!("{text}{text}");
            c.expires_at = MAX_TIME;
            assert_eq!(c.canonical().unwrap(), canonical::to_vec_from(&c).unwrap());
            assert_eq!(c.canonical().unwrap(), serde_json::to_vec(&c).unwrap());
        }
    }

    #[test]
    fn times_beyond_2_pow_53_are_refused() {
        // Fuzz finding: such integers are not canonical RFC 8785 numbers.
        let key = Ed25519Signer::from_seed(&[1; 32]);
        let mut c = claims(&key);
        c.issued_at = MAX_TIME + 1;
        let t = issue(&key, &c);
        assert!(matches!(
            verify_token(&t, &key.public_key(), 1000, Expect::default()),
            Err(TokenError::Malformed(_))
        ));
    }

    #[test]
    fn malformed_tokens() {
        let pk = Ed25519Signer::from_seed(&[1; 32]).public_key();
        for t in [
            "",
            "lxc2.",
            "lxc2.abc",
            "lxc2.!!.!!",
            "jwt.a.b",
            "lxc2.e30.AAAA",
            "lxc1.e30.AAAA",
        ] {
            assert!(
                matches!(
                    verify_token(t, &pk, 0, Expect::default()),
                    Err(TokenError::Malformed(_))
                ),
                "{t}"
            );
        }
    }

    #[test]
    fn forged_claims_fail() {
        let key = Ed25519Signer::from_seed(&[1; 32]);
        let mut c = claims(&key);
        let t = issue(&key, &c);
        let sig = t.rsplit('.').next().unwrap();
        c.expires_at = 99_999;
        let forged = format!(
            "{TOKEN_PREFIX}{}.{sig}",
            URL_SAFE_NO_PAD.encode(canonical::to_vec_from(&c).unwrap())
        );
        assert_eq!(
            verify_token(&forged, &key.public_key(), 1000, Expect::default()),
            Err(TokenError::BadSignature)
        );
    }
}
