//! A fast, unkeyed hasher for maps whose keys no client chooses (configured model ids and
//! aliases, the journal's record keys, HMAC fingerprints of signing inputs, a shard's own
//! connection ids, upstream targets that answered): a
//! multiply-rotate over 8-byte words, a few instructions per word where std's keyed
//! SipHash costs a few hundred per lookup. Maps a client can fill (budget values, metric
//! labels) keep SipHash: this one does not resist chosen collisions.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// The hasher.
#[derive(Debug, Default, Clone, Copy)]
pub struct FastHash(u64);

const K: u64 = 0x9E37_79B9_7F4A_7C15;

impl FastHash {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(K);
    }
}

impl Hasher for FastHash {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            let mut b = [0u8; 8];
            b.copy_from_slice(w);
            self.add(u64::from_le_bytes(b));
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            let mut b = [0u8; 8];
            b[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(b) ^ ((rest.len() as u64) << 59));
        }
    }

    fn write_u64(&mut self, v: u64) {
        self.add(v);
    }
}

/// A `HashMap` on [`FastHash`].
pub type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FastHash>>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    #[test]
    fn keys_that_differ_hash_apart_and_maps_work() {
        let h = |s: &str| BuildHasherDefault::<FastHash>::default().hash_one(s);
        let ids = [
            "anthropic.claude-sonnet-4-5-20250929-v1:0",
            "anthropic.claude-sonnet-4-5-20250929-v1:1",
            "eu.anthropic.claude-sonnet-4-5-20250929-v1:0",
            "a",
            "b",
            "ab",
            "",
        ];
        for (i, a) in ids.iter().enumerate() {
            for b in &ids[i + 1..] {
                assert_ne!(h(a), h(b), "{a} / {b}");
            }
        }
        let mut m: FastMap<Box<str>, usize> = FastMap::default();
        for (i, id) in ids.iter().enumerate() {
            m.insert((*id).into(), i);
        }
        for (i, id) in ids.iter().enumerate() {
            assert_eq!(m.get(*id), Some(&i));
        }
    }
}
