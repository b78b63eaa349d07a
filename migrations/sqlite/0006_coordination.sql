-- What processes sharing the store coordinate on.

-- The revocation epoch: bumped by every revocation or rotation. (SQLite processes are told by the
-- marker file beside the database; the counter keeps the schema the same as PostgreSQL's.)
CREATE TABLE flowgate_epoch (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    n  BIGINT NOT NULL
);
INSERT INTO flowgate_epoch (id, n) VALUES (1, 0);

-- Secrets every process must agree on (signing keys), created once by whichever starts first.
CREATE TABLE flowgate_secrets (
    name       TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    created_at TEXT NOT NULL
);
