//! The dashboard's aggregate: usage rows summed per UTC hour and per combination of
//! tenant, department, project, agent, model and optimizer rule, with exact money
//! (integers of 1e-12 USD) and two latency histograms per cell (request latency and
//! upstream time to first byte) for percentiles. Any grouping, filter and time bucket
//! the API offers is a sum over cells, so a month of rows is read once.
//!
//! Bounds: strings are interned once ([`Dict`]); at most [`MAX_CELLS`] cells are kept, and
//! a row that would need a new cell past that is summed into its hour's overflow cell,
//! whose dimensions all read [`OTHER`] (counted in [`Cube::overflow_rows`]).

use std::collections::HashMap;

use crate::usage::UsageRecord;

/// Most cells a cube keeps (about 250 bytes each).
pub const MAX_CELLS: usize = 200_000;
/// Most distinct strings interned; later ones read as [`OTHER`].
pub const MAX_STRINGS: usize = 100_000;
/// The value of a dimension folded away by a bound.
pub const OTHER: &str = "(other)";
/// The value of a missing tag.
pub const NONE: &str = "(none)";

/// The dimensions rows are grouped and filtered by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dim {
    Tenant,
    Department,
    Project,
    Agent,
    Model,
    Route,
}

impl Dim {
    pub const ALL: [Dim; 6] = [
        Dim::Tenant,
        Dim::Department,
        Dim::Project,
        Dim::Agent,
        Dim::Model,
        Dim::Route,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Dim::Tenant => "tenant",
            Dim::Department => "department",
            Dim::Project => "project",
            Dim::Agent => "agent",
            Dim::Model => "model",
            Dim::Route => "route",
        }
    }

    pub fn parse(s: &str) -> Option<Dim> {
        Dim::ALL.into_iter().find(|d| d.name() == s)
    }

    fn of(self, r: &UsageRecord) -> &str {
        fn tag(t: &Option<String>) -> &str {
            t.as_deref().filter(|s| !s.is_empty()).unwrap_or(NONE)
        }
        match self {
            Dim::Tenant => &r.tenant,
            Dim::Department => tag(&r.department),
            Dim::Project => tag(&r.project),
            Dim::Agent => tag(&r.agent),
            Dim::Model => &r.model_effective,
            Dim::Route => tag(&r.route_rule),
        }
    }
}

/// Upper edges of the latency histograms' buckets, milliseconds (the last is open).
pub const LATENCY_EDGES_MS: [f64; 15] = [
    5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10_000.0, 25_000.0, 60_000.0, 120_000.0,
    300_000.0,
];
/// Buckets of a histogram: one per edge and one above the last.
pub const BUCKETS: usize = LATENCY_EDGES_MS.len() + 1;

/// A latency histogram.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Hist(pub [u32; BUCKETS]);

impl Hist {
    fn add(&mut self, ms: f64) {
        let i = LATENCY_EDGES_MS
            .iter()
            .position(|e| ms <= *e)
            .unwrap_or(LATENCY_EDGES_MS.len());
        self.0[i] = self.0[i].saturating_add(1);
    }

    pub fn merge(&mut self, o: &Hist) {
        for (a, b) in self.0.iter_mut().zip(o.0) {
            *a = a.saturating_add(b);
        }
    }

    pub fn count(&self) -> u64 {
        self.0.iter().map(|n| u64::from(*n)).sum()
    }

    /// The upper edge of the bucket holding the `q`-quantile (`q` in per mille), in ms;
    /// `None` without samples or above the last edge.
    pub fn quantile_ms(&self, q_per_mille: u64) -> Option<f64> {
        let n = self.count();
        if n == 0 {
            return None;
        }
        let rank = (n * q_per_mille).div_ceil(1000).max(1);
        let mut seen = 0u64;
        for (i, c) in self.0.iter().enumerate() {
            seen += u64::from(*c);
            if seen >= rank {
                return LATENCY_EDGES_MS.get(i).copied();
            }
        }
        None
    }
}

/// The sums of one cell (or of any group of cells).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sums {
    pub requests: u64,
    pub errors: u64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cache_read_tokens: i64,
    pub cache_write_tokens: i64,
    /// 1e-12 USD, over the priced rows.
    pub cost: i128,
    /// Answered rows without a cost.
    pub unpriced: u64,
    /// `cost_usd_baseline` summed over the rows priced both ways, and their cost.
    pub baseline: i128,
    pub baseline_cost: i128,
    pub latency: Hist,
    pub ttfb: Hist,
}

impl Sums {
    /// The sums of one row.
    fn of(r: &UsageRecord) -> Sums {
        let mut one = Sums {
            requests: 1,
            errors: u64::from(r.status >= 400 || r.error_type.is_some()),
            input_tokens: r.input_tokens.unwrap_or(0),
            output_tokens: r.output_tokens.unwrap_or(0),
            cache_read_tokens: r.cache_read_tokens.unwrap_or(0),
            cache_write_tokens: r.cache_write_tokens.unwrap_or(0),
            cost: r.cost_pico_usd.unwrap_or(0),
            unpriced: u64::from(r.cost_pico_usd.is_none() && r.status < 400),
            ..Sums::default()
        };
        if let (Some(b), Some(c)) = (r.cost_baseline_pico_usd, r.cost_pico_usd) {
            one.baseline = b;
            one.baseline_cost = c;
        }
        one.latency.add(r.latency_ms);
        if let Some(t) = r.upstream_ttfb_ms {
            one.ttfb.add(t);
        }
        one
    }

    /// Adds `o` (saturating: figures an upstream reported cannot overflow a sum).
    pub fn merge(&mut self, o: &Sums) {
        self.requests = self.requests.saturating_add(o.requests);
        self.errors = self.errors.saturating_add(o.errors);
        self.input_tokens = self.input_tokens.saturating_add(o.input_tokens);
        self.output_tokens = self.output_tokens.saturating_add(o.output_tokens);
        self.cache_read_tokens = self.cache_read_tokens.saturating_add(o.cache_read_tokens);
        self.cache_write_tokens = self.cache_write_tokens.saturating_add(o.cache_write_tokens);
        self.cost = self.cost.saturating_add(o.cost);
        self.unpriced = self.unpriced.saturating_add(o.unpriced);
        self.baseline = self.baseline.saturating_add(o.baseline);
        self.baseline_cost = self.baseline_cost.saturating_add(o.baseline_cost);
        self.latency.merge(&o.latency);
        self.ttfb.merge(&o.ttfb);
    }

    /// What the optimizer saved over the rows priced both ways.
    pub fn savings(&self) -> i128 {
        self.baseline.saturating_sub(self.baseline_cost)
    }
}

/// Interned strings.
#[derive(Debug, Default)]
pub struct Dict {
    ids: HashMap<String, u32>,
    names: Vec<String>,
}

impl Dict {
    fn id(&mut self, s: &str) -> u32 {
        match self.ids.get(s) {
            Some(i) => *i,
            None if self.names.len() >= MAX_STRINGS => self.id_other(),
            None => self.insert(s),
        }
    }

    /// The id of [`OTHER`] (interned past the bound: the fold needs it).
    fn id_other(&mut self) -> u32 {
        match self.ids.get(OTHER) {
            Some(i) => *i,
            None => self.insert(OTHER),
        }
    }

    fn insert(&mut self, s: &str) -> u32 {
        let i = self.names.len() as u32;
        self.names.push(s.to_string());
        self.ids.insert(s.to_string(), i);
        i
    }

    /// The id of `s`, if it was ever seen.
    pub fn find(&self, s: &str) -> Option<u32> {
        self.ids.get(s).copied()
    }

    pub fn name(&self, id: u32) -> &str {
        self.names.get(id as usize).map_or(OTHER, String::as_str)
    }
}

/// A cell's key: the UTC hour (hours since the epoch) and one id per [`Dim`].
pub type Key = (i64, [u32; 6]);

/// The aggregate.
#[derive(Debug, Default)]
pub struct Cube {
    pub dict: Dict,
    pub cells: HashMap<Key, Sums>,
    pub rows: u64,
    pub overflow_rows: u64,
}

impl Cube {
    /// Adds one row.
    pub fn add(&mut self, r: &UsageRecord) {
        let hour = r.ts_micros.div_euclid(3_600_000_000);
        let mut dims = [0u32; 6];
        for (slot, d) in dims.iter_mut().zip(Dim::ALL) {
            *slot = self.dict.id(d.of(r));
        }
        self.rows += 1;
        self.put((hour, dims), &Sums::of(r));
    }

    /// Adds every cell of `other` (a cube built elsewhere: the live rows).
    pub fn absorb(&mut self, other: Cube) {
        self.rows += other.rows;
        self.overflow_rows += other.overflow_rows;
        for ((hour, dims), sums) in other.cells {
            let mut mine = [0u32; 6];
            for (slot, id) in mine.iter_mut().zip(dims) {
                *slot = self.dict.id(other.dict.name(id));
            }
            self.put((hour, mine), &sums);
        }
    }

    /// Adds `sums` to the cell `key`, or past [`MAX_CELLS`] to its hour's overflow cell.
    fn put(&mut self, key: Key, sums: &Sums) {
        let key = if self.cells.contains_key(&key) || self.cells.len() < MAX_CELLS {
            key
        } else {
            self.overflow_rows += sums.requests;
            (key.0, [self.dict.id_other(); 6])
        };
        self.cells.entry(key).or_default().merge(sums);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(agent: &str, model: &str, cost: i128, hour: i64) -> UsageRecord {
        UsageRecord {
            ts_micros: hour * 3_600_000_000 + 5,
            tenant: "t".into(),
            agent: Some(agent.into()),
            model_effective: model.into(),
            status: 200,
            cost_pico_usd: Some(cost),
            cost_baseline_pico_usd: Some(cost),
            input_tokens: Some(3),
            latency_ms: 42.0,
            ..Default::default()
        }
    }

    #[test]
    fn rows_sum_exactly_into_cells_and_cubes_merge() {
        let mut a = Cube::default();
        a.add(&row("x", "m", 1, 10));
        a.add(&row("x", "m", 2, 10));
        a.add(&row("y", "m", 4, 11));
        assert_eq!(a.cells.len(), 2);
        let mut b = Cube::default();
        b.add(&row("y", "m", 8, 11));
        b.add(&row("z", "n", 16, 12));
        a.absorb(b);
        assert_eq!(a.rows, 5);
        let total: i128 = a.cells.values().map(|s| s.cost).sum();
        assert_eq!(total, 31);
        let y = a.dict.find("y").unwrap();
        let cell = a.cells.iter().find(|(k, _)| k.1[Dim::Agent as usize] == y).unwrap().1;
        assert_eq!((cell.requests, cell.cost, cell.input_tokens), (2, 12, 6));
        assert_eq!(
            a.dict.name(a.cells.keys().next().unwrap().1[Dim::Department as usize]),
            NONE
        );
    }

    #[test]
    fn the_cell_bound_folds_new_combinations_into_other() {
        let mut c = Cube::default();
        // Few strings, many combinations: the cell bound is what is reached.
        for i in 0..MAX_CELLS + 10 {
            c.add(&row(&format!("a{}", i % 500), &format!("m{}", i / 500), 1, 1));
        }
        assert_eq!(c.cells.len(), MAX_CELLS + 1);
        assert_eq!(c.overflow_rows, 10);
        let total: i128 = c.cells.values().map(|s| s.cost).sum();
        assert_eq!(total, (MAX_CELLS + 10) as i128, "nothing is lost, only folded");
    }

    #[test]
    fn quantiles_are_bucket_edges() {
        let mut h = Hist::default();
        for ms in [1.0, 7.0, 7.0, 30.0, 400.0, 400.0, 400.0, 400.0, 400.0, 9e9] {
            h.add(ms);
        }
        assert_eq!(h.quantile_ms(500), Some(500.0));
        assert_eq!(h.quantile_ms(100), Some(5.0));
        assert_eq!(h.quantile_ms(1000), None, "above the last edge");
        assert_eq!(Hist::default().quantile_ms(500), None);
    }
}
