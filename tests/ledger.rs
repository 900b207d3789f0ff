//! The usage ledger's promises, through the binary: `kill -9` under load and right after
//! the last answer loses no answered request's row and duplicates none; torn and
//! corrupt journal records are skipped with a log line; a full disk (a real tmpfs when
//! mount namespaces are available, else injected ENOSPC) keeps rows and refuses at the
//! bound, then writes everything once space returns; `--on-ledger-full=serve` counts
//! what it could not keep; injected rename, fsync, write and checkpoint failures are
//! retried without loss or duplicates; damaged Parquet files are skipped by `report` and
//! quarantined at start-up; leftovers of a version without the journal are recovered.

// A test: a failed expectation is a failed test.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use std::collections::HashMap;
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::*;
use llmops_proxy::usage::journal::codec::{decode, next_frame, Record};
use llmops_proxy::usage::journal::segment::HEADER_BYTES;
use llmops_proxy::usage::read::{list_files, read_dir};

const MODEL: &str = "amazon.nova-lite-v1:0";

/// One call on its own connection; `None` unless the whole answer arrived.
fn try_call(addr: SocketAddr, stream: bool, n: usize) -> Option<Resp> {
    let op = if stream { "converse-stream" } else { "converse" };
    let b = body(&format!("ledger #{n}"));
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    s.write_all(&request(&format!("/bedrock/model/{MODEL}/{op}"), &good_headers(), &b))
        .ok()?;
    read_response(&mut s, &mut Vec::new())
}

/// An answer received whole: request id, status, error code.
type Answer = (String, u16, Option<String>);

/// Clients calling in a loop (converse and streams) until stopped; each remembers the
/// request id and status of every answer it received whole.
struct Load {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<Vec<Answer>>>,
}

impl Load {
    fn start(addr: SocketAddr, clients: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..clients)
            .map(|c| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let mut got = Vec::new();
                    let mut n = 0;
                    while !stop.load(Ordering::Relaxed) {
                        n += 1;
                        match try_call(addr, (c + n) % 3 == 0, n) {
                            Some(r) => {
                                let id = r.header("x-request-id").unwrap_or_default().to_string();
                                got.push((id, r.status, r.code()));
                            }
                            None => std::thread::sleep(Duration::from_millis(5)),
                        }
                    }
                    got
                })
            })
            .collect();
        Load { stop, threads }
    }

    fn stop(self) -> Vec<Answer> {
        self.stop.store(true, Ordering::Relaxed);
        self.threads.into_iter().flat_map(|t| t.join().unwrap()).collect()
    }
}

/// Request id → rows with it, from every published file.
fn row_counts(dir: &Path) -> HashMap<String, usize> {
    let mut m = HashMap::new();
    for r in read_dir(dir).unwrap() {
        *m.entry(r.request_id).or_default() += 1;
    }
    m
}

/// Every answered id has exactly one row, and no id has two.
fn assert_exactly_once(dir: &Path, answered: &[String]) {
    let counts = row_counts(dir);
    let dupes: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(dupes.is_empty(), "duplicate rows: {dupes:?}");
    let missing: Vec<_> = answered.iter().filter(|id| !counts.contains_key(*id)).collect();
    assert!(
        missing.is_empty(),
        "{} of {} answered requests have no row, e.g. {:?}",
        missing.len(),
        answered.len(),
        &missing[..missing.len().min(5)]
    );
}

fn metric(addr: SocketAddr, name: &str) -> f64 {
    Metrics::scrape(addr).get(name).unwrap_or(-1.0)
}

#[test]
fn kill_9_under_load_and_right_after_the_last_answer_loses_no_answered_row() {
    let m = mock();
    let dir = temp_dir("ledger-kill");
    let p = proxy(m.addr, &dir, &[]);
    let load = Load::start(p.addr, 4);
    assert!(wait_for(Duration::from_secs(20), || metric(
        p.addr,
        "llmops_usage_rows_read_total"
    ) >= 200.0));
    p.signal(9);
    let mut answered: Vec<String> = load.stop().into_iter().map(|(id, ..)| id).collect();
    assert!(answered.len() >= 200, "{} answers", answered.len());
    drop(p);

    // Restart: recovery replays the journal; then one answer and kill -9 at once.
    let p2 = proxy(m.addr, &dir, &[]);
    assert!(p2.logs().contains("ledger_recovered"), "{}", p2.logs());
    assert!(metric(p2.addr, "llmops_ledger_recovered_rows_total") > 0.0);
    let last = converse(p2.addr, MODEL, &good_headers(), &body("the last one"));
    assert_eq!(last.status, 200);
    let last_id = last.header("x-request-id").unwrap().to_string();
    p2.signal(9);
    drop(p2);
    answered.push(last_id.clone());

    let mut p3 = proxy(m.addr, &dir, &[]);
    assert_eq!(p3.terminate(), Some(0));
    assert_exactly_once(&dir, &answered);
    let rows = read_dir(&dir).unwrap();
    let r = rows.iter().find(|r| r.request_id == last_id).unwrap();
    assert_eq!(r.status, 200);
    assert!(r.cost_pico_usd.is_some_and(|c| c > 0) && r.latency_ms > 0.0, "{r:?}");
    // Nothing is left behind: no partial files, the journal emptied at the clean stop.
    let stray: Vec<_> = walk(&dir)
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with(".inprogress") || p.extension().is_some_and(|e| e == "seg"))
        .collect();
    assert!(stray.is_empty(), "{stray:?}");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// The journal's records in one segment file: (offset, request id of a row or `None`).
fn frames(bytes: &[u8]) -> (Vec<(usize, Option<String>)>, usize) {
    let mut at = HEADER_BYTES;
    let mut out = Vec::new();
    while let Ok(Some((payload, next))) = next_frame(bytes, at) {
        let id = match decode(payload).unwrap() {
            Record::Row { rec, .. } => Some(rec.request_id),
            Record::End { .. } => None,
        };
        out.push((at, id));
        at = next;
    }
    (out, at)
}

#[test]
fn torn_and_corrupt_journal_records_are_skipped_with_a_log_line() {
    let m = mock();
    let dir = temp_dir("ledger-torn");
    let p = proxy(m.addr, &dir, &["--threads", "1"]);
    let ids: Vec<String> = (0..5)
        .map(|i| {
            let r = converse(p.addr, MODEL, &good_headers(), &body(&format!("t{i}")));
            assert_eq!(r.status, 200);
            r.header("x-request-id").unwrap().to_string()
        })
        .collect();
    p.signal(9);
    drop(p);
    let seg = walk(&dir.join("_journal"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .find(|p| {
            let b = std::fs::read(p).unwrap();
            !frames(&b).0.is_empty()
        })
        .expect("a segment with records");
    let mut bytes = std::fs::read(&seg).unwrap();
    let (records, end) = frames(&bytes);
    let third = records
        .iter()
        .find(|(_, id)| id.as_deref() == Some(ids[2].as_str()))
        .unwrap()
        .0;
    bytes[third + 40] ^= 0x5a;
    // A torn tail: a length written with a payload that never made it to disk.
    bytes[end..end + 4].copy_from_slice(&200u32.to_le_bytes());
    std::fs::write(&seg, &bytes).unwrap();

    let mut p2 = proxy(m.addr, &dir, &["--threads", "1"]);
    let logs = p2.logs();
    assert_eq!(logs.matches("journal_record_skipped").count(), 2, "{logs}");
    assert!(logs.contains("record checksum mismatch"), "{logs}");
    assert!(metric(p2.addr, "llmops_ledger_skipped_records_total") == 2.0);
    assert_eq!(converse(p2.addr, MODEL, &good_headers(), &body("after")).status, 200);
    assert_eq!(p2.terminate(), Some(0));
    let counts = row_counts(&dir);
    for (i, id) in ids.iter().enumerate() {
        let want = usize::from(i != 2);
        assert_eq!(counts.get(id).copied().unwrap_or(0), want, "row {i}");
    }
}

/// How the test fills the proxy's disk.
enum Disk {
    /// A 48 MiB tmpfs in the proxy's own mount namespace, filled with a file; `pidfile`
    /// names the proxy (the child is the shell around it).
    Tmpfs { root: PathBuf, pidfile: PathBuf },
    /// `LLMOPS_FAULTS=full=FLAG`: ENOSPC while the flag file exists.
    Injected { flag: PathBuf },
}

impl Drop for Disk {
    /// The proxy under the shell is not the test's child: a failing test kills it here.
    fn drop(&mut self) {
        if let Disk::Tmpfs { pidfile, .. } = self {
            if let Some(pid) = std::fs::read_to_string(&*pidfile)
                .ok()
                .and_then(|p| p.trim().parse::<i32>().ok())
            {
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    }
}

impl Disk {
    fn fill(&self) {
        match self {
            Disk::Tmpfs { root, .. } => {
                let mut f = std::fs::File::create(root.join("filler")).unwrap();
                let chunk = vec![7u8; 1 << 20];
                while f.write_all(&chunk).is_ok() {}
                let _ = f.flush();
            }
            Disk::Injected { flag } => std::fs::write(flag, b"").unwrap(),
        }
    }

    fn free(&self) {
        match self {
            Disk::Tmpfs { root, .. } => std::fs::remove_file(root.join("filler")).unwrap(),
            Disk::Injected { flag } => std::fs::remove_file(flag).unwrap(),
        }
    }
}

/// Whether this machine lets the test mount a tmpfs in a private mount namespace
/// (`LLMOPS_TEST_NO_TMPFS=1` takes the injected path anyway).
fn can_mount_tmpfs() -> bool {
    if std::env::var_os("LLMOPS_TEST_NO_TMPFS").is_some() {
        return false;
    }
    let probe = temp_dir("ledger-probe");
    Command::new("unshare")
        .args([
            "-m",
            "sh",
            "-c",
            "mount -t tmpfs -o size=1m tmpfs \"$0\"",
            &probe.display().to_string(),
        ])
        .status()
        .is_ok_and(|s| s.success())
}

/// The proxy with a 1 MiB journal bound on one shard, usage in `usage`, on `disk`.
/// Under tmpfs the usage directory is copied out to `out` when the proxy exits.
fn full_disk_proxy(m: SocketAddr, base: &Path, policy: &str) -> (Proc, Disk, PathBuf, PathBuf) {
    let usage = base.join("usage");
    let out = base.join("out");
    std::fs::create_dir_all(&usage).unwrap();
    let l = Launch::proxy(m, &usage).args(&[
        "--threads",
        "1",
        "--ledger-max-bytes",
        "1MiB",
        "--roll-interval",
        "1",
        "--on-ledger-full",
        policy,
    ]);
    if can_mount_tmpfs() {
        std::fs::create_dir_all(&out).unwrap();
        // The proxy runs in the background so the script can copy its files out of the
        // namespace's tmpfs after it exits; its pid goes to a file beside the tmpfs.
        let script = format!(
            "mount -t tmpfs -o size=48m tmpfs '{u}' || exit 97; \"$@\" & echo $! > '{u}.pid'; wait $!; rc=$?; cp -a '{u}/.' '{o}/'; exit $rc",
            u = usage.display(),
            o = out.display()
        );
        let p = l.under("unshare", &["-m", "sh", "-c", &script, "sh"]).start();
        let pidfile = PathBuf::from(format!("{}.pid", usage.display()));
        let pid = std::fs::read_to_string(&pidfile).unwrap();
        let root = PathBuf::from(format!("/proc/{}/root{}", pid.trim(), usage.display()));
        (p, Disk::Tmpfs { root, pidfile }, usage, out)
    } else {
        let flag = base.join("disk-full");
        let p = l.env("LLMOPS_FAULTS", &format!("full={}", flag.display())).start();
        (p, Disk::Injected { flag }, usage.clone(), usage)
    }
}

/// Stops the proxy cleanly (SIGTERM to the proxy itself, not its wrapper).
fn stop(p: &mut Proc, disk: &Disk) {
    if let Disk::Tmpfs { pidfile, .. } = disk {
        let pid: i32 = std::fs::read_to_string(pidfile).unwrap().trim().parse().unwrap();
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let until = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(st) = p.child.try_wait().unwrap() {
                break st;
            }
            assert!(Instant::now() < until, "the proxy did not stop");
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(
            status.success(),
            "the proxy (or the copy out of its tmpfs) failed: {status:?}"
        );
        // It is gone: nothing for the guard to kill (its pid may be reused).
        std::fs::remove_file(pidfile).unwrap();
    } else {
        assert_eq!(p.terminate(), Some(0));
    }
}

fn health(addr: SocketAddr) -> Resp {
    raw(addr, b"GET /healthz HTTP/1.1\r\nHost: p\r\n\r\n").unwrap()
}

#[test]
fn a_full_disk_keeps_rows_refuses_at_the_bound_and_writes_them_when_space_returns() {
    let m = mock();
    let base = temp_dir("ledger-full");
    let (mut p, disk, _usage, out) = full_disk_proxy(m.addr, &base, "refuse");
    let mode = match disk {
        Disk::Tmpfs { .. } => "tmpfs",
        Disk::Injected { .. } => "injected ENOSPC",
    };
    eprintln!("disk-full scenario on: {mode}");
    let mut ok: Vec<String> = Vec::new();
    for i in 0..20 {
        let r = try_call(p.addr, i % 2 == 0, i).unwrap();
        assert_eq!(r.status, 200);
        ok.push(r.header("x-request-id").unwrap().into());
    }
    disk.fill();
    let load = Load::start(p.addr, 3);
    // The state at the bound, taken at one moment (abandoned files free a little space,
    // so the journal may get room back for a while before it fills again).
    let mut at_bound = None;
    let refused = wait_for(Duration::from_secs(60), || {
        let s = Metrics::scrape(p.addr);
        let h = health(p.addr);
        let hit = h.status == 503
            && s.get("llmops_ledger_refused_requests_total") > Some(0.0)
            && s.get("llmops_usage_write_errors_total") > Some(0.0)
            && s.get("llmops_ledger_full_shards") == Some(1.0)
            && s.get("llmops_ledger_degraded") == Some(1.0)
            && p.logs().contains("No space left on device");
        if hit {
            at_bound = Some((h, s));
        }
        hit
    });
    let got = load.stop();
    assert!(refused, "the bound never engaged; {}", p.logs());
    let (h, s) = at_bound.unwrap();
    assert!(h.text().contains("ledger_full"), "{}", h.text());
    assert!(s.get("llmops_ledger_backlog_rows").unwrap() > 0.0);
    assert!(s.get("llmops_ledger_oldest_unwritten_seconds").unwrap() > 0.0);
    let logs = p.logs();
    assert!(
        logs.contains("usage_write_failed") && logs.contains("No space left on device"),
        "the failure is named: {logs}"
    );
    let mut unavailable = 0;
    for (id, status, code) in got {
        match status {
            200 => ok.push(id),
            503 => {
                assert_eq!(code.as_deref(), Some("LedgerUnavailable"));
                unavailable += 1;
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert!(unavailable > 0);

    disk.free();
    // Calls first: a refused call keeps its shard marked full until room returns.
    let mut resumed = Vec::new();
    assert!(
        wait_for(Duration::from_secs(90), || {
            let r = try_call(p.addr, false, 0);
            if let Some(r) = r.as_ref().filter(|r| r.status == 200) {
                resumed.push(r.header("x-request-id").unwrap().to_string());
            }
            r.is_some_and(|r| r.status == 200) && health(p.addr).status == 200
        }),
        "service did not resume: {}",
        p.logs()
    );
    ok.extend(resumed);
    assert!(wait_for(Duration::from_secs(90), || metric(
        p.addr,
        "llmops_ledger_degraded"
    ) == 0.0));
    // Log lines reach stderr through the logger thread: the line may trail the metric.
    assert!(
        wait_for(Duration::from_secs(10), || p.logs().contains("usage_writes_resumed")),
        "{}",
        p.logs()
    );
    let r = try_call(p.addr, true, 99).unwrap();
    assert_eq!(r.status, 200);
    ok.push(r.header("x-request-id").unwrap().into());
    stop(&mut p, &disk);
    assert_exactly_once(&out, &ok);
    let rows = read_dir(&out).unwrap();
    assert!(
        rows.iter()
            .all(|r| r.error_type.as_deref() != Some("LedgerUnavailable")),
        "refused requests have no row"
    );
}

#[test]
fn on_ledger_full_serve_keeps_serving_and_counts_every_row_it_could_not_keep() {
    let m = mock();
    let base = temp_dir("ledger-serve");
    let usage = base.join("usage");
    let flag = base.join("disk-full");
    let mut p = Launch::proxy(m.addr, &usage)
        .args(&[
            "--threads",
            "1",
            "--ledger-max-bytes",
            "1MiB",
            "--on-ledger-full",
            "serve",
        ])
        .env("LLMOPS_FAULTS", &format!("full={}", flag.display()))
        .start();
    std::fs::write(&flag, b"").unwrap();
    let load = Load::start(p.addr, 3);
    let lost = wait_for(Duration::from_secs(60), || {
        metric(p.addr, "usage_records_dropped_total") > 0.0
    });
    // Serving goes on while rows are lost; health says why.
    let h = health(p.addr);
    let got = load.stop();
    assert!(lost, "no row was ever lost: {}", p.logs());
    assert_eq!(h.status, 200, "{}", h.text());
    assert!(h.text().contains("degraded"), "{}", h.text());
    assert!(got.iter().all(|(_, s, _)| *s == 200), "nothing is refused under serve");
    std::fs::remove_file(&flag).unwrap();
    assert!(wait_for(Duration::from_secs(90), || metric(
        p.addr,
        "llmops_ledger_degraded"
    ) == 0.0));
    let dropped = metric(p.addr, "usage_records_dropped_total") as usize;
    assert_eq!(p.terminate(), Some(0));
    let counts = row_counts(&usage);
    assert!(counts.values().all(|n| *n == 1));
    let kept = got.iter().filter(|(id, ..)| counts.contains_key(id)).count();
    assert_eq!(
        kept + dropped,
        got.len(),
        "every answered row is kept or counted as lost"
    );
}

#[test]
fn injected_rename_fsync_write_and_checkpoint_failures_are_retried_without_loss() {
    let m = mock();
    let dir = temp_dir("ledger-faults");
    let mut p = Launch::proxy(m.addr, &dir)
        .args(&["--threads", "2", "--roll-interval", "1"])
        .env("LLMOPS_FAULTS", "write=1@3,fsync=1@2,rename=2,checkpoint=1@1")
        .start();
    let mut ids = Vec::new();
    for i in 0..40 {
        let r = try_call(p.addr, i % 4 == 0, i).unwrap();
        assert_eq!(r.status, 200);
        ids.push(r.header("x-request-id").unwrap().to_string());
        std::thread::sleep(Duration::from_millis(60));
    }
    assert!(
        wait_for(Duration::from_secs(60), || metric(
            p.addr,
            "llmops_usage_rows_written_total"
        ) == 40.0),
        "{}",
        p.logs()
    );
    assert!(metric(p.addr, "llmops_usage_write_errors_total") >= 4.0, "{}", p.logs());
    assert_eq!(p.terminate(), Some(0));
    assert_exactly_once(&dir, &ids);
    assert_eq!(row_counts(&dir).len(), 40);
}

#[test]
fn kill_9_with_renames_failing_completes_them_at_the_next_start() {
    let m = mock();
    let dir = temp_dir("ledger-rename");
    let p = Launch::proxy(m.addr, &dir)
        .args(&["--roll-interval", "1"])
        .env("LLMOPS_FAULTS", "rename=1000000")
        .start();
    let ids: Vec<String> = (0..10)
        .map(|i| {
            let r = converse(p.addr, MODEL, &good_headers(), &body(&format!("r{i}")));
            r.header("x-request-id").unwrap().to_string()
        })
        .collect();
    // Checkpointed (the journal is retired) but never renamed into place.
    assert!(wait_for(Duration::from_secs(20), || p
        .logs()
        .contains("usage_publish_failed")));
    assert!(list_files(&dir).is_empty());
    p.signal(9);
    drop(p);
    let mut p2 = proxy(m.addr, &dir, &[]);
    assert!(!list_files(&dir).is_empty(), "the listed renames were completed");
    assert_eq!(p2.terminate(), Some(0));
    assert_exactly_once(&dir, &ids);
}

/// A usage directory with one good file (6 rows) written by the proxy.
fn good_dir(name: &str) -> (PathBuf, PathBuf) {
    let m = mock();
    let dir = temp_dir(name);
    let mut p = proxy(m.addr, &dir, &[]);
    for i in 0..6 {
        assert_eq!(
            converse(p.addr, MODEL, &good_headers(), &body(&format!("g{i}"))).status,
            200
        );
    }
    assert_eq!(p.terminate(), Some(0));
    let files = list_files(&dir);
    assert_eq!(files.len(), 1);
    (dir, files[0].clone())
}

fn report(dir: &Path) -> std::process::Output {
    Command::new(BIN)
        .args(["report", "--usage-dir", &dir.display().to_string()])
        .output()
        .unwrap()
}

#[test]
fn damaged_parquet_files_are_skipped_by_report_and_quarantined_at_start_up() {
    let (dir, good) = good_dir("ledger-bad-files");
    let part = good.parent().unwrap().to_path_buf();
    let bytes = std::fs::read(&good).unwrap();
    std::fs::write(part.join("h-1-truncated.parquet"), &bytes[..bytes.len() / 2]).unwrap();
    std::fs::write(part.join("h-2-junk.parquet"), b"PAR1 this is not parquet at all").unwrap();
    let old = dir.join("dt=2020-01-01");
    std::fs::create_dir_all(&old).unwrap();
    std::fs::write(old.join("h-3-old.parquet"), &bytes[..100]).unwrap();

    let out = report(&dir);
    assert!(out.status.success());
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(stdout.contains("6 rows from 1 Parquet file(s)"), "{stdout}");
    assert!(stdout.contains("3 damaged file(s) skipped"), "{stdout}");
    assert_eq!(stderr.matches("warning: skipped").count(), 3, "{stderr}");

    let m = mock();
    let mut p = proxy(m.addr, &dir, &[]);
    assert_eq!(metric(p.addr, "llmops_ledger_quarantined_files_total"), 2.0);
    assert_eq!(p.terminate(), Some(0));
    let q = dir.join("_quarantine");
    let mut names: Vec<String> = std::fs::read_dir(&q)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names.len(), 4, "{names:?}");
    assert!(names
        .iter()
        .all(|n| n.ends_with(".quarantined") || n.ends_with(".reason")));
    let reason = std::fs::read_to_string(
        q.join(
            names
                .iter()
                .find(|n| n.contains("junk") && n.ends_with(".reason"))
                .unwrap(),
        ),
    )
    .unwrap();
    assert!(reason.contains("unreadable Parquet"), "{reason}");
    // Only the old partition's damaged file is left for report to skip.
    let after = report(&dir);
    assert_eq!(
        String::from_utf8_lossy(&after.stderr)
            .matches("warning: skipped")
            .count(),
        1
    );
}

#[test]
fn leftovers_of_a_version_without_the_journal_are_recovered() {
    let (src, good) = good_dir("ledger-legacy-src");
    let dir = temp_dir("ledger-legacy");
    let part = dir.join(good.parent().unwrap().file_name().unwrap());
    std::fs::create_dir_all(&part).unwrap();
    std::fs::copy(&good, part.join(".old-1-1.parquet.inprogress")).unwrap();
    std::fs::write(part.join(".old-2-2.parquet.inprogress"), b"half a file").unwrap();
    let m = mock();
    let mut p = proxy(m.addr, &dir, &[]);
    assert!(p.logs().contains("usage_file_recovered"), "{}", p.logs());
    assert_eq!(metric(p.addr, "llmops_ledger_quarantined_files_total"), 1.0);
    assert_eq!(p.terminate(), Some(0));
    assert!(part.join("old-1-1.parquet").exists());
    assert_eq!(read_dir(&dir).unwrap().len(), 6);
    assert_eq!(row_counts(&dir), row_counts(&src));
}

#[test]
fn a_full_disk_at_start_up_defers_the_replay_and_loses_nothing() {
    let m = mock();
    let base = temp_dir("ledger-deferred");
    let usage = base.join("usage");
    let flag = base.join("disk-full");
    let p = proxy(m.addr, &usage, &[]);
    let load = Load::start(p.addr, 3);
    assert!(wait_for(Duration::from_secs(20), || metric(
        p.addr,
        "llmops_usage_rows_read_total"
    ) >= 100.0));
    p.signal(9);
    let mut answered: Vec<String> = load.stop().into_iter().map(|(id, ..)| id).collect();
    drop(p);

    // Back with one shard fewer (shard 1's segments have no shard to go with) on a full disk.
    std::fs::write(&flag, b"").unwrap();
    let mut p2 = Launch::proxy(m.addr, &usage)
        .args(&["--threads", "1", "--roll-interval", "1"])
        .env("LLMOPS_FAULTS", &format!("full={}", flag.display()))
        .start();
    assert!(p2.logs().contains("ledger_recovery_deferred"), "{}", p2.logs());
    let r = try_call(p2.addr, false, 0).unwrap();
    assert_eq!((r.status, r.code().as_deref()), (503, Some("LedgerUnavailable")));
    assert!(health(p2.addr).text().contains("ledger_full"));
    std::fs::remove_file(&flag).unwrap();
    let mut later = None;
    assert!(wait_for(Duration::from_secs(60), || {
        later = try_call(p2.addr, true, 1).filter(|r| r.status == 200);
        later.is_some()
    }));
    answered.push(later.unwrap().header("x-request-id").unwrap().to_string());
    assert!(
        wait_for(Duration::from_secs(60), || metric(
            p2.addr,
            "llmops_usage_rows_written_total"
        ) >= answered.len() as f64),
        "{}",
        p2.logs()
    );
    assert!(metric(p2.addr, "llmops_ledger_recovered_rows_total") >= (answered.len() - 1) as f64);
    assert_eq!(p2.terminate(), Some(0));
    assert_exactly_once(&usage, &answered);
    let left: Vec<_> = walk(&usage.join("_journal"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}
