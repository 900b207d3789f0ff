//! Configuration: command-line flags, `LLMOPS_<FLAG>` environment variables and a TOML
//! file (`--config`), in that order of precedence. Every value is validated here and a
//! bad one is reported with the flag that carries it (exit code 2).

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::bedrock::model::GeoRules;
use crate::http::limits::DEFAULT_MAX_BODY_BYTES;
use crate::upstream::endpoint::Endpoint;

/// A configuration error, naming the flag and the fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub flag: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(flag: &str, message: impl Into<String>) -> Self {
        ConfigError {
            flag: flag.to_string(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.flag.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "--{}: {}", self.flag, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

/// One flag a subcommand accepts.
#[derive(Debug, Clone, Copy)]
pub struct FlagSpec {
    pub name: &'static str,
    /// Name of the value (`ADDR`, `FILE`), or `None` for a switch.
    pub value: Option<&'static str>,
    pub help: &'static str,
}

const fn flag(name: &'static str, value: &'static str, help: &'static str) -> FlagSpec {
    FlagSpec {
        name,
        value: Some(value),
        help,
    }
}

const fn switch(name: &'static str, help: &'static str) -> FlagSpec {
    FlagSpec {
        name,
        value: None,
        help,
    }
}

/// Flags of `serve`.
pub const SERVE_FLAGS: &[FlagSpec] = &[
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
        "budget-store",
        "URL",
        "redis://HOST:PORT[/DB] shared budget store: instances enforce one limit together",
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
    switch("require-tls", "refuse to serve plain HTTP on a non-loopback address"),
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

/// Flags of `mock-upstream`.
pub const MOCK_FLAGS: &[FlagSpec] = &[
    flag("listen", "ADDR", "listen address [default: 127.0.0.1:9000]"),
    flag(
        "credential",
        "AKID:SECRET[:TOKEN]",
        "a credential the mock accepts (repeatable); the demo pair is always accepted",
    ),
    flag("tls-cert", "PEM", "serve TLS with this certificate chain"),
    flag("tls-key", "PEM", "private key for --tls-cert"),
    flag(
        "idle-close-ms",
        "MS",
        "close keep-alive connections idle this long, like AWS's load balancers [default: never]",
    ),
    flag("log-format", "text|json", "log line format [default: text]"),
];

/// Flags of `report`.
pub const REPORT_FLAGS: &[FlagSpec] = &[
    flag(
        "usage-dir",
        "DIR",
        "where the Parquet usage files are (any partitions) [default: ./usage]",
    ),
    flag(
        "by",
        "agent|department|project|model|tenant|day|tier|scope",
        "how rows are grouped [default: project]",
    ),
    flag(
        "html",
        "FILE",
        "also write a self-contained HTML page with charts to FILE",
    ),
];

/// Flags of `demo`.
pub const DEMO_FLAGS: &[FlagSpec] = &[
    flag(
        "usage-dir",
        "DIR",
        "where the demo's Parquet files go [default: a new temporary directory]",
    ),
    flag("requests", "N", "how many sample requests to send [default: 12]"),
];

/// Flags of `prices explain`.
pub const PRICES_EXPLAIN_FLAGS: &[FlagSpec] = &[
    flag(
        "model",
        "ID",
        "the model id as sent upstream (us.anthropic..., an ARN, ...)",
    ),
    flag("region", "REGION", "the source region called [default: us-east-1]"),
    flag(
        "tier",
        "priority|default|flex|reserved",
        "the service tier the response reported [default: default]",
    ),
    flag(
        "latency",
        "standard|optimized",
        "the latency mode the response reported [default: standard]",
    ),
    flag(
        "usage",
        "JSON",
        "the Converse `usage` object, or a whole response / metadata event (with serviceTier, trace, ...)",
    ),
    flag("date", "YYYY-MM-DD", "the request's UTC day [default: today]"),
    flag("pricing", "FILE", "a --pricing file over the built-in table"),
];

/// Flags of `prices check` (the file is the argument).
pub const PRICES_CHECK_FLAGS: &[FlagSpec] = &[];

/// Parsed command-line flags: name to values (switches get "true").
#[derive(Debug, Default, Clone)]
pub struct Args {
    values: HashMap<String, Vec<String>>,
}

impl Args {
    /// Parses `--name value`, `--name=value` and switches against `specs`.
    pub fn parse(specs: &[FlagSpec], argv: &[String]) -> Result<Args, ConfigError> {
        let mut values: HashMap<String, Vec<String>> = HashMap::new();
        let mut i = 0;
        while i < argv.len() {
            let a = &argv[i];
            let Some(body) = a.strip_prefix("--") else {
                return Err(ConfigError::new(
                    "",
                    format!("unexpected argument `{a}` (flags start with --; see --help)"),
                ));
            };
            let (name, inline) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (body, None),
            };
            let spec = specs
                .iter()
                .find(|s| s.name == name)
                .ok_or_else(|| ConfigError::new(name, "unknown flag (see --help)"))?;
            let v = match (spec.value, inline) {
                (None, None) => "true".to_string(),
                (None, Some(v)) => v,
                (Some(_), Some(v)) => v,
                (Some(meta), None) => {
                    i += 1;
                    argv.get(i)
                        .cloned()
                        .ok_or_else(|| ConfigError::new(name, format!("needs a value ({meta})")))?
                }
            };
            values.entry(name.to_string()).or_default().push(v);
            i += 1;
        }
        Ok(Args { values })
    }

    pub fn all(&self, name: &str) -> &[String] {
        self.values.get(name).map_or(&[], Vec::as_slice)
    }
}

/// Looks a flag up in: command line, then `LLMOPS_<FLAG>`, then the TOML file.
pub struct Sources<'a> {
    args: &'a Args,
    env: &'a dyn Fn(&str) -> Option<String>,
    file: Option<toml::Table>,
}

/// `usage-dir` → `LLMOPS_USAGE_DIR`.
pub fn env_name(flag: &str) -> String {
    format!("LLMOPS_{}", flag.replace('-', "_").to_ascii_uppercase())
}

impl<'a> Sources<'a> {
    pub fn new(args: &'a Args, env: &'a dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut s = Sources { args, env, file: None };
        if let Some(path) = s.get("config") {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| ConfigError::new("config", format!("cannot read {path}: {e}")))?;
            let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
                ConfigError::new("config", format!("{path} is not valid TOML: {}", e.message()))
            })?;
            s.file = Some(table);
        }
        Ok(s)
    }

    /// The value of `flag`, from the first source that has it.
    pub fn get(&self, flag: &str) -> Option<String> {
        if let Some(v) = self.args.all(flag).last() {
            return Some(v.clone());
        }
        if let Some(v) = (self.env)(&env_name(flag)) {
            return Some(v);
        }
        let file = self.file.as_ref()?;
        let v = file.get(flag).or_else(|| file.get(&flag.replace('-', "_")))?;
        Some(match v {
            toml::Value::String(s) => s.clone(),
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Float(f) => f.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            _ => return None,
        })
    }

    pub fn parse_num<T: std::str::FromStr>(&self, flag: &str, default: T) -> Result<T, ConfigError> {
        match self.get(flag) {
            None => Ok(default),
            Some(v) => v
                .trim()
                .parse()
                .map_err(|_| ConfigError::new(flag, format!("`{v}` is not a valid number"))),
        }
    }

    pub fn secs(&self, flag: &str, default: u64) -> Result<Duration, ConfigError> {
        let n: u64 = self.parse_num(flag, default)?;
        if n == 0 {
            return Err(ConfigError::new(flag, "must be at least 1 second"));
        }
        Ok(Duration::from_secs(n))
    }

    pub fn switch(&self, flag: &str) -> Result<bool, ConfigError> {
        match self.get(flag).as_deref() {
            None => Ok(false),
            Some("true" | "1" | "yes") => Ok(true),
            Some("false" | "0" | "no") => Ok(false),
            Some(v) => Err(ConfigError::new(flag, format!("`{v}` is not true or false"))),
        }
    }

    pub fn addr(&self, flag: &str, default: &str) -> Result<SocketAddr, ConfigError> {
        let v = self.get(flag).unwrap_or_else(|| default.to_string());
        v.parse()
            .map_err(|_| ConfigError::new(flag, format!("`{v}` is not an IP:PORT address (e.g. 127.0.0.1:8080)")))
    }

    pub fn path(&self, flag: &str) -> Result<Option<PathBuf>, ConfigError> {
        match self.get(flag) {
            None => Ok(None),
            Some(v) if v.is_empty() => Err(ConfigError::new(flag, "empty path")),
            Some(v) => Ok(Some(PathBuf::from(v))),
        }
    }

    /// A path that must name a readable file.
    pub fn file(&self, flag: &str) -> Result<Option<PathBuf>, ConfigError> {
        let p = self.path(flag)?;
        if let Some(p) = &p {
            if let Err(e) = std::fs::metadata(p) {
                return Err(ConfigError::new(flag, format!("cannot read {}: {e}", p.display())));
            }
        }
        Ok(p)
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Upstream timeouts.
#[derive(Debug, Clone, Copy)]
pub struct UpstreamTimeouts {
    pub connect: Duration,
    pub tls: Duration,
    pub ttfb: Duration,
    pub total: Duration,
}

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
    pub endpoint: Endpoint,
    pub upstream_ca: Option<PathBuf>,
    pub timeouts: UpstreamTimeouts,
    pub max_body_bytes: usize,
    pub keys: Option<PathBuf>,
    pub pricing: Option<PathBuf>,
    pub budgets: Option<PathBuf>,
    /// `redis://HOST:PORT[/DB]`.
    pub budget_store: Option<crate::budget::store::RedisUrl>,
    pub drain_timeout: Duration,
    pub log_format: LogFormat,
    /// One structured access-log line per request (from the writer thread).
    pub access_log: bool,
    pub geo: GeoRules,
    pub require_tls: bool,
}

pub fn log_format(s: &Sources<'_>) -> Result<LogFormat, ConfigError> {
    match s.get("log-format").as_deref() {
        None | Some("text") => Ok(LogFormat::Text),
        Some("json") => Ok(LogFormat::Json),
        Some(v) => Err(ConfigError::new("log-format", format!("`{v}` is not `text` or `json`"))),
    }
}

impl ServeConfig {
    pub fn from_sources(s: &Sources<'_>) -> Result<Self, ConfigError> {
        let listen = match s.get("listen").as_deref() {
            Some("none" | "off") => None,
            _ => Some(s.addr("listen", "0.0.0.0:8080")?),
        };
        let listen_tls = match s.get("listen-tls") {
            None => None,
            Some(_) => Some(s.addr("listen-tls", "")?),
        };
        let tls_cert = s.file("tls-cert")?;
        let tls_key = s.file("tls-key")?;
        let client_ca = s.file("client-ca")?;
        match (&listen_tls, &tls_cert, &tls_key) {
            (Some(_), None, _) => {
                return Err(ConfigError::new(
                    "tls-cert",
                    "--listen-tls needs --tls-cert and --tls-key",
                ))
            }
            (Some(_), _, None) => {
                return Err(ConfigError::new(
                    "tls-key",
                    "--listen-tls needs --tls-cert and --tls-key",
                ))
            }
            (None, Some(_), _) | (None, _, Some(_)) => {
                return Err(ConfigError::new(
                    "listen-tls",
                    "--tls-cert/--tls-key need --listen-tls ADDR",
                ))
            }
            _ => {}
        }
        if client_ca.is_some() && listen_tls.is_none() {
            return Err(ConfigError::new("client-ca", "mutual TLS needs --listen-tls ADDR"));
        }
        if listen.is_none() && listen_tls.is_none() {
            return Err(ConfigError::new(
                "listen",
                "no listener: give --listen ADDR and/or --listen-tls ADDR",
            ));
        }
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let threads: usize = s.parse_num("threads", cores)?;
        if threads == 0 || threads > 1024 {
            return Err(ConfigError::new("threads", "must be between 1 and 1024"));
        }
        let endpoint = match s.get("upstream-endpoint") {
            None => Endpoint::aws_default(),
            Some(url) => Endpoint::parse(&url).map_err(|e| ConfigError::new("upstream-endpoint", e))?,
        };
        let max_body_bytes: usize = s.parse_num("max-body-bytes", DEFAULT_MAX_BODY_BYTES)?;
        if max_body_bytes == 0 {
            return Err(ConfigError::new("max-body-bytes", "must be at least 1"));
        }
        let roll_rows: usize = s.parse_num("roll-rows", 1_000_000)?;
        if roll_rows == 0 {
            return Err(ConfigError::new("roll-rows", "must be at least 1"));
        }
        let mut geo = GeoRules::default();
        if let Some(list) = s.get("geo-providers") {
            geo.providers = list
                .split(',')
                .map(|p| p.trim().to_string())
                .filter(|p| !p.is_empty())
                .collect();
        }
        let require_tls = s.switch("require-tls")?;
        if let (true, Some(l)) = (require_tls, listen) {
            if !l.ip().is_loopback() {
                return Err(ConfigError::new(
                    "require-tls",
                    format!("refusing to serve plain HTTP on non-loopback {l}: AWS secrets would cross the network in clear text; use --listen-tls, --listen 127.0.0.1:PORT or --listen none"),
                ));
            }
        }
        Ok(ServeConfig {
            listen,
            listen_tls,
            tls_cert,
            tls_key,
            client_ca,
            threads,
            usage_dir: s.path("usage-dir")?.unwrap_or_else(|| PathBuf::from("./usage")),
            roll_interval: s.secs("roll-interval", 60)?,
            roll_rows,
            endpoint,
            upstream_ca: s.file("upstream-ca")?,
            timeouts: UpstreamTimeouts {
                connect: s.secs("upstream-connect-timeout", 5)?,
                tls: s.secs("upstream-tls-timeout", 10)?,
                ttfb: s.secs("upstream-ttfb-timeout", 60)?,
                total: s.secs("upstream-timeout", 900)?,
            },
            max_body_bytes,
            keys: s.file("keys")?,
            pricing: s.file("pricing")?,
            budgets: s.file("budgets")?,
            budget_store: match s.get("budget-store") {
                None => None,
                Some(u) => {
                    Some(crate::budget::store::RedisUrl::parse(&u).map_err(|e| ConfigError::new("budget-store", e))?)
                }
            },
            drain_timeout: s.secs("drain-timeout", 30)?,
            log_format: log_format(s)?,
            access_log: match s.get("access-log").as_deref() {
                None | Some("on" | "true" | "1") => true,
                Some("off" | "false" | "0") => false,
                Some(v) => return Err(ConfigError::new("access-log", format!("`{v}` is not on or off"))),
            },
            geo: geo.sorted(),
            require_tls,
        })
    }
}

/// `--help` text for a subcommand.
pub fn help(cmd: &str, about: &str, specs: &[FlagSpec]) -> String {
    let mut out = format!("llmops-proxy {cmd}: {about}\n\nFlags (each also read from LLMOPS_<FLAG> and from --config's TOML keys; flags win):\n");
    for s in specs {
        let left = match s.value {
            Some(v) => format!("--{} {v}", s.name),
            None => format!("--{}", s.name),
        };
        out.push_str(&format!("  {left:<34} {}\n", s.help));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn precedence_and_errors() {
        let args = Args::parse(SERVE_FLAGS, &argv(&["--listen", "127.0.0.1:9", "--threads=3"])).unwrap();
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

        let bad = Args::parse(SERVE_FLAGS, &argv(&["--threads", "x"])).unwrap();
        let none = |_: &str| None;
        let e = ServeConfig::from_sources(&Sources::new(&bad, &none).unwrap()).unwrap_err();
        assert_eq!(e.flag, "threads");
        assert!(Args::parse(SERVE_FLAGS, &argv(&["--nope"])).is_err());
        let rt = Args::parse(SERVE_FLAGS, &argv(&["--require-tls", "--listen", "0.0.0.0:1"])).unwrap();
        assert_eq!(
            ServeConfig::from_sources(&Sources::new(&rt, &none).unwrap())
                .unwrap_err()
                .flag,
            "require-tls"
        );
    }
}
