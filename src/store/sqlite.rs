//! The SQLite backend: one file in the data directory, WAL mode, migrations from
//! `migrations/sqlite/`, and marker files beside it for revocations and ended MCP sessions (see
//! [`super::coordination`]).

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use super::coordination::{RevocationMarker, Revocations};
use super::sessions::EndedSessions;
use super::{Db, StoreError, private_dir, private_file};

pub(super) async fn open(path: &Path) -> Result<(Db, Revocations, Arc<EndedSessions>), StoreError> {
    let open_error = |location: &Path, source| StoreError::Open {
        location: location.display().to_string(),
        source,
    };
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
            private_file(&file, false).map_err(|e| open_error(&file, sqlx::Error::Io(e)))?;
        }
    }
    let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))
        .map_err(|e| open_error(path, e))?
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
        .map_err(|e| open_error(path, e))?;
    sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
    let marker = RevocationMarker::new(path);
    if marker.read().is_none() {
        marker.bump().map_err(|source| StoreError::Marker {
            path: marker.path().display().to_string(),
            source,
        })?;
    }
    let ended = Arc::new(EndedSessions::beside(path)?);
    Ok((Db::Sqlite(pool), Revocations::File(marker), ended))
}
