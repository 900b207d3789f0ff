//! Start-up recovery, run before anything reads the usage files (the budget rebuild) or
//! writes them (the writer). [`prepare`] takes the journal's lock, completes the renames
//! the last checkpoint listed, removes `.inprogress` files the checkpoint does not cover
//! (their rows are still in the journal), moves corrupt Parquet files of the last two days
//! aside with their reason, and opens the segments; [`replay`] writes every journal row
//! after the checkpoint into Parquet exactly once, checkpoints, and deletes the segments.
//! When the replay cannot be written (a full disk at start-up), the writer takes the
//! segments over and replays them once writes succeed (`writer::open`).
//!
//! A directory written before the journal existed has `.inprogress` files whose rows are
//! nowhere else: a complete one is published, an unreadable one quarantined.

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::checkpoint::Checkpoint;
use super::reader::{Mark, ShardReader};
use super::sink::{publish, rename, sync_dir, Finished, ParquetSink, WriterConfig};
use super::LedgerError;
use crate::usage::journal::segment::{parse_name, Segment};
use crate::usage::journal::Pos;
use crate::usage::UsageRecord;

/// The lock file that keeps a second process off the same journal.
pub const LOCK_FILE: &str = "LOCK";
/// Where damaged files are moved, under the usage directory.
pub const QUARANTINE_DIR: &str = "_quarantine";
/// Rows replayed per Parquet write during recovery.
const REPLAY_CHUNK: usize = 64 * 1024;

/// The journal as recovery found it (renames completed, leftovers dealt with), before any
/// replay.
pub struct Found {
    /// Held for the life of the process.
    pub lock: File,
    /// The checkpoint was unreadable: a replay skips rows already in files, by request id.
    pub damaged: bool,
    /// Per shard with segments on disk: the segments in order, and where replay starts
    /// (with the rows the checkpoint carried).
    pub shards: BTreeMap<u32, (Vec<Arc<Segment>>, Mark)>,
    /// Per shard seen: where its next segment starts (everything before is replayed once
    /// the segments above are).
    pub positions: BTreeMap<u32, Pos>,
    /// Files moved to `_quarantine/`.
    pub quarantined: u64,
}

/// What a replay wrote.
pub struct Replayed {
    pub rows: u64,
    /// Damaged journal records skipped.
    pub skipped: u64,
}

/// Takes the journal directory's exclusive lock (another live process fails here).
pub fn lock(journal_dir: &Path) -> Result<File, LedgerError> {
    let path = journal_dir.join(LOCK_FILE);
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| LedgerError::io("open the journal lock", &path, e))?;
    // SAFETY: flock on an fd we own; the result is checked.
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        return Err(LedgerError::Locked(journal_dir.to_path_buf()));
    }
    Ok(f)
}

/// Moves `path` (under `usage_dir`) to `_quarantine/`, renamed so no `*.parquet` glob
/// matches it, with a `.reason` file beside it.
pub fn quarantine(usage_dir: &Path, path: &Path, reason: &str) -> bool {
    let q = usage_dir.join(QUARANTINE_DIR);
    if std::fs::create_dir_all(&q).is_err() {
        return false;
    }
    let rel = path.strip_prefix(usage_dir).unwrap_or(path);
    let flat = rel.to_string_lossy().replace(['/', '\\'], "_");
    let dest = q.join(format!("{flat}.quarantined"));
    let moved = rename(path, &dest).is_ok();
    if moved {
        let _ = std::fs::write(q.join(format!("{flat}.reason")), format!("{reason}\n"));
        let _ = sync_dir(&q);
        crate::log::warn(
            "usage_file_quarantined",
            &[
                ("file", &path.display().to_string()),
                ("moved_to", &dest.display().to_string()),
                ("reason", reason),
            ],
        );
    }
    moved
}

/// Whether a Parquet file's footer reads (a truncated or overwritten file fails).
pub fn readable(path: &Path) -> Result<(), String> {
    let f = File::open(path).map_err(|e| e.to_string())?;
    ParquetRecordBatchReaderBuilder::try_new(f)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// The `dt=` partitions under the usage directory.
fn partitions(usage_dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(usage_dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("dt="))
        .map(|e| e.path())
        .collect();
    v.sort();
    v
}

fn files_in(dir: &Path) -> Vec<(String, PathBuf)> {
    let mut v: Vec<(String, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
        .collect();
    v.sort();
    v
}

/// Completes the renames a checkpoint listed (a crash may have cut them short).
fn complete(usage_dir: &Path, files: &[Finished]) {
    for f in files {
        if let Err(e) = publish(usage_dir, std::slice::from_ref(f)) {
            crate::log::error(
                "usage_publish_incomplete",
                &[("file", &f.dest.display().to_string()), ("error", &e.to_string())],
            );
        }
    }
}

/// Deals with `.inprogress` files: those of the journal era the checkpoint does not list
/// are removed (their rows are replayed), those of a directory without a journal are
/// published when complete.
fn sweep_inprogress(usage_dir: &Path, journal_era: bool, listed: &[Finished], quarantined: &mut u64) {
    for part in partitions(usage_dir) {
        for (name, path) in files_in(&part) {
            if !(name.starts_with('.') && name.ends_with(".inprogress")) {
                continue;
            }
            if listed.iter().any(|f| usage_dir.join(&f.tmp) == path) {
                // Checkpointed but its rename failed again: its rows exist nowhere else.
                continue;
            }
            if journal_era {
                let _ = std::fs::remove_file(&path);
                crate::log::info(
                    "usage_file_superseded",
                    &[
                        ("file", &path.display().to_string()),
                        (
                            "detail",
                            "unfinished file removed; its rows are replayed from the journal",
                        ),
                    ],
                );
                continue;
            }
            let dest = part.join(name.trim_start_matches('.').trim_end_matches(".inprogress"));
            match readable(&path) {
                Ok(()) if rename(&path, &dest).is_ok() => {
                    crate::log::info("usage_file_recovered", &[("file", &dest.display().to_string())])
                }
                Ok(()) => {}
                Err(e) => {
                    let why = format!("unfinished file from before the journal; unreadable: {e}");
                    *quarantined += u64::from(quarantine(usage_dir, &path, &why));
                }
            }
        }
        let _ = sync_dir(&part);
    }
}

/// Moves unreadable Parquet files of today's and yesterday's partitions aside.
fn check_recent(usage_dir: &Path, quarantined: &mut u64) {
    let today = crate::util::time::unix_now().div_euclid(86_400);
    let names: Vec<String> = [today - 1, today]
        .iter()
        .map(|d| format!("dt={}", crate::util::time::Civil::from_unix(d * 86_400).date_dashed()))
        .collect();
    for part in partitions(usage_dir) {
        let is_recent = part
            .file_name()
            .is_some_and(|n| names.iter().any(|w| n.to_string_lossy() == *w));
        if !is_recent {
            continue;
        }
        for (name, path) in files_in(&part) {
            if name.starts_with('.') || !name.ends_with(".parquet") {
                continue;
            }
            if let Err(e) = readable(&path) {
                *quarantined += u64::from(quarantine(usage_dir, &path, &format!("unreadable Parquet: {e}")));
            }
        }
    }
}

/// Every segment file in the journal directory, by shard, in sequence order.
fn segments(usage_dir: &Path, journal_dir: &Path, quarantined: &mut u64) -> BTreeMap<u32, Vec<Arc<Segment>>> {
    let mut by_shard: BTreeMap<u32, Vec<Arc<Segment>>> = BTreeMap::new();
    for (name, path) in files_in(journal_dir) {
        if parse_name(&name).is_none() {
            continue;
        }
        match Segment::open(&path) {
            Ok(s) => by_shard.entry(s.shard).or_default().push(Arc::new(s)),
            Err(e) => {
                crate::log::error(
                    "journal_segment_unreadable",
                    &[("segment", &path.display().to_string()), ("error", &e.to_string())],
                );
                *quarantined += u64::from(quarantine(usage_dir, &path, &format!("journal segment: {e}")));
            }
        }
    }
    for v in by_shard.values_mut() {
        v.sort_by_key(|s| s.seq);
    }
    by_shard
}

/// Request ids already in the published files of the day of `ts` (used only when the
/// checkpoint is damaged, so that a replay does not write a row twice).
struct Published {
    dir: PathBuf,
    days: HashSet<i64>,
    ids: HashSet<String>,
}

impl Published {
    fn contains(&mut self, r: &UsageRecord) -> bool {
        let day = r.ts_micros.div_euclid(86_400_000_000);
        if self.days.insert(day) {
            let part = format!("dt={}", crate::util::time::Civil::from_unix(day * 86_400).date_dashed());
            let ids = &mut self.ids;
            let scan = crate::usage::read::scan_dir(&self.dir.join(part), |rows| {
                ids.extend(rows.into_iter().map(|r| r.request_id));
            });
            for (f, e, _) in scan.bad {
                crate::log::warn(
                    "usage_file_skipped",
                    &[("file", &f.display().to_string()), ("error", &e.to_string())],
                );
            }
        }
        self.ids.contains(&r.request_id)
    }
}

/// Writes every row of `readers` to Parquet; returns the files written, the rows and the
/// records skipped.
fn write_all(
    sink: &mut ParquetSink,
    readers: &mut [ShardReader],
    mut dedupe: Option<Published>,
) -> Result<(Vec<Finished>, u64, u64), LedgerError> {
    let (mut files, mut rows, mut skipped) = (Vec::new(), 0u64, 0u64);
    let mut buf: Vec<UsageRecord> = Vec::with_capacity(REPLAY_CHUNK);
    let w = |e| LedgerError::Write(e);
    for r in readers.iter_mut() {
        loop {
            buf.clear();
            let max = sink.room().clamp(1, REPLAY_CHUNK);
            let p = r.poll(None, max, &mut buf);
            skipped += p.skipped;
            let done = p.rows < max;
            if done {
                r.drain_pending(&mut buf);
            }
            if let Some(d) = dedupe.as_mut() {
                buf.retain(|row| !d.contains(row));
            }
            buf.sort_by_key(|row| row.ts_micros);
            sink.write(&buf).map_err(w)?;
            rows += buf.len() as u64;
            if sink.due() {
                files.extend(sink.finish().map_err(w)?);
            }
            if done {
                break;
            }
        }
    }
    files.extend(sink.finish().map_err(w)?);
    Ok((files, rows, skipped))
}

/// Takes the lock, reads the checkpoint, completes its renames, deals with `.inprogress`
/// leftovers and unreadable recent files, and opens every segment (see the module doc).
pub fn prepare(usage_dir: &Path, journal_dir: &Path) -> Result<Found, LedgerError> {
    std::fs::create_dir_all(journal_dir)
        .map_err(|e| LedgerError::io("create the journal directory", journal_dir, e))?;
    let lock = lock(journal_dir)?;
    let _ = std::fs::remove_file(journal_dir.join("checkpoint.tmp"));
    let mut quarantined = 0u64;
    let (ckpt, damaged) = match Checkpoint::read(journal_dir) {
        Ok(c) => (c, false),
        Err(e) => {
            crate::log::error(
                "ledger_checkpoint_unreadable",
                &[
                    ("error", &e.to_string()),
                    (
                        "recovery",
                        "every segment is replayed; rows already in files are skipped by request id",
                    ),
                ],
            );
            (None, true)
        }
    };
    let segs = segments(usage_dir, journal_dir, &mut quarantined);
    let journal_era = ckpt.is_some() || damaged || !segs.is_empty();
    let ckpt = ckpt.unwrap_or_default();
    complete(usage_dir, &ckpt.files);
    sweep_inprogress(usage_dir, journal_era, &ckpt.files, &mut quarantined);
    check_recent(usage_dir, &mut quarantined);

    let mut positions = ckpt.positions.clone();
    let mut shards = BTreeMap::new();
    for (shard, list) in segs {
        let next = list.last().map_or(0, |s| s.seq.saturating_add(1));
        let first = list.first().map_or(0, |s| s.seq);
        let mut from = ckpt.positions.get(&shard).copied().unwrap_or(Pos::start_of(first));
        if !list.iter().any(|s| s.seq == from.seq) {
            // The checkpoint's segment is gone (all of it was covered): start at the next.
            from = list
                .iter()
                .find(|s| s.seq > from.seq)
                .map_or(Pos::start_of(next), |s| Pos::start_of(s.seq));
        }
        let carried = ckpt
            .carried
            .iter()
            .filter(|c| c.shard == shard)
            .map(|c| (c.key, c.rec.clone()))
            .collect();
        let at = positions.entry(shard).or_default();
        *at = (*at).max(Pos::start_of(next));
        shards.insert(shard, (list, Mark { pos: from, carried }));
    }
    Ok(Found {
        lock,
        damaged,
        shards,
        positions,
        quarantined,
    })
}

/// Replays every segment `found` holds into Parquet, checkpoints past them, publishes
/// the files and deletes the segments. On an error nothing is lost: the segments and the
/// previous checkpoint stay, and the files written are removed.
pub fn replay(found: &Found, usage_dir: &Path, journal_dir: &Path, cfg: WriterConfig) -> Result<Replayed, LedgerError> {
    let mut readers: Vec<ShardReader> = found
        .shards
        .iter()
        .map(|(shard, (list, mark))| ShardReader::new(*shard, list.clone(), mark.clone()))
        .collect();
    let mut sink = ParquetSink::new(cfg);
    let dedupe = found.damaged.then(|| Published {
        dir: usage_dir.to_path_buf(),
        days: HashSet::new(),
        ids: HashSet::new(),
    });
    let (files, rows, skipped) = match write_all(&mut sink, &mut readers, dedupe) {
        Ok(w) => w,
        Err(e) => {
            sink.abandon();
            return Err(e);
        }
    };
    let done = Checkpoint {
        positions: found.positions.clone(),
        carried: Vec::new(),
        files: files.clone(),
    };
    if let Err(e) = done.write(journal_dir) {
        sink.remove(&files);
        return Err(LedgerError::io("write the checkpoint", journal_dir, e));
    }
    complete(usage_dir, &files);
    for r in &mut readers {
        for s in r.retire_before(Pos::start_of(u32::MAX)) {
            let path = s.path.clone();
            drop(s);
            if let Err(e) = std::fs::remove_file(&path) {
                crate::log::warn(
                    "journal_segment_kept",
                    &[("segment", &path.display().to_string()), ("error", &e.to_string())],
                );
            }
        }
    }
    let _ = sync_dir(journal_dir);
    if rows > 0 || skipped > 0 || found.quarantined > 0 {
        crate::log::info(
            "ledger_recovered",
            &[
                ("rows_replayed", &rows.to_string()),
                ("records_skipped", &skipped.to_string()),
                ("files_quarantined", &found.quarantined.to_string()),
                ("files_written", &files.len().to_string()),
            ],
        );
    }
    Ok(Replayed { rows, skipped })
}
