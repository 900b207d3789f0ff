//! The live cost dashboard on the admin listener: `GET /dashboard` (one self-contained
//! page, `page.html`: inline CSS, script and SVG, nothing fetched from elsewhere) and the
//! JSON it reads under `/api/` (`query`). Everything is computed off the shards, on the
//! dashboard's own thread, from one aggregate (`cube`): the Parquet files that existed
//! when the proxy started, read once in the background, plus every row the writer thread
//! observes from then on (so a row is visible within one writer tick, and no file is read
//! twice or a row counted twice: this process's rows reach the cube only through the
//! writer). A shard hands an API request over a bounded queue and polls for the answer
//! ([`POLL_INTERVAL`]); the page itself is static bytes.

pub mod cube;
pub mod query;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::usage::UsageRecord;
use crate::util::snapshot::lock;
use cube::Cube;

/// The page.
pub const PAGE: &str = include_str!("page.html");
/// API requests waiting for the dashboard thread; more are answered 503 at once.
pub const MAX_QUEUED: usize = 64;
/// How often a shard looks whether its API answer is ready.
pub const POLL_INTERVAL: Duration = Duration::from_millis(2);
/// Longest a shard waits for an API answer before answering 503.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the dashboard thread folds the live rows in when no request comes.
const FOLD_INTERVAL: Duration = Duration::from_millis(500);

/// An API answer.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

/// Where the dashboard thread leaves an answer.
#[derive(Default)]
pub struct Slot(Mutex<Option<Answer>>);

impl Slot {
    /// The answer, once it is there.
    pub fn take(&self) -> Option<Answer> {
        lock(&self.0).take()
    }
}

struct Job {
    /// Path and query of the request (`/api/groups?by=agent`).
    target: String,
    slot: Arc<Slot>,
}

/// The dashboard: its queue and the live rows the writer adds.
pub struct Dashboard {
    jobs: crossbeam_channel::Sender<Job>,
    live: Arc<Mutex<Cube>>,
}

/// Why an API request was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy;

impl Dashboard {
    /// Starts the dashboard thread over `files` (the closed usage files present now: the
    /// writer has not started) and, for `/api/budgets`, the budgets.
    pub fn spawn(files: Vec<PathBuf>, budgets: Option<crate::budget::Hook>) -> std::io::Result<Arc<Dashboard>> {
        let (tx, rx) = crossbeam_channel::bounded::<Job>(MAX_QUEUED);
        let live = Arc::new(Mutex::new(Cube::default()));
        let d = Arc::new(Dashboard {
            jobs: tx,
            live: live.clone(),
        });
        std::thread::Builder::new()
            .name("llmops-dashboard".into())
            .spawn(move || run(files, rx, live, budgets))?;
        Ok(d)
    }

    /// Queues an API request; poll the slot for the answer.
    pub fn submit(&self, target: &str) -> Result<Arc<Slot>, Busy> {
        let slot = Arc::new(Slot::default());
        self.jobs
            .try_send(Job {
                target: target.to_string(),
                slot: slot.clone(),
            })
            .map_err(|_| Busy)?;
        Ok(slot)
    }

    /// Adds rows the writer observed (on the writer thread: a lock and a hash per row).
    pub fn observe(&self, rows: &[UsageRecord]) {
        if rows.is_empty() {
            return;
        }
        let mut c = lock(&self.live);
        for r in rows {
            c.add(r);
        }
    }
}

/// The writer's hook into the dashboard.
pub struct LiveHook(pub Arc<Dashboard>);

impl crate::usage::observe::RowHook for LiveHook {
    fn observe(&self, rows: &[UsageRecord], _now: i64) {
        self.0.observe(rows);
    }
}

fn run(
    mut files: Vec<PathBuf>,
    jobs: crossbeam_channel::Receiver<Job>,
    live: Arc<Mutex<Cube>>,
    budgets: Option<crate::budget::Hook>,
) {
    let mut cube = Cube::default();
    files.reverse();
    loop {
        // Closed files first, one per turn, so requests are answered while they load.
        if let Some(f) = files.pop() {
            if crate::usage::read::scan_file(&f, |rows| rows.iter().for_each(|r| cube.add(r))).is_err() {
                crate::log::warn(
                    "dashboard_file_skipped",
                    &[
                        ("file", &f.display().to_string()),
                        ("detail", "damaged; its readable rows are counted"),
                    ],
                );
            }
        }
        let next = if files.is_empty() {
            jobs.recv_timeout(FOLD_INTERVAL)
        } else {
            jobs.try_recv()
                .map_err(|_| crossbeam_channel::RecvTimeoutError::Timeout)
        };
        let fresh = std::mem::take(&mut *lock(&live));
        if fresh.rows > 0 {
            cube.absorb(fresh);
        }
        match next {
            Ok(job) => {
                let answer = answer(&cube, &job.target, !files.is_empty(), budgets.as_ref());
                *lock(&job.slot.0) = Some(answer);
            }
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// Answers one API request.
fn answer(cube: &Cube, target: &str, loading: bool, budgets: Option<&crate::budget::Hook>) -> Answer {
    let (path, q) = target.split_once('?').unwrap_or((target, ""));
    let now = crate::util::time::unix_now();
    let result = query::Query::parse(q, now).and_then(|q| match path {
        "/api/groups" => query::groups(cube, &q),
        "/api/series" => query::series(cube, &q),
        "/api/dimensions" => query::dimensions(cube, &q),
        "/api/summary" => query::summary(cube, &q, loading, now),
        "/api/budgets" => {
            let status = budgets.map(|h| lock(&h.tracker).status(now)).unwrap_or_default();
            Ok(query::budgets(&status))
        }
        _ => Err(query::QueryError(
            "unknown API path; use /api/summary, /api/groups, /api/series, /api/dimensions or /api/budgets".into(),
        )),
    });
    match result {
        Ok(body) => Answer { status: 200, body },
        Err(e) => Answer {
            status: 400,
            body: crate::http::head::error_body(&e.0, "BadRequest"),
        },
    }
}
