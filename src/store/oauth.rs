//! OAuth rows: registered clients, grants, authorization codes and tokens. Codes and tokens are
//! stored as SHA-256 hashes only.

use super::{Store, StoreError, Timestamp, Within, on_db};

/// A registered client, with how many grants it led to.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ClientRow {
    pub client_id: String,
    pub client_name: String,
    /// JSON array.
    pub redirect_uris: String,
    pub created_at: Timestamp,
    pub grants: i64,
    pub active_grants: i64,
}

/// A grant.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct GrantRow {
    pub id: String,
    pub studio: String,
    pub user_id: String,
    pub user_email: String,
    pub client_id: String,
    pub client_name: String,
    pub scopes: String,
    pub resource: String,
    /// Where the approval sent the person back (`None` for grants approved before it was kept).
    pub redirect_uri: Option<String>,
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}

/// An authorization code to insert with its grant.
#[derive(Debug, Clone)]
pub struct NewCode<'a> {
    pub code_hash: String,
    pub client_id: &'a str,
    pub redirect_uri: &'a str,
    pub code_challenge: &'a str,
    pub expires_at: Timestamp,
}

/// An authorization code and what its grant says.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CodeRow {
    pub grant_id: String,
    pub client_id: String,
    pub redirect_uri: String,
    pub code_challenge: String,
    pub expires_at: Timestamp,
    pub resource: String,
    pub scopes: String,
    pub studio: String,
    pub client_name: String,
}

/// A token and its grant.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TokenRow {
    pub grant_id: String,
    pub kind: String,
    pub expires_at: Timestamp,
    pub used_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
    pub grant_revoked: Option<Timestamp>,
    pub client_id: String,
    pub client_name: String,
    pub studio: String,
    pub scopes: String,
    pub resource: String,
    pub last_used_at: Option<Timestamp>,
    /// The revocation epoch, read in the same statement.
    pub epoch: i64,
}

impl Store {
    /// Registered clients that led to a grant or were registered at `since` or later.
    pub async fn live_client_count(&self, since: Timestamp) -> Result<i64, StoreError> {
        Ok(on_db!(self.db(), pool => sqlx::query_scalar(
            "SELECT COUNT(*) FROM oauth_clients c
             WHERE c.created_at >= $1
                OR EXISTS (SELECT 1 FROM oauth_grants g WHERE g.client_id = c.client_id)",
        )
        .bind(since)
        .fetch_one(pool)
        .await?))
    }

    /// Deletes registrations made before `before` that never led to a grant; how many.
    pub async fn expire_unused_clients(&self, before: Timestamp) -> Result<u64, StoreError> {
        Ok(on_db!(self.db(), pool => sqlx::query(
            "DELETE FROM oauth_clients
             WHERE created_at < $1
               AND NOT EXISTS (SELECT 1 FROM oauth_grants g WHERE g.client_id = oauth_clients.client_id)",
        )
        .bind(before)
        .execute(pool)
        .await?
        .rows_affected()))
    }

    /// Every registered client (or one), newest first, with its grant counts.
    pub async fn clients(&self, client_id: Option<&str>) -> Result<Vec<ClientRow>, StoreError> {
        Ok(on_db!(self.db(), pool => sqlx::query_as(
            "SELECT c.client_id, c.client_name, c.redirect_uris, c.created_at,
                    (SELECT COUNT(*) FROM oauth_grants g WHERE g.client_id = c.client_id) AS grants,
                    (SELECT COUNT(*) FROM oauth_grants g
                      WHERE g.client_id = c.client_id AND g.revoked_at IS NULL) AS active_grants
             FROM oauth_clients c WHERE ($1 IS NULL OR c.client_id = $1)
             ORDER BY c.created_at DESC, c.client_id",
        )
        .bind(client_id)
        .fetch_all(pool)
        .await?))
    }

    pub async fn insert_client(
        &self,
        client_id: &str,
        client_name: &str,
        redirect_uris_json: &str,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        on_db!(self.db(), pool => sqlx::query(
            "INSERT INTO oauth_clients (client_id, client_name, redirect_uris, created_at)
             VALUES ($1, $2, $3, $4)",
        )
        .bind(client_id)
        .bind(client_name)
        .bind(redirect_uris_json)
        .bind(at)
        .execute(pool)
        .await
        .map(drop)?);
        Ok(())
    }

    /// The ids of a client's grants that are not revoked.
    pub async fn active_grants_of_client(
        &self,
        client_id: &str,
    ) -> Result<Vec<String>, StoreError> {
        Ok(on_db!(self.db(), pool => sqlx::query_scalar(
            "SELECT id FROM oauth_grants WHERE client_id = $1 AND revoked_at IS NULL",
        )
        .bind(client_id)
        .fetch_all(pool)
        .await?))
    }

    pub async fn delete_client(&self, client_id: &str) -> Result<(), StoreError> {
        on_db!(self.db(), pool => sqlx::query("DELETE FROM oauth_clients WHERE client_id = $1")
            .bind(client_id)
            .execute(pool)
            .await
            .map(drop)?);
        Ok(())
    }

    /// Inserts a grant and its authorization code, together.
    pub async fn insert_grant(&self, g: &GrantRow, code: &NewCode<'_>) -> Result<(), StoreError> {
        on_db!(self.db(), pool => {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "INSERT INTO oauth_grants (id, studio, user_id, user_email, client_id, client_name, scopes, resource, created_at, redirect_uri)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(&g.id)
            .bind(&g.studio)
            .bind(&g.user_id)
            .bind(&g.user_email)
            .bind(&g.client_id)
            .bind(&g.client_name)
            .bind(&g.scopes)
            .bind(&g.resource)
            .bind(g.created_at)
            .bind(code.redirect_uri)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO oauth_codes (code_hash, grant_id, client_id, redirect_uri, code_challenge, expires_at)
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&code.code_hash)
            .bind(&g.id)
            .bind(code.client_id)
            .bind(code.redirect_uri)
            .bind(code.code_challenge)
            .bind(code.expires_at)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// Marks a code used, atomically: `true` for the one caller that used it first (on every
    /// replica: one conditional UPDATE).
    pub async fn use_code(&self, code_hash: &str, at: Timestamp) -> Result<bool, StoreError> {
        let n = on_db!(self.db(), pool => sqlx::query(
            "UPDATE oauth_codes SET used_at = $1 WHERE code_hash = $2 AND used_at IS NULL",
        )
        .bind(at)
        .bind(code_hash)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(n == 1)
    }

    pub async fn code(&self, code_hash: &str) -> Result<Option<CodeRow>, StoreError> {
        Ok(on_db!(self.db(), pool => sqlx::query_as(
            "SELECT c.grant_id, c.client_id, c.redirect_uri, c.code_challenge, c.expires_at,
                    g.resource, g.scopes, g.studio, g.client_name
             FROM oauth_codes c JOIN oauth_grants g ON g.id = c.grant_id WHERE c.code_hash = $1",
        )
        .bind(code_hash)
        .fetch_optional(pool)
        .await?))
    }

    /// A token of any kind, with its grant and the revocation epoch.
    pub async fn token(&self, token_hash: &str) -> Result<Option<TokenRow>, StoreError> {
        Ok(on_db!(self.db(), pool => sqlx::query_as(
            "SELECT t.grant_id, t.kind, t.expires_at, t.used_at, t.revoked_at,
                    g.revoked_at AS grant_revoked, g.client_id, g.client_name, g.studio, g.scopes,
                    g.resource, g.last_used_at, (SELECT n FROM flowgate_epoch) AS epoch
             FROM oauth_tokens t JOIN oauth_grants g ON g.id = t.grant_id
             WHERE t.token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(pool)
        .await?))
    }

    /// Marks a refresh token used, atomically: `true` for the one caller that used it first.
    pub async fn use_refresh_token(
        &self,
        token_hash: &str,
        at: Timestamp,
    ) -> Result<bool, StoreError> {
        let n = on_db!(self.db(), pool => sqlx::query(
            "UPDATE oauth_tokens SET used_at = $1
             WHERE token_hash = $2 AND kind = 'refresh' AND used_at IS NULL",
        )
        .bind(at)
        .bind(token_hash)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(n == 1)
    }

    /// Inserts a grant's new tokens (`(hash, kind, expires_at)`), together.
    pub async fn insert_tokens(
        &self,
        grant_id: &str,
        tokens: &[(String, &str, Timestamp)],
    ) -> Result<(), StoreError> {
        on_db!(self.db(), pool => {
            let mut tx = pool.begin().await?;
            for (hash, kind, expires_at) in tokens {
                sqlx::query(
                    "INSERT INTO oauth_tokens (token_hash, kind, grant_id, expires_at) VALUES ($1, $2, $3, $4)",
                )
                .bind(hash)
                .bind(*kind)
                .bind(grant_id)
                .bind(*expires_at)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Revokes a grant (within `within`) and every token it issued, in one transaction;
    /// `false` if it was unknown or already revoked. The caller then tells running gateways.
    pub async fn revoke_grant(
        &self,
        within: Within<'_>,
        id: &str,
        why: &str,
        at: Timestamp,
    ) -> Result<bool, StoreError> {
        let n = on_db!(self.db(), pool => {
            let mut tx = pool.begin().await?;
            let n = sqlx::query(
                "UPDATE oauth_grants SET revoked_at = $1, revoked_why = $2
                 WHERE id = $3 AND ($4 IS NULL OR studio = $4) AND revoked_at IS NULL",
            )
            .bind(at)
            .bind(why)
            .bind(id)
            .bind(within.studio())
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n == 1 {
                sqlx::query(
                    "UPDATE oauth_tokens SET revoked_at = $1 WHERE grant_id = $2 AND revoked_at IS NULL",
                )
                .bind(at)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            n
        });
        Ok(n == 1)
    }

    /// The grants within `within`, newest first.
    pub async fn grants(&self, within: Within<'_>) -> Result<Vec<GrantRow>, StoreError> {
        Ok(on_db!(self.db(), pool => sqlx::query_as(
            "SELECT id, studio, user_id, user_email, client_id, client_name, scopes, resource,
                    redirect_uri, created_at, last_used_at, revoked_at
             FROM oauth_grants WHERE ($1 IS NULL OR studio = $1) ORDER BY created_at DESC, id",
        )
        .bind(within.studio())
        .fetch_all(pool)
        .await?))
    }

    /// Records that a grant was used (kept to the minute by the caller).
    pub async fn touch_grant(&self, id: &str, at: Timestamp) -> Result<(), StoreError> {
        on_db!(self.db(), pool => sqlx::query("UPDATE oauth_grants SET last_used_at = $1 WHERE id = $2")
            .bind(at)
            .bind(id)
            .execute(pool)
            .await
            .map(drop)?);
        Ok(())
    }
}
