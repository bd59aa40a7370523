//! Randomness for identifiers (request, decision and token ids).
//!
//! Production uses the platform's generator through `getrandom` (WASI
//! `random` in the component, `crypto.getRandomValues` in JavaScript), read
//! 512 bytes at a time through [`BufferedRandom`]. Tests and the cross-host
//! vectors use [`SeededRandom`], a deterministic byte stream, so every host
//! produces byte-identical ledger entries.

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

/// Reads another source `N` bytes at a time and hands the bytes out from a
/// buffer, so most `fill` calls do not reach the platform at all.
///
/// For identifiers, not keys: the buffered bytes sit in this process's
/// memory until used. Where the platform call has a large fixed cost (one
/// `crypto.getRandomValues` call from WebAssembly in Node costs about 5 µs,
/// as much as a tenth of a decision) this removes it from almost every
/// decision. The bytes handed out are the inner source's, in order, so the
/// stream does not depend on how callers split their reads.
#[derive(Debug, Clone)]
pub struct BufferedRandom<R, const N: usize = 512> {
    inner: R,
    buf: [u8; N],
    /// Bytes of `buf` already handed out; `N` when it must be refilled.
    used: usize,
}

impl<R: Random, const N: usize> BufferedRandom<R, N> {
    /// Buffers `inner`; nothing is read until the first `fill`.
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            buf: [0; N],
            used: N,
        }
    }
}

impl<R: Random, const N: usize> Random for BufferedRandom<R, N> {
    fn fill(&mut self, mut out: &mut [u8]) -> Result<(), RandomError> {
        while !out.is_empty() {
            if self.used == N {
                self.inner.fill(&mut self.buf)?;
                self.used = 0;
            }
            out = copy_out(&self.buf, &mut self.used, out);
        }
        Ok(())
    }
}

/// Copies the unused bytes of `block` (from `*used`) into `out`, as many as
/// fit, advances `*used` past them and returns the rest of `out`.
fn copy_out<'o>(block: &[u8], used: &mut usize, out: &'o mut [u8]) -> &'o mut [u8] {
    let ready = block.get(*used..).unwrap_or_default();
    let n = ready.len().min(out.len());
    let (head, rest) = out.split_at_mut(n);
    head.copy_from_slice(ready.get(..n).unwrap_or_default());
    *used += n;
    rest
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

    /// Moves to the next block once every byte of this one is handed out.
    fn refill_if_used_up(&mut self) {
        if self.used == self.block.len() {
            let mut h = Sha256::new();
            h.update(&self.seed);
            h.update(self.counter.to_le_bytes());
            self.block = h.finalize().into();
            self.counter = self.counter.wrapping_add(1);
            self.used = 0;
        }
    }

    /// The next byte of the stream.
    pub fn next_byte(&mut self) -> u8 {
        self.refill_if_used_up();
        let b = self.block.get(self.used).copied().unwrap_or(0);
        self.used += 1;
        b
    }
}

impl Random for SeededRandom {
    fn fill(&mut self, mut out: &mut [u8]) -> Result<(), RandomError> {
        while !out.is_empty() {
            self.refill_if_used_up();
            out = copy_out(&self.block, &mut self.used, out);
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
    fn seeded_fill_is_the_byte_stream() {
        let mut bytes = SeededRandom::new(b"seed");
        let expected: Vec<u8> = (0..300).map(|_| bytes.next_byte()).collect();
        for step in [1, 3, 31, 32, 33, 64, 100] {
            let mut chunks = SeededRandom::new(b"seed");
            let mut got = vec![0u8; 300];
            for part in got.chunks_mut(step) {
                chunks.fill(part).unwrap();
            }
            assert_eq!(got, expected, "reads of {step} bytes");
        }
    }

    #[test]
    fn buffered_hands_out_the_inner_stream_in_order() {
        let mut direct = SeededRandom::new(b"seed");
        let mut expected = [0u8; 100];
        direct.fill(&mut expected).unwrap();
        // A 16-byte buffer: reads of 7, 30 and 63 bytes cross refills.
        let mut buffered = BufferedRandom::<_, 16>::new(SeededRandom::new(b"seed"));
        let mut got = [0u8; 100];
        let (a, rest) = got.split_at_mut(7);
        let (b, c) = rest.split_at_mut(30);
        buffered.fill(a).unwrap();
        buffered.fill(b).unwrap();
        buffered.fill(c).unwrap();
        assert_eq!(got, expected);
    }

    /// Counts calls to the platform and fails when told to.
    struct Counting {
        calls: usize,
        fail: bool,
    }

    impl Random for Counting {
        fn fill(&mut self, buf: &mut [u8]) -> Result<(), RandomError> {
            self.calls += 1;
            if self.fail {
                return Err(RandomError("no entropy".into()));
            }
            buf.fill(1);
            Ok(())
        }
    }

    #[test]
    fn buffered_reads_the_platform_once_per_block() {
        let mut r = BufferedRandom::<_, 512>::new(Counting {
            calls: 0,
            fail: false,
        });
        let mut id = [0u8; 40];
        for _ in 0..12 {
            r.fill(&mut id).unwrap();
        }
        assert_eq!(r.inner.calls, 1, "480 bytes from one 512-byte block");
        r.fill(&mut id).unwrap();
        assert_eq!(r.inner.calls, 2);
        assert_eq!(id, [1; 40]);
        r.fill(&mut []).unwrap();
        assert_eq!(r.inner.calls, 2, "an empty read reads nothing");
    }

    #[test]
    fn buffered_passes_on_platform_errors() {
        let mut r = BufferedRandom::<_, 32>::new(Counting {
            calls: 0,
            fail: true,
        });
        let err = r.fill(&mut [0u8; 8]).unwrap_err();
        assert!(err.to_string().contains("no entropy"), "{err}");
    }

    #[test]
    fn os_random_fills() {
        let mut buf = [0u8; 32];
        OsRandom.fill(&mut buf).unwrap();
        assert_ne!(buf, [0u8; 32]);
    }
}
