//! Safe retries: a write made with an `idempotency_key` is applied at most once per studio,
//! tool and key.
//!
//! The first call claims the key (a `pending` row, inserted atomically), makes the upstream call
//! and stores its final answer. A repeat with the same arguments gets the stored answer without
//! an upstream call; with other arguments it is refused; while the first is still running, a
//! repeat waits for its answer (up to a limit), then is told to retry. Answers that are not final
//! (timeouts, 5xx, unreachable) are not stored, so a retry goes through; the key is forwarded
//! upstream too, so a change that did land is not applied twice there either.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::store::writer::{Bind, Write};
use crate::store::{Store, StoreError};

/// A final answer, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stored {
    Ok(Value),
    Rejected {
        status: u16,
        code: Option<String>,
        message: String,
    },
}

/// What claiming a key found.
#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    /// First use: make the call, then [`Idempotency::complete`] or [`Idempotency::release`].
    Fresh,
    /// Already answered: return this without calling upstream.
    Replay(Stored),
    /// The key was used with different arguments.
    Mismatch,
    /// Another call with this key is still running.
    InProgress,
}

/// The idempotency records in the gateway's store.
#[derive(Debug, Clone)]
pub struct Idempotency {
    store: Store,
    /// How long a stored answer is kept (24 h by default).
    ttl: Duration,
    /// How long a repeat waits for a running first call.
    wait: Duration,
    /// A `pending` row older than this belongs to a call that died (process killed) and may be
    /// taken over.
    stale_after: Duration,
}

/// The hash of a call's arguments, idempotency key excluded, independent of field order.
pub fn args_hash(args: &Value) -> String {
    let mut args = args.clone();
    if let Some(o) = args.as_object_mut() {
        o.remove("idempotency_key");
    }
    // serde_json's map is ordered by key, so this text is canonical.
    let digest = Sha256::digest(args.to_string().as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The `Idempotency-Key` sent upstream for a caller's key: derived from the tool and the key, so
/// it is scoped per tool upstream too and always a valid header value, whatever the caller sent.
pub fn upstream_key(tool: &str, key: &str) -> String {
    let digest = Sha256::digest(format!("{tool}\0{key}").as_bytes());
    let hex: String = digest.iter().take(20).map(|b| format!("{b:02x}")).collect();
    format!("flowgate-{hex}")
}

fn texts<const N: usize>(values: [&str; N]) -> Vec<Bind> {
    values
        .into_iter()
        .map(|v| Bind::Text(Some(v.to_string())))
        .collect()
}

fn timestamp(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

impl Idempotency {
    pub fn new(store: Store, ttl: Duration, wait: Duration, stale_after: Duration) -> Self {
        Self {
            store,
            ttl,
            wait,
            stale_after,
        }
    }

    /// Claims `key` for this call, or reports what an earlier call with it left.
    pub async fn claim(
        &self,
        studio: &str,
        tool: &str,
        key: &str,
        hash: &str,
    ) -> Result<Claim, StoreError> {
        let deadline = tokio::time::Instant::now() + self.wait;
        loop {
            let now = chrono::Utc::now();
            // Through the group-commit writer: committed when it returns.
            let inserted = self
                .store
                .write(Write::Execute {
                    sql: "INSERT INTO idempotency (studio, tool, key, args_hash, state, created_at)
                          VALUES (?, ?, ?, ?, 'pending', ?) ON CONFLICT DO NOTHING",
                    binds: texts([studio, tool, key, hash, &timestamp(now)]),
                })
                .await?;
            if inserted == 1 {
                return Ok(Claim::Fresh);
            }
            let row = sqlx::query(
                "SELECT args_hash, state, result, created_at FROM idempotency
                 WHERE studio = ? AND tool = ? AND key = ?",
            )
            .bind(studio)
            .bind(tool)
            .bind(key)
            .fetch_optional(self.store.pool())
            .await?;
            let Some(row) = row else {
                continue; // released in between: claim again
            };
            let created = chrono::DateTime::parse_from_rfc3339(&row.get::<String, _>("created_at"))
                .map(|t| t.with_timezone(&chrono::Utc))
                .unwrap_or(now);
            let age = now
                .signed_duration_since(created)
                .to_std()
                .unwrap_or_default();
            let state: String = row.get("state");
            let expired = age > self.ttl || (state == "pending" && age > self.stale_after);
            if expired {
                sqlx::query(
                    "DELETE FROM idempotency WHERE studio = ? AND tool = ? AND key = ? AND created_at = ?",
                )
                .bind(studio)
                .bind(tool)
                .bind(key)
                .bind(row.get::<String, _>("created_at"))
                .execute(self.store.pool())
                .await?;
                continue;
            }
            if row.get::<String, _>("args_hash") != hash {
                return Ok(Claim::Mismatch);
            }
            if state == "done" {
                let stored = row
                    .get::<Option<String>, _>("result")
                    .and_then(|r| serde_json::from_str(&r).ok());
                if let Some(stored) = stored {
                    return Ok(Claim::Replay(stored));
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(Claim::InProgress);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stores the final answer of a claimed call.
    pub async fn complete(
        &self,
        studio: &str,
        tool: &str,
        key: &str,
        stored: &Stored,
    ) -> Result<(), StoreError> {
        let result = serde_json::to_string(stored).unwrap_or_default();
        self.store
            .write(Write::Execute {
                sql: "UPDATE idempotency SET state = 'done', result = ?
                      WHERE studio = ? AND tool = ? AND key = ?",
                binds: texts([&result, studio, tool, key]),
            })
            .await?;
        Ok(())
    }

    /// Gives a claimed key back (the call's outcome is not final), so a retry can proceed.
    pub async fn release(&self, studio: &str, tool: &str, key: &str) -> Result<(), StoreError> {
        self.store
            .write(Write::Execute {
                sql: "DELETE FROM idempotency
                      WHERE studio = ? AND tool = ? AND key = ? AND state = 'pending'",
                binds: texts([studio, tool, key]),
            })
            .await?;
        Ok(())
    }

    /// Deletes answers older than the retention; returns how many.
    pub async fn prune(&self) -> Result<u64, StoreError> {
        let cutoff = chrono::Utc::now()
            - chrono::Duration::from_std(self.ttl).unwrap_or(chrono::Duration::days(1));
        let done = sqlx::query("DELETE FROM idempotency WHERE created_at < ?")
            .bind(timestamp(cutoff))
            .execute(self.store.pool())
            .await?;
        Ok(done.rows_affected())
    }
}
