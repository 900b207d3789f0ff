//! Fault injection for the ledger's tests, in debug builds only (a release build ignores
//! the variable and compiles every check to nothing). `LLMOPS_FAULTS` is a comma list:
//!
//! - `OP=N` fails the next `N` operations of kind `OP`; `OP=N@K` lets `K` pass first.
//!   `OP` is `rename` (publishing a usage file), `fsync`, `write` (Parquet bytes),
//!   `checkpoint` (writing the checkpoint) or `provision` (a new segment).
//! - `panic=N@K`: the next `N` Bedrock requests (after `K`) panic their shard.
//! - `slow_publish=N@K`: the next `N` writer passes pause [`SLOW_PUBLISH_PAUSE`] between
//!   reading rows and publishing the gauges (what a scrape may see in between).
//! - `full=PATH`: while `PATH` exists, every write, fsync, checkpoint and provision fails with
//!   "no space left on device" (a disk that fills up and frees again, without root).

use std::io;

/// An operation of the ledger that can be made to fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Rename,
    Fsync,
    Write,
    Checkpoint,
    Provision,
    /// A shard panics on a request (the process must stop cleanly).
    Panic,
    /// The writer pauses between reading rows and publishing its gauges.
    SlowPublish,
}

/// How long an injected [`Op::SlowPublish`] pauses the writer.
pub const SLOW_PUBLISH_PAUSE: std::time::Duration = std::time::Duration::from_millis(300);

#[cfg(debug_assertions)]
mod active {
    use super::Op;
    use std::path::PathBuf;
    use std::sync::{Mutex, OnceLock};

    #[derive(Default)]
    pub(super) struct Plan {
        /// (op, operations to let pass, operations to fail).
        counted: Vec<(Op, u64, u64)>,
        full: Option<PathBuf>,
    }

    fn op(name: &str) -> Option<Op> {
        Some(match name {
            "rename" => Op::Rename,
            "fsync" => Op::Fsync,
            "write" => Op::Write,
            "provision" => Op::Provision,
            "checkpoint" => Op::Checkpoint,
            "panic" => Op::Panic,
            "slow_publish" => Op::SlowPublish,
            _ => return None,
        })
    }

    pub(super) fn parse(spec: &str) -> Plan {
        let mut plan = Plan::default();
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let Some((k, v)) = item.split_once('=') else { continue };
            if k == "full" {
                plan.full = Some(PathBuf::from(v));
                continue;
            }
            let (n, skip) = v.split_once('@').unwrap_or((v, "0"));
            if let (Some(o), Ok(n), Ok(skip)) = (op(k), n.parse(), skip.parse()) {
                plan.counted.push((o, skip, n));
            }
        }
        plan
    }

    fn plan() -> &'static Mutex<Plan> {
        static PLAN: OnceLock<Mutex<Plan>> = OnceLock::new();
        PLAN.get_or_init(|| Mutex::new(std::env::var("LLMOPS_FAULTS").map(|s| parse(&s)).unwrap_or_default()))
    }

    /// Whether this operation fails, and how.
    pub(super) fn decide(plan: &mut Plan, o: Op) -> Option<std::io::Error> {
        if !matches!(o, Op::Rename | Op::Panic | Op::SlowPublish) && plan.full.as_ref().is_some_and(|p| p.exists()) {
            return Some(std::io::Error::from_raw_os_error(libc::ENOSPC));
        }
        for (_, skip, fail) in plan.counted.iter_mut().filter(|(op, ..)| *op == o) {
            if *skip > 0 {
                *skip -= 1;
            } else if *fail > 0 {
                *fail -= 1;
                return Some(std::io::Error::other(format!("injected {o:?} failure")));
            }
        }
        None
    }

    pub(super) fn check(o: Op) -> std::io::Result<()> {
        match decide(&mut crate::util::snapshot::lock(plan()), o) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// Fails with the injected error when the plan says so (debug builds).
#[inline]
pub fn check(op: Op) -> io::Result<()> {
    #[cfg(debug_assertions)]
    {
        active::check(op)
    }
    #[cfg(not(debug_assertions))]
    {
        let _ = op;
        Ok(())
    }
}

#[cfg(all(test, debug_assertions))]
mod tests {
    use super::active::{decide, parse};
    use super::Op;

    #[test]
    fn counted_and_full_plans() {
        let mut p = parse("rename=2@1, fsync=1, bogus=3, write=x");
        assert!(decide(&mut p, Op::Rename).is_none());
        assert!(decide(&mut p, Op::Rename).is_some());
        assert!(decide(&mut p, Op::Rename).is_some());
        assert!(decide(&mut p, Op::Rename).is_none());
        assert!(decide(&mut p, Op::Fsync).is_some());
        assert!(decide(&mut p, Op::Fsync).is_none());
        assert!(decide(&mut p, Op::Write).is_none());
        let flag = std::env::temp_dir().join(format!("llmops-full-{}", std::process::id()));
        let mut f = parse(&format!("full={}", flag.display()));
        assert!(decide(&mut f, Op::Write).is_none());
        std::fs::write(&flag, b"").unwrap();
        let e = decide(&mut f, Op::Provision).unwrap();
        assert_eq!(e.raw_os_error(), Some(libc::ENOSPC));
        assert!(decide(&mut f, Op::Rename).is_none(), "a full disk still renames");
        std::fs::remove_file(&flag).unwrap();
        assert!(decide(&mut f, Op::Write).is_none());
    }
}
