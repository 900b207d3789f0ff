//! Reading usage files back (demo, report, the budget rebuild, recovery, tests): every
//! closed Parquet file under a directory, any partitions, into plain rows. [`scan_dir`]
//! hands rows over a batch at a time (bounded memory) and skips a damaged file with its
//! reason instead of failing the whole directory.

use std::fs::File;
use std::path::{Path, PathBuf};

use arrow_array::cast::AsArray;
use arrow_array::types::{Decimal128Type, Float64Type, Int64Type, TimestampMicrosecondType, UInt16Type};
use arrow_array::{Array, RecordBatch};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::record::UsageRecord;
use crate::pricing::{Flags, Latency, Scope, Tier};

/// Why usage files could not be read.
#[derive(Debug)]
pub enum ReadError {
    Io(std::io::Error),
    Parquet(String),
    Schema(String),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Io(e) => write!(f, "{e}"),
            ReadError::Parquet(e) => write!(f, "parquet: {e}"),
            ReadError::Schema(e) => write!(f, "unexpected schema: {e}"),
        }
    }
}

impl std::error::Error for ReadError {}

fn col<'a>(b: &'a RecordBatch, name: &str) -> Result<&'a dyn Array, ReadError> {
    b.column_by_name(name)
        .map(|a| a.as_ref())
        .ok_or_else(|| ReadError::Schema(format!("no column {name}")))
}

/// A column added after the first release: absent in older files, read as null.
fn added_string(b: &RecordBatch, name: &str, i: usize) -> Result<Option<String>, ReadError> {
    if b.column_by_name(name).is_none() {
        return Ok(None);
    }
    string(b, name, i)
}

/// As [`added_string`], for an integer column.
fn added_int(b: &RecordBatch, name: &str, i: usize) -> Result<Option<i64>, ReadError> {
    if b.column_by_name(name).is_none() {
        return Ok(None);
    }
    int(b, name, i)
}

fn string(b: &RecordBatch, name: &str, i: usize) -> Result<Option<String>, ReadError> {
    let a = col(b, name)?;
    let s = a
        .as_string_opt::<i32>()
        .ok_or_else(|| ReadError::Schema(format!("{name} is not utf8")))?;
    Ok((!s.is_null(i)).then(|| s.value(i).to_string()))
}

fn int(b: &RecordBatch, name: &str, i: usize) -> Result<Option<i64>, ReadError> {
    let a = col(b, name)?;
    let s = a
        .as_primitive_opt::<Int64Type>()
        .ok_or_else(|| ReadError::Schema(format!("{name} is not int64")))?;
    Ok((!s.is_null(i)).then(|| s.value(i)))
}

fn float(b: &RecordBatch, name: &str, i: usize) -> Result<Option<f64>, ReadError> {
    let a = col(b, name)?;
    let s = a
        .as_primitive_opt::<Float64Type>()
        .ok_or_else(|| ReadError::Schema(format!("{name} is not float64")))?;
    Ok((!s.is_null(i)).then(|| s.value(i)))
}

/// Reads one file a batch at a time, handing each batch's rows to `each`; returns the
/// number of rows. An error part-way leaves the rows already handed over (a damaged
/// footer, the usual damage, fails before any).
pub fn scan_file(path: &Path, mut each: impl FnMut(Vec<UsageRecord>)) -> Result<usize, ReadError> {
    let f = File::open(path).map_err(ReadError::Io)?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(f)
        .map_err(|e| ReadError::Parquet(e.to_string()))?
        .build()
        .map_err(|e| ReadError::Parquet(e.to_string()))?;
    let mut n = 0;
    for batch in reader {
        let b = batch.map_err(|e| ReadError::Parquet(e.to_string()))?;
        let rows = decode_batch(&b)?;
        n += rows.len();
        each(rows);
    }
    Ok(n)
}

/// Reads every row of one file.
pub fn read_file(path: &Path) -> Result<Vec<UsageRecord>, ReadError> {
    let mut out = Vec::new();
    scan_file(path, |rows| out.extend(rows))?;
    Ok(out)
}

/// The rows of one record batch.
fn decode_batch(b: &RecordBatch) -> Result<Vec<UsageRecord>, ReadError> {
    let mut out = Vec::with_capacity(b.num_rows());
    let ts = col(b, "ts")?
        .as_primitive_opt::<TimestampMicrosecondType>()
        .ok_or_else(|| ReadError::Schema("ts".into()))?
        .clone();
    let status = col(b, "status")?
        .as_primitive_opt::<UInt16Type>()
        .ok_or_else(|| ReadError::Schema("status".into()))?
        .clone();
    let cost = col(b, "cost_usd")?
        .as_primitive_opt::<Decimal128Type>()
        .ok_or_else(|| ReadError::Schema("cost_usd".into()))?
        .clone();
    // Added with the optimizer: absent from older files.
    let baseline = match b.column_by_name("cost_usd_baseline") {
        None => None,
        Some(a) => Some(
            a.as_primitive_opt::<Decimal128Type>()
                .ok_or_else(|| ReadError::Schema("cost_usd_baseline".into()))?
                .clone(),
        ),
    };
    for i in 0..b.num_rows() {
        let op = string(b, "operation", i)?.unwrap_or_default();
        let price_version = added_string(b, "price_version", i)?;
        out.push(UsageRecord {
            ts_micros: ts.value(i),
            request_id: string(b, "request_id", i)?.unwrap_or_default(),
            upstream_request_id: string(b, "upstream_request_id", i)?,
            tenant: string(b, "tenant", i)?.unwrap_or_default(),
            department: string(b, "department", i)?,
            project: string(b, "project", i)?,
            agent: string(b, "agent", i)?,
            operation: super::record::operation_name(&op),
            region: string(b, "region", i)?.unwrap_or_default(),
            model_requested: string(b, "model_requested", i)?.unwrap_or_default(),
            model_effective: string(b, "model_effective", i)?.unwrap_or_default(),
            status: status.value(i),
            error_type: string(b, "error_type", i)?,
            error_message: string(b, "error_message", i)?,
            input_tokens: int(b, "input_tokens", i)?,
            output_tokens: int(b, "output_tokens", i)?,
            total_tokens: int(b, "total_tokens", i)?,
            cache_read_tokens: int(b, "cache_read_tokens", i)?,
            cache_write_tokens: int(b, "cache_write_tokens", i)?,
            cost_pico_usd: (!cost.is_null(i)).then(|| cost.value(i)),
            price_id: string(b, "price_id", i)?.map(|s| std::sync::Arc::from(s.as_str())),
            latency_ms: float(b, "latency_ms", i)?.unwrap_or(0.0),
            upstream_latency_ms: float(b, "upstream_latency_ms", i)?,
            upstream_ttfb_ms: float(b, "upstream_ttfb_ms", i)?,
            provider_latency_ms: int(b, "provider_latency_ms", i)?,
            stop_reason: string(b, "stop_reason", i)?,
            request_bytes: int(b, "request_bytes", i)?.unwrap_or(0),
            response_bytes: int(b, "response_bytes", i)?.unwrap_or(0),
            price_scope: added_string(b, "price_scope", i)?.and_then(|s| Scope::parse(&s)),
            service_tier: added_string(b, "service_tier", i)?.and_then(|s| Tier::parse(&s)),
            latency_mode: added_string(b, "latency_mode", i)?.and_then(|s| Latency::parse(&s)),
            cache_write_5m_tokens: added_int(b, "cache_write_5m_tokens", i)?,
            cache_write_1h_tokens: added_int(b, "cache_write_1h_tokens", i)?,
            guardrail_units: added_int(b, "guardrail_units", i)?,
            price_version: price_version.map(|s| std::sync::Arc::from(s.as_str())),
            cost_flags: added_string(b, "cost_flags", i)?
                .map(|s| Flags::from_column(&s))
                .unwrap_or_default(),
            blocked_by: None,
            route_rule: added_string(b, "route_rule", i)?,
            route_action: added_string(b, "route_action", i)?.map(|a| super::record::route_action_name(&a)),
            attempts: added_int(b, "attempts", i)?,
            region_effective: added_string(b, "region_effective", i)?,
            cost_baseline_pico_usd: baseline.as_ref().and_then(|c| (!c.is_null(i)).then(|| c.value(i))),
        });
    }
    Ok(out)
}

/// Reads every closed file under `dir`; the first damaged file is an error.
pub fn read_dir(dir: &Path) -> Result<Vec<UsageRecord>, ReadError> {
    let mut out = Vec::new();
    for f in list_files(dir) {
        out.extend(read_file(&f)?);
    }
    Ok(out)
}

/// What [`scan_dir`] read.
#[derive(Debug, Default)]
pub struct Scan {
    /// Files read to the end.
    pub files: usize,
    /// Rows handed over.
    pub rows: usize,
    /// Files that failed, with why and how many of their rows were handed over before
    /// the damage (zero for a damaged footer).
    pub bad: Vec<(PathBuf, ReadError, usize)>,
}

/// Reads every closed file under `dir`, one batch in memory at a time; a damaged file
/// is reported in [`Scan::bad`] and the scan goes on.
pub fn scan_dir(dir: &Path, mut each: impl FnMut(Vec<UsageRecord>)) -> Scan {
    let mut scan = Scan::default();
    for f in list_files(dir) {
        let mut n = 0;
        match scan_file(&f, |rows| {
            n += rows.len();
            each(rows)
        }) {
            Ok(_) => scan.files += 1,
            Err(e) => scan.bad.push((f, e, n)),
        }
        scan.rows += n;
    }
    scan
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::usage::ledger::sink::{ParquetSink, WriterConfig};

    #[test]
    fn scan_skips_damaged_files_and_hands_rows_over_in_batches() {
        let dir = std::env::temp_dir().join(format!("llmops-scan-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut sink = ParquetSink::new(WriterConfig {
            dir: dir.clone(),
            roll_interval: std::time::Duration::from_secs(60),
            roll_rows: usize::MAX,
            roll_bytes: usize::MAX,
            host: "t".into(),
        });
        let rows: Vec<UsageRecord> = (0..20_000)
            .map(|i| UsageRecord {
                ts_micros: 1_764_000_000_000_000 + i,
                request_id: format!("r{i}"),
                operation: "converse",
                status: 200,
                ..Default::default()
            })
            .collect();
        sink.write(&rows).unwrap();
        assert_eq!(sink.close().unwrap(), 20_000);
        let good = list_files(&dir).pop().unwrap();
        let part = good.parent().unwrap().to_path_buf();
        let bytes = std::fs::read(&good).unwrap();
        std::fs::write(part.join("cut.parquet"), &bytes[..bytes.len() - 10]).unwrap();
        std::fs::write(part.join("junk.parquet"), b"not parquet").unwrap();
        let (mut seen, mut batches) = (0, 0);
        let scan = scan_dir(&dir, |b| {
            seen += b.len();
            batches += 1;
        });
        assert_eq!((scan.files, scan.rows, seen), (1, 20_000, 20_000));
        assert!(batches >= 3, "one batch at a time, not the whole file: {batches}");
        assert_eq!(scan.bad.len(), 2);
        assert!(scan.bad.iter().all(|(_, _, counted)| *counted == 0));
        assert!(read_dir(&dir).is_err(), "the strict reader still fails");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
