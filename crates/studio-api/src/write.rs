//! Write transactions: one at a time in this process, each `BEGIN IMMEDIATE`, and for a request
//! with an `Idempotency-Key` the very transaction that claimed the key.
//!
//! Contract: a handler opens its write transaction with [`begin`] and finishes it with
//! [`Tx::commit`]; dropping it rolls its writes back. Writers take turns on an in-process lock
//! before they take a connection, so waiting writers hold no pool connection and never fail on
//! SQLite's busy timeout while one of them works. When the idempotency layer has claimed a key,
//! it has already opened the transaction (claim, then a savepoint): [`begin`] hands the handler
//! that transaction (found through a task-local set around the handler), and its `commit` only
//! marks the savepoint as kept. The layer then stores the answer and commits once, so the key, the
//! write and the answer become durable together or not at all.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use sqlx::{Sqlite, SqliteConnection, SqlitePool, Transaction};
use tokio::sync::{Mutex, OwnedMutexGuard};

use crate::error::{ApiError, ApiResult};

/// The process's write turn: held from before `BEGIN IMMEDIATE` until the transaction ends.
pub type Turn = Arc<Mutex<()>>;

/// An open `BEGIN IMMEDIATE` transaction holding the write turn.
pub struct Writing {
    // Dropped first: the rollback is queued before the turn goes to the next writer.
    tx: Transaction<'static, Sqlite>,
    _turn: OwnedMutexGuard<()>,
}

impl Writing {
    /// Waits for the turn, then opens the transaction.
    pub async fn begin(db: &SqlitePool, turn: &Turn) -> Result<Writing, sqlx::Error> {
        let turn = turn.clone().lock_owned().await;
        let tx = db.begin_with("BEGIN IMMEDIATE").await?;
        Ok(Writing { tx, _turn: turn })
    }

    pub fn conn(&mut self) -> &mut SqliteConnection {
        &mut self.tx
    }

    pub async fn commit(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await
    }
}

/// A transaction the idempotency layer opened for one request, lent to its handler.
#[derive(Clone)]
pub struct Claimed {
    pub writing: Arc<Mutex<Writing>>,
    /// Set by the handler's [`Tx::commit`]: keep its writes.
    pub kept: Arc<AtomicBool>,
}

tokio::task_local! {
    /// The claimed transaction of the request being handled, if any.
    pub static CLAIMED: Claimed;
}

/// A handler's write transaction.
pub enum Tx {
    Own(Writing),
    Claimed {
        writing: OwnedMutexGuard<Writing>,
        kept: Arc<AtomicBool>,
    },
}

/// Opens the handler's write transaction: the claimed one when the request carries an
/// idempotency key, a new one otherwise.
pub async fn begin(db: &SqlitePool, turn: &Turn) -> ApiResult<Tx> {
    if let Ok(claimed) = CLAIMED.try_with(Claimed::clone) {
        let writing = claimed.writing.try_lock_owned().map_err(|_| {
            ApiError::Internal("a handler opened a second write transaction".into())
        })?;
        return Ok(Tx::Claimed {
            writing,
            kept: claimed.kept,
        });
    }
    Ok(Tx::Own(Writing::begin(db, turn).await?))
}

impl Tx {
    /// Keeps the writes: commits an own transaction; marks a claimed one's writes as kept (the
    /// idempotency layer commits them with the stored answer).
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        match self {
            Tx::Own(w) => w.commit().await,
            Tx::Claimed { kept, .. } => {
                kept.store(true, Ordering::Release);
                Ok(())
            }
        }
    }
}

impl std::ops::Deref for Tx {
    type Target = SqliteConnection;
    fn deref(&self) -> &SqliteConnection {
        match self {
            Tx::Own(w) => &w.tx,
            Tx::Claimed { writing, .. } => &writing.tx,
        }
    }
}

impl std::ops::DerefMut for Tx {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        match self {
            Tx::Own(w) => w.conn(),
            Tx::Claimed { writing, .. } => writing.conn(),
        }
    }
}
