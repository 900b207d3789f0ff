//! What `llmops-proxy prices` prints for an operator checking a figure against the bill:
//! `explain` (the card chosen and every line of the arithmetic, from the same resolution
//! the proxy runs) and `check` (a price file validated, and what it overrides).

use super::file::{parse, PriceFile, PriceFileError};
use super::table::{PriceTable, Priced, Query, Source, Trace};
use crate::args::{flag, FlagSpec};

/// Flags of `prices explain`.
pub(crate) const FLAGS: &[FlagSpec] = &[
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

/// Prices `q` and returns the result with the steps that led to it.
pub(crate) fn explain(table: &PriceTable, q: &Query<'_>) -> (Priced, Vec<String>) {
    let mut lines = vec![format!("table      {}", table.version)];
    let priced = table.price(q, &mut Trace(Some(&mut lines)));
    if !priced.flags.is_empty() {
        lines.push(format!("flags      {}", priced.flags.to_column().unwrap_or_default()));
    }
    if priced.cost_pico.is_none() {
        lines.push("total      unknown (the row's cost_usd is null)".into());
    }
    (priced, lines)
}

/// Validates a price file and lists what it changes in the built-in table.
pub(crate) fn check(text: &str) -> Result<Vec<String>, PriceFileError> {
    let f: PriceFile = parse(text, Source::Custom)?;
    let builtin = PriceTable::builtin();
    let mut out = Vec::new();
    let (mut replaced, mut added) = (0, 0);
    for (model, e) in &f.entries {
        let cards = e.cards.len();
        if builtin.entries.contains_key(model.as_str()) {
            replaced += 1;
            out.push(format!("overrides  {model} ({cards} card(s))"));
        } else {
            added += 1;
            out.push(format!("adds       {model} ({cards} card(s))"));
        }
    }
    for (arn, a) in &f.aliases {
        out.push(format!(
            "alias      {arn} -> {}{}",
            a.model,
            a.scope.map(|s| format!(" (scope {s})")).unwrap_or_default()
        ));
    }
    for (m, v) in super::dims::Meter::ALL.iter().zip(f.meters) {
        if let Some(v) = v {
            out.push(format!(
                "meter      {m} = {} USD per 1,000 units{}",
                super::decimal::format_scaled(v, 12, 0),
                if builtin.meters[m.index()].is_some() {
                    " (overrides)"
                } else {
                    ""
                }
            ));
        }
    }
    out.push(format!(
        "ok: {} entr{} ({replaced} overriding the built-in table, {added} new), {} alias(es); version {}",
        f.entries.len(),
        if f.entries.len() == 1 { "y" } else { "ies" },
        f.aliases.len(),
        f.version.as_deref().unwrap_or("custom-<hash of the file>")
    ));
    Ok(out)
}
