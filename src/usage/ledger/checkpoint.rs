//! The checkpoint: what the journal has handed to Parquet for good. For each shard the
//! journal position up to which every row is in a closed, fsynced file; the rows read but
//! still waiting for their end record (carried here, so their segment can go); and the
//! files this checkpoint publishes, so a rename cut short by a crash is completed at the
//! next start. Written atomically: a temporary file, fsync, rename, fsync of the
//! directory. Framed `[magic][len][crc32c][body]`, so damage is detected, never trusted.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::sink::{sync_dir, Finished};
use crate::usage::journal::codec::{decode, encode_row, Dec, Enc, Record};
use crate::usage::journal::crc::crc32c;
use crate::usage::journal::Pos;
use crate::usage::UsageRecord;

/// The checkpoint's file name in the journal directory.
pub const FILE: &str = "checkpoint";
const TMP: &str = "checkpoint.tmp";
const MAGIC: &[u8; 8] = b"LLMOPSK1";

/// A row waiting for its end record.
#[derive(Debug, Clone, PartialEq)]
pub struct Carried {
    pub shard: u32,
    pub key: u64,
    pub rec: UsageRecord,
}

/// The durable state of the ledger.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Checkpoint {
    /// Per shard: every row before this position is in a published (or listed) file.
    pub positions: BTreeMap<u32, Pos>,
    pub carried: Vec<Carried>,
    /// Files this checkpoint publishes (their renames may not have happened yet).
    pub files: Vec<Finished>,
}

/// Why a checkpoint could not be read.
#[derive(Debug)]
pub enum CheckpointError {
    Io(std::io::Error),
    /// Bad magic, length, checksum or body.
    Corrupt(&'static str),
}

impl std::fmt::Display for CheckpointError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CheckpointError::Io(e) => write!(f, "{e}"),
            CheckpointError::Corrupt(why) => write!(f, "corrupt checkpoint: {why}"),
        }
    }
}

impl Checkpoint {
    /// The framed bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut body = Vec::new();
        let mut payload = Vec::new();
        let mut e = Enc(&mut body);
        e.u32(self.positions.len() as u32);
        for (shard, p) in &self.positions {
            for v in [*shard, p.seq, p.off] {
                e.u32(v);
            }
        }
        e.u32(self.carried.len() as u32);
        for c in &self.carried {
            encode_row(c.key, &c.rec, &mut payload);
            e.u32(c.shard);
            e.u32(payload.len() as u32);
            e.bytes(&payload);
        }
        e.u32(self.files.len() as u32);
        for f in &self.files {
            e.str(&f.tmp.to_string_lossy());
            e.str(&f.dest.to_string_lossy());
            e.u64(f.rows as u64);
        }
        let mut out = Vec::with_capacity(body.len() + 16);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        out.extend_from_slice(&crc32c(&body).to_le_bytes());
        out.extend_from_slice(&body);
        out
    }

    /// Parses framed bytes.
    pub fn decode(bytes: &[u8]) -> Result<Checkpoint, CheckpointError> {
        let bad = CheckpointError::Corrupt;
        if bytes.len() < 16 || &bytes[..8] != MAGIC {
            return Err(bad("bad magic"));
        }
        let len = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize;
        let crc = u32::from_le_bytes([bytes[12], bytes[13], bytes[14], bytes[15]]);
        let body = bytes.get(16..16 + len).ok_or(bad("length past the end"))?;
        if bytes.len() != 16 + len {
            return Err(bad("trailing bytes"));
        }
        if crc32c(body) != crc {
            return Err(bad("checksum mismatch"));
        }
        Checkpoint::body(&mut Dec(body)).ok_or(bad("body does not decode"))
    }

    fn body(d: &mut Dec<'_>) -> Option<Checkpoint> {
        let mut c = Checkpoint::default();
        for _ in 0..d.u32()? {
            let (shard, seq, off) = (d.u32()?, d.u32()?, d.u32()?);
            c.positions.insert(shard, Pos { seq, off });
        }
        for _ in 0..d.u32()? {
            let shard = d.u32()?;
            let n = d.u32()? as usize;
            match decode(d.take(n)?) {
                Ok(Record::Row { key, rec }) => c.carried.push(Carried { shard, key, rec: *rec }),
                _ => return None,
            }
        }
        for _ in 0..d.u32()? {
            c.files.push(Finished {
                tmp: PathBuf::from(d.str()?),
                dest: PathBuf::from(d.str()?),
                rows: d.u64()? as usize,
            });
        }
        d.0.is_empty().then_some(c)
    }

    /// Reads `dir/checkpoint`; `Ok(None)` when there is none yet.
    pub fn read(dir: &Path) -> Result<Option<Checkpoint>, CheckpointError> {
        match std::fs::read(dir.join(FILE)) {
            Ok(b) => Checkpoint::decode(&b).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(CheckpointError::Io(e)),
        }
    }

    /// Replaces `dir/checkpoint` atomically and durably.
    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        super::faults::check(super::faults::Op::Checkpoint)?;
        let tmp = dir.join(TMP);
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&self.encode())?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, dir.join(FILE))?;
        sync_dir(dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Checkpoint {
        let mut c = Checkpoint::default();
        c.positions.insert(0, Pos { seq: 3, off: 64 });
        c.positions.insert(5, Pos { seq: 1, off: 4096 });
        c.carried.push(Carried {
            shard: 5,
            key: 77,
            rec: UsageRecord {
                request_id: "abc".into(),
                operation: "converse",
                status: 200,
                cost_pico_usd: Some(12),
                ..Default::default()
            },
        });
        c.files.push(Finished {
            tmp: "dt=2026-12-01/.h-1-1.parquet.inprogress".into(),
            dest: "dt=2026-12-01/h-1-1.parquet".into(),
            rows: 9,
        });
        c
    }

    #[test]
    fn round_trips_and_detects_damage() {
        let c = sample();
        let b = c.encode();
        assert_eq!(Checkpoint::decode(&b).unwrap(), c);
        for i in [0, 9, 13, 20, b.len() - 1] {
            let mut bad = b.clone();
            bad[i] ^= 0x40;
            assert!(Checkpoint::decode(&bad).is_err(), "byte {i}");
        }
        assert!(Checkpoint::decode(&b[..b.len() - 1]).is_err());
        assert!(Checkpoint::decode(&[]).is_err());
    }

    #[test]
    fn writes_atomically() {
        let d = std::env::temp_dir().join(format!("llmops-ckpt-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        assert!(Checkpoint::read(&d).unwrap().is_none());
        sample().write(&d).unwrap();
        Checkpoint::default().write(&d).unwrap();
        assert_eq!(Checkpoint::read(&d).unwrap(), Some(Checkpoint::default()));
        assert!(!d.join(TMP).exists());
        std::fs::write(d.join(FILE), b"LLMOPSK1 garbage").unwrap();
        assert!(Checkpoint::read(&d).is_err());
        let _ = std::fs::remove_dir_all(&d);
    }
}
