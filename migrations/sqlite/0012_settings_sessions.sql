-- The studio owner's settings pages: one row per signed-in browser, shared by every process using
-- the store (any replica serves any page), keyed by a SHA-256 of the cookie's secret. Sign-out
-- deletes the row, so the cookie stops working on every replica at once. A row ends when idle
-- for the configured time (`last_seen_at`) or at `expires_at`, whichever comes first.
CREATE TABLE settings_sessions (
    token_hash   TEXT PRIMARY KEY,
    csrf         TEXT NOT NULL,   -- the forms' token (synchronizer pattern)
    studio       TEXT NOT NULL,
    studio_name  TEXT NOT NULL,
    user_id      TEXT NOT NULL,
    user_email   TEXT NOT NULL,
    user_name    TEXT NOT NULL,
    user_role    TEXT,            -- as the studio platform said it at sign-in
    created_at   TEXT NOT NULL,
    last_seen_at TEXT NOT NULL,
    expires_at   TEXT NOT NULL
);
CREATE INDEX settings_sessions_user ON settings_sessions (studio, user_id);
CREATE INDEX settings_sessions_expires ON settings_sessions (expires_at);

-- Where an approved application sends the person back (the host is shown on Connected apps).
ALTER TABLE oauth_grants ADD COLUMN redirect_uri TEXT;
