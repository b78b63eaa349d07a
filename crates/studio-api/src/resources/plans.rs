//! Plans: what a studio sells (memberships, class packs, drop-ins).
//!
//! Contract: `interval` (month/year) only on memberships (default month), `class_credits` (1..1000)
//! only and always on class packs, `price_cents >= 0`. Archiving is one-way; an archived plan
//! cannot be sold (booking or invitation with it is `409`); archiving twice is `409`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};

use super::{name, opt_text, write_tx};
use crate::app::AppState;
use crate::error::{ApiError, ApiResult};
use crate::input::{Body, Params, check_currency, check_min, check_one_of, check_range};
use crate::pagination::{Order, Page};
use crate::tenancy::Tenant;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/plans", get(list).post(create))
        .route("/plans/{plan_id}", patch(update))
        .route("/plans/{plan_id}/archive", post(archive))
}

const SELECT: &str = "SELECT id, name, description, kind, price_cents, currency, interval,
    class_credits, status FROM plans";

#[derive(sqlx::FromRow)]
struct PlanRow {
    id: String,
    name: String,
    description: Option<String>,
    kind: String,
    price_cents: i64,
    currency: String,
    interval: Option<String>,
    class_credits: Option<i64>,
    status: String,
}

impl PlanRow {
    fn render(self) -> Value {
        json!({
            "id": self.id, "name": self.name, "description": self.description, "kind": self.kind,
            "price_cents": self.price_cents, "currency": self.currency, "interval": self.interval,
            "class_credits": self.class_credits, "status": self.status,
        })
    }

    fn check(&mut self) -> ApiResult<()> {
        self.name = name("name", &self.name)?;
        opt_text("description", self.description.as_deref(), 2000)?;
        check_one_of("kind", &self.kind, &["membership", "class_pack", "drop_in"])?;
        check_min("price_cents", self.price_cents, 0)?;
        check_currency("currency", &self.currency)?;
        if self.kind == "membership" {
            let interval = self.interval.get_or_insert_with(|| "month".into());
            check_one_of("interval", interval, &["month", "year"])?;
        } else if self.interval.is_some() {
            return Err(ApiError::invalid(
                "interval",
                "only membership plans have an interval",
            ));
        }
        if self.kind == "class_pack" {
            let credits = self.class_credits.ok_or_else(|| {
                ApiError::invalid("class_credits", "a class pack needs class_credits")
            })?;
            check_range("class_credits", credits, 1, 1000)?;
        } else if self.class_credits.is_some() {
            return Err(ApiError::invalid(
                "class_credits",
                "only class packs have class_credits",
            ));
        }
        Ok(())
    }
}

async fn fetch(db: &mut SqliteConnection, studio: &str, id: &str) -> ApiResult<PlanRow> {
    sqlx::query_as::<_, PlanRow>(&format!("{SELECT} WHERE studio_id = ? AND id = ?"))
        .bind(studio)
        .bind(id)
        .fetch_optional(db)
        .await?
        .ok_or_else(|| ApiError::not_found("plan", id))
}

async fn list(State(s): State<AppState>, t: Tenant, p: Params) -> ApiResult<Json<Value>> {
    p.allow(&["status", "kind"])?;
    let page = Page::from_params("plans", &p)?;
    let status = p.one_of("status", &["active", "archived"])?;
    let kind = p.one_of("kind", &["membership", "class_pack", "drop_in"])?;
    let mut qb = QueryBuilder::<Sqlite>::new(format!("{SELECT} WHERE studio_id = "));
    qb.push_bind(t.id.clone());
    if let Some(v) = status {
        qb.push(" AND status = ").push_bind(v);
    }
    if let Some(v) = kind {
        qb.push(" AND kind = ").push_bind(v);
    }
    page.push(&mut qb, "name", "id", Order::Asc);
    let rows: Vec<PlanRow> = qb.build_query_as().fetch_all(&s.db).await?;
    Ok(Json(page.finish(
        rows,
        |r| (r.name.clone(), r.id.clone()),
        PlanRow::render,
    )))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewPlan {
    name: String,
    description: Option<String>,
    kind: String,
    price_cents: i64,
    currency: Option<String>,
    interval: Option<String>,
    class_credits: Option<i64>,
}

async fn create(
    State(s): State<AppState>,
    t: Tenant,
    Body(input): Body<NewPlan>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let mut plan = PlanRow {
        id: crate::store::new_id("pln"),
        name: input.name,
        description: input.description,
        kind: input.kind,
        price_cents: input.price_cents,
        currency: input.currency.unwrap_or_else(|| t.currency.clone()),
        interval: input.interval,
        class_credits: input.class_credits,
        status: "active".into(),
    };
    plan.check()?;
    let mut tx = write_tx(&s).await?;
    sqlx::query(
        "INSERT INTO plans (id, studio_id, name, description, kind, price_cents, currency,
         interval, class_credits, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'active')",
    )
    .bind(&plan.id)
    .bind(&t.id)
    .bind(&plan.name)
    .bind(&plan.description)
    .bind(&plan.kind)
    .bind(plan.price_cents)
    .bind(&plan.currency)
    .bind(&plan.interval)
    .bind(plan.class_credits)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(plan.render())))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlanPatch {
    name: Option<String>,
    description: Option<String>,
    price_cents: Option<i64>,
    currency: Option<String>,
    interval: Option<String>,
    class_credits: Option<i64>,
}

async fn update(
    State(s): State<AppState>,
    t: Tenant,
    Path(id): Path<String>,
    Body(p): Body<PlanPatch>,
) -> ApiResult<Json<Value>> {
    let mut tx = write_tx(&s).await?;
    let mut plan = fetch(&mut tx, &t.id, &id).await?;
    if let Some(v) = p.name {
        plan.name = v;
    }
    if let Some(v) = p.description {
        plan.description = Some(v);
    }
    if let Some(v) = p.price_cents {
        plan.price_cents = v;
    }
    if let Some(v) = p.currency {
        plan.currency = v;
    }
    if let Some(v) = p.interval {
        plan.interval = Some(v);
    }
    if let Some(v) = p.class_credits {
        plan.class_credits = Some(v);
    }
    plan.check()?;
    sqlx::query(
        "UPDATE plans SET name = ?, description = ?, price_cents = ?, currency = ?, interval = ?,
         class_credits = ? WHERE studio_id = ? AND id = ?",
    )
    .bind(&plan.name)
    .bind(&plan.description)
    .bind(plan.price_cents)
    .bind(&plan.currency)
    .bind(&plan.interval)
    .bind(plan.class_credits)
    .bind(&t.id)
    .bind(&id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Json(plan.render()))
}

async fn archive(
    State(s): State<AppState>,
    t: Tenant,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let mut tx = write_tx(&s).await?;
    let mut plan = fetch(&mut tx, &t.id, &id).await?;
    if plan.status == "archived" {
        return Err(ApiError::conflict(
            "already_archived",
            format!("plan {} is already archived", plan.name),
        ));
    }
    sqlx::query("UPDATE plans SET status = 'archived' WHERE studio_id = ? AND id = ?")
        .bind(&t.id)
        .bind(&id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    plan.status = "archived".into();
    Ok(Json(plan.render()))
}
