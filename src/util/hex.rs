//! Lower-case hexadecimal encoding into caller-owned buffers (no allocation).

const HEX: &[u8; 16] = b"0123456789abcdef";

/// The value of one hexadecimal digit (either case).
pub(crate) fn digit_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Writes `bytes` as lower-case hex into `out`, which must be twice as long.
pub(crate) fn encode_into(bytes: &[u8], out: &mut [u8]) {
    debug_assert_eq!(out.len(), bytes.len() * 2);
    for (i, b) in bytes.iter().enumerate() {
        out[2 * i] = HEX[(b >> 4) as usize];
        out[2 * i + 1] = HEX[(b & 0x0f) as usize];
    }
}

/// Appends `bytes` as lower-case hex to `out`.
pub(crate) fn push_hex(bytes: &[u8], out: &mut Vec<u8>) {
    for b in bytes {
        out.push(HEX[(b >> 4) as usize]);
        out.push(HEX[(b & 0x0f) as usize]);
    }
}

/// Returns `bytes` as a lower-case hex `String`.
pub fn encode(bytes: &[u8]) -> String {
    let mut out = Vec::with_capacity(bytes.len() * 2);
    push_hex(bytes, &mut out);
    // Only ASCII hex digits were pushed.
    String::from_utf8(out).unwrap_or_default()
}

/// A SHA-256 digest as a fixed array.
pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, data).as_ref());
    out
}

/// Hex of a SHA-256 digest, as a fixed array (64 ASCII bytes).
pub(crate) fn sha256_hex(data: &[u8]) -> [u8; 64] {
    let mut out = [0u8; 64];
    encode_into(&sha256(data), &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round() {
        assert_eq!(encode(&[0x00, 0xab, 0xff]), "00abff");
        let h = sha256_hex(b"");
        assert_eq!(
            std::str::from_utf8(&h).unwrap(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
