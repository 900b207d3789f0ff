//! The price table and the resolution of one call's cost.
//!
//! An entry (one model id) holds cards: the base card (the entry's top-level figures) and
//! any number of `[[models."id".card]]`s narrowed by selectors (scope, source regions,
//! tier, latency, long context, validity dates). For each token class the most specific
//! matching card that gives a figure wins (specificity: the number of selectors it sets;
//! a tie goes to the card written later); the entry's factors then scale that figure for
//! every dimension the card did not select on (scope, tier, latency, long context). An
//! explicit figure therefore always wins over a derived one. All products are exact
//! integers: a file whose factors would make a price inexact is refused at load.
//!
//! Resolution allocates nothing: map lookups by `&str`, a scan of the entry's few cards,
//! integer arithmetic. `explain` runs the same code with a trace that records each step.

use crate::util::hash::FastMap;
use std::sync::Arc;

use super::decimal::{femto_to_pico, format_factor, format_price, FACTOR_ONE};
use super::dims::{Class, Factor, Flag, Flags, Latency, Meter, Named, Scope, Tier, CLASSES, FACTORS, METERS};

/// Per-class figures, femto-USD per token.
pub(crate) type Figures = [Option<i128>; CLASSES];
/// Per-class factors, units of 1e-4 (a class without one is unscaled).
pub(crate) type ClassFactors = [Option<i128>; CLASSES];

/// When a card applies.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selector {
    /// Bit per [`Scope`].
    pub scope: Option<u8>,
    /// Source regions (region sets expanded), sorted.
    pub regions: Option<Vec<Box<str>>>,
    /// Bit per [`Tier`].
    pub tier: Option<u8>,
    /// Bit per [`Latency`].
    pub latency: Option<u8>,
    /// Whether the request is above the entry's long-context threshold.
    pub long_context: Option<bool>,
    /// First UTC day (days since 1970-01-01) the card applies, inclusive.
    pub from_day: Option<i64>,
    /// UTC day the card stops applying, exclusive.
    pub until_day: Option<i64>,
}

/// The dimensions of one call, as resolved.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ctx<'a> {
    pub scope: Scope,
    pub region: &'a str,
    pub tier: Tier,
    pub latency: Latency,
    pub long: bool,
    pub day: i64,
}

impl Selector {
    /// How many selectors the card sets (dates count as one).
    pub(crate) fn specificity(&self) -> u32 {
        [
            self.scope.is_some(),
            self.regions.is_some(),
            self.tier.is_some(),
            self.latency.is_some(),
            self.long_context.is_some(),
            self.from_day.is_some() || self.until_day.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count() as u32
    }

    pub(crate) fn matches(&self, c: &Ctx<'_>) -> bool {
        let bit = |mask: Option<u8>, i: usize| mask.is_none_or(|m| m & (1 << i) != 0);
        bit(self.scope, c.scope.index())
            && bit(self.tier, c.tier.index())
            && bit(self.latency, c.latency.index())
            && self.long_context.is_none_or(|l| l == c.long)
            && self.from_day.is_none_or(|d| c.day >= d)
            && self.until_day.is_none_or(|d| c.day < d)
            && self
                .regions
                .as_ref()
                .is_none_or(|r| r.binary_search_by(|x| (**x).cmp(c.region)).is_ok())
    }

    /// A short description (`scope=geo regions=eu-central-1`), for explanations.
    pub(crate) fn describe(&self) -> String {
        fn names<T: Named>(mask: u8) -> String {
            T::ALL
                .iter()
                .filter(|v| mask & (1 << v.index()) != 0)
                .map(|v| v.as_str())
                .collect::<Vec<_>>()
                .join("|")
        }
        let mut parts = Vec::new();
        if let Some(m) = self.scope {
            parts.push(format!("scope={}", names::<Scope>(m)));
        }
        if let Some(r) = &self.regions {
            parts.push(format!("regions={}", r.join("|")));
        }
        if let Some(m) = self.tier {
            parts.push(format!("tier={}", names::<Tier>(m)));
        }
        if let Some(m) = self.latency {
            parts.push(format!("latency={}", names::<Latency>(m)));
        }
        if let Some(l) = self.long_context {
            parts.push(format!("long_context={l}"));
        }
        let day = |d: i64| {
            let (y, m, dd) = crate::util::time::civil_from_days(d);
            format!("{y:04}-{m:02}-{dd:02}")
        };
        if let Some(d) = self.from_day {
            parts.push(format!("from={}", day(d)));
        }
        if let Some(d) = self.until_day {
            parts.push(format!("until={}", day(d)));
        }
        if parts.is_empty() {
            "base card".into()
        } else {
            parts.join(" ")
        }
    }
}

/// One card: figures that apply when its selector matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Card {
    pub sel: Selector,
    pub figures: Figures,
    /// Figures the file marks as not confirmed against AWS (rows are flagged).
    pub unconfirmed: bool,
    /// Position in the file (the base card is 0).
    pub order: usize,
}

/// Where an entry came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    BuiltIn,
    Custom,
}

/// One model's prices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The `price_id` of rows it prices (`custom:` prefix for `--pricing` entries).
    pub id: Arc<str>,
    /// Most specific first; the base card last.
    pub cards: Vec<Card>,
    pub factors: [Option<ClassFactors>; FACTORS],
    /// Total input tokens above which the long-context rate applies.
    pub long_context_above: Option<i64>,
    pub source: Source,
}

impl Entry {
    /// Orders the cards for resolution: most selectors first; among equals, fewer
    /// regions first (`eu-south-1` before the `eu` set), then later in the file first.
    pub(crate) fn sort_cards(&mut self) {
        self.cards.sort_by_key(|c| {
            (
                std::cmp::Reverse(c.sel.specificity()),
                c.sel.regions.as_ref().map_or(usize::MAX, Vec::len),
                std::cmp::Reverse(c.order),
            )
        });
    }

    fn factor(&self, f: Factor, class: Class) -> Option<i128> {
        self.factors[f.index()].map(|cf| cf[class.index()].unwrap_or(FACTOR_ONE))
    }

    fn has_factor(&self, f: Factor) -> bool {
        self.factors[f.index()].is_some()
    }

    /// Whether the price depends on the service tier.
    pub(crate) fn tier_sensitive(&self) -> bool {
        Tier::ALL.iter().any(|t| self.has_factor(Factor::of_tier(*t)))
            || self.cards.iter().any(|c| c.sel.tier.is_some())
    }

    /// Whether the price depends on the latency mode.
    pub(crate) fn latency_sensitive(&self) -> bool {
        Latency::ALL.iter().any(|l| self.has_factor(Factor::of_latency(*l)))
            || self.cards.iter().any(|c| c.sel.latency.is_some())
    }

    /// The factors that scale `card`'s figure for `class` in `ctx`: one per dimension
    /// the card does not select on (scope, tier, latency, long context), in that order.
    /// Errs when the call's tier or latency has neither a card nor a factor.
    fn factors_for(&self, card: &Card, class: Class, ctx: &Ctx<'_>) -> Result<[Option<(Factor, i128)>; 4], Flag> {
        let mut out = [None; 4];
        if card.sel.scope.is_none() {
            let f = Factor::of_scope(ctx.scope);
            out[0] = self.factor(f, class).map(|v| (f, v));
        }
        if card.sel.tier.is_none() {
            let f = Factor::of_tier(ctx.tier);
            out[1] = self.factor(f, class).map(|v| (f, v));
            if out[1].is_none() && ctx.tier != Tier::Default {
                return Err(Flag::TierUnpriced);
            }
        }
        if card.sel.latency.is_none() {
            let f = Factor::of_latency(ctx.latency);
            out[2] = self.factor(f, class).map(|v| (f, v));
            if out[2].is_none() && ctx.latency != Latency::Standard {
                return Err(Flag::LatencyUnpriced);
            }
        }
        if ctx.long && card.sel.long_context.is_none() {
            out[3] = self.factor(Factor::Long, class).map(|v| (Factor::Long, v));
        }
        Ok(out)
    }

    /// `figure` x the factors, before division: (numerator, power of [`FACTOR_ONE`]).
    fn scaled(figure: i128, factors: &[Option<(Factor, i128)>; 4]) -> Option<(i128, u32)> {
        let mut num = figure;
        let mut den = 0u32;
        for (_, v) in factors.iter().flatten() {
            num = num.checked_mul(*v)?;
            den += 1;
        }
        Some((num, den))
    }

    /// The per-token price of `class` in `ctx`, femto-USD, and whether its card is
    /// unconfirmed. Errs with the flag that says why there is no price.
    pub(crate) fn price_of(&self, class: Class, ctx: &Ctx<'_>, trace: &mut Trace<'_>) -> Result<(i128, bool), Flag> {
        let Some(card) = self
            .cards
            .iter()
            .find(|c| c.figures[class.index()].is_some() && c.sel.matches(ctx))
        else {
            trace.note(|| format!("  {class}: no card gives a price for this class"));
            return Err(Flag::ClassUnpriced);
        };
        let figure = card.figures[class.index()].unwrap_or(0);
        let factors = self.factors_for(card, class, ctx).inspect_err(|f| {
            trace.note(|| {
                format!(
                    "  {class}: {f}: no card or factor prices {} / {}",
                    ctx.tier, ctx.latency
                )
            });
        })?;
        let (num, den) = Self::scaled(figure, &factors).ok_or(Flag::ClassUnpriced)?;
        // Exact by construction: a file is refused at load if any product is not.
        let price = num / FACTOR_ONE.pow(den);
        trace.note(|| {
            let steps: Vec<String> = factors
                .iter()
                .flatten()
                .map(|(f, v)| format!(" x {f} {}", format_factor(*v)))
                .collect();
            format!(
                "  {class}: {} from {}{}{} = {} per 1M",
                format_price(figure),
                card.sel.describe(),
                if card.unconfirmed { " (unconfirmed)" } else { "" },
                steps.concat(),
                format_price(price)
            )
        });
        Ok((price, card.unconfirmed))
    }

    /// Every price any card can derive is an exact integer of femto-USD and fits (run at
    /// load over every scope, tier, latency and context).
    pub(crate) fn check_exact(&self) -> Result<(), String> {
        let longs: &[bool] = if self.long_context_above.is_some() {
            &[false, true]
        } else {
            &[false]
        };
        for card in &self.cards {
            for class in Class::ALL {
                let Some(figure) = card.figures[class.index()] else {
                    continue;
                };
                for (scope, tier, latency, long) in Scope::ALL.iter().flat_map(|s| {
                    Tier::ALL.iter().flat_map(move |t| {
                        Latency::ALL
                            .iter()
                            .flat_map(move |l| longs.iter().map(move |g| (*s, *t, *l, *g)))
                    })
                }) {
                    let ctx = Ctx {
                        scope,
                        region: "",
                        tier,
                        latency,
                        long,
                        day: 0,
                    };
                    let Ok(factors) = self.factors_for(card, *class, &ctx) else {
                        continue;
                    };
                    let applied = || {
                        factors
                            .iter()
                            .flatten()
                            .map(|(f, v)| format!("{f} {}", format_factor(*v)))
                            .collect::<Vec<_>>()
                            .join(" x ")
                    };
                    let Some((num, den)) = Self::scaled(figure, &factors) else {
                        return Err(format!("{class}: {} x {} overflows", format_price(figure), applied()));
                    };
                    if num % FACTOR_ONE.pow(den) != 0 {
                        return Err(format!(
                            "{class} {} x {} is not exact to 1e-9 USD per 1M tokens; give that card's figure explicitly",
                            format_price(figure),
                            applied()
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

/// An application-inference-profile (or any ARN) mapped to a model by the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alias {
    pub model: Box<str>,
    pub scope: Option<Scope>,
}

/// The table.
#[derive(Debug, Clone, Default)]
pub struct PriceTable {
    pub entries: FastMap<Box<str>, Entry>,
    pub aliases: FastMap<Box<str>, Alias>,
    /// Femto-USD per unit.
    pub meters: [Option<i128>; METERS],
    /// Recorded in every priced row's `price_version`.
    pub version: Arc<str>,
}

/// What a response said it used (the inputs of a cost besides the model).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Metered {
    pub input: Option<i64>,
    pub output: Option<i64>,
    pub cache_read: Option<i64>,
    /// `cacheWriteInputTokens`.
    pub cache_write: Option<i64>,
    /// From `cacheDetails` (`ttl` 5m / 1h), when the response had them.
    pub cache_write_5m: Option<i64>,
    pub cache_write_1h: Option<i64>,
    /// Guardrail units by [`Meter`], when the response had a guardrail trace.
    pub guardrail: Option<[i64; METERS]>,
}

/// One call to price.
#[derive(Debug, Clone, Copy)]
pub struct Query<'a> {
    /// The model id sent upstream (after geo prefixing).
    pub model: &'a str,
    /// `trace.promptRouter.invokedModelId`: a prompt router bills the model it invoked.
    pub invoked: Option<&'a str>,
    /// The source region (the endpoint called).
    pub region: &'a str,
    /// UTC day of the request (days since 1970-01-01).
    pub day: i64,
    pub tier_reported: Option<Tier>,
    pub tier_requested: Option<Tier>,
    pub latency_reported: Option<Latency>,
    pub latency_requested: Option<Latency>,
    pub usage: &'a Metered,
}

/// How a call was priced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Priced {
    /// Pico-USD; `None` when unknown.
    pub cost_pico: Option<i128>,
    /// The entry used.
    pub price_id: Option<Arc<str>>,
    pub version: Option<Arc<str>>,
    pub scope: Option<Scope>,
    pub tier: Option<Tier>,
    pub latency: Option<Latency>,
    pub cache_write_5m: Option<i64>,
    pub cache_write_1h: Option<i64>,
    pub guardrail_units: Option<i64>,
    pub flags: Flags,
}

/// Where `explain` collects the steps of a resolution (off on the request path).
pub struct Trace<'a>(pub Option<&'a mut Vec<String>>);

impl Trace<'_> {
    pub fn off() -> Trace<'static> {
        Trace(None)
    }

    pub(crate) fn note(&mut self, f: impl FnOnce() -> String) {
        if let Some(t) = self.0.as_deref_mut() {
            t.push(f());
        }
    }
}

/// Prefixes of geographic inference profiles (`global.` is the global scope).
pub(crate) const GEO_PREFIXES: &[&str] = &["us.", "eu.", "apac.", "us-gov.", "jp.", "au.", "ca."];

/// The scope a model id addresses, and the id without its profile prefix.
pub(crate) fn scope_of(id: &str) -> (Scope, &str) {
    if let Some(b) = id.strip_prefix("global.") {
        return (Scope::Global, b);
    }
    for p in GEO_PREFIXES {
        if let Some(b) = id.strip_prefix(p) {
            return (Scope::Geo, b);
        }
    }
    (Scope::InRegion, id)
}

/// The resource of a Bedrock ARN: (`foundation-model`, `anthropic.x`).
pub(crate) fn arn_resource(arn: &str) -> Option<(&str, &str)> {
    let rest = arn.strip_prefix("arn:")?;
    // partition:service:region:account:resource
    let mut it = rest.splitn(5, ':');
    let (_, service, _, _, resource) = (it.next()?, it.next()?, it.next()?, it.next()?, it.next()?);
    if service != "bedrock" {
        return None;
    }
    resource.split_once('/')
}

/// The cache-write split into `out` (all 5m, flagged, when the response had no
/// `cacheDetails`); returns the tokens written.
fn split_cache_writes(u: &Metered, out: &mut Priced) -> i64 {
    if u.cache_write_5m.is_some() || u.cache_write_1h.is_some() {
        let (w5, w1) = (u.cache_write_5m.unwrap_or(0), u.cache_write_1h.unwrap_or(0));
        out.cache_write_5m = Some(w5);
        out.cache_write_1h = Some(w1);
        return w5 + w1;
    }
    let written = u.cache_write.unwrap_or(0);
    if written > 0 {
        out.cache_write_5m = Some(written);
        out.cache_write_1h = Some(0);
        out.flags.set(Flag::CacheTtlAssumed);
    }
    written
}

/// `dimensions region R tier T (reported) latency L (default, not reported)`.
fn dimensions_line(q: &Query<'_>, tier: Tier, latency: Latency) -> String {
    let how = |reported: bool, requested: bool| {
        if reported {
            " (reported)"
        } else if requested {
            " (requested, not reported)"
        } else {
            " (default, not reported)"
        }
    };
    format!(
        "dimensions region {} tier {tier}{} latency {latency}{}",
        q.region,
        how(q.tier_reported.is_some(), q.tier_requested.is_some()),
        how(q.latency_reported.is_some(), q.latency_requested.is_some()),
    )
}

/// Every token class's count at its price, femto-USD; `None` (with the flag that says
/// why) when a class with tokens has no price.
fn price_tokens(
    entry: &Entry,
    ctx: &Ctx<'_>,
    counts: &[i64; CLASSES],
    flags: &mut Flags,
    trace: &mut Trace<'_>,
) -> Option<i128> {
    let mut femto: i128 = 0;
    let mut priced = true;
    for class in Class::ALL {
        let n = counts[class.index()].max(0) as i128;
        if n == 0 {
            continue;
        }
        let line = match entry.price_of(*class, ctx, trace) {
            Ok((p, unconfirmed)) => {
                if unconfirmed {
                    flags.set(Flag::PriceUnconfirmed);
                }
                let line = n.checked_mul(p);
                if let Some(line) = line {
                    trace.note(|| {
                        format!(
                            "  {class}: {n} x {} / 1M = {} USD",
                            format_price(p),
                            super::decimal::format_scaled(line, 15, 6)
                        )
                    });
                }
                line.ok_or(Flag::ClassUnpriced)
            }
            Err(f) => Err(f),
        };
        match line {
            Ok(l) => femto = femto.saturating_add(l),
            Err(f) => {
                flags.set(f);
                priced = false;
            }
        }
    }
    priced.then_some(femto)
}

impl PriceTable {
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// The entry and scope for a model id (aliases, ARNs and profile prefixes resolved).
    pub(crate) fn resolve<'a>(&'a self, id: &'a str, trace: &mut Trace<'_>) -> Result<(&'a Entry, Scope), Flag> {
        let mut id = id;
        let mut forced: Option<Scope> = None;
        if let Some(a) = self.aliases.get(id) {
            trace.note(|| {
                format!(
                    "alias      {id} -> {}{}",
                    a.model,
                    a.scope.map(|s| format!(" (scope {s})")).unwrap_or_default()
                )
            });
            id = &a.model;
            forced = a.scope;
        }
        // An entry may name any id exactly, an ARN included (a provisioned model).
        if let Some(e) = self.entries.get(id) {
            let scope = forced.unwrap_or_else(|| match arn_resource(id) {
                Some(("inference-profile", m)) => scope_of(m).0,
                Some(_) => Scope::InRegion,
                None => scope_of(id).0,
            });
            trace.note(|| format!("entry      {} (scope {scope})", e.id));
            return Ok((e, scope));
        }
        let mut arn_scope = None;
        if id.starts_with("arn:") {
            match arn_resource(id) {
                Some(("foundation-model", m)) => {
                    arn_scope = Some(Scope::InRegion);
                    id = m;
                }
                Some(("inference-profile", m)) => id = m,
                Some(("application-inference-profile", _)) => {
                    trace.note(|| "model      an application inference profile with no [aliases] entry".into());
                    return Err(Flag::UnmappedProfile);
                }
                _ => {
                    trace.note(|| "model      an ARN the table cannot price (add an [aliases] entry)".into());
                    return Err(Flag::UnknownModel);
                }
            }
        }
        let (prefix_scope, base) = scope_of(id);
        let scope = forced.or(arn_scope).unwrap_or(prefix_scope);
        let entry = self.entries.get(id).or_else(|| self.entries.get(base));
        match entry {
            Some(e) => {
                trace.note(|| format!("entry      {} (scope {scope})", e.id));
                Ok((e, scope))
            }
            None => {
                trace.note(|| format!("entry      none for {id}"));
                Err(Flag::UnknownModel)
            }
        }
    }

    /// Whether the table has a price for `model` (aliases, ARNs and profile prefixes
    /// resolved); a prompt router's own id is not one.
    pub fn knows(&self, model: &str) -> bool {
        self.resolve(model, &mut Trace::off()).is_ok()
    }

    /// Prices one call. Never fails: what it cannot price is `None` with flags.
    pub fn price(&self, q: &Query<'_>, trace: &mut Trace<'_>) -> Priced {
        let u = q.usage;
        let mut out = Priced {
            version: Some(self.version.clone()),
            guardrail_units: u.guardrail.map(|g| g.iter().sum()),
            ..Default::default()
        };
        let written = split_cache_writes(u, &mut out);
        let model = q.invoked.unwrap_or(q.model);
        if q.invoked.is_some() {
            trace.note(|| format!("router     invoked {model}"));
        }
        let tier = q.tier_reported.or(q.tier_requested).unwrap_or(Tier::Default);
        let latency = q.latency_reported.or(q.latency_requested).unwrap_or(Latency::Standard);
        out.tier = Some(tier);
        out.latency = Some(latency);
        let (entry, scope) = match self.resolve(model, trace) {
            Ok(r) => r,
            Err(f) => {
                out.scope = Some(scope_of(model).0);
                out.flags.set(f);
                out.flags.set(Flag::Unpriced);
                return out;
            }
        };
        out.scope = Some(scope);
        out.price_id = Some(entry.id.clone());
        if q.tier_reported.is_none() && entry.tier_sensitive() {
            out.flags.set(Flag::TierAssumed);
        }
        if q.latency_reported.is_none() && entry.latency_sensitive() {
            out.flags.set(Flag::LatencyAssumed);
        }
        trace.note(|| dimensions_line(q, tier, latency));
        if u.input.is_none() && u.output.is_none() {
            trace.note(|| "usage      none in the response".into());
            out.flags.set(Flag::NoUsage);
            out.flags.set(Flag::Unpriced);
            return out;
        }
        let total_input = u.input.unwrap_or(0) + u.cache_read.unwrap_or(0) + written;
        let long = entry.long_context_above.is_some_and(|t| total_input > t);
        trace.note(|| match entry.long_context_above {
            Some(t) => format!(
                "context    total input {total_input} {} {t}: {} rate",
                if long { ">" } else { "<=" },
                if long { "long-context" } else { "standard" }
            ),
            None => format!("context    total input {total_input} (no long-context rate)"),
        });
        let ctx = Ctx {
            scope,
            region: q.region,
            tier,
            latency,
            long,
            day: q.day,
        };
        let counts: [i64; CLASSES] = [
            u.input.unwrap_or(0),
            u.output.unwrap_or(0),
            u.cache_read.unwrap_or(0),
            out.cache_write_5m.unwrap_or(0),
            out.cache_write_1h.unwrap_or(0),
        ];
        let tokens = price_tokens(entry, &ctx, &counts, &mut out.flags, trace);
        let meters = u
            .guardrail
            .as_ref()
            .map_or(Some(0), |g| self.price_meters(g, &mut out.flags, trace));
        let (Some(tokens), Some(meters)) = (tokens, meters) else {
            out.flags.set(Flag::Unpriced);
            return out;
        };
        let (pico, rounded) = femto_to_pico(tokens.saturating_add(meters));
        if rounded {
            out.flags.set(Flag::CostRounded);
        }
        out.cost_pico = Some(pico);
        trace.note(|| format!("total      {} USD", super::decimal::format_scaled(pico, 12, 6)));
        out
    }

    /// Guardrail units at the `[meters]` prices, femto-USD; `None` when a meter with
    /// units has no price.
    fn price_meters(&self, g: &[i64; METERS], flags: &mut Flags, trace: &mut Trace<'_>) -> Option<i128> {
        let mut femto: i128 = 0;
        let mut priced = true;
        for m in Meter::ALL {
            let n = g[m.index()].max(0) as i128;
            if n == 0 {
                continue;
            }
            match self.meters[m.index()] {
                Some(p) => {
                    let line = n.saturating_mul(p);
                    femto = femto.saturating_add(line);
                    trace.note(|| {
                        format!(
                            "  {m}: {n} units x {} / 1K = {} USD",
                            super::decimal::format_scaled(p, 12, 0),
                            super::decimal::format_scaled(line, 15, 6)
                        )
                    });
                }
                None => {
                    trace.note(|| format!("  {m}: {n} units, no [meters] price"));
                    flags.set(Flag::GuardrailUnpriced);
                    priced = false;
                }
            }
        }
        priced.then_some(femto)
    }

    /// A copy whose ids are allocated anew, so that a shard's rows share no reference
    /// count with another shard's.
    pub fn for_shard(&self) -> PriceTable {
        let mut t = self.clone();
        t.version = Arc::from(&*self.version);
        for e in t.entries.values_mut() {
            e.id = Arc::from(&*e.id);
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arns_and_scopes() {
        assert_eq!(
            arn_resource("arn:aws:bedrock:us-east-1::foundation-model/anthropic.x:0"),
            Some(("foundation-model", "anthropic.x:0"))
        );
        assert_eq!(
            arn_resource("arn:aws:bedrock:us-east-1:123:application-inference-profile/abc"),
            Some(("application-inference-profile", "abc"))
        );
        assert_eq!(arn_resource("arn:aws:s3:::bucket/x"), None);
        assert_eq!(scope_of("global.anthropic.x"), (Scope::Global, "anthropic.x"));
        assert_eq!(scope_of("us-gov.anthropic.x"), (Scope::Geo, "anthropic.x"));
        assert_eq!(scope_of("anthropic.x"), (Scope::InRegion, "anthropic.x"));
    }
}

#[cfg(test)]
mod worked_example {
    use super::*;

    #[test]
    fn the_reference_example_costs_0_21681() {
        let t = PriceTable::builtin();
        let usage = Metered {
            input: Some(1200),
            output: Some(2500),
            cache_read: Some(150_000),
            cache_write: Some(20_000),
            cache_write_5m: Some(4000),
            cache_write_1h: Some(16_000),
            guardrail: None,
        };
        let q = Query {
            model: "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
            invoked: None,
            region: "us-east-1",
            day: 20_500,
            tier_reported: Some(Tier::Default),
            tier_requested: None,
            latency_reported: Some(Latency::Standard),
            latency_requested: None,
            usage: &usage,
        };
        let mut lines = Vec::new();
        let p = t.price(&q, &mut Trace(Some(&mut lines)));
        assert_eq!(p.cost_pico, Some(216_810_000_000), "{}", lines.join("\n"));
        assert_eq!(p.scope, Some(Scope::Geo));
        assert!(p.flags.is_empty(), "{:?}", p.flags);
        assert_eq!(p.price_id.as_deref(), Some("anthropic.claude-sonnet-4-5-20250929-v1:0"));
    }
}
