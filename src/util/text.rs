//! Bounded owned copies of client-supplied text. The usual value (short, valid UTF-8) is
//! copied once into an allocation of its exact size; only a longer or invalid one takes
//! the per-character path.

/// `s` cut to at most `max` characters.
pub fn truncate_chars(s: &str, max: usize) -> String {
    // No more bytes than `max` means no more characters than `max`.
    if s.len() <= max {
        return s.to_owned();
    }
    match s.char_indices().nth(max) {
        Some((end, _)) => s[..end].to_owned(),
        None => s.to_owned(),
    }
}

/// `bytes` as text (invalid UTF-8 replaced by U+FFFD), cut to at most `max` characters.
pub fn lossy_truncate(bytes: &[u8], max: usize) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => truncate_chars(s, max),
        Err(_) => truncate_chars(&String::from_utf8_lossy(bytes), max),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rule these replace: `chars().take(max).collect()` over the lossy text.
    fn by_chars(bytes: &[u8], max: usize) -> String {
        String::from_utf8_lossy(bytes).chars().take(max).collect()
    }

    #[test]
    fn equal_to_the_per_character_rule() {
        let cases: [&[u8]; 8] = [
            b"",
            b"us-east-1",
            b"exactly-ten",
            "caf\u{e9} \u{1f600} na\u{ef}ve".as_bytes(),
            b"\xff\xfebad utf-8 \xc3",
            "\u{1f600}\u{1f600}\u{1f600}".as_bytes(),
            b"end_turn",
            "a\u{300}\u{300}\u{300}b".as_bytes(),
        ];
        for bytes in cases {
            for max in 0..16 {
                assert_eq!(lossy_truncate(bytes, max), by_chars(bytes, max), "{bytes:?} max {max}");
                if let Ok(s) = std::str::from_utf8(bytes) {
                    assert_eq!(truncate_chars(s, max), by_chars(bytes, max));
                }
            }
        }
    }

    #[test]
    fn the_usual_value_is_one_exact_allocation() {
        let s = truncate_chars("us-west-2", 64);
        assert_eq!(s, "us-west-2");
        assert_eq!(s.capacity(), s.len());
    }
}
