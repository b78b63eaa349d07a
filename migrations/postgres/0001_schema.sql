-- The gateway's store on PostgreSQL: the same tables as SQLite's migrations 0001-0005, with
-- native types (TIMESTAMPTZ, BIGINT identity). Shared by every replica; sqlx holds an advisory
-- lock while it migrates, so replicas starting together apply this once.

-- Secret keys: only a SHA-256 of the secret is stored; the secret is shown once.
CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    studio       TEXT NOT NULL,
    name         TEXT NOT NULL,
    scopes       TEXT NOT NULL,            -- space-separated, sorted
    secret_hash  TEXT NOT NULL UNIQUE,     -- hex SHA-256 of the whole secret
    hint         TEXT NOT NULL,            -- first characters, to recognise a key in lists
    created_at   TIMESTAMPTZ NOT NULL,
    expires_at   TIMESTAMPTZ,
    last_used_at TIMESTAMPTZ,
    revoked_at   TIMESTAMPTZ
);
CREATE INDEX api_keys_studio ON api_keys (studio);

-- One record per tools/call, per rejected credential and per OAuth event. Append-only.
CREATE TABLE audit_log (
    seq             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at              TIMESTAMPTZ NOT NULL,
    request_id      TEXT NOT NULL,
    studio          TEXT,
    principal_kind  TEXT,
    principal_id    TEXT,
    principal_name  TEXT,
    tool            TEXT,
    arguments       TEXT,                  -- JSON, sensitive fields redacted
    decision        TEXT,
    policies        TEXT,                  -- JSON array of deciding policy ids
    outcome         TEXT NOT NULL,
    message         TEXT,
    upstream_status BIGINT,
    duration_ms     BIGINT NOT NULL,
    client_addr     TEXT
);
CREATE INDEX audit_log_studio_at ON audit_log (studio, at);
CREATE INDEX audit_log_tool_at ON audit_log (tool, at);
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only';
END $$;
CREATE TRIGGER audit_log_append_only_update BEFORE UPDATE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();

-- Results of write calls made with an idempotency key, per studio and tool.
CREATE TABLE idempotency (
    studio      TEXT NOT NULL,
    tool        TEXT NOT NULL,
    key         TEXT NOT NULL,
    args_hash   TEXT NOT NULL,
    state       TEXT NOT NULL,             -- pending | done
    result      TEXT,
    created_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (studio, tool, key)
);
CREATE INDEX idempotency_created ON idempotency (created_at);

-- OAuth 2.1: flowgate is the authorization server for its own MCP resource.
CREATE TABLE oauth_clients (
    client_id     TEXT PRIMARY KEY,
    client_name   TEXT NOT NULL,
    redirect_uris TEXT NOT NULL,            -- JSON array
    created_at    TIMESTAMPTZ NOT NULL
);
CREATE INDEX oauth_clients_created ON oauth_clients (created_at);

CREATE TABLE oauth_grants (
    id           TEXT PRIMARY KEY,
    studio       TEXT NOT NULL,
    user_id      TEXT NOT NULL,
    user_email   TEXT NOT NULL,
    client_id    TEXT NOT NULL,
    client_name  TEXT NOT NULL,
    scopes       TEXT NOT NULL,
    resource     TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    last_used_at TIMESTAMPTZ,
    revoked_at   TIMESTAMPTZ,
    revoked_why  TEXT
);
CREATE INDEX oauth_grants_studio ON oauth_grants (studio);
CREATE INDEX oauth_grants_client ON oauth_grants (client_id);

CREATE TABLE oauth_codes (
    code_hash      TEXT PRIMARY KEY,
    grant_id       TEXT NOT NULL REFERENCES oauth_grants (id),
    client_id      TEXT NOT NULL,
    redirect_uri   TEXT NOT NULL,
    code_challenge TEXT NOT NULL,
    expires_at     TIMESTAMPTZ NOT NULL,
    used_at        TIMESTAMPTZ
);

CREATE TABLE oauth_tokens (
    token_hash TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,
    grant_id   TEXT NOT NULL REFERENCES oauth_grants (id),
    expires_at TIMESTAMPTZ NOT NULL,
    used_at    TIMESTAMPTZ,
    revoked_at TIMESTAMPTZ
);
CREATE INDEX oauth_tokens_grant ON oauth_tokens (grant_id);
