//! The PostgreSQL backend: a pool on `database_url`, migrations from `migrations/postgres/`
//! (sqlx takes an advisory lock, so replicas starting together migrate once), and revocations
//! and ended MCP sessions announced with LISTEN/NOTIFY (see [`super::coordination`]).

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use super::coordination::{Epoch, Revocations};
use super::sessions::EndedSessions;
use super::{Db, StoreError, redact_url};

pub(super) async fn open(url: &str) -> Result<(Db, Revocations, Arc<EndedSessions>), StoreError> {
    let open_error = |source| StoreError::Open {
        location: redact_url(url),
        source,
    };
    let options = PgConnectOptions::from_str(url)
        .map_err(open_error)?
        .application_name("flowgate");
    let pool = PgPoolOptions::new()
        .max_connections(16)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(options)
        .await
        .map_err(open_error)?;
    sqlx::migrate!("./migrations/postgres").run(&pool).await?;
    let ended = Arc::new(EndedSessions::announced());
    let epoch = Arc::new(Epoch::new(pool.clone(), ended.clone()));
    Ok((Db::Postgres(pool), Revocations::Epoch(epoch), ended))
}
