//! Integers as decimal text into a stack buffer, without the formatting machinery: the
//! per-row and per-request paths (access lines, response and upstream heads through
//! `http::head::push_u64`) format numbers this way.

/// Room for any `i64` in decimal with a point and a sign (20 digits, '.', '-').
const BUF_BYTES: usize = 24;

/// A reusable stack buffer holding one formatted integer.
#[derive(Default)]
pub struct I64Buf {
    bytes: [u8; BUF_BYTES],
}

impl I64Buf {
    /// `v` in decimal.
    pub fn format(&mut self, v: i64) -> &str {
        self.format_fixed(v, 0)
    }

    /// `v` (unsigned) in decimal.
    pub fn format_u64(&mut self, v: u64) -> &str {
        let mut at = BUF_BYTES;
        let mut n = v;
        self.integer(&mut at, &mut n);
        std::str::from_utf8(&self.bytes[at..]).unwrap_or("0")
    }

    /// Writes `n`'s digits (at least one) before `at`.
    fn integer(&mut self, at: &mut usize, n: &mut u64) {
        loop {
            digit(&mut self.bytes, at, n);
            if *n == 0 {
                break;
            }
        }
    }

    /// `v / 10^decimals` with exactly `decimals` digits after the point (`1.234` for
    /// `v = 1234, decimals = 3`; at most 9 decimals).
    pub fn format_fixed(&mut self, v: i64, decimals: u32) -> &str {
        let mut at = BUF_BYTES;
        let mut n = v.unsigned_abs();
        for _ in 0..decimals.min(9) {
            digit(&mut self.bytes, &mut at, &mut n);
        }
        if decimals > 0 {
            at -= 1;
            self.bytes[at] = b'.';
        }
        self.integer(&mut at, &mut n);
        if v < 0 {
            at -= 1;
            self.bytes[at] = b'-';
        }
        std::str::from_utf8(&self.bytes[at..]).unwrap_or("0")
    }
}

/// Writes `n`'s last digit before `at` and drops it from `n`.
fn digit(bytes: &mut [u8; BUF_BYTES], at: &mut usize, n: &mut u64) {
    *at -= 1;
    bytes[*at] = b'0' + (*n % 10) as u8;
    *n /= 10;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers() {
        let mut b = I64Buf::default();
        for v in [0i64, 7, -7, 10, 1234567890, i64::MAX, i64::MIN, -1] {
            assert_eq!(b.format(v), v.to_string());
        }
        for v in [0u64, 9, 10, u64::MAX] {
            assert_eq!(b.format_u64(v), v.to_string());
        }
    }

    #[test]
    fn fixed_point_matches_format() {
        let mut b = I64Buf::default();
        for v in [0i64, 1, 9, 10, 999, 1000, 1234, 98765432, -5, -1234] {
            for d in [0u32, 1, 3, 6, 9] {
                let want = if d == 0 {
                    v.to_string()
                } else {
                    let p = 10i64.pow(d);
                    let sign = if v < 0 { "-" } else { "" };
                    format!("{sign}{}.{:0w$}", v.abs() / p, v.abs() % p, w = d as usize)
                };
                assert_eq!(b.format_fixed(v, d), want, "{v} {d}");
            }
        }
    }
}
