//! The audit log: one durable record per `tools/call` and per rejected credential, appended to
//! the gateway's store **before** the response is sent, with `sensitive` arguments redacted.

use serde::Serialize;
use serde_json::Value;
use sqlx::Row;

use crate::store::writer::{Bind, Write};
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
    /// The client's address (no port), for rejected credentials and OAuth security events
    /// (`oauth.*` tools, written by `crate::oauth`).
    pub client_addr: Option<String>,
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
/// Appends go through the store's group-commit writer ([`crate::store::writer`]): a caller gets
/// its answer only once its record is committed, but under load one commit serves many calls.
#[derive(Debug, Clone)]
pub struct Audit {
    store: Store,
}

/// The insert of one record, for the writer to batch.
const INSERT: &str = "INSERT INTO audit_log (at, request_id, studio, principal_kind, principal_id,
    principal_name, tool, arguments, decision, policies, outcome, message, upstream_status,
    duration_ms, client_addr) VALUES ";

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
        Self { store }
    }

    /// Appends one record and returns its sequence number. Awaited before the response goes
    /// out, so every answer a client received has its committed record.
    pub async fn append(&self, r: &Record) -> Result<i64, StoreError> {
        let text = |t: &Option<String>| Bind::Text(t.clone());
        let row = vec![
            Bind::Text(Some(r.at.clone())),
            Bind::Text(Some(r.request_id.clone())),
            text(&r.studio),
            text(&r.principal_kind),
            text(&r.principal_id),
            text(&r.principal_name),
            text(&r.tool),
            Bind::Text(r.arguments.as_ref().map(Value::to_string)),
            text(&r.decision),
            Bind::Text(Some(
                serde_json::to_string(&r.policies).unwrap_or_else(|_| "[]".into()),
            )),
            Bind::Text(Some(r.outcome.clone())),
            text(&r.message),
            Bind::Int(r.upstream_status),
            Bind::Int(Some(r.duration_ms)),
            text(&r.client_addr),
        ];
        self.store.write(Write::Insert { into: INSERT, row }).await
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
                client_addr: row.get("client_addr"),
            })
            .collect())
    }
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
            client_addr: None,
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

    /// An append that fails is reported to its caller, and the writer goes on with the next one.
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
