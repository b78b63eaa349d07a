//! Secret keys' rows (`api_keys`). Only a SHA-256 of a secret is stored.

use super::{Store, StoreError, Timestamp, Within, on_db};

/// A stored key, without its secret.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct KeyRow {
    pub id: String,
    pub studio: String,
    pub name: String,
    /// Space-separated, sorted.
    pub scopes: String,
    pub hint: String,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub last_used_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}

/// A key to insert.
#[derive(Debug, Clone)]
pub struct NewKeyRow<'a> {
    pub id: String,
    pub studio: &'a str,
    pub name: String,
    pub scopes: &'a str,
    pub secret_hash: String,
    pub hint: String,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
}

/// A key found by its secret's hash, with the revocation epoch read in the same statement.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct KeyBySecret {
    #[sqlx(flatten)]
    pub key: KeyRow,
    pub epoch: i64,
}

const COLUMNS: &str =
    "id, studio, name, scopes, hint, created_at, expires_at, last_used_at, revoked_at";

impl Store {
    /// Inserts keys, all or none (one transaction; callers bound how many).
    pub async fn insert_keys(&self, rows: &[NewKeyRow<'_>]) -> Result<(), StoreError> {
        on_db!(self.db(), pool => {
            let mut tx = pool.begin().await?;
            for r in rows {
                sqlx::query(
                    "INSERT INTO api_keys (id, studio, name, scopes, secret_hash, hint, created_at, expires_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(&r.id)
                .bind(r.studio)
                .bind(&r.name)
                .bind(r.scopes)
                .bind(&r.secret_hash)
                .bind(&r.hint)
                .bind(r.created_at)
                .bind(r.expires_at)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    pub async fn key(&self, within: Within<'_>, id: &str) -> Result<Option<KeyRow>, StoreError> {
        let sql =
            format!("SELECT {COLUMNS} FROM api_keys WHERE id = $1 AND ($2 IS NULL OR studio = $2)");
        Ok(on_db!(self.db(), pool => sqlx::query_as(&sql)
            .bind(id)
            .bind(within.studio())
            .fetch_optional(pool)
            .await?))
    }

    /// The keys within `within`, newest first.
    pub async fn keys(&self, within: Within<'_>) -> Result<Vec<KeyRow>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM api_keys WHERE ($1 IS NULL OR studio = $1)
             ORDER BY created_at DESC, id"
        );
        Ok(on_db!(self.db(), pool => sqlx::query_as(&sql)
            .bind(within.studio())
            .fetch_all(pool)
            .await?))
    }

    /// Marks a key revoked; `false` if it is unknown (within `within`) or already revoked. The
    /// caller then tells running gateways ([`Store::credentials_changed`]).
    pub async fn revoke_key(
        &self,
        within: Within<'_>,
        id: &str,
        at: Timestamp,
    ) -> Result<bool, StoreError> {
        let done = on_db!(self.db(), pool => sqlx::query(
            "UPDATE api_keys SET revoked_at = $1
             WHERE id = $2 AND ($3 IS NULL OR studio = $3) AND revoked_at IS NULL",
        )
        .bind(at)
        .bind(id)
        .bind(within.studio())
        .execute(pool)
        .await?
        .rows_affected());
        Ok(done == 1)
    }

    /// Gives a live key a new secret; `false` if it is unknown (within `within`) or revoked.
    pub async fn rotate_key(
        &self,
        within: Within<'_>,
        id: &str,
        secret_hash: &str,
        hint: &str,
    ) -> Result<bool, StoreError> {
        let done = on_db!(self.db(), pool => sqlx::query(
            "UPDATE api_keys SET secret_hash = $1, hint = $2
             WHERE id = $3 AND ($4 IS NULL OR studio = $4) AND revoked_at IS NULL",
        )
        .bind(secret_hash)
        .bind(hint)
        .bind(id)
        .bind(within.studio())
        .execute(pool)
        .await?
        .rows_affected());
        Ok(done == 1)
    }

    /// The key whose secret has this hash, whatever its state, and the revocation epoch.
    pub async fn key_by_secret(
        &self,
        secret_hash: &str,
    ) -> Result<Option<KeyBySecret>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS}, (SELECT n FROM flowgate_epoch) AS epoch
             FROM api_keys WHERE secret_hash = $1"
        );
        Ok(on_db!(self.db(), pool => sqlx::query_as(&sql)
            .bind(secret_hash)
            .fetch_optional(pool)
            .await?))
    }

    /// Records that a key was used (kept to the minute by the caller: not on every call).
    pub async fn touch_key(&self, id: &str, at: Timestamp) -> Result<(), StoreError> {
        on_db!(self.db(), pool => sqlx::query("UPDATE api_keys SET last_used_at = $1 WHERE id = $2")
            .bind(at)
            .bind(id)
            .execute(pool)
            .await
            .map(drop)?);
        Ok(())
    }
}
