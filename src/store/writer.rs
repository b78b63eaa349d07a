//! Group commit for the writes on the call path (audit records, idempotency claims and
//! answers): one task per store takes every write waiting at that moment and applies them in one
//! transaction on a connection of its own, then answers each writer. A writer's `await` returns
//! only after its write is committed, so durability is that of one transaction per write, but
//! under load one commit serves many calls.

use sqlx::pool::PoolConnection;
use sqlx::sqlite::SqliteArguments;
use sqlx::{Sqlite, SqliteConnection};
use tokio::sync::{mpsc, oneshot};

use super::Store;

/// A value bound to a `?` placeholder.
#[derive(Debug, Clone, PartialEq)]
pub enum Bind {
    Text(Option<String>),
    Int(Option<i64>),
}

/// One write.
#[derive(Debug, Clone)]
pub enum Write {
    /// One row for `INSERT INTO table (columns) VALUES ` (the text in `into`, ending with
    /// `VALUES `), one bind per column. Rows for the same `into` in a batch are inserted by one
    /// statement. Answers the row's id.
    Insert { into: &'static str, row: Vec<Bind> },
    /// Any other statement. Answers how many rows it changed.
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
            tokio::spawn(run(self.clone(), rx));
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

async fn run(store: Store, mut rx: mpsc::Receiver<Job>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    // A connection of its own, kept between batches, so its page cache stays warm.
    let mut conn: Option<PoolConnection<Sqlite>> = None;
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        // Let the calls that are ready to run reach their write first: under load this turns
        // one commit per write into one per scheduler round, at the cost of one yield when idle.
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
            None => match store.pool().acquire().await {
                Ok(c) => conn.insert(c),
                Err(e) => {
                    fail(&mut batch, &e.to_string());
                    continue;
                }
            },
        };
        let answers = apply(c, &batch).await;
        match answers {
            Ok(answers) => {
                for (job, answer) in batch.drain(..).zip(answers) {
                    let _ = job.done.send(answer);
                }
            }
            Err(e) => {
                // The transaction failed as a whole: start again from a fresh connection.
                conn = None;
                fail(&mut batch, &e.to_string());
            }
        }
    }
}

fn fail(batch: &mut Vec<Job>, message: &str) {
    for job in batch.drain(..) {
        let _ = job.done.send(Err(message.to_string()));
    }
}

/// Applies the batch in one transaction. A statement that fails fails only its own writes; a
/// transaction that cannot begin or commit fails them all. A batch that is one statement (one
/// write, or only rows for one INSERT) needs no explicit transaction: the statement is atomic.
async fn apply(
    conn: &mut SqliteConnection,
    batch: &[Job],
) -> Result<Vec<Result<i64, String>>, sqlx::Error> {
    let mut inserts: Vec<(&'static str, Vec<usize>)> = Vec::new();
    let mut executes = 0;
    for (i, job) in batch.iter().enumerate() {
        match &job.write {
            Write::Insert { into, .. } => match inserts.iter_mut().find(|(t, _)| t == into) {
                Some((_, rows)) => rows.push(i),
                None => inserts.push((into, vec![i])),
            },
            Write::Execute { .. } => executes += 1,
        }
    }
    if executes + inserts.len() == 1 {
        return Ok(statements(conn, batch, &inserts).await);
    }
    // Rolled back if dropped before the commit (e.g. the runtime shutting down mid-batch).
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    let answers = statements(&mut tx, batch, &inserts).await;
    tx.commit().await?;
    Ok(answers)
}

/// Runs the batch's statements: each `Execute` alone, the rows of each INSERT together.
async fn statements(
    conn: &mut SqliteConnection,
    batch: &[Job],
    inserts: &[(&'static str, Vec<usize>)],
) -> Vec<Result<i64, String>> {
    let mut answers: Vec<Result<i64, String>> = vec![Ok(0); batch.len()];
    for (i, job) in batch.iter().enumerate() {
        if let Write::Execute { sql, binds } = &job.write {
            answers[i] = bound(sqlx::query(sql), binds)
                .execute(&mut *conn)
                .await
                .map(|r| i64::try_from(r.rows_affected()).unwrap_or(i64::MAX))
                .map_err(|e| e.to_string());
        }
    }
    for (into, rows) in inserts {
        let row_of = |i: usize| match &batch[i].write {
            Write::Insert { row, .. } => row.as_slice(),
            Write::Execute { .. } => &[],
        };
        // `(?, …, ?)` once per row: rows for one INSERT have the same columns.
        let width = row_of(rows[0]).len();
        let group = format!("({})", vec!["?"; width].join(", "));
        let sql = format!("{into}{}", vec![group; rows.len()].join(", "));
        let binds = rows.iter().flat_map(|&i| row_of(i));
        // One statement: its rows got consecutive ids, in order, ending at the last one.
        let result = bound(sqlx::query(&sql), binds).execute(&mut *conn).await;
        for (n, &i) in rows.iter().enumerate() {
            answers[i] = match &result {
                Ok(r) => Ok(r.last_insert_rowid() - (rows.len() - 1 - n) as i64),
                Err(e) => Err(e.to_string()),
            };
        }
    }
    answers
}

/// Binds the values in order, by reference (a call's strings are not copied again).
fn bound<'q>(
    mut query: sqlx::query::Query<'q, Sqlite, SqliteArguments<'q>>,
    binds: impl IntoIterator<Item = &'q Bind>,
) -> sqlx::query::Query<'q, Sqlite, SqliteArguments<'q>> {
    for b in binds {
        query = match b {
            Bind::Text(t) => query.bind(t.as_deref()),
            Bind::Int(n) => query.bind(*n),
        };
    }
    query
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Inserts and other statements waiting together are committed together, and each caller
    /// gets its own answer: the row id of its insert, or the rows its statement changed.
    #[tokio::test]
    async fn a_mixed_batch_answers_each_write() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("w.sqlite")).await.unwrap();
        sqlx::query("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
            .execute(store.pool())
            .await
            .unwrap();
        let insert = |v: &str| Write::Insert {
            into: "INSERT INTO t (v) VALUES ",
            row: vec![Bind::Text(Some(v.to_string()))],
        };
        let writes = (0..40).map(|n| {
            let store = store.clone();
            async move {
                if n % 2 == 0 {
                    (n, store.write(insert(&format!("row {n}"))).await)
                } else {
                    let update = Write::Execute {
                        sql: "UPDATE t SET v = v WHERE v = ?",
                        binds: vec![Bind::Text(Some("none".into()))],
                    };
                    (n, store.write(update).await)
                }
            }
        });
        for (n, answer) in futures::future::join_all(writes).await {
            let answer = answer.unwrap();
            if n % 2 == 0 {
                let v: String = sqlx::query_scalar("SELECT v FROM t WHERE id = ?")
                    .bind(answer)
                    .fetch_one(store.pool())
                    .await
                    .unwrap();
                assert_eq!(v, format!("row {n}"));
            } else {
                assert_eq!(answer, 0, "the update matches no row");
            }
        }
        // A statement that fails fails alone.
        let bad = Write::Execute {
            sql: "INSERT INTO missing_table (x) VALUES (?)",
            binds: vec![Bind::Int(Some(1))],
        };
        let (bad, good) = tokio::join!(store.write(bad), store.write(insert("after")));
        assert!(bad.unwrap_err().to_string().contains("missing_table"));
        assert!(good.unwrap() > 0);
    }
}
