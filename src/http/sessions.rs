//! MCP sessions (2025-11-25 `Mcp-Session-Id`), owned by flowgate so that any replica serves any
//! session: rmcp answers every request statelessly, and this layer in front of it opens, checks
//! and ends sessions.
//!
//! A session id is self-contained and signed: `fs1.<payload>.<mac>`, both base64url, the payload
//! a small JSON object ([`Claims`]: the principal it is bound to, issued-at, expiry, negotiated
//! protocol version, a random nonce) and the mac its HMAC-SHA256 under the store's shared secret
//! `mcp-session-key`. Any replica verifies an id with no store round trip. An id that is forged,
//! tampered with, expired, ended, or presented with another principal's credential is answered
//! 404, exactly like an id the server never issued; the client then opens a new session.
//!
//! What the layer does, in `stateful` mode only (`stateless` serves everything without it):
//! - `POST initialize`: served by rmcp; a successful answer gets a new session id.
//! - any other `POST` of the 2025 protocol era: needs a valid session id (400 without one, 404
//!   with a bad one), then is served by rmcp like any stateless request.
//! - `POST` of the 2026-07-28 era (`_meta` carries the version) and `server/discover`: no
//!   sessions in that era; passed through untouched.
//! - answers of session requests are framed as SSE when the client accepts it, as rmcp's own
//!   sessions did: a priming event (`id` and `retry`, SEP-1699), then the message.
//! - `DELETE`: ends the session on every replica ([`crate::store::Store::end_session`]).
//! - `GET` (a standalone server-to-client stream): 405; flowgate sends no server-initiated
//!   messages.
//!
//! A session holds no memory on any replica: there is no per-principal session limit to keep.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use crate::wire::Refusal;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, Mac as _};
use serde::de::{self, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::app::App;
use crate::identity::Principal;
use crate::store::Timestamp;

/// The header carrying a session id.
pub const HEADER: &str = "mcp-session-id";

/// The prefix of the ids this format issues (a new format gets a new prefix).
const PREFIX: &str = "fs1.";

/// The `retry` of the priming event: how long a client waits before reconnecting.
const SSE_RETRY: Duration = Duration::from_secs(3);

/// What a session id carries (short keys: it travels on every request).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The principal's kind (`key` or `grant`).
    pub k: String,
    /// The principal's id.
    pub p: String,
    /// Issued at (unix seconds).
    pub iat: i64,
    /// Expires at (unix seconds).
    pub exp: i64,
    /// The protocol version `initialize` negotiated.
    pub v: String,
    /// 16 random bytes, base64url: what the store records when the session ends.
    pub n: String,
}

/// The signing key and lifetime of session ids.
#[derive(Clone)]
pub struct Sessions {
    mac: Hmac<Sha256>,
    ttl: Duration,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl Sessions {
    /// Sessions signed with `secret` (the store's shared `mcp-session-key`), valid for `ttl`.
    pub fn new(secret: &str, ttl: Duration) -> Self {
        Self {
            mac: Hmac::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any length"),
            ttl,
        }
    }

    /// A new session id for `principal`, which negotiated `version`.
    pub fn issue(&self, principal: &Principal, version: &str) -> String {
        let now = Timestamp::now().datetime().timestamp();
        let claims = Claims {
            k: principal.kind.as_str().to_string(),
            p: principal.id.clone(),
            iat: now,
            exp: now.saturating_add(i64::try_from(self.ttl.as_secs()).unwrap_or(i64::MAX)),
            v: version.to_string(),
            n: B64.encode(rand::random::<[u8; 16]>()),
        };
        let payload = B64.encode(serde_json::to_vec(&claims).unwrap_or_default());
        let signed = format!("{PREFIX}{payload}");
        let mut mac = self.mac.clone();
        mac.update(signed.as_bytes());
        format!("{signed}.{}", B64.encode(mac.finalize().into_bytes()))
    }

    /// The claims of `id` if this gateway issued it, it has not expired, and it belongs to
    /// `principal`. (Whether it was ended is the store's to say.)
    pub fn verify(&self, id: &str, principal: &Principal) -> Option<Claims> {
        let (signed, tag) = id.rsplit_once('.')?;
        let payload = signed.strip_prefix(PREFIX)?;
        let tag = B64.decode(tag).ok()?;
        let mut mac = self.mac.clone();
        mac.update(signed.as_bytes());
        // Constant time: the comparison says nothing about how much of a forged tag was right.
        mac.verify_slice(&tag).ok()?;
        let claims: Claims = serde_json::from_slice(&B64.decode(payload).ok()?).ok()?;
        let now = Timestamp::now().datetime().timestamp();
        (claims.exp > now && claims.k == principal.kind.as_str() && claims.p == principal.id)
            .then_some(claims)
    }
}

// === The layer ===

/// The session layer in front of rmcp (stateful mode). Runs after authentication: the request
/// carries its [`Principal`], and its body has been read whole by the body guard.
pub async fn layer(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let Some(principal) = req.extensions().get::<Arc<Principal>>().cloned() else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    match *req.method() {
        Method::POST => post(&app, &principal, req, next).await,
        Method::DELETE => delete(&app, &principal, req.headers()).await,
        _ => Refusal::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "Method Not Allowed: flowgate sends no server-initiated messages, so there is no stream to open",
        )
        .header(header::ALLOW, HeaderValue::from_static("POST, DELETE"))
        .into_response(),
    }
}

async fn post(app: &App, principal: &Principal, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    // Already read whole by the body guard: this only takes the bytes back out.
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return Refusal::bad_request("The request body could not be read.").into_response();
    };
    // A body that is not a JSON-RPC message goes on to rmcp, which refuses it with the
    // right JSON-RPC error (`json_rpc_errors`).
    let kind = serde_json::from_slice::<Peek>(&bytes)
        .ok()
        .map(|peek| peek.kind(&parts.headers));
    let accepts_sse = accepts_event_stream(&parts.headers);
    let req = Request::from_parts(parts, Body::from(bytes));
    match kind {
        None | Some(Kind::Sessionless) => next.run(req).await,
        Some(Kind::Initialize) => {
            let response = next.run(req).await;
            let (response, answer) = json_answer(response).await;
            let Some(answer) = answer else {
                return response;
            };
            let version = serde_json::from_slice::<InitializeAnswer>(&answer)
                .ok()
                .and_then(|a| a.result)
                .map(|r| r.protocol_version);
            let mut response = framed(response, answer, accepts_sse);
            if let Some(version) = version {
                let id = app.sessions.issue(principal, &version);
                if let Ok(value) = HeaderValue::from_str(&id) {
                    response.headers_mut().insert(HEADER, value);
                }
            }
            response
        }
        Some(Kind::InSession) => {
            if let Err(refused) = check(app, principal, req.headers()).await {
                return refused;
            }
            let response = next.run(req).await;
            match json_answer(response).await {
                (response, Some(answer)) => framed(response, answer, accepts_sse),
                (response, None) => response,
            }
        }
    }
}

/// Ends the session (204), on every replica.
async fn delete(app: &App, principal: &Principal, headers: &HeaderMap) -> Response {
    let claims = match check(app, principal, headers).await {
        Ok(claims) => claims,
        Err(refused) => return refused,
    };
    let expires = chrono::DateTime::from_timestamp(claims.exp, 0)
        .map(Timestamp::from)
        .unwrap_or_else(Timestamp::now);
    match app.store.end_session(&claims.n, expires).await {
        Ok(true) => StatusCode::NO_CONTENT.into_response(),
        // Ended meanwhile by another request.
        Ok(false) => not_found(),
        Err(e) => {
            tracing::error!(error = %e, "cannot end an MCP session");
            unavailable()
        }
    }
}

/// The request's session, if it has a valid one; else the answer to give.
async fn check(app: &App, principal: &Principal, headers: &HeaderMap) -> Result<Claims, Response> {
    let Some(id) = headers.get(HEADER) else {
        return Err(Refusal::bad_request("Bad Request: Session ID is required").into_response());
    };
    let Some(claims) = id
        .to_str()
        .ok()
        .and_then(|id| app.sessions.verify(id, principal))
    else {
        return Err(not_found());
    };
    match app.store.session_ended(&claims.n).await {
        Ok(false) => Ok(claims),
        Ok(true) => Err(not_found()),
        Err(e) => {
            tracing::error!(error = %e, "cannot check whether an MCP session ended");
            Err(unavailable())
        }
    }
}

fn not_found() -> Response {
    Refusal::not_found("Not Found: Session not found").into_response()
}

fn unavailable() -> Response {
    Refusal::unavailable("flowgate cannot check MCP sessions right now. Try again in a moment.")
        .json()
}

/// Whether `Accept` lists `text/event-stream`.
fn accepts_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| {
            t.split(';')
                .next()
                .is_some_and(|e| e.trim().eq_ignore_ascii_case("text/event-stream"))
        })
}

/// The JSON-RPC message of a `200 application/json` answer (rmcp's answer to a request),
/// taken out of the response; other answers (202, errors, SSE) are left as they are.
async fn json_answer(response: Response) -> (Response, Option<Bytes>) {
    let json = response.status() == StatusCode::OK
        && response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
    if !json {
        return (response, None);
    }
    let (parts, body) = response.into_parts();
    // rmcp built this answer in memory (one serialized message): nothing is read from a peer.
    match axum::body::to_bytes(body, usize::MAX).await {
        Ok(bytes) => (Response::from_parts(parts, Body::empty()), Some(bytes)),
        Err(e) => {
            tracing::error!(error = %e, "cannot read rmcp's answer");
            (StatusCode::INTERNAL_SERVER_ERROR.into_response(), None)
        }
    }
}

/// The answer as the client asked for it: an SSE stream (a priming event with an id and a
/// retry, then the message) when it accepts one, else the JSON as it was.
fn framed(response: Response, answer: Bytes, sse: bool) -> Response {
    let (mut parts, _) = response.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    if !sse {
        return Response::from_parts(parts, Body::from(answer));
    }
    // Compact JSON has no line breaks, so it is one `data:` line.
    let mut body =
        format!("data: \nid: 0\nretry: {}\n\ndata: ", SSE_RETRY.as_millis()).into_bytes();
    body.extend_from_slice(&answer);
    body.extend_from_slice(b"\n\n");
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    parts
        .headers
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Response::from_parts(parts, Body::from(body))
}

// === Reading just enough of a request ===

/// How a request relates to sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `initialize`: opens one.
    Initialize,
    /// A 2025-era message after `initialize`: needs one.
    InSession,
    /// The 2026-07-28 era (or `server/discover`): has none.
    Sessionless,
}

/// The first protocol version without `initialize` and sessions.
const NO_SESSIONS: &str = "2026-07-28";

/// The fields of a JSON-RPC message that decide its [`Kind`]; everything else is skipped
/// without being kept.
#[derive(Debug, Deserialize)]
struct Peek<'a> {
    #[serde(borrow, default)]
    method: Option<Cow<'a, str>>,
    #[serde(default)]
    id: Option<IgnoredAny>,
    #[serde(default)]
    params: Params,
}

impl Peek<'_> {
    /// The same decision rmcp makes (`is_legacy_request`): `initialize` opens a session; a
    /// request whose `_meta` carries the protocol version and client capabilities, or a
    /// `server/discover`, is of the sessionless era; otherwise the version (from `_meta`, else
    /// the `MCP-Protocol-Version` header, else 2025-03-26) decides.
    fn kind(&self, headers: &HeaderMap) -> Kind {
        let request = self.id.is_some();
        match self.method.as_deref() {
            Some("initialize") if request => return Kind::Initialize,
            Some("server/discover") if request => return Kind::Sessionless,
            _ => {}
        }
        if request && self.params.version.is_some() && self.params.capabilities {
            return Kind::Sessionless;
        }
        let header = headers
            .get("mcp-protocol-version")
            .and_then(|v| v.to_str().ok());
        let version = self
            .params
            .version
            .as_deref()
            .filter(|_| request)
            .or(header)
            .unwrap_or("2025-03-26");
        if version < NO_SESSIONS {
            Kind::InSession
        } else {
            Kind::Sessionless
        }
    }
}

/// What `params._meta` says of the protocol era; anything else (or no object) is no answer.
#[derive(Debug, Default)]
struct Params {
    version: Option<String>,
    capabilities: bool,
}

impl<'de> Deserialize<'de> for Params {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ParamsVisitor { meta: false })
    }
}

/// Reads `params` (looking for `_meta`) or `_meta` itself (looking for its two keys).
struct ParamsVisitor {
    meta: bool,
}

impl<'de> Visitor<'de> for ParamsVisitor {
    type Value = Params;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Params, A::Error> {
        let mut out = Params::default();
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            match (self.meta, key.as_ref()) {
                (false, "_meta") => {
                    out = map.next_value_seed(MetaSeed)?;
                }
                (true, "io.modelcontextprotocol/protocolVersion") => {
                    out.version = map
                        .next_value::<serde_json::Value>()?
                        .as_str()
                        .map(str::to_string);
                }
                (true, "io.modelcontextprotocol/clientCapabilities") => {
                    out.capabilities = map.next_value::<serde_json::Value>()?.is_object();
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(out)
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Params, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Params::default())
    }

    fn visit_bool<E>(self, _: bool) -> Result<Params, E> {
        Ok(Params::default())
    }
    fn visit_i64<E>(self, _: i64) -> Result<Params, E> {
        Ok(Params::default())
    }
    fn visit_u64<E>(self, _: u64) -> Result<Params, E> {
        Ok(Params::default())
    }
    fn visit_f64<E>(self, _: f64) -> Result<Params, E> {
        Ok(Params::default())
    }
    fn visit_str<E>(self, _: &str) -> Result<Params, E> {
        Ok(Params::default())
    }
    fn visit_unit<E>(self) -> Result<Params, E> {
        Ok(Params::default())
    }
}

/// `_meta`, read by the same visitor.
struct MetaSeed;

impl<'de> de::DeserializeSeed<'de> for MetaSeed {
    type Value = Params;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Params, D::Error> {
        d.deserialize_any(ParamsVisitor { meta: true })
    }
}

/// The part of an `initialize` answer that says which version was negotiated.
#[derive(Deserialize)]
struct InitializeAnswer {
    result: Option<InitializeResult>,
}

#[derive(Deserialize)]
struct InitializeResult {
    #[serde(rename = "protocolVersion")]
    protocol_version: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::PrincipalKind;

    fn principal(kind: PrincipalKind, id: &str) -> Principal {
        Principal {
            kind,
            id: id.into(),
            studio: "std_a".into(),
            name: "n".into(),
            scopes: Default::default(),
        }
    }

    fn kind(body: &str, header: Option<&str>) -> Option<Kind> {
        let mut headers = HeaderMap::new();
        if let Some(h) = header {
            headers.insert("mcp-protocol-version", HeaderValue::from_str(h).unwrap());
        }
        serde_json::from_str::<Peek>(body)
            .ok()
            .map(|p| p.kind(&headers))
    }

    #[test]
    fn an_id_is_bound_to_its_principal_and_cannot_be_altered() {
        let sessions = Sessions::new("secret", Duration::from_secs(60));
        let alice = principal(PrincipalKind::Key, "key_a");
        let id = sessions.issue(&alice, "2025-11-25");
        assert!(id.starts_with("fs1.") && id.is_ascii(), "{id}");
        let claims = sessions.verify(&id, &alice).unwrap();
        assert_eq!(
            (claims.k.as_str(), claims.v.as_str()),
            ("key", "2025-11-25")
        );
        assert_eq!(claims.exp - claims.iat, 60);
        // Another principal, even with the same id under another kind.
        assert!(
            sessions
                .verify(&id, &principal(PrincipalKind::Key, "key_b"))
                .is_none()
        );
        assert!(
            sessions
                .verify(&id, &principal(PrincipalKind::Grant, "key_a"))
                .is_none()
        );
        // Another key, a changed payload, a truncated tag.
        assert!(
            Sessions::new("other", Duration::from_secs(60))
                .verify(&id, &alice)
                .is_none()
        );
        let (signed, tag) = id.rsplit_once('.').unwrap();
        let forged = Claims {
            p: "key_b".into(),
            ..claims
        };
        let forged = format!(
            "{PREFIX}{}.{tag}",
            B64.encode(serde_json::to_vec(&forged).unwrap())
        );
        assert!(
            sessions
                .verify(&forged, &principal(PrincipalKind::Key, "key_b"))
                .is_none()
        );
        assert!(
            sessions
                .verify(&format!("{signed}.{}", &tag[1..]), &alice)
                .is_none()
        );
        assert!(sessions.verify("not-an-id", &alice).is_none());
        // Two sessions of one principal are two ids.
        assert_ne!(sessions.issue(&alice, "2025-11-25"), id);
    }

    #[test]
    fn an_expired_id_is_refused() {
        let sessions = Sessions::new("secret", Duration::from_secs(0));
        let alice = principal(PrincipalKind::Grant, "grant_a");
        let id = sessions.issue(&alice, "2025-06-18");
        assert!(sessions.verify(&id, &alice).is_none());
    }

    #[test]
    fn requests_are_sorted_by_protocol_era_as_rmcp_does() {
        let init = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25"}}"#;
        assert_eq!(kind(init, None), Some(Kind::Initialize));
        let list = r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#;
        assert_eq!(kind(list, None), Some(Kind::InSession));
        assert_eq!(kind(list, Some("2025-11-25")), Some(Kind::InSession));
        assert_eq!(kind(list, Some("2026-07-28")), Some(Kind::Sessionless));
        let note = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
        assert_eq!(kind(note, Some("2025-11-25")), Some(Kind::InSession));
        let modern = r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"whoami","arguments":{"a":[1,{"b":null}]},
            "_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}"#;
        assert_eq!(kind(modern, Some("2026-07-28")), Some(Kind::Sessionless));
        let discover = r#"{"jsonrpc":"2.0","id":4,"method":"server/discover","params":{}}"#;
        assert_eq!(kind(discover, None), Some(Kind::Sessionless));
        // Params of any shape are read (rmcp answers the bad ones); broken JSON is not.
        let odd = r#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":"x"}"#;
        assert_eq!(kind(odd, None), Some(Kind::InSession));
        assert_eq!(kind("{not json", None), None);
    }
}
