//! Structured log lines on stderr: `text` (`ts level event key=value ...`) or `json`
//! (one object per line). Callers pass only values that are safe to log: never a
//! secret, a prompt or a completion.
//!
//! A thread that must never wait on stderr (a shard, the usage writer) marks itself with
//! [`never_block_this_thread`]: its lines go to a logger thread through a queue of at most
//! [`MAX_QUEUED_LOG_BYTES`]; past that they are dropped and counted ([`dropped_lines`]),
//! so a stuck log pipe costs log lines, never requests or rows. Other threads write
//! directly. [`flush`] waits for the queue at exit.

use std::cell::Cell;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::http::head::push_json_str;

static JSON: AtomicBool = AtomicBool::new(false);

/// Selects JSON lines (`--log-format json`).
pub fn set_json(on: bool) {
    JSON.store(on, Ordering::Relaxed);
}

/// Formats one line (without the newline).
pub fn format_line(level: &str, event: &str, fields: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    let mut line = Line::begin(&mut out, &Stamp::now(), level, event);
    for (k, v) in fields {
        line.field(k, v);
    }
    line.end();
    out
}

/// A line's timestamp, formatted once (RFC 3339 UTC with milliseconds, 24 bytes): the
/// writer stamps a whole batch of access lines with one.
pub struct Stamp([u8; 24]);

impl Stamp {
    pub fn now() -> Self {
        Stamp(crate::util::time::rfc3339_millis_bytes(
            crate::util::time::unix_now_micros(),
        ))
    }
}

/// One line built in place at the end of a caller's buffer, field by field, in the
/// selected format: no intermediate strings, no formatting machinery (the writer builds
/// one access line per row this way).
pub struct Line<'a> {
    out: &'a mut Vec<u8>,
    json: bool,
}

impl<'a> Line<'a> {
    /// Starts a line: timestamp, level and event.
    pub fn begin(out: &'a mut Vec<u8>, ts: &Stamp, level: &str, event: &str) -> Self {
        let json = JSON.load(Ordering::Relaxed);
        if json {
            out.extend_from_slice(b"{\"ts\":\"");
            out.extend_from_slice(&ts.0);
            out.extend_from_slice(b"\",\"level\":\"");
            out.extend_from_slice(level.as_bytes());
            out.extend_from_slice(b"\",\"event\":\"");
            push_json_str(out, event);
            out.push(b'"');
        } else {
            out.extend_from_slice(&ts.0);
            out.push(b' ');
            out.extend_from_slice(level.as_bytes());
            out.push(b' ');
            out.extend_from_slice(event.as_bytes());
        }
        Line { out, json }
    }

    /// Appends `key=value` (text: quoted and escaped when it needs to be) or
    /// `"key":"value"` (JSON).
    pub fn field(&mut self, k: &str, v: &str) -> &mut Self {
        let out = &mut *self.out;
        if self.json {
            out.extend_from_slice(b",\"");
            push_json_str(out, k);
            out.extend_from_slice(b"\":\"");
            push_json_str(out, v);
            out.push(b'"');
        } else {
            out.push(b' ');
            out.extend_from_slice(k.as_bytes());
            out.push(b'=');
            if v.is_empty() || needs_quotes(v.as_bytes()) {
                out.push(b'"');
                push_json_str(out, v);
                out.push(b'"');
            } else {
                out.extend_from_slice(v.as_bytes());
            }
        }
        self
    }

    /// Appends an integer field.
    pub fn field_i64(&mut self, k: &str, v: i64) -> &mut Self {
        let mut b = crate::util::num::I64Buf::default();
        self.field(k, b.format(v))
    }

    /// Ends the line (no newline).
    pub fn end(self) {
        if self.json {
            self.out.push(b'}');
        }
    }
}

/// Whether a text value must be quoted: a space, `"`, `=` or a control character (C0,
/// DEL, or C1: U+0080..U+009F, `C2 80..9F` in UTF-8), found in one pass over the bytes:
/// eight at a time while they are plain printable ASCII (ids, models, regions, tags), then
/// byte by byte from the first word that is not.
fn needs_quotes(v: &[u8]) -> bool {
    use crate::util::swar::{has_byte, has_less, is_ascii, word};
    let mut i = 0;
    while i + 8 <= v.len() {
        let w = word(&v[i..]);
        if !is_ascii(w) || has_less(w, b' ' + 1) || has_byte(w, b'"') || has_byte(w, b'=') || has_byte(w, 0x7f) {
            break;
        }
        i += 8;
    }
    while i < v.len() {
        match v[i] {
            b' ' | b'"' | b'=' | 0..=0x1f | 0x7f => return true,
            0xc2 if matches!(v.get(i + 1), Some(0x80..=0x9f)) => return true,
            _ => i += 1,
        }
    }
    false
}

/// Most bytes of log lines queued for the logger thread; more are dropped and counted.
pub const MAX_QUEUED_LOG_BYTES: usize = 8 * 1024 * 1024;

thread_local! {
    static NEVER_BLOCK: Cell<bool> = const { Cell::new(false) };
}

static DROPPED: AtomicU64 = AtomicU64::new(0);

struct Queue {
    tx: crossbeam_channel::Sender<Vec<u8>>,
    /// Bytes sent and not yet written.
    queued: AtomicUsize,
}

/// The logger thread's queue (started on first use).
fn queue() -> Option<&'static Queue> {
    static QUEUE: OnceLock<Option<Queue>> = OnceLock::new();
    QUEUE
        .get_or_init(|| {
            let (tx, rx) = crossbeam_channel::unbounded::<Vec<u8>>();
            let spawned = std::thread::Builder::new().name("logger".into()).spawn(move || {
                for msg in rx {
                    let _ = std::io::stderr().lock().write_all(&msg);
                    if let Some(q) = queue() {
                        q.queued.fetch_sub(msg.len(), Ordering::Release);
                    }
                }
            });
            spawned.ok().map(|_| Queue {
                tx,
                queued: AtomicUsize::new(0),
            })
        })
        .as_ref()
}

/// Marks the current thread: its log writes never wait on stderr.
pub fn never_block_this_thread() {
    NEVER_BLOCK.with(|c| c.set(true));
}

/// Log lines dropped because the logger's queue was full.
pub fn dropped_lines() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}

/// Waits (at most `timeout`) until every queued line is written.
pub fn flush(timeout: Duration) {
    let Some(q) = queue() else { return };
    let until = Instant::now() + timeout;
    while q.queued.load(Ordering::Acquire) > 0 && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Writes `bytes` (`lines` whole lines): directly, or for a never-blocking thread through
/// the logger's queue.
pub fn write_lines(bytes: Vec<u8>, lines: u64) {
    if !NEVER_BLOCK.with(Cell::get) {
        let _ = std::io::stderr().lock().write_all(&bytes);
        return;
    }
    let Some(q) = queue() else {
        DROPPED.fetch_add(lines, Ordering::Relaxed);
        return;
    };
    let n = bytes.len();
    if q.queued.fetch_add(n, Ordering::AcqRel) + n > MAX_QUEUED_LOG_BYTES {
        q.queued.fetch_sub(n, Ordering::AcqRel);
        DROPPED.fetch_add(lines, Ordering::Relaxed);
        return;
    }
    if q.tx.send(bytes).is_err() {
        q.queued.fetch_sub(n, Ordering::AcqRel);
        DROPPED.fetch_add(lines, Ordering::Relaxed);
    }
}

fn emit(level: &str, event: &str, fields: &[(&str, &str)]) {
    let mut line = format_line(level, event, fields);
    line.push(b'\n');
    write_lines(line, 1);
}

pub fn info(event: &str, fields: &[(&str, &str)]) {
    emit("INFO", event, fields);
}

pub fn warn(event: &str, fields: &[(&str, &str)]) {
    emit("WARN", event, fields);
}

pub fn error(event: &str, fields: &[(&str, &str)]) {
    emit("ERROR", event, fields);
}

#[cfg(test)]
mod tests {
    use super::needs_quotes;

    #[test]
    fn quoting_is_decided_on_bytes_as_it_was_on_chars() {
        let by_chars = |v: &str| v.contains([' ', '"', '=']) || v.contains(|c: char| c.is_control());
        let mut samples: Vec<String> = [
            "plain",
            "a b",
            "a\"b",
            "k=v",
            "tab\there",
            "é-ünï",
            "日本",
            "\u{7f}",
            "ok\u{a0}",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for c in (0u32..0x250).filter_map(char::from_u32) {
            samples.push(format!("x{c}y"));
            // At every offset of a word, after plain words and before more.
            for pad in 0..17 {
                samples.push(format!(
                    "{}{c}us-east-1.amazon",
                    "abcdefghijklmnopq".get(..pad).unwrap_or("")
                ));
            }
        }
        for v in &samples {
            assert_eq!(needs_quotes(v.as_bytes()), by_chars(v), "{v:?}");
        }
    }
}
