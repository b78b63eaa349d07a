//! The Audit log page (built next).

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use super::{AUDIT_LOG, Session};
use crate::app::App;

pub async fn page(State(app): State<Arc<App>>, session: Session) -> Response {
    session.problem(
        &app,
        AUDIT_LOG,
        StatusCode::NOT_IMPLEMENTED,
        "Audit log",
        "Not built yet.",
    )
}

pub async fn export_csv(State(app): State<Arc<App>>, session: Session) -> Response {
    session.problem(
        &app,
        AUDIT_LOG,
        StatusCode::NOT_IMPLEMENTED,
        "Audit log",
        "Not built yet.",
    )
}

pub async fn export_json(State(app): State<Arc<App>>, session: Session) -> Response {
    session.problem(
        &app,
        AUDIT_LOG,
        StatusCode::NOT_IMPLEMENTED,
        "Audit log",
        "Not built yet.",
    )
}
