//! An upstream connection: plain TCP or TLS (`crate::tls::client`) over monoio, with
//! TCP_NODELAY, counted in the shard's open-upstream gauge while it lives, and a
//! liveness check for idle pooled connections.

use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use monoio::buf::{IoBuf, IoBufMut, IoVecBuf, IoVecBufMut};
use monoio::io::{AsyncReadRent, AsyncWriteRent};
use monoio::net::TcpStream;
use monoio::BufResult;

use super::endpoint::Target;
use super::UpstreamError;
use crate::tls::client::ClientTlsError;

/// The transport under an upstream connection.
pub enum Io {
    Plain(TcpStream),
    Tls(Box<monoio_rustls::ClientTlsStream<TcpStream>>, RawFd),
}

/// A connected upstream stream. While it lives it counts in the shard's open-upstream
/// gauge (if one was given).
pub struct UpstreamStream {
    io: Io,
    gauge: Option<Arc<AtomicU64>>,
}

impl Drop for UpstreamStream {
    fn drop(&mut self) {
        if let Some(g) = &self.gauge {
            g.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl UpstreamStream {
    /// Connects (and for TLS, handshakes) to `target` at `addr`.
    pub async fn connect(
        target: &Target,
        addr: std::net::SocketAddr,
        tls: Option<&Arc<rustls::ClientConfig>>,
        connect_timeout: std::time::Duration,
        tls_timeout: std::time::Duration,
        gauge: Option<Arc<AtomicU64>>,
    ) -> Result<Self, UpstreamError> {
        let wrap = |io: Io| {
            if let Some(g) = &gauge {
                g.fetch_add(1, Ordering::Relaxed);
            }
            UpstreamStream {
                io,
                gauge: gauge.clone(),
            }
        };
        let tcp = match monoio::time::timeout(connect_timeout, TcpStream::connect_addr(addr)).await {
            Err(_) => return Err(UpstreamError::ConnectTimeout),
            Ok(Err(e)) => return Err(UpstreamError::Connect(e)),
            Ok(Ok(s)) => s,
        };
        let _ = tcp.set_nodelay(true);
        if !target.tls {
            return Ok(wrap(Io::Plain(tcp)));
        }
        let cfg = tls.ok_or_else(|| UpstreamError::Tls("no TLS configuration".into()))?;
        let fd = tcp.as_raw_fd();
        match crate::tls::client::connect(cfg, &target.host, tcp, tls_timeout).await {
            Err(ClientTlsError::Timeout) => Err(UpstreamError::TlsTimeout),
            Err(ClientTlsError::Name(e)) => Err(UpstreamError::Tls(e)),
            Err(ClientTlsError::Handshake(e)) => Err(UpstreamError::Tls(crate::tls::client::handshake_reason(
                &e,
                &target.host,
            ))),
            Ok(s) => Ok(wrap(Io::Tls(Box::new(s), fd))),
        }
    }

    pub fn raw_fd(&self) -> RawFd {
        match &self.io {
            Io::Plain(s) => s.as_raw_fd(),
            Io::Tls(_, fd) => *fd,
        }
    }

    /// Whether an idle connection still looks usable: no EOF and no unexpected bytes
    /// (a peer that closed, or sent a TLS alert, makes the socket readable).
    pub fn idle_alive(&self) -> bool {
        let mut b = [0u8; 1];
        // SAFETY: recv on our own open socket into a valid 1-byte buffer.
        let n = unsafe {
            libc::recv(
                self.raw_fd(),
                b.as_mut_ptr().cast(),
                1,
                libc::MSG_PEEK | libc::MSG_DONTWAIT,
            )
        };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            return e.kind() == std::io::ErrorKind::WouldBlock;
        }
        false
    }
}

impl AsyncReadRent for UpstreamStream {
    async fn read<T: IoBufMut>(&mut self, buf: T) -> BufResult<usize, T> {
        match &mut self.io {
            Io::Plain(s) => s.read(buf).await,
            Io::Tls(s, _) => s.read(buf).await,
        }
    }

    async fn readv<T: IoVecBufMut>(&mut self, buf: T) -> BufResult<usize, T> {
        match &mut self.io {
            Io::Plain(s) => s.readv(buf).await,
            Io::Tls(s, _) => s.readv(buf).await,
        }
    }
}

impl AsyncWriteRent for UpstreamStream {
    async fn write<T: IoBuf>(&mut self, buf: T) -> BufResult<usize, T> {
        match &mut self.io {
            Io::Plain(s) => s.write(buf).await,
            Io::Tls(s, _) => s.write(buf).await,
        }
    }

    async fn writev<T: IoVecBuf>(&mut self, buf: T) -> BufResult<usize, T> {
        match &mut self.io {
            Io::Plain(s) => s.writev(buf).await,
            Io::Tls(s, _) => s.writev(buf).await,
        }
    }

    async fn flush(&mut self) -> std::io::Result<()> {
        match &mut self.io {
            Io::Plain(s) => s.flush().await,
            Io::Tls(s, _) => s.flush().await,
        }
    }

    async fn shutdown(&mut self) -> std::io::Result<()> {
        match &mut self.io {
            Io::Plain(s) => s.shutdown().await,
            Io::Tls(s, _) => s.shutdown().await,
        }
    }
}
