//! A mock upstream and a proxy in front of it, with the checks most suites end on: what
//! reached the upstream, that a valid call still goes through, that no shard panicked and
//! that no client-only header or bad signature ever reached the mock.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use super::client::{body, converse, good_headers, mock_stats, sha256_hex, stat};
use super::launch::{mock, proxy, temp_dir, Proc};

/// The model a rig's health check calls.
pub const RIG_MODEL: &str = "amazon.nova-lite-v1:0";

/// One mock upstream and one proxy in front of it.
pub struct Rig {
    pub mock: Proc,
    pub proxy: Proc,
    /// `/mock/stats` calls so far: the mock counts them in `requests` too.
    stats_calls: AtomicU64,
}

impl Rig {
    /// A mock, and a proxy (two shards, `extra` flags) writing under a fresh `name` directory.
    pub fn new(name: &str, extra: &[&str]) -> Rig {
        let mock = mock();
        let dir = temp_dir(name);
        let proxy = proxy(mock.addr, &dir, extra);
        Rig {
            mock,
            proxy,
            stats_calls: AtomicU64::new(0),
        }
    }

    /// The proxy's address.
    pub fn addr(&self) -> SocketAddr {
        self.proxy.addr
    }

    /// The mock's counters.
    pub fn mock_json(&self) -> String {
        self.stats_calls.fetch_add(1, Ordering::SeqCst);
        mock_stats(self.mock.addr)
    }

    /// Requests that reached the mock, its own stats calls left out.
    pub fn upstream(&self) -> u64 {
        let j = self.mock_json();
        stat(&j, "requests") - self.stats_calls.load(Ordering::SeqCst)
    }

    pub fn no_panic(&self, after: &str) {
        let logs = self.proxy.logs();
        assert!(!logs.contains("panicked"), "after {after}: a shard panicked:\n{logs}");
    }

    /// A valid call still goes through: 200, exactly one request upstream.
    pub fn healthy(&self, after: &str) {
        let before = self.upstream();
        let b = body("still serving");
        let r = converse(self.addr(), RIG_MODEL, &good_headers(), &b);
        assert_eq!(r.status, 200, "after {after}: {}", r.text());
        assert!(r.text().contains(&sha256_hex(&b)), "after {after}: {}", r.text());
        assert_eq!(self.upstream(), before + 1, "after {after}");
        self.no_panic(after);
    }

    /// End of a test: no client-only header ever reached the upstream, every request that
    /// did was signed right, and the proxy is still running.
    pub fn finish(mut self) {
        let j = self.mock_json();
        assert_eq!(stat(&j, "leaked_headers"), 0, "{j}");
        assert_eq!(stat(&j, "signature_failures"), 0, "{j}");
        self.no_panic("the test");
        assert!(
            self.proxy.child.try_wait().unwrap().is_none(),
            "the proxy exited:\n{}",
            self.proxy.logs()
        );
    }
}
