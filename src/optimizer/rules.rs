//! The routes file (`--routes`, DESIGN.md §4): ordered `[[route]]` rules, each a match on
//! the request's tenant, tags, operation and requested model (exact, or a glob with `*`)
//! and one action: `rewrite` (another model), `downgrade` (another model while a named
//! budget's spend ratio is at or over `at_ratio`) or `fallback` (after an answer AWS does
//! not bill, the listed alternatives in order). A bad file names the rule and the field.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use crate::bedrock::model::decode_model_id;
use crate::bedrock::region::is_valid_region;

/// Most rules in one file.
pub const MAX_RULES: usize = 256;
/// Most upstream attempts a fallback rule may allow, the first call included.
pub const MAX_ATTEMPTS: u32 = 5;
/// Longest fallback deadline a rule may set.
pub const MAX_DEADLINE: Duration = Duration::from_secs(600);
/// Decimal places of `at_ratio` (it is kept in millionths, exactly).
pub const RATIO_DECIMALS: u32 = 6;
/// One, in the units of [`Ratio`].
pub const RATIO_ONE: i128 = 1_000_000;

/// A spend ratio in millionths (`"0.8"` is 800,000): compared exactly with spend/limit.
pub type Ratio = i128;

/// The AWS error types a fallback may follow: answers AWS does not bill.
pub const FALLBACK_ERRORS: [&str; 2] = ["ThrottlingException", "ServiceUnavailableException"];

/// A pattern on one attribute: exact, or a glob where `*` matches any run of characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern(String);

impl Pattern {
    pub fn matches(&self, v: &str) -> bool {
        glob(self.0.as_bytes(), v.as_bytes())
    }
}

/// `*`-glob matching without backtracking blow-up (the last `*` is the only resume point).
fn glob(p: &[u8], v: &[u8]) -> bool {
    let (mut pi, mut vi) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while vi < v.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, vi));
            pi += 1;
        } else if pi < p.len() && p[pi] == v[vi] {
            pi += 1;
            vi += 1;
        } else if let Some((sp, sv)) = star {
            pi = sp + 1;
            vi = sv + 1;
            star = Some((sp, sv + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// What a rule matches on; an attribute the rule names but the request lacks never matches.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Match {
    pub tenant: Option<Pattern>,
    pub department: Option<Pattern>,
    pub project: Option<Pattern>,
    pub agent: Option<Pattern>,
    pub operation: Option<Pattern>,
    /// The model id the client sent (before geo prefixing).
    pub model: Option<Pattern>,
}

/// The attributes of a request a rule is matched against.
#[derive(Debug, Clone, Copy)]
pub struct Attributes<'a> {
    pub tenant: &'a str,
    pub department: Option<&'a str>,
    pub project: Option<&'a str>,
    pub agent: Option<&'a str>,
    pub operation: &'a str,
    pub model: &'a str,
}

impl Match {
    pub fn matches(&self, a: &Attributes<'_>) -> bool {
        let one = |p: &Option<Pattern>, v: Option<&str>| match p {
            None => true,
            Some(p) => v.is_some_and(|v| p.matches(v)),
        };
        one(&self.tenant, Some(a.tenant))
            && one(&self.department, a.department)
            && one(&self.project, a.project)
            && one(&self.agent, a.agent)
            && one(&self.operation, Some(a.operation))
            && one(&self.model, Some(a.model))
    }
}

/// One alternative of a fallback: another region's profile, another model, or both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alternative {
    pub region: Option<String>,
    pub model: Option<String>,
}

/// What a rule does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Rewrite {
        to: String,
    },
    Downgrade {
        budget: String,
        at_ratio: Ratio,
        to: String,
    },
    Fallback {
        on: Vec<String>,
        alternatives: Vec<Alternative>,
        /// Upstream attempts at most, the first call included.
        max_attempts: u32,
        /// No new attempt starts after this much time since the first was sent.
        deadline: Option<Duration>,
    },
}

impl Action {
    /// The name recorded in `route_action`.
    pub fn name(&self) -> &'static str {
        match self {
            Action::Rewrite { .. } => "rewrite",
            Action::Downgrade { .. } => "downgrade",
            Action::Fallback { .. } => "fallback",
        }
    }
}

/// One `[[route]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub name: String,
    pub matcher: Match,
    pub action: Action,
}

/// The parsed file, rules in order (first match wins).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Routes {
    pub rules: Vec<Rule>,
}

/// Why a routes file was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoutesFileError {
    Io(String),
    Toml(String),
    Field {
        rule: String,
        field: &'static str,
        why: String,
    },
}

impl fmt::Display for RoutesFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RoutesFileError::Io(e) => write!(f, "cannot read: {e}"),
            RoutesFileError::Toml(e) => write!(f, "not valid TOML: {e}"),
            RoutesFileError::Field { rule, field, why } => write!(f, "route `{rule}`, field `{field}`: {why}"),
        }
    }
}

impl std::error::Error for RoutesFileError {}

const RULE_FIELDS: [&str; 10] = [
    "name",
    "match",
    "action",
    "to",
    "budget",
    "at_ratio",
    "on",
    "try",
    "max_attempts",
    "deadline_ms",
];
const MATCH_FIELDS: [&str; 6] = ["tenant", "department", "project", "agent", "operation", "model"];

fn valid_model(m: &str) -> bool {
    decode_model_id(m.as_bytes()).is_ok_and(|d| d == m)
}

impl Routes {
    pub fn load(path: &Path) -> Result<Self, RoutesFileError> {
        let text = std::fs::read_to_string(path).map_err(|e| RoutesFileError::Io(e.to_string()))?;
        Self::parse(&text)
    }

    /// Parses a routes file (the budgets `downgrade` rules name are checked by
    /// [`Routes::check_budgets`]).
    pub fn parse(text: &str) -> Result<Self, RoutesFileError> {
        let table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| RoutesFileError::Toml(e.message().to_string()))?;
        for k in table.keys() {
            if k != "route" {
                return Err(RoutesFileError::Toml(format!(
                    "unknown top-level key `{k}` (rules are [[route]] tables)"
                )));
            }
        }
        let list = match table.get("route") {
            None => return Ok(Routes::default()),
            Some(toml::Value::Array(a)) => a,
            Some(_) => {
                return Err(RoutesFileError::Toml(
                    "`route` must be an array of tables ([[route]])".into(),
                ))
            }
        };
        if list.len() > MAX_RULES {
            return Err(RoutesFileError::Toml(format!("more than {MAX_RULES} rules")));
        }
        let mut rules: Vec<Rule> = Vec::with_capacity(list.len());
        for (i, r) in list.iter().enumerate() {
            let label = r
                .get("name")
                .and_then(|v| v.as_str())
                .map_or_else(|| format!("#{}", i + 1), str::to_string);
            let err = |field: &'static str, why: &str| RoutesFileError::Field {
                rule: label.clone(),
                field,
                why: why.into(),
            };
            let t = r.as_table().ok_or_else(|| err("route", "must be a table"))?;
            if let Some(k) = t.keys().find(|k| !RULE_FIELDS.contains(&k.as_str())) {
                return Err(err("route", &format!("unknown field `{k}`")));
            }
            let s = |field: &'static str| -> Result<&str, RoutesFileError> {
                t.get(field)
                    .and_then(|v| v.as_str())
                    .ok_or_else(|| err(field, "missing or not a string"))
            };
            let name = s("name")?.to_string();
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
                return Err(err("name", "must be non-empty and use only letters, digits, - _ ."));
            }
            if rules.iter().any(|x| x.name == name) {
                return Err(err("name", "is not unique"));
            }
            let matcher = match t.get("match") {
                None => return Err(err("match", "missing (use match = {} to match every request)")),
                Some(toml::Value::Table(m)) => {
                    let mut out = Match::default();
                    for (k, v) in m {
                        let Some(v) = v.as_str() else {
                            return Err(err("match", &format!("`{k}` must be a string")));
                        };
                        if v.is_empty() {
                            return Err(err("match", &format!("`{k}` must not be empty")));
                        }
                        let p = Some(Pattern(v.to_string()));
                        match k.as_str() {
                            "tenant" => out.tenant = p,
                            "department" => out.department = p,
                            "project" => out.project = p,
                            "agent" => out.agent = p,
                            "operation" => out.operation = p,
                            "model" => out.model = p,
                            _ => {
                                return Err(err(
                                    "match",
                                    &format!("unknown attribute `{k}` (one of {})", MATCH_FIELDS.join(", ")),
                                ))
                            }
                        }
                    }
                    out
                }
                Some(_) => return Err(err("match", "must be a table, e.g. { agent = \"triage-*\" }")),
            };
            let to = |t: &toml::Table| -> Result<String, RoutesFileError> {
                let v = t
                    .get("to")
                    .and_then(|v| v.as_str())
                    .ok_or_else(|| err("to", "missing or not a string"))?;
                if !valid_model(v) {
                    return Err(err("to", &format!("`{v}` is not a valid model id")));
                }
                Ok(v.to_string())
            };
            let only = |allowed: &[&str]| -> Result<(), RoutesFileError> {
                match t
                    .keys()
                    .find(|k| !["name", "match", "action"].contains(&k.as_str()) && !allowed.contains(&k.as_str()))
                {
                    Some(k) => Err(err("route", &format!("field `{k}` does not apply to this action"))),
                    None => Ok(()),
                }
            };
            let action = match s("action")? {
                "rewrite" => {
                    only(&["to"])?;
                    Action::Rewrite { to: to(t)? }
                }
                "downgrade" => {
                    only(&["to", "budget", "at_ratio"])?;
                    let budget = s("budget")?.to_string();
                    let at_ratio = match t.get("at_ratio") {
                        Some(toml::Value::String(v)) => crate::pricing::decimal::parse_scaled(v, RATIO_DECIMALS, 3)
                            .map_err(|e| err("at_ratio", &e))?,
                        _ => return Err(err("at_ratio", "missing or not a decimal string such as \"0.8\"")),
                    };
                    if at_ratio <= 0 {
                        return Err(err("at_ratio", "must be greater than zero"));
                    }
                    Action::Downgrade {
                        budget,
                        at_ratio,
                        to: to(t)?,
                    }
                }
                "fallback" => {
                    only(&["on", "try", "max_attempts", "deadline_ms"])?;
                    let on: Vec<String> = match t.get("on") {
                        None => FALLBACK_ERRORS.iter().map(|s| s.to_string()).collect(),
                        Some(toml::Value::Array(a)) if !a.is_empty() => {
                            let mut out = Vec::new();
                            for v in a {
                                match v.as_str() {
                                    Some(e) if FALLBACK_ERRORS.contains(&e) => out.push(e.to_string()),
                                    _ => {
                                        return Err(err(
                                            "on",
                                            &format!(
                                                "{v:?} is not an answer AWS does not bill; use {}",
                                                FALLBACK_ERRORS.join(" or ")
                                            ),
                                        ))
                                    }
                                }
                            }
                            out
                        }
                        Some(_) => return Err(err("on", "must be a non-empty list of AWS error types")),
                    };
                    let Some(toml::Value::Array(list)) = t.get("try") else {
                        return Err(err("try", "missing or not a list of { region = ..., model = ... }"));
                    };
                    if list.is_empty() {
                        return Err(err("try", "must list at least one alternative"));
                    }
                    let mut alternatives = Vec::new();
                    for a in list {
                        let Some(a) = a.as_table() else {
                            return Err(err("try", "each alternative is a table { region = ..., model = ... }"));
                        };
                        if let Some(k) = a.keys().find(|k| *k != "region" && *k != "model") {
                            return Err(err("try", &format!("unknown field `{k}` in an alternative")));
                        }
                        let field = |k: &str| a.get(k).map(|v| v.as_str().map(str::to_string));
                        let region = match field("region") {
                            None => None,
                            Some(Some(r)) if is_valid_region(&r) => Some(r),
                            Some(_) => return Err(err("try", "region must look like us-west-2")),
                        };
                        let model = match field("model") {
                            None => None,
                            Some(Some(m)) if valid_model(&m) => Some(m),
                            Some(_) => return Err(err("try", "model must be a valid model id")),
                        };
                        if region.is_none() && model.is_none() {
                            return Err(err("try", "an alternative names a region, a model or both"));
                        }
                        alternatives.push(Alternative { region, model });
                    }
                    let max_attempts = match t.get("max_attempts") {
                        None => (alternatives.len() as u32 + 1).min(MAX_ATTEMPTS),
                        Some(toml::Value::Integer(n)) if (1..=MAX_ATTEMPTS as i64).contains(n) => *n as u32,
                        Some(_) => {
                            return Err(err(
                                "max_attempts",
                                &format!("must be an integer from 1 to {MAX_ATTEMPTS} (the first call included)"),
                            ))
                        }
                    };
                    let deadline = match t.get("deadline_ms") {
                        None => None,
                        Some(toml::Value::Integer(n)) if *n > 0 && (*n as u128) <= MAX_DEADLINE.as_millis() => {
                            Some(Duration::from_millis(*n as u64))
                        }
                        Some(_) => {
                            return Err(err(
                                "deadline_ms",
                                &format!("must be a positive integer of at most {}", MAX_DEADLINE.as_millis()),
                            ))
                        }
                    };
                    Action::Fallback {
                        on,
                        alternatives,
                        max_attempts,
                        deadline,
                    }
                }
                _ => return Err(err("action", "must be rewrite, downgrade or fallback")),
            };
            rules.push(Rule { name, matcher, action });
        }
        Ok(Routes { rules })
    }

    /// Checks that every `downgrade` names a budget of `budgets`.
    pub fn check_budgets(&self, known: impl Fn(&str) -> bool) -> Result<(), RoutesFileError> {
        for r in &self.rules {
            if let Action::Downgrade { budget, .. } = &r.action {
                if !known(budget) {
                    return Err(RoutesFileError::Field {
                        rule: r.name.clone(),
                        field: "budget",
                        why: format!("`{budget}` is not a budget of --budgets"),
                    });
                }
            }
        }
        Ok(())
    }

    /// The downgrade thresholds per budget name (what the budget tracker publishes).
    pub fn thresholds(&self) -> Vec<(String, Ratio)> {
        self.rules
            .iter()
            .filter_map(|r| match &r.action {
                Action::Downgrade { budget, at_ratio, .. } => Some((budget.clone(), *at_ratio)),
                _ => None,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"
[[route]]
name = "triage-to-haiku"
match = { agent = "triage-*", model = "anthropic.claude-opus-*" }
action = "rewrite"
to = "anthropic.claude-haiku-4-5-20251001-v1:0"

[[route]]
name = "eng-soft-cap"
match = { department = "eng" }
action = "downgrade"
budget = "eng-monthly"
at_ratio = "0.8"
to = "amazon.nova-lite-v1:0"

[[route]]
name = "sonnet-fallback"
match = { model = "anthropic.claude-sonnet-4-5-*" }
action = "fallback"
on = ["ThrottlingException", "ServiceUnavailableException"]
try = [{ region = "us-west-2" }, { model = "amazon.nova-pro-v1:0" }]
max_attempts = 3
"#;

    #[test]
    fn the_design_examples_parse() {
        let r = Routes::parse(EXAMPLE).unwrap();
        assert_eq!(r.rules.len(), 3);
        assert_eq!(r.rules[0].action.name(), "rewrite");
        assert_eq!(
            r.rules[1].action,
            Action::Downgrade {
                budget: "eng-monthly".into(),
                at_ratio: 800_000,
                to: "amazon.nova-lite-v1:0".into()
            }
        );
        match &r.rules[2].action {
            Action::Fallback {
                alternatives,
                max_attempts,
                ..
            } => {
                assert_eq!(alternatives.len(), 2);
                assert_eq!(alternatives[0].region.as_deref(), Some("us-west-2"));
                assert_eq!(*max_attempts, 3);
            }
            a => panic!("{a:?}"),
        }
        assert_eq!(r.thresholds(), vec![("eng-monthly".to_string(), 800_000)]);
        assert!(r.check_budgets(|b| b == "eng-monthly").is_ok());
        assert_eq!(
            r.check_budgets(|b| b == "other").unwrap_err().to_string(),
            "route `eng-soft-cap`, field `budget`: `eng-monthly` is not a budget of --budgets"
        );
    }

    #[test]
    fn a_bad_rule_is_named_with_its_field() {
        let cases = [
            ("[[route]]\nname = \"a\"\nmatch = {}\naction = \"teleport\"\n", "a", "action"),
            ("[[route]]\nname = \"b\"\nmatch = { colour = \"x\" }\naction = \"rewrite\"\nto = \"m.x\"\n", "b", "match"),
            ("[[route]]\nname = \"c\"\nmatch = {}\naction = \"rewrite\"\nto = \"bad id\"\n", "c", "to"),
            ("[[route]]\nname = \"d\"\nmatch = {}\naction = \"downgrade\"\nbudget = \"x\"\nat_ratio = 0.8\nto = \"m.x\"\n", "d", "at_ratio"),
            ("[[route]]\nname = \"e\"\nmatch = {}\naction = \"fallback\"\non = [\"ValidationException\"]\ntry = [{ region = \"us-west-2\" }]\n", "e", "on"),
            ("[[route]]\nname = \"f\"\nmatch = {}\naction = \"fallback\"\ntry = [{ region = \"Mars\" }]\n", "f", "try"),
            ("[[route]]\nname = \"g\"\nmatch = {}\naction = \"fallback\"\ntry = [{ region = \"us-west-2\" }]\nmax_attempts = 9\n", "g", "max_attempts"),
            ("[[route]]\nname = \"h\"\nmatch = {}\naction = \"rewrite\"\nto = \"m.x\"\nbudget = \"b\"\n", "h", "route"),
            ("[[route]]\nmatch = {}\naction = \"rewrite\"\nto = \"m.x\"\n", "#1", "name"),
        ];
        for (text, rule, field) in cases {
            match Routes::parse(text) {
                Err(RoutesFileError::Field { rule: r, field: f, .. }) => {
                    assert_eq!((r.as_str(), f), (rule, field), "{text}")
                }
                other => panic!("{text}: {other:?}"),
            }
        }
        let dup = "[[route]]\nname = \"a\"\nmatch = {}\naction = \"rewrite\"\nto = \"m.x\"\n";
        assert!(matches!(
            Routes::parse(&format!("{dup}{dup}")),
            Err(RoutesFileError::Field { field: "name", .. })
        ));
        assert!(matches!(Routes::parse("route = 1"), Err(RoutesFileError::Toml(_))));
        assert_eq!(Routes::parse("").unwrap(), Routes::default());
    }

    #[test]
    fn globs_and_matches() {
        let p = |s: &str| Pattern(s.into());
        assert!(p("anthropic.claude-opus-*").matches("anthropic.claude-opus-4-1-20250805-v1:0"));
        assert!(!p("anthropic.claude-opus-*").matches("us.anthropic.claude-opus-4"));
        assert!(p("*opus*").matches("us.anthropic.claude-opus-4"));
        assert!(p("a*b*c").matches("aXbYc") && !p("a*b*c").matches("aXbY"));
        assert!(p("exact").matches("exact") && !p("exact").matches("exactly"));
        assert!(p("*").matches(""));
        // No blow-up on adversarial input.
        assert!(!p(&"*a".repeat(50)).matches(&"a".repeat(49)));
        let m = Match {
            agent: Some(p("triage-*")),
            ..Match::default()
        };
        let a = Attributes {
            tenant: "t",
            department: None,
            project: None,
            agent: Some("triage-bot"),
            operation: "converse",
            model: "m",
        };
        assert!(m.matches(&a));
        assert!(!m.matches(&Attributes { agent: None, ..a }));
        assert!(Match::default().matches(&a));
    }
}
