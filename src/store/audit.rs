//! Audit rows (`audit_log`): appended through the group-commit writer, read with filters,
//! counted per UTC day and outcome (the settings page's chart), pruned by age. Append-only: both
//! backends refuse an UPDATE with a trigger.

use super::writer::{Bind, Write};
use super::{Db, Store, StoreError, Timestamp, on_db};

/// The insert of one record, for the writer to batch.
const INSERT: &str = "INSERT INTO audit_log (at, request_id, studio, principal_kind, principal_id,
    principal_name, tool, arguments, decision, policies, outcome, message, upstream_status,
    duration_ms, client_addr) VALUES ";

/// One record as stored (texts already capped; arguments and policies as JSON text).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AuditRow {
    pub seq: i64,
    pub at: Timestamp,
    pub request_id: String,
    pub studio: Option<String>,
    pub principal_kind: Option<String>,
    pub principal_id: Option<String>,
    pub principal_name: Option<String>,
    pub tool: Option<String>,
    pub arguments: Option<String>,
    pub decision: Option<String>,
    pub policies: Option<String>,
    pub outcome: String,
    pub message: Option<String>,
    pub upstream_status: Option<i64>,
    pub duration_ms: i64,
    pub client_addr: Option<String>,
}

/// What to read; every field optional.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery<'a> {
    pub studio: Option<&'a str>,
    pub principal: Option<&'a str>,
    pub tool: Option<&'a str>,
    pub outcome: Option<&'a str>,
    /// Inclusive.
    pub since: Option<Timestamp>,
    /// Exclusive.
    pub until: Option<Timestamp>,
    /// Records with a `seq` below this (pagination, newest first).
    pub before_seq: Option<i64>,
    pub limit: i64,
}

/// Calls of one UTC day with one outcome.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DayCount {
    /// `YYYY-MM-DD`, UTC.
    pub day: String,
    pub outcome: String,
    pub calls: i64,
}

/// The filters of [`AuditQuery`] as one `WHERE` clause (`$1`…`$7`), shared by every read so a
/// filter means the same in the table, the export and the chart.
macro_rules! audit_where {
    () => {
        "WHERE ($1 IS NULL OR studio = $1)
           AND ($2 IS NULL OR principal_id = $2)
           AND ($3 IS NULL OR tool = $3)
           AND ($4 IS NULL OR outcome = $4)
           AND ($5 IS NULL OR at >= $5)
           AND ($6 IS NULL OR at < $6)
           AND ($7 IS NULL OR seq < $7)"
    };
}

/// Binds `$1`…`$7` of [`audit_where!`] from an [`AuditQuery`], in its order.
macro_rules! bind_audit_query {
    ($query:expr, $q:expr) => {
        $query
            .bind($q.studio)
            .bind($q.principal)
            .bind($q.tool)
            .bind($q.outcome)
            .bind($q.since)
            .bind($q.until)
            .bind($q.before_seq)
    };
}

/// Counts per day and outcome, given each backend's expression of a row's UTC day.
macro_rules! day_counts {
    ($day:literal) => {
        concat!(
            "SELECT ",
            $day,
            " AS day, outcome, COUNT(*) AS calls FROM audit_log ",
            audit_where!(),
            " GROUP BY 1, 2 ORDER BY 1, 2 LIMIT $8"
        )
    };
}

/// SQLite keeps `at` as fixed-width UTC text (`2026-12-02T10:04:48.123Z`): its day is the first
/// ten characters.
const DAY_COUNTS_SQLITE: &str = day_counts!("substr(at, 1, 10)");
/// PostgreSQL keeps `at` as `TIMESTAMPTZ`: its day in UTC whatever the session's time zone.
const DAY_COUNTS_POSTGRES: &str = day_counts!("to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD')");

impl Store {
    /// Appends one record; returns its sequence number once it is committed.
    pub async fn append_audit(&self, r: AuditRow) -> Result<i64, StoreError> {
        let row = vec![
            Bind::Time(Some(r.at)),
            Bind::Text(Some(r.request_id)),
            Bind::Text(r.studio),
            Bind::Text(r.principal_kind),
            Bind::Text(r.principal_id),
            Bind::Text(r.principal_name),
            Bind::Text(r.tool),
            Bind::Text(r.arguments),
            Bind::Text(r.decision),
            Bind::Text(r.policies),
            Bind::Text(Some(r.outcome)),
            Bind::Text(r.message),
            Bind::Int(r.upstream_status),
            Bind::Int(Some(r.duration_ms)),
            Bind::Text(r.client_addr),
        ];
        self.write(Write::Insert {
            into: INSERT,
            id: "seq",
            row,
        })
        .await
    }

    /// Records matching the query, newest first (at most 1,000).
    pub async fn audit_rows(&self, q: &AuditQuery<'_>) -> Result<Vec<AuditRow>, StoreError> {
        Ok(
            on_db!(self.db(), pool => bind_audit_query!(sqlx::query_as(concat!(
            "SELECT seq, at, request_id, studio, principal_kind, principal_id, principal_name, tool,
                    arguments, decision, policies, outcome, message, upstream_status, duration_ms,
                    client_addr
             FROM audit_log ",
            audit_where!(),
            " ORDER BY seq DESC LIMIT $8"
        )), q)
        .bind(q.limit.clamp(1, 1000))
        .fetch_all(pool)
        .await?),
        )
    }

    /// How many records match the query (its `limit` and order ignored), counting no further
    /// than `upto`, and the newest one's `seq`: what an export of at most `upto` records will
    /// hold, and where it starts (so records appended meanwhile do not shift it).
    pub async fn audit_count_upto(
        &self,
        q: &AuditQuery<'_>,
        upto: i64,
    ) -> Result<(i64, Option<i64>), StoreError> {
        Ok(
            on_db!(self.db(), pool => bind_audit_query!(sqlx::query_as(concat!(
            "SELECT COUNT(*), MAX(seq) FROM (SELECT seq FROM audit_log ",
            audit_where!(),
            " ORDER BY seq DESC LIMIT $8) AS matching"
        )), q)
        .bind(upto.max(0))
        .fetch_one(pool)
        .await?),
        )
    }

    /// Records matching the query (its `limit` ignored) counted per UTC day and outcome, by day
    /// then outcome; at most `groups` of them. A caller bounds the days with `since`/`until`.
    pub async fn audit_day_counts(
        &self,
        q: &AuditQuery<'_>,
        groups: i64,
    ) -> Result<Vec<DayCount>, StoreError> {
        // The one difference between the backends: how a row's UTC day is read from `at`.
        let sql = match self.db() {
            Db::Sqlite(_) => DAY_COUNTS_SQLITE,
            Db::Postgres(_) => DAY_COUNTS_POSTGRES,
        };
        Ok(
            on_db!(self.db(), pool => bind_audit_query!(sqlx::query_as(sql), q)
        .bind(groups.max(0))
        .fetch_all(pool)
        .await?),
        )
    }

    /// The tools that appear in a studio's records, by name (at most `max`).
    pub async fn audit_tools(&self, studio: &str, max: i64) -> Result<Vec<String>, StoreError> {
        Ok(on_db!(self.db(), pool => sqlx::query_scalar(
            "SELECT DISTINCT tool FROM audit_log WHERE studio = $1 AND tool IS NOT NULL
             ORDER BY tool LIMIT $2",
        )
        .bind(studio)
        .bind(max.max(0))
        .fetch_all(pool)
        .await?))
    }

    /// Deletes records older than `before`; how many.
    pub async fn prune_audit(&self, before: Timestamp) -> Result<u64, StoreError> {
        Ok(
            on_db!(self.db(), pool => sqlx::query("DELETE FROM audit_log WHERE at < $1")
            .bind(before)
            .execute(pool)
            .await?
            .rows_affected()),
        )
    }
}
