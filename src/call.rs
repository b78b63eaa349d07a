//! The call path of one `tools/call`, in the order of SPEC §3, and the **one place** where every
//! outcome is mapped to what the caller sees ([`present`]).
//!
//! authenticate (HTTP middleware) → studio tier and rate limit → tool exists → argument
//! validation → Cedar decision → idempotency → upstream call (or built-in handler) → audit
//! record → response. A caller who may not use a
//! tool at all is told so even when its arguments are also wrong: invalid arguments are
//! re-decided with the tool's documented example, and a deny wins over the argument problems.

use std::time::Instant;

use tracing::Instrument;

use rmcp::ErrorData;
use rmcp::model::{CallToolResult, ContentBlock, JsonObject};
use serde_json::{Value, json};

use crate::app::{App, StudioInfo};
use crate::audit::{self, Outcome, Record};
use crate::authz::{Decision, Principal, Studio};
use crate::idempotency::{self, Claim, Stored};
use crate::limit::Limited;
use crate::tool::glue::Expr;
use crate::tool::{self, Access, ArgsError, Builtin, Problem, Target, Tool};
use crate::upstream::{CallHeaders, UpstreamError};

/// Why a call did not succeed.
#[derive(Debug)]
enum Failure {
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
    Internal(String),
}

/// Runs one call and returns what the caller sees. An unknown tool is a JSON-RPC error.
pub async fn call_tool(
    app: &App,
    principal: &Principal,
    name: &str,
    args: Option<JsonObject>,
) -> Result<CallToolResult, ErrorData> {
    let started = Instant::now();
    let request_id = uuid::Uuid::new_v4().to_string();
    let record = Record {
        seq: 0,
        at: audit::now(),
        request_id: request_id.clone(),
        studio: Some(principal.studio.clone()),
        principal_kind: Some(principal.kind.as_str().into()),
        principal_id: Some(principal.id.clone()),
        principal_name: Some(principal.name.clone()),
        tool: Some(name.to_string()),
        arguments: None,
        decision: None,
        policies: Vec::new(),
        outcome: String::new(),
        message: None,
        upstream_status: None,
        duration_ms: 0,
        client_addr: None,
    };
    // Debug level: the audit log is the per-call record; at the default `info` level the span
    // is disabled and costs nothing on the hot path.
    let span = tracing::debug_span!(
        "tools/call",
        tool = name,
        studio = %principal.studio,
        principal = %principal.id,
        request_id = %request_id,
    );
    handle(app, principal, name, args, started, record)
        .instrument(span)
        .await
}

async fn handle(
    app: &App,
    principal: &Principal,
    name: &str,
    args: Option<JsonObject>,
    started: Instant,
    mut record: Record,
) -> Result<CallToolResult, ErrorData> {
    let tool = app.registry.get(name);
    let args = Value::Object(args.unwrap_or_default());
    if let Some(tool) = tool {
        record.arguments = Some(audit::redact(&args, tool.def.sensitive));
    }
    let write = tool.is_some_and(|t| t.def.access == Access::Write);

    let result = match admit(app, principal).await {
        Err(failure) => Err(failure),
        Ok(studio) => match tool {
            None => {
                record.outcome = Outcome::Invalid.as_str().into();
                record.message = Some(format!("unknown tool {name}"));
                finish(app, &mut record, started).await;
                app.metrics.call("unknown", Outcome::Invalid.as_str());
                return Err(ErrorData::invalid_params(
                    format!("Unknown tool: {name}"),
                    None,
                ));
            }
            Some(tool) => run(app, principal, &studio, tool, args, &mut record).await,
        },
    };
    let (response, outcome, message) = present(name, write, &result);
    record.outcome = outcome.as_str().into();
    record.message = message;
    if let Err(Failure::Upstream(e) | Failure::Studio(e)) = &result {
        record.upstream_status = e.status().map(i64::from);
    }
    if let Some(tool) = tool {
        app.metrics.call(tool.def.name, outcome.as_str());
    }
    if !finish(app, &mut record, started).await {
        return Ok(CallToolResult::error(vec![ContentBlock::text(
            if outcome == Outcome::Ok && write {
                format!(
                    "{name} was applied, but flowgate could not write its audit record; tell the studio's administrator."
                )
            } else {
                format!(
                    "{name} could not be recorded in the audit log, so its result is withheld; try again shortly."
                )
            },
        )]));
    }
    tracing::debug!(
        outcome = outcome.as_str(),
        duration_ms = record.duration_ms,
        "call finished"
    );
    Ok(response)
}

/// The studio (for its tier) and the rate limit: checked before anything else about the call.
async fn admit(app: &App, principal: &Principal) -> Result<StudioInfo, Failure> {
    let studio = app
        .studio(&principal.studio)
        .await
        .map_err(Failure::Studio)?;
    let key = format!("{}:{}", principal.kind.as_str(), principal.id);
    app.limits.check(&studio.tier, &key).map_err(|limited| {
        app.metrics.rate_limited(&studio.tier);
        Failure::RateLimited(limited)
    })?;
    Ok(studio)
}

/// Appends the record; `false` if it could not be written.
async fn finish(app: &App, record: &mut Record, started: Instant) -> bool {
    record.duration_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
    match app.audit.append(record).await {
        Ok(seq) => {
            record.seq = seq;
            true
        }
        Err(e) => {
            tracing::error!(error = %e, request_id = %record.request_id, "cannot write the audit record");
            false
        }
    }
}

async fn run(
    app: &App,
    principal: &Principal,
    studio: &StudioInfo,
    tool: &Tool,
    args: Value,
    record: &mut Record,
) -> Result<Value, Failure> {
    let studio_ref = Studio {
        id: studio.id.clone(),
        tier: studio.tier.clone(),
    };

    let decoded = match tool.prepare(Some(args.clone())) {
        Ok(d) => d,
        Err(ArgsError::Invalid(problems)) => {
            // Could this caller ever make this call? Decide with the documented example.
            if let Some(example) = app.example_context(tool.def.name) {
                let decision = authorize(app, principal, &studio_ref, tool, example);
                if let Decision::Deny { policies, reason } = decision {
                    record.decision = Some("deny".into());
                    record.policies = policies;
                    return Err(Failure::Denied(reason));
                }
            }
            return Err(Failure::Invalid(problems));
        }
        Err(ArgsError::Decode(e)) => return Err(Failure::Internal(e)),
    };

    let decision = authorize(app, principal, &studio_ref, tool, decoded.context);
    record.policies = decision.policies().to_vec();
    match decision {
        Decision::Allow { .. } => record.decision = Some("allow".into()),
        Decision::Deny { reason, .. } => {
            record.decision = Some("deny".into());
            return Err(Failure::Denied(reason));
        }
    }

    match tool.def.target {
        Target::Builtin(Builtin::Whoami) => Ok(json!({
            "studio": { "id": studio.id, "name": studio.name, "tier": studio.tier },
            "principal": {
                "kind": principal.kind.as_str(),
                "id": principal.id,
                "name": principal.name,
            },
            "scopes": principal.scopes,
        })),
        Target::Builtin(Builtin::AuditLog) => audit_log(app, principal, &args).await,
        Target::Upstream { .. } => {
            let Some(req) = decoded.upstream else {
                return Err(Failure::Internal("no upstream request".into()));
            };
            let key = decoded.idempotency_key.as_deref();
            let claimed = match key {
                None => None,
                Some(key) => {
                    let hash = idempotency::args_hash(&args);
                    match app
                        .idempotency
                        .claim(&principal.studio, tool.def.name, key, &hash)
                        .await
                        .map_err(|e| Failure::Internal(e.to_string()))?
                    {
                        Claim::Fresh => Some(key),
                        Claim::Replay(stored) => {
                            record.message = Some("replayed from the idempotency store".into());
                            return match stored {
                                Stored::Ok(v) => Ok(v),
                                Stored::Rejected {
                                    status,
                                    code,
                                    message,
                                } => Err(Failure::Upstream(UpstreamError::Rejected {
                                    status,
                                    code,
                                    message,
                                })),
                            };
                        }
                        Claim::Mismatch => return Err(Failure::KeyReused),
                        Claim::InProgress => return Err(Failure::InProgress),
                    }
                }
            };
            let actor = format!("{}:{}", principal.kind.as_str(), principal.id);
            let upstream_key = key.map(|k| idempotency::upstream_key(tool.def.name, k));
            let headers = CallHeaders {
                studio: &principal.studio,
                actor: &actor,
                request_id: &record.request_id,
                idempotency_key: upstream_key.as_deref(),
            };
            let result = app.call_upstream(&req, &headers).await;
            if let Some(key) = claimed {
                let stored = match &result {
                    Ok(v) => Some(Stored::Ok(v.clone())),
                    // Not final: the upstream has not finished with this key.
                    Err(e) if upstream_in_progress(e) => None,
                    Err(UpstreamError::Rejected {
                        status,
                        code,
                        message,
                    }) => Some(Stored::Rejected {
                        status: *status,
                        code: code.clone(),
                        message: message.clone(),
                    }),
                    Err(_) => None,
                };
                let done = match &stored {
                    Some(s) => {
                        app.idempotency
                            .complete(&principal.studio, tool.def.name, key, s)
                            .await
                    }
                    None => {
                        app.idempotency
                            .release(&principal.studio, tool.def.name, key)
                            .await
                    }
                };
                if let Err(e) = done {
                    tracing::error!(
                        error = %e,
                        tool = tool.def.name,
                        request_id = %record.request_id,
                        "cannot store the idempotent answer"
                    );
                }
            }
            let value = result.map_err(Failure::Upstream)?;
            record.upstream_status = Some(200);
            Ok(value)
        }
    }
}

/// The Cedar decision, timed.
fn authorize(
    app: &App,
    principal: &Principal,
    studio: &Studio,
    tool: &Tool,
    context: Expr,
) -> Decision {
    let started = Instant::now();
    let decision = app.authz.authorize(principal, studio, tool.def, context);
    app.metrics.decision(started.elapsed());
    decision
}

/// `list_audit_log`: this studio's records only, newest first.
async fn audit_log(app: &App, principal: &Principal, args: &Value) -> Result<Value, Failure> {
    let text = |k: &str| args.get(k).and_then(Value::as_str).map(str::to_string);
    let limit = args.get("limit").and_then(Value::as_i64).unwrap_or(25);
    let before_seq = match text("cursor") {
        None => None,
        Some(c) => Some(c.parse::<i64>().map_err(|_| {
            Failure::Invalid(vec![Problem {
                path: "cursor".into(),
                message: "is not a cursor this tool returned".into(),
            }])
        })?),
    };
    let filter = audit::Filter {
        studio: Some(principal.studio.clone()),
        principal: None,
        tool: text("tool"),
        outcome: text("outcome"),
        since: text("since"),
        until: text("until"),
        before_seq,
        limit: limit + 1,
    };
    let mut records = app
        .audit
        .query(&filter)
        .await
        .map_err(|e| Failure::Internal(e.to_string()))?;
    let more = records.len() as i64 > limit;
    records.truncate(usize::try_from(limit).unwrap_or(25));
    let next = more
        .then(|| records.last().map(|r| r.seq.to_string()))
        .flatten();
    Ok(json!({ "data": records, "next_cursor": next }))
}

/// The one place where outcomes become responses: the result, its audit outcome, and the
/// message recorded with it.
fn present(
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
                match l.retry_after.as_secs_f64().ceil().max(1.0) as u64 {
                    1 => "1 second".to_string(),
                    n => format!("{n} seconds"),
                }
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
    }
}

/// The tier title helper, re-exported for the `tools/list` descriptions.
pub fn gated_suffix(tool_tier: &str) -> String {
    format!(" ({} plan)", tool::tier_title(tool_tier))
}
