-- Rate-limit state shared by every replica (src/limit.rs): one GCRA bucket per principal and tier,
-- as its theoretical arrival time in microseconds since the Unix epoch. Replicas take budget in
-- leases (one round trip per lease, not per call).
CREATE TABLE rate_limits (
    key        TEXT PRIMARY KEY,
    tat_us     BIGINT NOT NULL,
    last_grant BIGINT NOT NULL
);
