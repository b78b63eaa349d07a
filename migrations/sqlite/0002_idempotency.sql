-- Results of write calls made with an idempotency key, per studio and tool.
CREATE TABLE idempotency (
    studio      TEXT NOT NULL,
    tool        TEXT NOT NULL,
    key         TEXT NOT NULL,
    args_hash   TEXT NOT NULL,             -- SHA-256 of the canonical arguments (key excluded)
    state       TEXT NOT NULL,             -- pending | done
    result      TEXT,                      -- the stored CallToolResult outcome (JSON)
    created_at  TEXT NOT NULL,
    PRIMARY KEY (studio, tool, key)
);
CREATE INDEX idempotency_created ON idempotency (created_at);
