//! The Parquet side of the ledger: rows into zstd Parquet files in `dt=YYYY-MM-DD/`
//! partitions, one open file per UTC day, each written as `.{name}.inprogress`.
//! [`ParquetSink::finish`] writes the footers and fsyncs the files; [`publish`] renames
//! them into place and fsyncs their directories. Between the two the writer records a
//! checkpoint, so a file is either wholly published or its rows are still in the journal.
//! A failed write or fsync abandons the open files (deleted); their rows are re-read from
//! the journal, never from a page cache whose state after an I/O error is unknown.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use arrow_schema::SchemaRef;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

use super::faults::{self, Op};
use crate::usage::record::UsageRecord;
use crate::usage::schema::{schema, to_batch};
use crate::util::time::Civil;

/// Rows per Arrow batch handed to the Parquet writer.
pub const BATCH_ROWS: usize = 8192;
/// Rows per Parquet row group (bounds the writer's memory).
pub const ROW_GROUP_ROWS: usize = 64 * 1024;
/// Default roll size in bytes.
pub const DEFAULT_ROLL_BYTES: usize = 256 * 1024 * 1024;
/// zstd level: 1, zstd's fastest standard level. On usage rows it compresses within a few
/// per cent of level 3 for about half the writer's compression time.
pub const ZSTD_LEVEL: i32 = 1;
/// Text columns whose values are unique per row. Dictionaries are kept for the other text
/// columns (tenants, tags, models, regions: few values, read back as dictionaries); a
/// number or a unique id gains nothing from one (every value a new entry, hashed and
/// compared before Parquet gives up on it), and an id's min/max prunes nothing.
pub const UNIQUE_TEXT_COLUMNS: [&str; 2] = ["request_id", "upstream_request_id"];

/// The writer properties: zstd, bounded row groups, dictionaries only for the repeated
/// text columns, no statistics for the unique ids.
fn properties(schema: &arrow_schema::Schema) -> WriterProperties {
    let mut props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(ZSTD_LEVEL).unwrap_or_default()))
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_dictionary_enabled(false);
    for f in schema.fields() {
        let path = ColumnPath::from(f.name().as_str());
        if UNIQUE_TEXT_COLUMNS.contains(&f.name().as_str()) {
            props = props.set_column_statistics_enabled(path, EnabledStatistics::None);
        } else if f.data_type() == &arrow_schema::DataType::Utf8 {
            props = props.set_column_dictionary_enabled(path, true);
        }
    }
    props.build()
}

/// When files close and where they go.
#[derive(Debug, Clone)]
pub struct WriterConfig {
    pub dir: PathBuf,
    pub roll_interval: Duration,
    pub roll_rows: usize,
    pub roll_bytes: usize,
    pub host: String,
}

/// Why a Parquet file could not be written, closed or published.
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

/// A usage file being written: a `File` whose writes and fsync can be made to fail
/// (debug builds, `faults`).
pub struct LedgerFile(File);

impl Write for LedgerFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        faults::check(Op::Write)?;
        self.0.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

impl LedgerFile {
    /// fsync: the file's bytes and size are on disk.
    pub fn sync(&self) -> std::io::Result<()> {
        faults::check(Op::Fsync)?;
        self.0.sync_all()
    }
}

/// fsyncs a directory (after creating, renaming or removing in it).
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    faults::check(Op::Fsync)?;
    File::open(dir)?.sync_all()
}

/// Renames `from` to `to` (the step that publishes a file or a checkpoint).
pub fn rename(from: &Path, to: &Path) -> std::io::Result<()> {
    faults::check(Op::Rename)?;
    std::fs::rename(from, to)
}

struct OpenFile {
    writer: ArrowWriter<LedgerFile>,
    done: Finished,
    day: i64,
    opened: Instant,
}

/// A closed, fsynced file not yet renamed into place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    /// `dt=…/.{name}.inprogress`, relative to the usage directory.
    pub tmp: PathBuf,
    /// `dt=…/{name}`, relative to the usage directory.
    pub dest: PathBuf,
    pub rows: usize,
}

/// Open Parquet files, usable without the writer thread (recovery, tests, benchmarks).
pub struct ParquetSink {
    cfg: WriterConfig,
    schema: SchemaRef,
    props: WriterProperties,
    open: Vec<OpenFile>,
    seq: u64,
}

fn day_of(ts_micros: i64) -> i64 {
    ts_micros.div_euclid(86_400_000_000)
}

impl ParquetSink {
    pub fn new(cfg: WriterConfig) -> Self {
        let schema = schema();
        ParquetSink {
            cfg,
            props: properties(&schema),
            schema,
            open: Vec::new(),
            seq: 0,
        }
    }

    pub fn dir(&self) -> &Path {
        &self.cfg.dir
    }

    fn open(&mut self, day: i64) -> Result<usize, WriterError> {
        let part = format!("dt={}", Civil::from_unix(day * 86_400).date_dashed());
        std::fs::create_dir_all(self.cfg.dir.join(&part))?;
        self.seq += 1;
        let ms = crate::util::time::unix_now_micros() / 1000;
        let name = format!("{}-{}-{}.parquet", self.cfg.host, ms, self.seq);
        let tmp = Path::new(&part).join(format!(".{name}.inprogress"));
        let f = File::create(self.cfg.dir.join(&tmp))?;
        let writer = ArrowWriter::try_new(LedgerFile(f), self.schema.clone(), Some(self.props.clone()))?;
        self.open.push(OpenFile {
            writer,
            done: Finished {
                tmp,
                dest: Path::new(&part).join(name),
                rows: 0,
            },
            day,
            opened: Instant::now(),
        });
        Ok(self.open.len() - 1)
    }

    /// Appends rows (in time order), each to the open file of its UTC day.
    pub fn write(&mut self, rows: &[UsageRecord]) -> Result<(), WriterError> {
        let mut start = 0;
        while start < rows.len() {
            let day = day_of(rows[start].ts_micros);
            let end = rows[start..]
                .iter()
                .position(|r| day_of(r.ts_micros) != day)
                .map_or(rows.len(), |p| start + p);
            let at = match self.open.iter().position(|f| f.day == day) {
                Some(i) => i,
                None => self.open(day)?,
            };
            for chunk in rows[start..end].chunks(BATCH_ROWS) {
                let batch = to_batch(chunk, &self.schema)?;
                let f = &mut self.open[at];
                f.writer.write(&batch)?;
                f.done.rows += chunk.len();
            }
            start = end;
        }
        Ok(())
    }

    /// Rows in the open files.
    pub fn rows(&self) -> usize {
        self.open.iter().map(|f| f.done.rows).sum()
    }

    /// Rows the fullest open file may still take before `--roll-rows`.
    pub fn room(&self) -> usize {
        let fullest = self.open.iter().map(|f| f.done.rows).max().unwrap_or(0);
        self.cfg.roll_rows.saturating_sub(fullest)
    }

    /// Whether the open files should close now: one is old, full or large enough, or a
    /// new UTC day began while an older day's file is open.
    pub fn due(&self) -> bool {
        self.open.len() > 1
            || self.open.iter().any(|f| {
                f.opened.elapsed() >= self.cfg.roll_interval
                    || f.done.rows >= self.cfg.roll_rows
                    || f.writer.bytes_written() + f.writer.in_progress_size() >= self.cfg.roll_bytes
            })
    }

    /// Writes every open file's footer and fsyncs it; on an error every open file is
    /// abandoned (their rows are still in the journal).
    pub fn finish(&mut self) -> Result<Vec<Finished>, WriterError> {
        let mut out = Vec::with_capacity(self.open.len());
        while let Some(mut f) = self.open.pop() {
            let closed = f
                .writer
                .finish()
                .map_err(WriterError::from)
                .and_then(|_| f.writer.inner().sync().map_err(WriterError::from));
            if let Err(e) = closed {
                drop(f.writer);
                let _ = std::fs::remove_file(self.cfg.dir.join(&f.done.tmp));
                self.remove(&out);
                self.abandon();
                return Err(e);
            }
            out.push(f.done);
        }
        out.reverse();
        Ok(out)
    }

    /// Deletes finished files that will not be published (their checkpoint failed).
    pub fn remove(&self, files: &[Finished]) {
        for f in files {
            let _ = std::fs::remove_file(self.cfg.dir.join(&f.tmp));
        }
    }

    /// Drops every open file and deletes it.
    pub fn abandon(&mut self) {
        for f in self.open.drain(..) {
            drop(f.writer);
            let _ = std::fs::remove_file(self.cfg.dir.join(&f.done.tmp));
        }
    }

    /// Finishes and publishes at once (no journal to checkpoint: tests and benchmarks);
    /// returns the rows published.
    pub fn close(&mut self) -> Result<usize, WriterError> {
        let files = self.finish()?;
        publish(&self.cfg.dir, &files)?;
        Ok(files.iter().map(|f| f.rows).sum())
    }
}

/// Renames finished files into place and fsyncs their directories. A file no longer at
/// its temporary name was published already (and may since have been shipped away), so a
/// publication can be completed again after a crash.
pub fn publish(dir: &Path, files: &[Finished]) -> Result<(), WriterError> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    for f in files {
        let (tmp, dest) = (dir.join(&f.tmp), dir.join(&f.dest));
        if tmp.exists() {
            rename(&tmp, &dest)?;
        }
        // Synced again on a retry too (a failed directory fsync may have followed the
        // rename); a partition removed since (retention) has nothing left to sync.
        if let Some(parent) = dest.parent().filter(|p| p.is_dir()) {
            if !dirs.iter().any(|d| d == parent) {
                dirs.push(parent.to_path_buf());
            }
        }
    }
    for d in dirs {
        sync_dir(&d)?;
    }
    Ok(())
}

/// The host part of file names: the host name, reduced to `[A-Za-z0-9.-]`.
pub fn host_name() -> String {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::usage::read::{list_files, read_dir};

    const DAY: i64 = 86_400_000_000;

    fn dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("llmops-sink-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    fn cfg(dir: &Path) -> WriterConfig {
        WriterConfig {
            dir: dir.to_path_buf(),
            roll_interval: Duration::from_secs(3600),
            roll_rows: 1000,
            roll_bytes: usize::MAX,
            host: "t".into(),
        }
    }

    fn rows(n: usize, ts: i64) -> Vec<UsageRecord> {
        (0..n)
            .map(|i| UsageRecord {
                ts_micros: ts + i as i64,
                request_id: format!("r{ts}-{i}"),
                operation: "converse",
                status: 200,
                ..Default::default()
            })
            .collect()
    }

    #[test]
    fn rolls_by_rows() {
        let d = dir("rows");
        let mut s = ParquetSink::new(cfg(&d));
        s.write(&rows(600, 20 * DAY)).unwrap();
        assert!(!s.due());
        assert_eq!(s.room(), 400);
        s.write(&rows(400, 20 * DAY + 1000)).unwrap();
        assert!(s.due(), "1000 rows reach --roll-rows");
        assert_eq!(s.room(), 0);
        assert_eq!(s.close().unwrap(), 1000);
        assert_eq!(list_files(&d).len(), 1);
        assert_eq!(read_dir(&d).unwrap().len(), 1000);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn dictionaries_for_repeated_text_only_and_no_statistics_for_ids() {
        use parquet::file::reader::{FileReader, SerializedFileReader};
        let d = dir("encodings");
        let mut s = ParquetSink::new(cfg(&d));
        let mut r = rows(200, 20 * DAY);
        for (i, row) in r.iter_mut().enumerate() {
            row.department = Some(["eng", "ops"][i % 2].into());
            row.input_tokens = Some(i as i64);
        }
        s.write(&r).unwrap();
        s.close().unwrap();
        let f = File::open(&list_files(&d)[0]).unwrap();
        let meta = SerializedFileReader::new(f).unwrap().metadata().clone();
        let rg = meta.row_group(0);
        let col = |name: &str| {
            (0..rg.num_columns())
                .map(|i| rg.column(i))
                .find(|c| c.column_path().string() == name)
                .unwrap()
        };
        assert!(col("department").dictionary_page_offset().is_some());
        assert!(col("model_effective").dictionary_page_offset().is_some());
        for plain in ["request_id", "ts", "input_tokens", "latency_ms"] {
            assert!(col(plain).dictionary_page_offset().is_none(), "{plain}");
        }
        assert!(col("request_id").statistics().is_none());
        assert!(col("ts").statistics().is_some(), "time stays prunable");
        assert_eq!(read_dir(&d).unwrap().len(), 200);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn rolls_by_age() {
        let d = dir("age");
        let mut s = ParquetSink::new(WriterConfig {
            roll_interval: Duration::from_millis(50),
            ..cfg(&d)
        });
        assert!(!s.due(), "nothing open, nothing due");
        s.write(&rows(3, 20 * DAY)).unwrap();
        assert!(!s.due());
        std::thread::sleep(Duration::from_millis(80));
        assert!(s.due());
        assert_eq!(s.close().unwrap(), 3);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn rolls_by_bytes() {
        let d = dir("bytes");
        let mut s = ParquetSink::new(WriterConfig {
            roll_bytes: 4096,
            roll_rows: usize::MAX,
            ..cfg(&d)
        });
        s.write(&rows(10, 20 * DAY)).unwrap();
        assert!(!s.due());
        let mut big = rows(5000, 20 * DAY + 100);
        for r in &mut big {
            r.error_message = Some(format!("{:x}", r.ts_micros.wrapping_mul(2654435761)));
        }
        s.write(&big).unwrap();
        assert!(s.due(), "in-progress bytes count toward --roll-bytes");
        let _ = s.close().unwrap();
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn utc_midnight_splits_files_by_day() {
        let d = dir("midnight");
        let mut s = ParquetSink::new(cfg(&d));
        let before = rows(5, 21 * DAY - 5);
        assert!(before.iter().all(|r| day_of(r.ts_micros) == 20));
        s.write(&before).unwrap();
        assert!(!s.due());
        s.write(&rows(2, 21 * DAY)).unwrap();
        assert!(s.due(), "a new UTC day closes the old day's file");
        let files = s.finish().unwrap();
        assert_eq!(files.len(), 2);
        assert!(files[0].dest.starts_with("dt=1970-01-21"), "{:?}", files[0]);
        assert!(files[1].dest.starts_with("dt=1970-01-22"), "{:?}", files[1]);
        assert_eq!(list_files(&d).len(), 0, "not published before publish()");
        publish(&d, &files).unwrap();
        publish(&d, &files).unwrap();
        assert_eq!(list_files(&d).len(), 2, "publishing twice is harmless");
        assert_eq!(read_dir(&d).unwrap().len(), 7);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn abandon_leaves_nothing() {
        let d = dir("abandon");
        let mut s = ParquetSink::new(cfg(&d));
        s.write(&rows(5, 20 * DAY)).unwrap();
        s.abandon();
        assert_eq!(s.rows(), 0);
        let part = d.join("dt=1970-01-21");
        assert_eq!(std::fs::read_dir(&part).unwrap().count(), 0);
        let _ = std::fs::remove_dir_all(&d);
    }
}
