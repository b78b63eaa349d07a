-- OAuth sign-in in progress, shared by every process using the store, so each step of a sign-in
-- (authorize, sign-in, consent, token) may land on any replica.

-- A flow between /oauth/authorize and its code. Keyed by a SHA-256 of the flow id: the id itself
-- is only in the person's browser. The consent step deletes the row (single use); expired rows
-- are refused, and deleted whenever a flow starts.
CREATE TABLE oauth_flows (
    flow_hash      TEXT PRIMARY KEY,
    csrf           TEXT NOT NULL,              -- also the flowgate_csrf cookie's value
    client_id      TEXT NOT NULL,
    client_name    TEXT NOT NULL,
    redirect_uri   TEXT NOT NULL,
    state          TEXT,
    code_challenge TEXT NOT NULL,
    requested      TEXT NOT NULL,              -- space-separated, sorted
    user_id        TEXT,                       -- the studio user, once signed in
    user_email     TEXT,
    user_name      TEXT,
    studio_id      TEXT,
    studio_name    TEXT,
    expires_at     TIMESTAMPTZ NOT NULL
);
CREATE INDEX oauth_flows_expires ON oauth_flows (expires_at);

-- Failed sign-ins per account (a SHA-256 of the normalised e-mail), for the back-off every
-- replica applies. Forgotten an hour after the last failure, and at the next success.
CREATE TABLE oauth_sign_in_failures (
    account_hash   TEXT PRIMARY KEY,
    failures       BIGINT NOT NULL,
    last_failed_at TIMESTAMPTZ NOT NULL,
    refusal_seen   BOOLEAN NOT NULL DEFAULT FALSE  -- a refusal was recorded since the last failure
);
CREATE INDEX oauth_sign_in_failures_last ON oauth_sign_in_failures (last_failed_at);
