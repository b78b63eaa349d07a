//! The `flowgate` command: serve the gateway, manage secret keys, read the audit log, check and
//! explain policies, or run the reference Management API on its own.
//!
//! Whatever it prints that a caller could have chosen (key and client names, tool names,
//! arguments, messages) goes through [`shown`] (tables) or [`json_line`] (`--json`), so no stored
//! text can move the operator's cursor, clear the terminal, reorder a line or forge a row.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context as _, bail};
use clap::{Args, Parser, Subcommand};
use flowgate::authz::Decision;
use flowgate::config::{Config, McpMode};
use flowgate::identity::keys::MAX_KEYS_AT_ONCE;
use flowgate::identity::keys::{KeyInfo, Keys, parse_scopes};
use flowgate::identity::{Principal, PrincipalKind, Studio};
use flowgate::store::{Store, Timestamp, Within};
use flowgate::tool::Registry;
use flowgate::{audit, serve};

/// Parts of the command that are not part of the gateway library (nothing that serves requests
/// compiles them).
mod cli {
    pub mod prove;
}

/// flowgate: a policy-driven MCP gateway for studio Management APIs.
///
/// Assistants (Claude, ChatGPT, Cursor…) connect to /mcp with a secret key; every tool call is
/// checked against Cedar policies, sent as one scoped Management API call, and audited.
///
/// Start here:  flowgate serve      (embedded demo Management API, demo keys printed)
#[derive(Parser, Debug)]
#[command(name = "flowgate", version, about, long_about, verbatim_doc_comment)]
struct Cli {
    /// A YAML config file (keys as in the README's configuration table).
    #[arg(long, global = true, env = "FLOWGATE_CONFIG")]
    config: Option<PathBuf>,
    /// The data directory (store, embedded Management API, demo keys).
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    /// Keep the gateway's state in PostgreSQL (`postgres://…`), shared by every replica, instead
    /// of SQLite in the data directory. Also FLOWGATE_DATABASE_URL.
    #[arg(long, global = true)]
    database_url: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the gateway. Without --upstream it starts the embedded reference Management API with
    /// two demo studios and prints demo keys on the first start.
    Serve(ServeArgs),
    /// Create, list, rotate and revoke secret keys (flow_sk_…).
    #[command(subcommand)]
    Keys(KeysCommand),
    /// List and revoke OAuth grants (assistants a studio user approved).
    #[command(subcommand)]
    Grants(GrantsCommand),
    /// List and delete dynamically registered OAuth clients.
    #[command(subcommand)]
    Clients(ClientsCommand),
    /// Read the audit log (newest first).
    Audit(AuditArgs),
    /// Validate a policy set, or explain one decision.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Run only the reference Management API, to poke at it with curl.
    StudioApi {
        /// Loopback address to listen on.
        #[arg(long, default_value = "127.0.0.1:8081")]
        listen: SocketAddr,
    },
}

#[derive(Args, Debug)]
struct ServeArgs {
    /// Address to listen on; port 0 picks a free one (the bound URL is printed).
    #[arg(long, env = "FLOWGATE_LISTEN")]
    listen: Option<SocketAddr>,
    /// Use this Management API (base URL including its version, e.g. https://api.example.com/v1).
    #[arg(long, env = "FLOWGATE_UPSTREAM_URL")]
    upstream: Option<String>,
    /// Load policies from this folder instead of the built-in ones.
    #[arg(long, env = "FLOWGATE_POLICIES_DIR")]
    policies: Option<PathBuf>,
    /// Serve /mcp without sessions (plain JSON replies).
    #[arg(long)]
    stateless: bool,
}

#[derive(Subcommand, Debug)]
enum KeysCommand {
    /// Create a key (or --count keys) and print its secret (shown once).
    Create {
        /// The studio the key belongs to (e.g. std_lotus).
        #[arg(long)]
        studio: String,
        /// Scopes, comma separated; `all` or `read` for every scope or every read scope.
        #[arg(long)]
        scopes: String,
        /// A name to recognise it by.
        #[arg(long, default_value = "secret key")]
        name: String,
        /// Expire after this long: 30d, 12h, 45m.
        #[arg(long)]
        expires_in: Option<String>,
        /// Create this many keys at once (up to 10,000, all or none), named NAME-1 … NAME-N,
        /// e.g. one per machine of a fleet.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=MAX_KEYS_AT_ONCE as i64))]
        count: u32,
        /// JSON lines (one per key, with its secret) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// List keys (never their secrets).
    List {
        #[arg(long)]
        studio: Option<String>,
        /// JSON lines instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key: its next request is refused.
    Revoke { id: String },
    /// Replace a key's secret: the old one stops working at once.
    Rotate { id: String },
}

#[derive(Subcommand, Debug)]
enum GrantsCommand {
    /// List grants (never their tokens).
    List {
        #[arg(long)]
        studio: Option<String>,
        /// JSON lines instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a grant: its tokens fail on their next request.
    Revoke { id: String },
}

#[derive(Subcommand, Debug)]
enum ClientsCommand {
    /// List registered clients with their grant counts. Registrations that never led to a
    /// grant are removed after 24 hours.
    List {
        /// JSON lines instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Delete a client and revoke its grants: their tokens fail on their next request.
    Delete { client_id: String },
}

#[derive(Args, Debug)]
struct AuditArgs {
    #[arg(long)]
    studio: Option<String>,
    /// A key or grant id.
    #[arg(long)]
    principal: Option<String>,
    #[arg(long)]
    tool: Option<String>,
    /// ok, denied, invalid, rate_limited, upstream_error, unauthenticated, error.
    #[arg(long)]
    outcome: Option<String>,
    /// RFC 3339 time, inclusive.
    #[arg(long, value_parser = rfc3339)]
    since: Option<Timestamp>,
    /// RFC 3339 time, exclusive.
    #[arg(long, value_parser = rfc3339)]
    until: Option<Timestamp>,
    #[arg(long, default_value_t = 50)]
    limit: i64,
    /// JSON lines instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand, Debug)]
enum PolicyCommand {
    /// Validate a policy folder (default: the built-in policies) against the generated schema.
    Check { dir: Option<PathBuf> },
    /// Prove the invariants (`DIR/invariants/*.cedar` plus the generated least-privilege ones),
    /// tenant isolation, tiers, reachability and never-errors for every tool with the SMT solver
    /// cvc5 (default: the built-in policies and invariants); then the role policies of
    /// `DIR/roles/` against `DIR/roles/invariants/`. Exits non-zero on any failure.
    Prove {
        dir: Option<PathBuf>,
        /// The report as one JSON document (every check, its counterexamples, the files proved;
        /// the role policies' report under `roles`).
        #[arg(long)]
        json: bool,
    },
    /// Print the decision and the deciding policies for one call.
    Explain {
        /// The key id (see `flowgate keys list`).
        #[arg(long)]
        key: String,
        #[arg(long)]
        tool: String,
        /// The arguments, as a JSON object.
        #[arg(long, default_value = "{}")]
        args: String,
        /// The studio's tier (free, pro); asked of the Management API when omitted.
        #[arg(long)]
        tier: Option<String>,
        /// Policies to use instead of the built-in ones.
        #[arg(long)]
        policies: Option<PathBuf>,
    },
    /// Print the generated Cedar schema.
    Schema,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn load_config(cli: &Cli) -> anyhow::Result<Config> {
    let mut config = Config::load(cli.config.as_deref(), std::env::vars())?;
    if let Some(dir) = &cli.data_dir {
        config.data_dir = dir.clone();
    }
    if let Some(url) = &cli.database_url {
        config.database_url = Some(url.clone());
    }
    Ok(config)
}

fn init_tracing(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("FLOWGATE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn,rmcp=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let mut config = load_config(&cli)?;
    match cli.command {
        Command::Serve(args) => {
            if let Some(l) = args.listen {
                config.listen = l;
            }
            if let Some(u) = args.upstream {
                config.upstream_url = Some(u);
            }
            if let Some(p) = args.policies {
                config.policies_dir = Some(p);
            }
            if args.stateless {
                config.mcp_mode = McpMode::Stateless;
            }
            init_tracing(config.log_json);
            let running = serve::start(config).await?;
            println!("{}", serve::banner(&running));
            shutdown_signal().await;
            eprintln!(
                "shutting down: finishing the calls in flight (at most {} s)",
                running.app.config.shutdown_grace().as_secs_f64()
            );
            running.stop().await;
            eprintln!("stopped");
            Ok(())
        }
        Command::Keys(cmd) => keys(&config, cmd).await,
        Command::Audit(args) => audit_cmd(&config, args).await,
        Command::Grants(cmd) => grants(&config, cmd).await,
        Command::Clients(cmd) => clients(&config, cmd).await,
        Command::Policy(cmd) => policy(&config, cmd).await,
        Command::StudioApi { listen } => {
            init_tracing(config.log_json);
            let api = flowgate_studio_api::StudioApi::start(flowgate_studio_api::Config {
                data_dir: config.data_dir.clone(),
                listen,
                ..Default::default()
            })
            .await?;
            println!(
                "The reference Management API is serving at {}\nService credential: {}\n\ncurl -H 'Authorization: Bearer {}' -H 'X-Flow-Studio: {}' {}/classes\n\nDemo studio sign-in:\n{}",
                api.base_url(),
                api.service_token(),
                api.service_token(),
                flowgate_studio_api::DEMO_PRO_STUDIO,
                api.base_url(),
                serve::demo_users()
            );
            shutdown_signal().await;
            api.shutdown().await;
            Ok(())
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

fn parse_duration(s: &str) -> anyhow::Result<chrono::Duration> {
    let (num, unit) = s.split_at(s.len().saturating_sub(1));
    let n: i64 = num
        .parse()
        .with_context(|| format!("`{s}` is not a duration like 30d, 12h or 45m"))?;
    if n <= 0 {
        bail!("`{s}`: the duration must be positive");
    }
    Ok(match unit {
        "d" => chrono::Duration::days(n),
        "h" => chrono::Duration::hours(n),
        "m" => chrono::Duration::minutes(n),
        _ => bail!("`{s}` is not a duration like 30d, 12h or 45m"),
    })
}

/// Text from the store as a table shows it: every [`audit::disguises`] character written as
/// a visible escape like `\u{1b}`, the rest unchanged.
/// The operator's CLI acts on every studio; `--studio` narrows a listing to one.
fn within(studio: Option<&str>) -> Within<'_> {
    studio.map_or(Within::AllStudios, Within::Studio)
}

fn rfc3339(text: &str) -> Result<Timestamp, String> {
    Timestamp::parse(text)
        .ok_or_else(|| format!("{text:?} is not an RFC 3339 time (e.g. 2026-11-01T00:00:00Z)"))
}

fn shown(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(audit::disguises) {
        return text.into();
    }
    text.chars()
        .map(|c| {
            if audit::disguises(c) {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect::<String>()
        .into()
}

/// One JSON line. serde_json escapes C0 controls; this also escapes the characters it leaves raw
/// (DEL, C1 controls, bidirectional controls) as `\uXXXX`. They can only occur inside strings,
/// so the line stays the same JSON.
fn json_line(value: &impl serde::Serialize) -> anyhow::Result<String> {
    let text = serde_json::to_string(value)?;
    if !text.chars().any(audit::disguises) {
        return Ok(text);
    }
    Ok(text
        .chars()
        .map(|c| {
            if audit::disguises(c) {
                format!("\\u{:04x}", u32::from(c))
            } else {
                c.to_string()
            }
        })
        .collect())
}

fn print_keys(keys: &[KeyInfo], json: bool) -> anyhow::Result<()> {
    if json {
        for k in keys {
            println!("{}", json_line(k)?);
        }
        return Ok(());
    }
    println!(
        "{:<20} {:<16} {:<28} {:<16} {:<20} {:<20} scopes",
        "id", "studio", "name", "hint", "last used", "state"
    );
    for k in keys {
        let state = match (&k.revoked_at, &k.expires_at) {
            (Some(r), _) => format!("revoked {r}"),
            (None, Some(e)) => format!("expires {e}"),
            (None, None) => "active".into(),
        };
        println!(
            "{:<20} {:<16} {:<28} {:<16} {:<20} {:<20} {}",
            shown(&k.id),
            shown(&k.studio),
            shown(&k.name),
            shown(&k.hint),
            shown(
                &k.last_used_at
                    .map_or_else(|| "never".into(), |t| t.to_string())
            ),
            shown(&state),
            shown(&k.scopes.join(","))
        );
    }
    Ok(())
}

async fn keys(config: &Config, cmd: KeysCommand) -> anyhow::Result<()> {
    let keys = Keys::new(Store::open(&config.store_location()?).await?);
    match cmd {
        KeysCommand::Create {
            studio,
            scopes,
            name,
            expires_in,
            count,
            json,
        } => {
            let scopes: BTreeSet<String> = parse_scopes(&scopes)?;
            let expires = expires_in
                .as_deref()
                .map(parse_duration)
                .transpose()?
                .map(|d| chrono::Utc::now() + d);
            if count > 1 {
                let made = keys
                    .create_many(&studio, &name, &scopes, expires, count as usize)
                    .await?;
                let expires_at = expires.map(Timestamp);
                if json {
                    for k in &made {
                        println!(
                            "{}",
                            json_line(&serde_json::json!({
                                "id": k.id, "studio": studio, "name": k.name,
                                "scopes": scopes, "expires_at": expires_at, "secret": k.secret,
                            }))?
                        );
                    }
                    return Ok(());
                }
                println!("Created {} keys for studio {studio}.", made.len());
                println!(
                    "Scopes: {}",
                    scopes.iter().cloned().collect::<Vec<_>>().join(", ")
                );
                if let Some(e) = &expires_at {
                    println!("Expires: {e}");
                }
                println!("Secrets (shown once, store them now):\n");
                for k in &made {
                    println!("  {}  {}  {}", k.id, k.secret, shown(&k.name));
                }
                return Ok(());
            }
            let key = keys.create(&studio, &name, &scopes, expires).await?;
            if json {
                println!(
                    "{}",
                    json_line(&serde_json::json!({
                        "id": key.info.id, "studio": key.info.studio, "name": key.info.name,
                        "scopes": key.info.scopes, "expires_at": key.info.expires_at,
                        "secret": key.secret,
                    }))?
                );
                return Ok(());
            }
            println!(
                "Created key {} for studio {}.",
                key.info.id, key.info.studio
            );
            println!("Secret (shown once, store it now):\n\n  {}\n", key.secret);
            println!("Scopes: {}", key.info.scopes.join(", "));
            if let Some(e) = &key.info.expires_at {
                println!("Expires: {e}");
            }
        }
        KeysCommand::List { studio, json } => {
            print_keys(&keys.list(within(studio.as_deref())).await?, json)?;
        }
        KeysCommand::Revoke { id } => {
            let k = keys.revoke(Within::AllStudios, &id).await?;
            println!(
                "Revoked key {} ({}); its next request is refused.",
                shown(&k.id),
                shown(&k.name)
            );
        }
        KeysCommand::Rotate { id } => {
            let k = keys.rotate(Within::AllStudios, &id).await?;
            println!(
                "Rotated key {}; the old secret no longer works.\nNew secret (shown once):\n\n  {}\n",
                k.info.id, k.secret
            );
        }
    }
    Ok(())
}

async fn grants(config: &Config, cmd: GrantsCommand) -> anyhow::Result<()> {
    let grants = flowgate::oauth::grants::Grants::new(
        Store::open(&config.store_location()?).await?,
        config.oauth_access_token_ttl_secs,
    );
    match cmd {
        GrantsCommand::List { studio, json } => {
            let list = grants.list(within(studio.as_deref())).await?;
            if json {
                for g in &list {
                    println!("{}", json_line(g)?);
                }
                return Ok(());
            }
            println!(
                "{:<26} {:<16} {:<28} {:<30} {:<26} scopes",
                "id", "studio", "client", "approved by", "state"
            );
            for g in &list {
                let state = g
                    .revoked_at
                    .as_ref()
                    .map(|r| format!("revoked {r}"))
                    .unwrap_or_else(|| "active".into());
                println!(
                    "{:<26} {:<16} {:<28} {:<30} {:<26} {}",
                    shown(&g.id),
                    shown(&g.studio),
                    shown(&g.client_name),
                    shown(&g.user_email),
                    shown(&state),
                    shown(&g.scopes.join(","))
                );
            }
        }
        GrantsCommand::Revoke { id } => {
            if grants
                .revoke_grant(Within::AllStudios, &id, "revoked from the CLI")
                .await?
            {
                println!("Revoked grant {id}; its tokens are refused on their next request.");
            } else {
                anyhow::bail!("no active grant with id `{id}`");
            }
        }
    }
    Ok(())
}

async fn clients(config: &Config, cmd: ClientsCommand) -> anyhow::Result<()> {
    let grants = flowgate::oauth::grants::Grants::new(
        Store::open(&config.store_location()?).await?,
        config.oauth_access_token_ttl_secs,
    );
    match cmd {
        ClientsCommand::List { json } => {
            let list = grants.list_clients().await?;
            if json {
                for c in &list {
                    println!("{}", json_line(c)?);
                }
                return Ok(());
            }
            println!(
                "{:<28} {:<28} {:<26} {:>7}  redirect URIs",
                "client_id", "name", "registered", "grants"
            );
            // Names and redirect URIs were chosen by whoever registered: shown, not printed raw.
            for c in &list {
                println!(
                    "{:<28} {:<28} {:<26} {:>7}  {}",
                    shown(&c.client_id),
                    shown(&c.client_name),
                    c.created_at,
                    format!("{}/{}", c.active_grants, c.grants),
                    shown(&c.redirect_uris.join(" "))
                );
            }
        }
        ClientsCommand::Delete { client_id } => match grants.delete_client(&client_id).await? {
            Some((client, revoked)) => println!(
                "Deleted client {} ({}) and revoked its {revoked} active grant(s); their tokens are refused on their next request.",
                shown(&client.client_id),
                shown(&client.client_name)
            ),
            None => {
                bail!("no registered client with id `{client_id}` (see `flowgate clients list`)")
            }
        },
    }
    Ok(())
}

async fn audit_cmd(config: &Config, args: AuditArgs) -> anyhow::Result<()> {
    let log = audit::Audit::new(Store::open(&config.store_location()?).await?);
    let records = log
        .query(&audit::Filter {
            studio: args.studio,
            principal: args.principal,
            tool: args.tool,
            outcome: args.outcome,
            since: args.since,
            until: args.until,
            before_seq: None,
            limit: args.limit,
        })
        .await?;
    if args.json {
        for r in &records {
            println!("{}", json_line(r)?);
        }
        return Ok(());
    }
    println!(
        "{:<24} {:<16} {:<22} {:<24} {:<15} {:>6}  message",
        "at", "studio", "principal", "tool", "outcome", "ms"
    );
    for r in &records {
        println!(
            "{:<24} {:<16} {:<22} {:<24} {:<15} {:>6}  {}",
            r.at.rfc3339(),
            shown(r.studio.as_deref().unwrap_or("-")),
            shown(r.principal_id.as_deref().unwrap_or("-")),
            shown(r.tool.as_deref().unwrap_or("-")),
            shown(&r.outcome),
            r.duration_ms,
            // Line breaks of a message (a list of problems) read as spaces in a table row.
            shown(&r.message.as_deref().unwrap_or("").replace('\n', " "))
        );
    }
    Ok(())
}

async fn policy(config: &Config, cmd: PolicyCommand) -> anyhow::Result<()> {
    match cmd {
        PolicyCommand::Schema => {
            print!("{}", flowgate::tool::CEDAR_SCHEMA);
            Ok(())
        }
        PolicyCommand::Check { dir } => {
            let authz = match &dir {
                Some(d) => flowgate::authz::Authz::from_dir(d)?,
                None => flowgate::authz::Authz::shipped()?,
            };
            println!(
                "The policy set is valid: {} policies ({}) checked in strict mode against the schema generated from the manifest.",
                authz.policy_ids().len(),
                authz.policy_ids().join(", ")
            );
            Ok(())
        }
        PolicyCommand::Prove { dir, json } => {
            let report = match &dir {
                Some(d) => cli::prove::prove_dir(d).await?,
                None => cli::prove::prove_shipped().await?,
            };
            // The role policies: DIR/roles/ when proving a folder that has one.
            let roles = match &dir {
                Some(d) if d.join("roles").is_dir() => {
                    Some(cli::prove::roles::prove_dir(&d.join("roles")).await?)
                }
                Some(_) => None,
                None => Some(cli::prove::roles::prove_shipped().await?),
            };
            // Counterexamples carry strings the solver chose: shown like stored text.
            if json {
                let mut doc = serde_json::to_value(&report)?;
                if let Some(roles) = &roles {
                    doc["roles"] = serde_json::to_value(roles)?;
                    doc["passed"] = serde_json::Value::Bool(report.passed && roles.passed);
                }
                println!("{}", serde_json::to_string(&doc)?);
            } else {
                for line in report.to_string().lines() {
                    println!("{}", shown(line));
                }
                if let Some(roles) = &roles {
                    println!("\nRole policies (roles/):");
                    for line in roles.to_string().lines() {
                        println!("{}", shown(line));
                    }
                }
            }
            let checks = report.checks.len() + roles.as_ref().map_or(0, |r| r.checks.len());
            let failed = report.failed().count() + roles.as_ref().map_or(0, |r| r.failed().count());
            if failed > 0 {
                bail!(
                    "{failed} of {checks} checks FAILED: the policies do not imply the invariants (counterexamples above)",
                );
            }
            Ok(())
        }
        PolicyCommand::Explain {
            key,
            tool,
            args,
            tier,
            policies,
        } => {
            let mut config = config.clone();
            if policies.is_some() {
                config.policies_dir = policies;
            }
            let authz = serve::load_policies(&config)?;
            let keys = Keys::new(Store::open(&config.store_location()?).await?);
            let info = keys.get(Within::AllStudios, &key).await?;
            let registry = Registry::new().map_err(anyhow::Error::msg)?;
            let t = registry
                .get(&tool)
                .with_context(|| format!("no tool named `{tool}` in the manifest"))?;
            let args: serde_json::Value =
                serde_json::from_str(&args).context("--args must be a JSON object")?;
            let decoded = match t.prepare(Some(args)) {
                Ok(d) => d,
                Err(e) => bail!("the arguments are not valid for {tool}: {e:?}"),
            };
            let tier = match tier {
                Some(t) => t,
                None => studio_tier(&config, &info.studio).await?,
            };
            let principal = Principal {
                kind: PrincipalKind::Key,
                id: info.id.clone(),
                studio: info.studio.clone(),
                name: info.name.clone(),
                scopes: info.scopes.iter().cloned().collect(),
            };
            let studio = Studio {
                id: info.studio.clone(),
                name: String::new(),
                tier: tier.clone(),
            };
            println!(
                "key {} ({}) of studio {} on {tier}, tool {tool}:",
                info.id, info.name, info.studio
            );
            match authz.authorize(&principal, &studio, t.def, decoded.context) {
                Decision::Allow { policies } => {
                    println!("  ALLOW, permitted by: {}", policies.join(", "));
                }
                Decision::Deny { policies, reason } => {
                    println!(
                        "  DENY, decided by: {}",
                        if policies.is_empty() {
                            "no permit applies (default deny)".to_string()
                        } else {
                            policies.join(", ")
                        }
                    );
                    println!("  reason shown to the assistant: {reason} Nothing was changed.");
                }
            }
            Ok(())
        }
    }
}

/// The studio's tier, asked of the configured Management API (or the embedded one's database).
async fn studio_tier(config: &Config, studio: &str) -> anyhow::Result<String> {
    let (api, base, token) = match &config.upstream_url {
        Some(u) => (
            None,
            u.clone(),
            config.upstream_token.clone().unwrap_or_default(),
        ),
        None => {
            let api = flowgate_studio_api::StudioApi::start(flowgate_studio_api::Config {
                data_dir: config.data_dir.clone(),
                ..Default::default()
            })
            .await?;
            let (b, t) = (api.base_url(), api.service_token().to_string());
            (Some(api), b, t)
        }
    };
    let response = reqwest::Client::new()
        .get(format!("{base}/studio"))
        .bearer_auth(token)
        .header("X-Flow-Studio", studio)
        .send()
        .await;
    if let Some(api) = api {
        api.shutdown().await;
    }
    let body: serde_json::Value = response?.error_for_status()?.json().await?;
    body["tier"]
        .as_str()
        .map(str::to_string)
        .context("the Management API did not say the studio's tier; pass --tier")
}
