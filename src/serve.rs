//! Start-up wiring for `flowgate serve`: policies, store, upstream (the embedded reference
//! Management API unless one is configured), demo keys on first start, and the HTTP server.
//!
//! [`start`] returns a [`Running`] server so the integration tests run exactly what users run.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use axum::serve::ListenerExt as _;
use flowgate_studio_api::{DEMO_FREE_STUDIO, DEMO_PRO_STUDIO, StudioApi};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::auth::parse_scopes;
use crate::authz::Authz;
use crate::config::Config;
use crate::store::Store;
use crate::upstream::UpstreamClient;

/// The demo keys created on the first start with the embedded Management API.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct DemoKeys {
    /// For "Lotus Flow Yoga", on Pro.
    pub pro: String,
    /// For "Free Spirit Pilates", on Free.
    pub free: String,
}

/// A running gateway.
pub struct Running {
    pub addr: SocketAddr,
    pub app: Arc<App>,
    /// The embedded Management API, when no upstream is configured.
    pub studio_api: Option<StudioApi>,
    /// Present when the embedded API is used.
    pub demo: Option<DemoKeys>,
    /// True when the demo keys were created by this start.
    pub demo_created: bool,
    shutdown: CancellationToken,
    task: JoinHandle<()>,
}

impl Running {
    /// Stops accepting requests, ends sessions, waits for the server and the embedded API.
    pub async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.task.await;
        if let Some(api) = self.studio_api {
            api.shutdown().await;
        }
    }

    /// Resolves when the server task ends (after a shutdown signal).
    pub async fn wait(&mut self) {
        let _ = (&mut self.task).await;
    }

    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    pub fn demo_keys_path(&self) -> PathBuf {
        demo_keys_path(&self.app.config)
    }
}

fn demo_keys_path(config: &Config) -> PathBuf {
    config.data_dir.join("demo-keys.json")
}

/// Loads the policy set the config names (the built-in one by default).
pub fn load_policies(config: &Config) -> anyhow::Result<Authz> {
    match &config.policies_dir {
        Some(dir) => Authz::from_dir(dir)
            .with_context(|| format!("the policies in {} are not valid", dir.display())),
        None => Authz::shipped().context("the built-in policies are not valid"),
    }
}

/// Starts everything and serves in the background.
pub async fn start(config: Config) -> anyhow::Result<Running> {
    config.validate()?;
    let authz = load_policies(&config)?;
    let store = Store::open(&config.store_path()).await?;

    let (studio_api, base, token) = match &config.upstream_url {
        Some(url) => (
            None,
            url.clone(),
            config.upstream_token.clone().unwrap_or_default(),
        ),
        None => {
            let api = StudioApi::start(flowgate_studio_api::Config {
                data_dir: config.data_dir.clone(),
                ..Default::default()
            })
            .await
            .context("cannot start the embedded Management API")?;
            let (base, token) = (api.base_url(), api.service_token().to_string());
            (Some(api), base, token)
        }
    };
    let upstream = UpstreamClient::new(
        &base,
        &token,
        config.upstream_connect_timeout(),
        config.upstream_timeout(),
    )
    .map_err(anyhow::Error::msg)?;

    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    let base_url = config
        .public_url
        .clone()
        .map(|u| u.trim_end_matches('/').to_string())
        .unwrap_or_else(|| format!("http://{addr}"));
    let embedded = studio_api.is_some();
    let app = App::new(config, authz, store, upstream, base_url).map_err(anyhow::Error::msg)?;

    let (demo, demo_created) = if embedded {
        let (keys, created) = demo_keys(&app).await?;
        (Some(keys), created)
    } else {
        (None, false)
    };

    let shutdown = CancellationToken::new();
    tokio::spawn(housekeeping(app.clone(), shutdown.clone()));
    let router = crate::http::router(app.clone(), &shutdown);
    let stop = shutdown.clone();
    let task = tokio::spawn(async move {
        let served = axum::serve(
            // Replies are often written in two parts (an SSE priming event, then the result):
            // without TCP_NODELAY the second waits for the client's delayed ACK, 40 ms.
            listener.tap_io(|tcp| {
                let _ = tcp.set_nodelay(true);
            }),
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "the gateway stopped");
        }
    });
    Ok(Running {
        addr,
        app,
        studio_api,
        demo,
        demo_created,
        shutdown,
        task,
    })
}

/// Hourly (and at start): prune old audit records and idempotent answers, forget rate-limit
/// state of idle principals, and remove OAuth registrations that never led to a grant (24 h).
async fn housekeeping(app: Arc<App>, stop: CancellationToken) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(3600));
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        match app.audit.prune(app.config.audit_retention_days).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(records = n, "pruned old audit records"),
            Err(e) => tracing::warn!(error = %e, "cannot prune the audit log"),
        }
        if let Err(e) = app.idempotency.prune().await {
            tracing::warn!(error = %e, "cannot prune idempotency records");
        }
        app.limits.shrink();
        match app.oauth.grants.expire_unused_clients().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                clients = n,
                "removed registrations that never led to a grant"
            ),
            Err(e) => tracing::warn!(error = %e, "cannot remove unused OAuth registrations"),
        }
    }
}

/// The demo keys: read from the data directory, or created (all scopes) on the first start.
async fn demo_keys(app: &App) -> anyhow::Result<(DemoKeys, bool)> {
    let path = demo_keys_path(&app.config);
    if let Ok(text) = std::fs::read_to_string(&path)
        && let Ok(keys) = serde_json::from_str::<DemoKeys>(&text)
    {
        return Ok((keys, false));
    }
    let all = parse_scopes("all")?;
    let pro = app
        .keys
        .create(DEMO_PRO_STUDIO, "demo (Lotus Flow Yoga, Pro)", &all, None)
        .await?;
    let free = app
        .keys
        .create(
            DEMO_FREE_STUDIO,
            "demo (Free Spirit Pilates, Free)",
            &all,
            None,
        )
        .await?;
    let keys = DemoKeys {
        pro: pro.secret,
        free: free.secret,
    };
    write_private(&path, &serde_json::to_string_pretty(&keys)?)?;
    Ok((keys, true))
}

/// Writes a file only its owner can read.
fn write_private(path: &std::path::Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut f = options
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(text.as_bytes())?;
    Ok(())
}

/// The demo studio users, one line each.
pub fn demo_users() -> String {
    flowgate_studio_api::DEMO_USERS
        .iter()
        .map(|u| {
            format!(
                "  {:<16} {:<6} {:<28} {}\n",
                u.studio_id, u.role, u.email, u.password
            )
        })
        .collect()
}

/// What `flowgate serve` prints once it listens.
pub fn banner(running: &Running) -> String {
    let url = running.app.mcp_url();
    let mut s = format!("flowgate is serving MCP at {url}\n");
    match &running.demo {
        Some(keys) if running.demo_created => {
            s.push_str(&format!(
                r#"
Using the embedded reference Management API with two demo studios.
Demo secret keys (all scopes; also saved, readable only by you, in {path}):

  Lotus Flow Yoga (Pro):      {pro}
  Free Spirit Pilates (Free): {free}

Claude Desktop (claude_desktop_config.json, then restart Claude Desktop):
{{
  "mcpServers": {{
    "flowgate": {{
      "command": "npx",
      "args": ["-y", "mcp-remote", "{url}", "--header", "Authorization: Bearer {pro}"]
    }}
  }}
}}

MCP Inspector:
  npx @modelcontextprotocol/inspector --cli {url} --transport http \
    --header "Authorization: Bearer {pro}" --method tools/list

Demo studio users (their sign-in for the reference Management API):
{users}"#,
                users = demo_users(),
                path = running.demo_keys_path().display(),
                pro = keys.pro,
                free = keys.free,
            ));
        }
        Some(_) => s.push_str(&format!(
            "Using the embedded reference Management API; the demo keys are in {}\n",
            running.demo_keys_path().display()
        )),
        None => s.push_str(&format!(
            "Upstream Management API: {}\n",
            running.app.upstream.base_url()
        )),
    }
    s
}
