//! The Developer page: the studio's secret keys. Create one with the scopes chosen by resource
//! (the consent page's control, within the user's role), an optional expiry; its secret is
//! shown once. Rotate (a new secret, shown once; the old one is refused at once) and revoke
//! (after a confirmation).

use std::collections::BTreeSet;
use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, Query, RawForm, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::json;

use super::{Confirm, DEVELOPER, Head, Session, events, html, scopes_text, when, when_or};
use crate::app::App;
use crate::audit::{Outcome, Record};
use crate::identity::keys::{KeyError, KeyInfo, NewKey};
use crate::oauth::limits::ClientAddr;
use crate::oauth::pages::{self, ResourceRow};
use crate::oauth::{self, field};
use crate::roles::{SettingsAction, Verdict};
use crate::store::{Timestamp, Within};
use crate::tool::catalog::SCOPES;

/// The longest key name.
pub const MAX_NAME: usize = 80;

/// The expiries offered, in days (`None`: never).
const EXPIRIES: [(&str, &str, Option<i64>); 5] = [
    ("never", "Never", None),
    ("7", "In 7 days", Some(7)),
    ("30", "In 30 days", Some(30)),
    ("90", "In 90 days", Some(90)),
    ("365", "In a year", Some(365)),
];

#[derive(Template)]
#[template(path = "settings/developer.html")]
struct DeveloperPage {
    head: Head,
    keys: Vec<KeyView>,
    /// Whether the user may create, rotate and revoke keys; else why not.
    manage: Result<(), String>,
    form: CreateForm,
    notice: Option<String>,
    error: Option<String>,
}

/// One key as the table shows it.
struct KeyView {
    id: String,
    name: String,
    hint: String,
    scopes: Vec<String>,
    created: String,
    last_used: String,
    expires: String,
    state: &'static str,
    active: bool,
}

impl KeyView {
    fn of(k: &KeyInfo, now: &Timestamp) -> Self {
        let expired = k.expires_at.as_ref().is_some_and(|e| e <= now);
        let state = match (&k.revoked_at, expired) {
            (Some(_), _) => "Revoked",
            (None, true) => "Expired",
            (None, false) => "Active",
        };
        Self {
            id: k.id.clone(),
            name: k.name.clone(),
            hint: k.hint.clone(),
            scopes: scopes_text(&k.scopes),
            created: when(&k.created_at),
            last_used: when_or(k.last_used_at.as_ref(), "never"),
            expires: when_or(k.expires_at.as_ref(), "never"),
            state,
            active: state == "Active",
        }
    }
}

/// The create form, as last filled in.
struct CreateForm {
    name: String,
    rows: Vec<ResourceRow>,
    limit: Option<String>,
    expiries: Vec<Expiry>,
}

struct Expiry {
    value: &'static str,
    label: &'static str,
    selected: bool,
}

/// A secret, shown once.
#[derive(Template)]
#[template(path = "settings/secret.html")]
struct SecretPage<'a> {
    head: Head,
    title: &'a str,
    name: &'a str,
    secret: &'a str,
    scopes: Vec<String>,
    expires: String,
}

#[derive(Debug, Deserialize)]
pub struct PageQuery {
    revoked: Option<String>,
}

fn every_scope() -> BTreeSet<String> {
    SCOPES.iter().map(|d| d.name.to_string()).collect()
}

/// The page, with the create form filled in as `name`, `ticked` and `expiry`.
async fn render(
    app: &App,
    session: &Session,
    status: StatusCode,
    notice: Option<String>,
    error: Option<String>,
    (name, ticked, expiry): (&str, &BTreeSet<String>, &str),
) -> Response {
    let keys = match app.keys.list(Within::Studio(&session.user.studio_id)).await {
        Ok(keys) => keys,
        Err(e) => return oauth::page_internal(&e),
    };
    let now = Timestamp::now();
    let user = session.role_user();
    let rows = pages::resource_rows(&every_scope(), ticked, |scope| {
        match app.oauth.roles.may_grant(user, scope) {
            Verdict::Allowed => None,
            Verdict::Refused(why) => Some(why),
        }
    });
    let manage = match session.may(app, SettingsAction::ManageKeys) {
        Verdict::Allowed => Ok(()),
        Verdict::Refused(why) => Err(why),
    };
    html(
        status,
        &DeveloperPage {
            head: session.head(app, DEVELOPER),
            keys: keys.iter().map(|k| KeyView::of(k, &now)).collect(),
            manage,
            form: CreateForm {
                name: name.to_string(),
                limit: pages::limit(&rows),
                rows,
                expiries: EXPIRIES
                    .iter()
                    .map(|(value, label, _)| Expiry {
                        value,
                        label,
                        selected: *value == expiry,
                    })
                    .collect(),
            },
            notice,
            error,
        },
    )
}

/// `GET /settings/developer`.
pub async fn page(
    State(app): State<Arc<App>>,
    session: Session,
    Query(q): Query<PageQuery>,
) -> Response {
    if let Some(r) = session.refused(&app, SettingsAction::ViewKeys, DEVELOPER) {
        return r;
    }
    let mut notice = None;
    if let Some(id) = q.revoked
        && let Ok(k) = app
            .keys
            .get(Within::Studio(&session.user.studio_id), &id)
            .await
    {
        notice = Some(format!(
            "The key \u{201c}{}\u{201d} is revoked: its next request is refused.",
            k.name
        ));
    }
    render(
        &app,
        &session,
        StatusCode::OK,
        notice,
        None,
        ("", &BTreeSet::new(), "never"),
    )
    .await
}

/// A form posted by a user whose role may not manage keys: refused, and audited.
async fn may_manage(
    app: &App,
    session: &Session,
    addr: ClientAddr,
    what: &str,
) -> Result<(), Response> {
    let Some(r) = session.refused(app, SettingsAction::ManageKeys, DEVELOPER) else {
        return Ok(());
    };
    let message = format!("refused: {what} is not allowed for the user's role");
    oauth::audit(
        app,
        session.event(events::REFUSED, Outcome::Denied, &message, addr),
    )
    .await;
    Err(r)
}

/// `POST /settings/developer/keys`: creates a key and shows its secret once.
pub async fn create(
    State(app): State<Arc<App>>,
    addr: ClientAddr,
    session: Session,
    headers: HeaderMap,
    RawForm(body): RawForm,
) -> Response {
    let f = match session.form(&app, &headers, &body) {
        Ok(f) => f,
        Err(r) => return *r,
    };
    if let Err(r) = may_manage(&app, &session, addr, "creating a key").await {
        return r;
    }
    let name = field(&f, "name").unwrap_or_default().trim().to_string();
    let expiry = field(&f, "expires").unwrap_or("never").to_string();
    let chosen = oauth::chosen(&f, &every_scope());
    let again = async |status, error: String, ticked: &BTreeSet<String>| {
        render(
            &app,
            &session,
            status,
            None,
            Some(error),
            (&name, ticked, &expiry),
        )
        .await
    };
    let scopes = match chosen {
        Ok(s) => s,
        Err(e) => return again(StatusCode::BAD_REQUEST, e, &BTreeSet::new()).await,
    };
    if name.is_empty() || name.chars().count() > MAX_NAME {
        let e = format!("Give the key a name of 1 to {MAX_NAME} characters.");
        return again(StatusCode::BAD_REQUEST, e, &scopes).await;
    }
    if name.chars().any(crate::audit::disguises) {
        let e = "The name cannot contain control or text-direction characters.".to_string();
        return again(StatusCode::BAD_REQUEST, e, &scopes).await;
    }
    let Some(days) = EXPIRIES
        .iter()
        .find(|(v, _, _)| *v == expiry)
        .map(|(_, _, d)| *d)
    else {
        let e = "Choose one of the expiries offered.".to_string();
        return again(StatusCode::BAD_REQUEST, e, &scopes).await;
    };
    if scopes.is_empty() {
        let e = "Choose what the key may do: at least one resource on View or more.".to_string();
        return again(StatusCode::BAD_REQUEST, e, &scopes).await;
    }
    // Above the role: refused whole (the page never offers it; a form posted directly can).
    let above: Vec<&String> = scopes
        .iter()
        .filter(|s| {
            !app.oauth
                .roles
                .may_grant(session.role_user(), s)
                .is_allowed()
        })
        .collect();
    if !above.is_empty() {
        let list = above
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        let message = format!("refused: creating a key with {list}, above the user's role");
        oauth::audit(
            &app,
            session.event(events::REFUSED, Outcome::Denied, &message, addr),
        )
        .await;
        let e = format!("Your role cannot give a key {list}. Nothing was created.");
        let within: BTreeSet<String> = scopes
            .iter()
            .filter(|s| !above.contains(s))
            .cloned()
            .collect();
        return again(StatusCode::FORBIDDEN, e, &within).await;
    }
    let expires_at = days.map(|d| chrono::Utc::now() + chrono::Duration::days(d));
    let made = match app
        .keys
        .create(&session.user.studio_id, &name, &scopes, expires_at)
        .await
    {
        Ok(k) => k,
        Err(e) => return oauth::page_internal(&e),
    };
    let record = Record {
        arguments: Some(json!({
            "key_id": made.info.id,
            "name": made.info.name,
            "scopes": made.info.scopes,
            "expires_at": made.info.expires_at.as_ref().map(Timestamp::rfc3339),
        })),
        ..session.event(
            events::KEY_CREATE,
            Outcome::Ok,
            &format!("created the key {}", made.info.id),
            addr,
        )
    };
    oauth::audit(&app, record).await;
    secret_page(
        &app,
        &session,
        StatusCode::CREATED,
        "Your new secret key",
        &made,
    )
}

fn secret_page(
    app: &App,
    session: &Session,
    status: StatusCode,
    title: &str,
    made: &NewKey,
) -> Response {
    html(
        status,
        &SecretPage {
            head: session.head(app, DEVELOPER),
            title,
            name: &made.info.name,
            secret: &made.secret,
            scopes: scopes_text(&made.info.scopes),
            expires: when_or(made.info.expires_at.as_ref(), "never"),
        },
    )
}

/// The studio's key `id`, or the page that says it was not found.
async fn key_of(app: &App, session: &Session, id: &str) -> Result<KeyInfo, Response> {
    match app
        .keys
        .get(Within::Studio(&session.user.studio_id), id)
        .await
    {
        Ok(k) => Ok(k),
        Err(KeyError::NotFound(_)) => Err(not_found(app, session)),
        Err(e) => Err(oauth::page_internal(&e)),
    }
}

fn not_found(app: &App, session: &Session) -> Response {
    session.problem(
        app,
        DEVELOPER,
        StatusCode::NOT_FOUND,
        "Key not found",
        "Your studio has no such key. Nothing was changed.",
    )
}

fn already_revoked(app: &App, session: &Session) -> Response {
    session.problem(
        app,
        DEVELOPER,
        StatusCode::CONFLICT,
        "Key already revoked",
        "This key is revoked already. Nothing was changed.",
    )
}

fn confirm(
    app: &App,
    session: &Session,
    title: &str,
    message: &str,
    action: &str,
    button: &str,
) -> Response {
    html(
        StatusCode::OK,
        &Confirm {
            head: session.head(app, DEVELOPER),
            title,
            message,
            action,
            button,
            back: DEVELOPER,
        },
    )
}

/// `GET …/keys/{id}/rotate`: what rotating does, and the button that does it.
pub async fn confirm_rotate(
    State(app): State<Arc<App>>,
    session: Session,
    Path(id): Path<String>,
) -> Response {
    if let Some(r) = session.refused(&app, SettingsAction::ManageKeys, DEVELOPER) {
        return r;
    }
    let k = match key_of(&app, &session, &id).await {
        Ok(k) => k,
        Err(r) => return r,
    };
    if k.revoked_at.is_some() {
        return already_revoked(&app, &session);
    }
    confirm(
        &app,
        &session,
        &format!("Rotate \u{201c}{}\u{201d}?", k.name),
        "The key gets a new secret, shown once. Its current secret stops working at once: every assistant using it must be given the new one.",
        &format!("/settings/developer/keys/{}/rotate", k.id),
        "Rotate the secret",
    )
}

/// `POST …/keys/{id}/rotate`: a new secret, shown once; the old one is refused at once.
pub async fn rotate(
    State(app): State<Arc<App>>,
    addr: ClientAddr,
    session: Session,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawForm(body): RawForm,
) -> Response {
    if let Err(r) = session.form(&app, &headers, &body) {
        return *r;
    }
    if let Err(r) = may_manage(&app, &session, addr, "rotating a key").await {
        return r;
    }
    let made = match app
        .keys
        .rotate(Within::Studio(&session.user.studio_id), &id)
        .await
    {
        Ok(k) => k,
        Err(KeyError::NotFound(_)) => return not_found(&app, &session),
        Err(KeyError::Revoked(_)) => return already_revoked(&app, &session),
        Err(e) => return oauth::page_internal(&e),
    };
    let record = Record {
        arguments: Some(json!({ "key_id": made.info.id, "name": made.info.name })),
        ..session.event(
            events::KEY_ROTATE,
            Outcome::Ok,
            &format!("rotated the key {}", made.info.id),
            addr,
        )
    };
    oauth::audit(&app, record).await;
    secret_page(
        &app,
        &session,
        StatusCode::OK,
        "The key's new secret",
        &made,
    )
}

/// `GET …/keys/{id}/revoke`: the confirmation step.
pub async fn confirm_revoke(
    State(app): State<Arc<App>>,
    session: Session,
    Path(id): Path<String>,
) -> Response {
    if let Some(r) = session.refused(&app, SettingsAction::ManageKeys, DEVELOPER) {
        return r;
    }
    let k = match key_of(&app, &session, &id).await {
        Ok(k) => k,
        Err(r) => return r,
    };
    if k.revoked_at.is_some() {
        return already_revoked(&app, &session);
    }
    confirm(
        &app,
        &session,
        &format!("Revoke \u{201c}{}\u{201d}?", k.name),
        "Every assistant using this key loses access with its next request. This cannot be undone: to connect again, create a new key.",
        &format!("/settings/developer/keys/{}/revoke", k.id),
        "Revoke the key",
    )
}

/// `POST …/keys/{id}/revoke`: refused from the next request on, on every replica.
pub async fn revoke(
    State(app): State<Arc<App>>,
    addr: ClientAddr,
    session: Session,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawForm(body): RawForm,
) -> Response {
    if let Err(r) = session.form(&app, &headers, &body) {
        return *r;
    }
    if let Err(r) = may_manage(&app, &session, addr, "revoking a key").await {
        return r;
    }
    let k = match app
        .keys
        .revoke(Within::Studio(&session.user.studio_id), &id)
        .await
    {
        Ok(k) => k,
        Err(KeyError::NotFound(_)) => return not_found(&app, &session),
        Err(KeyError::Revoked(_)) => return already_revoked(&app, &session),
        Err(e) => return oauth::page_internal(&e),
    };
    let record = Record {
        arguments: Some(json!({ "key_id": k.id, "name": k.name })),
        ..session.event(
            events::KEY_REVOKE,
            Outcome::Ok,
            &format!("revoked the key {}", k.id),
            addr,
        )
    };
    oauth::audit(&app, record).await;
    let to = format!(
        "{DEVELOPER}?revoked={}",
        form_urlencoded::byte_serialize(k.id.as_bytes()).collect::<String>()
    );
    Redirect::to(&to).into_response()
}
