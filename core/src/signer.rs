//! Ed25519 signing, behind a trait so keys can stay in the host.
//!
//! Inside the WASI component the [`Signer`] is the host's `signer` import;
//! natively and in JavaScript it is [`Ed25519Signer`]. Verification needs
//! only a public key and runs anywhere ([`verify`]).

use ed25519_dalek::hazmat::{self, ExpandedSecretKey};
use ed25519_dalek::{Sha512, Signature, SigningKey, VerifyingKey};

use crate::hash;

/// Something that signs with the node's Ed25519 key.
pub trait Signer {
    /// The 64-byte Ed25519 signature of `message`.
    ///
    /// # Errors
    /// When the key is unavailable (a KMS or host call failed).
    fn sign(&self, message: &[u8]) -> Result<[u8; 64], SignerError>;

    /// The 32-byte Ed25519 public key.
    fn public_key(&self) -> [u8; 32];

    /// The key's id: `ed25519:` and the first 16 hex digits of the SHA-256
    /// of the public key.
    fn key_id(&self) -> String {
        key_id(&self.public_key())
    }
}

/// Signing failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignerError(pub String);

impl std::fmt::Display for SignerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "signing failed: {}", self.0)
    }
}

impl std::error::Error for SignerError {}

/// The id of an Ed25519 public key (see [`Signer::key_id`]).
pub fn key_id(public_key: &[u8; 32]) -> String {
    let digest = hash::sha256_hex(public_key);
    format!("ed25519:{}", digest.get(..16).unwrap_or_default())
}

/// An in-process Ed25519 key.
pub struct Ed25519Signer {
    key: SigningKey,
    /// The key's SHA-512 expansion (secret scalar and nonce prefix), derived
    /// once here instead of on every signature as `SigningKey::sign` does;
    /// the signatures are the same bytes (RFC 8032 signing is deterministic).
    /// Zeroed on drop, like the key.
    expanded: ExpandedSecretKey,
}

impl Clone for Ed25519Signer {
    fn clone(&self) -> Self {
        Self::from_seed(&self.key.to_bytes())
    }
}

impl std::fmt::Debug for Ed25519Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret.
        f.debug_struct("Ed25519Signer")
            .field("key_id", &self.key_id())
            .finish()
    }
}

impl Ed25519Signer {
    /// A signer from a 32-byte secret seed.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Self {
            key: SigningKey::from_bytes(seed),
            expanded: ExpandedSecretKey::from(seed),
        }
    }

    /// A signer with a fresh key from the platform's generator.
    ///
    /// # Errors
    /// When the platform has no randomness.
    pub fn generate() -> Result<Self, crate::random::RandomError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| crate::random::RandomError(e.to_string()))?;
        Ok(Self::from_seed(&seed))
    }

    /// The secret seed (for writing the node's key file).
    pub fn seed(&self) -> [u8; 32] {
        self.key.to_bytes()
    }
}

impl Signer for Ed25519Signer {
    fn sign(&self, message: &[u8]) -> Result<[u8; 64], SignerError> {
        Ok(hazmat::raw_sign::<Sha512>(&self.expanded, message, self.key.as_ref()).to_bytes())
    }

    fn public_key(&self) -> [u8; 32] {
        self.key.verifying_key().to_bytes()
    }
}

/// Why a signature did not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyError {
    /// The public key is not a valid Ed25519 point.
    BadPublicKey,
    /// The signature does not match the message and key.
    BadSignature,
}

/// Whether `public_key` is one a signature can be checked with: a valid
/// Ed25519 point of large order (a weak, small-order key verifies forged
/// signatures and is refused by [`verify`]).
///
/// # Errors
/// [`VerifyError::BadPublicKey`].
pub fn check_public_key(public_key: &[u8; 32]) -> Result<(), VerifyError> {
    match VerifyingKey::from_bytes(public_key) {
        Ok(key) if !key.is_weak() => Ok(()),
        _ => Err(VerifyError::BadPublicKey),
    }
}

/// Checks an Ed25519 signature (strict verification: no malleable forms).
///
/// # Errors
/// [`VerifyError`] says which part is wrong.
pub fn verify(
    public_key: &[u8; 32],
    message: &[u8],
    signature: &[u8; 64],
) -> Result<(), VerifyError> {
    let key = VerifyingKey::from_bytes(public_key).map_err(|_| VerifyError::BadPublicKey)?;
    let sig = Signature::from_bytes(signature);
    key.verify_strict(message, &sig)
        .map_err(|_| VerifyError::BadSignature)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_and_verify() {
        let s = Ed25519Signer::from_seed(&[7; 32]);
        let sig = s.sign(b"hello").unwrap();
        assert_eq!(verify(&s.public_key(), b"hello", &sig), Ok(()));
        assert_eq!(
            verify(&s.public_key(), b"hellp", &sig),
            Err(VerifyError::BadSignature)
        );
        assert!(s.key_id().starts_with("ed25519:"));
        assert_eq!(s.key_id().len(), 8 + 16);
        assert!(!format!("{s:?}").contains(&hash::hex(&s.seed())));
    }

    #[test]
    fn signs_the_same_bytes_as_the_library_signer() {
        use ed25519_dalek::Signer as _;
        for seed in [[0u8; 32], [7; 32], [255; 32]] {
            let ours = Ed25519Signer::from_seed(&seed);
            let library = SigningKey::from_bytes(&seed);
            for message in [&b""[..], b"hello", &[9u8; 300]] {
                assert_eq!(
                    ours.sign(message).unwrap(),
                    library.sign(message).to_bytes()
                );
                assert_eq!(ours.clone().sign(message), ours.sign(message));
            }
        }
    }
}
