//! Group commit for the writes on the call path (audit records, idempotency claims and
//! answers): one task per store takes every write waiting at that moment and applies them in one
//! transaction on a connection of its own, then answers each writer. A writer's `await` returns
//! only after its write is committed, so durability is that of one transaction per write, but
//! under load one commit serves many calls.

use tokio::sync::{mpsc, oneshot};

use super::{Db, Store, Timestamp};

/// A value bound to a `$n` placeholder.
#[derive(Debug, Clone, PartialEq)]
pub enum Bind {
    Text(Option<String>),
    Int(Option<i64>),
    Time(Option<Timestamp>),
}

/// One write.
#[derive(Debug, Clone)]
pub enum Write {
    /// One row for `INSERT INTO table (columns) VALUES ` (the text in `into`, ending with
    /// `VALUES `), one bind per column. Rows for the same `into` in a batch are inserted by one
    /// statement. Answers the row's `id` column (an ascending identity: `seq`).
    Insert {
        into: &'static str,
        id: &'static str,
        row: Vec<Bind>,
    },
    /// Any other statement (`$n` placeholders). Answers how many rows it changed.
    Execute { sql: &'static str, binds: Vec<Bind> },
}

pub(super) struct Job {
    write: Write,
    done: oneshot::Sender<Result<i64, String>>,
}

/// At most this many writes per transaction.
const MAX_BATCH: usize = 64;
/// Writes queued at once before writers wait for room (backpressure, bounded memory).
const QUEUE: usize = 4096;

impl Store {
    /// Applies one write through the store's group-commit writer (started on first use, inside
    /// the runtime) and returns, once it is committed, the row id ([`Write::Insert`]) or the
    /// number of rows changed ([`Write::Execute`]).
    pub async fn write(&self, write: Write) -> Result<i64, super::StoreError> {
        let queue = self.writer.get_or_init(|| {
            let (tx, rx) = mpsc::channel(QUEUE);
            match self.db().clone() {
                Db::Sqlite(pool) => tokio::spawn(sqlite::run(pool, rx)),
                Db::Postgres(pool) => tokio::spawn(postgres::run(pool, rx)),
            };
            tx
        });
        let (done, answer) = oneshot::channel();
        let stopped = || super::StoreError::Writer("the store's writer has stopped".into());
        queue
            .send(Job { write, done })
            .await
            .map_err(|_| stopped())?;
        answer
            .await
            .map_err(|_| stopped())?
            .map_err(super::StoreError::Writer)
    }
}

fn fail(batch: &mut Vec<Job>, message: &str) {
    for job in batch.drain(..) {
        let _ = job.done.send(Err(message.to_string()));
    }
}

/// Each INSERT of a batch (`into`, `id` column) with the positions of its rows.
type Inserts = Vec<(&'static str, &'static str, Vec<usize>)>;

/// Groups a batch: the positions of each INSERT's rows, and how many other statements.
fn plan(batch: &[Job]) -> (Inserts, usize) {
    let mut inserts: Inserts = Vec::new();
    let mut executes = 0;
    for (i, job) in batch.iter().enumerate() {
        match &job.write {
            Write::Insert { into, id, .. } => {
                match inserts.iter_mut().find(|(t, _, _)| t == into) {
                    Some((_, _, rows)) => rows.push(i),
                    None => inserts.push((into, id, vec![i])),
                }
            }
            Write::Execute { .. } => executes += 1,
        }
    }
    (inserts, executes)
}

/// `INSERT … VALUES ($1, …, $w), ($w+1, …), … RETURNING id` for `rows` rows of `width` columns.
fn multi_row_insert(into: &str, id: &str, width: usize, rows: usize) -> String {
    let mut sql = String::from(into);
    for r in 0..rows {
        sql.push_str(if r == 0 { "(" } else { ", (" });
        for c in 0..width {
            if c > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!("${}", r * width + c + 1));
        }
        sql.push(')');
    }
    sql.push_str(" RETURNING ");
    sql.push_str(id);
    sql
}

/// The group-commit loop and statements for one backend: the same code, compiled for each.
macro_rules! backend {
    ($module:ident, $db:ty) => {
        mod $module {
            use sqlx::pool::PoolConnection;
            use sqlx::{Database, Pool};

            use super::{Bind, Job, MAX_BATCH, Write, fail, multi_row_insert, plan};

            type Conn = <$db as Database>::Connection;
            type Query<'q> = sqlx::query::Query<'q, $db, <$db as Database>::Arguments<'q>>;

            pub(super) async fn run(pool: Pool<$db>, mut rx: tokio::sync::mpsc::Receiver<Job>) {
                let mut batch = Vec::with_capacity(MAX_BATCH);
                // A connection of its own, kept between batches (a warm page cache on SQLite,
                // no pool round trip on PostgreSQL).
                let mut conn: Option<PoolConnection<$db>> = None;
                while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
                    // Let the calls that are ready to run reach their write first: under load
                    // this turns one commit per write into one per scheduler round, at the cost
                    // of one yield when idle.
                    if batch.len() < MAX_BATCH {
                        tokio::task::yield_now().await;
                        while batch.len() < MAX_BATCH {
                            match rx.try_recv() {
                                Ok(job) => batch.push(job),
                                Err(_) => break,
                            }
                        }
                    }
                    let c = match &mut conn {
                        Some(c) => c,
                        None => match pool.acquire().await {
                            Ok(c) => conn.insert(c),
                            Err(e) => {
                                fail(&mut batch, &e.to_string());
                                continue;
                            }
                        },
                    };
                    match apply(c, &batch).await {
                        Ok(answers) => {
                            for (job, answer) in batch.drain(..).zip(answers) {
                                let _ = job.done.send(answer);
                            }
                        }
                        Err(e) => {
                            // The transaction failed as a whole: start again from a fresh
                            // connection.
                            conn = None;
                            fail(&mut batch, &e.to_string());
                        }
                    }
                }
            }

            /// Applies the batch in one transaction. A statement that fails fails only its own
            /// writes; a transaction that cannot begin or commit fails them all. A batch that is
            /// one statement needs no explicit transaction: the statement is atomic.
            async fn apply(
                conn: &mut Conn,
                batch: &[Job],
            ) -> Result<Vec<Result<i64, String>>, sqlx::Error> {
                let (inserts, executes) = plan(batch);
                if executes + inserts.len() == 1 {
                    return Ok(statements(conn, batch, &inserts).await);
                }
                // Rolled back if dropped before the commit (the runtime shutting down mid-batch).
                let mut tx = sqlx::Connection::begin(&mut *conn).await?;
                let answers = statements(&mut tx, batch, &inserts).await;
                tx.commit().await?;
                Ok(answers)
            }

            /// Runs the batch's statements: each `Execute` alone, the rows of each INSERT
            /// together. In PostgreSQL a failed statement aborts the transaction, so each runs
            /// behind a savepoint there; SQLite undoes just the statement by itself.
            async fn statements(
                conn: &mut Conn,
                batch: &[Job],
                inserts: &[(&'static str, &'static str, Vec<usize>)],
            ) -> Vec<Result<i64, String>> {
                let mut answers: Vec<Result<i64, String>> = vec![Ok(0); batch.len()];
                let executes = batch
                    .iter()
                    .filter(|j| matches!(j.write, Write::Execute { .. }))
                    .count();
                let guarded = executes + inserts.len() > 1 && super::needs_savepoints::<$db>();
                for (i, job) in batch.iter().enumerate() {
                    if let Write::Execute { sql, binds } = &job.write {
                        if guarded {
                            let _ = sqlx::query("SAVEPOINT w").execute(&mut *conn).await;
                        }
                        answers[i] = bound(sqlx::query(sql), binds)
                            .execute(&mut *conn)
                            .await
                            .map(|r| i64::try_from(r.rows_affected()).unwrap_or(i64::MAX))
                            .map_err(|e| e.to_string());
                        if guarded {
                            let end = if answers[i].is_ok() {
                                "RELEASE SAVEPOINT w"
                            } else {
                                "ROLLBACK TO SAVEPOINT w"
                            };
                            let _ = sqlx::query(end).execute(&mut *conn).await;
                        }
                    }
                }
                for (into, id, rows) in inserts {
                    let row_of = |i: usize| match &batch[i].write {
                        Write::Insert { row, .. } => row.as_slice(),
                        Write::Execute { .. } => &[],
                    };
                    let width = row_of(rows[0]).len();
                    let sql = multi_row_insert(into, id, width, rows.len());
                    let binds = rows.iter().flat_map(|&i| row_of(i));
                    if guarded {
                        let _ = sqlx::query("SAVEPOINT w").execute(&mut *conn).await;
                    }
                    // One statement: its rows got ascending ids in the order of its VALUES
                    // (RETURNING lists them in no promised order, so they are sorted).
                    let result = {
                        let q = bound(sqlx::query(&sql), binds);
                        q.fetch_all(&mut *conn).await.map(|rows| {
                            let mut ids: Vec<i64> = rows
                                .iter()
                                .map(|r| sqlx::Row::try_get::<i64, _>(r, 0).unwrap_or(0))
                                .collect();
                            ids.sort_unstable();
                            ids
                        })
                    };
                    if guarded {
                        let end = if result.is_ok() {
                            "RELEASE SAVEPOINT w"
                        } else {
                            "ROLLBACK TO SAVEPOINT w"
                        };
                        let _ = sqlx::query(end).execute(&mut *conn).await;
                    }
                    for (n, &i) in rows.iter().enumerate() {
                        answers[i] = match &result {
                            Ok(ids) => ids
                                .get(n)
                                .copied()
                                .ok_or_else(|| "no id returned".to_string()),
                            Err(e) => Err(e.to_string()),
                        };
                    }
                }
                answers
            }

            /// Binds the values in order, by reference (a call's strings are not copied again).
            fn bound<'q>(
                mut query: Query<'q>,
                binds: impl IntoIterator<Item = &'q Bind>,
            ) -> Query<'q> {
                for b in binds {
                    query = match b {
                        Bind::Text(t) => query.bind(t.as_deref()),
                        Bind::Int(n) => query.bind(*n),
                        Bind::Time(t) => query.bind(*t),
                    };
                }
                query
            }
        }
    };
}

backend!(sqlite, sqlx::Sqlite);
backend!(postgres, sqlx::Postgres);

/// Whether a failed statement aborts the whole transaction (PostgreSQL), so statements of a
/// batch must each run behind a savepoint to fail alone.
fn needs_savepoints<DB: sqlx::Database>() -> bool {
    DB::NAME == "PostgreSQL"
}
