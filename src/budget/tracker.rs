//! Spend per budget, value and period, kept by the writer thread in exact integer money
//! (1e-12 USD), and the published [`BlockSet`] shards check before relaying.
//!
//! Overshoot: a shard sees a budget as exhausted at most one writer tick (20 ms) after the
//! row that crossed the limit was journaled; requests already in flight
//! then still finish. With N instances on a shared store the fleet total is refreshed once
//! per store tick (500 ms), so the overshoot is what the fleet spends in that window.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::config::{Action, Budget, Period};
use crate::optimizer::rules::{Ratio, RATIO_ONE};
use crate::usage::record::format_usd;
use crate::usage::UsageRecord;
use crate::util::time::{civil_from_days, days_from_civil};

/// (budget name, value, period id).
pub type SpendKey = (String, String, i64);

/// Most distinct values a `*` budget tracks per period; rows of further values share one
/// key, [`OTHER_VALUE`] (counted, logged once), so hostile tags cannot grow memory or
/// metric cardinality.
pub const MAX_TRACKED_VALUES: usize = 1000;
/// The shared key of a `*` budget's values past [`MAX_TRACKED_VALUES`].
pub const OTHER_VALUE: &str = "(other)";

/// Percentages at which a log line is written (once per key and period).
pub const ALERT_THRESHOLDS: [u8; 3] = [50, 80, 100];

/// The period id of a unix time: days since epoch, or year*12 + month.
pub fn period_id(period: Period, unix_secs: i64) -> i64 {
    let days = unix_secs.div_euclid(86_400);
    match period {
        Period::Day => days,
        Period::Month => {
            let (y, m, _) = civil_from_days(days);
            y as i64 * 12 + (m as i64 - 1)
        }
    }
}

/// Unix time when the period `id` ends.
pub fn period_end(period: Period, id: i64) -> i64 {
    match period {
        Period::Day => (id + 1) * 86_400,
        Period::Month => {
            let next = id + 1;
            days_from_civil(next.div_euclid(12) as i32, (next.rem_euclid(12) + 1) as u32, 1) * 86_400
        }
    }
}

/// Why a request is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blocked {
    pub budget: String,
    pub value: String,
    /// 1e-12 USD.
    pub limit: i128,
    pub spent: i128,
    /// Unix seconds when the period resets.
    pub reset_at: i64,
}

/// The exhausted `block` budgets, as published to shards.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlockSet {
    pub budgets: Vec<Budget>,
    /// index into `budgets` → value → why. Only budgets with a blocked value are keys,
    /// so a check looks at those alone, without allocating.
    pub blocked: HashMap<usize, HashMap<String, Blocked>>,
    /// For a `*` budget whose [`OTHER_VALUE`] key is blocked: the values it tracks on
    /// their own (every other value is blocked with the shared key).
    pub tracked: HashMap<usize, HashSet<String>>,
    /// For the budgets the optimizer's `downgrade` rules name: each value's highest
    /// threshold reached (1e-6 units of spend/limit). Republished only when a value
    /// crosses a threshold, never on every spend change.
    pub crossed: HashMap<String, (Budget, HashMap<String, Ratio>)>,
}

impl BlockSet {
    /// Whether a request (its row so far: tenant, tags, models) is refused at `now`.
    pub fn check(&self, r: &UsageRecord, now: i64) -> Option<&Blocked> {
        if self.blocked.is_empty() {
            return None;
        }
        for (i, values) in &self.blocked {
            let Some(b) = self.budgets.get(*i) else { continue };
            let Some(v) = b.key_for(r) else { continue };
            let hit = match values.get(&*v) {
                Some(bl) => Some(bl),
                None => self
                    .tracked
                    .get(i)
                    .filter(|t| !t.contains(&*v))
                    .and_then(|_| values.get(OTHER_VALUE)),
            };
            if let Some(bl) = hit.filter(|bl| now < bl.reset_at) {
                return Some(bl);
            }
        }
        None
    }
}

impl BlockSet {
    /// The highest downgrade threshold that `budget`'s key for this request has reached.
    /// Only a value's own key counts: a value past [`MAX_TRACKED_VALUES`], whose spend is
    /// summed under [`OTHER_VALUE`], is never downgraded on the shared key's account (a
    /// tracked value under its own threshold would be too).
    pub fn crossed(&self, budget: &str, r: &UsageRecord) -> Option<Ratio> {
        let (b, values) = self.crossed.get(budget)?;
        let v = b.key_for(r)?;
        values.get(&*v).copied()
    }

    /// The first `block` budget that matches the request and refuses what cannot be
    /// priced (`allow_unpriced` unset).
    pub fn refusing_unpriced(&self, r: &UsageRecord) -> Option<&Budget> {
        self.budgets
            .iter()
            .find(|b| !b.allow_unpriced && b.key_for(r).is_some())
    }
}

/// The block set as the shards see it: replaced whole by the writer, read by each shard
/// through its own copy.
pub type Publisher = crate::util::snapshot::Published<BlockSet>;

/// What the writer thread needs to keep budgets.
#[derive(Debug, Clone)]
pub struct Hook {
    pub tracker: Arc<std::sync::Mutex<Tracker>>,
    pub publisher: Arc<Publisher>,
}

impl crate::usage::observe::RowHook for Hook {
    /// Counts new rows and republishes if the block set changed.
    fn observe(&self, rows: &[UsageRecord], now: i64) {
        let mut t = crate::util::snapshot::lock(&self.tracker);
        t.observe(rows);
        if let Some(set) = t.evaluate(now) {
            self.publisher.publish(set);
        }
    }
}

/// One budget key's state, for metrics and the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub budget: String,
    pub value: String,
    pub spent: i128,
    pub limit: i128,
    pub blocked_requests: u64,
}

/// The writer-side tracker.
#[derive(Debug, Default)]
pub struct Tracker {
    budgets: Vec<Budget>,
    /// budget name → period → value → spend. Nested so that counting a row allocates
    /// nothing once its keys exist (this runs for every budget on every row).
    local: HashMap<String, HashMap<i64, HashMap<String, i128>>>,
    /// Fleet totals read from the shared store, and how much of `local` they include.
    fleet: HashMap<SpendKey, (i128, i128)>,
    alerted: HashSet<(SpendKey, u8)>,
    /// Rows counted under [`OTHER_VALUE`], per budget.
    overflow_rows: HashMap<String, u64>,
    blocked_requests: HashMap<String, u64>,
    /// Downgrade thresholds per budget name (`--routes`), ascending.
    thresholds: HashMap<String, Vec<Ratio>>,
    published: Arc<BlockSet>,
}

impl Tracker {
    pub fn new(budgets: Vec<Budget>) -> Self {
        Tracker {
            budgets,
            ..Default::default()
        }
    }

    pub fn budgets(&self) -> &[Budget] {
        &self.budgets
    }

    /// New budgets (SIGHUP); spend is kept.
    pub fn set_budgets(&mut self, budgets: Vec<Budget>) {
        self.budgets = budgets;
    }

    /// The optimizer's downgrade thresholds, as (budget name, ratio) pairs.
    pub fn set_thresholds(&mut self, pairs: Vec<(String, Ratio)>) {
        self.thresholds.clear();
        for (b, t) in pairs {
            self.thresholds.entry(b).or_default().push(t);
        }
        for ts in self.thresholds.values_mut() {
            ts.sort_unstable();
            ts.dedup();
        }
    }

    /// Adds the cost of each row to every budget it matches. Budgets are the outer loop so
    /// that a budget's maps are looked up once per batch; per matching row it costs one
    /// integer and one string hash, and no allocation once the keys exist.
    pub fn observe(&mut self, rows: &[UsageRecord]) {
        for r in rows {
            if let Some(name) = &r.blocked_by {
                *self.blocked_requests.entry(name.clone()).or_default() += 1;
            }
        }
        for b in &self.budgets {
            if !self.local.contains_key(b.name.as_str()) {
                self.local.insert(b.name.clone(), HashMap::new());
            }
            let Some(periods) = self.local.get_mut(b.name.as_str()) else {
                continue;
            };
            let mut overflowed = 0;
            for r in rows {
                let Some(cost) = r.cost_pico_usd.filter(|c| *c > 0) else {
                    continue;
                };
                let Some(v) = b.key_for(r) else { continue };
                let pid = period_id(b.period, r.ts_micros.div_euclid(1_000_000));
                let values = periods.entry(pid).or_default();
                if let Some(x) = values.get_mut(&*v) {
                    *x += cost;
                    continue;
                }
                if b.value == "*" && values.len() >= MAX_TRACKED_VALUES {
                    overflowed += 1;
                    *values.entry(OTHER_VALUE.to_string()).or_default() += cost;
                } else {
                    values.insert(v.into_owned(), cost);
                }
            }
            if overflowed > 0 {
                let n = self.overflow_rows.entry(b.name.clone()).or_default();
                if *n == 0 {
                    crate::log::warn(
                        "budget_values_capped",
                        &[
                            ("budget", &b.name),
                            ("max_values", &MAX_TRACKED_VALUES.to_string()),
                            ("detail", "further values share the key (other)"),
                        ],
                    );
                }
                *n += overflowed;
            }
        }
    }

    /// Local spend per key (the store thread pushes the growth).
    pub fn local(&self) -> HashMap<SpendKey, i128> {
        let mut out = HashMap::new();
        for (name, periods) in &self.local {
            for (pid, values) in periods {
                for (v, c) in values {
                    out.insert((name.clone(), v.clone(), *pid), *c);
                }
            }
        }
        out
    }

    fn local_spend(&self, key: &SpendKey) -> i128 {
        self.local
            .get(key.0.as_str())
            .and_then(|p| p.get(&key.2))
            .and_then(|v| v.get(key.1.as_str()))
            .copied()
            .unwrap_or(0)
    }

    /// Every key with local or fleet spend.
    fn keys(&self) -> Vec<SpendKey> {
        let mut keys: HashSet<SpendKey> = self.fleet.keys().cloned().collect();
        for (name, periods) in &self.local {
            for (pid, values) in periods {
                for v in values.keys() {
                    keys.insert((name.clone(), v.clone(), *pid));
                }
            }
        }
        let mut keys: Vec<SpendKey> = keys.into_iter().collect();
        keys.sort();
        keys
    }

    /// Records a fleet total that includes `included_local` of this instance's spend.
    pub fn set_fleet(&mut self, key: SpendKey, total: i128, included_local: i128) {
        self.fleet.insert(key, (total, included_local));
    }

    /// Forgets fleet totals (store unreachable: fall back to local spend).
    pub fn clear_fleet(&mut self) {
        self.fleet.clear();
    }

    /// Spend of a key: the fleet total plus what was recorded locally since, else local.
    pub fn spend(&self, key: &SpendKey) -> i128 {
        let local = self.local_spend(key);
        match self.fleet.get(key) {
            Some((total, included)) => total + (local - included).max(0),
            None => local,
        }
    }

    /// Drops keys of past periods.
    fn prune(&mut self, now: i64) {
        let current: HashMap<&str, i64> = self
            .budgets
            .iter()
            .map(|b| (b.name.as_str(), period_id(b.period, now)))
            .collect();
        let keep = |k: &SpendKey| current.get(k.0.as_str()).is_none_or(|p| k.2 >= *p);
        for (name, periods) in self.local.iter_mut() {
            if let Some(cur) = current.get(name.as_str()) {
                periods.retain(|pid, _| pid >= cur);
            }
        }
        self.fleet.retain(|k, _| keep(k));
        self.alerted.retain(|(k, _)| keep(k));
    }

    /// Re-evaluates at `now`: logs threshold crossings and returns the new block set if
    /// it differs from the last one published.
    pub fn evaluate(&mut self, now: i64) -> Option<Arc<BlockSet>> {
        self.prune(now);
        let blockers: Vec<Budget> = self
            .budgets
            .iter()
            .filter(|b| b.action == Action::Block)
            .cloned()
            .collect();
        let mut set = BlockSet {
            budgets: blockers,
            blocked: HashMap::new(),
            tracked: HashMap::new(),
            crossed: HashMap::new(),
        };
        for key in self.keys() {
            let Some(b) = self.budgets.iter().find(|b| b.name == key.0) else {
                continue;
            };
            if key.2 != period_id(b.period, now) {
                continue;
            }
            let spent = self.spend(&key);
            for t in ALERT_THRESHOLDS {
                if spent * 100 >= b.limit * t as i128 && self.alerted.insert((key.clone(), t)) {
                    crate::log::warn(
                        "budget_threshold",
                        &[
                            ("budget", &b.name),
                            ("value", &key.1),
                            ("percent", &t.to_string()),
                            ("spent_usd", &format_usd(spent)),
                            ("limit_usd", &format_usd(b.limit)),
                            ("action", if b.action == Action::Block { "block" } else { "alert" }),
                        ],
                    );
                }
            }
            if let Some(ts) = self.thresholds.get(&b.name) {
                // Exact: spent / limit >= t / 1e6.
                let reached = ts.iter().rev().find(|t| spent * RATIO_ONE >= b.limit * **t);
                if let Some(t) = reached {
                    set.crossed
                        .entry(b.name.clone())
                        .or_insert_with(|| (b.clone(), HashMap::new()))
                        .1
                        .insert(key.1.clone(), *t);
                }
            }
            if b.action == Action::Block && spent >= b.limit {
                if let Some(i) = set.budgets.iter().position(|x| x.name == b.name) {
                    set.blocked.entry(i).or_default().insert(
                        key.1.clone(),
                        Blocked {
                            budget: b.name.clone(),
                            value: key.1.clone(),
                            limit: b.limit,
                            spent,
                            reset_at: period_end(b.period, key.2),
                        },
                    );
                }
            }
        }
        // A blocked shared key blocks every value the budget does not track on its own.
        let others: Vec<usize> = set
            .blocked
            .iter()
            .filter(|(_, v)| v.contains_key(OTHER_VALUE))
            .map(|(i, _)| *i)
            .collect();
        for i in others {
            let Some(b) = set.budgets.get(i) else { continue };
            let pid = period_id(b.period, now);
            let tracked: HashSet<String> = self
                .keys()
                .into_iter()
                .filter(|k| k.0 == b.name && k.2 == pid && k.1 != OTHER_VALUE)
                .map(|k| k.1)
                .collect();
            set.tracked.insert(i, tracked);
        }
        let changed = set.tracked != self.published.tracked
            || set.crossed != self.published.crossed
            || set.budgets != self.published.budgets
            || set.blocked.len() != self.published.blocked.len()
            || set.blocked.iter().any(|(i, vals)| {
                self.published
                    .blocked
                    .get(i)
                    .is_none_or(|old| old.len() != vals.len() || vals.keys().any(|v| !old.contains_key(v)))
            });
        if changed {
            self.published = Arc::new(set);
            Some(self.published.clone())
        } else {
            None
        }
    }

    /// Rows counted under [`OTHER_VALUE`] for `budget`.
    pub fn overflow_rows(&self, budget: &str) -> u64 {
        self.overflow_rows.get(budget).copied().unwrap_or(0)
    }

    /// Every key of the current periods, for metrics and the report.
    pub fn status(&self, now: i64) -> Vec<Status> {
        let mut out: Vec<Status> = Vec::new();
        for key in self.keys() {
            let Some(b) = self.budgets.iter().find(|b| b.name == key.0) else {
                continue;
            };
            if key.2 != period_id(b.period, now) {
                continue;
            }
            out.push(Status {
                budget: b.name.clone(),
                value: key.1.clone(),
                spent: self.spend(&key),
                limit: b.limit,
                blocked_requests: 0,
            });
        }
        for b in &self.budgets {
            if let Some(n) = self.blocked_requests.get(&b.name) {
                if let Some(s) = out.iter_mut().find(|s| s.budget == b.name) {
                    s.blocked_requests = *n;
                } else {
                    out.push(Status {
                        budget: b.name.clone(),
                        value: String::new(),
                        spent: 0,
                        limit: b.limit,
                        blocked_requests: *n,
                    });
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::super::config::{BudgetFile, Scope};
    use super::*;

    fn row(project: &str, cost: i128, ts: i64) -> UsageRecord {
        UsageRecord {
            ts_micros: ts * 1_000_000,
            project: Some(project.into()),
            tenant: "t".into(),
            model_effective: "m".into(),
            cost_pico_usd: Some(cost),
            ..Default::default()
        }
    }

    fn budgets(text: &str) -> Vec<Budget> {
        BudgetFile::parse(text).unwrap().budgets
    }

    const PER_PROJECT: &str = "[[budget]]\nname = \"p\"\nscope = \"project\"\nvalue = \"*\"\nperiod = \"day\"\nlimit_usd = \"1.00\"\naction = \"block\"\n";
    const USD: i128 = 1_000_000_000_000;

    #[test]
    fn tags_fold_and_star_budgets_cap_their_values() {
        let noon = 1_764_072_000;
        let eng = "[[budget]]\nname = \"e\"\nscope = \"project\"\nvalue = \" ENG \"\nperiod = \"day\"\nlimit_usd = \"1.00\"\naction = \"block\"\n";
        let mut t = Tracker::new(budgets(eng));
        t.observe(&[row("Eng", USD / 2, noon), row(" eng", USD / 2, noon)]);
        let set = t.evaluate(noon).expect("blocked");
        for v in ["eng", "ENG", " Eng  "] {
            assert!(set.check(&row(v, 0, noon), noon).is_some(), "{v:?} escapes");
        }
        assert!(set.check(&row("engineering", 0, noon), noon).is_none());

        // A `*` budget tracks MAX_TRACKED_VALUES values; the rest share one key.
        let mut t = Tracker::new(budgets(PER_PROJECT));
        let rows: Vec<UsageRecord> = (0..MAX_TRACKED_VALUES + 500)
            .map(|i| row(&format!("p{i}"), USD / 1000, noon))
            .collect();
        t.observe(&rows);
        let keys = t.local();
        assert_eq!(keys.len(), MAX_TRACKED_VALUES + 1);
        assert_eq!(t.overflow_rows("p"), 500);
        let other = ("p".to_string(), OTHER_VALUE.to_string(), period_id(Period::Day, noon));
        assert_eq!(t.spend(&other), 500 * (USD / 1000));
        // 500 more rows of new values push the shared key over $1: every untracked value
        // is refused, tracked ones under their own limit are not.
        let more: Vec<UsageRecord> = (0..600).map(|i| row(&format!("q{i}"), USD / 1000, noon)).collect();
        t.observe(&more);
        let set = t.evaluate(noon).expect("blocked");
        assert_eq!(
            set.check(&row("brand-new", 0, noon), noon).map(|b| b.value.as_str()),
            Some(OTHER_VALUE)
        );
        assert!(
            set.check(&row("p7", 0, noon), noon).is_none(),
            "a tracked value is its own key"
        );
    }

    #[test]
    fn downgrade_thresholds_are_published_when_crossed_not_on_every_spend() {
        let noon = 1_764_072_000;
        let alert = PER_PROJECT.replace("block", "alert");
        let mut t = Tracker::new(budgets(&alert));
        t.set_thresholds(vec![
            ("p".into(), 800_000),
            ("p".into(), 500_000),
            ("p".into(), 800_000),
        ]);
        t.observe(&[row("a", USD * 49 / 100, noon)]);
        let _ = t.evaluate(noon);
        assert_eq!(t.published.crossed("p", &row("a", 0, noon)), None);
        // Exactly half: the 0.5 threshold is reached (exact integer comparison).
        t.observe(&[row("a", USD / 100, noon)]);
        let set = t.evaluate(noon).expect("crossed 0.5");
        assert_eq!(set.crossed("p", &row("a", 0, noon)), Some(500_000));
        assert_eq!(set.crossed("p", &row("b", 0, noon)), None);
        // More spend under 0.8 changes nothing to publish.
        t.observe(&[row("a", USD / 10, noon)]);
        assert!(t.evaluate(noon).is_none());
        t.observe(&[row("a", USD / 5, noon)]);
        let set = t.evaluate(noon).expect("crossed 0.8");
        assert_eq!(set.crossed("p", &row("a", 0, noon)), Some(800_000));
        // An alert budget never blocks.
        assert!(set.check(&row("a", 0, noon), noon).is_none());

        // Past the tracked values: the shared key crossing downgrades nobody, neither a
        // tracked value under its own threshold nor an untracked one.
        let mut t = Tracker::new(budgets(&alert));
        t.set_thresholds(vec![("p".into(), 500_000)]);
        let tracked: Vec<UsageRecord> = (0..MAX_TRACKED_VALUES)
            .map(|i| row(&format!("v{i}"), 1, noon))
            .collect();
        t.observe(&tracked);
        t.observe(&[row("overflow", USD, noon)]);
        let set = t.evaluate(noon).expect("the shared key crossed");
        assert_eq!(set.crossed.get("p").map(|c| c.1.contains_key(OTHER_VALUE)), Some(true));
        assert_eq!(set.crossed("p", &row("v7", 0, noon)), None);
        assert_eq!(set.crossed("p", &row("brand-new", 0, noon)), None);
    }

    #[test]
    fn blocks_after_the_crossing_request_per_value_and_rolls_at_midnight() {
        let noon = 1_764_072_000; // 2025-11-25T12:00:00Z
        let mut t = Tracker::new(budgets(PER_PROJECT));
        t.observe(&[row("a", USD / 2, noon)]);
        assert!(t.evaluate(noon).is_none() || t.published.blocked.is_empty());
        t.observe(&[row("a", USD / 2, noon + 1)]);
        let set = t.evaluate(noon + 1).expect("changed");
        let probe = |p: &str| row(p, 0, noon + 2);
        assert_eq!(set.check(&probe("a"), noon + 2).map(|b| b.budget.as_str()), Some("p"));
        assert!(
            set.check(&probe("b"), noon + 2).is_none(),
            "another project is separate"
        );
        let reset = set.check(&probe("a"), noon + 2).unwrap().reset_at;
        assert_eq!(reset, (noon / 86_400 + 1) * 86_400);
        // Past midnight the old entry no longer blocks, and the next evaluation clears it.
        assert!(set.check(&probe("a"), reset).is_none());
        let set2 = t.evaluate(reset).expect("cleared at midnight");
        assert!(set2.blocked.is_empty());
        assert_eq!(t.spend(&("p".into(), "a".into(), period_id(Period::Day, reset))), 0);
    }

    #[test]
    fn alert_never_blocks_and_reload_keeps_spend() {
        let noon = 1_764_072_000;
        let alert = PER_PROJECT.replace("block", "alert");
        let mut t = Tracker::new(budgets(&alert));
        t.observe(&[row("a", 2 * USD, noon)]);
        t.evaluate(noon);
        assert!(t.published.blocked.is_empty());
        t.set_budgets(budgets(PER_PROJECT));
        let set = t.evaluate(noon).unwrap();
        assert_eq!(set.blocked.len(), 1);
        // Raising the limit unblocks.
        t.set_budgets(budgets(&PER_PROJECT.replace("1.00", "5.00")));
        assert!(t.evaluate(noon).unwrap().blocked.is_empty());
        assert_eq!(t.status(noon)[0].spent, 2 * USD);
    }

    #[test]
    fn fleet_totals_and_months() {
        let noon = 1_764_072_000;
        let month = PER_PROJECT.replace("\"day\"", "\"month\"");
        let mut t = Tracker::new(budgets(&month));
        t.observe(&[row("a", USD / 4, noon)]);
        let key: SpendKey = ("p".into(), "a".into(), period_id(Period::Month, noon));
        t.set_fleet(key.clone(), USD, USD / 4);
        t.observe(&[row("a", USD / 4, noon)]);
        assert_eq!(t.spend(&key), USD + USD / 4);
        assert_eq!(t.evaluate(noon).unwrap().blocked.len(), 1);
        t.clear_fleet();
        assert_eq!(t.spend(&key), USD / 2);
        assert_eq!(period_end(Period::Month, key.2), days_from_civil(2025, 12, 1) * 86_400);
        let dec = period_id(Period::Month, days_from_civil(2025, 12, 31) * 86_400);
        assert_eq!(period_end(Period::Month, dec), days_from_civil(2026, 1, 1) * 86_400);
        let _ = Scope::Model;
    }
}
