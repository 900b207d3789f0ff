//! Structured log lines on stderr: `text` (`ts level event key=value ...`) or `json`
//! (one object per line). Callers pass only values that are safe to log: never a
//! secret, a prompt or a completion.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::http::head::push_json_str;

static JSON: AtomicBool = AtomicBool::new(false);

/// Selects JSON lines (`--log-format json`).
pub fn set_json(on: bool) {
    JSON.store(on, Ordering::Relaxed);
}

/// Formats one line (without the newline).
pub fn format_line(level: &str, event: &str, fields: &[(&str, &str)]) -> Vec<u8> {
    let ts = crate::util::time::rfc3339_millis(crate::util::time::unix_now_micros());
    let mut out = Vec::with_capacity(128);
    if JSON.load(Ordering::Relaxed) {
        out.extend_from_slice(b"{\"ts\":\"");
        out.extend_from_slice(ts.as_bytes());
        out.extend_from_slice(b"\",\"level\":\"");
        out.extend_from_slice(level.as_bytes());
        out.extend_from_slice(b"\",\"event\":\"");
        push_json_str(&mut out, event);
        out.push(b'"');
        for (k, v) in fields {
            out.extend_from_slice(b",\"");
            push_json_str(&mut out, k);
            out.extend_from_slice(b"\":\"");
            push_json_str(&mut out, v);
            out.push(b'"');
        }
        out.push(b'}');
    } else {
        out.extend_from_slice(ts.as_bytes());
        out.push(b' ');
        out.extend_from_slice(level.as_bytes());
        out.push(b' ');
        out.extend_from_slice(event.as_bytes());
        for (k, v) in fields {
            out.push(b' ');
            out.extend_from_slice(k.as_bytes());
            out.push(b'=');
            let needs_quotes = v.is_empty() || v.contains([' ', '"', '=']) || v.contains(|c: char| c.is_control());
            if needs_quotes {
                out.push(b'"');
                push_json_str(&mut out, v);
                out.push(b'"');
            } else {
                out.extend_from_slice(v.as_bytes());
            }
        }
    }
    out
}

fn emit(level: &str, event: &str, fields: &[(&str, &str)]) {
    let mut line = format_line(level, event, fields);
    line.push(b'\n');
    let _ = std::io::stderr().lock().write_all(&line);
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
