//! The price file (`--pricing FILE` and the built-in table; DESIGN.md §4), in TOML:
//!
//! ```toml
//! [meta]
//! version = "acme-2026-12"          # recorded in each row's price_version
//!
//! [regions]                          # named region sets, usable in `regions`
//! us = ["us-east-1", "us-east-2", "us-west-1", "us-west-2"]
//!
//! [models."amazon.nova-lite-v1:0"]   # a flat entry: a card with one price
//! input = "0.06"                     # USD per 1M tokens, decimal strings
//! output = "0.24"
//! cache_read = "0.015"
//! cache_write = "0.06"               # = cache_write_5m
//!
//! [models."anthropic.claude-sonnet-4-5-20250929-v1:0"]
//! input = "3"                        # the base card
//! output = "15"
//! cache_read = "0.3"
//! cache_write_5m = "3.75"
//! cache_write_1h = "6"
//! long_context_above = 200000        # total input above which `long` applies
//! factors = { geo = "1.10", in_region = "1.10", long = { input = "2", output = "1.5" } }
//!
//! [[models."amazon.nova-pro-v1:0".card]]   # an explicit card, narrowed by selectors
//! regions = ["eu-central-1"]         # also: scope, tier, latency, long_context, from, until
//! input = "1.05"
//! output = "4.2"
//!
//! [aliases."arn:aws:bedrock:us-east-1:111122223333:application-inference-profile/abc"]
//! model = "anthropic.claude-sonnet-4-5-20250929-v1:0"
//! scope = "geo"
//!
//! [meters]                           # USD per 1,000 units
//! guardrail_content_policy = "0.15"
//! ```
//!
//! Every error names the table and field it is about.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use super::decimal::{parse_factor, parse_meter, parse_price};
use super::dims::{Class, Factor, Latency, Meter, Named, Scope, Tier, CLASSES, FACTORS, METERS};
use super::table::{Alias, Card, ClassFactors, Entry, PriceTable, Selector, Source};
use crate::bedrock::region::is_valid_region;

/// The built-in table, same format as `--pricing`.
pub const BUILTIN_PRICES: &str = include_str!("builtin.toml");
/// Most cards one entry may have.
pub(crate) const MAX_CARDS: usize = 256;
/// Largest long-context threshold accepted (tokens).
pub(crate) const MAX_LONG_CONTEXT: i64 = 100_000_000;

/// Why a price file was refused.
#[derive(Debug)]
pub enum PriceFileError {
    Io(std::io::Error),
    Toml(String),
    /// `at` names the table and field (`[models."x"] card 2: regions`).
    At {
        at: String,
        why: String,
    },
}

impl fmt::Display for PriceFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PriceFileError::Io(e) => write!(f, "cannot read: {e}"),
            PriceFileError::Toml(e) => write!(f, "not valid TOML: {e}"),
            PriceFileError::At { at, why } => write!(f, "{at}: {why}"),
        }
    }
}

impl std::error::Error for PriceFileError {}

fn err(at: impl Into<String>, why: impl Into<String>) -> PriceFileError {
    PriceFileError::At {
        at: at.into(),
        why: why.into(),
    }
}

/// A parsed price file, before it is merged into a table.
#[derive(Debug, Clone, Default)]
pub struct PriceFile {
    pub version: Option<String>,
    pub entries: Vec<(String, Entry)>,
    pub aliases: Vec<(String, Alias)>,
    pub meters: [Option<i128>; METERS],
}

const FIGURE_KEYS: [&str; 6] = [
    "input",
    "output",
    "cache_read",
    "cache_write",
    "cache_write_5m",
    "cache_write_1h",
];

fn string<'a>(v: &'a toml::Value, at: &str) -> Result<&'a str, PriceFileError> {
    v.as_str().ok_or_else(|| err(at, "must be a string"))
}

fn decimal(v: &toml::Value, at: &str, parse: fn(&str) -> Result<i128, String>) -> Result<i128, PriceFileError> {
    match v {
        toml::Value::String(s) => parse(s).map_err(|why| err(at, why)),
        _ => Err(err(
            at,
            "must be a decimal string such as \"0.06\" (quoted, so no float rounding)",
        )),
    }
}

/// Reads the figure keys of a card or base entry.
fn figures(t: &toml::Table, at: &str) -> Result<[Option<i128>; CLASSES], PriceFileError> {
    let mut f = [None; CLASSES];
    let get = |k: &str| -> Result<Option<i128>, PriceFileError> {
        t.get(k)
            .map(|v| decimal(v, &format!("{at} {k}"), parse_price))
            .transpose()
    };
    f[Class::Input.index()] = get("input")?;
    f[Class::Output.index()] = get("output")?;
    f[Class::CacheRead.index()] = get("cache_read")?;
    let w = get("cache_write")?;
    let w5 = get("cache_write_5m")?;
    if w.is_some() && w5.is_some() {
        return Err(err(
            at,
            "give cache_write (the 5-minute price) or cache_write_5m, not both",
        ));
    }
    f[Class::CacheWrite5m.index()] = w.or(w5);
    f[Class::CacheWrite1h.index()] = get("cache_write_1h")?;
    Ok(f)
}

/// The selector `key` of a card (one name or a list of names) as a bit mask over `T`.
fn mask<T: Named>(t: &toml::Table, key: &str, at: &str) -> Result<Option<u8>, PriceFileError> {
    let Some(v) = t.get(key) else { return Ok(None) };
    let at = format!("{at} {key}");
    let one = |s: &toml::Value| -> Result<usize, PriceFileError> {
        let s = string(s, &at)?;
        T::parse(s)
            .map(T::index)
            .ok_or_else(|| err(&at, format!("`{s}` is not one of {}", T::names())))
    };
    let mut m = 0u8;
    match v {
        toml::Value::Array(a) if !a.is_empty() => {
            for x in a {
                m |= 1 << one(x)?;
            }
        }
        toml::Value::Array(_) => return Err(err(&at, "must not be empty")),
        other => m |= 1 << one(other)?,
    }
    Ok(Some(m))
}

fn day(v: &toml::Value, at: &str) -> Result<i64, PriceFileError> {
    let s = match v {
        toml::Value::String(s) => s.clone(),
        toml::Value::Datetime(d) => d.to_string(),
        _ => return Err(err(at, "must be a date YYYY-MM-DD")),
    };
    parse_date(&s).ok_or_else(|| err(at, format!("`{s}` is not a date YYYY-MM-DD")))
}

/// `YYYY-MM-DD` → days since 1970-01-01.
pub(crate) fn parse_date(s: &str) -> Option<i64> {
    let mut it = s.split('-');
    let (y, m, d) = (it.next()?, it.next()?, it.next()?);
    if it.next().is_some() || y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return None;
    }
    let (y, m, d): (i32, u32, u32) = (y.parse().ok()?, m.parse().ok()?, d.parse().ok()?);
    let days = crate::util::time::days_from_civil(y, m, d);
    // Reject 2026-02-30 and friends: the round trip must give the same date.
    (crate::util::time::civil_from_days(days) == (y, m, d)).then_some(days)
}

fn selector(
    t: &toml::Table,
    at: &str,
    regions: &HashMap<String, Vec<String>>,
    has_long: bool,
) -> Result<Selector, PriceFileError> {
    let mut s = Selector {
        scope: mask::<Scope>(t, "scope", at)?,
        tier: mask::<Tier>(t, "tier", at)?,
        latency: mask::<Latency>(t, "latency", at)?,
        ..Default::default()
    };
    if let Some(v) = t.get("regions") {
        let at = format!("{at} regions");
        let list = v
            .as_array()
            .filter(|a| !a.is_empty())
            .ok_or_else(|| err(&at, "must be a non-empty list of regions or region-set names"))?;
        let mut out: Vec<Box<str>> = Vec::new();
        for r in list {
            let r = string(r, &at)?;
            match regions.get(r) {
                Some(set) => out.extend(set.iter().map(|x| Box::from(x.as_str()))),
                None if is_valid_region(r) => out.push(Box::from(r)),
                None => return Err(err(&at, format!("`{r}` is neither a region nor a [regions] set"))),
            }
        }
        out.sort();
        out.dedup();
        s.regions = Some(out);
    }
    if let Some(v) = t.get("long_context") {
        let l = v
            .as_bool()
            .ok_or_else(|| err(format!("{at} long_context"), "must be true or false"))?;
        if !has_long {
            return Err(err(
                format!("{at} long_context"),
                "the entry has no long_context_above threshold",
            ));
        }
        s.long_context = Some(l);
    }
    if let Some(v) = t.get("from") {
        s.from_day = Some(day(v, &format!("{at} from"))?);
    }
    if let Some(v) = t.get("until") {
        s.until_day = Some(day(v, &format!("{at} until"))?);
    }
    if let (Some(f), Some(u)) = (s.from_day, s.until_day) {
        if u <= f {
            return Err(err(format!("{at} until"), "must be after `from`"));
        }
    }
    Ok(s)
}

fn factors(v: &toml::Value, at: &str) -> Result<[Option<ClassFactors>; FACTORS], PriceFileError> {
    let t = v
        .as_table()
        .ok_or_else(|| err(at, "must be a table such as { geo = \"1.10\" }"))?;
    let mut out = [None; FACTORS];
    for (k, v) in t {
        let at = format!("{at}.{k}");
        let f = Factor::parse(k).ok_or_else(|| err(&at, format!("unknown factor; one of {}", Factor::names())))?;
        let mut cf: ClassFactors = [None; CLASSES];
        match v {
            toml::Value::String(_) => {
                let x = decimal(v, &at, parse_factor)?;
                cf = [Some(x); CLASSES];
            }
            toml::Value::Table(per) => {
                for (c, x) in per {
                    let class = match c.as_str() {
                        "cache_write" => Class::CacheWrite5m,
                        other => Class::parse(other).ok_or_else(|| {
                            err(
                                format!("{at}.{c}"),
                                format!("unknown token class; one of {}", Class::names()),
                            )
                        })?,
                    };
                    cf[class.index()] = Some(decimal(x, &format!("{at}.{c}"), parse_factor)?);
                }
            }
            _ => return Err(err(&at, "must be a decimal string or a table of classes")),
        }
        out[f.index()] = Some(cf);
    }
    Ok(out)
}

/// Keys of an entry besides its figures.
const ENTRY_KEYS: [&str; 4] = ["long_context_above", "factors", "card", "unconfirmed"];
/// Keys of a card besides its figures.
const CARD_KEYS: [&str; 8] = [
    "scope",
    "regions",
    "tier",
    "latency",
    "long_context",
    "from",
    "until",
    "unconfirmed",
];

fn unknown_keys(t: &toml::Table, allowed: &[&str], at: &str) -> Result<(), PriceFileError> {
    match t.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(err(at, format!("unknown field `{k}`"))),
        None => Ok(()),
    }
}

fn unconfirmed(t: &toml::Table, at: &str) -> Result<bool, PriceFileError> {
    match t.get("unconfirmed") {
        None => Ok(false),
        Some(v) => v
            .as_bool()
            .ok_or_else(|| err(format!("{at} unconfirmed"), "must be true or false")),
    }
}

fn entry(
    model: &str,
    e: &toml::Table,
    source: Source,
    regions: &HashMap<String, Vec<String>>,
) -> Result<Entry, PriceFileError> {
    let at = format!("[models.\"{model}\"]");
    unknown_keys(e, &[&FIGURE_KEYS[..], &ENTRY_KEYS[..]].concat(), &at)?;
    let base = figures(e, &at)?;
    if base[Class::Input.index()].is_none() || base[Class::Output.index()].is_none() {
        return Err(err(format!("{at} input/output"), "both are required"));
    }
    let long_context_above = match e.get("long_context_above") {
        None => None,
        Some(toml::Value::Integer(n)) if *n > 0 && *n <= MAX_LONG_CONTEXT => Some(*n),
        Some(_) => {
            return Err(err(
                format!("{at} long_context_above"),
                format!("must be a whole number of tokens between 1 and {MAX_LONG_CONTEXT}"),
            ))
        }
    };
    let factors = match e.get("factors") {
        None => [None; FACTORS],
        Some(v) => factors(v, &format!("{at} factors"))?,
    };
    let mut cards = vec![Card {
        sel: Selector::default(),
        figures: base,
        unconfirmed: unconfirmed(e, &at)?,
        order: 0,
    }];
    if let Some(list) = e.get("card") {
        let list = list
            .as_array()
            .ok_or_else(|| err(format!("{at} card"), "must be [[models.\"id\".card]] tables"))?;
        if list.len() > MAX_CARDS {
            return Err(err(format!("{at} card"), format!("more than {MAX_CARDS} cards")));
        }
        for (i, c) in list.iter().enumerate() {
            let cat = format!("{at} card {}", i + 1);
            let t = c.as_table().ok_or_else(|| err(&cat, "must be a table"))?;
            unknown_keys(t, &[&FIGURE_KEYS[..], &CARD_KEYS[..]].concat(), &cat)?;
            let figures = figures(t, &cat)?;
            if figures.iter().all(Option::is_none) {
                return Err(err(&cat, format!("gives no price (one of {})", FIGURE_KEYS.join(", "))));
            }
            let sel = selector(t, &cat, regions, long_context_above.is_some())?;
            if sel.specificity() == 0 {
                return Err(err(
                    &cat,
                    "selects nothing (set scope, regions, tier, latency, long_context, from or until)",
                ));
            }
            cards.push(Card {
                sel,
                figures,
                unconfirmed: unconfirmed(t, &cat)?,
                order: i + 1,
            });
        }
    }
    let id = match source {
        Source::BuiltIn => model.to_string(),
        Source::Custom => format!("custom:{model}"),
    };
    let mut entry = Entry {
        id: Arc::from(id.as_str()),
        cards,
        factors,
        long_context_above,
        source,
    };
    entry.sort_cards();
    entry.check_exact().map_err(|why| err(&at, why))?;
    Ok(entry)
}

/// Parses a price file.
pub fn parse(text: &str, source: Source) -> Result<PriceFile, PriceFileError> {
    let root: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| PriceFileError::Toml(e.message().to_string()))?;
    unknown_keys(&root, &["meta", "regions", "models", "aliases", "meters"], "file")?;
    let mut out = PriceFile::default();
    if let Some(m) = root.get("meta") {
        let m = m.as_table().ok_or_else(|| err("[meta]", "must be a table"))?;
        unknown_keys(m, &["version", "source", "date"], "[meta]")?;
        if let Some(v) = m.get("version") {
            let v = string(v, "[meta] version")?;
            if v.is_empty() || v.len() > 64 || !v.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(err("[meta] version", "must be 1 to 64 printable ASCII characters"));
            }
            out.version = Some(v.to_string());
        }
    }
    let mut regions: HashMap<String, Vec<String>> = HashMap::new();
    if let Some(r) = root.get("regions") {
        let r = r
            .as_table()
            .ok_or_else(|| err("[regions]", "must be a table of lists"))?;
        for (name, list) in r {
            let at = format!("[regions] {name}");
            if is_valid_region(name) {
                return Err(err(&at, "a region-set name must not look like a region"));
            }
            let list = list.as_array().ok_or_else(|| err(&at, "must be a list of regions"))?;
            let mut set = Vec::new();
            for x in list {
                let x = string(x, &at)?;
                if !is_valid_region(x) {
                    return Err(err(&at, format!("`{x}` is not a region name")));
                }
                set.push(x.to_string());
            }
            regions.insert(name.clone(), set);
        }
    }
    if let Some(m) = root.get("models") {
        let m = m
            .as_table()
            .ok_or_else(|| err("[models]", "must be a table of [models.\"id\"] entries"))?;
        for (model, e) in m {
            let t = e
                .as_table()
                .ok_or_else(|| err(format!("[models.\"{model}\"]"), "must be a table"))?;
            out.entries.push((model.clone(), entry(model, t, source, &regions)?));
        }
    }
    if let Some(a) = root.get("aliases") {
        let a = a
            .as_table()
            .ok_or_else(|| err("[aliases]", "must be a table of [aliases.\"arn\"] entries"))?;
        for (arn, v) in a {
            let at = format!("[aliases.\"{arn}\"]");
            let t = v.as_table().ok_or_else(|| err(&at, "must be a table"))?;
            unknown_keys(t, &["model", "scope"], &at)?;
            let model = string(
                t.get("model").ok_or_else(|| err(&at, "needs model = \"...\""))?,
                &format!("{at} model"),
            )?;
            let scope =
                match t.get("scope") {
                    None => None,
                    Some(v) => {
                        let s = string(v, &format!("{at} scope"))?;
                        Some(Scope::parse(s).ok_or_else(|| {
                            err(format!("{at} scope"), format!("`{s}` is not one of {}", Scope::names()))
                        })?)
                    }
                };
            out.aliases.push((
                arn.clone(),
                Alias {
                    model: Box::from(model),
                    scope,
                },
            ));
        }
    }
    if let Some(m) = root.get("meters") {
        let m = m.as_table().ok_or_else(|| err("[meters]", "must be a table"))?;
        for (k, v) in m {
            let at = format!("[meters] {k}");
            let meter = Meter::parse(k).ok_or_else(|| err(&at, format!("unknown meter; one of {}", Meter::names())))?;
            out.meters[meter.index()] = Some(decimal(v, &at, parse_meter)?);
        }
    }
    Ok(out)
}

/// The first 8 hex digits of the SHA-256 of `text`.
fn short_hash(text: &str) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    crate::util::hex::encode(&d.as_ref()[..4])
}

impl PriceTable {
    /// The built-in table.
    pub fn builtin() -> Self {
        // The embedded table is checked by a unit test; an error here is a build defect.
        let f = parse(BUILTIN_PRICES, Source::BuiltIn).unwrap_or_default();
        let mut t = PriceTable {
            version: Arc::from(f.version.as_deref().unwrap_or("builtin")),
            ..Default::default()
        };
        t.merge(f);
        t
    }

    /// Adds a file's entries, aliases and meters, replacing what it names.
    pub fn merge(&mut self, f: PriceFile) {
        for (k, e) in f.entries {
            self.entries.insert(k.into_boxed_str(), e);
        }
        for (k, a) in f.aliases {
            self.aliases.insert(k.into_boxed_str(), a);
        }
        for (slot, m) in self.meters.iter_mut().zip(f.meters) {
            if m.is_some() {
                *slot = m;
            }
        }
    }

    /// The built-in table overridden by a user file; `price_version` becomes
    /// `{builtin}+{file version or custom-<hash>}`.
    pub(crate) fn with_overrides(path: Option<&Path>) -> Result<Self, PriceFileError> {
        let mut t = Self::builtin();
        if let Some(p) = path {
            let text = std::fs::read_to_string(p).map_err(PriceFileError::Io)?;
            let user = parse(&text, Source::Custom)?;
            let v = user
                .version
                .clone()
                .unwrap_or_else(|| format!("custom-{}", short_hash(&text)));
            t.version = Arc::from(format!("{}+{v}", t.version).as_str());
            t.merge(user);
        }
        Ok(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_table_loads() {
        let f = parse(BUILTIN_PRICES, Source::BuiltIn).unwrap();
        assert!(f.entries.len() > 100, "{}", f.entries.len());
        assert!(f.version.is_some());
    }

    #[test]
    fn errors_name_the_field() {
        let e = |t: &str| parse(t, Source::Custom).unwrap_err().to_string();
        assert!(e("[models.\"a\"]\ninput = 0.06\noutput = \"1\"\n").contains("[models.\"a\"] input"));
        assert!(e("[models.\"a\"]\ninput = \"1\"\n").contains("input/output"));
        assert!(e("[models.\"a\"]\ninput = \"1\"\noutput = \"1\"\nbogus = 1\n").contains("unknown field `bogus`"));
        assert!(e("[models.\"a\"]\ninput = \"1\"\noutput = \"1\"\n[[models.\"a\".card]]\nregions = [\"nowhere\"]\ninput = \"2\"\n")
            .contains("card 1 regions"));
        assert!(
            e("[models.\"a\"]\ninput = \"1\"\noutput = \"1\"\n[[models.\"a\".card]]\ninput = \"2\"\n")
                .contains("selects nothing")
        );
        assert!(e("[models.\"a\"]\ninput = \"1\"\noutput = \"1\"\n[[models.\"a\".card]]\nlong_context = true\ninput = \"2\"\n")
            .contains("long_context_above"));
        assert!(
            e("[models.\"a\"]\ninput = \"1\"\noutput = \"1\"\nfactors = { turbo = \"2\" }\n")
                .contains("unknown factor")
        );
        assert!(e("[models.\"a\"]\ninput = \"1\"\noutput = \"1\"\n[[models.\"a\".card]]\nfrom = \"2026-02-30\"\ninput = \"2\"\n")
            .contains("not a date"));
        // 0.000000001 x 1.5 is not exact to 1e-9 per 1M.
        assert!(
            e("[models.\"a\"]\ninput = \"0.000000001\"\noutput = \"1\"\nfactors = { priority = \"1.5\" }\n")
                .contains("not exact")
        );
        assert!(e("[aliases.\"arn:x\"]\nscope = \"geo\"\n").contains("needs model"));
        assert!(e("[meters]\nguardrail_nope = \"1\"\n").contains("unknown meter"));
        assert!(
            e("[models.\"a\"]\ninput = \"1\"\noutput = \"1\"\ncache_write = \"1\"\ncache_write_5m = \"1\"\n")
                .contains("not both")
        );
    }

    #[test]
    fn dates() {
        assert_eq!(parse_date("1970-01-02"), Some(1));
        assert_eq!(parse_date("2026-03-13"), Some(20525));
        assert_eq!(parse_date("2026-13-01"), None);
        assert_eq!(parse_date("2026-3-1"), None);
    }
}
