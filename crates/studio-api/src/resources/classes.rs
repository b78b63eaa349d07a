//! Classes: what a studio teaches (name, length, capacity, price), independent of when.
//!
//! Contract: referenced program, instructor, location and room must be in the studio (`404` on the
//! field) and the room must belong to the location (`400` on `room_id`; without a location the
//! room's location is taken). Cancelling a class cancels its future occurrences and their bookings
//! (refunding what was paid) and reports the counts. A class that ever had bookings cannot be
//! deleted (`409`: cancel it instead). A capacity change applies to future scheduled occurrences.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};

use super::schedule::{OccRow, SELECT as OCC_SELECT};
use super::{Table, name, opt_text, require_ref, write_tx};
use crate::app::AppState;
use crate::error::{ApiError, ApiResult};
use crate::input::{
    Body, LEVELS, Params, check_currency, check_min, check_one_of, check_range, now,
};
use crate::pagination::{Order, Page};
use crate::tenancy::Tenant;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/classes", get(list).post(create))
        .route("/classes/{class_id}", get(one).patch(update).delete(delete))
        .route("/classes/{class_id}/cancel", post(cancel))
}

const SELECT: &str =
    "SELECT id, name, description, program_id, instructor_id, location_id, room_id,
    duration_minutes, capacity, price_cents, currency, level, status FROM classes";

#[derive(sqlx::FromRow, Clone)]
struct ClassRow {
    id: String,
    name: String,
    description: Option<String>,
    program_id: Option<String>,
    instructor_id: Option<String>,
    location_id: Option<String>,
    room_id: Option<String>,
    duration_minutes: i64,
    capacity: i64,
    price_cents: i64,
    currency: String,
    level: Option<String>,
    status: String,
}

impl ClassRow {
    fn render(self) -> Value {
        json!({
            "id": self.id, "name": self.name, "description": self.description,
            "program_id": self.program_id, "instructor_id": self.instructor_id,
            "location_id": self.location_id, "room_id": self.room_id,
            "duration_minutes": self.duration_minutes, "capacity": self.capacity,
            "price_cents": self.price_cents, "currency": self.currency, "level": self.level,
            "status": self.status,
        })
    }
}

async fn fetch(db: &mut SqliteConnection, studio: &str, id: &str) -> ApiResult<ClassRow> {
    sqlx::query_as::<_, ClassRow>(&format!("{SELECT} WHERE studio_id = ? AND id = ?"))
        .bind(studio)
        .bind(id)
        .fetch_optional(db)
        .await?
        .ok_or_else(|| ApiError::not_found("class", id))
}

async fn list(State(s): State<AppState>, t: Tenant, p: Params) -> ApiResult<Json<Value>> {
    p.allow(&["status", "program_id", "instructor_id", "q"])?;
    let page = Page::from_params("classes", &p)?;
    let status = p.one_of("status", &["active", "cancelled"])?;
    let mut qb = QueryBuilder::<Sqlite>::new(format!("{SELECT} WHERE studio_id = "));
    qb.push_bind(t.id.clone());
    if let Some(v) = status {
        qb.push(" AND status = ").push_bind(v);
    }
    if let Some(v) = p.str("program_id") {
        qb.push(" AND program_id = ").push_bind(v.to_owned());
    }
    if let Some(v) = p.str("instructor_id") {
        qb.push(" AND instructor_id = ").push_bind(v.to_owned());
    }
    if let Some(q) = p.str("q") {
        let like = format!("%{}%", q.to_lowercase());
        qb.push(" AND (lower(name) LIKE ").push_bind(like.clone());
        qb.push(" OR lower(coalesce(description, '')) LIKE ")
            .push_bind(like)
            .push(")");
    }
    page.push(&mut qb, "name", "id", Order::Asc);
    let rows: Vec<ClassRow> = qb.build_query_as().fetch_all(&s.db).await?;
    Ok(Json(page.finish(
        rows,
        |r| (r.name.clone(), r.id.clone()),
        ClassRow::render,
    )))
}

async fn one(
    State(s): State<AppState>,
    t: Tenant,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let mut conn = s.db.acquire().await?;
    let class = fetch(&mut conn, &t.id, &id).await?;
    let upcoming: Vec<OccRow> = sqlx::query_as(&format!(
        "{OCC_SELECT} WHERE o.studio_id = ? AND o.class_id = ? AND o.status = 'scheduled'
         AND o.starts_at >= ? ORDER BY o.starts_at, o.id LIMIT 10"
    ))
    .bind(&t.id)
    .bind(&id)
    .bind(now())
    .fetch_all(&mut *conn)
    .await?;
    let mut out = class.render();
    out["upcoming"] = upcoming.into_iter().map(OccRow::render).collect();
    Ok(Json(out))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewClass {
    name: String,
    description: Option<String>,
    program_id: Option<String>,
    instructor_id: Option<String>,
    location_id: Option<String>,
    room_id: Option<String>,
    duration_minutes: i64,
    capacity: i64,
    price_cents: i64,
    currency: Option<String>,
    level: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClassPatch {
    name: Option<String>,
    description: Option<String>,
    program_id: Option<String>,
    instructor_id: Option<String>,
    location_id: Option<String>,
    room_id: Option<String>,
    duration_minutes: Option<i64>,
    capacity: Option<i64>,
    price_cents: Option<i64>,
    currency: Option<String>,
    level: Option<String>,
}

/// Check field rules and references of a (new or patched) class; fills in the room's location.
async fn check(
    db: &mut SqliteConnection,
    studio: &str,
    c: &mut ClassRow,
    room_changed: bool,
) -> ApiResult<()> {
    c.name = name("name", &c.name)?;
    opt_text("description", c.description.as_deref(), 2000)?;
    check_range("duration_minutes", c.duration_minutes, 5, 480)?;
    check_range("capacity", c.capacity, 1, 500)?;
    check_min("price_cents", c.price_cents, 0)?;
    check_currency("currency", &c.currency)?;
    if let Some(level) = &c.level {
        check_one_of("level", level, LEVELS)?;
    }
    require_ref(
        &mut *db,
        Table::Programs,
        studio,
        c.program_id.as_deref(),
        "program_id",
    )
    .await?;
    require_ref(
        &mut *db,
        Table::Instructors,
        studio,
        c.instructor_id.as_deref(),
        "instructor_id",
    )
    .await?;
    require_ref(
        &mut *db,
        Table::Locations,
        studio,
        c.location_id.as_deref(),
        "location_id",
    )
    .await?;
    let Some(room) = c.room_id.clone() else {
        return Ok(());
    };
    let found: Option<String> =
        sqlx::query_scalar("SELECT location_id FROM rooms WHERE studio_id = ? AND id = ?")
            .bind(studio)
            .bind(&room)
            .fetch_optional(&mut *db)
            .await?;
    let location = found.ok_or_else(|| ApiError::missing_ref("room", &room, "room_id"))?;
    match &c.location_id {
        Some(l) if *l != location => {
            if room_changed {
                return Err(ApiError::invalid(
                    "room_id",
                    format!("room {room} is not in location {l}"),
                ));
            }
            c.room_id = None; // the location moved away from the room: drop the room
        }
        Some(_) => {}
        None => c.location_id = Some(location),
    }
    Ok(())
}

async fn create(
    State(s): State<AppState>,
    t: Tenant,
    Body(input): Body<NewClass>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let mut tx = write_tx(&s).await?;
    let mut c = ClassRow {
        id: crate::store::new_id("cls"),
        name: input.name,
        description: input.description,
        program_id: input.program_id,
        instructor_id: input.instructor_id,
        location_id: input.location_id,
        room_id: input.room_id,
        duration_minutes: input.duration_minutes,
        capacity: input.capacity,
        price_cents: input.price_cents,
        currency: input.currency.unwrap_or_else(|| t.currency.clone()),
        level: input.level,
        status: "active".into(),
    };
    check(&mut tx, &t.id, &mut c, true).await?;
    sqlx::query(
        "INSERT INTO classes (id, studio_id, name, description, program_id, instructor_id,
         location_id, room_id, duration_minutes, capacity, price_cents, currency, level, status,
         created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'active', ?)",
    )
    .bind(&c.id)
    .bind(&t.id)
    .bind(&c.name)
    .bind(&c.description)
    .bind(&c.program_id)
    .bind(&c.instructor_id)
    .bind(&c.location_id)
    .bind(&c.room_id)
    .bind(c.duration_minutes)
    .bind(c.capacity)
    .bind(c.price_cents)
    .bind(&c.currency)
    .bind(&c.level)
    .bind(now())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(c.render())))
}

async fn update(
    State(s): State<AppState>,
    t: Tenant,
    Path(id): Path<String>,
    Body(p): Body<ClassPatch>,
) -> ApiResult<Json<Value>> {
    let mut tx = write_tx(&s).await?;
    let mut c = fetch(&mut tx, &t.id, &id).await?;
    let room_changed = p.room_id.is_some();
    let location_changed = p.location_id.is_some();
    let capacity_changed = p.capacity.is_some_and(|n| n != c.capacity);
    if let Some(v) = p.name {
        c.name = v;
    }
    if let Some(v) = p.description {
        c.description = Some(v);
    }
    if let Some(v) = p.program_id {
        c.program_id = Some(v);
    }
    if let Some(v) = p.instructor_id {
        c.instructor_id = Some(v);
    }
    if let Some(v) = p.location_id {
        c.location_id = Some(v);
    }
    if let Some(v) = p.room_id {
        c.room_id = Some(v);
        if !location_changed {
            c.location_id = None; // take the new room's location
        }
    }
    if let Some(v) = p.duration_minutes {
        c.duration_minutes = v;
    }
    if let Some(v) = p.capacity {
        c.capacity = v;
    }
    if let Some(v) = p.price_cents {
        c.price_cents = v;
    }
    if let Some(v) = p.currency {
        c.currency = v;
    }
    if let Some(v) = p.level {
        c.level = Some(v);
    }
    check(&mut tx, &t.id, &mut c, room_changed).await?;
    sqlx::query(
        "UPDATE classes SET name = ?, description = ?, program_id = ?, instructor_id = ?,
         location_id = ?, room_id = ?, duration_minutes = ?, capacity = ?, price_cents = ?,
         currency = ?, level = ? WHERE studio_id = ? AND id = ?",
    )
    .bind(&c.name)
    .bind(&c.description)
    .bind(&c.program_id)
    .bind(&c.instructor_id)
    .bind(&c.location_id)
    .bind(&c.room_id)
    .bind(c.duration_minutes)
    .bind(c.capacity)
    .bind(c.price_cents)
    .bind(&c.currency)
    .bind(&c.level)
    .bind(&t.id)
    .bind(&id)
    .execute(&mut *tx)
    .await?;
    if capacity_changed {
        sqlx::query(
            "UPDATE occurrences SET capacity = ? WHERE studio_id = ? AND class_id = ?
             AND status = 'scheduled' AND starts_at > ?",
        )
        .bind(c.capacity)
        .bind(&t.id)
        .bind(&id)
        .bind(now())
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(Json(c.render()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Cancel {
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
    let mut c = fetch(&mut tx, &t.id, &id).await?;
    if c.status == "cancelled" {
        return Err(ApiError::conflict(
            "already_cancelled",
            format!("class {} is already cancelled", c.name),
        ));
    }
    let at = now();
    let bookings = sqlx::query(
        "UPDATE bookings SET status = 'cancelled', cancelled_at = ?, refund_cents = price_cents
         WHERE studio_id = ? AND status = 'booked' AND occurrence_id IN (
             SELECT id FROM occurrences WHERE studio_id = ? AND class_id = ?
             AND status = 'scheduled' AND starts_at > ?)",
    )
    .bind(&at)
    .bind(&t.id)
    .bind(&t.id)
    .bind(&id)
    .bind(&at)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    let occurrences = sqlx::query(
        "UPDATE occurrences SET status = 'cancelled' WHERE studio_id = ? AND class_id = ?
         AND status = 'scheduled' AND starts_at > ?",
    )
    .bind(&t.id)
    .bind(&id)
    .bind(&at)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    sqlx::query("UPDATE classes SET status = 'cancelled' WHERE studio_id = ? AND id = ?")
        .bind(&t.id)
        .bind(&id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    c.status = "cancelled".into();
    Ok(Json(json!({
        "class": c.render(),
        "cancelled_occurrences": occurrences,
        "cancelled_bookings": bookings,
    })))
}

async fn delete(
    State(s): State<AppState>,
    t: Tenant,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let mut tx = write_tx(&s).await?;
    let c = fetch(&mut tx, &t.id, &id).await?;
    let bookings: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM bookings b JOIN occurrences o ON o.id = b.occurrence_id
         WHERE o.studio_id = ? AND o.class_id = ?",
    )
    .bind(&t.id)
    .bind(&id)
    .fetch_one(&mut *tx)
    .await?;
    if bookings > 0 {
        return Err(ApiError::conflict(
            "class_has_bookings",
            format!(
                "class {} has {bookings} booking(s) on record and cannot be deleted; cancel it instead",
                c.name
            ),
        ));
    }
    sqlx::query("DELETE FROM classes WHERE studio_id = ? AND id = ?")
        .bind(&t.id)
        .bind(&id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(Json(json!({"id": id, "deleted": true})))
}
