//! The writer thread. Each pass: keep every shard's spare segments ready (within
//! `--ledger-max-bytes`), msync new journal pages every `--fsync-interval`, read what the
//! shards published, tell the observer about new rows (metrics, access log, budgets),
//! write them to Parquet, and when files are due (age, rows, bytes, UTC day, journal
//! backlog) commit: footers and fsync, checkpoint, renames, then retire the segments
//! the checkpoint covers. `rows_written` counts rows only once their file is published.
//!
//! A failed write, fsync, checkpoint or rename abandons the open files and is retried
//! with backoff (1 s doubling to 30 s) from the last checkpoint: the rows are still in the
//! journal. Meanwhile the journals are still read, so budgets and metrics stay current.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender};

use super::checkpoint::Checkpoint;
use super::faults::{self, Op};
use super::reader::{Mark, ShardReader};
use super::recovery::{prepare, replay};
use super::sink::{publish, sync_dir, Finished, ParquetSink};
use super::{
    LedgerConfig, LedgerError, LedgerShared, LedgerStats, MAX_ROWS_PER_POLL, RETRY_FIRST, RETRY_MAX, WRITER_TICK,
    WRITE_BATCH_ROWS, WRITE_BATCH_WAIT,
};
use crate::usage::journal::segment::Segment;
use crate::usage::journal::{JournalShared, Pos, ShardJournal, SPARES};
use crate::usage::observe::Observer;
use crate::usage::UsageRecord;

/// One shard as the writer sees it.
struct Side {
    reader: ShardReader,
    spares: rtrb::Producer<Arc<Segment>>,
    next_seq: u32,
    shared: Arc<JournalShared>,
    /// Where the last checkpoint left this shard.
    last: Mark,
    /// Journal bytes msynced up to here.
    synced: Pos,
    /// A shard of this process (false: segments an earlier process left for a shard id
    /// this one does not run, read to the end).
    live: bool,
}

/// A failed write being retried.
struct Failing {
    retry_at: Instant,
    attempts: u32,
}

/// The writer's state (moved into its thread by [`spawn`]).
pub struct Writer {
    cfg: LedgerConfig,
    sink: ParquetSink,
    sides: Vec<Side>,
    /// Positions of shards this process does not run (kept in every checkpoint).
    statics: BTreeMap<u32, Pos>,
    /// Checkpointed files whose rename has not happened yet.
    unpublished: Vec<Finished>,
    failing: Option<Failing>,
    /// False between a failure and its retry: rows are read (observed) but not written.
    writing: bool,
    provision_error: Option<String>,
    next_sync: Instant,
    stats: Arc<LedgerStats>,
    /// Rows read and observed, not yet handed to Parquet (see [`WRITE_BATCH_ROWS`]).
    rows: Vec<UsageRecord>,
    /// When the oldest of `rows` was read.
    gathering_since: Option<Instant>,
    /// Rows read this pass, added to `rows_read` only after the backlog gauges are
    /// published: a scrape that sees the count sees the backlog that goes with it.
    read_unpublished: u64,
    /// Held while the process lives: no second process on this journal.
    _lock: std::fs::File,
}

/// The ledger opened: recovery done, a journal per shard, the writer ready to start.
pub struct Opened {
    pub journals: Vec<ShardJournal>,
    pub shared: Arc<LedgerShared>,
    pub writer: Writer,
}

/// Recovers the usage directory, then prepares a journal for each of `cfg.shards`. When
/// the replay cannot be written (a full or failing disk at start-up), the proxy starts
/// anyway: the earlier segments go to the writer, which replays them once writes succeed.
pub fn open(cfg: LedgerConfig) -> Result<Opened, LedgerError> {
    let stats = Arc::new(LedgerStats::default());
    let found = prepare(&cfg.usage_dir, &cfg.journal_dir)?;
    stats.quarantined_files.store(found.quarantined, Ordering::Relaxed);
    let mut earlier = match replay(&found, &cfg.usage_dir, &cfg.journal_dir, cfg.sink()) {
        Ok(r) => {
            stats.recovered_rows.store(r.rows, Ordering::Relaxed);
            stats.skipped_records.store(r.skipped, Ordering::Relaxed);
            BTreeMap::new()
        }
        Err(e) => {
            crate::log::error(
                "ledger_recovery_deferred",
                &[
                    ("error", &e.to_string()),
                    (
                        "detail",
                        "the journal is kept; its rows are written once the disk takes writes",
                    ),
                ],
            );
            found.shards.clone()
        }
    };
    let positions = found.positions.clone();
    let mut journals = Vec::with_capacity(cfg.shards);
    let mut sides = Vec::with_capacity(cfg.shards);
    for id in 0..cfg.shards as u32 {
        let start = positions.get(&id).copied().unwrap_or(Pos::start_of(0));
        let (spares, consumer) = rtrb::RingBuffer::new(SPARES);
        let shared = Arc::new(JournalShared::new(start));
        journals.push(ShardJournal::new(consumer, shared.clone()));
        sides.push(Side::new(id, earlier.remove(&id), start, spares, shared, true));
    }
    // Shards this process does not run: their position is kept in every checkpoint, and
    // segments they left (a deferred replay) are read to the end.
    let mut statics = BTreeMap::new();
    for (id, p) in positions.iter().filter(|(id, _)| **id as usize >= cfg.shards) {
        match earlier.remove(id) {
            Some(segs) => {
                let (spares, _) = rtrb::RingBuffer::new(1);
                let end = Arc::new(JournalShared::new(Pos { seq: u32::MAX, off: 0 }));
                sides.push(Side::new(*id, Some(segs), *p, spares, end, false));
            }
            None => {
                statics.insert(*id, *p);
            }
        }
    }
    let shared = Arc::new(LedgerShared {
        stats: stats.clone(),
        journals: journals.iter().map(ShardJournal::shared).collect(),
        on_full: cfg.on_full,
        max_bytes: cfg.max_bytes,
        fsync_interval: cfg.fsync_interval,
    });
    let mut writer = Writer {
        sink: ParquetSink::new(cfg.sink()),
        next_sync: Instant::now() + cfg.fsync_interval,
        cfg,
        sides,
        statics,
        unpublished: Vec::new(),
        failing: None,
        writing: true,
        provision_error: None,
        stats,
        rows: Vec::new(),
        gathering_since: None,
        read_unpublished: 0,
        _lock: found.lock,
    };
    writer.provision();
    writer.publish_stats();
    Ok(Opened {
        journals,
        shared,
        writer,
    })
}

impl Side {
    /// Shard `id` from `start` on; `earlier`: segments an earlier process left, read first.
    fn new(
        id: u32,
        earlier: Option<(Vec<Arc<Segment>>, Mark)>,
        start: Pos,
        spares: rtrb::Producer<Arc<Segment>>,
        shared: Arc<JournalShared>,
        live: bool,
    ) -> Side {
        let (reader, last) = match earlier {
            Some((segs, mark)) => (ShardReader::new(id, segs, mark.clone()).with_boundary(start.seq), mark),
            None => {
                let mark = Mark {
                    pos: start,
                    carried: Vec::new(),
                };
                (ShardReader::new(id, Vec::new(), mark.clone()), mark)
            }
        };
        Side {
            reader,
            spares,
            next_seq: start.seq,
            shared,
            last,
            synced: start,
            live,
        }
    }
}

/// Handle to the running writer thread.
pub struct WriterHandle {
    control: Sender<()>,
    thread: Option<JoinHandle<()>>,
}

impl WriterHandle {
    /// Writes every journaled row, commits, and joins the thread (call after the shards
    /// have stopped).
    pub fn shutdown(mut self) {
        let _ = self.control.send(());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Starts the writer thread.
pub fn spawn(mut w: Writer, observer: Observer) -> std::io::Result<WriterHandle> {
    let (tx, rx): (Sender<()>, Receiver<()>) = crossbeam_channel::bounded(1);
    let thread = std::thread::Builder::new().name("usage-writer".into()).spawn(move || {
        crate::log::never_block_this_thread();
        let _cache = crate::util::alloc::cache_this_thread_for_batches();
        loop {
            let stop = !matches!(
                rx.recv_timeout(WRITER_TICK),
                Err(crossbeam_channel::RecvTimeoutError::Timeout)
            );
            if stop {
                w.shutdown(&observer);
                return;
            }
            w.pass(&observer);
        }
    })?;
    Ok(WriterHandle {
        control: tx,
        thread: Some(thread),
    })
}

impl Writer {
    /// One pass (see the module doc).
    pub fn pass(&mut self, observer: &Observer) {
        let now = Instant::now();
        self.provision();
        if now >= self.next_sync {
            self.sync_journals();
            self.next_sync = now + self.cfg.fsync_interval;
        }
        if self.failing.as_ref().is_some_and(|f| now >= f.retry_at) && !self.writing {
            self.rewind();
        }
        self.read(observer);
        if faults::check(Op::SlowPublish).is_err() {
            std::thread::sleep(faults::SLOW_PUBLISH_PAUSE);
        }
        self.write(false);
        let backlog_full = self.backlog_bytes() >= self.cfg.max_bytes / 4;
        if self.writing && (self.sink.due() || backlog_full || (self.failing.is_some() && self.caught_up())) {
            self.commit();
        }
        self.publish_files();
        self.publish_stats();
    }

    /// Reads what the shards published (up to what the open files may take) and observes
    /// the rows not seen before.
    fn read(&mut self, observer: &Observer) {
        let mut budget = if self.writing {
            self.sink.room().saturating_sub(self.rows.len())
        } else {
            MAX_ROWS_PER_POLL * self.sides.len()
        };
        let mut observed = false;
        for side in &mut self.sides {
            if budget == 0 {
                break;
            }
            let before = self.rows.len();
            let p = side.reader.poll(
                Some(side.shared.published()),
                budget.min(MAX_ROWS_PER_POLL),
                &mut self.rows,
            );
            budget -= p.rows;
            if p.skipped > 0 {
                self.stats.skipped_records.fetch_add(p.skipped, Ordering::Relaxed);
            }
            if p.recovered > 0 {
                self.stats.recovered_rows.fetch_add(p.recovered, Ordering::Relaxed);
            }
            let fresh = &self.rows[before + p.stale..];
            if !fresh.is_empty() {
                observer.observe(fresh);
                self.read_unpublished += fresh.len() as u64;
                observed = true;
            }
        }
        if !observed {
            // Budgets roll their periods at midnight even without traffic.
            observer.observe(&[]);
        }
        if !self.rows.is_empty() && self.gathering_since.is_none() {
            self.gathering_since = Some(Instant::now());
        }
    }

    /// Hands the gathered rows to Parquet once a batch is full, its oldest row has waited
    /// [`WRITE_BATCH_WAIT`], the open files have no more room, or `flush` (a commit or
    /// the shutdown). While a failure waits for its retry the rows are dropped: they are
    /// read again from the journal.
    fn write(&mut self, flush: bool) {
        if !self.writing {
            self.drop_gathered();
            return;
        }
        if self.rows.is_empty() {
            return;
        }
        let due = flush
            || self.rows.len() >= WRITE_BATCH_ROWS.min(self.sink.room())
            || self.gathering_since.is_some_and(|t| t.elapsed() >= WRITE_BATCH_WAIT);
        if !due {
            return;
        }
        self.rows.sort_by_key(|r| r.ts_micros);
        let res = self.sink.write(&self.rows);
        self.drop_gathered();
        if let Err(e) = res {
            self.fail("write", &e.to_string());
        }
    }

    fn drop_gathered(&mut self) {
        self.rows.clear();
        self.gathering_since = None;
    }

    fn caught_up(&self) -> bool {
        self.sides
            .iter()
            .filter(|s| s.live)
            .all(|s| s.reader.read >= s.shared.published())
    }

    fn backlog_bytes(&self) -> u64 {
        self.sides
            .iter()
            .map(|s| s.reader.bytes_between(s.last.pos, s.shared.published()))
            .sum()
    }

    /// Closes the open files, checkpoints, publishes and retires (see the module doc).
    fn commit(&mut self) {
        // The checkpoint covers every row read: the gathered ones go in first.
        self.write(true);
        if !self.writing {
            return;
        }
        let files = match self.sink.finish() {
            Ok(f) => f,
            Err(e) => return self.fail("close", &e.to_string()),
        };
        let marks: Vec<Mark> = self
            .sides
            .iter()
            .map(|s| {
                let mut m = s.reader.mark();
                if !s.live && s.reader.exhausted() && m.carried.is_empty() {
                    // An earlier process's segments, read to the end: all of them can go.
                    m.pos = Pos::start_of(s.next_seq);
                }
                m
            })
            .collect();
        let mut ckpt = Checkpoint {
            positions: self.statics.clone(),
            carried: Vec::new(),
            files: self.unpublished.iter().chain(&files).cloned().collect(),
        };
        for (side, m) in self.sides.iter().zip(&marks) {
            ckpt.positions.insert(side.reader.shard, m.pos);
            ckpt.carried.extend(side.reader.carried(m));
        }
        if let Err(e) = ckpt.write(&self.cfg.journal_dir) {
            self.sink.remove(&files);
            return self.fail("checkpoint", &e.to_string());
        }
        for (side, m) in self.sides.iter_mut().zip(marks) {
            side.reader.committed();
            side.last = m;
        }
        if self.failing.take().is_some() {
            crate::log::info(
                "usage_writes_resumed",
                &[("detail", "rows kept in the journal are written")],
            );
        }
        self.unpublished.extend(files);
        self.publish_files();
        self.retire();
    }

    /// Renames checkpointed files into place; counts their rows as written once done.
    fn publish_files(&mut self) {
        if self.unpublished.is_empty() {
            return;
        }
        match publish(&self.cfg.usage_dir, &self.unpublished) {
            Ok(()) => {
                let rows: usize = self.unpublished.iter().map(|f| f.rows).sum();
                let st = &self.stats;
                st.rows_written.fetch_add(rows as u64, Ordering::Relaxed);
                st.files_rolled
                    .fetch_add(self.unpublished.len() as u64, Ordering::Relaxed);
                self.unpublished.clear();
            }
            Err(e) => {
                // Retried every pass, and by recovery if the process stops first.
                self.stats.write_errors.fetch_add(1, Ordering::Relaxed);
                crate::log::error(
                    "usage_publish_failed",
                    &[("error", &e.to_string()), ("detail", "the rename is retried")],
                );
            }
        }
    }

    /// Deletes the segments the last checkpoint covers.
    fn retire(&mut self) {
        let mut removed = false;
        for side in &mut self.sides {
            for seg in side.reader.retire_before(side.last.pos) {
                let path = seg.path.clone();
                drop(seg);
                removed |= std::fs::remove_file(&path).is_ok();
            }
        }
        if removed {
            let _ = sync_dir(&self.cfg.journal_dir);
        }
    }

    /// Abandons the open files and schedules a retry from the last checkpoint.
    fn fail(&mut self, what: &str, error: &str) {
        self.sink.abandon();
        // Read after the checkpoint: the retry reads them again.
        self.drop_gathered();
        self.stats.write_errors.fetch_add(1, Ordering::Relaxed);
        let attempts = self.failing.as_ref().map_or(0, |f| f.attempts) + 1;
        let wait = RETRY_FIRST.saturating_mul(1 << (attempts - 1).min(5)).min(RETRY_MAX);
        self.failing = Some(Failing {
            retry_at: Instant::now() + wait,
            attempts,
        });
        self.writing = false;
        crate::log::error(
            "usage_write_failed",
            &[
                ("step", what),
                ("error", error),
                ("rows", "kept in the journal"),
                ("retry_in_s", &wait.as_secs().to_string()),
            ],
        );
        *crate::util::snapshot::lock(&self.stats.last_error) = Some(format!("usage {what} failing: {error}"));
    }

    /// Goes back to the last checkpoint to write again what the failure lost.
    fn rewind(&mut self) {
        self.drop_gathered();
        for side in &mut self.sides {
            side.reader.rewind(&side.last);
        }
        self.writing = true;
    }

    /// Keeps each shard's spare segments ready, within `--ledger-max-bytes`.
    fn provision(&mut self) {
        let seg_bytes = self.cfg.segment_bytes();
        let mut total: u64 = self.sides.iter().map(|s| s.reader.journal_bytes()).sum();
        let mut error = None;
        'shards: for side in self.sides.iter_mut().filter(|s| s.live) {
            while side.spares.slots() > 0 {
                if total + seg_bytes as u64 > self.cfg.max_bytes {
                    break 'shards;
                }
                let made = faults::check(Op::Provision).map_err(|e| e.to_string()).and_then(|()| {
                    Segment::create(&self.cfg.journal_dir, side.reader.shard, side.next_seq, seg_bytes)
                        .map_err(|e| e.to_string())
                });
                side.next_seq += 1;
                match made {
                    Ok(seg) => {
                        let seg = Arc::new(seg);
                        side.reader.push_segment(seg.clone());
                        let _ = side.spares.push(seg);
                        total += seg_bytes as u64;
                        // Room again: health need not wait for the shard's next request.
                        side.shared.full.store(false, Ordering::Relaxed);
                    }
                    Err(e) => {
                        error = Some(e);
                        break 'shards;
                    }
                }
            }
        }
        match (&self.provision_error, error) {
            (None, Some(e)) => {
                crate::log::error(
                    "journal_segment_failed",
                    &[
                        ("error", &e),
                        (
                            "detail",
                            "retried every pass; shards refuse requests when their journal is full",
                        ),
                    ],
                );
                self.provision_error = Some(e);
            }
            (Some(_), None) => {
                crate::log::info("journal_segment_resumed", &[]);
                self.provision_error = None;
            }
            (Some(_), Some(e)) => self.provision_error = Some(e),
            (None, None) => {}
        }
    }

    /// msyncs the journal pages published since the last sync (group commit).
    fn sync_journals(&mut self) {
        for side in self.sides.iter_mut().filter(|s| s.live) {
            let upto = side.shared.published();
            let mut ok = true;
            for (seg, from, to) in side.reader.ranges(side.synced, upto) {
                if let Err(e) = seg.sync(from, to) {
                    ok = false;
                    crate::log::error(
                        "journal_sync_failed",
                        &[("segment", &seg.path.display().to_string()), ("error", &e.to_string())],
                    );
                }
            }
            if ok {
                side.synced = upto;
            }
        }
    }

    /// The gauges `/metrics` and `/healthz` read, then the rows read since the last call
    /// (released after the gauges: see `read_unpublished`).
    fn publish_stats(&mut self) {
        let st = &self.stats;
        let sum = |f: &dyn Fn(&Side) -> u64| self.sides.iter().map(f).sum::<u64>();
        st.backlog_rows
            .store(sum(&|s| s.reader.backlog_rows), Ordering::Relaxed);
        st.backlog_bytes.store(self.backlog_bytes(), Ordering::Relaxed);
        st.journal_bytes
            .store(sum(&|s| s.reader.journal_bytes()), Ordering::Relaxed);
        let oldest = self.sides.iter().filter_map(|s| s.reader.backlog_oldest).min();
        st.oldest_unwritten.store(oldest.unwrap_or(0), Ordering::Relaxed);
        st.last_drain
            .store(crate::util::time::unix_now_micros(), Ordering::Relaxed);
        let why = if self.failing.is_some() {
            crate::util::snapshot::lock(&st.last_error).clone()
        } else if let Some(e) = &self.provision_error {
            Some(format!("cannot create journal segments: {e}"))
        } else if !self.unpublished.is_empty() {
            Some("usage files written but not yet renamed into place".into())
        } else {
            None
        };
        st.set_degraded(why);
        let read = std::mem::take(&mut self.read_unpublished);
        self.stats.rows_read.fetch_add(read, Ordering::Release);
    }

    /// At shutdown (the shards have stopped): everything journaled goes to Parquet, rows
    /// still waiting for an end record too; then the journal is emptied. If the disk
    /// still fails, the rows stay in the journal for the next start.
    fn shutdown(&mut self, observer: &Observer) {
        self.sync_journals();
        if self.failing.is_some() {
            self.rewind();
        }
        loop {
            let before: Vec<Pos> = self.sides.iter().map(|s| s.reader.read).collect();
            self.read(observer);
            self.write(true);
            if self.sink.due() && self.writing {
                self.commit();
            }
            let moved = self.sides.iter().zip(&before).any(|(s, b)| s.reader.read != *b);
            if !moved && self.rows.is_empty() {
                break;
            }
        }
        self.drop_gathered();
        for side in &mut self.sides {
            side.reader.drain_pending(&mut self.rows);
        }
        if !self.rows.is_empty() {
            observer.observe(&self.rows);
            self.stats
                .rows_read
                .fetch_add(self.rows.len() as u64, Ordering::Relaxed);
        }
        self.write(true);
        if self.writing {
            self.commit();
        }
        self.publish_files();
        if self.failing.is_some() || !self.unpublished.is_empty() {
            crate::log::error(
                "usage_rows_kept_in_journal",
                &[
                    ("journal", &self.cfg.journal_dir.display().to_string()),
                    ("detail", "written to Parquet at the next start"),
                ],
            );
            return;
        }
        self.empty_journal();
    }

    /// After a clean final commit: moves every shard past its segments and deletes them.
    fn empty_journal(&mut self) {
        let mut ckpt = Checkpoint {
            positions: self.statics.clone(),
            ..Default::default()
        };
        for side in &mut self.sides {
            side.last.pos = Pos::start_of(side.next_seq);
            ckpt.positions.insert(side.reader.shard, side.last.pos);
        }
        if ckpt.write(&self.cfg.journal_dir).is_ok() {
            self.retire();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::usage::ledger::FullPolicy;

    fn config(dir: &std::path::Path) -> LedgerConfig {
        LedgerConfig {
            usage_dir: dir.to_path_buf(),
            journal_dir: dir.join(crate::usage::ledger::JOURNAL_DIR),
            roll_interval: std::time::Duration::from_secs(3600),
            roll_rows: 1_000_000,
            roll_bytes: usize::MAX,
            fsync_interval: std::time::Duration::from_secs(3600),
            max_bytes: 64 << 20,
            on_full: FullPolicy::Refuse,
            shards: 1,
            host: "t".into(),
        }
    }

    fn journal_rows(j: &mut ShardJournal, from: u64, n: u64) {
        for key in from..from + n {
            let rec = UsageRecord {
                ts_micros: 1_764_000_000_000_000 + key as i64,
                request_id: format!("r{key}"),
                operation: "converse",
                status: 200,
                ..Default::default()
            };
            assert!(j.reserve());
            assert!(j.append_row(key, &rec, true));
            assert!(j.append_end(key, 1.0, true));
        }
    }

    #[test]
    fn rows_gather_over_passes_and_a_commit_writes_them_all() {
        let dir = std::env::temp_dir().join(format!("llmops-writer-gather-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let Opened {
            mut journals,
            mut writer,
            ..
        } = open(config(&dir)).unwrap();
        let observer = Observer::default();
        let mut j = journals.remove(0);
        // A few passes' worth, below a batch: read and observed, not yet in Parquet.
        for pass in 0..3 {
            journal_rows(&mut j, pass * 100, 100);
            writer.pass(&observer);
        }
        assert_eq!(writer.rows.len(), 300, "gathered");
        assert_eq!(writer.sink.rows(), 0, "one batch, not one per pass");
        // A full batch goes at once.
        journal_rows(&mut j, 300, WRITE_BATCH_ROWS as u64);
        writer.pass(&observer);
        assert_eq!(writer.sink.rows(), 300 + WRITE_BATCH_ROWS);
        assert!(writer.rows.is_empty());
        // The rest waits at most WRITE_BATCH_WAIT.
        journal_rows(&mut j, 300 + WRITE_BATCH_ROWS as u64, 7);
        writer.pass(&observer);
        assert_eq!(writer.rows.len(), 7);
        std::thread::sleep(WRITE_BATCH_WAIT);
        writer.pass(&observer);
        assert_eq!(writer.sink.rows(), 307 + WRITE_BATCH_ROWS);
        // A commit takes what is gathered first: every row read is in the files it closes.
        journal_rows(&mut j, 307 + WRITE_BATCH_ROWS as u64, 5);
        writer.pass(&observer);
        assert_eq!(writer.rows.len(), 5);
        writer.commit();
        assert!(writer.rows.is_empty());
        assert_eq!(
            crate::usage::read::read_dir(&dir).unwrap().len(),
            312 + WRITE_BATCH_ROWS,
            "published, each row once"
        );
        drop(j);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
