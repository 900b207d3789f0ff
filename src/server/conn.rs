//! The client connection loop: the TLS handshake for `--listen-tls` connections,
//! keep-alive and pipelining over hand-parsed HTTP/1.1, dispatch by route (Bedrock calls
//! to `proxy::handle`), and the proxy's own small responses (health, metrics, errors).

use std::rc::Rc;
use std::time::Instant;

use monoio::io::{AsyncReadRent, AsyncWriteRent};
use monoio::net::TcpStream;

use crate::bedrock::route::{resolve, Route};
use crate::http::head::{push_json_str, HeadWriter};
use crate::http::io::{next_head, write_all, IdleRead, IdleState, NextHead};
use crate::http::limits::READ_BUFFER_BYTES;
use crate::http::request::{BodyFraming, Method};
use crate::proxy::call::Call;
use crate::proxy::error::{error_response, ErrorCode, ProxyError};
use crate::proxy::shard::{Peer, Shard};
use crate::proxy::stats::ShardStats;
use crate::usage::ledger::FullPolicy;

/// Longest a client TLS handshake may take.
pub const TLS_HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Serves one plain TCP client connection (TCP_NODELAY on).
pub async fn serve_tcp(stream: TcpStream, shard: Rc<Shard>) {
    let _ = stream.set_nodelay(true);
    serve_connection(stream, shard, Peer::default()).await;
}

/// The dashboard page, or an API answer from the dashboard thread (polled for, so the
/// shard computes nothing).
async fn dashboard(head: &crate::http::request::RequestHead, shard: &Rc<Shard>, api: bool, close: bool) -> Vec<u8> {
    use crate::dashboard::{ANSWER_TIMEOUT, PAGE, POLL_INTERVAL};
    let id = shard.next_request_id();
    if !matches!(head.method(), Method::Get | Method::Head) {
        return error_response(
            &ProxyError::new(ErrorCode::MethodNotAllowed, "use GET on this path"),
            &id,
            close,
            &[("allow", b"GET, HEAD")],
        );
    }
    let (status, ctype, body): (u16, &[u8], Vec<u8>) = if !api {
        (200, b"text/html; charset=utf-8", PAGE.as_bytes().to_vec())
    } else {
        let Some(d) = &shard.shared.dashboard else {
            return error_response(&ProxyError::new(ErrorCode::NotFound, "no dashboard"), &id, close, &[]);
        };
        let target = String::from_utf8_lossy(head.target()).into_owned();
        let answer = match d.submit(&target) {
            Err(_) => None,
            Ok(slot) => {
                let deadline = Instant::now() + ANSWER_TIMEOUT;
                loop {
                    if let Some(a) = slot.take() {
                        break Some(a);
                    }
                    if Instant::now() >= deadline {
                        break None;
                    }
                    monoio::time::sleep(POLL_INTERVAL).await;
                }
            }
        };
        match answer {
            Some(a) => (a.status, b"application/json", a.body),
            None => {
                let err = ProxyError::new(ErrorCode::Overloaded, "the dashboard is busy; retry in a moment");
                return error_response(&err, &id, close, &[("retry-after", b"1")]);
            }
        }
    };
    let mut out = Vec::with_capacity(body.len() + 400);
    HeadWriter::new(&mut out, status)
        .header("content-type", ctype)
        .header("x-request-id", id.as_bytes())
        .header("cache-control", b"no-store")
        .header("x-content-type-options", b"nosniff")
        .header("referrer-policy", b"no-referrer")
        // Nothing but this origin's API; the page's script and style are inline.
        .header(
            "content-security-policy",
            b"default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src data:; frame-ancestors 'none'",
        )
        .header_u64("content-length", body.len() as u64)
        .finish(close);
    if head.method() == Method::Get {
        out.extend_from_slice(&body);
    }
    out
}

/// Serves one connection of the admin listener (`/metrics`, `/healthz`, the dashboard),
/// over TLS when `--admin-tls-cert` is given.
pub async fn serve_admin(stream: TcpStream, shard: Rc<Shard>) {
    let _ = stream.set_nodelay(true);
    let Some(cfg) = shard.admin_tls_server() else {
        let peer = Peer {
            admin: true,
            ..Peer::default()
        };
        return serve_connection(stream, shard, peer).await;
    };
    // Over TLS (`--admin-tls-cert`); with `--admin-client-ca` rustls refuses a handshake
    // without an operator's certificate.
    match crate::tls::accept(stream, cfg, TLS_HANDSHAKE_TIMEOUT).await {
        Ok((tls, info)) => {
            let peer = Peer {
                mtls_subject: info.peer_subject,
                admin: true,
            };
            serve_connection(tls, shard, peer).await;
        }
        Err(e) => shard.stats.tls_failure(e.reason()),
    }
}

/// Whether `head` carries `Authorization: Bearer <token>` (compared in constant time).
fn bearer_ok(head: &crate::http::request::RequestHead, token: &crate::sigv4::SecretString) -> bool {
    let Some(v) = head.header("authorization") else {
        return false;
    };
    let Some(given) = v.strip_prefix(b"Bearer ") else {
        return false;
    };
    // Digests first: equal lengths for the key file's constant-time comparison.
    use crate::util::hex::sha256;
    crate::tenant::ct_eq(&sha256(given.trim_ascii()), &sha256(token.expose()))
}

/// Handshakes TLS (full or resumed, optionally verifying a client certificate), then
/// serves the connection. Failures are counted by reason; the process never cares.
pub async fn serve_tls(stream: TcpStream, shard: Rc<Shard>) {
    let _ = stream.set_nodelay(true);
    let Some(cfg) = shard.tls_server() else { return };
    match crate::tls::accept(stream, cfg, TLS_HANDSHAKE_TIMEOUT).await {
        Ok((tls, info)) => {
            let s = &shard.stats;
            ShardStats::inc(if info.resumed {
                &s.tls_handshakes_resumed
            } else {
                &s.tls_handshakes_full
            });
            serve_connection(
                tls,
                shard.clone(),
                Peer {
                    mtls_subject: info.peer_subject,
                    admin: false,
                },
            )
            .await;
        }
        Err(e) => shard.stats.tls_failure(e.reason()),
    }
}

/// Serves one client connection until it closes, errs, idles out or the shard drains.
pub async fn serve_connection<S: IdleRead + AsyncWriteRent>(mut stream: S, shard: Rc<Shard>, peer: Peer) {
    let stats = shard.stats.clone();
    ShardStats::inc(&stats.connections_open);
    ShardStats::inc(&stats.connections_total);
    let mut buf: Vec<u8> = Vec::with_capacity(READ_BUFFER_BYTES);
    let conn_id = shard.drain.register();
    let mut idle = IdleState::default();
    loop {
        let (head, rest) = match next_head(&mut stream, buf, &mut idle, &shard.drain, conn_id).await {
            NextHead::Head(h, rest) => (h, rest),
            NextHead::Closed => break,
            NextHead::Invalid(e) => {
                ShardStats::inc(&stats.bad_requests);
                let err = ProxyError::from(e);
                let id = shard.next_request_id();
                let _ = write_all(&mut stream, error_response(&err, &id, true, &[])).await;
                break;
            }
        };
        buf = rest;
        ShardStats::inc(&stats.requests_in_flight);
        let keep = dispatch(&mut stream, head, &mut buf, &shard, &peer).await;
        ShardStats::dec(&stats.requests_in_flight);
        if !keep || shard.draining() {
            // What the buffer still holds may be part of a request head (credentials);
            // `next_head` zeroes it on the other ways out.
            crate::util::wipe::wipe_vec(&mut buf);
            break;
        }
    }
    shard.drain.unregister(conn_id);
    ShardStats::dec(&stats.connections_open);
}

/// The future `make` returns, in a box allocated first, so that the optimiser builds it in
/// place (it does in the release build: no 8 KiB copy is left in `serve_connection`).
/// `Box::pin(make())` builds it on the stack and copies all of it (8 KiB for a Bedrock
/// call, whatever state it starts in) into the box.
fn boxed_in_place<F: std::future::Future>(make: impl FnOnce() -> F) -> std::pin::Pin<Box<F>> {
    let slot = Box::<F>::new_uninit();
    Box::into_pin(Box::write(slot, make()))
}

/// `/healthz`: 503 while draining, or while the ledger refuses requests (a journal is
/// full); 200 otherwise, `degraded` with the reason while usage writes fail.
fn health(shard: &Shard) -> (u16, Vec<u8>) {
    let lg = &shard.shared.ledger;
    let with = |status: &str, key: &str, detail: &str| {
        let mut b = format!("{{\"status\":\"{status}\",\"{key}\":\"").into_bytes();
        push_json_str(&mut b, detail);
        b.extend_from_slice(b"\"}");
        b
    };
    if shard.draining() {
        return (503, br#"{"status":"draining"}"#.to_vec());
    }
    if lg.on_full == FullPolicy::Refuse && lg.full_shards() > 0 {
        let why = lg
            .stats
            .degraded_reason()
            .unwrap_or_else(|| "--ledger-max-bytes reached".into());
        return (503, with("ledger_full", "reason", &why));
    }
    match lg.stats.degraded_reason() {
        Some(why) => (200, with("degraded", "reason", &why)),
        None => (200, br#"{"status":"ok"}"#.to_vec()),
    }
}

/// Handles one request; returns whether the connection may carry another.
async fn dispatch<S: AsyncReadRent + AsyncWriteRent>(
    stream: &mut S,
    head: crate::http::request::RequestHead,
    buf: &mut Vec<u8>,
    shard: &Rc<Shard>,
    peer: &Peer,
) -> bool {
    let received = Instant::now();
    let ts = crate::util::time::unix_now_micros();
    // A body we do not read makes the connection unusable afterwards.
    let unread_body = head.framing != BodyFraming::None;
    let admin = &shard.shared.admin;
    let route = match resolve(head.target()) {
        // The admin listener serves operators only; `/metrics` leaves the client
        // listeners once it exists (unless `--metrics-on-main on`).
        Route::Bedrock { .. } if peer.admin => Route::NotFound,
        Route::Metrics if !peer.admin && !admin.metrics_on_main => Route::NotFound,
        // The dashboard lives on the admin listener only.
        Route::Dashboard | Route::Api if !peer.admin || shard.shared.dashboard.is_none() => Route::NotFound,
        r => r,
    };
    if matches!(route, Route::Metrics | Route::Api) {
        if let Some(token) = &admin.token {
            if !bearer_ok(&head, token) {
                let close = !head.keep_alive() || unread_body || shard.draining();
                let id = shard.next_request_id();
                let err = ProxyError::new(
                    ErrorCode::Unauthorized,
                    "/metrics and /api/ need Authorization: Bearer <the --admin-token-file token> (the dashboard page takes it as #token=... in its URL)",
                );
                let resp = error_response(&err, &id, close, &[("www-authenticate", b"Bearer")]);
                return write_all(stream, resp).await && !close;
            }
        }
    }
    match route {
        Route::Bedrock { op, raw_model } => {
            let raw_model = raw_model.to_vec();
            let call = Call::new(stream, shard, peer, op, head.keep_alive(), received, ts);
            // Boxed: the request's state (8 KiB: upstream exchange, relay) lives on the
            // heap while it runs, so an idle connection's task holds only its wait.
            boxed_in_place(|| crate::proxy::handle(call, head, buf, op, &raw_model)).await
        }
        Route::Dashboard | Route::Api => {
            let close = !head.keep_alive() || unread_body || shard.draining();
            let resp = Box::pin(dashboard(&head, shard, route == Route::Api, close)).await;
            write_all(stream, resp).await && !close
        }
        Route::Health | Route::Metrics | Route::NotFound => {
            let close = !head.keep_alive() || unread_body || shard.draining();
            let id = shard.next_request_id();
            let is_health = route == Route::Health;
            let resp = match (route, head.method()) {
                (Route::NotFound, _) => error_response(
                    &ProxyError::new(ErrorCode::NotFound, "unknown path; use POST /bedrock/model/{modelId}/converse, /converse-stream, /invoke, /invoke-with-response-stream or /count-tokens, GET /healthz, GET /metrics"),
                    &id,
                    close,
                    &[],
                ),
                (_, Method::Get | Method::Head) => {
                    let (status, ctype, body) = if is_health {
                        let (status, body) = health(shard);
                        (status, "application/json", body)
                    } else {
                        (200, "text/plain; version=0.0.4", super::metrics::render(&shard.shared).into_bytes())
                    };
                    let mut out = Vec::with_capacity(body.len() + 160);
                    HeadWriter::new(&mut out, status)
                        .header("content-type", ctype.as_bytes())
                        .header("x-request-id", id.as_bytes())
                        .header_u64("content-length", body.len() as u64)
                        .finish(close);
                    if head.method() == Method::Get {
                        out.extend_from_slice(&body);
                    }
                    out
                }
                _ => error_response(
                    &ProxyError::new(ErrorCode::MethodNotAllowed, "use GET on this path"),
                    &id,
                    close,
                    &[("allow", b"GET, HEAD")],
                ),
            };
            write_all(stream, resp).await && !close
        }
    }
}
