//! Instructors: who teaches.
//!
//! Contract: listed by name, filterable by `active` and `q`; created active; deactivate with
//! `PATCH {active: false}` (instructors are never deleted, classes keep pointing at them).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, patch};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};

use super::{json_list, name, opt_text, write_tx};
use crate::app::AppState;
use crate::error::{ApiError, ApiResult};
use crate::input::{Body, Params, check_email, check_tags};
use crate::pagination::{Order, Page};
use crate::tenancy::Tenant;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/instructors", get(list).post(create))
        .route("/instructors/{instructor_id}", patch(update))
}

const SELECT: &str = "SELECT id, name, email, bio, specialties, active FROM instructors";

#[derive(sqlx::FromRow)]
struct InstructorRow {
    id: String,
    name: String,
    email: Option<String>,
    bio: Option<String>,
    specialties: String,
    active: bool,
}

impl InstructorRow {
    fn render(self) -> Value {
        json!({
            "id": self.id, "name": self.name, "email": self.email, "bio": self.bio,
            "specialties": json_list(&self.specialties), "active": self.active,
        })
    }
}

async fn fetch(db: &mut SqliteConnection, studio: &str, id: &str) -> ApiResult<InstructorRow> {
    sqlx::query_as::<_, InstructorRow>(&format!("{SELECT} WHERE studio_id = ? AND id = ?"))
        .bind(studio)
        .bind(id)
        .fetch_optional(db)
        .await?
        .ok_or_else(|| ApiError::not_found("instructor", id))
}

async fn list(State(s): State<AppState>, t: Tenant, p: Params) -> ApiResult<Json<Value>> {
    p.allow(&["q", "active"])?;
    let page = Page::from_params("instructors", &p)?;
    let active = p.one_of("active", &["true", "false"])?;
    let mut qb = QueryBuilder::<Sqlite>::new(format!("{SELECT} WHERE studio_id = "));
    qb.push_bind(t.id.clone());
    if let Some(v) = active {
        qb.push(" AND active = ").push_bind(v == "true");
    }
    if let Some(q) = p.str("q") {
        let like = format!("%{}%", q.to_lowercase());
        qb.push(" AND (lower(name) LIKE ").push_bind(like.clone());
        qb.push(" OR lower(specialties) LIKE ")
            .push_bind(like)
            .push(")");
    }
    page.push(&mut qb, "name", "id", Order::Asc);
    let rows: Vec<InstructorRow> = qb.build_query_as().fetch_all(&s.db).await?;
    Ok(Json(page.finish(
        rows,
        |r| (r.name.clone(), r.id.clone()),
        InstructorRow::render,
    )))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewInstructor {
    name: String,
    email: Option<String>,
    bio: Option<String>,
    specialties: Option<Vec<String>>,
}

fn check_common(
    email: Option<&str>,
    bio: Option<&str>,
    specialties: Option<&[String]>,
) -> ApiResult<()> {
    if let Some(e) = email {
        check_email("email", e)?;
    }
    opt_text("bio", bio, 4000)?;
    if let Some(s) = specialties {
        check_tags("specialties", s, 20)?;
    }
    Ok(())
}

async fn create(
    State(s): State<AppState>,
    t: Tenant,
    Body(input): Body<NewInstructor>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    check_common(
        input.email.as_deref(),
        input.bio.as_deref(),
        input.specialties.as_deref(),
    )?;
    let row = InstructorRow {
        id: crate::store::new_id("ins"),
        name: name("name", &input.name)?,
        email: input.email,
        bio: input.bio,
        specialties: json!(input.specialties.unwrap_or_default()).to_string(),
        active: true,
    };
    let mut tx = write_tx(&s).await?;
    sqlx::query("INSERT INTO instructors (id, studio_id, name, email, bio, specialties, active) VALUES (?, ?, ?, ?, ?, ?, 1)")
        .bind(&row.id)
        .bind(&t.id)
        .bind(&row.name)
        .bind(&row.email)
        .bind(&row.bio)
        .bind(&row.specialties)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(row.render())))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InstructorPatch {
    name: Option<String>,
    email: Option<String>,
    bio: Option<String>,
    specialties: Option<Vec<String>>,
    active: Option<bool>,
}

async fn update(
    State(s): State<AppState>,
    t: Tenant,
    Path(id): Path<String>,
    Body(p): Body<InstructorPatch>,
) -> ApiResult<Json<Value>> {
    let new_name = p.name.as_deref().map(|n| name("name", n)).transpose()?;
    check_common(
        p.email.as_deref(),
        p.bio.as_deref(),
        p.specialties.as_deref(),
    )?;
    let mut tx = write_tx(&s).await?;
    let i = fetch(&mut tx, &t.id, &id).await?;
    sqlx::query("UPDATE instructors SET name = ?, email = ?, bio = ?, specialties = ?, active = ? WHERE studio_id = ? AND id = ?")
        .bind(new_name.unwrap_or(i.name))
        .bind(p.email.or(i.email))
        .bind(p.bio.or(i.bio))
        .bind(p.specialties.map(|s| json!(s).to_string()).unwrap_or(i.specialties))
        .bind(p.active.unwrap_or(i.active))
        .bind(&t.id)
        .bind(&id)
        .execute(&mut *tx)
        .await?;
    let out = fetch(&mut tx, &t.id, &id).await?.render();
    tx.commit().await?;
    Ok(Json(out))
}
