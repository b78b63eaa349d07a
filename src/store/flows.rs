//! OAuth sign-in in progress: flows between `/oauth/authorize` and their code, and failed
//! sign-ins per account. Both live here rather than in a process's memory so that every step of
//! a sign-in, and every attempt at guessing a password, may land on any replica.
//!
//! Contract: a flow is found only by the SHA-256 of its id and only until it expires; the
//! consent step takes it with one `DELETE … RETURNING`, so of two replicas given the same form
//! exactly one gets it. Starting a flow deletes the expired ones and refuses a new one when
//! `cap` flows are live, so the table stays bounded whatever anonymous clients do.

use super::{Store, StoreError, Timestamp, on_db};

/// A sign-in flow in progress, as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct FlowRow {
    /// The CSRF value of the flow's forms (and of its cookie).
    pub csrf: String,
    pub client_id: String,
    pub client_name: String,
    pub redirect_uri: String,
    pub state: Option<String>,
    pub code_challenge: String,
    /// Space-separated, sorted.
    pub requested: String,
    /// The studio user, once signed in (all five or none).
    pub user_id: Option<String>,
    pub user_email: Option<String>,
    pub user_name: Option<String>,
    pub studio_id: Option<String>,
    pub studio_name: Option<String>,
    /// The user's role as the studio platform said it (`None`: it said none).
    pub user_role: Option<String>,
    pub expires_at: Timestamp,
}

/// The studio user who signed in during a flow.
#[derive(Debug, Clone, Copy)]
pub struct FlowUser<'a> {
    pub user_id: &'a str,
    pub email: &'a str,
    pub name: &'a str,
    pub studio_id: &'a str,
    pub studio_name: &'a str,
    pub role: Option<&'a str>,
}

/// An account's failed sign-ins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct FailuresRow {
    pub failures: i64,
    pub last_failed_at: Timestamp,
    /// Whether a refusal was already reported since the last failure.
    pub refusal_seen: bool,
}

/// The columns of a [`FlowRow`], for `concat!` (the SQL stays one static text).
macro_rules! flow_columns {
    () => {
        "csrf, client_id, client_name, redirect_uri, state, code_challenge, requested,
         user_id, user_email, user_name, studio_id, studio_name, user_role, expires_at"
    };
}

impl Store {
    /// Stores a new flow under `flow_hash`, after deleting expired ones; `false` (nothing stored)
    /// when `cap` flows are live already.
    pub async fn insert_flow(
        &self,
        flow_hash: &str,
        flow: &FlowRow,
        now: Timestamp,
        cap: i64,
    ) -> Result<bool, StoreError> {
        self.prune_flows(now).await?;
        let n = on_db!(self.db(), pool => sqlx::query(
            "INSERT INTO oauth_flows (flow_hash, csrf, client_id, client_name, redirect_uri, state,
                 code_challenge, requested, user_id, user_email, user_name, studio_id, studio_name,
                 user_role, expires_at)
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15
             WHERE (SELECT COUNT(*) FROM oauth_flows) < $16",
        )
        .bind(flow_hash)
        .bind(&flow.csrf)
        .bind(&flow.client_id)
        .bind(&flow.client_name)
        .bind(&flow.redirect_uri)
        .bind(&flow.state)
        .bind(&flow.code_challenge)
        .bind(&flow.requested)
        .bind(&flow.user_id)
        .bind(&flow.user_email)
        .bind(&flow.user_name)
        .bind(&flow.studio_id)
        .bind(&flow.studio_name)
        .bind(&flow.user_role)
        .bind(flow.expires_at)
        .bind(cap)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(n == 1)
    }

    /// The flow stored under `flow_hash`, unless it expired by `now`.
    pub async fn flow(
        &self,
        flow_hash: &str,
        now: Timestamp,
    ) -> Result<Option<FlowRow>, StoreError> {
        const SQL: &str = concat!(
            "SELECT ",
            flow_columns!(),
            " FROM oauth_flows WHERE flow_hash = $1 AND expires_at > $2"
        );
        Ok(on_db!(self.db(), pool => sqlx::query_as(SQL)
            .bind(flow_hash)
            .bind(now)
            .fetch_optional(pool)
            .await?))
    }

    /// Records who signed in during a live flow, which then lives until `expires_at`; `false`
    /// when the flow is gone (expired, or consumed meanwhile).
    pub async fn flow_signed_in(
        &self,
        flow_hash: &str,
        user: &FlowUser<'_>,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> Result<bool, StoreError> {
        let n = on_db!(self.db(), pool => sqlx::query(
            "UPDATE oauth_flows SET user_id = $1, user_email = $2, user_name = $3, studio_id = $4,
                 studio_name = $5, user_role = $6, expires_at = $7
             WHERE flow_hash = $8 AND expires_at > $9",
        )
        .bind(user.user_id)
        .bind(user.email)
        .bind(user.name)
        .bind(user.studio_id)
        .bind(user.studio_name)
        .bind(user.role)
        .bind(expires_at)
        .bind(flow_hash)
        .bind(now)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(n == 1)
    }

    /// Deletes a live flow and returns it, atomically: of concurrent callers on any number of
    /// replicas, one gets the flow and the others `None`.
    pub async fn take_flow(
        &self,
        flow_hash: &str,
        now: Timestamp,
    ) -> Result<Option<FlowRow>, StoreError> {
        const SQL: &str = concat!(
            "DELETE FROM oauth_flows WHERE flow_hash = $1 AND expires_at > $2 RETURNING ",
            flow_columns!()
        );
        Ok(on_db!(self.db(), pool => sqlx::query_as(SQL)
            .bind(flow_hash)
            .bind(now)
            .fetch_optional(pool)
            .await?))
    }

    /// Deletes flows that expired by `now`; how many.
    pub async fn prune_flows(&self, now: Timestamp) -> Result<u64, StoreError> {
        Ok(
            on_db!(self.db(), pool => sqlx::query("DELETE FROM oauth_flows WHERE expires_at <= $1")
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected()),
        )
    }

    /// An account's failed sign-ins, unless the last one was before `since` (forgotten).
    pub async fn sign_in_failures(
        &self,
        account_hash: &str,
        since: Timestamp,
    ) -> Result<Option<FailuresRow>, StoreError> {
        Ok(on_db!(self.db(), pool => sqlx::query_as(
            "SELECT failures, last_failed_at, refusal_seen FROM oauth_sign_in_failures
             WHERE account_hash = $1 AND last_failed_at >= $2",
        )
        .bind(account_hash)
        .bind(since)
        .fetch_optional(pool)
        .await?))
    }

    /// Counts a failed sign-in of an account at `at` (starting again from one when the last was
    /// before `forget_before`); returns the count. One statement: failures on several replicas
    /// at once are all counted.
    pub async fn sign_in_failed(
        &self,
        account_hash: &str,
        at: Timestamp,
        forget_before: Timestamp,
    ) -> Result<i64, StoreError> {
        Ok(on_db!(self.db(), pool => sqlx::query_scalar(
            "INSERT INTO oauth_sign_in_failures (account_hash, failures, last_failed_at, refusal_seen)
             VALUES ($1, 1, $2, FALSE)
             ON CONFLICT (account_hash) DO UPDATE SET
                 failures = CASE WHEN oauth_sign_in_failures.last_failed_at < $3 THEN 1
                                 ELSE oauth_sign_in_failures.failures + 1 END,
                 last_failed_at = $2,
                 refusal_seen = FALSE
             RETURNING failures",
        )
        .bind(account_hash)
        .bind(at)
        .bind(forget_before)
        .fetch_one(pool)
        .await?))
    }

    /// Notes that an account's attempt was refused: `true` for the first refusal since its last
    /// failure (on every replica: one conditional UPDATE), so it is reported once.
    pub async fn first_sign_in_refusal(&self, account_hash: &str) -> Result<bool, StoreError> {
        let n = on_db!(self.db(), pool => sqlx::query(
            "UPDATE oauth_sign_in_failures SET refusal_seen = TRUE
             WHERE account_hash = $1 AND refusal_seen = FALSE",
        )
        .bind(account_hash)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(n == 1)
    }

    /// Forgets an account's failed sign-ins (after a success).
    pub async fn clear_sign_in_failures(&self, account_hash: &str) -> Result<(), StoreError> {
        on_db!(self.db(), pool => sqlx::query(
            "DELETE FROM oauth_sign_in_failures WHERE account_hash = $1",
        )
        .bind(account_hash)
        .execute(pool)
        .await
        .map(drop)?);
        Ok(())
    }

    /// Deletes the failures of accounts whose last failure was before `before`; how many.
    pub async fn prune_sign_in_failures(&self, before: Timestamp) -> Result<u64, StoreError> {
        Ok(on_db!(self.db(), pool => sqlx::query(
            "DELETE FROM oauth_sign_in_failures WHERE last_failed_at < $1",
        )
        .bind(before)
        .execute(pool)
        .await?
        .rows_affected()))
    }
}
