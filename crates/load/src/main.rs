//! `flowgate-load`: the load benchmark of issue 8.
//!
//! It starts the real `flowgate serve` release binary as a child process, in front of
//!
//! * a trivially fast upstream (`flowgate-load upstream`, static JSON, to isolate the gateway's
//!   own cost), and
//! * the reference Management API (`flowgate studio-api`, the code `flowgate serve` embeds, run
//!   as its own process so that it can also be called directly),
//!
//! and drives real MCP `tools/call` / `tools/list` over Streamable HTTP from this process, with N
//! concurrent clients each holding its own session (stateful mode) or none (stateless mode). The
//! same upstream is called directly over REST in the same run: that is the floor every gateway
//! figure is compared with. Gateway and upstream are pinned to CPU 0 and this process to CPU 1
//! when the machine has two CPUs and `taskset` is installed.
//!
//! Everything is loopback only and bounded: each case runs for a fixed time and a fixed maximum
//! number of requests, and every child process is killed when the run ends.
//!
//! It is a workspace member of its own (`crates/load`), not part of the gateway's package: it
//! reaches the gateway only through the `flowgate` binary (`serve`, `studio-api`, `keys create
//! --json`).
//!
//! ```text
//! cargo build --release -p flowgate -p flowgate-load
//! target/release/flowgate-load                      # the whole run, about 70 s
//! target/release/flowgate-load --postgres           # the same with the gateways on PostgreSQL
//! target/release/flowgate-load --scaling            # sessions 1 → 256
//! target/release/flowgate-load --scaling sessions-10k  # RSS with 10,000 open sessions
//! target/release/flowgate-load --scaling keys       # 10 → 100,000 keys in the store
//! bench/catalog-scaling.sh                          # 51 → 500 tools (builds a gateway per size)
//! target/release/flowgate-load --help
//! ```

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use clap::{Parser, Subcommand, ValueEnum};
use serde_json::{Value, json};

/// The load benchmark of flowgate (issue 8). Loopback only, bounded in time.
///
/// Without options: the main table (fast and reference upstreams, stateful and stateless
/// gateway, read, write and tools/list). `--scaling` (or `--scaling sessions`): read calls at 1 to
/// 256 concurrent sessions. `--scaling keys`: read calls with 10 to 100,000 keys in the gateway's
/// store, every client using its own key. `--scaling catalog`: the reduced case set that
/// `bench/catalog-scaling.sh` runs against one gateway binary per catalog size (built from a
/// fixture manifest made by `flowgate-load fixture-manifest`); rows are labelled with the tool
/// count the gateway publishes.
#[derive(Parser, Debug)]
#[command(name = "flowgate-load", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Cmd>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Serve the trivially fast upstream (static JSON) and print its base URL.
    Upstream {
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
    },
    /// Write a fixture manifest folder with N tools, for the catalog scaling.
    ///
    /// A copy of the manifest's YAML files plus `bench_tools.yaml`, with read tools
    /// `bench_tool_0001`… modelled on `get_class` (same input and upstream call; scopes and tiers
    /// taken in turn from the real read tools), so that the catalog has exactly `--tools` tools.
    /// The result is validated as `build.rs` does. Build with it:
    /// `FLOWGATE_MANIFEST_DIR=<out> cargo build --release --bin flowgate`.
    FixtureManifest {
        /// Total number of tools, at least the real catalog's (at most 10,000).
        #[arg(long)]
        tools: usize,
        /// The manifest folder to copy.
        #[arg(long, default_value = "manifest")]
        manifest: PathBuf,
        /// The folder to write (created; must not exist or be empty).
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Parser, Debug, Clone)]
struct RunArgs {
    /// The `flowgate` binary to benchmark (default: the one next to this binary).
    #[arg(long)]
    flowgate: Option<PathBuf>,
    /// Measured seconds per case.
    #[arg(long, default_value_t = 2.5)]
    seconds: f64,
    /// Warm-up seconds per case (requests made, not measured).
    #[arg(long, default_value_t = 0.5)]
    warmup: f64,
    /// The high concurrency of the read, write and list cases.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Which upstreams to run against.
    #[arg(long, value_enum, default_value_t = Which::Both)]
    upstream: Which,
    /// Which gateway modes to run.
    #[arg(long, value_enum, default_value_t = Modes::Both)]
    mode: Modes,
    /// Do not pin processes to CPUs.
    #[arg(long)]
    no_pin: bool,
    /// Scaling runs instead of the main table, all against the fast upstream with read
    /// `get_class`. `sessions` (the default of a bare `--scaling`): 1 to 256 concurrent sessions,
    /// stateful, with the gateway's RSS at each step. `keys`: the gateway's store holds each of
    /// `--key-counts` keys in turn (made with `flowgate keys create --count … --json`), and every
    /// client uses its own key; concurrency 1 and `--concurrency`, the modes of `--mode`.
    /// `catalog`: read at 1 and `--concurrency` and tools/list at `--concurrency`, in the modes of
    /// `--mode`, rows labelled with the number of tools the gateway lists (see
    /// `bench/catalog-scaling.sh`). `sessions-10k`: 10,000 sessions opened and left open (RSS
    /// idle), then reads at `--concurrency` spread over all of them (RSS busy).
    #[arg(long, value_enum, num_args = 0..=1, default_missing_value = "sessions")]
    scaling: Option<Scaling>,
    /// `--scaling keys`: the store sizes, in increasing order (comma separated).
    #[arg(
        long,
        value_delimiter = ',',
        default_values_t = [10, 1_000, 10_000, 100_000]
    )]
    key_counts: Vec<usize>,
    /// Also write the results as JSON lines to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Run the gateways on PostgreSQL: start a server of Debian's `postgresql` package
    /// (`/usr/lib/postgresql/*/bin`, or `FLOWGATE_PG_BIN`) in the run's temporary directory, with
    /// its default durability, pinned with the gateway; a fresh database per gateway.
    #[arg(long, conflicts_with = "database_url")]
    postgres: bool,
    /// Run the gateways on this PostgreSQL database (`--database-url` of `flowgate`), shared by
    /// every gateway of the run. Its CPU time is not measured (that of `--postgres` is).
    #[arg(long)]
    database_url: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Which {
    Fast,
    Reference,
    Both,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scaling {
    Sessions,
    /// 10,000 open sessions, idle then busy.
    #[value(name = "sessions-10k")]
    Sessions10k,
    Keys,
    Catalog,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Modes {
    Stateful,
    Stateless,
    Both,
}

/// Hard bound on requests per case, whatever the time.
const MAX_REQUESTS_PER_CASE: u64 = 2_000_000;
/// Hard bound on one request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const FAST_STUDIO: &str = "std_bench";
const REFERENCE_STUDIO: &str = "std_lotus";
const PROTOCOL: &str = "2025-11-25";
/// Bound on `--key-counts`.
const MAX_KEYS: usize = 1_000_000;
/// Bound on the pages of one tools/list walk.
const MAX_LIST_PAGES: usize = 1_000;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Some(Cmd::Upstream { listen }) => {
            return tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?
                .block_on(fast_upstream(listen));
        }
        Some(Cmd::FixtureManifest {
            tools,
            manifest,
            out,
        }) => return fixture_manifest(tools, &manifest, &out),
        None => {}
    }
    let pin = !cli.run.no_pin && cpus() >= 2 && which("taskset").is_some();
    if pin {
        // Before any other thread exists, so every thread of the runtime inherits it.
        let ok = Command::new("taskset")
            .args(["-a", "-p", "-c", "1", &std::process::id().to_string()])
            .stdout(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !ok {
            bail!("taskset could not pin the load generator to CPU 1");
        }
    }
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(bench(cli.run, pin))
}

fn cpus() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
    })
}

// === the fast upstream ===

async fn fast_upstream(listen: SocketAddr) -> anyhow::Result<()> {
    use axum::Router;
    use axum::routing::{get, post};
    if !listen.ip().is_loopback() {
        bail!("the fast upstream listens on loopback only");
    }
    const STUDIO: &str = r#"{"id":"std_bench","name":"Bench","tier":"pro"}"#;
    const CLASS: &str = r#"{"id":"cls_vinyasa_tue","name":"Tuesday Evening Vinyasa","description":"Flowing vinyasa for all levels.","program_id":"prg_vinyasa","instructor_id":"ins_sam","location_id":"loc_downtown","room_id":"rm_sun","duration_minutes":60,"capacity":20,"price_cents":2500,"currency":"USD","level":"all_levels","status":"active","created_at":"2026-01-01T00:00:00Z","upcoming":[]}"#;
    fn json(body: &'static str) -> ([(&'static str, &'static str); 1], &'static str) {
        ([("content-type", "application/json")], body)
    }
    let app = Router::new()
        .route("/v1/studio", get(|| async { json(STUDIO) }))
        .route("/v1/healthz", get(|| async { json(r#"{"ok":true}"#) }))
        .route("/v1/classes/{id}", get(|| async { json(CLASS) }))
        .route(
            "/v1/classes",
            post(|| async { (axum::http::StatusCode::CREATED, json(CLASS)) }),
        );
    let listener = tokio::net::TcpListener::bind(listen).await?;
    println!(
        "flowgate-load upstream at http://{}/v1",
        listener.local_addr()?
    );
    axum::serve(listener, app).await?;
    Ok(())
}

// === child processes ===

/// A child process killed (by its own pid) when dropped.
struct Proc {
    child: Child,
}

impl Proc {
    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn command(program: &Path, pin: bool) -> Command {
    if pin {
        let mut c = Command::new("taskset");
        c.arg("-c").arg("0").arg(program);
        c
    } else {
        Command::new(program)
    }
}

/// Spawns, then reads stdout lines until `find` returns something (at most 30 s).
fn spawn_until<T: Send + 'static>(
    name: &'static str,
    mut cmd: Command,
    find: impl FnMut(&str) -> Option<T> + Send + 'static,
) -> anyhow::Result<(Proc, T)> {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .stdin(Stdio::null())
        .spawn()
        .with_context(|| format!("cannot start {name}"))?;
    let stdout = child.stdout.take().context("no stdout")?;
    let proc = Proc { child };
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut find = find;
        let mut found = false;
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if !found && let Some(v) = find(&line) {
                found = true;
                let _ = tx.send(v);
            }
            // Keep draining so the child never blocks on a full pipe.
        }
    });
    let v = rx
        .recv_timeout(Duration::from_secs(30))
        .with_context(|| format!("{name} did not start within 30 s"))?;
    Ok((proc, v))
}

/// CPU seconds (user + system, every thread) a process has used, from `/proc/PID/stat`.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the `(comm)`, which may contain spaces: state is field 3, utime 14, stime 15.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    (ticks(11) + ticks(12)) as f64 / *CLOCK_TICKS as f64
}

/// `getconf CLK_TCK` (the unit of `/proc/PID/stat` times), 100 if unknown.
static CLOCK_TICKS: std::sync::LazyLock<u64> = std::sync::LazyLock::new(|| {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .filter(|&t| t > 0)
        .unwrap_or(100)
});

fn rss_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |k: &str| {
        status
            .lines()
            .find(|l| l.starts_with(k))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// An upstream under test: its base URL (with `/v1`), service token and studio.
struct Upstream {
    label: &'static str,
    base: String,
    token: String,
    studio: &'static str,
    /// The class the read tool fetches.
    class: &'static str,
    proc: Proc,
}

fn start_fast(pin: bool) -> anyhow::Result<Upstream> {
    let me = std::env::current_exe()?;
    let mut cmd = command(&me, pin);
    cmd.args(["upstream", "--listen", "127.0.0.1:0"]);
    let (proc, base) = spawn_until("the fast upstream", cmd, |l| {
        l.strip_prefix("flowgate-load upstream at ")
            .map(str::to_string)
    })?;
    Ok(Upstream {
        label: "fast",
        base,
        token: "bench-token".into(),
        studio: FAST_STUDIO,
        class: "cls_vinyasa_tue",
        proc,
    })
}

fn start_reference(flowgate: &Path, dir: &Path, pin: bool) -> anyhow::Result<Upstream> {
    let data = dir.join("reference");
    std::fs::create_dir_all(&data)?;
    let mut cmd = command(flowgate, pin);
    cmd.arg("--data-dir")
        .arg(&data)
        .args(["studio-api", "--listen", "127.0.0.1:0"])
        .env("FLOWGATE_LOG", "warn");
    let mut base = None;
    let (proc, (base, token)) = spawn_until("flowgate studio-api", cmd, move |l| {
        if let Some(b) = l.strip_prefix("The reference Management API is serving at ") {
            base = Some(b.trim().to_string());
        }
        let t = l.strip_prefix("Service credential: ")?;
        Some((base.clone()?, t.trim().to_string()))
    })?;
    Ok(Upstream {
        label: "reference",
        base,
        token,
        studio: REFERENCE_STUDIO,
        class: "cls_lotus_vinyasa",
        proc,
    })
}

// === the gateway's store ===

/// Where the gateways under test keep their state: SQLite in each one's data directory (the
/// default), a PostgreSQL server this process starts (`--postgres`), or one given by URL
/// (`--database-url`, shared by every gateway of the run).
struct Db {
    server: Option<PgServer>,
    url: Option<String>,
}

impl Db {
    fn sqlite() -> Self {
        Db {
            server: None,
            url: None,
        }
    }

    fn label(&self) -> &'static str {
        if self.server.is_some() || self.url.is_some() {
            "postgres"
        } else {
            "sqlite"
        }
    }

    /// The `--database-url` of a new gateway: a fresh database `name` on our own server, the
    /// given URL, or none (SQLite in the gateway's data directory).
    fn fresh(&self, name: &str) -> anyhow::Result<Option<String>> {
        match (&self.server, &self.url) {
            (Some(pg), _) => pg.create_database(name).map(Some),
            (None, url) => Ok(url.clone()),
        }
    }
}

/// A PostgreSQL server for the run: Debian's package (`/usr/lib/postgresql/*/bin`, or
/// `FLOWGATE_PG_BIN`), `initdb` into a temporary directory (as the `postgres` user when run as
/// root, as the tests do), listening on a loopback port, with PostgreSQL's default durability
/// (`fsync` and `synchronous_commit` on), pinned with the gateway. Stopped (`pg_ctl stop`) and
/// deleted when dropped.
struct PgServer {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    root: bool,
    child: Child,
}

impl PgServer {
    fn start(dir: &Path, pin: bool) -> anyhow::Result<Self> {
        let bin = match std::env::var_os("FLOWGATE_PG_BIN") {
            Some(b) => PathBuf::from(b),
            None => {
                let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
                    .context("PostgreSQL is not installed (/usr/lib/postgresql)")?
                    .filter_map(|e| {
                        let e = e.ok()?;
                        let v = e.file_name().to_str()?.parse().ok()?;
                        let bin = e.path().join("bin");
                        bin.join("initdb").exists().then_some((v, bin))
                    })
                    .collect();
                found.sort();
                found
                    .pop()
                    .context("no /usr/lib/postgresql/*/bin/initdb")?
                    .1
            }
        };
        let root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.trim_ascii() == b"0");
        let dir = dir.join("postgres");
        let data = dir.join("data");
        std::fs::create_dir_all(&data)?;
        if root {
            for d in [&dir, &data] {
                let ok = Command::new("chown")
                    .arg("postgres:postgres")
                    .arg(d)
                    .status()?
                    .success();
                if !ok {
                    bail!("cannot chown {} to postgres", d.display());
                }
            }
        }
        let as_owner = |program: &Path| {
            if root {
                let mut c = Command::new("runuser");
                c.args(["-u", "postgres", "--"]).arg(program);
                c
            } else {
                Command::new(program)
            }
        };
        let initdb = as_owner(&bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args(["-U", "flowgate", "-A", "trust", "-E", "UTF8", "--locale=C"])
            .stdout(Stdio::null())
            .output()
            .context("cannot run initdb")?;
        if !initdb.status.success() {
            bail!("initdb failed: {}", String::from_utf8_lossy(&initdb.stderr));
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let mut cmd = if pin {
            let mut c = Command::new("taskset");
            c.args(["-c", "0"]);
            c
        } else {
            Command::new("env")
        };
        if root {
            cmd.args(["runuser", "-u", "postgres", "--"]);
        }
        cmd.arg(bin.join("postgres"))
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string(), "-k"])
            .arg(&dir)
            .args([
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "max_connections=300",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = cmd.spawn().context("cannot start postgres")?;
        let server = PgServer {
            bin,
            dir,
            port,
            root,
            child,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = Command::new(server.bin.join("pg_isready"))
                .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-q"])
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                return Ok(server);
            }
            if Instant::now() > deadline {
                bail!("PostgreSQL did not start within 30 s");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn create_database(&self, name: &str) -> anyhow::Result<String> {
        let ok = Command::new(self.bin.join("createdb"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "flowgate",
            ])
            .arg(name)
            .status()
            .context("cannot run createdb")?
            .success();
        if !ok {
            bail!("createdb {name} failed");
        }
        Ok(format!(
            "postgres://flowgate@127.0.0.1:{}/{name}",
            self.port
        ))
    }
}

/// The processes of the PostgreSQL server whose data directory is `data`: the postmaster (its
/// pid file's first line) and its children (the backends).
fn pg_pids(data: &Path) -> Vec<u32> {
    let Some(master) = std::fs::read_to_string(data.join("postmaster.pid"))
        .ok()
        .and_then(|t| t.lines().next().and_then(|l| l.trim().parse::<u32>().ok()))
    else {
        return Vec::new();
    };
    let mut pids = vec![master];
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for e in entries.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, r)| r.split_whitespace().nth(1))
                .and_then(|p| p.parse::<u32>().ok());
            if ppid == Some(master) {
                pids.push(pid);
            }
        }
    }
    pids
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let mut stop = if self.root {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"])
                .arg(self.bin.join("pg_ctl"));
            c
        } else {
            Command::new(self.bin.join("pg_ctl"))
        };
        let _ = stop
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["stop", "-m", "fast"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `flowgate` run on the data directory `data` (and the database `database`, if any).
fn flowgate_cmd(flowgate: &Path, data: &Path, database: Option<&str>) -> Command {
    let mut cmd = Command::new(flowgate);
    cmd.arg("--data-dir").arg(data);
    if let Some(url) = database {
        cmd.arg("--database-url").arg(url);
    }
    cmd
}

/// The most keys `flowgate keys create --count` makes at once.
const KEYS_AT_ONCE: usize = 10_000;

/// Creates `n` keys with `flowgate keys create --count … --json` (in batches of
/// [`KEYS_AT_ONCE`]) and returns their secrets.
fn create_keys(
    flowgate: &Path,
    data: &Path,
    database: Option<&str>,
    studio: &str,
    n: usize,
) -> anyhow::Result<Vec<String>> {
    let mut secrets = Vec::with_capacity(n);
    while secrets.len() < n {
        let batch = (n - secrets.len()).min(KEYS_AT_ONCE);
        let out = flowgate_cmd(flowgate, data, database)
            .args([
                "keys", "create", "--studio", studio, "--scopes", "all", "--json",
            ])
            .args(["--name", &format!("bench-{}", secrets.len())])
            .args(["--count", &batch.to_string()])
            .stderr(Stdio::piped())
            .output()
            .context("cannot run flowgate keys create")?;
        if !out.status.success() {
            bail!(
                "flowgate keys create failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let before = secrets.len();
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let v: Value = serde_json::from_str(line)
                .with_context(|| format!("flowgate keys create --json printed {line:?}"))?;
            let secret = v["secret"]
                .as_str()
                .context("flowgate keys create --json printed a line without a secret")?;
            secrets.push(secret.to_string());
        }
        if secrets.len() - before != batch {
            bail!(
                "flowgate keys create --count {batch} printed {} secrets",
                secrets.len() - before
            );
        }
    }
    Ok(secrets)
}

struct Gateway {
    url: String,
    key: String,
    stateful: bool,
    proc: Proc,
}

impl Gateway {
    fn path(&self) -> String {
        format!(
            "gateway {}",
            if self.stateful {
                "stateful"
            } else {
                "stateless"
            }
        )
    }

    /// A target whose clients take their keys in turn from `keys` (default: the gateway's key).
    fn target(&self, upstream: &Upstream, keys: Option<Arc<Vec<String>>>) -> Target {
        Target::Mcp {
            url: self.url.clone(),
            keys: keys.unwrap_or_else(|| Arc::new(vec![self.key.clone()])),
            stateful: self.stateful,
            class: upstream.class,
        }
    }
}

/// A fresh data directory with one key made by `flowgate keys create`, and a gateway on it.
fn start_gateway(
    flowgate: &Path,
    dir: &Path,
    upstream: &Upstream,
    stateful: bool,
    pin: bool,
    db: &Db,
) -> anyhow::Result<Gateway> {
    let data = dir.join(format!(
        "gateway-{}-{}",
        upstream.label,
        if stateful { "stateful" } else { "stateless" }
    ));
    std::fs::create_dir_all(&data)?;
    let database = db.fresh(&format!(
        "gw_{}_{}",
        upstream.label,
        if stateful { "stateful" } else { "stateless" }
    ))?;
    let key = create_keys(flowgate, &data, database.as_deref(), upstream.studio, 1)?
        .pop()
        .context("no key made")?;
    serve_gateway(
        flowgate,
        &data,
        database.as_deref(),
        key,
        upstream,
        stateful,
        pin,
    )
}

/// `flowgate serve` on an existing data directory; `key` is the one its clients use by default.
fn serve_gateway(
    flowgate: &Path,
    data: &Path,
    database: Option<&str>,
    key: String,
    upstream: &Upstream,
    stateful: bool,
    pin: bool,
) -> anyhow::Result<Gateway> {
    let mut cmd = command(flowgate, pin);
    cmd.arg("--data-dir").arg(data);
    if let Some(url) = database {
        cmd.arg("--database-url").arg(url);
    }
    cmd.args([
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--upstream",
        &upstream.base,
    ])
    .env("FLOWGATE_UPSTREAM_TOKEN", &upstream.token)
    .env(
        "FLOWGATE_RATE_LIMIT_PER_MINUTE",
        "free=100000000,pro=100000000",
    );
    if !stateful {
        cmd.arg("--stateless");
    }
    let (proc, url) = spawn_until("flowgate serve", cmd, |l| {
        l.strip_prefix("flowgate is serving MCP at ")
            .map(|u| u.trim().to_string())
    })?;
    Ok(Gateway {
        url,
        key,
        stateful,
        proc,
    })
}

// === the load ===

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Read,
    Write,
    List,
}

impl Op {
    fn label(self) -> &'static str {
        match self {
            Op::Read => "read get_class",
            Op::Write => "write create_class+idem",
            Op::List => "tools/list",
        }
    }
}

#[derive(Clone)]
enum Target {
    Direct {
        base: String,
        token: String,
        studio: &'static str,
        class: &'static str,
    },
    Mcp {
        url: String,
        /// Client `i` uses `keys[i % keys.len()]`.
        keys: Arc<Vec<String>>,
        stateful: bool,
        class: &'static str,
    },
    /// Sessions already open on a stateful gateway, taken in turn by every call of every
    /// client (`--scaling sessions-10k`).
    Sessions {
        url: String,
        key: String,
        sessions: Arc<Vec<String>>,
        class: &'static str,
    },
}

/// The next session a [`Target::Sessions`] call uses.
static NEXT_SESSION: AtomicU64 = AtomicU64::new(0);

static SEQ: AtomicU64 = AtomicU64::new(1);

fn unique() -> String {
    format!(
        "{:08x}-bench-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

fn class_args() -> serde_json::Map<String, Value> {
    let Value::Object(m) = json!({
        "name": "Bench Vinyasa",
        "duration_minutes": 60,
        "capacity": 20,
        "price_cents": 2500,
    }) else {
        unreachable!()
    };
    m
}

/// One client: its key and a session (stateful MCP), or nothing to set up.
struct Worker {
    http: reqwest::Client,
    target: Target,
    /// The bearer key (MCP targets).
    key: String,
    session: Option<String>,
}

impl Worker {
    /// Client number `index` of a case.
    async fn new(http: reqwest::Client, target: Target, index: usize) -> anyhow::Result<Self> {
        let key = match &target {
            Target::Mcp { keys, .. } => keys
                .get(index % keys.len().max(1))
                .cloned()
                .context("no key")?,
            Target::Sessions { key, .. } => key.clone(),
            Target::Direct { .. } => String::new(),
        };
        let mut w = Worker {
            http,
            target,
            key,
            session: None,
        };
        let key = &w.key;
        if let Target::Mcp {
            url,
            stateful: true,
            ..
        } = &w.target
        {
            let init = json!({
                "jsonrpc": "2.0", "id": 0, "method": "initialize",
                "params": {
                    "protocolVersion": PROTOCOL,
                    "capabilities": {},
                    "clientInfo": {"name": "flowgate-load", "version": env!("CARGO_PKG_VERSION")}
                }
            });
            let r = w
                .http
                .post(url)
                .bearer_auth(key)
                .header("Accept", "application/json, text/event-stream")
                .json(&init)
                .send()
                .await?;
            let session = r
                .headers()
                .get("mcp-session-id")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
                .context("initialize returned no Mcp-Session-Id")?;
            let body = r.text().await?;
            rpc_result(&body).context("initialize failed")?;
            let r = w
                .http
                .post(url)
                .bearer_auth(key)
                .header("Accept", "application/json, text/event-stream")
                .header("Mcp-Session-Id", &session)
                .header("MCP-Protocol-Version", PROTOCOL)
                .json(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
                .send()
                .await?;
            if !r.status().is_success() {
                bail!("notifications/initialized: HTTP {}", r.status());
            }
            w.session = Some(session);
        }
        Ok(w)
    }

    async fn close(&self) {
        if let (Some(s), Target::Mcp { url, .. }) = (&self.session, &self.target) {
            let _ = self
                .http
                .delete(url)
                .bearer_auth(&self.key)
                .header("Mcp-Session-Id", s)
                .header("MCP-Protocol-Version", PROTOCOL)
                .send()
                .await;
        }
    }

    async fn once(&self, op: Op, id: u64) -> anyhow::Result<()> {
        match &self.target {
            Target::Direct {
                base,
                token,
                studio,
                class,
            } => {
                let rid = unique();
                let b = match op {
                    Op::Read => self.http.get(format!("{base}/classes/{class}")),
                    Op::Write => self
                        .http
                        .post(format!("{base}/classes"))
                        .header("Idempotency-Key", unique())
                        .json(&class_args()),
                    Op::List => bail!("tools/list has no REST equivalent"),
                };
                let r = b
                    .bearer_auth(token)
                    .header("X-Flow-Studio", *studio)
                    .header("X-Flow-Actor", "key:bench")
                    .header("X-Request-Id", rid)
                    .send()
                    .await?;
                let status = r.status();
                let body = r.bytes().await?;
                if !status.is_success() {
                    bail!("HTTP {status}: {}", String::from_utf8_lossy(&body));
                }
                let v: Value = serde_json::from_slice(&body)?;
                if !v.is_object() {
                    bail!("not a JSON object");
                }
                Ok(())
            }
            Target::Mcp { class, .. } | Target::Sessions { class, .. } => {
                let (method, params) = match op {
                    Op::Read => (
                        "tools/call",
                        json!({"name": "get_class", "arguments": {"class_id": class}}),
                    ),
                    Op::Write => {
                        let mut args = class_args();
                        args.insert("idempotency_key".into(), Value::String(unique()));
                        (
                            "tools/call",
                            json!({"name": "create_class", "arguments": args}),
                        )
                    }
                    Op::List => ("tools/list", json!({})),
                };
                let body = self.post(id, method, params).await?;
                // Checked without building the answer's JSON tree: a tools/list page is tens
                // of KB, and this single-threaded client must not be what limits the case.
                let checked = checked_answer(&body)?;
                match op {
                    Op::List if checked.tools == 0 => bail!("tools/list returned no tools"),
                    Op::Read | Op::Write if checked.is_error => {
                        bail!("the tool failed: {body:.300}")
                    }
                    _ => {}
                }
                Ok(())
            }
        }
    }

    /// One JSON-RPC request to an MCP target; its `result`.
    async fn rpc(&self, id: u64, method: &str, params: Value) -> anyhow::Result<Value> {
        let body = self.post(id, method, params).await?;
        rpc_result(&body)
    }

    /// One JSON-RPC request to an MCP target; the answer's body (HTTP 2xx).
    async fn post(&self, id: u64, method: &str, params: Value) -> anyhow::Result<String> {
        let (url, session) = match &self.target {
            Target::Mcp { url, .. } => (url, self.session.as_deref()),
            Target::Sessions { url, sessions, .. } => {
                let i = NEXT_SESSION.fetch_add(1, Ordering::Relaxed) as usize;
                (
                    url,
                    sessions.get(i % sessions.len().max(1)).map(String::as_str),
                )
            }
            Target::Direct { .. } => bail!("not an MCP target"),
        };
        let mut b = self
            .http
            .post(url)
            .bearer_auth(&self.key)
            .header("Accept", "application/json, text/event-stream")
            .header("MCP-Protocol-Version", PROTOCOL);
        if let Some(s) = session {
            b = b.header("Mcp-Session-Id", s);
        }
        let r = b
            .json(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .send()
            .await?;
        let status = r.status();
        let body = r.text().await?;
        if !status.is_success() {
            bail!("HTTP {status}: {body}");
        }
        Ok(body)
    }

    /// How many tools the gateway lists to this client, following `nextCursor`.
    async fn count_tools(&self) -> anyhow::Result<usize> {
        let mut count = 0;
        let mut cursor: Option<String> = None;
        for page in 1..=MAX_LIST_PAGES {
            let params = match &cursor {
                Some(c) => json!({ "cursor": c }),
                None => json!({}),
            };
            let result = self.rpc(page as u64, "tools/list", params).await?;
            count += result["tools"].as_array().map_or(0, Vec::len);
            match result["nextCursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => return Ok(count),
            }
        }
        bail!("tools/list had more than {MAX_LIST_PAGES} pages")
    }
}

/// What a case checks of an answer: a result (not an error), its tool count, its `isError`.
struct Checked {
    tools: usize,
    is_error: bool,
}

/// [`Checked`] of a JSON-RPC response sent as JSON or as server-sent events, read without
/// building its JSON tree.
fn checked_answer(body: &str) -> anyhow::Result<Checked> {
    #[derive(serde::Deserialize)]
    struct Answer {
        result: Option<Outcome>,
        error: Option<serde::de::IgnoredAny>,
    }
    #[derive(serde::Deserialize)]
    struct Outcome {
        #[serde(default)]
        tools: Vec<serde::de::IgnoredAny>,
        #[serde(default, rename = "isError")]
        is_error: Option<bool>,
    }
    let trimmed = body.trim_start();
    let message = if trimmed.starts_with('{') {
        trimmed
    } else {
        body.lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .map(str::trim)
            .rfind(|d| !d.is_empty())
            .with_context(|| format!("no JSON-RPC response in the event stream: {body:.200}"))?
    };
    let answer: Answer = serde_json::from_str(message)?;
    match (answer.result, answer.error) {
        (Some(r), None) => Ok(Checked {
            tools: r.tools.len(),
            is_error: r.is_error == Some(true),
        }),
        _ => bail!("JSON-RPC error: {message:.300}"),
    }
}

/// The `result` of a JSON-RPC response sent as JSON or as server-sent events.
fn rpc_result(body: &str) -> anyhow::Result<Value> {
    let trimmed = body.trim_start();
    let message: Value = if trimmed.starts_with('{') {
        serde_json::from_str(trimmed)?
    } else {
        body.lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .filter_map(|d| serde_json::from_str::<Value>(d).ok())
            .find(|v| v.get("result").is_some() || v.get("error").is_some())
            .with_context(|| format!("no JSON-RPC response in the event stream: {body:.200}"))?
    };
    if let Some(e) = message.get("error") {
        bail!("JSON-RPC error: {e}");
    }
    Ok(message["result"].clone())
}

#[derive(Debug, Clone, serde::Serialize)]
struct Measured {
    /// `--scaling keys`: keys in the gateway's store.
    #[serde(skip_serializing_if = "Option::is_none")]
    keys: Option<usize>,
    /// `--scaling catalog`: tools the gateway lists.
    #[serde(skip_serializing_if = "Option::is_none")]
    tools: Option<usize>,
    /// Where the gateway keeps its state: `sqlite` or `postgres`.
    store: &'static str,
    upstream: &'static str,
    path: String,
    op: &'static str,
    concurrency: usize,
    requests: u64,
    errors: u64,
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    /// Gateway VmRSS and VmHWM after the case, KiB (0 for direct calls).
    rss_kib: u64,
    /// Gateway CPU time (user + system, all threads) during the measured window, per measured
    /// call, in µs: the gateway's own cost, whatever else the machine is doing (0 for direct calls).
    cpu_us_per_call: f64,
    /// The upstream's CPU time during the measured window, per measured call, in µs: what the
    /// upstream itself spends on one call (the gateway's target is at most 4 times this).
    upstream_cpu_us_per_call: f64,
    /// PostgreSQL's CPU time (postmaster and backends) per measured call, in µs, when the run
    /// started its own server (0 otherwise).
    db_cpu_us_per_call: f64,
    hwm_kib: u64,
    first_error: Option<String>,
}

/// The processes whose CPU time a case reads.
#[derive(Debug, Clone, Default)]
struct Watch {
    /// The gateway (none for direct calls).
    gateway: Option<u32>,
    upstream: Option<u32>,
    /// PostgreSQL's data directory, when the run started its own server: its processes
    /// (postmaster and backends) are read at the start and at the end of the window.
    db: Option<PathBuf>,
    store: &'static str,
}

async fn run_case(
    args: &RunArgs,
    upstream: &'static str,
    path: String,
    target: Target,
    op: Op,
    concurrency: usize,
    watch: &Watch,
) -> anyhow::Result<Measured> {
    let pid = watch.gateway;
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(REQUEST_TIMEOUT)
        .pool_max_idle_per_host(concurrency.max(1))
        .build()?;
    // Sessions first (not measured).
    let mut workers = Vec::with_capacity(concurrency);
    for i in 0..concurrency {
        workers.push(Arc::new(
            Worker::new(http.clone(), target.clone(), i).await?,
        ));
    }
    let start = Instant::now();
    let measure_from = start + Duration::from_secs_f64(args.warmup);
    let end = measure_from + Duration::from_secs_f64(args.seconds);
    let budget = Arc::new(AtomicU64::new(MAX_REQUESTS_PER_CASE));
    // CPU seconds of the gateway, the upstream and the database during the measured window.
    let cpu = {
        let (gateway, upstream, db) = (watch.gateway, watch.upstream, watch.db.clone());
        tokio::spawn(async move {
            let db_cpu = || -> Vec<(u32, f64)> {
                db.as_deref()
                    .map(pg_pids)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|p| (p, cpu_seconds(p)))
                    .collect()
            };
            tokio::time::sleep_until(measure_from.into()).await;
            let from = (
                gateway.map_or(0.0, cpu_seconds),
                upstream.map_or(0.0, cpu_seconds),
                db_cpu(),
            );
            tokio::time::sleep_until(end.into()).await;
            let to = (
                gateway.map_or(0.0, cpu_seconds),
                upstream.map_or(0.0, cpu_seconds),
                db_cpu(),
            );
            // A backend started during the window counts from zero.
            let db =
                to.2.iter()
                    .map(|(p, t)| t - from.2.iter().find(|(q, _)| q == p).map_or(0.0, |f| f.1))
                    .sum::<f64>();
            (to.0 - from.0, to.1 - from.1, db)
        })
    };
    let mut tasks = Vec::with_capacity(concurrency);
    for w in workers {
        let budget = budget.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat: Vec<u32> = Vec::with_capacity(16_384);
            let mut errors = 0u64;
            let mut first_error = None;
            let mut id = 1u64;
            loop {
                let now = Instant::now();
                if now >= end || budget.fetch_sub(1, Ordering::Relaxed) == 0 {
                    break;
                }
                let t0 = Instant::now();
                let r = w.once(op, id).await;
                let t1 = Instant::now();
                id += 1;
                match r {
                    Ok(()) if t0 >= measure_from && t1 <= end => {
                        lat.push(u32::try_from((t1 - t0).as_micros()).unwrap_or(u32::MAX));
                    }
                    Ok(()) => {}
                    Err(e) => {
                        errors += 1;
                        if first_error.is_none() {
                            first_error = Some(format!("{e:#}"));
                        }
                        // Do not spin on a broken target.
                        if errors > 100 {
                            break;
                        }
                    }
                }
            }
            (w, lat, errors, first_error)
        }));
    }
    let mut lat = Vec::new();
    let mut errors = 0;
    let mut first_error = None;
    let mut done = Vec::with_capacity(concurrency);
    for t in tasks {
        let (w, l, e, f) = t.await?;
        done.push(w);
        lat.extend(l);
        errors += e;
        first_error = first_error.or(f);
    }
    lat.sort_unstable();
    let q = |p: f64| -> f64 {
        if lat.is_empty() {
            return f64::NAN;
        }
        let i = ((lat.len() as f64 * p).ceil() as usize).clamp(1, lat.len()) - 1;
        f64::from(lat[i]) / 1000.0
    };
    let (rss, hwm) = pid.map(rss_kib).unwrap_or((0, 0));
    let (cpu, upstream_cpu, db_cpu) = cpu.await?;
    let per_call = |seconds: f64| {
        if lat.is_empty() {
            0.0
        } else {
            seconds * 1e6 / lat.len() as f64
        }
    };
    // End the sessions (after reading the RSS they cost), so cases do not add up.
    for w in done {
        w.close().await;
    }
    Ok(Measured {
        keys: None,
        tools: None,
        store: watch.store,
        upstream,
        path,
        op: op.label(),
        concurrency,
        requests: lat.len() as u64,
        errors,
        rps: lat.len() as f64 / args.seconds,
        p50_ms: q(0.50),
        p99_ms: q(0.99),
        rss_kib: rss,
        hwm_kib: hwm,
        cpu_us_per_call: per_call(cpu),
        upstream_cpu_us_per_call: per_call(upstream_cpu),
        db_cpu_us_per_call: per_call(db_cpu),
        first_error,
    })
}

fn print_row(m: &Measured, floor: Option<&Measured>, scale: Option<&str>) {
    let ratio = floor
        .filter(|f| f.rps > 0.0)
        .map(|f| format!("{:>5.1}%", 100.0 * m.rps / f.rps))
        .unwrap_or_else(|| "     -".into());
    let added = floor
        .map(|f| format!("{:>+7.3}", m.p50_ms - f.p50_ms))
        .unwrap_or_else(|| "      -".into());
    let rss = if m.rss_kib > 0 {
        format!("{:>6.1}", m.rss_kib as f64 / 1024.0)
    } else {
        "     -".into()
    };
    let us = |v: f64| {
        if v > 0.0 {
            format!("{v:>6.0}")
        } else {
            "     -".into()
        }
    };
    let cpu = us(m.cpu_us_per_call);
    let up = us(m.upstream_cpu_us_per_call);
    let db = us(m.db_cpu_us_per_call);
    let first = match (scale, m.keys.or(m.tools)) {
        (None, _) => String::new(),
        (Some(_), Some(n)) => format!("| {n:>7} "),
        (Some(_), None) => format!("| {:>7} ", "-"),
    };
    println!(
        "{first}| {:<9} | {:<17} | {:<23} | {:>3} | {:>9.0} | {:>7.3} | {:>7.3} | {} | {} | {} | {} | {} | {} |{}",
        m.upstream,
        m.path,
        m.op,
        m.concurrency,
        m.rps,
        m.p50_ms,
        m.p99_ms,
        added,
        rss,
        cpu,
        up,
        db,
        ratio,
        match (&m.first_error, m.errors) {
            (Some(e), n) => format!(" {n} errors, first: {e:.160}"),
            (None, _) => String::new(),
        }
    );
}

/// The table header; `scale` names an extra first column (`keys`, `tools`).
fn header(scale: Option<&str>) {
    let (name, rule) = match scale {
        Some(s) => (format!("| {s:>7} "), "|---------".to_string()),
        None => (String::new(), String::new()),
    };
    println!(
        "{name}| upstream  | path              | case                    |   c |     req/s | p50 ms  | p99 ms  | +p50 ms | RSS MB | CPU µs |  up µs |  db µs | vs direct |"
    );
    println!(
        "{rule}|-----------|-------------------|-------------------------|-----|-----------|---------|---------|---------|--------|--------|--------|--------|-----------|"
    );
}

struct Out {
    rows: Vec<Measured>,
    json: Option<std::fs::File>,
    /// The extra first column of the table, if any.
    scale: Option<&'static str>,
}

impl Out {
    fn push(&mut self, m: Measured, floor: Option<&Measured>) -> Measured {
        print_row(&m, floor, self.scale);
        if let Some(f) = &mut self.json {
            use std::io::Write as _;
            let _ = writeln!(f, "{}", serde_json::to_string(&m).unwrap_or_default());
        }
        self.rows.push(m.clone());
        m
    }
}

/// What every part of one run shares.
struct Run {
    args: RunArgs,
    flowgate: PathBuf,
    /// The run's temporary directory (removed at the end).
    dir: PathBuf,
    pin: bool,
    db: Db,
}

impl Run {
    /// A fresh data directory (and database) with one key, and a gateway on it.
    fn gateway(&self, upstream: &Upstream, stateful: bool) -> anyhow::Result<Gateway> {
        start_gateway(
            &self.flowgate,
            &self.dir,
            upstream,
            stateful,
            self.pin,
            &self.db,
        )
    }

    /// What a case against `upstream` watches, through `gw` (none: direct calls).
    fn watch(&self, upstream: &Upstream, gw: Option<&Gateway>) -> Watch {
        Watch {
            gateway: gw.map(|g| g.proc.pid()),
            upstream: Some(upstream.proc.pid()),
            db: self
                .db
                .server
                .as_ref()
                .filter(|_| gw.is_some())
                .map(|s| s.dir.join("data")),
            store: self.db.label(),
        }
    }
}

async fn bench(args: RunArgs, pin: bool) -> anyhow::Result<()> {
    let started = Instant::now();
    let flowgate = match &args.flowgate {
        Some(p) => p.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("no parent directory")?
            .join("flowgate"),
    };
    if !flowgate.is_file() {
        bail!(
            "{} not found: build it with `cargo build --release -p flowgate -p flowgate-load`",
            flowgate.display()
        );
    }
    let dir = std::env::temp_dir().join(format!("flowgate-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    struct RmDir(PathBuf);
    impl Drop for RmDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let _rm = RmDir(dir.clone());

    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    println!(
        "flowgate-load: {} CPUs ({cpu}); gateway {}",
        cpus_total(),
        flowgate.display()
    );
    if pin {
        println!(
            "pinned: gateway, upstream (and PostgreSQL) on CPU 0, load generator on CPU 1 (taskset)"
        );
    } else {
        println!("not pinned: fewer than two CPUs, no taskset, or --no-pin");
    }
    let db = if args.postgres {
        let server = PgServer::start(&dir, pin)?;
        println!(
            "store: PostgreSQL started by flowgate-load ({}, port {}, default durability: fsync and synchronous_commit on), a fresh database per gateway",
            server.bin.display(),
            server.port
        );
        Db {
            server: Some(server),
            url: None,
        }
    } else if let Some(url) = &args.database_url {
        println!("store: PostgreSQL at --database-url (shared by every gateway of the run)");
        Db {
            server: None,
            url: Some(url.clone()),
        }
    } else {
        println!("store: SQLite in each gateway's data directory");
        Db::sqlite()
    };
    println!(
        "{} s measured per case after {} s warm-up; loopback only; rate limits raised to 100,000,000/min\n",
        args.seconds, args.warmup
    );
    let mut out = Out {
        rows: Vec::new(),
        json: match &args.json {
            Some(p) => Some(std::fs::File::create(p)?),
            None => None,
        },
        scale: match args.scaling {
            Some(Scaling::Keys) => Some("keys"),
            Some(Scaling::Catalog) => Some("tools"),
            _ => None,
        },
    };
    let run = Run {
        args,
        flowgate,
        dir,
        pin,
        db,
    };
    if let Some(kind) = run.args.scaling {
        match kind {
            Scaling::Sessions => scaling(&run, &mut out).await?,
            Scaling::Keys => scaling_keys(&run, &mut out).await?,
            Scaling::Catalog => scaling_catalog(&run, &mut out).await?,
            Scaling::Sessions10k => scaling_open_sessions(&run, &mut out).await?,
        }
    } else {
        header(None);
        for which in [Which::Fast, Which::Reference] {
            if run.args.upstream != Which::Both && run.args.upstream != which {
                continue;
            }
            let upstream = match which {
                Which::Fast => start_fast(pin)?,
                _ => start_reference(&run.flowgate, &run.dir, pin)?,
            };
            main_table(&run, &upstream, &mut out).await?;
        }
    }
    println!("\ntotal {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

fn cpus_total() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .map(|c| {
            c.lines()
                .filter(|l| l.starts_with("processor"))
                .count()
                .to_string()
        })
        .unwrap_or_else(|_| "?".into())
}

fn direct_target(upstream: &Upstream) -> Target {
    Target::Direct {
        base: upstream.base.clone(),
        token: upstream.token.clone(),
        studio: upstream.studio,
        class: upstream.class,
    }
}

async fn main_table(run: &Run, upstream: &Upstream, out: &mut Out) -> anyhow::Result<()> {
    let args = &run.args;
    let c = args.concurrency;
    let label = upstream.label;
    let direct = direct_target(upstream);
    let mut floors = Vec::new();
    for (op, n) in [(Op::Read, 1), (Op::Read, c), (Op::Write, c)] {
        let m = run_case(
            args,
            label,
            "direct REST".into(),
            direct.clone(),
            op,
            n,
            &run.watch(upstream, None),
        )
        .await?;
        floors.push(out.push(m, None));
    }
    let floor = |op: Op, n: usize| {
        floors
            .iter()
            .find(|f| f.op == op.label() && f.concurrency == n)
    };
    for stateful in stateful_modes(args.mode) {
        let gw = run.gateway(upstream, stateful)?;
        let path = gw.path();
        let target = gw.target(upstream, None);
        for (op, n) in [(Op::Read, 1), (Op::Read, c), (Op::Write, c), (Op::List, c)] {
            let m = run_case(
                args,
                label,
                path.clone(),
                target.clone(),
                op,
                n,
                &run.watch(upstream, Some(&gw)),
            )
            .await?;
            out.push(
                m,
                floor(op, n)
                    .or(floor(Op::Read, n))
                    .filter(|_| op != Op::List),
            );
        }
        drop(gw);
    }
    Ok(())
}

/// Scaling against the fast upstream: sessions 1 → 256.
async fn scaling(run: &Run, out: &mut Out) -> anyhow::Result<()> {
    let args = &run.args;
    let upstream = start_fast(run.pin)?;
    let direct = direct_target(&upstream);
    println!("concurrency (stateful sessions, read get_class, fast upstream):");
    header(None);
    let gw = run.gateway(&upstream, true)?;
    let (idle, _) = rss_kib(gw.proc.pid());
    println!(
        "gateway RSS idle, before any session: {:.1} MB",
        idle as f64 / 1024.0
    );
    let target = gw.target(&upstream, None);
    for n in [1, 8, 32, 128, 256] {
        let f = run_case(
            args,
            "fast",
            "direct REST".into(),
            direct.clone(),
            Op::Read,
            n,
            &run.watch(&upstream, None),
        )
        .await?;
        let f = out.push(f, None);
        let m = run_case(
            args,
            "fast",
            "gateway stateful".into(),
            target.clone(),
            Op::Read,
            n,
            &run.watch(&upstream, Some(&gw)),
        )
        .await?;
        out.push(m, Some(&f));
    }
    drop(gw);
    Ok(())
}

/// Sessions opened on the gateway by `--scaling sessions-10k`.
const OPEN_SESSIONS: usize = 10_000;
/// The clients that open them, and the connections they share at most.
const OPENERS: usize = 64;
/// Bound on opening them all.
const OPEN_DEADLINE: Duration = Duration::from_secs(300);

/// `--scaling sessions-10k`: the gateway's memory with 10,000 open sessions. A stateful gateway
/// (fast upstream); [`OPEN_SESSIONS`] sessions are opened (`initialize` +
/// `notifications/initialized`, [`OPENERS`] at a time over at most as many pooled connections)
/// and left open: RSS idle. Then the read case at `--concurrency`, every client taking its
/// calls from its own share of the open sessions in turn (every session is used): RSS busy.
async fn scaling_open_sessions(run: &Run, out: &mut Out) -> anyhow::Result<()> {
    let args = &run.args;
    let upstream = start_fast(run.pin)?;
    let gw = run.gateway(&upstream, true)?;
    let (idle, _) = rss_kib(gw.proc.pid());
    println!(
        "gateway RSS idle, before any session: {:.1} MB",
        idle as f64 / 1024.0
    );
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(REQUEST_TIMEOUT)
        .pool_max_idle_per_host(OPENERS)
        .build()?;
    let target = gw.target(&upstream, None);
    let opened = Instant::now();
    let deadline = opened + OPEN_DEADLINE;
    let next = Arc::new(AtomicU64::new(0));
    let mut openers = Vec::with_capacity(OPENERS);
    for _ in 0..OPENERS {
        let (http, target, next) = (http.clone(), target.clone(), next.clone());
        openers.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                if i >= OPEN_SESSIONS || Instant::now() > deadline {
                    return Ok::<_, anyhow::Error>(mine);
                }
                let w = Worker::new(http.clone(), target.clone(), i).await?;
                mine.push(w.session.context("no session opened")?);
            }
        }));
    }
    let mut sessions = Vec::with_capacity(OPEN_SESSIONS);
    for o in openers {
        sessions.extend(o.await??);
    }
    if sessions.len() < OPEN_SESSIONS {
        bail!(
            "only {} of {OPEN_SESSIONS} sessions opened within {} s",
            sessions.len(),
            OPEN_DEADLINE.as_secs()
        );
    }
    let took = opened.elapsed();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (rss, hwm) = rss_kib(gw.proc.pid());
    println!(
        "{} sessions opened in {:.1} s ({OPENERS} at a time); gateway RSS with them open and idle: {:.1} MB (peak so far {:.1} MB)\n",
        sessions.len(),
        took.as_secs_f64(),
        rss as f64 / 1024.0,
        hwm as f64 / 1024.0
    );
    header(None);
    let f = run_case(
        args,
        "fast",
        "direct REST".into(),
        direct_target(&upstream),
        Op::Read,
        args.concurrency,
        &run.watch(&upstream, None),
    )
    .await?;
    let f = out.push(f, None);
    let Target::Mcp {
        url, keys, class, ..
    } = target
    else {
        bail!("not an MCP target");
    };
    let busy = Target::Sessions {
        url,
        key: keys.first().cloned().context("no key")?,
        sessions: Arc::new(sessions),
        class,
    };
    let m = run_case(
        args,
        "fast",
        "gateway 10k sess.".into(),
        busy,
        Op::Read,
        args.concurrency,
        &run.watch(&upstream, Some(&gw)),
    )
    .await?;
    out.push(m, Some(&f));
    drop(gw);
    Ok(())
}

/// The gateway modes to run, stateful first.
fn stateful_modes(mode: Modes) -> Vec<bool> {
    match mode {
        Modes::Stateful => vec![true],
        Modes::Stateless => vec![false],
        Modes::Both => vec![true, false],
    }
}

/// Direct REST reads of `upstream` at each concurrency: the floors of the scaling tables.
async fn direct_floors(
    run: &Run,
    upstream: &Upstream,
    concurrencies: &[usize],
    out: &mut Out,
) -> anyhow::Result<Vec<Measured>> {
    let direct = direct_target(upstream);
    let mut floors = Vec::new();
    for &n in concurrencies {
        let m = run_case(
            &run.args,
            upstream.label,
            "direct REST".into(),
            direct.clone(),
            Op::Read,
            n,
            &run.watch(upstream, None),
        )
        .await?;
        floors.push(out.push(m, None));
    }
    Ok(floors)
}

fn print_idle(gw: &Gateway, what: &str) {
    let (idle, _) = rss_kib(gw.proc.pid());
    println!(
        "{what}, {}: gateway RSS idle {:.1} MB",
        gw.path(),
        idle as f64 / 1024.0
    );
}

/// Scaling by the number of keys in the gateway's store, against the fast upstream: for each
/// count, a fresh store filled in bulk with `flowgate keys create --count … --json`, then read
/// `get_class` at 1 and `--concurrency` clients, every client with its own key (spread over the
/// whole store; fewer keys than clients are shared in turn).
async fn scaling_keys(run: &Run, out: &mut Out) -> anyhow::Result<()> {
    let args = &run.args;
    let counts = &args.key_counts;
    if counts.is_empty()
        || counts[0] == 0
        || counts.windows(2).any(|w| w[0] >= w[1])
        || counts.iter().any(|&n| n > MAX_KEYS)
    {
        bail!("--key-counts must be increasing, from 1 to {MAX_KEYS}");
    }
    let c = args.concurrency.max(1);
    let upstream = start_fast(run.pin)?;
    println!(
        "keys in the store (read get_class, fast upstream, every client its own key; the table is printed as it goes):"
    );
    header(Some("keys"));
    let floors = direct_floors(run, &upstream, &[1, c], out).await?;
    for &n in counts {
        let step = Instant::now();
        let data = run.dir.join(format!("keys-{n}"));
        std::fs::create_dir_all(&data)?;
        let database = run.db.fresh(&format!("keys_{n}"))?;
        let secrets = create_keys(
            &run.flowgate,
            &data,
            database.as_deref(),
            upstream.studio,
            n,
        )?;
        let made = step.elapsed();
        // Client i uses key i·n/c: distinct keys from all over the store.
        let chosen: Arc<Vec<String>> =
            Arc::new((0..c).map(|i| secrets[i * n / c].clone()).collect());
        drop(secrets);
        println!(
            "{n} keys made in {:.2} s ({} distinct keys used by {c} clients)",
            made.as_secs_f64(),
            n.min(c)
        );
        for stateful in stateful_modes(args.mode) {
            let gw = serve_gateway(
                &run.flowgate,
                &data,
                database.as_deref(),
                chosen[0].clone(),
                &upstream,
                stateful,
                run.pin,
            )?;
            print_idle(&gw, &format!("{n} keys"));
            let target = gw.target(&upstream, Some(chosen.clone()));
            for (k, floor) in [1, c].into_iter().zip(&floors) {
                let mut m = run_case(
                    args,
                    upstream.label,
                    gw.path(),
                    target.clone(),
                    Op::Read,
                    k,
                    &run.watch(&upstream, Some(&gw)),
                )
                .await?;
                m.keys = Some(n);
                out.push(m, Some(floor));
            }
        }
        let _ = std::fs::remove_dir_all(&data);
        println!("{n} keys: step took {:.1} s", step.elapsed().as_secs_f64());
    }
    Ok(())
}

/// The catalog scaling cases for one gateway binary (see `bench/catalog-scaling.sh`): read
/// `get_class` at 1 and `--concurrency`, tools/list at `--concurrency`, against the fast upstream,
/// rows labelled with the number of tools the gateway lists.
async fn scaling_catalog(run: &Run, out: &mut Out) -> anyhow::Result<()> {
    let args = &run.args;
    let c = args.concurrency.max(1);
    let upstream = start_fast(run.pin)?;
    println!("catalog size (fast upstream; tools/list measures the first page):");
    header(Some("tools"));
    let floors = direct_floors(run, &upstream, &[1, c], out).await?;
    for stateful in stateful_modes(args.mode) {
        let gw = run.gateway(&upstream, stateful)?;
        let target = gw.target(&upstream, None);
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(REQUEST_TIMEOUT)
            .build()?;
        let probe = Worker::new(http, target.clone(), 0).await?;
        let tools = probe.count_tools().await?;
        probe.close().await;
        print_idle(&gw, &format!("{tools} tools"));
        for (op, n) in [(Op::Read, 1), (Op::Read, c), (Op::List, c)] {
            let mut m = run_case(
                args,
                upstream.label,
                gw.path(),
                target.clone(),
                op,
                n,
                &run.watch(&upstream, Some(&gw)),
            )
            .await?;
            m.tools = Some(tools);
            let floor = floors
                .iter()
                .find(|f| f.concurrency == n)
                .filter(|_| op == Op::Read);
            out.push(m, floor);
        }
    }
    Ok(())
}

// === the catalog fixture ===

/// `flowgate-load fixture-manifest`: see [`Cmd::FixtureManifest`].
fn fixture_manifest(tools: usize, manifest: &Path, out: &Path) -> anyhow::Result<()> {
    use flowgate_codegen::ir::{Access, Target as Call};
    use std::fmt::Write as _;
    const GENERATED: &str = "bench_tools.yaml";
    let load = |dir: &Path| {
        flowgate_codegen::manifest::load_dir(dir, &dir.display().to_string()).map_err(|d| {
            anyhow!(
                "{} is not a valid manifest:\n{}",
                dir.display(),
                d.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("\n")
            )
        })
    };
    let real = load(manifest)?;
    let have = real.tools.len();
    if !(have..=10_000).contains(&tools) {
        bail!(
            "--tools must be from {have} (the tools in {}) to 10,000",
            manifest.display()
        );
    }
    if out.exists() && std::fs::read_dir(out)?.next().is_some() {
        bail!("{} exists and is not empty", out.display());
    }
    std::fs::create_dir_all(out)?;
    for entry in std::fs::read_dir(manifest)? {
        let path = entry?.path();
        let name = path.file_name().context("no file name")?;
        if name == GENERATED {
            bail!("{} already has a {GENERATED}", manifest.display());
        }
        if path.extension().is_some_and(|x| x == "yaml" || x == "yml") {
            std::fs::copy(&path, out.join(name))?;
        }
    }
    // The (scope, tier) pairs of the real read tools that call the Management API for one
    // studio, taken in turn, so the Cedar action groups of real scopes and tiers grow.
    let mut models: Vec<(String, String)> = real
        .tools
        .iter()
        .filter(|t| t.access == Access::Read && !t.public && matches!(t.target, Call::Upstream(_)))
        .filter_map(|t| Some((t.scope.clone()?, t.tier.clone())))
        .collect();
    models.sort();
    models.dedup();
    if models.is_empty() {
        bail!("{} has no scoped read tool to model", manifest.display());
    }
    let extra = tools - have;
    if extra > 0 {
        let base = &real.base_path;
        let mut text = format!(
            "# @generated by `flowgate-load fixture-manifest --tools {tools}`: {extra} read tools modelled\n# on get_class, for the catalog scaling benchmark (bench/catalog-scaling.sh). Not a product file.\ntools:\n"
        );
        for i in 1..=extra {
            let (scope, tier) = &models[(i - 1) % models.len()];
            let _ = write!(
                text,
                r#"
  - name: bench_tool_{i:04}
    title: Bench tool {i}
    description: >
      Generated for the catalog scaling benchmark: get one class with all its details, like
      get_class.
    scope: {scope}
    tier: {tier}
    access: read
    input:
      properties:
        class_id:
          type: string
          description: The class, e.g. cls_vinyasa_tue.
          minLength: 1
          maxLength: 64
      required: [class_id]
    upstream:
      method: GET
      path: /classes/{{class_id}}
    output:
      shape: Class
      properties:
        upcoming:
          type: array
          description: Its next 10 scheduled sessions, soonest first.
          items: {{shape: Occurrence}}
    example:
      input: {{class_id: cls_vinyasa_tue}}
      request:
        method: GET
        path: {base}/classes/cls_vinyasa_tue
"#
            );
        }
        std::fs::write(out.join(GENERATED), text)?;
    }
    let made = load(out)?;
    if made.tools.len() != tools {
        bail!(
            "{} has {} tools, not {tools}",
            out.display(),
            made.tools.len()
        );
    }
    println!(
        "{}: {tools} tools ({have} from {}, {extra} generated, scopes and tiers from {} real read tools)",
        out.display(),
        manifest.display(),
        models.len()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fixture of the catalog scaling is a manifest the build accepts (it must follow the
    /// manifest's rules as they change: every tool needs an `output` since issue 15).
    #[test]
    fn a_fixture_manifest_is_a_valid_manifest_of_the_asked_size() {
        // This package's folder as `cargo test` says it when it runs the test (a build cache
        // shared by two checkouts may hold a binary compiled in the other one).
        let package = std::env::var_os("CARGO_MANIFEST_DIR")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into());
        let manifest = package.join("../../manifest");
        let out = tempfile::tempdir().unwrap();
        let out = out.path().join("fixture");
        fixture_manifest(120, &manifest, &out).unwrap();
        assert!(out.join("bench_tools.yaml").exists());
    }
}
