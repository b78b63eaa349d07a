//! flowgate's embedded reference Management API for studios.
//!
//! A real REST/JSON service (SQLite storage, tenancy on every row, business rules, idempotent
//! writes) that the gateway starts in-process on a loopback port and reaches **only over HTTP**, as
//! it would reach a production Management API. The contract is `README.md` in this crate; the formal
//! description is [`openapi()`], served at `/v1/openapi.json`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), flowgate_studio_api::Error> {
//! let api = flowgate_studio_api::StudioApi::start(flowgate_studio_api::Config::default()).await?;
//! println!("{} (token {})", api.base_url(), api.service_token());
//! api.shutdown().await;
//! # Ok(()) }
//! ```

mod app;
mod error;
mod idempotency;
mod input;
mod openapi;
mod pagination;
mod resources;
mod seed;
mod store;
mod tenancy;
mod write;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use axum::serve::ListenerExt as _;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use openapi::openapi;
pub use seed::{DEMO_FREE_STUDIO, DEMO_PRO_STUDIO, DEMO_USERS, DemoUser};
pub use store::FILE_NAME as DATABASE_FILE;

/// How to start the API.
#[derive(Clone)]
pub struct Config {
    /// Directory holding `studio-api.sqlite` (created if missing).
    pub data_dir: PathBuf,
    /// Where to listen; must be a loopback address. Port 0 picks a free port.
    pub listen: SocketAddr,
    /// The service credential callers must send as `Authorization: Bearer …`.
    /// `None` generates 32 random bytes, base64url-encoded.
    pub service_token: Option<String>,
    /// Create the two demo studios when the database is new.
    pub seed: bool,
}

/// The token is never printed.
impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("data_dir", &self.data_dir)
            .field("listen", &self.listen)
            .field(
                "service_token",
                &self.service_token.as_ref().map(|_| "[redacted]"),
            )
            .field("seed", &self.seed)
            .finish()
    }
}

impl Default for Config {
    fn default() -> Config {
        Config {
            data_dir: PathBuf::from("./.flowgate"),
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            service_token: None,
            seed: true,
        }
    }
}

/// Why the API could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("studio-api must listen on a loopback address, not {0}")]
    NotLoopback(SocketAddr),
    #[error("the service token must not be empty")]
    EmptyToken,
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error("cannot seed the demo studios: {0}")]
    Seed(#[source] sqlx::Error),
}

/// A running API server.
pub struct StudioApi {
    addr: SocketAddr,
    token: String,
    app: Arc<app::App>,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl StudioApi {
    /// Open and migrate the database, seed it if new (and `config.seed`), bind, and serve in a
    /// tokio task.
    pub async fn start(config: Config) -> Result<StudioApi, Error> {
        if !config.listen.ip().is_loopback() {
            return Err(Error::NotLoopback(config.listen));
        }
        let token = match config.service_token {
            Some(t) if t.trim().is_empty() => return Err(Error::EmptyToken),
            Some(t) => t,
            None => {
                let mut bytes = [0u8; 32];
                rand::rng().fill_bytes(&mut bytes);
                URL_SAFE_NO_PAD.encode(bytes)
            }
        };
        let store = store::open(&config.data_dir).await?;
        if store.is_new && config.seed {
            seed::seed(&store.pool, chrono::Utc::now())
                .await
                .map_err(Error::Seed)?;
        }
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| Error::Bind {
                addr: config.listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| Error::Bind {
            addr: config.listen,
            source,
        })?;
        let app = Arc::new(app::App::new(store.pool, &token));
        let router = app::router(app::AppState(app.clone()));
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let served = axum::serve(
                // Replies are often written in two parts (an SSE priming event, then the result):
                // without TCP_NODELAY the second waits for the client's delayed ACK, 40 ms.
                listener.tap_io(|tcp| {
                    let _ = tcp.set_nodelay(true);
                }),
                router,
            )
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await;
            if let Err(e) = served {
                tracing::error!(error = %e, "studio-api server stopped");
            }
        });
        tracing::info!(%addr, "studio-api listening");
        Ok(StudioApi {
            addr,
            token,
            app,
            stop,
            task,
        })
    }

    /// The base URL, e.g. `http://127.0.0.1:41234/v1`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The service credential callers must send as `Authorization: Bearer …`.
    pub fn service_token(&self) -> &str {
        &self.token
    }

    /// Authenticated write requests received so far (POST, PUT, PATCH, DELETE), idempotent replays
    /// included.
    pub fn write_count(&self) -> u64 {
        self.app.write_count()
    }

    /// Writes answered from the idempotency store rather than executed again.
    pub fn replay_count(&self) -> u64 {
        self.app.replay_count()
    }

    /// Stop accepting requests, finish the ones in flight, and close the database.
    pub async fn shutdown(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
        self.app.db.close().await;
    }
}
