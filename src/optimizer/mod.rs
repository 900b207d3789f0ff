//! The cost optimizer: the rules of `--routes` (`rules`), and the decision one request
//! gets before it goes upstream. Rules are tried in order; the first that matches wins,
//! except that a `downgrade` whose budget is under its threshold does not match (the next
//! rules are tried). A `rewrite` or a firing `downgrade` changes the model the call is
//! made on; a `fallback` changes nothing until an answer AWS does not bill comes back
//! (`proxy::route` runs its alternatives). With no rules, a request costs one empty check.

pub mod rules;

pub use rules::{Action, Attributes, Ratio, Routes, RoutesFileError, Rule};

/// What the optimizer decided for a request before its first attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision<'r> {
    /// No rule applies.
    None,
    /// Call `to` instead of the requested model (a `rewrite`, or a `downgrade` whose
    /// budget is at or over its threshold).
    Model { rule: &'r Rule, to: &'r str },
    /// Call as asked; on an answer the rule names, try its alternatives.
    Fallback(&'r Rule),
}

/// The decision for a request with attributes `a`. `crossed(budget)` is the highest
/// downgrade threshold the request's key of that budget has reached, if any.
pub fn decide<'r>(routes: &'r Routes, a: &Attributes<'_>, crossed: impl Fn(&str) -> Option<Ratio>) -> Decision<'r> {
    for rule in &routes.rules {
        if !rule.matcher.matches(a) {
            continue;
        }
        match &rule.action {
            Action::Rewrite { to } => return Decision::Model { rule, to },
            Action::Downgrade { budget, at_ratio, to } => {
                if crossed(budget).is_some_and(|c| c >= *at_ratio) {
                    return Decision::Model { rule, to };
                }
            }
            Action::Fallback { .. } => return Decision::Fallback(rule),
        }
    }
    Decision::None
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: &str = r#"
[[route]]
name = "cap"
match = { department = "eng" }
action = "downgrade"
budget = "eng-monthly"
at_ratio = "0.8"
to = "amazon.nova-lite-v1:0"

[[route]]
name = "opus-to-sonnet"
match = { model = "anthropic.claude-opus-*" }
action = "rewrite"
to = "anthropic.claude-sonnet-4-5-20250929-v1:0"

[[route]]
name = "retry-west"
match = {}
action = "fallback"
try = [{ region = "us-west-2" }]
"#;

    fn attrs<'a>(dept: Option<&'a str>, model: &'a str) -> Attributes<'a> {
        Attributes {
            tenant: "t",
            department: dept,
            project: None,
            agent: None,
            operation: "converse",
            model,
        }
    }

    #[test]
    fn first_match_wins_and_an_unfired_downgrade_lets_the_next_rule_decide() {
        let r = Routes::parse(RULES).unwrap();
        let none = |_: &str| None;
        let at = |v: Ratio| move |b: &str| (b == "eng-monthly").then_some(v);
        // Under the threshold: the downgrade does not fire, the rewrite does.
        match decide(&r, &attrs(Some("eng"), "anthropic.claude-opus-4"), at(500_000)) {
            Decision::Model { rule, to } => {
                assert_eq!(rule.name, "opus-to-sonnet");
                assert_eq!(to, "anthropic.claude-sonnet-4-5-20250929-v1:0");
            }
            d => panic!("{d:?}"),
        }
        // At the threshold exactly: it fires.
        match decide(&r, &attrs(Some("eng"), "anthropic.claude-opus-4"), at(800_000)) {
            Decision::Model { rule, .. } => assert_eq!(rule.name, "cap"),
            d => panic!("{d:?}"),
        }
        match decide(&r, &attrs(None, "amazon.nova-pro-v1:0"), none) {
            Decision::Fallback(rule) => assert_eq!(rule.name, "retry-west"),
            d => panic!("{d:?}"),
        }
        assert_eq!(decide(&Routes::default(), &attrs(None, "m"), none), Decision::None);
    }
}
