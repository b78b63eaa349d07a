-- Secret keys: only a SHA-256 of the secret is stored; the secret is shown once.
CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    studio       TEXT NOT NULL,
    name         TEXT NOT NULL,
    scopes       TEXT NOT NULL,            -- space-separated, sorted
    secret_hash  TEXT NOT NULL UNIQUE,     -- hex SHA-256 of the whole secret
    hint         TEXT NOT NULL,            -- first characters, to recognise a key in lists
    created_at   TEXT NOT NULL,
    expires_at   TEXT,
    last_used_at TEXT,
    revoked_at   TEXT
);
CREATE INDEX api_keys_studio ON api_keys (studio);

-- One record per tools/call and per rejected credential. Append-only.
CREATE TABLE audit_log (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    at              TEXT NOT NULL,
    request_id      TEXT NOT NULL,
    studio          TEXT,
    principal_kind  TEXT,
    principal_id    TEXT,
    principal_name  TEXT,
    tool            TEXT,
    arguments       TEXT,                  -- JSON, sensitive fields redacted
    decision        TEXT,                  -- allow | deny | (null when not decided)
    policies        TEXT,                  -- JSON array of deciding policy ids
    outcome         TEXT NOT NULL,         -- ok | denied | invalid | upstream_error | unauthenticated | error
    message         TEXT,
    upstream_status INTEGER,
    duration_ms     INTEGER NOT NULL
);
CREATE INDEX audit_log_studio_at ON audit_log (studio, at);
CREATE TRIGGER audit_log_append_only_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
