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

use crate::app::App;
use crate::audit::{self, Outcome, Record};
use crate::authz::Decision;
use crate::idempotency::{self, Guarded};
use crate::identity::{Principal, Studio};
use crate::limit::Limited;
use crate::metrics::Stage;
use crate::store::Timestamp;
use crate::telemetry::{Arrival, Finished, Trace};
use crate::tool::glue::Expr;
use crate::tool::{self, Access, ArgsError, Builtin, BuiltinInput, Problem, Target, Tool, catalog};
use crate::upstream::CallHeaders;
use crate::wire::Refusal;
use crate::wire::tool::{Failure, present, wait_text};

/// Runs one call and returns what the caller sees. An unknown tool is a JSON-RPC error.
pub async fn call_tool(
    app: &App,
    principal: &Principal,
    name: &str,
    args: Option<JsonObject>,
    arrival: Option<&Arrival>,
) -> Result<CallToolResult, ErrorData> {
    let mut call = CallContext {
        principal,
        tool: name,
        request_id: uuid::Uuid::new_v4().to_string(),
        at: Timestamp::now(),
        started: Instant::now(),
        arguments: None,
        decision: None,
        policies: Vec::new(),
        upstream_status: None,
        note: None,
        outcome: Outcome::Error,
    };
    // Debug level: the audit log is the per-call record; at the default `info` level the span
    // is disabled and costs nothing on the hot path.
    let span = tracing::debug_span!(
        "tools/call",
        tool = name,
        studio = %principal.studio,
        principal = %principal.id,
        request_id = %call.request_id,
    );
    let stages = Stages {
        app,
        trace: app.telemetry.begin(arrival).map(std::sync::Mutex::new),
    };
    let answer = handle(&stages, &mut call, args).instrument(span).await;
    stages.finish(&call);
    answer
}

/// What one call learns on its way through the stages. Its audit record is built from it once,
/// at the end ([`CallContext::record`]).
struct CallContext<'a> {
    principal: &'a Principal,
    tool: &'a str,
    request_id: String,
    at: Timestamp,
    started: Instant,
    /// The arguments, `sensitive` fields redacted (once the tool is known).
    arguments: Option<Value>,
    decision: Option<&'static str>,
    policies: Vec<String>,
    upstream_status: Option<i64>,
    /// Kept as the record's message when the outcome has none of its own (a replay).
    note: Option<&'static str>,
    outcome: Outcome,
}

impl CallContext<'_> {
    /// The call's audit record.
    fn record(&self, message: Option<String>) -> Record {
        let p = self.principal;
        Record {
            seq: 0,
            at: self.at,
            request_id: self.request_id.clone(),
            studio: Some(p.studio.clone()),
            principal_kind: Some(p.kind.as_str().into()),
            principal_id: Some(p.id.clone()),
            principal_name: Some(p.name.clone()),
            tool: Some(self.tool.to_string()),
            arguments: self.arguments.clone(),
            decision: self.decision.map(str::to_string),
            policies: self.policies.clone(),
            outcome: self.outcome.as_str().into(),
            message: message.or_else(|| self.note.map(str::to_string)),
            upstream_status: self.upstream_status,
            duration_ms: i64::try_from(self.started.elapsed().as_millis()).unwrap_or(i64::MAX),
            client_addr: None,
        }
    }
}

/// Times each stage of one call: the stage histograms, and the call's trace when tracing is on.
struct Stages<'a> {
    app: &'a App,
    trace: Option<std::sync::Mutex<Trace>>,
}

impl Stages<'_> {
    /// `stage` ran from `started` until now.
    fn done(&self, stage: Stage, started: Instant) {
        self.app.metrics.stage(stage, started.elapsed());
        self.span(stage, started);
    }

    /// Only the trace's span (the histogram is kept elsewhere).
    fn span(&self, stage: Stage, started: Instant) {
        if let Some(trace) = &self.trace {
            trace
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .stage(stage, started);
        }
    }

    /// The `traceparent` for the upstream request, when traced.
    fn upstream_parent(&self) -> Option<String> {
        self.trace.as_ref().map(|t| {
            t.lock()
                .unwrap_or_else(|p| p.into_inner())
                .upstream_parent()
        })
    }

    fn finish(self, call: &CallContext<'_>) {
        if let Some(trace) = self.trace {
            let trace = trace.into_inner().unwrap_or_else(|p| p.into_inner());
            self.app.telemetry.finish(
                &trace,
                &Finished {
                    tool: call.tool,
                    studio: &call.principal.studio,
                    principal: &call.principal.id,
                    outcome: call.outcome.as_str(),
                    request_id: &call.request_id,
                },
            );
        }
    }
}

async fn handle(
    stages: &Stages<'_>,
    call: &mut CallContext<'_>,
    args: Option<JsonObject>,
) -> Result<CallToolResult, ErrorData> {
    let app = stages.app;
    let (name, principal) = (call.tool, call.principal);
    let tool = app.registry.get(name);
    let args = Value::Object(args.unwrap_or_default());
    // The values of `sensitive` arguments: redacted from the stored arguments, and scrubbed from
    // the stored (and logged) message even where an error quotes them.
    let mut secrets = Vec::new();
    if let Some(tool) = tool {
        call.arguments = Some(audit::redact(&args, tool.def.sensitive));
        secrets = audit::sensitive_values(&args, tool.def.sensitive);
    }
    let write = tool.is_some_and(|t| t.def.access == Access::Write);

    let result = match admit(stages, principal).await {
        Err(failure) => Err(failure),
        Ok(studio) => match tool {
            None => {
                call.outcome = Outcome::Invalid;
                finish(stages, call, Some(format!("unknown tool {name}"))).await;
                app.metrics.call("unknown", Outcome::Invalid.as_str());
                return Err(Refusal::bad_request(format!("Unknown tool: {name}")).json_rpc());
            }
            Some(tool) => run(stages, call, &studio, tool, args).await,
        },
    };
    let result = result.map_err(|f| match f {
        Failure::Internal(e) => Failure::Internal(audit::scrub(&e, &secrets)),
        f => f,
    });
    let (response, outcome, message) = present(name, write, &result);
    call.outcome = outcome;
    if let Err(Failure::Upstream(e) | Failure::Studio(e)) = &result {
        call.upstream_status = e.status().map(i64::from);
    }
    if let Some(tool) = tool {
        app.metrics.call(tool.def.name, outcome.as_str());
    }
    // Errors may quote what the caller sent (a 4xx from the Management API does): the stored copy
    // never holds a sensitive value.
    let message = message.map(|m| audit::scrub(&m, &secrets));
    if !finish(stages, call, message).await {
        let reached_upstream = matches!(&result, Ok(_) | Err(Failure::Upstream(_)));
        return Ok(CallToolResult::error(vec![ContentBlock::text(
            if outcome == Outcome::Ok && write {
                format!(
                    "{name} was applied, but flowgate could not write its audit record; tell the studio's administrator."
                )
            } else if !reached_upstream {
                format!(
                    "flowgate cannot write its audit log right now, so {name} was not run and nothing was changed. Try again shortly; if it goes on, tell the studio's administrator."
                )
            } else {
                format!(
                    "{name} could not be recorded in the audit log, so its result is withheld; try again shortly."
                )
            },
        )]));
    }
    tracing::debug!(outcome = outcome.as_str(), "call finished");
    Ok(response)
}

/// The studio (for its tier), the rate limit and the audit log's health: checked before
/// anything else about the call.
async fn admit(stages: &Stages<'_>, principal: &Principal) -> Result<Studio, Failure> {
    let app = stages.app;
    if !app.audit.healthy() {
        // Fail closed: no call is made that could not be audited. This call's own record is
        // the probe; once one is written, calls go through again.
        return Err(Failure::AuditUnavailable);
    }
    let started = Instant::now();
    let studio = app
        .studio(&principal.studio)
        .await
        .map_err(Failure::Studio)?;
    let limited = rate_limit(app, principal, &studio.tier)
        .await
        .map_err(Failure::RateLimited);
    stages.done(Stage::RateLimit, started);
    limited.map(|()| studio)
}

async fn rate_limit(app: &App, principal: &Principal, tier: &str) -> Result<(), Limited> {
    let key = format!("{}:{}", principal.kind.as_str(), principal.id);
    app.limits.check(tier, &key).await.inspect_err(|_| {
        app.metrics.rate_limited(tier);
    })
}

/// `initialize` and `tools/list` count against the principal's rate limit like `tools/call`.
/// With the studio's tier unknown (the upstream is down), the lowest tier's limit applies.
pub async fn charge(app: &App, principal: &Principal, tier: Option<&str>) -> Result<(), ErrorData> {
    let tier = tier.unwrap_or(tool::catalog::TIERS[0].name);
    rate_limit(app, principal, tier).await.map_err(|l| {
        Refusal::too_many(
            format!(
                "Rate limit reached: this connection may make {} requests per minute. Try again in {}.",
                l.per_minute,
                wait_text(&l)
            ),
            l.retry_after,
        )
        .json_rpc()
    })
}

/// The JSON-RPC error code of a rate-limited request other than `tools/call`.
pub use crate::wire::RATE_LIMITED;

/// Builds the call's audit record and appends it; `false` if it could not be written.
async fn finish(stages: &Stages<'_>, call: &CallContext<'_>, message: Option<String>) -> bool {
    let app = stages.app;
    let record = call.record(message);
    let appending = Instant::now();
    let appended = app.audit.append(&record).await;
    stages.done(Stage::Audit, appending);
    if let Err(e) = &appended {
        tracing::error!(error = %e, request_id = %call.request_id, "cannot write the audit record");
    }
    appended.is_ok()
}

async fn run(
    stages: &Stages<'_>,
    call: &mut CallContext<'_>,
    studio: &Studio,
    tool: &Tool,
    args: Value,
) -> Result<Value, Failure> {
    let app = stages.app;
    let principal = call.principal;

    let validating = Instant::now();
    let prepared = tool.prepare(Some(args.clone()));
    stages.done(Stage::Validate, validating);
    let decoded = match prepared {
        Ok(d) => d,
        Err(ArgsError::Invalid(problems)) => {
            // Could this caller ever make this call? Decide with the documented example.
            if let Some(example) = app.example_context(tool.def.name) {
                let decision = authorize(stages, principal, studio, tool, example);
                if let Decision::Deny { policies, reason } = decision {
                    call.decision = Some("deny");
                    call.policies = policies;
                    return Err(Failure::Denied(reason));
                }
            }
            return Err(Failure::Invalid(problems));
        }
        Err(ArgsError::Decode(e)) => return Err(Failure::Internal(e)),
    };

    let decision = authorize(stages, principal, studio, tool, decoded.context);
    call.policies = decision.policies().to_vec();
    match decision {
        Decision::Allow { .. } => call.decision = Some("allow"),
        Decision::Deny { reason, .. } => {
            call.decision = Some("deny");
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
        Target::Builtin(Builtin::AuditLog) => match decoded.builtin {
            Some(BuiltinInput::AuditLog(input)) => audit_log(app, principal, input).await,
            _ => Err(Failure::Internal(
                "list_audit_log was decoded without its input".into(),
            )),
        },
        Target::Upstream { .. } => {
            let Some(req) = decoded.upstream else {
                return Err(Failure::Internal("no upstream request".into()));
            };
            let key = decoded.idempotency_key.as_deref();
            let actor = format!("{}:{}", principal.kind.as_str(), principal.id);
            let upstream_key = key.map(|k| idempotency::upstream_key(tool.def.name, k));
            let traceparent = stages.upstream_parent();
            let headers = CallHeaders {
                studio: &principal.studio,
                actor: &actor,
                request_id: &call.request_id,
                idempotency_key: upstream_key.as_deref(),
                traceparent: traceparent.as_deref(),
            };
            let upstream = async {
                let calling = Instant::now();
                let result = app.call_upstream(&req, &headers).await;
                // The histogram is kept by `call_upstream` (for every upstream request).
                stages.span(Stage::Upstream, calling);
                result
            };
            let result = match key {
                None => upstream.await,
                Some(key) => {
                    let hash = idempotency::args_hash(decoded.canonical.as_ref().unwrap_or(&args));
                    let guarded = app
                        .idempotency
                        .guard(
                            &principal.studio,
                            tool.def.name,
                            key,
                            &hash,
                            |claiming| stages.done(Stage::Idempotency, claiming),
                            upstream,
                        )
                        .await
                        .map_err(|e| Failure::Internal(e.to_string()))?;
                    match guarded {
                        Guarded::Called(result) => result,
                        Guarded::Replayed(result) => {
                            call.note = Some("replayed from the idempotency store");
                            return result.map_err(Failure::Upstream);
                        }
                        Guarded::Mismatch => return Err(Failure::KeyReused),
                        Guarded::InProgress => return Err(Failure::InProgress),
                    }
                }
            };
            let value = result.map_err(Failure::Upstream)?;
            call.upstream_status = Some(200);
            Ok(value)
        }
    }
}

/// The Cedar decision, timed.
fn authorize(
    stages: &Stages<'_>,
    principal: &Principal,
    studio: &Studio,
    tool: &Tool,
    context: Expr,
) -> Decision {
    let started = Instant::now();
    let decision = stages
        .app
        .authz
        .authorize(principal, studio, tool.def, context);
    stages.app.metrics.decision(started.elapsed());
    stages.done(Stage::Authorize, started);
    decision
}

/// `list_audit_log`: this studio's records only, newest first.
async fn audit_log(
    app: &App,
    principal: &Principal,
    input: catalog::ListAuditLogInput,
) -> Result<Value, Failure> {
    // The schema checked the times' format; an instant is still parsed once, here.
    let time = |field: &str, t: Option<String>| match t {
        None => Ok(None),
        Some(t) => Timestamp::parse(&t).map(Some).ok_or_else(|| {
            Failure::Invalid(vec![Problem {
                path: field.into(),
                message: "is not an RFC 3339 time with an offset".into(),
            }])
        }),
    };
    let limit = input.limit.unwrap_or(25);
    let before_seq = match input.cursor {
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
        tool: input.tool,
        outcome: input.outcome,
        since: time("since", input.since)?,
        until: time("until", input.until)?,
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

/// The tier title helper, re-exported for the `tools/list` descriptions.
pub fn gated_suffix(tool_tier: &str) -> String {
    format!(" ({} plan)", tool::tier_title(tool_tier))
}
