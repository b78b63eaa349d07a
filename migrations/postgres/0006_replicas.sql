-- Replicas listening for revocations, and the newest epoch each has received: a revocation
-- waits until every live replica (heartbeat within 15 s) has it before it answers
-- (src/store/coordination.rs). UNLOGGED: acknowledgements and heartbeats are worth nothing after a
-- database crash (every replica reconnects and acknowledges again), so they do not wait for fsync.
CREATE UNLOGGED TABLE flowgate_replicas (
    replica_id TEXT PRIMARY KEY,
    epoch_seen BIGINT NOT NULL,
    heartbeat  TIMESTAMPTZ NOT NULL
);
