//! `report`: reads usage Parquet files (any number, any partitions) and prints cost,
//! tokens and error rates grouped by agent, department, project, model, tenant, day,
//! service tier, price scope or optimizer rule (with a tier and a scope breakdown after
//! every table, and the optimizer's savings per rule when it decided anything);
//! `--html FILE` writes one self-contained page (inline CSS and SVG, no scripts, no
//! network) with spend over time, by department and by model.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use crate::args::{flag, FlagSpec};
use crate::usage::record::{format_usd, UsageRecord};
use crate::util::time::Civil;

/// Flags of `report`.
pub const FLAGS: &[FlagSpec] = &[
    flag(
        "usage-dir",
        "DIR",
        "where the Parquet usage files are (any partitions) [default: ./usage]",
    ),
    flag(
        "by",
        "agent|department|project|model|tenant|day|tier|scope|route",
        "how rows are grouped [default: project]",
    ),
    flag(
        "html",
        "FILE",
        "also write a self-contained HTML page with charts to FILE",
    ),
];

/// What rows are grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupBy {
    Agent,
    Department,
    Project,
    Model,
    Tenant,
    Day,
    /// The service tier a call was billed at.
    Tier,
    /// The endpoint scope a call was billed at (global / geo / in-region).
    Scope,
    /// The optimizer rule that decided for the call (`--routes`).
    Route,
}

impl GroupBy {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "agent" => GroupBy::Agent,
            "department" => GroupBy::Department,
            "project" => GroupBy::Project,
            "model" => GroupBy::Model,
            "tenant" => GroupBy::Tenant,
            "day" => GroupBy::Day,
            "tier" => GroupBy::Tier,
            "scope" => GroupBy::Scope,
            "route" => GroupBy::Route,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            GroupBy::Agent => "agent",
            GroupBy::Department => "department",
            GroupBy::Project => "project",
            GroupBy::Model => "model",
            GroupBy::Tenant => "tenant",
            GroupBy::Day => "day",
            GroupBy::Tier => "tier",
            GroupBy::Scope => "scope",
            GroupBy::Route => "route",
        }
    }

    /// The group a row belongs to (`(none)` for a missing tag).
    pub fn key(self, r: &UsageRecord) -> String {
        let tag = |t: &Option<String>| t.clone().unwrap_or_else(|| "(none)".into());
        match self {
            GroupBy::Agent => tag(&r.agent),
            GroupBy::Department => tag(&r.department),
            GroupBy::Project => tag(&r.project),
            GroupBy::Model => r.model_effective.clone(),
            GroupBy::Tenant => r.tenant.clone(),
            GroupBy::Day => day(r.ts_micros),
            GroupBy::Tier => r.service_tier.map_or("(none)", |t| t.as_str()).to_string(),
            GroupBy::Scope => r.price_scope.map_or("(none)", |s| s.as_str()).to_string(),
            GroupBy::Route => tag(&r.route_rule),
        }
    }
}

fn day(ts_micros: i64) -> String {
    Civil::from_unix(ts_micros.div_euclid(1_000_000)).date_dashed()
}

/// Totals of one group.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Totals {
    pub requests: u64,
    pub errors: u64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    /// 1e-12 USD.
    pub cost: i128,
    pub unpriced: u64,
}

impl Totals {
    fn add(&mut self, r: &UsageRecord) {
        self.requests += 1;
        if r.status >= 400 || r.error_type.is_some() {
            self.errors += 1;
        }
        self.input_tokens += r.input_tokens.unwrap_or(0);
        self.output_tokens += r.output_tokens.unwrap_or(0);
        match r.cost_pico_usd {
            Some(c) => self.cost += c,
            // Rows written before cost flags existed: answered with tokens but no cost.
            None if r.unpriced() || (r.status < 400 && r.input_tokens.is_some()) => self.unpriced += 1,
            None => {}
        }
    }

    /// Error rate in percent.
    pub fn error_pct(&self) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            100.0 * self.errors as f64 / self.requests as f64
        }
    }
}

/// Groups rows; sorted by cost, highest first (days: by date).
pub fn group(rows: &[UsageRecord], by: GroupBy) -> Vec<(String, Totals)> {
    let mut m: BTreeMap<String, Totals> = BTreeMap::new();
    for r in rows {
        m.entry(by.key(r)).or_default().add(r);
    }
    let mut v: Vec<(String, Totals)> = m.into_iter().collect();
    if by != GroupBy::Day {
        v.sort_by(|a, b| b.1.cost.cmp(&a.1.cost).then_with(|| a.0.cmp(&b.0)));
    }
    v
}

/// All rows together.
pub fn total(rows: &[UsageRecord]) -> Totals {
    let mut t = Totals::default();
    for r in rows {
        t.add(r);
    }
    t
}

/// The text table.
pub fn text_table(groups: &[(String, Totals)], all: &Totals, by: GroupBy) -> String {
    let w = groups
        .iter()
        .map(|g| g.0.chars().count())
        .max()
        .unwrap_or(5)
        .clamp(5, 60);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<w$}  {:>9}  {:>7}  {:>12}  {:>12}  {:>18}",
        by.name(),
        "requests",
        "errors%",
        "input tok",
        "output tok",
        "cost (USD)"
    );
    for (k, t) in groups {
        let _ = writeln!(
            out,
            "{:<w$}  {:>9}  {:>7.2}  {:>12}  {:>12}  {:>18}",
            k,
            t.requests,
            t.error_pct(),
            t.input_tokens,
            t.output_tokens,
            format_usd(t.cost)
        );
    }
    let _ = writeln!(
        out,
        "{:<w$}  {:>9}  {:>7.2}  {:>12}  {:>12}  {:>18}",
        "TOTAL",
        all.requests,
        all.error_pct(),
        all.input_tokens,
        all.output_tokens,
        format_usd(all.cost)
    );
    if all.unpriced > 0 {
        let _ = writeln!(
            out,
            "({} answered requests had no price: their cost is not included; see their cost_flags)",
            all.unpriced
        );
    }
    out
}

/// The tier and scope breakdowns printed after the main table (whatever it groups by),
/// and the optimizer's savings when it decided anything.
pub fn breakdowns(rows: &[UsageRecord], by: GroupBy) -> String {
    let mut out = String::new();
    let all = total(rows);
    for extra in [GroupBy::Tier, GroupBy::Scope] {
        if extra != by {
            let _ = write!(
                out,
                "\nBy {}:\n{}",
                extra.name(),
                text_table(&group(rows, extra), &all, extra)
            );
        }
    }
    out.push_str(&savings_table(&savings(rows)));
    out
}

/// What one optimizer rule's decisions cost against what the requested models would have.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Savings {
    pub requests: u64,
    /// 1e-12 USD, over the rows priced both ways.
    pub baseline: i128,
    pub actual: i128,
    /// Routed rows whose baseline or cost is unknown (left out of the sums).
    pub unpriced: u64,
}

impl Savings {
    pub fn saved(&self) -> i128 {
        self.baseline - self.actual
    }
}

/// Savings per (rule, action), sorted by rule name.
pub fn savings(rows: &[UsageRecord]) -> Vec<(String, Savings)> {
    let mut m: BTreeMap<String, Savings> = BTreeMap::new();
    for r in rows {
        let (Some(rule), Some(action)) = (&r.route_rule, r.route_action) else {
            continue;
        };
        let e = m.entry(format!("{rule} ({action})")).or_default();
        e.requests += 1;
        match (r.cost_baseline_pico_usd, r.cost_pico_usd) {
            (Some(b), Some(c)) => {
                e.baseline += b;
                e.actual += c;
            }
            _ => e.unpriced += 1,
        }
    }
    m.into_iter().collect()
}

/// The savings table and its total line (empty when no rule decided anything).
pub fn savings_table(rules: &[(String, Savings)]) -> String {
    if rules.is_empty() {
        return String::new();
    }
    let w = rules
        .iter()
        .map(|g| g.0.chars().count())
        .max()
        .unwrap_or(4)
        .clamp(4, 60);
    let mut out = String::from("\nOptimizer savings (baseline: the same tokens on the requested model and region):\n");
    let _ = writeln!(
        out,
        "{:<w$}  {:>9}  {:>18}  {:>18}  {:>18}",
        "rule", "requests", "baseline (USD)", "actual (USD)", "saved (USD)"
    );
    let mut all = Savings::default();
    for (k, s) in rules {
        let _ = writeln!(
            out,
            "{:<w$}  {:>9}  {:>18}  {:>18}  {:>18}",
            k,
            s.requests,
            format_usd(s.baseline),
            format_usd(s.actual),
            format_usd(s.saved())
        );
        all.requests += s.requests;
        all.baseline += s.baseline;
        all.actual += s.actual;
        all.unpriced += s.unpriced;
    }
    let _ = writeln!(
        out,
        "savings: ${} over {} routed requests (baseline ${} − actual ${})",
        format_usd(all.saved()),
        all.requests,
        format_usd(all.baseline),
        format_usd(all.actual)
    );
    if all.unpriced > 0 {
        let _ = writeln!(
            out,
            "({} routed requests could not be priced both ways and are left out)",
            all.unpriced
        );
    }
    out
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// USD as f64, for drawing only (never for sums).
fn usd_f(pico: i128) -> f64 {
    pico as f64 / 1e12
}

/// Horizontal bars for the top groups.
fn bar_chart(title: &str, groups: &[(String, Totals)], max_bars: usize) -> String {
    let shown: Vec<&(String, Totals)> = groups.iter().take(max_bars).collect();
    let max = shown.iter().map(|g| usd_f(g.1.cost)).fold(0.0f64, f64::max).max(1e-12);
    let row_h = 26;
    let h = 30 + row_h * shown.len().max(1);
    let mut s = format!("<figure><figcaption>{}</figcaption><svg role=\"img\" aria-label=\"{}\" viewBox=\"0 0 760 {h}\" width=\"760\" height=\"{h}\">", esc(title), esc(title));
    for (i, (k, t)) in shown.iter().enumerate() {
        let y = 20 + i * row_h;
        let w = (usd_f(t.cost) / max * 440.0).max(1.0);
        let label: String = k.chars().take(34).collect();
        let _ = write!(
            s,
            "<text x=\"0\" y=\"{}\" class=\"l\">{}</text><rect x=\"230\" y=\"{}\" width=\"{w:.1}\" height=\"18\" class=\"b\"><title>{}: ${}</title></rect><text x=\"{:.1}\" y=\"{}\" class=\"v\">${}</text>",
            y + 13,
            esc(&label),
            y,
            esc(k),
            format_usd(t.cost),
            236.0 + w,
            y + 13,
            format_usd(t.cost)
        );
    }
    if shown.is_empty() {
        s.push_str("<text x=\"0\" y=\"20\">no data</text>");
    }
    s.push_str("</svg></figure>");
    s
}

/// Spend per day as vertical bars.
fn day_chart(days: &[(String, Totals)]) -> String {
    let n = days.len().max(1);
    let max = days.iter().map(|d| usd_f(d.1.cost)).fold(0.0f64, f64::max).max(1e-12);
    let (w, h, left, bottom) = (760.0, 260.0, 60.0, 40.0);
    let bw = ((w - left) / n as f64 * 0.8).min(60.0);
    let mut s = format!("<figure><figcaption>Spend over time (USD per day)</figcaption><svg role=\"img\" aria-label=\"spend per day\" viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\">");
    let _ = write!(s, "<line x1=\"{left}\" y1=\"10\" x2=\"{left}\" y2=\"{}\" class=\"ax\"/><line x1=\"{left}\" y1=\"{}\" x2=\"{w}\" y2=\"{}\" class=\"ax\"/>", h - bottom, h - bottom, h - bottom);
    let _ = write!(
        s,
        "<text x=\"0\" y=\"16\" class=\"v\">${:.4}</text><text x=\"0\" y=\"{}\" class=\"v\">$0</text>",
        max,
        h - bottom
    );
    for (i, (d, t)) in days.iter().enumerate() {
        let x = left + 8.0 + i as f64 * (w - left) / n as f64;
        let bh = usd_f(t.cost) / max * (h - bottom - 20.0);
        let _ = write!(
            s,
            "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{bw:.1}\" height=\"{bh:.1}\" class=\"b\"><title>{d}: ${}</title></rect><text x=\"{x:.1}\" y=\"{}\" class=\"d\">{}</text>",
            h - bottom - bh,
            format_usd(t.cost),
            h - bottom + 16.0,
            esc(&d[5..])
        );
    }
    s.push_str("</svg></figure>");
    s
}

fn html_table(by: GroupBy, groups: &[(String, Totals)]) -> String {
    let mut s = format!(
        "<table><thead><tr><th>{}</th><th>requests</th><th>errors %</th><th>input tokens</th><th>output tokens</th><th>cost (USD)</th></tr></thead><tbody>",
        by.name()
    );
    for (k, t) in groups {
        let _ = write!(
            s,
            "<tr><td>{}</td><td>{}</td><td>{:.2}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(k),
            t.requests,
            t.error_pct(),
            t.input_tokens,
            t.output_tokens,
            format_usd(t.cost)
        );
    }
    s.push_str("</tbody></table>");
    s
}

/// The self-contained HTML page.
pub fn html(rows: &[UsageRecord], by: GroupBy, source: &Path) -> String {
    let all = total(rows);
    let days = group(rows, GroupBy::Day);
    let depts = group(rows, GroupBy::Department);
    let models = group(rows, GroupBy::Model);
    let chosen = group(rows, by);
    let range = match (days.first(), days.last()) {
        (Some(a), Some(b)) => format!("{} to {}", a.0, b.0),
        _ => "no data".into(),
    };
    let mut s = String::with_capacity(16 * 1024);
    s.push_str("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>LLM cost report</title><style>");
    s.push_str("body{font:14px/1.4 system-ui,sans-serif;margin:24px auto;max-width:820px;color:#1d232a}h1{font-size:22px}h2{font-size:17px;margin-top:28px}");
    s.push_str(".k{display:flex;gap:12px;flex-wrap:wrap}.k div{background:#f2f5f8;border-radius:6px;padding:10px 14px}.k b{display:block;font-size:20px}");
    s.push_str("figure{margin:12px 0}figcaption{font-weight:600;margin-bottom:6px}.b{fill:#3b7dd8}.l{font-size:12px}.v{font-size:11px;fill:#555}.d{font-size:10px;fill:#555}.ax{stroke:#999}");
    s.push_str("table{border-collapse:collapse;width:100%;font-size:13px}th,td{border-bottom:1px solid #e3e7eb;padding:4px 6px;text-align:right}th:first-child,td:first-child{text-align:left}</style></head><body>");
    let _ = write!(
        s,
        "<h1>LLM cost report</h1><p>{} usage rows from <code>{}</code>, {}.</p>",
        all.requests,
        esc(&source.display().to_string()),
        esc(&range)
    );
    let _ = write!(
        s,
        "<div class=\"k\"><div><b>${}</b>total spend</div><div><b>{}</b>requests</div><div><b>{:.2}%</b>errors</div><div><b>{}</b>input tokens</div><div><b>{}</b>output tokens</div></div>",
        format_usd(all.cost),
        all.requests,
        all.error_pct(),
        all.input_tokens,
        all.output_tokens
    );
    if all.unpriced > 0 {
        let _ = write!(
            s,
            "<p>{} successful requests used models without a price; their cost is not included.</p>",
            all.unpriced
        );
    }
    s.push_str(&day_chart(&days));
    s.push_str(&bar_chart("Spend by department (USD)", &depts, 12));
    s.push_str(&bar_chart("Spend by model (USD)", &models, 12));
    s.push_str(&bar_chart(
        "Spend by service tier (USD)",
        &group(rows, GroupBy::Tier),
        6,
    ));
    s.push_str(&bar_chart(
        "Spend by price scope (USD)",
        &group(rows, GroupBy::Scope),
        4,
    ));
    let rules = savings(rows);
    if !rules.is_empty() {
        let total: i128 = rules.iter().map(|r| r.1.saved()).sum();
        let _ = write!(
            s,
            "<h2>Optimizer savings</h2><p>Saved <b>${}</b> against the requested models and regions.</p><table><thead><tr><th>rule</th><th>requests</th><th>baseline (USD)</th><th>actual (USD)</th><th>saved (USD)</th></tr></thead><tbody>",
            format_usd(total)
        );
        for (k, r) in &rules {
            let _ = write!(
                s,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(k),
                r.requests,
                format_usd(r.baseline),
                format_usd(r.actual),
                format_usd(r.saved())
            );
        }
        s.push_str("</tbody></table>");
    }
    let _ = write!(s, "<h2>By {}</h2>", by.name());
    s.push_str(&html_table(by, &chosen));
    s.push_str("<p><small>Costs are exact sums of per-request costs (decimal, 12 places). Generated by llmops-proxy report.</small></p></body></html>\n");
    s
}

/// `report --budgets`: each budget's spend in its current period (from the rows), limit,
/// percentage and the top spenders inside it (its values for `"*"`, else its agents).
pub fn budget_table(rows: &[UsageRecord], budgets: &[crate::budget::Budget], now: i64) -> String {
    use crate::budget::tracker::period_id;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<20} {:<10} {:<16} {:>16} {:>16} {:>7}  top spenders",
        "budget", "scope", "value", "spent (USD)", "limit (USD)", "used%"
    );
    for b in budgets {
        let current = period_id(b.period, now);
        let mut per_value: BTreeMap<String, i128> = BTreeMap::new();
        let mut per_agent: BTreeMap<String, i128> = BTreeMap::new();
        for r in rows {
            if period_id(b.period, r.ts_micros.div_euclid(1_000_000)) != current {
                continue;
            }
            let (Some(v), Some(c)) = (b.key_for(r), r.cost_pico_usd) else {
                continue;
            };
            *per_value.entry(v.to_string()).or_default() += c;
            *per_agent
                .entry(r.agent.clone().unwrap_or_else(|| "(none)".into()))
                .or_default() += c;
        }
        let mut values: Vec<(String, i128)> = per_value.into_iter().collect();
        values.sort_by_key(|v| std::cmp::Reverse(v.1));
        if b.value == "*" {
            let top: Vec<String> = values
                .iter()
                .take(5)
                .map(|(v, c)| format!("{v} ${}", format_usd(*c)))
                .collect();
            let worst = values.first().map_or(0, |v| v.1);
            let _ = writeln!(
                out,
                "{:<20} {:<10} {:<16} {:>16} {:>16} {:>7.1}  {}",
                b.name,
                b.scope.as_str(),
                format!("* ({} values)", values.len()),
                format_usd(worst),
                format_usd(b.limit),
                100.0 * worst as f64 / b.limit as f64,
                top.join(", ")
            );
        } else {
            let spent: i128 = values.iter().map(|v| v.1).sum();
            let mut agents: Vec<(String, i128)> = per_agent.into_iter().collect();
            agents.sort_by_key(|v| std::cmp::Reverse(v.1));
            let top: Vec<String> = agents
                .iter()
                .take(5)
                .map(|(v, c)| format!("{v} ${}", format_usd(*c)))
                .collect();
            let _ = writeln!(
                out,
                "{:<20} {:<10} {:<16} {:>16} {:>16} {:>7.1}  {}",
                b.name,
                b.scope.as_str(),
                b.value,
                format_usd(spent),
                format_usd(b.limit),
                100.0 * spent as f64 / b.limit as f64,
                top.join(", ")
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(dept: &str, model: &str, cost: i128, status: u16, day: i64) -> UsageRecord {
        UsageRecord {
            ts_micros: day * 86_400_000_000 + 1,
            department: Some(dept.into()),
            model_effective: model.into(),
            cost_pico_usd: Some(cost),
            input_tokens: Some(10),
            output_tokens: Some(5),
            status,
            ..Default::default()
        }
    }

    #[test]
    fn groups_and_totals_are_exact() {
        let rows = vec![
            row("eng", "a", 1_000_000_000_001, 200, 20_000),
            row("eng", "b", 2, 200, 20_001),
            row("ops", "a", 3, 429, 20_001),
        ];
        let g = group(&rows, GroupBy::Department);
        assert_eq!(g[0].0, "eng");
        assert_eq!(g[0].1.cost, 1_000_000_000_003);
        assert_eq!(g[1].1.errors, 1);
        let d = group(&rows, GroupBy::Day);
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].0, "2024-10-04");
        let t = total(&rows);
        assert_eq!(
            (t.requests, t.errors, t.input_tokens, t.cost),
            (3, 1, 30, 1_000_000_000_006)
        );
        let text = text_table(&g, &t, GroupBy::Department);
        assert!(text.contains("1.000000000003") && text.contains("TOTAL"));
        let budgets = crate::budget::BudgetFile::parse(
            "[[budget]]\nname = \"d\"\nscope = \"department\"\nvalue = \"*\"\nperiod = \"month\"\nlimit_usd = \"2\"\naction = \"block\"\n",
        )
        .unwrap()
        .budgets;
        let bt = budget_table(&rows, &budgets, 20_001 * 86_400);
        assert!(
            bt.contains("d ") && bt.contains("* (2 values)") && bt.contains("eng $1.000000000003"),
            "{bt}"
        );
        let mut tiered = rows.clone();
        tiered[0].service_tier = Some(crate::pricing::Tier::Priority);
        tiered[1].price_scope = Some(crate::pricing::Scope::Geo);
        let tiers = group(&tiered, GroupBy::Tier);
        assert_eq!(tiers[0].0, "priority");
        assert_eq!(tiers[0].1.cost, 1_000_000_000_001);
        let extra = breakdowns(&tiered, GroupBy::Tier);
        assert!(
            extra.contains("By scope") && !extra.contains("By tier") && extra.contains("geo"),
            "{extra}"
        );
        let page = html(&rows, GroupBy::Model, Path::new("/x<y"));
        assert!(page.contains("<svg") && page.contains("/x&lt;y") && !page.contains("<script"));
    }
}
