//! Occurrences: the timetable of a studio's classes.
//!
//! Contract: `GET /schedule` lists occurrences by `starts_at`; `POST /classes/{id}/occurrences` adds
//! one occurrence or a weekly series; `POST /schedule/{id}/reschedule` moves one, keeping its
//! bookings. Two scheduled occurrences never overlap in the same room (`409`). A cancelled
//! occurrence cannot be moved (`409`).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Duration;
use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};

use super::{Table, require_ref, write_tx};
use crate::app::AppState;
use crate::error::{ApiError, ApiResult};
use crate::input::{Body, Params, check_range, fmt_time, parse_stored, time};
use crate::pagination::{Order, Page};
use crate::tenancy::Tenant;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/schedule", get(list))
        .route("/classes/{class_id}/occurrences", post(add))
        .route("/schedule/{occurrence_id}/reschedule", post(reschedule))
        .route(
            "/schedule/{occurrence_id}/bookings",
            get(super::bookings::for_occurrence),
        )
}

/// Columns of an occurrence with its class name and booked count (alias `o`, class `c`).
pub const SELECT: &str = "SELECT o.id, o.class_id, c.name AS class_name, o.starts_at, o.ends_at,
    o.instructor_id, o.room_id, o.location_id, o.status, o.capacity,
    (SELECT COUNT(*) FROM bookings b WHERE b.occurrence_id = o.id AND b.status != 'cancelled') AS booked_count
    FROM occurrences o JOIN classes c ON c.id = o.class_id";

#[derive(sqlx::FromRow)]
pub struct OccRow {
    pub id: String,
    pub class_id: String,
    pub class_name: String,
    pub starts_at: String,
    pub ends_at: String,
    pub instructor_id: Option<String>,
    pub room_id: Option<String>,
    pub location_id: Option<String>,
    pub status: String,
    pub capacity: i64,
    pub booked_count: i64,
}

impl OccRow {
    pub fn render(self) -> Value {
        json!({
            "id": self.id, "class_id": self.class_id, "class_name": self.class_name,
            "starts_at": self.starts_at, "ends_at": self.ends_at,
            "instructor_id": self.instructor_id, "room_id": self.room_id,
            "location_id": self.location_id, "status": self.status,
            "capacity": self.capacity, "booked_count": self.booked_count,
        })
    }
}

/// One occurrence of the studio, or `404`.
pub async fn fetch(db: &mut SqliteConnection, studio: &str, id: &str) -> ApiResult<OccRow> {
    sqlx::query_as::<_, OccRow>(&format!("{SELECT} WHERE o.studio_id = ? AND o.id = ?"))
        .bind(studio)
        .bind(id)
        .fetch_optional(db)
        .await?
        .ok_or_else(|| ApiError::not_found("occurrence", id))
}

async fn list(State(s): State<AppState>, t: Tenant, p: Params) -> ApiResult<Json<Value>> {
    p.allow(&[
        "from",
        "to",
        "class_id",
        "instructor_id",
        "location_id",
        "status",
    ])?;
    let page = Page::from_params("schedule", &p)?;
    let status = p.one_of("status", &["scheduled", "cancelled"])?;
    let mut qb = QueryBuilder::<Sqlite>::new(format!("{SELECT} WHERE o.studio_id = "));
    qb.push_bind(t.id.clone());
    if let Some(from) = p.time("from")? {
        qb.push(" AND o.starts_at >= ").push_bind(from);
    }
    if let Some(to) = p.time("to")? {
        qb.push(" AND o.starts_at < ").push_bind(to);
    }
    for (param, col) in [
        ("class_id", "o.class_id"),
        ("instructor_id", "o.instructor_id"),
        ("location_id", "o.location_id"),
    ] {
        if let Some(v) = p.str(param) {
            qb.push(format!(" AND {col} = ")).push_bind(v.to_owned());
        }
    }
    if let Some(status) = status {
        qb.push(" AND o.status = ").push_bind(status);
    }
    page.push(&mut qb, "o.starts_at", "o.id", Order::Asc);
    let rows: Vec<OccRow> = qb.build_query_as().fetch_all(&s.db).await?;
    Ok(Json(page.finish(
        rows,
        |r| (r.starts_at.clone(), r.id.clone()),
        OccRow::render,
    )))
}

/// `409` if a scheduled occurrence in `room` overlaps `[starts, ends)` (ignoring `except`).
pub async fn check_overlap(
    db: &mut SqliteConnection,
    studio: &str,
    room: Option<&str>,
    starts: &str,
    ends: &str,
    except: Option<&str>,
) -> ApiResult<()> {
    let Some(room) = room else { return Ok(()) };
    let clash: Option<(String, String, String)> = sqlx::query_as(
        "SELECT c.name, o.starts_at, o.ends_at FROM occurrences o JOIN classes c ON c.id = o.class_id
         WHERE o.studio_id = ? AND o.room_id = ? AND o.status = 'scheduled'
           AND o.starts_at < ? AND o.ends_at > ? AND o.id != ? LIMIT 1",
    )
    .bind(studio)
    .bind(room)
    .bind(ends)
    .bind(starts)
    .bind(except.unwrap_or(""))
    .fetch_optional(db)
    .await?;
    if let Some((name, s, e)) = clash {
        return Err(ApiError::conflict(
            "room_overlap",
            format!("room {room} is already booked from {s} to {e} by {name}"),
        ));
    }
    Ok(())
}

/// The location of a room of the studio (`404` on `field` when it is not one).
async fn room_location(
    db: &mut SqliteConnection,
    studio: &str,
    room: &str,
    field: &'static str,
) -> ApiResult<String> {
    sqlx::query_scalar("SELECT location_id FROM rooms WHERE studio_id = ? AND id = ?")
        .bind(studio)
        .bind(room)
        .fetch_optional(db)
        .await?
        .ok_or_else(|| ApiError::missing_ref("room", room, field))
}

/// What a new occurrence takes from its class.
#[derive(sqlx::FromRow)]
struct ClassDefaults {
    name: String,
    status: String,
    duration_minutes: i64,
    capacity: i64,
    instructor_id: Option<String>,
    room_id: Option<String>,
    location_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewOccurrences {
    starts_at: String,
    instructor_id: Option<String>,
    room_id: Option<String>,
    repeat_weeks: Option<i64>,
}

async fn add(
    State(s): State<AppState>,
    t: Tenant,
    Path(class_id): Path<String>,
    Body(input): Body<NewOccurrences>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let starts = parse_stored(&time("starts_at", &input.starts_at)?);
    let weeks = input.repeat_weeks.unwrap_or(1);
    check_range("repeat_weeks", weeks, 1, 52)?;
    let mut tx = write_tx(&s).await?;
    let class: Option<ClassDefaults> = sqlx::query_as(
        "SELECT name, status, duration_minutes, capacity, instructor_id, room_id, location_id
             FROM classes WHERE studio_id = ? AND id = ?",
    )
    .bind(&t.id)
    .bind(&class_id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(ClassDefaults {
        name,
        status,
        duration_minutes: minutes,
        capacity,
        instructor_id: class_instructor,
        room_id: class_room,
        location_id: class_location,
    }) = class
    else {
        return Err(ApiError::not_found("class", class_id));
    };
    if status == "cancelled" {
        return Err(ApiError::conflict(
            "class_cancelled",
            format!("class {name} is cancelled; it cannot get new occurrences"),
        ));
    }
    require_ref(
        &mut *tx,
        Table::Instructors,
        &t.id,
        input.instructor_id.as_deref(),
        "instructor_id",
    )
    .await?;
    let instructor = input.instructor_id.or(class_instructor);
    let (room, location) = match input.room_id {
        Some(room) => {
            let loc = room_location(&mut tx, &t.id, &room, "room_id").await?;
            (Some(room), Some(loc))
        }
        None => (class_room, class_location),
    };
    let mut ids = Vec::new();
    for week in 0..weeks {
        let st = starts + Duration::weeks(week);
        let (st, en) = (fmt_time(st), fmt_time(st + Duration::minutes(minutes)));
        check_overlap(&mut tx, &t.id, room.as_deref(), &st, &en, None).await?;
        let id = crate::store::new_id("occ");
        sqlx::query(
            "INSERT INTO occurrences (id, studio_id, class_id, starts_at, ends_at, instructor_id,
             room_id, location_id, status, capacity) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'scheduled', ?)",
        )
        .bind(&id)
        .bind(&t.id)
        .bind(&class_id)
        .bind(&st)
        .bind(&en)
        .bind(&instructor)
        .bind(&room)
        .bind(&location)
        .bind(capacity)
        .execute(&mut *tx)
        .await?;
        ids.push(id);
    }
    let mut out = Vec::new();
    for id in &ids {
        out.push(fetch(&mut tx, &t.id, id).await?.render());
    }
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(json!({ "data": out }))))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Reschedule {
    starts_at: String,
    room_id: Option<String>,
}

async fn reschedule(
    State(s): State<AppState>,
    t: Tenant,
    Path(id): Path<String>,
    Body(input): Body<Reschedule>,
) -> ApiResult<Json<Value>> {
    let starts = parse_stored(&time("starts_at", &input.starts_at)?);
    let mut tx = write_tx(&s).await?;
    let occ = fetch(&mut tx, &t.id, &id).await?;
    if occ.status == "cancelled" {
        return Err(ApiError::conflict(
            "occurrence_cancelled",
            format!("occurrence {id} is cancelled; it cannot be rescheduled"),
        ));
    }
    let length = parse_stored(&occ.ends_at) - parse_stored(&occ.starts_at);
    let (room, location) = match input.room_id {
        Some(room) => {
            let loc = room_location(&mut tx, &t.id, &room, "room_id").await?;
            (Some(room), Some(loc))
        }
        None => (occ.room_id.clone(), occ.location_id.clone()),
    };
    let (st, en) = (fmt_time(starts), fmt_time(starts + length));
    check_overlap(&mut tx, &t.id, room.as_deref(), &st, &en, Some(&id)).await?;
    sqlx::query(
        "UPDATE occurrences SET starts_at = ?, ends_at = ?, room_id = ?, location_id = ?
         WHERE studio_id = ? AND id = ?",
    )
    .bind(&st)
    .bind(&en)
    .bind(&room)
    .bind(&location)
    .bind(&t.id)
    .bind(&id)
    .execute(&mut *tx)
    .await?;
    let out = fetch(&mut tx, &t.id, &id).await?.render();
    tx.commit().await?;
    Ok(Json(out))
}
