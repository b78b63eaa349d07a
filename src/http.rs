//! The HTTP surface: `/mcp` behind authentication and flowgate's own MCP sessions
//! ([`sessions`]), the RFC 9728 metadata, and the health endpoints. Middleware is assembled in [`router`], in the order it runs; the
//! [`listener`] serves it within connection and header-time limits.

pub mod guard;
pub mod listener;
pub mod sessions;

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::audit::{Outcome, Record};
use crate::config::McpMode;
use crate::identity::{self, Principal, Rejection};
use crate::mcp::Gateway;
use crate::tool::catalog::SCOPES;
use crate::wire::Refusal;

/// The whole router. `shutdown` cancels the MCP requests rmcp is still serving when cancelled.
///
/// In order: the `Host` check (every route but the health probes) → for `/mcp`,
/// authentication, the body guard, the `Origin` check, the JSON-RPC error mapping, then (in
/// stateful mode) the session layer, then the direct path (`mcp::direct`: 2025-era
/// `tools/call` and `tools/list`), then rmcp for everything else; for the other routes, the
/// body guard with a small limit.
///
/// rmcp serves every request statelessly (no session manager, JSON answers): sessions are
/// flowgate's ([`sessions`]), so any replica serves any session.
pub fn router(app: Arc<App>, shutdown: &CancellationToken) -> Router {
    let hosts = guard::Hosts::of(&app);
    let budget = guard::BodyRules::budget();
    let body_timeout = app.config.body_read_timeout();
    let body = |limit: usize| {
        middleware::from_fn_with_state(
            guard::BodyRules {
                limit,
                timeout: body_timeout,
                budget: budget.clone(),
            },
            guard::read_body,
        )
    };
    let config = StreamableHttpServerConfig::default()
        .with_cancellation_token(shutdown.child_token())
        // The Host check is `guard::check_host`, in front of every route: rmcp need not repeat it.
        .disable_allowed_hosts()
        .with_max_request_body_bytes(app.config.max_body_bytes)
        .with_legacy_session_mode(false)
        .with_json_response(true);
    // The Origin check (DNS rebinding) is `guard::check_origin`, in front of rmcp: it knows the
    // gateway's own origin and explains a refusal.
    let gateway = Gateway::new(app.clone());
    // The common requests (2025-era `tools/call` and `tools/list`) are answered by the direct
    // path in front of rmcp, which serves everything else (`mcp::direct`).
    let direct = Arc::new(crate::mcp::direct::Direct::new(
        gateway.clone(),
        shutdown.child_token(),
    ));
    let mcp: Router = Router::new()
        .route_service(
            "/mcp",
            StreamableHttpService::new(
                move || Ok(gateway.clone()),
                Arc::new(NeverSessionManager::default()),
                config,
            ),
        )
        .layer(middleware::from_fn_with_state(
            direct,
            crate::mcp::direct::layer,
        ));
    let mcp = match app.config.mcp_mode {
        McpMode::Stateful => {
            mcp.layer(middleware::from_fn_with_state(app.clone(), sessions::layer))
        }
        McpMode::Stateless => mcp,
    };
    let mcp =
        mcp.layer(middleware::from_fn(json_rpc_errors))
            .layer(middleware::from_fn_with_state(
                guard::Origins::of(&app),
                guard::check_origin,
            ));
    let public = Router::new()
        .route(
            "/.well-known/oauth-protected-resource",
            get(protected_resource_metadata),
        )
        .route(
            "/.well-known/oauth-protected-resource/mcp",
            get(protected_resource_metadata),
        )
        .route("/metrics", get(metrics))
        .with_state(app.clone());
    // Load balancers and orchestrators probe these by address: no Host check.
    let probes = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(app.clone());
    let max_body = app.config.max_body_bytes;
    Router::new()
        // Every /mcp request is authenticated (before its body is read); its session, if any,
        // must belong to the same principal (`sessions`).
        .merge(
            mcp.layer(body(max_body))
                .layer(middleware::from_fn_with_state(app.clone(), authenticate)),
        )
        .merge(public)
        .merge(crate::oauth::router(app.clone()).layer(body(SMALL_BODY)))
        .merge(crate::settings::router(app).layer(body(SMALL_BODY)))
        .layer(middleware::from_fn_with_state(hosts, guard::check_host))
        .merge(probes)
}

/// `POST /mcp` requests whose response has not been sent in full: what shutdown waits for
/// before it cancels what rmcp still serves.
#[derive(Debug, Clone, Default)]
pub struct InFlight(Arc<std::sync::atomic::AtomicUsize>);

impl InFlight {
    pub fn count(&self) -> usize {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn enter(&self) -> InFlightGuard {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        InFlightGuard(self.0.clone())
    }

    /// Waits until nothing is in flight, or `deadline`; returns what is still in flight.
    pub async fn drained(&self, deadline: tokio::time::Instant) -> usize {
        while self.count() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        self.count()
    }
}

struct InFlightGuard(Arc<std::sync::atomic::AtomicUsize>);

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// The body limit of the routes other than `/mcp` (OAuth forms and registrations).
const SMALL_BODY: usize = 64 * 1024;

/// JSON-RPC errors for `/mcp` bodies rmcp cannot read: it answers those with a plain-text 415,
/// where a client needs -32700 (not JSON) or -32602/-32600 (JSON, but not a request it can
/// serve), with HTTP 400. The body (already read by the body guard; the buffer is shared with
/// rmcp, not copied) is parsed here only when rmcp refused it, so a good request is parsed once.
async fn json_rpc_errors(req: Request, next: Next) -> Response {
    let json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"));
    if req.method() != axum::http::Method::POST || !json {
        return next.run(req).await;
    }
    // The body guard (`guard::read_body`, the layer outside this one) has already read the body
    // whole within its limits: this only takes the bytes back out.
    let (parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return Refusal::bad_request("The request body could not be read.").into_response();
    };
    let response = next
        .run(Request::from_parts(
            parts,
            axum::body::Body::from(bytes.clone()),
        ))
        .await;
    // With a JSON content type, rmcp's 415 means the body did not deserialize.
    if response.status() != StatusCode::UNSUPPORTED_MEDIA_TYPE {
        return response;
    }
    let (id, code, message) = match serde_json::from_slice::<serde_json::Value>(&bytes) {
        Err(e) => (
            serde_json::Value::Null,
            -32700,
            format!("Parse error: the request body is not valid JSON ({e})"),
        ),
        Ok(v) => {
            let id = v
                .get("id")
                .filter(|id| id.is_string() || id.is_number())
                .cloned()
                .unwrap_or_default();
            match v
                .get("method")
                .and_then(|m| m.as_str())
                .and_then(|m| crate::mcp::params_problem(m, v.get("params")))
            {
                Some(problem) => (id, -32602, problem),
                None => (
                    id,
                    -32600,
                    "Invalid Request: the body is not a JSON-RPC 2.0 request, notification or response".into(),
                ),
            }
        }
    };
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})),
    )
        .into_response()
}

/// RFC 9728 protected resource metadata for `/mcp`.
async fn protected_resource_metadata(State(app): State<Arc<App>>) -> Json<serde_json::Value> {
    Json(json!({
        "resource": app.mcp_url(),
        "authorization_servers": [app.base_url],
        "scopes_supported": SCOPES.iter().map(|s| s.name).collect::<Vec<_>>(),
        "bearer_methods_supported": ["header"],
        "resource_name": "flowgate",
    }))
}

async fn readyz(State(app): State<Arc<App>>) -> Response {
    // Answered to any Host (probes come by address), so it says only what is wrong, not where;
    // the details go to the log.
    let store = app.store.ping().await.map_err(|e| {
        tracing::warn!(error = %e, "readyz: the store does not answer");
        "unavailable"
    });
    let upstream = app.upstream.reachable().await.map_err(|e| {
        tracing::warn!(error = %e, upstream = app.upstream.base_url(), "readyz: the upstream does not answer");
        "unreachable"
    });
    let ok = store.is_ok() && upstream.is_ok();
    let body = json!({
        "store": store.err().unwrap_or("ok"),
        "upstream": upstream.err().unwrap_or("ok"),
    });
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

/// The Prometheus scrape endpoint (OpenMetrics text).
async fn metrics(State(app): State<Arc<App>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        app.metrics.encode(),
    )
        .into_response()
}

/// 401 with the RFC 9728 discovery challenge.
fn challenge(app: &App, rejection: Rejection) -> Response {
    let mut value = format!(
        r#"Bearer resource_metadata="{}""#,
        app.resource_metadata_url()
    );
    if rejection != Rejection::Missing {
        value.push_str(&format!(
            r#", error="invalid_token", error_description="{}""#,
            rejection.describe()
        ));
    }
    let mut refusal = Refusal::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        rejection.describe(),
    );
    if let Ok(v) = HeaderValue::from_str(&value) {
        refusal = refusal.header(header::WWW_AUTHENTICATE, v);
    }
    refusal.json()
}

/// The one row that says further refused credentials from an address are not recorded for a
/// while.
async fn record_unrecorded(
    app: &App,
    addr: crate::oauth::limits::ClientAddr,
    refused: &crate::oauth::limits::Refused,
) {
    let record = Record {
        seq: 0,
        at: crate::store::Timestamp::now(),
        request_id: uuid::Uuid::new_v4().to_string(),
        studio: None,
        principal_kind: None,
        principal_id: None,
        principal_name: None,
        tool: None,
        arguments: None,
        decision: None,
        policies: Vec::new(),
        outcome: Outcome::RateLimited.as_str().into(),
        message: Some(format!(
            "more refused credentials from this address than are recorded; the next {} s are answered but not recorded",
            refused.secs()
        )),
        upstream_status: None,
        duration_ms: 0,
        client_addr: addr.audit(),
    };
    if let Err(e) = app.audit.append(&record).await {
        tracing::error!(error = %e, "cannot audit refused credentials");
    }
}

/// The credential checked, timed as the `authenticate` stage.
async fn checked_credential(
    app: &App,
    req: &mut Request,
    token: &str,
) -> Result<Result<Arc<Principal>, Rejection>, crate::store::StoreError> {
    let started = std::time::Instant::now();
    let at = std::time::SystemTime::now();
    let checked = identity::authenticate(app, token).await;
    let took = started.elapsed();
    app.metrics.stage(crate::metrics::Stage::Authenticate, took);
    if app.telemetry.is_on() {
        let parent = req
            .headers()
            .get("traceparent")
            .and_then(|v| v.to_str().ok())
            .and_then(crate::telemetry::TraceParent::parse);
        req.extensions_mut().insert(crate::telemetry::Arrival {
            authenticated_at: at,
            authenticate_took: took,
            parent,
        });
    }
    checked
}

/// Authenticates every `/mcp` request, and counts the POSTs in flight.
async fn authenticate(State(app): State<Arc<App>>, mut req: Request, next: Next) -> Response {
    let token = identity::bearer(req.headers()).map(str::to_string);
    let principal: Result<Arc<Principal>, Rejection> = match &token {
        Err(r) => Err(*r),
        Ok(t) => match checked_credential(&app, &mut req, t).await {
            Ok(result) => result,
            Err(e) => {
                return Refusal::unavailable(
                    "flowgate cannot check credentials right now. Try again in a moment.",
                )
                .because(&e)
                .json();
            }
        },
    };
    let principal = match principal {
        Ok(p) => p,
        Err(rejection) => {
            // A request without any credential is a client discovering auth, not an attack;
            // only presented credentials that fail are audited.
            if rejection != Rejection::Missing {
                app.metrics.rejected_credential(rejection.code());
                // Who was refused: the address, and the key or grant when the store knows it.
                let addr =
                    crate::oauth::limits::ClientAddr::of(&app, req.headers(), req.extensions());
                // A flood of bad credentials from one address is answered, but recorded only
                // up to a rate; then one row says so, so the log cannot be grown at will.
                let recorded = app
                    .oauth
                    .rejected_recorded
                    .take(addr.key(), std::time::Instant::now());
                if let Err(refused) = &recorded {
                    if refused.first {
                        record_unrecorded(&app, addr, refused).await;
                    }
                    return challenge(&app, rejection);
                }
                let owner = match &token {
                    Ok(t) => identity::refused_owner(&app, t, rejection).await,
                    Err(_) => None,
                };
                let record = Record {
                    seq: 0,
                    at: crate::store::Timestamp::now(),
                    request_id: uuid::Uuid::new_v4().to_string(),
                    studio: None,
                    principal_kind: owner.as_ref().map(|(kind, _)| kind.as_str().to_string()),
                    principal_id: owner.map(|(_, id)| id),
                    principal_name: None,
                    tool: None,
                    arguments: None,
                    decision: None,
                    policies: Vec::new(),
                    outcome: Outcome::Unauthenticated.as_str().into(),
                    message: Some(rejection.describe().into()),
                    upstream_status: None,
                    duration_ms: 0,
                    client_addr: addr.audit(),
                };
                if let Err(e) = app.audit.append(&record).await {
                    tracing::error!(error = %e, "cannot audit a rejected credential");
                }
            }
            return challenge(&app, rejection);
        }
    };

    req.extensions_mut().insert(principal);
    let in_flight = (req.method() == axum::http::Method::POST).then(|| app.in_flight.enter());
    let mut response = next.run(req).await;
    if let Some(guard) = in_flight {
        // Counted until the last byte of the answer is sent (or the client goes away).
        response = response.map(|body| {
            axum::body::Body::new(http_body_util::BodyExt::map_frame(body, move |frame| {
                let _ = &guard;
                frame
            }))
        });
    }
    response
}
