//! One `/metrics` scraper: the Prometheus text parsed strictly into series, looked up by
//! exact name and labels (`llmops_upstream_errors_total{kind="io"}`), never by prefix.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use super::client::raw;

/// A scrape: every series and its value.
#[derive(Debug, Clone, Default)]
pub struct Metrics(pub BTreeMap<String, f64>);

impl Metrics {
    /// Scrapes `addr` (the proxy's listener).
    pub fn scrape(addr: SocketAddr) -> Metrics {
        let r = raw(addr, b"GET /metrics HTTP/1.1\r\nHost: p\r\nConnection: close\r\n\r\n").expect("a /metrics answer");
        assert_eq!(r.status, 200, "{}", r.text());
        Metrics::parse(&r.text())
    }

    /// Parses Prometheus text strictly: every name and label well formed, every series
    /// under a `# TYPE` (a malformed exposition fails the test).
    pub fn parse(text: &str) -> Metrics {
        let mut out = BTreeMap::new();
        let mut typed: BTreeMap<String, String> = BTreeMap::new();
        let name_ok = |n: &str| {
            !n.is_empty()
                && n.chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
                && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
        };
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let name = rest.split(' ').next().unwrap();
                assert!(name_ok(name), "bad HELP line {line:?}");
                continue;
            }
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let mut it = rest.split(' ');
                let (name, kind) = (it.next().unwrap(), it.next().unwrap());
                assert!(
                    name_ok(name) && ["counter", "gauge", "histogram"].contains(&kind),
                    "bad TYPE line {line:?}"
                );
                typed.insert(name.to_string(), kind.to_string());
                continue;
            }
            assert!(!line.starts_with('#') && !line.is_empty(), "unexpected line {line:?}");
            let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("no value: {line:?}"));
            let v: f64 = value.parse().unwrap_or_else(|_| panic!("bad value in {line:?}"));
            let name = series.split('{').next().unwrap();
            assert!(name_ok(name), "bad name in {line:?}");
            if let Some(l) = series.strip_prefix(name) {
                if !l.is_empty() {
                    assert!(l.starts_with('{') && l.ends_with('}'), "bad labels in {line:?}");
                    for pair in l[1..l.len() - 1].split("\",") {
                        let (k, v) = pair
                            .split_once("=\"")
                            .unwrap_or_else(|| panic!("bad label in {line:?}"));
                        assert!(name_ok(k), "bad label name in {line:?}");
                        assert!(
                            !v.trim_end_matches('"').contains('"') || v.contains("\\\""),
                            "bad label value in {line:?}"
                        );
                    }
                }
            }
            let base = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s))
                .filter(|b| typed.get(*b).is_some_and(|k| k == "histogram"));
            assert!(
                typed.contains_key(name) || base.is_some(),
                "series without TYPE: {line:?}"
            );
            out.insert(series.to_string(), v);
        }
        Metrics(out)
    }

    /// The value of one series, exactly as written (`name` or `name{label="v",...}`).
    pub fn get(&self, series: &str) -> Option<f64> {
        self.0.get(series).copied()
    }

    /// [`Metrics::get`] as a count, 0 when absent.
    pub fn count(&self, series: &str) -> u64 {
        self.get(series).unwrap_or(0.0) as u64
    }
}
