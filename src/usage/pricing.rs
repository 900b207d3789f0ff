//! Prices and exact cost. A price is USD per 1M tokens as a decimal string with at most
//! 6 fractional digits, held as an integer count of 1e-12 USD per token; the cost of a
//! request is then an exact integer in 1e-12 USD — the `decimal(38,12)` of the row. No
//! floating point anywhere in the money path.
//!
//! The built-in table (`prices_builtin.toml`, seeded from LiteLLM's public price list)
//! is overridden entry by entry by `--pricing FILE`. Geo-prefixed ids (`us.`, `eu.`, ...)
//! fall back to the base model's price unless listed themselves.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use crate::bedrock::model::GeoRules;

/// The built-in table, same format as `--pricing`.
pub const BUILTIN_PRICES: &str = include_str!("prices_builtin.toml");
/// Most fractional digits a price (USD per 1M tokens) may have for costs to stay exact.
pub const MAX_PRICE_DECIMALS: usize = 6;

/// Why a price file was refused.
#[derive(Debug)]
pub enum PriceFileError {
    Io(std::io::Error),
    Toml(String),
    Entry {
        model: String,
        field: &'static str,
        why: String,
    },
}

impl fmt::Display for PriceFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PriceFileError::Io(e) => write!(f, "cannot read: {e}"),
            PriceFileError::Toml(e) => write!(f, "not valid TOML: {e}"),
            PriceFileError::Entry { model, field, why } => write!(f, "[models.\"{model}\"] {field}: {why}"),
        }
    }
}

impl std::error::Error for PriceFileError {}

/// Parses a decimal USD-per-1M string into 1e-12 USD per token.
pub fn parse_price(s: &str) -> Result<i128, String> {
    let s = s.trim();
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if int.is_empty() && frac.is_empty() {
        return Err("empty price".into());
    }
    if !int.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("`{s}` is not a non-negative decimal number like \"0.06\""));
    }
    if frac.len() > MAX_PRICE_DECIMALS {
        return Err(format!("`{s}` has more than {MAX_PRICE_DECIMALS} decimal places"));
    }
    if int.len() > 12 {
        return Err(format!("`{s}` is implausibly large"));
    }
    let int: i128 = if int.is_empty() {
        0
    } else {
        int.parse().map_err(|_| format!("`{s}` is not a number"))?
    };
    let mut frac_v: i128 = if frac.is_empty() {
        0
    } else {
        frac.parse().map_err(|_| format!("`{s}` is not a number"))?
    };
    for _ in frac.len()..MAX_PRICE_DECIMALS {
        frac_v *= 10;
    }
    // USD per 1M tokens × 1e6 = 1e-12 USD per token.
    Ok(int * 1_000_000 + frac_v)
}

/// One model's prices, 1e-12 USD per token; `None`: not charged / unknown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Price {
    pub id: String,
    pub input: Option<i128>,
    pub output: Option<i128>,
    pub cache_read: Option<i128>,
    pub cache_write: Option<i128>,
}

/// Token counts of one request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tokens {
    pub input: Option<i64>,
    pub output: Option<i64>,
    pub cache_read: Option<i64>,
    pub cache_write: Option<i64>,
}

impl Price {
    /// Exact cost in 1e-12 USD, or `None` when a token kind with a non-zero count has
    /// no price, or no token count is known at all.
    pub fn cost(&self, t: &Tokens) -> Option<i128> {
        if t.input.is_none() && t.output.is_none() {
            return None;
        }
        let mut total: i128 = 0;
        for (n, p) in [
            (t.input, self.input),
            (t.output, self.output),
            (t.cache_read, self.cache_read),
            (t.cache_write, self.cache_write),
        ] {
            let n = n.unwrap_or(0).max(0) as i128;
            if n == 0 {
                continue;
            }
            total = total.checked_add(n.checked_mul(p?)?)?;
        }
        Some(total)
    }
}

/// The price table.
#[derive(Debug, Clone, Default)]
pub struct PriceTable {
    models: HashMap<String, Price>,
}

impl PriceTable {
    /// The built-in table.
    pub fn builtin() -> Self {
        // The embedded table is checked by a unit test; an error here is a build defect.
        Self::parse(BUILTIN_PRICES, "").unwrap_or_default()
    }

    /// Built-in table overridden by a user file.
    pub fn with_overrides(path: Option<&Path>) -> Result<Self, PriceFileError> {
        let mut t = Self::builtin();
        if let Some(p) = path {
            let text = std::fs::read_to_string(p).map_err(PriceFileError::Io)?;
            let user = Self::parse(&text, "custom:")?;
            t.models.extend(user.models);
        }
        Ok(t)
    }

    /// Parses `[models."id"] input = "0.06" ...`; `id_prefix` marks the source in `price_id`.
    pub fn parse(text: &str, id_prefix: &str) -> Result<Self, PriceFileError> {
        let table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| PriceFileError::Toml(e.message().to_string()))?;
        let mut models = HashMap::new();
        let Some(m) = table.get("models") else {
            return Ok(PriceTable { models });
        };
        let m = m
            .as_table()
            .ok_or_else(|| PriceFileError::Toml("`models` must be a table of [models.\"id\"] entries".into()))?;
        for (model, entry) in m {
            let e = entry.as_table().ok_or_else(|| PriceFileError::Entry {
                model: model.clone(),
                field: "entry",
                why: "must be a table".into(),
            })?;
            let field = |name: &'static str| -> Result<Option<i128>, PriceFileError> {
                match e.get(name) {
                    None => Ok(None),
                    Some(toml::Value::String(s)) => parse_price(s).map(Some).map_err(|why| PriceFileError::Entry {
                        model: model.clone(),
                        field: name,
                        why,
                    }),
                    Some(_) => Err(PriceFileError::Entry {
                        model: model.clone(),
                        field: name,
                        why: "must be a decimal string such as \"0.06\" (quoted, so no float rounding)".into(),
                    }),
                }
            };
            for k in e.keys() {
                if !["input", "output", "cache_read", "cache_write"].contains(&k.as_str()) {
                    return Err(PriceFileError::Entry {
                        model: model.clone(),
                        field: "entry",
                        why: format!("unknown field `{k}`"),
                    });
                }
            }
            let price = Price {
                id: format!("{id_prefix}{model}"),
                input: field("input")?,
                output: field("output")?,
                cache_read: field("cache_read")?,
                cache_write: field("cache_write")?,
            };
            if price.input.is_none() || price.output.is_none() {
                return Err(PriceFileError::Entry {
                    model: model.clone(),
                    field: "input/output",
                    why: "both are required".into(),
                });
            }
            models.insert(model.clone(), price);
        }
        Ok(PriceTable { models })
    }

    pub fn len(&self) -> usize {
        self.models.len()
    }

    pub fn is_empty(&self) -> bool {
        self.models.is_empty()
    }

    /// The price for a request: the effective id, else its base model (geo prefix
    /// removed), else the requested id.
    pub fn lookup(&self, effective: &str, requested: &str, geo: &GeoRules) -> Option<&Price> {
        self.models
            .get(effective)
            .or_else(|| geo.base_model(effective).and_then(|b| self.models.get(b)))
            .or_else(|| self.models.get(requested))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_prices() {
        assert_eq!(parse_price("0.06").unwrap(), 60_000);
        assert_eq!(parse_price("3").unwrap(), 3_000_000);
        assert_eq!(parse_price("0.000001").unwrap(), 1);
        assert!(parse_price("0.0000001").is_err());
        assert!(parse_price("-1").is_err());
        assert!(parse_price("1e-6").is_err());
    }

    #[test]
    fn builtin_table_loads_and_prices_exactly() {
        let t = PriceTable::parse(BUILTIN_PRICES, "").unwrap();
        assert!(t.len() > 200);
        let g = GeoRules::default().sorted();
        let p = t.lookup("amazon.nova-lite-v1:0", "amazon.nova-lite-v1:0", &g).unwrap();
        // 1000 in × $0.06/M + 500 out × $0.24/M = $0.00006 + $0.00012 = $0.00018.
        let c = p
            .cost(&Tokens {
                input: Some(1000),
                output: Some(500),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(c, 180_000_000);
        // Listed geo id uses its own price; an unlisted one falls back to the base.
        assert_eq!(
            t.lookup("eu.amazon.nova-lite-v1:0", "amazon.nova-lite-v1:0", &g)
                .unwrap()
                .id,
            "eu.amazon.nova-lite-v1:0"
        );
        assert_eq!(
            t.lookup("ca.amazon.nova-lite-v1:0", "x", &g).unwrap().id,
            "amazon.nova-lite-v1:0"
        );
        assert!(t.lookup("nobody.model", "nobody.model", &g).is_none());
    }

    #[test]
    fn overrides_and_errors() {
        let t = PriceTable::parse("[models.\"a.b\"]\ninput = \"1\"\noutput = \"2\"\n", "custom:").unwrap();
        let p = t.lookup("a.b", "a.b", &GeoRules::default()).unwrap();
        assert_eq!(p.id, "custom:a.b");
        // Cache tokens without a cache price: cost unknown rather than wrong.
        assert_eq!(
            p.cost(&Tokens {
                input: Some(1),
                output: Some(1),
                cache_read: Some(5),
                cache_write: None
            }),
            None
        );
        assert_eq!(
            p.cost(&Tokens {
                input: Some(1),
                output: Some(1),
                cache_read: Some(0),
                cache_write: None
            }),
            Some(3_000_000)
        );
        assert!(PriceTable::parse("[models.\"a\"]\ninput = 0.06\noutput = \"1\"\n", "").is_err());
        assert!(PriceTable::parse("[models.\"a\"]\ninput = \"1\"\n", "").is_err());
    }
}
