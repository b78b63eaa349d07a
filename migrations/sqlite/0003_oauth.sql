-- OAuth 2.1: flowgate is the authorization server for its own MCP resource.

-- Clients registered dynamically (RFC 7591). Client ID Metadata Documents are fetched and
-- cached, not stored.
CREATE TABLE oauth_clients (
    client_id     TEXT PRIMARY KEY,
    client_name   TEXT NOT NULL,
    redirect_uris TEXT NOT NULL,            -- JSON array
    created_at    TEXT NOT NULL
);

-- A grant: one approval by one studio user of one client, with the scopes they ticked.
CREATE TABLE oauth_grants (
    id           TEXT PRIMARY KEY,
    studio       TEXT NOT NULL,
    user_id      TEXT NOT NULL,
    user_email   TEXT NOT NULL,
    client_id    TEXT NOT NULL,
    client_name  TEXT NOT NULL,
    scopes       TEXT NOT NULL,             -- space-separated, sorted
    resource     TEXT NOT NULL,             -- the audience every token of the grant is bound to
    created_at   TEXT NOT NULL,
    last_used_at TEXT,
    revoked_at   TEXT,
    revoked_why  TEXT
);
CREATE INDEX oauth_grants_studio ON oauth_grants (studio);

-- Authorization codes: single use, short-lived, bound to client, redirect URI and PKCE challenge.
CREATE TABLE oauth_codes (
    code_hash      TEXT PRIMARY KEY,
    grant_id       TEXT NOT NULL REFERENCES oauth_grants (id),
    client_id      TEXT NOT NULL,
    redirect_uri   TEXT NOT NULL,
    code_challenge TEXT NOT NULL,
    expires_at     TEXT NOT NULL,
    used_at        TEXT
);

-- Access and refresh tokens, hashed. A refresh token is used once: using it again revokes the grant.
CREATE TABLE oauth_tokens (
    token_hash TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,               -- access | refresh
    grant_id   TEXT NOT NULL REFERENCES oauth_grants (id),
    expires_at TEXT NOT NULL,
    used_at    TEXT,                        -- refresh tokens: when it was exchanged
    revoked_at TEXT
);
CREATE INDEX oauth_tokens_grant ON oauth_tokens (grant_id);
