//! The gateway's own state: a SQLite database in the data directory (secret keys, OAuth state,
//! audit log, idempotent answers), opened in WAL mode with versioned migrations from
//! `migrations/`; the revocation marker beside it; and the group-commit [`writer`].
//!
//! Files hold secrets' hashes, OAuth state and the audit log, so they are private: a data
//! directory the store creates is `0700`, and the database (with its `-wal` and `-shm`, which
//! SQLite creates with the database's mode) and the marker are `0600`, set when they are created
//! without touching the process umask. An existing data directory others can read is reported
//! (a warning), not changed: it may be a directory the operator shares on purpose.

pub mod writer;

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use tokio::sync::mpsc;

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
    /// A credential was revoked or rotated in the store, but the marker that tells running
    /// gateways could not be rewritten.
    #[error(
        "the change is saved, but running gateways could not be told at once (cannot write {path}: {source}); they stop accepting the old credential within {secs} s"
    )]
    NotPropagated {
        path: String,
        source: std::io::Error,
        secs: u64,
    },
    #[error("cannot open the gateway store {path}: {source}")]
    Open { path: String, source: sqlx::Error },
    #[error("cannot migrate the gateway store: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("gateway store: {0}")]
    Query(#[from] sqlx::Error),
    /// A write that went through a background writer failed or could not be queued.
    #[error("gateway store: {0}")]
    Writer(String),
}

/// A handle to the gateway's database; cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    pool: SqlitePool,
    marker: RevocationMarker,
    /// The group-commit writer's queue, started by the first write (see [`writer`]).
    writer: Arc<OnceLock<mpsc::Sender<writer::Job>>>,
}

/// A small file next to the database (`<db>-revocations`) that every process rewrites, with new
/// random contents, right after it revokes or rotates a credential. Gateways remember
/// authenticated credentials, and compare the file with what it held when they looked a credential
/// up: any change makes them look it up again. This is what lets `flowgate keys revoke`, run in
/// another process, take effect on the running gateway's very next request.
#[derive(Debug, Clone)]
pub struct RevocationMarker {
    path: PathBuf,
}

/// The marker's contents at one moment; `None` when the file cannot be read (never equal to
/// anything, so nothing remembered is trusted).
pub type Mark = Option<[u8; 16]>;

impl RevocationMarker {
    fn new(db: &Path) -> Self {
        let mut name = db.file_name().unwrap_or_default().to_os_string();
        name.push("-revocations");
        Self {
            path: db.with_file_name(name),
        }
    }

    /// What the file holds now: one open and one 16-byte read, no allocation.
    pub fn read(&self) -> Mark {
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

impl Store {
    /// Opens (creating if needed) the database at `path` and applies pending migrations.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            private_dir(dir).map_err(|source| StoreError::DataDir {
                path: dir.display().to_string(),
                source,
            })?;
        }
        // Created (or tightened) before SQLite opens it: SQLite gives `-wal` and `-shm` the
        // database's mode.
        for (suffix, must_exist) in [("", true), ("-wal", false), ("-shm", false)] {
            let mut file = path.as_os_str().to_owned();
            file.push(suffix);
            let file = PathBuf::from(file);
            if must_exist || file.exists() {
                private_file(&file, false).map_err(|e| StoreError::Open {
                    path: file.display().to_string(),
                    source: sqlx::Error::Io(e),
                })?;
            }
        }
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))
            .map_err(|source| StoreError::Open {
                path: path.display().to_string(),
                source,
            })?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // WAL + NORMAL: a commit survives the process being killed; only an OS crash can
            // lose the last transactions.
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await
            .map_err(|source| StoreError::Open {
                path: path.display().to_string(),
                source,
            })?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        let marker = RevocationMarker::new(path);
        if marker.read().is_none() {
            marker.bump().map_err(|source| StoreError::Marker {
                path: marker.path().display().to_string(),
                source,
            })?;
        }
        Ok(Self {
            pool,
            marker,
            writer: Arc::new(OnceLock::new()),
        })
    }

    /// The revocation marker shared by every process using this database.
    pub fn revocations(&self) -> &RevocationMarker {
        &self.marker
    }

    /// Tells every gateway using this database that a credential was revoked or rotated. Call it
    /// after the change is committed.
    pub fn credentials_changed(&self) -> Result<(), StoreError> {
        self.marker
            .bump()
            .map_err(|source| StoreError::NotPropagated {
                path: self.marker.path().display().to_string(),
                source,
                secs: crate::auth::REMEMBER.as_secs(),
            })
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Commits every write queued so far, then closes the database (at shutdown).
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
        self.pool.close().await;
        Ok(())
    }

    /// Whether the store answers (for `/readyz`).
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}

// === private files ===

/// Creates `dir` (and missing parents) readable only by its owner; warns when an existing one is
/// open to others.
fn private_dir(dir: &Path) -> std::io::Result<()> {
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
fn private_file(path: &Path, truncate: bool) -> std::io::Result<std::fs::File> {
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
