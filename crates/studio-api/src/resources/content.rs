//! On-demand videos.
//!
//! Contract: listed by title, filterable by `q` and `visibility`; only the descriptive fields and the
//! visibility (public/members/hidden) can be changed.

use axum::extract::{Path, State};
use axum::routing::{get, patch};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};

use super::{json_list, name, opt_text, write_tx};
use crate::app::AppState;
use crate::error::{ApiError, ApiResult};
use crate::input::{Body, LEVELS, Params, check_one_of, check_tags};
use crate::pagination::{Order, Page};
use crate::tenancy::Tenant;

const VISIBILITY: &[&str] = &["public", "members", "hidden"];

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/content", get(list))
        .route("/content/{content_id}", patch(update))
}

const SELECT: &str = "SELECT id, title, description, duration_seconds, instructor_id, level,
    visibility, tags FROM content";

#[derive(sqlx::FromRow)]
struct ContentRow {
    id: String,
    title: String,
    description: Option<String>,
    duration_seconds: i64,
    instructor_id: Option<String>,
    level: Option<String>,
    visibility: String,
    tags: String,
}

impl ContentRow {
    fn render(self) -> Value {
        json!({
            "id": self.id, "title": self.title, "description": self.description,
            "duration_seconds": self.duration_seconds, "instructor_id": self.instructor_id,
            "level": self.level, "visibility": self.visibility, "tags": json_list(&self.tags),
        })
    }
}

async fn fetch(db: &mut SqliteConnection, studio: &str, id: &str) -> ApiResult<ContentRow> {
    sqlx::query_as::<_, ContentRow>(&format!("{SELECT} WHERE studio_id = ? AND id = ?"))
        .bind(studio)
        .bind(id)
        .fetch_optional(db)
        .await?
        .ok_or_else(|| ApiError::not_found("content", id))
}

async fn list(State(s): State<AppState>, t: Tenant, p: Params) -> ApiResult<Json<Value>> {
    p.allow(&["q", "visibility"])?;
    let page = Page::from_params("content", &p)?;
    let visibility = p.one_of("visibility", VISIBILITY)?;
    let mut qb = QueryBuilder::<Sqlite>::new(format!("{SELECT} WHERE studio_id = "));
    qb.push_bind(t.id.clone());
    if let Some(v) = visibility {
        qb.push(" AND visibility = ").push_bind(v);
    }
    if let Some(q) = p.str("q") {
        let like = format!("%{}%", q.to_lowercase());
        qb.push(" AND (lower(title) LIKE ").push_bind(like.clone());
        qb.push(" OR lower(coalesce(description, '')) LIKE ")
            .push_bind(like.clone());
        qb.push(" OR lower(tags) LIKE ").push_bind(like).push(")");
    }
    page.push(&mut qb, "title", "id", Order::Asc);
    let rows: Vec<ContentRow> = qb.build_query_as().fetch_all(&s.db).await?;
    Ok(Json(page.finish(
        rows,
        |r| (r.title.clone(), r.id.clone()),
        ContentRow::render,
    )))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ContentPatch {
    title: Option<String>,
    description: Option<String>,
    visibility: Option<String>,
    level: Option<String>,
    tags: Option<Vec<String>>,
}

async fn update(
    State(s): State<AppState>,
    t: Tenant,
    Path(id): Path<String>,
    Body(p): Body<ContentPatch>,
) -> ApiResult<Json<Value>> {
    let title = p.title.as_deref().map(|v| name("title", v)).transpose()?;
    opt_text("description", p.description.as_deref(), 4000)?;
    if let Some(v) = &p.visibility {
        check_one_of("visibility", v, VISIBILITY)?;
    }
    if let Some(v) = &p.level {
        check_one_of("level", v, LEVELS)?;
    }
    if let Some(tags) = &p.tags {
        check_tags("tags", tags, 20)?;
    }
    let mut tx = write_tx(&s).await?;
    let c = fetch(&mut tx, &t.id, &id).await?;
    let tags = match p.tags {
        Some(tags) => json!(tags.iter().map(|t| t.trim()).collect::<Vec<_>>()).to_string(),
        None => c.tags,
    };
    sqlx::query(
        "UPDATE content SET title = ?, description = ?, visibility = ?, level = ?, tags = ?
         WHERE studio_id = ? AND id = ?",
    )
    .bind(title.unwrap_or(c.title))
    .bind(p.description.or(c.description))
    .bind(p.visibility.unwrap_or(c.visibility))
    .bind(p.level.or(c.level))
    .bind(tags)
    .bind(&t.id)
    .bind(&id)
    .execute(&mut *tx)
    .await?;
    let out = fetch(&mut tx, &t.id, &id).await?.render();
    tx.commit().await?;
    Ok(Json(out))
}
