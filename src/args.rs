//! Command-line flags, `LLMOPS_<FLAG>` environment variables and a TOML file (`--config`),
//! in that order of precedence, for every subcommand; each subcommand declares its own
//! flags ([`FlagSpec`]) beside the configuration they build. A bad value is reported with
//! the flag that carries it ([`ConfigError`], exit code 2).

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

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

pub const fn flag(name: &'static str, value: &'static str, help: &'static str) -> FlagSpec {
    FlagSpec {
        name,
        value: Some(value),
        help,
    }
}

pub const fn switch(name: &'static str, help: &'static str) -> FlagSpec {
    FlagSpec {
        name,
        value: None,
        help,
    }
}

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

    /// A duration: `250ms`, `2s`, or a bare number of seconds; zero allowed.
    pub fn duration(&self, flag: &str, default: Duration) -> Result<Duration, ConfigError> {
        let Some(v) = self.get(flag) else { return Ok(default) };
        let t = v.trim();
        let (num, scale_ms) = if let Some(n) = t.strip_suffix("ms") {
            (n, 1)
        } else if let Some(n) = t.strip_suffix('s') {
            (n, 1000)
        } else {
            (t, 1000)
        };
        num.trim()
            .parse::<u64>()
            .ok()
            .and_then(|n| n.checked_mul(scale_ms))
            .map(Duration::from_millis)
            .ok_or_else(|| ConfigError::new(flag, format!("`{v}` is not a duration (e.g. 200ms, 2s)")))
    }

    /// A size in bytes: a number, optionally with `KiB`, `MiB` or `GiB` (or `K`, `M`, `G`).
    pub fn bytes(&self, flag: &str, default: u64) -> Result<u64, ConfigError> {
        let Some(v) = self.get(flag) else { return Ok(default) };
        let t = v.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let scale: u64 = match unit.trim() {
            "" => 1,
            "K" | "KiB" => 1 << 10,
            "M" | "MiB" => 1 << 20,
            "G" | "GiB" => 1 << 30,
            _ => 0,
        };
        num.parse::<u64>()
            .ok()
            .and_then(|n| n.checked_mul(scale))
            .filter(|_| scale > 0)
            .ok_or_else(|| ConfigError::new(flag, format!("`{v}` is not a size (e.g. 2GiB, 512MiB, 1048576)")))
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

pub fn log_format(s: &Sources<'_>) -> Result<LogFormat, ConfigError> {
    match s.get("log-format").as_deref() {
        None | Some("text") => Ok(LogFormat::Text),
        Some("json") => Ok(LogFormat::Json),
        Some(v) => Err(ConfigError::new("log-format", format!("`{v}` is not `text` or `json`"))),
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
