//! Financial summary: revenue, expenses and net per day, week or month.
//!
//! Contract: `from` (inclusive) and `to` (exclusive) are dates, default the last six calendar
//! months up to today. Revenue is bookings' price net of refunds, counted on the day the session
//! starts; `bookings` counts bookings that were not cancelled; expenses count on `incurred_on`. Only
//! amounts in the studio's currency are summed. Every period of the range is listed, empty ones with
//! zeros, at most 1000 periods.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{Datelike, Days, Months, NaiveDate, Utc};
use serde_json::{Value, json};

use crate::app::AppState;
use crate::error::{ApiError, ApiResult};
use crate::input::Params;
use crate::tenancy::Tenant;

pub fn routes() -> Router<AppState> {
    Router::new().route("/financials/summary", get(summary))
}

#[derive(Clone, Copy, PartialEq)]
enum GroupBy {
    Day,
    Week,
    Month,
}

impl GroupBy {
    fn start(self, d: NaiveDate) -> NaiveDate {
        match self {
            GroupBy::Day => d,
            GroupBy::Week => d - Days::new(u64::from(d.weekday().num_days_from_monday())),
            GroupBy::Month => d.with_day(1).unwrap_or(d),
        }
    }

    fn next(self, d: NaiveDate) -> NaiveDate {
        match self {
            GroupBy::Day => d + Days::new(1),
            GroupBy::Week => d + Days::new(7),
            GroupBy::Month => d + Months::new(1),
        }
    }

    fn label(self, d: NaiveDate) -> String {
        match self {
            GroupBy::Month => d.format("%Y-%m").to_string(),
            _ => d.format("%Y-%m-%d").to_string(),
        }
    }
}

#[derive(Default, Clone, Copy)]
struct Totals {
    revenue: i64,
    expenses: i64,
    bookings: i64,
}

impl Totals {
    fn render(self) -> Value {
        json!({
            "revenue_cents": self.revenue, "expenses_cents": self.expenses,
            "net_cents": self.revenue - self.expenses, "bookings": self.bookings,
        })
    }
}

async fn summary(State(s): State<AppState>, t: Tenant, p: Params) -> ApiResult<Json<Value>> {
    p.allow(&["from", "to", "group_by"])?;
    let group = match p.one_of("group_by", &["day", "week", "month"])?.as_deref() {
        Some("day") => GroupBy::Day,
        Some("week") => GroupBy::Week,
        _ => GroupBy::Month,
    };
    let today = Utc::now().date_naive();
    let to = p.date("to")?.unwrap_or(today + Days::new(1));
    let from = p
        .date("from")?
        .unwrap_or_else(|| GroupBy::Month.start(today) - Months::new(5));
    if from >= to {
        return Err(ApiError::invalid("to", "must be after `from`"));
    }
    let mut periods: BTreeMap<NaiveDate, Totals> = BTreeMap::new();
    let mut d = group.start(from);
    while d < to {
        periods.insert(d, Totals::default());
        if periods.len() > 1000 {
            return Err(ApiError::invalid(
                "from",
                "the range has more than 1000 periods; use a coarser group_by",
            ));
        }
        d = group.next(d);
    }
    let (from_s, to_s) = (from.to_string(), to.to_string());
    let revenue: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT substr(o.starts_at, 1, 10) AS day, SUM(b.price_cents - b.refund_cents),
                SUM(CASE WHEN b.status != 'cancelled' THEN 1 ELSE 0 END)
         FROM bookings b JOIN occurrences o ON o.id = b.occurrence_id
         WHERE b.studio_id = ? AND b.currency = ? AND o.starts_at >= ? AND o.starts_at < ?
         GROUP BY day",
    )
    .bind(&t.id)
    .bind(&t.currency)
    .bind(&from_s)
    .bind(&to_s)
    .fetch_all(&s.db)
    .await?;
    let expenses: Vec<(String, i64)> = sqlx::query_as(
        "SELECT incurred_on, SUM(amount_cents) FROM expenses
         WHERE studio_id = ? AND currency = ? AND incurred_on >= ? AND incurred_on < ?
         GROUP BY incurred_on",
    )
    .bind(&t.id)
    .bind(&t.currency)
    .bind(&from_s)
    .bind(&to_s)
    .fetch_all(&s.db)
    .await?;
    for (day, cents, n) in revenue {
        if let Some(t) = NaiveDate::parse_from_str(&day, "%Y-%m-%d")
            .ok()
            .and_then(|d| periods.get_mut(&group.start(d)))
        {
            t.revenue += cents;
            t.bookings += n;
        }
    }
    for (day, cents) in expenses {
        if let Some(t) = NaiveDate::parse_from_str(&day, "%Y-%m-%d")
            .ok()
            .and_then(|d| periods.get_mut(&group.start(d)))
        {
            t.expenses += cents;
        }
    }
    let mut total = Totals::default();
    let data: Vec<Value> = periods
        .iter()
        .map(|(start, t)| {
            total.revenue += t.revenue;
            total.expenses += t.expenses;
            total.bookings += t.bookings;
            let mut v = t.render();
            v["period"] = json!(group.label(*start));
            v["starts_on"] = json!(start.to_string());
            v
        })
        .collect();
    Ok(Json(json!({
        "currency": t.currency,
        "group_by": group.label_name(),
        "from": from_s,
        "to": to_s,
        "data": data,
        "totals": total.render(),
    })))
}

impl GroupBy {
    fn label_name(self) -> &'static str {
        match self {
            GroupBy::Day => "day",
            GroupBy::Week => "week",
            GroupBy::Month => "month",
        }
    }
}
