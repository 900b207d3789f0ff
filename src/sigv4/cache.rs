//! Per-shard cache of derived SigV4 signing keys.
//!
//! Deriving a signing key takes four HMACs; a shard signs many requests with the same
//! credential, day and region, so the result is kept. The cache is owned by one shard
//! (no lock), bounded by [`MAX_CACHED_KEYS`], and keyed by an HMAC fingerprint (under a
//! random per-process key) of access key id, secret, day, region and service: the secret
//! itself is never stored, and two secrets behind one access key id never share a key.
//! Keys are zeroed when evicted or dropped.

use crate::util::hash::FastMap;

use ring::hmac;

/// Most derived keys one shard keeps at once.
pub const MAX_CACHED_KEYS: usize = 4096;

/// A derived signing key (`kSigning`), zeroed on drop.
pub(crate) struct DerivedKey {
    bytes: [u8; 32],
    day: [u8; 8],
}

impl Drop for DerivedKey {
    fn drop(&mut self) {
        crate::util::wipe::wipe(&mut self.bytes);
    }
}

impl DerivedKey {
    pub(crate) fn bytes(&self) -> &[u8; 32] {
        &self.bytes
    }
}

/// Derives `kSigning` from the secret: HMAC chain over date, region, service, `aws4_request`.
pub(crate) fn derive_signing_key(secret: &[u8], day: &[u8; 8], region: &str, service: &str) -> [u8; 32] {
    let mut k_secret = Vec::with_capacity(4 + secret.len());
    k_secret.extend_from_slice(b"AWS4");
    k_secret.extend_from_slice(secret);
    let k_date = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &k_secret), day);
    crate::util::wipe::wipe_vec(&mut k_secret);
    let k_region = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, k_date.as_ref()), region.as_bytes());
    let k_service = hmac::sign(
        &hmac::Key::new(hmac::HMAC_SHA256, k_region.as_ref()),
        service.as_bytes(),
    );
    let k_signing = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, k_service.as_ref()), b"aws4_request");
    let mut out = [0u8; 32];
    out.copy_from_slice(k_signing.as_ref());
    out
}

/// Counters a shard exports.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CacheStats {
    pub hits: u64,
    pub misses: u64,
    pub evictions: u64,
}

/// The cache. One per shard.
pub struct SigningKeyCache {
    fingerprint_key: hmac::Key,
    map: FastMap<[u8; 32], DerivedKey>,
    capacity: usize,
    stats: CacheStats,
}

impl Default for SigningKeyCache {
    fn default() -> Self {
        Self::with_capacity(MAX_CACHED_KEYS)
    }
}

impl SigningKeyCache {
    /// A cache holding at most `capacity` keys (at least 1).
    pub fn with_capacity(capacity: usize) -> Self {
        let rng = ring::rand::SystemRandom::new();
        // A random key makes fingerprints useless outside this process. If the system
        // RNG fails, fall back to a key derived from the address of a stack value and
        // the clock: fingerprints then are still collision-resistant, just guessable.
        let fingerprint_key = hmac::Key::generate(hmac::HMAC_SHA256, &rng).unwrap_or_else(|_| {
            let seed = format!("{:p}{}", &rng, crate::util::time::unix_now_micros());
            hmac::Key::new(hmac::HMAC_SHA256, seed.as_bytes())
        });
        SigningKeyCache {
            fingerprint_key,
            map: FastMap::default(),
            capacity: capacity.max(1),
            stats: CacheStats::default(),
        }
    }

    fn fingerprint(&self, access_key_id: &str, secret: &[u8], day: &[u8; 8], region: &str, service: &str) -> [u8; 32] {
        let mut ctx = hmac::Context::with_key(&self.fingerprint_key);
        // Length-prefix every field so no two tuples serialise alike.
        for part in [
            access_key_id.as_bytes(),
            secret,
            &day[..],
            region.as_bytes(),
            service.as_bytes(),
        ] {
            ctx.update(&(part.len() as u32).to_le_bytes());
            ctx.update(part);
        }
        let tag = ctx.sign();
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        out
    }

    /// Returns the signing key for these inputs, deriving and caching it on a miss.
    pub(crate) fn get(
        &mut self,
        access_key_id: &str,
        secret: &[u8],
        day: &[u8; 8],
        region: &str,
        service: &str,
    ) -> &DerivedKey {
        let fp = self.fingerprint(access_key_id, secret, day, region, service);
        if self.map.contains_key(&fp) {
            self.stats.hits += 1;
        } else {
            self.stats.misses += 1;
            if self.map.len() >= self.capacity {
                self.evict(day);
            }
            let bytes = derive_signing_key(secret, day, region, service);
            self.map.insert(fp, DerivedKey { bytes, day: *day });
        }
        // Present: just checked or inserted.
        &self.map[&fp]
    }

    /// Makes room: first every key of another day, then (if still full) everything.
    fn evict(&mut self, today: &[u8; 8]) {
        let before = self.map.len();
        self.map.retain(|_, k| &k.day == today);
        if self.map.len() >= self.capacity {
            self.map.clear();
        }
        self.stats.evictions += (before - self.map.len()) as u64;
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.map.len()
    }

    #[cfg(test)]
    fn stats(&self) -> CacheStats {
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derivation_matches_aws_example() {
        // AWS's documented example: secret wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY,
        // 20150830/us-east-1/iam.
        let k = derive_signing_key(
            b"wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            b"20150830",
            "us-east-1",
            "iam",
        );
        assert_eq!(
            crate::util::hex::encode(&k),
            "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9"
        );
    }

    #[test]
    fn hit_miss_rollover_and_two_secrets() {
        let mut c = SigningKeyCache::with_capacity(8);
        let a = *c.get("AKID", b"s1", b"20261125", "us-east-1", "bedrock").bytes();
        let a2 = *c.get("AKID", b"s1", b"20261125", "us-east-1", "bedrock").bytes();
        assert_eq!(a, a2);
        assert_eq!(c.stats().hits, 1);
        // Same key id, another secret: another key.
        let b = *c.get("AKID", b"s2", b"20261125", "us-east-1", "bedrock").bytes();
        assert_ne!(a, b);
        // Next UTC day and another region: other keys.
        let d = *c.get("AKID", b"s1", b"20261126", "us-east-1", "bedrock").bytes();
        let r = *c.get("AKID", b"s1", b"20261125", "eu-west-1", "bedrock").bytes();
        assert_ne!(a, d);
        assert_ne!(a, r);
        assert_eq!(c.stats().misses, 4);
        assert_eq!(d, derive_signing_key(b"s1", b"20261126", "us-east-1", "bedrock"));
    }

    #[test]
    fn bounded() {
        let mut c = SigningKeyCache::with_capacity(4);
        for i in 0..10 {
            c.get(&format!("AKID{i}"), b"s", b"20261125", "us-east-1", "bedrock");
            assert!(c.len() <= 4);
        }
        // A new day evicts the old day's keys first.
        for i in 0..3 {
            c.get(&format!("AKID{i}"), b"s", b"20261125", "us-east-1", "bedrock");
        }
        c.get("X", b"s", b"20261126", "us-east-1", "bedrock");
        assert!(c.len() <= 4);
        assert!(c.stats().evictions > 0);
    }
}
