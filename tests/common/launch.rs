//! Starting the binary: one builder for the mock and the proxy (plain or TLS, any flags,
//! any environment). A started child is a [`Proc`]: its stderr is collected, and it is
//! killed when dropped, so a failing test leaves no process behind.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{AKID, BIN, SECRET, SESSION_TOKEN, TOKEN_AKID, TOKEN_SECRET};

/// A child process whose stderr is collected.
pub struct Proc {
    pub child: Child,
    pub addr: SocketAddr,
    pub log: Arc<Mutex<String>>,
}

impl Proc {
    pub fn logs(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Sends SIGTERM and waits for exit; returns the exit code.
    pub fn terminate(&mut self) -> Option<i32> {
        unsafe { libc_kill(self.child.id() as i32, 15) };
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                return st.code();
            }
            if Instant::now() > until {
                let _ = self.child.kill();
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn signal(&self, sig: i32) {
        unsafe { libc_kill(self.child.id() as i32, sig) };
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

/// What to start.
pub struct Launch {
    args: Vec<String>,
    env: Vec<(String, String)>,
    /// The log line that announces the address (`listening addr=`).
    marker: &'static str,
    /// A program the binary runs under, and its arguments before the binary's path.
    under: Option<(String, Vec<String>)>,
}

impl Launch {
    /// The mock upstream on a free loopback port, accepting the test credentials.
    pub fn mock() -> Launch {
        let plain = format!("{AKID}:{SECRET}");
        let tok = format!("{TOKEN_AKID}:{TOKEN_SECRET}:{SESSION_TOKEN}");
        Launch {
            args: vec![
                "mock-upstream".into(),
                "--listen".into(),
                "127.0.0.1:0".into(),
                "--credential".into(),
                plain,
                "--credential".into(),
                tok,
            ],
            env: Vec::new(),
            marker: "mock_listening addr=",
            under: None,
        }
    }

    /// The proxy (one shard) on a free loopback port in front of `endpoint`
    /// (`http://127.0.0.1:PORT`), writing usage under `usage_dir`, with a 16 MiB journal
    /// (1 MiB segments: a test killed with its journal on disk leaves little behind).
    pub fn proxy_url(endpoint: &str, usage_dir: &Path) -> Launch {
        Launch {
            args: vec![
                "serve".into(),
                "--listen".into(),
                "127.0.0.1:0".into(),
                "--threads".into(),
                "1".into(),
                "--upstream-endpoint".into(),
                endpoint.into(),
                "--usage-dir".into(),
                usage_dir.display().to_string(),
                "--ledger-max-bytes".into(),
                "16MiB".into(),
            ],
            env: Vec::new(),
            marker: "listening addr=",
            under: None,
        }
    }

    /// The proxy in front of a plain-HTTP upstream at `upstream`.
    pub fn proxy(upstream: SocketAddr, usage_dir: &Path) -> Launch {
        Launch::proxy_url(&format!("http://{upstream}"), usage_dir)
    }

    /// Serves TLS with `chain` and `key`: the mock on its one listener; the proxy on a
    /// TLS listener only (`addr` is then the TLS address).
    pub fn tls(mut self, chain: &Path, key: &Path) -> Launch {
        let (c, k) = (chain.display().to_string(), key.display().to_string());
        if self.args[0] == "serve" {
            self = self.args(&["--listen", "none", "--listen-tls", "127.0.0.1:0"]);
            self.marker = "listening_tls addr=";
        }
        self.args(&["--tls-cert", &c, "--tls-key", &k])
    }

    /// More flags (later ones win).
    pub fn args(mut self, extra: &[&str]) -> Launch {
        self.args.extend(extra.iter().map(|a| a.to_string()));
        self
    }

    /// An environment variable for the child.
    pub fn env(mut self, k: &str, v: &str) -> Launch {
        self.env.push((k.into(), v.into()));
        self
    }

    /// Runs the binary under `program`: `program PREFIX... BIN FLAGS...` (for example
    /// `unshare -m sh -c SCRIPT sh`). The child is then `program`.
    pub fn under(mut self, program: &str, prefix: &[&str]) -> Launch {
        self.under = Some((program.into(), prefix.iter().map(|a| a.to_string()).collect()));
        self
    }

    /// Starts the child and waits for it to listen.
    pub fn start(self) -> Proc {
        match spawn_inner(&self) {
            Ok(p) => p,
            Err(log) => panic!("process did not start: {:?}\n{log}", self.args),
        }
    }

    /// Starts the child, retrying while its address is still taken (a restart on the same
    /// port).
    pub fn start_retrying(self, tries: usize) -> Proc {
        for _ in 1..tries {
            if let Some(p) = try_spawn(&self) {
                return p;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        self.start()
    }
}

fn try_spawn(l: &Launch) -> Option<Proc> {
    spawn_inner(l).ok()
}

fn spawn_inner(l: &Launch) -> Result<Proc, String> {
    let marker = l.marker;
    let mut cmd = match &l.under {
        None => Command::new(BIN),
        Some((program, prefix)) => {
            let mut c = Command::new(program);
            c.args(prefix).arg(BIN);
            c
        }
    };
    cmd.args(&l.args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in &l.env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn binary");
    let stderr = child.stderr.take().unwrap();
    let log = Arc::new(Mutex::new(String::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    let l2 = log.clone();
    // Text logs say `listening addr=A`; JSON logs say `"event":"listening","addr":"A"`.
    let event = marker.split(' ').next().unwrap_or("").to_string();
    let markers = [marker.to_string(), format!("\"event\":\"{event}\",\"addr\":\"")];
    std::thread::spawn(move || {
        let mut r = BufReader::new(stderr);
        let mut line = String::new();
        let mut sent = false;
        while r.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
            l2.lock().unwrap().push_str(&line);
            if !sent {
                if let Some((p, marker)) = markers.iter().find_map(|m| line.find(m.as_str()).map(|p| (p, m))) {
                    let rest = &line[p + marker.len()..];
                    let addr: String = rest.chars().take_while(|c| !c.is_whitespace() && *c != '"').collect();
                    if let Ok(a) = addr.parse::<SocketAddr>() {
                        let _ = tx.send(a);
                        sent = true;
                    }
                }
            }
            line.clear();
        }
    });
    let addr = match rx.recv_timeout(Duration::from_secs(20)) {
        Ok(a) => a,
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(log.lock().unwrap().clone());
        }
    };
    Ok(Proc { child, addr, log })
}

/// The mock with the test credentials.
pub fn mock() -> Proc {
    Launch::mock().start()
}

/// The mock with extra flags (plain HTTP).
pub fn mock_with(extra: &[&str]) -> Proc {
    Launch::mock().args(extra).start()
}

/// The mock serving TLS with `chain`/`key`, plus extra flags.
pub fn mock_tls(chain: &Path, key: &Path, extra: &[&str]) -> Proc {
    Launch::mock().tls(chain, key).args(extra).start()
}

/// The proxy against `upstream` with extra flags (two shards unless `extra` says).
pub fn proxy(upstream: SocketAddr, usage_dir: &Path, extra: &[&str]) -> Proc {
    Launch::proxy(upstream, usage_dir)
        .args(&["--threads", "2"])
        .args(extra)
        .start()
}

/// The proxy with a custom endpoint URL (one shard unless `extra` says).
pub fn proxy_url(endpoint: &str, usage_dir: &Path, extra: &[&str]) -> Proc {
    Launch::proxy_url(endpoint, usage_dir).args(extra).start()
}

/// The proxy with only a TLS listener (two shards); `addr` is the TLS address.
pub fn proxy_tls(upstream: SocketAddr, usage_dir: &Path, chain: &Path, key: &Path, extra: &[&str]) -> Proc {
    Launch::proxy(upstream, usage_dir)
        .args(&["--threads", "2"])
        .tls(chain, key)
        .args(extra)
        .start()
}

/// A fresh usage directory under the target dir.
pub fn temp_dir(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}-{}", std::process::id(), nanos()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}
