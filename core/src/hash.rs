//! SHA-256 digests and their lowercase-hex form, the one way Lexecon names
//! content (policy hash, decision hash, entry hash).

use sha2::{Digest, Sha256};

const DIGITS: &[u8; 16] = b"0123456789abcdef";

/// The hex digit for the low four bits of `nibble`.
fn digit(nibble: u8) -> u8 {
    DIGITS
        .get(usize::from(nibble & 0xf))
        .copied()
        .unwrap_or(b'0')
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    prefixed_hex("", bytes)
}

/// `prefix` followed by the lowercase hex of `bytes` (an id such as
/// `dec_…`), built in one allocation.
pub fn prefixed_hex(prefix: &str, bytes: &[u8]) -> String {
    let mut s = vec![0u8; prefix.len() + bytes.len() * 2];
    let (head, digits) = s.split_at_mut(prefix.len());
    head.copy_from_slice(prefix.as_bytes());
    hex_into(bytes, digits);
    // A str followed by ASCII digits is always UTF-8.
    String::from_utf8(s).unwrap_or_default()
}

/// Writes the lowercase hex of `bytes` into `out`, two digits per byte
/// (as many bytes as fit).
pub fn hex_into(bytes: &[u8], out: &mut [u8]) {
    for (b, pair) in bytes.iter().zip(out.chunks_exact_mut(2)) {
        pair.copy_from_slice(&[digit(b >> 4), digit(*b)]);
    }
}

/// Whether `s` is 64 lowercase hex digits (a hash as Lexecon writes it).
pub fn is_hash_hex(s: &[u8]) -> bool {
    s.len() == 64 && s.iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
}

/// Parses exactly 64 lowercase hex digits into 32 bytes.
pub fn parse_hash_hex(s: &str) -> Option<[u8; 32]> {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        }
    }
    let bytes = s.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        let hi = nibble(*pair.first()?)?;
        let lo = nibble(*pair.get(1)?)?;
        *out.get_mut(i)? = (hi << 4) | lo;
    }
    Some(out)
}

/// SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Lowercase-hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&sha256(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips() {
        let h = sha256(b"abc");
        let s = hex(&h);
        assert_eq!(
            s,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(parse_hash_hex(&s), Some(h));
        assert_eq!(parse_hash_hex(&s.to_uppercase()), None);
        assert_eq!(parse_hash_hex("ab"), None);
        let mut into = [0u8; 64];
        hex_into(&h, &mut into);
        assert_eq!(&into[..], s.as_bytes());
        assert!(is_hash_hex(s.as_bytes()));
        assert!(!is_hash_hex(s.to_uppercase().as_bytes()));
        assert!(!is_hash_hex(&s.as_bytes()[1..]));
        assert_eq!(prefixed_hex("dec_", &[0x0f, 0xa0, 0x00]), "dec_0fa000");
        assert_eq!(prefixed_hex("tok_", &[]), "tok_");
    }
}
