//! Stage 2, budgets: a request that matches an exhausted `block` budget is refused with
//! 429 `BudgetExceeded` and `Retry-After` (the period's reset), before the body is read;
//! one that matches a `block` budget but has no price (an unmapped profile ARN, an unknown
//! model) with 403 `BudgetUnpriced`, unless the budget sets `allow_unpriced`. The check is
//! the shard's look at the writer's published block set.

use super::error::{ErrorCode, ProxyError};
use super::shard::Shard;
use crate::usage::record::format_usd;
use crate::usage::UsageRecord;

/// A refusal: the error and the `Retry-After` seconds.
pub struct OverBudget {
    pub error: ProxyError,
    /// Seconds until the period resets (a spent budget); none for an unpriced refusal.
    pub retry_after: Option<String>,
    pub budget: String,
}

/// Whether a budget refuses the request described by `rec` now: one that is spent, or
/// one that cannot meter it (no price for its model, `allow_unpriced` unset).
pub fn check(shard: &Shard, rec: &UsageRecord) -> Result<(), OverBudget> {
    let Some(b) = shard.blocked(rec) else {
        return match shard.refusing_unpriced(rec) {
            None => Ok(()),
            Some(budget) => Err(OverBudget {
                error: ProxyError::new(
                    ErrorCode::BudgetUnpriced,
                    format!(
                        "model `{}` has no price in the proxy's table, so budget `{budget}` cannot meter it; add a price (--pricing) or set allow_unpriced = true on the budget",
                        rec.model_effective
                    ),
                ),
                retry_after: None,
                budget,
            }),
        };
    };
    let reset = crate::util::time::rfc3339_millis(b.reset_at * 1_000_000);
    let scope = shard
        .shared
        .budgets
        .as_ref()
        .and_then(|h| {
            h.publisher
                .current()
                .budgets
                .iter()
                .find(|x| x.name == b.budget)
                .map(|x| x.scope.as_str())
        })
        .unwrap_or("scope");
    let error = ProxyError::new(
        ErrorCode::BudgetExceeded,
        format!(
            "budget `{}` ({scope} = {}) has spent ${} of its ${} limit; it resets at {reset}",
            b.budget,
            b.value,
            format_usd(b.spent),
            format_usd(b.limit),
        ),
    );
    Err(OverBudget {
        error,
        retry_after: Some((b.reset_at - crate::util::time::unix_now()).max(1).to_string()),
        budget: b.budget.clone(),
    })
}
