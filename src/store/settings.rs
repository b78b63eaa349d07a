//! Sessions of the studio owner's settings pages (`settings_sessions`): one row per signed-in
//! browser, found by a SHA-256 of the cookie's secret. Reading a session also keeps it alive, in
//! one statement, so the idle and absolute expiry hold on every replica.

use super::{Store, StoreError, Timestamp, on_db};

/// A signed-in browser.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SettingsSessionRow {
    pub token_hash: String,
    pub csrf: String,
    pub studio: String,
    pub studio_name: String,
    pub user_id: String,
    pub user_email: String,
    pub user_name: String,
    pub user_role: Option<String>,
    pub created_at: Timestamp,
    pub last_seen_at: Timestamp,
    pub expires_at: Timestamp,
}

const COLUMNS: &str = "token_hash, csrf, studio, studio_name, user_id, user_email, user_name, \
    user_role, created_at, last_seen_at, expires_at";

/// The most sessions one user keeps: signing in again past this ends their oldest ones.
pub const MAX_SESSIONS_PER_USER: i64 = 20;

impl Store {
    /// Stores a new session, ending the user's oldest ones beyond [`MAX_SESSIONS_PER_USER`].
    pub async fn insert_settings_session(&self, s: &SettingsSessionRow) -> Result<(), StoreError> {
        let sql = format!(
            "INSERT INTO settings_sessions ({COLUMNS})
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        );
        on_db!(self.db(), pool => {
            let mut tx = pool.begin().await?;
            sqlx::query(&sql)
                .bind(&s.token_hash)
                .bind(&s.csrf)
                .bind(&s.studio)
                .bind(&s.studio_name)
                .bind(&s.user_id)
                .bind(&s.user_email)
                .bind(&s.user_name)
                .bind(&s.user_role)
                .bind(s.created_at)
                .bind(s.last_seen_at)
                .bind(s.expires_at)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "DELETE FROM settings_sessions WHERE studio = $1 AND user_id = $2 AND token_hash NOT IN
                   (SELECT token_hash FROM settings_sessions WHERE studio = $1 AND user_id = $2
                    ORDER BY created_at DESC, token_hash LIMIT $3)",
            )
            .bind(&s.studio)
            .bind(&s.user_id)
            .bind(MAX_SESSIONS_PER_USER)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// The session stored under `token_hash` if it is live at `now` (not past its absolute
    /// expiry, and seen after `idle_since`), marked as seen at `now`.
    pub async fn touch_settings_session(
        &self,
        token_hash: &str,
        now: Timestamp,
        idle_since: Timestamp,
    ) -> Result<Option<SettingsSessionRow>, StoreError> {
        let sql = format!(
            "UPDATE settings_sessions SET last_seen_at = $1
             WHERE token_hash = $2 AND expires_at > $1 AND last_seen_at > $3
             RETURNING {COLUMNS}"
        );
        Ok(on_db!(self.db(), pool => sqlx::query_as(&sql)
            .bind(now)
            .bind(token_hash)
            .bind(idle_since)
            .fetch_optional(pool)
            .await?))
    }

    /// Ends a session (sign-out); `false` if there was none.
    pub async fn end_settings_session(&self, token_hash: &str) -> Result<bool, StoreError> {
        let n = on_db!(self.db(), pool => sqlx::query("DELETE FROM settings_sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(pool)
            .await?
            .rows_affected());
        Ok(n == 1)
    }

    /// Deletes the sessions past their absolute expiry at `now` or idle since `idle_since`.
    pub async fn prune_settings_sessions(
        &self,
        now: Timestamp,
        idle_since: Timestamp,
    ) -> Result<u64, StoreError> {
        Ok(on_db!(self.db(), pool => sqlx::query(
            "DELETE FROM settings_sessions WHERE expires_at <= $1 OR last_seen_at <= $2",
        )
        .bind(now)
        .bind(idle_since)
        .execute(pool)
        .await?
        .rows_affected()))
    }
}
