//! The HTTP surface: `/mcp` behind authentication and session binding, the RFC 9728 metadata,
//! and the health endpoints. Middleware is assembled in [`router`], in the order it runs.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::audit::{self, Outcome, Record};
use crate::auth::Rejection;
use crate::authz::Principal;
use crate::config::McpMode;
use crate::mcp::Gateway;
use crate::tool::catalog::SCOPES;

/// The whole router. `shutdown` ends every MCP session when cancelled.
pub fn router(app: Arc<App>, shutdown: &CancellationToken) -> Router {
    let mut hosts: Vec<String> = ["localhost", "127.0.0.1", "::1"].map(String::from).to_vec();
    hosts.extend(app.config.allowed_hosts.iter().cloned());
    if let Some(host) = app
        .config
        .public_url
        .as_deref()
        .and_then(|u| u.split("://").nth(1))
        .and_then(|rest| rest.split(['/', ':']).next())
    {
        hosts.push(host.to_string());
    }
    let mut config = StreamableHttpServerConfig::default()
        .with_cancellation_token(shutdown.child_token())
        .with_allowed_hosts(hosts)
        .with_max_request_body_bytes(app.config.max_body_bytes);
    // MCP clients outside a browser send no Origin; a browser page must be allowed explicitly
    // (DNS-rebinding protection).
    config = if app.config.allowed_origins.is_empty() {
        config.enforce_origin_validation()
    } else {
        config.with_allowed_origins(app.config.allowed_origins.clone())
    };
    let gateway = Gateway::new(app.clone());
    let app_for_oauth = app.clone();
    let mcp: Router = match app.config.mcp_mode {
        McpMode::Stateful => Router::new().route_service(
            "/mcp",
            StreamableHttpService::new(
                move || Ok(gateway.clone()),
                Arc::new(LocalSessionManager::default()),
                config,
            ),
        ),
        McpMode::Stateless => Router::new().route_service(
            "/mcp",
            StreamableHttpService::new(
                move || Ok(gateway.clone()),
                Arc::new(NeverSessionManager::default()),
                config
                    .with_legacy_session_mode(false)
                    .with_json_response(true),
            ),
        ),
    };
    let public = Router::new()
        .route(
            "/.well-known/oauth-protected-resource",
            get(protected_resource_metadata),
        )
        .route(
            "/.well-known/oauth-protected-resource/mcp",
            get(protected_resource_metadata),
        )
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(app.clone());
    Router::new()
        // Every /mcp request is authenticated, then bound to its session's principal.
        .merge(mcp.layer(middleware::from_fn_with_state(app, authenticate)))
        .merge(public)
        .merge(crate::oauth::router(app_for_oauth))
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
    let store = app.store.ping().await.map_err(|e| e.to_string());
    let upstream = app
        .upstream
        .reachable()
        .await
        .map_err(|e| format!("cannot reach {}: {e}", app.upstream.base_url()));
    let ok = store.is_ok() && upstream.is_ok();
    let body = json!({
        "store": store.err().unwrap_or_else(|| "ok".into()),
        "upstream": upstream.err().unwrap_or_else(|| "ok".into()),
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
    let mut response = (
        StatusCode::UNAUTHORIZED,
        Json(json!({ "error": "unauthorized", "error_description": rejection.describe() })),
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&value) {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    response
}

/// Authenticates every `/mcp` request and binds sessions to the principal that opened them.
async fn authenticate(State(app): State<Arc<App>>, mut req: Request, next: Next) -> Response {
    let header = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str().unwrap_or_default().to_string());
    let token = match header.as_deref() {
        None => Err(Rejection::Missing),
        Some(h) => match h.split_once(' ') {
            Some((scheme, t)) if scheme.eq_ignore_ascii_case("bearer") && !t.trim().is_empty() => {
                Ok(t.trim().to_string())
            }
            _ => Err(Rejection::Malformed),
        },
    };
    let principal: Result<Arc<Principal>, Rejection> = match token {
        Err(r) => Err(r),
        Ok(t) => match crate::oauth::authenticate(&app, &t).await {
            Ok(result) => result,
            Err(e) => {
                tracing::error!(error = %e, "cannot check a credential");
                return (
                    StatusCode::SERVICE_UNAVAILABLE,
                    Json(json!({"error": "temporarily_unavailable"})),
                )
                    .into_response();
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
                let owner = match header.as_deref().and_then(|h| h.split_once(' ')) {
                    Some((_, t)) => {
                        crate::oauth::rejected_credential(&app, t.trim(), rejection).await
                    }
                    None => None,
                };
                let record = Record {
                    seq: 0,
                    at: audit::now(),
                    request_id: uuid::Uuid::new_v4().to_string(),
                    studio: None,
                    principal_kind: owner.as_ref().map(|(kind, _)| (*kind).to_string()),
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

    // A session belongs to the principal that created it: another credential gets 404, exactly
    // as if the session did not exist.
    let owner = format!("{}:{}", principal.kind.as_str(), principal.id);
    let session = req
        .headers()
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    if let Some(sid) = &session
        && let Some(bound) = app.sessions.get(sid)
        && bound != owner
    {
        return (StatusCode::NOT_FOUND, "Not Found: Session not found").into_response();
    }
    req.extensions_mut().insert(principal);
    let response = next.run(req).await;
    if session.is_none()
        && let Some(new) = response
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
    {
        app.sessions.insert(new.to_string(), owner);
    }
    response
}
