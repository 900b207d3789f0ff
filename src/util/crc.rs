//! Table-driven reflected CRC-32 for any polynomial, the table built at compile time:
//! the event stream's CRC32 (IEEE) and the journal's CRC32C where the CPU has no
//! `crc32` instruction.

/// The 256-entry table of the reflected polynomial `poly`.
pub const fn table(poly: u32) -> [u32; 256] {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { poly ^ (c >> 1) } else { c >> 1 };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
}

/// The CRC of `data` with `table` (initial value and final xor all ones).
pub fn checksum(table: &[u32; 256], data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc = table[((crc ^ u32::from(b)) & 0xff) as usize] ^ (crc >> 8);
    }
    !crc
}
