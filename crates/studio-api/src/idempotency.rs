//! Idempotent writes (Stripe semantics), stored in SQLite per studio.
//!
//! Contract: a write (`POST`, `PUT`, `PATCH`, `DELETE`) carrying `Idempotency-Key` is executed once per
//! `(studio, key)`. A later request with the same key and the same method, path and body gets the
//! stored status and body back, with `Idempotent-Replayed: true`; with a different method, path or
//! body it is a `422`. Responses with a `5xx` status are not stored, so the write can be retried.
//! Keys are kept for 24 hours.
//!
//! The claim, the handler's writes and the stored answer are **one transaction** (see
//! [`crate::write`]): the layer takes the write turn, looks the key up, and if it is new opens a
//! savepoint and lets the handler write in that same transaction; then it keeps or rolls back the
//! handler's writes, stores the answer and commits. A request cut off anywhere before the commit
//! (a crash, a dropped connection, a failed write) leaves neither the key nor the write, so its
//! retry simply runs. Concurrent duplicates queue for the write turn, and each later one finds the
//! first one's committed answer and replays it: there is no "in progress" state to report.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::{Duration, Utc};
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;

use crate::app::{AppState, is_write};
use crate::error::ApiError;
use crate::input::{fmt_time, now};
use crate::tenancy::STUDIO_HEADER;
use crate::write::{CLAIMED, Claimed, Writing};

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
    #[error("idempotency key reused with a different request")]
    Mismatch,
    /// The handler kept its transaction past its answer (a bug): nothing is committed.
    #[error("the handler kept the claimed transaction")]
    Kept,
    #[error("idempotency store: {0}")]
    Store(#[from] sqlx::Error),
}

impl From<IdempotencyError> for ApiError {
    fn from(e: IdempotencyError) -> ApiError {
        match e {
            IdempotencyError::BadKey => ApiError::invalid("Idempotency-Key", e.to_string()),
            IdempotencyError::TooLarge => ApiError::TooLarge,
            IdempotencyError::Mismatch => ApiError::IdempotencyMismatch,
            IdempotencyError::Kept => ApiError::Internal(e.to_string()),
            IdempotencyError::Store(e) => ApiError::from(e),
        }
    }
}

#[derive(sqlx::FromRow)]
struct Stored {
    method: String,
    path: String,
    body_sha256: String,
    status: i64,
    response: Vec<u8>,
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

    // The claim: from here to the commit below, one transaction holding the write turn.
    let mut writing = Writing::begin(&state.db, &state.writer).await?;
    let expired = fmt_time(Utc::now() - Duration::hours(24));
    // A key without an answer was left by an older version, which claimed keys in a transaction
    // of their own; nothing can be running it now that claims are made in this transaction.
    sqlx::query(
        "DELETE FROM idempotency_keys WHERE studio_id = ? AND (created_at < ? OR status IS NULL)",
    )
    .bind(&studio)
    .bind(&expired)
    .execute(writing.conn())
    .await?;
    let stored: Option<Stored> = sqlx::query_as(
        "SELECT method, path, body_sha256, status, response FROM idempotency_keys
         WHERE studio_id = ? AND key = ?",
    )
    .bind(&studio)
    .bind(&key)
    .fetch_optional(writing.conn())
    .await?;
    if let Some(stored) = stored {
        drop(writing);
        if stored.method != method || stored.path != path || stored.body_sha256 != body_sha256 {
            return Err(IdempotencyError::Mismatch);
        }
        state.count_replay();
        let status = StatusCode::from_u16(stored.status as u16).unwrap_or(StatusCode::OK);
        let mut res = (status, stored.response).into_response();
        let h = res.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        h.insert("idempotent-replayed", HeaderValue::from_static("true"));
        return Ok(res);
    }

    // The handler writes inside the claim, after a savepoint it may be rolled back to.
    sqlx::query("SAVEPOINT handler")
        .execute(writing.conn())
        .await?;
    let claimed = Claimed {
        writing: Arc::new(Mutex::new(writing)),
        kept: Arc::new(AtomicBool::new(false)),
    };
    let res = CLAIMED
        .scope(
            claimed.clone(),
            next.run(Request::from_parts(parts, Body::from(bytes))),
        )
        .await;
    let Claimed { writing, kept } = claimed;
    let mut writing = Arc::try_unwrap(writing)
        .map_err(|_| IdempotencyError::Kept)?
        .into_inner();
    let (res_parts, res_body) = res.into_parts();
    // On every early return below, `writing` is dropped: everything is rolled back, key included.
    let res_bytes = to_bytes(res_body, MAX_BODY)
        .await
        .map_err(|_| IdempotencyError::TooLarge)?;
    if res_parts.status.is_server_error() {
        return Ok(Response::from_parts(res_parts, Body::from(res_bytes)));
    }
    if !kept.load(Ordering::Acquire) {
        sqlx::query("ROLLBACK TO handler")
            .execute(writing.conn())
            .await?;
    }
    sqlx::query("RELEASE handler")
        .execute(writing.conn())
        .await?;
    sqlx::query(
        "INSERT INTO idempotency_keys (studio_id, key, method, path, body_sha256, created_at,
         status, response) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&studio)
    .bind(&key)
    .bind(&method)
    .bind(&path)
    .bind(&body_sha256)
    .bind(now())
    .bind(i64::from(res_parts.status.as_u16()))
    .bind(res_bytes.to_vec())
    .execute(writing.conn())
    .await?;
    writing.commit().await?;
    Ok(Response::from_parts(res_parts, Body::from(res_bytes)))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
