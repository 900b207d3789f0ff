//! CRC32C (Castagnoli), the journal's record checksum: SSE4.2's `crc32` instruction
//! where the CPU has it (detected once), a table otherwise. Both give the same value.

/// The reflected Castagnoli polynomial's table.
static TABLE: [u32; 256] = crate::util::crc::table(0x82F6_3B78);

fn software(data: &[u8]) -> u32 {
    crate::util::crc::checksum(&TABLE, data)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse4.2")]
/// # Safety
/// The CPU must support SSE4.2 (checked by the caller).
unsafe fn hardware(data: &[u8]) -> u32 {
    use std::arch::x86_64::{_mm_crc32_u64, _mm_crc32_u8};
    let mut crc = u64::from(!0u32);
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        crc = _mm_crc32_u64(crc, u64::from_le_bytes(w));
    }
    let mut crc = crc as u32;
    for &b in chunks.remainder() {
        crc = _mm_crc32_u8(crc, b);
    }
    !crc
}

/// The CRC32C of `data`.
pub fn crc32c(data: &[u8]) -> u32 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("sse4.2") {
            // SAFETY: SSE4.2 is present (just detected).
            return unsafe { hardware(data) };
        }
    }
    software(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values_and_both_paths_agree() {
        // RFC 3720 B.4 test vectors.
        assert_eq!(crc32c(&[0u8; 32]), 0x8A91_36AA);
        assert_eq!(crc32c(&[0xffu8; 32]), 0x62A8_AB43);
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        for n in 0..100 {
            let data: Vec<u8> = (0..n).map(|i| (i * 37 + 11) as u8).collect();
            assert_eq!(crc32c(&data), software(&data), "length {n}");
        }
    }
}
