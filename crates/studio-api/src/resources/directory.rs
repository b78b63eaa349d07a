//! The public directory: all studios and their upcoming classes, for people looking for a class.
//!
//! Contract: no tenancy (no `X-Flow-Studio` needed) and public fields only: no tier, no member,
//! booking or money data beyond a class's price. Classes are upcoming scheduled occurrences of
//! active classes, ordered by start.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};
use sqlx::{QueryBuilder, Sqlite};

use crate::app::AppState;
use crate::error::ApiResult;
use crate::input::{Params, now};
use crate::pagination::{Order, Page};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/directory/studios", get(studios))
        .route("/directory/classes", get(classes))
}

#[derive(sqlx::FromRow)]
struct StudioRow {
    id: String,
    name: String,
    slug: String,
    timezone: String,
    city: String,
    country: String,
    description: String,
}

async fn studios(State(s): State<AppState>, p: Params) -> ApiResult<Json<Value>> {
    p.allow(&["q", "city"])?;
    let page = Page::from_params("directory_studios", &p)?;
    let mut qb = QueryBuilder::<Sqlite>::new(
        "SELECT id, name, slug, timezone, city, country, description FROM studios WHERE 1 = 1",
    );
    if let Some(q) = p.str("q") {
        qb.push(" AND lower(name || ' ' || description) LIKE ")
            .push_bind(format!("%{}%", q.to_lowercase()));
    }
    if let Some(c) = p.str("city") {
        qb.push(" AND lower(city) = ").push_bind(c.to_lowercase());
    }
    page.push(&mut qb, "name", "id", Order::Asc);
    let rows: Vec<StudioRow> = qb.build_query_as().fetch_all(&s.db).await?;
    Ok(Json(page.finish(
        rows,
        |r| (r.name.clone(), r.id.clone()),
        |r| {
            json!({
                "id": r.id, "name": r.name, "slug": r.slug, "timezone": r.timezone,
                "city": r.city, "country": r.country, "description": r.description,
            })
        },
    )))
}

#[derive(sqlx::FromRow)]
struct ClassRow {
    id: String,
    class_id: String,
    class_name: String,
    description: Option<String>,
    level: Option<String>,
    starts_at: String,
    ends_at: String,
    price_cents: i64,
    currency: String,
    spots_left: i64,
    studio_id: String,
    studio_name: String,
    studio_city: String,
    location_name: Option<String>,
    location_address: Option<String>,
}

async fn classes(State(s): State<AppState>, p: Params) -> ApiResult<Json<Value>> {
    p.allow(&["q", "city", "from", "to"])?;
    let page = Page::from_params("directory_classes", &p)?;
    let from = p.time("from")?.map_or_else(now, |f| f.max(now()));
    let mut qb = QueryBuilder::<Sqlite>::new(
        "SELECT o.id, c.id AS class_id, c.name AS class_name, c.description, c.level, o.starts_at,
            o.ends_at, c.price_cents, c.currency,
            o.capacity - (SELECT COUNT(*) FROM bookings b WHERE b.occurrence_id = o.id AND b.status != 'cancelled') AS spots_left,
            st.id AS studio_id, st.name AS studio_name, st.city AS studio_city,
            l.name AS location_name, l.address AS location_address
         FROM occurrences o JOIN classes c ON c.id = o.class_id JOIN studios st ON st.id = o.studio_id
         LEFT JOIN locations l ON l.id = o.location_id
         WHERE o.status = 'scheduled' AND c.status = 'active' AND o.starts_at >= ",
    );
    qb.push_bind(from);
    if let Some(to) = p.time("to")? {
        qb.push(" AND o.starts_at < ").push_bind(to);
    }
    if let Some(q) = p.str("q") {
        qb.push(" AND lower(c.name || ' ' || coalesce(c.description, '') || ' ' || st.name) LIKE ")
            .push_bind(format!("%{}%", q.to_lowercase()));
    }
    if let Some(c) = p.str("city") {
        qb.push(" AND lower(coalesce(l.city, st.city)) = ")
            .push_bind(c.to_lowercase());
    }
    page.push(&mut qb, "o.starts_at", "o.id", Order::Asc);
    let rows: Vec<ClassRow> = qb.build_query_as().fetch_all(&s.db).await?;
    Ok(Json(page.finish(
        rows,
        |r| (r.starts_at.clone(), r.id.clone()),
        |r| {
            json!({
                "id": r.id, "class_id": r.class_id, "class_name": r.class_name,
                "description": r.description, "level": r.level,
                "starts_at": r.starts_at, "ends_at": r.ends_at,
                "price_cents": r.price_cents, "currency": r.currency,
                "spots_left": r.spots_left.max(0),
                "studio": {"id": r.studio_id, "name": r.studio_name, "city": r.studio_city},
                "location": {"name": r.location_name, "address": r.location_address},
            })
        },
    )))
}
