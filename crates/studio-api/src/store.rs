//! The SQLite database: open, migrate, and hand out the pool.
//!
//! Contract: the file is `<data_dir>/studio-api.sqlite`, opened in WAL mode with foreign keys on and
//! a busy timeout; the versioned migrations in `migrations/` run at every start (already applied
//! ones are skipped). [`open`] reports whether the database holds no studio yet, so seeding happens
//! only on a new database. A data directory it creates is `0700`; the database is created `0600`
//! (tightened if it exists) before SQLite opens it, so its `-wal` and `-shm` get the same mode.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

/// The database file name inside the data directory.
pub const FILE_NAME: &str = "studio-api.sqlite";

/// Why the database could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open database {path}: {source}")]
    Open { path: PathBuf, source: sqlx::Error },
    #[error("cannot migrate database {path}: {source}")]
    Migrate {
        path: PathBuf,
        source: sqlx::migrate::MigrateError,
    },
    #[error("cannot read database {path}: {source}")]
    Query { path: PathBuf, source: sqlx::Error },
}

/// An open, migrated database.
pub struct Store {
    pub pool: SqlitePool,
    /// True when no studio exists yet (a new database).
    pub is_new: bool,
}

/// Open (creating if needed) and migrate the database in `data_dir`.
pub async fn open(data_dir: &Path) -> Result<Store, StoreError> {
    let mut dir = std::fs::DirBuilder::new();
    dir.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut dir, 0o700);
    dir.create(data_dir).map_err(|source| StoreError::DataDir {
        path: data_dir.to_owned(),
        source,
    })?;
    let path = data_dir.join(FILE_NAME);
    for suffix in ["", "-wal", "-shm"] {
        let mut file = path.clone().into_os_string();
        file.push(suffix);
        let file = PathBuf::from(file);
        if suffix.is_empty() || file.exists() {
            private(&file).map_err(|e| StoreError::Open {
                path: file.clone(),
                source: sqlx::Error::Io(e),
            })?;
        }
    }
    let options = SqliteConnectOptions::new()
        .filename(&path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(5));
    let pool = SqlitePoolOptions::new()
        .max_connections(8)
        .connect_with(options)
        .await
        .map_err(|source| StoreError::Open {
            path: path.clone(),
            source,
        })?;
    sqlx::migrate!()
        .run(&pool)
        .await
        .map_err(|source| StoreError::Migrate {
            path: path.clone(),
            source,
        })?;
    let studios: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM studios")
        .fetch_one(&pool)
        .await
        .map_err(|source| StoreError::Query { path, source })?;
    Ok(Store {
        pool,
        is_new: studios == 0,
    })
}

/// Creates `path` readable only by its owner, or makes an existing file so.
fn private(path: &Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
        let file = options.mode(0o600).open(path)?;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    #[cfg(not(unix))]
    options.open(path)?;
    Ok(())
}

/// A new opaque id with a type prefix, e.g. `cls_3f9a…`.
pub fn new_id(prefix: &str) -> String {
    let hex = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}_{}", &hex[..16])
}
