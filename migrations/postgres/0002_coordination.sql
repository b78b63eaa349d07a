-- What replicas coordinate on.

-- The revocation epoch: bumped, and announced with NOTIFY flowgate_revocations, by every
-- revocation or rotation (src/store/coordination.rs).
CREATE TABLE flowgate_epoch (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    n  BIGINT NOT NULL
);
INSERT INTO flowgate_epoch (id, n) VALUES (1, 0);

-- Secrets every replica must agree on (signing keys), created once by whichever starts first.
CREATE TABLE flowgate_secrets (
    name       TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
