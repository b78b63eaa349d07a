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

use super::{DEVELOPER, Head, Session, events, html, scopes_text, when, when_or};
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
    /// The create form's resource choices (`templates/resources.html`).
    rows: Vec<ResourceRow>,
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
                expiries: EXPIRIES
                    .iter()
                    .map(|(value, label, _)| Expiry {
                        value,
                        label,
                        selected: *value == expiry,
                    })
                    .collect(),
            },
            rows,
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
    if let Some(r) = session
        .refused_form(
            &app,
            SettingsAction::ManageKeys,
            DEVELOPER,
            "creating a key",
            addr,
        )
        .await
    {
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

/// A change to a key that asks for confirmation first: `GET …/keys/{id}/{change}` asks,
/// `POST` does it.
#[derive(Debug, Clone, Copy)]
pub enum KeyChange {
    /// A new secret, shown once; the old one is refused at once.
    Rotate,
    /// Refused from the next request on, on every replica.
    Revoke,
}

impl KeyChange {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "rotate" => Some(Self::Rotate),
            "revoke" => Some(Self::Revoke),
            _ => None,
        }
    }

    fn path(self) -> &'static str {
        match self {
            Self::Rotate => "rotate",
            Self::Revoke => "revoke",
        }
    }

    fn question(self, name: &str) -> String {
        match self {
            Self::Rotate => format!("Rotate \u{201c}{name}\u{201d}?"),
            Self::Revoke => format!("Revoke \u{201c}{name}\u{201d}?"),
        }
    }

    fn explanation(self) -> &'static str {
        match self {
            Self::Rotate => {
                "The key gets a new secret, shown once. Its current secret stops working at once: every assistant using it must be given the new one."
            }
            Self::Revoke => {
                "Every assistant using this key loses access with its next request. This cannot be undone: to connect again, create a new key."
            }
        }
    }

    fn button(self) -> &'static str {
        match self {
            Self::Rotate => "Rotate the secret",
            Self::Revoke => "Revoke the key",
        }
    }

    /// As the audit log says a done one.
    fn past(self) -> &'static str {
        match self {
            Self::Rotate => "rotated",
            Self::Revoke => "revoked",
        }
    }

    /// As the audit log says a refused one.
    fn doing(self) -> &'static str {
        match self {
            Self::Rotate => "rotating a key",
            Self::Revoke => "revoking a key",
        }
    }
}

/// The change named in a path, or the page that says there is none.
fn change_of(app: &App, session: &Session, change: &str) -> Result<KeyChange, Box<Response>> {
    KeyChange::parse(change).ok_or_else(|| {
        Box::new(session.problem(
            app,
            DEVELOPER,
            StatusCode::NOT_FOUND,
            "Page not found",
            "Keys can be rotated or revoked; there is no such change.",
        ))
    })
}

/// `GET …/keys/{id}/{change}`: what the change does, and the button that does it.
pub async fn confirm_change(
    State(app): State<Arc<App>>,
    session: Session,
    Path((id, change)): Path<(String, String)>,
) -> Response {
    if let Some(r) = session.refused(&app, SettingsAction::ManageKeys, DEVELOPER) {
        return r;
    }
    let change = match change_of(&app, &session, &change) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let k = match key_of(&app, &session, &id).await {
        Ok(k) => k,
        Err(r) => return r,
    };
    if k.revoked_at.is_some() {
        return already_revoked(&app, &session);
    }
    session.confirm(
        &app,
        DEVELOPER,
        &change.question(&k.name),
        change.explanation(),
        &format!("/settings/developer/keys/{}/{}", k.id, change.path()),
        change.button(),
    )
}

/// `POST …/keys/{id}/{change}`: the change, audited.
pub async fn change(
    State(app): State<Arc<App>>,
    addr: ClientAddr,
    session: Session,
    Path((id, change)): Path<(String, String)>,
    headers: HeaderMap,
    RawForm(body): RawForm,
) -> Response {
    if let Err(r) = session.form(&app, &headers, &body) {
        return *r;
    }
    let change = match change_of(&app, &session, &change) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    if let Some(r) = session
        .refused_form(
            &app,
            SettingsAction::ManageKeys,
            DEVELOPER,
            change.doing(),
            addr,
        )
        .await
    {
        return r;
    }
    let within = Within::Studio(&session.user.studio_id);
    let (tool, key, answer) = match change {
        KeyChange::Rotate => match app.keys.rotate(within, &id).await {
            Ok(made) => {
                let answer = secret_page(
                    &app,
                    &session,
                    StatusCode::OK,
                    "The key's new secret",
                    &made,
                );
                (events::KEY_ROTATE, made.info, answer)
            }
            Err(e) => return key_error(&app, &session, &e),
        },
        KeyChange::Revoke => match app.keys.revoke(within, &id).await {
            Ok(k) => {
                let to = format!(
                    "{DEVELOPER}?revoked={}",
                    form_urlencoded::byte_serialize(k.id.as_bytes()).collect::<String>()
                );
                (events::KEY_REVOKE, k, Redirect::to(&to).into_response())
            }
            Err(e) => return key_error(&app, &session, &e),
        },
    };
    let record = Record {
        arguments: Some(json!({ "key_id": key.id, "name": key.name })),
        ..session.event(
            tool,
            Outcome::Ok,
            &format!("{} the key {}", change.past(), key.id),
            addr,
        )
    };
    oauth::audit(&app, record).await;
    answer
}

/// The page for a key operation that failed.
fn key_error(app: &App, session: &Session, e: &KeyError) -> Response {
    match e {
        KeyError::NotFound(_) => not_found(app, session),
        KeyError::Revoked(_) => already_revoked(app, session),
        e => oauth::page_internal(e),
    }
}
