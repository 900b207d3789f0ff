//! The dashboard's JSON API (`GET /api/...`, README "The dashboard"), answered from a
//! [`Cube`]: every answer is a sum over its cells, so it costs a pass over the cells of
//! the period, never a read of the files. Money is exact: decimal strings of the integer
//! sums (12 places at most), never floats.
//!
//! - `/api/groups?by=DIM`: sums per value of one dimension, highest cost first, with the
//!   same sums over the period just before (`previous_cost_usd`, the trend);
//! - `/api/series?bucket=hour|day&stack=DIM`: spend, requests, errors and tokens per time
//!   bucket, stacked by the top values of a dimension (the rest summed as `(other)`);
//! - `/api/dimensions`: the values each dimension takes in the period (the filters' lists);
//! - `/api/summary`: the period's totals and the data's freshness.
//!
//! Every endpoint takes the period (`from`, `to`: unix seconds or `YYYY-MM-DD`, UTC; `to`
//! exclusive; default the last 24 hours) and filters (`tenant`, `department`, `project`,
//! `agent`, `model`, `route`: exact values).

use std::collections::HashMap;

use super::cube::{Cube, Dim, Sums, OTHER};
use crate::http::head::push_json_str;
use crate::usage::record::format_usd;

/// Most groups a `groups` answer lists (the rest are summed into one `(other)` group).
pub const MAX_GROUPS: usize = 500;
/// Most stacked series of a `series` answer (the rest are one `(other)` series).
pub const MAX_SERIES: usize = 8;
/// Most time buckets of a `series` answer (a longer period is refused).
pub const MAX_BUCKETS: i64 = 24 * 93;

/// Why a query was refused (400).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryError(pub String);

/// A parsed query: its period (hours, `[from, to)`) and filters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub from_hour: i64,
    pub to_hour: i64,
    pub filters: Vec<(Dim, String)>,
    pub params: HashMap<String, String>,
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let h = crate::util::hex::digit_value(b[i + 1]);
                let l = crate::util::hex::digit_value(b[i + 2]);
                match (h, l) {
                    (Some(h), Some(l)) => {
                        out.push(h << 4 | l);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The latest time a query may name: 9999-12-31T23:59:59Z (so no arithmetic on it overflows).
pub const MAX_TIME: i64 = 253_402_300_799;

/// Unix seconds, or `YYYY-MM-DD` (the day's start, UTC), from 1970 to [`MAX_TIME`].
fn time_of(v: &str) -> Option<i64> {
    if !v.is_empty() && v.bytes().all(|c| c.is_ascii_digit()) {
        return v.parse().ok().filter(|t| *t <= MAX_TIME);
    }
    let p: Vec<&str> = v.split('-').collect();
    if p.len() != 3 {
        return None;
    }
    let (y, m, d): (i32, u32, u32) = (p[0].parse().ok()?, p[1].parse().ok()?, p[2].parse().ok()?);
    if !(1970..=9999).contains(&y) || !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    Some(crate::util::time::days_from_civil(y, m, d) * 86_400)
}

impl Query {
    /// Parses the query string of an API request at `now` (unix seconds).
    pub fn parse(query: &str, now: i64) -> Result<Query, QueryError> {
        let mut params = HashMap::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            params.insert(decode(k), decode(v));
        }
        let t = |name: &str, default: i64| -> Result<i64, QueryError> {
            match params.get(name).filter(|v| !v.is_empty()) {
                None => Ok(default),
                Some(v) => time_of(v)
                    .ok_or_else(|| QueryError(format!("`{name}` must be unix seconds or YYYY-MM-DD, not `{v}`"))),
            }
        };
        let to = t("to", (now + 1).min(MAX_TIME))?;
        let from = t("from", (to - 86_400).max(0))?;
        if from >= to {
            return Err(QueryError("`from` must be before `to`".into()));
        }
        let mut filters = Vec::new();
        for d in Dim::ALL {
            if let Some(v) = params.get(d.name()).filter(|v| !v.is_empty()) {
                filters.push((d, v.clone()));
            }
        }
        Ok(Query {
            from_hour: from.div_euclid(3600),
            // An hour that has begun before `to` is in the period.
            to_hour: (to + 3599).div_euclid(3600),
            filters,
            params,
        })
    }

    fn dim(&self, name: &str, default: Dim) -> Result<Dim, QueryError> {
        match self.params.get(name) {
            None => Ok(default),
            Some(v) => Dim::parse(v).ok_or_else(|| {
                QueryError(format!(
                    "`{name}` must be one of tenant, department, project, agent, model, route, not `{v}`"
                ))
            }),
        }
    }
}

/// The cells of `q`'s period (shifted back by `shift` hours) that pass its filters.
fn cells<'c>(cube: &'c Cube, q: &Query, shift: i64) -> Vec<(&'c (i64, [u32; 6]), &'c Sums)> {
    let mut wanted: Vec<(usize, Option<u32>)> = Vec::new();
    for (d, v) in &q.filters {
        wanted.push((*d as usize, cube.dict.find(v)));
    }
    // A filter on a value never seen matches nothing.
    if wanted.iter().any(|(_, id)| id.is_none()) {
        return Vec::new();
    }
    let (from, to) = (q.from_hour - shift, q.to_hour - shift);
    cube.cells
        .iter()
        .filter(|((h, dims), _)| *h >= from && *h < to && wanted.iter().all(|(i, id)| Some(dims[*i]) == *id))
        .collect()
}

/// A JSON writer for the answers.
struct Json(Vec<u8>);

impl Json {
    fn raw(&mut self, s: &str) -> &mut Self {
        self.0.extend_from_slice(s.as_bytes());
        self
    }
    fn str(&mut self, s: &str) -> &mut Self {
        self.0.push(b'"');
        push_json_str(&mut self.0, s);
        self.0.push(b'"');
        self
    }
    fn key(&mut self, k: &str) -> &mut Self {
        self.comma().str(k).raw(":")
    }
    fn usd(&mut self, k: &str, pico: i128) -> &mut Self {
        let v = format_usd(pico);
        self.key(k).str(&v)
    }
    fn num(&mut self, k: &str, n: impl std::fmt::Display) -> &mut Self {
        self.key(k).raw(&n.to_string())
    }
    fn opt_ms(&mut self, k: &str, v: Option<f64>) -> &mut Self {
        match v {
            Some(v) => self.num(k, v),
            None => self.key(k).raw("null"),
        }
    }
    fn comma(&mut self) -> &mut Self {
        if !matches!(self.0.last(), Some(b'{' | b'[') | None) {
            self.0.push(b',');
        }
        self
    }
}

fn sums_fields(j: &mut Json, s: &Sums) {
    j.num("requests", s.requests)
        .num("errors", s.errors)
        .num(
            "error_rate",
            if s.requests == 0 {
                0.0
            } else {
                s.errors as f64 / s.requests as f64
            },
        )
        .num("input_tokens", s.input_tokens)
        .num("output_tokens", s.output_tokens)
        .num("cache_read_tokens", s.cache_read_tokens)
        .num("cache_write_tokens", s.cache_write_tokens)
        .usd("cost_usd", s.cost)
        .num("unpriced", s.unpriced)
        .usd("baseline_usd", s.baseline)
        .usd("savings_usd", s.savings());
    if s.output_tokens > 0 {
        j.usd(
            "cost_per_1k_output_usd",
            s.cost.saturating_mul(1000) / i128::from(s.output_tokens),
        );
    } else {
        j.key("cost_per_1k_output_usd").raw("null");
    }
    j.opt_ms("latency_p50_ms", s.latency.quantile_ms(500))
        .opt_ms("latency_p95_ms", s.latency.quantile_ms(950))
        .opt_ms("ttfb_p50_ms", s.ttfb.quantile_ms(500))
        .opt_ms("ttfb_p95_ms", s.ttfb.quantile_ms(950));
}

fn period(j: &mut Json, q: &Query) {
    j.num("from", q.from_hour * 3600).num("to", q.to_hour * 3600);
    j.key("filters").raw("{");
    for (d, v) in &q.filters {
        j.key(d.name()).str(v);
    }
    j.raw("}");
}

/// Sums per value of `by`, over `q`'s period shifted back `shift` hours.
fn grouped(cube: &Cube, q: &Query, by: Dim, shift: i64) -> HashMap<u32, Sums> {
    let mut m: HashMap<u32, Sums> = HashMap::new();
    for ((_, dims), s) in cells(cube, q, shift) {
        m.entry(dims[by as usize]).or_default().merge(s);
    }
    m
}

/// `/api/groups`.
pub fn groups(cube: &Cube, q: &Query) -> Result<Vec<u8>, QueryError> {
    let by = q.dim("by", Dim::Agent)?;
    let now = grouped(cube, q, by, 0);
    let before = grouped(cube, q, by, q.to_hour - q.from_hour);
    let mut list: Vec<(&str, Sums, i128)> = now
        .iter()
        .map(|(id, s)| (cube.dict.name(*id), *s, before.get(id).map_or(0, |b| b.cost)))
        .collect();
    list.sort_by(|a, b| b.1.cost.cmp(&a.1.cost).then_with(|| a.0.cmp(b.0)));
    if list.len() > MAX_GROUPS {
        let mut rest = (OTHER, Sums::default(), 0i128);
        for (_, s, p) in list.drain(MAX_GROUPS..) {
            rest.1.merge(&s);
            rest.2 = rest.2.saturating_add(p);
        }
        list.push(rest);
    }
    let mut total = Sums::default();
    for (_, s, _) in &list {
        total.merge(s);
    }
    let previous = before.values().fold(0i128, |a, s| a.saturating_add(s.cost));
    let mut j = Json(Vec::with_capacity(256 + list.len() * 400));
    j.raw("{").key("by").str(by.name());
    period(&mut j, q);
    j.key("groups").raw("[");
    for (k, s, p) in &list {
        j.comma().raw("{").key("key").str(k);
        sums_fields(&mut j, s);
        j.usd("previous_cost_usd", *p).raw("}");
    }
    j.raw("]").key("total").raw("{");
    sums_fields(&mut j, &total);
    j.usd("previous_cost_usd", previous).raw("}}");
    Ok(j.0)
}

/// One integer measure of a bucket's sums.
type Measure = fn(&Sums) -> i128;

/// `/api/series`.
pub fn series(cube: &Cube, q: &Query) -> Result<Vec<u8>, QueryError> {
    let stack = q.dim("stack", Dim::Department)?;
    let width: i64 = match q.params.get("bucket").map(String::as_str) {
        None | Some("hour") => 1,
        Some("day") => 24,
        Some(v) => return Err(QueryError(format!("`bucket` must be hour or day, not `{v}`"))),
    };
    let first = q.from_hour.div_euclid(width);
    let last = (q.to_hour - 1).div_euclid(width);
    let n = last - first + 1;
    if n > MAX_BUCKETS {
        return Err(QueryError(format!(
            "{n} buckets: choose a shorter period or bucket=day"
        )));
    }
    // Per stacked value: the sums of each bucket.
    let mut by_value: HashMap<u32, Vec<Sums>> = HashMap::new();
    let mut totals: HashMap<u32, i128> = HashMap::new();
    for ((h, dims), s) in cells(cube, q, 0) {
        let v = dims[stack as usize];
        let i = (h.div_euclid(width) - first) as usize;
        by_value.entry(v).or_insert_with(|| vec![Sums::default(); n as usize])[i].merge(s);
        let t = totals.entry(v).or_default();
        *t = t.saturating_add(s.cost);
    }
    let mut order: Vec<(u32, i128)> = totals.into_iter().collect();
    order.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| cube.dict.name(a.0).cmp(cube.dict.name(b.0))));
    let mut series: Vec<(&str, Vec<Sums>)> = Vec::new();
    let mut rest = vec![Sums::default(); n as usize];
    let mut has_rest = false;
    for (i, (v, _)) in order.iter().enumerate() {
        let values = by_value.remove(v).unwrap_or_default();
        if i < MAX_SERIES {
            series.push((cube.dict.name(*v), values));
        } else {
            has_rest = true;
            for (r, x) in rest.iter_mut().zip(values) {
                r.merge(&x);
            }
        }
    }
    if has_rest {
        series.push((OTHER, rest));
    }
    let mut j = Json(Vec::with_capacity(256 + series.len() * n as usize * 64));
    j.raw("{").key("bucket").str(if width == 1 { "hour" } else { "day" });
    j.key("stack").str(stack.name());
    period(&mut j, q);
    j.key("buckets").raw("[");
    for b in 0..n {
        j.comma().raw(&((first + b) * width * 3600).to_string());
    }
    j.raw("]").key("series").raw("[");
    for (k, values) in &series {
        j.comma().raw("{").key("key").str(k).key("cost_usd").raw("[");
        for v in values {
            j.comma().str(&format_usd(v.cost));
        }
        let ints: [(&str, Measure); 4] = [
            ("requests", |s| i128::from(s.requests)),
            ("errors", |s| i128::from(s.errors)),
            ("input_tokens", |s| i128::from(s.input_tokens)),
            ("output_tokens", |s| i128::from(s.output_tokens)),
        ];
        for (name, f) in ints {
            j.raw("]").key(name).raw("[");
            for v in values {
                j.comma().raw(&f(v).to_string());
            }
        }
        j.raw("]}");
    }
    j.raw("]}");
    Ok(j.0)
}

/// `/api/dimensions`.
pub fn dimensions(cube: &Cube, q: &Query) -> Result<Vec<u8>, QueryError> {
    // The lists ignore the filters (so a filter can be changed), not the period.
    let unfiltered = Query {
        filters: Vec::new(),
        ..q.clone()
    };
    let mut seen: [Vec<u32>; 6] = Default::default();
    for ((_, dims), _) in cells(cube, &unfiltered, 0) {
        for (list, id) in seen.iter_mut().zip(dims) {
            if !list.contains(id) {
                list.push(*id);
            }
        }
    }
    let mut j = Json(Vec::with_capacity(1024));
    j.raw("{");
    period(&mut j, q);
    for (d, ids) in Dim::ALL.iter().zip(seen) {
        let mut names: Vec<&str> = ids.iter().map(|i| cube.dict.name(*i)).collect();
        names.sort_unstable();
        j.key(d.name()).raw("[");
        for n in names.iter().take(MAX_GROUPS) {
            j.comma().str(n);
        }
        j.raw("]");
    }
    j.raw("}");
    Ok(j.0)
}

/// `/api/budgets`: each budget key's spend in its current period (`status`: the
/// tracker's, read on the dashboard thread).
pub fn budgets(status: &[crate::budget::tracker::Status]) -> Vec<u8> {
    let mut j = Json(Vec::with_capacity(64 + status.len() * 160));
    j.raw("{").key("budgets").raw("[");
    for s in status {
        let ratio = if s.limit > 0 {
            s.spent as f64 / s.limit as f64
        } else {
            0.0
        };
        j.comma()
            .raw("{")
            .key("budget")
            .str(&s.budget)
            .key("value")
            .str(&s.value);
        j.usd("spent_usd", s.spent)
            .usd("limit_usd", s.limit)
            .num("ratio", ratio)
            .num("blocked_requests", s.blocked_requests)
            .raw("}");
    }
    j.raw("]}");
    j.0
}

/// `/api/summary`: totals, and how fresh and complete the data is.
pub fn summary(cube: &Cube, q: &Query, loading: bool, now: i64) -> Result<Vec<u8>, QueryError> {
    let mut total = Sums::default();
    for (_, s) in cells(cube, q, 0) {
        total.merge(s);
    }
    let mut j = Json(Vec::with_capacity(1024));
    j.raw("{");
    period(&mut j, q);
    j.key("total").raw("{");
    sums_fields(&mut j, &total);
    j.raw("}")
        .num("rows", cube.rows)
        .num("overflow_rows", cube.overflow_rows)
        .key("loading")
        .raw(if loading { "true" } else { "false" })
        .num("as_of", now)
        .raw("}");
    Ok(j.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::usage::UsageRecord;

    fn row(dept: &str, agent: &str, model: &str, cost: i128, secs: i64) -> UsageRecord {
        UsageRecord {
            ts_micros: secs * 1_000_000,
            tenant: "t".into(),
            department: Some(dept.into()),
            agent: Some(agent.into()),
            model_effective: model.into(),
            status: 200,
            cost_pico_usd: Some(cost),
            output_tokens: Some(10),
            latency_ms: 80.0,
            ..Default::default()
        }
    }

    fn text(b: Vec<u8>) -> String {
        String::from_utf8(b).unwrap()
    }

    #[test]
    fn groups_filter_and_trend_are_exact() {
        let day = 20_000 * 86_400;
        let mut c = Cube::default();
        c.add(&row("eng", "a", "m1", 1_000_000_000_001, day + 10));
        c.add(&row("eng", "a", "m2", 2, day + 7200));
        c.add(&row("ops", "b", "m1", 5, day + 3600));
        // The day before: the trend.
        c.add(&row("eng", "a", "m1", 7, day - 3600));
        let q = Query::parse(&format!("from={}&to={}&by=agent", day, day + 86_400), 0).unwrap();
        let t = text(groups(&c, &q).unwrap());
        assert!(t.contains(r#"{"key":"a","requests":2,"#), "{t}");
        assert!(t.contains(r#""cost_usd":"1.000000000003""#), "{t}");
        assert!(t.contains(r#""previous_cost_usd":"0.000000000007""#), "{t}");
        let q = Query::parse(&format!("from={}&to={}&by=model&department=eng", day, day + 86_400), 0).unwrap();
        let t = text(groups(&c, &q).unwrap());
        assert!(!t.contains("\"ops\"") && t.contains(r#""key":"m2""#), "{t}");
        let q = Query::parse("by=model&department=nobody", day).unwrap();
        assert!(text(groups(&c, &q).unwrap()).contains(r#""groups":[]"#));
        assert!(Query::parse("by=colour", 0).and_then(|q| groups(&c, &q)).is_err());
        assert!(Query::parse("from=yesterday", 0).is_err());
        // Times past year 9999 (or before 1970) are refused, not overflowed.
        assert!(Query::parse("to=9223372036854775807", 0).is_err());
        assert!(Query::parse("from=1969-12-31", 0).is_err());
        let far = Query::parse(&format!("from=0&to={MAX_TIME}&by=agent"), 0).unwrap();
        assert!(groups(&c, &far).is_ok() && series(&c, &far).is_err() && summary(&c, &far, false, 0).is_ok());
        assert_eq!(
            Query::parse("from=2024-02-03&to=2024-02-04", 0).unwrap().from_hour * 3600,
            1_706_918_400
        );
    }

    #[test]
    fn series_stack_by_a_dimension_per_bucket() {
        let day = 20_000 * 86_400;
        let mut c = Cube::default();
        c.add(&row("eng", "a", "m1", 3, day + 10));
        c.add(&row("ops", "b", "m1", 4, day + 3600 + 1));
        let q = Query::parse(
            &format!("from={}&to={}&bucket=hour&stack=department", day, day + 3 * 3600),
            0,
        )
        .unwrap();
        let t = text(series(&c, &q).unwrap());
        assert!(
            t.contains(&format!(r#""buckets":[{},{},{}]"#, day, day + 3600, day + 7200)),
            "{t}"
        );
        assert!(
            t.contains(r#"{"key":"ops","cost_usd":["0.000000","0.000000000004","0.000000"],"requests":[0,1,0],"errors":[0,0,0],"input_tokens":[0,0,0],"output_tokens":[0,10,0]}"#),
            "{t}"
        );
        let q = Query::parse(&format!("from={}&to={}&bucket=day", day - 86_400 * 400, day), 0).unwrap();
        assert!(series(&c, &q).is_ok());
        let q = Query::parse(&format!("from={}&to={}&bucket=hour", day - 86_400 * 400, day), 0).unwrap();
        assert!(series(&c, &q).is_err());
        let t = text(
            dimensions(
                &c,
                &Query::parse(&format!("from={day}&to={}", day + 86_400), 0).unwrap(),
            )
            .unwrap(),
        );
        assert!(t.contains(r#""department":["eng","ops"]"#), "{t}");
    }
}
