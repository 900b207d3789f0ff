//! The writer thread: drains every shard's queue, builds Arrow batches and writes zstd
//! Parquet files into `dt=YYYY-MM-DD/` partitions. A file is written as
//! `.{name}.inprogress` and renamed when closed, so readers never see half a file.
//! Files roll by age, rows, bytes and UTC day; an interval with no rows writes nothing.
//! Control messages (flush, shutdown) come over a crossbeam channel.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use arrow_schema::SchemaRef;
use crossbeam_channel::{Receiver, Sender};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use super::observe::Observer;
use super::record::UsageRecord;
use super::schema::{schema, to_batch};
use crate::util::time::Civil;

/// How often the writer wakes to drain queues when idle.
pub(crate) const WRITER_TICK: Duration = Duration::from_millis(20);
/// Rows per Arrow batch handed to the Parquet writer.
pub(crate) const BATCH_ROWS: usize = 8192;
/// Rows per Parquet row group (bounds the writer's memory).
pub(crate) const ROW_GROUP_ROWS: usize = 64 * 1024;
/// Default roll size in bytes.
pub(crate) const DEFAULT_ROLL_BYTES: usize = 256 * 1024 * 1024;
/// zstd level.
pub(crate) const ZSTD_LEVEL: i32 = 3;

/// Writer settings.
#[derive(Debug, Clone)]
pub struct WriterConfig {
    pub dir: PathBuf,
    pub roll_interval: Duration,
    pub roll_rows: usize,
    pub roll_bytes: usize,
    pub host: String,
}

/// Messages to the writer.
pub(crate) enum Control {
    /// Drain everything, close, exit.
    Shutdown,
}

/// Counters the writer publishes.
#[derive(Debug, Default)]
pub struct WriterStats {
    pub rows_written: AtomicU64,
    pub files_rolled: AtomicU64,
    pub write_errors: AtomicU64,
    /// Unix micros of the newest row written (for writer lag).
    pub last_row_ts: AtomicI64,
    /// Unix micros of the last drain.
    pub last_drain: AtomicI64,
}

/// Why the writer failed an operation (logged and counted; rows are kept for retry).
#[derive(Debug)]
pub enum WriterError {
    Io(std::io::Error),
    Parquet(parquet::errors::ParquetError),
    Arrow(arrow_schema::ArrowError),
}

impl std::fmt::Display for WriterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WriterError::Io(e) => write!(f, "usage file I/O: {e}"),
            WriterError::Parquet(e) => write!(f, "parquet: {e}"),
            WriterError::Arrow(e) => write!(f, "arrow: {e}"),
        }
    }
}

impl std::error::Error for WriterError {}

impl From<std::io::Error> for WriterError {
    fn from(e: std::io::Error) -> Self {
        WriterError::Io(e)
    }
}
impl From<parquet::errors::ParquetError> for WriterError {
    fn from(e: parquet::errors::ParquetError) -> Self {
        WriterError::Parquet(e)
    }
}
impl From<arrow_schema::ArrowError> for WriterError {
    fn from(e: arrow_schema::ArrowError) -> Self {
        WriterError::Arrow(e)
    }
}

struct OpenFile {
    writer: ArrowWriter<File>,
    tmp: PathBuf,
    final_path: PathBuf,
    day: i64,
    opened: Instant,
    rows: usize,
}

/// The Parquet side, usable without the thread (tests, benchmarks).
pub struct ParquetSink {
    cfg: WriterConfig,
    schema: SchemaRef,
    props: WriterProperties,
    file: Option<OpenFile>,
    seq: u64,
    pub stats: Arc<WriterStats>,
}

fn day_of(ts_micros: i64) -> i64 {
    ts_micros.div_euclid(86_400_000_000)
}

impl ParquetSink {
    pub fn new(cfg: WriterConfig, stats: Arc<WriterStats>) -> Self {
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::try_new(ZSTD_LEVEL).unwrap_or_default()))
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
            .build();
        ParquetSink {
            cfg,
            schema: schema(),
            props,
            file: None,
            seq: 0,
            stats,
        }
    }

    fn open(&mut self, day: i64) -> Result<(), WriterError> {
        let c = Civil::from_unix(day * 86_400);
        let dir = self.cfg.dir.join(format!("dt={}", c.date_dashed()));
        std::fs::create_dir_all(&dir)?;
        self.seq += 1;
        let ms = crate::util::time::unix_now_micros() / 1000;
        let name = format!("{}-{}-{}.parquet", self.cfg.host, ms, self.seq);
        let tmp = dir.join(format!(".{name}.inprogress"));
        let final_path = dir.join(name);
        let f = File::create(&tmp)?;
        let writer = ArrowWriter::try_new(f, self.schema.clone(), Some(self.props.clone()))?;
        self.file = Some(OpenFile {
            writer,
            tmp,
            final_path,
            day,
            opened: Instant::now(),
            rows: 0,
        });
        Ok(())
    }

    /// Appends rows, opening and rolling files as needed.
    pub fn write(&mut self, rows: &[UsageRecord]) -> Result<(), WriterError> {
        let mut start = 0;
        while start < rows.len() {
            let day = day_of(rows[start].ts_micros);
            // The run of rows with the same UTC day.
            let end = rows[start..]
                .iter()
                .position(|r| day_of(r.ts_micros) != day)
                .map_or(rows.len(), |p| start + p);
            if self.file.as_ref().is_some_and(|f| f.day != day) {
                self.close()?;
            }
            for chunk in rows[start..end].chunks(BATCH_ROWS) {
                if self.file.is_none() {
                    self.open(day)?;
                }
                let batch = to_batch(chunk, &self.schema)?;
                if let Some(f) = self.file.as_mut() {
                    f.writer.write(&batch)?;
                    f.rows += chunk.len();
                }
                self.stats.rows_written.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                if let Some(last) = chunk.last() {
                    self.stats.last_row_ts.store(last.ts_micros, Ordering::Relaxed);
                }
                if self.should_roll() {
                    self.close()?;
                }
            }
            start = end;
        }
        Ok(())
    }

    fn should_roll(&self) -> bool {
        match &self.file {
            None => false,
            Some(f) => {
                f.rows >= self.cfg.roll_rows
                    || f.writer.bytes_written() + f.writer.in_progress_size() >= self.cfg.roll_bytes
            }
        }
    }

    /// Closes the file if it is older than the roll interval.
    pub(crate) fn roll_if_due(&mut self) -> Result<(), WriterError> {
        if self
            .file
            .as_ref()
            .is_some_and(|f| f.opened.elapsed() >= self.cfg.roll_interval)
        {
            self.close()?;
        }
        Ok(())
    }

    /// Writes the footer and renames the file into place.
    pub fn close(&mut self) -> Result<(), WriterError> {
        if let Some(f) = self.file.take() {
            f.writer.close()?;
            std::fs::rename(&f.tmp, &f.final_path)?;
            self.stats.files_rolled.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }
}

/// The host part of file names: the host name, reduced to `[A-Za-z0-9.-]`.
pub(crate) fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into our buffer.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    let raw = if rc == 0 {
        let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        String::from_utf8_lossy(&buf[..end]).into_owned()
    } else {
        String::new()
    };
    let clean: String = raw
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '.')
        .take(64)
        .collect();
    if clean.is_empty() {
        "host".into()
    } else {
        clean
    }
}

/// Handle to the running writer thread.
pub(crate) struct WriterHandle {
    pub control: Sender<Control>,
    pub stats: Arc<WriterStats>,
    thread: Option<JoinHandle<()>>,
}

impl WriterHandle {
    /// Drains every queue, closes the file and joins the thread.
    pub(crate) fn shutdown(mut self) {
        let _ = self.control.send(Control::Shutdown);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Starts the writer thread over the shards' consumers.
pub(crate) fn spawn(
    cfg: WriterConfig,
    consumers: Vec<rtrb::Consumer<UsageRecord>>,
    observer: Observer,
) -> std::io::Result<WriterHandle> {
    let stats = Arc::new(WriterStats::default());
    let (tx, rx) = crossbeam_channel::unbounded();
    let st = stats.clone();
    let thread = std::thread::Builder::new()
        .name("usage-writer".into())
        .spawn(move || run(cfg, consumers, rx, st, observer))?;
    Ok(WriterHandle {
        control: tx,
        stats,
        thread: Some(thread),
    })
}

/// Moves every queued row into `rows` and observes the new ones (metrics, access log)
/// exactly once, whatever later happens to their write.
fn drain(consumers: &mut [rtrb::Consumer<UsageRecord>], rows: &mut Vec<UsageRecord>, observer: &Observer) {
    let before = rows.len();
    for c in consumers.iter_mut() {
        while let Ok(r) = c.pop() {
            rows.push(r);
        }
    }
    observer.observe(&rows[before..]);
}

fn run(
    cfg: WriterConfig,
    mut consumers: Vec<rtrb::Consumer<UsageRecord>>,
    rx: Receiver<Control>,
    stats: Arc<WriterStats>,
    observer: Observer,
) {
    let mut sink = ParquetSink::new(cfg, stats.clone());
    let mut rows: Vec<UsageRecord> = Vec::with_capacity(BATCH_ROWS);
    let flush = |sink: &mut ParquetSink, rows: &mut Vec<UsageRecord>| {
        if rows.is_empty() {
            return;
        }
        // Rows from different shards interleave; keep each file's rows in time order.
        rows.sort_by_key(|r| r.ts_micros);
        match sink.write(rows) {
            Ok(()) => rows.clear(),
            Err(e) => {
                stats.write_errors.fetch_add(1, Ordering::Relaxed);
                crate::log::error(
                    "usage_write_failed",
                    &[("error", &e.to_string()), ("rows_kept", &rows.len().to_string())],
                );
                // Drop the broken file; rows are kept and retried on the next tick.
                let _ = sink.close();
            }
        }
    };
    loop {
        drain(&mut consumers, &mut rows, &observer);
        stats
            .last_drain
            .store(crate::util::time::unix_now_micros(), Ordering::Relaxed);
        if rows.len() >= BATCH_ROWS {
            flush(&mut sink, &mut rows);
        }
        let msg = rx.recv_timeout(WRITER_TICK);
        drain(&mut consumers, &mut rows, &observer);
        flush(&mut sink, &mut rows);
        if let Err(e) = sink.roll_if_due() {
            crate::log::error("usage_roll_failed", &[("error", &e.to_string())]);
        }
        match msg {
            Ok(Control::Shutdown) | Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                drain(&mut consumers, &mut rows, &observer);
                flush(&mut sink, &mut rows);
                if let Err(e) = sink.close() {
                    crate::log::error("usage_close_failed", &[("error", &e.to_string())]);
                }
                return;
            }
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
        }
    }
}

/// Every closed `.parquet` file under `dir` (any partitions), sorted.
pub fn list_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if p.is_dir() {
                stack.push(p);
            } else if name.ends_with(".parquet") && !name.starts_with('.') {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}
