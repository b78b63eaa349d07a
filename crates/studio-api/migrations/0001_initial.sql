-- The studio Management API schema. Every tenant row carries `studio_id`; every query filters on it.
-- Times are RFC 3339 UTC text (`2026-12-01T19:00:00Z`), dates `YYYY-MM-DD`, money integer cents.

CREATE TABLE studios (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    slug        TEXT NOT NULL UNIQUE,
    tier        TEXT NOT NULL CHECK (tier IN ('free', 'pro')),
    timezone    TEXT NOT NULL,
    currency    TEXT NOT NULL,
    city        TEXT NOT NULL,
    country     TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT ''
);

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    studio_id     TEXT NOT NULL REFERENCES studios (id) ON DELETE CASCADE,
    email         TEXT NOT NULL UNIQUE COLLATE NOCASE,
    name          TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'staff')),
    password_hash TEXT NOT NULL
);

CREATE TABLE programs (
    id          TEXT PRIMARY KEY,
    studio_id   TEXT NOT NULL REFERENCES studios (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    description TEXT,
    color       TEXT
);
CREATE INDEX programs_studio ON programs (studio_id, name, id);

CREATE TABLE instructors (
    id          TEXT PRIMARY KEY,
    studio_id   TEXT NOT NULL REFERENCES studios (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    email       TEXT,
    bio         TEXT,
    specialties TEXT NOT NULL DEFAULT '[]',
    active      INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX instructors_studio ON instructors (studio_id, name, id);

CREATE TABLE locations (
    id        TEXT PRIMARY KEY,
    studio_id TEXT NOT NULL REFERENCES studios (id) ON DELETE CASCADE,
    name      TEXT NOT NULL,
    address   TEXT NOT NULL,
    city      TEXT NOT NULL,
    timezone  TEXT
);
CREATE INDEX locations_studio ON locations (studio_id, name, id);

CREATE TABLE rooms (
    id          TEXT PRIMARY KEY,
    studio_id   TEXT NOT NULL REFERENCES studios (id) ON DELETE CASCADE,
    location_id TEXT NOT NULL REFERENCES locations (id) ON DELETE CASCADE,
    name        TEXT NOT NULL COLLATE NOCASE,
    capacity    INTEGER NOT NULL CHECK (capacity BETWEEN 1 AND 500),
    UNIQUE (location_id, name)
);

CREATE TABLE classes (
    id               TEXT PRIMARY KEY,
    studio_id        TEXT NOT NULL REFERENCES studios (id) ON DELETE CASCADE,
    name             TEXT NOT NULL,
    description      TEXT,
    program_id       TEXT REFERENCES programs (id) ON DELETE SET NULL,
    instructor_id    TEXT REFERENCES instructors (id) ON DELETE SET NULL,
    location_id      TEXT REFERENCES locations (id) ON DELETE SET NULL,
    room_id          TEXT REFERENCES rooms (id) ON DELETE SET NULL,
    duration_minutes INTEGER NOT NULL,
    capacity         INTEGER NOT NULL,
    price_cents      INTEGER NOT NULL,
    currency         TEXT NOT NULL,
    level            TEXT,
    status           TEXT NOT NULL CHECK (status IN ('active', 'cancelled')),
    created_at       TEXT NOT NULL
);
CREATE INDEX classes_studio ON classes (studio_id, name, id);

CREATE TABLE occurrences (
    id            TEXT PRIMARY KEY,
    studio_id     TEXT NOT NULL REFERENCES studios (id) ON DELETE CASCADE,
    class_id      TEXT NOT NULL REFERENCES classes (id) ON DELETE CASCADE,
    starts_at     TEXT NOT NULL,
    ends_at       TEXT NOT NULL,
    instructor_id TEXT REFERENCES instructors (id) ON DELETE SET NULL,
    room_id       TEXT REFERENCES rooms (id) ON DELETE SET NULL,
    location_id   TEXT REFERENCES locations (id) ON DELETE SET NULL,
    status        TEXT NOT NULL CHECK (status IN ('scheduled', 'cancelled')),
    capacity      INTEGER NOT NULL
);
CREATE INDEX occurrences_studio ON occurrences (studio_id, starts_at, id);
CREATE INDEX occurrences_room ON occurrences (room_id, starts_at);
CREATE INDEX occurrences_class ON occurrences (class_id, starts_at);

CREATE TABLE plans (
    id            TEXT PRIMARY KEY,
    studio_id     TEXT NOT NULL REFERENCES studios (id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    description   TEXT,
    kind          TEXT NOT NULL CHECK (kind IN ('membership', 'class_pack', 'drop_in')),
    price_cents   INTEGER NOT NULL,
    currency      TEXT NOT NULL,
    interval      TEXT,
    class_credits INTEGER,
    status        TEXT NOT NULL CHECK (status IN ('active', 'archived'))
);
CREATE INDEX plans_studio ON plans (studio_id, name, id);

CREATE TABLE members (
    id                      TEXT PRIMARY KEY,
    studio_id               TEXT NOT NULL REFERENCES studios (id) ON DELETE CASCADE,
    name                    TEXT NOT NULL,
    email                   TEXT NOT NULL COLLATE NOCASE,
    phone                   TEXT,
    role                    TEXT NOT NULL CHECK (role IN ('guest', 'member', 'vip', 'staff')),
    status                  TEXT NOT NULL CHECK (status IN ('invited', 'active')),
    membership_plan_id      TEXT REFERENCES plans (id),
    membership_status       TEXT CHECK (membership_status IN ('active', 'cancelled')),
    membership_started_at   TEXT,
    membership_cancelled_at TEXT,
    created_at              TEXT NOT NULL,
    UNIQUE (studio_id, email)
);
CREATE INDEX members_studio ON members (studio_id, name, id);

CREATE TABLE coupons (
    id               TEXT PRIMARY KEY,
    studio_id        TEXT NOT NULL REFERENCES studios (id) ON DELETE CASCADE,
    code             TEXT NOT NULL,
    description      TEXT,
    percent_off      INTEGER,
    amount_off_cents INTEGER,
    currency         TEXT,
    max_redemptions  INTEGER,
    expires_at       TEXT,
    status           TEXT NOT NULL CHECK (status IN ('active', 'archived')),
    times_redeemed   INTEGER NOT NULL DEFAULT 0,
    UNIQUE (studio_id, code)
);

CREATE TABLE content (
    id               TEXT PRIMARY KEY,
    studio_id        TEXT NOT NULL REFERENCES studios (id) ON DELETE CASCADE,
    title            TEXT NOT NULL,
    description      TEXT,
    duration_seconds INTEGER NOT NULL,
    instructor_id    TEXT REFERENCES instructors (id) ON DELETE SET NULL,
    level            TEXT,
    visibility       TEXT NOT NULL CHECK (visibility IN ('public', 'members', 'hidden')),
    tags             TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX content_studio ON content (studio_id, title, id);

CREATE TABLE bookings (
    id            TEXT PRIMARY KEY,
    studio_id     TEXT NOT NULL REFERENCES studios (id) ON DELETE CASCADE,
    occurrence_id TEXT NOT NULL REFERENCES occurrences (id),
    member_id     TEXT NOT NULL REFERENCES members (id),
    status        TEXT NOT NULL CHECK (status IN ('booked', 'cancelled', 'attended')),
    price_cents   INTEGER NOT NULL,
    currency      TEXT NOT NULL,
    plan_id       TEXT REFERENCES plans (id),
    coupon_id     TEXT REFERENCES coupons (id),
    refund_cents  INTEGER NOT NULL DEFAULT 0,
    created_at    TEXT NOT NULL,
    cancelled_at  TEXT
);
CREATE INDEX bookings_occurrence ON bookings (occurrence_id, status);
CREATE INDEX bookings_studio ON bookings (studio_id, created_at);

CREATE TABLE expenses (
    id           TEXT PRIMARY KEY,
    studio_id    TEXT NOT NULL REFERENCES studios (id) ON DELETE CASCADE,
    description  TEXT NOT NULL,
    category     TEXT NOT NULL,
    amount_cents INTEGER NOT NULL CHECK (amount_cents > 0),
    currency     TEXT NOT NULL,
    incurred_on  TEXT NOT NULL,
    vendor       TEXT
);
CREATE INDEX expenses_studio ON expenses (studio_id, incurred_on, id);

CREATE TABLE messages (
    id         TEXT PRIMARY KEY,
    studio_id  TEXT NOT NULL REFERENCES studios (id) ON DELETE CASCADE,
    direction  TEXT NOT NULL CHECK (direction IN ('received', 'sent')),
    member_ids TEXT NOT NULL,
    subject    TEXT NOT NULL,
    body       TEXT NOT NULL,
    sent_at    TEXT NOT NULL
);
CREATE INDEX messages_studio ON messages (studio_id, direction, sent_at, id);

-- Stored responses of writes that carried an Idempotency-Key (Stripe semantics), per studio.
CREATE TABLE idempotency_keys (
    studio_id    TEXT NOT NULL,
    key          TEXT NOT NULL,
    method       TEXT NOT NULL,
    path         TEXT NOT NULL,
    body_sha256  TEXT NOT NULL,
    status       INTEGER,
    response     BLOB,
    created_at   TEXT NOT NULL,
    PRIMARY KEY (studio_id, key)
);
