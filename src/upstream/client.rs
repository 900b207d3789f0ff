//! A shard's upstream client: resolve (off the shard, `dns`), connect to each address in
//! turn (TCP, then TLS for `https`), exchange over a pooled connection, and retry once on a fresh connection when a reused one failed
//! before the request was wholly written (never after: a call the upstream may have
//! started is not sent twice). The result is a typed [`Response`] — a whole answer, or a
//! head whose body is still to be streamed — and the request body comes back with it
//! (for a retry, and for the pricing fallback that reads it).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::connection::UpstreamStream;
use super::endpoint::Target;
use super::exchange::{read_head, read_response, write_request, StreamBody, UpstreamResponse};
use super::pool::Pool;
use super::{Counters, Timeouts, UpstreamError};
use crate::http::response::ResponseHead;

/// What the upstream answered.
pub enum Response {
    /// A whole response (its connection is already back in the pool if reusable).
    Whole(UpstreamResponse),
    /// A response head whose body is still to be read from `conn` (ConverseStream).
    Streaming(Streaming),
}

/// A streamed answer in progress.
pub struct Streaming {
    pub head: ResponseHead,
    pub body: StreamBody,
    pub conn: UpstreamStream,
    /// Request written → first response byte.
    pub ttfb: Duration,
    pub target: Target,
}

/// Largest error body read from a stream request's non-200 answer.
pub const MAX_STREAM_ERROR_BODY: usize = 1024 * 1024;

impl Streaming {
    /// Reads a (small) non-streamed answer to a stream request whole: a stream request's
    /// error answer is plain JSON.
    pub async fn collect(mut self, deadline: Instant) -> Result<UpstreamResponse, UpstreamError> {
        let mut out = Vec::new();
        while let Some(piece) = self.body.next(&mut self.conn, deadline).await? {
            out.extend_from_slice(&piece);
            if out.len() > MAX_STREAM_ERROR_BODY {
                return Err(UpstreamError::Protocol("error body too large"));
            }
        }
        Ok(UpstreamResponse::from_parts(self.head, out, self.ttfb))
    }
}

/// The result of [`Client::send`]: what came back, and the request body.
pub struct Exchange {
    pub outcome: Result<Response, UpstreamError>,
    pub body: Vec<u8>,
}

/// The client (one per shard; no locks).
pub struct Client {
    pool: Pool,
    tls: Option<Arc<rustls::ClientConfig>>,
    timeouts: Timeouts,
    pub counters: Arc<Counters>,
}

/// One attempt's answer before it is typed: a whole response or a streamed head.
enum Answer {
    Whole(UpstreamResponse),
    Head(ResponseHead, Vec<u8>, Duration),
}

impl Client {
    pub fn new(tls: Option<Arc<rustls::ClientConfig>>, timeouts: Timeouts, counters: Arc<Counters>) -> Self {
        Client {
            pool: Pool::new(counters.pool.clone()),
            tls,
            timeouts,
            counters,
        }
    }

    /// Sends one request (`head` already signed, zeroed once written) and reads the answer:
    /// whole, or for `streaming` only its head. Failures are counted by kind.
    pub async fn send(
        &self,
        target: &Target,
        head: Vec<u8>,
        body: Vec<u8>,
        streaming: bool,
        deadline: Instant,
    ) -> Exchange {
        let mut head = head;
        let ex = self.send_inner(target, &mut head, body, streaming, deadline).await;
        crate::util::wipe::wipe_vec(&mut head);
        if let Err(e) = &ex.outcome {
            self.counters.failed(e);
        }
        ex
    }

    async fn send_inner(
        &self,
        target: &Target,
        head: &mut Vec<u8>,
        body: Vec<u8>,
        streaming: bool,
        deadline: Instant,
    ) -> Exchange {
        let (mut conn, reused) = match self.pool.take(target) {
            Some(c) => {
                self.counters.reused.fetch_add(1, Ordering::Relaxed);
                (c, true)
            }
            // Boxed: connecting (DNS, TCP, TLS handshake) is the cold path and its state
            // is large; on the heap it does not widen every request's future.
            None => match Box::pin(self.connect(target)).await {
                Ok(c) => (c, false),
                Err(e) => return Exchange { outcome: Err(e), body },
            },
        };
        // A reused connection may need the head again for the retry: an attempt that
        // sent nothing gives it back (no copy is kept).
        let (mut res, mut body, mut unsent_head) = self
            .attempt(&mut conn, std::mem::take(head), body, streaming, deadline)
            .await;
        let retry = reused && matches!(&res, Err(e) if e.unsent());
        if let (true, Some(again)) = (retry, unsent_head.take()) {
            self.counters.retries.fetch_add(1, Ordering::Relaxed);
            drop(conn);
            // Held in `head` until sent: `send` zeroes it whatever happens.
            *head = again;
            conn = match Box::pin(self.connect(target)).await {
                Ok(c) => c,
                Err(e) => return Exchange { outcome: Err(e), body },
            };
            (res, body, unsent_head) = self
                .attempt(&mut conn, std::mem::take(head), body, streaming, deadline)
                .await;
        }
        if let Some(mut h) = unsent_head {
            crate::util::wipe::wipe_vec(&mut h);
        }
        let outcome = res.map(|answer| match answer {
            Answer::Whole(resp) => {
                if resp.reusable {
                    self.pool.put(target, conn);
                }
                Response::Whole(resp)
            }
            Answer::Head(head, buf, ttfb) => Response::Streaming(Streaming {
                body: StreamBody::new(&head, buf),
                head,
                conn,
                ttfb,
                target: target.clone(),
            }),
        });
        Exchange { outcome, body }
    }

    /// One attempt on one connection; the body comes back whatever happened, the head
    /// when nothing was sent (see [`super::exchange::Written`]).
    async fn attempt(
        &self,
        conn: &mut UpstreamStream,
        head: Vec<u8>,
        body: Vec<u8>,
        streaming: bool,
        deadline: Instant,
    ) -> (Result<Answer, UpstreamError>, Vec<u8>, Option<Vec<u8>>) {
        let w = write_request(conn, head, body, deadline).await;
        let (sent_at, body) = match w.sent {
            Ok(t) => (t, w.body),
            Err(e) => return (Err(e), w.body, w.head),
        };
        let ttfb = self.timeouts.ttfb;
        let answer = if streaming {
            read_head(conn, sent_at, ttfb, deadline)
                .await
                .map(|(h, buf, t)| Answer::Head(h, buf, t))
        } else {
            read_response(conn, sent_at, ttfb, deadline).await.map(Answer::Whole)
        };
        (answer, body, None)
    }

    /// A stream that ended: its connection goes back to the pool if it ended cleanly.
    pub fn finish_stream(&self, s: Streaming, clean: bool) {
        if clean && s.body.reusable {
            self.pool.put(&s.target, s.conn);
        }
    }

    /// Resolves the target off the shard (see [`super::dns`]; at most the connect
    /// timeout), then tries each address in turn until one connects.
    async fn connect(&self, target: &Target) -> Result<UpstreamStream, UpstreamError> {
        let deadline = Instant::now() + self.timeouts.connect;
        let addrs = super::dns::resolver()
            .resolve(&target.host, target.port, deadline)
            .await
            .map_err(|error| UpstreamError::Resolve {
                host: target.host.clone(),
                error,
            })?;
        let mut last = None;
        for addr in addrs.iter() {
            self.counters.connects.fetch_add(1, Ordering::Relaxed);
            match UpstreamStream::connect(
                target,
                *addr,
                self.tls.as_ref(),
                self.timeouts.connect,
                self.timeouts.tls,
                Some(self.counters.open.clone()),
            )
            .await
            {
                Ok(c) => return Ok(c),
                // Only a failure to reach the address moves on to the next one; a TLS
                // failure is the server's answer.
                Err(e @ (UpstreamError::Connect(_) | UpstreamError::ConnectTimeout)) => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or(UpstreamError::Resolve {
            host: target.host.clone(),
            error: super::dns::ResolveError::Failed("no address".into()),
        }))
    }
}
