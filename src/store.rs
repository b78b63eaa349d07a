//! The gateway's own state, behind one boundary: no SQL outside `src/store/`.
//!
//! Two backends, chosen by `database_url`:
//! - **SQLite** (the default): `gateway.sqlite` in the data directory, WAL mode. One machine;
//!   several processes (the CLI beside `serve`) share it.
//! - **PostgreSQL** (`postgres://…`): shared by every replica of the gateway.
//!
//! Each operation is a method of [`Store`] in the module of what it concerns ([`keys`],
//! [`oauth`], [`flows`], [`audit`], [`idempotency`], [`coordination`], [`sessions`]). Its SQL
//! is written once, in the dialect both backends speak (`$n` parameters, `ON CONFLICT`,
//! `RETURNING`), and runs on whichever pool the store opened ([`on_db!`]); where the backends
//! differ (time storage, migrations, how other processes are told of a revocation) the
//! backend's module says how.
//! Times are [`Timestamp`]s. Writes on the call path go through the group-commit [`writer`].
//!
//! Files hold secrets' hashes, OAuth state and the audit log, so they are private: a data
//! directory the store creates is `0700`, and the database (with its `-wal` and `-shm`, which
//! SQLite creates with the database's mode) and the revocation marker are `0600`, set when they
//! are created without touching the process umask. An existing data directory others can read
//! is reported (a warning), not changed: it may be a directory the operator shares on purpose.

pub mod audit;
pub mod coordination;
pub mod flows;
pub mod idempotency;
pub mod keys;
pub mod oauth;
mod postgres;
pub mod ratelimit;
pub mod sessions;
pub mod settings;
mod sqlite;
pub mod time;
pub mod writer;

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use sqlx::{PgPool, SqlitePool};
use tokio::sync::mpsc;

pub use coordination::{Mark, Revocations};
pub use time::Timestamp;

/// Why the store could not be opened or used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot write the revocation marker {path}: {source}")]
    Marker {
        path: String,
        source: std::io::Error,
    },
    /// A credential was revoked or rotated in the store, but running gateways could not be told.
    #[error(
        "the change is saved, but running gateways could not be told at once ({why}); they stop accepting the old credential within {secs} s"
    )]
    NotPropagated { why: String, secs: u64 },
    #[error("cannot open the gateway store {location}: {source}")]
    Open {
        location: String,
        source: sqlx::Error,
    },
    #[error("database_url {0:?} is not a postgres:// URL")]
    BadUrl(String),
    #[error("cannot migrate the gateway store: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("gateway store: {0}")]
    Query(#[from] sqlx::Error),
    /// A write that went through a background writer failed or could not be queued.
    #[error("gateway store: {0}")]
    Writer(String),
}

/// Where the store lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A SQLite file (created with its directory if missing).
    Sqlite(PathBuf),
    /// A PostgreSQL connection URL.
    Postgres(String),
}

impl Location {
    /// `database_url` if set (it must be `postgres://` or `postgresql://`), else SQLite at `file`.
    pub fn new(database_url: Option<&str>, file: PathBuf) -> Result<Self, StoreError> {
        match database_url.map(str::trim).filter(|u| !u.is_empty()) {
            None => Ok(Location::Sqlite(file)),
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                Ok(Location::Postgres(url.to_string()))
            }
            Some(url) => Err(StoreError::BadUrl(redact_url(url))),
        }
    }

    /// For messages: the file, or the URL without its password.
    pub fn describe(&self) -> String {
        match self {
            Location::Sqlite(path) => path.display().to_string(),
            Location::Postgres(url) => redact_url(url),
        }
    }
}

/// A URL with any password replaced, for logs and errors.
pub fn redact_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}

/// Which studios an operation may touch. Every operation on a studio's data takes one: a page
/// a studio user signed in to passes [`Within::Studio`], so it cannot reach another studio's rows
/// even with another studio's id in hand; only the operator's CLI passes [`Within::AllStudios`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Within<'a> {
    Studio(&'a str),
    AllStudios,
}

impl<'a> Within<'a> {
    /// As a bind value: `NULL` matches every studio (`$n IS NULL OR studio = $n`).
    pub(crate) fn studio(self) -> Option<&'a str> {
        match self {
            Within::Studio(s) => Some(s),
            Within::AllStudios => None,
        }
    }
}

/// The connection pool of the backend in use.
#[derive(Debug, Clone)]
pub(crate) enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs `$body` with `$pool` bound to the backend's pool: the body is compiled once per backend,
/// so one SQL text (in the shared dialect) serves both.
macro_rules! on_db {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            $crate::store::Db::Sqlite($pool) => $body,
            $crate::store::Db::Postgres($pool) => $body,
        }
    };
}
pub(crate) use on_db;

/// A handle to the gateway's store; cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    db: Db,
    location: Location,
    revocations: Revocations,
    /// Ended MCP sessions, as this process knows them (see [`sessions`]).
    ended: Arc<sessions::EndedSessions>,
    /// The group-commit writer's queue, started by the first write (see [`writer`]).
    writer: Arc<OnceLock<mpsc::Sender<writer::Job>>>,
}

impl Store {
    /// Opens the store (creating a SQLite file if needed) and applies pending migrations. On
    /// PostgreSQL, replicas starting together migrate once (sqlx holds an advisory lock).
    pub async fn open(location: &Location) -> Result<Self, StoreError> {
        let (db, revocations, ended) = match location {
            Location::Sqlite(path) => sqlite::open(path).await?,
            Location::Postgres(url) => postgres::open(url).await?,
        };
        Ok(Self {
            db,
            location: location.clone(),
            revocations,
            ended,
            writer: Arc::new(OnceLock::new()),
        })
    }

    pub(crate) fn db(&self) -> &Db {
        &self.db
    }

    pub fn location(&self) -> &Location {
        &self.location
    }

    /// `sqlite` or `postgres`, for logs and metrics.
    pub fn backend(&self) -> &'static str {
        match self.db {
            Db::Sqlite(_) => "sqlite",
            Db::Postgres(_) => "postgres",
        }
    }

    /// How processes using this store learn that a credential was revoked.
    pub fn revocations(&self) -> &Revocations {
        &self.revocations
    }

    /// Tells every gateway using this store that a credential was revoked or rotated. Call it
    /// after the change is committed.
    pub async fn credentials_changed(&self) -> Result<(), StoreError> {
        self.revocations.signal(&self.db).await
    }

    /// Commits every write queued so far, then closes the store (at shutdown).
    pub async fn close(&self) -> Result<(), StoreError> {
        if self.writer.get().is_some() {
            // The writer applies writes in order: once this one is committed, so is every
            // write queued before it.
            self.write(writer::Write::Execute {
                sql: "SELECT 1",
                binds: Vec::new(),
            })
            .await?;
        }
        self.revocations.stop().await;
        on_db!(&self.db, pool => pool.close().await);
        Ok(())
    }

    /// Whether the store answers (for `/readyz`).
    pub async fn ping(&self) -> Result<(), StoreError> {
        on_db!(&self.db, pool => sqlx::query("SELECT 1").execute(pool).await.map(drop))?;
        Ok(())
    }
}

// === private files ===

/// Creates `dir` (and missing parents) readable only by its owner; warns when an existing one is
/// open to others.
pub(crate) fn private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
        let existed = dir.is_dir();
        builder.mode(0o700).create(dir)?;
        let mode = std::fs::metadata(dir)?.permissions().mode();
        if existed && mode & 0o077 != 0 {
            tracing::warn!(
                dir = %dir.display(),
                mode = format!("{:o}", mode & 0o777),
                "the data directory can be read by other users; its files are private, but consider chmod 700"
            );
        }
    }
    #[cfg(not(unix))]
    builder.create(dir)?;
    Ok(())
}

/// Opens `path` for writing, creating it `0600` if it is missing and tightening it to `0600` if
/// it exists; `truncate` empties it.
pub(crate) fn private_file(path: &Path, truncate: bool) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(truncate);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
        let file = options.mode(0o600).open(path)?;
        if file.metadata()?.permissions().mode() & 0o077 != 0 {
            file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        }
        Ok(file)
    }
    #[cfg(not(unix))]
    options.open(path)
}
