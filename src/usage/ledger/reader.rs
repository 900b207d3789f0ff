//! Reading one shard's journal back: records in order from a position, a row held until
//! its end record arrives (final latency, whether the client got the answer), then
//! emitted. Used live by the writer (up to what the shard published) and at start-up by
//! recovery (to the end of every segment). A damaged record is logged and skipped: the
//! reader resynchronises on the next frame whose checksum holds.
//!
//! The reader can be rewound to its last checkpoint (after a failed write); rows emitted
//! again are marked stale, so metrics, budgets and the access log see each row once.

use std::collections::VecDeque;
use std::sync::Arc;

use super::checkpoint::Carried;
use crate::usage::journal::codec::{decode, decode_with, next_frame, Corrupt, Interner, Record, FRAME_HEADER};
use crate::usage::journal::segment::{Segment, HEADER_BYTES};
use crate::usage::journal::Pos;
use crate::usage::UsageRecord;
use crate::util::hash::FastMap;

/// Where a reader stood at a checkpoint.
#[derive(Debug, Clone, Default)]
pub struct Mark {
    pub pos: Pos,
    pub carried: Vec<(u64, UsageRecord)>,
}

/// What one poll produced.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Polled {
    /// Rows appended to the output.
    pub rows: usize,
    /// How many of them, at the front, were emitted before (after a rewind).
    pub stale: usize,
    /// Damaged records skipped.
    pub skipped: u64,
    /// Fresh rows from an earlier process's segments (a deferred replay).
    pub recovered: u64,
}

/// One shard's journal, read back.
pub struct ShardReader {
    pub shard: u32,
    /// Segments from the oldest not yet retired, in sequence order.
    segs: VecDeque<Arc<Segment>>,
    /// The next record to read.
    pub read: Pos,
    /// Rows waiting for their end record, by request key (keys are a shard's sequence
    /// numbers: hashed by one multiplication, not SipHash).
    pending: FastMap<u64, UsageRecord>,
    /// End of the furthest record whose row was emitted (rows emitted by records before
    /// it are stale when read again).
    emitted_upto: Pos,
    /// Rows emitted since the last checkpoint (fresh ones), and the oldest one's time.
    pub backlog_rows: u64,
    pub backlog_oldest: Option<i64>,
    /// The first segment of this process, when the reader starts in segments an earlier
    /// process left (a replay deferred at start-up): its keys are not this process's, so
    /// the rows still waiting at the end of those segments are emitted there.
    boundary: Option<u32>,
    /// Whether those rows were emitted once already (a rewind reads them again).
    left_over_emitted: bool,
    names: Interner,
}

/// Why the bytes at `at` are not a record, and where the next good one starts (8-byte
/// steps, a frame whose checksum holds and whose payload decodes), if any.
fn resync(bytes: &[u8], at: usize) -> Option<usize> {
    let mut off = at + 8;
    while off + FRAME_HEADER <= bytes.len() {
        if let Ok(Some((payload, _))) = next_frame(bytes, off) {
            if decode(payload).is_ok() {
                return Some(off);
            }
        }
        off += 8;
    }
    None
}

impl ShardReader {
    /// A reader of `segs` (in order) from `from`, with the rows a checkpoint carried.
    pub fn new(shard: u32, segs: Vec<Arc<Segment>>, mark: Mark) -> ShardReader {
        let mut r = ShardReader {
            shard,
            segs: segs.into(),
            read: mark.pos,
            pending: FastMap::default(),
            emitted_upto: mark.pos,
            backlog_rows: 0,
            backlog_oldest: None,
            boundary: None,
            left_over_emitted: false,
            names: Interner::default(),
        };
        r.rewind(&mark);
        r.backlog_rows = r.pending.len() as u64;
        r
    }

    /// Marks segments from `seq` on as this process's (see `boundary`).
    pub fn with_boundary(mut self, seq: u32) -> ShardReader {
        self.boundary = Some(seq);
        self
    }

    /// Adds a segment the writer created for this shard (after every one known).
    pub fn push_segment(&mut self, s: Arc<Segment>) {
        self.segs.push_back(s);
    }

    fn seg(&self, seq: u32) -> Option<&Arc<Segment>> {
        self.segs.iter().find(|s| s.seq == seq)
    }

    /// The segment after `seq` (numbers may skip one that could not be created).
    fn next_after(&self, seq: u32) -> Option<u32> {
        self.segs.iter().map(|s| s.seq).find(|&s| s > seq)
    }

    /// Bytes of the segments still on disk.
    pub fn journal_bytes(&self) -> u64 {
        self.segs.iter().map(|s| s.size() as u64).sum()
    }

    /// Journal bytes between `from` and `to` (the uncommitted part).
    pub fn bytes_between(&self, from: Pos, to: Pos) -> u64 {
        self.ranges(from, to)
            .iter()
            .map(|(_, a, b)| (b.saturating_sub(*a)) as u64)
            .sum()
    }

    /// Reads records from the current position up to `upto` (everything published by
    /// the shard), or to the end of every segment when `None` (recovery), emitting at
    /// most `max_rows` rows into `out`.
    pub fn poll(&mut self, upto: Option<Pos>, max_rows: usize, out: &mut Vec<UsageRecord>) -> Polled {
        let mut p = Polled::default();
        while p.rows < max_rows {
            let Some(seg) = self.seg(self.read.seq).cloned() else {
                break;
            };
            let limit = match upto {
                Some(u) if u.seq == self.read.seq => u.off as usize,
                Some(u) if u.seq < self.read.seq => break,
                _ => seg.size(),
            };
            let more_segments = upto.is_none_or(|u| u.seq > self.read.seq);
            let at = self.read.off as usize;
            let bytes = seg.bytes(0, limit);
            let step = if at >= limit { Ok(None) } else { next_frame(bytes, at) };
            match step {
                Ok(Some((payload, next))) => {
                    let here = Pos {
                        seq: self.read.seq,
                        off: next as u32,
                    };
                    self.read.off = next as u32;
                    match decode_with(payload, &mut self.names) {
                        Ok(rec) => self.apply(rec, here, out, &mut p),
                        Err(c) => self.skip(&seg, at, c, bytes, &mut p),
                    }
                }
                Ok(None) if more_segments => {
                    let next = self.next_after(self.read.seq);
                    if let Some(b) = self.boundary {
                        if self.read.seq < b && next.is_none_or(|n| n >= b) {
                            self.emit_left_over(out, &mut p);
                        }
                    }
                    match next {
                        Some(next) => self.read = Pos::start_of(next),
                        None => break,
                    }
                }
                Ok(None) => break,
                Err(c) => self.skip(&seg, at, c, bytes, &mut p),
            }
        }
        p
    }

    /// Logs a damaged record and moves to the next good one (or the segment's end).
    fn skip(&mut self, seg: &Segment, at: usize, why: Corrupt, bytes: &[u8], p: &mut Polled) {
        p.skipped += 1;
        let next = resync(bytes, at);
        crate::log::error(
            "journal_record_skipped",
            &[
                ("segment", &seg.path.display().to_string()),
                ("offset", &at.to_string()),
                ("reason", &why.to_string()),
                (
                    "resumed_at",
                    &next.map_or_else(|| "end of segment".into(), |n| n.to_string()),
                ),
            ],
        );
        // Without a good record after it, the rest of what was published is skipped.
        self.read.off = next.unwrap_or(bytes.len()) as u32;
    }

    fn apply(&mut self, rec: Record, end: Pos, out: &mut Vec<UsageRecord>, p: &mut Polled) {
        match rec {
            Record::Row { key, rec } => {
                self.pending.insert(key, *rec);
            }
            Record::End {
                key,
                latency_ms,
                written,
            } => {
                let Some(mut row) = self.pending.remove(&key) else {
                    return;
                };
                row.latency_ms = latency_ms;
                if !written {
                    row.error_type.get_or_insert_with(|| "ClientDisconnected".to_string());
                }
                self.emit(row, end, out, p);
            }
        }
    }

    /// Emits a row whose end record ends at `end` (fresh unless a rewind read it again).
    fn emit(&mut self, row: UsageRecord, end: Pos, out: &mut Vec<UsageRecord>, p: &mut Polled) {
        let fresh = end > self.emitted_upto;
        if fresh {
            self.emitted_upto = end;
        }
        self.push(row, fresh, out, p);
    }

    fn push(&mut self, row: UsageRecord, fresh: bool, out: &mut Vec<UsageRecord>, p: &mut Polled) {
        if fresh {
            if self.boundary.is_some_and(|b| self.read.seq < b) {
                p.recovered += 1;
            }
            self.backlog_rows += 1;
            self.backlog_oldest = Some(self.backlog_oldest.map_or(row.ts_micros, |o| o.min(row.ts_micros)));
        } else {
            p.stale += 1;
        }
        out.push(row);
        p.rows += 1;
    }

    /// At the end of an earlier process's segments: its rows still waiting for an end
    /// record will never get one; they are emitted here, oldest first.
    fn emit_left_over(&mut self, out: &mut Vec<UsageRecord>, p: &mut Polled) {
        let mut rows: Vec<UsageRecord> = self.pending.drain().map(|(_, r)| r).collect();
        rows.sort_by_key(|r| r.ts_micros);
        let fresh = !self.left_over_emitted;
        self.left_over_emitted = true;
        for r in rows {
            self.push(r, fresh, out, p);
        }
    }

    /// Emits every row still waiting for its end (shutdown, recovery: it will not come),
    /// oldest first. They count as fresh.
    pub fn drain_pending(&mut self, out: &mut Vec<UsageRecord>) -> usize {
        let mut rows: Vec<UsageRecord> = self.pending.drain().map(|(_, r)| r).collect();
        rows.sort_by_key(|r| r.ts_micros);
        let n = rows.len();
        for r in rows {
            self.backlog_oldest = Some(self.backlog_oldest.map_or(r.ts_micros, |o| o.min(r.ts_micros)));
            out.push(r);
        }
        self.backlog_rows += n as u64;
        n
    }

    /// Whether every record of every segment it has was read.
    pub fn exhausted(&self) -> bool {
        let Some(seg) = self.seg(self.read.seq) else {
            return true;
        };
        self.next_after(self.read.seq).is_none()
            && matches!(next_frame(seg.bytes(0, seg.size()), self.read.off as usize), Ok(None))
    }

    /// Where the reader stands, for a checkpoint.
    pub fn mark(&self) -> Mark {
        Mark {
            pos: self.read,
            carried: self.pending.iter().map(|(k, r)| (*k, r.clone())).collect(),
        }
    }

    /// The rows a mark carries, as checkpoint entries.
    pub fn carried(&self, mark: &Mark) -> Vec<Carried> {
        mark.carried
            .iter()
            .map(|(key, rec)| Carried {
                shard: self.shard,
                key: *key,
                rec: rec.clone(),
            })
            .collect()
    }

    /// Goes back to a checkpoint's position and rows (after a failed write).
    pub fn rewind(&mut self, mark: &Mark) {
        self.read = mark.pos;
        self.pending = mark.carried.iter().cloned().collect();
    }

    /// A checkpoint of where the reader stands was written: only the rows still waiting
    /// for their end are backlog now.
    pub fn committed(&mut self) {
        self.backlog_rows = self.pending.len() as u64;
        self.backlog_oldest = self.pending.values().map(|r| r.ts_micros).min();
    }

    /// Removes and returns the segments wholly before `pos` (every row of theirs is in a
    /// checkpointed file); the caller deletes them.
    pub fn retire_before(&mut self, pos: Pos) -> Vec<Arc<Segment>> {
        let mut out = Vec::new();
        while self.segs.front().is_some_and(|s| s.seq < pos.seq) {
            if let Some(s) = self.segs.pop_front() {
                out.push(s);
            }
        }
        out
    }

    /// The segments from `from` to `to`, with the byte range of each (records only).
    pub fn ranges(&self, from: Pos, to: Pos) -> Vec<(Arc<Segment>, usize, usize)> {
        if to <= from {
            return Vec::new();
        }
        self.segs
            .iter()
            .filter(|s| (from.seq..=to.seq).contains(&s.seq))
            .map(|s| {
                let start = if s.seq == from.seq {
                    from.off as usize
                } else {
                    HEADER_BYTES
                };
                let end = if s.seq == to.seq { to.off as usize } else { s.size() };
                (s.clone(), start, end.max(start))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::usage::journal::{JournalShared, ShardJournal};

    struct Rig {
        dir: std::path::PathBuf,
        journal: ShardJournal,
        shared: Arc<JournalShared>,
        reader: ShardReader,
    }

    /// A journal of `segs` segments of `len` bytes, all handed to the shard as spares.
    fn rig(tag: &str, segs: u32, len: usize) -> Rig {
        let dir = std::env::temp_dir().join(format!("llmops-reader-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let (mut tx, rx) = rtrb::RingBuffer::new(segs as usize);
        let shared = Arc::new(JournalShared::new(Pos::start_of(0)));
        let mut all = Vec::new();
        for seq in 0..segs {
            let s = Arc::new(Segment::create(&dir, 0, seq, len).unwrap());
            all.push(s.clone());
            tx.push(s).unwrap();
        }
        let mark = Mark {
            pos: Pos::start_of(0),
            carried: Vec::new(),
        };
        Rig {
            journal: ShardJournal::new(rx, shared.clone()),
            reader: ShardReader::new(0, all, mark),
            shared,
            dir,
        }
    }

    fn row(i: u64) -> UsageRecord {
        UsageRecord {
            ts_micros: 1_000 + i as i64,
            request_id: format!("req-{i}"),
            operation: "converse",
            status: 200,
            latency_ms: 1.0,
            ..Default::default()
        }
    }

    #[test]
    fn rows_wait_for_their_end_across_segments() {
        let mut r = rig("ends", 3, 128 * 1024);
        let n = 1500u64;
        for i in 1..=n {
            assert!(r.journal.reserve());
            assert!(r.journal.append_row(i, &row(i), true));
            // Every 7th ends at once; the others end after the next row arrived.
            if i > 1 && (i - 1) % 7 != 0 {
                assert!(r.journal.append_end(i - 1, 20.0, true));
            }
            if i % 7 == 0 {
                assert!(r.journal.append_end(i, 50.0, i != 14));
            }
        }
        assert!(r.shared.published().seq >= 1, "{n} rows span segments");
        let mut out = Vec::new();
        let p = r.reader.poll(Some(r.shared.published()), usize::MAX, &mut out);
        assert_eq!(p.stale, 0);
        assert_eq!(p.skipped, 0);
        // The last row has no end yet.
        assert_eq!(out.len() as u64, n - 1, "all ended rows, in end order");
        let ids: std::collections::HashSet<_> = out.iter().map(|r| r.request_id.clone()).collect();
        assert_eq!(ids.len() as u64, n - 1);
        let r14 = out.iter().find(|x| x.request_id == "req-14").unwrap();
        assert_eq!(r14.error_type.as_deref(), Some("ClientDisconnected"));
        assert_eq!(r14.latency_ms, 50.0, "the end record's latency wins");
        let m = r.reader.mark();
        assert_eq!(m.carried.len(), 1, "the last row is carried");
        assert_eq!(r.reader.backlog_rows, n - 1);

        // A later end emits the carried row; a rewind replays the same rows as stale.
        r.journal.append_end(n, 9.0, true);
        let mut more = Vec::new();
        let p2 = r.reader.poll(Some(r.shared.published()), usize::MAX, &mut more);
        assert_eq!((p2.rows, p2.stale), (1, 0));
        assert_eq!(more[0].request_id, format!("req-{n}"));
        let start = Mark {
            pos: Pos::start_of(0),
            carried: Vec::new(),
        };
        r.reader.rewind(&start);
        let mut again = Vec::new();
        let p3 = r.reader.poll(Some(r.shared.published()), usize::MAX, &mut again);
        assert_eq!(p3.rows as u64, n);
        assert_eq!(p3.stale as u64, n, "replayed rows are not observed twice");
        let _ = std::fs::remove_dir_all(&r.dir);
    }

    #[test]
    fn an_earlier_process_rows_without_an_end_are_emitted_at_its_last_segment() {
        // Segment 0: the earlier process (row 1 ended, row 2 never); segment 1: this one,
        // whose key 2 must not pick up the earlier row 2.
        let mut r = rig("boundary", 2, 256 * 1024);
        r.journal.append_row(1, &row(1), false);
        r.journal.append_end(1, 3.0, true);
        r.journal.append_row(2, &row(2), false);
        let earlier = r.reader.seg(0).unwrap().clone();
        let later = r.reader.seg(1).unwrap().clone();
        let mut reader = ShardReader::new(
            0,
            vec![earlier],
            Mark {
                pos: Pos::start_of(0),
                carried: Vec::new(),
            },
        )
        .with_boundary(1);
        let mut out = Vec::new();
        let p = reader.poll(Some(Pos::start_of(1)), usize::MAX, &mut out);
        assert_eq!((p.rows, p.recovered), (2, 2), "{out:?}");
        assert_eq!(out[1].request_id, "req-2");
        assert_eq!(out[1].latency_ms, 1.0, "its committed latency stands");
        // This process writes key 2 in segment 1: a new row, not the earlier one.
        reader.push_segment(later.clone());
        let mut fresh = row(2);
        fresh.request_id = "new-2".into();
        let mut frame = Vec::new();
        crate::usage::journal::codec::encode_row(2, &fresh, &mut frame);
        crate::usage::journal::codec::write_frame(&frame, |off, b| later.write(HEADER_BYTES + off, b));
        let end = HEADER_BYTES + crate::usage::journal::codec::framed_len(frame.len());
        crate::usage::journal::codec::encode_end(2, 4.0, true, &mut frame);
        crate::usage::journal::codec::write_frame(&frame, |off, b| later.write(end + off, b));
        let upto = Pos {
            seq: 1,
            off: (end + crate::usage::journal::codec::framed_len(frame.len())) as u32,
        };
        let mut more = Vec::new();
        let p2 = reader.poll(Some(upto), usize::MAX, &mut more);
        assert_eq!((p2.rows, p2.recovered), (1, 0));
        assert_eq!(more[0].request_id, "new-2");
        assert!(reader.exhausted());
        let _ = std::fs::remove_dir_all(&r.dir);
    }

    #[test]
    fn polls_are_bounded_and_resume() {
        let mut r = rig("bounded", 2, 256 * 1024);
        for i in 1..=50 {
            r.journal.append_row(i, &row(i), false);
            r.journal.append_end(i, 1.0, true);
        }
        let mut out = Vec::new();
        assert_eq!(r.reader.poll(Some(r.shared.published()), 20, &mut out).rows, 20);
        assert_eq!(r.reader.poll(Some(r.shared.published()), 100, &mut out).rows, 30);
        assert_eq!(r.reader.poll(Some(r.shared.published()), 100, &mut out).rows, 0);
        assert_eq!(out.len(), 50);
        let _ = std::fs::remove_dir_all(&r.dir);
    }

    #[test]
    fn damaged_records_are_skipped_and_reading_resumes() {
        let mut r = rig("damage", 1, 256 * 1024);
        for i in 1..=5 {
            r.journal.append_row(i, &row(i), false);
            r.journal.append_end(i, 1.0, true);
        }
        // Flip a byte inside the third row's payload (rows and ends alternate).
        let seg = r.reader.seg(0).unwrap().clone();
        let mut at = HEADER_BYTES;
        for _ in 0..4 {
            at = next_frame(seg.bytes(0, seg.size()), at).unwrap().unwrap().1;
        }
        seg.write(at + FRAME_HEADER + 12, &[0xAA]);
        let mut out = Vec::new();
        let p = r.reader.poll(Some(r.shared.published()), usize::MAX, &mut out);
        assert_eq!(p.skipped, 1);
        let ids: Vec<_> = out.iter().map(|r| r.request_id.as_str()).collect();
        assert_eq!(ids, ["req-1", "req-2", "req-4", "req-5"]);
        let _ = std::fs::remove_dir_all(&r.dir);
    }

    #[test]
    fn a_full_journal_refuses_reservations() {
        let mut r = rig("full", 1, 256 * 1024);
        let mut admitted = 0;
        while r.journal.reserve() {
            admitted += 1;
            assert!(admitted < 1000, "the bound holds");
        }
        assert!(admitted > 0);
        assert!(r.shared.full.load(std::sync::atomic::Ordering::Relaxed));
        // Reserved rows can still be written: the reservation holds their room.
        for i in 0..admitted {
            assert!(r.journal.append_row(i, &row(i), true));
        }
        let _ = std::fs::remove_dir_all(&r.dir);
    }
}
