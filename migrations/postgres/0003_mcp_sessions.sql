-- MCP sessions ended with DELETE /mcp (src/store/sessions.rs). A session id is self-contained and
-- signed, so the store keeps no row per open session: only the ended ones, until the expiry their
-- id carries (after which the id is refused anyway). `id` is the id's random nonce. Each end is
-- announced with NOTIFY flowgate_sessions.
CREATE TABLE mcp_sessions_ended (
    id         TEXT PRIMARY KEY,
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX mcp_sessions_ended_expiry ON mcp_sessions_ended (expires_at);
