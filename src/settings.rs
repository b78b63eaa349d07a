//! The studio owner's settings pages: **Developer** (secret keys), **Connected apps** (OAuth
//! grants) and the **Audit log**, server-rendered from askama templates (`templates/settings/`)
//! in the layout and stylesheet of the sign-in and consent pages.
//!
//! Contract:
//! - Sign-in is the OAuth sign-in's password check (`oauth::check_password`: the studio
//!   platform's `POST /auth/sign-in`, the same per-account and per-address limits). It opens a
//!   session: a row in the store ([`crate::store::settings`]) found by a SHA-256 of the cookie's
//!   secret, so any replica serves any page and signing out ends it on all of them at once. A
//!   session ends after [`Config::settings_idle_secs`] without a page view and
//!   [`Config::settings_max_secs`] after sign-in.
//! - The cookie is `HttpOnly`, `SameSite=Lax`, and `Secure` with the `__Host-` prefix when the
//!   gateway's public URL is https.
//! - Every form carries the session's CSRF token (and a sign-in form the token of its own
//!   cookie); a form without it, or sent from another origin, changes nothing.
//! - Every page and form asks the role policies ([`crate::roles`]) whether the signed-in user
//!   may do it, and every store operation is scoped to their studio ([`Within::Studio`]): an id
//!   of another studio's key or grant is "not found".
//! - Every change is audited (`settings.*` tools) with the studio user as the principal.
//! - Pages carry a Content-Security-Policy without inline script (the copy button's script is
//!   `/assets/flowgate.js`), `frame-ancestors 'none'`, and `Cache-Control: no-store`.
//!
//! [`Config::settings_idle_secs`]: crate::config::Config::settings_idle_secs
//! [`Config::settings_max_secs`]: crate::config::Config::settings_max_secs

pub mod apps;
pub mod audit_log;
pub mod chart;
pub mod developer;

use std::sync::Arc;

use askama::Template;
use axum::Router;
use axum::extract::{FromRequestParts, Query, RawForm, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use crate::app::App;
use crate::audit::{Outcome, Record};
use crate::identity::{random_secret, secret_hash};
use crate::oauth::flows::SignedIn;
use crate::oauth::limits::ClientAddr;
use crate::oauth::pages::render;
use crate::oauth::{self, cookie, field, form};
use crate::roles::{self, Role, SettingsAction, Verdict};
use crate::store::Timestamp;
use crate::store::settings::SettingsSessionRow;

/// The `tool` of the settings pages' rows in the audit log.
pub mod events {
    /// A sign-in to the settings pages (failures are `oauth.sign_in`'s, whichever page).
    pub const SIGN_IN: &str = "settings.sign_in";
    pub const SIGN_OUT: &str = "settings.sign_out";
    pub const KEY_CREATE: &str = "settings.key_create";
    pub const KEY_ROTATE: &str = "settings.key_rotate";
    pub const KEY_REVOKE: &str = "settings.key_revoke";
    pub const APP_DISCONNECT: &str = "settings.app_disconnect";
    /// A form refused because the user's role does not allow it.
    pub const REFUSED: &str = "settings.refused";
}

/// The pages, in the order of the header's links.
pub const DEVELOPER: &str = "/settings/developer";
pub const CONNECTED_APPS: &str = "/settings/connected-apps";
pub const AUDIT_LOG: &str = "/settings/audit-log";
const SIGN_IN: &str = "/settings/sign-in";
const SIGN_OUT: &str = "/settings/sign-out";

/// The script of the copy button (the only script of the pages).
pub const SCRIPT: &str = include_str!("../templates/flowgate.js");
pub const SCRIPT_PATH: &str = "/assets/flowgate.js";

/// What the pages may load and where they may be shown: nothing inline, nothing framed.
const CSP: &str = "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; \
    form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The sign-in form's cookie (login CSRF), valid for ten minutes.
const SIGN_IN_COOKIE: &str = "flowgate_settings_sign_in";

/// The settings routes.
pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/settings", get(home))
        .route("/settings/", get(home))
        .route(SIGN_IN, get(sign_in_page).post(sign_in))
        .route(SIGN_OUT, post(sign_out))
        .route(DEVELOPER, get(developer::page))
        .route("/settings/developer/keys", post(developer::create))
        .route(
            "/settings/developer/keys/{id}/{change}",
            get(developer::confirm_change).post(developer::change),
        )
        .route(CONNECTED_APPS, get(apps::page))
        .route(
            "/settings/connected-apps/{id}/disconnect",
            get(apps::confirm_disconnect).post(apps::disconnect),
        )
        .route(AUDIT_LOG, get(audit_log::page))
        .route("/settings/audit-log/export.csv", get(audit_log::export_csv))
        .route(
            "/settings/audit-log/export.json",
            get(audit_log::export_json),
        )
        .route(SCRIPT_PATH, get(script))
        .layer(middleware::from_fn(security_headers))
        .with_state(app)
}

async fn script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        SCRIPT,
    )
        .into_response()
}

/// The headers of every settings answer: the CSP, no framing, no sniffing, no referrer to other
/// sites, and
/// nothing cached (pages show secrets once and the studio's data always).
async fn security_headers(req: Request, next: Next) -> Response {
    let mut r = next.run(req).await;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        // Not `no-referrer`: with it, browsers send `Origin: null` on the pages' own forms, and
        // the origin check needs the real one. Other sites still get no referrer.
        HeaderValue::from_static("same-origin"),
    );
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    r
}

/// Whether the gateway is reached over https (then cookies are `Secure` and `__Host-`).
fn secure(app: &App) -> bool {
    app.base_url.starts_with("https://")
}

/// The session cookie's name.
fn session_cookie(app: &App) -> &'static str {
    if secure(app) {
        "__Host-flowgate_settings"
    } else {
        "flowgate_settings"
    }
}

/// A `Set-Cookie` value; `max_age` 0 deletes it.
fn set_cookie(app: &App, name: &str, value: &str, max_age: u64) -> Option<HeaderValue> {
    let (path, secure) = if secure(app) {
        ("/", "; Secure")
    } else {
        ("/settings", "")
    };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path={path}; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}"
    ))
    .ok()
}

fn with_cookie(mut r: Response, cookie: Option<HeaderValue>) -> Response {
    if let Some(c) = cookie {
        r.headers_mut().append(header::SET_COOKIE, c);
    }
    r
}

/// Compares two secrets without leaking where they differ.
fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// A page, as HTML with `status`.
pub fn html(status: StatusCode, t: &impl Template) -> Response {
    (status, Html(render(t))).into_response()
}

/// A signed-in browser: the studio user, and the token its forms must carry.
#[derive(Debug, Clone)]
pub struct Session {
    pub user: SignedIn,
    pub csrf: String,
    token_hash: String,
}

impl Session {
    fn of(row: SettingsSessionRow) -> Self {
        Self {
            user: SignedIn {
                user_id: row.user_id,
                email: row.user_email,
                name: row.user_name,
                studio_id: row.studio,
                studio_name: row.studio_name,
                role: row.user_role,
            },
            csrf: row.csrf,
            token_hash: row.token_hash,
        }
    }

    /// The user as the role policies see them.
    pub fn role_user(&self) -> roles::User<'_> {
        roles::User {
            id: &self.user.user_id,
            studio: &self.user.studio_id,
            role: self.user.role.as_deref(),
        }
    }

    /// Whether the user's role allows `action`.
    pub fn may(&self, app: &App, action: SettingsAction) -> Verdict {
        app.oauth.roles.may(self.role_user(), action)
    }

    /// The header of the pages for this user, on page `current`.
    pub fn head(&self, app: &App, current: &'static str) -> Head {
        let links = [
            (DEVELOPER, "Developer", SettingsAction::ViewKeys),
            (
                CONNECTED_APPS,
                "Connected apps",
                SettingsAction::ViewConnectedApps,
            ),
            (AUDIT_LOG, "Audit log", SettingsAction::ViewAuditLog),
        ];
        Head {
            studio: self.user.studio_name.clone(),
            user_name: self.user.name.clone(),
            user_email: self.user.email.clone(),
            role: role_title(self.user.role.as_deref()),
            csrf: self.csrf.clone(),
            links: links
                .into_iter()
                .filter(|(_, _, action)| self.may(app, *action).is_allowed())
                .map(|(href, label, _)| Link {
                    href,
                    label,
                    current: href == current,
                })
                .collect(),
        }
    }

    /// The audit row of an action of this user's on the pages.
    pub fn event(&self, tool: &str, outcome: Outcome, message: &str, addr: ClientAddr) -> Record {
        oauth::user_event(tool, &self.user, outcome, message, addr)
    }

    /// The page that says the user's role does not allow `action` (403), or `None` when it does.
    pub fn refused(
        &self,
        app: &App,
        action: SettingsAction,
        current: &'static str,
    ) -> Option<Response> {
        match self.may(app, action) {
            Verdict::Allowed => None,
            Verdict::Refused(why) => Some(self.problem(
                app,
                current,
                StatusCode::FORBIDDEN,
                "Not available for your role",
                &format!("{} {why}", what_it_is(action)),
            )),
        }
    }

    /// The confirmation step of a change that cannot be undone: what it does, and the button
    /// that posts it to `action`.
    pub fn confirm(
        &self,
        app: &App,
        current: &'static str,
        title: &str,
        message: &str,
        action: &str,
        button: &str,
    ) -> Response {
        html(
            StatusCode::OK,
            &Confirm {
                head: self.head(app, current),
                title,
                message,
                action,
                button,
                back: current,
            },
        )
    }

    /// [`Session::refused`] for a form (a change): a refusal is also audited
    /// (`settings.refused`), since a page never offers it and a person posted it anyway.
    pub async fn refused_form(
        &self,
        app: &App,
        action: SettingsAction,
        current: &'static str,
        doing: &str,
        addr: ClientAddr,
    ) -> Option<Response> {
        let r = self.refused(app, action, current)?;
        let message = format!("refused: {doing} is not allowed for the user's role");
        oauth::audit(
            app,
            self.event(events::REFUSED, Outcome::Denied, &message, addr),
        )
        .await;
        Some(r)
    }

    /// A problem shown within the pages' layout.
    pub fn problem(
        &self,
        app: &App,
        current: &'static str,
        status: StatusCode,
        title: &str,
        message: &str,
    ) -> Response {
        html(
            status,
            &Problem {
                head: self.head(app, current),
                title,
                message,
            },
        )
    }

    /// The fields of a form this session's page sent: its CSRF token must be this session's,
    /// and a browser's `Origin`, when it sends one, the gateway's own.
    pub fn form(
        &self,
        app: &App,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Vec<(String, String)>, Box<Response>> {
        let f = form(body);
        let token = field(&f, "csrf").unwrap_or_default();
        if !same_origin(app, headers) || token.is_empty() || !same_secret(token, &self.csrf) {
            return Err(Box::new(form_not_verified()));
        }
        Ok(f)
    }
}

/// What a settings permission covers, as the refusal page says it.
fn what_it_is(action: SettingsAction) -> &'static str {
    match action {
        SettingsAction::ViewKeys | SettingsAction::ManageKeys => {
            "Secret keys are created, rotated and revoked by the studio's owners and admins."
        }
        SettingsAction::ViewConnectedApps => "This page lists the apps connected to the studio.",
        SettingsAction::DisconnectApps => {
            "Apps are disconnected by the studio's owners and admins."
        }
        SettingsAction::ViewAuditLog => "This page shows what every assistant did in the studio.",
    }
}

/// Whether a request's `Origin` (when the browser sends one) is the gateway's own.
fn same_origin(app: &App, headers: &HeaderMap) -> bool {
    match headers.get(header::ORIGIN).map(|o| o.to_str()) {
        None => true,
        Some(Ok(origin)) => origin.trim_end_matches('/') == app.base_url.trim_end_matches('/'),
        Some(Err(_)) => false,
    }
}

/// The answer to a form whose security token is missing or wrong: nothing was changed.
fn form_not_verified() -> Response {
    crate::wire::Refusal::forbidden(
        "This form could not be verified (its security token is missing or wrong), so nothing was changed. Reload the page and try again.",
    )
    .page()
}

/// A signed-out request for a page: to the sign-in form, and back afterwards.
fn to_sign_in(app: &App, parts: &Parts, ended: bool) -> Response {
    // A form of an ended session is not sent again: back to the page it came from.
    let next = page_path(parts.uri.path());
    let mut url = format!("{SIGN_IN}?next={}", urlencoding(next));
    if ended {
        url.push_str("&ended=1");
    }
    let r = Redirect::to(&url).into_response();
    if ended {
        with_cookie(r, set_cookie(app, session_cookie(app), "", 0))
    } else {
        r
    }
}

/// The settings page a path is on (where to come back to after signing in).
fn page_path(path: &str) -> &'static str {
    [DEVELOPER, CONNECTED_APPS, AUDIT_LOG]
        .into_iter()
        .find(|p| path.starts_with(p))
        .unwrap_or("/settings")
}

fn urlencoding(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

impl FromRequestParts<Arc<App>> for Session {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, Response> {
        let Some(token) = cookie(&parts.headers, session_cookie(app)).filter(|t| !t.is_empty())
        else {
            return Err(to_sign_in(app, parts, false));
        };
        let now = Timestamp::now();
        let idle = chrono::Duration::seconds(app.config.settings_idle_secs as i64);
        match app
            .store
            .touch_settings_session(&secret_hash(&token), now, now - idle)
            .await
        {
            Ok(Some(row)) => Ok(Session::of(row)),
            Ok(None) => Err(to_sign_in(app, parts, true)),
            Err(e) => Err(oauth::page_internal(&e)),
        }
    }
}

/// The user's role as the pages show it.
pub fn role_title(role: Option<&str>) -> String {
    match role {
        Some(r) => Role::parse(r).map_or_else(|| format!("role \"{r}\""), |r| r.title().into()),
        None => "no role".into(),
    }
}

/// The header of every page.
#[derive(Debug, Clone)]
pub struct Head {
    pub studio: String,
    pub user_name: String,
    pub user_email: String,
    pub role: String,
    /// For the sign-out form.
    pub csrf: String,
    /// The pages the user may see.
    pub links: Vec<Link>,
}

#[derive(Debug, Clone)]
pub struct Link {
    pub href: &'static str,
    pub label: &'static str,
    pub current: bool,
}

/// A problem, in the layout of the pages.
#[derive(Template)]
#[template(path = "settings/problem.html")]
pub struct Problem<'a> {
    pub head: Head,
    pub title: &'a str,
    pub message: &'a str,
}

/// A question before a change that cannot be undone.
#[derive(Template)]
#[template(path = "settings/confirm.html")]
struct Confirm<'a> {
    pub head: Head,
    pub title: &'a str,
    /// What will happen, as a person reads it.
    pub message: &'a str,
    /// Where the form posts.
    pub action: &'a str,
    pub button: &'a str,
    /// Where "Cancel" goes.
    pub back: &'static str,
}

/// The sign-in form of the pages.
#[derive(Template)]
#[template(path = "settings/sign_in.html")]
struct SignInPage<'a> {
    csrf: &'a str,
    next: &'a str,
    email: &'a str,
    error: Option<&'a str>,
    notice: Option<&'a str>,
}

#[derive(Debug, Deserialize)]
struct SignInQuery {
    next: Option<String>,
    ended: Option<String>,
    signed_out: Option<String>,
}

/// `/settings`: the first page the user may see.
async fn home(State(app): State<Arc<App>>, session: Session) -> Response {
    match session.head(&app, "").links.first() {
        Some(link) => Redirect::to(link.href).into_response(),
        None => session.problem(
            &app,
            "",
            StatusCode::FORBIDDEN,
            "Nothing to see for your role",
            "Your role does not give access to any of the settings pages. Ask the studio's owner.",
        ),
    }
}

/// The sign-in form, with a fresh token in its cookie.
fn sign_in_form(
    app: &App,
    status: StatusCode,
    next: &str,
    email: &str,
    error: Option<&str>,
    notice: Option<&str>,
) -> Response {
    let csrf = random_secret("");
    let r = html(
        status,
        &SignInPage {
            csrf: &csrf,
            next: page_path(next),
            email,
            error,
            notice,
        },
    );
    with_cookie(r, set_cookie(app, SIGN_IN_COOKIE, &csrf, 600))
}

async fn sign_in_page(State(app): State<Arc<App>>, Query(q): Query<SignInQuery>) -> Response {
    let notice = if q.signed_out.is_some() {
        Some("You are signed out.")
    } else if q.ended.is_some() {
        Some("Your session ended. Sign in again to continue.")
    } else {
        None
    };
    sign_in_form(
        &app,
        StatusCode::OK,
        q.next.as_deref().unwrap_or("/settings"),
        "",
        None,
        notice,
    )
}

async fn sign_in(
    State(app): State<Arc<App>>,
    addr: ClientAddr,
    headers: HeaderMap,
    RawForm(body): RawForm,
) -> Response {
    let f = form(&body);
    let next = field(&f, "next").unwrap_or("/settings");
    let email = field(&f, "email").unwrap_or_default().trim();
    let token = field(&f, "csrf").unwrap_or_default();
    let from_cookie = cookie(&headers, SIGN_IN_COOKIE).unwrap_or_default();
    if !same_origin(&app, &headers) || token.is_empty() || !same_secret(token, &from_cookie) {
        return sign_in_form(
            &app,
            StatusCode::FORBIDDEN,
            next,
            email,
            Some("This form expired or could not be verified. Sign in again."),
            None,
        );
    }
    let password = field(&f, "password").unwrap_or_default();
    let user =
        match oauth::check_password(&app, addr, email, password, oauth::events::SIGN_IN).await {
            Ok(user) => user,
            Err(refused) => {
                return refused.answer(|status, error| {
                    sign_in_form(&app, status, next, email, Some(error), None)
                });
            }
        };
    let token = random_secret("fgs_");
    let now = Timestamp::now();
    let row = SettingsSessionRow {
        token_hash: secret_hash(&token),
        csrf: random_secret(""),
        studio: user.studio_id.clone(),
        studio_name: user.studio_name.clone(),
        user_id: user.user_id.clone(),
        user_email: user.email.clone(),
        user_name: user.name.clone(),
        user_role: user.role.clone(),
        created_at: now,
        last_seen_at: now,
        expires_at: now + chrono::Duration::seconds(app.config.settings_max_secs as i64),
    };
    if let Err(e) = app.store.insert_settings_session(&row).await {
        return oauth::page_internal(&e);
    }
    let session = Session::of(row);
    let record = Record {
        arguments: Some(serde_json::json!({ "role": user.role })),
        ..session.event(
            events::SIGN_IN,
            Outcome::Ok,
            "signed in to the settings pages",
            addr,
        )
    };
    oauth::audit(&app, record).await;
    let r = Redirect::to(page_path(next)).into_response();
    let r = with_cookie(
        r,
        set_cookie(
            &app,
            session_cookie(&app),
            &token,
            app.config.settings_max_secs,
        ),
    );
    with_cookie(r, set_cookie(&app, SIGN_IN_COOKIE, "", 0))
}

/// Ends the session on every replica (its row is deleted) and forgets the cookie.
async fn sign_out(
    State(app): State<Arc<App>>,
    addr: ClientAddr,
    session: Session,
    headers: HeaderMap,
    RawForm(body): RawForm,
) -> Response {
    if let Err(r) = session.form(&app, &headers, &body) {
        return *r;
    }
    if let Err(e) = app.store.end_settings_session(&session.token_hash).await {
        return oauth::page_internal(&e);
    }
    oauth::audit(
        &app,
        session.event(events::SIGN_OUT, Outcome::Ok, "signed out", addr),
    )
    .await;
    with_cookie(
        Redirect::to(&format!("{SIGN_IN}?signed_out=1")).into_response(),
        set_cookie(&app, session_cookie(&app), "", 0),
    )
}

/// A timestamp as the pages show it: `2026-12-02 14:05 UTC`.
pub fn when(t: &Timestamp) -> String {
    t.datetime().format("%Y-%m-%d %H:%M UTC").to_string()
}

/// An optional timestamp as the pages show it (`never` when absent).
pub fn when_or(t: Option<&Timestamp>, absent: &str) -> String {
    t.map_or_else(|| absent.to_string(), when)
}

/// Scopes as a person reads them: one entry per resource, `Classes: view & change`, or one
/// entry for every scope there is.
pub fn scopes_text(scopes: &[String]) -> Vec<String> {
    use flowgate_codegen::cedar::scope_resource;
    if crate::tool::catalog::SCOPES
        .iter()
        .all(|d| scopes.iter().any(|s| s == d.name))
    {
        return vec!["Everything: every resource, view & change".into()];
    }
    let mut out: Vec<(String, bool, bool)> = Vec::new();
    for s in scopes {
        let r = scope_resource(s).to_string();
        let i = match out.iter().position(|(k, _, _)| *k == r) {
            Some(i) => i,
            None => {
                out.push((r, false, false));
                out.len() - 1
            }
        };
        if s.ends_with(":read") {
            out[i].1 = true;
        } else {
            out[i].2 = true;
        }
    }
    out.into_iter()
        .map(|(r, read, write)| {
            let access = match (read, write) {
                (true, true) => "view & change",
                (true, false) => "view",
                _ => "change",
            };
            format!("{}: {access}", crate::oauth::pages::title(&r))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_read_as_one_entry_per_resource() {
        let s = |x: &[&str]| x.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            scopes_text(&s(&[
                "bookings:read",
                "bookings:write",
                "classes:read",
                "coupons:write"
            ])),
            [
                "Bookings: view & change",
                "Classes: view",
                "Coupons: change"
            ]
        );
    }

    #[test]
    fn only_the_pages_are_places_to_come_back_to() {
        assert_eq!(page_path("/settings/audit-log"), AUDIT_LOG);
        assert_eq!(page_path("/settings/developer/keys/k1/revoke"), DEVELOPER);
        assert_eq!(page_path("https://evil.example/"), "/settings");
        assert_eq!(page_path("//evil.example/settings/developer"), "/settings");
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "ab"));
    }
}
