//! Locations and their rooms.
//!
//! Contract: a location is listed with its rooms. A room's name is unique within its location
//! (case-insensitive, `409`) and its capacity is 1..500. A location or room with future scheduled
//! occurrences cannot be deleted (`409`); past occurrences keep their times and lose the reference.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};

use super::{name, write_tx};
use crate::app::AppState;
use crate::error::{ApiError, ApiResult};
use crate::input::{Body, Params, check_range, check_text, now};
use crate::pagination::{Order, Page};
use crate::tenancy::Tenant;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/locations", get(list).post(create))
        .route("/locations/{location_id}", patch(update).delete(delete))
        .route("/locations/{location_id}/rooms", post(create_room))
        .route(
            "/locations/{location_id}/rooms/{room_id}",
            patch(update_room).delete(delete_room),
        )
}

#[derive(sqlx::FromRow)]
struct LocationRow {
    id: String,
    name: String,
    address: String,
    city: String,
    timezone: Option<String>,
}

#[derive(sqlx::FromRow)]
struct RoomRow {
    id: String,
    location_id: String,
    name: String,
    capacity: i64,
}

impl RoomRow {
    fn render(self) -> Value {
        json!({"id": self.id, "location_id": self.location_id, "name": self.name, "capacity": self.capacity})
    }
}

async fn rooms_of(
    db: &mut SqliteConnection,
    studio: &str,
    location: &str,
) -> ApiResult<Vec<Value>> {
    let rooms: Vec<RoomRow> = sqlx::query_as(
        "SELECT id, location_id, name, capacity FROM rooms WHERE studio_id = ? AND location_id = ? ORDER BY name, id",
    )
    .bind(studio)
    .bind(location)
    .fetch_all(db)
    .await?;
    Ok(rooms.into_iter().map(RoomRow::render).collect())
}

async fn render(db: &mut SqliteConnection, studio: &str, l: LocationRow) -> ApiResult<Value> {
    let rooms = rooms_of(db, studio, &l.id).await?;
    Ok(json!({
        "id": l.id, "name": l.name, "address": l.address, "city": l.city,
        "timezone": l.timezone, "rooms": rooms,
    }))
}

async fn fetch(db: &mut SqliteConnection, studio: &str, id: &str) -> ApiResult<LocationRow> {
    sqlx::query_as::<_, LocationRow>(
        "SELECT id, name, address, city, timezone FROM locations WHERE studio_id = ? AND id = ?",
    )
    .bind(studio)
    .bind(id)
    .fetch_optional(db)
    .await?
    .ok_or_else(|| ApiError::not_found("location", id))
}

async fn list(State(s): State<AppState>, t: Tenant, p: Params) -> ApiResult<Json<Value>> {
    p.allow(&["q", "city"])?;
    let page = Page::from_params("locations", &p)?;
    let mut qb = QueryBuilder::<Sqlite>::new(
        "SELECT id, name, address, city, timezone FROM locations WHERE studio_id = ",
    );
    qb.push_bind(t.id.clone());
    if let Some(q) = p.str("q") {
        qb.push(" AND lower(name || ' ' || address) LIKE ")
            .push_bind(format!("%{}%", q.to_lowercase()));
    }
    if let Some(c) = p.str("city") {
        qb.push(" AND lower(city) = ").push_bind(c.to_lowercase());
    }
    page.push(&mut qb, "name", "id", Order::Asc);
    let rows: Vec<LocationRow> = qb.build_query_as().fetch_all(&s.db).await?;
    let mut conn = s.db.acquire().await?;
    let mut rendered = Vec::new();
    for row in rows {
        rendered.push(render(&mut conn, &t.id, row).await?);
    }
    let key = |v: &Value| {
        let text = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
        (text("name"), text("id"))
    };
    Ok(Json(page.finish(rendered, key, |v| v)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewRoom {
    name: String,
    capacity: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewLocation {
    name: String,
    address: String,
    city: String,
    timezone: Option<String>,
    rooms: Option<Vec<NewRoom>>,
}

fn check_timezone(tz: Option<&str>) -> ApiResult<()> {
    if let Some(tz) = tz {
        let ok = tz == "UTC"
            || (tz.contains('/') && tz.len() <= 64 && !tz.contains(char::is_whitespace));
        if !ok {
            return Err(ApiError::invalid(
                "timezone",
                "must be an IANA time zone, e.g. Europe/Berlin",
            ));
        }
    }
    Ok(())
}

async fn insert_room(
    db: &mut SqliteConnection,
    studio: &str,
    location: &str,
    room: &NewRoom,
    field: &str,
) -> ApiResult<String> {
    let room_name = name(&format!("{field}name"), &room.name)?;
    check_range(&format!("{field}capacity"), room.capacity, 1, 500)?;
    let taken: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM rooms WHERE studio_id = ? AND location_id = ? AND name = ?",
    )
    .bind(studio)
    .bind(location)
    .bind(&room_name)
    .fetch_one(&mut *db)
    .await?;
    if taken > 0 {
        return Err(ApiError::conflict(
            "room_name_taken",
            format!("this location already has a room named {room_name}"),
        ));
    }
    let id = crate::store::new_id("rm");
    sqlx::query(
        "INSERT INTO rooms (id, studio_id, location_id, name, capacity) VALUES (?, ?, ?, ?, ?)",
    )
    .bind(&id)
    .bind(studio)
    .bind(location)
    .bind(&room_name)
    .bind(room.capacity)
    .execute(&mut *db)
    .await?;
    Ok(id)
}

async fn create(
    State(s): State<AppState>,
    t: Tenant,
    Body(input): Body<NewLocation>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let row = LocationRow {
        id: crate::store::new_id("loc"),
        name: name("name", &input.name)?,
        address: input.address.trim().to_owned(),
        city: input.city.trim().to_owned(),
        timezone: input.timezone,
    };
    check_text("address", &row.address, 1, 300)?;
    check_text("city", &row.city, 1, 100)?;
    check_timezone(row.timezone.as_deref())?;
    let mut tx = write_tx(&s).await?;
    sqlx::query("INSERT INTO locations (id, studio_id, name, address, city, timezone) VALUES (?, ?, ?, ?, ?, ?)")
        .bind(&row.id)
        .bind(&t.id)
        .bind(&row.name)
        .bind(&row.address)
        .bind(&row.city)
        .bind(&row.timezone)
        .execute(&mut *tx)
        .await?;
    for (i, room) in input.rooms.unwrap_or_default().iter().enumerate() {
        insert_room(&mut tx, &t.id, &row.id, room, &format!("rooms[{i}].")).await?;
    }
    let out = render(&mut tx, &t.id, row).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(out)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LocationPatch {
    name: Option<String>,
    address: Option<String>,
    city: Option<String>,
    timezone: Option<String>,
}

async fn update(
    State(s): State<AppState>,
    t: Tenant,
    Path(id): Path<String>,
    Body(p): Body<LocationPatch>,
) -> ApiResult<Json<Value>> {
    let mut tx = write_tx(&s).await?;
    let mut row = fetch(&mut tx, &t.id, &id).await?;
    if let Some(v) = p.name {
        row.name = name("name", &v)?;
    }
    if let Some(v) = p.address {
        check_text("address", &v, 1, 300)?;
        row.address = v.trim().to_owned();
    }
    if let Some(v) = p.city {
        check_text("city", &v, 1, 100)?;
        row.city = v.trim().to_owned();
    }
    if let Some(v) = p.timezone {
        check_timezone(Some(&v))?;
        row.timezone = Some(v);
    }
    sqlx::query("UPDATE locations SET name = ?, address = ?, city = ?, timezone = ? WHERE studio_id = ? AND id = ?")
        .bind(&row.name)
        .bind(&row.address)
        .bind(&row.city)
        .bind(&row.timezone)
        .bind(&t.id)
        .bind(&id)
        .execute(&mut *tx)
        .await?;
    let out = render(&mut tx, &t.id, row).await?;
    tx.commit().await?;
    Ok(Json(out))
}

/// `409` when future scheduled occurrences use the location or room (`column` = `location_id` or
/// `room_id`).
async fn check_unused(
    db: &mut SqliteConnection,
    studio: &str,
    column: &str,
    id: &str,
    what: &str,
) -> ApiResult<()> {
    let n: i64 = sqlx::query_scalar(&format!(
        "SELECT COUNT(*) FROM occurrences WHERE studio_id = ? AND {column} = ? AND status = 'scheduled' AND starts_at > ?"
    ))
    .bind(studio)
    .bind(id)
    .bind(now())
    .fetch_one(db)
    .await?;
    if n > 0 {
        return Err(ApiError::conflict(
            "in_use",
            format!("{what} has {n} upcoming scheduled occurrence(s); move or cancel them first"),
        ));
    }
    Ok(())
}

async fn delete(
    State(s): State<AppState>,
    t: Tenant,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let mut tx = write_tx(&s).await?;
    let row = fetch(&mut tx, &t.id, &id).await?;
    check_unused(
        &mut tx,
        &t.id,
        "location_id",
        &id,
        &format!("location {}", row.name),
    )
    .await?;
    sqlx::query("DELETE FROM locations WHERE studio_id = ? AND id = ?")
        .bind(&t.id)
        .bind(&id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(Json(json!({"id": id, "deleted": true})))
}

async fn create_room(
    State(s): State<AppState>,
    t: Tenant,
    Path(location): Path<String>,
    Body(input): Body<NewRoom>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let mut tx = write_tx(&s).await?;
    fetch(&mut tx, &t.id, &location).await?;
    let id = insert_room(&mut tx, &t.id, &location, &input, "").await?;
    let room = fetch_room(&mut tx, &t.id, &location, &id).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(room.render())))
}

async fn fetch_room(
    db: &mut SqliteConnection,
    studio: &str,
    location: &str,
    id: &str,
) -> ApiResult<RoomRow> {
    sqlx::query_as::<_, RoomRow>(
        "SELECT id, location_id, name, capacity FROM rooms WHERE studio_id = ? AND location_id = ? AND id = ?",
    )
    .bind(studio)
    .bind(location)
    .bind(id)
    .fetch_optional(db)
    .await?
    .ok_or_else(|| ApiError::not_found("room", id))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RoomPatch {
    name: Option<String>,
    capacity: Option<i64>,
}

async fn update_room(
    State(s): State<AppState>,
    t: Tenant,
    Path((location, id)): Path<(String, String)>,
    Body(p): Body<RoomPatch>,
) -> ApiResult<Json<Value>> {
    let mut tx = write_tx(&s).await?;
    fetch(&mut tx, &t.id, &location).await?;
    let mut room = fetch_room(&mut tx, &t.id, &location, &id).await?;
    if let Some(v) = p.name {
        let v = name("name", &v)?;
        let taken: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM rooms WHERE studio_id = ? AND location_id = ? AND name = ? AND id != ?",
        )
        .bind(&t.id)
        .bind(&location)
        .bind(&v)
        .bind(&id)
        .fetch_one(&mut *tx)
        .await?;
        if taken > 0 {
            return Err(ApiError::conflict(
                "room_name_taken",
                format!("this location already has a room named {v}"),
            ));
        }
        room.name = v;
    }
    if let Some(v) = p.capacity {
        check_range("capacity", v, 1, 500)?;
        room.capacity = v;
    }
    sqlx::query("UPDATE rooms SET name = ?, capacity = ? WHERE studio_id = ? AND id = ?")
        .bind(&room.name)
        .bind(room.capacity)
        .bind(&t.id)
        .bind(&id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(Json(room.render()))
}

async fn delete_room(
    State(s): State<AppState>,
    t: Tenant,
    Path((location, id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let mut tx = write_tx(&s).await?;
    fetch(&mut tx, &t.id, &location).await?;
    let room = fetch_room(&mut tx, &t.id, &location, &id).await?;
    check_unused(
        &mut tx,
        &t.id,
        "room_id",
        &id,
        &format!("room {}", room.name),
    )
    .await?;
    sqlx::query("DELETE FROM rooms WHERE studio_id = ? AND id = ?")
        .bind(&t.id)
        .bind(&id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(Json(json!({"id": id, "deleted": true})))
}
