//! Where a JSON object or array ends, found without parsing it.
//!
//! Ledger verification must know that an entry's payload is one balanced
//! value ending exactly where the entry's fixed-width suffix starts (see
//! `ledger`). This module finds that end by matching brackets outside
//! strings; the content itself is covered by the entry hash, so nothing else
//! is checked.
//!
//! On x86 the input is classified 64 bytes at a time with SSE2 (through
//! `safe_arch`, so without `unsafe` here): one bit per byte for quotes,
//! backslashes and brackets, string interiors from a prefix XOR of the quote
//! bits, then only the few brackets outside strings are visited. Input with a
//! backslash (an escape, which that shortcut does not model) and other
//! targets take the byte loop, which skips string contents with `memchr`.
//! Both give the same answer for every input (property-tested below).

/// Length of the JSON object or array at the start of `b`: the index just
/// past the bracket that closes its first byte. `None` when `b` does not
/// start with `{` or `[`, or the value does not close.
pub(crate) fn value_len(b: &[u8]) -> Option<usize> {
    if !matches!(b.first(), Some(b'{' | b'[')) {
        return None;
    }
    #[cfg(all(
        any(target_arch = "x86", target_arch = "x86_64"),
        target_feature = "sse2"
    ))]
    if let Ok(found) = sse2::value_len(b) {
        return found;
    }
    bytewise(b)
}

/// The portable scanner: a byte loop between strings, `memchr` inside them.
fn bytewise(b: &[u8]) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = 0usize;
    while let Some(&c) = b.get(i) {
        match c {
            b'"' => i = string_end(b, i + 1)?,
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// Index of the quote that closes the string whose contents start at
/// `start`.
fn string_end(b: &[u8], mut start: usize) -> Option<usize> {
    loop {
        let at = start + memchr::memchr2(b'"', b'\\', b.get(start..)?)?;
        if b.get(at) == Some(&b'"') {
            return Some(at);
        }
        start = at + 2; // skip the escaped character
    }
}

#[cfg(all(
    any(target_arch = "x86", target_arch = "x86_64"),
    target_feature = "sse2"
))]
mod sse2 {
    use safe_arch::{
        bitor_m128i, cmp_eq_mask_i8_m128i, load_unaligned_m128i, move_mask_i8_m128i,
        set_splat_i8_m128i,
    };

    /// The input holds a backslash: the caller must use the byte loop.
    pub(super) struct HasEscapes;

    /// One bit per byte of a 64-byte block.
    struct Masks {
        quote: u64,
        backslash: u64,
        /// `{` or `[`.
        open: u64,
        /// `}` or `]`.
        close: u64,
    }

    impl Masks {
        fn of(block: &[u8; 64]) -> Self {
            // `{`/`[` and `}`/`]` differ only in bit 0x20: fold it in.
            let fold = splat(0x20);
            let (quote, backslash) = (splat(b'"'), splat(b'\\'));
            let (open, close) = (splat(b'{'), splat(b'}'));
            let mut m = Self {
                quote: 0,
                backslash: 0,
                open: 0,
                close: 0,
            };
            for (k, lane) in block.as_chunks::<16>().0.iter().enumerate() {
                let v = load_unaligned_m128i(lane);
                let folded = bitor_m128i(v, fold);
                let bits = |eq| u64::from(move_mask_i8_m128i(eq) as u16) << (16 * k);
                m.quote |= bits(cmp_eq_mask_i8_m128i(v, quote));
                m.backslash |= bits(cmp_eq_mask_i8_m128i(v, backslash));
                m.open |= bits(cmp_eq_mask_i8_m128i(folded, open));
                m.close |= bits(cmp_eq_mask_i8_m128i(folded, close));
            }
            m
        }
    }

    fn splat(byte: u8) -> safe_arch::m128i {
        set_splat_i8_m128i(byte as i8)
    }

    /// Bit `i` of the result is the XOR of bits `0..=i` of `x`: with quote
    /// bits in, the bits from an opening quote up to (not including) its
    /// closing quote come out set.
    fn prefix_xor(mut x: u64) -> u64 {
        for shift in [1, 2, 4, 8, 16, 32] {
            x ^= x << shift;
        }
        x
    }

    /// [`super::value_len`] for input without backslashes.
    pub(super) fn value_len(b: &[u8]) -> Result<Option<usize>, HasEscapes> {
        let (blocks, rest) = b.as_chunks::<64>();
        let mut last = [b' '; 64];
        if let Some(head) = last.get_mut(..rest.len()) {
            head.copy_from_slice(rest);
        }
        // All ones while a string continues from one block into the next.
        let mut in_string = 0u64;
        let mut depth = 0usize;
        for (n, block) in blocks.iter().chain(std::iter::once(&last)).enumerate() {
            let m = Masks::of(block);
            if m.backslash != 0 {
                return Err(HasEscapes);
            }
            let inside = prefix_xor(m.quote) ^ in_string;
            in_string = 0u64.wrapping_sub(inside >> 63);
            let mut brackets = (m.open | m.close) & !inside;
            while brackets != 0 {
                let bit = brackets.trailing_zeros();
                if m.open >> bit & 1 == 1 {
                    depth += 1;
                } else {
                    let Some(d) = depth.checked_sub(1) else {
                        return Ok(None);
                    };
                    depth = d;
                    if depth == 0 {
                        return Ok(Some(n * 64 + bit as usize + 1));
                    }
                }
                brackets &= brackets - 1;
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn finds_the_end_of_the_first_value() {
        let cases: &[(&[u8], Option<usize>)] = &[
            (b"{}", Some(2)),
            (b"[]x", Some(2)),
            (b"{\"a\":[1,{\"b\":2}]},\"c\":1}", Some(17)),
            (b"{\"}\":\"]\"}", Some(9)),
            (b"{\"a\\\"}\":1}", Some(10)),
            (b"{\"a\\\\\":1}", Some(9)),
            (b"{\"a\":\"unterminated}", None),
            (b"{\"a\":1", None),
            (b"\"a\"", None),
            (b"", None),
        ];
        for (input, want) in cases {
            assert_eq!(
                value_len(input),
                *want,
                "{}",
                String::from_utf8_lossy(input)
            );
            assert_eq!(bytewise_checked(input), *want);
        }
    }

    #[test]
    fn strings_and_values_crossing_block_boundaries() {
        for pad in 0..130 {
            let s = "x".repeat(pad);
            let value = format!("{{\"{s}\":[\"{s}]\",{{\"{s}\":\"{{\"}}]}}");
            let input = format!("{value},\"prev_hash\":\"}}\"}}");
            assert_eq!(value_len(input.as_bytes()), Some(value.len()), "pad {pad}");
        }
    }

    fn bytewise_checked(b: &[u8]) -> Option<usize> {
        if !matches!(b.first(), Some(b'{' | b'[')) {
            return None;
        }
        bytewise(b)
    }

    proptest! {
        #[test]
        fn block_scan_agrees_with_byte_loop(
            body in proptest::collection::vec(
                prop_oneof![
                    Just(b'"'), Just(b'{'), Just(b'}'), Just(b'['), Just(b']'),
                    Just(b'\\'), Just(b'a'), Just(b','), Just(b':'),
                ],
                0..300,
            ),
            open in prop_oneof![Just(b'{'), Just(b'[')],
            escapes in any::<bool>(),
        ) {
            let mut input = vec![open];
            input.extend(body.into_iter().filter(|c| escapes || *c != b'\\'));
            prop_assert_eq!(value_len(&input), bytewise(&input));
        }
    }
}
