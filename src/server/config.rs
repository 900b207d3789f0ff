//! The configuration of `serve`: its flags and the [`ServeConfig`] they build, every
//! value validated with a message naming the flag (exit code 2).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::args::{flag, switch, ConfigError, FlagSpec, LogFormat, Sources};
use crate::bedrock::model::GeoRules;
use crate::http::limits::{
    DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_INFLIGHT_BODY_BYTES, READ_BUFFER_BYTES,
};
use crate::proxy::shard::Settings;
use crate::upstream::endpoint::Endpoint;
use crate::upstream::Timeouts;
use crate::usage::ledger::sink::DEFAULT_ROLL_BYTES;
use crate::usage::ledger::{
    FullPolicy, LedgerConfig, DEFAULT_FSYNC_INTERVAL, DEFAULT_MAX_BYTES, JOURNAL_DIR, MIN_MAX_BYTES_PER_SHARD,
};

/// Flags of `serve`.
pub const FLAGS: &[FlagSpec] = &[
    flag(
        "listen",
        "ADDR|none",
        "plain-HTTP listen address, or `none` [default: 0.0.0.0:8080]",
    ),
    flag(
        "threads",
        "N",
        "shards: one runtime and listener per thread [default: number of cores]",
    ),
    flag("usage-dir", "DIR", "where Parquet usage files go [default: ./usage]"),
    flag(
        "roll-interval",
        "SECS",
        "close and publish a Parquet file at least this often [default: 60]",
    ),
    flag(
        "roll-rows",
        "N",
        "close a Parquet file after this many rows [default: 1000000]",
    ),
    flag(
        "journal-dir",
        "DIR",
        "the usage journal (rows not yet in Parquet) [default: {usage-dir}/_journal]",
    ),
    flag(
        "fsync-interval",
        "DURATION",
        "how often journal pages are synced to disk: the most a power cut loses [default: 200ms]",
    ),
    flag(
        "ledger-max-bytes",
        "SIZE",
        "journal bound on disk, all shards together [default: 2GiB]",
    ),
    flag(
        "on-ledger-full",
        "refuse|serve",
        "at the bound: 503 LedgerUnavailable, or serve and count the rows lost [default: refuse]",
    ),
    flag(
        "upstream-endpoint",
        "URL",
        "replace https://bedrock-runtime.{region}.amazonaws.com (http:// or https://)",
    ),
    flag("upstream-ca", "PEM", "extra trusted root for upstream TLS"),
    flag(
        "upstream-connect-timeout",
        "SECS",
        "upstream TCP connect timeout [default: 5]",
    ),
    flag(
        "upstream-tls-timeout",
        "SECS",
        "upstream TLS handshake timeout [default: 10]",
    ),
    flag(
        "upstream-ttfb-timeout",
        "SECS",
        "time to the first upstream response byte [default: 60]",
    ),
    flag(
        "upstream-timeout",
        "SECS",
        "whole upstream request deadline [default: 900]",
    ),
    flag(
        "max-body-bytes",
        "N",
        "largest request body accepted [default: 33554432]",
    ),
    flag(
        "max-inflight-body-bytes",
        "BYTES",
        "request body bytes buffered per shard; a body past it gets 503 Overloaded [default: 256MiB]",
    ),
    flag(
        "max-connections",
        "N",
        "client connections per process; more are answered 503 Overloaded and closed [default: 20000]",
    ),
    flag(
        "keys",
        "FILE",
        "TOML file of accepted tracking keys ([[key]] name, sha256)",
    ),
    flag(
        "pricing",
        "FILE",
        "TOML file of model prices overriding the built-in table",
    ),
    flag(
        "budgets",
        "FILE",
        "TOML file of spend budgets ([[budget]] name, scope, value, period, limit_usd, action); reloaded on SIGHUP",
    ),
    flag(
        "routes",
        "FILE",
        "TOML file of optimizer rules ([[route]] name, match, action = rewrite|downgrade|fallback); reloaded on SIGHUP",
    ),
    flag(
        "budget-store",
        "URL",
        "redis://HOST:PORT[/DB] shared budget store: instances enforce one limit together",
    ),
    flag(
        "budget-store-password-file",
        "FILE",
        "password for --budget-store (AUTH; or LLMOPS_BUDGET_STORE_PASSWORD); the user goes in the URL: redis://USER@HOST",
    ),
    flag("config", "FILE", "TOML file with any of these flags as keys"),
    flag(
        "listen-tls",
        "ADDR",
        "HTTPS listen address (TLS 1.2/1.3, sharded like --listen)",
    ),
    flag(
        "tls-cert",
        "PEM",
        "certificate chain for --listen-tls (leaf first); reloaded on SIGHUP",
    ),
    flag(
        "tls-key",
        "PEM",
        "private key for --tls-cert (PKCS#8, PKCS#1 or SEC1); reloaded on SIGHUP",
    ),
    flag(
        "client-ca",
        "PEM",
        "mutual TLS: require client certificates signed by this CA; reloaded on SIGHUP",
    ),
    flag(
        "admin-listen",
        "ADDR|PORT",
        "operators' listener for /metrics, /healthz and the dashboard (a bare PORT means 127.0.0.1:PORT); /metrics then leaves the client listeners",
    ),
    flag(
        "admin-token-file",
        "FILE",
        "require Authorization: Bearer <the file's token> for /metrics and /api/ (a non-loopback --admin-listen needs it or --admin-client-ca)",
    ),
    flag(
        "admin-tls-cert",
        "PEM",
        "serve the admin listener over TLS with this certificate chain; reloaded on SIGHUP",
    ),
    flag("admin-tls-key", "PEM", "private key for --admin-tls-cert"),
    flag(
        "admin-client-ca",
        "PEM",
        "admin listener mutual TLS: require operators' client certificates signed by this CA",
    ),
    flag(
        "metrics-on-main",
        "on|off",
        "serve /metrics on the client listeners too [default: on without --admin-listen, off with it]",
    ),
    switch(
        "require-tls",
        "refuse plain HTTP on a non-loopback listener or --upstream-endpoint",
    ),
    flag(
        "drain-timeout",
        "SECS",
        "on SIGTERM, how long in-flight requests may finish [default: 30]",
    ),
    flag(
        "access-log",
        "on|off",
        "one structured log line per request [default: on]",
    ),
    flag("log-format", "text|json", "log line format [default: text]"),
    flag(
        "geo-providers",
        "LIST",
        "providers whose bare model ids get a geo prefix [default: anthropic,meta,deepseek]",
    ),
];

/// Everything `serve` needs.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Plain-HTTP listener (`None`: `--listen none`).
    pub listen: Option<SocketAddr>,
    pub listen_tls: Option<SocketAddr>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub client_ca: Option<PathBuf>,
    pub threads: usize,
    pub usage_dir: PathBuf,
    pub roll_interval: Duration,
    pub roll_rows: usize,
    /// `None`: `{usage_dir}/_journal`.
    pub journal_dir: Option<PathBuf>,
    pub fsync_interval: Duration,
    pub ledger_max_bytes: u64,
    pub on_ledger_full: FullPolicy,
    /// Where requests go, their deadlines, bounds and model-id rules.
    pub proxy: Settings,
    pub upstream_ca: Option<PathBuf>,
    pub keys: Option<PathBuf>,
    pub pricing: Option<PathBuf>,
    pub budgets: Option<PathBuf>,
    /// The optimizer's rules (`--routes`).
    pub routes: Option<PathBuf>,
    /// `redis://HOST:PORT[/DB]`.
    pub budget_store: Option<crate::budget::store::RedisUrl>,
    /// The store's password (`--budget-store-password-file` or the environment).
    pub budget_store_password: Option<crate::sigv4::SecretString>,
    pub drain_timeout: Duration,
    pub log_format: LogFormat,
    /// One structured access-log line per request (from the writer thread).
    pub access_log: bool,
    pub require_tls: bool,
    /// The operators' listener (`--admin-listen`).
    pub admin_listen: Option<SocketAddr>,
    /// The bearer token `/metrics` and `/api/` require (`--admin-token-file`).
    pub admin_token: Option<crate::sigv4::SecretString>,
    /// The admin listener's TLS certificate and key, and the CA of its mutual TLS.
    pub admin_tls_cert: Option<PathBuf>,
    pub admin_tls_key: Option<PathBuf>,
    pub admin_client_ca: Option<PathBuf>,
    /// `--metrics-on-main`, if given.
    pub metrics_on_main_flag: Option<bool>,
}

impl Default for ServeConfig {
    /// The defaults every flag documents (`--help`), with one shard per core.
    fn default() -> Self {
        ServeConfig {
            listen: Some(SocketAddr::from(([0, 0, 0, 0], 8080))),
            listen_tls: None,
            tls_cert: None,
            tls_key: None,
            client_ca: None,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            usage_dir: PathBuf::from("./usage"),
            roll_interval: Duration::from_secs(60),
            roll_rows: 1_000_000,
            journal_dir: None,
            fsync_interval: DEFAULT_FSYNC_INTERVAL,
            ledger_max_bytes: DEFAULT_MAX_BYTES,
            on_ledger_full: FullPolicy::Refuse,
            proxy: Settings::default(),
            upstream_ca: None,
            keys: None,
            pricing: None,
            budgets: None,
            routes: None,
            budget_store: None,
            budget_store_password: None,
            drain_timeout: Duration::from_secs(30),
            log_format: LogFormat::Text,
            access_log: true,
            require_tls: false,
            admin_listen: None,
            admin_token: None,
            admin_tls_cert: None,
            admin_tls_key: None,
            admin_client_ca: None,
            metrics_on_main_flag: None,
        }
    }
}

/// The secret in the file a flag names, without its trailing newline and spaces (the
/// read buffer zeroed); `None` without the flag.
fn secret_file(s: &Sources<'_>, flag: &str) -> Result<Option<crate::sigv4::SecretString>, ConfigError> {
    let Some(p) = s.file(flag)? else { return Ok(None) };
    let mut text =
        std::fs::read(&p).map_err(|e| ConfigError::new(flag, format!("cannot read {}: {e}", p.display())))?;
    let secret = text.trim_ascii_end().to_vec();
    crate::util::wipe::wipe_vec(&mut text);
    Ok(Some(crate::sigv4::SecretString::new(secret)))
}

/// Shortest admin bearer token accepted.
pub const MIN_ADMIN_TOKEN_BYTES: usize = 16;

impl ServeConfig {
    /// Whether the client listeners serve `/metrics`.
    pub fn metrics_on_main(&self) -> bool {
        self.metrics_on_main_flag.unwrap_or(self.admin_listen.is_none())
    }

    /// The admin listener, its token and where `/metrics` is served.
    fn set_admin(&mut self, s: &Sources<'_>) -> Result<(), ConfigError> {
        self.admin_listen = match s.get("admin-listen") {
            None => None,
            Some(v) if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) => {
                let port: u16 = v
                    .parse()
                    .map_err(|_| ConfigError::new("admin-listen", format!("`{v}` is not a port")))?;
                Some(SocketAddr::from(([127, 0, 0, 1], port)))
            }
            Some(_) => Some(s.addr("admin-listen", "127.0.0.1:9090")?),
        };
        self.admin_token = match secret_file(s, "admin-token-file")? {
            None => None,
            Some(text) => {
                let token = text.expose().trim_ascii_start();
                if token.len() < MIN_ADMIN_TOKEN_BYTES || !token.iter().all(|b| b.is_ascii_graphic()) {
                    return Err(ConfigError::new(
                        "admin-token-file",
                        format!("the token must be at least {MIN_ADMIN_TOKEN_BYTES} printable characters"),
                    ));
                }
                Some(crate::sigv4::SecretString::new(token.to_vec()))
            }
        };
        self.metrics_on_main_flag = match s.get("metrics-on-main").as_deref() {
            None => None,
            Some("on" | "true" | "1") => Some(true),
            Some("off" | "false" | "0") => Some(false),
            Some(v) => return Err(ConfigError::new("metrics-on-main", format!("`{v}` is not on or off"))),
        };
        self.admin_tls_cert = s.file("admin-tls-cert")?;
        self.admin_tls_key = s.file("admin-tls-key")?;
        self.admin_client_ca = s.file("admin-client-ca")?;
        let pair = "--admin-tls-cert and --admin-tls-key go together";
        match (&self.admin_tls_cert, &self.admin_tls_key) {
            (Some(_), None) => return Err(ConfigError::new("admin-tls-key", pair)),
            (None, Some(_)) => return Err(ConfigError::new("admin-tls-cert", pair)),
            _ => {}
        }
        if self.admin_tls_cert.is_some() && self.admin_listen.is_none() {
            return Err(ConfigError::new("admin-tls-cert", "needs --admin-listen ADDR"));
        }
        if self.admin_client_ca.is_some() && self.admin_tls_cert.is_none() {
            return Err(ConfigError::new(
                "admin-client-ca",
                "mutual TLS needs --admin-tls-cert and --admin-tls-key",
            ));
        }
        if let Some(a) = self.admin_listen {
            if !a.ip().is_loopback() && self.admin_token.is_none() && self.admin_client_ca.is_none() {
                return Err(ConfigError::new(
                    "admin-listen",
                    format!("{a} is not loopback: /metrics and the dashboard show spend by tenant, department and project; give --admin-token-file, or --admin-tls-cert/--admin-tls-key with --admin-client-ca, or a loopback address"),
                ));
            }
        }
        Ok(())
    }

    /// Where the usage journal lives.
    pub fn journal_dir(&self) -> PathBuf {
        self.journal_dir
            .clone()
            .unwrap_or_else(|| self.usage_dir.join(JOURNAL_DIR))
    }

    /// The ledger's settings.
    pub fn ledger(&self) -> LedgerConfig {
        LedgerConfig {
            usage_dir: self.usage_dir.clone(),
            journal_dir: self.journal_dir(),
            roll_interval: self.roll_interval,
            roll_rows: self.roll_rows,
            roll_bytes: DEFAULT_ROLL_BYTES,
            fsync_interval: self.fsync_interval,
            max_bytes: self.ledger_max_bytes,
            on_full: self.on_ledger_full,
            shards: self.threads,
            host: crate::usage::ledger::sink::host_name(),
        }
    }

    pub fn from_sources(s: &Sources<'_>) -> Result<Self, ConfigError> {
        let d = ServeConfig::default();
        let threads: usize = s.parse_num("threads", d.threads)?;
        if threads == 0 || threads > 1024 {
            return Err(ConfigError::new("threads", "must be between 1 and 1024"));
        }
        let roll_rows: usize = s.parse_num("roll-rows", d.roll_rows)?;
        if roll_rows == 0 {
            return Err(ConfigError::new("roll-rows", "must be at least 1"));
        }
        let ledger_max_bytes = s.bytes("ledger-max-bytes", d.ledger_max_bytes)?;
        let least = MIN_MAX_BYTES_PER_SHARD * threads as u64;
        if ledger_max_bytes < least {
            return Err(ConfigError::new(
                "ledger-max-bytes",
                format!(
                    "must be at least {least} bytes ({} MiB per shard)",
                    MIN_MAX_BYTES_PER_SHARD >> 20
                ),
            ));
        }
        let on_ledger_full = match s.get("on-ledger-full") {
            None => d.on_ledger_full,
            Some(v) => FullPolicy::parse(&v)
                .ok_or_else(|| ConfigError::new("on-ledger-full", format!("`{v}` is not refuse or serve")))?,
        };
        let mut cfg = ServeConfig {
            threads,
            journal_dir: s.path("journal-dir")?,
            fsync_interval: s.duration("fsync-interval", d.fsync_interval)?,
            ledger_max_bytes,
            on_ledger_full,
            usage_dir: s.path("usage-dir")?.unwrap_or(d.usage_dir),
            roll_interval: s.secs("roll-interval", d.roll_interval.as_secs())?,
            roll_rows,
            proxy: proxy_settings(s)?,
            upstream_ca: s.file("upstream-ca")?,
            keys: s.file("keys")?,
            pricing: s.file("pricing")?,
            budgets: s.file("budgets")?,
            routes: s.file("routes")?,
            budget_store: match s.get("budget-store") {
                None => None,
                Some(u) => {
                    Some(crate::budget::store::RedisUrl::parse(&u).map_err(|e| ConfigError::new("budget-store", e))?)
                }
            },
            drain_timeout: s.secs("drain-timeout", d.drain_timeout.as_secs())?,
            log_format: crate::args::log_format(s)?,
            access_log: match s.get("access-log").as_deref() {
                None | Some("on" | "true" | "1") => true,
                Some("off" | "false" | "0") => false,
                Some(v) => return Err(ConfigError::new("access-log", format!("`{v}` is not on or off"))),
            },
            require_tls: s.switch("require-tls")?,
            ..d
        };
        cfg.set_listeners(s)?;
        cfg.set_admin(s)?;
        cfg.budget_store_password = match secret_file(s, "budget-store-password-file")? {
            Some(pw) => {
                if pw.is_empty() {
                    return Err(ConfigError::new("budget-store-password-file", "the file is empty"));
                }
                Some(pw)
            }
            None => std::env::var("LLMOPS_BUDGET_STORE_PASSWORD")
                .ok()
                .filter(|p| !p.is_empty())
                .map(|p| crate::sigv4::SecretString::new(p.into_bytes())),
        };
        if let (true, Some(remote)) = (cfg.require_tls, cfg.proxy.endpoint.plain_remote()) {
            return Err(ConfigError::new(
                "require-tls",
                format!("refusing the plain-HTTP --upstream-endpoint {remote}: signed requests and their answers would cross the network in clear text; use https:// or a loopback endpoint"),
            ));
        }
        Ok(cfg)
    }

    /// The plain and TLS listeners, their files, and the rules between them.
    fn set_listeners(&mut self, s: &Sources<'_>) -> Result<(), ConfigError> {
        self.listen = match s.get("listen").as_deref() {
            Some("none" | "off") => None,
            _ => Some(s.addr("listen", "0.0.0.0:8080")?),
        };
        self.listen_tls = match s.get("listen-tls") {
            None => None,
            Some(_) => Some(s.addr("listen-tls", "")?),
        };
        self.tls_cert = s.file("tls-cert")?;
        self.tls_key = s.file("tls-key")?;
        self.client_ca = s.file("client-ca")?;
        let both = "--listen-tls needs --tls-cert and --tls-key";
        match (&self.listen_tls, &self.tls_cert, &self.tls_key) {
            (Some(_), None, _) => return Err(ConfigError::new("tls-cert", both)),
            (Some(_), _, None) => return Err(ConfigError::new("tls-key", both)),
            (None, Some(_), _) | (None, _, Some(_)) => {
                return Err(ConfigError::new(
                    "listen-tls",
                    "--tls-cert/--tls-key need --listen-tls ADDR",
                ))
            }
            _ => {}
        }
        if self.client_ca.is_some() && self.listen_tls.is_none() {
            return Err(ConfigError::new("client-ca", "mutual TLS needs --listen-tls ADDR"));
        }
        if self.listen.is_none() && self.listen_tls.is_none() {
            return Err(ConfigError::new(
                "listen",
                "no listener: give --listen ADDR and/or --listen-tls ADDR",
            ));
        }
        if let (true, Some(l)) = (self.require_tls, self.listen) {
            if !l.ip().is_loopback() {
                return Err(ConfigError::new(
                    "require-tls",
                    format!("refusing to serve plain HTTP on non-loopback {l}: AWS secrets would cross the network in clear text; use --listen-tls, --listen 127.0.0.1:PORT or --listen none"),
                ));
            }
        }
        Ok(())
    }
}

/// Where requests go, their deadlines and bounds, and the model-id rules.
fn proxy_settings(s: &Sources<'_>) -> Result<Settings, ConfigError> {
    let endpoint = match s.get("upstream-endpoint") {
        None => Endpoint::aws_default(),
        Some(url) => Endpoint::parse(&url).map_err(|e| ConfigError::new("upstream-endpoint", e))?,
    };
    let max_body_bytes: usize = s.parse_num("max-body-bytes", DEFAULT_MAX_BODY_BYTES)?;
    if max_body_bytes == 0 {
        return Err(ConfigError::new("max-body-bytes", "must be at least 1"));
    }
    let inflight = s.bytes("max-inflight-body-bytes", DEFAULT_MAX_INFLIGHT_BODY_BYTES as u64)?;
    if inflight < READ_BUFFER_BYTES as u64 {
        return Err(ConfigError::new(
            "max-inflight-body-bytes",
            format!("must be at least {READ_BUFFER_BYTES} bytes"),
        ));
    }
    let max_connections: usize = s.parse_num("max-connections", DEFAULT_MAX_CONNECTIONS)?;
    if max_connections == 0 {
        return Err(ConfigError::new("max-connections", "must be at least 1"));
    }
    let mut geo = GeoRules::default();
    if let Some(list) = s.get("geo-providers") {
        geo.providers = list
            .split(',')
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty())
            .collect();
    }
    let dt = Timeouts::default();
    Ok(Settings {
        endpoint,
        timeouts: Timeouts {
            connect: s.secs("upstream-connect-timeout", dt.connect.as_secs())?,
            tls: s.secs("upstream-tls-timeout", dt.tls.as_secs())?,
            ttfb: s.secs("upstream-ttfb-timeout", dt.ttfb.as_secs())?,
            total: s.secs("upstream-timeout", dt.total.as_secs())?,
        },
        max_body_bytes,
        max_inflight_body_bytes: usize::try_from(inflight).unwrap_or(usize::MAX),
        max_connections,
        geo: geo.sorted(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::Args;

    fn argv(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn precedence_and_errors() {
        let args = Args::parse(FLAGS, &argv(&["--listen", "127.0.0.1:9", "--threads=3"])).unwrap();
        let env = |k: &str| match k {
            "LLMOPS_THREADS" => Some("7".to_string()),
            "LLMOPS_USAGE_DIR" => Some("/tmp/u".to_string()),
            _ => None,
        };
        let s = Sources::new(&args, &env).unwrap();
        let c = ServeConfig::from_sources(&s).unwrap();
        assert_eq!(c.threads, 3);
        assert_eq!(c.usage_dir, PathBuf::from("/tmp/u"));
        assert_eq!(c.listen.map(|l| l.port()), Some(9));

        let bad = Args::parse(FLAGS, &argv(&["--threads", "x"])).unwrap();
        let none = |_: &str| None;
        let e = ServeConfig::from_sources(&Sources::new(&bad, &none).unwrap()).unwrap_err();
        assert_eq!(e.flag, "threads");
        assert!(Args::parse(FLAGS, &argv(&["--nope"])).is_err());
        let rt = Args::parse(FLAGS, &argv(&["--require-tls", "--listen", "0.0.0.0:1"])).unwrap();
        assert_eq!(
            ServeConfig::from_sources(&Sources::new(&rt, &none).unwrap())
                .unwrap_err()
                .flag,
            "require-tls"
        );
        for (endpoint, refused) in [
            ("http://10.0.0.8:80", true),
            ("http://bedrock.internal", true),
            ("http://127.0.0.1:9000", false),
            ("http://[::1]:9000", false),
            ("http://localhost:9000", false),
            ("https://10.0.0.8", false),
        ] {
            let a = Args::parse(
                FLAGS,
                &argv(&[
                    "--require-tls",
                    "--listen",
                    "127.0.0.1:1",
                    "--upstream-endpoint",
                    endpoint,
                ]),
            )
            .unwrap();
            let r = ServeConfig::from_sources(&Sources::new(&a, &none).unwrap());
            assert_eq!(r.is_err(), refused, "{endpoint}");
            if let Err(e) = r {
                assert_eq!(e.flag, "require-tls");
                assert!(e.to_string().contains("clear text"), "{e}");
            }
        }
    }
}
