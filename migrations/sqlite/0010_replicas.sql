-- Replicas listening for revocations (used on PostgreSQL; SQLite processes are told by the marker
-- file). Kept so both backends have the same schema.
CREATE TABLE flowgate_replicas (
    replica_id TEXT PRIMARY KEY,
    epoch_seen BIGINT NOT NULL,
    heartbeat  TEXT NOT NULL
);
