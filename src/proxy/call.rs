//! One Bedrock request on its way through the stages: the shard, the client connection,
//! the peer, the usage row being filled (it carries the request id), the clock started
//! when the head arrived, and whether the connection closes after the answer. Every
//! answer leaves through [`Call::refuse`] (the proxy's own error), [`Call::respond`] (a
//! whole answer) or a stream relay that ends in [`Call::finish`]; each records exactly
//! one row. The row is journaled by [`Call::commit`] before the answer's last write (so
//! a process killed after the client has its answer still has its row), and its end
//! (final latency, whether the client got it) by `finish`.

use std::rc::Rc;
use std::time::Instant;

use monoio::buf::IoBuf;
use monoio::io::{AsyncReadRent, AsyncWriteRent};

use super::error::{error_response, ProxyError};
use super::shard::{Admission, Peer, Shard};
use super::stats::ShardStats;
use crate::bedrock::route::Operation;
use crate::http::io::write_all;
use crate::pricing::{Flag, Latency, Tier};
use crate::usage::record::cut_message;
use crate::usage::scan::Usage;
use crate::usage::UsageRecord;

/// The request in flight.
pub struct Call<'a, S> {
    pub shard: &'a Rc<Shard>,
    pub client: &'a mut S,
    pub peer: &'a Peer,
    /// The usage row, filled as the stages learn things.
    pub rec: UsageRecord,
    /// When the request head arrived.
    pub received: Instant,
    /// Close the connection after the answer.
    pub close: bool,
    /// An HTTP/1.0 client: no chunked encoding toward it (a stream ends with the
    /// connection).
    pub http10: bool,
    /// The operation asked for.
    pub op: Operation,
    /// An InvokeModel call's requested tier and latency mode (from its headers).
    pub requested: Option<(Option<Tier>, Option<Latency>)>,
    /// The row's key in the shard's journal (the request's sequence number).
    key: u64,
    /// Whether the ledger reserved room for the row ([`Call::admit`]).
    reserved: bool,
    /// Whether the row is journaled.
    committed: bool,
}

impl<'a, S: AsyncReadRent + AsyncWriteRent> Call<'a, S> {
    /// A call for a request head that arrived at `received` (`ts_micros`, UTC).
    pub fn new(
        client: &'a mut S,
        shard: &'a Rc<Shard>,
        peer: &'a Peer,
        op: Operation,
        keep_alive: bool,
        received: Instant,
        ts_micros: i64,
    ) -> Self {
        ShardStats::inc(&shard.stats.requests_total);
        let (request_id, key) = shard.next_request();
        Call {
            key,
            reserved: false,
            committed: false,
            rec: UsageRecord {
                ts_micros,
                request_id,
                operation: op.as_str(),
                ..Default::default()
            },
            shard,
            client,
            peer,
            received,
            close: !keep_alive,
            http10: false,
            op,
            requested: None,
        }
    }

    /// Admits the request to the ledger; false when it must be refused because the
    /// journal is full (`--on-ledger-full=refuse`).
    pub fn admit(&mut self) -> bool {
        match self.shard.admit() {
            Admission::Reserved => self.reserved = true,
            Admission::Unreserved => {}
            Admission::Refused => return false,
        }
        true
    }

    /// Answers with the proxy's own error (plus `extra` headers) and records the row.
    pub async fn refuse(mut self, err: ProxyError, extra: &[(&str, &[u8])]) -> bool {
        self.rec.status = err.status();
        self.rec.error_type = Some(err.code.as_str().to_string());
        self.rec.error_message = Some(cut_message(&err.message));
        let out = error_response(&err, &self.rec.request_id, self.close, extra);
        self.commit();
        let written = write_all(self.client, out).await;
        self.finish(written)
    }

    /// Answers 503 `LedgerUnavailable` without a row: the journal has no room for one.
    /// Counted in `llmops_ledger_refused_requests_total` and the status counters.
    pub async fn refuse_unrecorded(mut self, err: ProxyError) -> bool {
        self.close = true;
        let out = error_response(&err, &self.rec.request_id, self.close, &[]);
        let written = write_all(self.client, out).await;
        self.rec.status = err.status();
        self.account();
        written && !self.close
    }

    /// Writes a whole answer (a head buffer, then an optional large body slice, not
    /// copied) and records the row, journaled before the last write.
    pub async fn respond(mut self, out: Vec<u8>, body: Option<(Vec<u8>, usize)>) -> bool {
        let written = match body {
            None => {
                self.commit();
                write_all(self.client, out).await
            }
            Some((buf, start)) => {
                let head = write_all(self.client, out).await;
                self.commit();
                head && write_all(self.client, buf.slice(start..)).await
            }
        };
        self.finish(written)
    }

    /// Journals the row as it stands (the commit point: before the answer's last write).
    /// Its latency so far stands in for the final one if the process dies before
    /// `finish`.
    pub fn commit(&mut self) {
        if self.committed {
            return;
        }
        self.rec.latency_ms = self.received.elapsed().as_secs_f64() * 1000.0;
        self.shard.commit_row(self.key, &self.rec, self.reserved);
        self.committed = true;
    }

    /// Prices the row from its response's usage (exact; unpriced calls are flagged, and
    /// counted by the writer). What the request asked for (an InvokeModel call's headers,
    /// else the Converse body's `serviceTier` / `performanceConfig`) is read only when the
    /// response did not report it and the model's price depends on it. CountTokens is not
    /// billed: its cost is an exact zero.
    pub fn price(&mut self, usage: &Usage, request_body: &[u8]) {
        let shard = self.shard;
        if self.op == Operation::CountTokens {
            self.rec.cost_pico_usd = Some(0);
            self.rec.cost_flags.set(Flag::NotBilled);
            return;
        }
        let requested = self.requested;
        // The optimizer changed the model or the region: price the requested one too.
        let baseline = self.rec.route_action.map(|_| {
            shard
                .shared
                .settings
                .geo
                .effective(&self.rec.model_requested, &self.rec.region)
        });
        self.rec.price(
            &shard.prices(),
            usage,
            || requested.unwrap_or_else(|| shard.scanner.borrow_mut().request_hints(request_body)),
            baseline.as_deref(),
        );
    }

    /// Journals the end of the request: the final latency, and whether the client got
    /// the answer (if not, the row says `ClientDisconnected`); returns whether the
    /// connection may carry another request.
    pub fn finish(mut self, written: bool) -> bool {
        self.commit();
        self.account();
        self.shard.end_row(self.key, self.rec.latency_ms, written);
        written && !self.close
    }

    /// The final latency, and the shard's status and latency counters.
    fn account(&mut self) {
        let stats = &self.shard.stats;
        self.rec.latency_ms = self.received.elapsed().as_secs_f64() * 1000.0;
        stats.count_status(self.rec.status);
        stats.request_latency.observe_ms(self.rec.latency_ms);
        if let Some(u) = self.rec.upstream_latency_ms {
            stats.upstream_latency.observe_ms(u);
        }
    }
}
