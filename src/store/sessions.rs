//! Ended MCP sessions (`mcp_sessions_ended`), and this process's view of them.
//!
//! A 2025-11-25 session id is self-contained and signed (`http::sessions`): any replica verifies
//! it without the store. Only its end (`DELETE /mcp`) is state, and every replica must learn it:
//! the end is a row kept until the id's own expiry, and each process holds the set of ended ids
//! in memory ([`EndedSessions`]) so that checking a session is no round trip.
//!
//! How the set stays complete:
//! - **SQLite**: a marker file beside the database (`<db>-sessions`), rewritten by whichever
//!   process ends a session, after the row is committed. A check reads the marker (one `open`
//!   and one 16-byte read) and reloads the set when it changed: exact, on the next request.
//! - **PostgreSQL**: the row and `NOTIFY flowgate_sessions` commit together; the revocation
//!   listener (`coordination`) also listens on that channel and adds each id to the set. After
//!   (re)connecting it reloads the set from the table; while it is down the set is not trusted
//!   and each check asks the store. A replica refuses an ended id once the notification reaches
//!   it (milliseconds); the replica that ended it refuses it at once.
//!
//! Memory: at most [`MAX_REMEMBERED`] ids are held; beyond that (a flood of ended sessions) the
//! set is not trusted either, and checks ask the store until the expired rows are pruned.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use super::coordination::RevocationMarker;
use super::{Db, Store, StoreError, Timestamp, on_db};

/// The most ended ids one process holds in memory.
pub const MAX_REMEMBERED: usize = 100_000;

/// The channel on which PostgreSQL replicas announce ended sessions (payload: `<id> <expiry
/// in unix seconds>`).
pub(super) const CHANNEL: &str = "flowgate_sessions";

/// This process's set of ended session ids (id → expiry, unix seconds).
#[derive(Debug)]
pub struct EndedSessions {
    ids: Mutex<HashMap<String, i64>>,
    /// Whether `ids` holds every ended session; when not, checks ask the store.
    complete: AtomicBool,
    /// SQLite: the marker file, and what it held when `ids` was loaded.
    marker: Option<(RevocationMarker, Mutex<Option<[u8; 16]>>)>,
}

impl EndedSessions {
    /// For SQLite at `db`: a marker file beside it (created if missing).
    pub(super) fn beside(db: &Path) -> Result<Self, StoreError> {
        let marker = RevocationMarker::beside(db, "-sessions");
        if marker.read().is_none() {
            marker.bump().map_err(|source| StoreError::Marker {
                path: marker.path().display().to_string(),
                source,
            })?;
        }
        Ok(Self {
            ids: Mutex::new(HashMap::new()),
            complete: AtomicBool::new(false),
            marker: Some((marker, Mutex::new(None))),
        })
    }

    /// For PostgreSQL: kept complete by the listener.
    pub(super) fn announced() -> Self {
        Self {
            ids: Mutex::new(HashMap::new()),
            complete: AtomicBool::new(false),
            marker: None,
        }
    }

    fn ids(&self) -> std::sync::MutexGuard<'_, HashMap<String, i64>> {
        self.ids.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds one ended id (one this process ended, or one announced).
    pub(super) fn add(&self, id: &str, expires: i64) {
        let mut ids = self.ids();
        if ids.len() >= MAX_REMEMBERED && !ids.contains_key(id) {
            // Not held: the set is no longer complete.
            self.complete.store(false, Ordering::Release);
            return;
        }
        ids.insert(id.to_string(), expires);
    }

    /// Reads every unexpired ended id from the store. The set is complete afterwards unless
    /// there are more than [`MAX_REMEMBERED`].
    pub(super) async fn load(&self, db: &Db) -> Result<(), StoreError> {
        let now = Timestamp::now();
        let rows: Vec<(String, Timestamp)> = on_db!(db, pool => sqlx::query_as(
            "SELECT id, expires_at FROM mcp_sessions_ended WHERE expires_at > $1 LIMIT $2",
        )
        .bind(now)
        .bind(i64::try_from(MAX_REMEMBERED).unwrap_or(i64::MAX) + 1)
        .fetch_all(pool)
        .await?);
        // Merged, not replaced: an id announced while the query ran is kept.
        let mut ids = self.ids();
        let now = now.datetime().timestamp();
        ids.retain(|_, expires| *expires > now);
        let mut fits = rows.len() <= MAX_REMEMBERED;
        if fits {
            ids.extend(
                rows.into_iter()
                    .map(|(id, at)| (id, at.datetime().timestamp())),
            );
            fits = ids.len() <= MAX_REMEMBERED;
        }
        if !fits {
            ids.clear();
        }
        self.complete.store(fits, Ordering::Release);
        Ok(())
    }

    /// Drops the ids whose expiry has passed (refused for that reason now).
    fn forget_expired(&self) {
        let now = Timestamp::now().datetime().timestamp();
        self.ids().retain(|_, expires| *expires > now);
    }

    /// The listener is down (PostgreSQL): ends announced meanwhile would be missed.
    pub(super) fn distrust(&self) {
        self.complete.store(false, Ordering::Release);
    }
}

impl Store {
    /// Whether the session with this id (the nonce of its signed id) was ended. No round trip
    /// while this process's view is complete (see the module header).
    pub async fn session_ended(&self, id: &str) -> Result<bool, StoreError> {
        let ended = &self.ended;
        if let Some((marker, loaded)) = &ended.marker {
            // Read before loading: an end committed after this read changes the marker again.
            let now = marker.read();
            let stale = now.is_none() || *loaded.lock().unwrap_or_else(|p| p.into_inner()) != now;
            if stale {
                ended.load(self.db()).await?;
                *loaded.lock().unwrap_or_else(|p| p.into_inner()) = now;
            }
        } else {
            self.revocations().listen();
        }
        if ended.complete.load(Ordering::Acquire) {
            return Ok(ended.ids().contains_key(id));
        }
        let found: Option<i32> = on_db!(self.db(), pool => sqlx::query_scalar(
            "SELECT 1 FROM mcp_sessions_ended WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(pool)
        .await?);
        Ok(found.is_some())
    }

    /// Records that a session ended, and tells every process using the store; `false` if it
    /// had already ended.
    pub async fn end_session(&self, id: &str, expires_at: Timestamp) -> Result<bool, StoreError> {
        let expires = expires_at.datetime().timestamp();
        let inserted = match self.db() {
            Db::Sqlite(pool) => {
                let n = sqlx::query(
                    "INSERT INTO mcp_sessions_ended (id, expires_at) VALUES ($1, $2)
                     ON CONFLICT (id) DO NOTHING",
                )
                .bind(id)
                .bind(expires_at)
                .execute(pool)
                .await?
                .rows_affected();
                if let Some((marker, _)) = &self.ended.marker {
                    marker.bump().map_err(|e| StoreError::Marker {
                        path: marker.path().display().to_string(),
                        source: e,
                    })?;
                }
                n == 1
            }
            Db::Postgres(pool) => {
                // The notification is delivered when the insert commits, and only if it inserted.
                let mut tx = pool.begin().await?;
                let n = sqlx::query(
                    "INSERT INTO mcp_sessions_ended (id, expires_at) VALUES ($1, $2)
                     ON CONFLICT (id) DO NOTHING",
                )
                .bind(id)
                .bind(expires_at)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if n == 1 {
                    sqlx::query("SELECT pg_notify($1, $2)")
                        .bind(CHANNEL)
                        .bind(format!("{id} {expires}"))
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                n == 1
            }
        };
        self.ended.add(id, expires);
        Ok(inserted)
    }

    /// Deletes the ends whose ids have expired (they are refused for their expiry now), and
    /// reloads this process's view; returns how many were deleted.
    pub async fn prune_ended_sessions(&self) -> Result<u64, StoreError> {
        let now = Timestamp::now();
        let n = on_db!(self.db(), pool => sqlx::query(
            "DELETE FROM mcp_sessions_ended WHERE expires_at <= $1",
        )
        .bind(now)
        .execute(pool)
        .await?
        .rows_affected());
        match &self.ended.marker {
            Some(_) => self.ended.load(self.db()).await?,
            // PostgreSQL: the listener owns completeness (it reloads after each reconnection);
            // here only the expired ids are dropped.
            None => self.ended.forget_expired(),
        }
        Ok(n)
    }
}
