//! The durable usage ledger: the shards' journals (`usage::journal`) turned into Parquet
//! by one writer thread, exactly once, through crashes, power cuts and full disks.
//!
//! | promise | how |
//! | --- | --- |
//! | kill -9 loses no answered row | a row is in the shard's mapped segment (page cache) before its last byte is written |
//! | power loss loses at most `--fsync-interval` | the writer msyncs new journal pages that often (group commit) |
//! | nothing written before is corrupted | files are fsynced before a checkpoint names them; records carry checksums |
//! | restart: no loss, no duplicate | `recovery` replays from the checkpoint, completes listed renames, drops unlisted partial files |
//! | full or failing disk loses nothing silently | rows stay in the journal, writes are retried; at `--ledger-max-bytes` new requests get 503 `LedgerUnavailable` (or are served and counted, `--on-ledger-full=serve`) |
//!
//! `sink` (Parquet files), `checkpoint` (the durable state), `reader` (a journal read
//! back), `recovery` (start-up), `writer` (the thread), `faults` (test injection).

pub(crate) mod checkpoint;
pub(crate) mod faults;
pub(crate) mod reader;
pub(crate) mod recovery;
pub mod sink;
pub(crate) mod writer;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Default `--fsync-interval`: the most a power cut can lose.
pub const DEFAULT_FSYNC_INTERVAL: Duration = Duration::from_millis(200);
/// Default `--ledger-max-bytes`: journal on disk, all shards together.
pub const DEFAULT_MAX_BYTES: u64 = 2 << 30;
/// Smallest `--ledger-max-bytes` accepted per shard (four of the smallest segments: one
/// in use, two spares, one being read).
pub const MIN_MAX_BYTES_PER_SHARD: u64 = 4 * MIN_SEGMENT_BYTES as u64;
/// Segment size bounds; a segment is `max_bytes / (shards * SEGMENTS_PER_SHARD)`. Each
/// shard keeps one in use and two spares allocated, so at most 24 MiB per shard is taken
/// before any row needs it; a shard at 50,000 rows/s fills about two 8 MiB segments a
/// second (each a file the writer creates off the request path).
pub const MIN_SEGMENT_BYTES: usize = 256 << 10;
pub const MAX_SEGMENT_BYTES: usize = 8 << 20;
pub const SEGMENTS_PER_SHARD: u64 = 8;
/// Rows the writer takes from one shard per pass (bounds its memory).
pub const MAX_ROWS_PER_POLL: usize = 64 * 1024;
/// The writer's pass interval when idle.
pub const WRITER_TICK: Duration = Duration::from_millis(20);
/// Rows the writer gathers, over passes, before it hands them to Parquet: Arrow and
/// Parquet cost a fixed amount per call and column, which a pass's few hundred rows pay
/// far more often than a few thousand. The batch's ~5 strings of each small size per row
/// are freed at once: the writer's allocator lists are long enough to keep them
/// (`util::alloc::cache_this_thread_for_batches`). Files are invisible until they commit,
/// and a commit writes what was gathered first, so nothing is seen later.
pub const WRITE_BATCH_ROWS: usize = 4096;
/// Longest a gathered row waits for its batch (a quiet proxy's rows still reach the open
/// file, whose age decides when it commits).
pub const WRITE_BATCH_WAIT: Duration = Duration::from_millis(250);
/// First and longest wait before a failed write is retried (doubling between).
pub const RETRY_FIRST: Duration = Duration::from_secs(1);
pub const RETRY_MAX: Duration = Duration::from_secs(30);
/// The journal directory under the usage directory, unless `--journal-dir` says.
pub const JOURNAL_DIR: &str = "_journal";

/// What a shard does when its journal has no room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FullPolicy {
    /// 503 `LedgerUnavailable`: no unmetered traffic passes.
    #[default]
    Refuse,
    /// Keep serving; every row not kept is counted (`usage_records_dropped_total`).
    Serve,
}

impl FullPolicy {
    pub fn parse(s: &str) -> Option<FullPolicy> {
        match s {
            "refuse" => Some(FullPolicy::Refuse),
            "serve" => Some(FullPolicy::Serve),
            _ => None,
        }
    }
}

/// The ledger's settings.
#[derive(Debug, Clone)]
pub struct LedgerConfig {
    pub usage_dir: PathBuf,
    pub journal_dir: PathBuf,
    pub roll_interval: Duration,
    pub roll_rows: usize,
    pub roll_bytes: usize,
    pub fsync_interval: Duration,
    pub max_bytes: u64,
    pub on_full: FullPolicy,
    pub shards: usize,
    pub host: String,
}

impl LedgerConfig {
    /// The size of one journal segment.
    pub fn segment_bytes(&self) -> usize {
        let per = self.max_bytes / (self.shards.max(1) as u64 * SEGMENTS_PER_SHARD);
        (per as usize).clamp(MIN_SEGMENT_BYTES, MAX_SEGMENT_BYTES)
    }

    pub fn sink(&self) -> sink::WriterConfig {
        sink::WriterConfig {
            dir: self.usage_dir.clone(),
            roll_interval: self.roll_interval,
            roll_rows: self.roll_rows,
            roll_bytes: self.roll_bytes,
            host: self.host.clone(),
        }
    }
}

/// Why the ledger could not start.
#[derive(Debug)]
pub enum LedgerError {
    /// Another process holds the journal's lock.
    Locked(PathBuf),
    Io {
        what: &'static str,
        path: PathBuf,
        error: std::io::Error,
    },
    Write(sink::WriterError),
}

impl LedgerError {
    pub fn io(what: &'static str, path: &Path, error: std::io::Error) -> LedgerError {
        LedgerError::Io {
            what,
            path: path.to_path_buf(),
            error,
        }
    }
}

impl std::fmt::Display for LedgerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LedgerError::Locked(p) => write!(
                f,
                "{} is in use by another llmops-proxy (one process per usage directory)",
                p.display()
            ),
            LedgerError::Io { what, path, error } => write!(f, "cannot {what} ({}): {error}", path.display()),
            LedgerError::Write(e) => write!(f, "cannot write recovered rows: {e}"),
        }
    }
}

impl std::error::Error for LedgerError {}

/// What the writer publishes for `/metrics` and `/healthz`.
#[derive(Debug, Default)]
pub struct LedgerStats {
    /// Rows in closed, fsynced, published files.
    pub rows_written: AtomicU64,
    pub files_rolled: AtomicU64,
    /// Rows taken from the journals (metrics, budgets and the access log are current up
    /// to them; each row once).
    pub rows_read: AtomicU64,
    /// Failed Parquet writes, fsyncs, checkpoints and renames.
    pub write_errors: AtomicU64,
    /// Unix micros of the last pass over the journals.
    pub last_drain: AtomicI64,
    /// Rows read from the journals and not yet in a published file.
    pub backlog_rows: AtomicU64,
    /// Journal bytes not yet covered by a checkpoint.
    pub backlog_bytes: AtomicU64,
    /// Unix micros of the oldest row not yet in a published file (0: none).
    pub oldest_unwritten: AtomicI64,
    /// Journal bytes on disk (segments allocated).
    pub journal_bytes: AtomicU64,
    /// Rows replayed at start-up, damaged records skipped, files quarantined.
    pub recovered_rows: AtomicU64,
    pub skipped_records: AtomicU64,
    pub quarantined_files: AtomicU64,
    /// Writes failing (being retried), or segments that cannot be made.
    pub degraded: AtomicBool,
    /// What went wrong last, while degraded (no secret or row content in it).
    pub last_error: Mutex<Option<String>>,
}

impl LedgerStats {
    /// The reason the ledger is degraded, if it is.
    pub fn degraded_reason(&self) -> Option<String> {
        if !self.degraded.load(Ordering::Relaxed) {
            return None;
        }
        Some(
            crate::util::snapshot::lock(&self.last_error)
                .clone()
                .unwrap_or_default(),
        )
    }

    fn set_degraded(&self, why: Option<String>) {
        self.degraded.store(why.is_some(), Ordering::Relaxed);
        *crate::util::snapshot::lock(&self.last_error) = why;
    }
}

/// The ledger side every shard and `/metrics` read: the writer's stats, each shard's
/// journal publication, and the policy when a journal is full.
pub struct LedgerShared {
    pub stats: Arc<LedgerStats>,
    pub journals: Vec<Arc<crate::usage::journal::JournalShared>>,
    pub on_full: FullPolicy,
    pub max_bytes: u64,
    pub fsync_interval: Duration,
}

impl LedgerShared {
    /// Shards whose journal has no room now.
    pub fn full_shards(&self) -> usize {
        self.journals.iter().filter(|j| j.full.load(Ordering::Relaxed)).count()
    }

    /// Rows that could not be kept (`--on-ledger-full=serve`).
    pub fn lost(&self) -> u64 {
        self.journals.iter().map(|j| j.lost.load(Ordering::Relaxed)).sum()
    }

    /// Requests refused with `LedgerUnavailable`.
    pub fn refused(&self) -> u64 {
        self.journals.iter().map(|j| j.refused.load(Ordering::Relaxed)).sum()
    }
}
