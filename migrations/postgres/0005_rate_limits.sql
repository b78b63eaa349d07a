-- Rate-limit state shared by every replica (src/limit.rs): one GCRA bucket per principal and tier,
-- as its theoretical arrival time in microseconds since the Unix epoch. Replicas take budget in
-- leases (one round trip per lease, not per call). UNLOGGED: a take does not wait for the WAL to
-- reach the disk (it is on a request's path), and after a database crash the buckets start full
-- again, which costs at most one burst per principal.
CREATE UNLOGGED TABLE rate_limits (
    key        TEXT PRIMARY KEY,
    tat_us     BIGINT NOT NULL,
    last_grant BIGINT NOT NULL
);
