//! The node's Ed25519 key pair on disk: `keys/private_key.pem` (PKCS#8 PEM,
//! mode 0600) and `keys/public_key.pem` (SPKI PEM).
//!
//! The private key is refused when others can read it (as `ssh` does), and
//! it never appears in logs, errors or `Debug` output.

use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::Path;

use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{
    DecodePrivateKey as _, DecodePublicKey as _, EncodePrivateKey as _, EncodePublicKey as _,
};
use ed25519_dalek::{SigningKey, VerifyingKey};
use lexecon_core::{Ed25519Signer, Signer as _};

/// Why a key could not be made, written or read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyError(pub String);

impl std::fmt::Display for KeyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for KeyError {}

/// Generates a fresh key and writes both PEM files (the private one with
/// mode 0600, refusing to replace an existing file).
///
/// # Errors
/// No randomness, or the files cannot be written.
pub fn generate(private_key: &Path, public_key: &Path) -> Result<Ed25519Signer, KeyError> {
    let signer =
        Ed25519Signer::generate().map_err(|e| KeyError(format!("cannot generate a key: {e}")))?;
    let mut seed = signer.seed();
    let signing = SigningKey::from_bytes(&seed);
    seed.fill(0);
    let private_pem = signing
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| KeyError(format!("cannot encode the private key: {e}")))?;
    let public_pem = signing
        .verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .map_err(|e| KeyError(format!("cannot encode the public key: {e}")))?;
    write_new(private_key, private_pem.as_bytes(), 0o600)?;
    write_new(public_key, public_pem.as_bytes(), 0o644)?;
    Ok(signer)
}

fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), KeyError> {
    let fail = |e: std::io::Error| KeyError(format!("cannot write `{}`: {e}", path.display()));
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(fail)?;
    file.write_all(bytes).map_err(fail)?;
    file.sync_all().map_err(fail)?;
    // The umask may have narrowed the mode; make it exact.
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(fail)
}

/// Reads the node's signing key. When `public_key` exists it must hold the
/// matching public key.
///
/// # Errors
/// A missing or unreadable file, a file readable by group or others, a PEM
/// that is not an Ed25519 PKCS#8 key, or a public key that does not match.
pub fn load_signer(private_key: &Path, public_key: &Path) -> Result<Ed25519Signer, KeyError> {
    let meta = fs::metadata(private_key).map_err(|e| {
        KeyError(format!(
            "cannot read the node's private key `{}`: {e}",
            private_key.display()
        ))
    })?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeyError(format!(
            "private key `{}` is accessible by group or others (mode {mode:04o}); run `chmod 600 {}`",
            private_key.display(),
            private_key.display()
        )));
    }
    let pem = fs::read_to_string(private_key).map_err(|e| {
        KeyError(format!(
            "cannot read the node's private key `{}`: {e}",
            private_key.display()
        ))
    })?;
    let signing = SigningKey::from_pkcs8_pem(&pem).map_err(|_| {
        KeyError(format!(
            "`{}` is not an Ed25519 private key in PKCS#8 PEM form",
            private_key.display()
        ))
    })?;
    let mut seed = signing.to_bytes();
    let signer = Ed25519Signer::from_seed(&seed);
    seed.fill(0);
    if public_key.exists() {
        let pk = load_public_key(public_key)?;
        if pk != signer.public_key() {
            return Err(KeyError(format!(
                "`{}` does not hold the public key of `{}`: the key files do not belong together",
                public_key.display(),
                private_key.display()
            )));
        }
    }
    Ok(signer)
}

/// Reads an Ed25519 public key (SPKI PEM).
///
/// # Errors
/// A missing or unreadable file, or a PEM that is not an Ed25519 public key.
pub fn load_public_key(path: &Path) -> Result<[u8; 32], KeyError> {
    let pem = fs::read_to_string(path).map_err(|e| {
        KeyError(format!(
            "cannot read the node's public key `{}`: {e}",
            path.display()
        ))
    })?;
    let key = VerifyingKey::from_public_key_pem(&pem).map_err(|_| {
        KeyError(format!(
            "`{}` is not an Ed25519 public key in SPKI PEM form",
            path.display()
        ))
    })?;
    Ok(key.to_bytes())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn round_trip_and_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let (sk, pk) = (
            dir.path().join("private_key.pem"),
            dir.path().join("public_key.pem"),
        );
        let signer = generate(&sk, &pk).unwrap();
        assert_eq!(
            fs::metadata(&sk).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let pem = fs::read_to_string(&sk).unwrap();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        assert!(
            fs::read_to_string(&pk)
                .unwrap()
                .starts_with("-----BEGIN PUBLIC KEY-----")
        );
        let loaded = load_signer(&sk, &pk).unwrap();
        assert_eq!(loaded.public_key(), signer.public_key());
        assert_eq!(load_public_key(&pk).unwrap(), signer.public_key());
        assert!(generate(&sk, &pk).is_err(), "never overwrites");
        fs::set_permissions(&sk, fs::Permissions::from_mode(0o644)).unwrap();
        let e = load_signer(&sk, &pk).unwrap_err();
        assert!(e.0.contains("chmod 600"), "{e}");
        assert!(!e.0.contains("PRIVATE KEY"));
    }
}
