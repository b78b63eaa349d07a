//! The application state, built once at start-up and shared by every request: config, the tool
//! registry, the policy set, the store, the upstream client and the caches.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::audit::Audit;
use crate::authz::Authz;
use crate::config::Config;
use crate::idempotency::Idempotency;
use crate::identity::Studio;
use crate::identity::keys::Keys;
use crate::identity::remembered::Remembered;
use crate::limit::Limits;
use crate::metrics::Metrics;
use crate::store::Store;
use crate::tool::glue::Expr;
use crate::tool::{Registry, catalog};
use crate::upstream::{CallHeaders, Method, UpstreamClient, UpstreamError, UpstreamRequest};

/// Everything a request needs; cloned cheaply as `Arc<App>`.
pub struct App {
    pub config: Config,
    pub registry: Registry,
    pub authz: Authz,
    pub store: Store,
    pub keys: Keys,
    /// Credentials that authenticated recently (revocation still applies on the next request).
    pub credentials: Remembered,
    /// The OAuth authorization server's state (clients, grants, tokens, flows).
    pub oauth: crate::oauth::OAuth,
    pub audit: Audit,
    pub upstream: UpstreamClient,
    pub idempotency: Idempotency,
    pub limits: Limits,
    pub metrics: Metrics,
    /// The public URL of `/mcp`'s server (no trailing slash), e.g. `http://127.0.0.1:8080`.
    pub base_url: String,
    /// Studio id → studio, from the upstream `GET /studio`. Misses coalesce; errors are not cached.
    studios: moka::future::Cache<String, Studio>,
    /// How MCP session ids are signed and checked (the key every replica shares).
    pub sessions: crate::http::sessions::Sessions,
    /// Call traces, exported when `otel_endpoint` is set.
    pub telemetry: crate::telemetry::Telemetry,
    /// MCP requests being answered (what a graceful shutdown waits for).
    pub in_flight: crate::http::InFlight,
    /// Each tool's documented example as a Cedar context, for deciding calls with bad arguments.
    examples: HashMap<&'static str, Expr>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl App {
    /// `session_key` is the store's shared secret `mcp-session-key` (read once at start-up).
    pub fn new(
        config: Config,
        authz: Authz,
        store: Store,
        upstream: UpstreamClient,
        base_url: String,
        session_key: &str,
    ) -> Result<Arc<Self>, String> {
        let registry = Registry::new()?;
        let mut examples = HashMap::new();
        for tool in registry.iter() {
            let example: serde_json::Value = serde_json::from_str(tool.def.example)
                .map_err(|e| format!("{}: example is not JSON: {e}", tool.def.name))?;
            let decoded = tool.prepare(Some(example["input"].clone())).map_err(|e| {
                format!(
                    "{}: the manifest example is not valid: {e:?}",
                    tool.def.name
                )
            })?;
            examples.insert(tool.def.name, decoded.context);
        }
        let studios = moka::future::Cache::builder()
            .name("studios")
            .max_capacity(10_000)
            .time_to_live(Duration::from_secs(config.tier_cache_ttl_secs.max(1)))
            .build();
        let sessions = crate::http::sessions::Sessions::new(
            session_key,
            Duration::from_secs(config.mcp_session_ttl_secs),
        );
        let idempotency = Idempotency::new(
            store.clone(),
            Duration::from_secs(config.idempotency_ttl_secs),
            config.upstream_timeout() + Duration::from_secs(2),
            config.upstream_timeout() * 2 + Duration::from_secs(5),
        );
        // With PostgreSQL (replicas) the buckets are shared through the store.
        let shared = (store.backend() == "postgres").then(|| store.clone());
        let limits = Limits::new(&config.rate_limit_per_minute, shared);
        let oauth = crate::oauth::OAuth::new(
            &store,
            crate::oauth::grants::Grants::new(store.clone(), config.oauth_access_token_ttl_secs),
            config.oauth_allow_private_client_metadata,
            config.oauth_max_clients,
        )?;
        let telemetry = match &config.otel_endpoint {
            Some(endpoint) if cfg!(feature = "otel") => crate::telemetry::Telemetry::start(
                endpoint,
                &config.otel_service_name,
                reqwest::Client::builder()
                    .redirect(reqwest::redirect::Policy::none())
                    .build()
                    .map_err(|e| format!("cannot build the trace exporter's client: {e}"))?,
            ),
            _ => crate::telemetry::Telemetry::off(),
        };
        Ok(Arc::new(Self {
            oauth,
            keys: Keys::new(store.clone()),
            credentials: Remembered::new(store.revocations().clone()),
            audit: Audit::new(store.clone()),
            idempotency,
            limits,
            metrics: Metrics::new(),
            config,
            registry,
            authz,
            store,
            upstream,
            base_url,
            studios,
            sessions,
            in_flight: crate::http::InFlight::default(),
            telemetry,
            examples,
        }))
    }

    /// The studio with its tier, cached.
    pub async fn studio(&self, id: &str) -> Result<Studio, UpstreamError> {
        let entry = self
            .studios
            .entry_by_ref(id)
            .or_try_insert_with(async {
                let req =
                    UpstreamRequest::new(Method::GET, format!("{}/studio", catalog::BASE_PATH));
                let request_id = uuid::Uuid::new_v4().to_string();
                let headers = CallHeaders {
                    studio: id,
                    actor: "gateway",
                    request_id: &request_id,
                    idempotency_key: None,
                    traceparent: None,
                };
                let v = self.call_upstream(&req, &headers).await?;
                let field = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
                match (field("id"), field("tier")) {
                    (Some(sid), Some(tier)) => Ok(Studio {
                        id: sid,
                        name: field("name").unwrap_or_default(),
                        tier,
                    }),
                    _ => Err(UpstreamError::BadResponse(
                        "GET /studio did not return an id and a tier".into(),
                    )),
                }
            })
            .await
            .map_err(|e: Arc<UpstreamError>| {
                self.metrics.cache("studios", false);
                (*e).clone()
            })?;
        // A fresh entry was loaded by this call; anything else was answered from the cache.
        self.metrics.cache("studios", !entry.is_fresh());
        Ok(entry.into_value())
    }

    /// One Management API request, timed and counted.
    pub async fn call_upstream(
        &self,
        req: &UpstreamRequest,
        headers: &CallHeaders<'_>,
    ) -> Result<serde_json::Value, UpstreamError> {
        let started = std::time::Instant::now();
        let result = self.upstream.call(req, headers).await;
        self.metrics.upstream(started.elapsed(), &result);
        self.metrics
            .stage(crate::metrics::Stage::Upstream, started.elapsed());
        result
    }

    pub fn example_context(&self, tool: &str) -> Option<Expr> {
        self.examples.get(tool).cloned()
    }

    /// The URL of the MCP endpoint.
    pub fn mcp_url(&self) -> String {
        format!("{}/mcp", self.base_url)
    }

    /// The RFC 9728 protected resource metadata URL for `/mcp`.
    pub fn resource_metadata_url(&self) -> String {
        format!("{}/.well-known/oauth-protected-resource/mcp", self.base_url)
    }
}
