//! The one place failures become what the caller receives.
//!
//! Every refusal and error the gateway answers outside a successful tool result is a
//! [`Refusal`]: an HTTP status, a short machine code, an **external** message for the person (a
//! sentence that says what happened and what to do, safe to show anyone) and, when there is
//! one, an **internal** cause for the log that never leaves the process (a store error, a policy
//! engine error). One value renders to each surface a client may be talking to:
//!
//! | surface | method | body |
//! |---|---|---|
//! | plain HTTP (`/mcp` guards, sessions, probes) | [`IntoResponse`] | `text/plain` sentence |
//! | JSON APIs (`/mcp` credentials, OAuth endpoints: RFC 6749 §5.2) | [`Refusal::json`] | `{"error", "error_description"}` |
//! | the sign-in and consent pages | [`Refusal::page`] | an HTML page |
//! | a JSON-RPC request (`initialize`, `tools/list`, an unknown tool) | [`Refusal::json_rpc`] | a JSON-RPC error |
//! | a tool call | [`tool::present`] | a tool result with `isError` (a call's failure is data for the assistant, not a protocol error) |
//!
//! `Retry-After` and any challenge header (`WWW-Authenticate`) travel with the value, so every
//! surface sends them alike.

pub mod tool;

use std::borrow::Cow;
use std::time::Duration;

use axum::Json;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use rmcp::ErrorData;
use rmcp::model::ErrorCode;
use serde_json::json;

/// The JSON-RPC error code of a rate-limited request (in the range JSON-RPC leaves to servers).
pub const RATE_LIMITED: i32 = -32029;

/// A failure, as the caller will see it.
#[derive(Debug, Clone)]
#[must_use = "a refusal does nothing until it is rendered"]
pub struct Refusal {
    status: StatusCode,
    code: Cow<'static, str>,
    external: Cow<'static, str>,
    internal: Option<String>,
    retry_after: Option<u64>,
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl Refusal {
    /// `status` with a machine `code` and the sentence a person reads.
    pub fn new(
        status: StatusCode,
        code: impl Into<Cow<'static, str>>,
        external: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self {
            status,
            code: code.into(),
            external: external.into(),
            internal: None,
            retry_after: None,
            headers: Vec::new(),
        }
    }

    pub fn bad_request(external: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", external)
    }

    pub fn forbidden(external: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", external)
    }

    pub fn not_found(external: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", external)
    }

    pub fn too_large(external: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", external)
    }

    pub fn timeout(external: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::REQUEST_TIMEOUT, "request_timeout", external)
    }

    /// 429, to be tried again after `wait`.
    pub fn too_many(external: impl Into<Cow<'static, str>>, wait: Duration) -> Self {
        Self::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", external).retry_after(wait)
    }

    /// 503: the gateway cannot serve this now (busy, or a part it needs is down).
    pub fn unavailable(external: impl Into<Cow<'static, str>>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            external,
        )
    }

    /// 500 for a cause the person cannot act on: it is logged, they are asked to try again.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "flowgate could not complete this request. Try again in a moment.",
        )
        .because(cause)
    }

    /// The cause, for the log only.
    pub fn because(mut self, cause: &dyn std::fmt::Display) -> Self {
        self.internal = Some(cause.to_string());
        self
    }

    /// Replaces the sentence (keeping status, code and cause).
    pub fn saying(mut self, external: impl Into<Cow<'static, str>>) -> Self {
        self.external = external.into();
        self
    }

    /// Another machine code (an OAuth `error` such as `invalid_grant`).
    pub fn code(mut self, code: impl Into<Cow<'static, str>>) -> Self {
        self.code = code.into();
        self
    }

    /// `Retry-After`, in whole seconds (at least 1).
    pub fn retry_after(mut self, wait: Duration) -> Self {
        self.retry_after = Some(wait.as_secs_f64().ceil().max(1.0) as u64);
        self
    }

    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The sentence for the person.
    pub fn external(&self) -> &str {
        &self.external
    }

    /// Logs the internal cause, if any (5xx at error level: someone must look).
    fn log(&self) {
        if let Some(cause) = &self.internal {
            if self.status.is_server_error() {
                tracing::error!(status = self.status.as_u16(), cause = %cause, "{}", self.external);
            } else {
                tracing::debug!(status = self.status.as_u16(), cause = %cause, "{}", self.external);
            }
        }
    }

    fn finish(self, mut response: Response) -> Response {
        self.log();
        let headers = response.headers_mut();
        if let Some(secs) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        for (name, value) in self.headers {
            headers.insert(name, value);
        }
        response
    }

    /// RFC 6749 §5.2 shape (also the `/mcp` credential errors): `{"error", "error_description"}`,
    /// never cached.
    pub fn json(self) -> Response {
        let body = Json(json!({"error": self.code, "error_description": self.external}));
        let mut response = (self.status, body).into_response();
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        self.finish(response)
    }

    /// The sign-in pages' error page.
    pub fn page(self) -> Response {
        let response = (
            self.status,
            Html(crate::oauth::pages::error(&self.external)),
        )
            .into_response();
        self.finish(response)
    }

    /// A JSON-RPC error for a request that is not a tool call.
    pub fn json_rpc(self) -> ErrorData {
        self.log();
        let code = match self.status {
            StatusCode::TOO_MANY_REQUESTS => ErrorCode(RATE_LIMITED),
            StatusCode::NOT_FOUND => ErrorCode::METHOD_NOT_FOUND,
            s if s.is_client_error() => ErrorCode::INVALID_PARAMS,
            _ => ErrorCode::INTERNAL_ERROR,
        };
        ErrorData::new(code, self.external.into_owned(), None)
    }
}

/// The plain-HTTP surface: a one-line `text/plain` sentence.
impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let mut response = (self.status, format!("{}\n", self.external)).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        self.finish(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each surface carries the same sentence, status and headers; the internal cause never
    /// leaves.
    #[tokio::test]
    async fn every_surface_says_the_same_and_keeps_the_cause_inside() {
        let refusal = || {
            Refusal::too_many(
                "Too many sign-ins. Try again in 5 seconds.",
                Duration::from_millis(4100),
            )
            .because(&"store: connection reset by peer 10.0.0.7")
        };
        for response in [
            refusal().into_response(),
            refusal().json(),
            refusal().page(),
        ] {
            assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
            assert_eq!(response.headers()[header::RETRY_AFTER], "5");
            let body = axum::body::to_bytes(response.into_body(), 1 << 20)
                .await
                .unwrap();
            let body = String::from_utf8(body.to_vec()).unwrap();
            assert!(
                body.contains("Too many sign-ins. Try again in 5 seconds."),
                "{body}"
            );
            assert!(!body.contains("10.0.0.7"), "{body}");
        }
        let rpc = refusal().json_rpc();
        assert_eq!(rpc.code, ErrorCode(RATE_LIMITED));
        assert!(!rpc.message.contains("10.0.0.7"));
        let json = Refusal::internal(&"disk full").code("server_error").json();
        assert_eq!(json.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(json.headers()[header::CACHE_CONTROL], "no-store");
    }
}
