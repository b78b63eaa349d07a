//! The resources of the API, one module each, and the pieces they share.
//!
//! Contract: every handler that touches tenant rows takes a [`Tenant`](crate::tenancy::Tenant) and
//! filters every query on its id; a referenced row of another studio is a `404` naming the field.
//! Creations answer `201`, everything else `200` with a JSON body.

mod bookings;
mod classes;
mod content;
mod coupons;
mod directory;
mod expenses;
mod financials;
mod instructors;
mod locations;
mod members;
mod messages;
mod plans;
mod programs;
mod schedule;
mod studio;

use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};
use sqlx::SqliteExecutor;

use crate::app::{App, AppState};
use crate::error::{ApiError, ApiResult};
use crate::input::check_text;
use crate::write::Tx;

/// Every route under `/v1`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route(
            "/openapi.json",
            get(|| async { Json(crate::openapi::openapi()) }),
        )
        .merge(studio::routes())
        .merge(classes::routes())
        .merge(schedule::routes())
        .merge(members::routes())
        .merge(content::routes())
        .merge(plans::routes())
        .merge(instructors::routes())
        .merge(locations::routes())
        .merge(coupons::routes())
        .merge(programs::routes())
        .merge(bookings::routes())
        .merge(financials::routes())
        .merge(expenses::routes())
        .merge(messages::routes())
        .merge(directory::routes())
}

/// Tables whose rows belong to a studio (checked names, never user input).
#[derive(Clone, Copy)]
pub enum Table {
    Programs,
    Instructors,
    Locations,
    Occurrences,
}

impl Table {
    fn name(self) -> &'static str {
        match self {
            Table::Programs => "programs",
            Table::Instructors => "instructors",
            Table::Locations => "locations",
            Table::Occurrences => "occurrences",
        }
    }

    fn what(self) -> &'static str {
        match self {
            Table::Programs => "program",
            Table::Instructors => "instructor",
            Table::Locations => "location",
            Table::Occurrences => "occurrence",
        }
    }
}

/// The handler's write transaction (see [`crate::write`]): `BEGIN IMMEDIATE` after this process's
/// write turn, or the transaction that claimed the request's idempotency key.
async fn write_tx(s: &App) -> ApiResult<Tx> {
    crate::write::begin(&s.db, &s.writer).await
}

/// Is `id` a row of `table` in `studio`?
async fn exists<'e>(
    db: impl SqliteExecutor<'e>,
    table: Table,
    studio: &str,
    id: &str,
) -> ApiResult<bool> {
    let sql = format!(
        "SELECT COUNT(*) FROM {} WHERE studio_id = ? AND id = ?",
        table.name()
    );
    let n: i64 = sqlx::query_scalar(&sql)
        .bind(studio)
        .bind(id)
        .fetch_one(db)
        .await?;
    Ok(n > 0)
}

/// `404` (naming `field`) unless the referenced row is in the studio.
async fn require_ref<'e>(
    db: impl SqliteExecutor<'e>,
    table: Table,
    studio: &str,
    id: Option<&str>,
    field: &'static str,
) -> ApiResult<()> {
    if let Some(id) = id
        && !exists(db, table, studio, id).await?
    {
        return Err(ApiError::missing_ref(table.what(), id, field));
    }
    Ok(())
}

/// `404` unless the row named in the path is in the studio.
async fn require<'e>(
    db: impl SqliteExecutor<'e>,
    table: Table,
    studio: &str,
    id: &str,
) -> ApiResult<()> {
    if !exists(db, table, studio, id).await? {
        return Err(ApiError::not_found(table.what(), id));
    }
    Ok(())
}

/// An optional text of at most `max` characters.
fn opt_text(field: &str, value: Option<&str>, max: usize) -> ApiResult<()> {
    match value {
        Some(v) if v.chars().count() > max => Err(ApiError::invalid(
            field,
            format!("must be at most {max} characters"),
        )),
        _ => Ok(()),
    }
}

/// A required name-like text (1..=200 characters, trimmed).
fn name(field: &str, value: &str) -> ApiResult<String> {
    check_text(field, value, 1, 200)?;
    Ok(value.trim().to_owned())
}

/// A JSON array stored as text.
fn json_list(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| json!([]))
}
