//! Programs: families of classes ("Vinyasa", "Prenatal").
//!
//! Contract: listed by name; `color` is a `#rrggbb` hex colour.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, patch};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};

use super::{name, opt_text, write_tx};
use crate::app::AppState;
use crate::error::{ApiError, ApiResult};
use crate::input::{Body, Params};
use crate::pagination::{Order, Page};
use crate::tenancy::Tenant;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/programs", get(list).post(create))
        .route("/programs/{program_id}", patch(update))
}

#[derive(sqlx::FromRow)]
struct ProgramRow {
    id: String,
    name: String,
    description: Option<String>,
    color: Option<String>,
}

impl ProgramRow {
    fn render(self) -> Value {
        json!({"id": self.id, "name": self.name, "description": self.description, "color": self.color})
    }
}

fn check_color(color: Option<&str>) -> ApiResult<()> {
    if let Some(c) = color {
        let ok =
            c.len() == 7 && c.starts_with('#') && c[1..].bytes().all(|b| b.is_ascii_hexdigit());
        if !ok {
            return Err(ApiError::invalid(
                "color",
                "must be a hex colour like #7b61ff",
            ));
        }
    }
    Ok(())
}

async fn fetch(db: &mut SqliteConnection, studio: &str, id: &str) -> ApiResult<ProgramRow> {
    sqlx::query_as::<_, ProgramRow>(
        "SELECT id, name, description, color FROM programs WHERE studio_id = ? AND id = ?",
    )
    .bind(studio)
    .bind(id)
    .fetch_optional(db)
    .await?
    .ok_or_else(|| ApiError::not_found("program", id))
}

async fn list(State(s): State<AppState>, t: Tenant, p: Params) -> ApiResult<Json<Value>> {
    p.allow(&["q"])?;
    let page = Page::from_params("programs", &p)?;
    let mut qb = QueryBuilder::<Sqlite>::new(
        "SELECT id, name, description, color FROM programs WHERE studio_id = ",
    );
    qb.push_bind(t.id.clone());
    if let Some(q) = p.str("q") {
        qb.push(" AND lower(name) LIKE ")
            .push_bind(format!("%{}%", q.to_lowercase()));
    }
    page.push(&mut qb, "name", "id", Order::Asc);
    let rows: Vec<ProgramRow> = qb.build_query_as().fetch_all(&s.db).await?;
    Ok(Json(page.finish(
        rows,
        |r| (r.name.clone(), r.id.clone()),
        ProgramRow::render,
    )))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewProgram {
    name: String,
    description: Option<String>,
    color: Option<String>,
}

async fn create(
    State(s): State<AppState>,
    t: Tenant,
    Body(input): Body<NewProgram>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let row = ProgramRow {
        id: crate::store::new_id("prg"),
        name: name("name", &input.name)?,
        description: input.description,
        color: input.color,
    };
    opt_text("description", row.description.as_deref(), 2000)?;
    check_color(row.color.as_deref())?;
    let mut tx = write_tx(&s).await?;
    sqlx::query(
        "INSERT INTO programs (id, studio_id, name, description, color) VALUES (?, ?, ?, ?, ?)",
    )
    .bind(&row.id)
    .bind(&t.id)
    .bind(&row.name)
    .bind(&row.description)
    .bind(&row.color)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(row.render())))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProgramPatch {
    name: Option<String>,
    description: Option<String>,
    color: Option<String>,
}

async fn update(
    State(s): State<AppState>,
    t: Tenant,
    Path(id): Path<String>,
    Body(p): Body<ProgramPatch>,
) -> ApiResult<Json<Value>> {
    let new_name = p.name.as_deref().map(|n| name("name", n)).transpose()?;
    opt_text("description", p.description.as_deref(), 2000)?;
    check_color(p.color.as_deref())?;
    let mut tx = write_tx(&s).await?;
    let mut row = fetch(&mut tx, &t.id, &id).await?;
    if let Some(v) = new_name {
        row.name = v;
    }
    if let Some(v) = p.description {
        row.description = Some(v);
    }
    if let Some(v) = p.color {
        row.color = Some(v);
    }
    sqlx::query(
        "UPDATE programs SET name = ?, description = ?, color = ? WHERE studio_id = ? AND id = ?",
    )
    .bind(&row.name)
    .bind(&row.description)
    .bind(&row.color)
    .bind(&t.id)
    .bind(&id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Json(row.render()))
}
