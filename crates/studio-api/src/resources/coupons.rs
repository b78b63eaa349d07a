//! Coupons: discount codes members use when booking.
//!
//! Contract: `code` is `A-Z0-9_-`, 3..32 characters (stored upper-case), unique per studio (`409`).
//! Exactly one of `percent_off` (1..100) and `amount_off_cents` (> 0, needs `currency`). Archiving
//! is one-way; an archived coupon cannot be redeemed (`409`); archiving twice is `409`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};

use super::{opt_text, write_tx};
use crate::app::AppState;
use crate::error::{ApiError, ApiResult};
use crate::input::{Body, Params, check_currency, check_min, check_range, time};
use crate::pagination::{Order, Page};
use crate::tenancy::Tenant;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/coupons", get(list).post(create))
        .route("/coupons/{coupon_id}/archive", post(archive))
}

const SELECT: &str = "SELECT id, code, description, percent_off, amount_off_cents, currency,
    max_redemptions, expires_at, status, times_redeemed FROM coupons";

#[derive(sqlx::FromRow)]
struct CouponRow {
    id: String,
    code: String,
    description: Option<String>,
    percent_off: Option<i64>,
    amount_off_cents: Option<i64>,
    currency: Option<String>,
    max_redemptions: Option<i64>,
    expires_at: Option<String>,
    status: String,
    times_redeemed: i64,
}

impl CouponRow {
    fn render(self) -> Value {
        json!({
            "id": self.id, "code": self.code, "description": self.description,
            "percent_off": self.percent_off, "amount_off_cents": self.amount_off_cents,
            "currency": self.currency, "max_redemptions": self.max_redemptions,
            "expires_at": self.expires_at, "status": self.status,
            "times_redeemed": self.times_redeemed,
        })
    }
}

async fn fetch(db: &mut SqliteConnection, studio: &str, id: &str) -> ApiResult<CouponRow> {
    sqlx::query_as::<_, CouponRow>(&format!("{SELECT} WHERE studio_id = ? AND id = ?"))
        .bind(studio)
        .bind(id)
        .fetch_optional(db)
        .await?
        .ok_or_else(|| ApiError::not_found("coupon", id))
}

async fn list(State(s): State<AppState>, t: Tenant, p: Params) -> ApiResult<Json<Value>> {
    p.allow(&["status"])?;
    let page = Page::from_params("coupons", &p)?;
    let status = p.one_of("status", &["active", "archived"])?;
    let mut qb = QueryBuilder::<Sqlite>::new(format!("{SELECT} WHERE studio_id = "));
    qb.push_bind(t.id.clone());
    if let Some(v) = status {
        qb.push(" AND status = ").push_bind(v);
    }
    page.push(&mut qb, "code", "id", Order::Asc);
    let rows: Vec<CouponRow> = qb.build_query_as().fetch_all(&s.db).await?;
    Ok(Json(page.finish(
        rows,
        |r| (r.code.clone(), r.id.clone()),
        CouponRow::render,
    )))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewCoupon {
    code: String,
    description: Option<String>,
    percent_off: Option<i64>,
    amount_off_cents: Option<i64>,
    currency: Option<String>,
    max_redemptions: Option<i64>,
    expires_at: Option<String>,
}

async fn create(
    State(s): State<AppState>,
    t: Tenant,
    Body(input): Body<NewCoupon>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let code = input.code.trim().to_owned();
    let code_ok = (3..=32).contains(&code.len())
        && code
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if !code_ok {
        return Err(ApiError::invalid(
            "code",
            "must be 3 to 32 characters of A-Z, 0-9, _ and -",
        ));
    }
    opt_text("description", input.description.as_deref(), 500)?;
    match (input.percent_off, input.amount_off_cents) {
        (Some(p), None) => {
            check_range("percent_off", p, 1, 100)?;
            if input.currency.is_some() {
                return Err(ApiError::invalid(
                    "currency",
                    "a percent coupon has no currency",
                ));
            }
        }
        (None, Some(a)) => {
            check_min("amount_off_cents", a, 1)?;
            let c = input.currency.as_deref().ok_or_else(|| {
                ApiError::invalid("currency", "an amount coupon needs a currency")
            })?;
            check_currency("currency", c)?;
        }
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                "amount_off_cents",
                "give either percent_off or amount_off_cents, not both",
            ));
        }
        (None, None) => {
            return Err(ApiError::invalid(
                "percent_off",
                "give either percent_off or amount_off_cents",
            ));
        }
    }
    if let Some(m) = input.max_redemptions {
        check_min("max_redemptions", m, 1)?;
    }
    let expires = input
        .expires_at
        .as_deref()
        .map(|e| time("expires_at", e))
        .transpose()?;
    let mut tx = write_tx(&s).await?;
    let taken: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM coupons WHERE studio_id = ? AND code = ?")
            .bind(&t.id)
            .bind(&code)
            .fetch_one(&mut *tx)
            .await?;
    if taken > 0 {
        return Err(ApiError::conflict(
            "code_taken",
            format!("a coupon with code {code} already exists"),
        ));
    }
    let row = CouponRow {
        id: crate::store::new_id("cpn"),
        code,
        description: input.description,
        percent_off: input.percent_off,
        amount_off_cents: input.amount_off_cents,
        currency: input.currency,
        max_redemptions: input.max_redemptions,
        expires_at: expires,
        status: "active".into(),
        times_redeemed: 0,
    };
    sqlx::query(
        "INSERT INTO coupons (id, studio_id, code, description, percent_off, amount_off_cents,
         currency, max_redemptions, expires_at, status, times_redeemed) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'active', 0)",
    )
    .bind(&row.id)
    .bind(&t.id)
    .bind(&row.code)
    .bind(&row.description)
    .bind(row.percent_off)
    .bind(row.amount_off_cents)
    .bind(&row.currency)
    .bind(row.max_redemptions)
    .bind(&row.expires_at)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(row.render())))
}

async fn archive(
    State(s): State<AppState>,
    t: Tenant,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let mut tx = write_tx(&s).await?;
    let mut row = fetch(&mut tx, &t.id, &id).await?;
    if row.status == "archived" {
        return Err(ApiError::conflict(
            "already_archived",
            format!("coupon {} is already archived", row.code),
        ));
    }
    sqlx::query("UPDATE coupons SET status = 'archived' WHERE studio_id = ? AND id = ?")
        .bind(&t.id)
        .bind(&id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    row.status = "archived".into();
    Ok(Json(row.render()))
}
