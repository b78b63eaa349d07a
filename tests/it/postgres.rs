//! A real PostgreSQL for the tests: Debian's `postgresql` package, `initdb` into a temporary
//! directory (as the `postgres` user when the tests run as root), listening on a loopback port,
//! one server per test binary and one fresh database per test.
//!
//! The server stops when the test binary exits: a watchdog shell waits for the binary's process
//! to end, then stops the server and deletes its directory. Without PostgreSQL the tests that need
//! it skip with a message, except in CI (`CI` set), where they fail (`.ci/run` installs it).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The running server.
pub struct Server {
    port: u16,
}

static SERVER: OnceLock<Option<Server>> = OnceLock::new();
static NEXT_DB: AtomicU32 = AtomicU32::new(0);

/// A fresh, empty database on the shared server, as a `postgres://` URL; `None` (after saying
/// so) when PostgreSQL is not installed outside CI.
pub async fn database() -> Option<String> {
    let server = SERVER.get_or_init(start).as_ref()?;
    let name = format!(
        "fg_{}_{}",
        std::process::id(),
        NEXT_DB.fetch_add(1, Ordering::Relaxed)
    );
    let admin = format!("postgres://flowgate@127.0.0.1:{}/postgres", server.port);
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&admin)
        .await
        .expect("connect to the test PostgreSQL");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .expect("create a test database");
    Some(format!(
        "postgres://flowgate@127.0.0.1:{}/{name}",
        server.port
    ))
}

/// The directory with `initdb`, `postgres` and `pg_isready`: `FLOWGATE_PG_BIN`, else the newest
/// `/usr/lib/postgresql/*/bin`.
fn bin_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("FLOWGATE_PG_BIN") {
        return Some(PathBuf::from(dir));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| {
            let e = e.ok()?;
            let v = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

fn start() -> Option<Server> {
    let Some(bin) = bin_dir() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but PostgreSQL is not installed: install Debian's postgresql (.ci/run does)"
        );
        eprintln!(
            "SKIPPED: PostgreSQL is not installed (apt-get install postgresql); the PostgreSQL tests need it"
        );
        return None;
    };
    let root = running_as_root();
    let dir = tempfile::Builder::new()
        .prefix("flowgate-pg-")
        .tempdir()
        .expect("temporary directory")
        .keep();
    let data = dir.join("data");
    std::fs::create_dir(&data).unwrap();
    if root {
        // initdb refuses to run as root: the cluster belongs to the `postgres` user.
        chown_postgres(&dir);
        chown_postgres(&data);
    }
    let initdb = as_owner(root, &bin.join("initdb"))
        .args([
            "-D",
            data.to_str().unwrap(),
            "-U",
            "flowgate",
            "-A",
            "trust",
            "-E",
            "UTF8",
        ])
        .args(["--no-sync", "--locale=C"])
        .stdout(Stdio::null())
        .output()
        .expect("run initdb");
    assert!(
        initdb.status.success(),
        "initdb failed: {}",
        String::from_utf8_lossy(&initdb.stderr)
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // The server and a watchdog that stops it (and removes the directory) once this test binary
    // has exited.
    let runas = if root { "runuser -u postgres -- " } else { "" };
    let postgres = format!(
        "{runas}{} -D {} -p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300 -c shared_buffers=64MB",
        bin.join("postgres").display(),
        data.display(),
        dir.display(),
    );
    let stop = format!(
        "{runas}{} -D {} stop -m fast",
        bin.join("pg_ctl").display(),
        data.display()
    );
    let watchdog = format!(
        "{postgres} >{log} 2>&1 & pg=$!; \
         while kill -0 {parent} 2>/dev/null && kill -0 $pg 2>/dev/null; do sleep 0.5; done; \
         {stop} >/dev/null 2>&1; wait $pg; rm -rf {dir}",
        log = dir.join("postgres.log").display(),
        parent = std::process::id(),
        dir = dir.display(),
    );
    // The watchdog runs as this user (it must see this process); only the server is `postgres`.
    // It outlives the test binary on purpose (to stop the server after it), so it is not waited
    // for.
    #[allow(clippy::zombie_processes)]
    Command::new("sh")
        .args(["-c", &watchdog])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start postgres");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ready = Command::new(bin.join("pg_isready"))
            .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-q"])
            .status()
            .is_ok_and(|s| s.success());
        if ready {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "PostgreSQL did not start within 30 s: {}",
            std::fs::read_to_string(dir.join("postgres.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    Some(Server { port })
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

fn chown_postgres(path: &Path) {
    let status = Command::new("chown")
        .args(["postgres:postgres", path.to_str().unwrap()])
        .status()
        .expect("chown");
    assert!(status.success(), "chown postgres {}", path.display());
}

/// `program`, run as `postgres` when the tests run as root.
fn as_owner(root: bool, program: &Path) -> Command {
    if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}
