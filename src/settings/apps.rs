//! The Connected apps page: every assistant the studio approved (its OAuth grants), and
//! Disconnect, after which its next request is refused on every replica.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, Query, RawForm, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::json;

use super::{CONNECTED_APPS, Head, Session, events, html, scopes_text, when, when_or};
use crate::app::App;
use crate::audit::{Outcome, Record};
use crate::oauth::grants::GrantInfo;
use crate::oauth::limits::ClientAddr;
use crate::oauth::{self, redirect_host};
use crate::roles::{SettingsAction, Verdict};
use crate::store::Within;

#[derive(Template)]
#[template(path = "settings/connected_apps.html")]
struct AppsPage {
    head: Head,
    apps: Vec<AppView>,
    /// Whether the user may disconnect apps; else why not.
    manage: Result<(), String>,
    notice: Option<String>,
}

/// One grant as the page shows it.
struct AppView {
    id: String,
    name: String,
    /// The host that published the client's metadata document; `None`: unverified.
    verified_by: Option<String>,
    /// Where the approval sent the person back.
    returns_to: String,
    scopes: Vec<String>,
    approved_by: String,
    approved: String,
    last_used: String,
    active: bool,
    revoked: Option<String>,
}

impl AppView {
    fn of(app: &App, g: &GrantInfo) -> Self {
        let verified_by = app
            .oauth
            .cimd
            .is_document_url(&g.client_id)
            .then(|| redirect_host(&g.client_id));
        Self {
            id: g.id.clone(),
            name: g.client_name.clone(),
            verified_by,
            returns_to: g
                .redirect_uri
                .as_deref()
                .map_or_else(|| "not recorded".into(), redirect_host),
            scopes: scopes_text(&g.scopes),
            approved_by: g.user_email.clone(),
            approved: when(&g.created_at),
            last_used: when_or(g.last_used_at.as_ref(), "never"),
            active: g.revoked_at.is_none(),
            revoked: g.revoked_at.as_ref().map(when),
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct PageQuery {
    disconnected: Option<String>,
}

async fn grant_of(app: &App, session: &Session, id: &str) -> Result<GrantInfo, Response> {
    match app
        .oauth
        .grants
        .list(Within::Studio(&session.user.studio_id))
        .await
    {
        Ok(grants) => grants
            .into_iter()
            .find(|g| g.id == id)
            .ok_or_else(|| not_found(app, session)),
        Err(e) => Err(oauth::page_internal(&e)),
    }
}

fn not_found(app: &App, session: &Session) -> Response {
    session.problem(
        app,
        CONNECTED_APPS,
        StatusCode::NOT_FOUND,
        "App not found",
        "Your studio has no such connected app. Nothing was changed.",
    )
}

/// `GET /settings/connected-apps`.
pub async fn page(
    State(app): State<Arc<App>>,
    session: Session,
    Query(q): Query<PageQuery>,
) -> Response {
    if let Some(r) = session.refused(&app, SettingsAction::ViewConnectedApps, CONNECTED_APPS) {
        return r;
    }
    let grants = match app
        .oauth
        .grants
        .list(Within::Studio(&session.user.studio_id))
        .await
    {
        Ok(g) => g,
        Err(e) => return oauth::page_internal(&e),
    };
    let notice = q.disconnected.and_then(|id| {
        grants.iter().find(|g| g.id == id).map(|g| {
            format!(
                "{} is disconnected: its next request is refused.",
                g.client_name
            )
        })
    });
    // Connected first, then the disconnected ones; newest first within each.
    let mut apps: Vec<AppView> = grants.iter().map(|g| AppView::of(&app, g)).collect();
    apps.sort_by_key(|a| !a.active);
    let manage = match session.may(&app, SettingsAction::DisconnectApps) {
        Verdict::Allowed => Ok(()),
        Verdict::Refused(why) => Err(why),
    };
    html(
        StatusCode::OK,
        &AppsPage {
            head: session.head(&app, CONNECTED_APPS),
            apps,
            manage,
            notice,
        },
    )
}

/// `GET …/{id}/disconnect`: the confirmation step.
pub async fn confirm_disconnect(
    State(app): State<Arc<App>>,
    session: Session,
    Path(id): Path<String>,
) -> Response {
    if let Some(r) = session.refused(&app, SettingsAction::DisconnectApps, CONNECTED_APPS) {
        return r;
    }
    let g = match grant_of(&app, &session, &id).await {
        Ok(g) => g,
        Err(r) => return r,
    };
    if g.revoked_at.is_some() {
        return already(&app, &session);
    }
    session.confirm(
        &app,
        CONNECTED_APPS,
        &format!("Disconnect {}?", g.client_name),
        "It loses access with its next request, and cannot refresh its tokens. To use it again, connect it again from the assistant (you will be asked to approve it).",
        &format!("/settings/connected-apps/{}/disconnect", g.id),
        "Disconnect",
    )
}

fn already(app: &App, session: &Session) -> Response {
    session.problem(
        app,
        CONNECTED_APPS,
        StatusCode::CONFLICT,
        "Already disconnected",
        "This app is disconnected already. Nothing was changed.",
    )
}

/// `POST …/{id}/disconnect`: the grant and its tokens are revoked, on every replica.
pub async fn disconnect(
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
    if let Some(r) = session
        .refused_form(
            &app,
            SettingsAction::DisconnectApps,
            CONNECTED_APPS,
            "disconnecting an app",
            addr,
        )
        .await
    {
        return r;
    }
    let g = match grant_of(&app, &session, &id).await {
        Ok(g) => g,
        Err(r) => return r,
    };
    let why = format!(
        "disconnected by {} on the settings page",
        session.user.email
    );
    match app
        .oauth
        .grants
        .revoke_grant(Within::Studio(&session.user.studio_id), &id, &why)
        .await
    {
        Ok(true) => {}
        Ok(false) => return already(&app, &session),
        Err(e) => return oauth::page_internal(&e),
    }
    let record = Record {
        arguments: Some(
            json!({ "grant_id": g.id, "client_id": g.client_id, "client_name": g.client_name }),
        ),
        ..session.event(
            events::APP_DISCONNECT,
            Outcome::Ok,
            &format!("disconnected {} (grant {})", g.client_name, g.id),
            addr,
        )
    };
    oauth::audit(&app, record).await;
    let to = format!(
        "{CONNECTED_APPS}?disconnected={}",
        form_urlencoded::byte_serialize(g.id.as_bytes()).collect::<String>()
    );
    Redirect::to(&to).into_response()
}
