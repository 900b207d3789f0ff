//! The usage journal: each shard appends its rows to its own memory-mapped segment with
//! plain stores (no syscall, no lock), so a row is in the kernel's page cache before the
//! last byte of its response leaves, and survives `kill -9`. The writer thread reads the
//! segments up to what each shard published (one atomic), turns the rows into Parquet,
//! and retires a segment once every row in it is in a closed, fsynced file named by a
//! durable checkpoint. It also syncs the segments' new pages every `--fsync-interval`
//! (group commit: a power cut loses at most that much) and keeps spare segments ready, so
//! a shard never creates a file. A shard with no room left refuses new work
//! (`LedgerUnavailable`) or, under `--on-ledger-full=serve`, counts the rows it lost.
//!
//! `segment` (the files), `codec` (records and framing), `crc` (the checksum).

pub mod codec;
pub(crate) mod crc;
pub mod segment;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use codec::{encode_end, encode_row, framed_len, write_frame, MAX_RECORD_BYTES};

use segment::{Segment, HEADER_BYTES};

/// What a request in flight reserves for its row: a typical record's size with ample
/// margin (a record is usually under 1 KiB). Admission also needs room for one record at
/// its worst case, so the last reservation can always be written.
pub const RESERVE_BYTES: usize = 4096;

use super::UsageRecord;

/// A place in a shard's journal: a segment and a byte offset in it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pos {
    pub seq: u32,
    pub off: u32,
}

impl Pos {
    fn pack(self) -> u64 {
        (u64::from(self.seq) << 32) | u64::from(self.off)
    }

    fn unpack(v: u64) -> Pos {
        Pos {
            seq: (v >> 32) as u32,
            off: v as u32,
        }
    }

    /// The start of segment `seq`'s records.
    pub fn start_of(seq: u32) -> Pos {
        Pos {
            seq,
            off: HEADER_BYTES as u32,
        }
    }
}

/// What a shard publishes to the writer, and the writer to the shard and `/metrics`.
#[derive(Debug, Default)]
pub struct JournalShared {
    /// The end of the shard's last complete record ([`Pos`] packed).
    published: AtomicU64,
    /// Rows the shard could not keep (no room at the bound, `--on-ledger-full=serve`).
    pub lost: AtomicU64,
    /// Requests refused because the journal had no room.
    pub refused: AtomicU64,
    /// True while the shard has no room for another request.
    pub full: AtomicBool,
}

impl JournalShared {
    /// A shard that will start writing at `start`.
    pub fn new(start: Pos) -> JournalShared {
        JournalShared {
            published: AtomicU64::new(start.pack()),
            ..Default::default()
        }
    }

    /// Where the shard's complete records end (acquire: those bytes are readable).
    pub fn published(&self) -> Pos {
        Pos::unpack(self.published.load(Ordering::Acquire))
    }
}

/// A shard's producer end of its journal.
pub struct ShardJournal {
    /// The segment being appended to (none before the first record).
    current: Option<Arc<Segment>>,
    tail: usize,
    /// Bytes promised to requests in flight.
    reserved: usize,
    /// Segments the writer prepared (created, allocated, mapped), in order.
    spares: rtrb::Consumer<Arc<Segment>>,
    shared: Arc<JournalShared>,
    payload: Vec<u8>,
}

impl ShardJournal {
    pub fn new(spares: rtrb::Consumer<Arc<Segment>>, shared: Arc<JournalShared>) -> Self {
        ShardJournal {
            current: None,
            tail: 0,
            reserved: 0,
            spares,
            shared,
            payload: Vec::with_capacity(1024),
        }
    }

    /// What this journal publishes to the writer and `/metrics`.
    pub fn shared(&self) -> Arc<JournalShared> {
        self.shared.clone()
    }

    /// Bytes this journal can take without another spare.
    fn room(&self) -> usize {
        let spare = self.spares.peek().map_or(0, |s| s.size() - HEADER_BYTES);
        let here = self.current.as_ref().map_or(0, |c| c.size() - self.tail);
        here + spare * self.spares.slots()
    }

    /// Reserves room for one request's row; false when there is none (the journal is
    /// full: disk full or `--ledger-max-bytes` reached, and nothing could be retired).
    pub fn reserve(&mut self) -> bool {
        let ok = self.room() >= self.reserved + RESERVE_BYTES + MAX_RECORD_BYTES;
        if ok {
            self.reserved += RESERVE_BYTES;
        }
        self.shared.full.store(!ok, Ordering::Relaxed);
        ok
    }

    /// Journals a row (the commit point); `reserved`: whether [`reserve`](Self::reserve)
    /// succeeded for this request. False, and counted as lost, when it could not be kept.
    pub fn append_row(&mut self, key: u64, rec: &UsageRecord, reserved: bool) -> bool {
        if reserved {
            self.reserved = self.reserved.saturating_sub(RESERVE_BYTES);
        }
        encode_row(key, rec, &mut self.payload);
        let ok = self.append();
        if !ok {
            self.shared.lost.fetch_add(1, Ordering::Relaxed);
        }
        ok
    }

    /// Journals the end of request `key`: its final latency, whether the client got it.
    pub fn append_end(&mut self, key: u64, latency_ms: f64, written: bool) -> bool {
        encode_end(key, latency_ms, written, &mut self.payload);
        self.append()
    }

    /// Frames the payload and writes it: the body first, the length last, then the
    /// publication. Moves to the next spare segment when the current one is full.
    fn append(&mut self) -> bool {
        let need = framed_len(self.payload.len());
        let fits = self.current.as_ref().is_some_and(|c| self.tail + need <= c.size());
        if !fits {
            let Ok(next) = self.spares.pop() else {
                self.shared.full.store(true, Ordering::Relaxed);
                return false;
            };
            self.current = Some(next);
            self.tail = HEADER_BYTES;
        }
        let Some(seg) = self.current.as_ref() else { return false };
        if self.tail + need > seg.size() {
            return false;
        }
        let at = self.tail;
        write_frame(&self.payload, |off, bytes| seg.write(at + off, bytes));
        self.tail += need;
        let pos = Pos {
            seq: seg.seq,
            off: self.tail as u32,
        };
        self.shared.published.store(pos.pack(), Ordering::Release);
        true
    }
}

/// Spare segments kept ready per shard.
pub const SPARES: usize = 2;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_pack() {
        let p = Pos { seq: 7, off: 4096 };
        assert_eq!(Pos::unpack(p.pack()), p);
        assert!(Pos { seq: 1, off: 9 } < Pos { seq: 2, off: 0 });
    }
}
