//! A tool call's failures, as the assistant sees them: a tool result with `isError` and a
//! sentence a person understands (what happened, whether anything changed, what to do), plus the
//! outcome and message its audit record keeps. A call's failure is data for the assistant, not a
//! protocol error, so it is not a [`super::Refusal`]; this is the one place that words it.

use rmcp::model::{CallToolResult, ContentBlock};
use serde_json::Value;

use crate::audit::Outcome;
use crate::limit::Limited;
use crate::tool::Problem;
use crate::upstream::UpstreamError;

/// Why a call did not succeed.
#[derive(Debug)]
pub enum Failure {
    /// The studio's tier could not be learnt, so nothing was decided or sent.
    Studio(UpstreamError),
    RateLimited(Limited),
    Denied(String),
    Invalid(Vec<Problem>),
    /// The idempotency key was used before with other arguments.
    KeyReused,
    /// A call with the same idempotency key is still running.
    InProgress,
    Upstream(UpstreamError),
    /// The audit log cannot be written, so no call is made.
    AuditUnavailable,
    /// Something the person cannot act on; the text goes to the log and the audit record, the
    /// caller gets a generic sentence.
    Internal(String),
}

/// The one place where outcomes become responses: the result, its audit outcome, and the
/// message recorded with it.
pub fn present(
    name: &str,
    write: bool,
    result: &Result<Value, Failure>,
) -> (CallToolResult, Outcome, Option<String>) {
    let error = |text: String, outcome: Outcome| {
        (
            CallToolResult::error(vec![ContentBlock::text(text.clone())]),
            outcome,
            Some(text),
        )
    };
    match result {
        Ok(value) => (CallToolResult::structured(value.clone()), Outcome::Ok, None),
        Err(Failure::RateLimited(l)) => error(
            format!(
                "Rate limit reached: this connection may make {} calls per minute. Try again in {}; nothing was changed.",
                l.per_minute,
                wait_text(l)
            ),
            Outcome::RateLimited,
        ),
        Err(Failure::KeyReused) => error(
            format!(
                "This idempotency_key was already used for a different {name} call, so nothing was changed. Use a new key for a different change, or repeat the first call's arguments exactly to get its result."
            ),
            Outcome::Invalid,
        ),
        Err(Failure::InProgress) => error(
            format!(
                "A {name} call with this idempotency_key is still in progress; retry in a few seconds with the same key to get its result. This call changed nothing."
            ),
            Outcome::Error,
        ),
        Err(Failure::Denied(reason)) => {
            error(format!("{reason} Nothing was changed."), Outcome::Denied)
        }
        Err(Failure::Invalid(problems)) => {
            let list: Vec<String> = problems.iter().map(|p| format!("- {p}")).collect();
            error(
                format!(
                    "The arguments for {name} are not valid, so nothing was changed. Fix {}:\n{}",
                    if problems.len() == 1 { "this" } else { "these" },
                    list.join("\n")
                ),
                Outcome::Invalid,
            )
        }
        Err(Failure::Studio(e)) => error(
            format!(
                "flowgate could not look up this studio's plan ({}), so {name} was not run and nothing was changed. Try again shortly.",
                brief(e)
            ),
            Outcome::UpstreamError,
        ),
        Err(Failure::Upstream(e)) if upstream_in_progress(e) => error(
            format!(
                "The studio's Management API is still working on an earlier {name} call with this idempotency_key (it may have been cut off), so flowgate cannot tell whether {name} was applied. Retry later with the same idempotency_key: it will not apply the change twice."
            ),
            Outcome::UpstreamError,
        ),
        Err(Failure::Upstream(UpstreamError::Rejected { message, .. })) => {
            let text = if write {
                format!("{} Nothing was changed.", sentence(message))
            } else {
                message.clone()
            };
            error(text, Outcome::UpstreamError)
        }
        Err(Failure::Upstream(e @ UpstreamError::Certificate(_))) => error(
            format!(
                "flowgate refused the studio's Management API's TLS certificate ({}), so {name} was not run and nothing was changed. The gateway's operator must fix the certificate or trust its CA with upstream_ca_file.",
                brief(e)
            ),
            Outcome::UpstreamError,
        ),
        Err(Failure::Upstream(e @ UpstreamError::Unreachable(_))) => error(
            format!(
                "The studio's Management API could not be reached ({}), so {name} was not run and nothing was changed. Try again shortly.",
                brief(e)
            ),
            Outcome::UpstreamError,
        ),
        Err(Failure::Upstream(e)) => {
            let what = brief(e);
            let text = if write {
                format!(
                    "{what}, so flowgate cannot tell whether {name} was applied. Retrying with the same idempotency_key is safe: it will not apply the change twice. If you sent no idempotency_key, check with a read tool before retrying."
                )
            } else {
                format!("{what}. {name} only reads, so nothing was changed; try again.")
            };
            error(text, Outcome::UpstreamError)
        }
        Err(Failure::AuditUnavailable) => error(
            format!(
                "flowgate cannot write its audit log right now, so {name} was not run and nothing was changed. Try again shortly; if it goes on, tell the studio's administrator."
            ),
            Outcome::Error,
        ),
        Err(Failure::Internal(e)) => {
            tracing::error!(tool = name, error = %e, "internal error");
            error(
                format!("flowgate failed while handling {name}; nothing was sent to the studio."),
                Outcome::Error,
            )
        }
    }
}

/// The upstream refused a write because an earlier request with the same `Idempotency-Key` has
/// no final answer yet (still running, or cut off by a crash): whether it applied is unknown.
fn upstream_in_progress(e: &UpstreamError) -> bool {
    matches!(e, UpstreamError::Rejected { status: 409, code: Some(code), .. } if code == "idempotency_in_progress")
}

/// Ends a message with a full stop so another sentence can follow.
fn sentence(message: &str) -> String {
    let m = message.trim_end();
    if m.ends_with(['.', '!', '?']) {
        m.to_string()
    } else {
        format!("{m}.")
    }
}

/// A short, user-facing description of an upstream failure.
fn brief(e: &UpstreamError) -> String {
    match e {
        UpstreamError::Rejected { message, .. } => message.clone(),
        UpstreamError::Failed { status } => {
            format!("The studio's Management API failed (HTTP {status})")
        }
        UpstreamError::Timeout(d) => format!(
            "The studio's Management API did not answer within {} s",
            d.as_secs_f64()
        ),
        UpstreamError::Unreachable(_) => "connection refused or timed out".into(),
        UpstreamError::BadResponse(_) => {
            "The studio's Management API sent an answer flowgate cannot read".into()
        }
        UpstreamError::Certificate(why) => why.clone(),
        UpstreamError::TooLarge { limit } => format!(
            "The studio's Management API sent an answer larger than the {limit} bytes flowgate reads"
        ),
    }
}

/// "1 second", "5 seconds".
pub fn wait_text(l: &Limited) -> String {
    match l.retry_after.as_secs_f64().ceil().max(1.0) as u64 {
        1 => "1 second".to_string(),
        n => format!("{n} seconds"),
    }
}
