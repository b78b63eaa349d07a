//! Start-up wiring for `flowgate serve`: policies, store, upstream (the embedded reference
//! Management API unless one is configured), demo keys on first start, and the HTTP server.
//!
//! [`start`] returns a [`Running`] server so the integration tests run exactly what users run.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use flowgate_studio_api::{DEMO_FREE_STUDIO, DEMO_PRO_STUDIO, StudioApi};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::authz::Authz;
use crate::config::Config;
use crate::identity::keys::parse_scopes;
use crate::store::Store;
use crate::upstream::{UpstreamClient, UpstreamSettings};

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
    /// Cancelled first: stop accepting, finish the requests being answered.
    accepting: CancellationToken,
    /// Cancelled once the requests in flight are answered (or the grace period is over): cancels
    /// what rmcp still serves, and the background tasks.
    sessions: CancellationToken,
    task: JoinHandle<()>,
}

impl Running {
    /// Shuts down in order: stops accepting connections; lets the calls in flight finish (for at most `shutdown_grace`); commits every audit record and answer
    /// still queued and closes the store; then stops the embedded Management API.
    pub async fn stop(self) {
        let deadline = tokio::time::Instant::now() + self.app.config.shutdown_grace();
        self.accepting.cancel();
        let left = self.app.in_flight.drained(deadline).await;
        if left > 0 {
            tracing::warn!(
                requests = left,
                "requests still in flight after the shutdown grace period"
            );
        }
        self.sessions.cancel();
        if let Err(e) = self.task.await {
            tracing::error!(error = %e, "the server task failed");
        }
        if let Err(e) = self.app.store.close().await {
            tracing::error!(error = %e, "cannot flush the gateway store");
        }
        if let Some(api) = self.studio_api {
            api.shutdown().await;
        }
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
    let store = Store::open(&config.store_location()?).await?;

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
    let upstream = UpstreamClient::new(&UpstreamSettings {
        base_url: &base,
        token: &token,
        connect_timeout: config.upstream_connect_timeout(),
        timeout: config.upstream_timeout(),
        ca_file: config.upstream_ca_file.as_deref(),
        max_response: config.upstream_max_response_bytes,
    })?;

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
    let session_key = store
        .shared_secret("mcp-session-key")
        .await
        .context("cannot read the MCP session signing key from the store")?;
    let app = App::new(config, authz, store, upstream, base_url, &session_key)
        .map_err(anyhow::Error::msg)?;

    let (demo, demo_created) = if embedded {
        let (keys, created) = demo_keys(&app).await?;
        (Some(keys), created)
    } else {
        (None, false)
    };

    let accepting = CancellationToken::new();
    let sessions = CancellationToken::new();
    tokio::spawn(housekeeping(app.clone(), sessions.clone()));
    let router = crate::http::router(app.clone(), &sessions);
    let limits = crate::http::listener::Limits {
        max_connections: app.config.max_connections,
        header_read_timeout: app.config.header_read_timeout(),
        grace: app.config.shutdown_grace(),
    };
    let task = tokio::spawn(crate::http::listener::serve(
        listener,
        router,
        limits,
        accepting.clone(),
    ));
    Ok(Running {
        addr,
        app,
        studio_api,
        demo,
        demo_created,
        accepting,
        sessions,
        task,
    })
}

/// Hourly (and at start): prune old audit records, idempotent answers and the ends of expired
/// MCP sessions, forget rate-limit state of idle principals, remove OAuth registrations that
/// never led to a grant (24 h), expired sign-in flows, failed sign-ins older than an hour, and
/// ended settings-page sessions.
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
        if let Err(e) = app.store.prune_ended_sessions().await {
            tracing::warn!(error = %e, "cannot prune ended MCP sessions");
        }
        app.limits.shrink().await;
        match app.oauth.grants.expire_unused_clients().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                clients = n,
                "removed registrations that never led to a grant"
            ),
            Err(e) => tracing::warn!(error = %e, "cannot remove unused OAuth registrations"),
        }
        // Sign-ins in progress and failed sign-ins past their time (flows are also pruned
        // whenever one starts).
        if let Err(e) = app.oauth.flows.prune().await {
            tracing::warn!(error = %e, "cannot remove expired sign-in flows");
        }
        if let Err(e) = app.oauth.sign_in.accounts.prune().await {
            tracing::warn!(error = %e, "cannot forget old failed sign-ins");
        }
        let now = crate::store::Timestamp::now();
        let idle = chrono::Duration::seconds(app.config.settings_idle_secs as i64);
        if let Err(e) = app.store.prune_settings_sessions(now, now - idle).await {
            tracing::warn!(error = %e, "cannot remove ended settings sessions");
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

/// Writes a file only its owner can read: created `0600`, and an existing file is tightened to
/// `0600` before the secrets are written into it.
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
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("cannot make {} private", path.display()))?;
    }
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
      "args": ["-y", "mcp-remote", "{url}", "--header", "Authorization:${{AUTH_HEADER}}"],
      "env": {{ "AUTH_HEADER": "Bearer {pro}" }}
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
