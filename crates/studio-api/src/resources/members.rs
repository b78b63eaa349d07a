//! Members: the people who take classes, and their membership.
//!
//! Contract: roles are the fixed set guest/member/vip/staff (`400` otherwise). An invitation creates
//! an `invited` member; the e-mail is unique per studio (`409`); a plan given with it must exist
//! (`404`), be active (`409`) and be a membership plan (`409`), and starts the membership.
//! Cancelling a membership is `409` when there is no active one.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};

use super::{name, opt_text, write_tx};
use crate::app::AppState;
use crate::error::{ApiError, ApiResult};
use crate::input::{Body, Params, check_email, check_one_of, check_text, now};
use crate::pagination::{Order, Page};
use crate::tenancy::Tenant;

/// The fixed set of member roles.
pub const ROLES: &[&str] = &["guest", "member", "vip", "staff"];

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/members", get(list))
        .route("/members/invitations", post(invite))
        .route("/members/{member_id}", get(one).patch(update))
        .route(
            "/members/{member_id}/membership/cancel",
            post(cancel_membership),
        )
}

const SELECT: &str = "SELECT id, name, email, phone, role, status, membership_plan_id,
    membership_status, membership_started_at, membership_cancelled_at FROM members";

#[derive(sqlx::FromRow)]
struct MemberRow {
    id: String,
    name: String,
    email: String,
    phone: Option<String>,
    role: String,
    status: String,
    membership_plan_id: Option<String>,
    membership_status: Option<String>,
    membership_started_at: Option<String>,
    membership_cancelled_at: Option<String>,
}

impl MemberRow {
    fn render(self) -> Value {
        let membership = match (self.membership_plan_id, self.membership_status) {
            (Some(plan), Some(status)) => json!({
                "plan_id": plan, "status": status,
                "started_at": self.membership_started_at,
                "cancelled_at": self.membership_cancelled_at,
            }),
            _ => Value::Null,
        };
        json!({
            "id": self.id, "name": self.name, "email": self.email, "phone": self.phone,
            "role": self.role, "status": self.status, "membership": membership,
        })
    }
}

async fn fetch(db: &mut SqliteConnection, studio: &str, id: &str) -> ApiResult<MemberRow> {
    sqlx::query_as::<_, MemberRow>(&format!("{SELECT} WHERE studio_id = ? AND id = ?"))
        .bind(studio)
        .bind(id)
        .fetch_optional(db)
        .await?
        .ok_or_else(|| ApiError::not_found("member", id))
}

async fn list(State(s): State<AppState>, t: Tenant, p: Params) -> ApiResult<Json<Value>> {
    p.allow(&["q", "role", "status"])?;
    let page = Page::from_params("members", &p)?;
    let role = p.one_of("role", ROLES)?;
    let status = p.one_of("status", &["invited", "active"])?;
    let mut qb = QueryBuilder::<Sqlite>::new(format!("{SELECT} WHERE studio_id = "));
    qb.push_bind(t.id.clone());
    if let Some(v) = role {
        qb.push(" AND role = ").push_bind(v);
    }
    if let Some(v) = status {
        qb.push(" AND status = ").push_bind(v);
    }
    if let Some(q) = p.str("q") {
        let like = format!("%{}%", q.to_lowercase());
        qb.push(" AND (lower(name) LIKE ").push_bind(like.clone());
        qb.push(" OR lower(email) LIKE ").push_bind(like).push(")");
    }
    page.push(&mut qb, "name", "id", Order::Asc);
    let rows: Vec<MemberRow> = qb.build_query_as().fetch_all(&s.db).await?;
    Ok(Json(page.finish(
        rows,
        |r| (r.name.clone(), r.id.clone()),
        MemberRow::render,
    )))
}

async fn one(
    State(s): State<AppState>,
    t: Tenant,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let mut conn = s.db.acquire().await?;
    Ok(Json(fetch(&mut conn, &t.id, &id).await?.render()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Invitation {
    email: String,
    name: String,
    role: Option<String>,
    plan_id: Option<String>,
    message: Option<String>,
}

async fn invite(
    State(s): State<AppState>,
    t: Tenant,
    Body(input): Body<Invitation>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let email = input.email.trim().to_lowercase();
    check_email("email", &email)?;
    let member_name = name("name", &input.name)?;
    let role = input.role.unwrap_or_else(|| "member".into());
    check_one_of("role", &role, ROLES)?;
    opt_text("message", input.message.as_deref(), 2000)?;
    let mut tx = write_tx(&s).await?;
    let taken: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM members WHERE studio_id = ? AND email = ?")
            .bind(&t.id)
            .bind(&email)
            .fetch_one(&mut *tx)
            .await?;
    if taken > 0 {
        return Err(ApiError::conflict(
            "email_taken",
            format!("a member with e-mail {email} already exists"),
        ));
    }
    let at = now();
    if let Some(plan) = &input.plan_id {
        let found: Option<(String, String, String)> =
            sqlx::query_as("SELECT name, kind, status FROM plans WHERE studio_id = ? AND id = ?")
                .bind(&t.id)
                .bind(plan)
                .fetch_optional(&mut *tx)
                .await?;
        let (plan_name, kind, status) =
            found.ok_or_else(|| ApiError::missing_ref("plan", plan, "plan_id"))?;
        if status == "archived" {
            return Err(ApiError::conflict(
                "plan_archived",
                format!("plan {plan_name} is archived and cannot be sold"),
            ));
        }
        if kind != "membership" {
            return Err(ApiError::conflict(
                "not_a_membership",
                format!("plan {plan_name} is a {kind}, not a membership plan"),
            ));
        }
    }
    let id = crate::store::new_id("mem");
    let (status, started) = match &input.plan_id {
        Some(_) => (Some("active"), Some(at.clone())),
        None => (None, None),
    };
    sqlx::query(
        "INSERT INTO members (id, studio_id, name, email, role, status, membership_plan_id,
         membership_status, membership_started_at, created_at) VALUES (?, ?, ?, ?, ?, 'invited', ?, ?, ?, ?)",
    )
    .bind(&id)
    .bind(&t.id)
    .bind(&member_name)
    .bind(&email)
    .bind(&role)
    .bind(&input.plan_id)
    .bind(status)
    .bind(started)
    .bind(&at)
    .execute(&mut *tx)
    .await?;
    let out = fetch(&mut tx, &t.id, &id).await?.render();
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(out)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MemberPatch {
    role: Option<String>,
    name: Option<String>,
    phone: Option<String>,
}

async fn update(
    State(s): State<AppState>,
    t: Tenant,
    Path(id): Path<String>,
    Body(p): Body<MemberPatch>,
) -> ApiResult<Json<Value>> {
    if let Some(role) = &p.role {
        check_one_of("role", role, ROLES)?;
    }
    let new_name = p.name.as_deref().map(|n| name("name", n)).transpose()?;
    if let Some(phone) = &p.phone {
        check_text("phone", phone, 3, 40)?;
    }
    let mut tx = write_tx(&s).await?;
    let m = fetch(&mut tx, &t.id, &id).await?;
    sqlx::query("UPDATE members SET role = ?, name = ?, phone = ? WHERE studio_id = ? AND id = ?")
        .bind(p.role.unwrap_or(m.role))
        .bind(new_name.unwrap_or(m.name))
        .bind(p.phone.or(m.phone))
        .bind(&t.id)
        .bind(&id)
        .execute(&mut *tx)
        .await?;
    let out = fetch(&mut tx, &t.id, &id).await?.render();
    tx.commit().await?;
    Ok(Json(out))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Cancel {
    reason: Option<String>,
}

async fn cancel_membership(
    State(s): State<AppState>,
    t: Tenant,
    Path(id): Path<String>,
    Body(input): Body<Cancel>,
) -> ApiResult<Json<Value>> {
    opt_text("reason", input.reason.as_deref(), 500)?;
    let mut tx = write_tx(&s).await?;
    let m = fetch(&mut tx, &t.id, &id).await?;
    if m.membership_status.as_deref() != Some("active") {
        return Err(ApiError::conflict(
            "no_active_membership",
            format!("{} has no active membership to cancel", m.name),
        ));
    }
    sqlx::query(
        "UPDATE members SET membership_status = 'cancelled', membership_cancelled_at = ?
         WHERE studio_id = ? AND id = ?",
    )
    .bind(now())
    .bind(&t.id)
    .bind(&id)
    .execute(&mut *tx)
    .await?;
    let out = fetch(&mut tx, &t.id, &id).await?.render();
    tx.commit().await?;
    Ok(Json(out))
}
