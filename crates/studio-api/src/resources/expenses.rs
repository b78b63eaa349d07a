//! Expenses: what the studio spends, by category.
//!
//! Contract: `amount_cents > 0`, category from a fixed set, `incurred_on` a date. Listed newest
//! first; `from`/`to` filter on `incurred_on` (`to` exclusive).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, patch};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};

use super::{opt_text, write_tx};
use crate::app::AppState;
use crate::error::{ApiError, ApiResult};
use crate::input::{Body, Params, check_currency, check_min, check_one_of, check_text, date};
use crate::pagination::{Order, Page};
use crate::tenancy::Tenant;

/// The fixed set of expense categories.
pub const CATEGORIES: &[&str] = &[
    "rent",
    "payroll",
    "marketing",
    "equipment",
    "utilities",
    "software",
    "other",
];

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/expenses", get(list).post(create))
        .route("/expenses/{expense_id}", patch(update).delete(delete))
}

const SELECT: &str =
    "SELECT id, description, category, amount_cents, currency, incurred_on, vendor FROM expenses";

#[derive(sqlx::FromRow)]
struct ExpenseRow {
    id: String,
    description: String,
    category: String,
    amount_cents: i64,
    currency: String,
    incurred_on: String,
    vendor: Option<String>,
}

impl ExpenseRow {
    fn render(self) -> Value {
        json!({
            "id": self.id, "description": self.description, "category": self.category,
            "amount_cents": self.amount_cents, "currency": self.currency,
            "incurred_on": self.incurred_on, "vendor": self.vendor,
        })
    }

    fn check(&mut self) -> ApiResult<()> {
        check_text("description", &self.description, 1, 500)?;
        self.description = self.description.trim().to_owned();
        check_one_of("category", &self.category, CATEGORIES)?;
        check_min("amount_cents", self.amount_cents, 1)?;
        check_currency("currency", &self.currency)?;
        self.incurred_on = date("incurred_on", &self.incurred_on)?;
        opt_text("vendor", self.vendor.as_deref(), 200)
    }
}

async fn fetch(db: &mut SqliteConnection, studio: &str, id: &str) -> ApiResult<ExpenseRow> {
    sqlx::query_as::<_, ExpenseRow>(&format!("{SELECT} WHERE studio_id = ? AND id = ?"))
        .bind(studio)
        .bind(id)
        .fetch_optional(db)
        .await?
        .ok_or_else(|| ApiError::not_found("expense", id))
}

async fn list(State(s): State<AppState>, t: Tenant, p: Params) -> ApiResult<Json<Value>> {
    p.allow(&["from", "to", "category"])?;
    let page = Page::from_params("expenses", &p)?;
    let category = p.one_of("category", CATEGORIES)?;
    let mut qb = QueryBuilder::<Sqlite>::new(format!("{SELECT} WHERE studio_id = "));
    qb.push_bind(t.id.clone());
    if let Some(from) = p.date("from")? {
        qb.push(" AND incurred_on >= ").push_bind(from.to_string());
    }
    if let Some(to) = p.date("to")? {
        qb.push(" AND incurred_on < ").push_bind(to.to_string());
    }
    if let Some(v) = category {
        qb.push(" AND category = ").push_bind(v);
    }
    page.push(&mut qb, "incurred_on", "id", Order::Desc);
    let rows: Vec<ExpenseRow> = qb.build_query_as().fetch_all(&s.db).await?;
    Ok(Json(page.finish(
        rows,
        |r| (r.incurred_on.clone(), r.id.clone()),
        ExpenseRow::render,
    )))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewExpense {
    description: String,
    category: String,
    amount_cents: i64,
    currency: Option<String>,
    incurred_on: String,
    vendor: Option<String>,
}

async fn create(
    State(s): State<AppState>,
    t: Tenant,
    Body(input): Body<NewExpense>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let mut row = ExpenseRow {
        id: crate::store::new_id("exp"),
        description: input.description,
        category: input.category,
        amount_cents: input.amount_cents,
        currency: input.currency.unwrap_or_else(|| t.currency.clone()),
        incurred_on: input.incurred_on,
        vendor: input.vendor,
    };
    row.check()?;
    let mut tx = write_tx(&s).await?;
    sqlx::query(
        "INSERT INTO expenses (id, studio_id, description, category, amount_cents, currency, incurred_on, vendor)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&row.id)
    .bind(&t.id)
    .bind(&row.description)
    .bind(&row.category)
    .bind(row.amount_cents)
    .bind(&row.currency)
    .bind(&row.incurred_on)
    .bind(&row.vendor)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(row.render())))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpensePatch {
    description: Option<String>,
    category: Option<String>,
    amount_cents: Option<i64>,
    currency: Option<String>,
    incurred_on: Option<String>,
    vendor: Option<String>,
}

async fn update(
    State(s): State<AppState>,
    t: Tenant,
    Path(id): Path<String>,
    Body(p): Body<ExpensePatch>,
) -> ApiResult<Json<Value>> {
    let mut tx = write_tx(&s).await?;
    let mut row = fetch(&mut tx, &t.id, &id).await?;
    if let Some(v) = p.description {
        row.description = v;
    }
    if let Some(v) = p.category {
        row.category = v;
    }
    if let Some(v) = p.amount_cents {
        row.amount_cents = v;
    }
    if let Some(v) = p.currency {
        row.currency = v;
    }
    if let Some(v) = p.incurred_on {
        row.incurred_on = v;
    }
    if let Some(v) = p.vendor {
        row.vendor = Some(v);
    }
    row.check()?;
    sqlx::query(
        "UPDATE expenses SET description = ?, category = ?, amount_cents = ?, currency = ?,
         incurred_on = ?, vendor = ? WHERE studio_id = ? AND id = ?",
    )
    .bind(&row.description)
    .bind(&row.category)
    .bind(row.amount_cents)
    .bind(&row.currency)
    .bind(&row.incurred_on)
    .bind(&row.vendor)
    .bind(&t.id)
    .bind(&id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Json(row.render()))
}

async fn delete(
    State(s): State<AppState>,
    t: Tenant,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let mut tx = write_tx(&s).await?;
    fetch(&mut tx, &t.id, &id).await?;
    sqlx::query("DELETE FROM expenses WHERE studio_id = ? AND id = ?")
        .bind(&t.id)
        .bind(&id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(Json(json!({"id": id, "deleted": true})))
}
