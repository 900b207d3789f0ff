//! The journal's records: a usage row when its response is about to be sent (the commit
//! point), and a small end record once the last byte was written (final latency, whether
//! the client got it). Binary, little-endian, one field after another in the row's
//! order; every string is bounded ([`MAX_FIELD_BYTES`], cut at a character boundary), so a
//! record is never longer than [`MAX_RECORD_BYTES`].
//!
//! Framing: `[len u32][crc32c u32][payload][zero padding to 8 bytes]`; a zero `len` is the
//! end of what was written. The length is written last, so a record cut short by a crash
//! reads as the end, and anything else torn is caught by the checksum.

use std::sync::Arc;

use super::crc::crc32c;
use crate::pricing::{Flags, Latency, Scope, Tier};
use crate::usage::record::{operation_name, route_action_name};
use crate::usage::UsageRecord;

/// Longest string field kept in a record (longer ones are cut).
pub const MAX_FIELD_BYTES: usize = 4096;
/// String fields of a row record.
const STRING_FIELDS: usize = 19;
/// Longest framed record: every field at its bound (the room a request reserves).
pub const MAX_RECORD_BYTES: usize = STRING_FIELDS * MAX_FIELD_BYTES + 1024;
/// Bytes of the frame before the payload.
pub const FRAME_HEADER: usize = 8;

const KIND_ROW: u8 = 1;
const KIND_END: u8 = 2;
const NONE_STR: u16 = u16::MAX;

/// A decoded journal record.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    /// A row, keyed by the shard's request sequence.
    Row { key: u64, rec: Box<UsageRecord> },
    /// The end of the request `key`.
    End { key: u64, latency_ms: f64, written: bool },
}

/// Why bytes are not a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Corrupt {
    /// The length runs past the segment.
    Length,
    /// The checksum does not match.
    Checksum,
    /// The payload does not decode.
    Payload,
}

impl std::fmt::Display for Corrupt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Corrupt::Length => "record length past the end of the segment",
            Corrupt::Checksum => "record checksum mismatch",
            Corrupt::Payload => "record payload does not decode",
        })
    }
}

fn cut(s: &str) -> &str {
    if s.len() <= MAX_FIELD_BYTES {
        return s;
    }
    let mut end = MAX_FIELD_BYTES;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Appends encoded fields (also the checkpoint's).
pub(crate) struct Enc<'a>(pub(crate) &'a mut Vec<u8>);

impl Enc<'_> {
    pub(crate) fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    pub(crate) fn u16(&mut self, v: u16) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub(crate) fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub(crate) fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub(crate) fn i64(&mut self, v: i64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub(crate) fn f64(&mut self, v: f64) {
        self.0.extend_from_slice(&v.to_bits().to_le_bytes());
    }
    pub(crate) fn bytes(&mut self, b: &[u8]) {
        self.0.extend_from_slice(b);
    }
    pub(crate) fn str(&mut self, s: &str) {
        let s = cut(s);
        self.u16(s.len() as u16);
        self.0.extend_from_slice(s.as_bytes());
    }
    pub(crate) fn opt_str(&mut self, s: Option<&str>) {
        match s {
            Some(s) => self.str(s),
            None => self.u16(NONE_STR),
        }
    }
    pub(crate) fn opt_i64(&mut self, v: Option<i64>) {
        match v {
            Some(v) => {
                self.u8(1);
                self.i64(v);
            }
            None => self.u8(0),
        }
    }
    pub(crate) fn opt_f64(&mut self, v: Option<f64>) {
        match v {
            Some(v) => {
                self.u8(1);
                self.f64(v);
            }
            None => self.u8(0),
        }
    }
    pub(crate) fn opt_i128(&mut self, v: Option<i128>) {
        match v {
            Some(v) => {
                self.u8(1);
                self.0.extend_from_slice(&v.to_le_bytes());
            }
            None => self.u8(0),
        }
    }
    /// An optional enum as its index + 1 (0: none).
    pub(crate) fn opt_index(&mut self, i: Option<usize>) {
        self.u8(i.map_or(0, |i| i as u8 + 1));
    }
}

/// Reads fields back; every read is bounds-checked.
pub(crate) struct Dec<'a>(pub(crate) &'a [u8]);

impl<'a> Dec<'a> {
    pub(crate) fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }
    pub(crate) fn arr<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }
    pub(crate) fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }
    pub(crate) fn u16(&mut self) -> Option<u16> {
        Some(u16::from_le_bytes(self.arr()?))
    }
    pub(crate) fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.arr()?))
    }
    pub(crate) fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.arr()?))
    }
    pub(crate) fn i64(&mut self) -> Option<i64> {
        Some(i64::from_le_bytes(self.arr()?))
    }
    pub(crate) fn f64(&mut self) -> Option<f64> {
        Some(f64::from_bits(u64::from_le_bytes(self.arr()?)))
    }
    pub(crate) fn opt_str(&mut self) -> Option<Option<String>> {
        let n = self.u16()?;
        if n == NONE_STR {
            return Some(None);
        }
        let b = self.take(n as usize)?;
        Some(Some(std::str::from_utf8(b).ok()?.to_string()))
    }
    pub(crate) fn str(&mut self) -> Option<String> {
        self.opt_str()?
    }
    pub(crate) fn opt<T>(&mut self, f: impl FnOnce(&mut Self) -> Option<T>) -> Option<Option<T>> {
        match self.u8()? {
            0 => Some(None),
            1 => Some(Some(f(self)?)),
            _ => None,
        }
    }
    pub(crate) fn opt_i128(&mut self) -> Option<Option<i128>> {
        self.opt(|d| Some(i128::from_le_bytes(d.arr()?)))
    }
    pub(crate) fn opt_index<T: Copy>(&mut self, all: &[T]) -> Option<Option<T>> {
        match self.u8()? {
            0 => Some(None),
            n => all.get(n as usize - 1).copied().map(Some),
        }
    }
}

/// Encodes a row's payload into `out` (cleared first).
pub fn encode_row(key: u64, r: &UsageRecord, out: &mut Vec<u8>) {
    out.clear();
    let mut e = Enc(out);
    e.u8(KIND_ROW);
    e.u64(key);
    e.i64(r.ts_micros);
    e.str(&r.request_id);
    e.opt_str(r.upstream_request_id.as_deref());
    e.str(&r.tenant);
    e.opt_str(r.department.as_deref());
    e.opt_str(r.project.as_deref());
    e.opt_str(r.agent.as_deref());
    e.str(r.operation);
    e.str(&r.region);
    e.str(&r.model_requested);
    e.str(&r.model_effective);
    e.u16(r.status);
    e.opt_str(r.error_type.as_deref());
    e.opt_str(r.error_message.as_deref());
    for v in [
        r.input_tokens,
        r.output_tokens,
        r.total_tokens,
        r.cache_read_tokens,
        r.cache_write_tokens,
    ] {
        e.opt_i64(v);
    }
    e.opt_i128(r.cost_pico_usd);
    e.opt_str(r.price_id.as_deref());
    e.f64(r.latency_ms);
    e.opt_f64(r.upstream_latency_ms);
    e.opt_f64(r.upstream_ttfb_ms);
    e.opt_i64(r.provider_latency_ms);
    e.opt_str(r.stop_reason.as_deref());
    e.i64(r.request_bytes);
    e.i64(r.response_bytes);
    e.opt_index(r.price_scope.map(Scope::index));
    e.opt_index(r.service_tier.map(Tier::index));
    e.opt_index(r.latency_mode.map(Latency::index));
    e.opt_i64(r.cache_write_5m_tokens);
    e.opt_i64(r.cache_write_1h_tokens);
    e.opt_i64(r.guardrail_units);
    e.opt_str(r.price_version.as_deref());
    e.u32(r.cost_flags.0);
    e.opt_str(r.blocked_by.as_deref());
    // The optimizer's fields: a tail a journal written before them lacks.
    e.opt_str(r.route_rule.as_deref());
    e.opt_str(r.route_action);
    e.opt_i64(r.attempts);
    e.opt_str(r.region_effective.as_deref());
    e.opt_i128(r.cost_baseline_pico_usd);
}

/// Encodes an end record's payload into `out` (cleared first).
pub fn encode_end(key: u64, latency_ms: f64, written: bool, out: &mut Vec<u8>) {
    out.clear();
    let mut e = Enc(out);
    e.u8(KIND_END);
    e.u64(key);
    e.f64(latency_ms);
    e.u8(u8::from(written));
}

/// The price ids and versions seen last, shared by the rows that name them (most rows
/// name one of a few), so decoding a row does not allocate them again.
#[derive(Debug, Default)]
pub struct Interner(Vec<Arc<str>>);

/// Distinct strings an [`Interner`] keeps.
pub const INTERNED: usize = 32;

impl Interner {
    fn get(&mut self, s: &str) -> Arc<str> {
        if let Some(i) = self.0.iter().position(|a| &**a == s) {
            return self.0[i].clone();
        }
        let a: Arc<str> = Arc::from(s);
        if self.0.len() == INTERNED {
            self.0.pop();
        }
        self.0.insert(0, a.clone());
        a
    }

    fn opt(&mut self, d: &mut Dec<'_>) -> Option<Option<Arc<str>>> {
        let n = d.u16()?;
        if n == NONE_STR {
            return Some(None);
        }
        let b = d.take(n as usize)?;
        Some(Some(self.get(std::str::from_utf8(b).ok()?)))
    }
}

fn decode_row(d: &mut Dec<'_>, names: &mut Interner) -> Option<UsageRecord> {
    let mut r = UsageRecord {
        ts_micros: d.i64()?,
        request_id: d.str()?,
        upstream_request_id: d.opt_str()?,
        tenant: d.str()?,
        department: d.opt_str()?,
        project: d.opt_str()?,
        agent: d.opt_str()?,
        operation: operation_name(&d.str()?),
        region: d.str()?,
        model_requested: d.str()?,
        model_effective: d.str()?,
        status: d.u16()?,
        error_type: d.opt_str()?,
        error_message: d.opt_str()?,
        ..Default::default()
    };
    r.input_tokens = d.opt(Dec::i64)?;
    r.output_tokens = d.opt(Dec::i64)?;
    r.total_tokens = d.opt(Dec::i64)?;
    r.cache_read_tokens = d.opt(Dec::i64)?;
    r.cache_write_tokens = d.opt(Dec::i64)?;
    r.cost_pico_usd = d.opt_i128()?;
    r.price_id = names.opt(d)?;
    r.latency_ms = d.f64()?;
    r.upstream_latency_ms = d.opt(Dec::f64)?;
    r.upstream_ttfb_ms = d.opt(Dec::f64)?;
    r.provider_latency_ms = d.opt(Dec::i64)?;
    r.stop_reason = d.opt_str()?;
    r.request_bytes = d.i64()?;
    r.response_bytes = d.i64()?;
    r.price_scope = d.opt_index(Scope::ALL)?;
    r.service_tier = d.opt_index(Tier::ALL)?;
    r.latency_mode = d.opt_index(Latency::ALL)?;
    r.cache_write_5m_tokens = d.opt(Dec::i64)?;
    r.cache_write_1h_tokens = d.opt(Dec::i64)?;
    r.guardrail_units = d.opt(Dec::i64)?;
    r.price_version = names.opt(d)?;
    r.cost_flags = Flags(d.u32()?);
    r.blocked_by = d.opt_str()?;
    // Rows journaled before the optimizer end here.
    if d.0.is_empty() {
        return Some(r);
    }
    r.route_rule = d.opt_str()?;
    r.route_action = d.opt_str()?.map(|a| route_action_name(&a));
    r.attempts = d.opt(Dec::i64)?;
    r.region_effective = d.opt_str()?;
    r.cost_baseline_pico_usd = d.opt_i128()?;
    Some(r)
}

/// Decodes one payload.
pub fn decode(payload: &[u8]) -> Result<Record, Corrupt> {
    decode_with(payload, &mut Interner::default())
}

/// Decodes one payload, sharing price ids and versions through `names`.
pub fn decode_with(payload: &[u8], names: &mut Interner) -> Result<Record, Corrupt> {
    let mut d = Dec(payload);
    let kind = d.u8().ok_or(Corrupt::Payload)?;
    let key = d.u64().ok_or(Corrupt::Payload)?;
    let rec = match kind {
        KIND_ROW => Record::Row {
            key,
            rec: Box::new(decode_row(&mut d, names).ok_or(Corrupt::Payload)?),
        },
        KIND_END => Record::End {
            key,
            latency_ms: d.f64().ok_or(Corrupt::Payload)?,
            written: d.u8().ok_or(Corrupt::Payload)? == 1,
        },
        _ => return Err(Corrupt::Payload),
    };
    if !d.0.is_empty() {
        return Err(Corrupt::Payload);
    }
    Ok(rec)
}

/// The framed size of a payload of `n` bytes.
pub fn framed_len(n: usize) -> usize {
    (FRAME_HEADER + n).div_ceil(8) * 8
}

/// Writes the frame of `payload` through `put(offset, bytes)` (offsets from the frame's
/// start, whose [`framed_len`] bytes are zero): the payload, then its checksum, and the
/// length word last, so a reader never sees a length before what it covers.
pub fn write_frame(payload: &[u8], mut put: impl FnMut(usize, &[u8])) {
    put(FRAME_HEADER, payload);
    put(4, &crc32c(payload).to_le_bytes());
    put(0, &(payload.len() as u32).to_le_bytes());
}

/// The frame at `at` in `bytes`: `Ok(None)` at the end of what was written, else the
/// payload and the offset of the next frame.
pub fn next_frame(bytes: &[u8], at: usize) -> Result<Option<(&[u8], usize)>, Corrupt> {
    let Some(h) = bytes.get(at..at + FRAME_HEADER) else {
        return Ok(None);
    };
    let len = u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize;
    if len == 0 {
        return Ok(None);
    }
    let crc = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
    let end = at + framed_len(len);
    let Some(payload) = bytes.get(at + FRAME_HEADER..at + FRAME_HEADER + len) else {
        return Err(Corrupt::Length);
    };
    if end > bytes.len() {
        return Err(Corrupt::Length);
    }
    if crc32c(payload) != crc {
        return Err(Corrupt::Checksum);
    }
    Ok(Some((payload, end)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pricing::Flag;

    pub(crate) fn sample() -> UsageRecord {
        let mut flags = Flags::default();
        flags.set(Flag::CacheTtlAssumed);
        UsageRecord {
            ts_micros: 1_764_000_000_000_000,
            request_id: "0123abcd0001000000000007".into(),
            upstream_request_id: Some("req-1".into()),
            tenant: "trk:abcdef012345".into(),
            department: Some("eng".into()),
            project: None,
            agent: Some("bot ✓".into()),
            operation: "converse-stream",
            region: "eu-west-1".into(),
            model_requested: "anthropic.claude-sonnet-4-5-20250929-v1:0".into(),
            model_effective: "eu.anthropic.claude-sonnet-4-5-20250929-v1:0".into(),
            status: 200,
            error_type: None,
            error_message: Some("x".repeat(300)),
            input_tokens: Some(12),
            output_tokens: Some(34),
            total_tokens: Some(46),
            cache_read_tokens: None,
            cache_write_tokens: Some(0),
            cost_pico_usd: Some(216_810_000_000),
            price_id: Some(Arc::from("anthropic.claude-sonnet-4-5-20250929-v1:0")),
            latency_ms: 12.5,
            upstream_latency_ms: Some(10.25),
            upstream_ttfb_ms: None,
            provider_latency_ms: Some(321),
            stop_reason: Some("end_turn".into()),
            request_bytes: 123,
            response_bytes: 456,
            price_scope: Some(Scope::Geo),
            service_tier: Some(Tier::Flex),
            latency_mode: None,
            cache_write_5m_tokens: Some(1),
            cache_write_1h_tokens: Some(2),
            guardrail_units: None,
            price_version: Some(Arc::from("builtin-2026-12-01")),
            cost_flags: flags,
            blocked_by: Some("b".into()),
            route_rule: Some("sonnet-fallback".into()),
            route_action: Some("fallback"),
            attempts: Some(2),
            region_effective: Some("us-west-2".into()),
            cost_baseline_pico_usd: Some(300_000_000_000),
        }
    }

    #[test]
    fn a_row_journaled_before_the_optimizer_fields_still_reads() {
        let mut r = sample();
        (
            r.route_rule,
            r.route_action,
            r.attempts,
            r.region_effective,
            r.cost_baseline_pico_usd,
        ) = (None, None, None, None, None);
        let mut p = Vec::new();
        encode_row(3, &r, &mut p);
        // The tail of five absent fields: two strings (2 bytes each), an int (1), a
        // string (2), a decimal (1).
        p.truncate(p.len() - 8);
        assert_eq!(
            decode(&p).unwrap(),
            Record::Row {
                key: 3,
                rec: Box::new(r)
            }
        );
        // A tail cut in its middle is corrupt, not silently defaulted.
        let mut q = Vec::new();
        encode_row(3, &sample(), &mut q);
        q.truncate(q.len() - 3);
        assert_eq!(decode(&q), Err(Corrupt::Payload));
    }

    fn framed(payload: &[u8], out: &mut Vec<u8>) {
        out.clear();
        out.resize(framed_len(payload.len()), 0);
        write_frame(payload, |at, b| out[at..at + b.len()].copy_from_slice(b));
    }

    #[test]
    fn rows_and_ends_round_trip_through_frames() {
        let r = sample();
        let (mut p, mut f) = (Vec::new(), Vec::new());
        encode_row(7, &r, &mut p);
        framed(&p, &mut f);
        encode_end(7, 13.0, false, &mut p);
        let mut f2 = Vec::new();
        framed(&p, &mut f2);
        let mut seg = f.clone();
        seg.extend_from_slice(&f2);
        seg.extend_from_slice(&[0u8; 16]);
        let (p1, next) = next_frame(&seg, 0).unwrap().unwrap();
        assert_eq!(next % 8, 0);
        assert_eq!(
            decode(p1).unwrap(),
            Record::Row {
                key: 7,
                rec: Box::new(r)
            }
        );
        let (p2, next2) = next_frame(&seg, next).unwrap().unwrap();
        assert_eq!(
            decode(p2).unwrap(),
            Record::End {
                key: 7,
                latency_ms: 13.0,
                written: false
            }
        );
        assert_eq!(next_frame(&seg, next2), Ok(None));
        // A flipped byte is caught; a cut record is the end or a bad length.
        let mut bad = seg.clone();
        bad[20] ^= 1;
        assert_eq!(next_frame(&bad, 0), Err(Corrupt::Checksum));
        assert_eq!(next_frame(&seg[..next - 3], 0), Err(Corrupt::Length));
        let mut unwritten = seg.clone();
        unwritten[..4].copy_from_slice(&[0; 4]);
        assert_eq!(next_frame(&unwritten, 0), Ok(None));
    }

    #[test]
    fn long_fields_are_bounded() {
        let mut r = sample();
        r.model_effective = "é".repeat(MAX_FIELD_BYTES);
        r.error_type = Some("e".repeat(MAX_FIELD_BYTES * 3));
        let mut p = Vec::new();
        encode_row(1, &r, &mut p);
        assert!(framed_len(p.len()) <= MAX_RECORD_BYTES);
        let Record::Row { rec, .. } = decode(&p).unwrap() else {
            panic!("a row")
        };
        assert_eq!(rec.model_effective.len(), MAX_FIELD_BYTES);
        assert_eq!(rec.error_type.map(|s| s.len()), Some(MAX_FIELD_BYTES));
        assert!(decode(&p[..p.len() - 1]).is_err());
        assert!(decode(&[9, 0, 0, 0, 0, 0, 0, 0, 0]).is_err());
    }
}
