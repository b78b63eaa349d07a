//! Starts the real gateway (with the real embedded Management API) on ephemeral loopback ports
//! and connects rmcp's own MCP client to it.

use flowgate::config::Config;
use flowgate::serve::{self, Running};
use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientCapabilities, ClientConfig, Implementation,
};
use rmcp::service::RunningService;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{RoleClient, ServiceExt};
use serde_json::Value;

/// A running gateway and the temporary data directory it owns.
pub struct Gateway {
    pub running: Running,
    /// Kept alive (and removed) with the gateway.
    _dir: tempfile::TempDir,
}

impl Gateway {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(configure: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            data_dir: dir.path().to_path_buf(),
            // Tests make calls in quick bursts; the rate limit has tests of its own.
            rate_limit_per_minute: [("free".to_string(), 100_000), ("pro".to_string(), 100_000)]
                .into(),
            ..Config::default()
        };
        configure(&mut config);
        let running = serve::start(config).await.unwrap();
        Self { running, _dir: dir }
    }

    pub fn url(&self) -> String {
        self.running.app.mcp_url()
    }

    pub fn pro_key(&self) -> String {
        self.running.demo.as_ref().unwrap().pro.clone()
    }

    pub fn free_key(&self) -> String {
        self.running.demo.as_ref().unwrap().free.clone()
    }

    /// A new secret key of `studio` with `scopes`.
    pub async fn key(&self, studio: &str, scopes: &[&str]) -> flowgate::identity::keys::NewKey {
        let scopes = scopes.iter().map(|s| s.to_string()).collect();
        self.running
            .app
            .keys
            .create(studio, "test key", &scopes, None)
            .await
            .unwrap()
    }

    /// The test's own connection to the gateway's SQLite database, for what only a test does
    /// behind the store's back: inject a fault (a trigger), age a row, measure a stored record.
    /// The library has no such door; this opens the file the way any SQLite client would.
    pub async fn sqlite(&self) -> sqlx::SqlitePool {
        let location = self.running.app.config.store_location().unwrap();
        let flowgate::store::Location::Sqlite(path) = location else {
            panic!("the gateway is not on SQLite: {location:?}")
        };
        let options = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(path)
            .busy_timeout(std::time::Duration::from_secs(5));
        sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .unwrap()
    }

    pub async fn client(&self, key: &str) -> Client {
        connect(&self.url(), key).await
    }

    pub async fn stop(self) {
        self.running.stop().await;
    }
}

pub type Client = RunningService<RoleClient, ClientConfig>;

pub async fn connect(url: &str, key: &str) -> Client {
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(url.to_string()).auth_header(key.to_string()),
    );
    ClientConfig::new(
        ClientCapabilities::default(),
        Implementation::new("flowgate-tests", "0.0.0"),
    )
    .serve(transport)
    .await
    .unwrap()
}

/// Calls a tool and returns the result (panics on a JSON-RPC error).
pub async fn call(client: &Client, tool: &str, args: Value) -> CallToolResult {
    let args = args.as_object().cloned().unwrap_or_default();
    client
        .call_tool(CallToolRequestParams::new(tool.to_string()).with_arguments(args))
        .await
        .unwrap_or_else(|e| panic!("{tool}: {e:?}"))
}

/// The text of a result's first content block.
pub fn text(result: &CallToolResult) -> String {
    result
        .content
        .first()
        .and_then(|c| c.as_text())
        .map(|t| t.text.clone())
        .unwrap_or_default()
}

/// The structured content of a successful result.
pub fn ok(result: CallToolResult, tool: &str) -> Value {
    assert_ne!(
        result.is_error,
        Some(true),
        "{tool} failed: {}",
        text(&result)
    );
    result.structured_content.unwrap_or(Value::Null)
}

/// One raw JSON-RPC POST to `/mcp` with a bearer token, as a client would send it.
pub async fn post_mcp(url: &str, token: &str, body: &Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(url)
        .bearer_auth(token)
        .header("Accept", "application/json, text/event-stream")
        .json(body)
        .send()
        .await
        .unwrap()
}

/// This package's folder, as `cargo test` says it when it runs the test (not as it was when
/// the test was compiled: a build cache shared by two checkouts would point at the other one).
pub fn crate_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into())
}

/// The seconds a refusal's `Retry-After` asks the client to wait.
pub fn retry_after(r: &reqwest::Response) -> u64 {
    r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}
