-- Rate-limit state shared by the processes of one store (src/limit.rs): one GCRA bucket per
-- principal and tier, as its theoretical arrival time in microseconds since the Unix epoch.
CREATE TABLE rate_limits (
    key        TEXT PRIMARY KEY,
    tat_us     BIGINT NOT NULL,
    last_grant BIGINT NOT NULL
);
