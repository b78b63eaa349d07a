//! The audit log: one durable record per `tools/call` and per rejected credential, appended to
//! the gateway's store **before** the response is sent, with `sensitive` arguments redacted.

use std::sync::{Arc, OnceLock};

use serde::Serialize;
use serde_json::Value;
use sqlx::pool::PoolConnection;
use sqlx::{Row, Sqlite, SqliteConnection};
use tokio::sync::{mpsc, oneshot};

use crate::store::{Store, StoreError};

/// How a call ended, as recorded and as filtered on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Ok,
    Denied,
    Invalid,
    RateLimited,
    UpstreamError,
    Unauthenticated,
    Error,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Denied => "denied",
            Outcome::Invalid => "invalid",
            Outcome::RateLimited => "rate_limited",
            Outcome::UpstreamError => "upstream_error",
            Outcome::Unauthenticated => "unauthenticated",
            Outcome::Error => "error",
        }
    }
}

/// One audit record.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Record {
    pub seq: i64,
    pub at: String,
    pub request_id: String,
    pub studio: Option<String>,
    pub principal_kind: Option<String>,
    pub principal_id: Option<String>,
    pub principal_name: Option<String>,
    pub tool: Option<String>,
    /// The arguments, `sensitive` fields replaced by `"[redacted]"`.
    pub arguments: Option<Value>,
    /// `allow` or `deny`, when a decision was made.
    pub decision: Option<String>,
    /// The deciding policy ids.
    pub policies: Vec<String>,
    pub outcome: String,
    pub message: Option<String>,
    pub upstream_status: Option<i64>,
    pub duration_ms: i64,
}

/// Filters for reading the log; all optional.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub studio: Option<String>,
    pub principal: Option<String>,
    pub tool: Option<String>,
    pub outcome: Option<String>,
    /// RFC 3339, inclusive.
    pub since: Option<String>,
    /// RFC 3339, exclusive.
    pub until: Option<String>,
    /// Records with a `seq` below this (pagination, newest first).
    pub before_seq: Option<i64>,
    pub limit: i64,
}

/// The audit log in the gateway's store.
///
/// Appends are **group-committed**: one writer task takes every record waiting at that moment and
/// inserts them in one transaction, then answers each caller with its sequence number. A caller
/// still gets its answer only after its own record is committed, so the durability promise is
/// the same as one transaction per record, but under load one commit (and one hop to SQLite's
/// thread) serves many calls.
#[derive(Debug, Clone)]
pub struct Audit {
    store: Store,
    /// The writer task's queue, started by the first append (inside the runtime).
    writer: Arc<OnceLock<mpsc::Sender<Pending>>>,
}

/// A record waiting for its batch to be committed.
struct Pending {
    record: Record,
    done: oneshot::Sender<Result<i64, String>>,
}

/// At most this many records per transaction (14 bound values each, far below SQLite's limit).
const MAX_BATCH: usize = 64;
/// Records queued at once before appenders wait for room (backpressure, bounded memory).
const QUEUE: usize = 4096;

/// The placeholder for redacted values.
pub const REDACTED: &str = "[redacted]";

/// Replaces the values at `paths` (dotted, `[]` for array items) with [`REDACTED`].
pub fn redact(args: &Value, paths: &[&str]) -> Value {
    let mut out = args.clone();
    for path in paths {
        let parts: Vec<&str> = path.split('.').collect();
        redact_at(&mut out, &parts);
    }
    out
}

fn redact_at(v: &mut Value, parts: &[&str]) {
    let Some((first, rest)) = parts.split_first() else {
        *v = Value::String(REDACTED.into());
        return;
    };
    let (name, each) = match first.strip_suffix("[]") {
        Some(n) => (n, true),
        None => (*first, false),
    };
    let Some(child) = v.as_object_mut().and_then(|o| o.get_mut(name)) else {
        return;
    };
    if each {
        if let Some(items) = child.as_array_mut() {
            for item in items {
                redact_at(item, rest);
            }
        } else {
            *child = Value::String(REDACTED.into());
        }
    } else {
        redact_at(child, rest);
    }
}

impl Audit {
    pub fn new(store: Store) -> Self {
        Self {
            store,
            writer: Arc::new(OnceLock::new()),
        }
    }

    /// Appends one record and returns its sequence number. Awaited before the response goes
    /// out, so every answer a client received has its committed record.
    pub async fn append(&self, r: &Record) -> Result<i64, StoreError> {
        let writer = self.writer.get_or_init(|| {
            let (tx, rx) = mpsc::channel(QUEUE);
            tokio::spawn(write_batches(self.store.clone(), rx));
            tx
        });
        let (done, answer) = oneshot::channel();
        let pending = Pending {
            record: r.clone(),
            done,
        };
        let stopped = || StoreError::Writer("the audit writer has stopped".into());
        writer.send(pending).await.map_err(|_| stopped())?;
        answer
            .await
            .map_err(|_| stopped())?
            .map_err(StoreError::Writer)
    }

    /// Deletes records older than `days` days (0 keeps everything); returns how many.
    pub async fn prune(&self, days: u64) -> Result<u64, StoreError> {
        if days == 0 {
            return Ok(0);
        }
        let cutoff = chrono::Utc::now()
            - chrono::Duration::days(i64::try_from(days).unwrap_or(i64::MAX / 86_400_000));
        let done = sqlx::query("DELETE FROM audit_log WHERE at < ?")
            .bind(cutoff.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
            .execute(self.store.pool())
            .await?;
        Ok(done.rows_affected())
    }

    /// Records matching the filter, newest first.
    pub async fn query(&self, f: &Filter) -> Result<Vec<Record>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM audit_log
             WHERE (?1 IS NULL OR studio = ?1)
               AND (?2 IS NULL OR principal_id = ?2)
               AND (?3 IS NULL OR tool = ?3)
               AND (?4 IS NULL OR outcome = ?4)
               AND (?5 IS NULL OR at >= ?5)
               AND (?6 IS NULL OR at < ?6)
               AND (?7 IS NULL OR seq < ?7)
             ORDER BY seq DESC LIMIT ?8",
        )
        .bind(&f.studio)
        .bind(&f.principal)
        .bind(&f.tool)
        .bind(&f.outcome)
        .bind(f.since.as_deref().map(normalise_time))
        .bind(f.until.as_deref().map(normalise_time))
        .bind(f.before_seq)
        .bind(f.limit.clamp(1, 1000))
        .fetch_all(self.store.pool())
        .await?;
        Ok(rows
            .iter()
            .map(|row| Record {
                seq: row.get("seq"),
                at: row.get("at"),
                request_id: row.get("request_id"),
                studio: row.get("studio"),
                principal_kind: row.get("principal_kind"),
                principal_id: row.get("principal_id"),
                principal_name: row.get("principal_name"),
                tool: row.get("tool"),
                arguments: row
                    .get::<Option<String>, _>("arguments")
                    .and_then(|a| serde_json::from_str(&a).ok()),
                decision: row.get("decision"),
                policies: row
                    .get::<Option<String>, _>("policies")
                    .and_then(|p| serde_json::from_str(&p).ok())
                    .unwrap_or_default(),
                outcome: row.get("outcome"),
                message: row.get("message"),
                upstream_status: row.get("upstream_status"),
                duration_ms: row.get("duration_ms"),
            })
            .collect())
    }
}

/// The writer task: commits whatever is waiting, one transaction per batch, until every
/// [`Audit`] handle is gone.
async fn write_batches(store: Store, mut rx: mpsc::Receiver<Pending>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    // One connection of its own, kept between batches: its page cache stays warm, since no
    // other connection writes the audit log.
    let mut conn: Option<PoolConnection<Sqlite>> = None;
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        // Let the calls that are ready to run reach their append first: under load this turns
        // one commit per call into one per scheduler round, at the cost of one yield when idle.
        if batch.len() < MAX_BATCH {
            tokio::task::yield_now().await;
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(p) => batch.push(p),
                    Err(_) => break,
                }
            }
        }
        let result = match &mut conn {
            Some(c) => insert(c, &batch).await,
            None => match store.pool().acquire().await {
                Ok(c) => insert(conn.insert(c), &batch).await,
                Err(e) => Err(e),
            },
        };
        match result {
            Ok(last) => {
                // One multi-row INSERT in one transaction: the rows got consecutive sequence
                // numbers, in order, ending at `last`.
                let first = last - (batch.len() as i64 - 1);
                for (i, p) in batch.drain(..).enumerate() {
                    let _ = p.done.send(Ok(first + i as i64));
                }
            }
            Err(e) => {
                // Start again from a fresh connection for the next batch.
                conn = None;
                let message = e.to_string();
                for p in batch.drain(..) {
                    let _ = p.done.send(Err(message.clone()));
                }
            }
        }
    }
}

/// Inserts the batch as one statement in one transaction; the last row's sequence number.
async fn insert(conn: &mut SqliteConnection, batch: &[Pending]) -> Result<i64, sqlx::Error> {
    let mut sql = String::from(
        "INSERT INTO audit_log (at, request_id, studio, principal_kind, principal_id, principal_name,
            tool, arguments, decision, policies, outcome, message, upstream_status, duration_ms) VALUES ",
    );
    for i in 0..batch.len() {
        sql.push_str(if i == 0 { "" } else { ", " });
        sql.push_str("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
    }
    let mut query = sqlx::query(&sql);
    for Pending { record: r, .. } in batch {
        query = query
            .bind(&r.at)
            .bind(&r.request_id)
            .bind(&r.studio)
            .bind(&r.principal_kind)
            .bind(&r.principal_id)
            .bind(&r.principal_name)
            .bind(&r.tool)
            .bind(r.arguments.as_ref().map(Value::to_string))
            .bind(&r.decision)
            .bind(serde_json::to_string(&r.policies).unwrap_or_else(|_| "[]".into()))
            .bind(&r.outcome)
            .bind(&r.message)
            .bind(r.upstream_status)
            .bind(r.duration_ms);
    }
    // A single statement is atomic on its own: all of the batch is committed, or none of it.
    Ok(query.execute(conn).await?.last_insert_rowid())
}

/// Times are stored as UTC `YYYY-MM-DDThh:mm:ss.sssZ`, so filters compare as text once normalised.
fn normalise_time(t: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(t)
        .map(|d| {
            d.with_timezone(&chrono::Utc)
                .format("%Y-%m-%dT%H:%M:%S%.3fZ")
                .to_string()
        })
        .unwrap_or_else(|_| t.to_string())
}

/// The current time in the stored format.
pub fn now() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(n: usize) -> Record {
        Record {
            seq: 0,
            at: now(),
            request_id: format!("req-{n}"),
            studio: Some("std_a".into()),
            principal_kind: Some("key".into()),
            principal_id: Some("key_1".into()),
            principal_name: Some("k".into()),
            tool: Some("get_class".into()),
            arguments: Some(serde_json::json!({ "n": n })),
            decision: Some("allow".into()),
            policies: vec!["p".into()],
            outcome: "ok".into(),
            message: None,
            upstream_status: Some(200),
            duration_ms: 1,
        }
    }

    /// Appends made at the same moment are committed together, and each caller gets the
    /// sequence number of its own record.
    #[tokio::test]
    async fn concurrent_appends_are_committed_with_their_own_sequence_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("a.sqlite")).await.unwrap();
        let audit = Audit::new(store);
        let seqs = futures::future::join_all((0..300).map(|n| {
            let audit = audit.clone();
            async move { (n, audit.append(&record(n)).await.unwrap()) }
        }))
        .await;
        let stored = audit
            .query(&Filter {
                limit: 1000,
                ..Filter::default()
            })
            .await
            .unwrap();
        assert_eq!(stored.len(), 300);
        for (n, seq) in seqs {
            let r = stored.iter().find(|r| r.seq == seq).unwrap();
            assert_eq!(r.request_id, format!("req-{n}"));
            assert_eq!(r.arguments, Some(serde_json::json!({ "n": n })));
        }
    }

    /// A failed batch fails every append in it, and the writer goes on with the next one.
    #[tokio::test]
    async fn a_failed_batch_is_reported_to_each_caller() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("a.sqlite")).await.unwrap();
        let audit = Audit::new(store.clone());
        audit.append(&record(0)).await.unwrap();
        sqlx::query("CREATE TRIGGER no_more BEFORE INSERT ON audit_log BEGIN SELECT RAISE(ABORT, 'full'); END")
            .execute(store.pool())
            .await
            .unwrap();
        let err = audit.append(&record(1)).await.unwrap_err();
        assert!(err.to_string().contains("full"), "{err}");
        sqlx::query("DROP TRIGGER no_more")
            .execute(store.pool())
            .await
            .unwrap();
        assert!(audit.append(&record(2)).await.unwrap() > 1);
    }
}
