//! Idempotency rows: one per studio, tool and key. Claims and answers go through the
//! group-commit writer; a claim is one `INSERT … ON CONFLICT DO NOTHING`, so of concurrent
//! duplicates on any number of replicas exactly one inserts.

use super::writer::{Bind, Write};
use super::{Store, StoreError, Timestamp, on_db};

/// What an earlier call with a key left.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct IdempotencyRow {
    pub args_hash: String,
    /// `pending` or `done`.
    pub state: String,
    /// The stored answer (JSON), once `done`.
    pub result: Option<String>,
    pub created_at: Timestamp,
}

fn texts<const N: usize>(values: [&str; N]) -> Vec<Bind> {
    values
        .into_iter()
        .map(|v| Bind::Text(Some(v.to_string())))
        .collect()
}

impl Store {
    /// Claims a key: `true` when this call inserted the `pending` row (committed on return).
    pub async fn claim_key(
        &self,
        studio: &str,
        tool: &str,
        key: &str,
        args_hash: &str,
        at: Timestamp,
    ) -> Result<bool, StoreError> {
        let mut binds = texts([studio, tool, key, args_hash]);
        binds.push(Bind::Time(Some(at)));
        let inserted = self
            .write(Write::Execute {
                sql: "INSERT INTO idempotency (studio, tool, key, args_hash, state, created_at)
                      VALUES ($1, $2, $3, $4, 'pending', $5) ON CONFLICT DO NOTHING",
                binds,
            })
            .await?;
        Ok(inserted == 1)
    }

    pub async fn idempotency_row(
        &self,
        studio: &str,
        tool: &str,
        key: &str,
    ) -> Result<Option<IdempotencyRow>, StoreError> {
        Ok(on_db!(self.db(), pool => sqlx::query_as(
            "SELECT args_hash, state, result, created_at FROM idempotency
             WHERE studio = $1 AND tool = $2 AND key = $3",
        )
        .bind(studio)
        .bind(tool)
        .bind(key)
        .fetch_optional(pool)
        .await?))
    }

    /// Deletes the row a caller read (same `created_at`), when it expired or its call died.
    pub async fn drop_key(
        &self,
        studio: &str,
        tool: &str,
        key: &str,
        created_at: Timestamp,
    ) -> Result<(), StoreError> {
        on_db!(self.db(), pool => sqlx::query(
            "DELETE FROM idempotency WHERE studio = $1 AND tool = $2 AND key = $3 AND created_at = $4",
        )
        .bind(studio)
        .bind(tool)
        .bind(key)
        .bind(created_at)
        .execute(pool)
        .await
        .map(drop)?);
        Ok(())
    }

    /// Stores the final answer of a claimed key.
    pub async fn complete_key(
        &self,
        studio: &str,
        tool: &str,
        key: &str,
        result: &str,
    ) -> Result<(), StoreError> {
        self.write(Write::Execute {
            sql: "UPDATE idempotency SET state = 'done', result = $1
                  WHERE studio = $2 AND tool = $3 AND key = $4",
            binds: texts([result, studio, tool, key]),
        })
        .await?;
        Ok(())
    }

    /// Gives a pending key back (the call's outcome was not final).
    pub async fn release_key(&self, studio: &str, tool: &str, key: &str) -> Result<(), StoreError> {
        self.write(Write::Execute {
            sql: "DELETE FROM idempotency
                  WHERE studio = $1 AND tool = $2 AND key = $3 AND state = 'pending'",
            binds: texts([studio, tool, key]),
        })
        .await?;
        Ok(())
    }

    /// Deletes keys claimed before `before`; how many.
    pub async fn prune_keys(&self, before: Timestamp) -> Result<u64, StoreError> {
        Ok(
            on_db!(self.db(), pool => sqlx::query("DELETE FROM idempotency WHERE created_at < $1")
            .bind(before)
            .execute(pool)
            .await?
            .rows_affected()),
        )
    }
}
