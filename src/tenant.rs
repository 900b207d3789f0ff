//! Tracking keys and tenants (DESIGN.md §4). With `--keys FILE` a token is accepted only
//! if its SHA-256 matches an entry (compared in constant time) and the tenant is the
//! entry's name; without it, any well-formed `trk_` token is accepted and the tenant is
//! `trk:` + the first 12 hex digits of its SHA-256. The token itself is never kept.

use std::fmt;
use std::path::Path;

/// Shortest random part of an open-mode token (`trk_` + at least this many characters).
pub const MIN_TOKEN_BODY: usize = 16;
/// Longest token accepted.
pub const MAX_TOKEN_LEN: usize = 256;
/// Hex digits of the token hash used as an anonymous tenant name.
pub const FINGERPRINT_HEX: usize = 12;

/// Why a key file could not be loaded.
#[derive(Debug)]
pub enum KeyFileError {
    Io(std::io::Error),
    Toml(String),
    Entry { index: usize, why: &'static str },
}

impl fmt::Display for KeyFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyFileError::Io(e) => write!(f, "cannot read: {e}"),
            KeyFileError::Toml(e) => write!(f, "not valid TOML: {e}"),
            KeyFileError::Entry { index, why } => write!(f, "[[key]] number {}: {why}", index + 1),
        }
    }
}

impl std::error::Error for KeyFileError {}

/// Why a tracking key was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyError {
    Malformed,
    Unknown,
}

/// One `[[key]]` entry.
#[derive(Clone)]
pub struct KeyEntry {
    pub name: String,
    pub sha256: [u8; 32],
}

/// The accepted tracking keys.
#[derive(Clone, Default)]
pub struct KeyStore {
    /// `None`: open mode.
    entries: Option<Vec<KeyEntry>>,
}

impl fmt::Debug for KeyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.entries {
            None => f.write_str("KeyStore(open)"),
            Some(e) => write!(f, "KeyStore({} keys)", e.len()),
        }
    }
}

fn well_formed(token: &[u8]) -> bool {
    token.len() <= MAX_TOKEN_LEN
        && token.starts_with(b"trk_")
        && token.len() >= 4 + MIN_TOKEN_BODY
        && token[4..]
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Whether two digests are equal, compared in constant time.
pub(crate) fn ct_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let mut diff = 0u8;
    for i in 0..32 {
        diff |= a[i] ^ b[i];
    }
    // Keep the comparison from being short-circuited by the optimiser.
    std::hint::black_box(diff) == 0
}

fn parse_hex32(s: &str) -> Option<[u8; 32]> {
    let b = s.as_bytes();
    if b.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for i in 0..32 {
        let h = (b[2 * i] as char).to_digit(16)?;
        let l = (b[2 * i + 1] as char).to_digit(16)?;
        out[i] = (h * 16 + l) as u8;
    }
    Some(out)
}

impl KeyStore {
    /// Open mode: any well-formed token.
    pub fn open() -> Self {
        KeyStore { entries: None }
    }

    pub fn is_open(&self) -> bool {
        self.entries.is_none()
    }

    pub fn len(&self) -> usize {
        self.entries.as_ref().map_or(0, Vec::len)
    }

    /// Parses a key file's text.
    pub fn parse(text: &str) -> Result<Self, KeyFileError> {
        let table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| KeyFileError::Toml(e.message().to_string()))?;
        let keys = match table.get("key") {
            None => Vec::new(),
            Some(toml::Value::Array(a)) => a.clone(),
            Some(_) => return Err(KeyFileError::Toml("`key` must be an array of tables ([[key]])".into())),
        };
        let mut entries = Vec::with_capacity(keys.len());
        for (index, k) in keys.iter().enumerate() {
            let t = k.as_table().ok_or(KeyFileError::Entry {
                index,
                why: "not a table",
            })?;
            let name = t
                .get("name")
                .and_then(|v| v.as_str())
                .filter(|s| !s.is_empty())
                .ok_or(KeyFileError::Entry {
                    index,
                    why: "missing `name`",
                })?;
            let hex = t.get("sha256").and_then(|v| v.as_str()).ok_or(KeyFileError::Entry {
                index,
                why: "missing `sha256`",
            })?;
            let sha256 = parse_hex32(hex).ok_or(KeyFileError::Entry {
                index,
                why: "`sha256` must be 64 hex digits (the SHA-256 of the token, not the token)",
            })?;
            entries.push(KeyEntry {
                name: name.to_string(),
                sha256,
            });
        }
        Ok(KeyStore { entries: Some(entries) })
    }

    pub fn load(path: &Path) -> Result<Self, KeyFileError> {
        let text = std::fs::read_to_string(path).map_err(KeyFileError::Io)?;
        Self::parse(&text)
    }

    /// Resolves a token to its tenant name.
    pub fn tenant(&self, token: &[u8]) -> Result<String, KeyError> {
        if token.len() > MAX_TOKEN_LEN || token.is_empty() {
            return Err(KeyError::Malformed);
        }
        let h = crate::util::hex::sha256(token);
        match &self.entries {
            None => {
                if !well_formed(token) {
                    return Err(KeyError::Malformed);
                }
                Ok(fingerprint_tenant(&h))
            }
            Some(entries) => {
                // Compare against every entry so timing does not reveal which matched.
                let mut found: Option<&KeyEntry> = None;
                for e in entries {
                    if ct_eq(&e.sha256, &h) && found.is_none() {
                        found = Some(e);
                    }
                }
                found.map(|e| e.name.clone()).ok_or(KeyError::Unknown)
            }
        }
    }
}

/// `trk:` + first 12 hex digits of the token's SHA-256.
pub fn fingerprint_tenant(sha256: &[u8; 32]) -> String {
    // One allocation of the exact size.
    let mut out = Vec::with_capacity(4 + FINGERPRINT_HEX);
    out.extend_from_slice(b"trk:");
    crate::util::hex::push_hex(&sha256[..FINGERPRINT_HEX / 2], &mut out);
    // ASCII only.
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_mode() {
        let k = KeyStore::open();
        let t = k.tenant(b"trk_abcdefghijklmnop").unwrap();
        assert!(t.starts_with("trk:") && t.len() == 16 && !t.contains("abcdef"));
        assert_eq!(k.tenant(b"trk_short"), Err(KeyError::Malformed));
        assert_eq!(k.tenant(b"xyz_abcdefghijklmnop"), Err(KeyError::Malformed));
        assert_eq!(k.tenant(b"trk_abcdefghijklmno!"), Err(KeyError::Malformed));
    }

    #[test]
    fn key_file() {
        let h =
            crate::util::hex::encode(ring::digest::digest(&ring::digest::SHA256, b"trk_acme_prod_0000000001").as_ref());
        let k = KeyStore::parse(&format!("[[key]]\nname = \"acme-prod\"\nsha256 = \"{h}\"\n")).unwrap();
        assert_eq!(k.tenant(b"trk_acme_prod_0000000001").unwrap(), "acme-prod");
        assert_eq!(k.tenant(b"trk_acme_prod_0000000002"), Err(KeyError::Unknown));
        assert!(matches!(
            KeyStore::parse("[[key]]\nname = \"x\"\nsha256 = \"trk_x\"\n"),
            Err(KeyFileError::Entry { .. })
        ));
        assert!(matches!(KeyStore::parse("[[key]\n"), Err(KeyFileError::Toml(_))));
    }
}
