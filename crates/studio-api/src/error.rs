//! The API's error type and its one mapping to the wire.
//!
//! Every handler returns [`ApiError`]. [`IntoResponse`] turns it into
//! `{"error": {"code", "message", "field"?}}` with the matching status in a single exhaustive
//! `match`. The external message is written for the assistant and the studio owner; internal causes
//! (database errors) are logged and never sent.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// What went wrong while answering a request.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Bad input: malformed JSON, a wrong type, an unknown field, a value out of range (400).
    #[error("{message}")]
    Validation {
        field: Option<String>,
        message: String,
    },
    /// Missing or wrong service credential, or a bad sign-in pair (401).
    #[error("{message}")]
    Unauthorized { code: &'static str, message: String },
    /// The row does not exist in the acting studio (404). `field` names the input that referenced it.
    #[error("{what} `{id}` not found")]
    NotFound {
        what: &'static str,
        id: String,
        field: Option<&'static str>,
    },
    /// No such route (404).
    #[error("no such route")]
    RouteNotFound,
    /// The route exists, the method does not (405).
    #[error("method not allowed")]
    MethodNotAllowed,
    /// A business rule forbids the change (409).
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// The request body is larger than the limit (413).
    #[error("request body too large")]
    TooLarge,
    /// `Idempotency-Key` reused with a different method, path or body (422).
    #[error("idempotency key reused with a different request")]
    IdempotencyMismatch,
    /// Too much of an expensive kind of work is in progress; retry shortly (503).
    #[error("{0}")]
    Busy(String),
    /// Something broke on our side (500). The cause is logged, not sent.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// A 400 naming the offending input field.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::Validation {
            field: Some(field.into()),
            message: message.into(),
        }
    }

    /// A 404 for a row looked up by its own path id.
    pub fn not_found(what: &'static str, id: impl Into<String>) -> Self {
        ApiError::NotFound {
            what,
            id: id.into(),
            field: None,
        }
    }

    /// A 404 for a row referenced by an input field.
    pub fn missing_ref(what: &'static str, id: impl Into<String>, field: &'static str) -> Self {
        ApiError::NotFound {
            what,
            id: id.into(),
            field: Some(field),
        }
    }

    /// A 409 with a machine code and a sentence.
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::Conflict {
            code,
            message: message.into(),
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &e
            && db.is_unique_violation()
        {
            return ApiError::conflict(
                "duplicate",
                "a row with the same unique value already exists",
            );
        }
        ApiError::Internal(e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, field) = match &self {
            ApiError::Validation { field, .. } => {
                (StatusCode::BAD_REQUEST, "invalid_request", field.clone())
            }
            ApiError::Unauthorized { code, .. } => (StatusCode::UNAUTHORIZED, *code, None),
            ApiError::NotFound { field, .. } => {
                (StatusCode::NOT_FOUND, "not_found", field.map(str::to_owned))
            }
            ApiError::RouteNotFound => (StatusCode::NOT_FOUND, "route_not_found", None),
            ApiError::MethodNotAllowed => {
                (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", None)
            }
            ApiError::Conflict { code, .. } => (StatusCode::CONFLICT, *code, None),
            ApiError::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", None),
            ApiError::IdempotencyMismatch => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                None,
            ),
            ApiError::Busy(_) => (StatusCode::SERVICE_UNAVAILABLE, "busy", None),
            ApiError::Internal(cause) => {
                tracing::error!(%cause, "internal error");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal", None)
            }
        };
        let message = match &self {
            ApiError::Internal(_) => "internal error; the request may be retried".to_owned(),
            ApiError::IdempotencyMismatch => {
                "this Idempotency-Key was already used with a different method, path or body"
                    .to_owned()
            }
            other => other.to_string(),
        };
        let mut error = json!({"code": code, "message": message});
        if let Some(field) = field {
            error["field"] = json!(field);
        }
        (status, Json(json!({ "error": error }))).into_response()
    }
}

/// Result of a handler.
pub type ApiResult<T> = Result<T, ApiError>;
