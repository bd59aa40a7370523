//! `verify_token` on arbitrary input, against the key of the conformance
//! vectors (seed 0x07 × 32), at a fixed time inside the seed tokens' lifetime.
//!
//! The first byte picks a mode:
//! - even: the rest is a compact token string. Oracle: a token that verifies
//!   has exactly one spelling (re-encoding its claims and signature gives
//!   the same string), carries this key's id, is unexpired, and also passes
//!   with `Expect` set to its own tool and actor.
//! - odd: the rest is the *claims* bytes; the target signs them with the key
//!   and verifies the resulting token. The signature is then always good, so
//!   the result is fully specified: `Malformed` unless the bytes are the
//!   canonical JSON of a `TokenClaims` (and the token fits in
//!   `MAX_TOKEN_LEN`), then `UnknownKey` for another key id, then `Expired`,
//!   else `Ok` with those claims. `BadSignature` must never happen.
#![no_main]

use std::sync::OnceLock;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use lexecon_core::capability::{self, MAX_TOKEN_LEN, TOKEN_PREFIX};
use lexecon_core::{Ed25519Signer, Expect, Signer, TokenClaims, TokenError, verify_token};
use libfuzzer_sys::fuzz_target;

/// Inside the lifetime of the tokens in tests/vectors/modes_and_batches.json.
const NOW_S: u64 = 1_795_525_700;

struct Key {
    signer: Ed25519Signer,
    public: [u8; 32],
    key_id: String,
}

fn key() -> &'static Key {
    static KEY: OnceLock<Key> = OnceLock::new();
    KEY.get_or_init(|| {
        let signer = Ed25519Signer::from_seed(&[7; 32]);
        let public = signer.public_key();
        let key_id = lexecon_core::signer::key_id(&public);
        Key {
            signer,
            public,
            key_id,
        }
    })
}

fn check_accepted(token: &str, claims: &TokenClaims) {
    let k = key();
    assert_eq!(claims.key_id, k.key_id);
    assert!(NOW_S < claims.expires_at, "accepted an expired token");
    let (_, sig_b64) = token.rsplit_once('.').expect("accepted token has no `.`");
    let sig: [u8; 64] = URL_SAFE_NO_PAD
        .decode(sig_b64)
        .expect("accepted signature is not base64url")
        .try_into()
        .expect("accepted signature is not 64 bytes");
    let respelled = claims.encode(&sig).expect("claims do not encode");
    // The signed bytes are RFC 8785 canonical, so other languages agree.
    let jcs = lexecon_core::canonical::to_vec_from(claims).expect("claims do not canonicalise");
    let signed = claims.canonical().expect("claims do not serialise");
    assert!(
        signed == jcs,
        "signed claims bytes are not RFC 8785 canonical:\n  signed: {}\n  JCS:    {}",
        String::from_utf8_lossy(&signed),
        String::from_utf8_lossy(&jcs)
    );
    assert_eq!(respelled, token, "an accepted token has a second spelling");
    let scoped = Expect {
        tool: Some(&claims.tool),
        actor: Some(&claims.actor),
    };
    assert_eq!(
        verify_token(token, &k.public, NOW_S, scoped).as_ref(),
        Ok(claims)
    );
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let k = key();
    if mode & 1 == 0 {
        let Ok(token) = std::str::from_utf8(rest) else {
            return;
        };
        if let Ok(claims) = verify_token(token, &k.public, NOW_S, Expect::default()) {
            check_accepted(token, &claims);
        }
        return;
    }

    // Sign whatever claims bytes the fuzzer made.
    let msg = capability::signing_message(rest);
    let sig = k.signer.sign(&msg).expect("signing failed");
    let token = capability::encode(rest, &sig);
    assert!(token.starts_with(TOKEN_PREFIX));
    let got = verify_token(&token, &k.public, NOW_S, Expect::default());

    let parsed: Option<TokenClaims> = serde_json::from_slice(rest).ok();
    let canonical = parsed.filter(|c| c.canonical().is_ok_and(|bytes| bytes == rest));
    let expected: Result<TokenClaims, &str> = match canonical {
        _ if token.len() > MAX_TOKEN_LEN => Err("malformed"),
        None => Err("malformed"),
        Some(c) if c.issued_at > capability::MAX_TIME || c.expires_at > capability::MAX_TIME => {
            Err("malformed")
        }
        Some(c) if c.key_id != k.key_id => Err("unknown_key"),
        Some(c) if NOW_S >= c.expires_at => Err("expired"),
        Some(c) => Ok(c),
    };
    match (&got, &expected) {
        (Ok(a), Ok(b)) => {
            assert_eq!(a, b);
            check_accepted(&token, a);
        }
        (Err(e), Err(code)) => assert_eq!(e.code(), *code, "{e}"),
        _ => panic!(
            "signed claims {:?}: got {got:?}, expected {expected:?}",
            String::from_utf8_lossy(rest)
        ),
    }
    assert!(!matches!(got, Err(TokenError::BadSignature)));
});
