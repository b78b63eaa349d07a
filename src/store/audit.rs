//! Audit rows (`audit_log`): appended through the group-commit writer, read with filters,
//! pruned by age. Append-only: both backends refuse an UPDATE with a trigger.

use super::writer::{Bind, Write};
use super::{Store, StoreError, Timestamp, on_db};

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
        Ok(on_db!(self.db(), pool => sqlx::query_as(
            "SELECT seq, at, request_id, studio, principal_kind, principal_id, principal_name, tool,
                    arguments, decision, policies, outcome, message, upstream_status, duration_ms,
                    client_addr
             FROM audit_log
             WHERE ($1 IS NULL OR studio = $1)
               AND ($2 IS NULL OR principal_id = $2)
               AND ($3 IS NULL OR tool = $3)
               AND ($4 IS NULL OR outcome = $4)
               AND ($5 IS NULL OR at >= $5)
               AND ($6 IS NULL OR at < $6)
               AND ($7 IS NULL OR seq < $7)
             ORDER BY seq DESC LIMIT $8",
        )
        .bind(q.studio)
        .bind(q.principal)
        .bind(q.tool)
        .bind(q.outcome)
        .bind(q.since)
        .bind(q.until)
        .bind(q.before_seq)
        .bind(q.limit.clamp(1, 1000))
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
