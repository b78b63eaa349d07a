//! Configuration: one typed struct, read from an optional YAML file, then `FLOWGATE_*`
//! environment variables, then command-line flags (later wins), validated once, immutable after.
//!
//! Every key has a safe default and is documented in the README's configuration table.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// How `/mcp` keeps state between requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum McpMode {
    /// 2025-11-25 sessions (`Mcp-Session-Id`, SSE replies); 2026-07-28 requests are still served
    /// statelessly.
    #[default]
    Stateful,
    /// No sessions at all; plain JSON replies.
    Stateless,
}

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where the gateway listens. Port 0 picks a free port (the bound URL is printed).
    pub listen: SocketAddr,
    /// The public base URL clients use (`https://mcp.example.com`); defaults to the bound address.
    pub public_url: Option<String>,
    /// The gateway's data: its SQLite store (unless `database_url` is set), and the embedded
    /// Management API's.
    pub data_dir: PathBuf,
    /// `postgres://user:password@host:port/db`: keep the gateway's state in PostgreSQL, shared by
    /// every replica. Unset: SQLite in the data directory.
    pub database_url: Option<String>,
    /// The Management API base URL (e.g. `https://api.example.com/v1`). Unset: start the
    /// embedded reference Management API on a loopback port.
    pub upstream_url: Option<String>,
    /// The service credential sent upstream as a bearer token (required with `upstream_url`).
    pub upstream_token: Option<String>,
    /// Upstream connect timeout, in milliseconds.
    pub upstream_connect_timeout_ms: u64,
    /// Upstream total timeout per call, in milliseconds.
    pub upstream_timeout_ms: u64,
    /// A PEM bundle of CA certificates trusted for the upstream in addition to the platform's
    /// roots (a Management API behind a private CA).
    pub upstream_ca_file: Option<PathBuf>,
    /// Largest upstream answer read, in bytes; a larger one is an error.
    pub upstream_max_response_bytes: usize,
    /// A policy folder to use instead of the policies built into the binary.
    pub policies_dir: Option<PathBuf>,
    /// Session mode of `/mcp`.
    pub mcp_mode: McpMode,
    /// Extra `Host` header values accepted on `/mcp` (loopback names are always accepted).
    pub allowed_hosts: Vec<String>,
    /// Browser `Origin`s accepted on `/mcp`. Empty: requests with any `Origin` header are refused
    /// (MCP clients outside a browser send none).
    pub allowed_origins: Vec<String>,
    /// How long a studio's tier is cached, in seconds.
    pub tier_cache_ttl_secs: u64,
    /// Tools per `tools/list` page.
    pub tools_page_size: usize,
    /// Largest accepted request body on `/mcp`, in bytes.
    pub max_body_bytes: usize,
    /// Log as JSON lines instead of text.
    pub log_json: bool,
    /// Connections served at once; more are answered 503 and closed.
    pub max_connections: usize,
    /// How long a client may take to send a request's headers (and how long an idle
    /// keep-alive connection is kept), in milliseconds.
    pub header_read_timeout_ms: u64,
    /// How long a client may take to send a request's body, in milliseconds.
    pub body_read_timeout_ms: u64,
    /// On shutdown, how long calls in flight may take to finish, in milliseconds.
    pub shutdown_grace_ms: u64,
    /// Lifetime of a 2025-11-25 MCP session, in seconds: its id expires this long after
    /// `initialize` (the client then opens a new one). Sessions cost the gateway no memory, so
    /// a principal may hold any number.
    pub mcp_session_ttl_secs: u64,
    /// A settings-page session ends after this many seconds without a page view.
    pub settings_idle_secs: u64,
    /// A settings-page session ends this many seconds after sign-in, however busy.
    pub settings_max_secs: u64,
    /// An OTLP/HTTP collector (`http://collector:4318`) to export call traces to; unset: no
    /// tracing.
    pub otel_endpoint: Option<String>,
    /// The `service.name` of exported traces.
    pub otel_service_name: String,
    /// How long an idempotent write's answer is kept, in seconds.
    pub idempotency_ttl_secs: u64,
    /// How long audit records are kept, in days (0 keeps them forever).
    pub audit_retention_days: u64,
    /// Calls per minute per principal, by studio tier (burst: a quarter of it). A tier not listed
    /// is not limited.
    pub rate_limit_per_minute: BTreeMap<String, u32>,
    /// Lifetime of OAuth access tokens, in seconds.
    pub oauth_access_token_ttl_secs: u64,
    /// How many OAuth clients may register dynamically (so registration cannot fill the store).
    pub oauth_max_clients: i64,
    /// For developing an MCP client on one machine: accept `http` client metadata documents on
    /// private or loopback addresses. Never on a gateway others reach (it opens internal URLs
    /// to any caller's `client_id`).
    pub oauth_allow_private_client_metadata: bool,
    /// Behind a trusted proxy only: the request header holding the client's address (e.g.
    /// `X-Forwarded-For`, right-most entry). Unset: the peer address of the connection.
    pub client_ip_header: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: None,
            data_dir: PathBuf::from(".flowgate"),
            database_url: None,
            upstream_url: None,
            upstream_token: None,
            upstream_connect_timeout_ms: 2_000,
            upstream_timeout_ms: 15_000,
            upstream_ca_file: None,
            upstream_max_response_bytes: 8 * 1024 * 1024,
            policies_dir: None,
            mcp_mode: McpMode::Stateful,
            allowed_hosts: Vec::new(),
            allowed_origins: Vec::new(),
            tier_cache_ttl_secs: 60,
            tools_page_size: 100,
            max_body_bytes: 1024 * 1024,
            log_json: false,
            max_connections: 1024,
            header_read_timeout_ms: 10_000,
            body_read_timeout_ms: 30_000,
            shutdown_grace_ms: 10_000,
            mcp_session_ttl_secs: 24 * 3600,
            settings_idle_secs: 30 * 60,
            settings_max_secs: 12 * 3600,
            otel_endpoint: None,
            otel_service_name: "flowgate".into(),
            idempotency_ttl_secs: 24 * 3600,
            audit_retention_days: 365,
            rate_limit_per_minute: BTreeMap::from([("free".into(), 60), ("pro".into(), 600)]),
            oauth_access_token_ttl_secs: 3600,
            oauth_max_clients: 10_000,
            oauth_allow_private_client_metadata: false,
            client_ip_header: None,
        }
    }
}

/// A configuration problem, named by key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the config file {path} is not valid: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{key}: {message}")]
    Invalid { key: &'static str, message: String },
}

impl Config {
    /// Reads the optional file, then applies `FLOWGATE_*` variables from `env`.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut config = match file {
            None => Config::default(),
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                })?;
                flowgate_codegen::yaml::from_str(&text).map_err(|e| ConfigError::Parse {
                    path: path.to_path_buf(),
                    message: e.to_string(),
                })?
            }
        };
        for (key, value) in env {
            let Some(name) = key.strip_prefix("FLOWGATE_") else {
                continue;
            };
            config.set(name, &value)?;
        }
        Ok(config)
    }

    /// Sets one key from its environment form (`LISTEN`, `UPSTREAM_URL`, …).
    fn set(&mut self, name: &str, value: &str) -> Result<(), ConfigError> {
        fn parse<T: std::str::FromStr>(key: &'static str, v: &str) -> Result<T, ConfigError>
        where
            T::Err: std::fmt::Display,
        {
            v.parse().map_err(|e: T::Err| ConfigError::Invalid {
                key,
                message: format!("cannot parse {v:?}: {e}"),
            })
        }
        let list = |v: &str| -> Vec<String> {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        };
        match name {
            "LISTEN" => self.listen = parse("FLOWGATE_LISTEN", value)?,
            "PUBLIC_URL" => self.public_url = Some(value.to_string()),
            "DATA_DIR" => self.data_dir = PathBuf::from(value),
            "DATABASE_URL" => self.database_url = Some(value.to_string()),
            "UPSTREAM_URL" => self.upstream_url = Some(value.to_string()),
            "UPSTREAM_TOKEN" => self.upstream_token = Some(value.to_string()),
            "UPSTREAM_CONNECT_TIMEOUT_MS" => {
                self.upstream_connect_timeout_ms =
                    parse("FLOWGATE_UPSTREAM_CONNECT_TIMEOUT_MS", value)?;
            }
            "UPSTREAM_TIMEOUT_MS" => {
                self.upstream_timeout_ms = parse("FLOWGATE_UPSTREAM_TIMEOUT_MS", value)?;
            }
            "UPSTREAM_CA_FILE" => self.upstream_ca_file = Some(PathBuf::from(value)),
            "UPSTREAM_MAX_RESPONSE_BYTES" => {
                self.upstream_max_response_bytes =
                    parse("FLOWGATE_UPSTREAM_MAX_RESPONSE_BYTES", value)?;
            }
            "MAX_CONNECTIONS" => self.max_connections = parse("FLOWGATE_MAX_CONNECTIONS", value)?,
            "HEADER_READ_TIMEOUT_MS" => {
                self.header_read_timeout_ms = parse("FLOWGATE_HEADER_READ_TIMEOUT_MS", value)?;
            }
            "BODY_READ_TIMEOUT_MS" => {
                self.body_read_timeout_ms = parse("FLOWGATE_BODY_READ_TIMEOUT_MS", value)?;
            }
            "SHUTDOWN_GRACE_MS" => {
                self.shutdown_grace_ms = parse("FLOWGATE_SHUTDOWN_GRACE_MS", value)?;
            }
            "MCP_SESSION_TTL_SECS" => {
                self.mcp_session_ttl_secs = parse("FLOWGATE_MCP_SESSION_TTL_SECS", value)?;
            }
            "SETTINGS_IDLE_SECS" => {
                self.settings_idle_secs = parse("FLOWGATE_SETTINGS_IDLE_SECS", value)?;
            }
            "SETTINGS_MAX_SECS" => {
                self.settings_max_secs = parse("FLOWGATE_SETTINGS_MAX_SECS", value)?;
            }
            "OTEL_ENDPOINT" => self.otel_endpoint = Some(value.to_string()),
            "OTEL_SERVICE_NAME" => self.otel_service_name = value.to_string(),
            "POLICIES_DIR" => self.policies_dir = Some(PathBuf::from(value)),
            "MCP_MODE" => {
                self.mcp_mode = match value {
                    "stateful" => McpMode::Stateful,
                    "stateless" => McpMode::Stateless,
                    other => {
                        return Err(ConfigError::Invalid {
                            key: "FLOWGATE_MCP_MODE",
                            message: format!("must be `stateful` or `stateless`, got {other:?}"),
                        });
                    }
                }
            }
            "ALLOWED_HOSTS" => self.allowed_hosts = list(value),
            "ALLOWED_ORIGINS" => self.allowed_origins = list(value),
            "TIER_CACHE_TTL_SECS" => {
                self.tier_cache_ttl_secs = parse("FLOWGATE_TIER_CACHE_TTL_SECS", value)?;
            }
            "TOOLS_PAGE_SIZE" => self.tools_page_size = parse("FLOWGATE_TOOLS_PAGE_SIZE", value)?,
            "MAX_BODY_BYTES" => self.max_body_bytes = parse("FLOWGATE_MAX_BODY_BYTES", value)?,
            "LOG_JSON" => self.log_json = parse("FLOWGATE_LOG_JSON", value)?,
            "IDEMPOTENCY_TTL_SECS" => {
                self.idempotency_ttl_secs = parse("FLOWGATE_IDEMPOTENCY_TTL_SECS", value)?;
            }
            "AUDIT_RETENTION_DAYS" => {
                self.audit_retention_days = parse("FLOWGATE_AUDIT_RETENTION_DAYS", value)?;
            }
            "OAUTH_ACCESS_TOKEN_TTL_SECS" => {
                self.oauth_access_token_ttl_secs =
                    parse("FLOWGATE_OAUTH_ACCESS_TOKEN_TTL_SECS", value)?;
            }
            "OAUTH_MAX_CLIENTS" => {
                self.oauth_max_clients = parse("FLOWGATE_OAUTH_MAX_CLIENTS", value)?;
            }
            "CLIENT_IP_HEADER" => {
                self.client_ip_header = Some(value.trim().to_string()).filter(|h| !h.is_empty());
            }
            "RATE_LIMIT_PER_MINUTE" => {
                let mut limits = BTreeMap::new();
                for pair in list(value) {
                    let Some((tier, n)) = pair.split_once('=') else {
                        return Err(ConfigError::Invalid {
                            key: "FLOWGATE_RATE_LIMIT_PER_MINUTE",
                            message: format!(
                                "expected tier=calls pairs like free=60,pro=600, got {pair:?}"
                            ),
                        });
                    };
                    limits.insert(
                        tier.trim().to_string(),
                        parse("FLOWGATE_RATE_LIMIT_PER_MINUTE", n.trim())?,
                    );
                }
                self.rate_limit_per_minute = limits;
            }
            // Read by the CLI itself, not a setting.
            "CONFIG" | "LOG" => {}
            other => {
                return Err(ConfigError::Invalid {
                    key: "FLOWGATE_*",
                    message: format!(
                        "unknown setting FLOWGATE_{other} (see the configuration table in the README)"
                    ),
                });
            }
        }
        Ok(())
    }

    /// Checks the values together; call once before use.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(url) = &self.upstream_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(ConfigError::Invalid {
                    key: "upstream_url",
                    message: format!("must be an http:// or https:// URL, got {url:?}"),
                });
            }
            if self.upstream_token.as_deref().is_none_or(str::is_empty) {
                return Err(ConfigError::Invalid {
                    key: "upstream_token",
                    message:
                        "is required with upstream_url (the Management API's service credential)"
                            .into(),
                });
            }
        }
        if let Some(url) = &self.public_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(ConfigError::Invalid {
                key: "public_url",
                message: format!("must be an http:// or https:// URL, got {url:?}"),
            });
        }
        if self.upstream_timeout_ms == 0 || self.upstream_connect_timeout_ms == 0 {
            return Err(ConfigError::Invalid {
                key: "upstream_timeout_ms",
                message: "timeouts must be greater than zero".into(),
            });
        }
        if let Some(url) = &self.upstream_url
            && url.starts_with("http://")
            && self.upstream_ca_file.is_some()
        {
            return Err(ConfigError::Invalid {
                key: "upstream_ca_file",
                message: format!(
                    "is set, but upstream_url {url:?} is plain http: use an https:// URL"
                ),
            });
        }
        for (key, value) in [
            ("header_read_timeout_ms", self.header_read_timeout_ms),
            ("body_read_timeout_ms", self.body_read_timeout_ms),
            ("max_connections", self.max_connections as u64),
            ("mcp_session_ttl_secs", self.mcp_session_ttl_secs),
            ("settings_idle_secs", self.settings_idle_secs),
            ("settings_max_secs", self.settings_max_secs),
            (
                "upstream_max_response_bytes",
                self.upstream_max_response_bytes as u64,
            ),
        ] {
            if value == 0 {
                return Err(ConfigError::Invalid {
                    key,
                    message: "must be greater than zero".into(),
                });
            }
        }
        if let Some(url) = &self.otel_endpoint {
            if !cfg!(feature = "otel") {
                return Err(ConfigError::Invalid {
                    key: "otel_endpoint",
                    message: "this flowgate was built without trace export (cargo feature `otel`)"
                        .into(),
                });
            }
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(ConfigError::Invalid {
                    key: "otel_endpoint",
                    message: format!("must be an http:// or https:// URL, got {url:?}"),
                });
            }
        }
        if !(1..=1000).contains(&self.tools_page_size) {
            return Err(ConfigError::Invalid {
                key: "tools_page_size",
                message: format!("must be 1 to 1000, got {}", self.tools_page_size),
            });
        }
        for tier in self.rate_limit_per_minute.keys() {
            if !crate::tool::catalog::TIERS.iter().any(|t| t.name == tier) {
                return Err(ConfigError::Invalid {
                    key: "rate_limit_per_minute",
                    message: format!("unknown tier `{tier}`"),
                });
            }
        }
        if self.mcp_session_ttl_secs > 30 * 24 * 3600 {
            return Err(ConfigError::Invalid {
                key: "mcp_session_ttl_secs",
                message: format!(
                    "must be at most 2592000 (30 days), got {}",
                    self.mcp_session_ttl_secs
                ),
            });
        }
        if self.settings_idle_secs > self.settings_max_secs {
            return Err(ConfigError::Invalid {
                key: "settings_idle_secs",
                message: format!(
                    "must be at most settings_max_secs ({}), got {}",
                    self.settings_max_secs, self.settings_idle_secs
                ),
            });
        }
        if self.settings_max_secs > 30 * 24 * 3600 {
            return Err(ConfigError::Invalid {
                key: "settings_max_secs",
                message: format!(
                    "must be at most 2592000 (30 days), got {}",
                    self.settings_max_secs
                ),
            });
        }
        if self.idempotency_ttl_secs == 0 {
            return Err(ConfigError::Invalid {
                key: "idempotency_ttl_secs",
                message: "must be greater than zero".into(),
            });
        }
        if let Some(h) = &self.client_ip_header
            && axum::http::HeaderName::from_bytes(h.as_bytes()).is_err()
        {
            return Err(ConfigError::Invalid {
                key: "client_ip_header",
                message: format!("{h:?} is not a valid HTTP header name"),
            });
        }
        if self.max_body_bytes < 1024 {
            return Err(ConfigError::Invalid {
                key: "max_body_bytes",
                message: "must be at least 1024".into(),
            });
        }
        Ok(())
    }

    pub fn upstream_timeout(&self) -> Duration {
        Duration::from_millis(self.upstream_timeout_ms)
    }

    pub fn header_read_timeout(&self) -> Duration {
        Duration::from_millis(self.header_read_timeout_ms)
    }

    pub fn body_read_timeout(&self) -> Duration {
        Duration::from_millis(self.body_read_timeout_ms)
    }

    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_millis(self.shutdown_grace_ms)
    }

    pub fn upstream_connect_timeout(&self) -> Duration {
        Duration::from_millis(self.upstream_connect_timeout_ms)
    }

    /// Where the gateway's own state lives: `database_url`, or SQLite in the data directory.
    pub fn store_location(&self) -> Result<crate::store::Location, crate::store::StoreError> {
        crate::store::Location::new(
            self.database_url.as_deref(),
            self.data_dir.join("gateway.sqlite"),
        )
    }
}
