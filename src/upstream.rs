//! The upstream stage: one Management API call per tool call.
//!
//! [`UpstreamRequest`] is the description the generated code builds from validated input:
//! method, percent-encoded path (base path included), query and JSON body. [`UpstreamClient`]
//! makes the call: over TLS (rustls, the platform's roots plus an optional private CA bundle)
//! for `https` base URLs, within a total timeout, reading at most a bounded answer, and
//! classifying every failure by where it happened.
//!
//! A successful answer always becomes a JSON object, because it is the call's
//! `structuredContent` and MCP wants an object there ([`success`]): an object passes unchanged,
//! an empty body (a `204` to a DELETE) is `{}`, and any other JSON value (a bare array, a
//! string) is wrapped as `{"data": value}`. A tool's manifest `output` declares the result after
//! this wrapping.

use serde_json::{Map, Value};

/// The HTTP methods the manifest allows.
#[allow(clippy::upper_case_acronyms)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    GET,
    POST,
    PUT,
    PATCH,
    DELETE,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::GET => "GET",
            Method::POST => "POST",
            Method::PUT => "PUT",
            Method::PATCH => "PATCH",
            Method::DELETE => "DELETE",
        }
    }

    /// Whether requests with this method carry a JSON body.
    pub fn has_body(self) -> bool {
        matches!(self, Method::POST | Method::PUT | Method::PATCH)
    }
}

/// One upstream call, described before it is made.
#[derive(Debug, Clone, PartialEq)]
pub struct UpstreamRequest {
    pub method: Method,
    /// Base path included, every parameter percent-encoded.
    pub path: String,
    /// Query parameters in manifest order.
    pub query: Vec<(&'static str, String)>,
    /// The JSON body; an empty object for body methods with no body inputs, `None` otherwise.
    pub body: Option<Map<String, Value>>,
}

impl UpstreamRequest {
    pub fn new(method: Method, path: String) -> Self {
        Self {
            method,
            path,
            query: Vec::new(),
            body: method.has_body().then(Map::new),
        }
    }

    pub fn query(&mut self, name: &'static str, value: String) {
        self.query.push((name, value));
    }

    pub fn body(&mut self, name: &'static str, value: Value) {
        self.body
            .get_or_insert_with(Map::new)
            .insert(name.to_string(), value);
    }
}

// === impl UpstreamClient ===

use std::time::Duration;

/// Why an upstream call did not succeed, classified by where it failed (not by message text).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum UpstreamError {
    /// The Management API refused the call (4xx): its message speaks to the user.
    #[error("{message}")]
    Rejected {
        status: u16,
        code: Option<String>,
        message: String,
    },
    /// The Management API failed (5xx) after receiving the call.
    #[error("the Management API failed with HTTP {status}")]
    Failed { status: u16 },
    /// No answer within the total timeout; the call may have been processed.
    #[error("the Management API did not answer within {0:?}")]
    Timeout(Duration),
    /// The connection could not be made; the call was never sent.
    #[error("the Management API could not be reached: {0}")]
    Unreachable(String),
    /// The TLS handshake failed: the certificate is not trusted (or does not name the host),
    /// or the server does not speak TLS. Nothing was sent.
    #[error("the Management API's TLS certificate was refused: {0}")]
    Certificate(String),
    /// A success status with a body that is not a JSON object.
    #[error("the Management API sent a response flowgate cannot read: {0}")]
    BadResponse(String),
    /// The answer was larger than `upstream_max_response_bytes`.
    #[error("the Management API's answer is larger than {limit} bytes")]
    TooLarge { limit: usize },
}

impl UpstreamError {
    /// The HTTP status the upstream sent, if it sent one.
    pub fn status(&self) -> Option<u16> {
        match self {
            UpstreamError::Rejected { status, .. } | UpstreamError::Failed { status } => {
                Some(*status)
            }
            _ => None,
        }
    }

    /// Whether the change may have been applied although the call did not succeed.
    pub fn may_have_applied(&self) -> bool {
        matches!(
            self,
            UpstreamError::Failed { .. }
                | UpstreamError::Timeout(_)
                | UpstreamError::BadResponse(_)
                | UpstreamError::TooLarge { .. }
        )
    }
}

/// Who a call is made for; sent as headers on every upstream request.
#[derive(Debug, Clone)]
pub struct CallHeaders<'a> {
    pub studio: &'a str,
    /// `key:<id>` or `grant:<id>`.
    pub actor: &'a str,
    pub request_id: &'a str,
    pub idempotency_key: Option<&'a str>,
    /// The W3C trace context of this request, when the call is traced.
    pub traceparent: Option<&'a str>,
}

/// The pooled HTTP client for the Management API.
#[derive(Debug, Clone)]
pub struct UpstreamClient {
    http: reqwest::Client,
    /// The base URL, base path included (`http://127.0.0.1:PORT/v1`), without a trailing `/`.
    base_url: String,
    /// The manifest's base path, stripped from request paths before joining.
    base_path: &'static str,
    token: String,
    timeout: Duration,
    max_response: usize,
}

/// How the upstream is reached.
#[derive(Debug, Clone)]
pub struct UpstreamSettings<'a> {
    pub base_url: &'a str,
    pub token: &'a str,
    pub connect_timeout: Duration,
    pub timeout: Duration,
    /// PEM CA certificates trusted in addition to the platform's roots.
    pub ca_file: Option<&'a std::path::Path>,
    pub max_response: usize,
}

/// Why the upstream client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("upstream_ca_file: cannot read {path}: {source}")]
    CaFile {
        path: String,
        source: std::io::Error,
    },
    #[error("upstream_ca_file: {path} holds no PEM certificate ({reason})")]
    CaPem { path: String, reason: String },
    #[error("cannot build the upstream HTTP client: {0}")]
    Client(String),
}

impl UpstreamClient {
    pub fn new(s: &UpstreamSettings<'_>) -> Result<Self, SetupError> {
        let mut builder = reqwest::Client::builder()
            .connect_timeout(s.connect_timeout)
            .timeout(s.timeout)
            .pool_idle_timeout(Duration::from_secs(90))
            // An upstream redirect is not followed: the call is made where it was configured.
            .redirect(reqwest::redirect::Policy::none())
            .https_only(s.base_url.starts_with("https://"))
            .user_agent(concat!("flowgate/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = s.ca_file {
            builder = builder.tls_certs_merge(read_ca_file(path)?);
        }
        let http = builder
            .build()
            .map_err(|e| SetupError::Client(root_cause(&e)))?;
        Ok(Self {
            http,
            base_url: s.base_url.trim_end_matches('/').to_string(),
            base_path: crate::tool::catalog::BASE_PATH,
            token: s.token.to_string(),
            timeout: s.timeout,
            max_response: s.max_response,
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Makes one call and returns the JSON object the Management API answered.
    pub async fn call(
        &self,
        req: &UpstreamRequest,
        headers: &CallHeaders<'_>,
    ) -> Result<serde_json::Value, UpstreamError> {
        let path = req.path.strip_prefix(self.base_path).unwrap_or(&req.path);
        let url = format!("{}{path}", self.base_url);
        let method = reqwest::Method::from_bytes(req.method.as_str().as_bytes())
            .map_err(|e| UpstreamError::Unreachable(e.to_string()))?;
        let mut builder = self
            .http
            .request(method, &url)
            .bearer_auth(&self.token)
            .header("X-Flow-Studio", headers.studio)
            .header("X-Flow-Actor", headers.actor)
            .header("X-Request-Id", headers.request_id);
        if !req.query.is_empty() {
            builder = builder.query(&req.query);
        }
        if let Some(key) = headers.idempotency_key {
            builder = builder.header("Idempotency-Key", key);
        }
        if let Some(tp) = headers.traceparent {
            builder = builder.header("traceparent", tp);
        }
        if let Some(body) = &req.body {
            builder = builder.json(body);
        }
        let response = builder.send().await.map_err(|e| self.classify(&e))?;
        let status = response.status().as_u16();
        let bytes = self.read(response).await?;
        if (200..300).contains(&status) {
            return success(&bytes);
        }
        if (400..500).contains(&status) {
            let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
            let error = &body["error"];
            let message = error["message"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| format!("the Management API refused the call (HTTP {status})"));
            return Err(UpstreamError::Rejected {
                status,
                code: error["code"].as_str().map(str::to_string),
                message,
            });
        }
        Err(UpstreamError::Failed { status })
    }

    /// Verifies a studio user's e-mail and password (`POST /auth/sign-in`, no studio header).
    pub async fn sign_in(&self, email: &str, password: &str) -> Result<Value, UpstreamError> {
        let response = self
            .http
            .post(format!("{}/auth/sign-in", self.base_url))
            .bearer_auth(&self.token)
            .json(&serde_json::json!({"email": email, "password": password}))
            .send()
            .await
            .map_err(|e| self.classify(&e))?;
        let status = response.status().as_u16();
        let body: Value = serde_json::from_slice(&self.read(response).await?).unwrap_or_default();
        match status {
            200..=299 if body.is_object() => Ok(body),
            400..=499 => Err(UpstreamError::Rejected {
                status,
                code: body["error"]["code"].as_str().map(str::to_string),
                message: body["error"]["message"]
                    .as_str()
                    .unwrap_or("sign-in refused")
                    .to_string(),
            }),
            200..=299 => Err(UpstreamError::BadResponse(
                "sign-in answer is not an object".into(),
            )),
            _ => Err(UpstreamError::Failed { status }),
        }
    }

    /// Whether the Management API answers at all (any HTTP status counts), for `/readyz`.
    pub async fn reachable(&self) -> Result<(), String> {
        self.http
            .get(format!("{}/healthz", self.base_url))
            .bearer_auth(&self.token)
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| root_cause(&e))
    }

    /// The answer's body, at most `max_response` bytes (a larger one is not read further).
    async fn read(&self, mut response: reqwest::Response) -> Result<Vec<u8>, UpstreamError> {
        let too_large = UpstreamError::TooLarge {
            limit: self.max_response,
        };
        if response
            .content_length()
            .is_some_and(|n| n > self.max_response as u64)
        {
            return Err(too_large);
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| self.classify(&e))? {
            if body.len() + chunk.len() > self.max_response {
                return Err(too_large);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    fn classify(&self, e: &reqwest::Error) -> UpstreamError {
        if e.is_timeout() {
            UpstreamError::Timeout(self.timeout)
        } else if let Some(tls) = tls_failure(e) {
            UpstreamError::Certificate(tls)
        } else if e.is_connect() {
            UpstreamError::Unreachable(root_cause(e))
        } else {
            // The request may have been sent before the failure: treat it as possibly applied.
            UpstreamError::BadResponse(root_cause(e))
        }
    }
}

/// The certificates of a PEM bundle.
fn read_ca_file(path: &std::path::Path) -> Result<Vec<reqwest::Certificate>, SetupError> {
    let pem = std::fs::read(path).map_err(|source| SetupError::CaFile {
        path: path.display().to_string(),
        source,
    })?;
    let bad = |reason: String| SetupError::CaPem {
        path: path.display().to_string(),
        reason,
    };
    let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| bad(root_cause(&e)))?;
    if certs.is_empty() {
        return Err(bad("no BEGIN CERTIFICATE block".into()));
    }
    Ok(certs)
}

/// A TLS failure in the error's chain, described. rustls reports it inside I/O errors, which
/// may be nested: `source()` skips an I/O error's payload, so payloads are opened too.
fn tls_failure(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(tls) = err.downcast_ref::<rustls::Error>() {
            return Some(match tls {
                rustls::Error::InvalidCertificate(why) => {
                    format!("the certificate is not valid for this server ({why:?})")
                }
                rustls::Error::InvalidMessage(_) => {
                    "the server did not answer with TLS (is it plain http?)".to_string()
                }
                other => other.to_string(),
            });
        }
        cur = match err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(payload) => Some(payload as &(dyn std::error::Error + 'static)),
            None => err.source(),
        };
    }
    None
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

/// A successful answer's body as the call's result object (see the module header): an object as
/// it is, an empty body as `{}`, any other JSON value as `{"data": value}`; not JSON is a
/// [`UpstreamError::BadResponse`].
fn success(bytes: &[u8]) -> Result<Value, UpstreamError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(Map::new()));
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(v) => Ok(serde_json::json!({ "data": v })),
        Err(e) => Err(UpstreamError::BadResponse(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{UpstreamError, success};

    #[test]
    fn every_successful_answer_is_an_object() {
        for (body, result) in [
            (
                &br#"{"id":"cpn_1","deleted":true}"#[..],
                json!({"id": "cpn_1", "deleted": true}),
            ),
            (b"", json!({})),
            (b" \r\n", json!({})),
            (
                br#"[{"id":"a"},{"id":"b"}]"#,
                json!({"data": [{"id": "a"}, {"id": "b"}]}),
            ),
            (br#""done""#, json!({"data": "done"})),
            (b"null", json!({"data": null})),
        ] {
            assert_eq!(
                success(body).unwrap(),
                result,
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        assert!(matches!(
            success(b"<html>"),
            Err(UpstreamError::BadResponse(_))
        ));
        assert!(matches!(
            success(br#"{"id":"#),
            Err(UpstreamError::BadResponse(_))
        ));
    }
}
