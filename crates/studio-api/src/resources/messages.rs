//! Messages between the studio and its members.
//!
//! Contract: `GET /messages` lists what the studio received, newest first. `POST /messages` sends
//! one message to 1..50 members; every recipient must be a member of the studio (`404` on
//! `member_ids`), duplicates are ignored.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::{QueryBuilder, Sqlite};

use super::{json_list, write_tx};
use crate::app::AppState;
use crate::error::{ApiError, ApiResult};
use crate::input::{Body, Params, check_text, now};
use crate::pagination::{Order, Page};
use crate::tenancy::Tenant;

pub fn routes() -> Router<AppState> {
    Router::new().route("/messages", get(list).post(send))
}

#[derive(sqlx::FromRow)]
struct MessageRow {
    id: String,
    direction: String,
    member_ids: String,
    subject: String,
    body: String,
    sent_at: String,
}

impl MessageRow {
    fn render(self) -> Value {
        json!({
            "id": self.id, "direction": self.direction, "member_ids": json_list(&self.member_ids),
            "subject": self.subject, "body": self.body, "sent_at": self.sent_at,
        })
    }
}

async fn list(State(s): State<AppState>, t: Tenant, p: Params) -> ApiResult<Json<Value>> {
    p.allow(&[])?;
    let page = Page::from_params("messages", &p)?;
    let mut qb = QueryBuilder::<Sqlite>::new(
        "SELECT id, direction, member_ids, subject, body, sent_at FROM messages
         WHERE direction = 'received' AND studio_id = ",
    );
    qb.push_bind(t.id.clone());
    page.push(&mut qb, "sent_at", "id", Order::Desc);
    let rows: Vec<MessageRow> = qb.build_query_as().fetch_all(&s.db).await?;
    Ok(Json(page.finish(
        rows,
        |r| (r.sent_at.clone(), r.id.clone()),
        MessageRow::render,
    )))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewMessage {
    member_ids: Vec<String>,
    subject: String,
    body: String,
}

async fn send(
    State(s): State<AppState>,
    t: Tenant,
    Body(input): Body<NewMessage>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    if input.member_ids.is_empty() || input.member_ids.len() > 50 {
        return Err(ApiError::invalid("member_ids", "give 1 to 50 member ids"));
    }
    check_text("subject", &input.subject, 1, 200)?;
    check_text("body", &input.body, 1, 10_000)?;
    let mut ids: Vec<String> = Vec::new();
    for id in input.member_ids {
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    let mut tx = write_tx(&s).await?;
    for id in &ids {
        let n: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM members WHERE studio_id = ? AND id = ?")
                .bind(&t.id)
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
        if n == 0 {
            return Err(ApiError::missing_ref("member", id, "member_ids"));
        }
    }
    let row = MessageRow {
        id: crate::store::new_id("msg"),
        direction: "sent".into(),
        member_ids: json!(ids).to_string(),
        subject: input.subject.trim().to_owned(),
        body: input.body,
        sent_at: now(),
    };
    sqlx::query("INSERT INTO messages (id, studio_id, direction, member_ids, subject, body, sent_at) VALUES (?, ?, 'sent', ?, ?, ?, ?)")
        .bind(&row.id)
        .bind(&t.id)
        .bind(&row.member_ids)
        .bind(&row.subject)
        .bind(&row.body)
        .bind(&row.sent_at)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(row.render())))
}
