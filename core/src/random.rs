//! Randomness for identifiers (request, decision and token ids).
//!
//! Production uses the platform's generator through `getrandom` (WASI
//! `random` in the component, `crypto.getRandomValues` in JavaScript). Tests
//! and the cross-host vectors use [`SeededRandom`], a deterministic byte
//! stream, so every host produces byte-identical ledger entries.

use sha2::{Digest, Sha256};

/// A source of random bytes.
pub trait Random {
    /// Fills `buf` with random bytes.
    ///
    /// # Errors
    /// When the platform has no randomness to give.
    fn fill(&mut self, buf: &mut [u8]) -> Result<(), RandomError>;
}

/// The platform generator could not produce bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RandomError(pub String);

impl std::fmt::Display for RandomError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "no randomness available: {}", self.0)
    }
}

impl std::error::Error for RandomError {}

/// The operating system's (or runtime's) generator, via `getrandom`.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsRandom;

impl Random for OsRandom {
    fn fill(&mut self, buf: &mut [u8]) -> Result<(), RandomError> {
        getrandom::fill(buf).map_err(|e| RandomError(e.to_string()))
    }
}

/// A deterministic stream: block `i` is `SHA-256(seed ‖ i as u64 LE)`,
/// consumed byte by byte, so the output does not depend on how callers
/// split their reads. Not for secrets.
#[derive(Debug, Clone)]
pub struct SeededRandom {
    seed: Vec<u8>,
    counter: u64,
    block: [u8; 32],
    used: usize,
}

impl SeededRandom {
    /// A stream determined by `seed`.
    pub fn new(seed: &[u8]) -> Self {
        Self {
            seed: seed.to_vec(),
            counter: 0,
            block: [0; 32],
            used: 32,
        }
    }

    /// The next byte of the stream.
    pub fn next_byte(&mut self) -> u8 {
        if self.used == self.block.len() {
            let mut h = Sha256::new();
            h.update(&self.seed);
            h.update(self.counter.to_le_bytes());
            self.block = h.finalize().into();
            self.counter = self.counter.wrapping_add(1);
            self.used = 0;
        }
        let b = self.block.get(self.used).copied().unwrap_or(0);
        self.used += 1;
        b
    }
}

impl Random for SeededRandom {
    fn fill(&mut self, buf: &mut [u8]) -> Result<(), RandomError> {
        for b in buf.iter_mut() {
            *b = self.next_byte();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_stream_ignores_read_sizes() {
        let mut a = SeededRandom::new(b"seed");
        let mut b = SeededRandom::new(b"seed");
        let mut one = [0u8; 70];
        a.fill(&mut one).unwrap();
        let mut parts = [0u8; 70];
        let (x, y) = parts.split_at_mut(33);
        b.fill(x).unwrap();
        b.fill(y).unwrap();
        assert_eq!(one, parts);
    }

    #[test]
    fn os_random_fills() {
        let mut buf = [0u8; 32];
        OsRandom.fill(&mut buf).unwrap();
        assert_ne!(buf, [0u8; 32]);
    }
}
