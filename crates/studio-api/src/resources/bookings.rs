//! Bookings: a member's place in one occurrence, and what they paid.
//!
//! Contract: booking checks, in order: the occurrence and member exist in the studio (`404` on the
//! field), the occurrence is not cancelled and has not started (`409`), the member holds no live
//! booking for it (`409`), a plan is active (`404`/`409`), a coupon is usable (`404`/`409`), and the
//! session is not full (`409` "… is full (20 of 20 booked)"). The price is the class price, `0` when
//! covered by a membership or class-pack plan, the plan's price for a drop-in plan, less the
//! coupon. Cancelling with `refund: true` refunds the price paid.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};

use super::schedule;
use super::{Table, opt_text, require, write_tx};
use crate::app::AppState;
use crate::error::{ApiError, ApiResult};
use crate::input::{Body, Params, now};
use crate::pagination::{Order, Page};
use crate::tenancy::Tenant;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/bookings", get(list).post(create))
        .route("/bookings/{booking_id}/cancel", post(cancel))
}

const SELECT: &str = "SELECT b.id, b.occurrence_id, b.member_id, b.status, b.price_cents,
    b.currency, b.plan_id, b.coupon_id, b.refund_cents, b.created_at, b.cancelled_at, o.starts_at
    FROM bookings b JOIN occurrences o ON o.id = b.occurrence_id";

/// What booking needs to know about a coupon.
#[derive(sqlx::FromRow)]
struct CouponUse {
    id: String,
    status: String,
    percent_off: Option<i64>,
    amount_off_cents: Option<i64>,
    currency: Option<String>,
    max_redemptions: Option<i64>,
    expires_at: Option<String>,
    times_redeemed: i64,
}

#[derive(sqlx::FromRow)]
struct BookingRow {
    id: String,
    occurrence_id: String,
    member_id: String,
    status: String,
    price_cents: i64,
    currency: String,
    plan_id: Option<String>,
    coupon_id: Option<String>,
    refund_cents: i64,
    created_at: String,
    cancelled_at: Option<String>,
    starts_at: String,
}

impl BookingRow {
    fn render(self) -> Value {
        json!({
            "id": self.id, "occurrence_id": self.occurrence_id, "member_id": self.member_id,
            "status": self.status, "price_cents": self.price_cents, "currency": self.currency,
            "plan_id": self.plan_id, "coupon_id": self.coupon_id,
            "refund_cents": self.refund_cents, "created_at": self.created_at,
            "cancelled_at": self.cancelled_at, "starts_at": self.starts_at,
        })
    }
}

async fn fetch(db: &mut SqliteConnection, studio: &str, id: &str) -> ApiResult<BookingRow> {
    sqlx::query_as::<_, BookingRow>(&format!("{SELECT} WHERE b.studio_id = ? AND b.id = ?"))
        .bind(studio)
        .bind(id)
        .fetch_optional(db)
        .await?
        .ok_or_else(|| ApiError::not_found("booking", id))
}

async fn list(State(s): State<AppState>, t: Tenant, p: Params) -> ApiResult<Json<Value>> {
    p.allow(&["from", "to", "status", "member_id"])?;
    let page = Page::from_params("bookings", &p)?;
    let status = p.one_of("status", &["booked", "cancelled", "attended"])?;
    let mut qb = QueryBuilder::<Sqlite>::new(format!("{SELECT} WHERE b.studio_id = "));
    qb.push_bind(t.id.clone());
    if let Some(from) = p.time("from")? {
        qb.push(" AND o.starts_at >= ").push_bind(from);
    }
    if let Some(to) = p.time("to")? {
        qb.push(" AND o.starts_at < ").push_bind(to);
    }
    if let Some(v) = status {
        qb.push(" AND b.status = ").push_bind(v);
    }
    if let Some(v) = p.str("member_id") {
        qb.push(" AND b.member_id = ").push_bind(v.to_owned());
    }
    page.push(&mut qb, "o.starts_at", "b.id", Order::Asc);
    let rows: Vec<BookingRow> = qb.build_query_as().fetch_all(&s.db).await?;
    Ok(Json(page.finish(
        rows,
        |r| (r.starts_at.clone(), r.id.clone()),
        BookingRow::render,
    )))
}

/// `GET /schedule/{occurrence_id}/bookings`: everyone booked into one session.
pub async fn for_occurrence(
    State(s): State<AppState>,
    t: Tenant,
    Path(occurrence): Path<String>,
    p: Params,
) -> ApiResult<Json<Value>> {
    p.allow(&["status"])?;
    let page = Page::from_params("occurrence_bookings", &p)?;
    let status = p.one_of("status", &["booked", "cancelled", "attended"])?;
    require(&s.db, Table::Occurrences, &t.id, &occurrence).await?;
    let mut qb = QueryBuilder::<Sqlite>::new(format!("{SELECT} WHERE b.studio_id = "));
    qb.push_bind(t.id.clone());
    qb.push(" AND b.occurrence_id = ").push_bind(occurrence);
    if let Some(v) = status {
        qb.push(" AND b.status = ").push_bind(v);
    }
    page.push(&mut qb, "b.created_at", "b.id", Order::Asc);
    let rows: Vec<BookingRow> = qb.build_query_as().fetch_all(&s.db).await?;
    Ok(Json(page.finish(
        rows,
        |r| (r.created_at.clone(), r.id.clone()),
        BookingRow::render,
    )))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewBooking {
    occurrence_id: String,
    member_id: String,
    plan_id: Option<String>,
    coupon_code: Option<String>,
}

async fn create(
    State(s): State<AppState>,
    t: Tenant,
    Body(input): Body<NewBooking>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let mut tx = write_tx(&s).await?;
    let occ = schedule::fetch(&mut tx, &t.id, &input.occurrence_id)
        .await
        .map_err(|e| match e {
            ApiError::NotFound { .. } => {
                ApiError::missing_ref("occurrence", &input.occurrence_id, "occurrence_id")
            }
            other => other,
        })?;
    let member: Option<String> =
        sqlx::query_scalar("SELECT name FROM members WHERE studio_id = ? AND id = ?")
            .bind(&t.id)
            .bind(&input.member_id)
            .fetch_optional(&mut *tx)
            .await?;
    let member =
        member.ok_or_else(|| ApiError::missing_ref("member", &input.member_id, "member_id"))?;
    let session = format!("{} on {}", occ.class_name, occ.starts_at);
    if occ.status == "cancelled" {
        return Err(ApiError::conflict(
            "occurrence_cancelled",
            format!("{session} is cancelled"),
        ));
    }
    let at = now();
    if occ.starts_at <= at {
        return Err(ApiError::conflict(
            "occurrence_started",
            format!("{session} has already started"),
        ));
    }
    let twice: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM bookings WHERE studio_id = ? AND occurrence_id = ? AND member_id = ?
         AND status != 'cancelled'",
    )
    .bind(&t.id)
    .bind(&occ.id)
    .bind(&input.member_id)
    .fetch_one(&mut *tx)
    .await?;
    if twice > 0 {
        return Err(ApiError::conflict(
            "already_booked",
            format!("{member} is already booked into {session}"),
        ));
    }
    let (class_price, currency): (i64, String) =
        sqlx::query_as("SELECT price_cents, currency FROM classes WHERE studio_id = ? AND id = ?")
            .bind(&t.id)
            .bind(&occ.class_id)
            .fetch_one(&mut *tx)
            .await?;
    let mut price = class_price;
    if let Some(plan) = &input.plan_id {
        let found: Option<(String, String, String, i64)> = sqlx::query_as(
            "SELECT name, kind, status, price_cents FROM plans WHERE studio_id = ? AND id = ?",
        )
        .bind(&t.id)
        .bind(plan)
        .fetch_optional(&mut *tx)
        .await?;
        let (plan_name, kind, status, plan_price) =
            found.ok_or_else(|| ApiError::missing_ref("plan", plan, "plan_id"))?;
        if status == "archived" {
            return Err(ApiError::conflict(
                "plan_archived",
                format!("plan {plan_name} is archived and cannot be used for new bookings"),
            ));
        }
        price = if kind == "drop_in" { plan_price } else { 0 };
    }
    let mut coupon_id = None;
    if let Some(code) = &input.coupon_code {
        let found: Option<CouponUse> = sqlx::query_as(
            "SELECT id, status, percent_off, amount_off_cents, currency, max_redemptions,
                 expires_at, times_redeemed FROM coupons WHERE studio_id = ? AND code = ?",
        )
        .bind(&t.id)
        .bind(code.trim().to_uppercase())
        .fetch_optional(&mut *tx)
        .await?;
        let CouponUse {
            id,
            status,
            percent_off: percent,
            amount_off_cents: amount,
            currency: coupon_currency,
            max_redemptions: max,
            expires_at: expires,
            times_redeemed: redeemed,
        } = found.ok_or_else(|| ApiError::missing_ref("coupon", code, "coupon_code"))?;
        if status == "archived" {
            return Err(ApiError::conflict(
                "coupon_archived",
                format!("coupon {code} is archived and cannot be used"),
            ));
        }
        if expires.is_some_and(|e| e <= at) {
            return Err(ApiError::conflict(
                "coupon_expired",
                format!("coupon {code} has expired"),
            ));
        }
        if max.is_some_and(|m| redeemed >= m) {
            return Err(ApiError::conflict(
                "coupon_used_up",
                format!(
                    "coupon {code} is used up ({redeemed} of {} redemptions)",
                    max.unwrap_or(redeemed)
                ),
            ));
        }
        if let Some(p) = percent {
            price -= price * p / 100;
        } else if let Some(a) = amount {
            if coupon_currency.as_deref() != Some(currency.as_str()) {
                return Err(ApiError::conflict(
                    "currency_mismatch",
                    format!("coupon {code} is in another currency than the class ({currency})"),
                ));
            }
            price = (price - a).max(0);
        }
        coupon_id = Some(id);
    }
    if occ.booked_count >= occ.capacity {
        return Err(ApiError::conflict(
            "session_full",
            format!(
                "{session} is full ({} of {} booked)",
                occ.booked_count, occ.capacity
            ),
        ));
    }
    if let Some(id) = &coupon_id {
        sqlx::query(
            "UPDATE coupons SET times_redeemed = times_redeemed + 1 WHERE studio_id = ? AND id = ?",
        )
        .bind(&t.id)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    }
    let id = crate::store::new_id("bkg");
    sqlx::query(
        "INSERT INTO bookings (id, studio_id, occurrence_id, member_id, status, price_cents,
         currency, plan_id, coupon_id, refund_cents, created_at) VALUES (?, ?, ?, ?, 'booked', ?, ?, ?, ?, 0, ?)",
    )
    .bind(&id)
    .bind(&t.id)
    .bind(&occ.id)
    .bind(&input.member_id)
    .bind(price)
    .bind(&currency)
    .bind(&input.plan_id)
    .bind(&coupon_id)
    .bind(&at)
    .execute(&mut *tx)
    .await?;
    let out = fetch(&mut tx, &t.id, &id).await?.render();
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(out)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Cancel {
    refund: Option<bool>,
    reason: Option<String>,
}

async fn cancel(
    State(s): State<AppState>,
    t: Tenant,
    Path(id): Path<String>,
    Body(input): Body<Cancel>,
) -> ApiResult<Json<Value>> {
    opt_text("reason", input.reason.as_deref(), 500)?;
    let mut tx = write_tx(&s).await?;
    let b = fetch(&mut tx, &t.id, &id).await?;
    if b.status != "booked" {
        return Err(ApiError::conflict(
            "booking_not_active",
            format!("booking {id} is {} and cannot be cancelled", b.status),
        ));
    }
    let refund = if input.refund.unwrap_or(false) {
        b.price_cents
    } else {
        0
    };
    sqlx::query(
        "UPDATE bookings SET status = 'cancelled', cancelled_at = ?, refund_cents = ?
         WHERE studio_id = ? AND id = ?",
    )
    .bind(now())
    .bind(refund)
    .bind(&t.id)
    .bind(&id)
    .execute(&mut *tx)
    .await?;
    let out = fetch(&mut tx, &t.id, &id).await?.render();
    tx.commit().await?;
    Ok(Json(out))
}
