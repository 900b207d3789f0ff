//! Stage 1b, the optimizer (`crate::optimizer`): before budgets are checked, the first
//! matching rule may put the call on another model (`rewrite`, or `downgrade` while its
//! budget is at or over the threshold), so budgets apply to the effective model. A
//! `fallback` rule acts on the answer: after a 429 `ThrottlingException` or a 503
//! `ServiceUnavailableException` (answers AWS does not bill; nothing of them reaches the
//! client), it tries the rule's alternatives in order, each signed for its own region,
//! the same body byte for byte, within the rule's attempts and deadline. Nothing is
//! retried after a cut connection, a partial stream or any other answer.
//!
//! Cost: with no rules, one length check. The row records the rule, the action, the
//! attempts, the region the answer came from and, priced by the relay, the baseline.

use std::sync::Arc;
use std::time::Instant;

use monoio::io::{AsyncReadRent, AsyncWriteRent};

use super::call::Call;
use super::sign;
use super::validate::Validated;
use crate::bedrock::error::error_type_of;
use crate::bedrock::route::Operation;
use crate::http::request::RequestHead;
use crate::optimizer::rules::FALLBACK_ERRORS;
use crate::optimizer::{decide, Action, Attributes, Decision, Routes};
use crate::upstream::client::{Exchange, Response};

/// A fallback rule to run on the answer: the rules it came from and its index.
pub struct Plan {
    routes: Arc<Routes>,
    rule: usize,
}

/// Applies the optimizer's decision to the row (a new effective model) and returns the
/// fallback plan, if the matching rule is one.
pub fn decide_for<S: AsyncReadRent + AsyncWriteRent>(call: &mut Call<'_, S>, op: Operation) -> Option<Plan> {
    let shard = call.shard;
    if shard.routes().rules.is_empty() {
        return None;
    }
    let routes = shard.routes_arc();
    let rec = &call.rec;
    let a = Attributes {
        tenant: &rec.tenant,
        department: rec.department.as_deref(),
        project: rec.project.as_deref(),
        agent: rec.agent.as_deref(),
        operation: op.as_str(),
        model: &rec.model_requested,
    };
    match decide(&routes, &a, |budget| shard.budget_crossed(budget, rec)) {
        Decision::None => None,
        Decision::Model { rule, to } => {
            let eff = shard.shared.settings.geo.effective(to, &call.rec.region);
            call.rec.model_effective = eff;
            call.rec.route_rule = Some(rule.name.clone());
            call.rec.route_action = Some(rule.action.name());
            None
        }
        Decision::Fallback(rule) => {
            let i = routes.rules.iter().position(|r| std::ptr::eq(r, rule))?;
            Some(Plan { routes, rule: i })
        }
    }
}

/// The response headers of a routed call: `x-llmops-route: {rule}; {action}` and the
/// model that answered, `x-llmops-model` (and its region when a fallback moved it).
pub fn route_headers(rec: &crate::usage::UsageRecord, w: &mut crate::http::head::HeadWriter<'_>) {
    let (Some(rule), Some(action)) = (&rec.route_rule, rec.route_action) else {
        return;
    };
    let mut v = Vec::with_capacity(rule.len() + action.len() + 2);
    v.extend_from_slice(rule.as_bytes());
    v.extend_from_slice(b"; ");
    v.extend_from_slice(action.as_bytes());
    w.header("x-llmops-route", &v);
    w.header("x-llmops-model", rec.model_effective.as_bytes());
    if let Some(r) = &rec.region_effective {
        w.header("x-llmops-region", r.as_bytes());
    }
}

/// What a retry needs of the request: the client's head (its Bedrock headers and content
/// type are signed again) and the validated credentials, both dropped (zeroed) after.
pub struct Retry<'a> {
    pub plan: Plan,
    pub head: RequestHead,
    pub v: Validated,
    pub op: Operation,
    pub body_sha256: &'a [u8; 32],
}

/// Whether `ex` is an answer the rule falls back on, as the index in [`FALLBACK_ERRORS`]
/// of its type: a 429 or 503 whose AWS error type (header, else body) the rule lists. A
/// stream request's non-200 answer is read whole first (it is small JSON).
async fn unbilled(mut ex: Exchange, on: &[String], deadline: Instant) -> (Exchange, Option<usize>) {
    match ex.outcome {
        Ok(Response::Streaming(s)) if s.head.status != 200 => {
            ex.outcome = s.collect(deadline).await.map(Response::Whole);
        }
        other => ex.outcome = other,
    }
    let Ok(Response::Whole(r)) = &ex.outcome else {
        return (ex, None);
    };
    if r.head.status != 429 && r.head.status != 503 {
        return (ex, None);
    }
    let t = error_type_of(r.head.error_type.as_deref(), r.body());
    let reason = t
        .filter(|t| on.iter().any(|o| o == t))
        .and_then(|t| FALLBACK_ERRORS.iter().position(|e| *e == t));
    (ex, reason)
}

/// Runs the fallback rule on the first attempt's answer `ex`; returns the answer to
/// relay (the first one that is not a fallback trigger, or the last attempt's).
pub async fn fall_back<S: AsyncReadRent + AsyncWriteRent>(
    call: &mut Call<'_, S>,
    retry: Retry<'_>,
    mut ex: Exchange,
    started: Instant,
    deadline: Instant,
) -> Exchange {
    let rule = &retry.plan.routes.rules[retry.plan.rule];
    let Action::Fallback {
        on,
        alternatives,
        max_attempts,
        deadline: own,
    } = &rule.action
    else {
        return ex;
    };
    let stop_at = own.map_or(deadline, |d| (started + d).min(deadline));
    let shard = call.shard;
    let streaming = retry.op.is_stream();
    let mut attempts: u32 = 1;
    let mut next = alternatives.iter();
    loop {
        let reason;
        (ex, reason) = unbilled(ex, on, deadline).await;
        let Some(reason) = reason else { break };
        if attempts >= *max_attempts || Instant::now() >= stop_at {
            break;
        }
        // The next alternative the budgets allow (they apply to the effective model).
        let prev = (call.rec.model_effective.clone(), call.rec.region_effective.clone());
        let mut chosen = None;
        for alt in next.by_ref() {
            // Each alternative is relative to the request: its region, its model.
            let region = alt.region.clone().unwrap_or_else(|| call.rec.region.clone());
            let model = alt.model.as_deref().unwrap_or(&call.rec.model_requested);
            call.rec.model_effective = shard.shared.settings.geo.effective(model, &region);
            call.rec.region_effective = Some(region.clone());
            if super::budget::check(shard, &call.rec).is_ok() {
                chosen = Some(region);
                break;
            }
            (call.rec.model_effective, call.rec.region_effective) = prev.clone();
        }
        let Some(region) = chosen else { break };
        super::stats::ShardStats::inc(&shard.stats.fallbacks[reason]);
        call.rec.route_rule = Some(rule.name.clone());
        call.rec.route_action = Some(rule.action.name());
        let body = std::mem::take(&mut ex.body);
        let what = sign::Unsigned {
            v: &retry.v,
            region: &region,
            model: &call.rec.model_effective,
            op: retry.op,
            body: &body,
            body_sha256: retry.body_sha256,
        };
        let Ok(signed) = sign::sign(shard, &what, &retry.head) else {
            ex.body = body;
            break;
        };
        ex = shard
            .upstream
            .send(&signed.target, signed.head, body, streaming, deadline)
            .await;
        attempts += 1;
    }
    call.rec.attempts = Some(i64::from(attempts));
    ex
}
