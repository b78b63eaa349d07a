//! Request guards that run before a route sees a request: the `Host` allow-list and, on `/mcp`,
//! the `Origin` allow-list (DNS rebinding), and the body's deadline, size and share of memory.
//!
//! A body is read whole before its handler runs, within `body_read_timeout` (a client that
//! trickles its body is answered 408), at most `limit` bytes (413), and only while the bodies in
//! flight across all connections fit in [`BODY_BUDGET`] (503 with `Retry-After` otherwise): the
//! memory bodies take is bounded whatever clients send.

use std::sync::Arc;
use std::time::Duration;

use crate::wire::Refusal;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt as _;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::app::App;

/// Bytes of request bodies held at once, across all connections.
pub const BODY_BUDGET: usize = 64 * 1024 * 1024;

/// The host names the gateway answers for.
#[derive(Debug, Clone)]
pub struct Hosts(Arc<Vec<String>>);

impl Hosts {
    /// Loopback names, `allowed_hosts`, and `public_url`'s host.
    pub fn of(app: &App) -> Self {
        let mut hosts: Vec<String> = ["localhost", "127.0.0.1", "::1"].map(String::from).to_vec();
        hosts.extend(app.config.allowed_hosts.iter().cloned());
        if let Some(host) = app
            .config
            .public_url
            .as_deref()
            .and_then(|u| reqwest::Url::parse(u).ok())
            .and_then(|u| u.host_str().map(|h| h.trim_matches(['[', ']']).to_string()))
        {
            hosts.push(host);
        }
        for h in &mut hosts {
            h.make_ascii_lowercase();
        }
        Self(Arc::new(hosts))
    }

    /// Whether a `Host` header value (`name`, `name:port`, `[v6]:port`) names an allowed host.
    pub fn allows(&self, value: &str) -> bool {
        let name = match value.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or_default(),
            None => value.split(':').next().unwrap_or_default(),
        };
        self.0.iter().any(|h| h.eq_ignore_ascii_case(name))
    }
}

/// Refuses a request whose `Host` is not one of ours (a DNS-rebinding page cannot read
/// `/metrics`, the OAuth pages or the metadata through a victim's browser).
pub async fn check_host(State(hosts): State<Hosts>, req: Request, next: Next) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()));
    match host {
        Some(h) if hosts.allows(h) => next.run(req).await,
        _ => Refusal::forbidden(
            "This flowgate does not answer for the host name in this request's Host header. \
             If it is the gateway's public name, add it to allowed_hosts (FLOWGATE_ALLOWED_HOSTS) \
             or public_url.",
        )
        .into_response(),
    }
}

/// The browser origins `/mcp` accepts: the gateway's own (its bound loopback address under each
/// loopback name, and `public_url`), and `allowed_origins`. A request without `Origin` (every
/// MCP client outside a browser) is not concerned.
#[derive(Debug, Clone)]
pub struct Origins(Arc<Vec<String>>);

impl Origins {
    pub fn of(app: &App) -> Self {
        let mut origins: Vec<String> = app.config.allowed_origins.clone();
        if let Ok(base) = reqwest::Url::parse(&app.base_url) {
            let port = base.port().map(|p| format!(":{p}")).unwrap_or_default();
            let loopback = matches!(base.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
            if loopback {
                for name in ["127.0.0.1", "localhost", "[::1]"] {
                    origins.push(format!("{}://{name}{port}", base.scheme()));
                }
            } else {
                origins.push(base.origin().ascii_serialization());
            }
        }
        for o in &mut origins {
            *o = o.trim_end_matches('/').to_ascii_lowercase();
        }
        Self(Arc::new(origins))
    }

    pub fn allows(&self, origin: &str) -> bool {
        let origin = origin.trim_end_matches('/');
        self.0.iter().any(|o| o.eq_ignore_ascii_case(origin))
    }
}

/// Refuses a browser request to `/mcp` from a page of another origin.
pub async fn check_origin(State(origins): State<Origins>, req: Request, next: Next) -> Response {
    match req.headers().get(header::ORIGIN).map(|v| v.to_str()) {
        None => next.run(req).await,
        Some(Ok(o)) if origins.allows(o) => next.run(req).await,
        Some(_) => Refusal::forbidden(
            "A web page of another origin may not use this MCP endpoint. If this page is yours, \
             add its origin to allowed_origins (FLOWGATE_ALLOWED_ORIGINS).",
        )
        .into_response(),
    }
}

/// The body rules for one group of routes.
#[derive(Debug, Clone)]
pub struct BodyRules {
    pub limit: usize,
    pub timeout: Duration,
    pub budget: Arc<Semaphore>,
}

impl BodyRules {
    /// A shared budget of [`BODY_BUDGET`] bytes, counted in KiB.
    pub fn budget() -> Arc<Semaphore> {
        Arc::new(Semaphore::new(BODY_BUDGET / 1024))
    }
}

/// Reads the body whole under [`BodyRules`], then passes the request on with it.
pub async fn read_body(State(rules): State<BodyRules>, req: Request, next: Next) -> Response {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > rules.limit) {
        return too_large(rules.limit);
    }
    let (parts, body) = req.into_parts();
    let read = tokio::time::timeout(rules.timeout, collect(body, &rules)).await;
    match read {
        Err(_) => Refusal::timeout(format!(
            "The request body did not arrive within {} s; send it at once.",
            rules.timeout.as_secs_f64()
        ))
        .into_response(),
        Ok(Err(refusal)) => refusal,
        Ok(Ok((bytes, held))) => {
            let response = next
                .run(Request::from_parts(parts, Body::from(bytes)))
                .await;
            drop(held);
            response
        }
    }
}

/// The body's bytes, and the budget they hold while the request is handled.
async fn collect(
    mut body: Body,
    rules: &BodyRules,
) -> Result<(Bytes, Option<OwnedSemaphorePermit>), Response> {
    let mut buf = Vec::new();
    let mut held: Option<OwnedSemaphorePermit> = None;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| {
            Refusal::bad_request("The request body could not be read (the connection broke off).")
                .into_response()
        })?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if buf.len() + data.len() > rules.limit {
            return Err(too_large(rules.limit));
        }
        let kib = u32::try_from((buf.len() + data.len()).div_ceil(1024)).unwrap_or(u32::MAX);
        let have = held.as_ref().map_or(0, |p| p.num_permits());
        let more = usize::try_from(kib)
            .unwrap_or(usize::MAX)
            .saturating_sub(have);
        if more > 0 {
            let Ok(permit) = rules
                .budget
                .clone()
                .try_acquire_many_owned(u32::try_from(more).unwrap_or(u32::MAX))
            else {
                return Err(Refusal::unavailable(
                    "flowgate is receiving too much data at once; retry in a second.",
                )
                .retry_after(std::time::Duration::from_secs(1))
                .into_response());
            };
            match &mut held {
                Some(p) => p.merge(permit),
                None => held = Some(permit),
            }
        }
        buf.extend_from_slice(&data);
    }
    Ok((Bytes::from(buf), held))
}

fn too_large(limit: usize) -> Response {
    Refusal::too_large(format!(
        "The request body is larger than the {limit} bytes this endpoint accepts."
    ))
    .into_response()
}
