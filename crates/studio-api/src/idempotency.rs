//! Idempotent writes (Stripe semantics), stored in SQLite per studio.
//!
//! Contract: a write (`POST`, `PUT`, `PATCH`, `DELETE`) carrying `Idempotency-Key` is executed once per
//! `(studio, key)`. A later request with the same key and the same method, path and body gets the
//! stored status and body back, with `Idempotent-Replayed: true`; with a different method, path or
//! body it is a `422`. While the first request is still running, a second one is a `409`. Responses
//! with a `5xx` status are not stored, so the write can be retried. Keys are kept for 24 hours.

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::{Duration, Utc};
use sha2::{Digest, Sha256};

use crate::app::{AppState, is_write};
use crate::error::ApiError;
use crate::input::{fmt_time, now};
use crate::tenancy::STUDIO_HEADER;

/// The request header carrying the key.
pub const HEADER: &str = "idempotency-key";
/// Largest request or response body the layer buffers.
const MAX_BODY: usize = 1 << 20;

/// Why a request could not go through the idempotency layer.
#[derive(Debug, thiserror::Error)]
pub enum IdempotencyError {
    #[error("Idempotency-Key must be 1 to 255 visible ASCII characters")]
    BadKey,
    #[error("request body too large")]
    TooLarge,
    #[error("a request with this Idempotency-Key is still being processed")]
    InProgress,
    #[error("idempotency key reused with a different request")]
    Mismatch,
    #[error("idempotency store: {0}")]
    Store(#[from] sqlx::Error),
}

impl From<IdempotencyError> for ApiError {
    fn from(e: IdempotencyError) -> ApiError {
        match e {
            IdempotencyError::BadKey => ApiError::invalid("Idempotency-Key", e.to_string()),
            IdempotencyError::TooLarge => ApiError::TooLarge,
            IdempotencyError::InProgress => {
                ApiError::conflict("idempotency_in_progress", e.to_string())
            }
            IdempotencyError::Mismatch => ApiError::IdempotencyMismatch,
            IdempotencyError::Store(e) => ApiError::from(e),
        }
    }
}

#[derive(sqlx::FromRow)]
struct Stored {
    method: String,
    path: String,
    body_sha256: String,
    status: Option<i64>,
    response: Option<Vec<u8>>,
}

/// The middleware.
pub async fn layer(State(state): State<AppState>, req: Request, next: Next) -> Response {
    match run(&state, req, next).await {
        Ok(res) => res,
        Err(e) => ApiError::from(e).into_response(),
    }
}

async fn run(state: &AppState, req: Request, next: Next) -> Result<Response, IdempotencyError> {
    let Some(key) = req.headers().get(HEADER) else {
        return Ok(next.run(req).await);
    };
    if !is_write(req.method()) {
        return Ok(next.run(req).await);
    }
    let key = key
        .to_str()
        .ok()
        .filter(|k| (1..=255).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_graphic()))
        .ok_or(IdempotencyError::BadKey)?
        .to_owned();
    let studio = req
        .headers()
        .get(STUDIO_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .trim()
        .to_owned();
    let method = req.method().to_string();
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let (parts, body) = req.into_parts();
    let bytes = to_bytes(body, MAX_BODY)
        .await
        .map_err(|_| IdempotencyError::TooLarge)?;
    let body_sha256 = hex(&Sha256::digest(&bytes));

    let db = &state.db;
    let expired = fmt_time(Utc::now() - Duration::hours(24));
    sqlx::query("DELETE FROM idempotency_keys WHERE studio_id = ? AND created_at < ?")
        .bind(&studio)
        .bind(&expired)
        .execute(db)
        .await?;
    let inserted = sqlx::query(
        "INSERT INTO idempotency_keys (studio_id, key, method, path, body_sha256, created_at)
         VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (studio_id, key) DO NOTHING",
    )
    .bind(&studio)
    .bind(&key)
    .bind(&method)
    .bind(&path)
    .bind(&body_sha256)
    .bind(now())
    .execute(db)
    .await?
    .rows_affected();

    if inserted == 0 {
        let stored: Stored = sqlx::query_as(
            "SELECT method, path, body_sha256, status, response FROM idempotency_keys
             WHERE studio_id = ? AND key = ?",
        )
        .bind(&studio)
        .bind(&key)
        .fetch_one(db)
        .await?;
        if stored.method != method || stored.path != path || stored.body_sha256 != body_sha256 {
            return Err(IdempotencyError::Mismatch);
        }
        let (Some(status), Some(body)) = (stored.status, stored.response) else {
            return Err(IdempotencyError::InProgress);
        };
        state.count_replay();
        let status = StatusCode::from_u16(status as u16).unwrap_or(StatusCode::OK);
        let mut res = (status, body).into_response();
        let h = res.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        h.insert("idempotent-replayed", HeaderValue::from_static("true"));
        return Ok(res);
    }

    let res = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    let (res_parts, res_body) = res.into_parts();
    let res_bytes = match to_bytes(res_body, MAX_BODY).await {
        Ok(b) => b,
        Err(_) => {
            forget(state, &studio, &key).await?;
            return Err(IdempotencyError::TooLarge);
        }
    };
    if res_parts.status.is_server_error() {
        forget(state, &studio, &key).await?;
    } else {
        sqlx::query(
            "UPDATE idempotency_keys SET status = ?, response = ? WHERE studio_id = ? AND key = ?",
        )
        .bind(i64::from(res_parts.status.as_u16()))
        .bind(res_bytes.to_vec())
        .bind(&studio)
        .bind(&key)
        .execute(db)
        .await?;
    }
    Ok(Response::from_parts(res_parts, Body::from(res_bytes)))
}

async fn forget(state: &AppState, studio: &str, key: &str) -> Result<(), IdempotencyError> {
    sqlx::query("DELETE FROM idempotency_keys WHERE studio_id = ? AND key = ?")
        .bind(studio)
        .bind(key)
        .execute(&state.db)
        .await?;
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
