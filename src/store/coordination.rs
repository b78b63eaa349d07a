//! How every process using one store learns, at once, that a credential was revoked or rotated.
//!
//! Gateways remember credentials that authenticated (`identity::remembered::Remembered`), and trust a
//! remembered one only while the store's revocation [`Mark`] is what it was when they looked the
//! credential up. Revoking or rotating changes the mark ([`Revocations::signal`]) right after the
//! change commits, so the next request anywhere looks the credential up again.
//!
//! - **SQLite** ([`RevocationMarker`]): a 16-byte file beside the database that every process
//!   rewrites with new random contents. Reading it is one `open` and one `read`.
//! - **PostgreSQL** ([`Epoch`]): a counter row (`flowgate_epoch`), bumped and announced with
//!   `NOTIFY flowgate_revocations` in one statement. Each replica `LISTEN`s on a connection of its
//!   own and keeps the highest epoch it has seen. A signal cannot be missed silently: while that
//!   connection is down there is no mark (nothing remembered is trusted); after it reconnects the
//!   epoch is read again; and every credential lookup reads the epoch too
//!   ([`Revocations::observe`]), so a replica behind the others catches up on its next lookup.
//!   The bounded remember time (`identity::remembered::REMEMBER`) is the last backstop.
//!
//! The same listener carries the ends of MCP sessions (`NOTIFY flowgate_sessions`, see
//! [`super::sessions`]): after each (re)connection it reloads the ended sessions as it reads the
//! epoch again, and while it is down their set is not trusted.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgListener;

use super::sessions::EndedSessions;
use super::{Db, StoreError, private_file};

/// The revocation state at one moment; `None` when it cannot be known (never equal to anything,
/// so nothing remembered is trusted).
pub type Mark = Option<u128>;

/// The channel PostgreSQL replicas listen on.
const CHANNEL: &str = "flowgate_revocations";

/// How processes sharing a store tell each other of revocations.
#[derive(Debug, Clone)]
pub enum Revocations {
    File(RevocationMarker),
    Epoch(Arc<Epoch>),
}

impl Revocations {
    /// The mark now. Cheap: on the hot path of every request.
    pub fn mark(&self) -> Mark {
        match self {
            Revocations::File(marker) => marker.read().map(u128::from_le_bytes),
            Revocations::Epoch(epoch) => epoch.mark(),
        }
    }

    /// A credential lookup read this epoch from the store (PostgreSQL): a replica that missed a
    /// signal catches up here.
    pub fn observe(&self, epoch: i64) {
        if let Revocations::Epoch(e) = self {
            e.seen(epoch);
        }
    }

    /// Changes the mark everywhere. Call it after the revocation is committed.
    pub(super) async fn signal(&self, db: &Db) -> Result<(), StoreError> {
        let secs = crate::identity::remembered::REMEMBER.as_secs();
        match (self, db) {
            (Revocations::File(marker), _) => {
                marker.bump().map_err(|e| StoreError::NotPropagated {
                    why: format!("cannot write {}: {e}", marker.path().display()),
                    secs,
                })
            }
            (Revocations::Epoch(epoch), Db::Postgres(pool)) => {
                let n: i64 = sqlx::query_scalar(
                    "WITH bumped AS (UPDATE flowgate_epoch SET n = n + 1 RETURNING n)
                     SELECT n FROM bumped, pg_notify('flowgate_revocations', (SELECT n FROM bumped)::text)",
                )
                .fetch_one(pool)
                .await
                .map_err(|e| StoreError::NotPropagated {
                    why: format!("cannot announce it: {e}"),
                    secs,
                })?;
                epoch.seen(n);
                acknowledged(pool, n).await;
                Ok(())
            }
            (Revocations::Epoch(_), Db::Sqlite(_)) => Ok(()),
        }
    }

    pub(super) async fn stop(&self) {
        if let Revocations::Epoch(e) = self {
            let listened = e.task.lock().unwrap_or_else(|p| p.into_inner()).is_some();
            e.stop();
            if listened {
                deregister(&e.pool, &e.replica_id).await;
            }
        }
    }

    /// Starts the PostgreSQL listener if it is not running (it starts with the first mark).
    pub(super) fn listen(&self) {
        if let Revocations::Epoch(e) = self
            && !e.listening.load(Ordering::Acquire)
        {
            e.start();
        }
    }
}

// === SQLite: a marker file ===

/// A small file next to the database that every process rewrites, with new random contents,
/// right after it changes what the others must know: `<db>-revocations` after it revokes or
/// rotates a credential, `<db>-sessions` after it ends an MCP session.
#[derive(Debug, Clone)]
pub struct RevocationMarker {
    path: PathBuf,
}

impl RevocationMarker {
    pub(super) fn new(db: &Path) -> Self {
        Self::beside(db, "-revocations")
    }

    /// The marker `<db><suffix>`.
    pub(super) fn beside(db: &Path, suffix: &str) -> Self {
        let mut name = db.file_name().unwrap_or_default().to_os_string();
        name.push(suffix);
        Self {
            path: db.with_file_name(name),
        }
    }

    /// What the file holds now: one open and one 16-byte read, no allocation.
    pub fn read(&self) -> Option<[u8; 16]> {
        let mut mark = [0u8; 16];
        let mut file = std::fs::File::open(&self.path).ok()?;
        file.read_exact(&mut mark).ok()?;
        Some(mark)
    }

    /// Gives the file new contents (written aside, then renamed over it, so a reader sees the
    /// old or the new marker, never a partial one).
    pub fn bump(&self) -> std::io::Result<()> {
        use std::io::Write as _;
        let mark: [u8; 16] = rand::random();
        let mut tmp = self.path.clone().into_os_string();
        tmp.push(format!(".{}.tmp", std::process::id()));
        private_file(Path::new(&tmp), true)?.write_all(&mark)?;
        std::fs::rename(&tmp, &self.path)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

// === PostgreSQL: an epoch, LISTEN/NOTIFY ===

/// This replica's view of the store's revocation epoch.
#[derive(Debug)]
pub struct Epoch {
    pool: PgPool,
    /// The highest epoch seen.
    seen: AtomicU64,
    /// This replica's row in `flowgate_replicas`, where it acknowledges epochs.
    replica_id: String,
    /// Whether the listening connection is up (and the epoch was read since it came up).
    listening: AtomicBool,
    /// The listener task, started by the first [`Epoch::mark`].
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
    stopped: AtomicBool,
    /// The ended MCP sessions, kept by the same listener.
    ended: Arc<EndedSessions>,
}

impl Epoch {
    pub(super) fn new(pool: PgPool, ended: Arc<EndedSessions>) -> Self {
        Self {
            pool,
            ended,
            seen: AtomicU64::new(0),
            replica_id: format!("{:032x}", rand::random::<u128>()),
            listening: AtomicBool::new(false),
            task: Mutex::new(None),
            stopped: AtomicBool::new(false),
        }
    }

    fn mark(self: &Arc<Self>) -> Mark {
        if !self.listening.load(Ordering::Acquire) {
            self.start();
            return None;
        }
        Some(u128::from(self.seen.load(Ordering::Acquire)))
    }

    fn seen(&self, epoch: i64) {
        self.seen
            .fetch_max(u64::try_from(epoch).unwrap_or(0), Ordering::AcqRel);
    }

    /// Starts the listener once (inside the runtime; a process that never asks for a mark, such
    /// as the CLI, never listens).
    fn start(self: &Arc<Self>) {
        if self.stopped.load(Ordering::Acquire) || tokio::runtime::Handle::try_current().is_err() {
            return;
        }
        let mut task = self.task.lock().unwrap_or_else(|p| p.into_inner());
        if task.is_none() {
            *task = Some(tokio::spawn(listen(Arc::downgrade(self))));
        }
    }

    fn stop(&self) {
        self.stopped.store(true, Ordering::Release);
        self.listening.store(false, Ordering::Release);
        self.ended.distrust();
        if let Some(task) = self.task.lock().unwrap_or_else(|p| p.into_inner()).take() {
            task.abort();
        }
    }
}

/// Listens for revocations until the store is closed; reconnects (with back-off) when the
/// connection drops, and reads the epoch again each time it is back.
async fn listen(epoch: std::sync::Weak<Epoch>) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let Some(e) = epoch.upgrade() else { return };
        let pool = e.pool.clone();
        drop(e);
        let connected = async {
            let mut listener = PgListener::connect_with(&pool).await?;
            listener
                .listen_all([CHANNEL, super::sessions::CHANNEL])
                .await?;
            // Listening before reading: a bump (or an ended session) after this read is
            // announced to us.
            let n: i64 = sqlx::query_scalar("SELECT n FROM flowgate_epoch")
                .fetch_one(&pool)
                .await?;
            let Some(e) = epoch.upgrade() else {
                return Ok(None);
            };
            e.ended
                .load(&Db::Postgres(pool.clone()))
                .await
                .map_err(|err| match err {
                    StoreError::Query(q) => q,
                    other => sqlx::Error::Protocol(other.to_string()),
                })?;
            Ok::<_, sqlx::Error>(Some((listener, n)))
        }
        .await;
        let mut listener = match connected {
            Ok(None) => return,
            Ok(Some((listener, n))) => {
                let Some(e) = epoch.upgrade() else { return };
                e.seen(n);
                acknowledge(&pool, &e.replica_id, n).await;
                e.listening.store(true, Ordering::Release);
                backoff = Duration::from_millis(100);
                listener
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot listen for revocations; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        let mut heartbeat = tokio::time::interval(HEARTBEAT);
        loop {
            let received = tokio::select! {
                r = listener.try_recv() => r,
                _ = heartbeat.tick() => {
                    let Some(e) = epoch.upgrade() else { return };
                    let n = i64::try_from(e.seen.load(Ordering::Acquire)).unwrap_or(0);
                    acknowledge(&pool, &e.replica_id, n).await;
                    continue;
                }
            };
            match received {
                Ok(Some(note)) if note.channel() == super::sessions::CHANNEL => {
                    let Some(e) = epoch.upgrade() else { return };
                    match note
                        .payload()
                        .split_once(' ')
                        .and_then(|(id, exp)| Some((id, exp.parse::<i64>().ok()?)))
                    {
                        Some((id, expires)) => e.ended.add(id, expires),
                        // Not ours to parse: ask the store until the set is read again.
                        None => {
                            e.ended.distrust();
                            e.listening.store(false, Ordering::Release);
                            break;
                        }
                    }
                }
                Ok(Some(note)) => {
                    let Some(e) = epoch.upgrade() else { return };
                    match note.payload().parse::<i64>() {
                        Ok(n) => {
                            e.seen(n);
                            acknowledge(&pool, &e.replica_id, n).await;
                        }
                        // Not ours to parse: distrust everything until the epoch is read again.
                        Err(_) => {
                            e.ended.distrust();
                            e.listening.store(false, Ordering::Release);
                            break;
                        }
                    }
                }
                // The connection dropped: whatever was announced meanwhile is lost, so nothing
                // remembered is trusted until the epoch has been read again.
                Ok(None) | Err(_) => {
                    if let Some(e) = epoch.upgrade() {
                        e.listening.store(false, Ordering::Release);
                        e.ended.distrust();
                    }
                    tracing::warn!("lost the revocation listener's connection; reconnecting");
                    break;
                }
            }
        }
    }
}

/// How often a listening replica says it is alive.
const HEARTBEAT: Duration = Duration::from_secs(5);
/// A replica silent for longer is not waited for (it was killed, or lost its connection: then it
/// trusts nothing it remembers anyway).
const ALIVE_WITHIN_SECS: i64 = 15;
/// How long a revocation waits for every live replica to acknowledge it.
const ACK_WAIT: Duration = Duration::from_secs(2);

/// Records that this replica has received every epoch up to `n` (and is alive).
async fn acknowledge(pool: &PgPool, replica_id: &str, n: i64) {
    let done = sqlx::query(
        "INSERT INTO flowgate_replicas (replica_id, epoch_seen, heartbeat) VALUES ($1, $2, now())
         ON CONFLICT (replica_id) DO UPDATE
           SET epoch_seen = GREATEST(flowgate_replicas.epoch_seen, $2), heartbeat = now()",
    )
    .bind(replica_id)
    .bind(n)
    .execute(pool)
    .await;
    if let Err(e) = done {
        tracing::warn!(error = %e, "cannot acknowledge a revocation epoch");
    }
}

/// Waits until every live replica has acknowledged epoch `n`, so that when a revocation answers,
/// no replica still trusts the credential. Bounded by [`ACK_WAIT`]; past it the replicas that
/// lag still learn of it (their listener, their next lookup, at worst `identity::remembered::REMEMBER`).
async fn acknowledged(pool: &PgPool, n: i64) {
    let deadline = tokio::time::Instant::now() + ACK_WAIT;
    loop {
        let behind: Result<i64, _> = sqlx::query_scalar(
            "SELECT COUNT(*) FROM flowgate_replicas
             WHERE epoch_seen < $1 AND heartbeat > now() - make_interval(secs => $2)",
        )
        .bind(n)
        .bind(ALIVE_WITHIN_SECS as f64)
        .fetch_one(pool)
        .await;
        match behind {
            Ok(0) => return,
            Ok(lagging) if tokio::time::Instant::now() >= deadline => {
                tracing::warn!(
                    lagging,
                    epoch = n,
                    "replicas did not acknowledge a revocation within 2 s"
                );
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot check that replicas received a revocation");
                return;
            }
            Ok(_) => tokio::time::sleep(Duration::from_millis(2)).await,
        }
    }
}

/// Removes this replica from `flowgate_replicas` (at shutdown: revocations stop waiting for it).
async fn deregister(pool: &PgPool, replica_id: &str) {
    let _ = sqlx::query("DELETE FROM flowgate_replicas WHERE replica_id = $1")
        .bind(replica_id)
        .execute(pool)
        .await;
}

// === Shared secrets ===

impl super::Store {
    /// The secret called `name` that every process using this store shares (a signing key),
    /// created on first use: 32 random bytes, base64url. Replicas starting together agree, since
    /// only the first insert wins and everyone reads what it wrote. Rotating it is deleting the
    /// row (`docs/DEPLOYMENT.md`).
    pub async fn shared_secret(&self, name: &str) -> Result<String, StoreError> {
        use base64::Engine as _;
        let fresh =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
        let now = super::Timestamp::now();
        Ok(super::on_db!(self.db(), pool => {
            sqlx::query(
                "INSERT INTO flowgate_secrets (name, value, created_at) VALUES ($1, $2, $3)
                 ON CONFLICT (name) DO NOTHING",
            )
            .bind(name)
            .bind(&fresh)
            .bind(now)
            .execute(pool)
            .await?;
            sqlx::query_scalar("SELECT value FROM flowgate_secrets WHERE name = $1")
                .bind(name)
                .fetch_one(pool)
                .await?
        }))
    }
}
