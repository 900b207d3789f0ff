//! Eight bytes at a time: whether a word holds a given byte, with no branch per byte. The
//! head checks use it to skip, a word at a time, the bytes that need no attention (most).

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// The eight bytes at the start of `b` (which has at least eight) as a word.
#[inline]
pub fn word(b: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[..8]);
    u64::from_le_bytes(w)
}

/// Whether some byte of `w` is zero (exact: which one is not needed here).
#[inline]
pub fn has_zero(w: u64) -> bool {
    w.wrapping_sub(ONES) & !w & HIGHS != 0
}

/// Whether some byte of `w` is `b`.
#[inline]
pub fn has_byte(w: u64, b: u8) -> bool {
    has_zero(w ^ (ONES * u64::from(b)))
}

/// Whether every byte of `w` is ASCII (below 0x80).
#[inline]
pub fn is_ascii(w: u64) -> bool {
    w & HIGHS == 0
}

/// Whether some byte of `w` is below `n`; exact for an ASCII word and `n` at most 128.
#[inline]
pub fn has_less(w: u64, n: u8) -> bool {
    debug_assert!(n <= 128);
    w.wrapping_sub(ONES * u64::from(n)) & !w & HIGHS != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_to_looking_at_each_byte() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            // Bytes drawn from a small alphabet so that hits are common.
            let bytes: Vec<u8> = (0..8)
                .map(|i| [0u8, b'\r', b'\n', b'a', 0x80, 0xff, b' ', b'!', 0x7f][(seed >> (i * 5)) as usize % 9])
                .collect();
            let w = word(&bytes);
            assert_eq!(has_zero(w), bytes.contains(&0), "{bytes:?}");
            for b in [b'\r', b'\n', 0x80, 0xff, b'a'] {
                assert_eq!(has_byte(w, b), bytes.contains(&b), "{b} in {bytes:?}");
            }
            assert_eq!(is_ascii(w), bytes.iter().all(u8::is_ascii));
            if is_ascii(w) {
                for n in [1u8, b'\n', b'\r', b' ' + 1, b'a', 128] {
                    assert_eq!(has_less(w, n), bytes.iter().any(|&b| b < n), "< {n} in {bytes:?}");
                }
            }
        }
    }
}
