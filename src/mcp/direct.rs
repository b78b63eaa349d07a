//! The direct path of `/mcp`: the requests that make up nearly all of a gateway's traffic —
//! `tools/call` and `tools/list` of the 2025 protocol era — answered by flowgate itself, in the
//! request's own task, instead of through rmcp's Streamable HTTP service (which builds a service,
//! spawns it and a handler task, and passes the message through channels for every request).
//!
//! Contract: a request this path answers gets exactly the answer rmcp would give (HTTP 200,
//! `application/json`, the JSON-RPC message built from rmcp's model types and serialized with
//! serde as rmcp does; a test compares the bytes with rmcp's own answer). The body is parsed once,
//! into borrowed fields. Anything this path does not recognise with certainty — another method,
//! notifications, responses, a `_meta` or unknown field, the 2026-07-28 era, an `Accept` or
//! `Content-Type` rmcp would refuse, an `MCP-Protocol-Version` it does not know, a body that is
//! not one JSON-RPC request — goes on to rmcp untouched, with every check and error of its own.
//!
//! A call runs in a task of its own, as under rmcp, so a client that goes away does not cut it
//! short: an upstream write already sent is still audited.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rmcp::model::{
    CallToolResponse, JsonObject, NumberOrString, RequestId, ServerJsonRpcMessage, ServerResult,
};
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio_util::sync::CancellationToken;

use super::Gateway;
use crate::identity::Principal;
use crate::telemetry::Arrival;

/// The protocol versions whose requests this path may answer: rmcp's known versions before
/// 2026-07-28 (from which requests carry `_meta` and standard headers, handled by rmcp).
const DIRECT_VERSIONS: &[&str] = &["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"];

/// The bytes of pre-serialized `tools/list` pages kept at most (distinct scope sets × tiers ×
/// pages). Weighed in bytes, not pages: a page of 100 tools of a large catalog is about 300 KB,
/// and callers choose their scope sets, so a count of pages would not bound the memory.
const LIST_PAGE_BYTES: u64 = 8 << 20;

/// What the direct path needs: the gateway, the shutdown token rmcp also obeys, and the
/// serialized `tools/list` pages. Shared (`Arc`): axum clones a layer's state per request.
pub struct Direct {
    gateway: Gateway,
    shutdown: CancellationToken,
    /// `tools/list` results by (scopes, studio tier rank, start): the bytes of the `result`.
    pages: moka::sync::Cache<(BTreeSet<String>, Option<usize>, usize), Bytes>,
}

impl Direct {
    pub fn new(gateway: Gateway, shutdown: CancellationToken) -> Self {
        Self {
            gateway,
            shutdown,
            pages: moka::sync::Cache::builder()
                .name("tools_list_pages")
                .max_capacity(LIST_PAGE_BYTES)
                .weigher(|_, page: &Bytes| u32::try_from(page.len()).unwrap_or(u32::MAX))
                .build(),
        }
    }
}

/// One JSON-RPC request, exactly as this path accepts it (anything else fails to parse and goes
/// to rmcp).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Message<'a> {
    #[serde(borrow)]
    jsonrpc: &'a str,
    #[serde(borrow)]
    id: &'a RawValue,
    #[serde(borrow)]
    method: &'a str,
    #[serde(borrow, default)]
    params: Option<&'a RawValue>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CallParams {
    name: String,
    #[serde(default)]
    arguments: Option<JsonObject>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListParams {
    #[serde(default)]
    cursor: Option<String>,
}

/// The request this path answers.
enum Answerable {
    Call(CallParams),
    List(Option<String>),
}

/// The request's id, as rmcp reads it (an integer or a string; anything else is rmcp's).
fn request_id(raw: &RawValue) -> Option<RequestId> {
    match serde_json::from_str::<serde_json::Value>(raw.get()).ok()? {
        serde_json::Value::Number(n) => n.as_i64().map(NumberOrString::Number),
        serde_json::Value::String(s) => Some(NumberOrString::String(s.into())),
        _ => None,
    }
}

/// Whether the headers are ones rmcp serves without objection (see the module's contract).
fn headers_fit(headers: &HeaderMap) -> bool {
    let version = match headers.get("mcp-protocol-version") {
        None => true,
        Some(v) => v.to_str().is_ok_and(|v| DIRECT_VERSIONS.contains(&v)),
    };
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|e| e.trim().eq_ignore_ascii_case("application/json"));
    // Both media types listed, without parameters (a `q=0` would exclude one: rmcp's to judge).
    let (mut accepts_json, mut accepts_sse, mut plain) = (false, false, true);
    for value in headers.get_all(header::ACCEPT) {
        let Ok(value) = value.to_str() else {
            return false;
        };
        for t in value.split(',') {
            plain &= !t.contains(';');
            let t = t.trim();
            accepts_json |= t.eq_ignore_ascii_case("application/json");
            accepts_sse |= t.eq_ignore_ascii_case("text/event-stream");
        }
    }
    version && json && accepts_json && accepts_sse && plain
}

/// The request in `body`, if this path answers it.
fn answerable(body: &[u8]) -> Option<(RequestId, Answerable)> {
    let message: Message = serde_json::from_slice(body).ok()?;
    if message.jsonrpc != "2.0" {
        return None;
    }
    let id = request_id(message.id)?;
    let what = match message.method {
        "tools/call" => Answerable::Call(serde_json::from_str(message.params?.get()).ok()?),
        "tools/list" => match message.params {
            None => Answerable::List(None),
            Some(p) => Answerable::List(serde_json::from_str::<ListParams>(p.get()).ok()?.cursor),
        },
        _ => return None,
    };
    Some((id, what))
}

/// The layer in front of rmcp: answers what it can (see the module's contract), passes the rest.
/// Runs after authentication, the body guard and (stateful) the session check.
pub async fn layer(State(direct): State<Arc<Direct>>, req: Request, next: Next) -> Response {
    if req.method() != axum::http::Method::POST || !headers_fit(req.headers()) {
        return next.run(req).await;
    }
    let Some(principal) = req.extensions().get::<Arc<Principal>>().cloned() else {
        return next.run(req).await;
    };
    let (parts, body) = req.into_parts();
    // Already read whole by the body guard: this only takes the bytes back out.
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return crate::wire::Refusal::bad_request("The request body could not be read.")
            .into_response();
    };
    let Some((id, what)) = answerable(&bytes) else {
        return next
            .run(Request::from_parts(parts, Body::from(bytes)))
            .await;
    };
    let arrival = parts.extensions.get::<Arrival>().cloned();
    match what {
        Answerable::Call(params) => call(&direct, principal, id, params, arrival).await,
        Answerable::List(cursor) => list(&direct, &principal, id, cursor.as_deref()).await,
    }
}

async fn call(
    direct: &Direct,
    principal: Arc<Principal>,
    id: RequestId,
    params: CallParams,
    arrival: Option<Arrival>,
) -> Response {
    let app = direct.gateway.app().clone();
    // Its own task: finished (and audited) even if this request's future is dropped.
    let task = tokio::spawn(async move {
        crate::call::call_tool(
            &app,
            &principal,
            &params.name,
            params.arguments,
            arrival.as_ref(),
        )
        .await
    });
    let outcome = tokio::select! {
        joined = task => joined,
        // As rmcp does on shutdown: the request gets no JSON-RPC answer.
        () = direct.shutdown.cancelled() => return empty_response(),
    };
    let message = match outcome {
        Ok(Ok(result)) => ServerJsonRpcMessage::response(
            legacy(ServerResult::from(CallToolResponse::from(result))),
            id,
        ),
        Ok(Err(error)) => ServerJsonRpcMessage::error(error, Some(id)),
        Err(e) => {
            tracing::error!(error = %e, "a tools/call task failed");
            ServerJsonRpcMessage::error(
                crate::wire::Refusal::internal(&"the call's task failed").json_rpc(),
                Some(id),
            )
        }
    };
    self::message(&message)
}

async fn list(
    direct: &Direct,
    principal: &Principal,
    id: RequestId,
    cursor: Option<&str>,
) -> Response {
    let (rank, start) = match direct.gateway.list_start(principal, cursor).await {
        Ok(found) => found,
        Err(error) => return message(&ServerJsonRpcMessage::error(error, Some(id))),
    };
    let key = (principal.scopes.clone(), rank, start);
    let result = match direct.pages.get(&key) {
        Some(bytes) => bytes,
        None => {
            let page = direct.gateway.page(principal, rank, start);
            match serde_json::to_vec(&page) {
                Ok(bytes) => {
                    let bytes = Bytes::from(bytes);
                    direct.pages.insert(key, bytes.clone());
                    bytes
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot serialize a tools/list page");
                    return StatusCode::INTERNAL_SERVER_ERROR.into_response();
                }
            }
        }
    };
    // `{"jsonrpc":"2.0","id":…,"result":…}`, as serde writes a `JsonRpcResponse`.
    let Ok(id) = serde_json::to_vec(&id) else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let mut body = Vec::with_capacity(result.len() + id.len() + 40);
    body.extend_from_slice(br#"{"jsonrpc":"2.0","id":"#);
    body.extend_from_slice(&id);
    body.extend_from_slice(br#","result":"#);
    body.extend_from_slice(&result);
    body.push(b'}');
    json(Bytes::from(body))
}

/// A result as rmcp shapes it for a peer of the 2025 era (every request this path answers):
/// without `resultType: "complete"` and without non-object tool output.
fn legacy(mut result: ServerResult) -> ServerResult {
    result.strip_result_type_for_legacy_peer();
    result.strip_non_object_output_for_legacy_peer();
    result
}

/// A JSON-RPC message as the answer (500, logged, should it not serialize).
fn message(message: &ServerJsonRpcMessage) -> Response {
    match serde_json::to_vec(message) {
        Ok(body) => json(Bytes::from(body)),
        Err(e) => {
            tracing::error!(error = %e, "cannot serialize an MCP answer");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

fn json(body: Bytes) -> Response {
    let mut response = Response::new(Body::from(body));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// rmcp's answer, word for word, when shutdown stops it serving a request: 500, plain text.
fn empty_response() -> Response {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        "Encounter an error when empty response: no response message received from handler",
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn only_plain_2025_era_tool_requests_are_answered_here() {
        let call = br#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"get_class","arguments":{"class_id":"c"}}}"#;
        assert!(
            matches!(answerable(call), Some((NumberOrString::Number(7), Answerable::Call(p))) if p.name == "get_class")
        );
        let list = br#"{"jsonrpc":"2.0","id":"a","method":"tools/list","params":{"cursor":"3"}}"#;
        assert!(matches!(answerable(list), Some((_, Answerable::List(Some(c)))) if c == "3"));
        assert!(matches!(
            answerable(br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#),
            Some((_, Answerable::List(None)))
        ));
        for other in [
            // _meta (progress tokens, the 2026-07-28 era), unknown fields, other methods,
            // notifications, odd ids, a wrong version, broken JSON, batches: rmcp's.
            &br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","_meta":{}}}"#[..],
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x"},"extra":1}"#,
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","task":{}}}"#,
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{}}}"#,
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/call"}"#,
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":3}}"#,
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","arguments":[]}}"#,
            br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#,
            br#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}"#,
            br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
            br#"{"jsonrpc":"2.0","id":1.5,"method":"tools/list"}"#,
            br#"{"jsonrpc":"2.0","id":null,"method":"tools/list"}"#,
            br#"{"jsonrpc":"1.0","id":1,"method":"tools/list"}"#,
            br#"{"jsonrpc":"2.0","id":1,"id":2,"method":"tools/list"}"#,
            br#"[{"jsonrpc":"2.0","id":1,"method":"tools/list"}]"#,
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/list""#,
        ] {
            assert!(
                answerable(other).is_none(),
                "{}",
                String::from_utf8_lossy(other)
            );
        }
    }

    #[test]
    fn headers_rmcp_would_question_go_to_rmcp() {
        let both = "application/json, text/event-stream";
        let ct = ("content-type", "application/json");
        assert!(headers_fit(&headers(&[("accept", both), ct])));
        assert!(headers_fit(&headers(&[
            ("accept", both),
            ("content-type", "application/json; charset=utf-8"),
            ("mcp-protocol-version", "2025-11-25"),
        ])));
        for bad in [
            headers(&[("accept", "application/json"), ct]),
            headers(&[("accept", "text/event-stream"), ct]),
            headers(&[("accept", "application/json, text/event-stream;q=0"), ct]),
            headers(&[("accept", both), ("content-type", "text/plain")]),
            headers(&[("accept", both)]),
            headers(&[("accept", both), ct, ("mcp-protocol-version", "2026-07-28")]),
            headers(&[("accept", both), ct, ("mcp-protocol-version", "1999-01-01")]),
        ] {
            assert!(!headers_fit(&bad), "{bad:?}");
        }
        assert!(headers_fit(&headers(&[
            ("accept", "application/json"),
            ("accept", "text/event-stream"),
            ct
        ])));
    }
}
