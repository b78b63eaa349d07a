//! Shared rate-limit buckets (`rate_limits`): GCRA state per key, taken from in leases.
//!
//! A bucket is its theoretical arrival time (TAT). Taking `n` calls at `now` with emission
//! interval `T` and capacity `C` (the burst, as time) grants
//! `g = min(n, (C − (max(TAT, now) − now)) / T)` (at least 0) and moves TAT to
//! `max(TAT, now) + g·T`, in one atomic upsert: of replicas taking at once, each gets its own
//! share and together they never get more than the bucket holds.

use super::{Db, Store, StoreError};

/// What a take from a bucket got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    /// Calls granted (0 to the number asked).
    pub granted: i64,
    /// The bucket's TAT after the take, in microseconds since the Unix epoch.
    pub tat_us: i64,
}

impl Store {
    /// Takes up to `want` calls from the bucket `key` at `now_us`, with emission interval
    /// `interval_us` and capacity `capacity_us` (both microseconds).
    pub async fn take_rate_budget(
        &self,
        key: &str,
        now_us: i64,
        interval_us: i64,
        capacity_us: i64,
        want: i64,
    ) -> Result<Grant, StoreError> {
        // The same statement in each dialect: SQLite's two-argument max()/min() are PostgreSQL's
        // GREATEST()/LEAST().
        const SQLITE: &str = "INSERT INTO rate_limits AS r (key, tat_us, last_grant)
             VALUES ($1, $2 + min($5, $4 / $3) * $3, min($5, $4 / $3))
             ON CONFLICT (key) DO UPDATE SET
               last_grant = min($5, max(0, ($4 - (max(r.tat_us, $2) - $2)) / $3)),
               tat_us = max(r.tat_us, $2) + min($5, max(0, ($4 - (max(r.tat_us, $2) - $2)) / $3)) * $3
             RETURNING last_grant, tat_us";
        const POSTGRES: &str = "INSERT INTO rate_limits AS r (key, tat_us, last_grant)
             VALUES ($1, $2 + LEAST($5, $4 / $3) * $3, LEAST($5, $4 / $3))
             ON CONFLICT (key) DO UPDATE SET
               last_grant = LEAST($5, GREATEST(0, ($4 - (GREATEST(r.tat_us, $2) - $2)) / $3)),
               tat_us = GREATEST(r.tat_us, $2) + LEAST($5, GREATEST(0, ($4 - (GREATEST(r.tat_us, $2) - $2)) / $3)) * $3
             RETURNING last_grant, tat_us";
        let sql = match self.db() {
            Db::Sqlite(_) => SQLITE,
            Db::Postgres(_) => POSTGRES,
        };
        let (granted, tat_us): (i64, i64) = super::on_db!(self.db(), pool => sqlx::query_as(sql)
            .bind(key)
            .bind(now_us)
            .bind(interval_us.max(1))
            .bind(capacity_us)
            .bind(want.max(0))
            .fetch_one(pool)
            .await?);
        Ok(Grant { granted, tat_us })
    }

    /// Deletes buckets that are full again (their TAT is before `before_us`).
    pub async fn prune_rate_buckets(&self, before_us: i64) -> Result<u64, StoreError> {
        Ok(
            super::on_db!(self.db(), pool => sqlx::query("DELETE FROM rate_limits WHERE tat_us < $1")
            .bind(before_us)
            .execute(pool)
            .await?
            .rows_affected()),
        )
    }
}
