//! The budget file: `[[budget]] name, scope, value, period, limit_usd, action`, and
//! `allow_unpriced`. A malformed file names the budget and the field. Tag values
//! (department, project, agent) are matched after trimming and case-folding, so `ENG` and
//! ` eng ` count under an `eng` budget (and under one `*` key); tenant and model values
//! match exactly.

use std::borrow::Cow;
use std::fmt;
use std::path::Path;

use crate::pricing::decimal::parse_usd;
use crate::usage::UsageRecord;

/// What a budget is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    Tenant,
    Department,
    Project,
    Agent,
    Model,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Tenant => "tenant",
            Scope::Department => "department",
            Scope::Project => "project",
            Scope::Agent => "agent",
            Scope::Model => "model",
        }
    }

    /// Whether this scope's values are attribution tags (folded before matching).
    pub fn is_tag(self) -> bool {
        matches!(self, Scope::Department | Scope::Project | Scope::Agent)
    }

    /// The attribute of a row (or request) this scope looks at; `None`: missing.
    pub fn value_of(self, r: &UsageRecord) -> Option<&str> {
        match self {
            Scope::Tenant => Some(r.tenant.as_str()).filter(|t| !t.is_empty()),
            Scope::Department => r.department.as_deref(),
            Scope::Project => r.project.as_deref(),
            Scope::Agent => r.agent.as_deref(),
            Scope::Model => Some(r.model_effective.as_str()).filter(|m| !m.is_empty()),
        }
    }
}

/// The spend window (UTC calendar).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Period {
    Day,
    Month,
}

/// What happens at the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Block,
    Alert,
}

/// One budget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Budget {
    pub name: String,
    pub scope: Scope,
    /// One value, or `*` for each distinct value separately.
    pub value: String,
    pub period: Period,
    /// 1e-12 USD.
    pub limit: i128,
    pub action: Action,
    /// A `block` budget lets requests the proxy cannot price through (recorded as
    /// unpriced) instead of refusing them.
    pub allow_unpriced: bool,
}

/// A tag value as budgets compare it: trimmed and lower-cased; borrowed when it already is.
pub fn fold_tag(v: &str) -> Cow<'_, str> {
    let t = v.trim();
    if t.chars().any(char::is_uppercase) {
        Cow::Owned(t.to_lowercase())
    } else {
        Cow::Borrowed(t)
    }
}

impl Budget {
    /// The key a row counts under for this budget, if it matches (a tag folded, see
    /// [`fold_tag`]).
    pub fn key_for<'a>(&self, r: &'a UsageRecord) -> Option<Cow<'a, str>> {
        let raw = self.scope.value_of(r)?;
        let v = if self.scope.is_tag() {
            fold_tag(raw)
        } else {
            Cow::Borrowed(raw)
        };
        if v.is_empty() {
            return None;
        }
        let matches =
            self.value == "*" || self.value == *v || (self.scope == Scope::Model && self.value == r.model_requested);
        matches.then_some(v)
    }
}

/// The parsed file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BudgetFile {
    pub budgets: Vec<Budget>,
}

/// Why a budget file was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BudgetFileError {
    Io(String),
    Toml(String),
    Field {
        budget: String,
        field: &'static str,
        why: String,
    },
}

impl fmt::Display for BudgetFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BudgetFileError::Io(e) => write!(f, "cannot read: {e}"),
            BudgetFileError::Toml(e) => write!(f, "not valid TOML: {e}"),
            BudgetFileError::Field { budget, field, why } => write!(f, "budget `{budget}`, field `{field}`: {why}"),
        }
    }
}

impl std::error::Error for BudgetFileError {}

impl BudgetFile {
    pub fn load(path: &Path) -> Result<Self, BudgetFileError> {
        let text = std::fs::read_to_string(path).map_err(|e| BudgetFileError::Io(e.to_string()))?;
        Self::parse(&text)
    }

    pub fn parse(text: &str) -> Result<Self, BudgetFileError> {
        let table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| BudgetFileError::Toml(e.message().to_string()))?;
        let list = match table.get("budget") {
            None => return Ok(BudgetFile::default()),
            Some(toml::Value::Array(a)) => a.clone(),
            Some(_) => {
                return Err(BudgetFileError::Toml(
                    "`budget` must be an array of tables ([[budget]])".into(),
                ))
            }
        };
        let mut budgets: Vec<Budget> = Vec::new();
        for (i, b) in list.iter().enumerate() {
            let label = b
                .get("name")
                .and_then(|v| v.as_str())
                .map_or_else(|| format!("#{}", i + 1), str::to_string);
            let err = |field: &'static str, why: &str| BudgetFileError::Field {
                budget: label.clone(),
                field,
                why: why.into(),
            };
            let t = b.as_table().ok_or_else(|| err("budget", "must be a table"))?;
            for k in t.keys() {
                if ![
                    "name",
                    "scope",
                    "value",
                    "period",
                    "limit_usd",
                    "action",
                    "allow_unpriced",
                ]
                .contains(&k.as_str())
                {
                    return Err(err("budget", &format!("unknown field `{k}`")));
                }
            }
            let s = |field: &'static str| -> Result<&str, BudgetFileError> {
                t.get(field)
                    .and_then(|v| v.as_str())
                    .ok_or_else(|| err(field, "missing or not a string"))
            };
            let name = s("name")?.to_string();
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
                return Err(err("name", "must be non-empty and use only letters, digits, - _ ."));
            }
            if budgets.iter().any(|b| b.name == name) {
                return Err(err("name", "is not unique"));
            }
            let scope = match s("scope")? {
                "tenant" => Scope::Tenant,
                "department" => Scope::Department,
                "project" => Scope::Project,
                "agent" => Scope::Agent,
                "model" => Scope::Model,
                _ => return Err(err("scope", "must be tenant, department, project, agent or model")),
            };
            let value = s("value")?.to_string();
            let value = if scope.is_tag() {
                fold_tag(&value).into_owned()
            } else {
                value
            };
            if value.is_empty() {
                return Err(err("value", "must be a value or \"*\""));
            }
            let period = match s("period")? {
                "day" => Period::Day,
                "month" => Period::Month,
                _ => return Err(err("period", "must be day or month")),
            };
            let limit = match t.get("limit_usd") {
                Some(toml::Value::String(v)) => parse_usd(v).map_err(|e| err("limit_usd", &e))?,
                Some(_) => return Err(err("limit_usd", "must be a decimal string such as \"50.00\"")),
                None => return Err(err("limit_usd", "missing")),
            };
            if limit <= 0 {
                return Err(err("limit_usd", "must be greater than zero"));
            }
            let action = match s("action")? {
                "block" => Action::Block,
                "alert" => Action::Alert,
                _ => return Err(err("action", "must be block or alert")),
            };
            let allow_unpriced = match t.get("allow_unpriced") {
                None => false,
                Some(toml::Value::Boolean(b)) => *b,
                Some(_) => return Err(err("allow_unpriced", "must be true or false")),
            };
            budgets.push(Budget {
                name,
                scope,
                value,
                period,
                limit,
                action,
                allow_unpriced,
            });
        }
        Ok(BudgetFile { budgets })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_names_errors() {
        let f = BudgetFile::parse(
            "[[budget]]\nname = \"agents-daily\"\nscope = \"agent\"\nvalue = \"*\"\nperiod = \"day\"\nlimit_usd = \"50.00\"\naction = \"block\"\n",
        )
        .unwrap();
        assert_eq!(f.budgets[0].limit, 50_000_000_000_000);
        assert_eq!(f.budgets[0].scope, Scope::Agent);
        let bad = BudgetFile::parse("[[budget]]\nname = \"x\"\nscope = \"team\"\nvalue = \"*\"\nperiod = \"day\"\nlimit_usd = \"1\"\naction = \"block\"\n");
        assert_eq!(
            bad.unwrap_err(),
            BudgetFileError::Field {
                budget: "x".into(),
                field: "scope",
                why: "must be tenant, department, project, agent or model".into()
            }
        );
        let bad = BudgetFile::parse("[[budget]]\nname = \"y\"\nscope = \"agent\"\nvalue = \"*\"\nperiod = \"day\"\nlimit_usd = 50\naction = \"block\"\n");
        assert!(matches!(bad, Err(BudgetFileError::Field { field: "limit_usd", .. })));
        let dup = "[[budget]]\nname = \"a\"\nscope = \"agent\"\nvalue = \"*\"\nperiod = \"day\"\nlimit_usd = \"1\"\naction = \"alert\"\n";
        assert!(matches!(
            BudgetFile::parse(&format!("{dup}{dup}")),
            Err(BudgetFileError::Field { field: "name", .. })
        ));
    }
}
