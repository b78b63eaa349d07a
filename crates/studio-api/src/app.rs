//! The running service: shared state, the router and its middleware.
//!
//! Contract: every request, including `/v1/openapi.json`, `/v1/healthz` and unknown routes, must carry
//! `Authorization: Bearer <service credential>` (compared in constant time) or it is a `401`. Writes are
//! counted, then pass through the idempotency layer, then reach the resource handlers.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use sqlx::SqlitePool;
use subtle::ConstantTimeEq;
use tracing::Instrument;

use crate::error::ApiError;
use crate::{idempotency, resources};

/// Everything a handler can reach, built once at start.
pub struct App {
    pub db: SqlitePool,
    /// The write turn (see [`crate::write`]).
    pub writer: crate::write::Turn,
    token_sha256: [u8; 32],
    writes: AtomicU64,
    replays: AtomicU64,
}

/// Cheap-to-clone handle on [`App`].
#[derive(Clone)]
pub struct AppState(pub Arc<App>);

impl std::ops::Deref for AppState {
    type Target = App;
    fn deref(&self) -> &App {
        &self.0
    }
}

impl App {
    pub fn new(db: SqlitePool, token: &str) -> App {
        App {
            db,
            writer: Default::default(),
            token_sha256: Sha256::digest(token.as_bytes()).into(),
            writes: AtomicU64::new(0),
            replays: AtomicU64::new(0),
        }
    }

    /// Authenticated write requests received (POST, PUT, PATCH, DELETE), replays included.
    pub fn write_count(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }

    /// Writes answered from the idempotency store instead of being executed again.
    pub fn replay_count(&self) -> u64 {
        self.replays.load(Ordering::Relaxed)
    }

    pub(crate) fn count_replay(&self) {
        self.replays.fetch_add(1, Ordering::Relaxed);
    }
}

/// The whole service under `/v1`.
pub fn router(state: AppState) -> Router {
    let api =
        resources::routes().method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed });
    Router::new()
        .nest("/v1", api)
        .fallback(|| async { ApiError::RouteNotFound })
        // Innermost first: idempotency sees only authenticated, counted writes.
        .layer(middleware::from_fn_with_state(
            state.clone(),
            idempotency::layer,
        ))
        .layer(middleware::from_fn_with_state(state.clone(), count_writes))
        .layer(middleware::from_fn_with_state(state.clone(), authenticate))
        // Outermost: one span per request, so the 401s are logged too.
        .layer(middleware::from_fn(trace))
        .with_state(state)
}

/// Is this a method that changes data?
pub fn is_write(method: &Method) -> bool {
    matches!(
        *method,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    )
}

async fn trace(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let h = req.headers();
    let span = tracing::info_span!(
        "studio_api",
        method = %req.method(),
        path = %req.uri().path(),
        request_id = header_str(h, "x-request-id"),
        actor = header_str(h, "x-flow-actor"),
        studio = header_str(h, "x-flow-studio"),
    );
    let res = next.run(req).instrument(span.clone()).await;
    span.in_scope(|| {
        tracing::debug!(
            status = res.status().as_u16(),
            duration_ms = started.elapsed().as_millis() as u64,
            "request done"
        );
    });
    res
}

fn header_str<'a>(h: &'a HeaderMap, name: &str) -> &'a str {
    h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

async fn authenticate(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match presented {
        None => ApiError::Unauthorized {
            code: "unauthorized",
            message: "missing service credential: send `Authorization: Bearer <token>`".into(),
        }
        .into_response(),
        Some(token) => {
            let digest: [u8; 32] = Sha256::digest(token.trim().as_bytes()).into();
            if bool::from(digest.ct_eq(&state.token_sha256)) {
                next.run(req).await
            } else {
                ApiError::Unauthorized {
                    code: "unauthorized",
                    message: "wrong service credential".into(),
                }
                .into_response()
            }
        }
    }
}

async fn count_writes(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if is_write(req.method()) {
        state.writes.fetch_add(1, Ordering::Relaxed);
    }
    next.run(req).await
}
