//! One-click sign-in: flowgate as the OAuth 2.1 authorization server for its own MCP resource.
//!
//! Discovery (RFC 8414 metadata; the RFC 9728 resource metadata lives in `http`), dynamic client
//! registration (RFC 7591) and Client ID Metadata Documents, the authorization code flow with
//! PKCE S256 only, exact redirect URIs, RFC 8707 resource indicators and RFC 9207 `iss`, a
//! sign-in page checked against the studio platform (`POST /auth/sign-in` upstream), a consent
//! page where every scope can be unticked, rotating refresh tokens with reuse detection, and
//! revocation (RFC 7009). A grant is a principal like a secret key: same Cedar decision, rate
//! limit and audit.
//!
//! Abuse: sign-in is limited per account and per client address with a growing back-off, and
//! only a few password checks run at once ([`limits`]); registration is limited per address,
//! unused registrations expire, and client names cannot carry control or bidirectional
//! characters. Every security event is audited under an `oauth.*` tool name ([`events`]), with
//! the client's address; never a password, code, token or verifier.

pub mod cimd;
pub mod flows;
pub mod grants;
pub mod limits;
pub mod pages;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRequest, Query, RawForm, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde_json::json;

use crate::app::App;
use crate::audit::{Outcome, Record};
use crate::roles::{self, Role, Roles};
use crate::store::{Store, StoreError, Timestamp};
use crate::tool::catalog::SCOPES;
use crate::wire;
use flows::{Flow, Flows, SignedIn};
use grants::{Client, Grants, NewGrant, TokenError};
use limits::{Attempts, Backoff, Buckets, Checks, ClientAddr, Refused, SharedAttempts};

const CSRF_COOKIE: &str = "flowgate_csrf";

/// Failed sign-ins per account: 5 free, then 5 s doubling with each failure, up to 15 minutes.
pub const ACCOUNT_BACKOFF: Backoff = Backoff {
    free: 5,
    base: Duration::from_secs(5),
    cap: Duration::from_secs(900),
};
/// Failed sign-ins per client address (an office shares one): 20 free, then as per account.
pub const ADDRESS_BACKOFF: Backoff = Backoff {
    free: 20,
    base: Duration::from_secs(5),
    cap: Duration::from_secs(900),
};
/// Password checks sent upstream at once; more wait up to [`CHECK_WAIT`], at most
/// [`CHECK_QUEUE`] of them, the rest are refused with 429.
pub const CONCURRENT_CHECKS: usize = 4;
pub const CHECK_QUEUE: usize = 64;
pub const CHECK_WAIT: Duration = Duration::from_secs(2);
/// Registrations per client address: 10 at once, then 20 an hour.
/// Sign-in flows one address may start (`/oauth/authorize`): at once, and then per hour. A
/// flow is stored for ten minutes and at most [`flows::MAX_FLOWS`] are live, so without this an
/// anonymous client could fill the flows and keep everyone else from starting a sign-in.
pub const FLOW_BURST: u32 = 30;
pub const FLOWS_PER_HOUR: u32 = 600;
/// Refused bearer credentials recorded per address: at once, and then per hour; past that, one
/// row says recording stopped for a while (the 401 is answered all the same).
pub const REJECTED_AUDIT_BURST: u32 = 20;
pub const REJECTED_AUDITS_PER_HOUR: u32 = 600;

pub const REGISTRATION_BURST: u32 = 10;
pub const REGISTRATIONS_PER_HOUR: u32 = 20;
/// How many accounts and addresses the limits remember (least recently used are forgotten).
const TRACKED: u64 = 100_000;
/// The longest e-mail address kept (as a limit key and in the audit log).
const MAX_EMAIL: usize = 254;

/// The `tool` of OAuth rows in the audit log (`flowgate audit --tool oauth.sign_in`).
pub mod events {
    /// A sign-in attempt: `ok`, `unauthenticated` (wrong e-mail or password) or `rate_limited`.
    pub const SIGN_IN: &str = "oauth.sign_in";
    /// An approval (`ok`, the scopes granted) or a refusal (`denied`) on the consent page.
    pub const CONSENT: &str = "oauth.consent";
    /// An authorization code exchanged for tokens (or refused, for a known code).
    pub const TOKEN: &str = "oauth.token";
    /// A refresh token exchanged (or refused, for a known token).
    pub const REFRESH: &str = "oauth.refresh";
    /// A refresh token or code used twice: the grant was revoked.
    pub const REUSE: &str = "oauth.refresh_reuse";
    /// A grant revoked by its client (RFC 7009).
    pub const REVOKE: &str = "oauth.revoke";
    /// A dynamic client registration: `ok`, `invalid`, `rate_limited` or `denied` (cap reached).
    pub const REGISTER: &str = "oauth.register";
}

/// The sign-in limits: failures per account in the store (shared by every replica), failures
/// per address and concurrent checks in this process (see [`limits`]).
#[derive(Debug)]
pub struct SignInLimits {
    pub accounts: SharedAttempts,
    pub addresses: Attempts<u128>,
    pub checks: Checks,
}

impl SignInLimits {
    /// Whether `account` or `addr` must wait before another attempt: the refusal, and whom it
    /// concerns (as the sign-in page and as the audit log say it).
    pub async fn refusal(
        &self,
        account: &str,
        addr: ClientAddr,
    ) -> Result<Option<(Refused, &'static str, &'static str)>, StoreError> {
        if let Err(r) = self.accounts.check(account, Timestamp::now()).await? {
            return Ok(Some((r, "this account", "this account")));
        }
        Ok(self
            .addresses
            .check(&addr.key(), Instant::now())
            .err()
            .map(|r| (r, "your network", "this address")))
    }
}

/// The authorization server's state.
pub struct OAuth {
    pub grants: Grants,
    pub cimd: cimd::Cimd,
    /// Sign-ins in progress, in the store.
    pub flows: Flows,
    registrations: Buckets<u128>,
    /// Flows started, by address.
    flows_started: Buckets<u128>,
    /// Refused bearer credentials recorded, by address (used by `http::authenticate`).
    pub rejected_recorded: Buckets<u128>,
    pub sign_in: SignInLimits,
    /// The role policies: what a signed-in user may grant.
    pub roles: Roles,
    max_clients: i64,
}

impl std::fmt::Debug for OAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuth").finish_non_exhaustive()
    }
}

impl OAuth {
    pub fn new(
        store: &Store,
        grants: Grants,
        allow_private_metadata: bool,
        max_clients: i64,
    ) -> Result<Self, String> {
        Ok(Self {
            grants,
            cimd: cimd::Cimd::new(allow_private_metadata),
            flows: Flows::new(store.clone()),
            registrations: Buckets::new(
                "registrations_by_address",
                REGISTRATION_BURST,
                REGISTRATIONS_PER_HOUR,
                TRACKED,
            ),
            flows_started: Buckets::new("flows_by_address", FLOW_BURST, FLOWS_PER_HOUR, TRACKED),
            rejected_recorded: Buckets::new(
                "rejected_credentials_recorded_by_address",
                REJECTED_AUDIT_BURST,
                REJECTED_AUDITS_PER_HOUR,
                TRACKED,
            ),
            sign_in: SignInLimits {
                accounts: SharedAttempts::new(store.clone(), ACCOUNT_BACKOFF),
                addresses: Attempts::new("sign_in_failures_by_address", ADDRESS_BACKOFF, TRACKED),
                checks: Checks::new(CONCURRENT_CHECKS, CHECK_QUEUE, CHECK_WAIT),
            },
            roles: Roles::shipped().map_err(|e| e.to_string())?,
            max_clients,
        })
    }
}

/// Client names are shown on the consent page: control characters and bidirectional
/// formatting (which can make "Evil" read as "Claude") are refused.
pub fn check_client_name(name: &str) -> Result<(), String> {
    match name.chars().find(|&c| crate::audit::disguises(c)) {
        Some(c) => Err(format!(
            "client_name contains U+{:04X}: control characters and bidirectional formatting characters are not allowed, because they could disguise the name shown on the consent page",
            u32::from(c)
        )),
        None => Ok(()),
    }
}

/// An `oauth.*` audit row about `addr`; callers fill in whom it concerns.
fn event(tool: &str, outcome: Outcome, addr: ClientAddr, message: &str) -> Record {
    Record {
        seq: 0,
        at: crate::store::Timestamp::now(),
        request_id: uuid::Uuid::new_v4().to_string(),
        studio: None,
        principal_kind: None,
        principal_id: None,
        principal_name: None,
        tool: Some(tool.to_string()),
        arguments: None,
        decision: None,
        policies: Vec::new(),
        outcome: outcome.as_str().to_string(),
        // Messages may quote what a client sent: keep them short.
        message: Some(message.chars().take(500).collect()),
        upstream_status: None,
        duration_ms: 0,
        client_addr: addr.audit(),
    }
}

/// An event about a grant.
fn grant_event(
    tool: &str,
    outcome: Outcome,
    addr: ClientAddr,
    grant: &grants::GrantRef,
    message: &str,
) -> Record {
    Record {
        studio: Some(grant.studio.clone()),
        principal_kind: Some("grant".into()),
        principal_id: Some(grant.id.clone()),
        principal_name: Some(grant.client_name.clone()),
        ..event(tool, outcome, addr, message)
    }
}

/// Appends an OAuth event before the answer goes out; a failure is logged, not shown.
pub(crate) async fn audit(app: &App, record: Record) {
    if let Err(e) = app.audit.append(&record).await {
        tracing::error!(error = %e, tool = ?record.tool, "cannot audit an OAuth event");
    }
}

/// An e-mail as the limits and the audit log keep it: trimmed, lower case, without control
/// characters, at most [`MAX_EMAIL`] characters.
fn account_key(email: &str) -> String {
    email
        .trim()
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_EMAIL)
        .collect::<String>()
        .to_lowercase()
}

fn retry_after(mut r: Response, refused: &Refused) -> Response {
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(refused.secs()));
    r
}

/// Redirect URIs must be loopback `http` or `https`, exact, without fragments.
/// Whether a redirect URI presented at authorization is one the client registered: the same
/// string, or, for an `http` loopback URI, the same one on any port (RFC 8252 §7.3: a native
/// client picks a free port when it runs, and may have to pick another next time). Scheme,
/// host (`127.0.0.1`, `[::1]` and `localhost` are three different ones), path and query still
/// match exactly.
pub fn redirect_matches(registered: &str, presented: &str) -> bool {
    if registered == presented {
        return true;
    }
    let (Ok(r), Ok(p)) = (
        reqwest::Url::parse(registered),
        reqwest::Url::parse(presented),
    ) else {
        return false;
    };
    let loopback = |u: &reqwest::Url| {
        u.scheme() == "http" && matches!(u.host_str(), Some("127.0.0.1" | "[::1]" | "localhost"))
    };
    loopback(&r)
        && loopback(&p)
        && r.host_str() == p.host_str()
        && r.path() == p.path()
        && r.query() == p.query()
        && r.fragment().is_none()
        && p.fragment().is_none()
        && p.username().is_empty()
        && p.password().is_none()
}

pub fn check_redirect_uris(uris: &[String]) -> Result<(), String> {
    if uris.is_empty() || uris.len() > 10 {
        return Err("redirect_uris must list 1 to 10 URIs".into());
    }
    for u in uris {
        let parsed =
            reqwest::Url::parse(u).map_err(|_| format!("redirect URI {u:?} is not a URL"))?;
        let loopback = matches!(parsed.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
        let ok_scheme = parsed.scheme() == "https" || (parsed.scheme() == "http" && loopback);
        if !ok_scheme || parsed.fragment().is_some() || u.len() > 2000 {
            return Err(format!(
                "redirect URI {u:?} must be https, or http on a loopback address, without a fragment"
            ));
        }
    }
    Ok(())
}

/// The OAuth routes.
pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route(
            "/.well-known/oauth-authorization-server",
            get(authorization_server_metadata),
        )
        .route("/oauth/register", post(register))
        .route("/oauth/authorize", get(authorize))
        .route("/oauth/authorize/sign-in", post(sign_in))
        .route("/oauth/authorize/consent", post(consent))
        .route("/oauth/token", post(token))
        .route("/oauth/revoke", post(revoke))
        // The pages' one stylesheet (the settings pages will share it).
        .route(pages::STYLESHEET_PATH, get(stylesheet))
        .layer(DefaultBodyLimit::max(16 * 1024))
        .with_state(app)
}

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        pages::STYLESHEET,
    )
        .into_response()
}

async fn authorization_server_metadata(State(app): State<Arc<App>>) -> Json<serde_json::Value> {
    let base = &app.base_url;
    Json(json!({
        "issuer": base,
        "authorization_endpoint": format!("{base}/oauth/authorize"),
        "token_endpoint": format!("{base}/oauth/token"),
        "registration_endpoint": format!("{base}/oauth/register"),
        "revocation_endpoint": format!("{base}/oauth/revoke"),
        "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["none"],
        "revocation_endpoint_auth_methods_supported": ["none"],
        "scopes_supported": SCOPES.iter().map(|s| s.name).collect::<Vec<_>>(),
        "scope_descriptions": SCOPES.iter().map(|s| (s.name, s.description)).collect::<HashMap<_, _>>(),
        "client_id_metadata_document_supported": true,
        "authorization_response_iss_parameter_supported": true,
    }))
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    wire::Refusal::new(status, error.to_string(), description.to_string()).json()
}

// === registration ===

#[derive(serde::Deserialize)]
struct Registration {
    #[serde(default)]
    client_name: Option<String>,
    #[serde(default)]
    redirect_uris: Vec<String>,
    #[serde(default)]
    token_endpoint_auth_method: Option<String>,
    #[serde(default)]
    grant_types: Option<Vec<String>>,
    #[serde(default)]
    response_types: Option<Vec<String>>,
}

async fn register(
    State(app): State<Arc<App>>,
    addr: ClientAddr,
    body: axum::body::Bytes,
) -> Response {
    // Every attempt counts against the address, valid or not, so what is audited is bounded.
    if let Err(r) = app.oauth.registrations.take(addr.key(), Instant::now()) {
        if r.first {
            let message = format!(
                "registrations from this address refused for {} s (more than {REGISTRATION_BURST} at once or {REGISTRATIONS_PER_HOUR} an hour); further refusals until then are not recorded",
                r.secs()
            );
            audit(
                &app,
                event(events::REGISTER, Outcome::RateLimited, addr, &message),
            )
            .await;
        }
        let description = format!(
            "too many registrations from your address; try again in {}",
            r.wait_text()
        );
        let response = oauth_error(
            StatusCode::TOO_MANY_REQUESTS,
            "temporarily_unavailable",
            &description,
        );
        return retry_after(response, &r);
    }
    match register_client(&app, &body).await {
        Ok(c) => {
            let record = Record {
                principal_kind: Some("client".into()),
                principal_id: Some(c.client_id.clone()),
                principal_name: Some(c.client_name.clone()),
                arguments: Some(json!({"redirect_uris": c.redirect_uris})),
                ..event(events::REGISTER, Outcome::Ok, addr, "client registered")
            };
            audit(&app, record).await;
            (
                StatusCode::CREATED,
                Json(json!({
                    "client_id": c.client_id,
                    "client_name": c.client_name,
                    "client_id_issued_at": chrono::Utc::now().timestamp(),
                    "redirect_uris": c.redirect_uris,
                    "token_endpoint_auth_method": "none",
                    "grant_types": ["authorization_code", "refresh_token"],
                    "response_types": ["code"],
                })),
            )
                .into_response()
        }
        Err(refusal) => {
            let Refusal {
                outcome,
                response,
                why,
            } = *refusal;
            if let Some(why) = why {
                audit(&app, event(events::REGISTER, outcome, addr, &why)).await;
            }
            response
        }
    }
}

/// A refused registration: the answer, and what to audit (nothing for store errors, which are
/// logged).
struct Refusal {
    outcome: Outcome,
    response: Response,
    why: Option<String>,
}

/// Checks a registration and stores the client.
async fn register_client(app: &App, body: &[u8]) -> Result<Client, Box<Refusal>> {
    let invalid = |error: &str, d: &str| {
        Err(Box::new(Refusal {
            outcome: Outcome::Invalid,
            response: oauth_error(StatusCode::BAD_REQUEST, error, d),
            why: Some(format!("refused: {d}")),
        }))
    };
    let Ok(reg) = serde_json::from_slice::<Registration>(body) else {
        return invalid(
            "invalid_client_metadata",
            "the registration must be a JSON object with redirect_uris",
        );
    };
    if let Err(e) = check_redirect_uris(&reg.redirect_uris) {
        return invalid("invalid_redirect_uri", &e);
    }
    if reg
        .token_endpoint_auth_method
        .as_deref()
        .is_some_and(|m| m != "none")
    {
        return invalid(
            "invalid_client_metadata",
            "only public clients are supported: token_endpoint_auth_method must be none",
        );
    }
    if reg.grant_types.as_ref().is_some_and(|g| {
        g.iter()
            .any(|t| t != "authorization_code" && t != "refresh_token")
    }) {
        return invalid(
            "invalid_client_metadata",
            "grant_types may only be authorization_code and refresh_token",
        );
    }
    if reg
        .response_types
        .as_ref()
        .is_some_and(|r| r.iter().any(|t| t != "code"))
    {
        return invalid("invalid_client_metadata", "response_types may only be code");
    }
    if let Some(n) = &reg.client_name
        && let Err(e) = check_client_name(n)
    {
        return invalid("invalid_client_metadata", &e);
    }
    let name: String = reg
        .client_name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .unwrap_or("MCP client")
        .chars()
        .take(100)
        .collect();
    let store_error = |e: &dyn std::fmt::Display| {
        Err(Box::new(Refusal {
            outcome: Outcome::Error,
            response: internal(e),
            why: None,
        }))
    };
    match app.oauth.grants.live_client_count().await {
        Ok(n) if n >= app.oauth.max_clients => {
            return Err(Box::new(Refusal {
                outcome: Outcome::Denied,
                response: oauth_error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "temporarily_unavailable",
                    "the registration limit is reached; ask the administrator",
                ),
                why: Some(format!(
                    "refused: the registration limit ({}) is reached",
                    app.oauth.max_clients
                )),
            }));
        }
        Ok(_) => {}
        Err(e) => return store_error(&e),
    }
    match app
        .oauth
        .grants
        .register_client(&name, &reg.redirect_uris)
        .await
    {
        Ok(c) => Ok(c),
        Err(e) => store_error(&e),
    }
}

fn internal(e: &dyn std::fmt::Display) -> Response {
    wire::Refusal::internal(e).json()
}

/// A store failure during a sign-in page's step: logged; the person is asked to try again.
pub(crate) fn page_internal(e: &dyn std::fmt::Display) -> Response {
    wire::Refusal::internal(e)
        .saying("flowgate could not complete this step. Try again in a moment.")
        .page()
}

// === authorize ===

async fn find_client(app: &App, client_id: &str) -> Result<Client, String> {
    if app.oauth.cimd.is_document_url(client_id) {
        return app.oauth.cimd.client(client_id).await;
    }
    match app.oauth.grants.client(client_id).await {
        Ok(Some(c)) => Ok(c),
        Ok(None) => Err("this application is not registered with flowgate".into()),
        Err(e) => Err(e.to_string()),
    }
}

pub(crate) fn redirect_host(uri: &str) -> String {
    reqwest::Url::parse(uri)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_default()
}

/// Sends the user back to the client with an error (only once the redirect URI is trusted).
fn error_redirect(
    app: &App,
    redirect_uri: &str,
    state: Option<&str>,
    error: &str,
    description: &str,
) -> Response {
    let mut url = match reqwest::Url::parse(redirect_uri) {
        Ok(u) => u,
        Err(_) => return wire::Refusal::bad_request(description.to_string()).page(),
    };
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("error", error);
        q.append_pair("error_description", description);
        if let Some(s) = state {
            q.append_pair("state", s);
        }
        q.append_pair("iss", &app.base_url);
    }
    Redirect::to(url.as_str()).into_response()
}

async fn authorize(
    State(app): State<Arc<App>>,
    addr: ClientAddr,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let page_error = |m: &str| wire::Refusal::bad_request(m.to_string()).page();
    if let Err(refused) = app.oauth.flows_started.take(addr.key(), Instant::now()) {
        return wire::Refusal::too_many(
            format!(
                "Too many sign-ins were started from your network. Try again in {}.",
                refused.wait_text()
            ),
            refused.retry_after,
        )
        .page();
    }
    let Some(client_id) = q.get("client_id") else {
        return page_error(
            "The request does not say which application is asking (client_id is missing).",
        );
    };
    let client = match find_client(&app, client_id).await {
        Ok(c) => c,
        Err(e) => return page_error(&format!("The application could not be verified: {e}.")),
    };
    let Some(redirect_uri) = q.get("redirect_uri") else {
        return page_error("The request has no redirect_uri.");
    };
    if !client
        .redirect_uris
        .iter()
        .any(|r| redirect_matches(r, redirect_uri))
    {
        return page_error("The redirect_uri is not one this application registered.");
    }
    let state = q.get("state").map(String::as_str);
    if state.is_some_and(|s| s.len() > flows::MAX_STATE) {
        return page_error(&format!(
            "The request's state is longer than {} characters.",
            flows::MAX_STATE
        ));
    }
    let fail = |error: &str, d: &str| error_redirect(&app, redirect_uri, state, error, d);
    if q.get("response_type").map(String::as_str) != Some("code") {
        return fail("unsupported_response_type", "response_type must be code");
    }
    let Some(challenge) = q
        .get("code_challenge")
        .filter(|c| (43..=128).contains(&c.len()))
    else {
        return fail(
            "invalid_request",
            "PKCE is required: send a code_challenge (S256)",
        );
    };
    if q.get("code_challenge_method").map(String::as_str) != Some("S256") {
        return fail(
            "invalid_request",
            "only the S256 code_challenge_method is supported",
        );
    }
    if let Some(resource) = q.get("resource")
        && resource.trim_end_matches('/') != app.mcp_url()
    {
        return fail(
            "invalid_target",
            "resource must be this server's MCP endpoint",
        );
    }
    let requested: BTreeSet<String> = match q.get("scope") {
        None => SCOPES.iter().map(|s| s.name.to_string()).collect(),
        Some(s) => s
            .split(' ')
            .filter(|x| !x.is_empty())
            .map(str::to_string)
            .collect(),
    };
    if let Some(unknown) = requested
        .iter()
        .find(|s| !SCOPES.iter().any(|d| d.name == s.as_str()))
    {
        return fail("invalid_scope", &format!("unknown scope {unknown}"));
    }
    if requested.is_empty() {
        return fail("invalid_scope", "no scope was requested");
    }
    let csrf = grants::random_token("");
    let flow = Flow {
        csrf: csrf.clone(),
        client_id: client.client_id.clone(),
        client_name: client.client_name.clone(),
        redirect_uri: redirect_uri.clone(),
        state: state.map(str::to_string),
        code_challenge: challenge.clone(),
        requested,
        user: None,
    };
    let flow_id = match app.oauth.flows.start(&flow).await {
        Ok(Some(id)) => id,
        Ok(None) => {
            tracing::warn!(
                max = flows::MAX_FLOWS,
                "refused a sign-in: too many are in progress"
            );
            return wire::Refusal::unavailable(
                "Too many sign-ins are in progress right now. Try again in a few minutes.",
            )
            .retry_after(Duration::from_secs(60))
            .page();
        }
        Err(e) => return page_internal(&e),
    };
    let host = redirect_host(redirect_uri);
    let html = pages::render(&pages::SignIn {
        flow: &flow_id,
        csrf: &csrf,
        client: pages::ClientView {
            name: &client.client_name,
            host: &host,
            verified_by: None,
        },
        error: None,
        email: "",
    });
    with_csrf_cookie(Html(html).into_response(), &csrf)
}

fn with_csrf_cookie(mut r: Response, csrf: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{CSRF_COOKIE}={csrf}; Path=/oauth; HttpOnly; SameSite=Strict; Max-Age=600"
    )) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r.headers_mut()
        .insert("X-Frame-Options", HeaderValue::from_static("DENY"));
    r
}

pub(crate) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// Form fields; repeated names (the scope checkboxes) are kept in order.
pub(crate) fn form(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

pub(crate) fn field<'a>(f: &'a [(String, String)], name: &str) -> Option<&'a str> {
    f.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// The answer to a form whose flow is not (or no longer) live.
fn flow_expired() -> Response {
    wire::Refusal::forbidden(
        "This sign-in has expired. Go back to your assistant and connect again.",
    )
    .page()
}

/// The flow a form belongs to (read from the store: any replica may have started it), if its
/// CSRF token matches both the flow and the cookie.
async fn checked_flow(
    app: &App,
    headers: &HeaderMap,
    f: &[(String, String)],
) -> Result<(String, Flow), Response> {
    let forbidden = |m: &str| wire::Refusal::forbidden(m.to_string()).page();
    let flow_id = field(f, "flow").unwrap_or_default().to_string();
    let flow = match app.oauth.flows.get(&flow_id).await {
        Ok(Some(flow)) => flow,
        Ok(None) => return Err(flow_expired()),
        Err(e) => return Err(page_internal(&e)),
    };
    let csrf = field(f, "csrf").unwrap_or_default();
    let from_cookie = cookie(headers, CSRF_COOKIE).unwrap_or_default();
    if csrf.is_empty() || csrf != flow.csrf || from_cookie != flow.csrf {
        return Err(forbidden(
            "The form could not be verified (its security token is missing or wrong). Start again from your assistant.",
        ));
    }
    Ok((flow_id, flow))
}

async fn sign_in(
    State(app): State<Arc<App>>,
    addr: ClientAddr,
    headers: HeaderMap,
    RawForm(body): RawForm,
) -> Response {
    let f = form(&body);
    let (flow_id, mut flow) = match checked_flow(&app, &headers, &f).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let email = field(&f, "email").unwrap_or_default().trim().to_string();
    let password = field(&f, "password").unwrap_or_default();
    let host = redirect_host(&flow.redirect_uri);
    let page = |status: StatusCode, error: &str| {
        let html = pages::render(&pages::SignIn {
            flow: &flow_id,
            csrf: &flow.csrf,
            client: pages::ClientView {
                name: &flow.client_name,
                host: &host,
                verified_by: None,
            },
            error: Some(error),
            email: &email,
        });
        with_csrf_cookie((status, Html(html)).into_response(), &flow.csrf)
    };
    let signed = match check_password(&app, addr, &email, password, events::SIGN_IN).await {
        Ok(signed) => signed,
        Err(refused) => return refused.answer(page),
    };
    let record = Record {
        arguments: Some(json!({"client_id": flow.client_id, "role": signed.role})),
        ..user_event(
            events::SIGN_IN,
            &signed,
            Outcome::Ok,
            &format!("signed in to authorize {}", flow.client_name),
            addr,
        )
    };
    audit(&app, record).await;
    match app.oauth.flows.signed_in(&flow_id, &signed).await {
        Ok(true) => {}
        // Approved or denied meanwhile (another tab, another replica), or expired.
        Ok(false) => return flow_expired(),
        Err(e) => return page_internal(&e),
    }
    flow.user = Some(signed);
    let may = ceiling(&app, &flow);
    consent_page(&app, &flow_id, &flow, &may, None)
}

/// Why a password check gave no user, as a sign-in page answers it.
pub(crate) enum SignInRefused {
    /// Wrong e-mail or password, or an answer flowgate cannot use: 401, and the page says so.
    Again(&'static str),
    /// A limit: 429 with `Retry-After`, and the page says when to try again.
    Limited(String, Refused),
    /// The store failed: the error page.
    Broken(Response),
}

impl SignInRefused {
    /// The answer: `page(status, error)` renders the sign-in page again with `error` on it.
    pub(crate) fn answer(self, page: impl Fn(StatusCode, &str) -> Response) -> Response {
        match self {
            Self::Again(text) => page(StatusCode::UNAUTHORIZED, text),
            Self::Limited(text, r) => retry_after(page(StatusCode::TOO_MANY_REQUESTS, &text), &r),
            Self::Broken(r) => r,
        }
    }
}

/// The audit row of a studio user's sign-in or page action: the user is the principal.
pub(crate) fn user_event(
    tool: &str,
    user: &SignedIn,
    outcome: Outcome,
    message: &str,
    addr: ClientAddr,
) -> Record {
    Record {
        studio: Some(user.studio_id.clone()),
        principal_kind: Some("user".into()),
        principal_id: Some(user.user_id.clone()),
        principal_name: Some(account_key(&user.email)),
        ..event(tool, outcome, addr, message)
    }
}

/// Checks an e-mail and password with the studio platform (`POST /auth/sign-in` upstream),
/// within the sign-in limits: failures per account (in the store, shared by every replica) and
/// per address with a growing back-off, and a few checks at once. Failures and refusals are
/// audited under `tool`; the caller audits the success as it sees fit.
pub(crate) async fn check_password(
    app: &App,
    addr: ClientAddr,
    email: &str,
    password: &str,
    tool: &str,
) -> Result<SignedIn, SignInRefused> {
    let account = account_key(email);
    let failure = |outcome: Outcome, message: &str| Record {
        principal_kind: Some("user".into()),
        principal_name: Some(account.clone()),
        ..event(tool, outcome, addr, message)
    };
    let broken = |e: &dyn std::fmt::Display| SignInRefused::Broken(page_internal(e));

    // Limits first: a refused attempt never reaches the upstream. They are checked again once
    // a check may start, since failures may have been counted while this attempt waited.
    let limits = async || app.oauth.sign_in.refusal(&account, addr).await;
    let mut refusal = limits().await.map_err(|e| broken(&e))?;
    let mut permit = None;
    if refusal.is_none() {
        match app.oauth.sign_in.checks.enter().await {
            Ok(p) => permit = Some(p),
            Err(r) => {
                let text = format!(
                    "Many sign-ins are being checked right now. Try again in {}.",
                    r.wait_text()
                );
                return Err(SignInRefused::Limited(text, r));
            }
        }
        refusal = limits().await.map_err(|e| broken(&e))?;
    }
    if let Some((r, on_page, in_log)) = refusal {
        // One row per back-off period, not one per refused attempt.
        if r.first {
            let message = format!(
                "refused without checking the password: too many failed sign-ins from {in_log}; further attempts in the next {} s are refused without a record",
                r.secs()
            );
            audit(app, failure(Outcome::RateLimited, &message)).await;
        }
        let text = format!(
            "Too many failed sign-ins from {on_page}. Try again in {}.",
            r.wait_text()
        );
        return Err(SignInRefused::Limited(text, r));
    }
    let answer = app.upstream.sign_in(email, password).await;
    // The check's slot is given back only once a failure is counted: an attempt waiting for the
    // slot then sees it when it checks the limits again.
    let user = match answer {
        Ok(v) => v,
        Err(crate::upstream::UpstreamError::Rejected {
            status: 401 | 400, ..
        }) => {
            app.oauth
                .sign_in
                .addresses
                .failed(addr.key(), Instant::now());
            let counted = app
                .oauth
                .sign_in
                .accounts
                .failed(&account, Timestamp::now())
                .await;
            drop(permit);
            counted.map_err(|e| broken(&e))?;
            audit(
                app,
                failure(
                    Outcome::Unauthenticated,
                    "sign-in failed: wrong e-mail or password",
                ),
            )
            .await;
            return Err(SignInRefused::Again(
                "That e-mail and password do not match a studio account.",
            ));
        }
        Err(e) => {
            drop(permit);
            tracing::warn!(error = %e, "sign-in through the upstream failed");
            return Err(SignInRefused::Again(
                "Your studio's platform could not be reached. Try again in a moment.",
            ));
        }
    };
    drop(permit);
    let s = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
    let signed = SignedIn {
        user_id: s(&user["user_id"]),
        email: s(&user["email"]),
        name: s(&user["name"]),
        studio_id: s(&user["studio"]["id"]),
        studio_name: s(&user["studio"]["name"]),
        role: user["role"].as_str().map(str::to_string),
    };
    if signed.studio_id.is_empty() || signed.user_id.is_empty() {
        return Err(SignInRefused::Again(
            "Your studio's platform gave an answer flowgate cannot use.",
        ));
    }
    app.oauth
        .sign_in
        .accounts
        .reset(&account)
        .await
        .map_err(|e| broken(&e))?;
    Ok(signed)
}

/// The studio user of a signed-in flow, as the role policies see them.
fn role_user(user: &SignedIn) -> roles::User<'_> {
    roles::User {
        id: &user.user_id,
        studio: &user.studio_id,
        role: user.role.as_deref(),
    }
}

/// The scopes of `flow` the signed-in user may grant.
fn ceiling(app: &App, flow: &Flow) -> BTreeSet<String> {
    let Some(user) = &flow.user else {
        return BTreeSet::new();
    };
    let may = app.oauth.roles.ceiling(role_user(user));
    flow.requested.intersection(&may).cloned().collect()
}

/// The consent page of a signed-in flow with `ticked` chosen; `error` says why the last answer
/// was not taken (and makes the answer 403).
fn consent_page(
    app: &App,
    flow_id: &str,
    flow: &Flow,
    ticked: &BTreeSet<String>,
    error: Option<String>,
) -> Response {
    let Some(user) = flow.user.as_ref() else {
        return wire::Refusal::forbidden("Sign in first.").page();
    };
    let host = redirect_host(&flow.redirect_uri);
    let publisher = app
        .oauth
        .cimd
        .is_document_url(&flow.client_id)
        .then(|| redirect_host(&flow.client_id));
    let rows = pages::resource_rows(&flow.requested, ticked, |scope| {
        match app.oauth.roles.may_grant(role_user(user), scope) {
            roles::Verdict::Allowed => None,
            roles::Verdict::Refused(why) => Some(why),
        }
    });
    let limit = pages::limit(&rows);
    let role = role_title(user);
    let status = if error.is_some() {
        StatusCode::FORBIDDEN
    } else {
        StatusCode::OK
    };
    let html = pages::render(&pages::Consent {
        flow: flow_id,
        csrf: &flow.csrf,
        client: pages::ClientView {
            name: &flow.client_name,
            host: &host,
            verified_by: publisher.as_deref(),
        },
        user_name: &user.name,
        user_email: &user.email,
        studio: &user.studio_name,
        role: &role,
        error,
        rows,
        limit,
    });
    with_csrf_cookie((status, Html(html)).into_response(), &flow.csrf)
}

/// The user's role as the pages show it.
fn role_title(user: &SignedIn) -> String {
    match user.role.as_deref() {
        Some(r) => Role::parse(r).map_or_else(|| format!("role \"{r}\""), |r| r.title().into()),
        None => "no role".into(),
    }
}

/// What a consent form chose: its `scope` fields (one per scope) and its `access.<resource>`
/// radio buttons (`none`, `read`, `write`), within what was requested. An unknown choice is an
/// error.
pub(crate) fn chosen(
    f: &[(String, String)],
    requested: &BTreeSet<String>,
) -> Result<BTreeSet<String>, String> {
    let mut out: BTreeSet<String> = f
        .iter()
        .filter(|(k, _)| k == "scope")
        .map(|(_, v)| v.clone())
        .filter(|s| requested.contains(s))
        .collect();
    for (k, v) in f {
        let Some(resource) = k.strip_prefix("access.") else {
            continue;
        };
        match pages::choice_scopes(resource, v, requested) {
            Some(scopes) => out.extend(scopes),
            None => {
                return Err(format!(
                    "The form's choice for {resource} ({v}) is not one flowgate offers. Choose again."
                ));
            }
        }
    }
    Ok(out)
}

async fn consent(
    State(app): State<Arc<App>>,
    addr: ClientAddr,
    headers: HeaderMap,
    RawForm(body): RawForm,
) -> Response {
    let f = form(&body);
    let (flow_id, flow) = match checked_flow(&app, &headers, &f).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let sign_in_first = || wire::Refusal::forbidden("Sign in first.").page();
    let Some(user) = flow.user.clone() else {
        return sign_in_first();
    };
    let may = ceiling(&app, &flow);
    let action = field(&f, "action").unwrap_or("approve");
    if let Some(preset) = action.strip_prefix("preset:") {
        let ticked = pages::preset(preset, &flow.requested);
        let ticked = ticked.intersection(&may).cloned().collect();
        return consent_page(&app, &flow_id, &flow, &ticked, None);
    }
    let ticked = match chosen(&f, &flow.requested) {
        Ok(t) => t,
        Err(e) => return consent_page(&app, &flow_id, &flow, &may, Some(e)),
    };
    // Above the user's role: refused whole, not trimmed, so the person never believes an
    // assistant holds what it does not. Nothing is granted and the flow stays, so they can
    // choose again; the attempt is audited.
    let above: Vec<&String> = ticked.difference(&may).collect();
    if action != "deny" && !above.is_empty() {
        let why = match app.oauth.roles.may_grant(role_user(&user), above[0]) {
            roles::Verdict::Refused(why) => why,
            roles::Verdict::Allowed => String::new(),
        };
        let list = above
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        let record = Record {
            studio: Some(user.studio_id.clone()),
            principal_kind: Some("user".into()),
            principal_id: Some(user.user_id.clone()),
            principal_name: Some(user.email.clone()),
            arguments: Some(json!({
                "client_id": flow.client_id,
                "role": user.role,
                "scopes": ticked,
                "above_role": above,
            })),
            ..event(
                events::CONSENT,
                Outcome::Denied,
                addr,
                &format!(
                    "{} tried to grant {} scopes above their role ({}): {list}",
                    user.email,
                    flow.client_name,
                    role_title(&user)
                ),
            )
        };
        audit(&app, record).await;
        let capped = ticked.intersection(&may).cloned().collect();
        let message = format!("Not granted: {list}. {why} Nothing was granted; choose again.");
        return consent_page(&app, &flow_id, &flow, &capped, Some(message));
    }
    if action != "deny" && ticked.is_empty() {
        return consent_page(&app, &flow_id, &flow, &ticked, None);
    }
    // The flow is used up, whichever way the answer goes: a replayed form (on this replica or
    // another) finds it gone and cannot mint a second code. What was taken is what is granted.
    let flow = match app.oauth.flows.take(&flow_id).await {
        Ok(Some(flow)) => flow,
        Ok(None) => return flow_expired(),
        Err(e) => return page_internal(&e),
    };
    let Some(user) = flow.user.clone() else {
        return sign_in_first();
    };
    // Checked again on what was taken: another tab may have signed in as someone else since.
    if action != "deny" && !ticked.is_subset(&ceiling(&app, &flow)) {
        return wire::Refusal::forbidden(
            "Someone else signed in during this sign-in, so nothing was granted. Go back to your assistant and connect again.",
        )
        .page();
    }
    if action == "deny" {
        let record = Record {
            studio: Some(user.studio_id.clone()),
            principal_kind: Some("user".into()),
            principal_id: Some(user.user_id.clone()),
            principal_name: Some(user.email.clone()),
            arguments: Some(json!({"client_id": flow.client_id, "requested": flow.requested})),
            ..event(
                events::CONSENT,
                Outcome::Denied,
                addr,
                &format!("{} denied access to {}", user.email, flow.client_name),
            )
        };
        audit(&app, record).await;
        return error_redirect(
            &app,
            &flow.redirect_uri,
            flow.state.as_deref(),
            "access_denied",
            "the studio owner denied the request",
        );
    }
    let grant = NewGrant {
        studio: &user.studio_id,
        user_id: &user.user_id,
        user_email: &user.email,
        client_id: &flow.client_id,
        client_name: &flow.client_name,
        scopes: &ticked,
        resource: &app.mcp_url(),
        redirect_uri: &flow.redirect_uri,
        code_challenge: &flow.code_challenge,
    };
    let code = match app.oauth.grants.approve(&grant).await {
        Ok((id, code)) => {
            let granted = grants::GrantRef {
                id,
                studio: user.studio_id.clone(),
                client_name: flow.client_name.clone(),
            };
            let mut record = grant_event(
                events::CONSENT,
                Outcome::Ok,
                addr,
                &granted,
                &format!(
                    "{} approved {}: {}",
                    user.email,
                    flow.client_name,
                    ticked.iter().cloned().collect::<Vec<_>>().join(" ")
                ),
            );
            record.arguments = Some(json!({
                "client_id": flow.client_id,
                "user": user.email,
                "user_id": user.user_id,
                "role": user.role,
                "scopes": ticked,
                "requested": flow.requested,
            }));
            audit(&app, record).await;
            code
        }
        Err(e) => return internal(&e),
    };
    let mut url = match reqwest::Url::parse(&flow.redirect_uri) {
        Ok(u) => u,
        Err(_) => return wire::Refusal::bad_request("The redirect URI is not valid.").page(),
    };
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("code", &code);
        if let Some(s) = &flow.state {
            q.append_pair("state", s);
        }
        q.append_pair("iss", &app.base_url);
    }
    Redirect::to(url.as_str()).into_response()
}

// === token and revocation ===

/// The form body of the token and revocation endpoints, fields in order. A body these endpoints
/// cannot read (another content type, too large) is refused like every other mistake there: with
/// a JSON OAuth error (`invalid_request`), not axum's plain-text rejection.
struct OAuthForm(Vec<(String, String)>);

impl<S: Send + Sync> FromRequest<S> for OAuthForm {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Response> {
        match RawForm::from_request(req, state).await {
            Ok(RawForm(body)) => Ok(Self(form(&body))),
            Err(e) => Err(oauth_error(e.status(), "invalid_request", &e.body_text())),
        }
    }
}

async fn token(State(app): State<Arc<App>>, addr: ClientAddr, OAuthForm(f): OAuthForm) -> Response {
    let client_id = field(&f, "client_id").unwrap_or_default();
    if client_id.is_empty() {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client_id is required",
        );
    }
    let resource = field(&f, "resource");
    let (tool, outcome) = match field(&f, "grant_type") {
        Some("authorization_code") => {
            let (Some(code), Some(redirect_uri), Some(verifier)) = (
                field(&f, "code"),
                field(&f, "redirect_uri"),
                field(&f, "code_verifier"),
            ) else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "code, redirect_uri and code_verifier are required",
                );
            };
            let outcome = app
                .oauth
                .grants
                .exchange_code(code, client_id, redirect_uri, verifier, resource)
                .await;
            (events::TOKEN, outcome)
        }
        Some("refresh_token") => {
            let Some(refresh) = field(&f, "refresh_token") else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "refresh_token is required",
                );
            };
            let outcome = app.oauth.grants.refresh(refresh, client_id, resource).await;
            (events::REFRESH, outcome)
        }
        _ => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "grant_type must be authorization_code or refresh_token",
            );
        }
    };
    let outcome = match outcome {
        Ok(o) => o,
        Err(e) => return internal(&e),
    };
    // Only codes and tokens the store knows are audited: guesses concern no grant, and a flood
    // of them must not grow the log.
    if let Some(grant) = &outcome.grant {
        let record = match &outcome.result {
            Ok(t) => grant_event(
                tool,
                Outcome::Ok,
                addr,
                grant,
                &format!("tokens issued: {}", t.scopes.join(" ")),
            ),
            Err(TokenError::Reused(_)) => {
                let what = if tool == events::TOKEN {
                    "authorization code"
                } else {
                    "refresh token"
                };
                grant_event(
                    events::REUSE,
                    Outcome::Denied,
                    addr,
                    grant,
                    &format!("{what} used a second time: the grant is revoked"),
                )
            }
            Err(e) => grant_event(
                tool,
                Outcome::Invalid,
                addr,
                grant,
                &format!("refused: {e}"),
            ),
        };
        audit(&app, record).await;
    }
    match outcome.result {
        Ok(t) => {
            let mut r = Json(json!({
                "access_token": t.access_token,
                "token_type": "Bearer",
                "expires_in": t.expires_in,
                "refresh_token": t.refresh_token,
                "scope": t.scopes.join(" "),
            }))
            .into_response();
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        Err(TokenError::InvalidGrant(d) | TokenError::Reused(d)) => {
            oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", &d)
        }
        Err(TokenError::InvalidTarget(d)) => {
            oauth_error(StatusCode::BAD_REQUEST, "invalid_target", &d)
        }
    }
}

async fn revoke(
    State(app): State<Arc<App>>,
    addr: ClientAddr,
    OAuthForm(f): OAuthForm,
) -> Response {
    let Some(token) = field(&f, "token") else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "token is required",
        );
    };
    // RFC 7009: the answer is the same whether or not the token was known; only a revocation
    // that happened is audited.
    match app.oauth.grants.revoke_token(token).await {
        Ok(Some(grant)) => {
            let message = "the client revoked the grant";
            audit(
                &app,
                grant_event(events::REVOKE, Outcome::Ok, addr, &grant, message),
            )
            .await;
            StatusCode::OK.into_response()
        }
        Ok(None) => StatusCode::OK.into_response(),
        Err(e) => internal(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::redirect_matches;

    #[test]
    fn a_loopback_redirect_matches_on_any_port_and_nothing_else_moves() {
        let registered = "http://127.0.0.1:33418/oauth/callback";
        for ok in [
            registered,
            "http://127.0.0.1:50123/oauth/callback",
            "http://127.0.0.1/oauth/callback",
        ] {
            assert!(redirect_matches(registered, ok), "{ok}");
        }
        for refused in [
            "http://127.0.0.1:50123/oauth/other",
            "http://127.0.0.1:50123/oauth/callback?x=1",
            "http://localhost:50123/oauth/callback",
            "http://[::1]:50123/oauth/callback",
            "https://127.0.0.1:50123/oauth/callback",
            "http://user@127.0.0.1:50123/oauth/callback",
            "http://127.0.0.1.evil.example:50123/oauth/callback",
        ] {
            assert!(!redirect_matches(registered, refused), "{refused}");
        }
        assert!(redirect_matches(
            "http://localhost:1/cb",
            "http://localhost:2/cb"
        ));
        assert!(redirect_matches("http://[::1]:1/cb", "http://[::1]:2/cb"));
        // Not loopback: exactly as registered, port included.
        assert!(!redirect_matches(
            "https://app.example/cb",
            "https://app.example:8443/cb"
        ));
        assert!(!redirect_matches(
            "http://192.168.1.10:1/cb",
            "http://192.168.1.10:2/cb"
        ));
    }
}
