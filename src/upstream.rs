//! The upstream stage: one Management API call per tool call.
//!
//! [`UpstreamRequest`] is the description the generated code builds from validated input:
//! method, percent-encoded path (base path included), query and JSON body.

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
    /// A success status with a body that is not a JSON object.
    #[error("the Management API sent a response flowgate cannot read: {0}")]
    BadResponse(String),
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
}

impl UpstreamClient {
    pub fn new(
        base_url: &str,
        token: &str,
        connect_timeout: Duration,
        timeout: Duration,
    ) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .connect_timeout(connect_timeout)
            .timeout(timeout)
            .pool_idle_timeout(Duration::from_secs(90))
            .user_agent(concat!("flowgate/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the upstream HTTP client: {e}"))?;
        Ok(Self {
            http,
            base_url: base_url.trim_end_matches('/').to_string(),
            base_path: crate::tool::catalog::BASE_PATH,
            token: token.to_string(),
            timeout,
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
        if let Some(body) = &req.body {
            builder = builder.json(body);
        }
        let response = builder.send().await.map_err(|e| self.classify(&e))?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await.map_err(|e| self.classify(&e))?;
        if (200..300).contains(&status) {
            return match serde_json::from_slice::<serde_json::Value>(&bytes) {
                Ok(v @ serde_json::Value::Object(_)) => Ok(v),
                Ok(_) => Err(UpstreamError::BadResponse("not a JSON object".into())),
                Err(e) => Err(UpstreamError::BadResponse(e.to_string())),
            };
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
        let body: Value = response.json().await.unwrap_or_default();
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

    fn classify(&self, e: &reqwest::Error) -> UpstreamError {
        if e.is_timeout() {
            UpstreamError::Timeout(self.timeout)
        } else if e.is_connect() {
            UpstreamError::Unreachable(root_cause(e))
        } else {
            // The request may have been sent before the failure: treat it as possibly applied.
            UpstreamError::BadResponse(root_cause(e))
        }
    }
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}
