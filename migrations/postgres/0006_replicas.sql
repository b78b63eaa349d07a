-- Replicas listening for revocations, and the newest epoch each has received: a revocation
-- waits until every live replica (heartbeat within 15 s) has it before it answers
-- (src/store/coordination.rs).
CREATE TABLE flowgate_replicas (
    replica_id TEXT PRIMARY KEY,
    epoch_seen BIGINT NOT NULL,
    heartbeat  TIMESTAMPTZ NOT NULL
);
